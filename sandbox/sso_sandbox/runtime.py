"""Start and stop the whole sandbox: every service on its own loopback port.

    with Sandbox.from_scenario("examples/scenario.json") as sandbox:
        sandbox.endpoints.graph   # https://127.0.0.1:PORT/v1.0
        sandbox.world             # inspect or change the simulated cloud
        sandbox.faults.add("throttle", service="graph", path="/v1.0/applications*", times=3)

Token lifetimes follow the real clock (the SDKs cache tokens by it); every
other date (credentials, secrets, propagation) follows ``world.clock``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sso_sandbox.certs import SandboxTLS, make_tls
from sso_sandbox.faults import FaultPlan
from sso_sandbox.http import SandboxServer, Service
from sso_sandbox.tokens import TokenIssuer
from sso_sandbox.world import World

if TYPE_CHECKING:
    from sso_sandbox.scenario import ClockChoice


@dataclass
class Endpoints:
    """Where each simulated service listens. Give these to the monitor's settings."""

    graph: str  # Graph base URL including the version, e.g. https://127.0.0.1:PORT/v1.0
    authority: str  # Entra authority host, e.g. https://127.0.0.1:PORT (tenant goes after it)
    vaults: dict[str, str]  # vault name -> vault URL
    smarttrace: str  # SmartTrace, serving the API and the facility hosts by Host header
    teams: str  # Teams Workflows webhook host
    smtp_host: str
    smtp_port: int
    ca_path: Path
    host_map: dict[str, str] = field(default_factory=dict)

    def vault(self, name: str | None = None) -> str:
        if name is None:
            return next(iter(self.vaults.values()))
        return self.vaults[name.lower()]

    def webhook_url(self, webhook_id: str) -> str:
        # A signature shaped like Power Automate's (43 base64url characters), fixed per webhook.
        signature = base64.urlsafe_b64encode(hashlib.sha256(f"sandbox-webhook-{webhook_id}".encode()).digest()).decode().rstrip("=")
        return f"{self.teams}/workflows/{webhook_id}/triggers/manual/paths/invoke?api-version=2016-06-01&sig={signature}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph,
            "authority": self.authority,
            "vaults": dict(self.vaults),
            "smarttrace": self.smarttrace,
            "teams": self.teams,
            "smtp": f"{self.smtp_host}:{self.smtp_port}",
            "caPath": str(self.ca_path),
            "hostMap": dict(self.host_map),
        }


class Sandbox:
    """The simulated Microsoft cloud, SmartTrace and alert channels, in this process."""

    def __init__(self, world: World | None = None, faults: FaultPlan | None = None, workdir: Path | None = None) -> None:
        self.world = world or World()
        self.faults = faults or FaultPlan()
        self.issuer = TokenIssuer()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sso-sandbox-"))
        self.tls: SandboxTLS | None = None
        self.endpoints: Endpoints | None = None
        self.services: dict[str, Service] = {}
        self._servers: list[SandboxServer] = []
        self._smtp: Any = None

    @classmethod
    def from_scenario(cls, scenario: str | Path | dict[str, Any], *, now: ClockChoice = "scenario", **kwargs: Any) -> Sandbox:
        """A sandbox seeded by a scenario (a file or its parsed document); ``now``: whose
        time the world keeps (scenario.ClockChoice: by default the scenario's ``now``
        freezes it, else the real time runs)."""
        from sso_sandbox.scenario import load_scenario

        data = scenario if isinstance(scenario, dict) else json.loads(Path(scenario).read_text(encoding="utf-8"))
        world, faults = load_scenario(data, now=now)
        return cls(world=world, faults=faults, **kwargs)

    # ---- lifecycle

    def start(self) -> Sandbox:
        from sso_sandbox.entra import EntraService
        from sso_sandbox.graph import GraphService
        from sso_sandbox.keyvault import KeyVaultService
        from sso_sandbox.smarttrace import SmartTraceService
        from sso_sandbox.smtp import SmtpServer
        from sso_sandbox.teams import TeamsService

        self.tls = make_tls(self.workdir)
        entra = self._serve(EntraService(self.world, self.faults, self.issuer))
        self.issuer.issuer_base = entra.base_url
        graph = self._serve(GraphService(self.world, self.faults, self.issuer))
        vaults = {
            name: self._serve(KeyVaultService(self.world, self.faults, self.issuer, vault_name=name, authority=entra.base_url)).base_url
            for name in self.world.vaults
        }
        smarttrace = self._serve(SmartTraceService(self.world, self.faults))
        teams = self._serve(TeamsService(self.world, self.faults))
        self._smtp = SmtpServer(self.world, self.tls)
        self._smtp.start()
        loopback = smarttrace.base_url.removeprefix("https://")
        self.endpoints = Endpoints(
            graph=f"{graph.base_url}/v1.0",
            authority=entra.base_url,
            vaults=vaults,
            smarttrace=smarttrace.base_url,
            teams=teams.base_url,
            smtp_host=self._smtp.host,
            smtp_port=self._smtp.port,
            ca_path=self.tls.ca_path,
            host_map={"*.smarttrace.ai": loopback, "smarttrace.ai": loopback},
        )
        return self

    def stop(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, service: Service) -> Service:
        assert self.tls is not None
        server = SandboxServer(service, self.tls.server_context)
        service.base_url = f"https://127.0.0.1:{server.port}"
        server.start()
        self._servers.append(server)
        self.services[service.name if service.name != "vault" else f"vault:{getattr(service, 'vault_name', '')}"] = service
        return service

    # ---- conveniences for tests and the demo

    def mint_token(self, *, tenant_id: str, audience: str, **kwargs: Any) -> str:
        """Sign an access token as this sandbox's Entra would (see TokenIssuer.mint)."""
        from datetime import datetime

        kwargs.setdefault("now", datetime.now(UTC))
        return self.issuer.mint(tenant_id=tenant_id, audience=audience, **kwargs)

    def restart_caller(self) -> None:
        """After a ``crash`` fault: the crashed client 'restarts' and may call again."""
        self.faults.recover()
