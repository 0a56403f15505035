"""`sso-monitor demo`: the real check, against the built-in sandbox.

Starts the sandbox with a scenario (default: seven facilities in two tenants,
one healthy and six each with a typical problem), builds the same kind of
configuration a real deployment uses, only pointed at the sandbox, and runs
the real check through the real SDKs over HTTPS.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .checking import check_and_report
from .config import parse_config
from .report import EXIT_MONITOR_FAILED
from .sandbox.runtime import Sandbox
from .sandbox.scenario import scenario_refs
from .sandbox.serve import BUILTIN_SCENARIO
from .sandbox.settings import monitor_document


def run_demo(scenario: Path | None, as_json: bool = False) -> int:
    with Sandbox.from_scenario(scenario or BUILTIN_SCENARIO) as sandbox:
        document, environ = monitor_document(sandbox)
        config = parse_config(document, environ)
        if not as_json:
            description = scenario_refs(sandbox.world).description
            print(f"Sandbox: {description or 'scenario'}")
            print(f"Checking {len(config.apps)} SmartTrace apps in {len({a.tenant_id for a in config.apps})} tenants over HTTPS (Graph, Entra, Key Vault, SmartTrace)...\n")
            sys.stdout.flush()
        code = check_and_report(config, as_json=as_json, now=sandbox.world.now())
    # The demo's world is broken on purpose: findings are its point, not a failure.
    # Only a monitor failure (exit code 3) fails the demo.
    return code if code == EXIT_MONITOR_FAILED else 0
