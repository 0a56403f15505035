"""The health-check decisions: pure functions of (app settings, what was read, now).

No I/O and no clock here: the caller passes ``now``. Each problem yields one
Finding with a stable code (see findings.CODES and docs/checks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sso_monitor.checks.findings import Finding, Severity, finding
from sso_monitor.config import AppConfig
from sso_monitor.models import (
    UNSEEN_WINDOW,
    AppObservation,
    AppRegistration,
    KeyCredentialInfo,
    PasswordCredentialInfo,
    ProbeOutcome,
    Problem,
    Reachability,
    ReadFailure,
    VaultSecretInfo,
    crossed_threshold,
    days_until,
    is_ours,
    unstamp,
)

CRITICAL_DAYS = 7  # at or below this many days left, an expiring secret is critical
EXPIRY_TOLERANCE = timedelta(minutes=5)  # Key Vault expiry vs Entra end date
ORPHAN_GRACE = timedelta(hours=1)  # a rotation in flight is not an orphan yet
POLICY_TOLERANCE = timedelta(minutes=5)


def in_use_credential(app: AppRegistration, vault_key_id: str | None, now: datetime) -> PasswordCredentialInfo | None:
    """The credential SmartTrace is taken to use: the one Key Vault names, else
    the one that lasts longest (the most favourable assumption, so a warning
    about it is never a false alarm)."""
    by_id = {c.key_id.lower(): c for c in app.password_credentials}
    if vault_key_id and vault_key_id.lower() in by_id:
        return by_id[vault_key_id.lower()]
    dated = [c for c in app.password_credentials if c.end is not None]
    return max(dated, key=lambda c: c.end) if dated else None  # type: ignore[arg-type, return-value]


def _same_url(a: str, b: str) -> bool:
    left, right = urlsplit(a.strip()), urlsplit(b.strip())
    return (
        left.scheme.lower() == right.scheme.lower()
        and (left.hostname or "").lower() == (right.hostname or "").lower()
        and left.port == right.port
        and left.path.rstrip("/") == right.path.rstrip("/")
        and left.query == right.query
    )


@dataclass(frozen=True)
class Refusal:
    """What an AADSTS refusal that is not about the secret means for SmartTrace's sign-in."""

    severity: Severity
    meaning: str
    fix: str


# Entra's refusals of a token request that a new secret would not cure
# (learn.microsoft.com/entra/identity-platform/reference-error-codes). None of
# them may lead to a rotation: the fix is in the tenant, not in the secret.
REFUSALS: dict[str, Refusal] = {
    "AADSTS700016": Refusal(
        Severity.CRITICAL,
        "Entra does not find the app in this tenant (UnauthorizedClient_DoesNotMatchRequest)",
        "Check the tenant id and the cloud in the monitor's configuration and on SmartTrace's Integrations page against the app registration's Overview; "
        "an app created minutes ago may not have replicated yet (the next run retries).",
    ),
    "AADSTS7000112": Refusal(
        Severity.CRITICAL,
        "the application is disabled (UnauthorizedClientApplicationDisabled): nobody can sign in",
        "Entra admin center > Enterprise applications > SmartTrace > Properties: Enabled for users to sign-in? Yes, Save. "
        "If Microsoft disabled the app (disabledByMicrosoftStatus), contact Microsoft support.",
    ),
    "AADSTS7000229": Refusal(
        Severity.CRITICAL,
        "the app has no service principal (enterprise application) in this tenant",
        "Create it: az ad sp create --id APP_ID, or open the app registration once as an administrator.",
    ),
    "AADSTS53003": Refusal(
        Severity.WARNING,
        "a Conditional Access policy for workload identities blocks the app's own token requests; "
        "users signing in to SmartTrace are not affected, but the monitor cannot test the secret",
        "Exclude this app from the Conditional Access policy for workload identities, or accept that the secret is not tested "
        "(sign-ins through SmartTrace still show whether it works).",
    ),
}
UNKNOWN_REFUSAL = Refusal(
    Severity.WARNING,
    "Entra refused the token request for a reason that is not the secret",
    "Look the code up at https://login.microsoftonline.com/error?code=NUMBER; a new secret would be refused the same way, so the monitor does not rotate for it.",
)


