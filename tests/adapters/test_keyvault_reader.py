"""KeyVaultReader against the sandbox vault over HTTPS: the real SDK, our translation."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, ServiceResponseError

from sso_monitor.adapters.keyvault.reader import KeyVaultReader, failure_from, is_azure_vault_host
from sso_monitor.checks.ports import VaultRead
from sso_monitor.config import MonitorConfig, parse_config
from sso_monitor.models import Problem, ReadFailure, SecretValue
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds

SECRET = "smarttrace-acme"


def config_for(sandbox: Sandbox, environ_overrides: dict[str, str] | None = None) -> MonitorConfig:
    document, environ = monitor_document(sandbox)
    environ.update(environ_overrides or {})
    return parse_config(document, environ)


def read(sandbox: Sandbox, name: str = SECRET, **options: object) -> VaultRead | ReadFailure:
    """One read with a fresh reader, closed afterwards."""

    async def run() -> VaultRead | ReadFailure:
        reader = KeyVaultReader(config_for(sandbox), **options)  # type: ignore[arg-type]
        try:
            return await reader.read(name)
        finally:
            await reader.aclose()

    return asyncio.run(run())


def key_ids(sandbox: Sandbox, name: str = SECRET) -> frozenset[str] | ReadFailure:
    """Every version's keyId with a fresh reader, closed afterwards."""

    async def run() -> frozenset[str] | ReadFailure:
        reader = KeyVaultReader(config_for(sandbox))
        try:
            return await reader.key_ids(name)
        finally:
            await reader.aclose()

    return asyncio.run(run())


pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


# ---------------------------------------------------------------- success


