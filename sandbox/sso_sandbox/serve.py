"""`sso-monitor sandbox`: run the simulated cloud in the foreground.

Prints the endpoints and the CA path, and writes everything a client needs
(endpoints, CA path, the monitor identities' sandbox secrets) to a settings
file readable only by the owner; secret values are never printed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from sso_sandbox.runtime import Sandbox
from sso_sandbox.scenario import scenario_refs

BUILTIN_SCENARIO = Path(__file__).with_name("scenarios") / "demo.json"


def start_from(scenario: Path | None, workdir: Path | None = None) -> Sandbox:
    return Sandbox.from_scenario(scenario or BUILTIN_SCENARIO, workdir=workdir).start()


def client_settings(sandbox: Sandbox) -> dict[str, Any]:
    """What a monitor needs to talk to this sandbox, secrets included (for the settings file only)."""
    assert sandbox.endpoints is not None
    refs = scenario_refs(sandbox.world)
    identities = []
    for tenant_id, app_id in refs.monitors.items():
        tenant = sandbox.world.tenant(tenant_id)
        app = tenant.app_by_app_id(app_id) if tenant else None
        live = [c for c in (app.password_credentials if app else []) if c.end > sandbox.world.now()]
        identities.append({"tenantId": tenant_id, "clientId": app_id, "clientSecret": live[-1].secret_text if live else None})
    return {"endpoints": sandbox.endpoints.as_dict(), "monitorIdentities": identities}


def write_settings(sandbox: Sandbox, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(client_settings(sandbox), handle, indent=2)


def serve(scenario: Path | None, state_dir: Path) -> int:
    state_dir = state_dir.resolve()
    sandbox = Sandbox.from_scenario(scenario or BUILTIN_SCENARIO, workdir=state_dir)
    sandbox.start()
    assert sandbox.endpoints is not None
    settings_path = state_dir / "sandbox-settings.json"
    write_settings(sandbox, settings_path)
    endpoints = sandbox.endpoints
    print("SmartTrace SSO Monitor sandbox is running (Ctrl+C to stop).")
    print(f"  Graph        {endpoints.graph}")
    print(f"  Entra        {endpoints.authority}/<tenant-id>")
    for name, url in endpoints.vaults.items():
        print(f"  Key Vault    {url}  ({name})")
    print(f"  SmartTrace   {endpoints.smarttrace}  (map *.smarttrace.ai here)")
    print(f"  Teams        {endpoints.teams}/workflows/<id>/triggers/manual/paths/invoke")
    print(f"  SMTP         {endpoints.smtp_host}:{endpoints.smtp_port} (STARTTLS)")
    print(f"  CA           {endpoints.ca_path}")
    print(f"  Settings     {settings_path} (endpoints and the monitor's sandbox credentials, mode 600)")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        sandbox.stop()
        print("Sandbox stopped.")
    return 0
