"""The sandbox's Microsoft Graph, driven by the real msgraph SDK over HTTPS.

Responses are checked against Microsoft's own OpenAPI description
(reference/graph/msgraph-v1.0-openapi-applications-subset.json) with a strict
validator: objects are closed, so a misspelt or invented property fails too.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

import httpx
import jsonschema
import pytest
import requests
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
from msgraph.generated.applications.item.add_password.add_password_post_request_body import AddPasswordPostRequestBody
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import RemovePasswordPostRequestBody
from msgraph.generated.models.application import Application as GraphApplication
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential as GraphPasswordCredential
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.web_application import WebApplication
from msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder import (
    AppRoleAssignedToRequestBuilder,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph_core import GraphClientFactory

from sso_sandbox import Sandbox
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import AppRoleAssignment, add_years, new_guid
from tests.reference import require_reference

GRAPH = "https://graph.microsoft.com"
SCOPES = ["https://graph.microsoft.com/.default"]

T = TypeVar("T")


# ---------------------------------------------------------------- clients


@asynccontextmanager
async def graph_client(sandbox: Sandbox, ids: StandardIds) -> AsyncIterator[GraphServiceClient]:
    """The msgraph SDK pointed at the sandbox: the construction the production adapter copies."""
    assert sandbox.endpoints is not None
    ca_path = str(sandbox.endpoints.ca_path)
    credential = ClientSecretCredential(
        ids.tenant_id,
        ids.monitor_app_id,
        ids.monitor_secret,
        authority=sandbox.endpoints.authority,
        disable_instance_discovery=True,
        connection_verify=ca_path,
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=SCOPES, allowed_hosts=["127.0.0.1"])
    http_client = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_path), timeout=30))
    adapter = GraphRequestAdapter(auth, client=http_client)
    adapter.base_url = sandbox.endpoints.graph
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http_client.aclose()
        await credential.close()


def with_graph(sandbox: Sandbox, ids: StandardIds, call: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with graph_client(sandbox, ids) as client:
            return await call(client)

    return asyncio.run(main())


def sdk_error(sandbox: Sandbox, ids: StandardIds, call: Callable[[GraphServiceClient], Awaitable[Any]]) -> ODataError:
    with pytest.raises(ODataError) as info:
        with_graph(sandbox, ids, call)
    return info.value


def monitor_token(sandbox: Sandbox, ids: StandardIds) -> str:
    """A token the sandbox's Entra issues to the monitor (client credentials)."""
    assert sandbox.endpoints is not None
    credential = SyncClientSecretCredential(
        ids.tenant_id,
        ids.monitor_app_id,
        ids.monitor_secret,
        authority=sandbox.endpoints.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.endpoints.ca_path),
    )
    try:
        return credential.get_token(*SCOPES).token
    finally:
        credential.close()


def minted(sandbox: Sandbox, ids: StandardIds, roles: list[str], *, app_id: str | None = None, audience: str = GRAPH, **kwargs: Any) -> str:
    return sandbox.mint_token(tenant_id=ids.tenant_id, audience=audience, app_id=app_id or ids.monitor_app_id, roles=roles, **kwargs)


def call(sandbox: Sandbox, method: str, path: str, token: str | None, **kwargs: Any) -> requests.Response:
    assert sandbox.endpoints is not None
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, sandbox.endpoints.graph + path, headers=headers, verify=str(sandbox.endpoints.ca_path), timeout=30, **kwargs)


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    validate_error(body)
    return body["error"]


