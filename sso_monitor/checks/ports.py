"""The ports: what the core needs from the outside world, in our own types.

Adapters (sso_monitor/adapters/) implement these on the real SDKs; wiring
builds them from settings; tests use the sandbox behind the same adapters.
Reads answer a value or a ReadFailure (not found, access denied, failed) so
that one app's problem becomes a finding, not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sso_monitor.models import (
    AppRegistration,
    Ownership,
    PasswordPolicy,
    ReadFailure,
    SecretProbe,
    SecretValue,
    ServicePrincipalInfo,
    UrlCheck,
    VaultSecretInfo,
)


@dataclass
class DirectorySnapshot:
    """What Graph said about a set of apps of one tenant."""

    apps: dict[str, AppRegistration | ReadFailure] = field(default_factory=dict)  # by lower-case appId
    service_principals: dict[str, ServicePrincipalInfo | ReadFailure] = field(default_factory=dict)  # by lower-case appId
    owners: dict[str, Ownership | ReadFailure] = field(default_factory=dict)  # by lower-case appId; empty: not read
    policy: PasswordPolicy | ReadFailure | None = None


class DirectoryReader(Protocol):
    """Graph reads for the health checks, batched by the implementation."""

    async def snapshot(self, tenant_id: str, app_ids: Sequence[str]) -> DirectorySnapshot:
        """Apps (with credentials and web settings), their owners against the monitor's
        own service principal, their service principals with an assignment count, and
        the tenant's password policy. Never raises for one
        app's problem; a failure that stops the whole tenant raises ExternalError."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class VaultRead:
    info: VaultSecretInfo
    value: SecretValue


class VaultReader(Protocol):
    async def read(self, name: str) -> VaultRead | ReadFailure:
        """The current version's metadata and value (one or two requests; versions listed only when the newest is not current)."""
        ...

    async def key_ids(self, name: str) -> frozenset[str] | ReadFailure:
        """Every version's keyId tag (orphan detection), all or a failure: never part of them."""
        ...

    async def aclose(self) -> None: ...


class TokenProbe(Protocol):
    async def probe(self, tenant_id: str, app_id: str, secret: SecretValue) -> SecretProbe:
        """A client-credentials token request with this secret; the value goes only to Entra."""
        ...

    async def aclose(self) -> None: ...


class UrlProber(Protocol):
    async def check(self, url: str) -> UrlCheck:
        """GET the URL: status and TLS validity. Never raises."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class OwnReads:
    """What one app's check reads outside Graph: its Key Vault secret, its two pages and,
    with the stored secret, a token request (independent of the directory snapshot)."""

    stored: VaultRead | ReadFailure
    facility_page: UrlCheck
    logout_callback: UrlCheck
    probe: SecretProbe | None  # None: no usable stored secret to try (not read, or disabled)


class AppReader(Protocol):
    async def read(self, vault_secret_name: str, tenant_id: str, app_id: str, facility_url: str, logout_url: str) -> OwnReads:
        """The stored secret's current version, a token request with it when it is read
        and enabled, and the two pages. Never raises: each failure is in the answer."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class Adapters:
    """Everything the check run talks to. Built by wiring.build_adapters."""

    directories: Mapping[str, DirectoryReader]  # by lower-case tenant id
    vault: VaultReader
    probe: TokenProbe
    urls: UrlProber
    apps: AppReader  # the three above, one app's worth at a time (wiring: the same instances)

    async def aclose(self) -> None:
        for directory in self.directories.values():
            await directory.aclose()
        await self.vault.aclose()
        await self.urls.aclose()
        await self.probe.aclose()
        await self.apps.aclose()
