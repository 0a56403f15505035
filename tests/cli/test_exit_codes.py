"""One exit-code rule for every command (docs/decisions.md, "Exit codes"), against the
sandbox: 0 ok, 1 warnings, 2 critical (a critical finding, an app that could not be
checked, a rotation that did not complete), 3 the monitor failed (bad usage, an
unknown facility, no app checked at all, an alert not delivered); the most severe
meaning wins and 2 beats 3: an undelivered alert never hides a critical.

An alert is made undeliverable by a Teams webhook that answers 500 (the flow fails to
start); the channel's backoff runs at once here (asyncio.sleep is made instant).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from sso_sandbox.settings import monitor_document

from .harness import assert_clean, issued, run_cli

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


@pytest.fixture
def instant_backoff(monkeypatch):
    real = asyncio.sleep

    async def instant(delay, result=None):
        return await real(0, result)

    monkeypatch.setattr(asyncio, "sleep", instant)


@pytest.fixture
def cli(sandbox, ids, tmp_path, monkeypatch, instant_backoff):
    """acme with a Teams channel on the sandbox's webhook; run(*args) runs the CLI with
    that configuration and alert state and checks the run is clean."""
    world = sandbox.world
    world.set_secret(world.vault(ids.vault_name), "teams-webhook", sandbox.endpoints.webhook_url(ids.webhook_id))
    document, environ = monitor_document(sandbox, facilities=["acme"])
    document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "teams-webhook"}}
    document["alerts"] = {"channels": ["teams"]}
    document["verify"] = {"successes": 1, "intervalSeconds": 0, "deadlineSeconds": 5}
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.delenv("SSO_MONITOR_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # the local lease's lock files
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state" / "alerts.json"

    def run(*args: str, config=path, alert: bool = True, stdin: bytes = b""):
        extra = ["--alert", "--alert-state", str(state)] if alert else []
        result = run_cli([*args, "--config", str(config), *extra], stdin=stdin)
        assert_clean(result, secrets=issued(world))
        return result

    run.document = document  # type: ignore[attr-defined]
    return run


@pytest.fixture
def two_apps(sandbox, ids, cli, tmp_path):
    """acme and a second facility on the tenant's other app registration."""
    document = json.loads(json.dumps(cli.document))
    document["apps"].append({"facility": "payroll", "tenantId": ids.tenant_id, "appId": ids.foreign_app_id})
    path = tmp_path / "two.json"
    path.write_text(json.dumps(document))
    return path


def webhook_fails(sandbox, ids) -> None:
    sandbox.world.webhooks[ids.webhook_id].mode = "error"  # HTTP 500: the workflow run failed to start


def webhook_works(sandbox, ids) -> None:
    sandbox.world.webhooks[ids.webhook_id].mode = "ok"


def critical(sandbox, ids) -> None:
    sandbox.world.find_app(ids.smarttrace_app_id).web["redirectUris"] = []  # REDIRECT_URI_MISSING: critical


def warning(sandbox, ids) -> None:
    sandbox.world.find_app(ids.smarttrace_app_id).web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/elsewhere"


def hand_over(sandbox, ids, key_id: str) -> None:
    """The administrator pastes the new secret into SmartTrace."""
    world = sandbox.world
    world.facility("acme").client_secret = next(
        v.value for v in world.vault(ids.vault_name).secrets[ids.vault_secret_name].versions if v.tags.get("keyId") == key_id
    )


# ---------------------------------------------------------------- check


def test_check_critical_with_an_undelivered_alert_exits_2(sandbox, ids, cli):
    critical(sandbox, ids)
    webhook_fails(sandbox, ids)
    run = cli("check")
    assert run.code == 2, run
    assert "REDIRECT_URI_MISSING" in run.out and "not delivered" in run.err


def test_check_warning_with_an_undelivered_alert_exits_3(sandbox, ids, cli):
    warning(sandbox, ids)
    webhook_fails(sandbox, ids)
    run = cli("check")
    assert run.code == 3 and "not delivered" in run.err, run
    webhook_works(sandbox, ids)
    assert cli("check").code == 1  # the kept notice goes out; the warning remains


