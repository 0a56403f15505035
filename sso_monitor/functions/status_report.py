"""GET /api/status answers from the last completed scheduled run, never from a live check.

The timer's run stores its status document (``store_run_report``: the apps, their
findings, secret expiry and rotation stage, and ``generatedAt``, when the run
checked) in the Function App's storage (adapters/storage/report_store.py). The status
routes read it back through ``ReportCache``: at most one storage read per worker
process per ``STATUS_TTL`` seconds, however many callers ask (concurrent callers
at expiry wait for the one read in flight). The instance that ran the timer
caches what it wrote, so its own answers are current at once.

``served_status`` adds what the reader needs to judge the document:

- ``stale``: true when the report is older than twice the timer's longest
  interval (SSO_MONITOR_SCHEDULE; see ncrontab.py), or older than 26 hours when
  the schedule cannot be parsed; ``staleAfter`` says from when, ``message`` why;
- apps configured since that run are listed with status ``unknown``;
- when no run has completed yet, a 200 whose ``generatedAt`` is null, every
  configured app with status ``unknown``, ``stale`` true and a ``message``
  saying so. A 200, not a 503: the API works and the answer is true (nothing is
  known yet); a monitoring probe should alert on ``stale``, which covers both a
  first run that has not happened and a timer that stopped, rather than on a
  status code that would also mean "the Function App is down".
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sso_monitor.functions.ncrontab import longest_interval
from sso_monitor.models import stamp

if TYPE_CHECKING:  # the settings and the service load on the first call (cold start)
    from sso_monitor.config import AppConfig, MonitorConfig
    from sso_monitor.service import ScheduledPlan

log = logging.getLogger(__name__)

STATUS_TTL = 60.0  # seconds a worker process serves the stored report before reading it again
FALLBACK_STALE_AFTER = timedelta(hours=26)  # when SSO_MONITOR_SCHEDULE cannot be parsed
SCHEDULE_SETTING = "SSO_MONITOR_SCHEDULE"
_UNSET = object()


def schedule_setting() -> str | None:
    return os.environ.get("SSO_MONITOR_SCHEDULE")


def stale_after(schedule: str | None) -> tuple[timedelta, str]:
    """How old the report may get before it is stale, and the reason in words."""
    interval = longest_interval(schedule)
    if interval is None:
        return FALLBACK_STALE_AFTER, f"{FALLBACK_STALE_AFTER.total_seconds() / 3600:g} h (the schedule {SCHEDULE_SETTING} could not be read)"
    return 2 * interval, f"twice the timer's longest interval ({_span(interval)})"


# ---------------------------------------------------------------- the cache


class ReportCache:
    """The stored report (or its absence) as last read, for ``ttl`` seconds.

    ``get(load)`` answers from the cache while it is fresh; else one caller runs
    ``load`` and the others (in the same event loop) wait for its result. If the
    read fails and an older document is cached, that one is served (and the read
    retried after ``ttl``); with nothing cached the error propagates."""

    def __init__(self, ttl: float = STATUS_TTL, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._value: Any = _UNSET
        self._read_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _fresh(self) -> bool:
        return self._value is not _UNSET and self._monotonic() - self._read_at < self.ttl

    def _guard(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # a lock belongs to one event loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def get(self, load: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any] | None:
        if self._fresh():
            return self._value
        async with self._guard():
            if self._fresh():  # another caller read it while this one waited
                return self._value
            try:
                value = await load()
            except Exception as exc:
                if self._value is _UNSET:
                    raise
                log.warning("status: reading the stored report failed (%s); serving the one read before", exc)
                self._read_at = self._monotonic()
                return self._value
            self.put(value)
            return value

    def put(self, document: dict[str, Any] | None) -> None:
        self._value, self._read_at = document, self._monotonic()

    def clear(self) -> None:
        self._value, self._read_at = _UNSET, 0.0


cache = ReportCache()  # one per worker process


# ---------------------------------------------------------------- the timer writes


async def store_run_report(config: MonitorConfig, plan: ScheduledPlan, now: datetime) -> dict[str, Any] | None:
    """Store the scheduled run's status document (schedule.ScheduledPlan: its check report
    and the Key Vault versions it read); None when no storage is configured (local runs).
    Raises ExternalError when the write fails."""
    from sso_monitor.service import run_status_document
    from sso_monitor.wiring import build_report_store

    document = await run_status_document(plan.report, getattr(plan, "versions", {}), now)
    store = build_report_store(config)
    if store is None:
        log.info("scheduled run: no AzureWebJobsStorage; the status report is not stored")
        return None
    try:
        await store.write(document)
    finally:
        await store.aclose()
    cache.put(document)
    return document


# ---------------------------------------------------------------- the API answers


def served_status(document: dict[str, Any] | None, config: MonitorConfig, now: datetime, schedule: str | None) -> dict[str, Any]:
    """What GET /api/status answers for the stored ``document`` (None: no run completed yet)."""
    limit, why = stale_after(schedule)
    configured = list(getattr(config, "apps", ()))
    if document is None:
        apps = [_unknown_app(app) for app in sorted(configured, key=lambda a: a.facility)]
        return {
            "generatedAt": None,
            "stale": True,
            "staleAfter": None,
            "message": (
                "no scheduled run has completed yet, so nothing is known; the timer runs on "
                f"{SCHEDULE_SETTING} ({schedule or 'not set'}). POST /api/apps/{{facility}}/check checks one app now."
            ),
            "summary": {"unknown": len(apps)} if apps else {},
            "errors": [],
            "apps": apps,
        }
    answer = dict(document)
    generated = _parse(answer.get("generatedAt"))
    apps = [a for a in answer.get("apps") or [] if isinstance(a, dict)]
    seen = {a.get("facility") for a in apps}
    added = [_unknown_app(app) for app in configured if app.facility not in seen]
    if added:
        apps = sorted(apps + added, key=lambda a: str(a.get("facility")))
        summary = dict(answer.get("summary") or {})
        summary["unknown"] = summary.get("unknown", 0) + len(added)
        answer["summary"] = summary
    answer["apps"] = apps
    if generated is None:
        answer.update(stale=True, staleAfter=None, message="the stored report does not say when it was produced; the next scheduled run replaces it")
        return answer
    deadline = generated + limit
    answer["stale"] = now > deadline
    answer["staleAfter"] = _iso(deadline)
    if answer["stale"]:
        answer["message"] = (
            f"the last completed run is from {_iso(generated)}, {_span(now - generated)} ago, older than {why}; "
            "the timer's runs are failing or not happening: see the Function App's log"
        )
    elif added:
        some = f"{len(added)} app configured since the last run is" if len(added) == 1 else f"{len(added)} apps configured since the last run are"
        answer["message"] = f"{some} not checked yet: {', '.join(a['facility'] for a in added)}"
    return answer


def _unknown_app(app: AppConfig) -> dict[str, Any]:
    return {
        "facility": app.facility,
        "tenantId": app.tenant_id,
        "appId": app.app_id,
        "status": "unknown",
        "secretExpires": None,
        "daysLeft": None,
        "findings": [],
        "rotation": {"stage": "unknown", "currentKeyId": None, "inFlightKeyId": None, "retiring": []},
    }


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return stamp(moment)


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400 and seconds % 3600 == 0 and seconds // 3600 % 24 == 0:
        return f"{seconds // 86400} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    if seconds >= 60:
        return f"{seconds / 60:.1f} min".replace(".0 min", " min")
    return f"{seconds} s"
