"""The admin API's answers: MonitorService's operations, shaped for HTTP.

The blueprint (functions/admin.py) parses and authenticates, calls one of these,
and maps the result: every answer goes out through the service's one serializer
(service.to_json: camelCase keys, ISO 8601 UTC times), as the CLI's --json does.
No secret value is ever in a result.

Status is the last scheduled run's report (``stored_status``; the timer writes it
with service.run_status_document), never a live check of every app: only
``check`` checks, and one app at a time. ``rotate`` can be bounded (``verify_deadline``,
``answer_within``): Azure answers an HTTP trigger within 230 s at most, and a
rotation that waits for propagation can take longer; the rest of it is then left
to the next worker or timer run (or, past ``answer_within``, to the run itself,
which goes on in this process).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from sso_monitor import wiring
from sso_monitor.alerts.decisions import parse_until
from sso_monitor.alerts.service import UnknownCode
from sso_monitor.config import AppConfig, MonitorConfig
from sso_monitor.errors import ConfigError, ExternalError, LeaseUnavailable, MonitorError
from sso_monitor.functions.bounds import MOVING, RUNNING
from sso_monitor.rotation.ports import RESUME, WorkItem
from sso_monitor.rotation.protocol import Clock, RotationFailed, RotationResult, RotationSettings, lease_key
from sso_monitor.service import InvalidSnooze, MonitorService, Outcome, UnknownFacility, outcome_json, result_json

log = logging.getLogger(__name__)

# Stages in which a rotation moves on by itself (no person needed): the API answers 202.
# Rotations the API answered for while they ran on (see rotate); kept so they are not collected.
_background: set[asyncio.Task[Any]] = set()


async def drain() -> None:
    """Wait for the rotations still running after their answer (tests; shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


class AdminApi:
    def __init__(self, config: MonitorConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.service = MonitorService(config, clock=clock)
        self._reports: Any = None

    @property
    def clock(self) -> Clock:
        """The rotation's and the alerts' time: the service's (one clock, set in one place)."""
        return self.service.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.service.clock = clock

    # ---- status

    def report_store(self) -> Any:
        """The store of the scheduled run's report (one per process); ConfigError without storage."""
        if self._reports is None:
            try:
                store = wiring.build_report_store(self.config)
            except ValueError as exc:
                raise ConfigError([str(exc)]) from None
            if store is None:
                raise ConfigError(["the status is the scheduled run's report, kept in the Function App's storage: set AzureWebJobsStorage"])
            self._reports = store
        return self._reports

    async def stored_status(self) -> dict[str, Any] | None:
        """The last completed scheduled run's status document, or None if none has completed."""
        return await self.report_store().read()

    async def check(self, facility: str, now: datetime) -> dict[str, Any]:
        """A live check of one app (Graph, Entra, Key Vault, the logout URL), with its stage."""
        document = await self.service.status_document(now, [self.service.app(facility)])
        return document["apps"][0]

    # ---- rotation

    async def rotation(self, facility: str, now: datetime) -> dict[str, Any]:
        """Where the app's rotation stands: Key Vault's tags (one read), and whether a run
        holds the app's lease right now (one read of the lease blob, when there is storage)."""
        app = self.service.app(facility)
        statuses, failures = await self.service.rotation_statuses([app])
        if failures:
            raise ExternalError("keyvault", failures[0][1])
        status = statuses[0]
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
        try:
            return await wiring.rotation_lease_held(self.config, lease_key(app))
        except (MonitorError, ValueError) as exc:
            log.warning("rotation status %s: lease state unknown: %s", app.facility, exc)
            return None

    def bounded_settings(self, verify_deadline: float | None) -> RotationSettings:
        """The rotation settings, with the verify step bounded (the HTTP API's)."""
        settings = self.service.settings
        if verify_deadline is None:
            return settings
        deadline = min(settings.verify_deadline, verify_deadline)
        # An interval longer than a fifth of the deadline would waste most of it asleep.
        return replace(settings, verify_deadline=deadline, verify_interval=min(settings.verify_interval, deadline / 5))

    async def rotate(
        self, facility: str, *, dry_run: bool, force: bool, who: str, verify_deadline: float | None = None, answer_within: float | None = None
    ) -> dict[str, Any]:
        """Run the protocol for one app. ``verify_deadline`` bounds the wait for propagation
        (the run then ends at stage pending; the next run resumes). ``answer_within``
        bounds the wait for the whole run: past it the answer is stage ``running`` and the
        run goes on in this process, under its lease, and sends its own alerts."""
        app = self.service.app(facility)
        log.info("admin: %s asked to rotate %s (dry run %s, force %s)", who, facility, dry_run, force)
        settings = self.bounded_settings(verify_deadline)
        done: dict[str, Any] = {}

        async def run() -> dict[str, Any]:
            outcome = await self.service.rotate(app, dry_run=dry_run, force=force, settings=settings)
            done["outcome"] = outcome
            return _answer(outcome, await self._alert([] if dry_run else outcome.events))

        task = asyncio.ensure_future(run())
        if answer_within is None:
            return await task
        finished, _ = await asyncio.wait({task}, timeout=max(0.0, answer_within))
        if task in finished:
            return task.result()
        _background.add(task)
        task.add_done_callback(_finished_in_background(facility))
        if "outcome" in done:  # the rotation ended; only its alerts are still being sent
            outcome = done["outcome"]
            return _answer(outcome, {"sent": 0, "undelivered": 0, "pending": len(outcome.events)})
        log.warning("admin: the rotation of %s is still running after %.0f s; answering now, it goes on", facility, answer_within)
        return {**result_json(RotationResult(facility, stage=RUNNING)), "events": [], "alerts": {"sent": 0, "undelivered": 0}}

    async def queue_resume(self, facility: str, *, within: float = 10.0) -> bool:
        """Queue a resume of the app's rotation for the worker; False when it was not queued
        within ``within`` seconds (no storage, the send failed or is slow: the timer's next
        run resumes it; a late send still arrives, and a second resume is harmless)."""
        storage = self.config.storage
        if storage.connection_string is None and not storage.account_url:
            return False
        try:
            sent, failures = await asyncio.wait_for(self.service.queue_work([WorkItem(facility, RESUME)]), within)
        except TimeoutError:
            log.warning("admin: resume of %s not queued within %.0f s; the timer's next run resumes it", facility, within)
            return False
        for failure in failures:
            log.warning("admin: resume of %s not queued (%s); the timer's next run resumes it", facility, failure)
        return bool(sent)

    async def confirm(self, facility: str, key_id: str, who: str) -> dict[str, Any]:
        app = self.service.app(facility)
        log.info("admin: %s confirmed keyId %s for %s", who, key_id, facility)
        outcome = await self.service.confirm(app, key_id, who)
        return _answer(outcome, await self._alert(outcome.events))

    async def push(self, facility: str, who: str, *, dry_run: bool = False) -> dict[str, Any]:
        app = self.service.app(facility)
        log.info("admin: %s asked to push the current secret of %s to SmartTrace again (dry run %s)", who, facility, dry_run)
        outcome = await self.service.push(app, who, dry_run=dry_run)
        return outcome_json(outcome)

    async def snooze(self, facility: str, code: str, until_text: str, who: str, reason: str, now: datetime) -> Any:
        try:
            until = parse_until(until_text)
        except ValueError as exc:
            raise InvalidSnooze(str(exc)) from None
        app = self.service.app(facility)
        storage = self.config.storage
        if storage.connection_string is None and not storage.account_url:
            raise ConfigError(["snoozes are kept in the Function App's storage: set AzureWebJobsStorage"])
        return await self.service.snooze(app, code, until, who, reason, now)  # alerts.decisions.Snooze: shaped on the way out

    async def _alert(self, events: list[Any]) -> dict[str, int]:
        """Send a rotation's events to the alert channels; a delivery problem is reported, not raised
        (the action itself succeeded, and the outbox keeps what was not delivered)."""
        if not events:
            return {"sent": 0, "undelivered": 0}
        try:
            async with self.service.alerting() as alerting:
                report = await alerting.rotation_events(events, self.clock.now())
        except MonitorError as exc:
            log.error("admin: alerts for %s not sent: %s", events[0].facility, exc)
            return {"sent": 0, "undelivered": len(events)}
        return {"sent": len(report.sent), "undelivered": len(report.undelivered) + len(report.dropped)}


def _answer(outcome: Outcome, alerts: dict[str, int]) -> dict[str, Any]:
    return {**outcome_json(outcome), "alerts": alerts}


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
        log.info(
            "admin: the rotation of %s, answered while it ran, ended at stage %s%s",
            facility,
            answer["stage"],
            f" ({answer['error']})" if answer["error"] else "",
        )

    return done


def http_error(exc: MonitorError) -> tuple[int, str, str] | None:
    """The admin API's answer to a failure of the service: (status, code, message); None
    for one it does not expect (the host logs it as a 500)."""
    if isinstance(exc, UnknownFacility):
        return 404, "unknown_facility", str(exc)
    if isinstance(exc, (UnknownCode, InvalidSnooze)):
        return 400, "invalid_field", str(exc)
    if isinstance(exc, RotationFailed):
        return 409, "rotation_conflict", str(exc)
    if isinstance(exc, LeaseUnavailable):
        return 409, "rotation_busy", "another run holds this app's lease (a rotation is running); try again in a minute"
    if isinstance(exc, ExternalError):
        return 502, "upstream_failed", str(exc)
    return None
