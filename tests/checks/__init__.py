"""End-to-end check runs against the sandbox."""

from __future__ import annotations

import asyncio

from sso_monitor.checks.run import CheckReport, run_checks
from sso_monitor.config import parse_config
from sso_monitor.wiring import build_adapters
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document

# What the built-in demo scenario must produce, facility by facility.
DEMO_FINDINGS = {
    "riverside": [],
    "harbor": ["SECRET_EXPIRING"],
    "valley": ["SECRET_EXPIRED", "VAULT_SECRET_REJECTED"],
    "summit": ["LOGOUT_URL_MISMATCH"],
    "prairie": ["ID_TOKENS_DISABLED"],
    "lakeside": ["VAULT_SECRET_REJECTED"],
    "meadow": ["MONITOR_NOT_OWNER"],  # created by IT; the monitor was never made an owner
    "orchard": ["NO_ASSIGNMENTS"],
}


def check_sandbox(sandbox: Sandbox, app_overrides: dict | None = None) -> CheckReport:
    """The real check run, through the real adapters, over the sandbox's HTTPS endpoints
    (``app_overrides``: fields of some apps' configuration, by facility)."""
    document, environ = monitor_document(sandbox, app_overrides=app_overrides or {})
    config = parse_config(document, environ)

    async def go() -> CheckReport:
        adapters = build_adapters(config)
        try:
            return await run_checks(config, adapters, sandbox.world.now())
        finally:
            await adapters.aclose()

    return asyncio.run(go())


def codes_by_facility(sandbox: Sandbox) -> dict[str, list[str]]:
    return {r.app.facility: [f.code for f in r.findings] for r in check_sandbox(sandbox).results}
