"""The unattended run: which apps need rotation work, and one app's work.

The timer checks every app, decides here which need a worker run and why
(``work_due``, pure, from the check's view of the secret in use and the app's
Key Vault version tags), and queues one message per such app. The
queue-triggered worker runs the rotation protocol for one app under its lease
(``run_work``). The protocol decides again under the lease before it acts, so
a message that went stale in the queue, or arrived twice, is harmless.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sso_monitor.config import AppConfig, MonitorConfig, RotationPolicy
from sso_monitor.errors import ExternalError, LeaseUnavailable, MonitorError
from sso_monitor.rotation.ports import VaultVersion
from sso_monitor.rotation.state import AWAITING, in_flight, retirable, rotation_due
from sso_monitor.checks.run import AppResult, CheckReport

log = logging.getLogger(__name__)

WORK_QUEUE = "sso-monitor-work"
POISON_QUEUE = f"{WORK_QUEUE}-poison"  # the Functions host's name for it
# Why an app gets a worker run, in the order work_due looks for them.
RESUME, ROTATE, RETIRE, SWEEP = "resume", "rotate", "retire", "sweep"
REASONS = (RESUME, ROTATE, RETIRE, SWEEP)
# A rotation that has not moved for this long is stuck (a worker run takes minutes;
# waiting for the administrator's confirmation is not stuck: it has reminders).
STUCK_AFTER = timedelta(hours=24)


class ScheduledRunFailed(MonitorError):
    """The timer's run finished, but part of it failed (reported once, at the end)."""


class WorkFailed(MonitorError):
    """One app's work failed on an external call: raised so the platform retries the message."""


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True)
class AppState:
    """What the timer knows of one app: from its check, and its Key Vault version tags."""

    secret_known: bool  # the check read the registration (False: its secret's end is unknown)
    secret_end: datetime | None = None  # the end of the secret in use; None with secret_known: it has none
    versions: tuple[VaultVersion, ...] = ()
    orphans: int = 0  # credentials with our marker that Key Vault does not know


def work_due(policy: RotationPolicy, state: AppState, now: datetime) -> str | None:
    """The reason the app needs a worker run now, or None."""
    versions = list(state.versions)
    if in_flight(versions) is not None:
        return RESUME  # verify, remind or finish: a rotation left mid-way
    # Unknown is not due: a failed read would otherwise look like "no secret" and
    # queue work bound to fail the same way; the check's findings report it.
    if state.secret_known and policy.mode != "notify-only" and rotation_due(state.secret_end, now, policy.rotate_before_days):
        return ROTATE
    if retirable(versions, now, policy.grace_days):
        return RETIRE
    if state.orphans:
        return SWEEP
    return None


def stuck_rotation(versions: Sequence[VaultVersion], now: datetime) -> VaultVersion | None:
    """The in-flight version of a rotation that has not moved for STUCK_AFTER, if any."""
    flight = in_flight(list(versions))
    if flight is None or flight.stage == AWAITING or flight.created is None:
        return None
    return flight if now - flight.created > STUCK_AFTER else None


def app_state(result: AppResult, versions: Sequence[VaultVersion]) -> AppState:
    # A registration that was read has a secret in use (whose end the check gives)
    # or none at all (SECRET_MISSING); anything else means the read failed.
    known = result.secret_expires is not None or any(f.code == "SECRET_MISSING" for f in result.findings)
    return AppState(
        secret_known=known,
        secret_end=result.secret_expires,
        versions=tuple(versions),
        orphans=sum(1 for f in result.findings if f.code == "ORPHAN_CREDENTIAL"),
    )


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class WorkItem:
    facility: str
    reason: str

    def message(self) -> str:
        return json.dumps({"facility": self.facility, "reason": self.reason})


def parse_work(body: bytes) -> WorkItem:
    """The queue message's JSON; ValueError says what is wrong (never echoing the body)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    facility, reason = data.get("facility"), data.get("reason")
    if not isinstance(facility, str) or not facility:
        raise ValueError("no facility")
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}")
    return WorkItem(facility, reason)


# ---------------------------------------------------------------- the timer's run


@dataclass
class ScheduledPlan:
    report: CheckReport
    work: list[WorkItem] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # what went wrong, per app or tenant (ids only)
    stuck: list[Any] = field(default_factory=list)  # rotation.RotationEvent("stuck"), for the alerts
    versions: dict[str, list[VaultVersion]] = field(default_factory=dict)  # per facility, as read (the stored status's stages)


async def plan_work(config: MonitorConfig, report: CheckReport, vault: Any, now: datetime) -> ScheduledPlan:
    """From a check report and each app's Key Vault versions (``vault.versions``), the work to queue."""
    plan = ScheduledPlan(report=report, failures=list(report.errors))
    gate = asyncio.Semaphore(config.network.concurrency)

    async def one(result: AppResult) -> WorkItem | None:
        app = result.app
        async with gate:
            try:
                versions = await vault.versions(app.vault_secret_name)
            except ExternalError as exc:
                plan.failures.append(f"{app.facility}: Key Vault versions unreadable: {exc}")
                return None
        plan.versions[app.facility] = list(versions)
        stuck = stuck_rotation(versions, now)
        if stuck is not None:
            from sso_monitor.rotation.protocol import RotationEvent

            since = stuck.created.strftime("%Y-%m-%d %H:%M") if stuck.created else "?"
            plan.stuck.append(RotationEvent("stuck", app.facility, app.tenant_id, app.app_id, f"The rotation of {app.facility} has been at stage {stuck.stage} since {since} UTC; the worker's runs keep failing. See the monitor's log.", stuck.key_id))
        reason = work_due(app.rotation, app_state(result, versions), now)
        return WorkItem(app.facility, reason) if reason else None

    found = await asyncio.gather(*(one(result) for result in report.results))
    plan.work = [item for item in found if item is not None]
    return plan


