"""`sso-monitor rotate | status | confirm | push | adopt`: thin glue around sso_monitor.rotation.protocol."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from sso_monitor.config import AppConfig, MonitorConfig
from sso_monitor.errors import ExternalError, MonitorError
from sso_monitor.models import SecretValue
from sso_monitor.rotation.protocol import MemoryNotifier, RotationDeps, RotationResult, RotationSettings, Rotator, adopt, rotation_status
from sso_monitor.checks.report import EXIT_CRITICAL, EXIT_MONITOR_FAILED, EXIT_OK, worst_exit
from sso_monitor.wiring import build_rotation_deps

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

    from sso_monitor.cli.alerts import send_rotation_alerts

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
    alerted = _alert(config, notifier, alert_state, err)
    return worst_exit(EXIT_FAILED if result.error else EXIT_OK, EXIT_OK if alerted else EXIT_MONITOR_FAILED)


def push_command(config: MonitorConfig, facility: str, who: str, *, dry_run: bool = False, out: IO[str] | None = None, err: IO[str] | None = None, deps: RotationDeps | None = None) -> int:
    """Push the secret SmartTrace should hold to it again (http handoff mode)."""
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED
    if app.handoff.mode != "http":
        # Nothing is broken: the command does not apply to this facility (bad usage, 3).
        err.write(f"sso-monitor: {app.facility} hands secrets off manually; there is nothing to push (handoff.mode is {app.handoff.mode})\n")
        return EXIT_MONITOR_FAILED

    async def run(d: RotationDeps) -> RotationResult:
        return await Rotator(app, d, settings_from(config), dry_run=dry_run).repush(who)

    try:
        result, notifier = asyncio.run(_with_deps(config, run, deps))
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_FAILED
    _print_result(result, notifier, out, False)
    return EXIT_FAILED if result.error else EXIT_OK


def status_command(config: MonitorConfig, *, as_json: bool = False, out: IO[str] | None = None, err: IO[str] | None = None, deps: RotationDeps | None = None) -> int:
    """Each app's stage. The exit code is check's rule: an app whose stage could not
    be read is 2 (no one can vouch for it), no app read at all is 3."""
    out, err = out or sys.stdout, err or sys.stderr

    async def run(d: RotationDeps) -> tuple[list[Any], list[tuple[str, str]]]:
        statuses: list[Any] = []
        failures: list[tuple[str, str]] = []
        for app in config.apps:
            try:
                statuses.append(await rotation_status(app, d))
            except ExternalError as exc:  # one vault's answer does not stop the others
                failures.append((app.facility, str(exc)))
        return statuses, failures

    (statuses, failures), _ = asyncio.run(_with_deps(config, run, deps))
    code = EXIT_MONITOR_FAILED if failures and not statuses else EXIT_FAILED if failures else EXIT_OK
    for facility, problem in failures:
        err.write(f"sso-monitor: {facility}: the rotation stage could not be read: {problem}\n")
    if as_json:
        json.dump({"apps": [asdict(s) for s in statuses], "errors": [{"facility": f, "error": e} for f, e in failures]}, out, indent=2, default=str)
        out.write("\n")
        return code
    for status in statuses:
        expires = f", expires {status.current_expires:%Y-%m-%d}" if status.current_expires else ""
        flight = f"; rotation in flight: keyId {status.in_flight_key_id} ({status.stage})" if status.in_flight_key_id else ""
        retiring = f"; retiring after grace: {', '.join(status.retiring)}" if status.retiring else ""
        out.write(f"{status.facility}: {status.stage}; current keyId {status.current_key_id or '-'}{expires}{flight}{retiring}\n")
    return code


def adopt_command(config: MonitorConfig, facility: str, *, key_id: str | None, from_vault: bool, stdin: IO[str] | None = None, out: IO[str] | None = None, err: IO[str] | None = None, deps: RotationDeps | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED
    value: SecretValue | None = None
    if not from_vault:
        text, problem = _read_secret(stdin or sys.stdin)
        if problem is not None:
            err.write(f"sso-monitor: {problem}\n")
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
    return EXIT_FAILED if result.error else EXIT_OK


# An Entra client secret is 40 characters; anything much longer on standard input is
# some other file piped in by mistake (and each secret is registered for redaction in
# runs of 8 characters: a megabyte would cost a gigabyte).
MAX_SECRET_CHARS = 1024


def _read_secret(source: IO[str] | None) -> tuple[str, str | None]:
    """(the value on the first line of ``source``, or why there is none)."""
    missing = "no secret value on standard input (or use --from-vault)"
    if source is None or getattr(source, "closed", False):
        return "", missing
    try:
        if source.isatty():
            import getpass

            text = getpass.getpass("Client secret value (not echoed): ")
        else:
            text = source.readline(MAX_SECRET_CHARS + 2)
    except UnicodeDecodeError:
        return "", "the value on standard input is not UTF-8 text: not a client secret"
    except (OSError, ValueError) as exc:  # unreadable, or closed meanwhile
        return "", f"cannot read standard input ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    except EOFError:
        return "", missing
    text = text.strip()
    if not text:
        return "", missing
    if any("\ud800" <= char <= "\udfff" for char in text):  # undecodable bytes, under a locale that escapes them
        return "", "the value on standard input is not UTF-8 text: not a client secret"
    if len(text) > MAX_SECRET_CHARS:
        return "", f"the value on standard input is longer than {MAX_SECRET_CHARS} characters: not a client secret"
    return text, None
