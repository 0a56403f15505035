"""The one place that builds the real adapters from settings."""

from __future__ import annotations

from .config import MonitorConfig
from .ports import Adapters


def build_adapters(config: MonitorConfig) -> Adapters:
    from .adapters.graph import GraphDirectoryReader
    from .adapters.keyvault import KeyVaultReader
    from .adapters.probes import EntraTokenProbe, UrlProbe

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
    from .adapters.graph_writer import GraphAppWriter
    from .adapters.keyvault_writer import KeyVaultWriter
    from .adapters.lease import LocalLease
    from .adapters.probes import EntraTokenProbe
    from .adapters.smarttrace import HttpSecretPusher
    from .rotation import MemoryNotifier, RotationDeps, SystemClock

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
