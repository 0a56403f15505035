"""The `sso-monitor sandbox` and `sso-monitor demo` commands (the monitor's CLI parses
their arguments and hands them here when this distribution is installed).

``problem`` says first, in the words of the configuration's own errors, why the input
cannot be used, before anything starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from sso_sandbox.clock import parse_iso
from sso_sandbox.scenario import ClockChoice, ScenarioError, load_scenario


def problem(args: argparse.Namespace) -> str | None:
    """Why the command cannot start (the monitor's CLI says it and exits as for bad usage)."""
    if args.command != "sandbox":
        return scenario_problem(args.scenario)
    return frozen_now_problem(getattr(args, "frozen_now", None)) or scenario_problem(args.scenario) or state_dir_problem(args.state_dir)


def run(args: argparse.Namespace) -> int:
    """Run `sandbox` or `demo` (``problem(args)`` first); the demo's exit code is the check's."""
    if args.command == "sandbox":
        from sso_sandbox.serve import serve

        return serve(args.scenario, args.state_dir, now=clock_choice(getattr(args, "frozen_now", None)))
    from sso_sandbox.demo import run_demo

    return run_demo(args.scenario, as_json=args.json)


def clock_choice(frozen_now: str | None) -> ClockChoice:
    """`sandbox`'s clock: the real time, running, unless --frozen-now [WHEN] freezes it
    (without WHEN: at the scenario's now, or at the start). ``frozen_now_problem`` first."""
    if frozen_now is None:
        return "real"
    if not frozen_now.strip():
        return "frozen"
    return parse_iso(frozen_now)


def frozen_now_problem(frozen_now: str | None) -> str | None:
    if frozen_now is None or not frozen_now.strip():
        return None
    try:
        parse_iso(frozen_now)
    except (ValueError, OverflowError):
        return f"--frozen-now {frozen_now!r}: expected an ISO 8601 date-time, e.g. 2026-12-01T09:00:00Z"
    return None


MAX_SCENARIO_CHARS = 20_000_000


def scenario_problem(path: Path | None) -> str | None:
    """Why ``--scenario`` cannot be loaded (None: it can, or none was given), said
    before anything starts, in the words of the configuration's own errors."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"{path}: cannot read the scenario file ({exc.strerror or exc})"
    except UnicodeDecodeError as exc:
        return f"{path}: the scenario file is not UTF-8 text (byte {exc.start})"
    except ValueError:  # a NUL byte in the name
        return f"{str(path)!r} is not a file name"
    if len(text) > MAX_SCENARIO_CHARS:
        return f"{path}: the scenario is larger than {MAX_SCENARIO_CHARS // 1_000_000} MB"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{path}: the scenario is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    except RecursionError:
        return f"{path}: the scenario is nested too deeply"
    except ValueError:  # an integer literal longer than Python converts (sys.get_int_max_str_digits)
        return f"{path}: the scenario holds a number too long to read"
    if not isinstance(data, dict):
        return f"{path}: a scenario is a JSON object"
    try:
        load_scenario(data)
    except ScenarioError as exc:  # a ValueError: the message names the field
        return f"{path}: {exc}"
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # the loader's own checks missed this shape; still the file's fault, not ours
        logging.getLogger("sso_sandbox.cli").debug("scenario %s", path, exc_info=True)
        return f"{path}: not a scenario the sandbox can load ({type(exc).__name__}: {exc})"
    return None


def state_dir_problem(path: Path) -> str | None:
    """Why the sandbox cannot keep its CA and settings file in ``--state-dir``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{path}: cannot use it as the sandbox's state directory ({exc.strerror or exc})"
    except ValueError:
        return f"{str(path)!r} is not a directory name"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path}: the sandbox's state directory is not writable"
    return None
