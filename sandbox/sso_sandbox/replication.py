"""Directory replication lag: a read may be answered by a replica that has not seen a write yet.

Microsoft Entra is eventually consistent: "A successful write to Microsoft Entra does
not guarantee that an immediate read will reflect that change" (Microsoft's identity
blog, "Designing for eventual consistency for Microsoft Entra"), and SDK users see
it as reads that fail or show old data for seconds after a write
(msgraph-sdk-powershell#1191, msgraph-sdk-dotnet#3108, msgraph-bicep-types#193;
Microsoft's own Teams Toolkit retries 404 after creating an app). No SLA is published,
so the window and how often a read lands on a lagging replica are settings.

The model, per tenant:

- Every write to an application or a service principal (addPassword, removePassword,
  PATCH, an owner added) first keeps a copy of the object as it was, stamped with the
  world clock and the real monotonic clock.
- A write is replicated once EITHER clock has moved ``window_seconds`` past its stamp,
  so the window ends whether the world clock runs, is frozen, or is simulated (the
  rotation's SimulatedClock advances it on sleep; a frozen clock never moves).
- While an object has writes that are not replicated yet, each read of it is answered,
  with probability ``stale_probability`` (a generator seeded by ``seed``), by a lagging
  replica: the object as it was before its oldest unreplicated write. That state
  existed, and one answer takes each object from one replica only, so a read never
  shows a state that never existed.

Settings come from the tenant (``Tenant.replication``, scenario field ``replication``)
or, for one run, from a fault plan rule ``{"fault": "replication", ...}``, which wins.
Off by default, so unrelated tests stay deterministic.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")

# Prior versions kept per object at most: a read needs only the oldest unreplicated one,
# and writes older than the window are dropped as soon as the object is read again.
MAX_PRIOR_VERSIONS = 16


@dataclass(frozen=True)
class Replication:
    """How long a directory write takes to reach every replica, and how often a read hits a lagging one."""

    window_seconds: float = 0.0
    stale_probability: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.window_seconds < 0:
            raise ValueError("replication windowSeconds must be >= 0")
        if not 0.0 <= self.stale_probability <= 1.0:
            raise ValueError("replication staleProbability must be between 0 and 1")

    @property
    def enabled(self) -> bool:
        return self.window_seconds > 0 and self.stale_probability > 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Replication:
        """The scenario form: {"windowSeconds": 5, "staleProbability": 0.5, "seed": 7}."""
        unknown = set(data) - {"windowSeconds", "staleProbability", "seed"}
        if unknown:
            raise ValueError(f"unknown replication field(s): {', '.join(sorted(unknown))}")
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("replication seed must be an integer")
        return cls(
            window_seconds=_number(data.get("windowSeconds", 0), "windowSeconds"),
            stale_probability=_number(data.get("staleProbability", 0), "staleProbability"),
            seed=seed,
        )


REPLICATION_OFF = Replication()


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"replication {name} must be a number")
    return float(value)


@dataclass(frozen=True)
class _PriorVersion:
    """The object as it was just before one write, and when that write happened."""

    state: Any
    written_at: datetime  # world clock
    written_monotonic: float  # real monotonic clock

    def replicated(self, window: float, now: datetime, monotonic_now: float) -> bool:
        return now - self.written_at >= timedelta(seconds=window) or monotonic_now - self.written_monotonic >= window


def _key(obj: Any) -> str:
    return f"{type(obj).__name__}:{obj.object_id.lower()}"


class ReplicationLog:
    """One tenant's recent writes and the generator that picks which replica answers a read."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._prior: dict[str, list[_PriorVersion]] = {}  # object key -> prior versions, oldest first
        self._rng = random.Random()
        self._rng_settings: Replication | None = None

    def record_write(self, obj: Any, now: datetime) -> None:
        """Call just BEFORE changing ``obj``: keeps the state a lagging replica still has."""
        version = _PriorVersion(copy.deepcopy(obj), now, self.monotonic())
        with self._lock:
            versions = self._prior.setdefault(_key(obj), [])
            versions.append(version)
            del versions[:-MAX_PRIOR_VERSIONS]

    def view(self, settings: Replication, now: datetime) -> ReplicaView:
        """What one read sees. Make one per read (an HTTP request, or one inner $batch request)."""
        return ReplicaView(self, settings, now)

    def clear(self) -> None:
        with self._lock:
            self._prior.clear()

    def __deepcopy__(self, memo: dict[int, Any]) -> ReplicationLog:
        # Tests snapshot and restore whole tenants with deepcopy; a lock cannot be copied.
        twin = ReplicationLog(self.monotonic)
        with self._lock:
            twin._prior = copy.deepcopy(self._prior, memo)
        return twin

    # ---- used by ReplicaView

    def _stale_state(self, obj: Any, settings: Replication, now: datetime) -> Any | None:
        """The state before the oldest unreplicated write of ``obj``, or None if every write has replicated."""
        monotonic_now = self.monotonic()
        with self._lock:
            versions = self._prior.get(_key(obj))
            if not versions:
                return None
            # Writes replicate in the order they were made: drop the replicated prefix.
            while versions and versions[0].replicated(settings.window_seconds, now, monotonic_now):
                versions.pop(0)
            if not versions:
                del self._prior[_key(obj)]
                return None
            return versions[0].state

    def _draw(self, settings: Replication) -> float:
        with self._lock:
            if settings != self._rng_settings:  # new settings: a fresh generator from their seed
                self._rng = random.Random(settings.seed)
                self._rng_settings = settings
            return self._rng.random()


class ReplicaView:
    """The replicas one read is served from: for each object, the primary's state or a lagging
    replica's, decided once per object so that an answer never mixes two versions of it."""

    def __init__(self, log: ReplicationLog, settings: Replication, now: datetime) -> None:
        self._log = log
        self._settings = settings
        self._now = now
        self._chosen: dict[str, Any] = {}

    def of(self, obj: T) -> T:
        """``obj`` as this read sees it (the object itself, or a copy of an earlier state)."""
        if not self._settings.enabled:
            return obj
        key = _key(obj)
        if key not in self._chosen:
            stale = self._log._stale_state(obj, self._settings, self._now)
            lagging = stale is not None and self._log._draw(self._settings) < self._settings.stale_probability
            self._chosen[key] = stale if lagging else obj
        return self._chosen[key]
