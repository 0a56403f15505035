"""OneTripAppReader against the sandbox: one app's reads outside Graph, in one worker thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sso_monitor.adapters.app_reads import OneTripAppReader
from sso_monitor.adapters.entra.probes import EntraTokenProbe, UrlProbe
from sso_monitor.adapters.keyvault.reader import KeyVaultReader
from sso_monitor.checks.ports import OwnReads, VaultRead
from sso_monitor.config import MonitorConfig, parse_config
from sso_monitor.models import ProbeOutcome, Problem, Reachability, ReadFailure
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


def config_for(sandbox: Sandbox) -> MonitorConfig:
    document, environ = monitor_document(sandbox)
    return parse_config(document, environ)


def read(sandbox: Sandbox, secret_name: str | None = None) -> tuple[OwnReads, OneTripAppReader]:
    config = config_for(sandbox)
    app = config.apps[0]

    async def run() -> tuple[OwnReads, OneTripAppReader]:
        vault, probe, urls = KeyVaultReader(config), EntraTokenProbe(config, retry_total=0), UrlProbe(config)
        reader = OneTripAppReader(vault, probe, urls, workers=2)
        try:
            return await reader.read(secret_name or app.vault_secret_name, app.tenant_id, app.app_id, app.facility_url, app.expected_logout_url), reader
        finally:
            await reader.aclose()
            for adapter in (vault, probe, urls):
                await adapter.aclose()

    return asyncio.run(run())


def token_requests_by(sandbox: Sandbox, app_id: str) -> int:
    return sum(1 for r in list(sandbox.world.requests) if r.service == "login" and r.method == "POST" and r.caller == app_id)


def test_reads_the_secret_tries_it_and_checks_both_pages(sandbox: Sandbox, ids: StandardIds) -> None:
    own, _ = read(sandbox)
    assert isinstance(own.stored, VaultRead) and own.stored.info.key_id == ids.smarttrace_key_id
    assert own.probe is not None and own.probe.outcome is ProbeOutcome.WORKS
    assert own.facility_page.outcome is Reachability.OK and own.logout_callback.outcome is Reachability.OK
    assert token_requests_by(sandbox, ids.smarttrace_app_id) == 1  # the control for the two tests below


def test_the_four_calls_take_one_trip_to_one_worker_thread(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    for cls, name in ((KeyVaultReader, "read_blocking"), (EntraTokenProbe, "probe_blocking"), (UrlProbe, "check_blocking")):
        original = getattr(cls, name)

        def recorded(self: object, *args: object, _original: object = original, _name: str = name) -> object:  # records, then calls as ever
            seen.append((_name, threading.get_ident()))
            return _original(self, *args)  # type: ignore[operator]

        monkeypatch.setattr(cls, name, recorded)
    read(sandbox)
    assert [name for name, _ in seen] == ["read_blocking", "probe_blocking", "check_blocking", "check_blocking"]
    assert len({thread for _, thread in seen}) == 1 and seen[0][1] != threading.get_ident()


def test_no_token_request_without_a_stored_secret_but_the_pages_are_still_checked(sandbox: Sandbox, ids: StandardIds) -> None:
    own, _ = read(sandbox, "smarttrace-nowhere")
    assert isinstance(own.stored, ReadFailure) and own.stored.problem is Problem.NOT_FOUND
    assert own.probe is None
    assert token_requests_by(sandbox, ids.smarttrace_app_id) == 0
    assert own.facility_page.outcome is Reachability.OK


def test_a_disabled_current_version_is_not_tried(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.vault(ids.vault_name).secrets["smarttrace-acme"].latest.enabled = False
    own, _ = read(sandbox)
    assert isinstance(own.stored, ReadFailure) and "disabled" in own.stored.detail
    assert own.probe is None and token_requests_by(sandbox, ids.smarttrace_app_id) == 0
