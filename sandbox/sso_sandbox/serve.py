"""`sso-monitor sandbox`: run the simulated cloud in the foreground.

It writes into the state directory what the monitor's own commands need to work
against it, then prints the endpoints, the scenario's facilities with their app ids
and the next commands to run:

- ``apps.json``: a complete monitor configuration (the scenario's facilities, the
  vault, Graph and Entra endpoints, the CA bundle and host map), the same document
  shape as for a real tenant (docs/configuration.md);
- ``env`` (mode 600): the environment that configuration needs, as shell
  ``export`` lines (``. .sandbox/env``): the monitor identities' sandbox secrets
  (``clientSecretSetting``) and ``SSO_MONITOR_CONFIG`` (the apps.json);
- ``sandbox-settings.json`` (mode 600): the endpoints and the monitor identities'
  credentials, for clients of one's own (docs/sandbox.md, Pointing the SDKs at it).

Secret values are never printed. The files are written whole (renamed into place)
before the banner says ``Ready.``, and removed when the sandbox stops (Ctrl+C,
SIGTERM): they name ports nothing listens on any more.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sso_sandbox.clock import Clock, iso
from sso_sandbox.runtime import Sandbox
from sso_sandbox.scenario import ClockChoice, scenario_refs
from sso_sandbox.settings import monitor_document

BUILTIN_SCENARIO = Path(__file__).with_name("scenarios") / "demo.json"

CONFIG_FILE = "apps.json"
ENV_FILE = "env"
SETTINGS_FILE = "sandbox-settings.json"
STATE_FILES = (CONFIG_FILE, ENV_FILE, SETTINGS_FILE)


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
    _write(path, json.dumps(client_settings(sandbox), indent=2), private=True)


def env_text(environ: dict[str, str]) -> str:
    """``export NAME='value'`` lines: ``. FILE`` sets them in a POSIX shell (bash, zsh, dash)."""
    lines = [
        "# The environment of the monitor's configuration beside this file, written by `sso-monitor sandbox`",
        "# and removed when it stops. Load it into your shell with:  . <this file>",
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in environ.items()]
    return "\n".join(lines) + "\n"


def write_state(sandbox: Sandbox, state_dir: Path) -> dict[str, Any]:
    """apps.json, env and sandbox-settings.json in ``state_dir`` (absolute); answers the
    configuration document."""
    document, environ = monitor_document(sandbox)
    config_path = state_dir / CONFIG_FILE
    _write(config_path, json.dumps(document, indent=2) + "\n", private=False)
    _write(state_dir / ENV_FILE, env_text({"SSO_MONITOR_CONFIG": str(config_path), **environ}), private=True)
    write_settings(sandbox, state_dir / SETTINGS_FILE)
    return document


def remove_state(state_dir: Path) -> None:
    for name in STATE_FILES:
        (state_dir / name).unlink(missing_ok=True)


def _write(path: Path, text: str, *, private: bool) -> None:
    """The whole file or none of it (a reader waiting for it never sees half); a private
    file is the owner's alone from its first byte."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)


def serve(scenario: Path | None, state_dir: Path, *, now: ClockChoice = "real") -> int:
    """Run until SIGINT or SIGTERM; ``state_dir`` as the user typed it (the commands
    printed name it so)."""
    shown = state_dir
    state_dir = state_dir.resolve()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    remove_state(state_dir)  # an earlier run's, killed before it could: never mistaken for this one's
    sandbox = Sandbox.from_scenario(scenario or BUILTIN_SCENARIO, workdir=state_dir, now=now)
    sandbox.start()
    try:
        document = write_state(sandbox, state_dir)
        _banner(sandbox, document, scenario, shown, state_dir)
        stop.wait()
    finally:
        sandbox.stop()
        remove_state(state_dir)
        print("Sandbox stopped.", flush=True)
    return 0


