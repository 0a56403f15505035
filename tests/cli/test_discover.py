"""`sso-monitor discover` against the sandbox: a tenant with SmartTrace apps (one the
monitor owns and has configured, one it does not own, one known only by its redirect
URI), unrelated apps (one whose URLs merely contain "smarttrace.ai"), a SmartTrace app
on the staging host and one whose URLs name no facility."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import sso_monitor.adapters.graph.reader as graph_reader
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds, standard_world

from .harness import assert_clean, issued, run_cli

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

API = "https://api.smarttrace.ai/v1/auth/callback"
STAGING_API = "https://api.staging.smarttrace.ai/v1/auth/callback"


def smarttrace_web(facility: str, api: str = API, *, logout: bool = True) -> dict:
    return {
        "logoutUrl": f"{api}/azure-logout/{facility}" if logout else None,
        "redirectUris": [f"{api}/azure/{facility}"],
        "implicitGrantSettings": {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True},
    }


@pytest.fixture
def standard() -> tuple:
    """The standard world (acme, owned by the monitor; Payroll, unrelated) and more apps."""
    world, ids = standard_world()
    now, tenant = world.now(), ids.tenant_id
    # SmartTrace's, not owned by the monitor, its secret 10 days from its end
    riverside = world.add_application(tenant, "SmartTrace Riverside", web=smarttrace_web("riverside"))
    world.add_password(riverside, display_name="by hand", start=now - timedelta(days=170), end=now + timedelta(days=10))
    world.add_service_principal(riverside, app_role_assignment_required=True)
    # SmartTrace's by its redirect URI only, owned, with an expired certificate beside its secret
    summit = world.add_application(tenant, "Summit SSO", owners={ids.monitor_app_id}, web=smarttrace_web("summit", logout=False))
    world.add_password(summit, start=now - timedelta(days=10))
    world.add_key_credential(summit, start=now - timedelta(days=400), end=now - timedelta(days=2))
    world.add_service_principal(summit)
    # on SmartTrace's staging host
    harbor = world.add_application(tenant, "SmartTrace Harbor (staging)", web=smarttrace_web("harbor", STAGING_API))
    world.add_password(harbor)
    world.add_service_principal(harbor)
    # unrelated, though "smarttrace.ai" is in its URLs: not the host, or not a suffix by labels
    world.add_application(
        tenant,
        "Lookalike",
        web={"logoutUrl": "https://api.smarttrace.ai.example.com/v1/auth/callback/azure-logout/acme", "redirectUris": ["https://notsmarttrace.ai/cb/x"]},
    )
    # SmartTrace's host, but no facility in its URLs
    world.add_application(tenant, "SmartTrace (unnamed)", web={"redirectUris": ["https://api.smarttrace.ai/"]})
    return world, ids


@pytest.fixture
def setup(sandbox: Sandbox, ids: StandardIds, tmp_path, monkeypatch):
    """apps.json monitoring acme, hand-edited; run(*args) runs the CLI and checks it is clean."""
    document, environ = monitor_document(sandbox, facilities=["acme"])
    document["apps"][0].update(contacts=["plant-it@acme.example"], rotation={"mode": "notify-only"})
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(document, indent=2))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SSO_MONITOR_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        result = run_cli(list(args))
        assert_clean(result, secrets=issued(sandbox.world))
        return result

    run.path = path  # type: ignore[attr-defined]
    run.document = document  # type: ignore[attr-defined]
    return run


def monitor_sp(sandbox: Sandbox, ids: StandardIds) -> str:
    return sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id).object_id


def app_id(sandbox: Sandbox, ids: StandardIds, name: str) -> str:
    return next(a.app_id for a in sandbox.world.tenant(ids.tenant_id).applications.values() if a.display_name == name)


def test_finds_smarttrace_apps_skips_the_rest_and_reports_staging_apart(sandbox, ids, setup):
    result = setup("discover", "--config", str(setup.path))
    assert result.code == 0, result.err
    out = result.out
    main, _, rest = out.partition("Staging (")
    staging, _, after = rest.partition("\n\n")
    for facility in ("acme", "riverside", "summit"):
        assert f"  {facility} " in main
    assert "configured (acme)" in main and "to add (--write)" in main
    assert "harbor" in staging and "harbor" not in main and "--include-staging" in staging
    for unrelated in ("Payroll", "Lookalike", "SmartTrace SSO Monitor", "admin API"):
        assert unrelated not in out
    assert "SmartTrace (unnamed)" in out and "no facility name" in out  # SmartTrace's, but it cannot be configured
    assert "unchecked" in next(line for line in out.splitlines() if "not added: no facility name" in line)  # nothing to check it against
    assert "Not written: run again with --write FILE to add 2 apps (riverside, summit)." in out
    # health, from Graph alone (no Key Vault, no token request)
    assert "SECRET_EXPIRING" in main and "CERTIFICATE_EXPIRED" in main
    assert "VAULT_SECRET_MISSING" not in out
    assert sandbox.world.count_requests("vault") == 0 and sandbox.world.count_requests("entra", path_contains="/token") <= 2


def test_apps_the_monitor_does_not_own_get_the_exact_owner_command(sandbox, ids, setup):
    out = setup("discover", "--config", str(setup.path)).out
    riverside = app_id(sandbox, ids, "SmartTrace Riverside")
    command = f"az ad app owner add --id {riverside} --owner-object-id {monitor_sp(sandbox, ids)}"
    assert command in out
    # riverside and harbor (staging); acme and summit are owned; the unnamed app is not one the monitor would watch
    assert out.count("az ad app owner add") == 2
    assert "NOT OWNER" in next(line for line in out.splitlines() if line.strip().startswith("riverside"))
    assert riverside not in {a.app_id for a in sandbox.world.tenant(ids.tenant_id).applications.values() if ids.monitor_app_id in a.owners}


def test_write_merges_without_clobbering_and_check_accepts_the_result(sandbox, ids, setup):
    before = json.loads(setup.path.read_text())
    result = setup("discover", "--config", str(setup.path), "--write", str(setup.path))
    assert result.code == 0, result.err
    assert f"Wrote {setup.path}: 2 apps added (riverside, summit), 1 already configured." in result.out
    after = json.loads(setup.path.read_text())
    assert {k: v for k, v in after.items() if k != "apps"} == {k: v for k, v in before.items() if k != "apps"}
    assert after["apps"][0] == before["apps"][0]  # acme as edited by hand: contacts, notify-only
    added = {a["facility"]: a for a in after["apps"][1:]}
    assert set(added) == {"riverside", "summit"}  # not harbor (staging), not the unnamed one
    assert added["riverside"] == {"facility": "riverside", "tenantId": ids.tenant_id, "appId": app_id(sandbox, ids, "SmartTrace Riverside")}
    # the configuration is one `sso-monitor check` accepts; the discovered apps are checked
    checked = setup("check", "--config", str(setup.path), "--json")
    assert checked.code in (1, 2), checked.err  # findings, not a monitor failure
    report = {a["facility"]: [f["code"] for f in a["findings"]] for a in json.loads(checked.out)["apps"]}
    assert set(report) == {"acme", "riverside", "summit"}
    assert "MONITOR_NOT_OWNER" in report["riverside"] and "CERTIFICATE_EXPIRED" in report["summit"]
    assert "LOGOUT_URL_MISMATCH" not in report["riverside"] and "REDIRECT_URI_MISSING" not in report["summit"]  # the facility is the callbacks' own
    # again: nothing to add, the file is left as it is
    text = setup.path.read_text()
    again = setup("discover", "--write", str(setup.path))  # the --write file is the configuration to start from
    assert again.code == 0 and f"{setup.path} unchanged: nothing to add." in again.out
    assert setup.path.read_text() == text


def test_include_staging_adds_the_staging_app_with_its_own_api(sandbox, ids, setup, tmp_path):
    target = tmp_path / "with-staging.json"
    result = setup("discover", "--config", str(setup.path), "--write", str(target), "--include-staging")
    assert result.code == 0, result.err
    harbor = next(a for a in json.loads(target.read_text())["apps"] if a["facility"] == "harbor")
    assert harbor["apiBase"] == "https://api.staging.smarttrace.ai/v1" and harbor["facilityUrl"] == "https://harbor.staging.smarttrace.ai"
    assert setup("check", "--config", str(target), "--app", "harbor", "--json").code in (0, 1, 2)


def test_a_facility_name_taken_by_another_app_is_not_added(sandbox, ids, setup):
    document = json.loads(setup.path.read_text())
    document["apps"].append({"facility": "riverside", "tenantId": ids.tenant_id, "appId": ids.foreign_app_id})
    setup.path.write_text(json.dumps(document))
    result = setup("discover", "--config", str(setup.path), "--write", str(setup.path), "--json")
    assert result.code == 0, result.err
    found = {a["facility"]: a for a in json.loads(result.out)["apps"] if a["facility"]}
    assert found["riverside"]["added"] is False and "already configured for app" in found["riverside"]["notAdded"]
    assert [a["facility"] for a in json.loads(setup.path.read_text())["apps"]] == ["acme", "riverside", "summit"]


def test_onboarding_from_a_configuration_without_apps(sandbox, ids, setup, tmp_path):
    document = dict(setup.document, apps=[])
    start = tmp_path / "start.json"
    start.write_text(json.dumps(document))
    target = tmp_path / "new.json"
    result = setup("discover", "--config", str(start), "--write", str(target))
    assert result.code == 0, result.err
    written = json.loads(target.read_text())
    assert [a["facility"] for a in written["apps"]] == ["acme", "riverside", "summit"]
    assert "discover-placeholder" not in target.read_text()
    assert written["identities"] == document["identities"]


def test_json_output(sandbox, ids, setup):
    result = setup("discover", "--config", str(setup.path), "--json")
    report = json.loads(result.out)
    assert report["tenantId"] == ids.tenant_id and report["monitorObjectId"] == monitor_sp(sandbox, ids)
    by_name = {a["displayName"]: a for a in report["apps"]}
    assert set(by_name) == {"SmartTrace", "SmartTrace Riverside", "Summit SSO", "SmartTrace Harbor (staging)", "SmartTrace (unnamed)"}
    assert by_name["SmartTrace"]["configuredAs"] == "acme" and by_name["SmartTrace"]["owned"] is True
    assert by_name["SmartTrace Riverside"]["ownerCommand"].startswith("az ad app owner add --id ")
    assert by_name["SmartTrace Harbor (staging)"]["environment"] == "staging" and by_name["SmartTrace Harbor (staging)"]["added"] is False
    assert report["written"] is None and report["scanned"] == len(sandbox.world.tenant(ids.tenant_id).applications)


def test_the_list_is_read_page_after_page(sandbox, ids, setup, monkeypatch):
    monkeypatch.setattr(graph_reader, "LIST_PAGE_SIZE", 2)
    report = json.loads(setup("discover", "--config", str(setup.path), "--json").out)
    pages = sum(1 for r in list(sandbox.world.requests) if (r.service, r.method, r.path) == ("graph", "GET", "/v1.0/applications"))
    total = len(sandbox.world.tenant(ids.tenant_id).applications)
    assert report["scanned"] == total and pages == -(-total // 2)
    assert len(report["apps"]) == 5


def test_a_tenant_it_cannot_read_is_a_monitor_failure(sandbox, ids, setup):
    sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id).granted_roles = {}  # consent never given
    result = setup("discover", "--config", str(setup.path), "--write", str(setup.path))
    assert result.code == 3 and "cannot read the applications of tenant" in result.err and "403" in result.err
    assert json.loads(setup.path.read_text()) == setup.document | {"apps": json.loads(setup.path.read_text())["apps"]}


def test_the_configuration_may_come_from_sso_monitor_config(sandbox, ids, setup, monkeypatch, tmp_path):
    """As every other command: SSO_MONITOR_CONFIG, a path or the JSON itself."""
    target = tmp_path / "from-env.json"
    monkeypatch.setenv("SSO_MONITOR_CONFIG", str(setup.path))
    result = setup("discover", "--write", str(target))
    assert result.code == 0, result.err
    assert [a["facility"] for a in json.loads(target.read_text())["apps"]] == ["acme", "riverside", "summit"]
    monkeypatch.setenv("SSO_MONITOR_CONFIG", json.dumps(setup.document))
    report = json.loads(setup("discover", "--json").out)
    assert report["tenantId"] == ids.tenant_id and report["apps"]


def test_without_a_configuration_it_says_what_it_needs(setup, tmp_path):
    result = setup("discover", "--write", str(tmp_path / "missing.json"))
    assert result.code == 3 and "needs a configuration to start from" in result.err


def test_a_configuration_naming_no_single_tenant_needs_tenant(setup, tmp_path, ids):
    document = dict(setup.document, apps=[])
    document.pop("homeTenantId")
    start = tmp_path / "start.json"
    start.write_text(json.dumps(document))
    assert "--tenant" in setup("discover", "--config", str(start)).err
    assert setup("discover", "--config", str(start), "--tenant", ids.tenant_id).code == 0
