"""POST /api/apps/{facility}/rotate within Azure's 230 s HTTP limit, GET
/api/apps/{facility}/rotation, and confirm or push while another run holds the lease.

Propagation is the sandbox tenant's ``propagation_delay``; the API's rotation runs on
the sandbox's simulated clock (a wait for propagation moves the world's time instead
of passing), so the verify deadline is reached without waiting for it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import timedelta

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobLeaseClient, ContainerClient
from azure.storage.queue import QueueClient

from sso_monitor.functions import admin, scheduled
from sso_monitor.functions import api as admin_api
from sso_monitor.rotation.ports import WORK_QUEUE
from sso_sandbox.clock import SimulatedClock
from tests.app_functions import functions_by_name
from tests.azurite import forget_alert_state
from tests.functions import configure_admin_api, run_timer
from tests.functions.test_admin_api import FUNCTIONS, HANDOFF_TOKEN, call, error_code, token

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

PROPAGATION = timedelta(seconds=300)  # longer than the API's verify bound, shorter than the configured deadline


def empty_queue(connection: str) -> None:
    with QueueClient.from_connection_string(connection, WORK_QUEUE) as queue:
        try:
            queue.delete_queue()
        except ResourceNotFoundError:
            pass


def queued(connection: str) -> list:
    with QueueClient.from_connection_string(connection, WORK_QUEUE) as queue:
        try:
            return [(m, base64.b64decode(m.content).decode()) for m in queue.receive_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


def stages(world, ids) -> list:
    return [v.tags.get("stage") for v in world.vault(ids.vault_name).secrets[ids.vault_secret_name].versions]


@pytest.fixture
def slow_propagation(sandbox, ids, monkeypatch, tmp_path, azurite):
    """acme on the sandbox and Azurite; the configured verify would wait up to 600 s (and so
    outlast propagation), one probe every 30 s, on the world's clock."""
    connection = azurite.connection_string
    configure_admin_api(
        sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 30, "deadlineSeconds": 600}, storage=connection
    )
    monkeypatch.setenv("SSO_MONITOR_SCHEDULE", "0 0 6 * * *")
    empty_queue(connection)
    forget_alert_state(connection)
    sandbox.world.tenant(ids.tenant_id).propagation_delay = PROPAGATION
    admin._get_state().service.clock = SimulatedClock(sandbox.world)
    yield sandbox
    admin.reset()
    scheduled.reset()


def test_rotate_answers_202_when_propagation_outlasts_the_bound(slow_propagation, ids, azurite):
    world = slow_propagation.world
    started = world.now()
    response = call(
        "admin_rotate",
        method="POST",
        route="apps/acme/rotate",
        params={"facility": "acme"},
        body=b'{"force": true}',
        bearer=token(slow_propagation, ids, "SsoMonitor.Admin"),
    )
    assert response.status_code == 202, response.get_body()
    result = json.loads(response.get_body())
    assert result["stage"] == "pending" and result["error"] is None and result["keyId"]
    assert result["statusUrl"] == "/api/apps/acme/rotation" == response.headers["Location"]
    assert int(response.headers["Retry-After"]) > 0
    assert result["resume"] == "queued" and "the rotation worker resumes it now" in result["message"]
    # The wait was the API's bound (150 s: probes 0.5, 1, 2, 4, 8 and 16 s apart, then every
    # 30 s, the configured cap), not the configured 600 s.
    (waited,) = [line for line in result["actions"] if line.startswith("verify: waiting for propagation")]
    assert "after 11 attempts" in waited
    assert timedelta(seconds=150) <= world.now() - started < PROPAGATION
    assert stages(world, ids)[-1] == "pending"

    # The status URL: where the rotation stands, from Key Vault, for the Read role.
    followed = call("admin_rotation_status", route="apps/acme/rotation", params={"facility": "acme"}, bearer=token(slow_propagation, ids, "SsoMonitor.Read"))
    assert followed.status_code == 200, followed.get_body()
    rotation = json.loads(followed.get_body())
    assert (rotation["stage"], rotation["inFlight"], rotation["inFlightKeyId"], rotation["leaseHeld"]) == ("pending", True, result["keyId"], False)
    assert rotation["currentKeyId"] == ids.smarttrace_key_id

    # The worker resumes it from the queued message once the secret works.
    ((message, text),) = queued(azurite.connection_string)
    assert json.loads(text) == {"facility": "acme", "reason": "resume"}
    world.clock.advance(PROPAGATION)
    scheduled.reset()
    functions = functions_by_name()
    asyncio.run(functions["rotation_worker"].get_user_function()(func.QueueMessage(id=message.id, body=text)))
    assert stages(world, ids)[-1] == "awaiting-confirmation"  # manual handoff: the administrator's turn
    rotation = json.loads(
        call(
            "admin_rotation_status", route="apps/acme/rotation", params={"facility": "acme"}, bearer=token(slow_propagation, ids, "SsoMonitor.Read")
        ).get_body()
    )
    assert (rotation["stage"], rotation["inFlight"]) == ("awaiting-confirmation", False)


