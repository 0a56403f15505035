"""Finding codes: stable names, a default severity, and the fix in the words
of SmartTrace's setup guide. docs/checks.md is checked against this table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any
from urllib.parse import urlsplit


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    ERROR = "error"  # the check itself could not run

    @property
    def rank(self) -> int:
        return rank_of(self.value)


_RANKS = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def rank_of(severity: str) -> int:
    """How severe, as a number to compare (an unknown severity ranks lowest)."""
    return _RANKS.get(str(severity), 0)


@dataclass(frozen=True)
class CodeInfo:
    severity: Severity
    meaning: str
    fix: str


APP_PORTAL = "Entra admin center > App registrations > your SmartTrace app"

CODES: dict[str, CodeInfo] = {
    "APP_NOT_FOUND": CodeInfo(
        Severity.CRITICAL,
        "No app registration with the configured application (client) id exists in the tenant.",
        "Check the Application (client) ID on SmartTrace's Integrations page (Azure Active Directory) against App registrations > Overview, and correct the monitor's configuration.",
    ),
    "APP_ACCESS_DENIED": CodeInfo(
        Severity.CRITICAL,
        "Graph refused to let the monitor read the app: its identity has no Graph permission in this tenant (admin consent missing) or is the wrong identity for the tenant.",
        "Grant the monitor's identity Application.ReadWrite.OwnedBy in this tenant with admin consent (infra/ does it for the home tenant; another tenant needs the multi-tenant app consented there, see docs/deploy.md), and check the tenant id and the identities section of the configuration.",
    ),
    "MONITOR_NOT_OWNER": CodeInfo(
        Severity.CRITICAL,
        "The monitor's service principal is not an owner of the app, so it cannot renew its client secret (Application.ReadWrite.OwnedBy writes only to owned apps). Critical when the app is set to rotate, a warning in notify-only mode.",
        "az ad app owner add --id APP_ID --owner-object-id MONITOR_OBJECT_ID (the finding names both ids; the Entra admin center cannot add a service principal as an owner).",
    ),
    "SECRET_MISSING": CodeInfo(
        Severity.CRITICAL,
        "The app has no client secret, so SmartTrace cannot sign anyone in.",
        f"{APP_PORTAL} > Certificates & secrets > New client secret; copy the Value into SmartTrace (Integrations > Azure Active Directory > pencil > Client secret), or let the monitor rotate.",
    ),
    "SECRET_EXPIRING": CodeInfo(
        Severity.WARNING,
        "The client secret SmartTrace uses expires soon; severity rises as thresholds are crossed.",
        "Let the monitor rotate it (sso-monitor rotate FACILITY), or create a new client secret under Certificates & secrets and paste its Value into SmartTrace (Integrations > Azure Active Directory > pencil > Client secret).",
    ),
    "SECRET_EXPIRED": CodeInfo(
        Severity.CRITICAL,
        "The client secret SmartTrace uses has expired: sign-in fails with AADSTS7000222.",
        f"{APP_PORTAL} > Certificates & secrets > New client secret, then SmartTrace: Integrations > Azure Active Directory > pencil > Client secret: paste the Value and Save.",
    ),
    "CERTIFICATE_EXPIRING": CodeInfo(
        Severity.WARNING,
        "A certificate (key credential) on the app expires soon; severity rises as the same thresholds as for secrets are crossed. "
        "The monitor reports certificates but never renews them: SmartTrace signs in with the client secret, so only another client "
        "that authenticates with this certificate is affected.",
        f"{APP_PORTAL} > Certificates & secrets > Certificates: upload the renewed certificate (its public part) before the old one expires, "
        "move the client that uses it to the new one, then delete the old certificate.",
    ),
    "CERTIFICATE_EXPIRED": CodeInfo(
        Severity.CRITICAL,
        "The app's newest certificate (key credential) for a usage has expired: a client that signs in with it is refused (AADSTS700027).",
        f"{APP_PORTAL} > Certificates & secrets > Certificates: upload a new certificate and give it to the client that uses it; "
        "delete the expired one if nothing uses it any more (then this finding goes away).",
    ),
    "SECRET_LIFETIME_EXCEEDS_POLICY": CodeInfo(
        Severity.WARNING,
        "A client secret's lifetime is longer than the tenant's app management policy allows for new secrets.",
        "Nothing breaks today, but a replacement must be shorter: set the monitor's rotation lifetimeDays within the policy (Entra admin center > Enterprise apps > App management policies).",
    ),
    "TOO_MANY_SECRETS": CodeInfo(
        Severity.WARNING,
        "More active client secrets than expected: old ones were never removed.",
        f"{APP_PORTAL} > Certificates & secrets: delete the secrets SmartTrace does not use (check the Secret ID against the monitor's status first).",
    ),
    "VAULT_SECRET_MISSING": CodeInfo(
        Severity.WARNING,
        "Key Vault holds no usable copy of the client secret (none, its current version disabled, or the secret deleted), so the monitor cannot verify or hand it over.",
        "If the secret was deleted, recover it (az keyvault secret recover --vault-name VAULT --name SECRET) or purge it: a deleted name cannot be reused until then. "
        "Otherwise run sso-monitor adopt FACILITY to store the secret SmartTrace uses in Key Vault, or let the monitor rotate.",
    ),
    "VAULT_SECRET_UNKNOWN_KEY": CodeInfo(
        Severity.WARNING,
        "The Key Vault secret's keyId tag matches no client secret of the app (it was deleted or the tag is wrong).",
        "Run sso-monitor adopt FACILITY --key-id ID to re-link it, or rotate.",
    ),
    "VAULT_SECRET_REJECTED": CodeInfo(
        Severity.CRITICAL,
        "Entra refuses the client secret held in Key Vault as wrong (AADSTS7000215) or expired (AADSTS7000222).",
        "If SmartTrace holds the same value, sign-in is broken: rotate now (sso-monitor rotate FACILITY --force) and paste the new Value into SmartTrace (Integrations > Azure Active Directory > pencil > Client secret).",
    ),
    "TOKEN_REQUEST_REFUSED": CodeInfo(
        Severity.CRITICAL,
        "Entra refuses the app's token requests for a reason that is not the secret: AADSTS700016 (app not in the tenant), 7000112 (app disabled), 7000229 (no service principal), 53003 (Conditional Access for workload identities, a warning: user sign-in is unaffected) or a code the monitor does not know (a warning). A new secret would be refused the same way, so the monitor never rotates for these.",
        "The finding's fix names the cause for its code; look any code up at https://login.microsoftonline.com/error?code=NUMBER.",
    ),
    "VAULT_EXPIRY_MISMATCH": CodeInfo(
        Severity.WARNING,
        "The Key Vault secret's expiry differs from the client secret's end date in Entra.",
        "Run sso-monitor adopt FACILITY to refresh the Key Vault attributes from Entra.",
    ),
    "LOGOUT_URL_MISSING": CodeInfo(
        Severity.WARNING,
        "No front-channel logout URL is set: signing out of SmartTrace leaves the Microsoft session open.",
        f"{APP_PORTAL} > Authentication > Front-channel logout URL: enter the expected URL, Save.",
    ),
    "LOGOUT_URL_MISMATCH": CodeInfo(
        Severity.WARNING,
        "The front-channel logout URL is not SmartTrace's callback for this facility.",
        f"{APP_PORTAL} > Authentication > Front-channel logout URL: replace it with the expected URL, Save.",
    ),
    "REDIRECT_URI_MISSING": CodeInfo(
        Severity.CRITICAL,
        "SmartTrace's redirect URI is not registered: sign-in fails with AADSTS50011.",
        f"{APP_PORTAL} > Authentication > Web > Redirect URIs: Add URI, enter the expected URI, Save.",
    ),
    "ID_TOKENS_DISABLED": CodeInfo(
        Severity.CRITICAL,
        "ID token issuance is off: SmartTrace's sign-in request is refused.",
        f"{APP_PORTAL} > Authentication tab: tick Access tokens and ID tokens, Save.",
    ),
    "ACCESS_TOKENS_DISABLED": CodeInfo(
        Severity.CRITICAL,
        "Access token issuance is off: SmartTrace's sign-in request is refused.",
        f"{APP_PORTAL} > Authentication tab: tick Access tokens and ID tokens, Save.",
    ),
    "SERVICE_PRINCIPAL_MISSING": CodeInfo(
        Severity.CRITICAL,
        "The app has no enterprise application (service principal) in the tenant: nobody can sign in.",
        "Entra admin center > Enterprise applications: add SmartTrace from the gallery for this tenant, or open the app registration once with an administrator to create it.",
    ),
    "SERVICE_PRINCIPAL_DISABLED": CodeInfo(
        Severity.CRITICAL,
        "The enterprise application is disabled for sign-in.",
        "Entra admin center > Enterprise applications > SmartTrace > Properties: Enabled for users to sign-in? Yes, Save.",
    ),
    "ASSIGNMENT_NOT_REQUIRED": CodeInfo(
        Severity.WARNING,
        "Assignment is not required: every account in the tenant can sign in to SmartTrace.",
        "Enterprise applications > SmartTrace > Properties: Assignment required? Yes, Save; then assign the facility's users or groups.",
    ),
    "NO_ASSIGNMENTS": CodeInfo(
        Severity.CRITICAL,
        "Assignment is required but no user or group is assigned: nobody can sign in.",
        "Enterprise applications > SmartTrace > Users and groups > Add user/group: assign the facility's staff.",
    ),
    "FACILITY_UNREACHABLE": CodeInfo(
        Severity.WARNING,
        "The facility's SmartTrace page does not answer over valid TLS.",
        "Check https://<facility>.smarttrace.ai in a browser; if it is down for everyone, contact SmartTrace support.",
    ),
    "LOGOUT_CALLBACK_UNREACHABLE": CodeInfo(
        Severity.WARNING,
        "SmartTrace's logout callback for this facility does not answer over valid TLS.",
        "Check the facility name in the logout URL; if the URL is right, contact SmartTrace support.",
    ),
    "ORPHAN_CREDENTIAL": CodeInfo(
        Severity.WARNING,
        "A client secret created by the monitor is not held in Key Vault (a rotation was interrupted).",
        "The next run's sweep removes it after the safety window; to remove it now, delete that Secret ID under Certificates & secrets.",
    ),
    "SIGN_IN_FAILING": CodeInfo(
        Severity.CRITICAL,
        "Entra's sign-in log shows SmartTrace's code redemptions for this app refused for its client secret: AADSTS7000215 (wrong value: often the Secret ID pasted instead of the Value), 7000222 (expired) or 7000218 (no secret). Users cannot sign in. The log does not say which secret SmartTrace sent; but when the monitor removed a client secret of the app (Key Vault's retired version) shortly before the refusals began, the message names that keyId and when, and the fix names the Key Vault version to paste: SmartTrace probably still holds the removed one.",
        "Create a new client secret (sso-monitor rotate FACILITY --force, or Certificates & secrets > New client secret) and paste its Value (not the Secret ID) into SmartTrace: Integrations > Azure Active Directory > pencil > Client secret, Save.",
    ),
    "NO_RECENT_SIGN_INS": CodeInfo(
        Severity.INFO,
        "Nobody signed in through SmartTrace for this app in the period Entra's log covers (information: a closed site is quiet too).",
        "Nothing to do if the facility is closed; otherwise ask a user to sign in and check the next run.",
    ),
    "SIGN_INS_UNAVAILABLE": CodeInfo(
        Severity.WARNING,
        "signIns is enabled, but Entra's sign-in log could not be read: the monitor's identity lacks AuditLog.Read.All in this tenant, or the tenant has no Microsoft Entra ID P1/P2 licence (the message says which).",
        "Grant AuditLog.Read.All to the monitor's identity with admin consent (docs/deploy.md, optional permissions), or license the tenant for Entra ID P1/P2; or set signIns.enabled to false.",
    ),
    "OLD_SECRET_STILL_IN_USE": CodeInfo(
        Severity.CRITICAL,
        "SmartTrace still signs in with the old secret: Entra's credential-activity report shows the old keyId used after the monitor handed the new one on. The monitor keeps the old secret (it is not removed while it is used); the severity rises as its expiry nears (warning, then error at 14 days, critical at 7).",
        "Paste the new one: copy the current version of the app's Key Vault secret into SmartTrace (Integrations > Azure Active Directory > pencil > Client secret, Save), then sign in once.",
    ),
    "ACTIVITY_REPORT_UNAVAILABLE": CodeInfo(
        Severity.WARNING,
        "Entra's credential-activity report cannot confirm a handoff or show an old secret still in use: a 403 (AuditLog.Read.All missing, or no Entra ID P1/P2 licence), not served in this cloud, or empty for a keyId the monitor itself used over a day ago. The rotation falls back to a person's confirmation, and retirement to the grace period.",
        "Confirm the handoff by hand (sso-monitor confirm FACILITY --key-id KEY_ID) once SmartTrace holds the new secret; to use the report, grant AuditLog.Read.All and license the tenant for Entra ID P1/P2.",
    ),
    "CHECK_FAILED": CodeInfo(
        Severity.ERROR,
        "The monitor could not complete a check for this app (an error or timeout that outlasted retries).",
        "See the message and the monitor's log; the next run retries. If it persists, check the monitor's network access and permissions.",
    ),
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    fix: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity.value, "message": self.message, "fix": self.fix, "details": dict(self.details)}


def finding(code: str, message: str, *, severity: Severity | None = None, fix: str | None = None, **details: Any) -> Finding:
    info = CODES[code]
    return Finding(code=code, severity=severity or info.severity, message=message, fix=fix or info.fix, details=details)


# The catalogue's fixes (and docs/checks.md) speak of any app: FACILITY, "your SmartTrace
# app", "the expected URL". A finding is about one app: its fix says which, with the
# commands and URLs as they are to be typed. Fields: the app's (facility, facility_url,
# app_id, secret_name), the vault's name, and the finding's own details.
_FILLED = {
    "APP_NOT_FOUND": "Check the Application (client) ID on SmartTrace's Integrations page at {facility_url} (Azure Active Directory) against "
    "App registrations > Overview in tenant {tenant_id}, and correct the monitor's configuration (it says {app_id}).",
    "SECRET_MISSING": "{portal} > Certificates & secrets > New client secret; copy the Value into SmartTrace at {facility_url} "
    "(Integrations > Azure Active Directory > pencil > Client secret), or let the monitor rotate.",
    "SECRET_EXPIRING": "Let the monitor rotate it (sso-monitor rotate {facility}), or create a new client secret under {portal} > Certificates & secrets "
    "and paste its Value into SmartTrace at {facility_url} (Integrations > Azure Active Directory > pencil > Client secret).",
    "SECRET_EXPIRED": "{portal} > Certificates & secrets > New client secret, then SmartTrace at {facility_url}: "
    "Integrations > Azure Active Directory > pencil > Client secret: paste the Value and Save.",
    "VAULT_SECRET_MISSING": "If the secret was deleted, recover it (az keyvault secret recover --vault-name {vault_name} --name {secret_name}) or purge it: "
    "a deleted name cannot be reused until then. Otherwise run sso-monitor adopt {facility} with the client secret SmartTrace uses on standard input "
    "to store it in Key Vault, or let the monitor rotate (sso-monitor rotate {facility}).",
    "VAULT_SECRET_UNKNOWN_KEY": "Run sso-monitor adopt {facility} --from-vault to re-link Key Vault secret {secret_name} to its client secret "
    "(add --key-id with the Secret ID if its hint matches more than one), or rotate (sso-monitor rotate {facility} --force).",
    "VAULT_SECRET_REJECTED": "If SmartTrace holds the same value, sign-in is broken: rotate now (sso-monitor rotate {facility} --force) and paste the new Value "
    "into SmartTrace at {facility_url} (Integrations > Azure Active Directory > pencil > Client secret).",
    "VAULT_EXPIRY_MISMATCH": "Run sso-monitor adopt {facility} --from-vault to refresh the expiry of Key Vault secret {secret_name} from Entra.",
    "LOGOUT_URL_MISSING": "{portal} > Authentication > Front-channel logout URL: enter {expected}, Save.",
    "LOGOUT_URL_MISMATCH": "{portal} > Authentication > Front-channel logout URL: replace it with {expected}, Save.",
    "REDIRECT_URI_MISSING": "{portal} > Authentication > Web > Redirect URIs: Add URI, enter {expected}, Save.",
    "FACILITY_UNREACHABLE": "Open {url} in a browser; if it is down for everyone, contact SmartTrace support.",
    "LOGOUT_CALLBACK_UNREACHABLE": "Check the facility name ({facility}) in {url}; if the URL is right, contact SmartTrace support.",
    "ORPHAN_CREDENTIAL": "The next run's sweep removes it after the safety window; to remove it now, delete Secret ID {key_id} under {portal} > Certificates & secrets.",
}
_ENTERPRISE_APP = "Enterprise applications > SmartTrace"
_PLACEHOLDER = re.compile(r"\b(?:FACILITY|APP_ID|KEY_ID|MONITOR_OBJECT_ID)\b")


def with_real_names(found: Finding, app: Any, vault_url: str) -> Finding:
    """``found`` with its fix naming ``app`` (a config.AppConfig): its facility, URLs and
    ids instead of the catalogue's placeholders. A fix the check wrote for this finding
    (MONITOR_NOT_OWNER's commands, a refusal's cause) is already concrete and is kept."""
    if found.fix != CODES[found.code].fix:
        return found
    portal = f"Entra admin center > App registrations > {app.app_id}"
    names = {
        "facility": app.facility,
        "facility_url": app.facility_url,
        "app_id": app.app_id,
        "tenant_id": app.tenant_id,
        "secret_name": app.vault_secret_name,
        "vault_name": (urlsplit(vault_url).hostname or vault_url).split(".")[0],
        "portal": portal,
        "expected": "the expected URL",
        "url": app.facility_url,
        **{key: value for key, value in found.details.items() if isinstance(value, str)},
    }
    template = _FILLED.get(found.code)
    fix = template.format_map(names) if template else found.fix
    fix = fix.replace(APP_PORTAL, portal).replace(_ENTERPRISE_APP, f"{_ENTERPRISE_APP} (Application ID {app.app_id})")
    # Any other code's placeholders (a code added without a template above), where known.
    tokens = {"FACILITY": app.facility, "APP_ID": app.app_id, "KEY_ID": names.get("key_id"), "MONITOR_OBJECT_ID": names.get("monitor_object_id")}
    fix = _PLACEHOLDER.sub(lambda m: tokens.get(m.group(0)) or m.group(0), fix)
    return replace(found, fix=fix)


def checks_markdown() -> str:
    """docs/checks.md, generated from CODES so the two never drift (a test compares them)."""
    lines = [
        "# Checks",
        "",
        "Each problem the monitor finds is one finding with a stable code. Severity:",
        "`critical` means sign-in is broken or will break soon; `warning` means",
        "something needs attention; `error` means the check itself could not run.",
        "An app's status is its worst finding (`critical` > `error` > `warning` > `ok`).",
        "`SECRET_EXPIRING` is a warning until 7 days are left, then critical; it is",
        "reported once the largest threshold (default 30/14/7/3/1 days) is crossed.",
        "`CERTIFICATE_EXPIRING` follows the same thresholds for the newest certificate",
        "of each usage; certificates are reported, never rotated.",
        "",
        "Generated from `sso_monitor/checks/findings.py` (`python -m sso_monitor.checks.findings > docs/checks.md`).",
        "",
        "| code | severity | meaning | fix |",
        "|---|---|---|---|",
    ]
    for code, info in CODES.items():
        lines.append(f"| `{code}` | {info.severity.value} | {info.meaning} | {info.fix} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(checks_markdown(), end="")
