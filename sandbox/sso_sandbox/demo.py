"""`sso-monitor demo`: the real check, against the built-in sandbox.

Starts the sandbox with a scenario (default: eight facilities in two tenants,
one healthy and seven each with a typical problem), builds the same kind of
configuration a real deployment uses, only pointed at the sandbox, and runs
the real check through the real SDKs over HTTPS. Then the alerts: each
finding to the scenario's first Teams webhook, the monitor's own failures by
SMTP, as a deployment configured with those channels would send them. Last,
a rotation: the first app whose secret is due is rotated with a manual
handoff, the administrator's paste and confirmation are played, and the
alerts of each step are posted too. The rotation runs on simulated time, so
the new secret's propagation delay passes at once.

Entra's sign-in records are read too (docs/evidence.md): every app has
``signIns`` enabled and the monitor may read the log (AuditLog.Read.All, a
P1/P2 tenant). Yesterday each facility's users signed in (valley's were
refused: its secret had expired); since then summit's SmartTrace was given a
wrong secret value and its users are refused, which only the sign-in log
shows (SIGN_IN_FAILING: Key Vault and Entra still agree). The rotation's
handoff is confirmed by activity (``handoff.confirmation: activity``): the
administrator pastes the new secret, a user signs in, and the next step of
the protocol confirms from Entra's records, with no ``confirm`` typed.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from sso_monitor.cli.check import check_and_report
from sso_monitor.cli.exits import EXIT_MONITOR_FAILED
from sso_monitor.config import parse_config
from sso_sandbox.runtime import Sandbox
from sso_sandbox.scenario import scenario_refs
from sso_sandbox.serve import BUILTIN_SCENARIO
from sso_sandbox.settings import monitor_document
from sso_sandbox.signin_records import record_user_sign_in, records
from sso_sandbox.world import GRAPH_RESOURCE

# The facility whose SmartTrace holds a wrong secret value, caught from its users' sign-ins.
FAILING_FACILITY = "summit"
# The handoff confirmed by Entra's records, not by a person (the rotation's app, when the scenario has it).
ACTIVITY_FACILITY = "harbor"


def run_demo(scenario: Path | None, as_json: bool = False) -> int:
    with Sandbox.from_scenario(scenario or BUILTIN_SCENARIO) as sandbox, tempfile.TemporaryDirectory() as state:
        document, environ = monitor_document(sandbox)
        webhook = _demo_channels(sandbox, document)
        _demo_sign_ins(sandbox, document)
        config = parse_config(document, environ)
        if not as_json:
            description = scenario_refs(sandbox.world).description
            print(f"Sandbox: {description or 'scenario'}")
            print(
                f"Checking {len(config.apps)} SmartTrace apps in {len({a.tenant_id for a in config.apps})} tenants over HTTPS (Graph, Entra, Key Vault, SmartTrace)...\n"
            )
            sys.stdout.flush()
        alert_state = Path(state) / "alerts.json" if webhook else None
        reports: list[Any] = []
        code = check_and_report(config, as_json=as_json, now=sandbox.world.now(), alert_state=alert_state, reports=reports)
        if webhook and not as_json:
            _print_alerts(sandbox, webhook)
        if not as_json and reports:
            _demo_rotation(sandbox, config, reports[0], Path(state), webhook)
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
            "type": "smtp",
            "host": sandbox.endpoints.smtp_host,
            "port": sandbox.endpoints.smtp_port,
            "from": login,
            "username": login,
            "passwordSecretName": "demo-smtp-password",
            "to": [login],
        }
        document["alerts"]["operations"] = ["ops-mail"]
    return webhook


def _demo_sign_ins(sandbox: Sandbox, document: dict[str, Any]) -> None:
    """Entra's sign-in records as a second opinion: the log read for every app, the monitor
    allowed to read it, a day of the facilities' sign-ins, and one facility refused since."""
    world = sandbox.world
    for tenant_id, app_id in world.monitors.items():
        tenant = world.tenant(tenant_id)
        sp = tenant.sp_by_app_id(app_id) if tenant else None
        if tenant is None or sp is None:
            continue
        tenant.premium = True  # the sign-in log through Graph needs P1/P2 ...
        roles = sp.granted_roles.setdefault(GRAPH_RESOURCE, [])
        if "AuditLog.Read.All" not in roles:
            roles.append("AuditLog.Read.All")  # ... and AuditLog.Read.All
    for entry in document["apps"]:
        entry["signIns"] = {"enabled": True}
        if entry["facility"] == ACTIVITY_FACILITY:
            entry["handoff"] = {"confirmation": "activity"}
    now = world.now()
    for name in world.facilities:
        # Yesterday's sign-ins: each with the secret its SmartTrace held (refused where it no longer works).
        record_user_sign_in(world, name, user=f"nurse@{name}.example", at=now - timedelta(days=1))
    failing = world.facility(FAILING_FACILITY)
    if failing is None:
        return
    # A wrong value in SmartTrace (an old secret's value, pasted back by mistake): Key Vault and
    # Entra still agree, so only the users' refused sign-ins show it.
    failing.client_secret = "Xq8" + "~" + "old-value-pasted-by-mistake-0123456789"
    for minutes in (50, 30, 10):
        record_user_sign_in(world, FAILING_FACILITY, user=f"nurse@{FAILING_FACILITY}.example", at=now - timedelta(minutes=minutes))


