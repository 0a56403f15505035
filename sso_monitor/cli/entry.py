"""The `sso-monitor` command line: thin, it parses and calls one function per command."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import sso_monitor.cli.discover as discovering
from sso_monitor import __version__
from sso_monitor.cli.exits import EXIT_MONITOR_FAILED
from sso_monitor.config import load_config
from sso_monitor.errors import ConfigError, MonitorError
from sso_monitor.redact import scrub

# docs/decisions.md, "Exit codes": a command that cannot run is the monitor failing, not "critical"
EXIT_USAGE = EXIT_MONITOR_FAILED

CONFIG_HELP = "configuration file, or the JSON itself (default: the SSO_MONITOR_CONFIG setting, a path or the JSON)"
JSON_HELP = "machine-readable output: JSON with camelCase keys and ISO 8601 UTC times, as the admin API answers"
FACILITY_HELP = "the facility (SmartTrace instance name) as configured, e.g. riverside"


class _Parser(argparse.ArgumentParser):
    """argparse, exiting 3 on bad usage (its own 2 would read as "critical")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # `--until=--`: Python 3.11's argparse drops an explicit "--" value as if it were
        # the end-of-options marker and hands the command an empty list instead of a
        # string. The value is what was typed.
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sso-monitor", description="Keeps SmartTrace's Sign in with Microsoft working.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail (never secret values)")
    # --config before the command too (`sso-monitor --config .sandbox/apps.json check`); the
    # commands' own --config defaults to SUPPRESS so that, absent there, it leaves this one alone.
    parser.add_argument("--config", help=CONFIG_HELP)
    # -v after the command too (`sso-monitor check -v`); SUPPRESS: absent there, it
    # leaves the one given before the command alone.
    verbose = _Parser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug detail (never secret values)")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[verbose])

    sandbox = command("sandbox", help="run the local simulated cloud until interrupted")
    sandbox.add_argument("--scenario", type=Path, help="scenario file (default: the built-in demo scenario)")
    sandbox.add_argument(
        "--state-dir", type=Path, default=Path(".sandbox"), help="where the CA, the monitor's apps.json and its env file go (default .sandbox)"
    )
    sandbox.add_argument(
        "--frozen-now",
        nargs="?",
        const="",
        metavar="WHEN",
        help="freeze the sandbox's clock at WHEN (ISO 8601), or without WHEN at the scenario's now or the start (default: the real time, running)",
    )

    check = command("check", help="check every configured app (or one) and report")
    check.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    check.add_argument("--app", metavar="FACILITY", help="check only this facility")
    check.add_argument("--json", action="store_true", help=JSON_HELP + "; each app's secretExpires and daysLeft as fields")
    check.add_argument("--alert", action="store_true", help="also send alerts through the configured channels (each change once)")
    check.add_argument("--alert-state", type=Path, default=None, help="where --alert remembers what it said (default .sso-monitor/alert-state.json)")

    snooze = command("snooze", help="silence alerts for one finding of one facility until a date")
    snooze.add_argument("facility", help=FACILITY_HELP)
    snooze.add_argument("code", help="the finding code, e.g. LOGOUT_URL_MISMATCH (docs/checks.md)")
    snooze.add_argument("--until", required=True, help="ISO date or date-time (UTC), e.g. 2026-12-31")
    snooze.add_argument("--reason", default="", help="why (kept with the snooze)")
    snooze.add_argument("--alert-state", type=Path, default=None, help="the alert state file (default .sso-monitor/alert-state.json)")
    snooze.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    snooze.add_argument("--json", action="store_true", help=JSON_HELP)

    rotate = command("rotate", help="rotate one facility's client secret when due (or --force)")
    rotate.add_argument("facility", help=FACILITY_HELP)
    rotate.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    rotate.add_argument("--dry-run", action="store_true", help="print the plan; change nothing anywhere")
    rotate.add_argument("--force", action="store_true", help="rotate even if the current secret is not due")
    rotate.add_argument("--json", action="store_true", help=JSON_HELP)
    rotate.add_argument("--alert", action="store_true", help="also send the rotation's events through the configured channels")
    rotate.add_argument("--alert-state", type=Path, default=None, help="where --alert remembers what it said (default .sso-monitor/alert-state.json)")

    status = command("status", help="the stage of each app's rotation")
    status.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    status.add_argument("--json", action="store_true", help=JSON_HELP)

    confirm = command("confirm", help="confirm SmartTrace holds the new secret (manual handoff)")
    confirm.add_argument("facility", help=FACILITY_HELP)
    confirm.add_argument("--key-id", required=True, help="the new secret's keyId, as given in the handoff message")
    confirm.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    confirm.add_argument("--json", action="store_true", help=JSON_HELP)
    confirm.add_argument("--alert", action="store_true", help="also send the completion through the configured channels")
    confirm.add_argument("--alert-state", type=Path, default=None, help="the alert state file (default .sso-monitor/alert-state.json)")

    push = command("push", help="push the secret SmartTrace should hold to it again (http handoff)")
    push.add_argument("facility", help=FACILITY_HELP)
    push.add_argument("--dry-run", action="store_true", help="say what would be pushed; send nothing")
    push.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    push.add_argument("--json", action="store_true", help=JSON_HELP)

    adopt = command("adopt", help="bring an existing hand-made secret under management")
    adopt.add_argument("facility", help=FACILITY_HELP)
    adopt.add_argument("--key-id", help="the credential's keyId, when its hint is ambiguous")
    adopt.add_argument("--from-vault", action="store_true", help="the value is already in Key Vault; read nothing from standard input")
    adopt.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    adopt.add_argument("--json", action="store_true", help=JSON_HELP)

    demo = command("demo", help="start the sandbox and show the monitor at work on it")
    demo.add_argument("--scenario", type=Path, help="scenario file (default: the built-in demo scenario)")
    demo.add_argument("--json", action="store_true", help=JSON_HELP)
    discovering.arguments(command("discover", help="find the tenant's SmartTrace app registrations, their health, and write or merge their configuration"))
    return parser


