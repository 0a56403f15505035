"""`sso-monitor demo`: the real check, against the built-in sandbox.

Starts the sandbox with a scenario (default: seven facilities in two tenants,
one healthy and six each with a typical problem), builds the same kind of
configuration a real deployment uses, only pointed at the sandbox, and runs
the real check through the real SDKs over HTTPS. Then the alerts: each
finding to the scenario's first Teams webhook, the monitor's own failures by
SMTP, as a deployment configured with those channels would send them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from .checking import check_and_report
from .config import parse_config
from .report import EXIT_MONITOR_FAILED
from .sandbox.runtime import Sandbox
from .sandbox.scenario import scenario_refs
from .sandbox.serve import BUILTIN_SCENARIO
from .sandbox.settings import monitor_document


def run_demo(scenario: Path | None, as_json: bool = False) -> int:
    with Sandbox.from_scenario(scenario or BUILTIN_SCENARIO) as sandbox, tempfile.TemporaryDirectory() as state:
        document, environ = monitor_document(sandbox)
        webhook = _demo_channels(sandbox, document)
        config = parse_config(document, environ)
        if not as_json:
            description = scenario_refs(sandbox.world).description
            print(f"Sandbox: {description or 'scenario'}")
            print(f"Checking {len(config.apps)} SmartTrace apps in {len({a.tenant_id for a in config.apps})} tenants over HTTPS (Graph, Entra, Key Vault, SmartTrace)...\n")
            sys.stdout.flush()
        alert_state = Path(state) / "alerts.json" if webhook else None
        code = check_and_report(config, as_json=as_json, now=sandbox.world.now(), alert_state=alert_state)
        if webhook and not as_json:
            _print_alerts(sandbox, webhook)
    # The demo's world is broken on purpose: findings are its point, not a failure.
    # Only a monitor failure (exit code 3) fails the demo.
    return code if code == EXIT_MONITOR_FAILED else 0


def _demo_channels(sandbox: Sandbox, document: dict[str, Any]) -> str | None:
    """A Teams channel on the scenario's first webhook, and SMTP for operations when the
    scenario has an SMTP user; their secrets go into the monitor's vault, as in Azure."""
    world = sandbox.world
    if not world.webhooks or sandbox.endpoints is None:
        return None
    webhook = next(iter(world.webhooks))
    vault = world.vault(next(iter(sandbox.endpoints.vaults)))
    world.set_secret(vault, "demo-teams-webhook", sandbox.endpoints.webhook_url(webhook))
    document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "demo-teams-webhook"}}
    document["alerts"] = {"channels": ["teams"]}
    if world.smtp_users:
        login, password = next(iter(world.smtp_users.items()))
        world.set_secret(vault, "demo-smtp-password", password)
        document["channels"]["ops-mail"] = {
            "type": "smtp", "host": sandbox.endpoints.smtp_host, "port": sandbox.endpoints.smtp_port, "from": login,
            "username": login, "passwordSecretName": "demo-smtp-password", "to": [login],
        }
        document["alerts"]["operations"] = ["ops-mail"]
    return webhook


def _print_alerts(sandbox: Sandbox, webhook: str) -> None:
    cards = sandbox.world.webhooks[webhook].received
    print(f"\nAlerts: {len(cards)} Teams card{'' if len(cards) == 1 else 's'} posted to the webhook {webhook!r} (each change once; the next run says only what changed):")
    for payload in cards:
        print(f"  {payload['attachments'][0]['content'].get('fallbackText', '')}")
    mail = [m for m in sandbox.world.mail if m.via == "smtp"]
    if mail:
        print(f"  and {len(mail)} email{'' if len(mail) == 1 else 's'} to operations: " + "; ".join(m.subject for m in mail))
