"""What to tell whom, once: pure decisions from findings, rotation events and
the monitor's own failures, against what was already said (docs/alerts.md).

A finding is alerted when it appears, when it gets worse (a more severe
finding, or the secret's days to expiry cross another threshold: 30/14/7/3/1
by default), and when it is resolved. An unresolved critical finding is
repeated at most once per ``alerts.repeatCriticalHours``. A snoozed finding is
silent until the snooze ends; what happened meanwhile is said then, once.

State per app and finding code is what was last *alerted*, kept in the alert
store (Azure Table Storage in Azure). The functions here are pure and take
``now``; sso_monitor/alerting.py runs them against the store and the channels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sso_monitor.alerts.ports import APPEARED, CHANNEL_DOWN, MONITOR_FAILURE, REMINDER, RESOLVED, SEVERITIES, WORSENED, Alert, Notice
from sso_monitor.alerts.render import handoff_steps
from sso_monitor.checks.findings import CODES, Finding, Severity, rank_of
from sso_monitor.config import AlertsConfig, AppConfig, MonitorConfig
from sso_monitor.models import crossed_threshold


@dataclass(frozen=True)
class FindingState:
    """What was last alerted for one app and finding code."""

    facility: str
    code: str
    severity: str
    level: int | None  # the threshold crossed when last alerted (days), for expiry findings
    first_seen: datetime
    last_alerted: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "facility": self.facility,
            "code": self.code,
            "severity": self.severity,
            "level": self.level,
            "firstSeen": self.first_seen.isoformat(),
            "lastAlerted": self.last_alerted.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FindingState:
        return cls(
            facility=data["facility"],
            code=data["code"],
            severity=data["severity"],
            level=data.get("level"),
            first_seen=datetime.fromisoformat(data["firstSeen"]),
            last_alerted=datetime.fromisoformat(data["lastAlerted"]),
        )


@dataclass(frozen=True)
class Snooze:
    facility: str
    code: str
    until: datetime
    by: str
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"facility": self.facility, "code": self.code, "until": self.until.isoformat(), "by": self.by, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snooze:
        return cls(data["facility"], data["code"], datetime.fromisoformat(data["until"]), data.get("by", ""), data.get("reason", ""))


# ---------------------------------------------------------------- findings


def level_of(finding: Finding, thresholds: tuple[int, ...]) -> int | None:
    """The threshold the finding's days to expiry have crossed (None: not an expiry finding, or none crossed)."""
    days = finding.details.get("days_left")
    if not isinstance(days, int) or isinstance(days, bool):
        return None
    if finding.code in ("SECRET_EXPIRED", "CERTIFICATE_EXPIRED") or days < 0:
        return 0
    return crossed_threshold(days, thresholds)


def _worse(severity: str, level: int | None, state: FindingState) -> bool:
    if rank_of(severity) > rank_of(state.severity):
        return True
    return level is not None and (state.level is None or level < state.level)


