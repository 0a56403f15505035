"""The last completed run's status report, kept in the Function App's storage.

The timer's run writes the status document (the JSON GET /api/status answers)
to one blob, ``sso-monitor-reports/status.json``, in the account
AzureWebJobsStorage names: a connection string (Azurite, or a key-based
account) or, identity-based, the blob endpoint with the managed identity
(``credential_for(config, home)``, as the blob lease and the alert store do).
The admin API reads it back. A blob, not a Table entity: the document grows
with the number of apps (a few hundred bytes to a few KB each), and an entity
property holds at most 64 KiB. One write per timer run replaces the whole blob
(a reader sees the old document or the new one, never half of one).

The document holds ids, dates, finding texts and stages, never a secret value.

Why the synchronous BlobClient in a ``BlockingPool``: the same reasons as the
blob lease's (docs/decisions.md). SDK errors stop here: azure-core exceptions
become ``AccessDenied`` (403, or our identity refused), ``Throttled`` (429, or
503 ServerBusy), ``TransientError`` (other 5xx, connection failures) or
``ExternalError``, all with the service "blob storage", chained with
``raise ... from``. Messages carry the container, blob, status and error
code; never the connection string, the account key or a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, ContainerClient, ContentSettings

from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.errors import azure_error
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import ExternalError

log = logging.getLogger(__name__)

SERVICE = "blob storage"
DEFAULT_CONTAINER = "sso-monitor-reports"
STATUS_BLOB = "status.json"
# A sanity bound on what is read back: thousands of apps stay far below it.
MAX_REPORT_BYTES = 64 * 1024 * 1024


class ReportUnreadable(ExternalError):
    """The stored report is there but is not a JSON object (the next run replaces it)."""


class BlobReportStore:
    """One JSON document per name in one container. ``reads`` and ``writes`` count
    the requests made (tests prove the admin API's cache with them)."""

    def __init__(self, container: ContainerClient, *, blob: str = STATUS_BLOB) -> None:
        self._container = container
        self._blob_name = blob
        self._pool = BlockingPool(2, "report")
        self.reads = 0
        self.writes = 0

    @property
    def where(self) -> str:
        return f"{self._container.container_name}/{self._blob_name}"

    async def read(self) -> dict[str, Any] | None:
        """The stored document, or None when no run has stored one yet."""
        self.reads += 1
        try:
            data = await self._pool.run(self._download)
        except AzureError as exc:
            raise azure_error(SERVICE, f"{self.where}: read", exc, "storage") from exc
        if data is None:
            return None
        if len(data) > MAX_REPORT_BYTES:
            raise ReportUnreadable(SERVICE, f"{self.where}: the stored report is larger than {MAX_REPORT_BYTES} bytes")
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise ReportUnreadable(SERVICE, f"{self.where}: the stored report is not JSON; the next scheduled run replaces it") from None
        if not isinstance(document, dict):
            raise ReportUnreadable(SERVICE, f"{self.where}: the stored report is not a JSON object; the next scheduled run replaces it")
        return document

    async def write(self, document: dict[str, Any]) -> None:
        """Replace the stored document (the container is created on the first write)."""
        data = json.dumps(document, separators=(",", ":"), allow_nan=False, default=str).encode("utf-8")
        self.writes += 1
        try:
            await self._pool.run(self._upload, data)
        except AzureError as exc:
            raise azure_error(SERVICE, f"{self.where}: write of {len(data)} bytes", exc, "storage") from exc
        log.info("report store: wrote %s (%d bytes)", self.where, len(data))

    async def aclose(self) -> None:
        self._pool.close()
        await asyncio.to_thread(self._container.close)

    # The rest runs in the pool's threads.

    def _blob(self) -> BlobClient:
        return self._container.get_blob_client(self._blob_name)

    def _download(self) -> bytes | None:
        try:
            return self._blob().download_blob().readall()
        except ResourceNotFoundError:  # no blob yet, or no container yet
            return None

    def _upload(self, data: bytes) -> None:
        settings = ContentSettings(content_type="application/json")
        try:
            self._blob().upload_blob(data, overwrite=True, content_settings=settings)
            return
        except ResourceNotFoundError:  # the first run in a new storage account: no container
            pass
        try:
            self._container.create_container()
        except ResourceExistsError:  # another writer created it meanwhile
            pass
        self._blob().upload_blob(data, overwrite=True, content_settings=settings)


def report_store_from_settings(
    config: MonitorConfig, *, container: str = DEFAULT_CONTAINER, timeout_seconds: float = 10.0, retry_total: int = 2
) -> BlobReportStore | None:
    """The report store on the Function App's storage, or None when none is configured
    (local runs without AzureWebJobsStorage)."""
    options: dict[str, Any] = {"connection_timeout": timeout_seconds, "read_timeout": timeout_seconds, "retry_total": retry_total}
    storage = config.storage
    if storage.connection_string is not None:
        try:
            client = ContainerClient.from_connection_string(storage.connection_string.reveal(), container, **options)
        except ValueError:
            # Not chained: the SDK's message may quote the connection string.
            raise ValueError("report store: the storage connection string (AzureWebJobsStorage) is malformed") from None
        return BlobReportStore(client)
    if storage.account_url:
        return BlobReportStore(ContainerClient(storage.account_url, container, credential=credential_for(config, config.home_tenant_id), **options))
    return None