def test_reads_the_current_version_its_metadata_and_value(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    stored = world.vault(ids.vault_name).secrets[SECRET].latest
    result = read(sandbox)
    assert isinstance(result, VaultRead)
    info = result.info
    assert info.name == SECRET
    assert info.version == stored.version
    assert info.enabled is True
    assert info.expires is not None and info.expires.tzinfo is not None
    assert int(info.expires.timestamp()) == int(stored.expires.timestamp())  # Key Vault keeps whole seconds
    assert info.tags == {"keyId": ids.smarttrace_key_id, "stage": "current"}
    assert info.key_id == ids.smarttrace_key_id
    assert info.content_type == "text/plain"
    assert info.created is not None and info.created.astimezone(UTC) <= world.now()
    # the value: right, and never shown
    assert isinstance(result.value, SecretValue)
    assert result.value.reveal() == stored.value
    assert stored.value not in repr(result) and stored.value not in str(result)


def test_key_ids_come_from_every_version_across_pages(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    vault = world.vault(ids.vault_name)
    app = world.find_app(ids.smarttrace_app_id)
    with world.lock:
        newer = world.add_password(app, display_name="rotated")
        # more versions than one page of the versions list holds (25), most without a keyId tag
        for _ in range(26):
            world.set_secret(vault, SECRET, "filler-value", tags={"stage": "previous"})
        world.set_secret(vault, SECRET, "old-pasted-value", tags={"keyId": "0B9D5C3F-0000-4000-8000-0000000000AA"}, enabled=False)
        latest = world.set_secret(vault, SECRET, newer.secret_text, tags={"keyId": newer.key_id, "stage": "current"}, expires=newer.end)
    result = read(sandbox)
    assert isinstance(result, VaultRead)
    assert result.info.version == latest.version
    assert result.info.key_id == newer.key_id
    assert result.value.reveal() == newer.secret_text
    # lower-cased, and a disabled version's keyId counts: the credential is still stored
    assert key_ids(sandbox) == frozenset({ids.smarttrace_key_id, newer.key_id, "0b9d5c3f-0000-4000-8000-0000000000aa"})


def test_a_transient_500_is_retried_by_the_sdk(sandbox: Sandbox) -> None:
    sandbox.faults.add("status", service="vault", status=500, times=1)
    result = read(sandbox, retry_backoff_factor=0.01)
    assert isinstance(result, VaultRead)
    assert [entry["fault"] for entry in sandbox.faults.log] == ["status"]


# ---------------------------------------------------------------- failures


def test_a_missing_secret_is_not_found(sandbox: Sandbox) -> None:
    result = read(sandbox, "smarttrace-nowhere")
    assert result == ReadFailure(Problem.NOT_FOUND, "no secret named smarttrace-nowhere in the vault")


def test_versions_of_a_missing_secret_fail_rather_than_read_as_none(sandbox: Sandbox) -> None:
    # an empty set would make every credential of ours an orphan
    result = key_ids(sandbox, "smarttrace-nowhere")
    assert isinstance(result, ReadFailure) and result.problem is Problem.NOT_FOUND


def test_a_disabled_current_version_reads_as_no_usable_secret(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.vault(ids.vault_name).secrets[SECRET].latest.enabled = False
    result = read(sandbox)
    assert isinstance(result, ReadFailure)
    assert result.problem is Problem.NOT_FOUND
    assert "disabled" in result.detail


def test_a_monitor_without_a_vault_role_is_denied(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.vault(ids.vault_name).access.pop(ids.monitor_app_id)
    result = read(sandbox)
    assert isinstance(result, ReadFailure)
    assert result.problem is Problem.ACCESS_DENIED
    assert result.detail.startswith("HTTP 403 Forbidden: Caller is not authorized")


def test_a_monitor_identity_that_entra_refuses_is_denied(sandbox: Sandbox) -> None:
    document, environ = monitor_document(sandbox)
    environ = dict.fromkeys(environ, "not-the-monitor-secret")

    async def run() -> VaultRead | ReadFailure:
        reader = KeyVaultReader(parse_config(document, environ), retry_total=1)
        try:
            return await reader.read(SECRET)
        finally:
            await reader.aclose()

    result = asyncio.run(run())
    assert isinstance(result, ReadFailure)
    assert result.problem is Problem.ACCESS_DENIED
    assert "AADSTS7000215" in result.detail


def test_a_permanent_503_fails_after_bounded_retries(sandbox: Sandbox) -> None:
    sandbox.faults.add("status", service="vault", status=503)
    started = time.monotonic()
    result = read(sandbox, retry_total=2, retry_backoff_factor=0.01)
    assert time.monotonic() - started < 10
    assert isinstance(result, ReadFailure)
    assert result.problem is Problem.FAILED
    assert result.detail.startswith("HTTP 503 ServiceUnavailable")
    assert len(sandbox.faults.log) == 3  # the first try and two retries


def test_a_dropped_connection_fails(sandbox: Sandbox) -> None:
    sandbox.faults.add("drop", service="vault")
    result = read(sandbox, retry_total=1, retry_backoff_factor=0.01)
    assert isinstance(result, ReadFailure)
    assert result.problem is Problem.FAILED
    assert "ServiceResponseError" in result.detail or "aborted" in result.detail


def test_reads_run_concurrently_on_one_reader(sandbox: Sandbox) -> None:
    sandbox.faults.add("latency", service="vault", latency_ms=300, path="/secrets/smarttrace-acme/")

    async def run() -> list[VaultRead | ReadFailure]:
        reader = KeyVaultReader(config_for(sandbox))
        try:
            await reader.read(SECRET)  # the challenge and the token, once
            started = time.monotonic()
            results = await asyncio.gather(*(reader.read(SECRET) for _ in range(4)))
            assert time.monotonic() - started < 1.0  # four reads of >= 300 ms each, side by side
            return results
        finally:
            await reader.aclose()

    assert all(isinstance(result, VaultRead) for result in asyncio.run(run()))


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    "url, azure",
    [
        ("https://kv-sso.vault.azure.net", True),  # public cloud
        ("https://kv-sso.vault.usgovcloudapi.net/", True),  # US Government
        ("https://kv-sso.vault.azure.cn", True),  # China
        ("https://kv-sso.privatelink.vaultcore.azure.net", True),  # private link
        ("https://KV-SSO.VAULT.AZURE.NET.", True),  # case and a trailing dot
        ("https://127.0.0.1:8443", False),  # the sandbox
        ("https://vault.azure.net.example.com", False),  # a look-alike
        ("https://evilvault.azure.net", False),  # not a subdomain of vault.azure.net
    ],
)
def test_which_vault_hosts_keep_the_challenge_resource_check(url: str, azure: bool) -> None:
    assert is_azure_vault_host(url) is azure


@pytest.mark.parametrize(
    "error, problem, starts",
    [
        # our own token request refused by Entra: the monitor's identity is wrong
        (
            ClientAuthenticationError(
                "ClientSecretCredential.get_token failed: Authentication failed: AADSTS7000222: The provided client secret keys are expired."
            ),
            Problem.ACCESS_DENIED,
            "the vault refused",
        ),
        # Entra down while getting our token: not a denial, retry next run
        (ClientAuthenticationError("ClientSecretCredential.get_token failed: Authentication failed: HTTP Error: 503"), Problem.FAILED, "getting a token"),
        (
            ClientAuthenticationError("Authentication failed: ('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"),
            Problem.FAILED,
            "getting a token",
        ),
        (ResourceNotFoundError("SecretNotFound"), Problem.NOT_FOUND, "no secret named"),
        (ServiceResponseError("('Connection aborted.', RemoteDisconnected())"), Problem.FAILED, "ServiceResponseError"),
        (HttpResponseError("boom"), Problem.FAILED, "HttpResponseError"),  # no response at all
    ],
)
def test_sdk_errors_translate_to_read_failures(error: Exception, problem: Problem, starts: str) -> None:
    failure = failure_from(SECRET, error)  # type: ignore[arg-type]
    assert failure.problem is problem
    assert failure.detail.startswith(starts)
    assert len(failure.detail) <= 240
