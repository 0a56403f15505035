"""The application service: what the command line, the admin API and the timer's and
queue's functions do, each in one call.

Entry points (sso_monitor/cli/, sso_monitor/functions/) parse their input, call one
method of ``MonitorService`` and map the result; nothing here knows argv or HTTP.
Underneath are the core (checks/, rotation/, alerts/: decisions and protocols on
ports) and the adapters that ``wiring`` builds. Every session of adapters is opened
and closed here, once: ``rotation_session`` and ``alerting``.

Every JSON answer (the CLI's --json, the admin API, the stored status) is shaped here
too, by one serializer (``to_json``): camelCase keys, ISO 8601 UTC times.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path, PurePath
from types import SimpleNamespace
from typing import Any

from sso_monitor.adapters import telemetry
from sso_monitor.alerts.decisions import snooze_problem
from sso_monitor.alerts.render import handoff_steps
from sso_monitor.alerts.service import Alerting
from sso_monitor.checks.findings import CODES, Finding, with_real_names
from sso_monitor.checks.run import AppResult, CheckReport, Progress, run_checks
from sso_monitor.config import AppConfig, MonitorConfig
from sso_monitor.errors import ExternalError, LeaseUnavailable, MonitorError
from sso_monitor.models import SecretValue, days_until, stamp
from sso_monitor.rotation.ports import Lease, VaultVersion, WorkItem
from sso_monitor.rotation.protocol import (
    Clock,
    MemoryNotifier,
    RotationDeps,
    RotationEvent,
    RotationResult,
    RotationSettings,
    RotationStatus,
    Rotator,
    SystemClock,
    adopt,
    rotation_status,
)
from sso_monitor.rotation.schedule import app_state, stuck_rotation, work_due
from sso_monitor.wiring import build_adapters, build_lease, build_rotation_deps, enqueue_work, opened_alerting

log = logging.getLogger(__name__)


class UnknownFacility(MonitorError):
    """No app of that facility in the configuration."""


class InvalidSnooze(MonitorError):
    """A snooze that breaks the one rule (alerts.decisions.snooze_problem)."""


class ScheduledRunFailed(MonitorError):
    """The timer's run finished, but part of it failed (reported once, at the end)."""


class WorkFailed(MonitorError):
    """One app's work failed on an external call: raised so the platform retries the message."""


@dataclass
class ScheduledPlan:
    """The timer's run: the check's report, the work to queue, and what went wrong."""

    report: CheckReport
    work: list[WorkItem] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # what went wrong, per app or tenant (ids only)
    stuck: list[RotationEvent] = field(default_factory=list)  # "stuck" events, for the alerts
    versions: dict[str, list[VaultVersion]] = field(default_factory=dict)  # per facility, as read (the stored status's stages)


@dataclass
class Outcome:
    """A rotation run (rotate, confirm, push, adopt, a worker's run): its result and the
    events it raised for the alerts."""

    result: RotationResult
    events: list[RotationEvent] = field(default_factory=list)

    @property
    def lease_held(self) -> bool:
        """Another run has the app (its lease was held, or lost to it)."""
        return isinstance(self.result.failure, LeaseUnavailable)

    @property
    def retry(self) -> bool:
        """A Graph, Key Vault, Entra or SmartTrace call failed: a later try may succeed.
        A refusal of the protocol (RotationFailed) would fail again the same way."""
        return isinstance(self.result.failure, ExternalError)


