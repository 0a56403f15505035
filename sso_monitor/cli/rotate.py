"""`sso-monitor rotate | status | confirm | push | adopt`: parse, call the service, print."""

from __future__ import annotations

import asyncio
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sso_monitor.alerts.render import handoff_steps
from sso_monitor.checks.findings import Finding
from sso_monitor.cli.alerts import deliver
from sso_monitor.cli.exits import EXIT_CRITICAL, EXIT_MONITOR_FAILED, EXIT_OK, worst_exit
from sso_monitor.cli.output import write_json
from sso_monitor.config import AppConfig, MonitorConfig
from sso_monitor.errors import MonitorError
from sso_monitor.models import SecretValue
from sso_monitor.rotation.protocol import Clock, RotationSettings, SystemClock
from sso_monitor.service import MonitorService, Outcome, outcome_json, statuses_json


def _app(config: MonitorConfig, facility: str, err: IO[str]) -> AppConfig | None:
    app = config.app(facility)
    if app is None:
        err.write(f"sso-monitor: no app for facility {facility!r} in the configuration\n")
    return app


def _run(service: MonitorService, work: Any) -> Any:
    """``work()`` on the service's event loop, the service's lease closed afterwards."""

    async def run() -> Any:
        try:
            return await work()
        finally:
            await service.aclose()

    return asyncio.run(run())


def event_lines(events: list[Any]) -> list[str]:
    """A rotation's events as printed: the message, then a manual handoff's numbered steps."""
    lines = []
    for event in events:
        lines.append(f"[{event.kind}] {event.message}")
        steps = handoff_steps(event.handoff) if event.handoff is not None else []
        lines += [f"    {number}. {step}" for number, step in enumerate(steps, 1)]
    return lines


def finding_lines(findings: list[Finding]) -> list[str]:
    """What Entra's records said during the run, as a check prints its findings: the code
    and severity, the message, then the fix."""
    return [line for found in findings for line in (f"finding {found.code} ({found.severity.value}): {found.message}", f"    fix: {found.fix}")]


def _print_result(outcome: Outcome, out: IO[str], as_json: bool) -> None:
    result = outcome.result
    if as_json:
        write_json(outcome_json(outcome), out)
        return
    for line in result.actions:
        out.write(f"  {line}\n")
    for line in event_lines(outcome.events):
        out.write(f"{line}\n")
    for line in finding_lines(result.findings):
        out.write(f"{line}\n")
    out.write(f"{result.facility}: {result.stage}" + (f" (keyId {result.key_id})" if result.key_id else "") + "\n")
    if result.error:
        out.write(f"error: {result.error}\n")


class PropagationLine:
    """The rotation's clock, saying on a terminal that the run is waiting: its one sleep is
    the verify step's, between token requests with the new secret while Entra propagates
    it (rotation.protocol.Rotator._verify). One line, rewritten in place, gone at the end."""

    def __init__(self, clock: Clock, stream: IO[str], facility: str, deadline: float) -> None:
        self._clock, self._stream = clock, stream
        self._facility, self._deadline = facility, deadline
        self._since: datetime | None = None
        self.shown = False

    def now(self) -> datetime:
        return self._clock.now()

    async def sleep(self, seconds: float) -> None:
        if self._since is None:
            self._since = self._clock.now()
        waited = (self._clock.now() - self._since).total_seconds()
        self._stream.write(
            f"\r\x1b[2K{self._facility}: waiting for Entra to accept the new secret (propagation): {waited:.0f} s so far, at most {self._deadline:g} s"
        )
        self._stream.flush()
        self.shown = True
        await self._clock.sleep(seconds)

    def clear(self) -> None:
        if self.shown:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, OSError):
        return False


def _alert(service: MonitorService, outcome: Outcome, alert_state: Path | None, err: IO[str]) -> bool:
    """With --alert: the run's events to the channels (True when all went, or nothing to do)."""
    if alert_state is None or not outcome.events:
        return True
    alerting = MonitorService(service.config, alert_state=alert_state)
    return deliver(alert_state, err, lambda: alerting.alert_events(outcome.events, datetime.now(UTC)))


