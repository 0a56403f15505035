"""One app's reads outside Graph in one trip to a worker thread.

The check run is bound by the client's CPU, not by the network (bench/check_scale.py:
the worker process is busy for as long as it runs). Handing each of an app's four
blocking calls (the Key Vault read, the token probe, two page probes) to a thread and
back costs four loop-to-thread round trips, tasks and futures; doing the four one after
another in one thread costs one, which measured 12% less CPU for the whole run
(docs/performance.md). The calls are the same adapters' own, in the calling thread.
"""

from __future__ import annotations

from sso_monitor.adapters.entra.probes import EntraTokenProbe, UrlProbe
from sso_monitor.adapters.keyvault.reader import KeyVaultReader
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.checks.ports import OwnReads, VaultRead


class OneTripAppReader:
    """AppReader over the Key Vault reader, the token probe and the URL probe."""

    def __init__(self, vault: KeyVaultReader, probe: EntraTokenProbe, urls: UrlProbe, workers: int) -> None:
        self.vault, self.probe, self.urls = vault, probe, urls
        self._pool = BlockingPool(workers, "app-reads")

    async def read(self, vault_secret_name: str, tenant_id: str, app_id: str, facility_url: str, logout_url: str) -> OwnReads:
        return await self._pool.run(self._read, vault_secret_name, tenant_id, app_id, facility_url, logout_url)

    async def aclose(self) -> None:
        self._pool.close()  # the three adapters are closed by their owner

    def _read(self, vault_secret_name: str, tenant_id: str, app_id: str, facility_url: str, logout_url: str) -> OwnReads:
        stored = self.vault.read_blocking(vault_secret_name)
        probe = None
        if isinstance(stored, VaultRead) and stored.info.enabled:
            probe = self.probe.probe_blocking(tenant_id, app_id, stored.value)
        return OwnReads(stored, self.urls.check_blocking(facility_url), self.urls.check_blocking(logout_url), probe)
