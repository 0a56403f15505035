"""What Entra's records say, as findings and as evidence for the rotation (pure, ``now`` passed in).

- ``sign_in_findings``: SIGN_IN_FAILING from the app's non-interactive sign-ins refused
  for the secret since the last success; NO_RECENT_SIGN_INS (information) when the
  period read holds none; SIGN_INS_UNAVAILABLE when the log could not be read.
- ``activity_confirms``: whether the per-credential report and the sign-in log show
  SmartTrace using a new keyId: its last activity later than the monitor's own last use
  plus ``ACTIVITY_MARGIN``, and a successful sign-in of the app at or after that
  activity (``SAME_EVENT`` apart at most: the two records stamp one redemption).
- ``still_used_after``: whether a keyId was active after a moment plus the margin.
- ``report_unusable``: why the report cannot be relied on (403, or no row for a keyId
  the monitor itself used more than ``REPORT_LATENCY`` ago).

Why the numbers: docs/evidence.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sso_monitor.checks.findings import Finding, finding
from sso_monitor.checks.ports import CredentialActivity, SignInLog
from sso_monitor.models import ReadFailure

SECRET_ERRORS = frozenset({7000215, 7000222, 7000218})  # wrong, expired, missing client secret
ACTIVITY_MARGIN = timedelta(minutes=10)
SAME_EVENT = timedelta(minutes=1)
REPORT_LATENCY = timedelta(hours=24)
DEFAULT_QUIET_DAYS = 7


def sign_in_findings(app_id: str, log: SignInLog | ReadFailure | None, now: datetime, quiet_days: int = DEFAULT_QUIET_DAYS) -> list[Finding]:
    if log is None:
        return []
    if isinstance(log, ReadFailure):
        return [finding("SIGN_INS_UNAVAILABLE", f"Entra's sign-in log was not read: {log.detail}")]
    records = sorted(log.of(app_id), key=lambda r: r.at)
    last_success = max((r.at for r in records if r.error_code == 0), default=None)
    failing = [r for r in records if r.error_code in SECRET_ERRORS and (last_success is None or r.at > last_success)]
    found: list[Finding] = []
    if failing:
        codes = sorted({r.error_code for r in failing})
        first, last = failing[0].at, failing[-1].at
        found.append(
            finding(
                "SIGN_IN_FAILING",
                f"{len(failing)} sign-in(s) through SmartTrace refused for the client secret (AADSTS{', AADSTS'.join(str(c) for c in codes)}) "
                f"from {first:%Y-%m-%d %H:%M}Z to {last:%Y-%m-%d %H:%M}Z"
                + (f"; the last success was {last_success:%Y-%m-%d %H:%M}Z" if last_success else "; no success since the log's start")
                + ". Entra's log does not say which secret SmartTrace sent.",
                count=len(failing),
                codes=[str(c) for c in codes],
                first=first.isoformat(),
                last=last.isoformat(),
            )
        )
    if not records and now - log.since >= timedelta(days=quiet_days):
        found.append(finding("NO_RECENT_SIGN_INS", f"no sign-in through SmartTrace since {log.since:%Y-%m-%d} ({(now - log.since).days} days)"))
    return found


@dataclass(frozen=True)
class ActivityEvidence:
    """What confirmed a handoff: the record kinds and times, the keyId (never a secret)."""

    key_id: str
    key_last_used: datetime
    sign_in_at: datetime
    monitor_last_used: datetime

    def describe(self) -> str:
        return (
            f"Entra's credential-activity report shows keyId {self.key_id} used at {self.key_last_used:%Y-%m-%d %H:%M:%S}Z, "
            f"after the monitor's own last use at {self.monitor_last_used:%Y-%m-%d %H:%M:%S}Z (+{int(ACTIVITY_MARGIN.total_seconds() // 60)} min), "
            f"and the sign-in log a successful sign-in through SmartTrace at {self.sign_in_at:%Y-%m-%d %H:%M:%S}Z"
        )


def activity_confirms(key_id: str, monitor_last_used: datetime, report: CredentialActivity, log: SignInLog, app_id: str) -> ActivityEvidence | None:
    """Evidence that SmartTrace uses ``key_id``, or None: both records must agree."""
    used = report.last_used.get(key_id.lower())
    if used is None or used <= monitor_last_used + ACTIVITY_MARGIN:
        return None
    successes = [r.at for r in log.of(app_id) if r.error_code == 0 and r.at >= used - SAME_EVENT and r.at > monitor_last_used + ACTIVITY_MARGIN]
    if not successes:
        return None
    return ActivityEvidence(key_id=key_id.lower(), key_last_used=used, sign_in_at=min(successes), monitor_last_used=monitor_last_used)


def still_used_after(key_id: str, moment: datetime, report: CredentialActivity) -> datetime | None:
    """The keyId's last use if it is later than ``moment`` plus the margin (someone other
    than the monitor still sends it), else None."""
    used = report.last_used.get(key_id.lower())
    return used if used is not None and used > moment + ACTIVITY_MARGIN else None


def report_unusable(report: CredentialActivity | ReadFailure, used_by_monitor: dict[str, datetime], now: datetime) -> str | None:
    """Why the report cannot be relied on, or None. ``used_by_monitor``: keyIds the monitor
    itself sent, with when; a keyId used more than REPORT_LATENCY ago with no row makes
    the report "empty" (reported in 2024; docs/evidence.md)."""
    if isinstance(report, ReadFailure):
        return report.detail
    for key_id, at in used_by_monitor.items():
        if at <= now - REPORT_LATENCY and key_id.lower() not in report.last_used:
            return f"the report has no row for keyId {key_id.lower()}, which the monitor itself used at {at:%Y-%m-%d %H:%M}Z (the report is empty)"
    return None
