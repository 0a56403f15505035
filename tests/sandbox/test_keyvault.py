"""The sandbox Key Vault (secrets data plane), driven over HTTPS by the real SDK
(azure-keyvault-secrets + azure-identity) and by raw ``requests``; every kind of
response body is validated against the published REST spec's definitions."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import ApiVersion, SecretClient

from sso_sandbox import Sandbox
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import VAULT_RESOURCE
from tests.reference import reference_dir, require_reference

REFERENCE = reference_dir() / "keyvault"
SPEC_PATH = REFERENCE / "spec-2025-07-01" / "secrets.json"
VAULT = "kv-sso"
SECRET = "smarttrace-acme"


# ---------------------------------------------------------------- helpers


def make_client(sandbox: Sandbox, tenant_id: str, app_id: str, secret: str) -> SecretClient:
    ca = str(sandbox.endpoints.ca_path)
    credential = ClientSecretCredential(tenant_id, app_id, secret, authority=sandbox.endpoints.authority, disable_instance_discovery=True, connection_verify=ca)
    return SecretClient(sandbox.endpoints.vault(VAULT), credential, verify_challenge_resource=False, connection_verify=ca)


@pytest.fixture
def client(sandbox: Sandbox, ids: StandardIds) -> SecretClient:
    return make_client(sandbox, ids.tenant_id, ids.monitor_app_id, ids.monitor_secret)


def add_principal(sandbox: Sandbox, ids: StandardIds, role: str | None) -> tuple[str, str]:
    """A second app with a working secret and a service principal; ``role`` on kv-sso if given."""
    world = sandbox.world
    with world.lock:
        earlier = world.now() - timedelta(minutes=5)
        app = world.add_application(ids.tenant_id, f"Other app ({role or 'no access'})")
        world.add_service_principal(app)
        password = world.add_password(app, start=earlier, created=earlier)
        if role:
            world.vault(VAULT).access[app.app_id] = role
    return app.app_id, password.secret_text


class Raw:
    """Plain HTTPS calls to the vault, with or without a token minted by the sandbox's Entra."""

    def __init__(self, sandbox: Sandbox, ids: StandardIds) -> None:
        self.sandbox = sandbox
        self.base = sandbox.endpoints.vault(VAULT)
        self.verify = str(sandbox.endpoints.ca_path)
        self.token = sandbox.mint_token(tenant_id=ids.tenant_id, audience=VAULT_RESOURCE, app_id=ids.monitor_app_id)

    def __call__(
        self, method: str, path: str, *, body: Any = None, token: str | None | bool = True, api_version: str | None = "7.6", **params: Any
    ) -> requests.Response:
        headers = {}
        bearer = self.token if token is True else (token or None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        query = dict(params)
        if api_version is not None:
            query["api-version"] = api_version
        url = path if path.startswith("https://") else self.base + path
        return requests.request(method, url, params=query or None, json=body, headers=headers, verify=self.verify, timeout=10)


@pytest.fixture
def raw(sandbox: Sandbox, ids: StandardIds) -> Raw:
    return Raw(sandbox, ids)


def error_of(exc: HttpResponseError) -> dict[str, Any]:
    return exc.response.json()["error"]


# ---- the spec's definitions as JSON Schema (draft 4)


def _load_spec() -> dict[str, Any]:
    return json.loads(require_reference("keyvault", "spec-2025-07-01", "secrets.json").read_text(encoding="utf-8"))


def spec_definitions() -> dict[str, Any]:
    """Swagger 2.0 definitions made into strict draft-4 schemas.

    - readOnly, format: unixtime, x-ms-* are annotations (draft 4 ignores unknown keywords);
    - an object definition with ``properties`` accepts no other properties (stricter than
      Swagger's default, so that a misspelt or invented field fails);
    - ``x-nullable: true`` (Error) also accepts null, and so does a list's ``nextLink``: the
      live service sends ``"nextLink": null`` on the last page.
    """
    definitions = copy.deepcopy(_load_spec()["definitions"])
    for name, schema in definitions.items():
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        if schema.get("x-nullable") and schema.get("type") == "object":
            schema["type"] = ["object", "null"]
        if name.endswith("ListResult"):
            schema["properties"]["nextLink"]["type"] = ["string", "null"]
    return definitions


def validator(definition: str) -> jsonschema.Draft4Validator:
    definitions = spec_definitions()
    assert definition in definitions
    schema = {"definitions": definitions, "allOf": [{"$ref": f"#/definitions/{definition}"}]}
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def assert_valid(definition: str, body: Any) -> None:
    errors = sorted(validator(definition).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{definition}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


# ---------------------------------------------------------------- the SDK, end to end


def test_set_get_page_update_and_disable_with_the_sdk(sandbox: Sandbox, client: SecretClient) -> None:
    expires = (sandbox.world.now() + timedelta(days=30)).replace(microsecond=0)
    first = client.set_secret("rotated", "value-0", content_type="text/plain", tags={"keyId": "k-0", "stage": "current"}, expires_on=expires)
    assert first.value == "value-0"
    assert first.properties.content_type == "text/plain"
    assert first.properties.tags == {"keyId": "k-0", "stage": "current"}
    assert first.properties.expires_on == expires
    assert first.properties.enabled is True
    assert first.properties.created_on is not None and first.properties.recovery_level == "Recoverable+Purgeable"
    assert first.properties.recoverable_days == 90

    latest = None
    for n in range(1, 28):  # 28 versions in all: more than one default page of 25
        latest = client.set_secret("rotated", f"value-{n}", tags={"keyId": f"k-{n}"})
    assert latest is not None
    assert client.get_secret("rotated").value == "value-27"
    assert client.get_secret("rotated", first.properties.version).value == "value-0"
    assert client.get_secret("rotated", latest.properties.version).properties.version == latest.properties.version

    pages = list(client.list_properties_of_secret_versions("rotated", max_page_size=4).by_page())
    assert len(pages) == 7
    versions = [props for page in pages for props in page]
    assert len(versions) == 28
    assert len({v.version for v in versions}) == 28
    # listed in ascending version-id order across pages, not in creation order
    assert [v.version for v in versions] == sorted(v.version for v in versions)
    assert {v.tags["keyId"] for v in versions} == {f"k-{n}" for n in range(28)}
    assert all(v.name == "rotated" and v.vault_url == sandbox.endpoints.vault(VAULT) for v in versions)
    # the default page size is the maximum, 25
    assert len(list(client.list_properties_of_secret_versions("rotated").by_page())) == 2

    names = [p.name for p in client.list_properties_of_secrets(max_page_size=1)]
    assert names == sorted(names) and set(names) == {SECRET, "rotated"}

    new_expiry = expires + timedelta(days=10)
    updated = client.update_secret_properties("rotated", first.properties.version, tags={"stage": "previous"}, enabled=False, expires_on=new_expiry)
    assert updated.version == first.properties.version
    assert updated.enabled is False and updated.tags == {"stage": "previous"} and updated.expires_on == new_expiry
    assert updated.content_type == "text/plain"  # untouched
    listed = next(v for v in client.list_properties_of_secret_versions("rotated") if v.version == first.properties.version)
    assert (listed.enabled, listed.tags, listed.expires_on) == (False, {"stage": "previous"}, new_expiry)

    with pytest.raises(HttpResponseError) as disabled:
        client.get_secret("rotated", first.properties.version)
    assert disabled.value.status_code == 403
    assert error_of(disabled.value) == {
        "code": "Forbidden",
        "message": "Operation get is not allowed on a disabled secret.",
        "innererror": {"code": "SecretDisabled"},
    }
    assert client.get_secret("rotated").value == "value-27"  # other versions still readable

    client.update_secret_properties("rotated", first.properties.version, enabled=True)
    assert client.get_secret("rotated", first.properties.version).value == "value-0"
    # update without a version changes the latest one
    assert client.update_secret_properties("rotated", content_type="application/x-secret").version == latest.properties.version


def test_delete_conflict_recover_and_purge_with_the_sdk(sandbox: Sandbox, client: SecretClient) -> None:
    # background completion is pinned in test_keyvault_consistency.py; here it is immediate
    sandbox.world.vault(VAULT).soft_delete_lag = 0
    original = client.get_secret(SECRET)
    poller = client.begin_delete_secret(SECRET)
    poller.wait()
    deleted = poller.result()
    assert deleted.recovery_id == f"{sandbox.endpoints.vault(VAULT)}/deletedsecrets/{SECRET}"
    assert deleted.deleted_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    assert deleted.properties.version == original.properties.version

    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret(SECRET)
    assert error_of(missing.value)["code"] == "SecretNotFound"
    assert error_of(missing.value)["message"].startswith(f"A secret with (name/id) {SECRET} was not found in this key vault.")
    assert SECRET not in [p.name for p in client.list_properties_of_secrets()]
    assert client.get_deleted_secret(SECRET).properties.tags == original.properties.tags
    assert [d.name for d in client.list_deleted_secrets()] == [SECRET]

    with pytest.raises(HttpResponseError) as conflict:
        client.set_secret(SECRET, "new value")
    assert isinstance(conflict.value, ResourceExistsError) and conflict.value.status_code == 409
    assert error_of(conflict.value) == {
        "code": "Conflict",
        "message": f"Secret {SECRET} is currently in a deleted but recoverable state, and its name cannot be reused; "
        "in this state, the secret can only be recovered or purged.",
        "innererror": {"code": "ObjectIsDeletedButRecoverable"},
    }

    recovered = client.begin_recover_deleted_secret(SECRET)
    recovered.wait()
    assert recovered.result().version == original.properties.version
    assert client.get_secret(SECRET).value == original.value
    assert list(client.list_deleted_secrets()) == []

    client.begin_delete_secret(SECRET).wait()
    client.purge_deleted_secret(SECRET)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(SECRET)
    fresh = client.set_secret(SECRET, "after purge")
    assert fresh.properties.version != original.properties.version
    assert [v.version for v in client.list_properties_of_secret_versions(SECRET)] == [fresh.properties.version]


def test_purge_protection_and_retention(sandbox: Sandbox, client: SecretClient) -> None:
    world = sandbox.world
    with world.lock:
        world.vault(VAULT).purge_protection = True
        world.vault(VAULT).soft_delete_lag = 0
    assert client.get_secret(SECRET).properties.recovery_level == "Recoverable"
    client.begin_delete_secret(SECRET).wait()
    with pytest.raises(HttpResponseError) as refused:
        client.purge_deleted_secret(SECRET)
    assert refused.value.status_code == 403
    assert error_of(refused.value)["innererror"] == {"code": "VaultPurgeProtectionEnabled"}

    world.clock.advance(days=89)
    assert client.get_deleted_secret(SECRET).name == SECRET
    world.clock.advance(days=2)  # past scheduledPurgeDate: the service has purged it
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(SECRET)
    assert client.set_secret(SECRET, "reused").value == "reused"


def test_dates_follow_the_sandbox_clock(sandbox: Sandbox, client: SecretClient) -> None:
    sandbox.world.clock.advance(days=400)
    created = client.set_secret("later", "v").properties.created_on
    assert created is not None
    assert abs((created - sandbox.world.now()).total_seconds()) < 5
    assert (created - datetime.now(UTC)).days >= 399


# ---------------------------------------------------------------- challenge, api-version, tokens


def test_request_without_token_gets_the_challenge(sandbox: Sandbox, ids: StandardIds, raw: Raw) -> None:
    response = raw("GET", f"/secrets/{SECRET}/", token=False)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (f'Bearer authorization="{sandbox.endpoints.authority}/{ids.tenant_id}", resource="https://vault.azure.net"')
    assert response.json() == {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token."}}
    # the SDK's first PUT arrives without a body and is challenged the same way
    empty_put = requests.put(
        f"{raw.base}/secrets/x?api-version=2026-04-01", data=b"", headers={"Content-Type": "application/json"}, verify=raw.verify, timeout=10
    )
    assert empty_put.status_code == 401 and "WWW-Authenticate" in empty_put.headers


def test_api_version_is_required(raw: Raw) -> None:
    for token in (False, True):
        response = raw("GET", "/secrets", token=token, api_version=None)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BadParameter"
        assert "api-version" in response.json()["error"]["message"]
    assert raw("GET", "/secrets", api_version="1.0").status_code == 400
    assert raw("GET", "/secrets", api_version="banana").status_code == 400
    for version in [v.value for v in ApiVersion] + ["7.6-preview", "2025-07-01-preview"]:
        assert raw("GET", "/secrets", api_version=version).status_code == 200, version


def test_sdk_sends_its_default_api_version(sandbox: Sandbox, client: SecretClient) -> None:
    from sso_sandbox.keyvault import KeyVaultService

    seen: list[str] = []
    service = sandbox.services[f"vault:{VAULT}"]
    assert isinstance(service, KeyVaultService)
    original = service.dispatch

    def spy(request):  # type: ignore[no-untyped-def]
        seen.append(request.q("api-version") or "")
        return original(request)

    service.dispatch = spy  # type: ignore[method-assign]
    client.get_secret(SECRET)
    assert seen and set(seen) == {ApiVersion.V2026_04_01.value}


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("other-tenant", "AKV10032: Invalid issuer"),
        ("audience", "AKV10022: Invalid audience"),
        ("expired", "expired"),
        ("untrusted", "AKV10046"),
        ("tampered", "AKV10022"),
        ("garbage", "AKV10022"),
    ],
)
def test_bad_tokens_are_unauthorized(sandbox: Sandbox, ids: StandardIds, raw: Raw, kind: str, fragment: str) -> None:
    now = datetime.now(UTC)
    mint = {"tenant_id": ids.tenant_id, "audience": VAULT_RESOURCE, "app_id": ids.monitor_app_id}
    if kind == "other-tenant":
        mint["tenant_id"] = "11111111-2222-4333-8444-555555555555"
    elif kind == "audience":
        mint["audience"] = "https://graph.microsoft.com"
    tokens = {
        "expired": lambda: sandbox.mint_token(now=now - timedelta(hours=3), **mint),
        "untrusted": lambda: sandbox.mint_token(key="untrusted", **mint),
        "tampered": lambda: sandbox.mint_token(key="tampered", **mint),
        "garbage": lambda: "not-a-jwt",
    }
    token = tokens.get(kind, lambda: sandbox.mint_token(**mint))()
    response = raw("GET", f"/secrets/{SECRET}", token=token)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "Unauthorized" and fragment in error["message"]
    assert response.headers["WWW-Authenticate"].startswith(f'Bearer authorization="{sandbox.endpoints.authority}/{ids.tenant_id}"')


def test_the_guid_audience_is_accepted(ids: StandardIds, sandbox: Sandbox, raw: Raw) -> None:
    token = sandbox.mint_token(tenant_id=ids.tenant_id, audience="cfa8b339-82a2-471a-a3c9-0fc0be7a4093", app_id=ids.monitor_app_id)
    assert raw("GET", f"/secrets/{SECRET}", token=token).status_code == 200


# ---------------------------------------------------------------- RBAC


def test_principal_without_access_is_forbidden(sandbox: Sandbox, ids: StandardIds) -> None:
    app_id, secret = add_principal(sandbox, ids, role=None)
    outsider = make_client(sandbox, ids.tenant_id, app_id, secret)
    for call in (lambda: outsider.get_secret(SECRET), lambda: list(outsider.list_properties_of_secrets()), lambda: outsider.set_secret("x", "y")):
        with pytest.raises(HttpResponseError) as denied:
            call()
        assert denied.value.status_code == 403
        error = error_of(denied.value)
        assert error["code"] == "Forbidden" and error["innererror"] == {"code": "ForbiddenByRbac"}
        assert error["message"].startswith("Caller is not authorized to perform action on resource.")
        assert f"appid={app_id}" in error["message"]
    assert sandbox.world.count_requests(service="vault") > 0
    assert any(r.caller == app_id and r.status == 403 for r in sandbox.world.requests)


def test_secrets_user_reads_but_cannot_write(sandbox: Sandbox, ids: StandardIds) -> None:
    app_id, secret = add_principal(sandbox, ids, role="Key Vault Secrets User")
    reader = make_client(sandbox, ids.tenant_id, app_id, secret)
    assert reader.get_secret(SECRET).value
    assert [p.name for p in reader.list_properties_of_secrets()] == [SECRET]
    for call in (
        lambda: reader.set_secret(SECRET, "overwrite"),
        lambda: reader.update_secret_properties(SECRET, enabled=False),
        lambda: reader.begin_delete_secret(SECRET),
    ):
        with pytest.raises(HttpResponseError) as denied:
            call()
        assert denied.value.status_code == 403
        assert error_of(denied.value)["innererror"] == {"code": "ForbiddenByRbac"}
    assert len(sandbox.world.vault(VAULT).secrets[SECRET].versions) == 1


def test_reader_lists_metadata_but_cannot_read_values(sandbox: Sandbox, ids: StandardIds) -> None:
    app_id, secret = add_principal(sandbox, ids, role="Key Vault Reader")
    reader = make_client(sandbox, ids.tenant_id, app_id, secret)
    assert [p.name for p in reader.list_properties_of_secrets()] == [SECRET]
    with pytest.raises(HttpResponseError) as denied:
        reader.get_secret(SECRET)
    assert denied.value.status_code == 403
    assert "secrets/getSecret/action" in error_of(denied.value)["message"]


# ---------------------------------------------------------------- raw wire details


def test_names_paging_parameters_and_not_found(raw: Raw) -> None:
    bad = raw("PUT", "/secrets/bad_name", body={"value": "x"})
    assert bad.status_code == 400
    assert bad.json() == {"error": {"code": "BadParameter", "message": "The request URI contains an invalid name: bad_name"}}
    assert raw("PUT", "/secrets/" + "a" * 128, body={"value": "x"}).status_code == 400
    assert raw("PUT", "/secrets/" + "a" * 127, body={"value": "x"}).status_code == 200
    assert raw("PUT", "/secrets/novalue", body={"contentType": "x"}).status_code == 400
    for size in ("0", "26", "x"):
        assert raw("GET", "/secrets", maxresults=size).status_code == 400
    assert raw("GET", "/secrets", maxresults="25").status_code == 200
    assert raw("GET", "/secrets", **{"$skiptoken": "nonsense"}).status_code == 400

    missing_version = raw("GET", f"/secrets/{SECRET}/0123456789abcdef0123456789abcdef")
    assert missing_version.status_code == 404
    assert f"(name/id) {SECRET}/0123456789abcdef0123456789abcdef" in missing_version.json()["error"]["message"]
    assert raw("GET", "/deletedsecrets/nothing-here").status_code == 404
    assert raw("POST", "/deletedsecrets/nothing-here/recover").status_code == 404
    assert raw("DELETE", "/deletedsecrets/nothing-here").status_code == 404
    # names are case-insensitive; the id keeps the name as created
    assert raw("GET", f"/secrets/{SECRET.upper()}").json()["id"].split("/")[-2] == SECRET


def test_next_link_is_absolute_and_null_on_the_last_page(raw: Raw) -> None:
    for n in range(4):
        assert raw("PUT", "/secrets/paged", body={"value": f"v{n}"}).status_code == 200
    seen: list[str] = []
    page = raw("GET", "/secrets/paged/versions", maxresults="3").json()
    link = page["nextLink"]
    assert link.startswith(raw.base + "/secrets/paged/versions?")
    query = parse_qs(urlsplit(link).query)
    assert query["api-version"] == ["7.6"] and query["maxresults"] == ["3"] and query["$skiptoken"][0]
    seen += [item["id"] for item in page["value"]]
    last = raw("GET", link, api_version=None).json()
    seen += [item["id"] for item in last["value"]]
    assert last["nextLink"] is None
    assert len(seen) == len(set(seen)) == 4


# ---------------------------------------------------------------- bodies against the spec


def test_every_response_body_matches_the_spec(sandbox: Sandbox, ids: StandardIds, raw: Raw) -> None:
    def check(definition: str, response: requests.Response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body = response.json()
        assert_valid(definition, body)
        return body

    sandbox.world.vault(VAULT).soft_delete_lag = 0  # deletion and recovery finish at once here
    expires = int((sandbox.world.now() + timedelta(days=30)).timestamp())
    put = check(
        "SecretBundle",
        raw(
            "PUT",
            "/secrets/spec-check",
            body={"value": "s3cret", "contentType": "text/plain", "tags": {"a": "b"}, "attributes": {"exp": expires, "nbf": expires - 60}},
        ),
    )
    assert put["attributes"]["exp"] == expires and isinstance(put["attributes"]["created"], int)
    version = put["id"].rsplit("/", 1)[1]
    check("SecretBundle", raw("GET", "/secrets/spec-check/"))
    check("SecretBundle", raw("GET", f"/secrets/spec-check/{version}"))
    patched = check("SecretBundle", raw("PATCH", f"/secrets/spec-check/{version}", body={"tags": {"c": "d"}, "attributes": {"enabled": True}}))
    assert "value" not in patched and patched["tags"] == {"c": "d"}
    listed = check("SecretListResult", raw("GET", "/secrets", maxresults="1"))
    assert listed["nextLink"] and all("value" not in item for item in listed["value"])
    check("SecretListResult", raw("GET", "/secrets/spec-check/versions"))
    check("BackupSecretResult", raw("POST", "/secrets/spec-check/backup"))
    deleted = check("DeletedSecretBundle", raw("DELETE", "/secrets/spec-check"))
    assert {"recoveryId", "deletedDate", "scheduledPurgeDate", "id", "attributes"} <= set(deleted) and "value" not in deleted
    check("DeletedSecretBundle", raw("GET", "/deletedsecrets/spec-check"))
    check("DeletedSecretListResult", raw("GET", "/deletedsecrets"))
    check("KeyVaultError", raw("PUT", "/secrets/spec-check", body={"value": "x"}), 409)
    check("SecretBundle", raw("POST", "/deletedsecrets/spec-check/recover"))
    check("KeyVaultError", raw("GET", "/secrets/does-not-exist"), 404)
    check("KeyVaultError", raw("GET", "/secrets", token=False), 401)
    check("KeyVaultError", raw("GET", "/secrets", api_version=None), 400)
    other = sandbox.mint_token(tenant_id=ids.tenant_id, audience=VAULT_RESOURCE, app_id="00000000-1111-4222-8333-444444444444")
    check("KeyVaultError", raw("GET", "/secrets", token=other), 403)
    sandbox.faults.add("throttle", service="vault", path="/secrets", times=1, retry_after=0)
    check("KeyVaultError", raw("GET", "/secrets"), 429)
    sandbox.faults.add("status", service="vault", path="/secrets", status=500, times=1)
    check("KeyVaultError", raw("GET", "/secrets"), 500)
    assert raw("DELETE", "/secrets/spec-check").status_code == 200
    assert raw("DELETE", "/deletedsecrets/spec-check").status_code == 204


def test_the_validator_is_not_vacuous() -> None:
    good = {"value": "v", "id": "https://x/secrets/a/1", "attributes": {"enabled": True, "created": 1, "updated": 1, "recoveryLevel": "Recoverable"}}
    assert_valid("SecretBundle", good)
    malformed = [
        {**good, "attributes": {**good["attributes"], "created": "2024-01-01T00:00:00Z"}},  # dates are Unix integers
        {**good, "tags": {"n": 1}},  # tag values are strings
        {**good, "attributes": {**good["attributes"], "recoveryLevel": "Whenever"}},  # enum
        {**good, "contenttype": "text/plain"},  # not a property of SecretBundle
        {**good, "attributes": {**good["attributes"], "enabled": "true"}},
    ]
    for body in malformed:
        assert list(validator("SecretBundle").iter_errors(body)), body
    assert list(validator("KeyVaultError").iter_errors({"error": {"code": 403}}))
    assert list(validator("SecretListResult").iter_errors({"value": [{"id": 1}]}))


def test_set_secret_shape_matches_the_spec_example(raw: Raw) -> None:
    example_path = require_reference("keyvault", "spec-examples", "SetSecret-example.2025-06-01.json")
    example = json.loads(example_path.read_text(encoding="utf-8"))
    request_body = example["parameters"]["parameters"]
    expected = example["responses"]["200"]["body"]
    body = raw("PUT", f"/secrets/{example['parameters']['secret-name']}", body=request_body, api_version=example["parameters"]["api-version"]).json()
    assert set(body) == set(expected)
    assert body["value"] == expected["value"]
    # the service now also reports recoverableDays (a SecretAttributes property since 7.1)
    assert set(body["attributes"]) == set(expected["attributes"]) | {"recoverableDays"}
    assert body["attributes"]["recoveryLevel"] == expected["attributes"]["recoveryLevel"]
    assert len(body["id"].rsplit("/", 1)[1]) == len(expected["id"].rsplit("/", 1)[1])  # 32 hex digits


# ---------------------------------------------------------------- fault plan


def test_sdk_retries_a_throttled_read(sandbox: Sandbox, client: SecretClient) -> None:
    expected = client.get_secret(SECRET).value  # challenge and token done
    rule = sandbox.faults.add("throttle", service="vault", method="GET", path="/secrets/*", times=1, retry_after=0)
    assert client.get_secret(SECRET).value == expected
    assert rule.fired == 1
    statuses = [r.status for r in sandbox.world.requests if r.service == "vault" and r.method == "GET"]
    assert statuses[-2:] == [429, 200]


def test_sdk_retries_a_server_error(sandbox: Sandbox, client: SecretClient) -> None:
    rule = sandbox.faults.add("status", service="vault", method="GET", path="/secrets/*", status=500, times=1)
    assert client.get_secret(SECRET).value
    assert rule.fired == 1
    assert 500 in [r.status for r in sandbox.world.requests if r.service == "vault"]


def test_sdk_surfaces_a_rejected_token_without_looping(sandbox: Sandbox) -> None:
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import ClientAuthenticationError

    class Garbage:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("not-a-jwt", int(datetime.now(UTC).timestamp()) + 3600)

    client = SecretClient(sandbox.endpoints.vault(VAULT), Garbage(), verify_challenge_resource=False, connection_verify=str(sandbox.endpoints.ca_path))
    with pytest.raises(ClientAuthenticationError) as rejected:
        client.get_secret(SECRET)
    assert "AKV10022" in str(rejected.value)
    assert [r.status for r in sandbox.world.requests if r.service == "vault"] == [401, 401]  # the challenge, then the rejected token: no loop
