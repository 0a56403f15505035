"""Every finding code, produced end to end over HTTPS against the sandbox
through the real adapters; the healthy app produces none."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from sso_monitor.cli.check import check_and_report
from sso_monitor.config import deployment_id, parse_config
from sso_sandbox import Sandbox, World
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds, standard_world
from tests.checks import DEMO_FINDINGS, codes_by_facility


def codes_for(sandbox: Sandbox, facility: str = "acme") -> list[str]:
    return codes_by_facility(sandbox)[facility]


def smarttrace(world: World, ids: StandardIds):
    return world.find_app(ids.smarttrace_app_id)


def sp(world: World, ids: StandardIds):
    return world.tenant(ids.tenant_id).sp_by_app_id(ids.smarttrace_app_id)


def vault_latest(world: World, ids: StandardIds):
    return world.vault(ids.vault_name).secrets[ids.vault_secret_name].latest


def set_end(world: World, ids: StandardIds, days: float) -> None:
    credential = smarttrace(world, ids).password_credentials[0]
    credential.end = world.now() + timedelta(days=days)
    vault_latest(world, ids).expires = credential.end


def lifetime_over_policy(world, ids):
    # Reading the tenant policy needs Policy.Read.All (read-only); without it the
    # monitor cannot know the cap and stays silent (see docs/checks.md).
    monitor_sp = world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id)
    monitor_sp.granted_roles["https://graph.microsoft.com"].append("Policy.Read.All")
    credential = smarttrace(world, ids).password_credentials[0]
    credential.start = world.now() - timedelta(days=100)
    credential.end = world.now() + timedelta(days=630)
    vault_latest(world, ids).expires = credential.end


def extra_secrets(world, ids):
    for _ in range(2):
        world.add_password(smarttrace(world, ids), display_name="made by hand")


def late(change: Callable[[Sandbox, StandardIds], None]) -> Callable[[Sandbox, StandardIds], None]:
    """A breakage that needs the running sandbox (its endpoints)."""
    change.late = True  # type: ignore[attr-defined]
    return change


@late
def orphan(sandbox, ids):
    # This deployment's exact marker: its id is a hash of the vault URL, known once running.
    document, _ = monitor_document(sandbox)
    name = f"sso-monitor {deployment_id(document['vaultUrl'])} 20261128T000000Z-0000000a"
    world = sandbox.world
    world.add_password(smarttrace(world, ids), display_name=name, start=world.now() - timedelta(days=2), created=world.now() - timedelta(days=2))


def no_graph_permission(world, ids):
    # Admin consent never given: Graph refuses every read (a real 403, not ownership).
    world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id).granted_roles = {}


def unknown_key(world, ids):
    # A keyId no credential of the app has, on a version stored days ago: not a read that
    # lags a rotation's write (a credential under an hour old is not yet seen).
    latest = vault_latest(world, ids)
    latest.tags.update(keyId=str(uuid.uuid4()))
    latest.created = latest.updated = world.now() - timedelta(days=2)


def wrong_vault_value(world, ids):
    latest = vault_latest(world, ids)
    world.set_secret(world.vault(ids.vault_name), ids.vault_secret_name, "pasted-the-secret-id-by-mistake", tags=dict(latest.tags), expires=latest.expires)


def web(**changes) -> Callable[[World, StandardIds], None]:
    def change(world, ids):
        smarttrace(world, ids).web.update(changes)

    return change


def grants(**changes) -> Callable[[World, StandardIds], None]:
    def change(world, ids):
        smarttrace(world, ids).web["implicitGrantSettings"].update(changes)

    return change


def vault_failing(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.faults.add("status", service="vault", method="GET", path=f"/secrets/{ids.vault_secret_name}*", status=503)


SCENARIOS: list[tuple[str, Callable]] = [
    ("APP_NOT_FOUND", lambda w, i: w.tenant(i.tenant_id).applications.pop(i.smarttrace_object_id)),
    ("APP_ACCESS_DENIED", no_graph_permission),
    # With Application.ReadWrite.OwnedBy the monitor still reads the app; owners say it is not one
    ("MONITOR_NOT_OWNER", lambda w, i: smarttrace(w, i).owners.clear()),
    # Entra refuses the app itself (disabled): not a secret problem
    ("TOKEN_REQUEST_REFUSED", lambda w, i: setattr(sp(w, i), "account_enabled", False)),
    ("SECRET_MISSING", lambda w, i: smarttrace(w, i).password_credentials.clear()),
    ("SECRET_EXPIRING", lambda w, i: set_end(w, i, 10)),
    ("SECRET_EXPIRED", lambda w, i: set_end(w, i, -1)),
    ("SECRET_LIFETIME_EXCEEDS_POLICY", lifetime_over_policy),
    # a certificate uploaded beside the secret: read with the app's keyCredentials, reported, never rotated
    ("CERTIFICATE_EXPIRING", lambda w, i: w.add_key_credential(smarttrace(w, i), end=w.now() + timedelta(days=10))),
    ("CERTIFICATE_EXPIRED", lambda w, i: w.add_key_credential(smarttrace(w, i), start=w.now() - timedelta(days=366), end=w.now() - timedelta(days=1))),
    ("TOO_MANY_SECRETS", extra_secrets),
    ("VAULT_SECRET_MISSING", lambda w, i: w.vault(i.vault_name).secrets.pop(i.vault_secret_name)),
    ("VAULT_SECRET_UNKNOWN_KEY", unknown_key),
    ("VAULT_SECRET_REJECTED", wrong_vault_value),
    ("VAULT_EXPIRY_MISMATCH", lambda w, i: setattr(vault_latest(w, i), "expires", vault_latest(w, i).expires + timedelta(days=1))),
    ("LOGOUT_URL_MISSING", web(logoutUrl=None)),
    ("LOGOUT_URL_MISMATCH", web(logoutUrl="https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme-old")),
    ("REDIRECT_URI_MISSING", web(redirectUris=[])),
    ("ID_TOKENS_DISABLED", grants(enableIdTokenIssuance=False)),
    ("ACCESS_TOKENS_DISABLED", grants(enableAccessTokenIssuance=False)),
    ("SERVICE_PRINCIPAL_MISSING", lambda w, i: w.tenant(i.tenant_id).service_principals.pop(sp(w, i).object_id)),
    ("SERVICE_PRINCIPAL_DISABLED", lambda w, i: setattr(sp(w, i), "account_enabled", False)),
    ("ASSIGNMENT_NOT_REQUIRED", lambda w, i: setattr(sp(w, i), "app_role_assignment_required", False)),
    ("NO_ASSIGNMENTS", lambda w, i: sp(w, i).assigned_to.clear()),
    ("FACILITY_UNREACHABLE", lambda w, i: setattr(w.facility(i.facility), "online", False)),
    ("LOGOUT_CALLBACK_UNREACHABLE", lambda w, i: setattr(w.facility(i.facility), "logout_callback_online", False)),
    ("ORPHAN_CREDENTIAL", orphan),
]


def test_the_healthy_app_has_no_findings(sandbox):
    assert codes_for(sandbox) == []


@pytest.mark.parametrize("code, breakage", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_each_code_is_found_end_to_end(code, breakage):
    world, ids = standard_world()
    if not getattr(breakage, "late", False):
        breakage(world, ids)
    with Sandbox(world) as sandbox:
        if getattr(breakage, "late", False):
            breakage(sandbox, ids)
        found = codes_for(sandbox)
    assert code in found, found


def test_check_failed_when_a_read_keeps_failing():
    world, ids = standard_world()
    with Sandbox(world) as sandbox:
        vault_failing(sandbox, ids)
        assert "CHECK_FAILED" in codes_for(sandbox)


def test_every_code_has_an_end_to_end_scenario():
    from sso_monitor.checks.findings import CODES
    from tests.checks.test_signins import SIGN_IN_CODES

    assert {code for code, _ in SCENARIOS} | {"CHECK_FAILED"} | SIGN_IN_CODES == set(CODES)


def test_json_report_shape_and_exit_code(scenario_sandbox):
    document, environ = monitor_document(scenario_sandbox)
    out, err = io.StringIO(), io.StringIO()
    code = check_and_report(parse_config(document, environ), as_json=True, now=scenario_sandbox.world.now(), out=out, err=err)
    report = json.loads(out.getvalue())
    assert code == 2  # the demo world has critical findings
    by_name = {a["facility"]: a for a in report["apps"]}
    assert set(by_name) == {"riverside", "harbor", "valley", "summit", "prairie", "lakeside", "meadow", "orchard"}
    for app in report["apps"]:
        assert set(app) >= {"facility", "tenantId", "appId", "status", "findings"}
        for f in app["findings"]:
            assert set(f) >= {"code", "severity", "message", "fix"}
    assert {name: [f["code"] for f in app["findings"]] for name, app in by_name.items()} == DEMO_FINDINGS
    assert by_name["riverside"]["status"] == "ok" and by_name["harbor"]["status"] == "warning"
    assert by_name["valley"]["status"] == "critical"
    # no secret value anywhere in the report
    text = out.getvalue() + err.getvalue()
    assert not [s for s in scenario_sandbox.world.issued_secrets if s in text]


def test_a_progress_bar_on_a_terminal_while_many_apps_are_checked(scenario_sandbox):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    document, environ = monitor_document(scenario_sandbox)
    out, err = io.StringIO(), Terminal()
    check_and_report(parse_config(document, environ), now=scenario_sandbox.world.now(), out=out, err=err)
    assert "checking apps" in err.getvalue()  # the bar, drawn on the terminal (stderr)
    assert "checking apps" not in out.getvalue() and "riverside" in out.getvalue()
