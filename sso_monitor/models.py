"""What the core knows about the outside world: our own plain dataclasses.

Adapters build these from SDK objects; checks and rotation read only these.
No secret value is ever a field here, except ``SecretValue`` which is never
printed (its repr is masked) and never leaves the process except to Key
Vault, Entra's token endpoint or SmartTrace's handoff endpoint.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from sso_monitor import redact

STAMP = "%Y-%m-%dT%H:%M:%SZ"  # the one UTC format of our tags, texts and JSON dates


def stamp(moment: datetime) -> str:
    """A moment as ``2026-12-06T02:13:03Z`` (UTC, whole seconds)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(STAMP)


def unstamp(text: str | None) -> datetime | None:
    """``stamp``'s inverse; None for anything else."""
    if not text:
        return None
    try:
        return datetime.strptime(text, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


class SecretValue:
    """A secret held in memory. ``str()`` and ``repr()`` never show it, and every
    fragment of it is masked in the process's logs and outputs (redact.py)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        redact.register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretValue", self._value))


@dataclass(frozen=True)
class PasswordCredentialInfo:
    key_id: str
    display_name: str | None
    hint: str | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class KeyCredentialInfo:
    """A certificate (Graph's keyCredential) on an app: reported, never rotated. The
    certificate's raw data (Graph's ``key``) is never read."""

    key_id: str
    display_name: str | None
    type: str | None  # AsymmetricX509Cert, Symmetric...
    usage: str | None  # Verify (a client's certificate), Sign, Encrypt
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class WebSettings:
    logout_url: str | None = None
    redirect_uris: tuple[str, ...] = ()
    id_tokens: bool = False
    access_tokens: bool = False
    home_page_url: str | None = None


@dataclass(frozen=True)
class AppRegistration:
    object_id: str
    app_id: str
    display_name: str
    password_credentials: tuple[PasswordCredentialInfo, ...] = ()
    web: WebSettings = field(default_factory=WebSettings)
    created: datetime | None = None
    key_credentials: tuple[KeyCredentialInfo, ...] = ()


@dataclass(frozen=True)
class ServicePrincipalInfo:
    object_id: str
    app_id: str
    enabled: bool
    assignment_required: bool
    assignments: int


@dataclass(frozen=True)
class Ownership:
    """Whether the monitor's own service principal is among an app's owners.

    With Application.ReadWrite.OwnedBy the monitor reads every app but may write
    only those it owns, so ownership is read from ``owners``, never inferred
    from a refused write."""

    monitor_object_id: str  # the monitor's service principal in this tenant
    owner_ids: frozenset[str]  # lower-case object ids of the owners read
    complete: bool = True  # False: more pages of owners were not read

    @property
    def monitor_owns(self) -> bool | None:
        """True or False; None when an unread page could still name the monitor."""
        if self.monitor_object_id.lower() in self.owner_ids:
            return True
        return False if self.complete else None


@dataclass(frozen=True)
class PasswordPolicy:
    """An app management policy's password lifetime: the tenant's default, or the
    policy assigned to one app (which replaces the default for it, both ways)."""

    max_lifetime: timedelta | None
    restrict_for_apps_created_after: datetime | None = None
    enabled: bool = True
    policy_id: str | None = None  # the policy's id (the tenant default's is all zeros)
    scope: str = "tenant"  # tenant | app

    def applies_to(self, app_created: datetime | None) -> bool:
        if not self.enabled or self.max_lifetime is None:
            return False
        if self.restrict_for_apps_created_after is None or app_created is None:
            return True
        return app_created >= self.restrict_for_apps_created_after


@dataclass(frozen=True)
class VaultSecretInfo:
    """Metadata of one Key Vault secret version (no value)."""

    name: str
    version: str
    enabled: bool
    expires: datetime | None
    tags: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    created: datetime | None = None

    @property
    def key_id(self) -> str | None:
        return self.tags.get("keyId")


class Reachability(str, Enum):
    OK = "ok"
    HTTP_ERROR = "http_error"
    TLS_ERROR = "tls_error"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class UrlCheck:
    url: str
    outcome: Reachability
    status: int | None = None
    detail: str = ""


class ProbeOutcome(str, Enum):
    WORKS = "works"
    REJECTED = "rejected"  # Entra refused the secret itself: wrong or expired (7000215, 7000222)
    REFUSED = "refused"  # Entra refused the app for another reason (disabled, no SP, Conditional Access...)
    ERROR = "error"  # the probe itself failed (network, Entra down, our own settings)


@dataclass(frozen=True)
class SecretProbe:
    outcome: ProbeOutcome
    code: str | None = None  # AADSTS code when rejected
    detail: str = ""


class Problem(str, Enum):
    """Why a read produced no value."""

    NOT_FOUND = "not_found"
    ACCESS_DENIED = "access_denied"
    FAILED = "failed"


@dataclass(frozen=True)
class ReadFailure:
    problem: Problem
    detail: str


@dataclass
class AppObservation:
    """Everything read about one monitored app in one run. None means not read."""

    app: AppRegistration | None = None
    app_failure: ReadFailure | None = None
    service_principal: ServicePrincipalInfo | None = None
    service_principal_failure: ReadFailure | None = None
    ownership: Ownership | None = None
    ownership_failure: ReadFailure | None = None
    policy: PasswordPolicy | None = None
    vault_secret: VaultSecretInfo | None = None
    vault_failure: ReadFailure | None = None
    vault_key_ids: frozenset[str] | None = None  # keyId tags across every version of the vault secret
    probe: SecretProbe | None = None
    facility_page: UrlCheck | None = None
    logout_callback: UrlCheck | None = None


# ---- the monitor's own credentials (the checks and the rotation both read these)

MARKER = "sso-monitor"
# The display name of every credential the monitor creates: the marker, this deployment's
# id and the rotation id ("sso-monitor 1a2b3c4d 20261206T021303Z-0a1b2c3d"), plus "-2"
# for the second try after a lost answer. Only a name that matches this exactly, with
# this deployment's id, is ours: a person may well call a hand-made secret "sso-monitor".
_OURS = re.compile(r"^sso-monitor (?P<deployment>[0-9a-f]{8}) (?P<rotation>\d{8}T\d{6}Z-[0-9a-f]{8})(?:-2)?$")


def marker_name(deployment_id: str, rotation_id: str) -> str:
    return f"{MARKER} {deployment_id} {rotation_id}"


def is_ours(display_name: str | None, deployment_id: str) -> bool:
    """Created by this deployment of the monitor: its exact marker, its own id."""
    match = _OURS.match(display_name or "")
    return match is not None and bool(deployment_id) and match.group("deployment") == deployment_id


# Graph's reads lag its writes by seconds (docs/sandbox/fidelity.md): a credential
# missing from one read is "not yet seen" until this long after its creation.
UNSEEN_WINDOW = timedelta(hours=1)


# ---- days left, the one rounding (checks, alerts, rotation reminders and the status page agree)


def days_until(end: datetime, now: datetime) -> int:
    """Whole days left, rounded down; negative once past."""
    return math.floor((end - now).total_seconds() / 86400)


def crossed_threshold(days_left: int, thresholds: tuple[int, ...]) -> int | None:
    """The smallest configured threshold at or above days_left (None: not yet due)."""
    crossed = [t for t in thresholds if days_left <= t]
    return min(crossed) if crossed else None
