"""`sso-monitor check --alert` and `sso-monitor snooze`: alerts from the command
line, with their state in a local file (the Function App keeps it in Azure
Table Storage)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sso_monitor.alerts.decisions import parse_until, snooze_problem
from sso_monitor.checks.findings import CODES
from sso_monitor.checks.run import CheckReport
from sso_monitor.cli.exits import EXIT_MONITOR_FAILED
from sso_monitor.cli.output import write_json
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import MonitorError
from sso_monitor.service import MonitorService, to_json

DEFAULT_STATE = Path(".sso-monitor/alert-state.json")


def send_check_alerts(config: MonitorConfig, report: CheckReport, now: datetime, state: Path, err: IO[str]) -> bool:
    """Alert on a check's results; False (after saying why) when something was not delivered."""
    service = MonitorService(config, alert_state=state)
    return deliver(state, err, lambda: service.alert_check(report, now, report.errors))


def state_problem(state: Path) -> str | None:
    """Why ``state`` cannot be the alert state file (None: it can be tried). The file
    store would fail on these with a bare ValueError, not a MonitorError."""
    text = str(state)
    if "\x00" in text:
        return f"alert state {text!r}: not a file name (it holds a NUL byte)"
    if state.name in ("", ".", "..") or state.is_dir():
        return f"alert state {text!r}: a directory, not a file (--alert-state names the file)"
    return None


def _stored(state: Path, work: Callable[[], Any]) -> Any:
    """``asyncio.run(work())`` on the alert store in ``state``: MonitorError for a file
    that is not a store, whatever way it is not (a RecursionError too: a JSON file
    nested deeper than Python parses is not ours either)."""
    problem = state_problem(state)
    if problem is not None:
        raise MonitorError(problem)
    try:
        return asyncio.run(work())
    except RecursionError:
        raise MonitorError(f"alert store {state}: not an alert store file (nested too deeply); it was left as it is (move it aside to start afresh)") from None


def deliver(state: Path, err: IO[str], send: Callable[[], Awaitable[list[str]]]) -> bool:
    """Run ``send`` (alerts kept in the state file ``state``); say each delivery problem on
    ``err``; True when everything went."""
    try:
        problems = _stored(state, send)
    except MonitorError as exc:
        err.write(f"sso-monitor: alerts not sent: {exc}\n")
        return False
    for problem in problems:
        err.write(f"sso-monitor: {problem} (kept in {state} for the next run)\n")
    return not problems


def snooze_command(
    config: MonitorConfig,
    facility: str,
    code: str,
    until: str,
    *,
    reason: str,
    who: str,
    state: Path,
    now: datetime,
    out: IO[str],
    err: IO[str],
    as_json: bool = False,
) -> int:
    # What is snoozed first, then until when: the first problem named is the one to fix first.
    app = config.app(facility)
    if app is None:
        err.write(f"sso-monitor: no app for facility {facility!r} in the configuration\n")
        return EXIT_MONITOR_FAILED
    if code not in CODES:
        err.write(f"sso-monitor: unknown finding code {code!r} (see docs/checks.md)\n")
        return EXIT_MONITOR_FAILED
    try:
        end = parse_until(until)
    except ValueError as exc:
        message = str(exc)
        err.write(f"sso-monitor: {'--' + message if message.startswith('until ') else message}\n")
        return EXIT_MONITOR_FAILED
    if end <= now:
        err.write(f"sso-monitor: --until {until.strip()!r} is not in the future\n")
        return EXIT_MONITOR_FAILED
    if any("\ud800" <= char <= "\udfff" for char in reason):  # bytes that were not UTF-8 in argv (lone surrogates)
        err.write("sso-monitor: --reason is not UTF-8 text\n")
        return EXIT_MONITOR_FAILED
    problem = snooze_problem(end, now, reason)
    if problem is not None:  # the one rule (alerts.py); said with the option it is about
        said = "--" + problem if problem.startswith(("until ", "reason ")) else f"--until {until.strip()!r}: {problem}"
        err.write(f"sso-monitor: {said}\n")
        return EXIT_MONITOR_FAILED

    service = MonitorService(config, alert_state=state)

    async def run() -> Any:
        # the configured name: "ACME" would be stored as a snooze nothing ever matches
        return await service.snooze(app, code, end, who, reason, now)

    try:
        snoozed = _stored(state, run)
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_MONITOR_FAILED
    if as_json:
        write_json(to_json(snoozed), out)
    else:
        out.write(f"{app.facility}: {code} snoozed until {end:%Y-%m-%d %H:%M} UTC\n")
    return 0