def future(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# ---------------------------------------------------------------- OpenAPI -> strict JSON Schema

# Refs the subset leaves unresolved (x-refdata-unresolved-refs). Where the reference docs
# describe the type, use that; the rest validate as anything.
SUPPLEMENTS: dict[str, dict[str, Any]] = {
    # docs/resources/implicitgrantsettings.md
    "#/components/schemas/microsoft.graph.implicitGrantSettings": {
        "type": "object",
        "properties": {
            "enableAccessTokenIssuance": {"type": ["boolean", "null"]},
            "enableIdTokenIssuance": {"type": ["boolean", "null"]},
        },
        "additionalProperties": False,
        "patternProperties": {"^@odata\\.": {}},
    },
}
_DROP_KEYS = {"description", "example", "examples", "readOnly", "writeOnly", "discriminator", "externalDocs", "title", "xml"}


@lru_cache(maxsize=1)
def _openapi() -> dict[str, Any]:
    return json.loads(require_reference("graph", "msgraph-v1.0-openapi-applications-subset.json").read_text(encoding="utf-8"))


def _convert(node: Any, doc: dict[str, Any], unresolved: set[str], *, as_property: bool = False) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12, closing every object.

    - ``nullable: true`` becomes a ``"null"`` type (and ``None`` in an enum);
    - ``allOf`` inheritance (entity -> directoryObject -> application) is flattened into one
      object whose properties are the union, and which allows nothing else except OData
      annotations (``@odata.*``). The generator's ``additionalProperties: {type: object}``
      marks open types; taken literally under ``allOf`` it would reject every inherited
      property, so it is replaced by this closed form;
    - a property that is a bare ``$ref`` to a complex type may be null (OData's default,
      which Graph uses: e.g. ``certification: null``); the full msgraph description spells
      this ``anyOf: [$ref, {nullable}]``, the subset does not;
    - refs listed as unresolved validate as ``SUPPLEMENTS`` or anything.
    """
    if isinstance(node, list):
        return [_convert(item, doc, unresolved) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in unresolved or not ref.startswith("#/components/schemas/"):
            target: dict[str, Any] = SUPPLEMENTS.get(ref, {})
        else:
            target = {"$ref": "#/$defs/" + ref.rsplit("/", 1)[-1]}
        return {"anyOf": [target, {"type": "null"}]} if as_property and target else target
    if "allOf" in node or node.get("type") == "object" or "properties" in node:
        return _closed_object(node, doc, unresolved)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or key.startswith("x-") or key == "nullable":
            continue
        if key == "items":
            out[key] = _convert(value, doc, unresolved)
        elif key in ("anyOf", "oneOf"):
            out[key] = [_convert(v, doc, unresolved) for v in value]
        else:
            out[key] = copy.deepcopy(value)
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
        if "type" not in out and "enum" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _flatten_properties(node: dict[str, Any], doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The union of the properties along the allOf chain, and whether every base was known."""
    props: dict[str, Any] = {}
    complete = True
    for part in node.get("allOf", []):
        if "$ref" in part:
            base = doc["components"]["schemas"].get(part["$ref"].rsplit("/", 1)[-1])
            if base is None:  # an unresolved base type (e.g. policyBase): its properties are unknown
                complete = False
                continue
            inherited, known = _flatten_properties(base, doc)
        else:
            inherited, known = _flatten_properties(part, doc)
        props.update(inherited)
        complete = complete and known
    props.update(node.get("properties", {}))
    return props, complete


def _closed_object(node: dict[str, Any], doc: dict[str, Any], unresolved: set[str]) -> dict[str, Any]:
    props, complete = _flatten_properties(node, doc)
    out: dict[str, Any] = {
        "type": ["object", "null"] if node.get("nullable") else "object",
        "properties": {name: _convert(schema, doc, unresolved, as_property=True) for name, schema in props.items()},
    }
    if complete:
        out["additionalProperties"] = False
        out["patternProperties"] = {"^@odata\\.": {}}
    return out


@lru_cache(maxsize=8)
def openapi_validator(type_name: str) -> jsonschema.Draft202012Validator:
    doc = _openapi()
    unresolved = set(doc.get("x-refdata-unresolved-refs", []))
    defs = {name: _convert(schema, doc, unresolved) for name, schema in doc["components"]["schemas"].items()}
    schema = {"$ref": f"#/$defs/microsoft.graph.{type_name}", "$defs": defs}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_entity(type_name: str, body: dict[str, Any]) -> None:
    openapi_validator(type_name).validate(body)


def validate_collection(type_name: str, body: dict[str, Any]) -> None:
    # microsoft.graph.<type>CollectionResponse is unresolved in the subset; its shape is
    # {"@odata.context"?, "@odata.nextLink"?, "value": [<type>]}.
    assert set(body) <= {"@odata.context", "@odata.nextLink", "value"}, body.keys()
    assert isinstance(body["value"], list)
    for item in body["value"]:
        validate_entity(type_name, item)


ERROR_SCHEMA = {
    # docs/concepts/errors.md: {"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "innerError"],
            "properties": {
                "code": {"type": "string", "minLength": 1},
                "message": {"type": "string", "minLength": 1},
                "innerError": {
                    "type": "object",
                    "required": ["date", "request-id"],
                    "properties": {
                        "date": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$"},
                        "request-id": {"type": "string", "pattern": "^[0-9a-f-]{36}$"},
                        "client-request-id": {"type": "string"},
                    },
                },
            },
        }
    },
}


def validate_error(body: dict[str, Any]) -> None:
    jsonschema.validate(body, ERROR_SCHEMA)


# ---------------------------------------------------------------- 1. read, addPassword, removePassword


def test_sdk_reads_the_app_by_app_id_and_rotates_a_password(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world

    async def scenario(client: GraphServiceClient) -> dict[str, Any]:
        app = await client.applications_with_app_id(ids.smarttrace_app_id).get()
        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
            filter=f"appId eq '{ids.smarttrace_app_id}'", select=["id", "appId", "web", "passwordCredentials"]
        )
        listed = await client.applications.get(request_configuration=RequestConfiguration(query_parameters=query))
        body = AddPasswordPostRequestBody(
            password_credential=GraphPasswordCredential(display_name="rotation 2", end_date_time=datetime.now(UTC) + timedelta(days=180))
        )
        # the SDK has no addPassword on applications(appId=...): address the object id just read
        added = await client.applications.by_application_id(app.id).add_password.post(body)
        after_add = await client.applications.by_application_id(ids.smarttrace_object_id).get()
        return {"app": app, "listed": listed, "added": added, "after_add": after_add}

    seen = with_graph(sandbox, ids, scenario)
    app = seen["app"]
    assert app.id == ids.smarttrace_object_id and app.app_id == ids.smarttrace_app_id
    assert app.web.logout_url == "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme"
    assert app.web.redirect_uris == ["https://api.smarttrace.ai/v1/auth/callback/azure/acme"]
    assert app.web.implicit_grant_settings.enable_id_token_issuance is True
    assert app.web.implicit_grant_settings.enable_access_token_issuance is True
    assert [str(p.key_id) for p in app.password_credentials] == [ids.smarttrace_key_id]
    assert all(p.secret_text is None for p in app.password_credentials)

    assert [a.id for a in seen["listed"].value] == [ids.smarttrace_object_id]
    assert seen["listed"].value[0].display_name is None  # not selected

    added = seen["added"]
    assert added.secret_text and added.hint == added.secret_text[:3] and added.display_name == "rotation 2"
    stored = world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id).credential(str(added.key_id))
    assert stored is not None and stored.secret_text == added.secret_text
    assert added.secret_text in world.issued_secrets
    assert abs((stored.end - stored.start) - timedelta(days=180)) < timedelta(seconds=5)
    listed_after = {str(p.key_id): p for p in seen["after_add"].password_credentials}
    assert listed_after[str(added.key_id)].secret_text is None and listed_after[str(added.key_id)].hint == added.hint

    result = with_graph(
        sandbox,
        ids,
        lambda c: c.applications.by_application_id(ids.smarttrace_object_id).remove_password.post(RemovePasswordPostRequestBody(key_id=added.key_id)),
    )
    assert result is None  # 204
    assert world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id).credential(str(added.key_id)) is None
    assert world.count_requests("graph", "POST", "removePassword") == 1


