"""Whether a run holds an app's rotation lease right now, read without taking it.

The blob lease (lease.py) is one blob per key in ``sso-monitor-leases``; its
properties say whether it is leased. Reading them is one GET of the blob's
properties: no lease is acquired, nothing is written. For the admin API's
rotation status (a rotation that answered 202 may still be running).
None when there is no storage to ask (local runs); errors are translated as
lease.py translates them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.errors import azure_error
from sso_monitor.adapters.storage.lease import DEFAULT_CONTAINER, SERVICE, _blob_name
from sso_monitor.config import MonitorConfig


async def lease_held(config: MonitorConfig, key: str, *, container: str = DEFAULT_CONTAINER, timeout_seconds: float = 10.0) -> bool | None:
    """True when the lease on ``key`` is held now, False when not (or never created), None without storage."""
    client = _container(config, container, timeout_seconds)
    if client is None:
        return None
    try:
        return await asyncio.to_thread(_held, client, _blob_name(key))
    except AzureError as exc:
        raise azure_error(SERVICE, f"lease {key}: state", exc, "storage") from exc
    finally:
        await asyncio.to_thread(client.close)


def _held(client: ContainerClient, name: str) -> bool:
    try:
        properties = client.get_blob_client(name).get_blob_properties()
    except ResourceNotFoundError:  # no run ever took this lease (or no container yet)
        return False
    return str(getattr(properties.lease.state, "value", properties.lease.state)) == "leased"


def _container(config: MonitorConfig, container: str, timeout_seconds: float) -> ContainerClient | None:
    options: dict[str, Any] = {"connection_timeout": timeout_seconds, "read_timeout": timeout_seconds, "retry_total": 2}
    storage = config.storage
    if storage.connection_string is not None:
        try:
            return ContainerClient.from_connection_string(storage.connection_string.reveal(), container, **options)
        except ValueError:
            raise ValueError("lease state: the storage connection string (AzureWebJobsStorage) is malformed") from None
    if storage.account_url:
        return ContainerClient(storage.account_url, container, credential=credential_for(config, config.home_tenant_id), **options)
    return None