def test_the_timers_next_run_resumes_a_pending_rotation(slow_propagation, ids, azurite):
    response = call(
        "admin_rotate",
        method="POST",
        route="apps/acme/rotate",
        params={"facility": "acme"},
        body=b'{"force": true}',
        bearer=token(slow_propagation, ids, "SsoMonitor.Admin"),
    )
    assert response.status_code == 202
    empty_queue(azurite.connection_string)  # the message was lost: the timer finds the rotation in Key Vault anyway
    run_timer()
    assert [json.loads(text) for _, text in queued(azurite.connection_string)] == [{"facility": "acme", "reason": "resume"}]


def test_without_a_queue_the_202_says_the_timer_resumes_it(slow_propagation, ids, monkeypatch):
    service = admin._get_state().service

    async def no_queue(facility: str) -> bool:
        return False

    monkeypatch.setattr(service, "queue_resume", no_queue)
    response = call(
        "admin_rotate",
        method="POST",
        route="apps/acme/rotate",
        params={"facility": "acme"},
        body=b'{"force": true}',
        bearer=token(slow_propagation, ids, "SsoMonitor.Admin"),
    )
    result = json.loads(response.get_body())
    assert response.status_code == 202 and result["resume"] == "next-scheduled-run" and "the timer's next run resumes it" in result["message"]


def test_the_status_url_keeps_scheme_host_and_prefix_but_never_the_query(slow_propagation, ids):
    request = func.HttpRequest(
        method="POST",
        url="https://sso.example.net/api/apps/acme/rotate?code=the-function-key",
        headers={"Authorization": f"Bearer {token(slow_propagation, ids, 'SsoMonitor.Admin')}"},
        body=b'{"force": true}',
        route_params={"facility": "acme"},
    )
    response = asyncio.run(FUNCTIONS["admin_rotate"](request))
    assert response.status_code == 202
    assert response.headers["Location"] == "https://sso.example.net/api/apps/acme/rotation"
    assert "the-function-key" not in response.get_body().decode()


def test_a_quick_rotation_is_still_a_200(sandbox, ids, monkeypatch, tmp_path, azurite):
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, storage=azurite.connection_string)
    empty_queue(azurite.connection_string)
    try:
        response = call(
            "admin_rotate",
            method="POST",
            route="apps/acme/rotate",
            params={"facility": "acme"},
            body=b'{"force": true}',
            bearer=token(sandbox, ids, "SsoMonitor.Admin"),
        )
        assert response.status_code == 200 and json.loads(response.get_body())["stage"] == "awaiting-confirmation"
        assert "Location" not in response.headers and queued(azurite.connection_string) == []
    finally:
        admin.reset()


def test_a_run_past_the_answer_bound_goes_on_after_a_202(sandbox, ids, monkeypatch, tmp_path, azurite, caplog):
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, storage=azurite.connection_string)
    empty_queue(azurite.connection_string)
    forget_alert_state(azurite.connection_string)
    monkeypatch.setattr(admin, "ROTATE_ANSWER_WITHIN", 0.0)  # answer at once, whatever the run is doing
    request = func.HttpRequest(
        method="POST",
        url="/api/apps/acme/rotate",
        headers={"Authorization": f"Bearer {token(sandbox, ids, 'SsoMonitor.Admin')}"},
        body=b'{"force": true}',
        route_params={"facility": "acme"},
    )

    async def scenario():
        response = await FUNCTIONS["admin_rotate"](request)
        await admin_api.drain()  # the host's loop would carry it on; here the test waits for it
        return response

    try:
        response = asyncio.run(scenario())
    finally:
        admin.reset()
    assert response.status_code == 202, response.get_body()
    result = json.loads(response.get_body())
    assert (result["stage"], result["resume"], result["statusUrl"]) == ("running", "running", "/api/apps/acme/rotation")
    assert queued(azurite.connection_string) == []  # the run itself goes on: nothing for the worker
    assert stages(sandbox.world, ids)[-1] == "awaiting-confirmation"
    assert any("answered while it ran, ended at stage awaiting-confirmation" in r.getMessage() for r in caplog.records)


