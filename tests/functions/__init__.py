"""Tests of the Function App's functions."""

from __future__ import annotations

import json
from typing import Any

from sso_monitor.functions import admin
from sso_sandbox.settings import monitor_document


def configure_admin_api(
    sandbox: Any,
    ids: Any,
    monkeypatch: Any,
    tmp_path: Any,
    *,
    facility: str,
    verify: dict[str, float],
    app_overrides: dict[str, Any] | None = None,
    storage: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """App settings for the admin API against the sandbox, as the Function App would have them.
    ``storage``: the AzureWebJobsStorage connection string (Azurite), else none."""
    document, environ = monitor_document(sandbox, facilities=[facility], app_overrides={facility: app_overrides or {}})
    document["adminApi"] = {"tenantId": ids.tenant_id, "audience": ids.admin_api_uri, "clientId": ids.admin_api_client_id}
    document["verify"] = verify
    document.update(extra or {})
    monkeypatch.setenv("SSO_MONITOR_CONFIG", json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    if storage:
        monkeypatch.setenv("AzureWebJobsStorage", storage)
    else:
        monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # the local lease's lock files
    admin.reset()


def forget_status_report(connection_string: str) -> None:
    """Delete the stored status report (the timer writes it again), so a test does not
    see what an earlier test's timer run stored, and forget the process's cached copy."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobClient

    from sso_monitor.adapters.storage.report_store import DEFAULT_CONTAINER, STATUS_BLOB
    from sso_monitor.functions import status_report

    with BlobClient.from_connection_string(connection_string, DEFAULT_CONTAINER, STATUS_BLOB) as blob:
        try:
            blob.delete_blob()
        except ResourceNotFoundError:
            pass
    status_report.cache.clear()


def run_timer() -> None:
    """The timer's function, as the host calls it (with the app settings the test set)."""
    import asyncio

    from azure.functions.timer import TimerRequest

    from sso_monitor.functions import scheduled
    from tests.app_functions import functions_by_name

    scheduled.reset()
    result = functions_by_name()["scheduled_run"].get_user_function()(TimerRequest(past_due=False))
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def after_a_scheduled_run(sandbox: Any, ids: Any, monkeypatch: Any, tmp_path: Any, connection_string: str, *, run: Any = None) -> None:
    """The admin API for acme with the Function App's storage (Azurite), after one scheduled
    run stored its status report (what the status routes answer). ``run`` runs the timer
    (default: ``run_timer`` here)."""
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, storage=connection_string)
    monkeypatch.setenv("SSO_MONITOR_SCHEDULE", "0 0 6 * * *")
    forget_status_report(connection_string)
    (run or run_timer)()