def alerted_findings(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that are alerted at all: warnings and worse. CHECK_FAILED (the
    monitor could not check) goes to operations, not to the facility."""
    return [f for f in findings if f.severity.rank >= Severity.WARNING.rank and f.code != "CHECK_FAILED"]


def finding_alerts(
    app: AppConfig,
    findings: Sequence[Finding],
    previous: Mapping[str, FindingState],
    snoozes: Mapping[str, Snooze],
    now: datetime,
    policy: AlertsConfig,
) -> tuple[list[Alert], dict[str, FindingState | None]]:
    """(alerts, state changes by code: a new state, or None to forget the code)."""
    alerts: list[Alert] = []
    changes: dict[str, FindingState | None] = {}
    repeat = timedelta(hours=policy.repeat_critical_hours)
    current = {f.code: f for f in alerted_findings(findings)}
    # A check that could not run says nothing about the codes it did not see.
    complete = not any(f.code == "CHECK_FAILED" for f in findings)
    for code, found in current.items():
        severity = found.severity.value
        level = level_of(found, app.thresholds)
        snooze = snoozes.get(code)
        if snooze is not None and snooze.until > now:
            continue  # silent; the state stays what was last alerted
        state = previous.get(code)
        if state is None:
            kind = APPEARED
        elif _worse(severity, level, state):
            kind = WORSENED
        elif severity == "critical" and now - state.last_alerted >= repeat:
            kind = REMINDER
        else:
            if (severity, level) != (state.severity, state.level):  # better, still open: a later worsening alerts again
                changes[code] = replace(state, severity=severity, level=level)
            continue
        alerts.append(finding_alert(app, found, kind, now, policy))
        first = state.first_seen if state is not None else now
        changes[code] = FindingState(app.facility, code, severity, level, first, now)
    if complete:
        for code, state in previous.items():
            if code not in current:
                alerts.append(resolved_alert(app, state, now, policy))
                changes[code] = None
    return alerts, changes


def headline(finding: Finding) -> str:
    days = finding.details.get("days_left")
    if finding.code == "SECRET_EXPIRING" and isinstance(days, int):
        return f"client secret expires in {days} day{'' if days == 1 else 's'}"
    if finding.code == "SECRET_EXPIRED":
        return "client secret has expired: sign-in is broken"
    if finding.code == "CERTIFICATE_EXPIRING" and isinstance(days, int):
        return f"certificate expires in {days} day{'' if days == 1 else 's'}"
    if finding.code == "CERTIFICATE_EXPIRED":
        return "certificate has expired"
    if finding.code == "SIGN_IN_FAILING" and finding.details.get("cause") == "removed-by-monitor":
        return f"sign-in is broken: SmartTrace still holds client secret {finding.details.get('retired_key_id')}, which the monitor removed"
    meaning = CODES[finding.code].meaning if finding.code in CODES else finding.message
    sentence = meaning.split(". ")[0].rstrip(".")
    # "acme: front-channel logout URL is ..." reads better after the facility than
    # "acme: The front-channel ..."; other sentences keep their words (Entra, ID).
    return sentence[4:] if sentence.startswith("The ") else sentence


def finding_alert(app: AppConfig, found: Finding, kind: str, now: datetime, policy: AlertsConfig) -> Alert:
    prefix = {APPEARED: "", WORSENED: "worse: ", REMINDER: "still open: "}[kind]
    days = found.details.get("days_left")
    return Alert(
        kind=kind,
        severity=found.severity.value,
        title=f"{app.facility}: {prefix}{headline(found)}",
        message=found.message,
        at=now,
        facility=app.facility,
        tenant_id=app.tenant_id,
        app_id=app.app_id,
        code=found.code,
        days_left=days if isinstance(days, int) and not isinstance(days, bool) else None,
        fix=found.fix,
        status_url=policy.status_page_url,
    )


def resolved_alert(app: AppConfig, state: FindingState, now: datetime, policy: AlertsConfig) -> Alert:
    meaning = CODES[state.code].meaning if state.code in CODES else state.code
    return Alert(
        kind=RESOLVED,
        severity="resolved",
        title=f"{app.facility}: resolved: {state.code}",
        message=f"Resolved: {meaning} (first seen {state.first_seen:%Y-%m-%d %H:%M} UTC)",
        at=now,
        facility=app.facility,
        tenant_id=app.tenant_id,
        app_id=app.app_id,
        code=state.code,
        status_url=policy.status_page_url,
    )


# ---------------------------------------------------------------- rotation events and the monitor itself

# Rotation event kind -> (severity, also to operations)
ROTATION_SEVERITY: dict[str, tuple[str, bool]] = {
    "due": ("warning", False),
    "started": ("info", False),
    "awaiting-confirmation": ("warning", False),
    "reminder": ("critical", False),
    # OLD_SECRET_STILL_IN_USE while a previous secret is kept: the event carries the finding's
    # severity (warning, error at 14 days to the old secret's expiry, critical at 7); this is
    # the default only for an event without one.
    "still-in-use": ("warning", False),
    "completed": ("resolved", False),
    "failed": ("critical", True),
    "stuck": ("critical", True),
    "retired": ("info", False),
    "orphan-removed": ("info", False),
}


# Titles that say more than "rotation <kind>".
_EVENT_TITLES = {"still-in-use": "SmartTrace still signs in with the old client secret"}


def rotation_alert(event: Any, now: datetime, policy: AlertsConfig) -> Alert:
    """An Alert from a rotation.RotationEvent (or anything with its fields). Its severity is
    the event's own when it carries one (a finding's), else its kind's."""
    severity, operations = ROTATION_SEVERITY.get(event.kind, ("info", False))
    own = _event_severity(event)
    what = _EVENT_TITLES.get(event.kind, f"rotation {event.kind.replace('-', ' ')}")
    return Alert(
        kind=f"rotation:{event.kind}",
        severity=own or severity,
        title=f"{event.facility}: {what}" + (f" (keyId {event.key_id})" if event.key_id else ""),
        message=event.message,
        at=now,
        facility=event.facility,
        tenant_id=event.tenant_id,
        app_id=event.app_id,
        code=getattr(event, "code", None),
        steps=tuple(handoff_steps(event.handoff)) if event.handoff is not None else (),
        status_url=policy.status_page_url,
        operations=operations,
    )


