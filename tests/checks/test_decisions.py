"""Every check decision, table-driven, with `now` passed in (no clock patching).

Each row starts from a healthy app and changes one thing; the comment says why
the expected codes follow.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sso_monitor.checks.decisions import evaluate, in_use_credential
from sso_monitor.checks.findings import CODES, Severity
from sso_monitor.config import parse_config
from sso_monitor.models import (
    AppObservation,
    AppRegistration,
    KeyCredentialInfo,
    Ownership,
    PasswordCredentialInfo,
    PasswordPolicy,
    ProbeOutcome,
    Problem,
    Reachability,
    ReadFailure,
    SecretProbe,
    ServicePrincipalInfo,
    UrlCheck,
    VaultSecretInfo,
    WebSettings,
    crossed_threshold,
    days_until,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TENANT = "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11"
APP_ID = "11111111-2222-4333-8444-555555555555"
KEY = "aaaaaaaa-0000-4000-8000-000000000001"
OTHER_KEY = "bbbbbbbb-0000-4000-8000-000000000002"

CONFIG = parse_config(
    {"vaultUrl": "https://kv.vault.azure.net", "apps": [{"facility": "acme", "tenantId": TENANT, "appId": APP_ID}]},
    environ={},
).apps[0]
OURS = f"sso-monitor {CONFIG.deployment_id} 20261129T101500Z-0a1b2c3d"  # this deployment's exact marker


def cred(key=KEY, days_left=200, lifetime=365, name="SmartTrace SSO", start=None):
    end = NOW + timedelta(days=days_left)
    return PasswordCredentialInfo(key_id=key, display_name=name, hint="abc", start=start or end - timedelta(days=lifetime), end=end)


def healthy(**changes) -> AppObservation:
    app = AppRegistration(
        object_id="obj-1",
        app_id=APP_ID,
        display_name="SmartTrace",
        password_credentials=(cred(),),
        web=WebSettings(
            logout_url=CONFIG.expected_logout_url,
            redirect_uris=(CONFIG.expected_redirect_uri,),
            id_tokens=True,
            access_tokens=True,
        ),
        created=NOW - timedelta(days=400),
    )
    obs = AppObservation(
        app=app,
        service_principal=ServicePrincipalInfo(object_id="sp-1", app_id=APP_ID, enabled=True, assignment_required=True, assignments=3),
        policy=PasswordPolicy(max_lifetime=timedelta(days=365)),
        vault_secret=VaultSecretInfo(name="smarttrace-acme", version="v1", enabled=True, expires=app.password_credentials[0].end, tags={"keyId": KEY}),
        vault_key_ids=frozenset({KEY}),
        probe=SecretProbe(ProbeOutcome.WORKS),
        facility_page=UrlCheck("https://acme.smarttrace.ai", Reachability.OK, 200),
        logout_callback=UrlCheck(CONFIG.expected_logout_url, Reachability.OK, 200),
    )
    for key, value in changes.items():
        setattr(obs, key, value)
    return obs


def with_app(**fields) -> AppObservation:
    obs = healthy()
    obs.app = replace(obs.app, **fields)
    return obs


def with_web(**fields) -> AppObservation:
    obs = healthy()
    obs.app = replace(obs.app, web=replace(obs.app.web, **fields))
    return obs


def with_sp(**fields) -> AppObservation:
    obs = healthy()
    obs.service_principal = replace(obs.service_principal, **fields)
    return obs


def with_vault(**fields) -> AppObservation:
    obs = healthy()
    obs.vault_secret = replace(obs.vault_secret, **fields)
    return obs


def secret_ending_in(days: int) -> AppObservation:
    obs = with_app(password_credentials=(cred(days_left=days),))
    obs.vault_secret = replace(obs.vault_secret, expires=obs.app.password_credentials[0].end)
    return obs


def cert(key=KEY, days_left=200, usage="Verify", name="CN=SmartTrace SSO", lifetime=365):
    end = NOW + timedelta(days=days_left)
    return KeyCredentialInfo(key_id=key, display_name=name, type="AsymmetricX509Cert", usage=usage, start=end - timedelta(days=lifetime), end=end)


ROWS = [
    # the baseline: nothing to report
    ("healthy", healthy(), []),
    # Graph answered 404 for the appId: only the lookup finding; app-based checks cannot run
    (
        "app missing",
        healthy(app=None, app_failure=ReadFailure(Problem.NOT_FOUND, "404"), vault_key_ids=None),
        ["APP_NOT_FOUND", "VAULT_SECRET_UNKNOWN_KEY"][:1],
    ),
    # 403 on a read: with Application.ReadWrite.OwnedBy reads are never refused for
    # ownership, so this is a real refusal (no consent, wrong identity for the tenant)
    ("app denied", healthy(app=None, app_failure=ReadFailure(Problem.ACCESS_DENIED, "Authorization_RequestDenied"), vault_key_ids=None), ["APP_ACCESS_DENIED"]),
    # a transient failure that outlasted retries
    ("app read failed", healthy(app=None, app_failure=ReadFailure(Problem.FAILED, "timeout"), vault_key_ids=None), ["CHECK_FAILED"]),
    # no password credentials at all (the vault's keyId then points at nothing)
    ("no secret", with_app(password_credentials=()), ["SECRET_MISSING", "VAULT_SECRET_UNKNOWN_KEY"]),
    # 31 days left: outside the largest default threshold (30)
    ("31 days", secret_ending_in(31), []),
    # 30 days: the first threshold is crossed
    ("30 days", secret_ending_in(30), ["SECRET_EXPIRING"]),
    # 5 days left: still expiring, now critical
    ("5 days", secret_ending_in(5), ["SECRET_EXPIRING"]),
    # ended yesterday: expired, not expiring
    ("expired", secret_ending_in(-1), ["SECRET_EXPIRED"]),
    # three active secrets where two are expected
    ("too many", with_app(password_credentials=(cred(), cred(key=OTHER_KEY), cred(key="cccccccc-0000-4000-8000-000000000003"))), ["TOO_MANY_SECRETS"]),
    # two active secrets are fine (the rotation overlap)
    ("two secrets", with_app(password_credentials=(cred(), cred(key=OTHER_KEY, days_left=30 + 200))), []),
    # an expired extra secret does not count as active
    (
        "old expired extra",
        with_app(password_credentials=(cred(), cred(key=OTHER_KEY, days_left=-100), cred(key="cccccccc-0000-4000-8000-000000000003", days_left=-5))),
        [],
    ),
    # lifetime 730 days against a 365-day policy
    ("lifetime over policy", with_app(password_credentials=(cred(lifetime=730),)), ["SECRET_LIFETIME_EXCEEDS_POLICY"]),
    # the policy restricts only apps created after a date; this app is older
    (
        "policy not for old apps",
        healthy(
            app=replace(healthy().app, password_credentials=(cred(lifetime=730),)),
            policy=PasswordPolicy(timedelta(days=365), restrict_for_apps_created_after=NOW - timedelta(days=10)),
        ),
        [],
    ),
    # a disabled policy restricts nothing
    (
        "policy disabled",
        healthy(app=replace(healthy().app, password_credentials=(cred(lifetime=730),)), policy=PasswordPolicy(timedelta(days=365), enabled=False)),
        [],
    ),
    # Key Vault has no such secret
    (
        "vault missing",
        healthy(vault_secret=None, vault_failure=ReadFailure(Problem.NOT_FOUND, "SecretNotFound"), probe=None, vault_key_ids=frozenset()),
        ["VAULT_SECRET_MISSING"],
    ),
    # Key Vault refused the monitor
    (
        "vault denied",
        healthy(vault_secret=None, vault_failure=ReadFailure(Problem.ACCESS_DENIED, "ForbiddenByRbac"), probe=None, vault_key_ids=None),
        ["CHECK_FAILED"],
    ),
    # the latest version is disabled
    ("vault disabled", with_vault(enabled=False), ["VAULT_SECRET_MISSING"]),
    # the keyId tag names a credential the app no longer has
    ("vault unknown key", with_vault(tags={"keyId": OTHER_KEY}), ["VAULT_SECRET_UNKNOWN_KEY"]),
    # a rotation made it minutes ago: Graph's read may not show the credential yet (reads lag writes)
    ("vault key just created", with_vault(tags={"keyId": OTHER_KEY, "createdAt": (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}), []),
    # two hours on, still missing: the credential is really not there
    (
        "vault key created long ago",
        with_vault(tags={"keyId": OTHER_KEY, "createdAt": (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}),
        ["VAULT_SECRET_UNKNOWN_KEY"],
    ),
    # no keyId tag at all
    ("vault untagged", with_vault(tags={}), ["VAULT_SECRET_UNKNOWN_KEY"]),
    # Key Vault's expiry is a day off Entra's end date
    ("vault expiry mismatch", with_vault(expires=NOW + timedelta(days=201)), ["VAULT_EXPIRY_MISMATCH"]),
    # no expiry attribute in Key Vault
    ("vault no expiry", with_vault(expires=None), ["VAULT_EXPIRY_MISMATCH"]),
    # a 2-minute difference is within tolerance
    ("vault expiry close", with_vault(expires=NOW + timedelta(days=200, minutes=2)), []),
    # Entra refused the secret from Key Vault
    ("probe rejected", healthy(probe=SecretProbe(ProbeOutcome.REJECTED, "AADSTS7000215")), ["VAULT_SECRET_REJECTED"]),
    # Entra refused the app, not the secret: its own finding, never VAULT_SECRET_REJECTED (no rotation)
    ("probe refused: app disabled", healthy(probe=SecretProbe(ProbeOutcome.REFUSED, "AADSTS7000112")), ["TOKEN_REQUEST_REFUSED"]),
    # a code the monitor does not know is a refusal too, never a reason to rotate
    ("probe refused: unknown code", healthy(probe=SecretProbe(ProbeOutcome.REFUSED, "AADSTS9999999")), ["TOKEN_REQUEST_REFUSED"]),
    # the owners were read and the monitor's service principal is not among them
    ("not an owner", healthy(ownership=Ownership("monitor-sp", frozenset({"someone-else"}))), ["MONITOR_NOT_OWNER"]),
    # it is among them
    ("owner", healthy(ownership=Ownership("monitor-sp", frozenset({"someone-else", "monitor-sp"}))), []),
    # owners has more pages and the first does not name the monitor: undecided, no finding
    ("owners paged", healthy(ownership=Ownership("monitor-sp", frozenset({"someone-else"}), complete=False)), []),
    # the owners read failed
    ("owners read failed", healthy(ownership_failure=ReadFailure(Problem.FAILED, "503")), ["CHECK_FAILED"]),
    # the probe could not run
    ("probe error", healthy(probe=SecretProbe(ProbeOutcome.ERROR, detail="connection reset")), ["CHECK_FAILED"]),
    # no logout URL
    ("logout missing", with_web(logout_url=None), ["LOGOUT_URL_MISSING"]),
    # another facility's logout URL
    ("logout other facility", with_web(logout_url="https://api.smarttrace.ai/v1/auth/callback/azure-logout/globex"), ["LOGOUT_URL_MISMATCH"]),
    # staging host instead of production
    ("logout staging", with_web(logout_url="https://api.staging.smarttrace.ai/v1/auth/callback/azure-logout/acme"), ["LOGOUT_URL_MISMATCH"]),
    # a trailing slash and upper-case host are the same URL
    ("logout cosmetic", with_web(logout_url="https://API.smarttrace.ai/v1/auth/callback/azure-logout/acme/"), []),
    # http instead of https
    ("logout http", with_web(logout_url="http://api.smarttrace.ai/v1/auth/callback/azure-logout/acme"), ["LOGOUT_URL_MISMATCH"]),
    # redirect URI absent (another one present)
    ("redirect missing", with_web(redirect_uris=("https://api.smarttrace.ai/v1/auth/callback/azure/globex",)), ["REDIRECT_URI_MISSING"]),
    # ID tokens off
    ("id tokens off", with_web(id_tokens=False), ["ID_TOKENS_DISABLED"]),
    # access tokens off
    ("access tokens off", with_web(access_tokens=False), ["ACCESS_TOKENS_DISABLED"]),
    # both off: two problems, two findings
    ("both tokens off", with_web(id_tokens=False, access_tokens=False), ["ID_TOKENS_DISABLED", "ACCESS_TOKENS_DISABLED"]),
    # no enterprise application
    ("sp missing", healthy(service_principal=None, service_principal_failure=ReadFailure(Problem.NOT_FOUND, "404")), ["SERVICE_PRINCIPAL_MISSING"]),
    # SP read failed
    ("sp read failed", healthy(service_principal=None, service_principal_failure=ReadFailure(Problem.FAILED, "503")), ["CHECK_FAILED"]),
    # disabled for sign-in
    ("sp disabled", with_sp(enabled=False), ["SERVICE_PRINCIPAL_DISABLED"]),
    # assignment not required: the assignment count does not matter then
    ("assignment optional", with_sp(assignment_required=False, assignments=0), ["ASSIGNMENT_NOT_REQUIRED"]),
    # required but nobody assigned
    ("no assignments", with_sp(assignments=0), ["NO_ASSIGNMENTS"]),
    # facility page down
    ("facility down", healthy(facility_page=UrlCheck("https://acme.smarttrace.ai", Reachability.HTTP_ERROR, 503)), ["FACILITY_UNREACHABLE"]),
    # bad certificate on the logout callback
    (
        "logout callback tls",
        healthy(logout_callback=UrlCheck(CONFIG.expected_logout_url, Reachability.TLS_ERROR, detail="certificate verify failed")),
        ["LOGOUT_CALLBACK_UNREACHABLE"],
    ),
    # a monitor-created secret that Key Vault does not hold, older than the grace window
    ("orphan", with_app(password_credentials=(cred(), cred(key=OTHER_KEY, name=OURS, start=NOW - timedelta(days=2), lifetime=1))), ["ORPHAN_CREDENTIAL"]),
    # the same, ten minutes old: a rotation may be storing it right now
    ("orphan too young", with_app(password_credentials=(cred(), cred(key=OTHER_KEY, name=OURS, start=NOW - timedelta(minutes=10), lifetime=1))), []),
    # a hand-made secret a person named like the monitor's is never called the monitor's
    ("named like ours", with_app(password_credentials=(cred(), cred(key=OTHER_KEY, name="sso-monitor (prod)", start=NOW - timedelta(days=2), lifetime=1))), []),
    # another deployment's credential (another vault) is not this one's
    (
        "another deployment's",
        with_app(
            password_credentials=(cred(), cred(key=OTHER_KEY, name="sso-monitor 9f9f9f9f 20261129T101500Z-0a1b2c3d", start=NOW - timedelta(days=2), lifetime=1))
        ),
        [],
    ),
    # certificates are checked like secrets, on the same thresholds: 31 days left is quiet
    ("certificate 31 days", with_app(key_credentials=(cert(days_left=31),)), []),
    # 30 days: the first threshold
    ("certificate 30 days", with_app(key_credentials=(cert(days_left=30),)), ["CERTIFICATE_EXPIRING"]),
    # ended yesterday and nothing newer of its usage: expired
    ("certificate expired", with_app(key_credentials=(cert(days_left=-1),)), ["CERTIFICATE_EXPIRED"]),
    # an expired certificate beside a newer one of the same usage was replaced: nothing breaks
    ("certificate replaced", with_app(key_credentials=(cert(days_left=-40), cert(key=OTHER_KEY, days_left=300))), []),
    # the newer one is expiring: reported, the older expired one is not
    ("certificate replaced, expiring", with_app(key_credentials=(cert(days_left=-40), cert(key=OTHER_KEY, days_left=10))), ["CERTIFICATE_EXPIRING"]),
    # usages are separate: an expired Sign certificate is not replaced by a Verify one
    ("certificate other usage", with_app(key_credentials=(cert(days_left=-3, usage="Sign"), cert(key=OTHER_KEY, days_left=300))), ["CERTIFICATE_EXPIRED"]),
    # a certificate without an end date cannot be judged
    ("certificate without end", with_app(key_credentials=(replace(cert(), end=None),)), []),
    # a hand-made extra secret is not ours, so never an orphan
    ("hand-made extra", with_app(password_credentials=(cred(), cred(key=OTHER_KEY, name="made by hand", start=NOW - timedelta(days=2), lifetime=1))), []),
]


@pytest.mark.parametrize("name, obs, expected", ROWS, ids=[r[0] for r in ROWS])
def test_check_decisions(name, obs, expected):
    findings = evaluate(CONFIG, obs, NOW)
    assert [f.code for f in findings] == expected
    for f in findings:
        assert f.message and f.fix
        # a fix names the real ids, or is the code's general fix
        assert f.fix == CODES[f.code].fix or not any(p in f.fix for p in ("APP_ID", "MONITOR_OBJECT_ID", "NUMBER"))


def test_not_an_owner_names_the_exact_command_and_rotating_apps_are_critical():
    obs = healthy(ownership=Ownership("5a1b2c3d-0000-4000-8000-00000000000a", frozenset({"someone-else"})))
    (found,) = evaluate(CONFIG, obs, NOW)
    assert found.severity is Severity.CRITICAL  # CONFIG rotates (mode auto)
    assert f"az ad app owner add --id {APP_ID} --owner-object-id 5a1b2c3d-0000-4000-8000-00000000000a" in found.fix
    assert "admin center >" not in found.fix  # the portal cannot add a service principal as an owner
    notify_only = replace(CONFIG, rotation=replace(CONFIG.rotation, mode="notify-only"))
    (quiet,) = evaluate(notify_only, obs, NOW)
    assert (quiet.code, quiet.severity) == ("MONITOR_NOT_OWNER", Severity.WARNING)


def test_a_refusal_that_is_not_about_the_secret_never_advises_rotating():
    for code in ("AADSTS700016", "AADSTS7000112", "AADSTS7000229", "AADSTS53003", "AADSTS9999999"):
        (found,) = evaluate(CONFIG, healthy(probe=SecretProbe(ProbeOutcome.REFUSED, code)), NOW)
        assert found.code == "TOKEN_REQUEST_REFUSED" and code in found.message
        assert "rotate" not in found.fix.replace("does not rotate", "")
    (rejected,) = evaluate(CONFIG, healthy(probe=SecretProbe(ProbeOutcome.REJECTED, "AADSTS7000222")), NOW)
    assert rejected.code == "VAULT_SECRET_REJECTED" and "rotate" in rejected.fix


@pytest.mark.parametrize(
    "days, severity, threshold",
    [
        (30, Severity.WARNING, 30),  # first threshold
        (15, Severity.WARNING, 30),  # between 30 and 14: still the 30 threshold
        (14, Severity.WARNING, 14),
        (8, Severity.WARNING, 14),
        (7, Severity.CRITICAL, 7),  # a week or less is critical
        (3, Severity.CRITICAL, 3),
        (1, Severity.CRITICAL, 1),
        (0, Severity.CRITICAL, 1),  # hours left
    ],
)
def test_expiry_severity_rises_through_thresholds(days, severity, threshold):
    obs = secret_ending_in(days)
    if days == 0:
        obs = with_app(password_credentials=(replace(cred(), end=NOW + timedelta(hours=5)),))
        obs.vault_secret = replace(obs.vault_secret, expires=obs.app.password_credentials[0].end)
    (found,) = evaluate(CONFIG, obs, NOW)
    assert (found.code, found.severity, found.details["threshold"]) == ("SECRET_EXPIRING", severity, threshold)


def test_the_credential_in_use_is_the_one_key_vault_names():
    # An old secret (5 days left) that Key Vault holds, and a newer one not yet handed over:
    # the warning is about the one SmartTrace uses.
    old, new = cred(days_left=5), cred(key=OTHER_KEY, days_left=300)
    obs = with_app(password_credentials=(old, new))
    obs.vault_secret = replace(obs.vault_secret, expires=old.end)
    codes = [(f.code, f.details.get("key_id")) for f in evaluate(CONFIG, obs, NOW)]
    assert codes == [("SECRET_EXPIRING", KEY)]


def test_without_key_vault_the_longest_lived_credential_is_assumed():
    app = healthy().app
    creds = (cred(days_left=5), cred(key=OTHER_KEY, days_left=300))
    assert in_use_credential(replace(app, password_credentials=creds), None, NOW).key_id == OTHER_KEY


@pytest.mark.parametrize(
    "days_left, thresholds, expected",
    [(31, (30, 14), None), (30, (30, 14), 30), (14, (30, 14), 14), (-2, (30, 14), 14), (100, (120,), 120)],
)
def test_crossed_threshold(days_left, thresholds, expected):
    assert crossed_threshold(days_left, thresholds) == expected


@pytest.mark.parametrize(
    "delta, expected",
    [(timedelta(days=1), 1), (timedelta(hours=23), 0), (timedelta(hours=-1), -1), (timedelta(days=-2, hours=1), -2)],
)
def test_days_until_rounds_down(delta, expected):
    assert days_until(NOW + delta, NOW) == expected


def test_every_code_is_produced_by_some_row():
    from tests.checks.test_signins import SIGN_IN_CODES  # decided from Entra's sign-in log (checks/signins.py)

    produced = {code for _, obs, _ in ROWS for code in (f.code for f in evaluate(CONFIG, obs, NOW))}
    assert produced | SIGN_IN_CODES == set(CODES)


def test_docs_checks_md_is_generated_from_the_codes():
    from pathlib import Path

    from sso_monitor.checks.findings import checks_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "checks.md").read_text()
    assert doc == checks_markdown(), "regenerate: python -m sso_monitor.checks.findings > docs/checks.md"


@pytest.mark.parametrize("days, severity", [(30, Severity.WARNING), (8, Severity.WARNING), (7, Severity.CRITICAL), (1, Severity.CRITICAL)])
def test_certificates_use_the_secrets_thresholds_and_severities(days, severity):
    (found,) = evaluate(CONFIG, with_app(key_credentials=(cert(days_left=days),)), NOW)
    assert (found.code, found.severity, found.details["days_left"], found.details["key_id"]) == ("CERTIFICATE_EXPIRING", severity, days, KEY)
    assert "CN=SmartTrace SSO" in found.message and "Verify" in found.message
    assert "AADSTS700027" in CODES["CERTIFICATE_EXPIRED"].meaning  # what a client with an expired certificate is told


def test_one_finding_per_certificate_code_for_the_certificate_that_ends_first():
    certs = (
        cert(days_left=20, usage="Verify"),
        cert(key=OTHER_KEY, days_left=5, usage="Sign"),
        cert(key="cccccccc-0000-4000-8000-000000000003", days_left=-2, usage="Encrypt"),
    )
    findings = {f.code: f for f in evaluate(CONFIG, with_app(key_credentials=certs), NOW)}
    assert set(findings) == {"CERTIFICATE_EXPIRING", "CERTIFICATE_EXPIRED"}
    assert findings["CERTIFICATE_EXPIRING"].details["key_id"] == OTHER_KEY and findings["CERTIFICATE_EXPIRING"].severity is Severity.CRITICAL
    assert findings["CERTIFICATE_EXPIRED"].details["days_left"] < 0


def test_certificates_never_change_which_secret_is_in_use_or_count_as_secrets():
    obs = with_app(
        key_credentials=(
            cert(days_left=400),
            cert(key=OTHER_KEY, days_left=500, usage="Sign"),
            cert(key="c" * 8 + "-0000-4000-8000-000000000003", days_left=600),
        )
    )
    assert evaluate(CONFIG, obs, NOW) == []  # three certificates are not TOO_MANY_SECRETS
    assert in_use_credential(obs.app, KEY, NOW).key_id == KEY
