"""The command line: `sso-monitor sandbox` and `sso-monitor demo`, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests

from sso_monitor.cli.entry import main

ROOT = Path(__file__).resolve().parents[2]


def test_sandbox_command_prints_endpoints_and_keeps_secrets_in_a_private_file(tmp_path):
    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "sso_monitor.cli.entry", "sandbox", "--scenario", str(ROOT / "examples" / "scenario.json"), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("Settings"):
                break
        printed = "".join(lines)
        assert "Graph" in printed and "sandbox-ca.pem" in printed, printed
        settings_path = state / "sandbox-settings.json"
        assert stat.S_IMODE(os.stat(settings_path).st_mode) == 0o600
        settings = json.loads(settings_path.read_text())
        secret = settings["monitorIdentities"][0]["clientSecret"]
        assert secret and secret not in printed
        # the printed endpoints really answer, over the printed CA
        authority = settings["endpoints"]["authority"]
        tenant = settings["monitorIdentities"][0]["tenantId"]
        doc = requests.get(f"{authority}/{tenant}/v2.0/.well-known/openid-configuration", verify=settings["endpoints"]["caPath"], timeout=10)
        assert doc.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Sandbox stopped." in out


def test_demo_runs_the_real_check_on_the_sandbox(capsys):
    assert main(["demo", "--json"]) == 0  # findings are the demo's point; only a monitor failure fails it
    report = json.loads(capsys.readouterr().out)
    codes = {a["facility"]: [f["code"] for f in a["findings"]] for a in report["apps"]}
    assert codes["riverside"] == []
    assert "SECRET_EXPIRING" in codes["harbor"]
    assert "SECRET_EXPIRED" in codes["valley"]
    assert "LOGOUT_URL_MISMATCH" in codes["summit"]
    assert "ID_TOKENS_DISABLED" in codes["prairie"]
    assert "VAULT_SECRET_REJECTED" in codes["lakeside"]
    assert "NO_ASSIGNMENTS" in codes["orchard"]
    # summit's SmartTrace holds a wrong value: only its users' refused sign-ins show it
    assert codes["summit"] == ["LOGOUT_URL_MISMATCH", "SIGN_IN_FAILING"]


def _demo_secrets(world) -> set[str]:
    """Every secret value the demo's world holds: SmartTrace's, Key Vault's, Entra's, the monitor's own."""
    found = {f.client_secret for f in world.facilities.values()}
    found |= {v.value for vault in world.vaults.values() for secret in vault.secrets.values() for v in secret.versions}
    found |= {c.secret_text for t in world.tenants.values() for a in t.applications.values() for c in a.password_credentials}
    found |= {world.monitor_secret(t) for t in world.monitors}
    return {s for s in found if s and len(s) >= 16}


def test_demo_table_for_people(capsys, monkeypatch):
    import sso_sandbox.demo as demo

    made = []

    class Kept(demo.Sandbox):  # the demo's sandbox, kept to know its secrets afterwards
        @classmethod
        def from_scenario(cls, *args, **kwargs):
            made.append(super().from_scenario(*args, **kwargs))
            return made[-1]

    monkeypatch.setattr(demo, "Sandbox", Kept)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    [sandbox] = made
    secrets = _demo_secrets(sandbox.world)
    assert sandbox.world.facility("summit").client_secret in secrets and len(secrets) > 8
    assert not [s for s in secrets if s in out]  # no secret value, SmartTrace's wrong one included, in the output
    for facility in ("riverside", "harbor", "valley", "summit", "prairie", "lakeside", "meadow", "orchard"):
        assert facility in out
    assert "SECRET_EXPIRING" in out and "critical" in out
    # and the alerts, one Teams card per finding, into the sandbox's webhook
    alerts = out[out.index("Alerts: ") :]
    assert alerts.startswith("Alerts: 10 Teams cards posted to the webhook 'sso-alerts'")
    # one facility caught from its sign-ins: summit's SmartTrace holds a wrong value, Key Vault and Entra agree
    summit = out[out.index("\nsummit: ") : out.index("\n\n", out.index("\nsummit: ") + 1)]
    assert summit.startswith("\nsummit: critical")
    assert "SIGN_IN_FAILING 3 sign-in(s) through SmartTrace refused for the client secret (AADSTS7000215)" in summit
    assert "VAULT_SECRET_REJECTED" not in summit
    assert "[critical] summit: Entra's sign-in log shows SmartTrace's code redemptions for this app refused" in alerts
    # the facility whose app the monitor does not own: the exact command that fixes it
    assert "MONITOR_NOT_OWNER" in out and "az ad app owner add --id" in out
    assert "[critical] valley: client secret has expired: sign-in is broken" in alerts
    assert "[warning] summit: front-channel logout URL is not SmartTrace's callback for this facility" in alerts
    assert "riverside" not in alerts.split("Rotation:")[0]  # healthy: nothing to say
    # and a rotation whose handoff is confirmed by Entra's records, with its alerts
    rotation = out[out.index("Rotation: ") :]
    assert rotation.startswith("Rotation: harbor's client secret is due.")
    assert "the monitor leaves it alone" in rotation  # made by hand: not ours to remove
    assert "is the monitor's own (verified" in rotation  # verify's own token requests never confirm
    assert "the administrator pastes the new secret into SmartTrace and nurse@harbor.example signs in (it works)" in rotation
    [confirmed] = [line for line in rotation.splitlines() if line.startswith("  confirm: ")]
    assert confirmed.startswith("  confirm: Entra's records show SmartTrace using keyId ")
    assert "credential-activity report shows keyId" in confirmed and "(+10 min)" in confirmed
    assert "a successful sign-in through SmartTrace at" in confirmed
    assert "the demo's administrator confirmed" not in rotation  # nobody typed confirm
    assert "Alerts: 3 more Teams cards: [info] harbor: rotation started;" in rotation
    assert "sign-in with the new secret works: yes." in rotation


def test_check_with_a_bad_configuration_exits_3_and_runs_nothing(tmp_path, capsys, sandbox):
    bad = tmp_path / "apps.json"
    bad.write_text(json.dumps({"vaultUrl": sandbox.endpoints.vault(), "apps": [{"facility": "acme", "tenantId": "not-a-guid", "appId": "also-not"}]}))
    before = len(sandbox.world.requests)
    assert main(["check", "--config", str(bad)]) == 3
    err = capsys.readouterr().err
    assert "apps[0] (acme).tenantId: must be a tenant id (GUID)" in err
    assert "apps[0] (acme).appId: must be an application (client) id (GUID)" in err
    assert len(sandbox.world.requests) == before  # nothing was called


def test_check_unknown_facility_is_a_clear_error(tmp_path, capsys, sandbox):
    from sso_sandbox.settings import monitor_document

    document, environ = monitor_document(sandbox)
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(document))
    import os

    os.environ.update(environ)
    try:
        assert main(["check", "--config", str(path), "--app", "nowhere"]) == 3
    finally:
        for key in environ:
            os.environ.pop(key, None)
    assert "no app for facility 'nowhere'" in capsys.readouterr().err


def test_check_one_facility_from_the_setting(capsys, sandbox, monkeypatch):
    from sso_sandbox.settings import monitor_document

    document, environ = monitor_document(sandbox)
    monkeypatch.setenv("SSO_MONITOR_CONFIG", json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert main(["check", "--app", "acme", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [a["facility"] for a in report["apps"]] == ["acme"] and report["apps"][0]["status"] == "ok"