def _print_alerts(sandbox: Sandbox, webhook: str) -> None:
    cards = sandbox.world.webhooks[webhook].received
    print(
        f"\nAlerts: {len(cards)} Teams card{'' if len(cards) == 1 else 's'} posted to the webhook {webhook!r} (each change once; the next run says only what changed):"
    )
    for payload in cards:
        print(f"  {payload['attachments'][0]['content'].get('fallbackText', '')}")
    mail = [m for m in sandbox.world.mail if m.via == "smtp"]
    if mail:
        print(f"  and {len(mail)} email{'' if len(mail) == 1 else 's'} to operations: " + "; ".join(m.subject for m in mail))


def _demo_rotation(sandbox: Sandbox, config: Any, report: Any, state: Path, webhook: str | None) -> None:
    """Rotate the first app the check found expiring, with a manual handoff, end to end."""
    import asyncio

    from sso_monitor.adapters.storage.lease import LocalLease
    from sso_monitor.cli.rotate import event_lines
    from sso_monitor.service import MonitorService
    from sso_sandbox.clock import SimulatedClock

    app = next((r.app for r in report.results if r.app.rotation.mode == "auto" and any(f.code == "SECRET_EXPIRING" for f in r.findings)), None)
    if app is None:
        return
    world = sandbox.world
    cards_before = len(world.webhooks[webhook].received) if webhook else 0
    print(f"\nRotation: {app.facility}'s client secret is due. The protocol runs as the timer's worker would run it:")
    service = MonitorService(config, clock=SimulatedClock(world), lease=LocalLease(state / "locks"), alert_state=state / "alerts.json")

    async def rotate_then_confirm() -> tuple[Any, Any, list[Any]]:
        rotated = await service.rotate(app)
        for line in rotated.result.actions:
            print(f"  {line}")
        waiting = [e for e in rotated.events if e.kind == "awaiting-confirmation"]
        if rotated.result.error or not waiting:
            return rotated.result, None, rotated.events
        print("  The facility's administrator is asked to:")
        for line in event_lines(waiting)[1:]:
            print(line)
        # The administrator pastes the new value into SmartTrace.
        vault = world.vault(next(iter(sandbox.endpoints.vaults)))
        pasted = next(v for v in vault.secrets[app.vault_secret_name].versions if v.tags.get("keyId") == rotated.result.key_id)
        facility = world.facility(app.facility)
        if app.handoff.confirmation == "manual":
            facility.client_secret, facility.key_id = pasted.value, rotated.result.key_id
            confirmed = await service.confirm(app, rotated.result.key_id or "", "the demo's administrator")
        else:
            # Confirmed by activity: past the margin after the monitor's own last use of the new
            # secret (verify), the administrator pastes it and a user signs in through SmartTrace;
            # the next step of the protocol reads Entra's records and confirms, nobody types confirm.
            world.clock.advance(minutes=15)
            facility.client_secret, facility.key_id = pasted.value, rotated.result.key_id
            user = f"nurse@{app.facility}.example"
            code = record_user_sign_in(world, app.facility, user=user)
            print(
                f"  15 minutes later (simulated): the administrator pastes the new secret into SmartTrace and {user} signs in"
                f" ({'it works' if code == 0 else f'refused, AADSTS{code}'}). The next step reads Entra's records:"
            )
            world.clock.advance(minutes=1)
            records(world).budget.clear()  # Entra's reporting limit runs on the real clock: the demo's runs come seconds apart
            confirmed = await service.rotate(app)
        for line in confirmed.result.actions:
            print(f"  {line}")
        events = rotated.events + confirmed.events
        if webhook:
            await service.alert_events(events, world.now())
        return rotated.result, confirmed.result, events

    rotated, confirmed, events = asyncio.run(rotate_then_confirm())
    if rotated.error:
        print(f"  error: {rotated.error}")
        return
    if webhook:
        cards = world.webhooks[webhook].received[cards_before:]
        print(
            f"  Alerts: {len(cards)} more Teams card{'' if len(cards) == 1 else 's'}: "
            + "; ".join(c["attachments"][0]["content"].get("fallbackText", "") for c in cards)
        )
    works = world.sign_in_works(app.facility)
    print(
        f"{app.facility}: {confirmed.stage if confirmed else rotated.stage}, keyId {rotated.key_id}; sign-in with the new secret works: {'yes' if works else 'NO'}."
    )