def test_add_password_wire_shape_and_default_lifetime(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.tenant(ids.tenant_id).password_max_lifetime = None  # no policy: the 2-year default applies
    token = monitor_token(sandbox, ids)
    response = call(sandbox, "POST", f"/applications/{ids.smarttrace_object_id}/addPassword", token, json={"passwordCredential": {"displayName": "d"}})
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("/$metadata#microsoft.graph.passwordCredential")
    assert set(body) == {"@odata.context", "customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"}
    assert body["customKeyIdentifier"] is None and body["hint"] == body["secretText"][:3]
    start, end = datetime.fromisoformat(body["startDateTime"]), datetime.fromisoformat(body["endDateTime"])
    # "startDateTime + 2 years": calendar years, as the doc's example (2019-09-09 to 2021-09-09)
    assert end == add_years(start, 2) and (end - start).days in (730, 731)
    assert len(body["secretText"]) == 40 and body["secretText"][3:6] == "8Q~"
    validate_entity("passwordCredential", body)
    # an empty body is allowed too (passwordCredential is optional)
    assert call(sandbox, "POST", f"/applications(appId='{ids.smarttrace_app_id}')/addPassword", token).status_code == 200


# ---------------------------------------------------------------- 2. app management policy


def test_policy_caps_password_lifetime(sandbox: Sandbox, ids: StandardIds) -> None:
    tenant = sandbox.world.tenant(ids.tenant_id)
    assert tenant.password_max_lifetime == timedelta(days=365)
    before = len(tenant.app_by_app_id(ids.smarttrace_app_id).password_credentials)

    def add(days: float | None) -> Callable[[GraphServiceClient], Awaitable[Any]]:
        end = datetime.now(UTC) + timedelta(days=days) if days is not None else None
        body = AddPasswordPostRequestBody(password_credential=GraphPasswordCredential(display_name="p", end_date_time=end))
        return lambda c: c.applications.by_application_id(ids.smarttrace_object_id).add_password.post(body)

    too_long = sdk_error(sandbox, ids, add(400))
    assert too_long.response_status_code == 400
    assert too_long.error.code == "CredentialInvalidLifetimeAsPerAppPolicy"
    assert "max value allowed as per assigned policy" in too_long.error.message
    # the 2-year default is beyond the tenant's 365 days as well
    assert sdk_error(sandbox, ids, add(None)).error.code == "CredentialInvalidLifetimeAsPerAppPolicy"
    assert len(tenant.app_by_app_id(ids.smarttrace_app_id).password_credentials) == before

    ok = with_graph(sandbox, ids, add(300))
    assert ok.secret_text

    token = monitor_token(sandbox, ids)
    app = tenant.app_by_app_id(ids.smarttrace_app_id)
    path = f"/applications/{ids.smarttrace_object_id}/addPassword"
    # an app-level policy overrides the tenant default, both ways
    app.password_max_lifetime = timedelta(days=30)
    assert (
        error_of(call(sandbox, "POST", path, token, json={"passwordCredential": {"endDateTime": future(60)}}))["code"]
        == "CredentialInvalidLifetimeAsPerAppPolicy"
    )
    assert call(sandbox, "POST", path, token, json={"passwordCredential": {"endDateTime": future(20)}}).status_code == 200
    app.password_max_lifetime = timedelta(days=800)
    assert call(sandbox, "POST", path, token, json={"passwordCredential": {"endDateTime": future(700)}}).status_code == 200
    app.password_max_lifetime = None
    # the tenant policy: disabled, or only for apps created after a date
    tenant.policy_enabled = False
    assert call(sandbox, "POST", path, token, json={"passwordCredential": {"endDateTime": future(700)}}).status_code == 200
    tenant.policy_enabled = True
    tenant.policy_restrict_after = app.created + timedelta(days=1)
    assert call(sandbox, "POST", path, token, json={"passwordCredential": {"endDateTime": future(700)}}).status_code == 200
    tenant.policy_restrict_after = app.created - timedelta(days=1)
    assert call(sandbox, "POST", path, token, json={"passwordCredential": {"endDateTime": future(700)}}).status_code == 400
    # the lifetime counts from startDateTime
    start = datetime.now(UTC) + timedelta(days=100)
    spec = {"startDateTime": start.isoformat(), "endDateTime": (start + timedelta(days=360)).isoformat()}
    assert call(sandbox, "POST", path, token, json={"passwordCredential": spec}).status_code == 200
    bad_dates = call(sandbox, "POST", path, token, json={"passwordCredential": {"endDateTime": "next year"}})
    assert bad_dates.status_code == 400


def test_default_app_management_policy(sandbox: Sandbox, ids: StandardIds) -> None:
    tenant = sandbox.world.tenant(ids.tenant_id)
    tenant.policy_restrict_after = datetime(2024, 1, 1, tzinfo=UTC)
    response = call(sandbox, "GET", "/policies/defaultAppManagementPolicy", minted(sandbox, ids, ["Policy.Read.All"]))
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("/$metadata#policies/defaultAppManagementPolicy/$entity")
    assert body["isEnabled"] is True
    assert body["applicationRestrictions"]["passwordCredentials"] == [
        {"restrictionType": "passwordLifetime", "maxLifetime": "P365D", "restrictForAppsCreatedAfterDateTime": "2024-01-01T00:00:00Z"}
    ]
    assert body["applicationRestrictions"]["keyCredentials"] == []
    assert body["servicePrincipalRestrictions"] == {"passwordCredentials": [], "keyCredentials": []}
    assert call(sandbox, "GET", "/policies/defaultAppManagementPolicy", minted(sandbox, ids, ["Policy.Read.ApplicationConfiguration"])).status_code == 200
    denied = call(sandbox, "GET", "/policies/defaultAppManagementPolicy", monitor_token(sandbox, ids))
    assert denied.status_code == 403 and error_of(denied)["code"] == "Authorization_RequestDenied"


# ---------------------------------------------------------------- 3. permission model


def test_owned_by_permission_model(sandbox: Sandbox, ids: StandardIds) -> None:
    patch = GraphApplication(web=WebApplication(logout_url="https://evil.example/logout"))
    write = sdk_error(sandbox, ids, lambda c: c.applications.by_application_id(ids.foreign_object_id).patch(patch))
    assert write.response_status_code == 403 and write.error.code == "Authorization_RequestDenied"
    assert write.error.message == "Insufficient privileges to complete the operation."
    add = sdk_error(sandbox, ids, lambda c: c.applications.by_application_id(ids.foreign_object_id).add_password.post(AddPasswordPostRequestBody()))
    assert add.response_status_code == 403 and add.error.code == "Authorization_RequestDenied"

    # OwnedBy reads every app: only writes need ownership (docs issues #17416, #15850; serviceprincipal-get)
    read = with_graph(sandbox, ids, lambda c: c.applications_with_app_id(ids.foreign_app_id).get())
    assert read.id == ids.foreign_object_id and read.password_credentials and read.password_credentials[0].secret_text is None
    read_by_id = with_graph(sandbox, ids, lambda c: c.applications.by_application_id(ids.foreign_object_id).get())
    assert read_by_id.app_id == ids.foreign_app_id

    query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(filter=f"appId eq '{ids.foreign_app_id}'")
    listed = with_graph(sandbox, ids, lambda c: c.applications.get(request_configuration=RequestConfiguration(query_parameters=query)))
    assert [a.app_id for a in listed.value] == [ids.foreign_app_id]

    unknown = new_guid()
    missing = sdk_error(sandbox, ids, lambda c: c.applications_with_app_id(unknown).get())
    assert missing.response_status_code == 404 and missing.error.code == "Request_ResourceNotFound"
    assert missing.error.message == f"Resource '{unknown}' does not exist or one of its queried reference-property objects are not present."
    assert sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.foreign_app_id).web == {}

    token = monitor_token(sandbox, ids)
    # the list without a filter shows every app in the tenant
    everything = call(sandbox, "GET", "/applications", token).json()
    assert {a["appId"] for a in everything["value"]} == {a.app_id for a in sandbox.world.tenant(ids.tenant_id).applications.values()}
    # service principals: every one is readable, owned or not
    own_sp = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.smarttrace_app_id}')", token)
    assert own_sp.status_code == 200 and own_sp.json()["appRoleAssignmentRequired"] is True
    foreign_sp = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.foreign_app_id}')", token)
    assert foreign_sp.status_code == 200 and foreign_sp.json()["appId"] == ids.foreign_app_id
    assert [s["appId"] for s in call(sandbox, "GET", "/servicePrincipals", token, params={"$filter": f"appId eq '{ids.foreign_app_id}'"}).json()["value"]] == [
        ids.foreign_app_id
    ]
    assert call(sandbox, "GET", f"/servicePrincipals(appId='{unknown}')", token).status_code == 404
    # writes on a foreign app stay 403 over raw HTTP too, by either address
    for path in (f"/applications/{ids.foreign_object_id}", f"/applications(appId='{ids.foreign_app_id}')"):
        denied = call(sandbox, "PATCH", path, token, json={"notes": "x"})
        assert denied.status_code == 403 and error_of(denied)["message"] == "Insufficient privileges to complete the operation."
        assert call(sandbox, "POST", path + "/removePassword", token, json={"keyId": new_guid()}).status_code == 403


