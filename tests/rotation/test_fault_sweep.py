"""Proof under faults: a fault at every external call of the rotation protocol.

Each *phase* is a run of the protocol recorded once, uninterrupted, at
collection: every HTTP request the monitor makes, in order (token requests
to Entra included; the inner parts of a Graph ``$batch`` are not requests of
their own). Each recorded call is a *fault point*: (service, method, path
shape, k), the k-th call of that shape. For every point and every fault kind
a test starts a fresh standard world and sandbox, brings it to the phase's
start, arms one fault for exactly that call, runs the phase, then restarts
the process and re-runs in a healthy world (the sandbox clock 15 minutes
later each time, past the sweep window) until it converges, checking the
invariants after every run, every paste by the administrator and every
confirmation. The end state must be the uninterrupted one's, and stay so
through one more run after the grace period.

Invariants (``Scenario.check``), after every run, paste and confirmation:
sign-in works with the secret SmartTrace holds; no credential without the
monitor's marker was removed or added, in any app (the hand-made one stays);
the credential SmartTrace holds is never tagged ``previous`` (due for
retirement); the versions in flight are of one credential at most. At the
end (``converged``): nothing in flight, one ``current`` version, new, held by
SmartTrace, and every credential with the marker is named by the current or
a previous version (no orphans); then ``end_shape`` as below. Every text the
monitor produced (results, alerts, exception chains, tags, lease files) and
every log record (``no_secret_in_logs``) holds no issued secret.

Phases (``PHASES``):

- ``http``: a rotation, handoff by http (one run reaches current);
- ``manual``: a rotation, manual handoff (run, the administrator pastes, confirm);
- ``later``: a run after two rotations and the grace period, with an orphan of
  ours: the sweep removes the orphan, retire removes the previous credential
  (ours) and leaves the hand-made one (superseded);
- ``remind``: a run while a manual handoff waits and the old secret crossed the
  next alert threshold: the reminder;
- ``activity`` and ``activity-or-manual``: a rotation, manual handoff confirmed by
  Entra's records (``handoff.confirmation``; the monitor holds AuditLog.Read.All): the
  run, the administrator pastes, a user signs in through SmartTrace 11 minutes later
  (past the margin after the monitor's own last use), then the confirming run; only if
  the rotation still waits after it (a fault made the records unreadable) does a person
  confirm, which ``activity`` refuses while the records can be read. Both runs are
  fault points, the reads of Entra's records (Graph beta) among them.

``later`` and ``remind`` start from a state the protocol itself produced (run
once at collection, then copied into each fresh world); their fault points
start once the run has read its state (token, app, Key Vault versions): those
reads are the same calls as in ``http`` and ``manual``, whose faults are
proved there.

Fault kinds (``KINDS``):

- ``error``: HTTP 500 on the call and on the next matching calls of that run
  (its client-side retries, and what follows of that shape: 6 in all), so the
  call fails as the protocol sees it even when an SDK retries;
- ``timeout``: the service holds the request longer than the client's timeout
  and closes it unanswered; nothing changed;
- ``lost``: the service did the work and the answer is lost (``drop`` after);
- ``crash_before`` / ``crash_after``: the monitor process dies at that call,
  before the request reaches the service or after the service acted; every
  later request of that run is refused.

The rotation is due in these worlds (the hand-made secret has 25 days left;
rotation starts at 30), so re-runs are plain timer runs (no ``force``): the
first run is forced as the issue asks, which changes nothing when due. A
forced re-run could not be compared with anything: it would start a second
rotation when the first had finished before the crash.

What "the same end state" means (``end_shape``): the Key Vault stages as a
multiset, ``abandoned`` versions left out (a version whose credential was
removed, or a stale copy written by a retried store: they hold no live
credential and are never used again); which keyIds the earlier versions
name (the hand-made one); the current one is managed; SmartTrace holds the
current keyId and sign-in works; the app's credentials are exactly the
hand-made one and the current one (every other credential any run created
was removed); nothing in flight. Rotation ids, keyIds, version ids, dates and
the ``-2`` suffix of a credential re-created after a lost answer differ
between runs by nature and are not compared.

Speed (``speedups``): SDK retries happen but do not sleep; the sandbox
answers without Nagle's delay and reuses its token-signing keys; the token
probe retries without back-off; client read timeouts are 0.35 s, so a ``timeout``
costs about that (connecting keeps 5 s: a loaded machine is not a fault). None of it changes what any party does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import re
import socket
import tempfile
import threading
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sso_monitor.errors import MonitorError
from sso_monitor.models import is_ours, marker_name
from sso_monitor.rotation.protocol import MemoryNotifier, RotationDeps, RotationResult
from sso_monitor.rotation.state import AWAITING, CURRENT, IN_FLIGHT, PREVIOUS
from sso_sandbox import Sandbox
from sso_sandbox.http import SandboxServer
from sso_sandbox.replication import Replication
from sso_sandbox.signin_records import record_user_sign_in, records
from sso_sandbox.testing import standard_world
from sso_sandbox.world import GRAPH_RESOURCE
from tests.rotation.harness import Harness, config_for

MODES = ("http", "manual")
# Graph's reads lag its writes (docs/sandbox/fidelity.md): every world of the sweep and of
# the stateful test has a replication window, so a read right after a write may be stale.
REPLICATION = Replication(window_seconds=5.0, stale_probability=0.5, seed=20261206)


def realistic(world: Any) -> Any:
    """The world as a real tenant behaves: reads that lag writes (the throttling budget is
    on by default)."""
    world.set_replication(REPLICATION)
    return world


RUN_LIMIT = 6  # runs per scenario, the faulted one included
BETWEEN_RUNS_MINUTES = 15  # past the sweep window (10 min)
DUE_AFTER_DAYS = 40  # the hand-made secret ends 65 days after the world starts; rotation starts at 30 days left
CLIENT_TIMEOUT = 0.35
CONNECT_TIMEOUT = 5.0
TIMEOUT_HOLD = 0.5
ERROR_SPAN = 6  # an error fault fails this many consecutive matching calls
WRITES = ("POST", "PUT", "PATCH", "DELETE")
SIGN_IN_AFTER_PASTE_MINUTES = 11  # past ACTIVITY_MARGIN (10 min) after the verify step, the monitor's own last use


# ---------------------------------------------------------------- faults


KINDS: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "error": lambda k: [{"fault": "status", "status": 500, "nth": k + j} for j in range(ERROR_SPAN)],
    "timeout": lambda k: [{"fault": "timeout", "when": "before", "seconds": TIMEOUT_HOLD, "nth": k}],
    "lost": lambda k: [{"fault": "drop", "when": "after", "nth": k}],
    "crash_before": lambda k: [{"fault": "crash", "when": "before", "nth": k}],
    "crash_after": lambda k: [{"fault": "crash", "when": "after", "nth": k}],
}

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_VERSION = r"[0-9a-f]{32}"
_IDS = re.compile(f"{_GUID}|{_VERSION}")


def shape(path: str) -> str:
    """A request path with its ids (tenant, app, object, Key Vault version) as placeholders:
    the same call has the same shape in every fresh world."""
    return _IDS.sub(lambda m: "{guid}" if "-" in m.group(0) else "{version}", path)


def rule_path(path_shape: str) -> str:
    """A fault-plan path (anchored ``re:``) that matches exactly the paths of this shape."""
    parts = re.split(r"(\{guid\}|\{version\})", path_shape)
    body = "".join(_GUID if p == "{guid}" else _VERSION if p == "{version}" else re.escape(p) for p in parts)
    return f"re:^{body}$"


@dataclass(frozen=True)
class Call:
    """One external call of the protocol: the k-th call of its (service, method, shape)."""

    index: int
    service: str
    method: str
    shape: str
    k: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.service, self.method, self.shape, self.k)

    @property
    def label(self) -> str:
        last = [s for s in self.shape.split("/") if s][-1]
        return re.sub(r"\(.*\)", "", last).replace("{version}", "version")

    @property
    def writes(self) -> bool:
        return self.method in WRITES and self.service != "login"

    def rules(self, kind: str) -> list[dict[str, Any]]:
        return [{"service": self.service, "method": self.method, "path": rule_path(self.shape), **rule} for rule in KINDS[kind](self.k)]


def calls_of(records: list[Any]) -> list[Call]:
    seen: Counter[tuple[str, str, str]] = Counter()
    out = []
    for index, record in enumerate(r for r in records if not r.inner):
        key = (record.service, record.method, shape(record.path))
        seen[key] += 1
        out.append(Call(index, *key, seen[key]))
    return out


# ---------------------------------------------------------------- a world under test


def fast_config(sandbox: Sandbox, mode: str, confirmation: str = "manual"):
    config = config_for(sandbox, handoff=mode, confirmation=confirmation)
    # A held answer times out fast; opening a loopback connection keeps a generous limit, so
    # a busy machine (a 2-core CI runner) is not taken for a fault.
    return replace(config, network=replace(config.network, timeout_seconds=CLIENT_TIMEOUT, connect_timeout_seconds=CONNECT_TIMEOUT))


class FastHarness(Harness):
    """The harness, with a token probe whose retries do not sleep (nothing else differs)."""

    def deps(self, notifier: MemoryNotifier | None = None) -> RotationDeps:
        from sso_monitor.adapters.entra.probes import EntraTokenProbe

        deps = super().deps(notifier)
        deps.probe = EntraTokenProbe(self.config, retry_backoff_factor=0.0)
        return deps


class Scenario:
    """One world under test: runs passes of the protocol, checks the invariants after
    each step, and keeps every text the monitor produced (for the leak check)."""

    def __init__(self, sandbox: Sandbox, mode: str, lock_dir: Path, *, hand_made: str | None = None, confirmation: str = "manual") -> None:
        self.sandbox = sandbox
        self.mode = mode
        self.confirmation = confirmation  # a manual handoff's handoff.confirmation
        self.harness = FastHarness(sandbox, fast_config(sandbox, mode, confirmation), lock_dir)
        self.world = sandbox.world
        self.hand_made = (hand_made or self.world.facility("acme").key_id).lower()
        self.unmarked = self._unmarked()
        self.texts: list[str] = []
        self.steps: list[str] = []  # what happened, for failure messages
        self.run_starts: list[int] = []  # the world's request count as each run began

    # ---- acting

    def pass_(self, *, force: bool = False, confirm: bool = True) -> RotationResult:
        """One timer run; in manual mode (and ``confirm``), when a version awaits
        confirmation, the administrator pastes it into SmartTrace and confirms (in the
        activity modes: a user signs in, and the next run confirms)."""
        result = self.run(force=force)
        if confirm and self.awaiting() is not None:
            if self.sandbox.faults.crashed is not None:
                self.sandbox.restart_caller()  # the admin's confirm (the next run) is another process
            if self.confirmation == "manual":
                self.paste_and_confirm()
            else:
                self.paste_and_let_the_records_confirm()
        return result

    def run(self, *, force: bool = False, what: str = "run") -> RotationResult:
        if self.confirmation != "manual":
            records(self.world).budget.clear()  # the reporting limit runs on the real clock: these runs come faster than a timer's
        notifier = MemoryNotifier()
        self.run_starts.append(len(self.world.requests))
        result = self.harness.rotate(force=force, notifier=notifier)
        self.keep(result, notifier)
        self.steps.append(f"{what}{' (forced)' if force else ''}: {result.stage} {result.error or ''}".rstrip())
        self.check(f"after a {what}")
        return result

    def paste_and_let_the_records_confirm(self) -> None:
        """The activity modes: the administrator pastes, a user signs in through SmartTrace
        (Entra records the new keyId's use and a successful sign-in), the next run confirms
        from those records; if the rotation still waits (a fault made them unreadable), the
        person confirms (refused in ``activity`` mode while the records can be read)."""
        awaiting = self.awaiting()
        assert awaiting is not None
        self.harness.admin_pastes(awaiting)
        self.steps.append("admin pasted")
        self.check("after the administrator pasted the new secret")
        self.world.clock.advance(minutes=SIGN_IN_AFTER_PASTE_MINUTES)
        assert record_user_sign_in(self.world, "acme") == 0, f"a user's sign-in was refused: {self.describe()}"
        self.steps.append("a user signed in")
        self.run(what="confirming run")
        if self.awaiting() is not None:
            if self.sandbox.faults.crashed is not None:
                self.sandbox.restart_caller()
            self.confirm(awaiting)
            self.check("after the confirmation")

    def paste_and_confirm(self) -> None:
        awaiting = self.awaiting()
        assert awaiting is not None
        self.harness.admin_pastes(awaiting)
        self.steps.append("admin pasted")
        self.check("after the administrator pasted the new secret")
        self.confirm(awaiting)
        self.check("after the confirmation")

    def confirm(self, key_id: str) -> None:
        from sso_monitor.rotation.protocol import Rotator

        notifier = MemoryNotifier()
        try:
            result = asyncio.run(self.harness._with(lambda d: Rotator(self.harness.app, d, self.harness.settings).confirm(key_id, "test:admin"), notifier))
        except MonitorError as exc:
            self.texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]  # causes and contexts too
            self.steps.append(f"confirm raised {type(exc).__name__}")
            self.keep(None, notifier)
            return
        self.keep(result, notifier)
        self.steps.append(f"confirm: {result.stage}")

    def restart_later(self, **delta: float) -> None:
        self.sandbox.restart_caller()
        self.world.clock.advance(**(delta or {"minutes": BETWEEN_RUNS_MINUTES}))

    def converge(self, target: dict[str, Any] | None = None) -> int:
        """Re-run (the process restarted, 15 minutes later each time) until converged and,
        given a ``target`` end shape, in it; the number of runs after the first."""
        for rerun in range(RUN_LIMIT):
            if self.converged() and (target is None or self.end_shape() == target):
                return rerun
            if rerun == RUN_LIMIT - 1:
                break
            self.restart_later()
            self.pass_()
        raise AssertionError(f"not converged after {RUN_LIMIT} runs ({'; '.join(self.steps)}): {self.describe()}")

    def after_grace(self) -> RotationResult:
        """A run after the grace period: the previous credential is retired (here: the
        hand-made one is only marked superseded, never removed)."""
        self.restart_later(days=8)
        return self.pass_()

    def keep(self, result: RotationResult | None, notifier: MemoryNotifier) -> None:
        if result is not None:
            self.texts += [repr(result), result.error or "", *result.actions]
        self.texts += [repr(event) for event in notifier.events]

    # ---- looking

    def versions(self) -> list[Any]:
        return list(self.harness.vault_versions())

    def awaiting(self) -> str | None:
        return next((v.tags["keyId"] for v in reversed(self.versions()) if v.tags.get("stage") == AWAITING), None)

    def ours(self, credential: Any) -> bool:
        return is_ours(credential.display_name, self.harness.app.deployment_id)

    def marker_credentials(self) -> list[Any]:
        return [c for c in self.harness.credentials() if self.ours(c)]

    def _unmarked(self) -> set[tuple[str, str]]:
        return {
            (app.app_id, credential.key_id.lower())
            for tenant in self.world.tenants.values()
            for app in tenant.applications.values()
            for credential in app.password_credentials
            if not self.ours(credential)
        }

    def check(self, when: str) -> None:
        """The invariants that hold at every moment."""
        context = f"{when} ({'; '.join(self.steps)}): {self.describe()}"
        # SSO never breaks.
        assert self.world.sign_in_works("acme"), f"SSO broke {context}"
        # Only our own: no credential without the marker was removed, none was added.
        assert self._unmarked() == self.unmarked, f"a credential the monitor did not create changed {context}"
        assert self.hand_made in {c.key_id.lower() for c in self.harness.credentials()}
        # The credential SmartTrace holds is never the one waiting to be retired.
        holder = (self.world.facility("acme").key_id or "").lower()
        doomed = {v.tags.get("keyId", "").lower() for v in self.versions() if v.tags.get("stage") == PREVIOUS}
        assert holder not in doomed, f"the credential SmartTrace holds is tagged previous (retire would remove it) {context}"
        # One rotation at a time: the versions in flight are of one credential (a store
        # retried after a lost answer leaves an older copy; the next run abandons it).
        flights = {v.tags.get("keyId", "").lower() for v in self.versions() if v.tags.get("stage") in IN_FLIGHT}
        assert len(flights) <= 1, f"{len(flights)} rotations in flight {context}"

    def orphans(self) -> list[str]:
        """Our credentials that no live Key Vault version names (in flight, current or previous)."""
        live = {v.tags["keyId"].lower() for v in self.versions() if v.tags.get("keyId") and v.tags.get("stage") in (*IN_FLIGHT, CURRENT, PREVIOUS)}
        return [c.key_id for c in self.marker_credentials() if c.key_id.lower() not in live]

    def converged(self) -> bool:
        versions = self.versions()
        if any(v.tags.get("stage") in IN_FLIGHT for v in versions):
            return False
        current = [v for v in versions if v.tags.get("stage") == CURRENT]
        if len(current) != 1:
            return False
        key = current[0].tags["keyId"].lower()
        if key == self.hand_made or (self.world.facility("acme").key_id or "").lower() != key:
            return False  # the rotation was due: it is not over before a new secret is current
        known = {v.tags["keyId"].lower() for v in versions if v.tags.get("stage") in (CURRENT, PREVIOUS)}
        return all(c.key_id.lower() in known for c in self.marker_credentials())

    def end_shape(self) -> dict[str, Any]:
        """What an equivalent end state has in common with the uninterrupted one (see the
        module docstring): everything but ids, dates and names."""
        versions = self.versions()
        current = [v for v in versions if v.tags.get("stage") == CURRENT]
        current_key = current[0].tags["keyId"].lower() if len(current) == 1 else None
        credentials = {c.key_id.lower() for c in self.harness.credentials()}
        return {
            "stages": sorted(v.tags.get("stage") or "-" for v in versions if v.tags.get("stage") != "abandoned"),
            "in flight": sum(1 for v in versions if v.tags.get("stage") in IN_FLIGHT),
            "earlier versions hold the hand-made keyId": all(
                v.tags["keyId"].lower() == self.hand_made for v in versions if v.tags.get("stage") in (PREVIOUS, "superseded")
            ),
            "current is managed": bool(current) and current[0].tags.get("managed") == "true",
            "SmartTrace holds the current keyId": (self.world.facility("acme").key_id or "").lower() == current_key,
            "sign-in works": self.world.sign_in_works("acme"),
            "credentials": sorted("hand-made" if k == self.hand_made else "current" if k == current_key else "other" for k in credentials),
        }

    def describe(self) -> str:
        versions = ", ".join(f"{v.tags.get('stage')}:{v.tags.get('keyId', '')[:8]}" for v in self.versions())
        creds = ", ".join(f"{c.key_id[:8]}({'ours' if self.ours(c) else 'hand-made'})" for c in self.harness.credentials())
        holds = (self.world.facility("acme").key_id or "")[:8]
        return f"vault [{versions}]; app [{creds}]; SmartTrace holds {holds}"

    def leaks(self, extra: str = "") -> list[str]:
        """Every secret the sandbox issued that shows up in what the monitor said or stored
        (results, events, exceptions, the lease files, Key Vault tags, what SmartTrace
        recorded about pushes) or in ``extra``."""
        stored = [p.read_text(errors="replace") for p in self.harness.lock_dir.rglob("*") if p.is_file()] if self.harness.lock_dir.exists() else []
        tags = [repr(version.tags) for vault in self.world.vaults.values() for secret in vault.secrets.values() for version in secret.versions]
        handoffs = [repr(record) for facility in self.world.facilities.values() for record in facility.received]
        text = "\n".join([*self.texts, *stored, *tags, *handoffs, extra])
        return [secret for secret in self.world.issued_secrets if secret in text]


# ---------------------------------------------------------------- phases


def due(scenario: Scenario) -> None:
    scenario.world.clock.advance(days=DUE_AFTER_DAYS)


def later_runs(scenario: Scenario) -> None:
    """Two rotations, the grace period over, an orphan of ours an hour old, and a
    hand-made secret a person named like the monitor's (never to be touched)."""
    due(scenario)
    scenario.pass_(force=True)
    scenario.pass_(force=True)
    scenario.world.clock.advance(days=8)
    world = scenario.world
    now = world.now()
    app = world.find_app(scenario.harness.app.app_id)
    orphan = marker_name(scenario.harness.app.deployment_id, "20200101T000000Z-0badf00d")
    world.add_password(app, display_name=orphan, start=now - timedelta(hours=1), created=now - timedelta(hours=1))
    world.add_password(app, display_name="sso-monitor (prod)", start=now - timedelta(days=3), created=now - timedelta(days=3))
    scenario.unmarked = scenario._unmarked()  # the person's secret is theirs: it must stay


def due_with_records(scenario: Scenario) -> None:
    """Due, and the monitor may read Entra's records (AuditLog.Read.All; the standard
    tenant has P1/P2)."""
    tenant = scenario.harness.app.tenant_id
    monitor = scenario.world.tenant(tenant).sp_by_app_id(scenario.world.monitors[tenant.lower()])
    monitor.granted_roles[GRAPH_RESOURCE].append("AuditLog.Read.All")
    due(scenario)


def waiting_for_the_admin(scenario: Scenario) -> None:
    """A manual handoff waits; the old secret has since crossed the next threshold (14 days)."""
    due(scenario)
    scenario.pass_(force=True, confirm=False)
    assert scenario.awaiting() is not None
    scenario.world.clock.advance(days=12)


@dataclass(frozen=True)
class Phase:
    handoff: str
    prepare: Callable[[Scenario], None]
    force: bool = True  # the recorded pass is forced (as the issue asks; moot when due)
    confirm: bool = True  # the recorded pass includes the administrator's paste and confirm
    after_state_read: bool = False  # fault points start once the run has read its state
    confirmation: str = "manual"  # a manual handoff's handoff.confirmation
    # Fault points only in the pass's second run (the confirming run): the first run's are
    # the same calls through the same code as another phase's, proved there.
    confirming_run_only: bool = False


PHASES = {
    "http": Phase("http", due),
    "manual": Phase("manual", due),
    "later": Phase("http", later_runs, force=False, after_state_read=True),
    "remind": Phase("manual", waiting_for_the_admin, force=False, confirm=False, after_state_read=True),
    "activity": Phase("manual", due_with_records, confirmation="activity"),
    # Differs from activity only once the confirming run is over (a person's confirm is taken
    # while the records show nothing yet): the first run is activity's, call for call.
    "activity-or-manual": Phase("manual", due_with_records, confirmation="activity-or-manual", confirming_run_only=True),
}
_STATE = ("tenants", "vaults", "facilities", "webhooks", "monitors", "issued_secrets")


@dataclass(frozen=True)
class Start:
    """A world's state at a phase's start, to copy into fresh worlds."""

    state: dict[str, Any]
    now: datetime
    hand_made: str

    @classmethod
    def of(cls, scenario: Scenario) -> Start:
        world = scenario.world
        return cls(copy.deepcopy({name: getattr(world, name) for name in _STATE}), world.now(), scenario.hand_made)

    def enter(self, sandbox: Sandbox, phase: Phase, lock_dir: Path) -> Scenario:
        world = sandbox.world
        for name, value in copy.deepcopy(self.state).items():
            setattr(world, name, value)
        world.clock.advance(max(timedelta(0), self.now - world.now()))
        return Scenario(sandbox, phase.handoff, lock_dir, hand_made=self.hand_made, confirmation=phase.confirmation)


@dataclass(frozen=True)
class Baseline:
    start: Start | None  # None: a fresh standard world (then ``prepare``)
    calls: tuple[Call, ...]
    points: tuple[Call, ...]
    converged: dict[str, Any]
    after_grace: dict[str, Any]


def begin(name: str, sandbox: Sandbox, lock_dir: Path) -> Scenario:
    """A fresh world at the start of phase ``name``."""
    phase, base = PHASES[name], baseline(name)
    if base.start is not None:
        return base.start.enter(sandbox, phase, lock_dir)
    scenario = Scenario(sandbox, phase.handoff, lock_dir, confirmation=phase.confirmation)
    phase.prepare(scenario)
    return scenario


def _clear_vault_challenges() -> None:
    """azure-keyvault caches a vault's auth challenge per URL for the whole process; a
    port reused by a later sandbox would skip that world's first (401) request."""
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()


@functools.cache
def baseline(name: str) -> Baseline:
    """Phase ``name`` uninterrupted, in a fresh world: its calls and its end state."""
    phase = PHASES[name]
    world, _ = standard_world()
    realistic(world)
    with speedups(), Sandbox(world) as sandbox, tempfile.TemporaryDirectory() as tmp:
        scenario = Scenario(sandbox, phase.handoff, Path(tmp) / "locks", confirmation=phase.confirmation)
        phase.prepare(scenario)
        start = Start.of(scenario) if phase.after_state_read else None
        _clear_vault_challenges()  # as in each test's fresh world
        first = len(world.requests)
        scenario.pass_(force=phase.force, confirm=phase.confirm)
        calls = tuple(calls_of(list(world.requests)[first:]))
        second_run = len(calls_of(list(world.requests)[first : scenario.run_starts[1]])) if len(scenario.run_starts) > 1 else None
        scenario.converge()
        converged = scenario.end_shape()
        scenario.after_grace()
        after_grace = scenario.end_shape()
        stop_together(sandbox)
    first = 0
    if phase.after_state_read:  # after the run's last read of Key Vault's versions before it acts
        acts = next(i for i, c in enumerate(calls) if c.writes)
        first = 1 + max(i for i, c in enumerate(calls[:acts]) if (c.service, c.method, c.label) == ("vault", "GET", "versions"))
    if phase.confirming_run_only:
        assert second_run is not None, "the pass has no confirming run"
        first = second_run
    return Baseline(start, calls, calls[first:], converged, after_grace)


def sweep_points() -> list[tuple[str, Call, str]]:
    return [(name, call, kind) for name in PHASES for call in baseline(name).points for kind in KINDS]


def point_id(point: tuple[str, Call, str]) -> str:
    name, call, kind = point
    return f"{name}-{call.index:02d}-{call.service}-{call.method}-{call.label}-{call.k}-{kind}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "point" in metafunc.fixturenames:
        points = sweep_points()
        metafunc.parametrize("point", points, ids=[point_id(p) for p in points])


# ---------------------------------------------------------------- fixtures


@contextlib.contextmanager
def speedups() -> Iterator[None]:
    """What makes ~200 fresh worlds affordable; none of it changes what any party does.

    - SDK retries keep happening but without their sleeps (azure-core's back-off;
      kiota's when Graph sends no Retry-After);
    - the sandbox's answers go out without Nagle's delay (TCP_NODELAY): it writes an
      answer's head and body in two sends, and the client's delayed ACK held the
      body ~40 ms, on every request;
    - the sandbox's token-signing keys come from a small pool instead of two fresh
      RSA-2048 keys per sandbox (~0.2 s); the two keys of one sandbox still differ;
    - a fresh Key Vault challenge cache per world: azure-keyvault caches a vault's
      auth challenge per URL for the whole process, and a port reused by a later
      sandbox would skip that world's first (401) request."""
    from azure.core.pipeline.policies._retry import RetryPolicyBase
    from kiota_http.middleware import RetryHandler

    from sso_sandbox import tokens

    original_delay = RetryHandler.get_delay_time

    def no_backoff(self: Any, retry_count: int, response: Any = None, delay: float = 3.0) -> float:
        return original_delay(self, retry_count, response, delay) if response is not None and response.headers.get("retry-after") else 0.0

    def pooled_key(**_: Any) -> Any:
        _KEYS.rotate(1)
        return _KEYS[0]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RetryPolicyBase, "get_backoff_time", lambda self, settings: 0)
        patch.setattr(RetryHandler, "get_delay_time", no_backoff)
        patch.setattr(SandboxServer, "finish_request", _finish_request_without_nagle)
        patch.setattr(tokens, "rsa", SimpleNamespace(generate_private_key=pooled_key))
        _clear_vault_challenges()
        yield


