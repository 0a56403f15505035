"""Graph: Application.ReadWrite.OwnedBy reads everything; owners of applications and
service principals as directoryObject collections (docs/sandbox/fidelity.md)."""

from __future__ import annotations

from typing import Any

from msgraph import GraphServiceClient
from msgraph.generated.models.service_principal import ServicePrincipal as GraphServicePrincipal
from msgraph.generated.models.user import User as GraphUser

from sso_sandbox import Sandbox
from sso_sandbox.scenario import load_scenario
from sso_sandbox.testing import StandardIds
from tests.sandbox.test_graph import call, error_of, minted, monitor_token, validate_entity, with_graph


def _owner_user(sandbox: Sandbox, ids: StandardIds):
    world = sandbox.world
    user = world.add_user(ids.tenant_id, "alex@contoso.example", "Alex Wilber", mail="alex@contoso.example")
    world.add_owner(world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id), user)
    return user


def test_owned_by_reads_apps_it_does_not_own_but_may_not_write_them(sandbox: Sandbox, ids: StandardIds) -> None:
    token = monitor_token(sandbox, ids)  # Application.ReadWrite.OwnedBy, owner of SmartTrace only
    for path in (f"/applications/{ids.foreign_object_id}", f"/applications(appId='{ids.foreign_app_id}')"):
        read = call(sandbox, "GET", path, token)
        assert read.status_code == 200 and read.json()["appId"] == ids.foreign_app_id
        validate_entity("application", read.json())
        denied = call(sandbox, "POST", path + "/addPassword", token, json={})
        assert denied.status_code == 403
        assert error_of(denied) | {"innerError": None} == {
            "code": "Authorization_RequestDenied",
            "message": "Insufficient privileges to complete the operation.",
            "innerError": None,
        }
    foreign_sp = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.foreign_app_id}')/appRoleAssignedTo", token)
    assert foreign_sp.status_code == 200
    assert len(sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.foreign_app_id).password_credentials) == 1


def test_an_app_reads_its_own_application_without_any_permission(sandbox: Sandbox, ids: StandardIds) -> None:
    # "A service principal can retrieve its own application and service principal details
    # without being granted any application permissions" (serviceprincipal-get).
    nothing = minted(sandbox, ids, [])
    assert call(sandbox, "GET", f"/applications(appId='{ids.monitor_app_id}')", nothing).status_code == 200
    assert call(sandbox, "GET", f"/servicePrincipals(appId='{ids.monitor_app_id}')", nothing).status_code == 200
    assert call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", nothing).status_code == 403
    assert call(sandbox, "GET", "/applications", nothing).status_code == 403
    assert call(sandbox, "PATCH", f"/applications(appId='{ids.monitor_app_id}')", nothing, json={"notes": "x"}).status_code == 403


def test_application_owners_are_a_directory_object_collection(sandbox: Sandbox, ids: StandardIds) -> None:
    user = _owner_user(sandbox, ids)
    monitor_sp = sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id)
    reader = minted(sandbox, ids, ["Application.Read.All", "User.Read.All"])
    for path in (f"/applications/{ids.smarttrace_object_id}/owners", f"/applications(appId='{ids.smarttrace_app_id}')/owners"):
        body = call(sandbox, "GET", path, reader).json()
        assert body["@odata.context"].endswith("/$metadata#directoryObjects")
        sp, person = body["value"]
        assert sp["@odata.type"] == "#microsoft.graph.servicePrincipal" and sp["id"] == monitor_sp.object_id
        assert sp["appId"] == ids.monitor_app_id and sp["servicePrincipalType"] == "Application"
        validate_entity("servicePrincipal", sp)
        assert person == {
            "@odata.type": "#microsoft.graph.user",
            "id": user.id,
            "businessPhones": [],
            "displayName": "Alex Wilber",
            "givenName": None,
            "jobTitle": None,
            "mail": "alex@contoso.example",
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None,
            "userPrincipalName": "alex@contoso.example",
        }


def test_owners_keep_odata_type_under_select_and_page_with_top(sandbox: Sandbox, ids: StandardIds) -> None:
    user = _owner_user(sandbox, ids)
    reader = minted(sandbox, ids, ["Application.Read.All", "User.Read.All"])
    path = f"/applications(appId='{ids.smarttrace_app_id}')/owners"
    selected = call(sandbox, "GET", path, reader, params={"$select": "id,displayName,appId"}).json()
    assert selected["@odata.context"].endswith("/$metadata#directoryObjects(id,displayName,appId)")
    sp, person = selected["value"]
    assert set(sp) == {"@odata.type", "id", "displayName", "appId"}
    assert person == {"@odata.type": "#microsoft.graph.user", "id": user.id, "displayName": "Alex Wilber"}  # a user has no appId
    first = call(sandbox, "GET", path, reader, params={"$top": "1", "$select": "id"}).json()
    assert [o["@odata.type"] for o in first["value"]] == ["#microsoft.graph.servicePrincipal"] and "@odata.nextLink" in first
    rest = call(sandbox, "GET", first["@odata.nextLink"].split("/v1.0", 1)[1], reader).json()
    assert rest["value"] == [{"@odata.type": "#microsoft.graph.user", "id": user.id}] and "@odata.nextLink" not in rest
    assert error_of(call(sandbox, "GET", path, reader, params={"$select": "nope"}))["code"] == "Request_BadRequest"


