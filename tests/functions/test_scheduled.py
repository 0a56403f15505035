"""The unattended part: timer -> queue -> worker, against the sandbox and Azurite
(Blob for the per-app lease, Queue for the work). The functions are called
directly, as the Functions host would call them."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.timer import TimerRequest  # func.TimerRequest is the abstract one
from azure.storage.blob import BlobLeaseClient, ContainerClient
from azure.storage.queue import QueueClient

from sso_monitor.checks.findings import finding
from sso_monitor.checks.run import AppResult, CheckReport
from sso_monitor.config import RotationPolicy, parse_config
from sso_monitor.errors import TransientError
from sso_monitor.functions import scheduled
from sso_monitor.rotation.ports import POISON_QUEUE, WORK_QUEUE, VaultVersion, WorkItem
from sso_monitor.rotation.schedule import AppState, app_state, work_due
from sso_monitor.service import WorkFailed, alert_summary, plan_work
from sso_sandbox.settings import monitor_document
from tests.app_functions import functions_by_name
from tests.azurite import forget_alert_state

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


@functools.cache
def functions() -> dict:
    return functions_by_name()


NOW = datetime(2025, 6, 1, tzinfo=UTC)
POLICY = RotationPolicy(rotate_before_days=30, grace_days=7)


def run(name: str, argument) -> None:
    result = functions()[name].get_user_function()(argument)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


# ---------------------------------------------------------------- bindings


def test_bindings():
    timer = functions()["scheduled_run"].get_trigger().get_dict_repr()
    assert (timer["type"], timer["schedule"], timer["runOnStartup"]) == ("timerTrigger", "%SSO_MONITOR_SCHEDULE%", False)
    for name, queue in (("rotation_worker", "sso-monitor-work"), ("poison_alert", "sso-monitor-work-poison")):
        trigger = functions()[name].get_trigger().get_dict_repr()
        assert (trigger["type"], trigger["queueName"], trigger["connection"]) == ("queueTrigger", queue, "AzureWebJobsStorage")
    assert (scheduled.WORK_QUEUE, scheduled.POISON_QUEUE) == (WORK_QUEUE, POISON_QUEUE)  # the literals agree with the core's


# ---------------------------------------------------------------- the decision


def version(stage: str | None, **tags: str) -> VaultVersion:
    return VaultVersion(f"v-{stage}", {**({"stage": stage} if stage else {}), "keyId": f"key-{stage}", **tags})


def days(n: float) -> datetime:
    return NOW + timedelta(days=n)


PAST_GRACE = {"previousSince": (NOW - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")}
IN_GRACE = {"previousSince": (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.mark.parametrize(
    "policy, state, expected",
    [
        # 64 days left, nothing in Key Vault to do: nothing queued
        (POLICY, AppState(True, days(64), (version("current"),)), None),
        # inside rotateBeforeDays: rotate
        (POLICY, AppState(True, days(29), (version("current"),)), "rotate"),
        # exactly at the boundary counts as due (rotation_due's <=)
        (POLICY, AppState(True, days(30), (version("current"),)), "rotate"),
        # already expired: rotate
        (POLICY, AppState(True, days(-1), (version("current"),)), "rotate"),
        # the app has no secret at all (SECRET_MISSING): the protocol creates one
        (POLICY, AppState(True, None), "rotate"),
        # the registration could not be read: unknown is not "none", nothing queued
        (POLICY, AppState(False, None), None),
        # notify-only: the check's findings tell the administrator; no worker run
        (RotationPolicy(mode="notify-only"), AppState(True, days(3), (version("current"),)), None),
        # a rotation waiting for verification: resume it, even when not due
        (POLICY, AppState(True, days(64), (version("current"), version("pending"))), "resume"),
        # a manual handoff waiting: resume (the run sends reminders at thresholds)
        (POLICY, AppState(True, days(64), (version("current"), version("awaiting-confirmation"))), "resume"),
        # in flight wins over due: the run resumes before it would start anew
        (POLICY, AppState(True, days(2), (version("current"), version("verified"))), "resume"),
        # in flight even when the registration could not be read (Key Vault says so)
        (POLICY, AppState(False, None, (version("handed-off"),)), "resume"),
        # a previous version past its grace period: retire
        (POLICY, AppState(True, days(170), (version("previous", **PAST_GRACE), version("current"))), "retire"),
        # still within grace: nothing
        (POLICY, AppState(True, days(170), (version("previous", **IN_GRACE), version("current"))), None),
        # a previous version tagged without a date is never retired
        (POLICY, AppState(True, days(170), (version("previous"), version("current"))), None),
        # an orphan credential (ours, not in Key Vault): sweep
        (POLICY, AppState(True, days(64), (version("current"),), orphans=1), "sweep"),
        # notify-only still retires and sweeps (the protocol does, in that mode too)
        (RotationPolicy(mode="notify-only"), AppState(True, days(3), (version("current"),), orphans=2), "sweep"),
    ],
)
def test_work_due(policy, state, expected):
    assert work_due(policy, state, NOW) == expected


@pytest.mark.parametrize(
    "expires, codes, known, orphans",
    [
        (days(10), ["SECRET_EXPIRING"], True, 0),  # the check found the secret in use
        (None, ["SECRET_MISSING"], True, 0),  # read, and there is none
        (None, ["CHECK_FAILED"], False, 0),  # the read failed
        (None, ["APP_NOT_FOUND"], False, 0),
        (days(64), ["ORPHAN_CREDENTIAL", "ORPHAN_CREDENTIAL"], True, 2),
    ],
)
def test_app_state_from_the_check(expires, codes, known, orphans):
    result = AppResult(app=None, findings=[finding(code, "m") for code in codes], secret_expires=expires)  # type: ignore[arg-type]
    state = app_state(result, [])
    assert (state.secret_known, state.secret_end, state.orphans) == (known, expires, orphans)


class FakeVault:
    def __init__(self, versions=None, down: bool = False) -> None:
        self._versions, self.down = versions or [], down

    async def versions(self, name: str) -> list:
        if self.down:
            raise TransientError("vault", f"versions of {name}: 503 ServiceUnavailable", status=503)
        return list(self._versions)


def test_plan_isolates_an_app_whose_versions_cannot_be_read():
    tenant, app_id = "72f988bf-0000-4000-8000-000000000001", "11111111-2222-4333-8444-555555555555"
    config = parse_config({"vaultUrl": "https://kv.vault.azure.net", "apps": [{"facility": "acme", "tenantId": tenant, "appId": app_id}]}, {})
    report = CheckReport(results=[AppResult(config.apps[0], [], secret_expires=days(10))], started=NOW)
    plan = asyncio.run(plan_work(config, report, FakeVault(), NOW))
    assert plan.work == [WorkItem("acme", "rotate")] and plan.failures == []
    plan = asyncio.run(plan_work(config, report, FakeVault(down=True), NOW))
    assert plan.work == [] and plan.failures == ["acme: Key Vault versions unreadable: vault: versions of smarttrace-acme: 503 ServiceUnavailable"]
    assert (
        alert_summary(plan, [])
        == "1 app: 1 ok; queued 0; 1 failed: acme: Key Vault versions unreadable: vault: versions of smarttrace-acme: 503 ServiceUnavailable"
    )


# ---------------------------------------------------------------- timer -> queue -> worker


@pytest.fixture
def storage(azurite) -> str:
    """Azurite's connection string, with the work queue empty and no alert state."""
    connection = azurite.connection_string
    with QueueClient.from_connection_string(connection, WORK_QUEUE) as queue:
        try:
            queue.delete_queue()
        except ResourceNotFoundError:
            pass
    forget_alert_state(connection)
    return connection


