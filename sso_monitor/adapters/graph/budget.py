"""Pacing Graph reads under the identity service's throttling budget.

Microsoft Graph's identity and access service (applications, service
principals, owners, policies) throttles per calling app and tenant by
*resource units* in a token bucket: 3,500 / 5,000 / 8,000 units per 10 s for
small / medium / large tenants, each inner request of a ``$batch`` counted on
its own (Microsoft Learn, "Microsoft Graph service-specific throttling
limits", Identity and access service limits). A request's cost starts from a
base (1, or 2 for a few list paths) and moves: ``$select`` -1, ``$expand`` +1,
``$top`` under 20 -1, never below 1.

``ResourceBudget`` keeps a sliding window of what this process spent and
makes a sender wait until the next request fits in ``share`` of the budget:
in no 10 s window do we spend more than that, so the bucket never runs dry
and Graph never has to say 429 to this process. ``share`` leaves headroom for
another instance of the monitor and for the rotation's writes; a 429 that
comes anyway (another consumer of the same budget) halves it for the rest of
the run. Retry-After is still honoured by the reader for what does get
throttled.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

WINDOW_SECONDS = 10.0
UNITS_PER_WINDOW = {"small": 3500, "medium": 5000, "large": 8000}
DEFAULT_SHARE = 0.9
MIN_SHARE = 0.25

# Base costs above 1 from the doc's table, for the GET paths the monitor could send.
_LIST_COSTS = {"applications": 2, "users": 2, "oauth2permissiongrants": 2}


def request_cost(method: str, url: str) -> int:
    """The resource units Graph charges for one request, by the documented rules."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.strip("/").split("/") if s]
    if segments and segments[0].lower() == "v1.0":
        segments = segments[1:]
    base = 1
    if method.upper() == "GET" and len(segments) == 1 and "(" not in segments[0]:
        base = _LIST_COSTS.get(segments[0].lower(), 1)
    query = {k.lower(): v for k, v in parse_qs(parts.query).items()}
    cost = base
    if "$select" in query:
        cost -= 1
    if "$expand" in query:
        cost += 1
    top = query.get("$top")
    if top and top[0].isdigit() and int(top[0]) < 20:
        cost -= 1
    return max(1, cost)


class ResourceBudget:
    """A sliding-window pacer: ``await spend(units)`` returns once sending ``units`` more
    keeps this process within ``share`` of the tenant's budget in every window."""

    def __init__(
        self,
        units_per_window: int,
        *,
        window: float = WINDOW_SECONDS,
        share: float = DEFAULT_SHARE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.units_per_window = units_per_window
        self.window = window
        self.share = share
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[tuple[float, int]] = deque()
        self._lock = asyncio.Lock()
        self.waited = 0.0  # seconds spent waiting for the budget (for the benchmark's report)
        self.peak = 0  # the most units spent in one window

    @classmethod
    def for_tenant_size(cls, size: str, **options: float) -> ResourceBudget:
        return cls(UNITS_PER_WINDOW.get(size, UNITS_PER_WINDOW["small"]), **options)  # type: ignore[arg-type]

    @property
    def limit(self) -> int:
        return max(1, int(self.units_per_window * self.share))

    def _in_window(self, now: float) -> int:
        while self._spent and self._spent[0][0] <= now - self.window:
            self._spent.popleft()
        return sum(units for _, units in self._spent)

    async def spend(self, units: int) -> None:
        units = min(units, self.limit)  # one request bigger than the whole share still goes, alone
        async with self._lock:  # first come, first served: a big batch is not starved
            while True:
                now = self._clock()
                used = self._in_window(now)
                if used + units <= self.limit:
                    self._spent.append((now, units))
                    self.peak = max(self.peak, used + units)
                    return
                # Wait until enough of the oldest spending leaves the window.
                freed, wait = 0, 0.0
                for at, spent in self._spent:
                    freed += spent
                    wait = at + self.window - now
                    if used - freed + units <= self.limit:
                        break
                pause = max(wait, 0.01)
                self.waited += pause
                await self._sleep(pause)

    def throttled(self) -> None:
        """Graph said 429 anyway: someone else spends the same budget; take less of it."""
        self.share = max(MIN_SHARE, self.share / 2)