def test_check_critical_with_its_alert_delivered_exits_2_and_ok_exits_0(sandbox, ids, cli):
    assert cli("check").code == 0
    critical(sandbox, ids)
    run = cli("check", "--json")
    assert run.code == 2 and json.loads(run.out)["apps"][0]["status"] == "critical", run
    assert len(sandbox.world.webhooks[ids.webhook_id].received) == 1


def test_check_when_no_app_could_be_checked_exits_3(sandbox, ids, cli):
    sandbox.faults.add("status", service="vault", status=403)
    sandbox.faults.add("status", service="graph", status=403)
    run = cli("check", alert=False)
    assert run.code == 3 and "1 app: 0 ok, 0 warnings, 0 critical, 1 error" in run.out, run
    assert "no app could be checked" in run.err  # for a script that reads only stderr


def test_check_of_one_app_that_could_not_be_checked_exits_2(sandbox, ids, cli, two_apps):
    """An app the monitor could not see is 2 (no one can vouch for it), not 3."""
    sandbox.faults.add("status", service="graph", path=f"re:{ids.foreign_app_id}", status=403)
    run = cli("check", "--json", config=two_apps, alert=False)
    statuses = {app["facility"]: app["status"] for app in json.loads(run.out)["apps"]}
    assert statuses["acme"] == "ok" and statuses["payroll"] in ("error", "critical"), statuses
    assert run.code == 2, run


def test_check_of_an_unknown_facility_exits_3(cli):
    run = cli("check", "--app", "nowhere")
    assert run.code == 3 and "no app for facility 'nowhere'" in run.err


# ---------------------------------------------------------------- rotate


def test_rotate_that_completes_with_an_undelivered_alert_exits_3(sandbox, ids, cli):
    webhook_fails(sandbox, ids)
    run = cli("rotate", "acme", "--force", "--json")
    assert json.loads(run.out)["error"] is None and json.loads(run.out)["stage"] == "awaiting-confirmation"
    assert run.code == 3 and "not delivered" in run.err, run


def test_rotate_that_fails_with_an_undelivered_alert_exits_2(sandbox, ids, cli):
    webhook_fails(sandbox, ids)
    sandbox.faults.add(
        "status",
        service="graph",
        path="re:addPassword",
        status=403,
        code="Authorization_RequestDenied",
        message="Insufficient privileges to complete the operation.",
    )
    run = cli("rotate", "acme", "--force", "--json")
    assert json.loads(run.out)["error"], run
    assert run.code == 2 and "not delivered" in run.err, run


def test_rotate_that_fails_exits_2_and_one_that_completes_exits_0(sandbox, ids, cli):
    rule = sandbox.faults.add("status", service="graph", path="re:addPassword", status=403)
    assert cli("rotate", "acme", "--force").code == 2
    sandbox.faults.rules.remove(rule)
    assert cli("rotate", "acme", "--force").code == 0


def test_a_dry_run_alerts_nothing_and_exits_0(sandbox, ids, cli):
    webhook_fails(sandbox, ids)
    run = cli("rotate", "acme", "--force", "--dry-run")
    assert run.code == 0 and "not delivered" not in run.err, run


# ---------------------------------------------------------------- confirm


def test_confirm_that_completes_with_an_undelivered_alert_exits_3(sandbox, ids, cli):
    key_id = json.loads(cli("rotate", "acme", "--force", "--json").out)["keyId"]
    hand_over(sandbox, ids, key_id)
    webhook_fails(sandbox, ids)
    run = cli("confirm", "acme", "--key-id", key_id)
    assert "acme: current" in run.out
    assert run.code == 3 and "not delivered" in run.err, run
    assert sandbox.world.sign_in_works("acme")


def test_confirm_that_completes_exits_0_and_one_of_an_unknown_key_exits_2(sandbox, ids, cli):
    key_id = json.loads(cli("rotate", "acme", "--force", "--json").out)["keyId"]
    hand_over(sandbox, ids, key_id)
    assert cli("confirm", "acme", "--key-id", "00000000-0000-0000-0000-000000000000").code == 2
    assert cli("confirm", "acme", "--key-id", key_id.upper()).code == 0