def test_read_all_reads_but_does_not_write_and_tenants_are_separate(sandbox: Sandbox, ids: StandardIds) -> None:
    reader = minted(sandbox, ids, ["Application.Read.All"])
    assert call(sandbox, "GET", f"/applications(appId='{ids.foreign_app_id}')", reader).status_code == 200
    assert call(sandbox, "GET", f"/servicePrincipals(appId='{ids.foreign_app_id}')", reader).status_code == 200
    denied = call(sandbox, "PATCH", f"/applications/{ids.foreign_object_id}", reader, json={"notes": "x"})
    assert denied.status_code == 403 and error_of(denied)["code"] == "Authorization_RequestDenied"
    writer = minted(sandbox, ids, ["Application.ReadWrite.All"])
    assert call(sandbox, "PATCH", f"/applications/{ids.foreign_object_id}", writer, json={"notes": "x"}).status_code == 204
    assert sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.foreign_app_id).notes == "x"
    # no directory permission at all
    mail_only = minted(sandbox, ids, ["Mail.Send"])
    assert error_of(call(sandbox, "GET", "/applications", mail_only))["code"] == "Authorization_RequestDenied"
    # another tenant's app is invisible, even to Application.ReadWrite.All
    other = sandbox.world.add_tenant("11111111-2222-4333-8444-555555555555", "Fabrikam")
    theirs = sandbox.world.add_application(other.tenant_id, "Theirs", owners={ids.monitor_app_id})
    for path in (f"/applications(appId='{theirs.app_id}')", f"/applications/{theirs.object_id}"):
        response = call(sandbox, "GET", path, writer)
        assert response.status_code == 404 and error_of(response)["code"] == "Request_ResourceNotFound"
    assert call(sandbox, "GET", "/applications", writer, params={"$filter": f"appId eq '{theirs.app_id}'"}).json()["value"] == []


