"""Delivery mechanics shared by the channel adapters (teams.py, mail.py).

- ``deliver``: one notice, attempt after attempt (tenacity), with exponential
  backoff and jitter, or exactly the server's Retry-After when it gave one. An
  attempt raises ``Retryable`` for what a later try may fix (throttling, 408,
  5xx, a timeout, a dropped connection) and ``ChannelError(transient=False)``
  for a refusal that will not change by itself. When the attempts are spent,
  or the server asks for a wait longer than we are willing to hold a run for,
  ``deliver`` raises ``ChannelError(transient=True)``: the outbox tries again
  on a later run.
- ``http_post``: one POST with requests, whose exceptions become ``Retryable``
  naming only their type: their text holds the URL, and a Teams webhook URL
  carries its signature.
- ``RateLimiter``: at most N posts per period, measured from when each post's
  answer arrived (so the server, which counts arrivals, never sees more).

Time is injected (``sleep``, ``monotonic``): tests run the backoff instantly.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NoReturn

import requests
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from sso_monitor.adapters.graph.client import parse_seconds
from sso_monitor.alerts.ports import ChannelError

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
_TEXT_LIMIT = 4000  # of an answer's body, kept to read an error code from


class Retryable(Exception):
    """One attempt failed in a way that a later one may not. ``reason`` is short and
    holds no URL and no secret: it ends up in ChannelError and in the log."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # in all, the first included
    initial: float = 1.0  # the first backoff, in seconds; doubles each time
    cap: float = 30.0  # the longest backoff
    jitter: float = 1.0  # up to this much is added at random, so that senders spread out
    max_retry_after: float = 60.0  # a longer Retry-After ends this run's attempts


async def deliver(channel: str, attempt: Callable[[], Awaitable[None]], *, policy: RetryPolicy, sleep: Sleep) -> int:
    """Run ``attempt`` until it returns; answers how many attempts it took.

    Retries ``Retryable`` only; ``ChannelError`` and anything else propagate at once."""
    backoff = wait_exponential_jitter(initial=policy.initial, max=policy.cap, jitter=policy.jitter)

    def wait(state: RetryCallState) -> float:
        failure = _failure(state)
        if failure is not None and failure.retry_after is not None:
            return failure.retry_after
        return float(backoff(state))

    def stop(state: RetryCallState) -> bool:
        failure = _failure(state)
        too_long = failure is not None and failure.retry_after is not None and failure.retry_after > policy.max_retry_after
        return state.attempt_number >= policy.attempts or too_long

    def before_sleep(state: RetryCallState) -> None:
        failure = _failure(state)
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "channel %s: attempt %d of %d failed (%s); next attempt in %.1f s",
            channel,
            state.attempt_number,
            policy.attempts,
            failure.reason if failure else "?",
            delay,
        )

    retrying = AsyncRetrying(sleep=sleep, stop=stop, wait=wait, retry=retry_if_exception_type(Retryable), before_sleep=before_sleep, reraise=True)
    last: Retryable | None = None
    count = 0
    try:
        async for round_ in retrying:
            with round_:
                count = round_.retry_state.attempt_number
                await attempt()
    except Retryable as failure:
        last = failure
    if last is None:
        return count
    reason = f"not delivered after {count} attempt{'' if count == 1 else 's'}: {last.reason}"
    if last.retry_after is not None and last.retry_after > policy.max_retry_after:
        reason += f" (asked to retry after {last.retry_after:g} s)"
    # Raised here, outside the handler: no exception of a library rides along as context.
    raise ChannelError(channel, reason, transient=True, status=last.status)


def _failure(state: RetryCallState) -> Retryable | None:
    failure = state.outcome.exception() if state.outcome is not None else None
    return failure if isinstance(failure, Retryable) else None


def refuse(channel: str, status: int, reason: str, retry_after: float | None = None) -> NoReturn:
    """An HTTP error answer: Retryable for 408, 429 and 5xx, else a lasting refusal."""
    if status in (408, 429) or status >= 500:
        raise Retryable(reason, status=status, retry_after=retry_after)
    raise ChannelError(channel, reason, transient=False, status=status)


# ---------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    text: str  # the body, shortened; read for error codes only, never logged whole
    retry_after: float | None
    content_type: str


def http_post(
    channel: str, session: requests.Session, url: str, *, body: bytes, headers: dict[str, str], timeout: float, connect_timeout: float | None = None
) -> HttpAnswer:
    """One POST (blocking; run it in a thread). Redirects are not followed.

    Raises Retryable for a timeout or a lost connection, ChannelError(transient=False)
    for a certificate that does not verify; neither names the URL."""
    failure: BaseException | None = None
    try:
        response = session.post(url, data=body, headers=headers, timeout=(connect_timeout or timeout, timeout), allow_redirects=False)
    except requests.RequestException as exc:
        failure = exc
    if failure is not None:
        kind, certificate = type(failure).__name__, _certificate_failure(failure)
        failure = None  # the exception holds the prepared request: the URL, and for Graph the token
        if certificate:
            raise ChannelError(channel, f"TLS certificate of the endpoint does not verify ({kind})", transient=False)
        raise Retryable(f"no answer ({kind})")
    with response:
        return HttpAnswer(
            status=response.status_code,
            text=response.text[:_TEXT_LIMIT] if response.content else "",
            retry_after=parse_seconds(response.headers.get("Retry-After")),
            content_type=(response.headers.get("Content-Type") or "").split(";")[0].strip().lower(),
        )


def _certificate_failure(exc: BaseException) -> bool:
    """Whether an ssl.SSLCertVerificationError lies under a requests exception."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return True
        pending += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return False


# ---------------------------------------------------------------- pacing


_SHARED: dict[Hashable, deque[float]] = {}  # posts answered, per shared key, clock and limit
_SHARED_LOCK = threading.Lock()


class RateLimiter:
    """At most ``limit`` posts per ``period`` seconds, one at a time.

    Counted from the arrival of each answer: the server counted the request before
    it answered, so a slot freed by our clock is free by the server's too. ``margin``
    absorbs the rest (clock granularity, a server that rounds)."""

    def __init__(
        self, limit: int, period: float, *, sleep: Sleep, monotonic: Callable[[], float], margin: float = 0.05, shared: Hashable | None = None
    ) -> None:
        """``shared``: limiters built with the same key (and clock) in this process count
        the same posts, so a second channel object for one webhook (the next run's, an
        admin action's) does not start from zero. The lock stays per object: an asyncio
        lock belongs to one event loop."""
        self.limit, self.period, self.margin = limit, period, margin
        self._sleep, self._monotonic = sleep, monotonic
        if shared is None:
            self._answered: deque[float] = deque(maxlen=limit)
        else:
            with _SHARED_LOCK:
                self._answered = _SHARED.setdefault((shared, monotonic, limit, period), deque(maxlen=limit))
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._lock:
            while len(self._answered) >= self.limit:
                wait = self._answered[0] + self.period + self.margin - self._monotonic()
                if wait <= 0:
                    break
                await self._sleep(wait)
            try:
                yield
            finally:
                self._answered.append(self._monotonic())
