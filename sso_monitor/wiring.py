"""The one place that builds the real adapters from settings (the composition root).

The service (service.py) asks here for the check's readers, the rotation's writers,
the lease and the alerting; tests swap what this builds, never module internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sso_monitor.adapters.app_reads import OneTripAppReader
from sso_monitor.adapters.channels.build import build_channels
from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.entra.probes import EntraTokenProbe, UrlProbe
from sso_monitor.adapters.graph.reader import GraphDirectoryReader
from sso_monitor.adapters.graph.signins import GraphSignInReader
from sso_monitor.adapters.graph.writer import GraphAppWriter
from sso_monitor.adapters.http import session_with_host_map
from sso_monitor.adapters.keyvault.reader import KeyVaultReader
from sso_monitor.adapters.keyvault.secrets import KeyVaultSecretSource
from sso_monitor.adapters.keyvault.writer import KeyVaultWriter
from sso_monitor.adapters.smarttrace.handoff import HttpSecretPusher
from sso_monitor.adapters.storage.alert_store import alert_store_from_settings
from sso_monitor.adapters.storage.lease import LocalLease, lease_from_settings
from sso_monitor.adapters.storage.lease_state import lease_held
from sso_monitor.adapters.storage.report_store import BlobReportStore, report_store_from_settings
from sso_monitor.adapters.storage.work_queue import enqueue
from sso_monitor.alerts.ports import AlertStore
from sso_monitor.alerts.service import Alerting
from sso_monitor.checks.ports import Adapters
from sso_monitor.config import MonitorConfig
from sso_monitor.rotation.ports import Lease, WorkItem
from sso_monitor.rotation.protocol import Clock, MemoryNotifier, Notifier, RotationDeps, SystemClock


def build_adapters(config: MonitorConfig) -> Adapters:
    """The check's readers: Graph per tenant, Key Vault, the token probe, the URL probe."""
    tenants = {app.tenant_id for app in config.apps}
    vault, probe, urls = KeyVaultReader(config), EntraTokenProbe(config), UrlProbe(config)
    return Adapters(
        directories={tenant: GraphDirectoryReader(config, tenant) for tenant in tenants},
        vault=vault,
        probe=probe,
        urls=urls,
        apps=OneTripAppReader(vault, probe, urls, config.network.concurrency),
        signins=GraphSignInReader(config) if any(app.sign_ins.enabled for app in config.apps) else None,
    )


def build_rotation_deps(config: MonitorConfig, *, notifier: Notifier | None = None, lease: Lease | None = None, clock: Clock | None = None) -> RotationDeps:
    """The rotation's ports on the real SDKs (a local lease unless one is given)."""
    return RotationDeps(
        writer=GraphAppWriter(config),
        vault=KeyVaultWriter(config),
        probe=EntraTokenProbe(config),
        pusher=HttpSecretPusher(config),
        notifier=notifier or MemoryNotifier(),
        lease=lease or LocalLease(),
        clock=clock or SystemClock(),
        vault_url=config.vault_url,
        # Entra's records for the handoff and the old secret (docs/evidence.md): only when an app asks for them.
        signins=GraphSignInReader(config) if any(app.sign_ins.enabled or app.handoff.confirmation != "manual" for app in config.apps) else None,
    )


def build_lease(config: MonitorConfig) -> Lease:
    """The rotations' lease: a blob lease on the Function App's storage, which every
    instance shares; a local one when there is none (the CLI on one machine)."""
    storage = config.storage
    if storage.connection_string is not None:
        return lease_from_settings(storage.connection_string.reveal(), None)
    if storage.account_url:
        return lease_from_settings(None, storage.account_url, credential_for(config, config.home_tenant_id))
    return LocalLease()


@asynccontextmanager
async def opened_alerting(config: MonitorConfig, **options: Any) -> AsyncIterator[Alerting]:
    """``build_alerting(config, **options)``, closed on the way out."""
    alerting = build_alerting(config, **options)
    try:
        yield alerting
    finally:
        await alerting.aclose()


def build_alerting(config: MonitorConfig, *, store: AlertStore | None = None, local_path: Path | None = None, sleep: Any = None) -> Alerting:
    """Alerting on the configured channels and the alert store: Azure Table Storage
    when the Function App's storage is configured, else a local file (local_path)
    or memory."""
    secrets = KeyVaultSecretSource(config)
    channels = build_channels(config, secrets, sleep=sleep or asyncio.sleep)
    return Alerting(config, store or alert_store_from_settings(config, local_path=local_path), channels, closing=(secrets,))


def build_report_store(config: MonitorConfig) -> BlobReportStore | None:
    """Where the scheduled run keeps its status report (None: no storage configured)."""
    return report_store_from_settings(config)


def enqueue_work(config: MonitorConfig, work: list[WorkItem]) -> tuple[list[WorkItem], list[str]]:
    """Queue rotation work for the worker (blocking): what was sent, and the failures."""
    return enqueue(config, work)


async def rotation_lease_held(config: MonitorConfig, key: str) -> bool | None:
    """Whether some instance holds the rotation lease ``key`` now (None: no storage)."""
    return await lease_held(config, key)


def http_session(ca_bundle: str | None, *, trust_env: bool) -> Any:
    """A requests session with the configured trust store (the admin API's key fetches)."""
    return session_with_host_map({}, ca_bundle, trust_env=trust_env)
