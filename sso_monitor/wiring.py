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
