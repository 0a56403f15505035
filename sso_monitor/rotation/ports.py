"""Ports the rotation protocol needs beyond the check's readers.

Each write is a small, named operation in our own types; adapters translate
SDK errors into the exception tree (errors.py). Writes are never retried
blindly by an adapter when they are not idempotent (addPassword): a lost
answer surfaces as AnswerLost and the protocol looks before it acts again.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sso_monitor.models import AppRegistration, PasswordPolicy, SecretValue


@dataclass(frozen=True)
class NewCredential:
    """addPassword's answer: the only time the secret's value is ever seen."""

    key_id: str
    secret: SecretValue
    start: datetime
    end: datetime
    display_name: str


@dataclass(frozen=True)
class LifetimePolicy:
    """What caps a new secret's lifetime for one app, as far as the monitor may read it:
    the policy assigned to the app if any (it replaces the tenant default), else the
    tenant default. ``unreadable`` names what Graph refused to show (then a policy the
    monitor cannot see may still refuse a lifetime)."""

    policy: PasswordPolicy | None
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True)
class VaultVersion:
    """Metadata of one Key Vault secret version (no value)."""

    version: str
    tags: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    expires: datetime | None = None
    created: datetime | None = None

    @property
    def key_id(self) -> str | None:
        value = self.tags.get("keyId")
        return value.lower() if value else None

    @property
    def stage(self) -> str | None:
        return self.tags.get("stage")


class AppWriter(Protocol):
    """Graph writes on one tenant's app registrations (Application.ReadWrite.OwnedBy)."""

    async def read_app(self, tenant_id: str, app_id: str) -> AppRegistration:
        """The app with its credentials; raises NotFound, AccessDenied or ExternalError."""
        ...

    async def read_policy(self, tenant_id: str, app_id: str) -> LifetimePolicy:
        """The password lifetime policy that applies to this app: its own assigned
        appManagementPolicy, else the tenant default; what could not be read is named."""
        ...

    async def monitor_owns(self, tenant_id: str, app_id: str) -> tuple[bool | None, str | None]:
        """Is the monitor's own service principal among the app's owners (None: cannot
        tell), and that service principal's object id (None: unknown)."""
        ...

    async def add_password(self, tenant_id: str, app_id: str, display_name: str, end: datetime) -> NewCredential:
        """addPassword, sent once. Raises LifetimeExceedsPolicy, AnswerLost (it may have
        happened) or ExternalError (it did not)."""
        ...

    async def remove_password(self, tenant_id: str, app_id: str, key_id: str) -> bool:
        """removePassword; True if removed, False if it was already gone (success too)."""
        ...

    async def aclose(self) -> None: ...


class VaultWriter(Protocol):
    """One Key Vault: the app secrets' versions and their tags (the rotation's state)."""

    async def versions(self, name: str) -> list[VaultVersion]:
        """Every version, in no particular order (Key Vault lists by version id); [] when
        the secret does not exist. rotation_state.ordered gives their age order."""
        ...

    async def value(self, name: str, version: str) -> SecretValue: ...

    async def add_version(
        self, name: str, value: SecretValue, *, tags: dict[str, str], expires: datetime | None, content_type: str = "text/plain"
    ) -> VaultVersion: ...

    async def set_tags(self, name: str, version: str, tags: dict[str, str], *, enabled: bool | None = None) -> None:
        """Replace the version's tags (and optionally enable or disable it)."""
        ...

    async def is_deleted(self, name: str) -> bool | None:
        """Is this secret name soft-deleted (recoverable, so not reusable until recovered or
        purged)? None: Key Vault would not say."""
        ...

    async def read_secret(self, name: str) -> SecretValue:
        """The latest value of another secret (a handoff token); raises NotFound."""
        ...

    async def aclose(self) -> None: ...


class SecretPusher(Protocol):
    """http handoff: give SmartTrace the new secret (docs/handoff.md)."""

    async def push(
        self, *, url: str, method: str, token: SecretValue, facility: str, tenant_id: str, app_id: str, key_id: str, secret: SecretValue, expires: datetime
    ) -> None:
        """Raises HandoffRejected (SmartTrace said no) or ExternalError (no answer)."""
        ...

    async def held_key_id(self, *, url: str, token: SecretValue, facility: str) -> str | None:
        """The keyId SmartTrace says it holds (GET on the handoff URL); None: none.
        Raises ExternalError when SmartTrace does not answer."""
        ...

    async def aclose(self) -> None: ...


class HeldLease(Protocol):
    def ensure(self) -> None:
        """Raise LeaseUnavailable if the lease is known to be lost (renewal refused or timed out)."""
        ...

    async def confirm(self) -> None:
        """Immediately before a write: confirm with the service that the lease is still
        ours; raise LeaseUnavailable when it is not, or cannot be confirmed now."""
        ...


class Lease(Protocol):
    """One rotation per app at a time, across processes and instances."""

    def hold(self, key: str, *, ttl: timedelta = timedelta(seconds=60)) -> AbstractAsyncContextManager[HeldLease]:
        """Hold the lease for ``key`` while the block runs; raises LeaseUnavailable
        if another holder has it. Renewed while held."""
        ...


# ---------------------------------------------------------------- the work queue's message
# (the timer queues one per app with rotation work; the worker takes it: schedule.py)

WORK_QUEUE = "sso-monitor-work"
POISON_QUEUE = f"{WORK_QUEUE}-poison"  # the Functions host's name for it
# Why an app gets a worker run, in the order work_due looks for them.
RESUME, ROTATE, RETIRE, SWEEP = "resume", "rotate", "retire", "sweep"
REASONS = (RESUME, ROTATE, RETIRE, SWEEP)


@dataclass(frozen=True)
class WorkItem:
    facility: str
    reason: str

    def message(self) -> str:
        return json.dumps({"facility": self.facility, "reason": self.reason})


def parse_work(body: bytes) -> WorkItem:
    """The queue message's JSON; ValueError says what is wrong (never echoing the body)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    facility, reason = data.get("facility"), data.get("reason")
    if not isinstance(facility, str) or not facility:
        raise ValueError("no facility")
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}")
    return WorkItem(facility, reason)