def test_confirm_of_an_unknown_facility_exits_3(cli):
    run = cli("confirm", "nowhere", "--key-id", "00000000-0000-0000-0000-000000000000")
    assert run.code == 3 and "no app for facility 'nowhere'" in run.err


# ---------------------------------------------------------------- status


def test_status_exits_0_when_every_stage_is_read(cli, two_apps):
    run = cli("status", config=two_apps, alert=False)
    assert run.code == 0 and "acme: current" in run.out and "payroll: idle" in run.out, run


def test_status_of_an_app_whose_stage_cannot_be_read_exits_2(sandbox, cli, two_apps):
    sandbox.faults.add(
        "status", service="vault", path="re:smarttrace-payroll", status=403, code="Forbidden", message="The user does not have secrets list permission."
    )
    run = cli("status", config=two_apps, alert=False)
    assert run.code == 2, run
    assert "acme: current" in run.out and "payroll: the rotation stage could not be read" in run.err
    run = cli("status", "--json", config=two_apps, alert=False)
    document = json.loads(run.out)
    assert run.code == 2 and [a["facility"] for a in document["apps"]] == ["acme"] and document["errors"][0]["facility"] == "payroll"


def test_status_when_no_stage_can_be_read_exits_3(sandbox, cli):
    sandbox.faults.add("status", service="vault", status=403)
    run = cli("status", alert=False)
    assert run.code == 3 and "acme: the rotation stage could not be read" in run.err, run


# ---------------------------------------------------------------- push, adopt, snooze


def test_push_for_a_manual_handoff_cannot_run_exits_3(cli):
    run = cli("push", "acme", alert=False)
    assert run.code == 3 and "hands secrets off manually" in run.err, run


def test_adopt_exit_codes(sandbox, cli):
    secret = sandbox.world.facility("acme").client_secret
    assert cli("adopt", "acme", alert=False, stdin=b"").code == 3  # nothing to adopt: bad usage
    assert cli("adopt", "acme", alert=False, stdin=b"\xff\xfe\n").code == 3
    assert cli("adopt", "acme", alert=False, stdin=b"x" * 5000 + b"\n").code == 3
    assert cli("adopt", "acme", alert=False, stdin=b"not-a-secret-of-this-app\n").code == 2  # refused: the secret stays unmanaged
    assert cli("adopt", "acme", alert=False, stdin=secret.encode() + b"\n").code == 0


def test_snooze_exit_codes(sandbox, cli):
    until = (sandbox.world.now() + timedelta(days=5)).strftime("%Y-%m-%d")
    run = cli("snooze", "ACME", "LOGOUT_URL_MISMATCH", "--until", until, alert=False)
    assert run.code == 0 and run.out.startswith("acme: LOGOUT_URL_MISMATCH snoozed"), run  # the configured name, or nothing would match it
    assert cli("snooze", "acme", "LOGOUT_URL_MISMATCH", "--until", "9999-12-31T23:59:59-14:00", alert=False).code == 3
    assert cli("snooze", "acme", "LOGOUT_URL_MISMATCH", "--until", until, "--reason", "x" * 100_000, alert=False).code == 3


def test_a_snooze_of_a_facility_in_capitals_silences_it(sandbox, ids, cli, tmp_path):
    until = (sandbox.world.now() + timedelta(days=5)).strftime("%Y-%m-%d")
    state = tmp_path / "state" / "alerts.json"
    assert run_cli(["snooze", "ACME", "LOGOUT_URL_MISMATCH", "--until", until, "--config", str(tmp_path / "apps.json"), "--alert-state", str(state)]).code == 0
    warning(sandbox, ids)
    assert cli("check").code == 1
    assert sandbox.world.webhooks[ids.webhook_id].received == []  # snoozed: nothing said


# ---------------------------------------------------------------- -v on either side


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_before_or_after_the_command(cli, where):
    run = cli(*(["-v", "status"] if where == "before" else ["status", "-v"]), alert=False)
    assert run.code == 0 and run.verbose, run
