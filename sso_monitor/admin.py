"""What the HTTP admin API does, without HTTP: status, check, rotate, confirm, push, snooze.

The blueprint (sso_monitor/functions/admin.py) parses and authenticates, calls
one of these, and maps the result. No secret value is ever in a result.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any

from .config import AppConfig, MonitorConfig
from .errors import MonitorError
from .report import as_dict
from .rotation import MemoryNotifier, RotationDeps, Rotator, rotation_status
from .rotating import settings_from
from .run import run_checks
from .status import build_status
from .wiring import build_adapters, build_rotation_deps

log = logging.getLogger(__name__)




class UnknownFacility(MonitorError):
    pass


class InvalidSnooze(MonitorError):
    pass


def _lease(config: MonitorConfig) -> Any:
    """A blob lease on the Function App's storage; a local one when there is none (local runs)."""
    from .adapters.lease import LocalLease, lease_from_settings

    storage = config.storage
    if storage.connection_string is not None:
        return lease_from_settings(storage.connection_string.reveal(), None)
    if storage.account_url:
        from .adapters.identity import credential_for

        return lease_from_settings(None, storage.account_url, credential_for(config, config.home_tenant_id))
    return LocalLease()


class AdminService:
    def __init__(self, config: MonitorConfig, *, clock: Any = None) -> None:
        from .rotation import SystemClock

        self.config = config
        self.clock = clock or SystemClock()  # the rotation's and the alerts' time

    def app(self, facility: str) -> AppConfig:
        app = self.config.app(facility)
        if app is None:
            raise UnknownFacility(f"no app for facility {facility!r}")
        return app

    async def _deps(self, notifier: MemoryNotifier | None = None) -> RotationDeps:
        return build_rotation_deps(self.config, notifier=notifier or MemoryNotifier(), lease=_lease(self.config), clock=self.clock)

    async def status(self, now: datetime, apps: list[AppConfig] | None = None) -> dict[str, Any]:
        adapters = build_adapters(self.config)
        try:
            report = await run_checks(self.config, adapters, now, apps=apps)
        finally:
            await adapters.aclose()
        deps = await self._deps()
        try:
            stages = {}
            for app in apps or self.config.apps:
                try:
                    stages[app.facility] = await rotation_status(app, deps)
                except MonitorError as exc:
                    log.warning("status %s: rotation stage unknown: %s", app.facility, exc)
        finally:
            await deps.aclose()
        document = build_status(report, stages, now)
        document["report"] = as_dict(report)["summary"]
        return document

    async def check(self, facility: str, now: datetime) -> dict[str, Any]:
        app = self.app(facility)
        document = await self.status(now, [app])
        return document["apps"][0]

    async def rotate(self, facility: str, *, dry_run: bool, force: bool, who: str) -> dict[str, Any]:
        app = self.app(facility)
        log.info("admin: %s asked to rotate %s (dry run %s, force %s)", who, facility, dry_run, force)
        notifier = MemoryNotifier()
        deps = await self._deps(notifier)
        try:
            result = await Rotator(app, deps, settings_from(self.config), dry_run=dry_run, force=force).run()
        finally:
            await deps.aclose()
        events = [] if dry_run else notifier.events
        return {**asdict(result), "events": [asdict(e) for e in notifier.events], "alerts": await self._alert(events)}

    async def confirm(self, facility: str, key_id: str, who: str) -> dict[str, Any]:
        app = self.app(facility)
        log.info("admin: %s confirmed keyId %s for %s", who, key_id, facility)
        notifier = MemoryNotifier()
        deps = await self._deps(notifier)
        try:
            result = await Rotator(app, deps, settings_from(self.config)).confirm(key_id, who)
        finally:
            await deps.aclose()
        return {**asdict(result), "events": [asdict(e) for e in notifier.events], "alerts": await self._alert(notifier.events)}

    async def push(self, facility: str, who: str, *, dry_run: bool = False) -> dict[str, Any]:
        app = self.app(facility)
        log.info("admin: %s asked to push the current secret of %s to SmartTrace again (dry run %s)", who, facility, dry_run)
        deps = await self._deps()
        try:
            rotator = Rotator(app, deps, settings_from(self.config), dry_run=dry_run)
            result = await rotator.repush(who)
        finally:
            await deps.aclose()
        return asdict(result)

    async def snooze(self, facility: str, code: str, until: datetime, who: str, reason: str, now: datetime) -> dict[str, Any]:
        from .alerts import snooze_problem
        from .wiring import opened_alerting

        self.app(facility)
        storage = self.config.storage
        if storage.connection_string is None and not storage.account_url:
            from .errors import ConfigError

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
        from .wiring import opened_alerting

        try:
            async with opened_alerting(self.config) as alerting:
                report = await alerting.rotation_events(events, self.clock.now())
        except MonitorError as exc:
            log.error("admin: alerts for %s not sent: %s", events[0].facility, exc)
            return {"sent": 0, "undelivered": len(events)}
        return {"sent": len(report.sent), "undelivered": len(report.undelivered) + len(report.dropped)}