class MonitorService:
    """One configuration's operations. ``lease``: the rotations' lease (default: the
    Function App's blob lease when storage is configured, else a local one);
    ``alert_state``: the CLI's local alert state file (default: the Function App's
    Table storage, else memory)."""

    def __init__(
        self,
        config: MonitorConfig,
        *,
        clock: Clock | None = None,
        lease: Lease | None = None,
        alert_state: Path | None = None,
        build_deps: Callable[..., RotationDeps] = build_rotation_deps,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._lease = lease
        self.alert_state = alert_state
        self._build_deps = build_deps  # the factory of the rotation's adapters (tests give the sandbox's)
        telemetry.configure()  # to Application Insights when its connection string is set

    def app(self, facility: str) -> AppConfig:
        app = self.config.app(facility)
        if app is None:
            raise UnknownFacility(f"no app for facility {facility!r} in the configuration")
        return app

    @property
    def settings(self) -> RotationSettings:
        return RotationSettings.from_config(self.config)

    # ---- sessions: every adapter opened here is closed here

    def lease(self) -> Lease:
        if self._lease is None:
            self._lease = build_lease(self.config)
        return self._lease

    @asynccontextmanager
    async def rotation_session(self, *, lease: Lease | None = None) -> AsyncIterator[RotationDeps]:
        """The rotation's adapters (and a notifier that keeps its events), closed on the way out."""
        deps = self._build_deps(self.config, notifier=MemoryNotifier(), lease=lease or self.lease(), clock=self.clock)
        try:
            yield deps
        finally:
            await deps.aclose()

    @asynccontextmanager
    async def alerting(self) -> AsyncIterator[Alerting]:
        async with opened_alerting(self.config, local_path=self.alert_state) as alerting:
            yield alerting

    async def aclose(self) -> None:
        close = getattr(self._lease, "aclose", None)
        if close is not None:
            await close()

    # ---- checks

    async def check(self, now: datetime, apps: Sequence[AppConfig] | None = None, progress: Progress | None = None) -> CheckReport:
        """Check ``apps`` (default: every app) now, live."""
        adapters = build_adapters(self.config)
        try:
            report = await run_checks(self.config, adapters, now, apps=apps, progress=progress)
        finally:
            await adapters.aclose()
        # Every output of a check (the CLI, the API, the stored status, the alerts) comes
        # from here: each fix names this app's facility, URLs and ids, not placeholders.
        for result in report.results:
            result.findings = [with_real_names(f, result.app, self.config.vault_url) for f in result.findings]
        _record_check(report, now)
        return report

    async def status_document(self, now: datetime, apps: Sequence[AppConfig]) -> dict[str, Any]:
        """A live check of ``apps`` with each one's rotation stage, as the status document."""
        report = await self.check(now, apps)
        statuses, failures = await self.rotation_statuses(apps)
        for facility, problem in failures:
            log.warning("status %s: rotation stage unknown: %s", facility, problem)
        document = build_status(report, {s.facility: s for s in statuses}, now)
        document["report"] = check_summary(report)
        return document

    async def queue_work(self, work: list[WorkItem]) -> tuple[list[WorkItem], list[str]]:
        """Queue rotation work for the worker: what was sent, and the failures (one failed
        send does not stop the others)."""
        return await asyncio.to_thread(enqueue_work, self.config, work)

    async def scheduled_check(self, now: datetime) -> ScheduledPlan:
        """The timer's run: check every app, then decide which need a worker run."""
        report = await self.check(now)
        async with self.rotation_session() as deps:
            return await plan_work(self.config, report, deps.vault, now)

    # ---- rotation

    async def rotate(self, app: AppConfig, *, dry_run: bool = False, force: bool = False, settings: RotationSettings | None = None) -> Outcome:
        async with self.rotation_session() as deps:
            result = self._named(app, await Rotator(app, deps, settings or self.settings, dry_run=dry_run, force=force).run())
            if not dry_run:
                _record_rotation(app, result)
            return Outcome(result, _events(deps))

    async def confirm(self, app: AppConfig, key_id: str, who: str) -> Outcome:
        async with self.rotation_session() as deps:
            result = self._named(app, await Rotator(app, deps, self.settings).confirm(key_id, who))
            _record_rotation(app, result)
            return Outcome(result, _events(deps))

    def _named(self, app: AppConfig, result: RotationResult) -> RotationResult:
        """The run's findings with fixes naming this app (its facility, ids), as a check's are."""
        result.findings = [with_real_names(f, app, self.config.vault_url) for f in result.findings]
        return result

    async def push(self, app: AppConfig, who: str, *, dry_run: bool = False) -> Outcome:
        async with self.rotation_session() as deps:
            result = await Rotator(app, deps, self.settings, dry_run=dry_run).repush(who)
            if not dry_run:
                _record_rotation(app, result)
            return Outcome(result, _events(deps))

    async def adopt(self, app: AppConfig, value: SecretValue | None, key_id: str | None) -> Outcome:
        async with self.rotation_session() as deps:
            result = await adopt(app, deps, value, key_id)
            _record_rotation(app, result)
            return Outcome(result, _events(deps))

    async def rotation_statuses(self, apps: Sequence[AppConfig]) -> tuple[list[RotationStatus], list[tuple[str, str]]]:
        """Each app's stage from its Key Vault tags (reads only); the apps whose could not be read."""
        statuses: list[RotationStatus] = []
        failures: list[tuple[str, str]] = []
        async with self.rotation_session() as deps:
            for app in apps:
                try:
                    statuses.append(await rotation_status(app, deps))
                except ExternalError as exc:  # one vault's answer does not stop the others
                    failures.append((app.facility, str(exc)))
        return statuses, failures

    async def work(self, item: WorkItem) -> Outcome:
        """A worker's run for one queued app: the protocol, under the app's lease."""
        return await self.rotate(self.app(item.facility))

    # ---- alerts

    async def alert_check(self, report: CheckReport, now: datetime, failures: Sequence[str] = (), stuck: Sequence[RotationEvent] = ()) -> list[str]:
        """Findings against what was said, stuck rotations, the run's failures; answers the
        delivery problems (the outbox keeps those notices)."""
        async with self.alerting() as alerting:
            checked = await alerting.after_check(report.results, now, failures)
            said = await alerting.rotation_events(stuck, now)
            return checked.problems() + said.problems()

    async def alert_events(self, events: Sequence[RotationEvent], now: datetime) -> list[str]:
        """A rotation's events to the channels; answers the delivery problems."""
        if not events:
            return []
        async with self.alerting() as alerting:
            return (await alerting.rotation_events(events, now)).problems()

    async def alert_failures(self, messages: Sequence[str], now: datetime) -> list[str]:
        """The monitor's own failures (ids and reasons only) to the operations route."""
        if not messages:
            return []
        async with self.alerting() as alerting:
            return (await alerting.monitor_failures(messages, now)).problems()

    async def snooze(self, app: AppConfig, code: str, until: datetime, who: str, reason: str, now: datetime) -> Any:
        """Silence one finding's alerts until ``until`` (the one rule for the CLI and the API)."""
        if code not in CODES:
            raise InvalidSnooze(f"unknown finding code {code!r} (see docs/checks.md)")
        problem = snooze_problem(until, now, reason)
        if problem is not None:
            raise InvalidSnooze(problem)
        async with self.alerting() as alerting:
            return await alerting.snooze(app.facility, code, until, who, reason)


def _events(deps: RotationDeps) -> list[RotationEvent]:
    return list(getattr(deps.notifier, "events", []))


def _record_check(report: CheckReport, now: datetime) -> None:
    """Each app's check as metrics and log dimensions (adapters/telemetry.py)."""
    for result in report.results:
        app, expires = result.app, result.secret_expires
        days_left = days_until(expires, now) if expires else None
        telemetry.record_check(app.facility, app.tenant_id, app.app_id, days_left=days_left, status=result.status, findings=result.findings)


def _record_rotation(app: AppConfig, result: RotationResult) -> None:
    """A rotation run (not a dry run) as metrics and log dimensions (adapters/telemetry.py)."""
    telemetry.record_rotation(app.facility, app.tenant_id, app.app_id, stage=result.stage, failed=result.failure is not None, findings=result.findings)


# ---------------------------------------------------------------- the timer's plan


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
            since = stuck.created.strftime("%Y-%m-%d %H:%M") if stuck.created else "?"
            plan.stuck.append(
                RotationEvent(
                    "stuck",
                    app.facility,
                    app.tenant_id,
                    app.app_id,
                    f"The rotation of {app.facility} has been at stage {stuck.stage} since {since} UTC; the worker's runs keep failing. See the monitor's log.",
                    stuck.key_id,
                )
            )
        reason = work_due(app.rotation, app_state(result, versions), now)
        return WorkItem(app.facility, reason) if reason else None

    found = await asyncio.gather(*(one(result) for result in report.results))
    plan.work = [item for item in found if item is not None]
    return plan


def alert_summary(plan: ScheduledPlan, queued: Sequence[WorkItem]) -> str:
    """One line: app counts per status, the apps queued, the apps not ok (finding codes), failures."""
    results = plan.report.results
    counts = Counter(r.status for r in results)
    parts = [
        f"{len(results)} app{'' if len(results) == 1 else 's'}: " + ", ".join(f"{counts[s]} {s}" for s in ("ok", "warning", "critical", "error") if counts[s])
    ]
    parts.append(f"queued {len(queued)}" + (": " + ", ".join(f"{w.facility} ({w.reason})" for w in queued) if queued else ""))
    attention = [f"{r.app.facility} [{' '.join(sorted({f.code for f in r.findings if f.severity.rank}))}]" for r in results if r.status != "ok"]
    if attention:
        parts.append("attention: " + ", ".join(attention))
    if plan.failures:
        parts.append(f"{len(plan.failures)} failed: " + "; ".join(plan.failures))
    return "; ".join(parts)


async def run_status_document(report: CheckReport, versions: Mapping[str, Sequence[VaultVersion]], now: datetime) -> dict[str, Any]:
    """The status document of a scheduled run: its check report, and each app's rotation
    stage from the Key Vault versions the run read (no read of its own)."""
    stages = {}
    for result in report.results:
        app = result.app
        if app.facility in versions:
            known = SimpleNamespace(vault=_KnownVersions(versions[app.facility]))
            stages[app.facility] = await rotation_status(app, known)  # type: ignore[arg-type]
    document = build_status(report, stages, now)
    document["report"] = check_summary(report)
    return document


class _KnownVersions:
    """A vault that answers ``versions`` with what was already read."""

    def __init__(self, versions: Sequence[VaultVersion]) -> None:
        self._versions = list(versions)

    async def versions(self, name: str) -> list[VaultVersion]:
        return list(self._versions)


# ---- the status document: check results, secret expiry and rotation stage per app


def build_status(report: CheckReport, rotations: Mapping[str, RotationStatus], now: datetime) -> dict[str, Any]:
    apps: list[dict[str, Any]] = []
    for result in sorted(report.results, key=lambda r: r.app.facility):
        rotation = rotations.get(result.app.facility)
        apps.append(
            {
                **app_json(result, now),
                "rotation": {
                    "stage": rotation.stage if rotation else "unknown",
                    "currentKeyId": rotation.current_key_id if rotation else None,
                    "inFlightKeyId": rotation.in_flight_key_id if rotation else None,
                    "retiring": list(rotation.retiring) if rotation else [],
                },
            }
        )
    counts: dict[str, int] = {}
    for app in apps:
        counts[app["status"]] = counts.get(app["status"], 0) + 1
    return to_json({"generatedAt": now, "summary": counts, "errors": list(report.errors), "apps": apps})


# ---------------------------------------------------------------- JSON: one style for every answer
#
# The CLI's --json, the admin API's answers and the stored status all pass through
# ``to_json``: keys camelCase (``daysLeft``, also inside a finding's details), times as
# ISO 8601 UTC with whole seconds (``2026-12-06T02:13:03Z``, models.stamp), enums as
# their value. A secret value has no JSON shape: asking for one is a bug, and fails.

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def camel(key: str) -> str:
    """``days_left`` -> ``daysLeft``; a key that is not snake_case (already camelCase, a
    finding code such as LOGOUT_URL_MISMATCH, a facility name) stays as it is."""
    if not _SNAKE.match(key):
        return key
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def to_json(value: Any) -> Any:
    """``value`` as JSON's types, in the one style (above). Idempotent: shaping a shaped
    document changes nothing."""
    if isinstance(value, SecretValue):
        raise TypeError("a secret value has no JSON shape: it never leaves the process")
    if isinstance(value, Enum):
        return to_json(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {camel(f.name): to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {camel(str(key)): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(to_json(item) for item in value)
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"no JSON shape for {type(value).__name__}")


def finding_json(found: Finding) -> dict[str, Any]:
    return to_json(found.as_dict())


def app_json(result: AppResult, now: datetime) -> dict[str, Any]:
    """One app's check: its status, the secret SmartTrace uses (when it ends, whole days
    left at ``now``) and its findings."""
    expires = result.secret_expires
    return to_json(
        {
            "facility": result.app.facility,
            "tenantId": result.app.tenant_id,
            "appId": result.app.app_id,
            "status": result.status,
            "secretExpires": expires,
            "daysLeft": days_until(expires, now) if expires else None,
            "findings": [finding_json(f) for f in result.findings],
        }
    )


def check_summary(report: CheckReport) -> dict[str, int]:
    counts = Counter(r.status for r in report.results)
    return {status: counts.get(status, 0) for status in ("ok", "warning", "critical", "error")}


def check_json(report: CheckReport) -> dict[str, Any]:
    """A check run (``sso-monitor check --json``): when it checked, the counts, the
    monitor's own failures and each app, by facility."""
    return to_json(
        {
            "generatedAt": report.started,
            "summary": check_summary(report),
            "errors": list(report.errors),
            "apps": [app_json(r, report.started) for r in sorted(report.results, key=lambda r: r.app.facility)],
        }
    )


def event_json(event: RotationEvent) -> dict[str, Any]:
    """A rotation event: its fields, and a manual handoff's steps in words (the facts
    they are written from stay out: the steps say them)."""
    data: dict[str, Any] = {f.name: getattr(event, f.name) for f in fields(event) if f.name != "handoff"}
    data["steps"] = handoff_steps(event.handoff) if event.handoff is not None else []
    return to_json(data)


def result_json(result: RotationResult) -> dict[str, Any]:
    """A rotation run's result, with what Entra's records said during it (``findings``:
    OLD_SECRET_STILL_IN_USE, ACTIVITY_REPORT_UNAVAILABLE), shaped as a check's findings."""
    return to_json(
        {
            "facility": result.facility,
            "stage": result.stage,
            "keyId": result.key_id,
            "actions": list(result.actions),
            "error": result.error,
            "findings": [finding_json(f) for f in result.findings],
        }
    )


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """A rotation run (rotate, confirm, push, adopt): where it stands, what it did, its events."""
    return {**result_json(outcome.result), "events": [event_json(e) for e in outcome.events]}


def statuses_json(statuses: Sequence[RotationStatus], failures: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Each app's rotation stage (``sso-monitor status --json``), and the apps whose stage could not be read."""
    return to_json({"apps": list(statuses), "errors": [{"facility": facility, "error": problem} for facility, problem in failures]})
