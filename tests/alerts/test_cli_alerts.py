"""`sso-monitor check --alert` and `sso-monitor snooze`, as a user runs them against
the sandbox, with the alert state in a local file."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest

from sso_monitor.cli.entry import main
from sso_sandbox.settings import monitor_document

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


@pytest.fixture
def cli(sandbox, ids, tmp_path, monkeypatch):
    """A configuration file for acme with a Teams channel, and its app settings."""
    world = sandbox.world
    world.set_secret(world.vault(ids.vault_name), "teams-webhook", sandbox.endpoints.webhook_url(ids.webhook_id))
    document, environ = monitor_document(sandbox, facilities=["acme"])
    document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "teams-webhook"}}
    document["alerts"] = {"channels": ["teams"]}
    document["verify"] = {"successes": 1, "intervalSeconds": 0}
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    return path, tmp_path / "state" / "alerts.json"


def cards(sandbox, ids) -> list[str]:
    return [json.dumps(p) for p in sandbox.world.webhooks[ids.webhook_id].received]


def test_check_alert_says_each_change_once(sandbox, ids, cli, capsys):
    config, state = cli
    app = sandbox.world.find_app(ids.smarttrace_app_id)
    app.web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/elsewhere"
    assert main(["check", "--config", str(config), "--alert", "--alert-state", str(state)]) == 1  # a warning
    assert len(cards(sandbox, ids)) == 1 and "LOGOUT_URL_MISMATCH" in cards(sandbox, ids)[0]
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    main(["check", "--config", str(config), "--alert", "--alert-state", str(state)])
    assert len(cards(sandbox, ids)) == 1  # nothing new: nothing sent
    app.web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme"
    assert main(["check", "--config", str(config), "--alert", "--alert-state", str(state)]) == 0
    assert len(cards(sandbox, ids)) == 2 and "resolved: LOGOUT_URL_MISMATCH" in cards(sandbox, ids)[1]


def test_without_alert_nothing_is_sent(sandbox, ids, cli):
    config, state = cli
    sandbox.world.find_app(ids.smarttrace_app_id).web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/elsewhere"
    main(["check", "--config", str(config)])
    assert cards(sandbox, ids) == [] and not state.exists()


def test_snooze_silences_a_finding(sandbox, ids, cli, capsys):
    config, state = cli
    until = (sandbox.world.now() + timedelta(days=5)).strftime("%Y-%m-%d")
    assert main(["snooze", "acme", "LOGOUT_URL_MISMATCH", "--until", until, "--reason", "moving", "--config", str(config), "--alert-state", str(state)]) == 0
    assert f"acme: LOGOUT_URL_MISMATCH snoozed until {until}" in capsys.readouterr().out
    sandbox.world.find_app(ids.smarttrace_app_id).web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/elsewhere"
    main(["check", "--config", str(config), "--alert", "--alert-state", str(state)])
    assert cards(sandbox, ids) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["acme", "NOT_A_CODE", "--until", "2099-01-01"], "unknown finding code 'NOT_A_CODE'"),
        (["nowhere", "LOGOUT_URL_MISMATCH", "--until", "2099-01-01"], "no app for facility 'nowhere'"),
        (["acme", "LOGOUT_URL_MISMATCH", "--until", "soon"], "ISO 8601"),
        (["acme", "LOGOUT_URL_MISMATCH", "--until", "2001-01-01"], "is not in the future"),
    ],
)
def test_snooze_refuses_bad_input(cli, capsys, args, message):
    config, state = cli
    assert main(["snooze", *args, "--config", str(config), "--alert-state", str(state)]) == 3
    assert message in capsys.readouterr().err


def test_an_undelivered_alert_is_kept_and_fails_the_run(sandbox, ids, cli, capsys):
    config, state = cli
    hook = sandbox.world.webhooks.pop(ids.webhook_id)  # the flow was deleted: 404, not retried
    sandbox.world.find_app(ids.smarttrace_app_id).web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/elsewhere"
    assert main(["check", "--config", str(config), "--alert", "--alert-state", str(state)]) == 3
    assert "not delivered" in capsys.readouterr().err
    sandbox.world.webhooks[ids.webhook_id] = hook  # re-created
    assert main(["check", "--config", str(config), "--alert", "--alert-state", str(state)]) == 1
    assert len(cards(sandbox, ids)) == 1  # the kept notice, delivered once


def test_rotate_and_confirm_alert_with_the_exact_steps(sandbox, ids, cli, capsys, monkeypatch):
    config, state = cli
    monkeypatch.setenv("HOME", str(state.parent))  # the local lease's lock files
    assert main(["rotate", "acme", "--force", "--json", "--config", str(config), "--alert", "--alert-state", str(state)]) == 0
    key_id = json.loads(capsys.readouterr().out)["keyId"]
    texts = cards(sandbox, ids)
    assert len(texts) == 2 and "rotation started" in texts[0] and f"sso-monitor confirm acme --key-id {key_id}" in texts[1]
    world = sandbox.world
    world.facility("acme").client_secret = next(
        v.value for v in world.vault(ids.vault_name).secrets[ids.vault_secret_name].versions if v.tags.get("keyId") == key_id
    )
    assert main(["confirm", "acme", "--key-id", key_id, "--config", str(config), "--alert", "--alert-state", str(state)]) == 0
    assert len(cards(sandbox, ids)) == 3 and "rotation completed" in cards(sandbox, ids)[2]
    # a dry run says nothing
    assert main(["rotate", "acme", "--force", "--dry-run", "--config", str(config), "--alert", "--alert-state", str(state)]) == 0
    assert len(cards(sandbox, ids)) == 3