def refusal(code: str | None) -> Refusal:
    return REFUSALS.get(code or "", UNKNOWN_REFUSAL)


def _failed(what: str, failure: ReadFailure) -> Finding:
    return finding("CHECK_FAILED", f"{what}: {failure.detail}", step=what)


# ---------------------------------------------------------------- the checks


def check_app_lookup(config: AppConfig, obs: AppObservation) -> list[Finding]:
    failure = obs.app_failure
    if failure is None:
        return []
    if failure.problem is Problem.NOT_FOUND:
        return [finding("APP_NOT_FOUND", f"No app registration with appId {config.app_id} in tenant {config.tenant_id}.", app_id=config.app_id)]
    if failure.problem is Problem.ACCESS_DENIED:
        return [finding("APP_ACCESS_DENIED", f"The monitor may not read app {config.app_id}: {failure.detail}", app_id=config.app_id)]
    return [_failed("reading the app registration", failure)]


def owner_add_fix(app_id: str, monitor_object_id: str) -> str:
    """The exact commands that make the monitor an owner (the Entra admin center adds
    only users as owners, not service principals, so no text sends people there)."""
    return (
        f"Make the monitor's service principal ({monitor_object_id}) an owner of app {app_id}: "
        f"az ad app owner add --id {app_id} --owner-object-id {monitor_object_id} "
        f"(or Graph: POST /applications(appId='{app_id}')/owners/$ref with "
        f'{{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{monitor_object_id}"}}). '
        "Existing owners stay; with Application.ReadWrite.OwnedBy the monitor can renew only the secrets of apps it owns."
    )


def check_ownership(config: AppConfig, obs: AppObservation) -> list[Finding]:
    if obs.ownership_failure is not None:
        if obs.ownership_failure.problem is Problem.NOT_FOUND:
            return []  # the app itself is missing: APP_NOT_FOUND says so
        return [_failed("reading the app's owners", obs.ownership_failure)]
    ownership = obs.ownership
    if ownership is None or ownership.monitor_owns is not False:
        return []
    rotates = config.rotation.mode == "auto"
    return [
        finding(
            "MONITOR_NOT_OWNER",
            f"The monitor's service principal {ownership.monitor_object_id} is not an owner of app {config.app_id}"
            + (": it cannot renew the client secret before it expires." if rotates else " (notify-only: it can still watch the app)."),
            severity=Severity.CRITICAL if rotates else Severity.WARNING,
            fix=owner_add_fix(config.app_id, ownership.monitor_object_id),
            app_id=config.app_id,
            monitor_object_id=ownership.monitor_object_id,
        )
    ]