def event_key(event: Any) -> str:
    """De-duplication key of a rotation event: the same event re-emitted by a retried
    run (the protocol notifies before it records, so a crash between the two repeats
    it) is recognised."""
    steps = handoff_steps(event.handoff) if event.handoff is not None else []
    parts = [event.kind, event.key_id or "", event.message, "\x1e".join(steps)]
    own = _event_severity(event)
    if own is not None:  # only then: the keys of events without one stay what they were
        parts.append(own)
    text = "\x1f".join(parts)
    return f"{event.facility}.{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def _event_severity(event: Any) -> str | None:
    """The severity an event carries itself (a finding's), as channels show it; None without one."""
    value = getattr(event, "severity", None)
    value = getattr(value, "value", value)  # a Severity, or its text
    return value if isinstance(value, str) and value in SEVERITIES else None


def failure_alert(message: str, now: datetime, policy: AlertsConfig, *, kind: str = MONITOR_FAILURE, facility: str | None = None, count: int = 1) -> Alert:
    what = "alert channel down" if kind == CHANNEL_DOWN else f"{count} failure{'' if count == 1 else 's'} in its run"
    return Alert(
        kind=kind,
        severity="error",
        title=f"SSO monitor: {what}" + (f" ({facility})" if facility else ""),
        message=message,
        at=now,
        facility=facility,
        fix="See the monitor's log (Application Insights) for this run; the next run retries. Check the monitor's network access, permissions and settings.",
        status_url=policy.status_page_url,
        operations=True,
    )


def failure_key(message: str) -> str:
    return "ops." + hashlib.sha256(message.encode()).hexdigest()[:24]


def repeat_due(last: datetime | None, now: datetime, policy: AlertsConfig) -> bool:
    return last is None or now - last >= timedelta(hours=policy.repeat_critical_hours)


# ---------------------------------------------------------------- routing and composing


