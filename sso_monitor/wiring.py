"""The one place that builds the real adapters from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sso_monitor.config import MonitorConfig
from sso_monitor.checks.ports import Adapters


def build_adapters(config: MonitorConfig) -> Adapters:
    from sso_monitor.adapters.graph.reader import GraphDirectoryReader
    from sso_monitor.adapters.keyvault.reader import KeyVaultReader
    from sso_monitor.adapters.entra.probes import EntraTokenProbe, UrlProbe

    tenants = {app.tenant_id for app in config.apps}
    return Adapters(
        directories={tenant: GraphDirectoryReader(config, tenant) for tenant in tenants},
        vault=KeyVaultReader(config),
        probe=EntraTokenProbe(config),
        urls=UrlProbe(config),
    )


def build_rotation_deps(config: MonitorConfig, *, notifier=None, lease=None, clock=None):
    """The rotation's ports on the real SDKs. The CLI's lease is local (one machine);
    the Function App passes a blob lease."""
    from sso_monitor.adapters.graph.writer import GraphAppWriter
    from sso_monitor.adapters.keyvault.writer import KeyVaultWriter
    from sso_monitor.adapters.storage.lease import LocalLease
    from sso_monitor.adapters.entra.probes import EntraTokenProbe
    from sso_monitor.adapters.smarttrace.handoff import HttpSecretPusher
    from sso_monitor.rotation.protocol import MemoryNotifier, RotationDeps, SystemClock

    return RotationDeps(
        writer=GraphAppWriter(config),
        vault=KeyVaultWriter(config),
        probe=EntraTokenProbe(config),
        pusher=HttpSecretPusher(config),
        notifier=notifier or MemoryNotifier(),
        lease=lease or LocalLease(),
        clock=clock or SystemClock(),
        vault_url=config.vault_url,
    )


@asynccontextmanager
async def opened_alerting(config: MonitorConfig, **options: Any) -> AsyncIterator[Any]:
    """``build_alerting(config, **options)``, closed on the way out."""
    alerting = build_alerting(config, **options)
    try:
        yield alerting
    finally:
        await alerting.aclose()


def build_alerting(config: MonitorConfig, *, store=None, local_path=None, sleep=None):
    """Alerting on the configured channels and the alert store: Azure Table Storage
    when the Function App's storage is configured, else a local file (local_path)
    or memory."""
    import asyncio

    from sso_monitor.adapters.storage.alert_store import alert_store_from_settings
    from sso_monitor.adapters.channels.build import build_channels
    from sso_monitor.adapters.keyvault.secrets import KeyVaultSecretSource
    from sso_monitor.alerts.service import Alerting

    secrets = KeyVaultSecretSource(config)
    channels = build_channels(config, secrets, sleep=sleep or asyncio.sleep)
    return Alerting(config, store or alert_store_from_settings(config, local_path=local_path), channels, closing=(secrets,))
