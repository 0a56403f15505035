"""Configuration: defaults and overrides, and every error naming the app and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from sso_monitor.config import ConfigError, deployment_id, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
T1 = "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11"
T2 = "a8e3d9c4-6b12-4f7a-8e5d-2c9b0f1e3d22"
A1 = "11111111-2222-4333-8444-555555555555"
A2 = "66666666-7777-4888-9999-000000000000"

BASE = {
    "vaultUrl": "https://kv-sso.vault.azure.net",
    "homeTenantId": T1,
    "defaults": {"rotation": {"lifetimeDays": 120, "graceDays": 3}, "thresholds": [21, 7, 2]},
    "apps": [
        {"facility": "acme", "tenantId": T1, "appId": A1},
        {"facility": "globex", "tenantId": T2, "appId": A2, "apiBase": "https://api.staging.smarttrace.ai/v1", "rotation": {"mode": "notify-only"}, "thresholds": [45, 10]},
    ],
}


def test_defaults_apply_and_apps_override_field_by_field():
    config = parse_config(BASE, environ={})
    acme, globex = config.apps
    assert acme.api_base == "https://api.smarttrace.ai/v1"
    assert acme.facility_url == "https://acme.smarttrace.ai"
    assert acme.vault_secret_name == "smarttrace-acme"
    assert acme.rotation.lifetime_days == 120 and acme.rotation.grace_days == 3 and acme.rotation.mode == "auto"
    assert acme.thresholds == (21, 7, 2)
    assert acme.expected_logout_url == "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme"
    assert acme.expected_redirect_uri == "https://api.smarttrace.ai/v1/auth/callback/azure/acme"
    # a nested override keeps the other default fields of that section
    assert globex.rotation.mode == "notify-only" and globex.rotation.lifetime_days == 120
    assert globex.thresholds == (45, 10)
    assert globex.expected_logout_url == "https://api.staging.smarttrace.ai/v1/auth/callback/azure-logout/globex"
    assert config.cloud.graph_scope == "https://graph.microsoft.com/.default"
    assert config.identity_for(T2).kind == "default"


def test_a_handoff_host_may_be_allowed_explicitly():
    data = copy.deepcopy(BASE)
    data["apps"][0]["handoff"] = {"mode": "http", "url": "https://relay.contoso.example/smarttrace", "tokenSecretName": "acme-token", "allowedHosts": ["relay.contoso.example"]}
    assert parse_config(data, environ={}).apps[0].handoff.allowed_hosts == ("relay.contoso.example",)


def test_settings_vault_defaults_to_the_facility_vault():
    assert parse_config(BASE, environ={}).settings_vault_url == BASE["vaultUrl"]
    split = parse_config({**BASE, "settingsVaultUrl": "https://kv-sso-settings.vault.azure.net"}, environ={})
    assert split.vault_url == BASE["vaultUrl"]
    assert split.settings_vault_url == "https://kv-sso-settings.vault.azure.net"
    with pytest.raises(ConfigError, match="settingsVaultUrl"):
        parse_config({**BASE, "settingsVaultUrl": "http://kv.example"}, environ={})


def test_sovereign_cloud_scope_follows_the_graph_host():
    config = parse_config({**BASE, "cloud": {"graphEndpoint": "https://graph.microsoft.us/v1.0", "authority": "https://login.microsoftonline.us"}}, environ={})
    assert config.cloud.graph_scope == "https://graph.microsoft.us/.default"


def test_client_secret_identity_reads_its_setting_and_hides_it():
    data = {**BASE, "identities": {T1: {"kind": "client-secret", "clientId": A1, "clientSecretSetting": "SANDBOX_SECRET"}}}
    config = parse_config(data, environ={"SANDBOX_SECRET": "s3cr3t-value"})
    identity = config.identity_for(T1)
    assert identity.secret.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(config)


def test_load_from_a_file_or_from_the_setting(tmp_path):
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(BASE))
    assert load_config(path, environ={}).apps[0].facility == "acme"
    assert load_config(None, environ={"SSO_MONITOR_CONFIG": json.dumps(BASE)}).apps[1].facility == "globex"
    assert load_config(None, environ={"SSO_MONITOR_CONFIG": str(path)}).apps[0].facility == "acme"


def test_the_example_configuration_loads(monkeypatch):
    config = load_config(ROOT / "examples" / "apps.json", environ={})
    assert config.apps


def with_change(path: str, value) -> dict:
    data = copy.deepcopy(BASE)
    parts = path.replace("]", "").replace("[", ".").split(".")
    target = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    last = parts[-1]
    if value is DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("apps[0].tenantId", "contoso", "apps[0] (acme).tenantId: must be a tenant id (GUID), not 'contoso'"),
        ("apps[1].appId", DELETE, "apps[1] (globex).appId: required"),
        ("apps[0].facility", "Acme Plant", "apps[0] (Acme Plant).facility: must be the SmartTrace instance name"),
        ("apps[0].apiBase", "http://api.smarttrace.ai/v1", "apps[0] (acme).apiBase: must be an https:// URL"),
        ("apps[0].rotation", {"mode": "yolo"}, "apps[0] (acme).rotation.mode: must be auto or notify-only, not 'yolo'"),
        ("apps[0].rotation", {"rotateBeforeDays": 60, "lifetimeDays": 30}, "apps[0] (acme).rotation.lifetimeDays: must be longer than rotateBeforeDays (60)"),
        ("apps[0].handoff", {"mode": "http"}, "apps[0] (acme).handoff.url: required"),
        ("apps[0].handoff", {"mode": "carrier-pigeon"}, "apps[0] (acme).handoff.mode: must be manual or http"),
        ("apps[0].thresholds", [7, 7], "apps[0] (acme).thresholds: must be a list of distinct whole days"),
        ("apps[0].thresholds", ["30"], "apps[0] (acme).thresholds: must be a list of distinct whole days"),
        ("apps[0].maxActiveSecrets", 0, "apps[0] (acme).maxActiveSecrets: must be a whole number from 1 to 20"),
        ("apps[0].contacts", ["not-an-email"], "apps[0] (acme).contacts: must be a list of email addresses"),
        ("apps[0].colour", "red", "apps[0] (acme).colour: unknown field"),
        ("apps[1].facility", "acme", "apps (acme).facility: appears more than once"),
        ("apps[1].vaultSecretName", "smarttrace-acme", "apps (globex).vaultSecretName: smarttrace-acme is already used by acme"),
        ("apps", [], "apps: must list at least one app"),
        ("vaultUrl", DELETE, "vaultUrl: required"),
        ("homeTenantId", DELETE, "homeTenantId: required when the apps span several tenants"),
        ("schedule", "0 0 6 * * *", "schedule: the timer's schedule is the app setting SSO_MONITOR_SCHEDULE"),
        ("cloud.graphScope", "https://graph.microsoft.com/User.Read", "cloud.graphScope: must end with /.default"),
        ("network.hostMap", {"*.smarttrace.ai": "nowhere"}, "network.hostMap.*.smarttrace.ai: must be 'host:port'"),
        ("network.caBundle", "/no/such/ca.pem", "network.caBundle: no such file"),
        ("identities", {"contoso": {}}, "identities.contoso: the key must be a tenant id"),
        ("identities", {T1: {"kind": "client-secret", "clientId": A1, "clientSecretSetting": "MISSING_SETTING"}}, f"identities.{T1}.clientSecretSetting: the app setting MISSING_SETTING is not set"),
        ("defaults.appId", A1, "defaults.appId: unknown field"),
        ("channels", {"ops": {"type": "pager"}}, "channels.ops.type: must be teams, graph-mail or smtp, not 'pager'"),
        ("channels", {"ops": {"type": "teams"}}, "channels.ops.webhookSecretName: required"),
        ("channels", {"ops": {"type": "teams", "webhookUrl": "https://x.example/hook"}}, "channels.ops.webhookUrl: unknown field"),  # a URL with its signature is a secret: Key Vault only
        ("channels", {"ops": {"type": "teams", "webhookSecretName": "no spaces allowed"}}, "channels.ops.webhookSecretName: must be a Key Vault secret name"),
        ("channels", {"it": {"type": "graph-mail", "to": ["it@contoso.example"]}}, "channels.it.mailbox: required"),
        ("channels", {"it": {"type": "graph-mail", "mailbox": "m@contoso.example", "to": "it@contoso.example"}}, "channels.it.to: must be a list of email addresses"),
        ("channels", {"it": {"type": "smtp", "host": "smtp.contoso.example", "from": "a@contoso.example", "username": "a"}}, "channels.it: username and passwordSecretName go together"),
        ("channels", {"it": {"type": "smtp", "host": "smtp.contoso.example", "from": "a@contoso.example", "port": 70000}}, "channels.it.port: must be a whole number from 1 to 65535"),
        ("channels", {"bad name": {"type": "teams", "webhookSecretName": "x"}}, "channels.bad name: a channel name is letters, digits and dashes"),
        ("alerts", {"channels": ["nowhere"]}, "alerts.channels: no channel named 'nowhere'"),
        ("alerts", {"digest": "daily"}, "alerts.digest: must be true or false"),
        ("alerts", {"repeatCriticalHours": 0}, "alerts.repeatCriticalHours: must be a whole number from 1 to 720"),
        ("alerts", {"statusPageUrl": "http://status.example"}, "alerts.statusPageUrl: must be an https:// URL"),
        ("apps[0].alertChannels", ["nowhere"], "apps (acme).alertChannels: no channel named 'nowhere'"),
        ("apps[0].alertChannels", "ops", "apps[0] (acme).alertChannels: must be a list of channel names"),
        # the client secret goes only to the facility's SmartTrace API host
        ("apps[0].handoff", {"mode": "http", "url": "https://attacker.example/v1/integrations/acme/azure-ad/client-secret", "tokenSecretName": "acme-token"}, "apps[0] (acme).handoff.url: must be on the app's SmartTrace API host api.smarttrace.ai"),
        ("apps[0].handoff", {"mode": "http", "url": "https://api.smarttrace.ai.attacker.example/x", "tokenSecretName": "acme-token"}, "apps[0] (acme).handoff.url: must be on the app's SmartTrace API host"),
        # a handoff token named like a facility's client secret
        ("apps[0].handoff", {"mode": "http", "url": "https://api.smarttrace.ai/v1/integrations/acme/azure-ad/client-secret", "tokenSecretName": "smarttrace-globex"}, "apps (acme).handoff.tokenSecretName: smarttrace-globex is the client secret of globex"),
    ],
)
def test_each_error_names_the_app_and_field(path, value, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(with_change(path, value), environ={})
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_channels_and_routes():
    document = copy.deepcopy(BASE)
    document["channels"] = {
        "ops": {"type": "teams", "webhookSecretName": "teams-ops"},
        "relay": {"type": "smtp", "host": "smtp.contoso.example", "from": "sso@contoso.example", "username": "sso@contoso.example", "passwordSecretName": "smtp-password", "to": ["it@contoso.example"]},
    }
    document["alerts"] = {"channels": ["relay"], "operations": ["ops"], "digest": True, "statusPageUrl": "https://func.example/api/status/page"}
    document["apps"][0]["alertChannels"] = ["ops", "relay"]
    config = parse_config(document, environ={})
    assert config.channels["relay"].port == 587 and config.channels["relay"].to == ("it@contoso.example",)
    assert config.channels["ops"].webhook_secret_name == "teams-ops"
    assert (config.alerts.channels, config.alerts.operations_route, config.alerts.digest) == (("relay",), ("ops",), True)
    assert config.apps[0].alert_channels == ("ops", "relay") and config.apps[1].alert_channels is None


def test_all_problems_are_reported_at_once():
    data = with_change("apps[0].tenantId", "x")
    data["apps"][1]["appId"] = "y"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ={})
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[1, 2]", "configuration: must be a JSON object"),
    ],
)
def test_unreadable_documents(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(path, environ={})


def test_missing_file_and_missing_setting():
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(Path("/no/such/apps.json"), environ={})
    with pytest.raises(ConfigError, match="SSO_MONITOR_CONFIG"):
        load_config(None, environ={})


def test_each_app_carries_the_deployment_id_of_its_vault():
    config = parse_config(BASE, environ={})
    assert {app.deployment_id for app in config.apps} == {deployment_id(BASE["vaultUrl"])}
    assert len(config.apps[0].deployment_id) == 8
    # the same vault, however it is spelt, is the same deployment; another vault is another
    assert deployment_id(BASE["vaultUrl"].upper() + "/") == deployment_id(BASE["vaultUrl"])
    assert deployment_id("https://kv-other.vault.azure.net") != deployment_id(BASE["vaultUrl"])