def check_secrets(config: AppConfig, obs: AppObservation, now: datetime) -> list[Finding]:
    app = obs.app
    assert app is not None
    if not app.password_credentials:
        return [finding("SECRET_MISSING", f"App {app.app_id} has no client secret.")]
    vault_key = obs.vault_secret.key_id if obs.vault_secret else None
    current = in_use_credential(app, vault_key, now)
    results: list[Finding] = []
    if current is not None and current.end is not None:
        days = days_until(current.end, now)
        ends = current.end.strftime("%Y-%m-%d %H:%M UTC")
        if current.end <= now:
            results.append(
                finding(
                    "SECRET_EXPIRED", f"Client secret {current.key_id} (hint {current.hint or '?'}) expired on {ends}.", key_id=current.key_id, days_left=days
                )
            )
        else:
            threshold = crossed_threshold(days, config.thresholds)
            if threshold is not None:
                results.append(
                    finding(
                        "SECRET_EXPIRING",
                        f"Client secret {current.key_id} (hint {current.hint or '?'}) expires in {days} day{'s' if days != 1 else ''}, on {ends}.",
                        severity=Severity.CRITICAL if days <= CRITICAL_DAYS else Severity.WARNING,
                        key_id=current.key_id,
                        days_left=days,
                        threshold=threshold,
                    )
                )
    active = [c for c in app.password_credentials if c.end is None or c.end > now]
    if len(active) > config.max_active_secrets:
        results.append(
            finding(
                "TOO_MANY_SECRETS",
                f"{len(active)} active client secrets (expected at most {config.max_active_secrets}).",
                count=len(active),
                key_ids=sorted(c.key_id for c in active),
            )
        )
    policy = obs.policy
    if policy is not None and policy.max_lifetime is not None and policy.applies_to(app.created):
        for credential in app.password_credentials:
            if credential.start and credential.end and credential.end - credential.start > policy.max_lifetime + POLICY_TOLERANCE:
                lifetime_days = (credential.end - credential.start).days
                results.append(
                    finding(
                        "SECRET_LIFETIME_EXCEEDS_POLICY",
                        f"Client secret {credential.key_id} lives {lifetime_days} days; the tenant policy allows {policy.max_lifetime.days}.",
                        key_id=credential.key_id,
                        lifetime_days=lifetime_days,
                        policy_days=policy.max_lifetime.days,
                    )
                )
    return results


def current_certificates(app: AppRegistration) -> list[KeyCredentialInfo]:
    """The certificates that matter: for each usage (Verify, Sign, Encrypt), the one that
    lasts longest. An older certificate beside a newer one of the same usage was
    replaced by hand: its expiry breaks nothing, so it is not reported."""
    newest: dict[str, KeyCredentialInfo] = {}
    for cert in app.key_credentials:
        if cert.end is None:
            continue
        usage = (cert.usage or "").lower()
        known = newest.get(usage)
        if known is None or (known.end is not None and cert.end > known.end):
            newest[usage] = cert
    return sorted(newest.values(), key=lambda c: (c.end, c.key_id))


def _certificate_name(cert: KeyCredentialInfo) -> str:
    return f"Certificate {cert.key_id}" + (f" ({cert.display_name})" if cert.display_name else "") + (f", usage {cert.usage}" if cert.usage else "")


def check_certificates(config: AppConfig, obs: AppObservation, now: datetime) -> list[Finding]:
    """Certificates (key credentials) are checked for expiry like client secrets, on the
    same thresholds, with their own codes; they are reported, never rotated. At most one
    finding per code: the certificate that ends first among those that matter."""
    app = obs.app
    assert app is not None
    current = current_certificates(app)
    results: list[Finding] = []
    expired = [c for c in current if c.end is not None and c.end <= now]
    if expired:
        cert = expired[0]
        assert cert.end is not None
        results.append(
            finding(
                "CERTIFICATE_EXPIRED",
                f"{_certificate_name(cert)} expired on {cert.end.strftime('%Y-%m-%d %H:%M UTC')}"
                + (f" ({len(expired)} expired certificates)." if len(expired) > 1 else "."),
                key_id=cert.key_id,
                days_left=days_until(cert.end, now),
                usage=cert.usage,
                count=len(expired),
            )
        )
    for cert in current:
        if cert.end is None or cert.end <= now:
            continue
        days = days_until(cert.end, now)
        threshold = crossed_threshold(days, config.thresholds)
        if threshold is None:
            continue
        results.append(
            finding(
                "CERTIFICATE_EXPIRING",
                f"{_certificate_name(cert)} expires in {days} day{'s' if days != 1 else ''}, on {cert.end.strftime('%Y-%m-%d %H:%M UTC')}.",
                severity=Severity.CRITICAL if days <= CRITICAL_DAYS else Severity.WARNING,
                key_id=cert.key_id,
                days_left=days,
                threshold=threshold,
                usage=cert.usage,
            )
        )
        break  # the one that ends first
    return results