def test_patch_application(sandbox: Sandbox, ids: StandardIds) -> None:
    app = sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    new_logout = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme2"
    patch = GraphApplication(web=WebApplication(logout_url=new_logout), notes="rotated by the monitor")
    assert with_graph(sandbox, ids, lambda c: c.applications_with_app_id(ids.smarttrace_app_id).patch(patch)) is None
    assert app.web["logoutUrl"] == new_logout and app.notes == "rotated by the monitor"
    assert app.web["redirectUris"] == ["https://api.smarttrace.ai/v1/auth/callback/azure/acme"]  # merged, not replaced
    assert app.web["implicitGrantSettings"] == {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True}

    token = monitor_token(sandbox, ids)
    path = f"/applications/{ids.smarttrace_object_id}"
    for bad in ("http://api.smarttrace.ai/logout", "https://api.smarttrace.ai/" + "x" * 240, "not a url", 42):
        response = call(sandbox, "PATCH", path, token, json={"web": {"logoutUrl": bad}})
        assert response.status_code == 400, bad
        validate_error(response.json())
    assert app.web["logoutUrl"] == new_logout
    exactly_255 = "https://api.smarttrace.ai/" + "x" * (255 - len("https://api.smarttrace.ai/"))
    assert call(sandbox, "PATCH", path, token, json={"web": {"logoutUrl": exactly_255}}).status_code == 204
    assert call(sandbox, "PATCH", path, token, json={"web": {"implicitGrantSettings": {"enableAccessTokenIssuance": False}}}).status_code == 204
    assert app.web["implicitGrantSettings"] == {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": False}
    assert call(sandbox, "PATCH", path, token, json={"web": {"redirectUris": ["https://a.example/cb", "http://localhost:8080/cb"]}}).status_code == 204
    assert call(sandbox, "PATCH", path, token, json={"web": {"redirectUris": ["http://a.example/cb"]}}).status_code == 400
    unknown = call(sandbox, "PATCH", path, token, json={"logoutUrl": new_logout})
    assert unknown.status_code == 400 and "does not exist on type 'microsoft.graph.application'" in error_of(unknown)["message"]
    assert call(sandbox, "PATCH", path, token, json={"appId": new_guid()}).status_code == 400
    assert call(sandbox, "PATCH", path, token, json={"passwordCredentials": []}).status_code == 400
    assert call(sandbox, "PATCH", path, token, data=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400


# ---------------------------------------------------------------- 4. authentication


def test_authentication_is_required_and_checked(sandbox: Sandbox, ids: StandardIds) -> None:
    path = f"/applications(appId='{ids.smarttrace_app_id}')"
    empty = call(sandbox, "GET", path, None)
    assert empty.status_code == 401
    assert error_of(empty)["code"] == "InvalidAuthenticationToken" and error_of(empty)["message"] == "Access token is empty."
    assert empty.headers["WWW-Authenticate"].startswith("Bearer ")
    assert call(sandbox, "POST", "/$batch", None, json={"requests": []}).status_code == 401

    garbage = call(sandbox, "GET", path, "not-a-token")
    assert garbage.status_code == 401 and error_of(garbage)["code"] == "InvalidAuthenticationToken"
    roles = ["Application.ReadWrite.All"]
    vault = call(sandbox, "GET", path, minted(sandbox, ids, roles, audience="https://vault.azure.net"))
    assert vault.status_code == 401 and "audience" in error_of(vault)["message"].lower()
    expired = minted(sandbox, ids, roles, now=datetime.now(UTC) - timedelta(hours=3))
    assert call(sandbox, "GET", path, expired).status_code == 401
    for key in ("untrusted", "tampered"):
        assert call(sandbox, "GET", path, minted(sandbox, ids, roles, key=key)).status_code == 401
    assert call(sandbox, "GET", path, minted(sandbox, ids, roles, algorithm="none")).status_code == 401
    # both spellings of Graph's audience are accepted
    assert call(sandbox, "GET", path, minted(sandbox, ids, roles, audience="00000003-0000-0000-c000-000000000000")).status_code == 200
    assert sandbox.world.requests[-1].caller == ids.monitor_app_id


# ---------------------------------------------------------------- 5. OpenAPI conformance


def test_responses_conform_to_the_openapi_description(sandbox: Sandbox, ids: StandardIds) -> None:
    token = minted(sandbox, ids, ["Application.Read.All"])
    app = call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token)
    assert app.status_code == 200 and app.headers["Content-Type"].startswith("application/json")
    body = app.json()
    assert body["@odata.context"].endswith("/$metadata#applications/$entity")
    validate_entity("application", body)
    for credential in body["passwordCredentials"]:
        validate_entity("passwordCredential", credential)
        assert credential["secretText"] is None

    listed = call(sandbox, "GET", "/applications", token).json()
    assert listed["@odata.context"].endswith("/$metadata#applications")
    validate_collection("application", listed)
    assert len(listed["value"]) == len(sandbox.world.tenant(ids.tenant_id).applications)

    selected = call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}", token, params={"$select": "id,appId,web"}).json()
    assert set(selected) == {"@odata.context", "id", "appId", "web"}
    assert selected["@odata.context"].endswith("/$metadata#applications(id,appId,web)/$entity")
    validate_entity("application", selected)

    sp = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.smarttrace_app_id}')", token).json()
    validate_entity("servicePrincipal", sp)
    for key in ("accountEnabled", "appRoleAssignmentRequired", "appId", "displayName", "id", "servicePrincipalType"):
        assert key in sp
    sps = call(
        sandbox, "GET", "/servicePrincipals", token, params={"$filter": f"appId eq '{ids.smarttrace_app_id}'", "$select": "id,appId,accountEnabled"}
    ).json()
    validate_collection("servicePrincipal", sps)
    assert [s["id"] for s in sps["value"]] == [sp["id"]]
    assigned = call(sandbox, "GET", f"/servicePrincipals/{sp['id']}/appRoleAssignedTo", token).json()
    validate_collection("appRoleAssignment", assigned)
    assert assigned["value"][0]["principalType"] == "Group"

    missing = call(sandbox, "GET", f"/applications/{new_guid()}", token)
    assert missing.status_code == 404
    validate_error(missing.json())
    error = missing.json()["error"]
    assert error["innerError"]["request-id"] == missing.headers["request-id"]


