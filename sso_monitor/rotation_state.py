"""The rotation's state and decisions: pure functions of Key Vault version tags,
the app's credentials and ``now``.

State lives where the truth is: each version of an app's Key Vault secret is
tagged with its ``stage``, the credential's ``keyId``, the ``rotationId`` and
dates. Stages, in order:

    pending -> verified -> awaiting-confirmation (manual) -> handed-off -> current -> previous -> retired

``superseded`` marks a previous version whose credential the monitor did not
create or adopt (it is never removed); ``abandoned`` a version whose
credential vanished before it was handed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .checks import MARKER
from .models import PasswordCredentialInfo, PasswordPolicy
from .rotation_ports import VaultVersion

PENDING, VERIFIED, AWAITING, HANDED_OFF = "pending", "verified", "awaiting-confirmation", "handed-off"
CURRENT, PREVIOUS, RETIRED, SUPERSEDED, ABANDONED = "current", "previous", "retired", "superseded", "abandoned"
IN_FLIGHT = (PENDING, VERIFIED, AWAITING, HANDED_OFF)
POLICY_MARGIN = timedelta(hours=1)  # stay clearly inside the tenant's cap


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def unstamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def marker_name(rotation_id: str) -> str:
    return f"{MARKER} {rotation_id}"


def in_flight(versions: list[VaultVersion]) -> VaultVersion | None:
    """The newest version of a rotation not yet finished."""
    return next((v for v in reversed(versions) if v.stage in IN_FLIGHT), None)


def current_version(versions: list[VaultVersion]) -> VaultVersion | None:
    """The version SmartTrace is taken to hold: the one tagged current, else (a
    secret stored by hand, no stage tags) the newest enabled version not in flight."""
    tagged = next((v for v in reversed(versions) if v.stage == CURRENT), None)
    if tagged is not None:
        return tagged
    return next((v for v in reversed(versions) if v.enabled and v.stage is None), None)


def is_managed(version: VaultVersion) -> bool:
    """Created or adopted by the monitor: only these credentials may ever be removed."""
    return version.tags.get("managed") == "true"


def rotation_due(current_end: datetime | None, now: datetime, rotate_before_days: int, *, force: bool = False) -> bool:
    if force or current_end is None:
        return True
    return current_end - now <= timedelta(days=rotate_before_days)


def new_end(now: datetime, lifetime_days: int, policy: PasswordPolicy | None) -> datetime:
    """The new secret's end: the configured lifetime, capped inside the tenant policy."""
    wanted = now + timedelta(days=lifetime_days)
    if policy is not None and policy.enabled and policy.max_lifetime is not None:
        wanted = min(wanted, now + policy.max_lifetime - POLICY_MARGIN)
    return wanted


def capped_end(now: datetime, policy: PasswordPolicy | None) -> datetime | None:
    """After CredentialInvalidLifetimeAsPerAppPolicy: the cap to retry with, if known."""
    if policy is None or policy.max_lifetime is None:
        return None
    return now + policy.max_lifetime - POLICY_MARGIN


def retirable(versions: list[VaultVersion], now: datetime, grace_days: int) -> list[VaultVersion]:
    """Previous versions whose grace period is over."""
    due = []
    for version in versions:
        since = unstamp(version.tags.get("previousSince"))
        if version.stage == PREVIOUS and since is not None and since + timedelta(days=grace_days) <= now:
            due.append(version)
    return due


def orphans(credentials: tuple[PasswordCredentialInfo, ...], versions: list[VaultVersion], now: datetime, window: timedelta) -> list[PasswordCredentialInfo]:
    """Credentials with our marker that no Key Vault version knows, older than the window."""
    known = {v.key_id for v in versions if v.key_id}
    return [
        c
        for c in credentials
        if (c.display_name or "").startswith(MARKER) and c.key_id.lower() not in known and (c.start is None or c.start <= now - window)
    ]


@dataclass(frozen=True)
class Escalation:
    """When to remind the administrator of a manual handoff still waiting."""

    threshold: int | None  # the smallest threshold crossed by the old secret's days left


def escalation_threshold(old_end: datetime | None, now: datetime, thresholds: tuple[int, ...]) -> int | None:
    if old_end is None:
        return None
    days = (old_end - now).days
    crossed = [t for t in thresholds if days <= t]
    return min(crossed) if crossed else None
