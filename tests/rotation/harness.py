"""Running the rotation against the sandbox, with the sandbox's clock.

``SandboxClock`` (sso_sandbox.clock.SimulatedClock) makes the protocol's waits move the simulated cloud's time,
so propagation delays and verify deadlines cost no real seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sso_monitor.config import MonitorConfig, parse_config
from sso_monitor.rotation.protocol import MemoryNotifier, RotationDeps, RotationResult, RotationSettings, Rotator
from sso_monitor.wiring import build_rotation_deps
from sso_sandbox import Sandbox, World
from sso_sandbox.clock import SimulatedClock as SandboxClock
from sso_sandbox.settings import monitor_document

HANDOFF_TOKEN_SECRET = "smarttrace-acme-handoff-token"
FAST = RotationSettings(verify_successes=3, verify_interval=5.0, verify_deadline=120.0)


def config_for(sandbox: Sandbox, *, handoff: str = "manual", confirmation: str = "manual", **rotation: Any) -> MonitorConfig:
    """acme's configuration; ``confirmation``: a manual handoff's handoff.confirmation
    (manual, activity, activity-or-manual)."""
    overrides: dict[str, Any] = {}
    if rotation:
        overrides["rotation"] = rotation
    if handoff == "manual" and confirmation != "manual":
        overrides["handoff"] = {"confirmation": confirmation}
    if handoff == "http":
        facility = sandbox.world.facility("acme")
        overrides["handoff"] = {
            "mode": "http",
            "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret",
            "tokenSecretName": HANDOFF_TOKEN_SECRET,
        }
        vault = next(iter(sandbox.world.vaults.values()))
        if HANDOFF_TOKEN_SECRET not in vault.secrets:
            sandbox.world.set_secret(vault, HANDOFF_TOKEN_SECRET, next(iter(facility.api_tokens)))
    document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides={"acme": overrides})
    return parse_config(document, environ)


@dataclass
class Harness:
    sandbox: Sandbox
    config: MonitorConfig
    lock_dir: Path
    settings: RotationSettings = FAST
    notifiers: list = field(default_factory=list)  # of the service's sessions (service())

    @property
    def world(self) -> World:
        return self.sandbox.world

    @property
    def app(self):
        return self.config.apps[0]

    def deps(self, notifier: MemoryNotifier | None = None) -> RotationDeps:
        from sso_monitor.adapters.storage.lease import LocalLease

        return build_rotation_deps(self.config, notifier=notifier or MemoryNotifier(), lease=LocalLease(self.lock_dir), clock=SandboxClock(self.world))

    def service(self) -> Any:
        """The application service on this world: the harness's adapters and clock; every
        session's notifier is kept in ``self.notifiers``."""
        from sso_monitor.adapters.storage.lease import LocalLease
        from sso_monitor.service import MonitorService

        def build(config: Any, *, notifier: MemoryNotifier, lease: Any, clock: Any) -> RotationDeps:
            self.notifiers.append(notifier)
            deps = self.deps(notifier)
            deps.lease = lease
            return deps

        return MonitorService(self.config, clock=SandboxClock(self.world), lease=LocalLease(self.lock_dir), build_deps=build)

    def rotate(self, *, force: bool = False, dry_run: bool = False, notifier: MemoryNotifier | None = None) -> RotationResult:
        return asyncio.run(self._with(lambda d: Rotator(self.app, d, self.settings, dry_run=dry_run, force=force).run(), notifier))

    def confirm(self, key_id: str, who: str = "test:admin") -> RotationResult:
        return asyncio.run(self._with(lambda d: Rotator(self.app, d, self.settings).confirm(key_id, who)))

    async def _with(self, work: Any, notifier: MemoryNotifier | None = None) -> Any:
        deps = self.deps(notifier)
        try:
            return await work(deps)
        finally:
            await deps.aclose()

    # ---- what the world says

    def vault_versions(self):
        vault = next(iter(self.world.vaults.values()))
        return vault.secrets[self.app.vault_secret_name].versions

    def version_for(self, key_id: str):
        return next(v for v in self.vault_versions() if v.tags.get("keyId", "").lower() == key_id.lower())

    def admin_pastes(self, key_id: str) -> None:
        """What the facility administrator does by hand in the manual handoff."""
        facility = self.world.facility("acme")
        facility.client_secret = self.version_for(key_id).value
        facility.key_id = key_id

    def credentials(self):
        return self.world.find_app(self.app.app_id).password_credentials