def route(alert: Alert, config: MonitorConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(channel name, extra recipients) for each channel the alert goes to.

    A facility's alerts go to its alertChannels (or the default route), with its
    contacts as extra email recipients; the monitor's own failures go to the
    operations route (default: the default route) without contacts."""
    routes: dict[str, tuple[str, ...]] = {}
    app = config.app(alert.facility) if alert.facility else None
    if alert.facility is not None and app is not None and not (alert.operations and alert.kind in (MONITOR_FAILURE, CHANNEL_DOWN)):
        channels = app.alert_channels if app.alert_channels is not None else config.alerts.channels
        for name in channels:
            routes[name] = app.contacts
    if alert.operations or app is None:
        for name in config.alerts.operations_route:
            routes.setdefault(name, ())
    return list(routes.items())


EMAIL_CHANNELS = ("graph-mail", "smtp")


def routed(alert: Alert, config: MonitorConfig) -> list[tuple[Alert, str, tuple[str, ...]]]:
    """(the alert as sent there, channel, extra recipients) for each channel of its route
    (``route``). With ``notifyOwners``, a facility's alert on an email channel of the
    facility's own route also goes to the app's Entra owners (``Alert.notify_owners``);
    never on the operations route, never the monitor's own failures."""
    app = config.app(alert.facility) if alert.facility else None
    facility_channels: tuple[str, ...] = ()
    if app is not None and app.notify_owners and alert.kind not in (MONITOR_FAILURE, CHANNEL_DOWN):
        facility_channels = app.alert_channels if app.alert_channels is not None else config.alerts.channels
    result = []
    for channel, recipients in route(alert, config):
        settings = config.channels.get(channel)
        if app is not None and channel in facility_channels and settings is not None and settings.type in EMAIL_CHANNELS:
            result.append(
                (replace(alert, notify_owners=True, tenant_id=alert.tenant_id or app.tenant_id, app_id=alert.app_id or app.app_id), channel, recipients)
            )
        else:
            result.append((alert, channel, recipients))
    return result


WAITS_ON_A_PERSON = ("rotation:awaiting-confirmation", "rotation:still-in-use")


def immediate(alert: Alert, policy: AlertsConfig) -> bool:
    """In digest mode, what still goes at once: critical findings, the monitor's failures,
    and what waits on a person (a manual handoff; SmartTrace still signing in with the old
    secret, which someone must paste the new one over, at any severity: said once per
    severity, so never noise)."""
    if not policy.digest:
        return True
    return alert.severity in ("critical", "error") or alert.operations or alert.kind in WAITS_ON_A_PERSON


def compose(routed: Sequence[tuple[Alert, str, tuple[str, ...]]]) -> list[Notice]:
    """One notice per alert and channel, in order."""
    return [Notice(channel=channel, alerts=(alert,), recipients=recipients) for alert, channel, recipients in routed]


# Alerts per digest notice: a notice is stored whole in the outbox (an Azure Table
# entity holds 64 KiB of text) and must render under Teams' 28 KB; a bigger day
# becomes several digest messages.
DIGEST_CHUNK = 20


def compose_digest(items: Sequence[tuple[Alert, str, tuple[str, ...]]]) -> list[Notice]:
    """One notice per channel and recipient list (a facility's contacts see only their
    facility's alerts; an app's owners only its alerts), worst first, in parts of at most
    DIGEST_CHUNK alerts."""
    groups: dict[tuple[str, tuple[str, ...], tuple[str, str] | None], list[Alert]] = {}
    for alert, channel, recipients in items:
        groups.setdefault((channel, recipients, alert.owners_of), []).append(alert)
    order = {"critical": 0, "error": 1, "warning": 2, "info": 3, "resolved": 4}
    notices = []
    for (channel, recipients, _), alerts in groups.items():
        ranked = sorted(alerts, key=lambda a: (order.get(a.severity, 5), a.facility or "", a.at))
        for first in range(0, len(ranked), DIGEST_CHUNK):
            notices.append(Notice(channel=channel, alerts=tuple(ranked[first : first + DIGEST_CHUNK]), recipients=recipients, digest=True))
    return notices


def digest_due(last_sent_day: str | None, now: datetime, policy: AlertsConfig) -> bool:
    """The first run on a day at or after the digest hour sends that day's digest."""
    return policy.digest and now.hour >= policy.digest_hour_utc and last_sent_day != now.strftime("%Y-%m-%d")


def parse_until(text: str) -> datetime:
    """A snooze's end: an ISO date (midnight UTC) or date-time (UTC when no offset). ValueError otherwise."""

    value = text.strip()
    if not value or len(value) > 40:
        raise ValueError("until must be an ISO 8601 date or date-time, e.g. 2026-12-31 or 2026-12-31T08:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ValueError(f"until must be an ISO 8601 date or date-time, e.g. 2026-12-31 or 2026-12-31T08:00:00Z, not {value!r}") from None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past the last instant Python can hold
        raise ValueError(f"until is out of range: {value!r}") from None


MAX_SNOOZE_DAYS = 90
MAX_SNOOZE_REASON = 200


def snooze_problem(until: datetime, now: datetime, reason: str) -> str | None:
    """Why a snooze cannot be taken (None: it can): the one rule for the CLI and the API."""
    if until <= now:
        return "until must be in the future"
    if until - now > timedelta(days=MAX_SNOOZE_DAYS):
        return f"a snooze lasts at most {MAX_SNOOZE_DAYS} days"
    if len(reason) > MAX_SNOOZE_REASON:
        return f"reason must be at most {MAX_SNOOZE_REASON} characters"
    return None