@pytest.fixture
def configure(sandbox, storage, monkeypatch, tmp_path):
    """configure(**rotation): the Function App's settings for acme, on the sandbox and Azurite."""

    def apply(teams: str | None = None, **rotation) -> None:
        """teams: a webhook id of the sandbox, the only alert channel (default and operations)."""
        overrides = {"acme": {"rotation": rotation}} if rotation else None
        document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides=overrides)
        document["verify"] = {"successes": 2, "intervalSeconds": 0.05, "deadlineSeconds": 10}
        if teams:
            sandbox.world.set_secret(sandbox.world.vault("kv-sso"), "teams-webhook", sandbox.endpoints.webhook_url(teams))
            document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "teams-webhook"}}
            document["alerts"] = {"channels": ["teams"]}
        monkeypatch.setenv("SSO_MONITOR_CONFIG", json.dumps(document))
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AzureWebJobsStorage", storage)
        monkeypatch.setenv("HOME", str(tmp_path))
        scheduled.reset()

    yield apply
    scheduled.reset()


def queued(connection: str) -> list:
    """The work queue's messages, received (invisible for a while) and decoded by hand:
    the Functions queue trigger expects base64 by default."""
    with QueueClient.from_connection_string(connection, WORK_QUEUE) as queue:
        try:
            return [(m, base64.b64decode(m.content).decode()) for m in queue.receive_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


def lease_blob(ids) -> str:
    return f"{ids.tenant_id}-{ids.smarttrace_app_id}"  # rotation.lease_key: one blob per app


def versions_of(sandbox) -> list:
    return sandbox.world.vault("kv-sso").secrets["smarttrace-acme"].versions


def test_timer_queues_one_message_for_a_due_app_and_the_worker_rotates_it(sandbox, ids, storage, configure, caplog):
    configure(rotateBeforeDays=90)  # acme's secret has 64 days left
    run("scheduled_run", TimerRequest(past_due=False))
    messages = queued(storage)
    assert [json.loads(text) for _, text in messages] == [{"facility": "acme", "reason": "rotate"}]
    assert any(r.message.startswith("alert summary: 1 app: 1 ok; queued 1: acme (rotate)") for r in caplog.records)

    message, text = messages[0]
    run("rotation_worker", func.QueueMessage(id=message.id, body=text))
    stages = [v.tags.get("stage") for v in versions_of(sandbox)]
    assert stages[-1] == "awaiting-confirmation"  # manual handoff: the administrator pastes it
    with ContainerClient.from_connection_string(storage, "sso-monitor-leases") as leases:
        assert leases.get_blob_client(lease_blob(ids)).exists()  # the blob lease was used


def test_a_world_with_nothing_due_queues_nothing(sandbox, storage, configure, caplog):
    configure()  # default rotateBeforeDays 30; 64 days left
    run("scheduled_run", TimerRequest(past_due=True))
    assert queued(storage) == []
    assert any(r.message == "alert summary: 1 app: 1 ok; queued 0" for r in caplog.records)


def test_malformed_or_unknown_messages_are_dropped_not_retried(sandbox, configure, caplog):
    configure()
    before = len(versions_of(sandbox))
    for body in (b"{not json", b"[1]", b'{"facility": "acme", "reason": "explode"}', b"[" * 70_000, b'{"facility": "nowhere", "reason": "rotate"}'):
        run("rotation_worker", func.QueueMessage(id="m1", body=body))  # no exception: the host would retry it
    assert len(versions_of(sandbox)) == before
    dropped = [r for r in caplog.records if r.levelno == logging.ERROR and "dropped message m1" in r.getMessage()]
    assert len(dropped) == 5 and not any("{not json" in r.getMessage() for r in dropped)


def test_a_lease_held_elsewhere_is_not_an_error(sandbox, ids, storage, configure, caplog):
    configure(rotateBeforeDays=90)
    with ContainerClient.from_connection_string(storage, "sso-monitor-leases") as leases:
        try:
            leases.create_container()
        except ResourceExistsError:
            pass
        blob = leases.get_blob_client(lease_blob(ids))
        if not blob.exists():
            blob.upload_blob(b"")
        other = BlobLeaseClient(blob)
        other.acquire(lease_duration=15)  # another worker's run
        try:
            before = len(versions_of(sandbox))
            run("rotation_worker", func.QueueMessage(id="m2", body='{"facility": "acme", "reason": "rotate"}'))
            assert len(versions_of(sandbox)) == before
            assert any("another run holds its lease" in r.getMessage() for r in caplog.records)
        finally:
            other.release()


def test_a_transient_failure_raises_so_the_platform_retries(sandbox, configure):
    configure(rotateBeforeDays=90)
    sandbox.faults.add("status", service="vault", status=503)  # Key Vault is down, for good
    with pytest.raises(WorkFailed, match="rotation of acme failed") as raised:
        run("rotation_worker", func.QueueMessage(id="m3", body='{"facility": "acme", "reason": "rotate"}'))
    assert "503" in str(raised.value) and raised.value.__cause__ is None  # chained SDK errors stay out of the host's log


# ---------------------------------------------------------------- poison


def test_the_poison_queue_raises_an_alert(caplog):
    # No configuration, no sandbox: the alert (a log line) must work when loading them is what failed.
    run("poison_alert", func.QueueMessage(id="p1", body='{"facility": "acme", "reason": "rotate"}'))
    run("poison_alert", func.QueueMessage(id="p2", body="secret-looking garbage"))
    alerts = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.getMessage().startswith("alert:")]
    assert len(alerts) == 2
    assert "for acme (rotate)" in alerts[0] and "sso-monitor-work-poison" in alerts[0]
    assert "(malformed)" in alerts[1] and "garbage" not in alerts[1]


