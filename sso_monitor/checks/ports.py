"""The ports: what the core needs from the outside world, in our own types.

Adapters (sso_monitor/adapters/) implement these on the real SDKs; wiring
builds them from settings; tests use the sandbox behind the same adapters.
Reads answer a value or a ReadFailure (not found, access denied, failed) so
that one app's problem becomes a finding, not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sso_monitor.models import (
    AppObservation,
    AppRegistration,
    Ownership,
    PasswordPolicy,
    Problem,
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

    def observation(self, app_id: str) -> AppObservation:
        """What this snapshot says of one app, each read's failure recorded, not raised
        (the check adds its own reads to it; discovery uses it alone)."""
        obs = AppObservation()
        key = app_id.lower()
        found = self.apps.get(key)
        if isinstance(found, ReadFailure):
            obs.app_failure = found
        elif found is None:
            obs.app_failure = ReadFailure(Problem.FAILED, "Graph gave no answer for this app")
        else:
            obs.app = found
        owners = self.owners.get(key)
        if isinstance(owners, ReadFailure):
            obs.ownership_failure = owners
        else:
            obs.ownership = owners
        sp = self.service_principals.get(key)
        if isinstance(sp, ReadFailure):
            obs.service_principal_failure = sp
        else:
            obs.service_principal = sp
        if self.policy is not None and not isinstance(self.policy, ReadFailure):
            obs.policy = self.policy
        return obs


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


@dataclass(frozen=True)
class Retirement:
    """A credential the monitor removed, as Key Vault's version of it records: the version
    tagged ``stage=retired`` with its ``keyId`` and ``retiredAt`` (rotation.protocol's retire)."""

    key_id: str  # lower-case
    retired_at: datetime
    version: str


class VaultReader(Protocol):
    async def read(self, name: str) -> VaultRead | ReadFailure:
        """The current version's metadata and value (one or two requests; versions listed only when the newest is not current)."""
        ...

    async def key_ids(self, name: str) -> frozenset[str] | ReadFailure:
        """Every version's keyId tag (orphan detection), all or a failure: never part of them."""
        ...

    async def retirements(self, name: str) -> tuple[Retirement, ...] | ReadFailure:
        """The versions the monitor retired (their credential removed from Entra), from the
        versions' tags: all of them or a failure (one listing, read only when needed)."""
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


@dataclass(frozen=True)
class SignInRecord:
    """One non-interactive user sign-in of an app (SmartTrace redeeming a code with its
    secret): when, and Entra's error code (0: success). No key id: Entra logs none for
    user sign-ins (docs/evidence.md)."""

    app_id: str  # lower-case
    at: datetime
    error_code: int


@dataclass(frozen=True)
class SignInLog:
    """The non-interactive sign-ins of a tenant's apps since ``since``, as one query read them."""

    since: datetime
    records: tuple[SignInRecord, ...] = ()

    def of(self, app_id: str) -> tuple[SignInRecord, ...]:
        wanted = app_id.lower()
        return tuple(r for r in self.records if r.app_id == wanted)


@dataclass(frozen=True)
class CredentialActivity:
    """Entra's per-credential activity report for one app: each keyId's last use across
    all flows (None: a row without a time). A keyId absent from ``last_used`` has no row."""

    last_used: Mapping[str, datetime | None] = field(default_factory=dict)  # by lower-case keyId


class SignInReader(Protocol):
    """Entra's records (Graph beta, AuditLog.Read.All, a P1/P2 tenant), paced under the
    reporting limit. Failures are answered as ReadFailure whose detail names what is
    missing (the permission, the licence), never raised."""

    async def recent_sign_ins(self, tenant_id: str, app_ids: Sequence[str], since: datetime) -> SignInLog | ReadFailure:
        """One filtered query (all pages) for the tenant's apps' non-interactive sign-ins."""
        ...

    async def credential_activity(self, tenant_id: str, app_id: str) -> CredentialActivity | ReadFailure:
        """The app's rows of the per-credential activity report."""
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
    signins: SignInReader | None = None  # only when an app has signIns.enabled

    async def aclose(self) -> None:
        if self.signins is not None:
            await self.signins.aclose()
        for directory in self.directories.values():
            await directory.aclose()
        await self.vault.aclose()
        await self.urls.aclose()
        await self.probe.aclose()
        await self.apps.aclose()
