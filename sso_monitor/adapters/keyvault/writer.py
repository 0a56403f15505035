"""Key Vault for the rotation protocol: VaultWriter on azure-keyvault-secrets.

The versions of an app's secret and their tags are the rotation's state
(DESIGN.md, "Rotation: a protocol, not a function"). Same client as the
reader (keyvault.py), for the same reasons: the sync SecretClient in a
bounded worker pool, the home tenant's identity, azure-core's retries
bounded, the challenge's resource checked except for a vault outside
Azure's domains (the sandbox), the configured CA and timeouts.

SDK objects and errors stop here: versions become ``VaultVersion``, values
``SecretValue``, and errors NotFound, AccessDenied, Throttled, TransientError
or ExternalError whose messages name the secret and version, never a value.
The SDK error of a write is not chained (its request holds the value).
A write retried by azure-core after a lost answer can add a second version
with the same tags; the protocol's store step reads the versions before it
writes, and an extra ``pending`` version of the same keyId is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient, SecretProperties

from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.errors import azure_error
from sso_monitor.adapters.keyvault.reader import DEFAULT_RETRY_TOTAL, secret_client_options
from sso_monitor.adapters.keyvault.secrets import KeyVaultSecretSource
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import ExternalError, NotFound
from sso_monitor.models import SecretValue
from sso_monitor.rotation.ports import VaultVersion

log = logging.getLogger(__name__)

SERVICE = "keyvault"


class KeyVaultWriter:
    """VaultWriter on one vault (``config.vault_url``) with the home tenant's identity."""

    def __init__(self, config: MonitorConfig, *, retry_total: int = DEFAULT_RETRY_TOTAL, retry_backoff_factor: float = 0.8) -> None:
        self.vault_url = config.vault_url
        self._credential = credential_for(config, config.home_tenant_id)
        self._client = SecretClient(
            config.vault_url,
            self._credential,
            **secret_client_options(config, config.vault_url, retry_total=retry_total, retry_backoff_factor=retry_backoff_factor),
        )
        self._pool = BlockingPool(config.network.concurrency, "keyvault-writer")
        # Handoff tokens live in the settings vault, which the monitor may only read.
        self._settings = KeyVaultSecretSource(config)

    # ---- the port

    async def versions(self, name: str) -> list[VaultVersion]:
        return await self._pool.run(self._versions, name)

    async def value(self, name: str, version: str) -> SecretValue:
        return await self._pool.run(self._value, name, version)

    async def add_version(
        self, name: str, value: SecretValue, *, tags: dict[str, str], expires: datetime | None, content_type: str = "text/plain"
    ) -> VaultVersion:
        return await self._pool.run(self._add_version, name, value, dict(tags), expires, content_type)

    async def set_tags(self, name: str, version: str, tags: dict[str, str], *, enabled: bool | None = None) -> None:
        await self._pool.run(self._set_tags, name, version, dict(tags), enabled)

    async def is_deleted(self, name: str) -> bool | None:
        return await self._pool.run(self._is_deleted, name)

    async def read_secret(self, name: str) -> SecretValue:
        return await self._settings.secret(name)

    async def aclose(self) -> None:
        await self._settings.aclose()
        await self._pool.run(self._close)
        self._pool.close()

    # ---- blocking parts, run in a worker thread

    def _versions(self, name: str) -> list[VaultVersion]:
        try:
            found = [_version(p) for p in self._client.list_properties_of_secret_versions(name)]
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise _error(exc, f"versions of {name}") from exc
        # In Key Vault's order, which is by version id, not by age: the protocol orders them
        # itself (rotation_state.ordered), never by a listing's position.
        log.debug("vault %s: %d version(s)", name, len(found))
        return found

    def _is_deleted(self, name: str) -> bool | None:
        try:
            self._client.get_deleted_secret(name)
        except ResourceNotFoundError:
            return False
        except AzureError as exc:  # not allowed, or Key Vault failing: it would not say
            log.info("vault %s: whether it is soft-deleted is unknown (%s)", name, type(exc).__name__)
            return None
        return True

    def _value(self, name: str, version: str | None) -> SecretValue:
        what = f"{name}/{version}" if version else name
        try:
            secret = self._client.get_secret(name, version)
        except AzureError as exc:
            raise _error(exc, what) from exc
        if secret.value is None:
            raise ExternalError(SERVICE, f"{what}: Key Vault answered without a value")
        log.debug("vault read %s", what)
        return SecretValue(secret.value)

    def _add_version(self, name: str, value: SecretValue, tags: dict[str, str], expires: datetime | None, content_type: str) -> VaultVersion:
        failure: ExternalError | None = None
        try:
            secret = self._client.set_secret(name, value.reveal(), tags=tags, expires_on=expires, content_type=content_type)
        except AzureError as exc:
            failure = _error(exc, f"new version of {name}")
        if failure is not None:
            # Raised outside the handler, unchained: the SDK error keeps the request,
            # whose body is the value.
            raise failure
        version = _version(secret.properties)
        log.info("vault %s: added version %s, tags %s", name, version.version, sorted(tags))
        return version

    def _set_tags(self, name: str, version: str, tags: dict[str, str], enabled: bool | None) -> None:
        options: dict[str, Any] = {"tags": tags}
        if enabled is not None:
            options["enabled"] = enabled
        try:
            self._client.update_secret_properties(name, version, **options)
        except AzureError as exc:
            raise _error(exc, f"{name}/{version}") from exc
        log.info("vault %s/%s: tags set (stage %s)%s", name, version, tags.get("stage"), "" if enabled is None else f", enabled {enabled}")

    def _close(self) -> None:
        self._client.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            close()


def _version(properties: SecretProperties) -> VaultVersion:
    return VaultVersion(
        version=properties.version or "",
        tags=dict(properties.tags or {}),
        enabled=bool(properties.enabled),
        expires=properties.expires_on,
        created=properties.created_on,
    )


def _error(exc: AzureError, what: str) -> ExternalError:
    """The one translation (adapters/errors.py); a missing secret or version named as such."""
    if isinstance(exc, ResourceNotFoundError):
        return NotFound(SERVICE, f"{what}: no such secret or version in the vault", status=404)
    return azure_error(SERVICE, what, exc, "the vault")
