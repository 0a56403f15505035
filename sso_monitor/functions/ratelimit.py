"""The admin API's rate limit: a token bucket per caller and kind of call, in process.

The caller is the validated token's ``oid`` (the user's or the calling app's
object id in the tenant; ``sub`` when a token carries none), so one caller's
burst never slows another down. Three kinds, each its own bucket:

- ``read``:   60 a minute. Status and status page (the stored report, cached),
  a rotation's status (one Key Vault read). A dashboard polling every second
  fits; a loop does not.
- ``check``:   6 a minute. The on-demand live check of one app: 4 token requests
  at Entra (one with the facility's production secret), Graph and Key Vault
  reads, and the logout URL probe. Six a minute is one every ten seconds, more
  than a person needs and little load for Entra.
- ``action``: 10 a minute. Rotate, confirm, push, snooze: each runs under the
  app's lease anyway; ten covers a person working through a list of apps.

A bucket holds ``capacity`` tokens and refills ``capacity`` per ``period``;
a call takes one. When it is empty the call is refused with the seconds until
a token is back (the answer's Retry-After). State lives in this worker process
only: with several instances (scale-out) a caller may get up to the limit on
each. Buckets that have filled up again are forgotten, so the table stays as
small as the set of recent callers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    capacity: int  # calls in a burst
    period: float  # seconds to refill all of them

    @property
    def rate(self) -> float:
        return self.capacity / self.period


READ, CHECK, ACTION = "read", "check", "action"
LIMITS: dict[str, Limit] = {READ: Limit(60, 60.0), CHECK: Limit(6, 60.0), ACTION: Limit(10, 60.0)}
_PRUNE_AT = 10_000  # buckets kept before full ones are forgotten


class RateLimited(Exception):
    def __init__(self, kind: str, limit: Limit, retry_after: int) -> None:
        super().__init__(f"rate limit for {kind} calls ({limit.capacity} per {limit.period:g} s) reached; retry in {retry_after} s")
        self.kind, self.limit, self.retry_after = kind, limit, retry_after


class RateLimiter:
    """Thread-safe token buckets keyed by (kind, caller). ``monotonic`` is injectable."""

    def __init__(self, limits: dict[str, Limit] | None = None, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limits = dict(limits or LIMITS)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)

    def take(self, kind: str, caller: str) -> None:
        """Take one token for ``caller``'s ``kind`` of call, or raise RateLimited."""
        limit = self.limits[kind]
        now = self._monotonic()
        with self._lock:
            tokens, at = self._buckets.get((kind, caller), (float(limit.capacity), now))
            tokens = min(float(limit.capacity), tokens + (now - at) * limit.rate)
            if tokens < 1.0:
                self._buckets[(kind, caller)] = (tokens, now)
                raise RateLimited(kind, limit, max(1, math.ceil((1.0 - tokens) / limit.rate)))
            self._buckets[(kind, caller)] = (tokens - 1.0, now)
            if len(self._buckets) > _PRUNE_AT:
                self._prune(now)

    def _prune(self, now: float) -> None:
        for key, (tokens, at) in list(self._buckets.items()):
            limit = self.limits[key[0]]
            if tokens + (now - at) * limit.rate >= limit.capacity:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