def rotate_command(
    config: MonitorConfig,
    facility: str,
    *,
    dry_run: bool,
    force: bool,
    as_json: bool = False,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    service: MonitorService | None = None,
    alert_state: Path | None = None,
    clock: Clock | None = None,
) -> int:
    """``clock``: the rotation's time (default the system's); on a terminal, a line on
    ``err`` shows the wait for propagation."""
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED
    line = None
    if service is None:
        if _is_terminal(err):
            deadline = RotationSettings.from_config(config).verify_deadline
            clock = line = PropagationLine(clock or SystemClock(), err, app.facility, deadline)
        service = MonitorService(config, clock=clock)
    try:
        outcome = _run(service, lambda: service.rotate(app, dry_run=dry_run, force=force))
    finally:
        if line is not None:
            line.clear()
    if dry_run and not as_json:
        out.write(f"Dry run for {facility}: nothing was changed.\n")
    _print_result(outcome, out, as_json)
    alerted = dry_run or _alert(service, outcome, alert_state, err)
    return worst_exit(EXIT_CRITICAL if outcome.result.error else EXIT_OK, EXIT_OK if alerted else EXIT_MONITOR_FAILED)


def confirm_command(
    config: MonitorConfig,
    facility: str,
    key_id: str,
    who: str,
    *,
    as_json: bool = False,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    service: MonitorService | None = None,
    alert_state: Path | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED
    service = service or MonitorService(config)
    try:
        outcome = _run(service, lambda: service.confirm(app, key_id, who))
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_CRITICAL
    _print_result(outcome, out, as_json)
    alerted = _alert(service, outcome, alert_state, err)
    return worst_exit(EXIT_CRITICAL if outcome.result.error else EXIT_OK, EXIT_OK if alerted else EXIT_MONITOR_FAILED)


def push_command(
    config: MonitorConfig,
    facility: str,
    who: str,
    *,
    dry_run: bool = False,
    as_json: bool = False,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    service: MonitorService | None = None,
) -> int:
    """Push the secret SmartTrace should hold to it again (http handoff mode)."""
    out, err = out or sys.stdout, err or sys.stderr
    app = _app(config, facility, err)
    if app is None:
        return EXIT_MONITOR_FAILED
    if app.handoff.mode != "http":
        # Nothing is broken: the command does not apply to this facility (bad usage, 3).
        err.write(f"sso-monitor: {app.facility} hands secrets off manually; there is nothing to push (handoff.mode is {app.handoff.mode})\n")
        return EXIT_MONITOR_FAILED
    service = service or MonitorService(config)
    try:
        outcome = _run(service, lambda: service.push(app, who, dry_run=dry_run))
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_CRITICAL
    _print_result(outcome, out, as_json)
    return EXIT_CRITICAL if outcome.result.error else EXIT_OK


def status_command(
    config: MonitorConfig, *, as_json: bool = False, out: IO[str] | None = None, err: IO[str] | None = None, service: MonitorService | None = None
) -> int:
    """Each app's stage. The exit code is check's rule: an app whose stage could not
    be read is 2 (no one can vouch for it), no app read at all is 3."""
    out, err = out or sys.stdout, err or sys.stderr
    service = service or MonitorService(config)
    statuses, failures = _run(service, lambda: service.rotation_statuses(config.apps))
    code = EXIT_MONITOR_FAILED if failures and not statuses else EXIT_CRITICAL if failures else EXIT_OK
    for facility, problem in failures:
        err.write(f"sso-monitor: {facility}: the rotation stage could not be read: {problem}\n")
    if as_json:
        write_json(statuses_json(statuses, failures), out)
        return code
    for status in statuses:
        expires = f", expires {status.current_expires:%Y-%m-%d}" if status.current_expires else ""
        flight = f"; rotation in flight: keyId {status.in_flight_key_id} ({status.stage})" if status.in_flight_key_id else ""
        retiring = f"; retiring after grace: {', '.join(status.retiring)}" if status.retiring else ""
        out.write(f"{status.facility}: {status.stage}; current keyId {status.current_key_id or '-'}{expires}{flight}{retiring}\n")
    return code


def adopt_command(
    config: MonitorConfig,
    facility: str,
    *,
    key_id: str | None,
    from_vault: bool,
    as_json: bool = False,
    stdin: IO[str] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    service: MonitorService | None = None,
) -> int:
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
    service = service or MonitorService(config)
    try:
        outcome = _run(service, lambda: service.adopt(app, value, key_id))
    except MonitorError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_CRITICAL
    _print_result(outcome, out, as_json)
    return EXIT_CRITICAL if outcome.result.error else EXIT_OK


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