def test_users_among_owners_are_limited_without_a_user_permission(sandbox: Sandbox, ids: StandardIds) -> None:
    # "if it doesn't have permission to read a certain resource type, members of that type are
    # returned but with limited information ... only the @odata.type ... and the id"
    user = _owner_user(sandbox, ids)
    body = call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')/owners", monitor_token(sandbox, ids)).json()
    person = body["value"][1]
    assert person["@odata.type"] == "#microsoft.graph.user" and person["id"] == user.id
    assert all(value is None for key, value in person.items() if key not in ("@odata.type", "id"))
    assert body["value"][0]["displayName"] == "SmartTrace SSO Monitor"  # service principals stay readable


def test_service_principal_owners_and_permissions(sandbox: Sandbox, ids: StandardIds) -> None:
    token = monitor_token(sandbox, ids)
    sp = sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.smarttrace_app_id)
    for path in (f"/servicePrincipals/{sp.object_id}/owners", f"/servicePrincipals(appId='{ids.smarttrace_app_id}')/owners"):
        body = call(sandbox, "GET", path, token).json()
        assert [o["appId"] for o in body["value"]] == [ids.monitor_app_id]
    foreign = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.foreign_app_id}')/owners", token).json()
    assert foreign["value"] == []
    assert call(sandbox, "GET", f"/servicePrincipals(appId='{ids.foreign_app_id}')/owners", minted(sandbox, ids, ["Mail.Send"])).status_code == 403
    missing = call(sandbox, "GET", "/applications(appId='00000000-1111-4222-8333-444444444444')/owners", token)
    assert missing.status_code == 404 and error_of(missing)["code"] == "Request_ResourceNotFound"


def test_owners_inside_batch_and_from_the_sdk(sandbox: Sandbox, ids: StandardIds) -> None:
    user = _owner_user(sandbox, ids)
    token = minted(sandbox, ids, ["Application.ReadWrite.OwnedBy", "User.ReadBasic.All"])
    batch = call(
        sandbox,
        "POST",
        "/$batch",
        token,
        json={
            "requests": [
                {"id": "o", "method": "GET", "url": f"/applications(appId='{ids.smarttrace_app_id}')/owners?$select=id"},
            ]
        },
    ).json()
    [answer] = batch["responses"]
    assert answer["status"] == 200
    assert [o["@odata.type"] for o in answer["body"]["value"]] == ["#microsoft.graph.servicePrincipal", "#microsoft.graph.user"]

    async def owners(client: GraphServiceClient) -> list[Any]:
        page = await client.applications.by_application_id(ids.smarttrace_object_id).owners.get()
        return page.value

    found = with_graph(sandbox, ids, owners)
    assert isinstance(found[0], GraphServicePrincipal) and found[0].app_id == ids.monitor_app_id
    assert isinstance(found[1], GraphUser) and found[1].id == user.id


def test_scenario_owners_may_name_users() -> None:
    scenario = {
        "tenants": [
            {
                "id": "11111111-2222-4333-8444-555555555555",
                "users": [{"upn": "owner@fabrikam.example", "displayName": "App owner"}],
                "applications": [
                    {"key": "monitor", "displayName": "Monitor"},
                    {
                        "key": "app",
                        "displayName": "SmartTrace",
                        "owners": ["monitor", "owner@fabrikam.example"],
                        "servicePrincipal": {"owners": ["owner@fabrikam.example"]},
                    },
                ],
            }
        ],
    }
    world, _ = load_scenario(scenario)
    tenant = world.tenant("11111111-2222-4333-8444-555555555555")
    app = tenant.app_by_app_id(next(a.app_id for a in tenant.applications.values() if a.display_name == "SmartTrace"))
    user = tenant.user("owner@fabrikam.example")
    monitor = next(a for a in tenant.applications.values() if a.display_name == "Monitor")
    assert app.owners == {monitor.app_id} and app.owner_users == {user.id}
    sp = tenant.sp_by_app_id(app.app_id)
    assert sp.owners == set() and sp.owner_users == {user.id}