def card_texts(sandbox, webhook_id) -> list[str]:
    return [json.dumps(payload) for payload in sandbox.world.webhooks[webhook_id].received]


def test_timer_and_worker_alert_through_the_channels(sandbox, ids, storage, configure):
    configure(teams=ids.webhook_id, rotateBeforeDays=90)
    run("scheduled_run", TimerRequest(past_due=False))  # healthy (64 days left): nothing to say
    assert card_texts(sandbox, ids.webhook_id) == []
    ((message, text),) = queued(storage)
    run("rotation_worker", func.QueueMessage(id=message.id, body=text))
    cards = card_texts(sandbox, ids.webhook_id)
    assert len(cards) == 2 and "acme: rotation started" in cards[0] and "acme: rotation awaiting confirmation" in cards[1]
    assert "sso-monitor confirm acme --key-id" in cards[1]  # the exact steps
    # the platform delivers the same message again: nothing is said twice
    run("rotation_worker", func.QueueMessage(id=message.id, body=text))
    assert len(card_texts(sandbox, ids.webhook_id)) == 2


def test_the_poison_queue_alerts_the_operations_channel(sandbox, ids, storage, configure):
    configure(teams=ids.webhook_id)
    run("poison_alert", func.QueueMessage(id="p1", body='{"facility": "acme", "reason": "rotate"}'))
    (card,) = card_texts(sandbox, ids.webhook_id)
    assert "sso-monitor-work-poison" in card and "for acme (rotate)" in card
