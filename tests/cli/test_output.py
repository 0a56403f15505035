"""Output that fits scripts and people: fix texts that name the real facility, its URLs and ids."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sso_monitor.config import parse_config
from sso_sandbox.settings import monitor_document

from .harness import assert_clean, issued, run_cli

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

HANDOFF_TOKEN = "smarttrace-handoff-token"


@pytest.fixture
def acme(sandbox, ids, tmp_path, monkeypatch):
    """acme, 10 days from the end of its secret (SECRET_EXPIRING with details), with
    SmartTrace's http handoff (push works); run(*args) runs the CLI on that configuration."""
    world = sandbox.world
    world.find_app(ids.smarttrace_app_id).credential(ids.smarttrace_key_id).end = world.now() + timedelta(days=10)
    facility = world.facility("acme")
    world.set_secret(world.vault(ids.vault_name), HANDOFF_TOKEN, next(iter(facility.api_tokens)))
    handoff = {"mode": "http", "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret", "tokenSecretName": HANDOFF_TOKEN}
    document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides={"acme": {"handoff": handoff}})
    document["verify"] = {"successes": 1, "intervalSeconds": 0, "deadlineSeconds": 5}
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    for key in ("AzureWebJobsStorage", "SSO_MONITOR_CONFIG", "NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # the local lease's lock files
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: bytes = b""):
        result = run_cli([*args, "--config", str(path)], stdin=stdin)
        assert_clean(result, secrets=issued(world))
        return result

    run.path = path  # type: ignore[attr-defined]
    run.config = lambda: parse_config(document, environ)  # type: ignore[attr-defined]
    return run


# ---------------------------------------------------------------- fix texts


def test_fix_texts_name_the_facility_and_its_urls(acme, sandbox, ids):
    sandbox.world.find_app(ids.smarttrace_app_id).web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/elsewhere"
    report = json.loads(acme("check", "--json").out)
    fixes = {f["code"]: f["fix"] for f in report["apps"][0]["findings"]}
    assert "sso-monitor rotate acme" in fixes["SECRET_EXPIRING"] and "https://acme.smarttrace.ai" in fixes["SECRET_EXPIRING"]
    assert "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme" in fixes["LOGOUT_URL_MISMATCH"]
    assert ids.smarttrace_app_id in fixes["LOGOUT_URL_MISMATCH"]
    text = acme("check").out
    for placeholder in ("FACILITY", "<facility>", "your SmartTrace app", "the expected URL"):
        assert placeholder not in text and placeholder not in json.dumps(report), placeholder
