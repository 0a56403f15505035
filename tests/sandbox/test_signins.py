"""Entra's sign-in records in the sandbox: non-interactive rows for a facility's user
sign-ins (no key id), service-principal rows for the monitor's own token requests (with
the key id), the per-credential activity report, and the reporting API's gates
(docs/evidence.md, docs/sandbox/fidelity.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests

from sso_sandbox import Sandbox
from sso_sandbox.signin_records import record_user_sign_in
from sso_sandbox.testing import StandardIds
from tests.sandbox.test_graph import minted, monitor_token

AUDIT = ["Application.ReadWrite.OwnedBy", "AuditLog.Read.All"]
NON_INTERACTIVE = "signInEventTypes/any(t: t eq 'nonInteractiveUser')"


def beta(sandbox: Sandbox, path: str, token: str, **params: str) -> requests.Response:
    assert sandbox.endpoints is not None
    base = sandbox.endpoints.graph.replace("/v1.0", "/beta")
    return requests.get(base + path, params=params, headers={"Authorization": f"Bearer {token}"}, verify=str(sandbox.endpoints.ca_path), timeout=30)


def rows(sandbox: Sandbox, token: str, flt: str) -> list[dict[str, Any]]:
    answer = beta(sandbox, "/auditLogs/signIns", token, **{"$filter": flt})
    assert answer.status_code == 200, answer.text
    return answer.json()["value"]


def test_a_user_sign_in_is_a_non_interactive_row_without_a_key_id(sandbox: Sandbox, ids: StandardIds) -> None:
    assert record_user_sign_in(sandbox.world, "acme", user="Pat@Contoso.example") == 0
    token = minted(sandbox, ids, AUDIT)
    [row] = rows(sandbox, token, NON_INTERACTIVE)
    assert row["appId"] == ids.smarttrace_app_id and row["signInEventTypes"] == ["nonInteractiveUser"]
    assert row["clientCredentialType"] == "clientSecret" and row["isInteractive"] is False
    assert row["status"]["errorCode"] == 0 and row["servicePrincipalCredentialKeyId"] is None
    assert row["userPrincipalName"] == "pat@contoso.example"  # "This value is always in lowercase"
    # v1.0's default, and beta's without the filter: interactive rows only
    assert rows(sandbox, token, f"appId eq '{ids.smarttrace_app_id}'") == []


def test_a_wrong_or_expired_secret_in_smarttrace_is_logged_with_its_code(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    facility = world.facility("acme")
    facility.client_secret = "pasted-the-secret-id-instead"
    assert record_user_sign_in(world, "acme") == 7000215
    facility.client_secret = ""
    assert record_user_sign_in(world, "acme") == 7000218
    app = world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    credential = app.password_credentials[0]
    facility.client_secret = credential.secret_text
    credential.end = world.now() - timedelta(minutes=1)
    assert record_user_sign_in(world, "acme") == 7000222
    codes = [r["status"]["errorCode"] for r in rows(sandbox, minted(sandbox, ids, AUDIT), NON_INTERACTIVE)]
    assert codes == [7000222, 7000218, 7000215]  # newest first
    for row in rows(sandbox, minted(sandbox, ids, AUDIT), NON_INTERACTIVE):
        assert credential.secret_text not in str(row)


def test_the_monitors_own_token_requests_are_service_principal_rows_with_the_key_id(sandbox: Sandbox, ids: StandardIds) -> None:
    monitor_token(sandbox, ids)  # client credentials with the monitor's own secret
    token = minted(sandbox, ids, AUDIT)
    [row] = rows(sandbox, token, "signInEventTypes/any(t: t eq 'servicePrincipal')")
    monitor = sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.monitor_app_id)
    assert row["appId"] == ids.monitor_app_id and row["servicePrincipalCredentialKeyId"] == monitor.password_credentials[0].key_id
    assert rows(sandbox, token, NON_INTERACTIVE) == []


def test_filters_by_app_and_time_and_pages(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    start = world.now()
    for minutes in range(5):
        record_user_sign_in(world, "acme", at=start + timedelta(minutes=minutes))
    token = minted(sandbox, ids, AUDIT)
    since = (start + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    flt = f"{NON_INTERACTIVE} and createdDateTime ge {since} and (appId eq '{ids.smarttrace_app_id}' or appId eq '{ids.foreign_app_id}')"
    assert len(rows(sandbox, token, flt)) == 3
    first = beta(sandbox, "/auditLogs/signIns", token, **{"$filter": NON_INTERACTIVE, "$top": "2"}).json()
    assert len(first["value"]) == 2 and "@odata.nextLink" in first
    second = requests.get(first["@odata.nextLink"], headers={"Authorization": f"Bearer {token}"}, verify=str(sandbox.endpoints.ca_path), timeout=30).json()
    assert len(second["value"]) == 2
    assert beta(sandbox, "/auditLogs/signIns", token, **{"$filter": "userId eq 'x'"}).status_code == 400


def test_the_reporting_api_needs_audit_log_read_and_a_premium_licence(sandbox: Sandbox, ids: StandardIds) -> None:
    denied = beta(sandbox, "/auditLogs/signIns", minted(sandbox, ids, ["Application.ReadWrite.OwnedBy"]), **{"$filter": NON_INTERACTIVE})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    sandbox.world.tenant(ids.tenant_id).premium = False
    for path in ("/auditLogs/signIns", "/reports/appCredentialSignInActivities"):
        refused = beta(sandbox, path, minted(sandbox, ids, AUDIT))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


def test_the_reporting_api_allows_five_requests_per_ten_seconds(sandbox: Sandbox, ids: StandardIds) -> None:
    token = minted(sandbox, ids, AUDIT)
    answers = [beta(sandbox, "/reports/appCredentialSignInActivities", token).status_code for _ in range(6)]
    assert answers[:5] == [200] * 5 and answers[5] == 429


def test_credential_activity_across_flows_after_the_delay_and_its_switches(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    tenant = world.tenant(ids.tenant_id)
    tenant.activity_report_delay = timedelta(minutes=30)
    record_user_sign_in(world, "acme")
    token = minted(sandbox, ids, AUDIT)
    path = "/reports/appCredentialSignInActivities"
    flt = {"$filter": f"appId eq '{ids.smarttrace_app_id}'"}
    assert beta(sandbox, path, token, **flt).json()["value"] == []  # not yet visible
    world.clock.advance(timedelta(minutes=31))
    [row] = beta(sandbox, path, token, **flt).json()["value"]
    assert row["keyId"] == ids.smarttrace_key_id and row["keyType"] == "clientSecret"
    assert row["signInActivity"]["lastSignInDateTime"]
    tenant.activity_report = "empty"
    assert beta(sandbox, path, token, **flt).json()["value"] == []
    tenant.activity_report = "unavailable"
    assert beta(sandbox, path, token, **flt).status_code == 403