def test_the_validator_is_not_vacuous(sandbox: Sandbox, ids: StandardIds) -> None:
    token = minted(sandbox, ids, ["Application.Read.All"])
    good = call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token).json()
    validate_entity("application", good)
    breakages: list[Callable[[dict[str, Any]], None]] = [
        lambda a: a.update(displayName=5),
        lambda a: a.update(identifierUris="api://x"),
        lambda a: a.update(inventedProperty=True),
        lambda a: a["web"].update(logoutURL="https://x.example"),  # misspelt
        lambda a: a["web"].update(redirectUris=[1]),
        lambda a: a["web"]["implicitGrantSettings"].update(enableIdTokenIssuance="yes"),
        lambda a: a["passwordCredentials"][0].update(keyId="not-a-guid"),
        lambda a: a["passwordCredentials"][0].update(endDateTime="2025-13-01T00:00:00Z"),
        lambda a: a.update(createdDateTime="yesterday"),
        lambda a: a.update(isFallbackPublicClient="false"),
    ]
    for breakage in breakages:
        broken = copy.deepcopy(good)
        breakage(broken)
        with pytest.raises(jsonschema.ValidationError):
            validate_entity("application", broken)
    sp = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.smarttrace_app_id}')", token).json()
    with pytest.raises(jsonschema.ValidationError):
        validate_entity("servicePrincipal", {**sp, "accountEnabled": "true"})
    with pytest.raises(jsonschema.ValidationError):
        validate_entity("appRoleAssignment", {"id": "x", "principalId": "nope"})
    with pytest.raises(jsonschema.ValidationError):
        validate_error({"error": {"code": "X", "message": "m"}})


def test_filter_and_select_errors(sandbox: Sandbox, ids: StandardIds) -> None:
    token = minted(sandbox, ids, ["Application.Read.All"])
    both = call(sandbox, "GET", "/applications", token, params={"$filter": f"appId in ('{ids.smarttrace_app_id}', '{ids.foreign_app_id}')"}).json()
    assert {a["appId"] for a in both["value"]} == {ids.smarttrace_app_id, ids.foreign_app_id}
    by_name = call(sandbox, "GET", "/applications", token, params={"$filter": "displayName eq 'Payroll'"}).json()
    assert [a["appId"] for a in by_name["value"]] == [ids.foreign_app_id]
    unsupported = call(sandbox, "GET", "/applications", token, params={"$filter": "notes eq 'x'"})
    assert unsupported.status_code == 400 and error_of(unsupported)["code"] == "Request_UnsupportedQuery"
    assert error_of(call(sandbox, "GET", "/applications", token, params={"$filter": "startswith(displayName,'P')"}))["code"] == "Request_UnsupportedQuery"
    assert call(sandbox, "GET", "/applications", token, params={"$filter": "appId eq"}).status_code == 400
    bad_select = call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}", token, params={"$select": "id,nope"})
    assert bad_select.status_code == 400 and "nope" in error_of(bad_select)["message"]
    bad_id = call(sandbox, "GET", "/applications/not-a-guid", token)
    assert bad_id.status_code == 400 and error_of(bad_id)["code"] == "Request_BadRequest"
    assert call(sandbox, "GET", "/nothingHere", token).status_code == 400


# ---------------------------------------------------------------- 6. $batch


def _batch_entries(ids: StandardIds, count: int) -> list[dict[str, Any]]:
    return [
        {"id": str(n), "method": "GET", "url": f"/applications(appId='{ids.smarttrace_app_id}')?$select=id,appId,passwordCredentials"}
        for n in range(1, count + 1)
    ]


def test_batch_limits_and_inner_dispatch(sandbox: Sandbox, ids: StandardIds) -> None:
    token = monitor_token(sandbox, ids)
    ok = call(sandbox, "POST", "/$batch", token, json={"requests": _batch_entries(ids, 20)})
    assert ok.status_code == 200
    answers = ok.json()["responses"]
    assert sorted(int(a["id"]) for a in answers) == list(range(1, 21))
    for answer in answers:
        assert answer["status"] == 200
        assert answer["body"]["appId"] == ids.smarttrace_app_id and set(answer["body"]) == {"@odata.context", "id", "appId", "passwordCredentials"}
        validate_entity("application", answer["body"])

    too_many = call(sandbox, "POST", "/$batch", token, json={"requests": _batch_entries(ids, 21)})
    assert too_many.status_code == 400
    assert error_of(too_many)["code"] == "BadRequest" and "20" in error_of(too_many)["message"]

    mixed = call(
        sandbox,
        "POST",
        "/$batch",
        token,
        json={
            "requests": [
                {"id": "own", "method": "GET", "url": f"applications(appId='{ids.smarttrace_app_id}')"},
                {"id": "foreign", "method": "GET", "url": f"/applications(appId='{ids.foreign_app_id}')"},
                {
                    "id": "foreign-write",
                    "method": "PATCH",
                    "url": f"/applications/{ids.foreign_object_id}",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"notes": "not ours"},
                },
                {
                    "id": "add",
                    "method": "POST",
                    "url": f"/applications/{ids.smarttrace_object_id}/addPassword",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"passwordCredential": {"displayName": "batched", "endDateTime": future(30)}},
                },
                {"id": "nested", "method": "POST", "url": "/$batch", "headers": {"Content-Type": "application/json"}, "body": {"requests": []}},
            ]
        },
    ).json()
    by_id = {a["id"]: a for a in mixed["responses"]}
    assert by_id["own"]["status"] == 200
    assert by_id["foreign"]["status"] == 200 and by_id["foreign"]["body"]["appId"] == ids.foreign_app_id  # OwnedBy reads all
    assert by_id["foreign-write"]["status"] == 403 and by_id["foreign-write"]["body"]["error"]["code"] == "Authorization_RequestDenied"
    validate_error(by_id["foreign-write"]["body"])
    assert by_id["add"]["status"] == 200 and by_id["add"]["body"]["secretText"]
    assert sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id).credential(by_id["add"]["body"]["keyId"]) is not None
    assert by_id["nested"]["status"] == 400
    # inner requests are recorded with their own method and path
    assert sandbox.world.count_requests("graph", "POST", "/addPassword", inner=True) == 1
    assert sandbox.world.count_requests("graph", "POST", "/addPassword") == 0  # not an HTTP request of its own


