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
- ``after_retirement``: SIGN_IN_FAILING once the monitor removed a credential of the app
  shortly before the refusals began (Key Vault's ``retired`` version says which and when):
  the outage the product exists to prevent, said as such with the exact fix.

Why the numbers: docs/evidence.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sso_monitor.checks.findings import Finding, Severity, finding
from sso_monitor.checks.ports import CredentialActivity, Retirement, SignInLog
from sso_monitor.config import AppConfig
from sso_monitor.models import ReadFailure, VaultSecretInfo, stamp

SECRET_ERRORS = frozenset({7000215, 7000222, 7000218})  # wrong, expired, missing client secret
ACTIVITY_MARGIN = timedelta(minutes=10)
SAME_EVENT = timedelta(minutes=1)
REPORT_LATENCY = timedelta(hours=24)
# How long a removed secret may still be accepted (Entra's replicas: assumption, as a new
# secret takes time to be accepted everywhere): a success this soon after a removal does
# not prove SmartTrace held another secret.
REMOVAL_LAG = timedelta(hours=1)
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
                last_success=last_success.isoformat() if last_success else None,
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


def after_retirement(
    found: Finding,
    retired: Sequence[Retirement] | ReadFailure,
    since: datetime,
    app: AppConfig,
    vault_url: str,
    current: VaultSecretInfo | None,
) -> Finding:
    """SIGN_IN_FAILING escalated when the monitor removed a credential of this app within
    the sign-in log's window (from ``since``), no later than the first refusal and not
    followed by a success (``REMOVAL_LAG`` aside): SmartTrace probably still holds the
    removed secret. Critical, saying which keyId was removed when, and the fix: paste the
    current Key Vault version (``current``, as the check read it) into SmartTrace. When the
    record of removals cannot be read, nothing is escalated on a guess, and the message
    says so. Any other finding is answered unchanged. Never a secret value: ids and dates."""
    if found.code != "SIGN_IN_FAILING":
        return found
    if isinstance(retired, ReadFailure):
        return replace(
            found,
            message=f"{found.message} Whether the monitor removed a client secret of this app before the refusals began could not be read "
            f"(Key Vault secret {app.vault_secret_name}'s versions: {retired.detail}); it is not assumed.",
            details={**found.details, "retirements": "unreadable"},
        )
    first = datetime.fromisoformat(found.details["first"])
    success = found.details.get("last_success")
    last_success = datetime.fromisoformat(success) if isinstance(success, str) else None
    causes = [r for r in retired if since <= r.retired_at <= first and (last_success is None or last_success <= r.retired_at + REMOVAL_LAG)]
    if not causes:
        return found
    removed = causes[-1]  # the latest removal before the refusals began
    vault = vault_url.rstrip("/")
    label = _vault_label(vault)
    if current is not None and current.key_id:
        source = f"Key Vault {label}, secret {app.vault_secret_name}, version {current.version} (keyId {current.key_id.lower()})"
        command = f"az keyvault secret show --id {vault}/secrets/{app.vault_secret_name}/{current.version} --query value -o tsv"
    else:
        source = f"Key Vault {label}, secret {app.vault_secret_name}, the version tagged stage=current (the check could not read it now)"
        command = f"az keyvault secret show --id {vault}/secrets/{app.vault_secret_name} --query value -o tsv"
    message = (
        f"Sign-in through SmartTrace is refused since the monitor removed client secret keyId {removed.key_id} at {stamp(removed.retired_at)} "
        f"(Key Vault {label}, secret {app.vault_secret_name}, version {removed.version}, stage retired): "
        f"SmartTrace probably still holds the removed secret. {found.message}"
    )
    fix = (
        f"Paste the current secret into SmartTrace now: copy the value of {source} (Show secret value, or: {command}), then in SmartTrace at "
        f"{app.facility_url}: Integrations, Azure Active Directory, pencil (edit), Client secret: paste it, Save; then sign in once. "
        f"If that version is refused too (VAULT_SECRET_REJECTED) or missing, create a new secret (sso-monitor rotate {app.facility} --force) and paste that one."
    )
    return replace(
        found,
        severity=Severity.CRITICAL,
        message=message,
        fix=fix,
        details={
            **found.details,
            "cause": "removed-by-monitor",
            "retired_key_id": removed.key_id,
            "retired_at": stamp(removed.retired_at),
            "retired_version": removed.version,
            "current_version": current.version if current is not None else None,
            "current_key_id": current.key_id.lower() if current is not None and current.key_id else None,
        },
    )


def _vault_label(vault_url: str) -> str:
    """``kv-sso (https://kv-sso.vault.azure.net)``: the vault's name as the portal lists it,
    and its URL; a vault without a name in its host (an address, the sandbox) by its URL."""
    host = urlsplit(vault_url).hostname or ""
    name = host.split(".")[0]
    if not name or name == "localhost" or name.isdigit() or ":" in host:
        return vault_url or "the monitor's Key Vault"
    return f"{name} ({vault_url})"
