"""A fleet of facilities for scale tests and benchmarks, and a watcher of their sign-in.

    world = fleet_world(200, days_left=20, propagation_seconds=10)
    with Sandbox(world) as sandbox:
        document, environ = monitor_document(sandbox, app_overrides=http_handoff(world))
        with SignInWatcher(world) as watcher:
            ...                       # rotate them, from as many processes as you like
        assert watcher.failures == []

One tenant, the monitor's own identity (owner of every app, Key Vault Secrets
Officer on the vault), and per facility ``plantNNNN``: an app registration as
the checks want it (web settings, an enabled service principal with an
assignment), one client secret created by hand ``days_left`` days before its
end, that secret in Key Vault tagged as the current one, SmartTrace holding it,
and an API token for SmartTrace's integration-settings endpoint, kept in Key
Vault as ``smarttrace-<facility>-handoff`` (the http handoff's token secret).

The watcher asks the world itself (``World.sign_in_works``: would SSO work now
with the secret SmartTrace holds?), one facility at a time under the world's
lock, over and over until stopped; it never goes through HTTP, so it costs the
services only the lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sso_sandbox.world import GRAPH_RESOURCE, AppRoleAssignment, World, new_guid

FLEET_TENANT = "6d3f0c2a-5b1e-4c7d-9a80-1f2e3d4c5b6a"
FLEET_VAULT = "kv-fleet"


def facility_name(index: int) -> str:
    return f"plant{index:04d}"


def handoff_secret_name(facility: str) -> str:
    return f"smarttrace-{facility}-handoff"


def fleet_world(
    size: int, *, days_left: float = 20, propagation_seconds: float = 0.0, tenant_size: str = "small", password_max_lifetime_days: int = 365
) -> World:
    """``size`` facilities in one tenant, each with one hand-made secret ``days_left`` days from its end."""
    world = World()
    now = world.now()
    tenant = world.add_tenant(
        FLEET_TENANT,
        "Fleet Foods",
        propagation_delay=timedelta(seconds=propagation_seconds),
        password_max_lifetime=timedelta(days=password_max_lifetime_days),
        size=tenant_size,
    )
    monitor = world.add_application(tenant.tenant_id, "SmartTrace SSO Monitor")
    world.add_service_principal(monitor, granted_roles={GRAPH_RESOURCE: ["Application.ReadWrite.OwnedBy"]})
    world.add_password(monitor, display_name="sandbox", start=now - timedelta(days=1), created=now - timedelta(days=1))
    world.monitors[tenant.tenant_id] = monitor.app_id
    vault = world.add_vault(FLEET_VAULT, tenant.tenant_id, access={monitor.app_id: "Key Vault Secrets Officer"})
    api = "https://api.smarttrace.ai/v1"
    for index in range(size):
        name = facility_name(index)
        app = world.add_application(
            tenant.tenant_id,
            f"SmartTrace {name}",
            owners={monitor.app_id},
            web={
                "homePageUrl": f"https://{name}.smarttrace.ai",
                "logoutUrl": f"{api}/auth/callback/azure-logout/{name}",
                "redirectUris": [f"{api}/auth/callback/azure/{name}"],
                "implicitGrantSettings": {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True},
            },
        )
        created = now - timedelta(days=300)
        credential = world.add_password(app, display_name="SmartTrace SSO", start=created, end=now + timedelta(days=days_left), created=created)
        sp = world.add_service_principal(app, app_role_assignment_required=True, owners={monitor.app_id})
        sp.assigned_to.append(AppRoleAssignment(new_guid(), new_guid(), "Group", "Plant staff", sp.object_id, sp.display_name, new_guid(), created))
        world.set_secret(
            vault,
            f"smarttrace-{name}",
            credential.secret_text,
            content_type="text/plain",
            tags={"keyId": credential.key_id, "stage": "current"},
            expires=credential.end,
        )
        token = f"stk_{new_guid().replace('-', '')}"
        world.set_secret(vault, handoff_secret_name(name), token)
        world.add_facility(name, tenant.tenant_id, app.app_id, client_secret=credential.secret_text, key_id=credential.key_id, api_tokens={token})
    return world


def http_handoff(world: World) -> dict[str, dict[str, Any]]:
    """Per facility, the configuration's ``handoff`` for pushing to SmartTrace (monitor_document's app_overrides)."""
    return {
        name: {
            "handoff": {
                "mode": "http",
                "url": f"{facility.api_base}/integrations/{name}/azure-ad/client-secret",
                "tokenSecretName": handoff_secret_name(name),
            }
        }
        for name, facility in world.facilities.items()
    }


def credential_key_ids(world: World) -> dict[str, set[str]]:
    """Per facility, the key ids of its app registration's client secrets (lower case)."""
    with world.lock:
        found: dict[str, set[str]] = {}
        for name, facility in world.facilities.items():
            app = world.find_app(facility.app_id)
            found[name] = {c.key_id.lower() for c in app.password_credentials} if app else set()
        return found


@dataclass(frozen=True)
class SignInFailure:
    facility: str
    at: datetime  # world time
    key_id: str | None  # what SmartTrace held then


@dataclass
class SignInWatcher:
    """A thread that asks, for every facility in turn, whether sign-in works now, until stopped.

    ``polls``: facilities asked; ``sweeps``: passes over every facility; ``failures``:
    every time one did not work. ``pause``: seconds between sweeps."""

    world: World
    pause: float = 0.02
    facilities: list[str] | None = None
    polls: int = 0
    sweeps: int = 0
    failures: list[SignInFailure] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _started: float = 0.0
    _stopped: float = 0.0

    def start(self) -> SignInWatcher:
        names = self.facilities if self.facilities is not None else list(self.world.facilities)
        self._thread = threading.Thread(target=self._watch, args=(names,), name="sign-in-watcher", daemon=True)
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._stopped = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self._stopped or time.monotonic()) - self._started

    def __enter__(self) -> SignInWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _watch(self, names: list[str]) -> None:
        world = self.world
        while not self._stop.is_set():
            for name in names:
                with world.lock:
                    works = world.sign_in_works(name)
                    if not works:
                        facility = world.facility(name)
                        self.failures.append(SignInFailure(name, world.now(), facility.key_id if facility else None))
                self.polls += 1
            self.sweeps += 1
            self._stop.wait(self.pause)
