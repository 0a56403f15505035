"""The `sso-monitor` command line: thin, it parses and calls one function per command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__


EXIT_USAGE = 3  # docs/decisions.md, "Exit codes": a command that cannot run is the monitor failing, not "critical"


class _Parser(argparse.ArgumentParser):
    """argparse, exiting 3 on bad usage (its own 2 would read as "critical")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sso-monitor", description="Keeps SmartTrace's Sign in with Microsoft working.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail (never secret values)")
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser("sandbox", help="run the local simulated cloud until interrupted")
    sandbox.add_argument("--scenario", type=Path, help="scenario file (default: the built-in demo scenario)")
    sandbox.add_argument("--state-dir", type=Path, default=Path(".sandbox"), help="where the CA and the settings file go (default .sandbox)")

    check = commands.add_parser("check", help="check every configured app (or one) and report")
    check.add_argument("--config", help="configuration file (default: the SSO_MONITOR_CONFIG setting: a path or the JSON itself)")
    check.add_argument("--app", metavar="FACILITY", help="check only this facility")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--alert", action="store_true", help="also send alerts through the configured channels (each change once)")
    check.add_argument("--alert-state", type=Path, default=None, help="where --alert remembers what it said (default .sso-monitor/alert-state.json)")

    snooze = commands.add_parser("snooze", help="silence alerts for one finding of one facility until a date")
    snooze.add_argument("facility")
    snooze.add_argument("code", help="the finding code, e.g. LOGOUT_URL_MISMATCH (docs/checks.md)")
    snooze.add_argument("--until", required=True, help="ISO date or date-time (UTC), e.g. 2026-12-31")
    snooze.add_argument("--reason", default="", help="why (kept with the snooze)")
    snooze.add_argument("--alert-state", type=Path, default=None, help="the alert state file (default .sso-monitor/alert-state.json)")
    snooze.add_argument("--config")

    rotate = commands.add_parser("rotate", help="rotate one facility's client secret when due (or --force)")
    rotate.add_argument("facility")
    rotate.add_argument("--config", help="configuration file (default: SSO_MONITOR_CONFIG)")
    rotate.add_argument("--dry-run", action="store_true", help="print the plan; change nothing anywhere")
    rotate.add_argument("--force", action="store_true", help="rotate even if the current secret is not due")
    rotate.add_argument("--json", action="store_true")
    rotate.add_argument("--alert", action="store_true", help="also send the rotation's events through the configured channels")
    rotate.add_argument("--alert-state", type=Path, default=None, help="where --alert remembers what it said (default .sso-monitor/alert-state.json)")

    status = commands.add_parser("status", help="the stage of each app's rotation")
    status.add_argument("--config")
    status.add_argument("--json", action="store_true")

    confirm = commands.add_parser("confirm", help="confirm SmartTrace holds the new secret (manual handoff)")
    confirm.add_argument("facility")
    confirm.add_argument("--key-id", required=True, help="the new secret's keyId, as given in the handoff message")
    confirm.add_argument("--config")
    confirm.add_argument("--alert", action="store_true", help="also send the completion through the configured channels")
    confirm.add_argument("--alert-state", type=Path, default=None, help="the alert state file (default .sso-monitor/alert-state.json)")

    push = commands.add_parser("push", help="push the secret SmartTrace should hold to it again (http handoff)")
    push.add_argument("facility")
    push.add_argument("--dry-run", action="store_true", help="say what would be pushed; send nothing")
    push.add_argument("--config")

    adopt = commands.add_parser("adopt", help="bring an existing hand-made secret under management")
    adopt.add_argument("facility")
    adopt.add_argument("--key-id", help="the credential's keyId, when its hint is ambiguous")
    adopt.add_argument("--from-vault", action="store_true", help="the value is already in Key Vault; read nothing from standard input")
    adopt.add_argument("--config")

    demo = commands.add_parser("demo", help="start the sandbox and show the monitor at work on it")
    demo.add_argument("--scenario", type=Path, help="scenario file (default: the built-in demo scenario)")
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


class _Scrubbed:
    """A text stream whose writes are scrubbed of every fragment of a secret this
    process holds (redact.py): the net under everything the CLI prints."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from .redact import scrub

        return self._stream.write(scrub(text))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    if not isinstance(sys.stdout, _Scrubbed):
        sys.stdout, sys.stderr = _Scrubbed(sys.stdout), _Scrubbed(sys.stderr)  # type: ignore[assignment]
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("sso-monitor: interrupted", file=sys.stderr)
        return 130
    # Broad on purpose: whatever went wrong, a person sees one line and exit 3, never a
    # traceback (it is in the log with -v).
    except Exception as exc:  # noqa: BLE001
        from .errors import MonitorError

        logging.getLogger("sso_monitor.cli").debug("the command failed", exc_info=True)
        if isinstance(exc, MonitorError):
            print(f"sso-monitor: {exc}", file=sys.stderr)
        else:
            print(f"sso-monitor: the command failed ({type(exc).__name__}); run it again with -v for the details", file=sys.stderr)
        return 3


def _main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # The token probe expects refusals; azure-identity logs each as a warning.
        # Our own report states them as findings, so keep the SDKs' chatter out.
        for noisy in ("azure", "msal", "httpx", "kiota_http"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.command == "sandbox":
        from .sandbox.serve import serve

        return serve(args.scenario, args.state_dir)
    if args.command in ("check", "rotate", "status", "confirm", "push", "adopt", "snooze"):
        from .config import load_config
        from .errors import ConfigError

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"sso-monitor: {exc}", file=sys.stderr)
            return 3
        return _run_command(args, config)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.scenario, as_json=args.json)
    raise AssertionError(args.command)  # argparse rejects unknown commands first


def _run_command(args: argparse.Namespace, config) -> int:
    from .alert_commands import DEFAULT_STATE

    # --alert (or an explicit --alert-state): send alerts, remembering what was said in that file
    alert_state = (args.alert_state or DEFAULT_STATE) if getattr(args, "alert", False) or getattr(args, "alert_state", None) else None
    if args.command == "check":
        from .checking import check_and_report

        return check_and_report(config, facility=args.app, as_json=args.json, alert_state=alert_state)
    if args.command == "snooze":
        import getpass
        from datetime import datetime, timezone

        from .alert_commands import snooze_command

        return snooze_command(
            config, args.facility, args.code, args.until, reason=args.reason, who=f"cli:{getpass.getuser()}",
            state=args.alert_state or DEFAULT_STATE, now=datetime.now(timezone.utc), out=sys.stdout, err=sys.stderr,
        )
    from . import rotating

    if args.command == "rotate":
        return rotating.rotate_command(config, args.facility, dry_run=args.dry_run, force=args.force, as_json=args.json, alert_state=alert_state)
    if args.command == "status":
        return rotating.status_command(config, as_json=args.json)
    if args.command == "confirm":
        import getpass

        return rotating.confirm_command(config, args.facility, args.key_id, f"cli:{getpass.getuser()}", alert_state=alert_state)
    if args.command == "push":
        import getpass

        return rotating.push_command(config, args.facility, f"cli:{getpass.getuser()}", dry_run=args.dry_run)
    return rotating.adopt_command(config, args.facility, key_id=args.key_id, from_vault=args.from_vault)


if __name__ == "__main__":
    sys.exit(main())
