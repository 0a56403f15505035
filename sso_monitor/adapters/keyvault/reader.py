"""Key Vault reads for the health checks: azure-keyvault-secrets behind VaultReader.

Why the sync SecretClient, run through ``asyncio.to_thread``, and not the aio one:

- ``credential_for`` builds sync credentials, and the federated identity's
  client-assertion callback is a blocking token request; on the aio pipeline it
  would stall the event loop. In a worker thread it blocks only that thread.
- The aio transport needs aiohttp, which the package does not declare (it is in
  the venv only as a dependency of a dependency); the sync transport is
  requests, which it does.
- The checks read one secret per app, with concurrency bounded by the core;
  a thread per read in flight costs nothing that matters at that scale.

SDK objects stop here: a read answers a ``VaultRead`` (our dataclasses) or a
``ReadFailure`` whose detail names the secret, the HTTP status and Key Vault's
error code, never a value. Retries of 429/5xx and dropped connections are
azure-core's (RetryPolicy, honouring Retry-After); we only bound them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient, SecretProperties

from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.errors import describe, inner_code
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.checks.ports import Retirement, VaultRead
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import AccessDenied, ExternalError, NotFound
from sso_monitor.models import Problem, ReadFailure, SecretValue, VaultSecretInfo, unstamp

log = logging.getLogger(__name__)

# Key Vault DNS suffixes of the public and sovereign clouds (and private link).
# Only a vault elsewhere (the sandbox on 127.0.0.1) may skip the SDK's check
# that the challenge's resource matches the vault's domain.
AZURE_VAULT_SUFFIXES = (".vault.azure.net", ".vault.usgovcloudapi.net", ".vault.azure.cn", ".vaultcore.azure.net")

DEFAULT_RETRY_TOTAL = 4
_DETAIL_LIMIT = 240


def is_azure_vault_host(vault_url: str) -> bool:
    host = (urlsplit(vault_url).hostname or "").lower().rstrip(".")
    return any(host.endswith(suffix) for suffix in AZURE_VAULT_SUFFIXES)


def secret_client_options(
    config: MonitorConfig, vault_url: str, *, retry_total: int = DEFAULT_RETRY_TOTAL, retry_backoff_factor: float = 0.8
) -> dict[str, Any]:
    """SecretClient keyword options from the settings (the reader's and the writer's)."""
    timeout = config.network.timeout_seconds
    options: dict[str, Any] = {
        "retry_total": retry_total,
        "retry_backoff_factor": retry_backoff_factor,
        # The whole call, retries and Retry-After waits included, ends by then.
        "timeout": int(timeout * (retry_total + 2)),
        "connection_timeout": config.network.connect_timeout,
        "read_timeout": timeout,
        "use_env_settings": config.network.use_env_proxies,
    }
    if not is_azure_vault_host(vault_url):
        options["verify_challenge_resource"] = False
    if config.network.ca_bundle:
        options["connection_verify"] = config.network.ca_bundle
    return options


class KeyVaultReader:
    """VaultReader on one vault (``config.vault_url``, or ``vault_url``) with the home tenant's identity.

    ``retry_total`` and ``retry_backoff_factor`` bound azure-core's retries
    (a permanent 503 returns after them); each request's connect and read
    timeouts are ``config.network.timeout_seconds``.
    """

    def __init__(
        self, config: MonitorConfig, *, vault_url: str | None = None, retry_total: int = DEFAULT_RETRY_TOTAL, retry_backoff_factor: float = 0.8
    ) -> None:
        self.vault_url = vault_url or config.vault_url
        self._credential = credential_for(config, config.home_tenant_id)
        self._client = SecretClient(
            self.vault_url,
            self._credential,
            **secret_client_options(config, self.vault_url, retry_total=retry_total, retry_backoff_factor=retry_backoff_factor),
        )
        self._pool = BlockingPool(config.network.concurrency, "keyvault")

    async def read(self, name: str) -> VaultRead | ReadFailure:
        return await self._pool.run(self.read_blocking, name)

    async def key_ids(self, name: str) -> frozenset[str] | ReadFailure:
        return await self._pool.run(self._key_ids, name)

    async def retirements(self, name: str) -> tuple[Retirement, ...] | ReadFailure:
        return await self._pool.run(self._retirements, name)

    async def aclose(self) -> None:
        await self._pool.run(self._close)
        self._pool.close()

    # ---- blocking parts, run in a worker thread (this adapter's pool, or AppReads's hop)

    def read_blocking(self, name: str) -> VaultRead | ReadFailure:
        """``read`` in the calling thread."""
        try:
            secret = self._client.get_secret(name)
            stage = (secret.properties.tags or {}).get("stage")
            if stage not in (None, "current"):
                # The newest version belongs to a rotation in flight (or an abandoned
                # one): SmartTrace holds the version tagged current, so that is checked.
                current = [p for p in self._client.list_properties_of_secret_versions(name) if (p.tags or {}).get("stage") == "current"]
                if current:
                    # Newest by Key Vault's created (whole seconds), ties by the monitor's
                    # storedAt tag: never by the listing's position (it is by version id).
                    newest = max(current, key=lambda p: (p.created_on or datetime.min.replace(tzinfo=UTC), (p.tags or {}).get("storedAt", ""), p.version or ""))
                    secret = self._client.get_secret(name, newest.version)
        except AzureError as exc:
            failure = failure_from(name, exc)
            log.warning("vault read %s: %s (%s)", name, failure.problem.value, failure.detail)
            return failure
        info = _info(secret.properties, name)
        log.debug("vault read %s: version %s, keyId %s", name, info.version, info.key_id)
        return VaultRead(info=info, value=SecretValue(secret.value or ""))

    def _key_ids(self, name: str) -> frozenset[str] | ReadFailure:
        # Every version's keyId, or the read fails: a partial set would make the
        # sweep take stored credentials for orphans. No versions at all is a failure
        # too (the secret went away, or the listing answered empty: either way
        # nothing here proves a credential unstored).
        versions = self._versions(name)
        if isinstance(versions, ReadFailure):
            return versions
        if not versions:
            log.warning("vault versions of %s: none listed", name)
            return ReadFailure(Problem.NOT_FOUND, f"no versions of {name} listed in the vault")
        found = frozenset(p.tags["keyId"].lower() for p in versions if p.tags and p.tags.get("keyId"))
        log.debug("vault versions of %s: %d keyId(s) across %d version(s)", name, len(found), len(versions))
        return found

    def _retirements(self, name: str) -> tuple[Retirement, ...] | ReadFailure:
        # The tags the rotation's retire step wrote (stage, keyId, retiredAt): the durable
        # record that the monitor removed a credential, and when. A version of another
        # shape (no retiredAt, not a stamp) is not evidence and is left out.
        versions = self._versions(name)
        if isinstance(versions, ReadFailure):
            return versions
        found = []
        for p in versions:
            tags = p.tags or {}
            at = unstamp(tags.get("retiredAt"))
            if tags.get("stage") == "retired" and tags.get("keyId") and at is not None:
                found.append(Retirement(key_id=tags["keyId"].lower(), retired_at=at, version=p.version or ""))
        return tuple(sorted(found, key=lambda r: r.retired_at))

    def _versions(self, name: str) -> list[SecretProperties] | ReadFailure:
        """Every version's properties (tags, no values), or why they could not be listed."""
        try:
            return list(self._client.list_properties_of_secret_versions(name))
        except AzureError as exc:
            failure = failure_from(name, exc)
            log.warning("vault versions of %s: %s (%s)", name, failure.problem.value, failure.detail)
            return failure

    def _close(self) -> None:
        self._client.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            close()


def _info(properties: SecretProperties, name: str) -> VaultSecretInfo:
    return VaultSecretInfo(
        name=properties.name or name,
        version=properties.version or "",
        enabled=bool(properties.enabled),
        expires=properties.expires_on,
        tags=dict(properties.tags or {}),
        content_type=properties.content_type,
        created=properties.created_on,
    )


def failure_from(name: str, exc: AzureError) -> ReadFailure:
    """An SDK error as a ReadFailure, by the one translation (adapters/errors.py); a
    disabled current version is "no usable secret", as a missing one."""
    if isinstance(exc, ResourceNotFoundError):
        return ReadFailure(Problem.NOT_FOUND, f"no secret named {name} in the vault")
    if isinstance(exc, HttpResponseError) and exc.status_code == 403 and inner_code(exc) == "SecretDisabled":
        return ReadFailure(Problem.NOT_FOUND, f"the current version of {name} is disabled")
    found = describe(exc, "the vault")
    return ReadFailure(_PROBLEMS.get(found.kind, Problem.FAILED), found.detail)


_PROBLEMS: dict[type[ExternalError], Problem] = {NotFound: Problem.NOT_FOUND, AccessDenied: Problem.ACCESS_DENIED}
