"""`sso-monitor rotate | status | confirm | push | adopt`: thin glue around sso_monitor.rotation."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from .config import AppConfig, MonitorConfig
from .errors import MonitorError
from .models import SecretValue
from .rotation import MemoryNotifier, RotationDeps, RotationResult, RotationSettings, Rotator, adopt, rotation_status
from .report import EXIT_CRITICAL, EXIT_MONITOR_FAILED, EXIT_OK, worst_exit
from .wiring import build_rotation_deps

# A rotation that failed leaves the secret due: as severe as a critical finding.
EXIT_FAILED = EXIT_CRITICAL


def _app(config: MonitorConfig, facility: str, err: IO[str]) -> AppConfig | None:
    app = config.app(facility)
    if app is None:
        err.write(f"sso-monitor: no app for facility {facility!r} in the configuration\n")
    return app


async def _with_deps(config: MonitorConfig, work: Any, deps: RotationDeps | None = None) -> tuple[Any, Any]:
    """Run ``work(deps)``; answer its result and the notifier that saw its events."""
    own = deps is None
    deps = deps or build_rotation_deps(config, notifier=MemoryNotifier())
    try:
        return await work(deps), deps.notifier
    finally:
        if own:
            await deps.aclose()


def settings_from(config: MonitorConfig) -> RotationSettings:
    verify = config.verify
    return RotationSettings(verify_successes=verify.successes, verify_interval=verify.interval_seconds, verify_deadline=verify.deadline_seconds)


def _print_result(result: RotationResult, notifier: Any, out: IO[str], as_json: bool) -> None:
    events = [asdict(e) for e in getattr(notifier, "events", [])]
    if as_json:
        json.dump({"facility": result.facility, "stage": result.stage, "keyId": result.key_id, "actions": result.actions, "error": result.error, "events": events}, out, indent=2, default=str)
        out.write("\n")
        return
    for line in result.actions:
        out.write(f"  {line}\n")
    for event in events:
        out.write(f"[{event['kind']}] {event['message']}\n")
        for number, step in enumerate(event["steps"], 1):
            out.write(f"    {number}. {step}\n")
    out.write(f"{result.facility}: {result.stage}" + (f" (keyId {result.key_id})" if result.key_id else "") + "\n")
    if result.error:
        out.write(f"error: {result.error}\n")


def _alert(config: MonitorConfig, notifier: Any, alert_state: Path | None, err: IO[str]) -> bool:
    """With --alert: the run's events to the channels (True when all went, or nothing to do)."""
    events = list(getattr(notifier, "events", []))
    if alert_state is None or not events:
        return True
    from datetime import datetime, timezone

    from .alert_commands import send_rotation_alerts

    return send_rotation_alerts(config, events, datetime.now(timezone.utc), alert_state, err)


def rotate_command(config: MonitorConfig, facility: str, *, dry_run: bool, force: bool, as_json: bool = False, out: IO[str] | None = None, err: IO[str] | None = None, deps: RotationDeps | None = None, alert_state: Path | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED

    async def run(d: RotationDeps) -> RotationResult:
        return await Rotator(app, d, settings_from(config), dry_run=dry_run, force=force).run()

    result, notifier = asyncio.run(_with_deps(config, run, deps))
    if dry_run and not as_json:
        out.write(f"Dry run for {facility}: nothing was changed.\n")
    _print_result(result, notifier, out, as_json)
    alerted = dry_run or _alert(config, notifier, alert_state, err)
    return worst_exit(EXIT_FAILED if result.error else EXIT_OK, EXIT_OK if alerted else EXIT_MONITOR_FAILED)


def confirm_command(config: MonitorConfig, facility: str, key_id: str, who: str, *, out: IO[str] | None = None, err: IO[str] | None = None, deps: RotationDeps | None = None, alert_state: Path | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED
    async def run(d: RotationDeps) -> RotationResult:
        return await Rotator(app, d, settings_from(config)).confirm(key_id, who)

    try:
        result, notifier = asyncio.run(_with_deps(config, run, deps))
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_FAILED
    _print_result(result, notifier, out, False)
    return EXIT_OK if _alert(config, notifier, alert_state, err) else EXIT_MONITOR_FAILED


def push_command(config: MonitorConfig, facility: str, who: str, *, dry_run: bool = False, out: IO[str] | None = None, err: IO[str] | None = None, deps: RotationDeps | None = None) -> int:
    """Push the secret SmartTrace should hold to it again (http handoff mode)."""
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED

    async def run(d: RotationDeps) -> RotationResult:
        return await Rotator(app, d, settings_from(config), dry_run=dry_run).repush(who)

    try:
        result, notifier = asyncio.run(_with_deps(config, run, deps))
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_FAILED
    _print_result(result, notifier, out, False)
    return EXIT_OK


def status_command(config: MonitorConfig, *, as_json: bool = False, out: IO[str] | None = None, deps: RotationDeps | None = None) -> int:
    out = out or sys.stdout

    async def run(d: RotationDeps) -> list[Any]:
        return [await rotation_status(app, d) for app in config.apps]

    statuses, _ = asyncio.run(_with_deps(config, run, deps))
    if as_json:
        json.dump({"apps": [asdict(s) for s in statuses]}, out, indent=2, default=str)
        out.write("\n")
        return EXIT_OK
    for status in statuses:
        expires = f", expires {status.current_expires:%Y-%m-%d}" if status.current_expires else ""
        flight = f"; rotation in flight: keyId {status.in_flight_key_id} ({status.stage})" if status.in_flight_key_id else ""
        retiring = f"; retiring after grace: {', '.join(status.retiring)}" if status.retiring else ""
        out.write(f"{status.facility}: {status.stage}; current keyId {status.current_key_id or '-'}{expires}{flight}{retiring}\n")
    return EXIT_OK


def adopt_command(config: MonitorConfig, facility: str, *, key_id: str | None, from_vault: bool, stdin: IO[str] | None = None, out: IO[str] | None = None, err: IO[str] | None = None, deps: RotationDeps | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED
    value: SecretValue | None = None
    if not from_vault:
        source = stdin or sys.stdin
        if source.isatty():
            import getpass

            text = getpass.getpass("Client secret value (not echoed): ")
        else:
            text = source.readline()
        text = text.strip()
        if not text:
            err.write("sso-monitor: no secret value on standard input (or use --from-vault)\n")
            return EXIT_MONITOR_FAILED
        value = SecretValue(text)

    async def run(d: RotationDeps) -> RotationResult:
        return await adopt(app, d, value, key_id)

    try:
        result, _ = asyncio.run(_with_deps(config, run, deps))
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_FAILED
    _print_result(result, None, out, False)
    return EXIT_OK
