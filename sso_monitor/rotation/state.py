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

from datetime import UTC, datetime, timedelta

from sso_monitor.models import UNSEEN_WINDOW, PasswordCredentialInfo, PasswordPolicy, crossed_threshold, days_until, is_ours, stamp, unstamp
from sso_monitor.rotation.ports import VaultVersion

PENDING, VERIFIED, AWAITING, HANDED_OFF = "pending", "verified", "awaiting-confirmation", "handed-off"
CURRENT, PREVIOUS, RETIRED, SUPERSEDED, ABANDONED = "current", "previous", "retired", "superseded", "abandoned"
IN_FLIGHT = (PENDING, VERIFIED, AWAITING, HANDED_OFF)
POLICY_MARGIN = timedelta(hours=1)  # stay clearly inside the tenant's cap
STORED_AT = "storedAt"  # our tag: when the monitor stored the version, to the microsecond


def stored_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ordered(versions: list[VaultVersion]) -> list[VaultVersion]:
    """Oldest first, by Key Vault's ``created`` (whole seconds), ties broken by our own
    ``storedAt`` stamp, then by version id only so that the order is stable. Never by
    a listing's position: Key Vault lists versions by version id, not by age."""
    return sorted(versions, key=lambda v: (v.created.timestamp() if v.created else float("-inf"), v.tags.get(STORED_AT, ""), v.version))


def in_flight(versions: list[VaultVersion]) -> VaultVersion | None:
    """The newest version of a rotation not yet finished (stale copies left out)."""
    stale = {id(v) for v in stale_copies(versions)}
    return next((v for v in reversed(ordered(versions)) if v.stage in IN_FLIGHT and id(v) not in stale), None)


def stale_copies(versions: list[VaultVersion]) -> list[VaultVersion]:
    """In-flight versions whose keyId another version carries further along (or as far,
    listed later). The store step's PUT is retried by the SDK when its answer is lost,
    which writes the same keyId twice; the run goes on with one copy, and the other must
    never be taken up again: finishing it would make the live credential ``previous``,
    and retire would remove it. The stage decides first, then the order of ``ordered``."""
    stale = []
    versions = ordered(versions)
    for index, version in enumerate(versions):
        if version.stage not in IN_FLIGHT or not version.key_id:
            continue
        rank = _PROGRESS[version.stage]
        for other_index, other in enumerate(versions):
            if other_index == index or other.key_id != version.key_id or other.stage not in _PROGRESS:
                continue
            if _PROGRESS[other.stage] > rank or (_PROGRESS[other.stage] == rank and other_index > index):
                stale.append(version)
                break
    return stale


# How far a version got; abandoned (and untagged) versions carry nothing forward.
_PROGRESS = {PENDING: 1, VERIFIED: 2, AWAITING: 3, HANDED_OFF: 4, CURRENT: 5, PREVIOUS: 5, RETIRED: 5, SUPERSEDED: 5}


def version_of(versions: list[VaultVersion], key_id: str) -> VaultVersion | None:
    """The version that stands for this keyId: of its copies (a retried store writes two,
    with the same tags and often the same second), the one furthest along, then the newest;
    an abandoned copy only when there is no other."""
    wanted = key_id.lower()
    copies = [v for v in ordered(versions) if v.key_id == wanted]
    return max(reversed(copies), key=lambda v: _PROGRESS.get(v.stage or "", 0), default=None)


def current_version(versions: list[VaultVersion]) -> VaultVersion | None:
    """The version SmartTrace is taken to hold: the one tagged current, else (a
    secret stored by hand, no stage tags) the newest enabled version not in flight."""
    newest_first = list(reversed(ordered(versions)))
    tagged = next((v for v in newest_first if v.stage == CURRENT), None)
    if tagged is not None:
        return tagged
    return next((v for v in newest_first if v.enabled and v.stage is None), None)


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


def missing_too_long(flight: VaultVersion, now: datetime) -> bool:
    """Is a rotation's credential that a read of the app did not show really gone? Only
    once it is old enough (UNSEEN_WINDOW from its creation) that the read is not just
    lagging behind the write; before that it is "not yet seen"."""
    created = unstamp(flight.tags.get("createdAt")) or flight.created
    return created is not None and now - created >= UNSEEN_WINDOW


def may_abandon(flight: VaultVersion, now: datetime) -> bool:
    """Give up an unfinished rotation whose credential is gone: only past the window, and
    never once SmartTrace may hold it (awaiting confirmation, handed off): then a person
    must look."""
    return flight.stage in (PENDING, VERIFIED) and missing_too_long(flight, now)


# After a refusal with no cap the monitor could read: one retry at this lifetime, the
# maxLifetime of Microsoft's own app management policy examples (P90D).
FALLBACK_LIFETIME = timedelta(days=90)
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"


def fallback_end(now: datetime) -> datetime:
    return now + FALLBACK_LIFETIME - POLICY_MARGIN


def refusing_policy(policy_id: str | None) -> str:
    """Graph's refusal names the policy: the tenant default (all zeros) or one assigned to the app."""
    if policy_id is None:
        return "an app management policy"
    if policy_id == DEFAULT_POLICY_ID:
        return "the tenant's default app management policy"
    return f"the app management policy {policy_id} assigned to this app"


def lifetime_refusal(who: str, end: datetime, unreadable: tuple[str, ...]) -> str:
    """Why create stopped, and the fix that fits: a permission only when the monitor lacked
    one to read the cap itself."""
    text = f"create: {who} refuses a client secret ending {stamp(end)}; set rotation.lifetimeDays within it"
    if unreadable:
        text += (
            f" (the monitor could not read {' or '.join(unreadable)}: granting it Policy.Read.ApplicationConfiguration, "
            "and Application.Read.All for an app's own policy, lets it cap the lifetime itself)"
        )
    return text


def retirable(versions: list[VaultVersion], now: datetime, grace_days: int) -> list[VaultVersion]:
    """Previous versions whose grace period is over."""
    due = []
    for version in ordered(versions):  # oldest first, whatever order Key Vault listed them in
        since = unstamp(version.tags.get("previousSince"))
        if version.stage == PREVIOUS and since is not None and since + timedelta(days=grace_days) <= now:
            due.append(version)
    return due


def orphans(
    credentials: tuple[PasswordCredentialInfo, ...],
    versions: list[VaultVersion],
    now: datetime,
    window: timedelta,
    deployment_id: str,
    *,
    held_hints: frozenset[str] = frozenset(),
) -> list[PasswordCredentialInfo]:
    """Credentials this deployment created (its exact marker) that no Key Vault version
    knows, older than the window. ``held_hints``: the first three characters of the
    values of enabled versions without a keyId (stored by hand): a credential whose
    hint is among them may be what SmartTrace holds, so it is never an orphan."""
    known = {v.key_id for v in versions if v.key_id}
    return [
        c
        for c in credentials
        if is_ours(c.display_name, deployment_id)
        and c.key_id.lower() not in known
        and (c.hint is None or c.hint not in held_hints)
        and (c.start is None or c.start <= now - window)
    ]


def untagged_versions(versions: list[VaultVersion]) -> list[VaultVersion]:
    """Enabled versions without a keyId tag: a secret someone stored by hand, which the
    check takes as current. The sweep must learn which credential each holds first."""
    return [v for v in versions if v.enabled and not v.key_id]


def escalation_threshold(old_end: datetime | None, now: datetime, thresholds: tuple[int, ...]) -> int | None:
    """The reminder's threshold: the smallest one the old secret's days left have crossed."""
    return crossed_threshold(days_until(old_end, now), thresholds) if old_end is not None else None
