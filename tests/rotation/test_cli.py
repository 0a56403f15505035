"""`sso-monitor rotate | status | confirm | adopt` as an operator runs them, against the sandbox."""

from __future__ import annotations

import io
import json

import pytest

from sso_monitor.cli.entry import main
from sso_sandbox.settings import monitor_document

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


@pytest.fixture
def cli(sandbox, tmp_path, monkeypatch, capsys):
    return cli_for(sandbox, tmp_path, monkeypatch, capsys)


def cli_for(sandbox, tmp_path, monkeypatch, capsys, **overrides):
    document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides={"acme": overrides})
    document["verify"] = {"successes": 2, "intervalSeconds": 0.05, "deadlineSeconds": 10}
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(tmp_path))  # the local lease's lock files go under ~/.cache

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", str(path)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_dry_run_prints_the_plan_and_changes_nothing(cli, sandbox):
    credentials = len(sandbox.world.find_app(sandbox.world.facility("acme").app_id).password_credentials)
    code, out, _ = cli("rotate", "acme", "--force", "--dry-run")
    assert code == 0
    assert "Dry run for acme: nothing was changed." in out and "create: would add a client secret" in out
    assert len(sandbox.world.find_app(sandbox.world.facility("acme").app_id).password_credentials) == credentials


def test_rotate_confirm_status_round_trip(cli, sandbox):
    world = sandbox.world
    code, out, _ = cli("rotate", "acme", "--force", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["stage"] == "awaiting-confirmation" and result["error"] is None
    key_id = result["keyId"]
    steps = next(e for e in result["events"] if e["kind"] == "awaiting-confirmation")["steps"]
    assert any(f"--key-id {key_id}" in step for step in steps)
    code, out, _ = cli("status")
    assert code == 0 and f"rotation in flight: keyId {key_id} (awaiting-confirmation)" in out
    # the administrator pastes the value from Key Vault into SmartTrace, then confirms
    vault = world.vault("kv-sso").secrets["smarttrace-acme"]
    world.facility("acme").client_secret = next(v for v in vault.versions if v.tags.get("keyId") == key_id).value
    code, out, _ = cli("confirm", "acme", "--key-id", key_id)
    assert code == 0 and "acme: current" in out
    code, out, _ = cli("status", "--json")
    (app,) = json.loads(out)["apps"]
    assert app["stage"] == "current" and app["currentKeyId"] == key_id  # the admin API's JSON style (camelCase)
    assert world.sign_in_works("acme")


def test_confirm_of_an_unknown_key_is_a_clear_error(cli):
    code, _, err = cli("confirm", "acme", "--key-id", "00000000-0000-0000-0000-000000000000")
    assert code == 2 and "no rotation of acme waits for keyId 00000000-0000-0000-0000-000000000000" in err


def test_adopt_reads_the_value_from_stdin_and_never_echoes_it(cli, sandbox, monkeypatch):
    facility = sandbox.world.facility("acme")
    monkeypatch.setattr("sys.stdin", io.StringIO(facility.client_secret + "\n"))
    code, out, err = cli("adopt", "acme")
    assert code == 0 and f"keyId {facility.key_id}" in out
    assert facility.client_secret not in out + err
    latest = sandbox.world.vault("kv-sso").secrets["smarttrace-acme"].latest
    assert latest.tags["managed"] == "true" and latest.tags["stage"] == "current"


def test_adopt_a_wrong_value_is_refused(cli, sandbox, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("not-a-secret-of-this-app\n"))
    code, _, err = cli("adopt", "acme")
    assert code == 2 and "no client secret of app" in err


def test_unknown_facility(cli):
    code, _, err = cli("rotate", "nowhere")
    assert code == 3 and "no app for facility 'nowhere'" in err


def test_rotate_reports_what_entras_records_said_as_findings(sandbox, tmp_path, monkeypatch, capsys):
    """The run's findings (here ACTIVITY_REPORT_UNAVAILABLE: confirmation by activity, and the
    monitor lacks AuditLog.Read.All) are in rotate --json as a check's findings are, and
    printed as lines; the run itself goes on as without them (a person confirms)."""
    cli = cli_for(sandbox, tmp_path, monkeypatch, capsys, handoff={"confirmation": "activity"})
    code, out, _ = cli("rotate", "acme", "--force", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["stage"] == "awaiting-confirmation" and result["error"] is None
    [found] = result["findings"]
    assert found["code"] == "ACTIVITY_REPORT_UNAVAILABLE" and found["severity"] == "warning"
    assert "AuditLog.Read.All" in found["message"] and f"keyId {result['keyId']}" in found["message"] and found["fix"]
    assert "AuditLog.Read.All" in found["details"]["reason"] and found["details"]["keyId"] == result["keyId"]  # camelCase keys
    assert f"sso-monitor confirm acme --key-id {result['keyId']}" in found["fix"] and "FACILITY" not in found["fix"]  # the fix names this app
    code, out, _ = cli("rotate", "acme")  # the next run finds the same, said as lines
    assert code == 0
    lines = out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("finding ACTIVITY_REPORT_UNAVAILABLE (warning): Entra's records cannot confirm")))
    assert lines[at + 1].startswith("    fix: ") and lines[-1].startswith("acme: awaiting-confirmation")
    secret = sandbox.world.vault("kv-sso").secrets["smarttrace-acme"].latest.value
    assert secret not in out


def test_a_run_without_findings_says_none(cli):
    code, out, _ = cli("rotate", "acme", "--force", "--json")
    assert code == 0 and json.loads(out)["findings"] == []
    code, out, _ = cli("rotate", "acme")
    assert code == 0 and "finding " not in out