def test_the_rotation_route_refuses_bad_callers_and_input(slow_propagation, ids):
    def get(facility: str, bearer: str | None):
        return call("admin_rotation_status", route=f"apps/{facility}/rotation", params={"facility": facility}, bearer=bearer)

    assert get("acme", None).status_code == 401
    assert error_code(get("acme", token(slow_propagation, ids))) == "insufficient_role"
    reader = token(slow_propagation, ids, "SsoMonitor.Read")
    assert (get("nowhere", reader).status_code, error_code(get("nowhere", reader))) == (404, "unknown_facility")
    assert error_code(get("Not Valid", reader)) == "invalid_facility"
    answer = json.loads(get("acme", reader).get_body())
    assert (answer["stage"], answer["inFlight"], answer["leaseHeld"]) == ("current", False, False)


# ---------------------------------------------------------------- the lease held elsewhere


@pytest.fixture
def http_handoff_with_storage(sandbox, ids, monkeypatch, tmp_path, azurite):
    facility = sandbox.world.facility("acme")
    vault = sandbox.world.vault(ids.vault_name)
    sandbox.world.set_secret(vault, HANDOFF_TOKEN, next(iter(facility.api_tokens)))
    handoff = {"mode": "http", "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret", "tokenSecretName": HANDOFF_TOKEN}
    configure_admin_api(
        sandbox,
        ids,
        monkeypatch,
        tmp_path,
        facility="acme",
        verify={"successes": 1, "intervalSeconds": 0},
        app_overrides={"handoff": handoff},
        storage=azurite.connection_string,
    )
    yield sandbox
    admin.reset()


@pytest.fixture
def lease_held_elsewhere(ids, azurite):
    """acme's blob lease, taken as another worker's run would hold it."""
    with ContainerClient.from_connection_string(azurite.connection_string, "sso-monitor-leases") as leases:
        try:
            leases.create_container()
        except ResourceExistsError:
            pass
        blob = leases.get_blob_client(f"{ids.tenant_id}-{ids.smarttrace_app_id}")
        if not blob.exists():
            blob.upload_blob(b"")
        other = BlobLeaseClient(blob)
        other.acquire(lease_duration=15)
        try:
            yield other
        finally:
            other.release()


def test_confirm_and_push_while_another_run_holds_the_lease_are_409(http_handoff_with_storage, ids, lease_held_elsewhere, caplog):
    sandbox = http_handoff_with_storage
    before = stages(sandbox.world, ids)
    bearer = token(sandbox, ids, "SsoMonitor.Admin")
    confirm = call(
        "admin_confirm",
        method="POST",
        route="apps/acme/confirm",
        params={"facility": "acme"},
        body=json.dumps({"keyId": ids.smarttrace_key_id}).encode(),
        bearer=bearer,
    )
    push = call("admin_push", method="POST", route="apps/acme/push", params={"facility": "acme"}, body=b"{}", bearer=bearer)
    for response in (confirm, push):
        assert (response.status_code, error_code(response)) == (409, "rotation_busy"), response.get_body()
        assert "another run holds this app's lease" in json.loads(response.get_body())["error"]["message"]
    assert sandbox.world.facility("acme").received == [] and stages(sandbox.world, ids) == before
    # The rotation status says a run holds it.
    rotation = json.loads(call("admin_rotation_status", route="apps/acme/rotation", params={"facility": "acme"}, bearer=bearer).get_body())
    assert (rotation["leaseHeld"], rotation["inFlight"]) == (True, True)
    assert not any(r.levelno >= logging.ERROR and "Traceback" in r.getMessage() for r in caplog.records)
