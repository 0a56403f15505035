"""The leak sweep over everything an unattended run emits (issue: no fragment of a
secret). SmartTrace refuses the push with an error that echoes 39 of the new secret's
40 characters; then every log record at DEBUG, every Teams card, every entity of every
Table, every queue message and every blob in the Function App's storage (Azurite) is
searched for any run of 8 characters of any secret the sandbox ever issued."""

from __future__ import annotations

import base64
import json
import logging

import azure.functions as func
from azure.data.tables import TableServiceClient
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from sso_monitor.functions import scheduled
from sso_monitor.redact import secret_parts
from sso_sandbox.settings import monitor_document
from tests.functions.test_scheduled import queued, run, storage  # noqa: F401  (storage: a fixture)

TOKEN_SECRET = "smarttrace-acme-handoff-token"


def runs_of_eight(text: str, secrets: list[str]) -> list[str]:
    """The secrets some run of 8 characters of which is in ``text``; a secret URL (a Teams
    webhook) by its signature, the part of it that is secret (redact.secret_parts)."""
    parts = [part for secret in secrets for part in secret_parts(secret)]
    return [s for s in parts if len(s) >= 8 and any(s[i : i + 8] in text for i in range(len(s) - 7))]


def everything_in_storage(connection: str) -> str:
    texts: list[str] = []
    for table in TableServiceClient.from_connection_string(connection).list_tables():
        client = TableServiceClient.from_connection_string(connection).get_table_client(table.name)
        texts += [json.dumps(dict(entity), default=str) for entity in client.list_entities()]
    queues = QueueServiceClient.from_connection_string(connection)
    for queue in queues.list_queues():
        for message in queues.get_queue_client(queue.name).peek_messages(max_messages=32):
            texts.append(message.content)
            try:
                texts.append(base64.b64decode(message.content).decode("utf-8", "replace"))
            except ValueError:
                pass
    blobs = BlobServiceClient.from_connection_string(connection)
    for container in blobs.list_containers():
        client = blobs.get_container_client(container.name)
        for blob in client.list_blobs():
            texts.append(client.download_blob(blob.name).readall().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_an_unattended_run_leaks_no_fragment_anywhere(sandbox, ids, storage, monkeypatch, tmp_path, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    world = sandbox.world
    facility = world.facility("acme")
    facility.echo_secret_in_errors = True
    vault = world.vault("kv-sso")
    world.set_secret(vault, TOKEN_SECRET, next(iter(facility.api_tokens)))
    world.set_secret(vault, "teams-webhook", sandbox.endpoints.webhook_url(ids.webhook_id))
    handoff = {"mode": "http", "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret", "tokenSecretName": TOKEN_SECRET}
    document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides={"acme": {"rotation": {"rotateBeforeDays": 90}, "handoff": handoff}})
    document["verify"] = {"successes": 2, "intervalSeconds": 0.05, "deadlineSeconds": 10}
    document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "teams-webhook"}}
    document["alerts"] = {"channels": ["teams"]}
    monkeypatch.setenv("SSO_MONITOR_CONFIG", json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AzureWebJobsStorage", storage)
    monkeypatch.setenv("HOME", str(tmp_path))
    scheduled.reset()
    try:
        run("scheduled_run", TimerRequest(past_due=False))
        ((message, text),) = queued(storage)
        try:
            run("rotation_worker", func.QueueMessage(id=message.id, body=text))
        except Exception:
            pass
        run("scheduled_run", TimerRequest(past_due=False))  # the run after: alerts about the failure, the stored report
    finally:
        scheduled.reset()
    assert [r.status for r in facility.received][-1] == 400, "SmartTrace never refused the push: the sweep proves nothing"
    cards = [json.dumps(payload) for payload in world.webhooks[ids.webhook_id].received]
    assert cards, "no card was sent: the sweep proves nothing"
    text = "\n".join([caplog.text, *cards, everything_in_storage(storage)])
    assert "secret_rejected" in text  # SmartTrace's code travelled; its free text did not
    assert not runs_of_eight(text, list(world.issued_secrets)), "8+ characters of a secret reached a log, card or storage"
