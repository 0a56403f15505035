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

from sso_monitor.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_sandbox_command_prints_endpoints_and_keeps_secrets_in_a_private_file(tmp_path):
    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "sso_monitor.cli", "sandbox", "--scenario", str(ROOT / "examples" / "scenario.json"), "--state-dir", str(state)],
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


def test_demo_reads_every_facility_through_the_real_sdks(capsys):
    assert main(["demo", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    by_name = {f["facility"]: f for f in report["facilities"]}
    assert len(by_name) == 7
    assert by_name["riverside"]["sign_in"] == "works"
    assert by_name["valley"]["sign_in"] == "rejected (AADSTS7000222)"  # expired
    assert by_name["lakeside"]["sign_in"] == "rejected (AADSTS7000215)"  # wrong value in the vault
    assert by_name["harbor"]["days_to_expiry"] in (11, 12)
    assert by_name["prairie"]["id_tokens"] is False
    assert by_name["summit"]["logout_url"].endswith("/summit-old")


def test_demo_table_for_people(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for facility in ("riverside", "harbor", "valley", "summit", "prairie", "lakeside", "orchard"):
        assert facility in out
