"""The admin API's functions called directly (azure.functions.HttpRequest), against
the sandbox, with tokens the sandbox's Entra signs."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC

import azure.functions as func
import pytest

from sso_monitor.functions import admin
from tests.app_functions import functions_by_name
from tests.functions import after_a_scheduled_run, configure_admin_api

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

FUNCTIONS = {name: f.get_user_function() for name, f in functions_by_name().items()}


@pytest.fixture
def api(sandbox, ids, monkeypatch, tmp_path):
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 2, "intervalSeconds": 0.05, "deadlineSeconds": 10})
    yield sandbox
    admin.reset()


def token(sandbox, ids, *roles: str, **kwargs) -> str:
    options = {
        "tenant_id": ids.tenant_id,
        "audience": ids.admin_api_uri,
        "subject": "user-alice",
        "roles": list(roles),
        "extra": {"preferred_username": "alice@contoso.example"},
    }
    return sandbox.mint_token(**{**options, **kwargs})


def call(name: str, *, method: str = "GET", route: str = "", params: dict | None = None, body: bytes = b"", bearer: str | None = None) -> func.HttpResponse:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    request = func.HttpRequest(method=method, url=f"/api/{route}", headers=headers, body=body, route_params=params or {})
    result = FUNCTIONS[name](request)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def error_code(response: func.HttpResponse) -> str:
    return json.loads(response.get_body())["error"]["code"]


@pytest.fixture
def after_a_run(sandbox, ids, monkeypatch, tmp_path, azurite):
    """The admin API with the Function App's storage, after one scheduled run stored its
    report (what the status routes answer; tests/functions/test_status_api.py has the rest)."""
    after_a_scheduled_run(sandbox, ids, monkeypatch, tmp_path, azurite.connection_string)
    yield sandbox
    admin.reset()


def test_status_with_the_read_role(after_a_run, ids):
    response = call("admin_status", route="status", bearer=token(after_a_run, ids, "SsoMonitor.Read"))
    assert response.status_code == 200
    document = json.loads(response.get_body())
    (app,) = document["apps"]
    assert app["facility"] == "acme" and app["status"] == "ok" and app["daysLeft"] in (64, 65)
    assert document["generatedAt"] and document["stale"] is False


def test_status_page_is_html(after_a_run, ids):
    response = call("admin_status_page", route="status/page", bearer=token(after_a_run, ids, "SsoMonitor.Read"))
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "acme" in response.get_body().decode()


@pytest.mark.parametrize(
    "bearer_kwargs, roles, status, code",
    [
        (None, (), 401, "missing_token"),
        ({"key": "tampered"}, ("SsoMonitor.Read",), 401, "invalid_signature"),
        ({"audience": "api://someone-else"}, ("SsoMonitor.Read",), 401, "invalid_audience"),
        ({}, (), 403, "insufficient_role"),
    ],
)
def test_status_refuses_bad_callers(api, ids, bearer_kwargs, roles, status, code):
    bearer = None if bearer_kwargs is None else token(api, ids, *roles, **bearer_kwargs)
    response = call("admin_status", route="status", bearer=bearer)
    assert (response.status_code, error_code(response)) == (status, code)


def test_a_read_role_cannot_act(api, ids):
    response = call("admin_rotate", method="POST", route="apps/acme/rotate", params={"facility": "acme"}, body=b"{}", bearer=token(api, ids, "SsoMonitor.Read"))
    assert (response.status_code, error_code(response)) == (403, "insufficient_role")


def test_rotate_dry_run_changes_nothing(api, ids):
    world = api.world
    before = copy.deepcopy((world.tenants, world.vaults, world.facilities))
    response = call(
        "admin_rotate",
        method="POST",
        route="apps/acme/rotate",
        params={"facility": "acme"},
        body=b'{"dryRun": true, "force": true}',
        bearer=token(api, ids, "SsoMonitor.Admin"),
    )
    assert response.status_code == 200
    result = json.loads(response.get_body())
    assert result["error"] is None and any("would add a client secret" in line for line in result["actions"])
    assert copy.deepcopy((world.tenants, world.vaults, world.facilities)) == before


def test_rotate_then_confirm_through_the_api(api, ids):
    admin_token = token(api, ids, "SsoMonitor.Admin")
    response = call("admin_rotate", method="POST", route="apps/acme/rotate", params={"facility": "acme"}, body=b'{"force": true}', bearer=admin_token)
    result = json.loads(response.get_body())
    assert response.status_code == 200 and result["stage"] == "awaiting-confirmation", result
    key_id = result["keyId"]
    world = api.world
    world.facility("acme").client_secret = next(v for v in world.vault("kv-sso").secrets["smarttrace-acme"].versions if v.tags.get("keyId") == key_id).value
    confirmed = call(
        "admin_confirm", method="POST", route="apps/acme/confirm", params={"facility": "acme"}, body=json.dumps({"keyId": key_id}).encode(), bearer=admin_token
    )
    assert confirmed.status_code == 200 and json.loads(confirmed.get_body())["stage"] == "current"
    latest = [v for v in world.vault("kv-sso").secrets["smarttrace-acme"].versions if v.tags.get("keyId") == key_id][-1]
    assert latest.tags["confirmedBy"] == "alice@contoso.example"
    assert world.sign_in_works("acme")


@pytest.mark.parametrize(
    "name, route, params, body, status, code",
    [
        ("admin_rotate", "apps/acme/rotate", {"facility": "acme"}, b"{not json", 400, "invalid_json"),
        ("admin_rotate", "apps/acme/rotate", {"facility": "acme"}, b"[1, 2]", 400, "invalid_body"),
        ("admin_rotate", "apps/acme/rotate", {"facility": "acme"}, b'{"dryRun": "yes"}', 400, "invalid_field"),
        ("admin_rotate", "apps/acme/rotate", {"facility": "acme"}, b'{"colour": 1}', 400, "unknown_field"),
        ("admin_rotate", "apps/acme/rotate", {"facility": "acme"}, b" " * (16 * 1024 + 1), 413, "body_too_large"),
        ("admin_rotate", "apps/Not Valid/rotate", {"facility": "Not Valid"}, b"{}", 400, "invalid_facility"),
        ("admin_rotate", "apps/nowhere/rotate", {"facility": "nowhere"}, b"{}", 404, "unknown_facility"),
        ("admin_confirm", "apps/acme/confirm", {"facility": "acme"}, b"{}", 400, "missing_field"),
        ("admin_confirm", "apps/acme/confirm", {"facility": "acme"}, b'{"keyId": 7}', 400, "invalid_field"),
        ("admin_confirm", "apps/acme/confirm", {"facility": "acme"}, b'{"keyId": "not-a-guid"}', 400, "invalid_field"),
        ("admin_confirm", "apps/acme/confirm", {"facility": "acme"}, b'{"keyId": "00000000-0000-0000-0000-000000000000"}', 409, "rotation_conflict"),
        ("admin_check", "apps/nowhere/check", {"facility": "nowhere"}, b"", 404, "unknown_facility"),
    ],
)
def test_bad_input_gets_a_clear_4xx(api, ids, name, route, params, body, status, code):
    response = call(name, method="POST", route=route, params=params, body=body, bearer=token(api, ids, "SsoMonitor.Admin"))
    assert (response.status_code, error_code(response)) == (status, code)


def test_check_one_app(api, ids):
    response = call("admin_check", method="POST", route="apps/acme/check", params={"facility": "acme"}, bearer=token(api, ids, "SsoMonitor.Admin"))
    assert response.status_code == 200 and json.loads(response.get_body())["facility"] == "acme"


def test_openapi_lists_every_route(api):
    document = json.loads(call("admin_openapi", route="openapi.json").get_body())
    assert document["openapi"] == "3.1.0"
    # every HTTP route of the app but the health probe and the status page's static files
    routes = {f"/{f.get_trigger().route}" for f in functions_by_name().values() if getattr(f.get_trigger(), "route", None)}
    assert set(document["paths"]) == routes - {"/health", "/status/view/{name}"}
    assert "/status/view" in document["paths"] and document["paths"]["/status/page"]["get"]["security"] == [{"entra": []}]


def test_unconfigured_admin_api_is_503_not_a_crash(api, ids, monkeypatch):
    document = json.loads(__import__("os").environ["SSO_MONITOR_CONFIG"])
    del document["adminApi"]
    monkeypatch.setenv("SSO_MONITOR_CONFIG", json.dumps(document))
    admin.reset()
    response = call("admin_status", route="status", bearer=token(api, ids, "SsoMonitor.Read"))
    assert (response.status_code, error_code(response)) == (503, "not_configured")


# ---------------------------------------------------------------- push and snooze

HANDOFF_TOKEN = "smarttrace-handoff-token"


@pytest.fixture
def http_handoff(sandbox, ids, monkeypatch, tmp_path):
    facility = sandbox.world.facility("acme")
    vault = sandbox.world.vault(ids.vault_name)
    sandbox.world.set_secret(vault, HANDOFF_TOKEN, next(iter(facility.api_tokens)))
    handoff = {"mode": "http", "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret", "tokenSecretName": HANDOFF_TOKEN}
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, app_overrides={"handoff": handoff})
    yield sandbox
    admin.reset()


def test_push_sends_the_current_secret_again(http_handoff, ids):
    world = http_handoff.world
    facility = world.facility("acme")
    facility.client_secret, facility.key_id = None, None  # SmartTrace lost it
    assert not world.sign_in_works("acme")
    response = call(
        "admin_push", method="POST", route="apps/acme/push", params={"facility": "acme"}, body=b"{}", bearer=token(http_handoff, ids, "SsoMonitor.Admin")
    )
    assert response.status_code == 200, response.get_body()
    result = json.loads(response.get_body())
    assert result["keyId"] == ids.smarttrace_key_id and result["error"] is None
    assert [r.key_id for r in facility.received] == [ids.smarttrace_key_id] and facility.received[0].status == 200
    assert world.sign_in_works("acme")


def test_push_dry_run_sends_nothing(http_handoff, ids):
    response = call(
        "admin_push",
        method="POST",
        route="apps/acme/push",
        params={"facility": "acme"},
        body=b'{"dryRun": true}',
        bearer=token(http_handoff, ids, "SsoMonitor.Admin"),
    )
    assert response.status_code == 200 and any("would" in line for line in json.loads(response.get_body())["actions"])
    assert http_handoff.world.facility("acme").received == []


def test_push_in_manual_mode_is_a_conflict(api, ids):
    response = call("admin_push", method="POST", route="apps/acme/push", params={"facility": "acme"}, body=b"", bearer=token(api, ids, "SsoMonitor.Admin"))
    assert (response.status_code, error_code(response)) == (409, "rotation_conflict")
    assert "manually" in json.loads(response.get_body())["error"]["message"]


def test_push_needs_the_admin_role(http_handoff, ids):
    response = call(
        "admin_push", method="POST", route="apps/acme/push", params={"facility": "acme"}, body=b"{}", bearer=token(http_handoff, ids, "SsoMonitor.Read")
    )
    assert (response.status_code, error_code(response)) == (403, "insufficient_role")
    assert http_handoff.world.facility("acme").received == []


@pytest.fixture
def with_storage(sandbox, ids, monkeypatch, tmp_path, azurite):
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, storage=azurite.connection_string)
    yield sandbox
    admin.reset()


def test_snooze_is_kept_in_table_storage(with_storage, ids):
    from datetime import datetime, timedelta

    from sso_monitor.adapters.storage.alert_store import TableAlertStore
    from sso_monitor.config import load_config

    until = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    body = json.dumps({"code": "LOGOUT_URL_MISMATCH", "until": until, "reason": "SmartTrace is moving the URL"}).encode()
    response = call(
        "admin_snooze", method="POST", route="apps/acme/snooze", params={"facility": "acme"}, body=body, bearer=token(with_storage, ids, "SsoMonitor.Admin")
    )
    assert response.status_code == 200, response.get_body()
    answer = json.loads(response.get_body())
    assert (answer["code"], answer["by"], answer["until"][:10]) == ("LOGOUT_URL_MISMATCH", "alice@contoso.example", until)
    stored = asyncio.run(TableAlertStore(load_config()).get("snoozes", "acme.LOGOUT_URL_MISMATCH"))
    assert stored is not None and stored.data["reason"] == "SmartTrace is moving the URL"


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b'{"until": "2099-01-01"}', 400, "missing_field"),
        (b'{"code": "LOGOUT_URL_MISMATCH"}', 400, "missing_field"),
        (b'{"code": "not a code", "until": "2099-01-01"}', 400, "invalid_field"),
        (b'{"code": "NO_SUCH_CODE", "until": "2099-01-01"}', 400, "invalid_field"),
        (b'{"code": "LOGOUT_URL_MISMATCH", "until": "next week"}', 400, "invalid_field"),
        (b'{"code": "LOGOUT_URL_MISMATCH", "until": "2020-01-01"}', 400, "invalid_field"),  # the past
        (b'{"code": "LOGOUT_URL_MISMATCH", "until": "2099-01-01"}', 400, "invalid_field"),  # beyond 90 days
        (b'{"code": "LOGOUT_URL_MISMATCH", "until": 20991231}', 400, "invalid_field"),
    ],
)
def test_snooze_refuses_bad_input(with_storage, ids, body, status, code):
    response = call(
        "admin_snooze", method="POST", route="apps/acme/snooze", params={"facility": "acme"}, body=body, bearer=token(with_storage, ids, "SsoMonitor.Admin")
    )
    assert (response.status_code, error_code(response)) == (status, code), response.get_body()


def test_snooze_without_storage_is_503(api, ids):
    body = b'{"code": "LOGOUT_URL_MISMATCH", "until": "2099-01-01"}'
    response = call("admin_snooze", method="POST", route="apps/acme/snooze", params={"facility": "acme"}, body=body, bearer=token(api, ids, "SsoMonitor.Admin"))
    assert (response.status_code, error_code(response)) == (503, "not_configured")
