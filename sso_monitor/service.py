"""What the HTTP admin API does, without HTTP: the stored status, check, rotate, a
rotation's status, confirm, push, snooze.

The blueprint (sso_monitor/functions/admin.py) parses and authenticates, calls
one of these, and maps the result. No secret value is ever in a result.

Status is the last scheduled run's report (``stored_status``; the timer writes
it with ``run_status_document``), never a live check of every app: only
``check`` checks, and one app at a time. ``rotate`` can be bounded for the HTTP
API (``verify_deadline``, ``answer_within``): Azure answers an HTTP trigger
within 230 s at most, and a rotation that waits for propagation can take
longer; the rest of it is then left to the next worker or timer run (or, past
``answer_within``, to the run itself, which goes on in this process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sso_monitor.config import AppConfig, MonitorConfig
from sso_monitor.errors import MonitorError
from sso_monitor.checks.report import as_dict
from sso_monitor.rotation.protocol import MemoryNotifier, RotationDeps, RotationResult, RotationSettings, Rotator, lease_key, rotation_status
from sso_monitor.cli.rotate import settings_from
from sso_monitor.checks.run import CheckReport, run_checks
from sso_monitor.checks.status import build_status
from sso_monitor.wiring import build_adapters, build_rotation_deps

log = logging.getLogger(__name__)

# Stages in which a rotation moves on by itself (no person needed): the API answers 202.
MOVING = ("pending", "verified", "handed-off")
RUNNING = "running"  # the API's own word: the run goes on after the answer
# Rotations the API answered for while they ran on (see rotate); kept so they are not collected.
_background: set[asyncio.Task[Any]] = set()


async def drain() -> None:
    """Wait for the rotations still running after their answer (tests; shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


class UnknownFacility(MonitorError):
    pass


class InvalidSnooze(MonitorError):
    pass


async def run_status_document(report: CheckReport, versions: Mapping[str, Sequence[Any]], now: datetime) -> dict[str, Any]:
    """The status document of a scheduled run: its check report, and each app's rotation
    stage from the Key Vault versions the run read (no read of its own)."""
    stages = {}
    for result in report.results:
        app = result.app
        if app.facility in versions:
            stages[app.facility] = await rotation_status(app, SimpleNamespace(vault=_KnownVersions(versions[app.facility])))  # type: ignore[arg-type]
    document = build_status(report, stages, now)
    document["report"] = as_dict(report)["summary"]
    return document


class _KnownVersions:
    """A vault that answers ``versions`` with what was already read."""

    def __init__(self, versions: Sequence[Any]) -> None:
        self._versions = list(versions)

    async def versions(self, name: str) -> list[Any]:
        return list(self._versions)


def _lease(config: MonitorConfig) -> Any:
    """A blob lease on the Function App's storage; a local one when there is none (local runs)."""
    from sso_monitor.adapters.storage.lease import LocalLease, lease_from_settings

    storage = config.storage
    if storage.connection_string is not None:
        return lease_from_settings(storage.connection_string.reveal(), None)
    if storage.account_url:
        from sso_monitor.adapters.entra.identity import credential_for

        return lease_from_settings(None, storage.account_url, credential_for(config, config.home_tenant_id))
    return LocalLease()


class AdminService:
    def __init__(self, config: MonitorConfig, *, clock: Any = None) -> None:
        from sso_monitor.rotation.protocol import SystemClock

        self.config = config
        self.clock = clock or SystemClock()  # the rotation's and the alerts' time
        self._reports: Any = None

    def app(self, facility: str) -> AppConfig:
        app = self.config.app(facility)
        if app is None:
            raise UnknownFacility(f"no app for facility {facility!r}")
        return app

    async def _deps(self, notifier: MemoryNotifier | None = None) -> RotationDeps:
        return build_rotation_deps(self.config, notifier=notifier or MemoryNotifier(), lease=_lease(self.config), clock=self.clock)

    # ---- status

    def report_store(self) -> Any:
        """The store of the scheduled run's report (one per service); ConfigError without storage."""
        if self._reports is None:
            from sso_monitor.adapters.storage.report_store import report_store_from_settings

            from sso_monitor.errors import ConfigError

            try:
                store = report_store_from_settings(self.config)
            except ValueError as exc:
                raise ConfigError([str(exc)]) from None
            if store is None:
                raise ConfigError(["the status is the scheduled run's report, kept in the Function App's storage: set AzureWebJobsStorage"])
            self._reports = store
        return self._reports

    async def stored_status(self) -> dict[str, Any] | None:
        """The last completed scheduled run's status document, or None if none has completed."""
        return await self.report_store().read()

    async def live_status(self, now: datetime, apps: list[AppConfig]) -> dict[str, Any]:
        """Check ``apps`` now (Graph, Entra, Key Vault, the logout URL): for ``check`` only."""
        adapters = build_adapters(self.config)
        try:
            report = await run_checks(self.config, adapters, now, apps=apps)
        finally:
            await adapters.aclose()
        deps = build_rotation_deps(self.config, clock=self.clock)  # reads only: no lease
        try:
            stages = {}
            for app in apps:
                try:
                    stages[app.facility] = await rotation_status(app, deps)
                except MonitorError as exc:
                    log.warning("status %s: rotation stage unknown: %s", app.facility, exc)
        finally:
            await _close(deps)
        document = build_status(report, stages, now)
        document["report"] = as_dict(report)["summary"]
        return document

    async def check(self, facility: str, now: datetime) -> dict[str, Any]:
        app = self.app(facility)
        document = await self.live_status(now, [app])
        return document["apps"][0]

    # ---- rotation

    async def rotation(self, facility: str, now: datetime) -> dict[str, Any]:
        """Where the app's rotation stands: Key Vault's tags (one read), and whether a run
        holds the app's lease right now (one read of the lease blob, when there is storage)."""
        app = self.app(facility)
        deps = build_rotation_deps(self.config, clock=self.clock)
        try:
            status = await rotation_status(app, deps)
        finally:
            await deps.aclose()
        held = await self._lease_held(app)
        return {
            "facility": status.facility,
            "stage": status.stage,
            "currentKeyId": status.current_key_id,
            "currentExpires": status.current_expires,
            "inFlightKeyId": status.in_flight_key_id,
            "inFlightSince": status.in_flight_since,
            "retiring": list(status.retiring),
            "leaseHeld": held,
            "inFlight": status.stage in MOVING or bool(held),
            "checkedAt": now,
        }

    async def _lease_held(self, app: AppConfig) -> bool | None:
        from sso_monitor.adapters.storage.lease_state import lease_held

        try:
            return await lease_held(self.config, lease_key(app))
        except (MonitorError, ValueError) as exc:
            log.warning("rotation status %s: lease state unknown: %s", app.facility, exc)
            return None

    def bounded_settings(self, verify_deadline: float | None) -> RotationSettings:
        """The rotation settings, with the verify step bounded (the HTTP API's)."""
        settings = settings_from(self.config)
        if verify_deadline is None:
            return settings
        deadline = min(settings.verify_deadline, verify_deadline)
        # An interval longer than a fifth of the deadline would waste most of it asleep.
        return replace(settings, verify_deadline=deadline, verify_interval=min(settings.verify_interval, deadline / 5))

    async def rotate(self, facility: str, *, dry_run: bool, force: bool, who: str, verify_deadline: float | None = None, answer_within: float | None = None) -> dict[str, Any]:
        """Run the protocol for one app. ``verify_deadline`` bounds the wait for propagation
        (the run then ends at stage pending; the next run resumes). ``answer_within``
        bounds the wait for the whole run: past it the answer is stage ``running`` and the
        run goes on in this process, under its lease, and sends its own alerts."""
        app = self.app(facility)
        log.info("admin: %s asked to rotate %s (dry run %s, force %s)", who, facility, dry_run, force)
        settings = self.bounded_settings(verify_deadline)
        done: dict[str, Any] = {}

        async def run() -> dict[str, Any]:
            notifier = MemoryNotifier()
            deps = await self._deps(notifier)
            try:
                result = await Rotator(app, deps, settings, dry_run=dry_run, force=force).run()
            finally:
                await _close(deps)
            done["result"], done["events"] = result, notifier.events
            events = [] if dry_run else notifier.events
            return _rotation_answer(result, notifier.events, await self._alert(events))

        task = asyncio.ensure_future(run())
        if answer_within is None:
            return await task
        finished, _ = await asyncio.wait({task}, timeout=max(0.0, answer_within))
        if task in finished:
            return task.result()
        _background.add(task)
        task.add_done_callback(_finished_in_background(facility))
        if "result" in done:  # the rotation ended; only its alerts are still being sent
            return _rotation_answer(done["result"], done["events"], {"sent": 0, "undelivered": 0, "pending": len(done["events"])})
        log.warning("admin: the rotation of %s is still running after %.0f s; answering now, it goes on", facility, answer_within)
        return {
            **asdict(RotationResult(facility, stage=RUNNING)),
            "events": [],
            "alerts": {"sent": 0, "undelivered": 0},
        }

    async def queue_resume(self, facility: str, *, within: float = 10.0) -> bool:
        """Queue a resume of the app's rotation for the worker; False when it was not queued
        within ``within`` seconds (no storage, the send failed or is slow: the timer's next
        run resumes it; a late send still arrives, and a second resume is harmless)."""
        from sso_monitor.adapters.storage.work_queue import enqueue
        from sso_monitor.rotation.schedule import RESUME, WorkItem

        storage = self.config.storage
        if storage.connection_string is None and not storage.account_url:
            return False
        try:
            sent, failures = await asyncio.wait_for(asyncio.to_thread(enqueue, self.config, [WorkItem(facility, RESUME)]), within)
        except TimeoutError:
            log.warning("admin: resume of %s not queued within %.0f s; the timer's next run resumes it", facility, within)
            return False
        for failure in failures:
            log.warning("admin: resume of %s not queued (%s); the timer's next run resumes it", facility, failure)
        return bool(sent)

    async def confirm(self, facility: str, key_id: str, who: str) -> dict[str, Any]:
        app = self.app(facility)
        log.info("admin: %s confirmed keyId %s for %s", who, key_id, facility)
        notifier = MemoryNotifier()
        deps = await self._deps(notifier)
        try:
            result = await Rotator(app, deps, settings_from(self.config)).confirm(key_id, who)
        finally:
            await _close(deps)
        return {**asdict(result), "events": [asdict(e) for e in notifier.events], "alerts": await self._alert(notifier.events)}

    async def push(self, facility: str, who: str, *, dry_run: bool = False) -> dict[str, Any]:
        app = self.app(facility)
        log.info("admin: %s asked to push the current secret of %s to SmartTrace again (dry run %s)", who, facility, dry_run)
        deps = await self._deps()
        try:
            rotator = Rotator(app, deps, settings_from(self.config), dry_run=dry_run)
            result = await rotator.repush(who)
        finally:
            await _close(deps)
        return asdict(result)

    async def snooze(self, facility: str, code: str, until: datetime, who: str, reason: str, now: datetime) -> dict[str, Any]:
        from sso_monitor.alerts.decisions import snooze_problem
        from sso_monitor.wiring import opened_alerting

        self.app(facility)
        storage = self.config.storage
        if storage.connection_string is None and not storage.account_url:
            from sso_monitor.errors import ConfigError

            raise ConfigError(["snoozes are kept in the Function App's storage: set AzureWebJobsStorage"])
        problem = snooze_problem(until, now, reason)
        if problem is not None:
            raise InvalidSnooze(problem)
        async with opened_alerting(self.config) as alerting:
            snooze = await alerting.snooze(facility, code, until, who, reason)
        return snooze.as_dict()

    async def _alert(self, events: list[Any]) -> dict[str, int]:
        """Send a rotation's events to the alert channels; a delivery problem is reported, not raised
        (the action itself succeeded, and the outbox keeps what was not delivered)."""
        if not events:
            return {"sent": 0, "undelivered": 0}
        from sso_monitor.wiring import opened_alerting

        try:
            async with opened_alerting(self.config) as alerting:
                report = await alerting.rotation_events(events, self.clock.now())
        except MonitorError as exc:
            log.error("admin: alerts for %s not sent: %s", events[0].facility, exc)
            return {"sent": 0, "undelivered": len(events)}
        return {"sent": len(report.sent), "undelivered": len(report.undelivered) + len(report.dropped)}


def _rotation_answer(result: RotationResult, events: list[Any], alerts: dict[str, int]) -> dict[str, Any]:
    return {**asdict(result), "events": [asdict(e) for e in events], "alerts": alerts}


def _finished_in_background(facility: str) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        _background.discard(task)
        if task.cancelled():
            log.warning("admin: the rotation of %s was cancelled after its answer; the next run resumes it from Key Vault's state", facility)
            return
        failure = task.exception()
        if failure is not None:
            log.error("admin: the rotation of %s failed after its answer (%s); the next run resumes it", facility, type(failure).__name__)
            return
        answer = task.result()
        log.info("admin: the rotation of %s, answered while it ran, ended at stage %s%s", facility, answer["stage"], f" ({answer['error']})" if answer["error"] else "")

    return done


async def _close(deps: RotationDeps) -> None:
    """The rotation's adapters, and its lease's client when it has one (the blob lease)."""
    try:
        await deps.aclose()
    finally:
        close = getattr(deps.lease, "aclose", None)
        if close is not None:
            await close()
