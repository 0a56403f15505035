"""The unattended part: a timer that checks every app, stores the run's status
report (what GET /api/status answers) and queues rotation work, a queue-triggered worker that does one app's work under its lease, and an
alert for messages the platform gave up on (the poison queue).

The timer's schedule is the app setting SSO_MONITOR_SCHEDULE (NCRONTAB, six
fields; "0 0 6 * * *" is daily at 06:00 UTC). The queues live in the Function
App's own storage (AzureWebJobsStorage). The worker raises only when a retry
may help (an external call failed); after host.json's maxDequeueCount tries
the host moves the message to <queue>-poison, which poison_alert reports.
Messages carry a facility and a reason, never anything secret.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from sso_monitor.errors import MonitorError
from sso_monitor.functions import PerProcess

if TYPE_CHECKING:
    from sso_monitor.config import MonitorConfig

bp = func.Blueprint()
log = logging.getLogger(__name__)

# Cold start: the decorators run when the host indexes function_app, so only the exception
# tree is imported at the top; each trigger imports the service on its first call
# (`import function_app`: 0.11 s this way, 0.43 s with the service; docs/architecture.md).
# The queue names are literals for the same reason (tests/functions/test_scheduled.py
# checks that they are rotation/ports.py's).
WORK_QUEUE = "sso-monitor-work"
POISON_QUEUE = "sso-monitor-work-poison"
_FACILITY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _load_config() -> MonitorConfig:
    from sso_monitor.config import load_config  # on the first trigger (cold start)

    return load_config()


_config = PerProcess(_load_config)  # from the app settings, once per worker process
reset = _config.reset


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- timer


@bp.function_name("scheduled_run")
@bp.timer_trigger(schedule="%SSO_MONITOR_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def scheduled_run(timer: func.TimerRequest) -> None:
    from sso_monitor.functions.status_report import store_run_report
    from sso_monitor.service import MonitorService, ScheduledRunFailed, alert_summary

    if timer.past_due:
        log.warning("scheduled run: past due (the host was down at the scheduled time); running now")
    config = _config.get()
    service = MonitorService(config)
    now = _now()
    plan = await service.scheduled_check(now)
    try:  # what GET /api/status answers until the next run (status_report.py)
        await store_run_report(config, plan, now)
    except (MonitorError, ValueError) as exc:  # ValueError: a malformed AzureWebJobsStorage
        plan.failures.append(f"status report not stored: {exc}")
    queued, failures = await service.queue_work(plan.work)
    plan.failures.extend(failures)
    try:
        plan.failures.extend(await service.alert_check(plan.report, now, plan.failures, plan.stuck))
    except MonitorError as exc:  # the alert store or a channel's secret: the summary below still goes to the log
        plan.failures.append(f"alerts not sent: {exc}")
    summary = alert_summary(plan, queued)
    attention = plan.failures or any(r.status != "ok" for r in plan.report.results)
    log.log(logging.WARNING if attention else logging.INFO, "alert summary: %s", summary)
    if plan.failures:
        count = len(plan.failures)
        raise ScheduledRunFailed(f"scheduled run: {count} failure{'' if count == 1 else 's'}; see the alert summary")


# ---------------------------------------------------------------- worker


@bp.function_name("rotation_worker")
@bp.queue_trigger(arg_name="msg", queue_name=WORK_QUEUE, connection="AzureWebJobsStorage")
async def rotation_worker(msg: func.QueueMessage) -> None:
    from sso_monitor.rotation.ports import parse_work
    from sso_monitor.service import MonitorService, WorkFailed

    try:
        item = parse_work(msg.get_body())
    except ValueError as exc:
        # Retrying cannot help a malformed message: drop it, loudly.
        log.error("rotation worker: dropped message %s: %s", msg.id, exc)
        return
    config = _config.get()
    app = config.app(item.facility)
    if app is None:
        log.error("rotation worker: dropped message %s: no app for facility %r in the configuration", msg.id, _printable(item.facility))
        return
    log.info("rotation worker: %s (%s), try %s", app.facility, item.reason, msg.dequeue_count or "?")
    service = MonitorService(config)
    try:
        outcome = await service.work(item)
    finally:
        await service.aclose()
    result = outcome.result
    for problem in await service.alert_events(outcome.events, _now()):
        log.error("rotation worker: %s: %s (kept in the alert outbox for the next run)", app.facility, problem)
    if outcome.lease_held:
        log.info("rotation worker: %s: another run holds its lease; leaving it to that run", app.facility)
        return
    if outcome.retry:
        # Not chained: an SDK error down the chain may hold a request, and the host logs
        # the whole chain. The message says what failed; the Rotator logged it too.
        raise WorkFailed(f"rotation of {app.facility} failed; the platform retries it: {result.error}") from None
    if result.error:
        log.error("rotation worker: %s: %s (not retried: a retry would fail the same way)", app.facility, result.error)
        return
    log.info("rotation worker: %s: %s", app.facility, result.stage)


# ---------------------------------------------------------------- poison


@bp.function_name("poison_alert")
@bp.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
async def poison_alert(msg: func.QueueMessage) -> None:
    from sso_monitor.rotation.ports import parse_work
    from sso_monitor.service import MonitorService

    try:
        item = parse_work(msg.get_body())
        what = f"for {_printable(item.facility)} ({item.reason})"
    except ValueError:
        what = "(malformed)"
    text = f"Rotation work {what} failed on every try and was moved to {POISON_QUEUE} (message {msg.id}); see rotation_worker's log."
    log.error("alert: %s", text)
    # The log line above stands even when the configuration is what fails to load.
    try:
        problems = await MonitorService(_config.get()).alert_failures([text], _now())
    except MonitorError as exc:
        log.error("poison queue: not sent to the operations channels: %s", exc)
        return
    for problem in problems:
        log.error("poison queue: %s", problem)


def _printable(facility: str) -> str:
    """A facility name as it may appear in a log line (a message's text is not trusted)."""
    return facility if _FACILITY.match(facility) else "<invalid facility name>"
