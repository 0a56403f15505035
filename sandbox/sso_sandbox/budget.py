"""Graph's identity and access service limits: resource units and writes per time window.

Source: Microsoft Graph service-specific throttling limits, "Identity and access
service limits" (microsoft-graph-docs-contrib concepts/throttling-limits.md and its
include throttling-identity-and-access.md):

    | Limit type              | Resource unit quota               | Write quota                   |
    | application+tenant pair | S: 3,500 / M: 5,000 / L: 8,000     | 3,000 requests per 2 min 30 s |
    |                         | ResourceUnits per 10 seconds       |                               |
    | application             | 150,000 ResourceUnits per 20 s     | 35,000 requests per 5 minutes |
    | tenant                  | Not Applicable                     | 18,000 requests per 5 minutes |

Each request costs resource units from the doc's table (GET applications 2, anything
not listed 1; POST/PATCH/PUT/DELETE also cost one write), adjusted by its query:
``$select`` -1, ``$expand`` +1, ``$top`` below 20 -1, never below 1. Inner requests
of a ``$batch`` are "evaluated individually against throttling limits" (throttling.md).

Windows are sliding windows over REAL monotonic time, never the world clock: the
limits protect a live service from load, and a frozen or simulated world clock must
not freeze or skip them. A request is admitted if every window it counts against has
room for it; otherwise it gets 429 with ``Retry-After`` = the time until enough of the
window's earlier requests have left it. Only admitted requests fill the admission
windows ("Only the requests exceeding the limits are throttled"), so a client that
waits Retry-After is admitted; the ``x-ms-throttle-limit-percentage`` header reports
demand (admitted and throttled), which is how the doc's values above 1.0 ("1.2
indicates 20% of the incoming requests are throttled") can arise.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

TENANT_SIZES = ("small", "medium", "large")
RESOURCE_UNITS_PER_10_SECONDS = {"small": 3_500, "medium": 5_000, "large": 8_000}

# Paths (after /v1.0/) served by the identity and access service; sendMail is Outlook's.
_IDENTITY_PATH = re.compile(
    r"^/v1\.0/(?:applications|servicePrincipals|policies|directoryObjects|groups|users(?!/[^/]+/(?:microsoft\.graph\.)?sendMail))(?:[/(]|$)", re.IGNORECASE
)
# Base costs the doc lists above 1, for the paths the sandbox serves.
_BASE_COSTS = ((re.compile(r"^/v1\.0/applications/?$", re.IGNORECASE), "GET", 2), (re.compile(r"^/v1\.0/users/?$", re.IGNORECASE), "GET", 2))
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True)
class Limit:
    """One quota. ``scope`` and ``kind`` are the first two parts of x-ms-throttle-scope."""

    scope: str  # Tenant_Application | Application | Tenant
    kind: str  # ReadWrite (resource units of every request) | Write (write requests)
    capacity: int
    window_seconds: float
    information: str  # x-ms-throttle-information when this limit throttles


def limits_for(size: str) -> tuple[Limit, ...]:
    if size not in RESOURCE_UNITS_PER_10_SECONDS:
        raise ValueError(f"tenant size must be one of {', '.join(TENANT_SIZES)}, not {size!r}")
    return (
        Limit("Tenant_Application", "ReadWrite", RESOURCE_UNITS_PER_10_SECONDS[size], 10.0, "ResourceUnitLimitExceeded"),
        Limit("Tenant_Application", "Write", 3_000, 150.0, "WriteLimitExceeded"),
        Limit("Application", "ReadWrite", 150_000, 20.0, "ResourceUnitLimitExceeded"),
        Limit("Application", "Write", 35_000, 300.0, "WriteLimitExceeded"),
        Limit("Tenant", "Write", 18_000, 300.0, "WriteLimitExceeded"),
    )


@dataclass(frozen=True)
class Cost:
    resource_units: int
    writes: int

    def amount(self, limit: Limit) -> int:
        return self.resource_units if limit.kind == "ReadWrite" else self.writes


def request_cost(method: str, path: str, query: dict[str, list[str]]) -> Cost | None:
    """What one request costs the identity and access service, or None if it is not one of its requests."""
    if not _IDENTITY_PATH.match(path):
        return None
    method = method.upper()
    base = next((cost for pattern, verb, cost in _BASE_COSTS if verb == method and pattern.match(path)), 1)
    options = {key.lstrip("$").lower(): values[0] if values else "" for key, values in query.items()}
    units = base
    if "select" in options:
        units -= 1
    if "expand" in options:
        units += 1
    top = options.get("top", "")
    if top.strip().isdigit() and int(top) < 20:
        units -= 1
    return Cost(resource_units=max(1, units), writes=1 if method in _WRITE_METHODS else 0)


@dataclass
class Decision:
    """The outcome of charging one request: admitted or throttled, and the headers that say so."""

    admitted: bool
    resource_units: int
    retry_after: float = 0.0
    limit_percentage: float | None = None
    throttle_scope: str | None = None
    throttle_information: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"x-ms-resource-unit": str(self.resource_units)}
        if self.limit_percentage is not None:
            headers["x-ms-throttle-limit-percentage"] = f"{self.limit_percentage:.1f}"
        if not self.admitted:
            headers["x-ms-throttle-scope"] = self.throttle_scope or ""
            headers["x-ms-throttle-information"] = self.throttle_information or ""
        return headers


@dataclass
class BudgetStats:
    """What one tenant's Graph identity traffic cost, for benchmarks."""

    peak_resource_units_10s: int = 0  # most resource units one app spent in any 10 s window
    throttled: int = 0  # 429s the budget sent (fault-plan throttles are not counted)
    resource_units: int = 0  # admitted, in total
    requests: int = 0  # charged requests, admitted or not