class _Scrubbed:
    """A text stream whose writes are scrubbed of every fragment of a secret this
    process holds (redact.py): the net under everything the CLI prints."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:

        return self._stream.write(scrub(text))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """The exit code by docs/decisions.md, "Exit codes", whatever happens: 0-3, or 130
    when interrupted; never a traceback (it is in the log with -v)."""
    _usable_streams()
    if not isinstance(sys.stdout, _Scrubbed):
        sys.stdout, sys.stderr = _Scrubbed(sys.stdout), _Scrubbed(sys.stderr)
    try:
        args = _parser().parse_args(argv)
        code = _main(args)
        sys.stdout.flush()  # a reader that went away is found here, not at interpreter exit
        return code
    except SystemExit as exc:  # argparse: --help and --version (0), bad usage (3)
        return _exit_status(exc)
    except KeyboardInterrupt:
        _say("sso-monitor: interrupted")
        return 130
    except BrokenPipeError:
        # The reader of standard output went away (`sso-monitor status | head -1`): what
        # is still buffered goes nowhere, and the interpreter's own flush at exit must
        # not fail again (it would print "Exception ignored" and exit 120).
        _discard_stdout()
        _say("sso-monitor: standard output was closed before everything was written")
        return EXIT_USAGE
    # Broad on purpose: whatever went wrong, a person sees one line and exit 3, never a
    # traceback (it is in the log with -v).
    except Exception as exc:
        logging.getLogger("sso_monitor.cli.entry").debug("the command failed", exc_info=True)
        if isinstance(exc, MonitorError):
            _say(f"sso-monitor: {exc}")
        else:
            _say(f"sso-monitor: the command failed ({type(exc).__name__}); run it again with -v for the details")
        return EXIT_USAGE


_EXIT_CODES = (0, 1, 2, 3, 130)


def _exit_status(exc: SystemExit) -> int:
    """A SystemExit as the documented exit code: the interpreter would make a message
    into 1 ("warnings"), and any other number means nothing here."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int) and exc.code in _EXIT_CODES:
        return exc.code
    if not isinstance(exc.code, int):
        _say(f"sso-monitor: {exc.code}")
    return EXIT_USAGE


def _say(line: str) -> None:
    """One line on standard error, even when standard error itself is gone."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # closed, or a broken pipe: nowhere left to say it
        pass


def _usable_streams() -> None:
    """A stream that was closed before the process started (`sso-monitor check >&-`)
    is None in Python: writing to it would fail in the middle of a command."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests, embedding): nothing buffered to lose
        pass


