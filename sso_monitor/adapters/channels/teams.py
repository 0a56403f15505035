"""Teams: a notice as an Adaptive Card, posted to a Workflows webhook.

The webhook URL is a credential (its ``sig`` parameter signs it), so it lives
in Key Vault (``channels.<name>.webhookSecretName``). It is read on the first
send, kept for the channel's lifetime, and read again once after a 401 or 404,
in case it was rotated. It never appears in a log line or an exception: they
name the channel, the HTTP status and a short reason. urllib3 logs request
lines at DEBUG; ``redact_signatures`` masks the ``sig`` there.

What counts as delivered (docs/sandbox/alerts.md, the Teams reference):

- 202 (Workflows), or 200 with a body that reports no failure (a classic
  Incoming Webhook answers "1");
- 200 whose text says "HTTP error 429": Teams throttled the channel. Retried;
- 200 whose text says "failed" otherwise: retried for a 5xx inside, refused
  for a 4xx inside;
- 408, 429, 5xx, a timeout, a lost connection: retried (Retry-After honoured);
- 400, 401, 403, 404, 413, 415 and any other answer: refused, at once.

Pacing: at most 4 posts per second per channel (Teams' first rate-limit
window); the longer windows (60 per 30 s, 100 per hour) are left to the
retries and to the digest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from sso_monitor.adapters.channels.delivery import HttpAnswer, RateLimiter, Retryable, RetryPolicy, Sleep, deliver, http_post, refuse
from sso_monitor.adapters.http import session_with_host_map
from sso_monitor.alerts.ports import ChannelError, Notice, SecretSource
from sso_monitor.alerts.render import TEAMS_MAX_BYTES, serialise, teams_message
from sso_monitor.config import ChannelConfig, MonitorConfig
from sso_monitor.errors import AccessDenied, ExternalError, NotFound
from sso_monitor.models import SecretValue

log = logging.getLogger(__name__)

POSTS_PER_SECOND = 4
_TEAMS_ERROR = re.compile(r"HTTP error (\d{3})")
_SIGNATURE = re.compile(r"(?i)([?&](?:sig|code)=)[^&\s\"'<>]+")
_REFETCH_ON = (401, 404)


class TeamsChannel:
    """AlertChannel on a Teams Workflows (or classic Incoming) webhook."""

    kind = "teams"

    def __init__(
        self,
        config: MonitorConfig,
        channel: ChannelConfig,
        secrets: SecretSource,
        *,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        attempts: int = 5,
    ) -> None:
        if not channel.webhook_secret_name:
            raise ValueError(f"channel {channel.name}: a teams channel needs webhookSecretName")
        self.name = channel.name
        self.secret_name = channel.webhook_secret_name
        self._secrets = secrets
        self._sleep = sleep
        self._policy = RetryPolicy(attempts=attempts)
        # Teams counts per webhook: every channel object for this one in the process shares the count.
        self._limiter = RateLimiter(POSTS_PER_SECOND, 1.0, sleep=sleep, monotonic=monotonic, shared=("teams", self.secret_name))
        network = config.network
        self._timeout = network.timeout_seconds
        self._connect_timeout = network.connect_timeout
        self._session = session_with_host_map(dict(network.host_map), network.ca_bundle, trust_env=network.use_env_proxies)
        self._url: SecretValue | None = None
        redact_signatures()

    async def send(self, notice: Notice) -> None:
        body = serialise(teams_message(notice))
        if len(body) > TEAMS_MAX_BYTES:  # the renderer keeps within the limit: a bug if not
            raise ChannelError(self.name, f"card of {len(body)} bytes is over Teams' limit", transient=False, status=413)
        cached = self._url is not None
        url = await self._webhook_url(refresh=False)
        try:
            attempts = await self._deliver(url, body)
        except ChannelError as refusal:
            if not (cached and refusal.status in _REFETCH_ON):
                raise
            fresh = await self._webhook_url(refresh=True)
            if fresh == url:
                raise
            log.info("channel %s: webhook refused with HTTP %s; sending to the webhook URL now in Key Vault", self.name, refusal.status)
            attempts = await self._deliver(fresh, body)
        log.info("channel %s: notice %s delivered (%d alert(s), %d bytes, %d attempt(s))", self.name, notice.id[:12], len(notice.alerts), len(body), attempts)

    async def aclose(self) -> None:
        self._url = None
        self._session.close()

    async def _deliver(self, url: SecretValue, body: bytes) -> int:
        async def attempt() -> None:
            async with self._limiter.slot():
                answer = await asyncio.to_thread(
                    http_post, self.name, self._session, url.reveal(), body=body, headers=_HEADERS, timeout=self._timeout, connect_timeout=self._connect_timeout
                )
            self._check(answer)

        return await deliver(self.name, attempt, policy=self._policy, sleep=self._sleep)

    def _check(self, answer: HttpAnswer) -> None:
        status = answer.status
        if status == 202:
            return
        if status == 200:
            embedded = _TEAMS_ERROR.search(answer.text)
            if embedded:
                inner = int(embedded.group(1))
                what = "throttled" if inner == 429 else "delivery into the channel failed"
                refuse(self.name, inner, f"Teams answered HTTP 200 with 'HTTP error {inner}' ({what})")
            if "failed" in answer.text.lower():
                raise Retryable("Teams answered HTTP 200 reporting a failure", status=200)
            return
        refuse(self.name, status, f"webhook answered HTTP {status}{_error_code(answer)}", answer.retry_after)

    async def _webhook_url(self, *, refresh: bool) -> SecretValue:
        if self._url is not None and not refresh:
            return self._url
        try:
            value = await self._secrets.secret(self.secret_name)
        except (NotFound, AccessDenied) as exc:
            raise ChannelError(self.name, f"webhook URL secret {self.secret_name}: {type(exc).__name__}", transient=False, status=exc.status) from exc
        except ExternalError as exc:
            raise ChannelError(self.name, f"webhook URL secret {self.secret_name}: could not be read ({type(exc).__name__})", status=exc.status) from exc
        if urlsplit(value.reveal().strip()).scheme.lower() != "https":
            # The card goes where this secret says: never in clear text, never to a non-URL.
            raise ChannelError(self.name, f"webhook URL secret {self.secret_name}: not an https:// URL", transient=False)
        self._url = value
        return value


_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json, text/plain"}


def _error_code(answer: HttpAnswer) -> str:
    """Workflows' ``error.code`` (WorkflowNotFound, InvalidRequestContent...), or Teams'
    embedded HTTP error; never the rest of the body."""
    if answer.content_type == "application/json":
        try:
            error = json.loads(answer.text).get("error")
        except (ValueError, AttributeError):
            error = None
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", code):
            return f" {code}"
    embedded = _TEAMS_ERROR.search(answer.text)
    return f" (Teams: HTTP error {embedded.group(1)})" if embedded else ""


class _RedactSignatures(logging.Filter):
    """Masks ``sig=`` (and Azure Functions' ``code=``) query values in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        if "sig=" in message or "code=" in message:
            record.msg, record.args = _SIGNATURE.sub(r"\1***", message), None
        return True


_REDACTOR = _RedactSignatures()
# urllib3 writes the request line, query string included, at DEBUG ("POST /...?...&sig=...").
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


def redact_signatures() -> None:
    """Install the redacting filter on urllib3's loggers (once; idempotent)."""
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
