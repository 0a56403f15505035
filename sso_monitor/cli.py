"""The `sso-monitor` command line: thin, it parses and calls one function per command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sso-monitor", description="Keeps SmartTrace's Sign in with Microsoft working.")
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

    demo = commands.add_parser("demo", help="start the sandbox and show the monitor at work on it")
    demo.add_argument("--scenario", type=Path, help="scenario file (default: the built-in demo scenario)")
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # The token probe expects refusals; azure-identity logs each as a warning.
        # Our own report states them as findings, so keep the SDKs' chatter out.
        for noisy in ("azure", "msal", "httpx", "kiota_http"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.command == "sandbox":
        from .sandbox.serve import serve

        return serve(args.scenario, args.state_dir)
    if args.command == "check":
        from .checking import check_and_report
        from .config import load_config
        from .errors import ConfigError
        from .report import EXIT_MONITOR_FAILED

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"sso-monitor: {exc}", file=sys.stderr)
            return EXIT_MONITOR_FAILED
        return check_and_report(config, facility=args.app, as_json=args.json)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.scenario, as_json=args.json)
    raise AssertionError(args.command)  # argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