def _rsa_keys() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return deque(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))


_KEYS = _rsa_keys()
_finish_request = SandboxServer.finish_request


def _finish_request_without_nagle(self: SandboxServer, request: Any, client_address: Any) -> None:
    try:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    _finish_request(self, request, client_address)


def stop_together(sandbox: Sandbox) -> None:
    """Sandbox.stop shuts its servers down one after another, each waiting up to its poll
    interval; ask them all at once first (then stop finds them stopped)."""
    threads = [threading.Thread(target=server.shutdown) for server in sandbox._servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@contextlib.contextmanager
def running(world: Any) -> Iterator[Sandbox]:
    """``Sandbox(world)``, started, with ``speedups``, reads lagging writes."""
    with speedups(), Sandbox(realistic(world)) as started:
        yield started
        stop_together(started)


@pytest.fixture
def sandbox(standard: tuple) -> Iterator[Sandbox]:
    """tests/conftest.py's fixture (a fresh standard world, started), with ``speedups``."""
    with running(standard[0]) as started:
        yield started


pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


# ---------------------------------------------------------------- the sweep


def test_the_uninterrupted_runs_are_the_reference(capsys: pytest.CaptureFixture[str]):
    """What the sweep is measured against, and how many points it covers."""
    http, manual, later, remind, activity, either = (baseline(name) for name in PHASES)
    for base in (http, manual, activity, either):
        assert base.converged["stages"] == ["current", "previous"]
        assert base.converged["credentials"] == ["current", "hand-made"]
        assert base.after_grace["stages"] == ["current", "superseded"]
    assert {c.service for c in http.calls} == {"login", "graph", "vault", "smarttrace"}
    assert {c.service for c in manual.calls} == {"login", "graph", "vault"}
    assert [c.label for c in later.points if c.writes] == ["removePassword", "version", "removePassword", "version"]
    assert later.converged["stages"] == ["current", "retired", "superseded"]
    assert [c.label for c in remind.points if c.writes] == ["version"]
    for base in (activity, either):  # the first run, then the confirming run: Entra's records read in both, no person's confirm
        assert {c.service for c in base.calls} == {"login", "graph", "vault"}
        assert sum(1 for c in base.calls if "appCredentialSignInActivities" in c.shape) == 2
        assert sum(1 for c in base.calls if "auditLogs/signIns" in c.shape) == 1
    assert [c.key for c in either.calls] == [c.key for c in activity.calls]  # the same calls: activity's first-run points stand for both
    assert len(either.points) < len(activity.points) and either.points == either.calls[-len(either.points) :]
    assert any("auditLogs/signIns" in c.shape for c in either.points)  # the confirming run's reads are among them
    lines = [f"{name}: {len(baseline(name).points)} fault points x {len(KINDS)} kinds = {len(baseline(name).points) * len(KINDS)} scenarios" for name in PHASES]
    lines.append(f"total: {len(sweep_points())} scenarios")
    with capsys.disabled():
        print("\nfault sweep: " + "; ".join(lines))


def test_fault_at_every_call(point: tuple[str, Call, str], sandbox: Sandbox, tmp_path: Path):
    name, call, kind = point
    base = baseline(name)
    scenario = begin(name, sandbox, tmp_path / "locks")
    for rule in call.rules(kind):
        sandbox.faults.add(**rule)
    first = len(sandbox.world.requests)

    scenario.pass_(force=PHASES[name].force, confirm=PHASES[name].confirm)

    # The fault hit the call it was meant for: the same calls before it (records are
    # kept when an answer ends, so a held one may come later), then this one.
    seen = calls_of(list(sandbox.world.requests)[first:])
    assert [c.key for c in seen[: call.index]] == [c.key for c in base.calls[: call.index]]
    fired = sandbox.faults.log[0]
    assert (fired["service"], fired["method"], shape(fired["path"])) == (call.service, call.method, call.shape)
    # The re-runs happen in a healthy world: the process restarts, the fault is over.
    sandbox.faults.clear()

    scenario.converge(base.converged)
    scenario.after_grace()
    assert scenario.end_shape() == base.after_grace, scenario.describe()
    assert not scenario.leaks(), "a secret value reached a result, an event, an exception, a tag or the lease files"


# ---------------------------------------------------------------- what the sweep found


def test_a_retried_store_leaves_a_stale_copy_that_is_never_taken_up():
    """Found by the sweep (``*-09-vault-PUT-smarttrace-acme-1-lost``): the store's PUT
    reached Key Vault, its answer was lost, azure-core sent it again: two ``pending``
    versions of one keyId. The run finished the newer one; the next run took the older
    one up as a rotation in flight, finished it too (the live version became
    ``previous``), and after the grace period retire removed the credential SmartTrace
    held: sign-in broke. Now the older copy is stale (whatever order the versions are
    listed in), is never in flight, and the next run abandons it."""
    from sso_monitor.rotation.ports import VaultVersion
    from sso_monitor.rotation.state import in_flight, stale_copies

    hand_made = VaultVersion("h", {"stage": "previous", "keyId": "H"})
    older = VaultVersion("a", {"stage": "pending", "keyId": "X"})
    newer = VaultVersion("b", {"stage": "current", "keyId": "X"})
    for versions in ([hand_made, older, newer], [hand_made, newer, older]):
        assert stale_copies(versions) == [older] and in_flight(versions) is None
    twin = VaultVersion("c", {"stage": "pending", "keyId": "X"})
    assert stale_copies([older, twin]) == [older] and in_flight([older, twin]) is twin
    dead = VaultVersion("d", {"stage": "abandoned", "keyId": "X"})
    live = VaultVersion("e", {"stage": "awaiting-confirmation", "keyId": "X"})
    assert stale_copies([dead, live]) == [] and in_flight([dead, live]) is live


def test_retire_never_removes_the_credential_smarttrace_holds(sandbox: Sandbox, tmp_path: Path):
    """A state the bug above left behind: a ``previous`` version naming the current keyId.
    Retire leaves that credential alone (superseded), whoever wrote the tags."""
    scenario = Scenario(sandbox, "http", tmp_path / "locks")
    due(scenario)
    scenario.pass_(force=True)
    assert scenario.converged()
    current = next(v for v in scenario.versions() if v.tags.get("stage") == CURRENT)
    vault = next(iter(sandbox.world.vaults.values()))
    since = sandbox.world.now()
    sandbox.world.set_secret(vault, "smarttrace-acme", current.value, tags={**current.tags, "stage": PREVIOUS, "previousSince": f"{since:%Y-%m-%dT%H:%M:%SZ}"})
    sandbox.world.set_secret(vault, "smarttrace-acme", current.value, tags=dict(current.tags))  # and current again, newest
    result = scenario.after_grace()
    assert result.error is None
    assert current.tags["keyId"].lower() in {c.key_id.lower() for c in scenario.harness.credentials()}
    assert sandbox.world.sign_in_works("acme")
    assert any("a newer version holds the same keyId" in line for line in result.actions)