def _main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # The token probe expects refusals; azure-identity logs each as a warning.
        # Our own report states them as findings, so keep the SDKs' chatter out.
        for noisy in ("azure", "msal", "httpx", "kiota_http"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        # The check's Key Vault reads: each failure is its app's CHECK_FAILED finding
        # already (a warning per app said it again, 500 times without a credential).
        logging.getLogger("sso_monitor.adapters.keyvault.reader").setLevel(logging.ERROR)
    if args.command in ("sandbox", "demo"):
        return _sandbox_command(args)
    if args.command == "discover":
        return discovering.run(args)
    if args.command in ("check", "rotate", "status", "confirm", "push", "adopt", "snooze"):
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"sso-monitor: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ValueError as exc:
            # What load_config does not make a ConfigError yet: a NUL byte in the path,
            # an integer literal longer than Python converts. Still the input's fault.
            logging.getLogger("sso_monitor.cli.entry").debug("the configuration", exc_info=True)
            print(f"sso-monitor: invalid configuration: {_first_clause(exc)}", file=sys.stderr)
            return EXIT_USAGE
        return _run_command(args, config)
    raise AssertionError(args.command)  # argparse rejects unknown commands first


SANDBOX_MISSING = (
    "the sandbox is not installed: it is a separate distribution, never part of the monitor's "
    "deployment. From a clone of the repository: pip install -e ./sandbox (make demo does it)."
)


def _sandbox_command(args: argparse.Namespace) -> int:
    """`sandbox` and `demo` belong to the sandbox's distribution (sandbox/, package
    sso_sandbox); the monitor names it only here, and runs without it."""
    try:
        from sso_sandbox import cli as sandbox
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "sso_sandbox":
            raise
        print(f"sso-monitor: {SANDBOX_MISSING}", file=sys.stderr)
        return EXIT_USAGE
    problem = sandbox.problem(args)
    if problem is not None:
        print(f"sso-monitor: {problem}", file=sys.stderr)
        return EXIT_USAGE
    return sandbox.run(args)


def _first_clause(exc: Exception) -> str:
    """An exception's message up to its first ';' (Python's advice after it is for programmers)."""
    return str(exc).split(";")[0].strip() or type(exc).__name__


def _run_command(args: argparse.Namespace, config) -> int:
    from sso_monitor.cli.alerts import DEFAULT_STATE

    # --alert (or an explicit --alert-state): send alerts, remembering what was said in that file
    alert_state = (args.alert_state or DEFAULT_STATE) if getattr(args, "alert", False) or getattr(args, "alert_state", None) else None
    if args.command == "check":
        from sso_monitor.cli.check import check_and_report

        return check_and_report(config, facility=args.app, as_json=args.json, alert_state=alert_state)
    if args.command == "snooze":
        from sso_monitor.cli.alerts import snooze_command

        return snooze_command(
            config,
            args.facility,
            args.code,
            args.until,
            reason=args.reason,
            who=_who(),
            state=args.alert_state or DEFAULT_STATE,
            now=datetime.now(UTC),
            out=sys.stdout,
            err=sys.stderr,
            as_json=args.json,
        )
    import sso_monitor.cli.rotate as rotating

    if args.command == "rotate":
        return rotating.rotate_command(config, args.facility, dry_run=args.dry_run, force=args.force, as_json=args.json, alert_state=alert_state)
    if args.command == "status":
        return rotating.status_command(config, as_json=args.json)
    if args.command == "confirm":
        return rotating.confirm_command(config, args.facility, args.key_id, _who(), as_json=args.json, alert_state=alert_state)
    if args.command == "push":
        return rotating.push_command(config, args.facility, _who(), dry_run=args.dry_run, as_json=args.json)
    return rotating.adopt_command(config, args.facility, key_id=args.key_id, from_vault=args.from_vault, as_json=args.json)


def _who() -> str:
    """Who acts, for the audit trail: the login name, or the uid where there is none (a
    container's arbitrary uid has no passwd entry: getpass.getuser() raises there)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError, ImportError):
        name = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{name.encode('utf-8', 'backslashreplace').decode('utf-8')}"


if __name__ == "__main__":
    sys.exit(main())
