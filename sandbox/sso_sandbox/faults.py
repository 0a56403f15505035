"""Fault plans: what goes wrong, where, and when.

A plan is a list of rules. Each rule names a route (service, HTTP method and a
path pattern) and a fault:

- ``latency``: add ``latency_ms`` before answering (then answer normally);
- ``status``: answer ``status`` with the service's own error body
  (``code``/``message`` optional; ``location`` adds a Location header, for a
  redirect that a client must not follow with its credentials);
- ``throttle``: answer 429 with ``Retry-After: retry_after`` (Graph body);
- ``timeout``: hold the connection for ``seconds`` and close it unanswered;
- ``drop``: close the connection without an answer;
- ``crash``: the caller dies at this point: the connection is closed and from
  then on every request to any service is refused until ``recover()``
  (a process restart, in the harness's words);
- ``replication``: not a fault of one call but a setting for the run: Graph
  reads whose path matches may be answered by a replica that lags recent
  writes (``window_seconds``, ``stale_probability``, ``seed``; see
  replication.py). It overrides the tenant's own setting and never fires in
  ``select``.

``when`` is ``before`` (the request never reaches the world) or ``after`` (the
world changed, but the answer is lost); it applies to timeout, drop and crash.
``nth`` fires only on the Nth matching call (1-based), ``times`` caps how often
a rule fires (default: every match, or once with ``nth``).

Paths are matched without the query string. A pattern is a glob
(``/applications/*/addPassword``), or a regular expression after ``re:``.
Inner requests of a Graph ``$batch`` are matched too, with their own method
and path; there ``status`` and ``throttle`` become that inner response.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from sso_sandbox.replication import Replication

KINDS = ("latency", "status", "throttle", "timeout", "drop", "crash", "replication")


@dataclass
class FaultRule:
    fault: str
    service: str = "*"
    method: str = "*"
    path: str = "*"
    nth: int | None = None
    times: int | None = None
    when: str = "before"
    latency_ms: float = 0
    status: int = 500
    code: str | None = None
    message: str | None = None
    retry_after: float = 1.0
    seconds: float = 30.0
    window_seconds: float = 0.0
    stale_probability: float = 0.0
    seed: int | None = None
    location: str | None = None  # status faults: a Location header (3xx answers)
    matched: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.fault not in KINDS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {', '.join(KINDS)}")
        if self.when not in ("before", "after"):
            raise ValueError(f"fault 'when' must be 'before' or 'after', not {self.when!r}")
        if self.nth is not None and self.nth < 1:
            raise ValueError("fault 'nth' counts from 1")
        if self.fault == "replication":
            self.replication = Replication(self.window_seconds, self.stale_probability, self.seed)  # validates
        if self.path.startswith("re:"):
            self._regex: re.Pattern[str] | None = re.compile(self.path[3:])
        else:
            self._regex = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {
            "fault",
            "service",
            "method",
            "path",
            "nth",
            "times",
            "when",
            "latency_ms",
            "status",
            "code",
            "message",
            "retry_after",
            "seconds",
            "window_seconds",
            "stale_probability",
            "seed",
            "location",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        if "fault" not in data:
            raise ValueError("a fault rule needs 'fault'")
        return cls(**data)

    def matches(self, service: str, method: str, path: str) -> bool:
        if self.service not in ("*", service):
            return False
        if self.method not in ("*", method.upper()) and self.method.upper() != method.upper():
            return False
        if self._regex is not None:
            return self._regex.search(path) is not None
        return fnmatch.fnmatchcase(path, self.path)

    def exhausted(self) -> bool:
        limit = self.times if self.times is not None else (1 if self.nth is not None else None)
        return limit is not None and self.fired >= limit


class FaultPlan:
    """The live set of rules. Thread-safe; rules can be added while servers run."""

    def __init__(self, rules: list[FaultRule] | None = None) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = list(rules or [])
        self.crashed: dict[str, Any] | None = None
        self.log: list[dict[str, Any]] = []  # fired faults: kind, service, method, path

    @classmethod
    def from_list(cls, data: list[dict[str, Any]]) -> FaultPlan:
        return cls([FaultRule.from_dict(item) for item in data])

    def add(self, fault: str, **fields: Any) -> FaultRule:
        rule = FaultRule(fault=fault, **fields)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.crashed = None

    def recover(self) -> None:
        """The crashed caller restarts: requests are served again."""
        with self._lock:
            self.crashed = None

    def select(self, service: str, method: str, path: str) -> list[FaultRule]:
        """The rules that fire for this call (several may: latency plus an error)."""
        firing: list[FaultRule] = []
        with self._lock:
            for rule in self.rules:
                if rule.fault == "replication" or rule.exhausted() or not rule.matches(service, method, path):
                    continue
                rule.matched += 1
                if rule.nth is not None and rule.matched != rule.nth:
                    continue
                rule.fired += 1
                firing.append(rule)
                self.log.append({"fault": rule.fault, "service": service, "method": method, "path": path})
        return firing

    def replication(self, service: str, method: str, path: str) -> Replication | None:
        """The replication setting the plan imposes on this read, if any (the last matching rule wins)."""
        with self._lock:
            found = [r for r in self.rules if r.fault == "replication" and r.matches(service, method, path)]
        return found[-1].replication if found else None

    def mark_crashed(self, service: str, method: str, path: str, when: str) -> None:
        with self._lock:
            self.crashed = {"service": service, "method": method, "path": path, "when": when}
