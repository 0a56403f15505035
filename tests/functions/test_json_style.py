"""JSON style across the admin API: every answer has camelCase keys at any depth and
ISO 8601 UTC times (2026-12-06T02:13:03Z), through the one serializer the CLI's --json
uses too (service.to_json); the OpenAPI document says the same names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sso_monitor.functions import admin, status_report
from sso_monitor.functions.ratelimit import LIMITS, RateLimited
from tests.functions.json_style import assert_style, style_problems
from tests.functions.test_admin_api import HANDOFF_TOKEN, call, token
from tests.functions.test_rotate_api import slow_propagation  # noqa: F401 (a fixture)

from . import after_a_scheduled_run, configure_admin_api

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


def answer(response) -> object:
    assert response.mimetype == "application/json", response.mimetype
    return json.loads(response.get_body())


def test_the_checker_catches_what_it_is_for() -> None:
    """Negative controls: snake_case, a date with a space or an offset, a moment key with prose."""
    assert style_problems({"generatedAt": "2026-12-06T02:13:03Z", "apps": [{"daysLeft": 3, "until": None}], "summary": {"ok": 1}}) == []
    assert style_problems({"key_id": "k"}) == ["$.key_id: key not camelCase"]
    assert style_problems({"apps": [{"current_expires": "2026-12-06 02:13:03+00:00"}]}) == [
        "$.apps[0].current_expires: key not camelCase",
        "$.apps[0].current_expires: '2026-12-06 02:13:03+00:00' is not an ISO 8601 UTC time",
    ]
    assert style_problems({"checkedAt": "yesterday"}) == ["$.checkedAt: 'yesterday' is not an ISO 8601 UTC time"]
    assert style_problems(["2026-12-06T02:13:03.123456Z"]) == ["$[0]: '2026-12-06T02:13:03.123456Z' is not an ISO 8601 UTC time"]


@pytest.fixture
def api_with_storage(sandbox, ids, monkeypatch, tmp_path, azurite):
    """The admin API with the Function App's storage, after one scheduled run; acme's
    secret is 10 days from its end, so findings carry details (daysLeft, keyId)."""
    world = sandbox.world
    world.find_app(ids.smarttrace_app_id).credential(ids.smarttrace_key_id).end = world.now() + timedelta(days=10)
    after_a_scheduled_run(sandbox, ids, monkeypatch, tmp_path, azurite.connection_string)
    yield sandbox
    admin.reset()


def test_every_answer_in_one_style(api_with_storage, ids):
    sandbox = api_with_storage
    reader, acting = token(sandbox, ids, "SsoMonitor.Read"), token(sandbox, ids, "SsoMonitor.Admin")
    facility = {"facility": "acme"}
    answers = {}

    answers["status"] = answer(call("admin_status", route="status", bearer=reader))
    answers["check"] = answer(call("admin_check", method="POST", route="apps/acme/check", params=facility, bearer=acting))
    answers["rotation"] = answer(call("admin_rotation_status", route="apps/acme/rotation", params=facility, bearer=reader))
    answers["dry run"] = answer(
        call("admin_rotate", method="POST", route="apps/acme/rotate", params=facility, body=b'{"dryRun": true, "force": true}', bearer=acting)
    )
    rotated = answers["rotate"] = answer(call("admin_rotate", method="POST", route="apps/acme/rotate", params=facility, body=b'{"force": true}', bearer=acting))
    key_id = rotated["keyId"]
    world = sandbox.world
    world.facility("acme").client_secret = next(
        v for v in world.vault(ids.vault_name).secrets[ids.vault_secret_name].versions if v.tags.get("keyId") == key_id
    ).value
    answers["confirm"] = answer(
        call("admin_confirm", method="POST", route="apps/acme/confirm", params=facility, body=json.dumps({"keyId": key_id}).encode(), bearer=acting)
    )
    until = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    body = json.dumps({"code": "SECRET_EXPIRING", "until": until, "reason": "renewal booked"}).encode()
    answers["snooze"] = answer(call("admin_snooze", method="POST", route="apps/acme/snooze", params=facility, body=body, bearer=acting))
    answers["not found"] = answer(call("admin_check", method="POST", route="apps/nowhere/check", params={"facility": "nowhere"}, bearer=acting))
    answers["bad input"] = answer(call("admin_rotate", method="POST", route="apps/acme/rotate", params=facility, body=b'{"colour": 1}', bearer=acting))

    def refuse(kind: str, caller: str) -> None:
        raise RateLimited(kind, LIMITS[kind], 7)

    admin._get_state().limiter.take = refuse
    answers["rate limited"] = answer(call("admin_check", method="POST", route="apps/acme/check", params=facility, bearer=acting))

    for name, document in answers.items():
        assert not style_problems(document), (name, style_problems(document)[:5])

    # the fields the style is about, where they are
    (app,) = answers["status"]["apps"]
    assert app["secretExpires"] and app["daysLeft"] in (9, 10)
    expiring = next(f for f in app["findings"] if f["code"] == "SECRET_EXPIRING")
    assert expiring["details"]["daysLeft"] == app["daysLeft"] and expiring["details"]["keyId"] == ids.smarttrace_key_id
    assert answers["check"]["daysLeft"] == app["daysLeft"]
    assert answers["rotation"]["checkedAt"].endswith("Z") and answers["rotation"]["currentExpires"].endswith("Z")
    assert rotated["stage"] == "awaiting-confirmation" and rotated["events"] and all("tenantId" in e and "steps" in e for e in rotated["events"])
    assert answers["confirm"]["stage"] == "current"
    assert answers["snooze"]["until"] == f"{until}T00:00:00Z"
    assert answers["rate limited"]["error"]["code"] == "rate_limited"


def test_a_report_stored_by_an_older_version_is_answered_in_the_style(api_with_storage, ids):
    """A status document stored before the one style (a finding's details in snake_case,
    as the timer wrote them) is answered camelCase: the style is the answer's, not the blob's."""
    document = json.loads(json.dumps(status_report.cache._value))
    for found in document["apps"][0]["findings"]:
        found["details"] = {"days_left": 10, "key_id": ids.smarttrace_key_id}
    status_report.cache.put(document)
    answered = answer(call("admin_status", route="status", bearer=token(api_with_storage, ids, "SsoMonitor.Read")))
    assert_style(answered)
    assert answered["apps"][0]["findings"][0]["details"] == {"daysLeft": 10, "keyId": ids.smarttrace_key_id}


def test_no_run_yet_and_push_answers_in_the_style(sandbox, ids, monkeypatch, tmp_path):
    facility = sandbox.world.facility("acme")
    sandbox.world.set_secret(sandbox.world.vault(ids.vault_name), HANDOFF_TOKEN, next(iter(facility.api_tokens)))
    handoff = {"mode": "http", "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret", "tokenSecretName": HANDOFF_TOKEN}
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, app_overrides={"handoff": handoff})
    try:
        status_report.cache.put(None)  # no scheduled run has completed
        nothing_yet = answer(call("admin_status", route="status", bearer=token(sandbox, ids, "SsoMonitor.Read")))
        pushed = answer(call("admin_push", method="POST", route="apps/acme/push", params={"facility": "acme"}, bearer=token(sandbox, ids, "SsoMonitor.Admin")))
    finally:
        admin.reset()
    assert nothing_yet["generatedAt"] is None and nothing_yet["apps"][0]["status"] == "unknown"
    assert pushed["keyId"] == ids.smarttrace_key_id and pushed["error"] is None
    assert_style(nothing_yet)
    assert_style(pushed)


def test_a_rotation_still_in_flight_answers_in_the_style(slow_propagation, ids):  # noqa: F811 (the imported fixture)
    response = call(
        "admin_rotate",
        method="POST",
        route="apps/acme/rotate",
        params={"facility": "acme"},
        body=b'{"force": true}',
        bearer=token(slow_propagation, ids, "SsoMonitor.Admin"),
    )
    assert response.status_code == 202
    assert_style(answer(response))


def test_the_openapi_document_names_the_fields_as_answered(sandbox, ids, monkeypatch, tmp_path):
    """Its own keys are OpenAPI's ("$ref", "application/json"); the schemas' property names
    are the answers' and so camelCase; every moment is a date-time."""
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0})
    try:
        document = answer(call("admin_openapi", route="openapi.json"))
    finally:
        admin.reset()
    schemas = document["components"]["schemas"]

    def properties(schema, path):
        for name, spec in (schema.get("properties") or {}).items():
            yield f"{path}.{name}", name, spec
            yield from properties(spec, f"{path}.{name}")

    named = [(where, name, spec) for key, schema in schemas.items() for where, name, spec in properties(schema, key)]
    assert named and [where for where, name, _ in named if not name.isidentifier() or "_" in name or not name[0].islower()] == []
    moments = [where for where, name, spec in named if name.endswith(("At", "Expires", "Since", "After")) or name == "until"]
    assert moments and [where for where, name, spec in named if where in moments and spec.get("format") != "date-time"] == []
    assert schemas["RotationResult"]["properties"]["keyId"] and "key_id" not in schemas["RotationResult"]["properties"]
    assert "camelCase" in document["info"]["description"] and "ISO 8601 UTC" in document["info"]["description"]