async def scheduled_check(config: MonitorConfig, now: datetime) -> ScheduledPlan:
    """Check every app, then decide which need a worker run."""
    from sso_monitor.checks.run import run_checks
    from sso_monitor.wiring import build_adapters, build_rotation_deps

    adapters = build_adapters(config)
    try:
        report = await run_checks(config, adapters, now)
    finally:
        await adapters.aclose()
    deps = build_rotation_deps(config)
    try:
        return await plan_work(config, report, deps.vault, now)
    finally:
        await _close(deps)


def alert_summary(plan: ScheduledPlan, queued: Sequence[WorkItem]) -> str:
    """One line: app counts per status, the apps queued, the apps not ok (finding codes), failures."""
    results = plan.report.results
    counts = Counter(r.status for r in results)
    parts = [f"{len(results)} app{'' if len(results) == 1 else 's'}: " + ", ".join(f"{counts[s]} {s}" for s in ("ok", "warning", "critical", "error") if counts[s])]
    parts.append(f"queued {len(queued)}" + (": " + ", ".join(f"{w.facility} ({w.reason})" for w in queued) if queued else ""))
    attention = [f"{r.app.facility} [{' '.join(sorted({f.code for f in r.findings if f.severity.rank}))}]" for r in results if r.status != "ok"]
    if attention:
        parts.append("attention: " + ", ".join(attention))
    if plan.failures:
        parts.append(f"{len(plan.failures)} failed: " + "; ".join(plan.failures))
    return "; ".join(parts)


async def alert_after_run(config: MonitorConfig, plan: ScheduledPlan, now: datetime, alerting: Any = None) -> list[str]:
    """The timer's alerts: findings against what was said, stuck rotations, the run's
    failures. Answers the delivery problems (the outbox keeps those notices)."""

    async def send(a: Any) -> list[str]:
        checked = await a.after_check(plan.report.results, now, plan.failures)
        stuck = await a.rotation_events(plan.stuck, now)
        return checked.problems() + stuck.problems()

    return await _alert(config, alerting, send)


async def alert_events(config: MonitorConfig, events: Sequence[Any], now: datetime, alerting: Any = None) -> list[str]:
    """A worker's or an action's rotation events to the channels; answers the delivery problems."""

    async def send(a: Any) -> list[str]:
        return (await a.rotation_events(events, now)).problems()

    return await _alert(config, alerting, send) if events else []


async def alert_failures(config: MonitorConfig, messages: Sequence[str], now: datetime, alerting: Any = None) -> list[str]:
    """The monitor's own failures (ids and reasons only) to the operations route."""

    async def send(a: Any) -> list[str]:
        return (await a.monitor_failures(messages, now)).problems()

    return await _alert(config, alerting, send) if messages else []


async def _alert(config: MonitorConfig, alerting: Any, send: Any) -> list[str]:
    """Run ``send`` on the given alerting, or on one built (and closed) here."""
    if alerting is not None:
        return await send(alerting)
    from sso_monitor.wiring import opened_alerting

    async with opened_alerting(config) as built:
        return await send(built)


# ---------------------------------------------------------------- the worker's run


@dataclass
class WorkOutcome:
    result: Any  # rotation.RotationResult
    events: list[Any]  # rotation.RotationEvent: the worker sends them to the alert channels
    failure: BaseException | None = None  # what stopped the run, if anything

    @property
    def lease_held(self) -> bool:
        return isinstance(self.failure, LeaseUnavailable)

    @property
    def retry(self) -> bool:
        """A Graph, Key Vault, Entra or SmartTrace call failed: a later try may succeed.
        A refusal of the protocol (RotationFailed) would fail again the same way."""
        return isinstance(self.failure, ExternalError)


class WatchedLease:
    """The rotation's lease, watched. Rotator.run turns a failure into text, but the
    worker must tell a failed external call (retry) from a refusal (do not) and from
    a lease held elsewhere (another worker has the app); the exception that ends the
    run passes through the lease on its way out, so it is seen here."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ended_by: BaseException | None = None

    @asynccontextmanager
    async def hold(self, key: str, **options: Any) -> AsyncIterator[Any]:
        try:
            async with self.inner.hold(key, **options) as held:
                yield held
        except BaseException as exc:  # recorded, never swallowed
            self.ended_by = exc
            raise

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


async def run_work(config: MonitorConfig, app: AppConfig, lease: Any, *, clock: Any = None) -> WorkOutcome:
    """One run of the rotation protocol for one app, under ``lease`` (the blob lease in Azure)."""
    from sso_monitor.cli.rotate import settings_from
    from sso_monitor.rotation.protocol import MemoryNotifier, Rotator
    from sso_monitor.wiring import build_rotation_deps

    watched = WatchedLease(lease)
    notifier = MemoryNotifier()
    deps = build_rotation_deps(config, notifier=notifier, lease=watched, clock=clock)
    try:
        result = await Rotator(app, deps, settings_from(config)).run()
    finally:
        await _close(deps)
        await watched.aclose()
    return WorkOutcome(result, notifier.events, watched.ended_by)


async def _close(deps: Any) -> None:
    await deps.aclose()
