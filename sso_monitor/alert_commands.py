"""`sso-monitor check --alert` and `sso-monitor snooze`: alerts from the command
line, with their state in a local file (the Function App keeps it in Azure
Table Storage)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .alerts import snooze_problem, parse_until
from .config import MonitorConfig
from .errors import MonitorError
from .run import CheckReport

DEFAULT_STATE = Path(".sso-monitor/alert-state.json")


def send_check_alerts(config: MonitorConfig, report: CheckReport, now: datetime, state: Path, err: IO[str]) -> bool:
    """Alert on a check's results; False (after saying why) when something was not delivered."""
    from .schedule import ScheduledPlan, alert_after_run

    plan = ScheduledPlan(report=report, failures=list(report.errors))
    return _deliver(config, state, err, lambda alerting: alert_after_run(config, plan, now, alerting))


def send_rotation_alerts(config: MonitorConfig, events: list, now: datetime, state: Path, err: IO[str]) -> bool:
    """A rotation's events (rotate, confirm) to the channels; False (after saying why) when not all went."""
    from .schedule import alert_events

    return _deliver(config, state, err, lambda alerting: alert_events(config, events, now, alerting))


def _deliver(config: MonitorConfig, state: Path, err: IO[str], send: Callable[[Any], Awaitable[list[str]]]) -> bool:
    """Run ``send`` on the alerting kept in ``state``; say each delivery problem on ``err``."""
    from .wiring import opened_alerting

    async def run() -> list[str]:
        async with opened_alerting(config, local_path=state) as alerting:
            return await send(alerting)

    try:
        problems = asyncio.run(run())
    except MonitorError as exc:
        err.write(f"sso-monitor: alerts not sent: {exc}\n")
        return False
    for problem in problems:
        err.write(f"sso-monitor: {problem} (kept in {state} for the next run)\n")
    return not problems


def snooze_command(config: MonitorConfig, facility: str, code: str, until: str, *, reason: str, who: str, state: Path, now: datetime, out: IO[str], err: IO[str]) -> int:
    from .wiring import opened_alerting

    try:
        end = parse_until(until)
    except ValueError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return 3
    problem = snooze_problem(end, now, reason)
    if problem is not None:
        err.write(f"sso-monitor: {problem.replace('until ', '--until ', 1).replace('reason ', '--reason ', 1)}\n")
        return 3

    async def run() -> None:
        async with opened_alerting(config, local_path=state) as alerting:
            await alerting.snooze(facility, code, end, who, reason)

    try:
        asyncio.run(run())
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return 3
    out.write(f"{facility}: {code} snoozed until {end:%Y-%m-%d %H:%M} UTC\n")
    return 0

