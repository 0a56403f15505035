"""Graph: addPassword's shapes (secretText, default end) and app management policies: the
refusal that names the policy, and GET /applications/{id}/appManagementPolicies
(docs/sandbox/fidelity.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from sso_sandbox import Sandbox
from sso_sandbox.scenario import load_scenario
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import DEFAULT_POLICY_ID, World, add_years, default_password_end, new_secret_text
from tests.sandbox.test_graph import call, error_of, minted, monitor_token, validate_error

# The shape secret scanners (gitleaks, trufflehog) match Entra client secrets with.
ENTRA_SECRET = re.compile(r"^[a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34}$")


def test_secret_text_is_forty_characters_of_entras_shape(sandbox: Sandbox, ids: StandardIds) -> None:
    for _ in range(200):
        value = new_secret_text()
        assert len(value) == 40 and ENTRA_SECRET.match(value) and value[3:6] == "8Q~"
    body = call(
        sandbox,
        "POST",
        f"/applications/{ids.smarttrace_object_id}/addPassword",
        monitor_token(sandbox, ids),
        json={"passwordCredential": {"endDateTime": (datetime.now(UTC) + timedelta(days=30)).isoformat()}},
    ).json()
    assert len(body["secretText"]) == 40 and ENTRA_SECRET.match(body["secretText"]) and body["hint"] == body["secretText"][:3]


@pytest.mark.parametrize(
    "start, end",
    [
        (datetime(2019, 9, 9, 19, 50, 29, tzinfo=UTC), datetime(2021, 9, 9, 19, 50, 29, tzinfo=UTC)),  # the doc's example: 731 days
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)),  # 730 days
        (datetime(2028, 2, 29, 12, 0, tzinfo=UTC), datetime(2030, 2, 28, 12, 0, tzinfo=UTC)),  # .NET AddYears
    ],
)
def test_the_default_end_is_two_calendar_years_after_the_start(start: datetime, end: datetime) -> None:
    assert default_password_end(start) == end == add_years(start, 2)
    world = World()
    app = world.add_application(world.add_tenant("t").tenant_id, "A")
    assert world.add_password(app, start=start).end == end


def test_the_refusal_names_the_tenant_default_policy(sandbox: Sandbox, ids: StandardIds) -> None:
    # the standard tenant's default policy caps passwords at 365 days; the 2-year default exceeds it
    refused = call(sandbox, "POST", f"/applications/{ids.smarttrace_object_id}/addPassword", monitor_token(sandbox, ids), json={})
    assert refused.status_code == 400
    body = refused.json()
    validate_error(body)
    message = f"Credential lifetime exceeds the max value allowed as per assigned policy '{DEFAULT_POLICY_ID}'."
    assert body["error"]["code"] == "CredentialInvalidLifetimeAsPerAppPolicy" and body["error"]["message"] == message
    assert body["error"]["details"] == [{"code": "InvalidKeyEndDate", "message": message, "target": "EndDate"}]
    assert list(body["error"]) == ["code", "message", "details", "innerError"]


def test_an_app_policy_refuses_with_its_own_id_and_is_readable(sandbox: Sandbox, ids: StandardIds) -> None:
    app = sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    app.password_max_lifetime = timedelta(days=90)
    app.policy_id = "538f1913-366a-440a-95a0-e195cb55b282"
    app.policy_name = "Credential lifetime for SmartTrace"
    token = monitor_token(sandbox, ids)
    long = {"passwordCredential": {"endDateTime": (datetime.now(UTC) + timedelta(days=120)).isoformat()}}
    refused = error_of(call(sandbox, "POST", f"/applications/{ids.smarttrace_object_id}/addPassword", token, json=long))
    assert refused["message"] == "Credential lifetime exceeds the max value allowed as per assigned policy '538f1913-366a-440a-95a0-e195cb55b282'."
    assert refused["details"][0]["target"] == "EndDate"

    reader = minted(sandbox, ids, ["Application.Read.All", "Policy.Read.All"])
    for path in (f"/applications/{ids.smarttrace_object_id}/appManagementPolicies", f"/applications(appId='{ids.smarttrace_app_id}')/appManagementPolicies"):
        body = call(sandbox, "GET", path, reader).json()
        assert body["@odata.context"].endswith("/$metadata#policies/appManagementPolicies")
        assert body["value"] == [
            {
                "id": "538f1913-366a-440a-95a0-e195cb55b282",
                "displayName": "Credential lifetime for SmartTrace",
                "description": "Custom policy that enforces app management restrictions on specific applications and service principals.",
                "isEnabled": True,
                "restrictions": {
                    "passwordCredentials": [{"restrictionType": "passwordLifetime", "maxLifetime": "P90D", "restrictForAppsCreatedAfterDateTime": None}],
                    "keyCredentials": [],
                },
            }
        ]
    selected = call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}/appManagementPolicies", reader, params={"$select": "id,displayName"}).json()
    assert selected["value"] == [{"id": "538f1913-366a-440a-95a0-e195cb55b282", "displayName": "Credential lifetime for SmartTrace"}]
    # an app without a policy of its own has none; the tenant default is not listed there
    assert call(sandbox, "GET", f"/applications/{ids.foreign_object_id}/appManagementPolicies", reader).json()["value"] == []


def test_app_policies_need_a_policy_permission(sandbox: Sandbox, ids: StandardIds) -> None:
    path = f"/applications/{ids.smarttrace_object_id}/appManagementPolicies"
    denied = call(sandbox, "GET", path, monitor_token(sandbox, ids))  # OwnedBy and Mail.Send only
    assert denied.status_code == 403 and error_of(denied)["code"] == "Authorization_RequestDenied"
    assert call(sandbox, "GET", path, minted(sandbox, ids, ["Policy.Read.All"])).status_code == 403
    assert call(sandbox, "GET", path, minted(sandbox, ids, ["Application.ReadWrite.OwnedBy", "Policy.Read.ApplicationConfiguration"])).status_code == 200


def test_a_policy_with_only_a_lifetime_gets_a_stable_id_and_scenarios_name_policies(sandbox: Sandbox, ids: StandardIds) -> None:
    app = sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    app.password_max_lifetime = timedelta(days=30)
    policy = app.assigned_policy()
    assert policy is not None and policy == app.assigned_policy() and policy.id != DEFAULT_POLICY_ID
    world, _ = load_scenario(
        {
            "tenants": [
                {
                    "id": "t",
                    "applications": [
                        {"key": "a", "displayName": "A", "appManagementPolicy": {"id": "p-1", "displayName": "Ninety days", "passwordMaxLifetime": "P90D"}},
                        {"key": "b", "displayName": "B", "passwordMaxLifetime": "P30D"},
                    ],
                }
            ]
        }
    )
    a, b = sorted(world.tenant("t").applications.values(), key=lambda x: x.display_name)
    assert a.assigned_policy().id == "p-1" and a.assigned_policy().display_name == "Ninety days"
    assert a.assigned_policy().password_max_lifetime == timedelta(days=90)
    assert b.assigned_policy().password_max_lifetime == timedelta(days=30)
