"""The rotation work queue on the Function App's storage: azure-storage-queue's
synchronous client (run in a thread by the caller, as the blob lease is:
credential_for builds sync credentials). Messages are base64 text, as the
queue trigger expects by default (host.json extensions.queues.messageEncoding);
they carry a facility and a reason, never anything secret."""

from __future__ import annotations

import logging
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.storage.endpoints import service_endpoint
from sso_monitor.config import MonitorConfig
from sso_monitor.rotation.ports import WORK_QUEUE, WorkItem

log = logging.getLogger(__name__)


def enqueue(config: MonitorConfig, work: list[WorkItem]) -> tuple[list[WorkItem], list[str]]:
    """Send each item (schedule.WorkItem); (sent, failures). One failed send does not stop the others."""
    if not work:
        return [], []
    sent: list[Any] = []
    failures: list[str] = []
    try:
        client = _queue_client(config)
    except (ValueError, AzureError) as exc:
        return [], [f"work queue {WORK_QUEUE}: unusable ({type(exc).__name__}: {exc})"]
    with client:
        for item in work:
            try:
                try:
                    client.send_message(item.message())
                except ResourceNotFoundError:  # the first run in a new storage account
                    try:
                        client.create_queue()
                    except ResourceExistsError:
                        pass
                    client.send_message(item.message())
            except AzureError as exc:
                failures.append(f"{item.facility}: not queued ({type(exc).__name__})")
                continue
            log.info("scheduled run: queued %s (%s)", item.facility, item.reason)
            sent.append(item)
    return sent, failures


def _queue_client(config: MonitorConfig) -> Any:
    options: dict[str, Any] = {"message_encode_policy": TextBase64EncodePolicy(), "connection_timeout": 10, "read_timeout": 10, "retry_total": 3}
    storage = config.storage
    if storage.connection_string is not None:
        return QueueClient.from_connection_string(storage.connection_string.reveal(), WORK_QUEUE, **options)
    if storage.account_url:
        return QueueClient(service_endpoint(storage.account_url, "queue"), WORK_QUEUE, credential=credential_for(config, config.home_tenant_id), **options)
    raise ValueError("no storage configured: set AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__accountName")