class _Window:
    """A sliding window of (monotonic time, amount)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0

    def trim(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.seconds:
            self.total -= self.entries.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        if amount:
            self.entries.append((now, amount))
            self.total += amount

    def wait_for_room(self, amount: int, capacity: int, now: float) -> float:
        """Seconds until ``amount`` more fits (0 if it fits now)."""
        excess = self.total + amount - capacity
        if excess <= 0:
            return 0.0
        for at, spent in self.entries:  # oldest first: they leave the window first
            excess -= spent
            if excess <= 0:
                return at + self.seconds - now
        return self.seconds  # more than the whole capacity: cannot happen with the doc's costs


@dataclass
class _Account:
    admitted: dict[Limit, _Window] = field(default_factory=dict)
    demand: dict[Limit, _Window] = field(default_factory=dict)

    def window(self, kind: str, limit: Limit) -> _Window:
        windows = self.admitted if kind == "admitted" else self.demand
        if limit not in windows:
            windows[limit] = _Window(limit.window_seconds)
        return windows[limit]


class GraphBudget:
    """Every app's and tenant's Graph identity budget, on the real monotonic clock."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._accounts: dict[tuple[str, str, str], _Account] = {}
        self._stats: dict[str, BudgetStats] = {}

    def charge(self, *, tenant_id: str, app_id: str, size: str, cost: Cost, enforce: bool = True) -> Decision:
        """Count one request of ``app_id`` in ``tenant_id``; with ``enforce``, refuse it if a limit is full."""
        tenant_id, app_id = tenant_id.lower(), app_id.lower()
        now = self.monotonic()
        with self._lock:
            counted = [(limit, self._account(limit, tenant_id, app_id)) for limit in limits_for(size) if cost.amount(limit)]
            for limit, account in counted:
                account.window("admitted", limit).trim(now)
                account.window("demand", limit).trim(now)
                account.window("demand", limit).add(now, cost.amount(limit))
            waits = [(account.window("admitted", limit).wait_for_room(cost.amount(limit), limit.capacity, now), limit) for limit, account in counted]
            blocking = max(((wait, limit) for wait, limit in waits if wait > 0), default=None, key=lambda pair: pair[0])
            stats = self._stats.setdefault(tenant_id, BudgetStats())
            stats.requests += 1
            percentage = _limit_percentage(counted)
            if blocking is not None and enforce:
                stats.throttled += 1
                wait, limit = blocking
                return Decision(
                    admitted=False,
                    resource_units=cost.resource_units,
                    retry_after=_round_up_to_milliseconds(wait),
                    limit_percentage=percentage,
                    throttle_scope=f"{limit.scope}/{limit.kind}/{app_id}/{tenant_id}",
                    throttle_information=limit.information,
                )
            for limit, account in counted:
                account.window("admitted", limit).add(now, cost.amount(limit))
            stats.resource_units += cost.resource_units
            pair_units = next(
                account.window("admitted", limit).total for limit, account in counted if limit.scope == "Tenant_Application" and limit.kind == "ReadWrite"
            )
            stats.peak_resource_units_10s = max(stats.peak_resource_units_10s, pair_units)
            return Decision(admitted=True, resource_units=cost.resource_units, limit_percentage=percentage)

    def stats(self, tenant_id: str) -> BudgetStats:
        with self._lock:
            found = self._stats.get(tenant_id.lower(), BudgetStats())
            return BudgetStats(found.peak_resource_units_10s, found.throttled, found.resource_units, found.requests)

    def reset(self) -> None:
        with self._lock:
            self._accounts.clear()
            self._stats.clear()

    def _account(self, limit: Limit, tenant_id: str, app_id: str) -> _Account:
        key = (limit.scope, app_id if limit.scope != "Tenant" else "", tenant_id if limit.scope != "Application" else "")
        return self._accounts.setdefault(key, _Account())


def _limit_percentage(counted: list[tuple[Limit, _Account]]) -> float | None:
    """x-ms-throttle-limit-percentage: "Returned only when the application consumed more than
    0.8 of its limit. The value ranges from 0.8 to 1.8"."""
    used = max((account.window("demand", limit).total / limit.capacity for limit, account in counted), default=0.0)
    if used <= 0.8:
        return None
    return min(used, 1.8)


def _round_up_to_milliseconds(seconds: float) -> float:
    return max(0.001, math.ceil(seconds * 1000) / 1000)