def _banner(sandbox: Sandbox, document: dict[str, Any], scenario: Path | None, shown: Path, state_dir: Path) -> None:
    assert sandbox.endpoints is not None
    endpoints, world = sandbox.endpoints, sandbox.world
    refs = scenario_refs(world)
    lines = ["SmartTrace SSO Monitor sandbox is running (Ctrl+C stops it; started with &: kill %1)."]
    lines.append(f"  Graph        {endpoints.graph}")
    lines.append(f"  Entra        {endpoints.authority}/<tenant-id>")
    lines += [f"  Key Vault    {url}  ({name})" for name, url in endpoints.vaults.items()]
    lines.append(f"  SmartTrace   {endpoints.smarttrace}  (map *.smarttrace.ai here)")
    lines.append(f"  Teams        {endpoints.teams}/workflows/<id>/triggers/manual/paths/invoke")
    lines.append(f"  SMTP         {endpoints.smtp_host}:{endpoints.smtp_port} (STARTTLS)")
    lines.append(f"  CA           {endpoints.ca_path}")
    lines.append(f"  Clock        {_clock_line(world.clock, refs.stated_now)}")
    lines.append(f"  Settings     {state_dir / SETTINGS_FILE} (endpoints and the monitor's sandbox credentials, mode 600)")
    lines.append(f"  Scenario     {scenario or 'the built-in scenario'}{': ' + refs.description if refs.description else ''}")
    lines.append("Facilities:")
    width = max((len(app["facility"]) for app in document["apps"]), default=0)
    for app in document["apps"]:
        lines.append(f"  {app['facility']:<{width}}  appId {app['appId']}  tenant {app['tenantId']}  {_held(sandbox, app['facility'])}")
    config, env = shlex.quote(str(shown / CONFIG_FILE)), shlex.quote(_sourceable(shown / ENV_FILE))
    lines.append("For the monitor:")
    lines.append(f"  {CONFIG_FILE:<10}{shown / CONFIG_FILE}: its configuration (these facilities, the vault, the endpoints, the CA, the host map)")
    lines.append(f"  {ENV_FILE:<10}{shown / ENV_FILE}: the environment it needs (the monitor's sandbox credentials, values not shown; SSO_MONITOR_CONFIG)")
    lines.append("Next, from this directory (another terminal, or this one when started with &):")
    activate = _activate_line()
    if activate:
        lines.append(f"  {activate}")
    lines.append(f"  . {env}")
    lines.append(f"  sso-monitor --config {config} check")
    due = _due_facility(sandbox, document)
    if due:
        lines.append(f"  sso-monitor --config {config} rotate {due}")
    lines.append(f"  sso-monitor --config {config} status")
    lines.append("Ready.")
    print("\n".join(lines), flush=True)


def _activate_line() -> str | None:
    """`. .venv/bin/activate` when `sso-monitor` is not on PATH (started as .venv/bin/sso-monitor,
    or by make sandbox) and this Python is a virtual environment's."""
    if shutil.which("sso-monitor") is not None or sys.prefix == sys.base_prefix:
        return None
    script = Path(sys.prefix) / "bin" / "activate"
    relative = os.path.relpath(script)
    return f". {shlex.quote(script.as_posix() if relative.startswith('..') else _sourceable(Path(relative)))}"


def _sourceable(path: Path) -> str:
    """A path `.` reads as a file: without a slash the shell would search PATH for it."""
    text = str(path)
    return text if "/" in text else f"./{text}"


def _clock_line(clock: Clock, stated: datetime | None) -> str:
    if clock.frozen:
        return (
            f"frozen at {iso(clock.now())} (--frozen-now): the monitor's commands read the real time, "
            "so their dates differ and a new secret never propagates; see docs/sandbox.md"
        )
    ignored = f"; the scenario's now, {iso(stated)}, freezes it only with --frozen-now" if stated else ""
    return f"the real time, running (the scenario's dates count from the start){ignored}"


def _current(sandbox: Sandbox, facility: str) -> Any:
    """The credential SmartTrace holds for ``facility`` (None: none, or not one of the app's)."""
    world = sandbox.world
    held = world.facility(facility)
    app = world.find_app(held.app_id) if held else None
    return app.credential(held.key_id) if app and held and held.key_id else None


def _held(sandbox: Sandbox, facility: str) -> str:
    credential = _current(sandbox, facility)
    if credential is None:
        return "SmartTrace holds no secret of the app"
    days = (credential.end - sandbox.world.now()).total_seconds() / 86400
    when = f"ended {-days:.0f} days ago" if days < 0 else f"ends in {days:.0f} days"
    return f"SmartTrace's secret {when} ({credential.end:%Y-%m-%d})"


def _due_facility(sandbox: Sandbox, document: dict[str, Any]) -> str | None:
    """The facility whose secret ends soonest, not yet ended: the one to rotate first."""
    now = sandbox.world.now()
    ending = [(c.end, app["facility"]) for app in document["apps"] if (c := _current(sandbox, app["facility"])) is not None and c.end > now]
    return min(ending)[1] if ending else None