def test_batch_inner_faults_and_dependencies(sandbox: Sandbox, ids: StandardIds) -> None:
    token = monitor_token(sandbox, ids)
    sandbox.faults.add("throttle", service="graph", path="/v1.0/applications*", times=2, retry_after=1)
    entries = _batch_entries(ids, 4) + [{"id": "sp", "method": "GET", "url": f"/servicePrincipals(appId='{ids.smarttrace_app_id}')"}]
    response = call(sandbox, "POST", "/$batch", token, json={"requests": entries})
    assert response.status_code == 200
    statuses = {a["id"]: a for a in response.json()["responses"]}
    throttled = [a for a in statuses.values() if a["status"] == 429]
    assert len(throttled) == 2
    for answer in throttled:
        assert answer["headers"]["Retry-After"] == "1"
        assert answer["body"]["error"]["code"] == "TooManyRequests"
    assert sum(1 for a in statuses.values() if a["status"] == 200) == 3
    assert statuses["sp"]["status"] == 200

    # a failed request fails its dependants with 424, transitively; independent ones run
    unknown = new_guid()
    chained = call(
        sandbox,
        "POST",
        "/$batch",
        token,
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/applications(appId='{unknown}')"},
                {
                    "id": "2",
                    "method": "POST",
                    "url": f"/applications/{ids.smarttrace_object_id}/addPassword",
                    "dependsOn": ["1"],
                    "headers": {"Content-Type": "application/json"},
                    "body": {"passwordCredential": {"endDateTime": future(30)}},
                },
                {"id": "3", "method": "GET", "url": "/servicePrincipals", "dependsOn": ["2"]},
                {"id": "4", "method": "GET", "url": f"/applications/{ids.smarttrace_object_id}?$select=id"},
            ]
        },
    ).json()
    by_id = {a["id"]: a for a in chained["responses"]}
    assert by_id["1"]["status"] == 404 and by_id["1"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["2"]["status"] == 424 and by_id["3"]["status"] == 424
    validate_error(by_id["2"]["body"])
    assert by_id["4"]["status"] == 200
    assert len(sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id).password_credentials) == 1

    sandbox.faults.add("throttle", service="graph", path="/v1.0/applications*", times=1, retry_after=2.5)
    throttled_dep = call(
        sandbox,
        "POST",
        "/$batch",
        token,
        json={
            "requests": [
                {"id": "a", "method": "GET", "url": f"/applications(appId='{ids.smarttrace_app_id}')"},
                {"id": "b", "method": "GET", "url": "/servicePrincipals", "dependsOn": ["a"]},
            ]
        },
    ).json()
    by_id = {a["id"]: a for a in throttled_dep["responses"]}
    assert by_id["a"]["status"] == 429 and by_id["a"]["headers"]["Retry-After"] == "2.500"
    assert by_id["b"]["status"] == 424

    bad_dependency = call(sandbox, "POST", "/$batch", token, json={"requests": [{"id": "x", "method": "GET", "url": "/applications", "dependsOn": ["y"]}]})
    assert bad_dependency.status_code == 400
    no_content_type = call(
        sandbox,
        "POST",
        "/$batch",
        token,
        json={
            "requests": [
                {"id": "x", "method": "POST", "url": f"/applications/{ids.smarttrace_object_id}/removePassword", "body": {"keyId": ids.smarttrace_key_id}}
            ]
        },
    )
    assert no_content_type.status_code == 400
    assert sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id).credential(ids.smarttrace_key_id) is not None

    # latency rules delay inner requests too
    sandbox.faults.add("latency", service="graph", path="/v1.0/servicePrincipals*", latency_ms=300, times=1)
    started = time.monotonic()
    slow = call(sandbox, "POST", "/$batch", token, json={"requests": [{"id": "s", "method": "GET", "url": "/servicePrincipals"}]})
    assert slow.status_code == 200 and time.monotonic() - started >= 0.3


def test_outer_throttle_has_graphs_429_shape(sandbox: Sandbox, ids: StandardIds) -> None:
    token = monitor_token(sandbox, ids)
    sandbox.faults.add("throttle", service="graph", path="/v1.0/applications*", times=1, retry_after=2)
    response = call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token)
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    body = response.json()
    assert body["error"]["code"] == "TooManyRequests" and body["error"]["message"] == "Please retry again later."
    assert body["error"]["innerError"]["status"] == "429"
    assert call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token).status_code == 200


# ---------------------------------------------------------------- 7. removePassword errors, sendMail


def test_remove_password_of_an_unknown_key(sandbox: Sandbox, ids: StandardIds) -> None:
    unknown = new_guid()
    error = sdk_error(
        sandbox,
        ids,
        lambda c: c.applications.by_application_id(ids.smarttrace_object_id).remove_password.post(RemovePasswordPostRequestBody(key_id=unknown)),
    )
    assert error.response_status_code == 400 and error.error.code == "Request_BadRequest"
    assert unknown in error.error.message
    token = monitor_token(sandbox, ids)
    path = f"/applications/{ids.smarttrace_object_id}/removePassword"
    assert call(sandbox, "POST", path, token, json={"keyId": "nope"}).status_code == 400
    assert call(sandbox, "POST", path, token, json={}).status_code == 400
    assert (
        call(sandbox, "POST", f"/applications(appId='{ids.smarttrace_app_id}')/removePassword", token, json={"keyId": ids.smarttrace_key_id}).status_code == 204
    )
    assert sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id).password_credentials == []


