"""Graph: an application's certificates (keyCredentials) and the paged list of
applications that `sso-monitor discover` reads (docs/sandbox/fidelity.md)."""

from __future__ import annotations

import base64
from datetime import timedelta

from msgraph import GraphServiceClient

from sso_sandbox import Sandbox
from sso_sandbox.testing import StandardIds
from tests.sandbox.test_graph import call, minted, monitor_token, validate_collection, validate_entity, with_graph

CERTIFICATE_DER = b"0\x82\x01\x0a-not-a-real-certificate-but-its-public-raw-data"


def _certificate(sandbox: Sandbox, ids: StandardIds, **fields):
    world = sandbox.world
    app = world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    return world.add_key_credential(app, key=CERTIFICATE_DER, **fields)


def test_key_credentials_carry_graphs_fields_and_never_a_private_key(sandbox: Sandbox, ids: StandardIds) -> None:
    cert = _certificate(sandbox, ids, display_name="CN=acme-sso", end=sandbox.world.now() + timedelta(days=20))
    token = monitor_token(sandbox, ids)
    body = call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token).json()
    validate_entity("application", body)
    (shown,) = body["keyCredentials"]
    validate_entity("keyCredential", shown)
    assert set(shown) == {"customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime", "type", "usage"}
    assert shown["keyId"] == cert.key_id and shown["displayName"] == "CN=acme-sso"
    assert (shown["type"], shown["usage"]) == ("AsymmetricX509Cert", "Verify")
    assert shown["key"] is None  # without $select: always null (keyCredential doc)
    assert len(base64.b64decode(shown["customKeyIdentifier"])) == 20  # the SHA-1 thumbprint, by default
    assert shown["endDateTime"].endswith("Z")


def test_the_certificates_raw_data_only_for_a_single_objects_select(sandbox: Sandbox, ids: StandardIds) -> None:
    _certificate(sandbox, ids)
    token = monitor_token(sandbox, ids)
    one = call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token, params={"$select": "id,keyCredentials"}).json()
    assert base64.b64decode(one["keyCredentials"][0]["key"]) == CERTIFICATE_DER  # the public certificate, as uploaded
    listed = call(sandbox, "GET", "/applications", token, params={"$select": "id,appId,keyCredentials"}).json()
    validate_collection("application", listed)
    (mine,) = [a for a in listed["value"] if a["appId"] == ids.smarttrace_app_id]
    assert mine["keyCredentials"][0]["key"] is None  # a list never carries it
    batch = call(
        sandbox,
        "POST",
        "/$batch",
        token,
        json={"requests": [{"id": "1", "method": "GET", "url": f"/applications(appId='{ids.smarttrace_app_id}')?$select=keyCredentials"}]},
    ).json()
    assert batch["responses"][0]["body"]["keyCredentials"][0]["key"] is not None  # a single object inside $batch too


def test_the_sdk_reads_key_credentials(sandbox: Sandbox, ids: StandardIds) -> None:
    cert = _certificate(sandbox, ids, usage="Sign", display_name="CN=signing")

    async def read(client: GraphServiceClient):
        return await client.applications_with_app_id(ids.smarttrace_app_id).get()

    app = with_graph(sandbox, ids, read)
    (found,) = app.key_credentials
    assert str(found.key_id) == cert.key_id and found.usage == "Sign" and found.type == "AsymmetricX509Cert"
    assert found.end_date_time is not None and found.end_date_time.tzinfo is not None


def test_service_principals_keep_their_own_empty_key_credentials(sandbox: Sandbox, ids: StandardIds) -> None:
    _certificate(sandbox, ids)
    sp = call(sandbox, "GET", f"/servicePrincipals(appId='{ids.smarttrace_app_id}')", minted(sandbox, ids, ["Application.Read.All"])).json()
    assert sp["keyCredentials"] == []  # the application's certificates are the application's