def _recently_created(secret: VaultSecretInfo, now: datetime) -> bool:
    """Was this version's credential created so recently that a read of the app may not
    show it yet (models.UNSEEN_WINDOW)? By the monitor's createdAt tag, else Key
    Vault's own created date."""
    created = unstamp(secret.tags.get("createdAt")) or secret.created
    return created is not None and now - created < UNSEEN_WINDOW


def check_vault(config: AppConfig, obs: AppObservation, now: datetime) -> list[Finding]:
    if obs.vault_failure is not None:
        if obs.vault_failure.problem is Problem.NOT_FOUND:
            return [finding("VAULT_SECRET_MISSING", f"Key Vault has no secret named {config.vault_secret_name}.", secret_name=config.vault_secret_name)]
        return [_failed("reading the Key Vault secret", obs.vault_failure)]
    secret = obs.vault_secret
    if secret is None:
        return []
    if not secret.enabled:
        return [finding("VAULT_SECRET_MISSING", f"The current version of Key Vault secret {secret.name} is disabled.", secret_name=secret.name)]
    results: list[Finding] = []
    app = obs.app
    credential = None
    if app is not None:
        credential = next((c for c in app.password_credentials if secret.key_id and c.key_id.lower() == secret.key_id.lower()), None)
        if credential is None and secret.key_id and _recently_created(secret, now):
            pass  # Graph's reads lag its writes: a credential minutes old may not show yet
        elif credential is None:
            tag = secret.key_id or "(no keyId tag)"
            results.append(
                finding(
                    "VAULT_SECRET_UNKNOWN_KEY",
                    f"Key Vault secret {secret.name} is tagged keyId {tag}, which is not a client secret of app {app.app_id}.",
                    secret_name=secret.name,
                    key_id=secret.key_id,
                )
            )
    if credential is not None and credential.end is not None:
        if secret.expires is None or abs(secret.expires - credential.end) > EXPIRY_TOLERANCE:
            shown = secret.expires.strftime("%Y-%m-%d %H:%M UTC") if secret.expires else "none"
            results.append(
                finding(
                    "VAULT_EXPIRY_MISMATCH",
                    f"Key Vault secret {secret.name} expires {shown}; client secret {credential.key_id} ends {credential.end.strftime('%Y-%m-%d %H:%M UTC')}.",
                    secret_name=secret.name,
                    key_id=credential.key_id,
                )
            )
    probe = obs.probe
    if probe is not None:
        if probe.outcome is ProbeOutcome.REJECTED:
            results.append(
                finding(
                    "VAULT_SECRET_REJECTED",
                    f"Entra refuses the secret in Key Vault secret {secret.name} ({probe.code or 'rejected'}).",
                    secret_name=secret.name,
                    reason=probe.code,
                )
            )
        elif probe.outcome is ProbeOutcome.REFUSED:
            why = refusal(probe.code)
            results.append(
                finding(
                    "TOKEN_REQUEST_REFUSED",
                    f"Entra refuses app {config.app_id}'s token requests ({probe.code or 'no code'}): {why.meaning}.",
                    severity=why.severity,
                    fix=why.fix.replace("APP_ID", config.app_id).replace("NUMBER", (probe.code or "").removeprefix("AADSTS")),
                    reason=probe.code,
                )
            )
        elif probe.outcome is ProbeOutcome.ERROR:
            results.append(finding("CHECK_FAILED", f"testing the Key Vault secret at Entra: {probe.detail}", step="token probe"))
    return results