def test_send_mail(sandbox: Sandbox, ids: StandardIds) -> None:
    message = Message(
        subject="SmartTrace SSO secret expires in 14 days",
        body=ItemBody(content_type=BodyType.Text, content="Rotate it."),
        to_recipients=[Recipient(email_address=EmailAddress(address="ops@contoso.example"))],
    )
    body = SendMailPostRequestBody(message=message, save_to_sent_items=False)
    assert with_graph(sandbox, ids, lambda c: c.users.by_user_id(ids.mailbox).send_mail.post(body)) is None
    [mail] = sandbox.world.mail
    assert mail.via == "graph" and mail.sender == ids.mailbox and mail.recipients == ["ops@contoso.example"]
    assert mail.subject == "SmartTrace SSO secret expires in 14 days"
    assert mail.body["body"] == {"contentType": "text", "content": "Rotate it."}

    token = monitor_token(sandbox, ids)
    user_id = next(iter(sandbox.world.tenant(ids.tenant_id).users))
    raw = {
        "message": {
            "subject": "s",
            "body": {"contentType": "HTML", "content": "<b>x</b>"},
            "toRecipients": [{"emailAddress": {"address": "a@contoso.example"}}],
            "ccRecipients": [{"emailAddress": {"address": "b@contoso.example"}}],
        },
        "saveToSentItems": "false",
    }
    sent = call(sandbox, "POST", f"/users/{user_id}/sendMail", token, json=raw)
    assert sent.status_code == 202 and sent.content == b""
    assert sandbox.world.mail[-1].recipients == ["a@contoso.example", "b@contoso.example"]

    no_role = call(sandbox, "POST", f"/users/{ids.mailbox}/sendMail", minted(sandbox, ids, ["Application.ReadWrite.OwnedBy"]), json=raw)
    assert no_role.status_code == 403 and error_of(no_role)["code"] == "ErrorAccessDenied"
    unknown = call(sandbox, "POST", "/users/nobody@contoso.example/sendMail", token, json=raw)
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "ErrorInvalidUser"
    no_recipients = call(sandbox, "POST", f"/users/{ids.mailbox}/sendMail", token, json={"message": {"subject": "s"}})
    assert no_recipients.status_code == 400 and error_of(no_recipients)["code"] == "ErrorInvalidRecipients"
    assert call(sandbox, "POST", f"/users/{ids.mailbox}/sendMail", token, json={"saveToSentItems": True}).status_code == 400
    bad_kind = {"message": {**raw["message"], "body": {"contentType": "Markdown", "content": "x"}}}
    assert call(sandbox, "POST", f"/users/{ids.mailbox}/sendMail", token, json=bad_kind).status_code == 400
    assert call(sandbox, "POST", f"/users/{ids.mailbox}/sendMail", token, data=b"{", headers={"Content-Type": "application/json"}).status_code == 400

    mime = base64.b64encode(b"From: sso-monitor@contoso.example\r\nTo: c@contoso.example\r\nSubject: MIME alert\r\n\r\nbody\r\n")
    assert call(sandbox, "POST", f"/users/{ids.mailbox}/sendMail", token, data=mime, headers={"Content-Type": "text/plain"}).status_code == 202
    assert sandbox.world.mail[-1].subject == "MIME alert" and sandbox.world.mail[-1].recipients == ["c@contoso.example"]
    bad_mime = call(sandbox, "POST", f"/users/{ids.mailbox}/sendMail", token, data=b"%%% not base64", headers={"Content-Type": "text/plain"})
    assert bad_mime.status_code == 400 and error_of(bad_mime)["code"] == "ErrorMimeContentInvalidBase64String"
    assert len(sandbox.world.mail) == 3


# ---------------------------------------------------------------- 8. paging


def test_app_role_assigned_to_pages_with_top(sandbox: Sandbox, ids: StandardIds) -> None:
    tenant = sandbox.world.tenant(ids.tenant_id)
    sp = tenant.sp_by_app_id(ids.smarttrace_app_id)
    for n in range(5):
        sp.assigned_to.append(
            AppRoleAssignment(
                id=new_guid(),
                principal_id=new_guid(),
                principal_type="User",
                principal_display_name=f"User {n}",
                resource_id=sp.object_id,
                resource_display_name=sp.display_name,
                app_role_id="00000000-0000-0000-0000-000000000000",
                created=sandbox.world.now() + timedelta(seconds=n),
            )
        )

    async def pages(client: GraphServiceClient) -> list[Any]:
        query = AppRoleAssignedToRequestBuilder.AppRoleAssignedToRequestBuilderGetQueryParameters(top=4)
        builder = client.service_principals.by_service_principal_id(sp.object_id).app_role_assigned_to
        first = await builder.get(request_configuration=RequestConfiguration(query_parameters=query))
        second = await builder.with_url(first.odata_next_link).get()
        return [first, second]

    first, second = with_graph(sandbox, ids, pages)
    assert len(first.value) == 4 and first.odata_next_link
    assert len(second.value) == 2 and second.odata_next_link is None
    names = [a.principal_display_name for a in first.value + second.value]
    assert names == ["Plant staff"] + [f"User {n}" for n in range(5)]

    token = monitor_token(sandbox, ids)
    raw = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.smarttrace_app_id}')/appRoleAssignedTo", token, params={"$top": "6"}).json()
    assert "@odata.nextLink" not in raw and len(raw["value"]) == 6
    assert raw["@odata.context"].endswith(f"/$metadata#servicePrincipals('{sp.object_id}')/appRoleAssignedTo")
    assert call(sandbox, "GET", f"/servicePrincipals/{sp.object_id}/appRoleAssignedTo", token, params={"$top": "0"}).status_code == 400
    assert call(sandbox, "GET", f"/servicePrincipals/{sp.object_id}/appRoleAssignedTo", token, params={"$skiptoken": "garbage"}).status_code == 400
    # the application list pages the same way
    reader = minted(sandbox, ids, ["Application.Read.All"])
    page = call(sandbox, "GET", "/applications", reader, params={"$top": "2", "$select": "appId"}).json()
    assert len(page["value"]) == 2 and "$select=appId" in page["@odata.nextLink"]
    rest = requests.get(page["@odata.nextLink"], headers={"Authorization": f"Bearer {reader}"}, verify=str(sandbox.endpoints.ca_path), timeout=30).json()
    seen = [a["appId"] for a in page["value"] + rest["value"]]
    assert len(seen) == len(set(seen)) == len(tenant.applications)


def test_an_unknown_segment_answers_in_graphs_words(sandbox: Sandbox, ids: StandardIds) -> None:
    unknown = call(sandbox, "GET", "/v1.0/nowhere", monitor_token(sandbox, ids))
    assert unknown.status_code == 400
    assert (error_of(unknown)["code"], error_of(unknown)["message"]) == ("BadRequest", "Resource not found for the segment 'nowhere'.")
