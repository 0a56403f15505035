"""`sso-monitor demo`: the sandbox world, seen through the real SDKs.

Until the health checks exist (issue 3) the demo starts the sandbox with the
built-in scenario and, for every facility, reads what the monitor will read:
the app registration from Graph, the secret's metadata from Key Vault, and
whether that secret really signs in at Entra (a client-credentials request;
the value stays in this process). Nothing here prints a secret value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from .sandbox.runtime import Sandbox
from .sandbox.scenario import scenario_refs
from .sandbox.serve import BUILTIN_SCENARIO

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass
class FacilityView:
    facility: str
    tenant_id: str
    app_id: str
    secrets: int
    days_to_expiry: int | None
    logout_url: str | None
    id_tokens: bool
    access_tokens: bool
    vault_secret: str
    vault_key_id: str | None
    sign_in: str


def _credential(sandbox: Sandbox, tenant_id: str, client_id: str, secret: str) -> ClientSecretCredential:
    assert sandbox.endpoints is not None
    return ClientSecretCredential(
        tenant_id,
        client_id,
        secret,
        authority=sandbox.endpoints.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.endpoints.ca_path),
    )


def _sign_in(sandbox: Sandbox, tenant_id: str, app_id: str, secret: str) -> str:
    try:
        _credential(sandbox, tenant_id, app_id, secret).get_token(GRAPH_SCOPE)
        return "works"
    except ClientAuthenticationError as exc:
        message = str(exc)
        code = next((part for part in message.replace(":", " ").split() if part.startswith("AADSTS")), "rejected")
        return f"rejected ({code})"


def collect(sandbox: Sandbox) -> list[FacilityView]:
    assert sandbox.endpoints is not None
    world = sandbox.world
    refs = scenario_refs(world)
    ca = str(sandbox.endpoints.ca_path)
    views: list[FacilityView] = []
    vault_name = next(iter(sandbox.endpoints.vaults))
    vault_tenant = world.vaults[vault_name].tenant_id
    home = refs.monitors[vault_tenant]
    vault = SecretClient(
        sandbox.endpoints.vault(vault_name),
        _credential(sandbox, vault_tenant, home, _monitor_secret(sandbox, vault_tenant, home)),
        verify_challenge_resource=False,
        connection_verify=ca,
    )
    graph_tokens: dict[str, str] = {}
    for facility in world.facilities.values():
        tenant_id = facility.tenant_id
        if tenant_id not in graph_tokens:
            monitor = refs.monitors[tenant_id]
            graph_tokens[tenant_id] = _credential(sandbox, tenant_id, monitor, _monitor_secret(sandbox, tenant_id, monitor)).get_token(GRAPH_SCOPE).token
        answer = requests.get(
            f"{sandbox.endpoints.graph}/applications(appId='{facility.app_id}')",
            params={"$select": "id,appId,displayName,web,passwordCredentials"},
            headers={"Authorization": f"Bearer {graph_tokens[tenant_id]}"},
            verify=ca,
            timeout=30,
        )
        app: dict[str, Any] = answer.json() if answer.ok else {}
        credentials = app.get("passwordCredentials") or []
        ends = [datetime.fromisoformat(c["endDateTime"].replace("Z", "+00:00")) for c in credentials if c.get("endDateTime")]
        days = min(int((end - world.now()).total_seconds() // 86400) for end in ends) if ends else None
        web = app.get("web") or {}
        grants = web.get("implicitGrantSettings") or {}
        secret_name = f"smarttrace-{facility.name}"
        try:
            stored = vault.get_secret(secret_name)
            vault_state, key_id = "present", (stored.properties.tags or {}).get("keyId")
            sign_in = _sign_in(sandbox, tenant_id, facility.app_id, stored.value or "")
        except AzureError as exc:
            vault_state, key_id, sign_in = f"unreadable ({exc.__class__.__name__})", None, "unknown"
        views.append(
            FacilityView(
                facility=facility.name,
                tenant_id=tenant_id,
                app_id=facility.app_id,
                secrets=len(credentials),
                days_to_expiry=days,
                logout_url=web.get("logoutUrl"),
                id_tokens=bool(grants.get("enableIdTokenIssuance")),
                access_tokens=bool(grants.get("enableAccessTokenIssuance")),
                vault_secret=vault_state,
                vault_key_id=key_id,
                sign_in=sign_in,
            )
        )
    return views


def _monitor_secret(sandbox: Sandbox, tenant_id: str, app_id: str) -> str:
    tenant = sandbox.world.tenant(tenant_id)
    app = tenant.app_by_app_id(app_id) if tenant else None
    if app is None or not app.password_credentials:
        raise RuntimeError(f"the scenario gives tenant {tenant_id} no monitor identity with a secret")
    return app.password_credentials[-1].secret_text


def _table(views: list[FacilityView]) -> str:
    header = ("facility", "tenant", "secrets", "expires in", "id/access tokens", "vault secret", "sign-in with vault secret", "logout URL")
    rows = [
        (
            v.facility,
            v.tenant_id[:8],
            str(v.secrets),
            "-" if v.days_to_expiry is None else f"{v.days_to_expiry} d",
            f"{'on' if v.id_tokens else 'OFF'}/{'on' if v.access_tokens else 'OFF'}",
            v.vault_secret,
            v.sign_in,
            v.logout_url or "-",
        )
        for v in views
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run_demo(scenario: Path | None, as_json: bool = False) -> int:
    with Sandbox.from_scenario(scenario or BUILTIN_SCENARIO) as sandbox:
        views = collect(sandbox)
        if as_json:
            print(json.dumps({"facilities": [asdict(v) for v in views]}, indent=2))
            return 0
        refs = scenario_refs(sandbox.world)
        print(f"Sandbox world: {refs.description or 'scenario'}")
        print(f"{len(sandbox.world.tenants)} tenants, {len(views)} SmartTrace facilities; read over HTTPS with msal/azure-identity, Graph and Key Vault.\n")
        print(_table(views))
        print("\nThe health checks (issue 3) turn this view into findings with fixes.")
    return 0