def check_web(config: AppConfig, obs: AppObservation) -> list[Finding]:
    assert obs.app is not None
    web = obs.app.web
    results: list[Finding] = []
    expected_logout = config.expected_logout_url
    if not web.logout_url:
        results.append(finding("LOGOUT_URL_MISSING", f"No front-channel logout URL; expected {expected_logout}.", expected=expected_logout))
    elif not _same_url(web.logout_url, expected_logout):
        results.append(
            finding(
                "LOGOUT_URL_MISMATCH",
                f"Front-channel logout URL is {web.logout_url}; expected {expected_logout}.",
                actual=web.logout_url,
                expected=expected_logout,
            )
        )
    expected_redirect = config.expected_redirect_uri
    if not any(_same_url(uri, expected_redirect) for uri in web.redirect_uris):
        results.append(finding("REDIRECT_URI_MISSING", f"Redirect URI {expected_redirect} is not registered.", expected=expected_redirect))
    if not web.id_tokens:
        results.append(finding("ID_TOKENS_DISABLED", "ID tokens (implicit grant and hybrid flows) are not enabled."))
    if not web.access_tokens:
        results.append(finding("ACCESS_TOKENS_DISABLED", "Access tokens (implicit grant and hybrid flows) are not enabled."))
    return results


def check_service_principal(config: AppConfig, obs: AppObservation) -> list[Finding]:
    if obs.service_principal_failure is not None:
        if obs.service_principal_failure.problem is Problem.NOT_FOUND:
            return [finding("SERVICE_PRINCIPAL_MISSING", f"No enterprise application (service principal) for app {config.app_id}.")]
        return [_failed("reading the enterprise application", obs.service_principal_failure)]
    sp = obs.service_principal
    if sp is None:
        return []
    results: list[Finding] = []
    if not sp.enabled:
        results.append(finding("SERVICE_PRINCIPAL_DISABLED", "The enterprise application is disabled for sign-in."))
    if not sp.assignment_required:
        results.append(finding("ASSIGNMENT_NOT_REQUIRED", "Assignment is not required: any account in the tenant can sign in."))
    elif sp.assignments == 0:
        results.append(finding("NO_ASSIGNMENTS", "Assignment is required and no user or group is assigned."))
    return results


def check_urls(config: AppConfig, obs: AppObservation) -> list[Finding]:
    results: list[Finding] = []
    for probe, code in ((obs.facility_page, "FACILITY_UNREACHABLE"), (obs.logout_callback, "LOGOUT_CALLBACK_UNREACHABLE")):
        if probe is None or probe.outcome is Reachability.OK:
            continue
        status = f" (HTTP {probe.status})" if probe.status else ""
        results.append(
            finding(code, f"{probe.url} {probe.outcome.value.replace('_', ' ')}{status}: {probe.detail}".rstrip(": "), url=probe.url, status=probe.status)
        )
    return results


def check_orphans(config: AppConfig, obs: AppObservation, now: datetime) -> list[Finding]:
    if obs.app is None or obs.vault_key_ids is None:
        return []
    held = {k.lower() for k in obs.vault_key_ids}
    return [
        finding(
            "ORPHAN_CREDENTIAL",
            f"Client secret {c.key_id} ({c.display_name}) was created by this monitor (its marker and deployment id) but is not in Key Vault.",
            key_id=c.key_id,
        )
        for c in obs.app.password_credentials
        if is_ours(c.display_name, config.deployment_id) and c.key_id.lower() not in held and (c.start is None or c.start <= now - ORPHAN_GRACE)
    ]


def evaluate(config: AppConfig, obs: AppObservation, now: datetime) -> list[Finding]:
    """Every finding for one app, in a stable order."""
    results = check_app_lookup(config, obs)
    if obs.app is not None:
        results += check_ownership(config, obs)
        results += check_secrets(config, obs, now)
        results += check_certificates(config, obs, now)
        results += check_web(config, obs)
        results += check_orphans(config, obs, now)
    results += check_vault(config, obs, now)
    results += check_service_principal(config, obs)
    results += check_urls(config, obs)
    return results
