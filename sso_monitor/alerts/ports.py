"""Alerts in our own types: what is said (Alert), to whom at once (Notice), and
the two ports behind it: a channel that delivers a notice, and a small
partitioned key-value store that remembers what was said (de-duplication,
snoozes, undelivered notices, the digest).

Nothing here holds a secret value: a Teams webhook URL or an SMTP password is
fetched from Key Vault by the channel adapter when it sends, and never kept in
an alert, a notice or the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sso_monitor import redact
from sso_monitor.errors import ExternalError
from sso_monitor.models import SecretValue

# Alert kinds. Findings: a finding appeared, crossed a threshold or got more
# severe, is still open (critical, repeated at most once per interval), or is
# resolved. Rotation: the protocol's events. Operations: the monitor itself.
APPEARED, WORSENED, REMINDER, RESOLVED = "appeared", "worsened", "reminder", "resolved"
MONITOR_FAILURE, CHANNEL_DOWN = "monitor-failure", "channel-down"

# Severities as channels show them: the finding's, or "resolved" / "info".
SEVERITIES = ("critical", "error", "warning", "info", "resolved")


@dataclass(frozen=True)
class Alert:
    """One thing worth telling someone. ``key`` identifies it for de-duplication."""

    kind: str  # appeared | worsened | reminder | resolved | rotation:<event kind> | monitor-failure | channel-down
    severity: str  # one of SEVERITIES
    title: str  # one line, e.g. "acme: client secret expires in 7 days"
    message: str  # what is wrong (or what happened), in full sentences
    at: datetime
    facility: str | None = None  # None: about the monitor as a whole
    tenant_id: str | None = None
    app_id: str | None = None
    code: str | None = None  # the finding code (docs/checks.md), when about a finding
    days_left: int | None = None  # the secret's days to expiry, when known
    fix: str | None = None  # what to do: the finding's fix text
    steps: tuple[str, ...] = ()  # numbered steps (manual handoff)
    status_url: str | None = None  # the status page, when configured
    operations: bool = False  # the monitor's own failure: goes to the operations channels
    # On this channel, the app's Entra owners are recipients too (alerts.notifyOwners; set
    # per channel by alerts.decisions.routed, only on the facility's email channels).
    notify_owners: bool = False

    def __post_init__(self) -> None:
        # The net under every alert (cards, emails, the alert state): no fragment of a
        # secret this process holds, whatever text an upstream service sent us.
        for name in ("title", "message", "fix"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, redact.scrub(value))
        object.__setattr__(self, "steps", tuple(redact.scrub(step) for step in self.steps))

    @property
    def owners_of(self) -> tuple[str, str] | None:
        """(tenant id, app id) whose owners receive this alert, or None."""
        return (self.tenant_id, self.app_id) if self.notify_owners and self.tenant_id and self.app_id else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["steps"] = list(self.steps)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        values = dict(data)
        values["at"] = datetime.fromisoformat(values["at"])
        values["steps"] = tuple(values.get("steps") or ())
        return cls(**values)


@dataclass(frozen=True)
class Notice:
    """One message on one channel: a single alert, or a digest of several."""

    channel: str  # the configured channel's name
    alerts: tuple[Alert, ...]
    recipients: tuple[str, ...] = ()  # email channels: the facility's contacts, added to the channel's own list
    digest: bool = False
    attempts: int = 0  # delivery attempts in earlier runs (the outbox)

    @property
    def id(self) -> str:
        """Stable over retries: the channel and the alerts' identities."""
        text = json.dumps([self.channel, self.digest, [(a.kind, a.facility, a.code, a.title, a.at.isoformat()) for a in self.alerts]])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def owners_of(self) -> tuple[tuple[str, str], ...]:
        """The apps (tenant id, app id) whose Entra owners are recipients of this notice on an
        email channel (composing keeps one facility's owner-routed alerts to themselves)."""
        return tuple(sorted({owners for owners in (a.owners_of for a in self.alerts) if owners is not None}))

    @property
    def severity(self) -> str:
        """The worst severity among the alerts."""
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return min((a.severity for a in self.alerts), key=lambda s: order.get(s, len(SEVERITIES)), default="info")

    @property
    def subject(self) -> str:
        if len(self.alerts) == 1 and not self.digest:
            return f"[{self.severity}] {self.alerts[0].title}"
        facilities = sorted({a.facility for a in self.alerts if a.facility})
        scope = facilities[0] if len(facilities) == 1 else f"{len(facilities)} facilities" if facilities else "the monitor"
        return f"[{self.severity}] SmartTrace SSO {'digest' if self.digest else 'alerts'}: {len(self.alerts)} change{'' if len(self.alerts) == 1 else 's'} for {scope}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "alerts": [a.as_dict() for a in self.alerts],
            "recipients": list(self.recipients),
            "digest": self.digest,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        return cls(
            channel=data["channel"],
            alerts=tuple(Alert.from_dict(a) for a in data["alerts"]),
            recipients=tuple(data.get("recipients") or ()),
            digest=bool(data.get("digest")),
            attempts=int(data.get("attempts") or 0),
        )


class ChannelError(ExternalError):
    """A channel did not deliver a notice after its own retries.

    ``transient``: a later try may succeed (throttled, 5xx, timeout); False for
    a refusal that will not change by itself (404 webhook, 535 login, 413)."""

    def __init__(self, channel: str, message: str, *, transient: bool = True, status: int | None = None, code: str | None = None) -> None:
        super().__init__(f"channel {channel}", message, status=status, code=code)
        self.channel = channel
        self.transient = transient


class AlertChannel(Protocol):
    name: str  # the configured channel's name
    kind: str  # teams | graph-mail | smtp

    async def send(self, notice: Notice) -> None:
        """Deliver, retrying transient failures with backoff within a bounded time;
        raises ChannelError when it could not. Never logs or raises a secret."""
        ...

    async def aclose(self) -> None: ...


class OwnerAddresses(Protocol):
    """The mail addresses of an app registration's owners (alerts.notifyOwners)."""

    async def addresses(self, tenant_id: str, app_id: str) -> tuple[str, ...]:
        """The owners that are users with a mail address; () when none can be read.
        Never raises: an owner who cannot be reached must not stop the alert."""
        ...

    async def aclose(self) -> None: ...


class SecretSource(Protocol):
    async def secret(self, name: str) -> SecretValue:
        """The current value of a Key Vault secret; raises ExternalError (NotFound, AccessDenied...)."""
        ...


@dataclass(frozen=True)
class StoredItem:
    partition: str
    key: str
    data: dict[str, Any] = field(default_factory=dict)


class AlertStore(Protocol):
    """A partitioned key-value store of small JSON objects (Azure Table Storage in
    Azure; a file or memory locally). Partition and key are [A-Za-z0-9._-]{1,200}.
    ``put`` replaces the whole item (upsert); deleting a missing item is success."""

    async def get(self, partition: str, key: str) -> StoredItem | None: ...

    async def list(self, partition: str) -> list[StoredItem]: ...

    async def put(self, items: Sequence[StoredItem]) -> None: ...

    async def delete(self, partition: str, key: str) -> None: ...

    async def claim(self, partition: str, key: str, now: datetime, until: datetime) -> StoredItem | None:
        """Take the item for one sender, atomically against every other run: when it exists
        and no unexpired claim holds it, mark it ``claimedUntil`` = ``until`` and answer it;
        otherwise None (gone, or another run holds it). A claim ends by a ``put`` or a
        ``delete`` of the item, or by expiring (its holder crashed)."""
        ...

    async def aclose(self) -> None: ...
