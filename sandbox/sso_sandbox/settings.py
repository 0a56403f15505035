"""A monitor configuration that points at a running sandbox.

The same document shape as for a real tenant (docs/configuration.md): only
the endpoints, the CA and the identities differ. The monitor identities'
sandbox secrets travel as app settings (the ``environ`` returned beside the
document), exactly as a client-secret identity would outside the sandbox.
"""

from __future__ import annotations

from typing import Any

from sso_sandbox.runtime import Sandbox


def monitor_document(
    sandbox: Sandbox, *, vault: str | None = None, facilities: list[str] | None = None, app_overrides: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(configuration document, app settings) for monitoring the sandbox's facilities."""
    assert sandbox.endpoints is not None
    world = sandbox.world
    endpoints = sandbox.endpoints
    vault_name = vault or next(iter(endpoints.vaults))
    home = world.vaults[vault_name].tenant_id
    environ: dict[str, str] = {}
    identities: dict[str, Any] = {}
    for tenant_id, app_id in world.monitors.items():
        setting = "SSO_MONITOR_SANDBOX_SECRET_" + tenant_id.replace("-", "")[:12].upper()
        environ[setting] = world.monitor_secret(tenant_id)
        identities[tenant_id] = {"kind": "client-secret", "clientId": app_id, "clientSecretSetting": setting}
    apps = []
    for facility in world.facilities.values():
        if facilities is not None and facility.name not in facilities:
            continue
        entry: dict[str, Any] = {"facility": facility.name, "tenantId": facility.tenant_id, "appId": facility.app_id}
        if facility.api_base != "https://api.smarttrace.ai/v1":
            entry["apiBase"] = facility.api_base
        entry.update((app_overrides or {}).get(facility.name, {}))
        apps.append(entry)
    document = {
        "vaultUrl": endpoints.vault(vault_name),
        "homeTenantId": home,
        "cloud": {"graphEndpoint": endpoints.graph, "graphScope": "https://graph.microsoft.com/.default", "authority": endpoints.authority},
        "network": {"caBundle": str(endpoints.ca_path), "hostMap": dict(endpoints.host_map)},
        "identities": identities,
        "apps": apps,
    }
    return document, environ
