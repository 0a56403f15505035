"""Configuration: defaults and overrides, and every error naming the app and the field."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from sso_monitor.config import ConfigError, VerifyConfig, deployment_id, load_config, parse_config
from sso_monitor.config.document import schema_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "config.schema.json"
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
        {
            "facility": "globex",
            "tenantId": T2,
            "appId": A2,
            "apiBase": "https://api.staging.smarttrace.ai/v1",
            "rotation": {"mode": "notify-only"},
            "thresholds": [45, 10],
        },
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


def test_verify_documents_written_before_retry_and_confirm_still_load():
    """retrySeconds and confirmSeconds came with the quicker verify rule (docs/rotation.md):
    a document without them gets their defaults, and intervalSeconds, now the longest wait
    between two token requests, bounds both."""
    for verify, expected in (
        ({}, VerifyConfig(successes=3, interval_seconds=2.0, deadline_seconds=300.0, retry_seconds=0.5, confirm_seconds=1.0)),
        ({"successes": 3, "intervalSeconds": 5, "deadlineSeconds": 300}, VerifyConfig(3, 5.0, 300.0, 0.5, 1.0)),  # as written before
        ({"successes": 1, "intervalSeconds": 0}, VerifyConfig(1, 0.0, 300.0, 0.5, 1.0)),  # no waiting at all: the waits are capped at 0
        ({"retrySeconds": 0.25, "confirmSeconds": 1.5}, VerifyConfig(3, 2.0, 300.0, 0.25, 1.5)),
    ):
        document = {**copy.deepcopy(BASE), "verify": verify}
        assert parse_config(document, environ={}).verify == expected
        assert [error.message for error in schema_validator().iter_errors(document)] == []


def test_a_handoff_host_may_be_allowed_explicitly():
    data = copy.deepcopy(BASE)
    data["apps"][0]["handoff"] = {
        "mode": "http",
        "url": "https://relay.contoso.example/smarttrace",
        "tokenSecretName": "acme-token",
        "allowedHosts": ["relay.contoso.example"],
    }
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


ERROR_CASES = [
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
    (
        "identities",
        {T1: {"kind": "client-secret", "clientId": A1, "clientSecretSetting": "MISSING_SETTING"}},
        f"identities.{T1}.clientSecretSetting: the app setting MISSING_SETTING is not set",
    ),
    ("defaults.appId", A1, "defaults.appId: unknown field"),
    ("channels", {"ops": {"type": "pager"}}, "channels.ops.type: must be teams, graph-mail or smtp, not 'pager'"),
    ("channels", {"ops": {"type": "teams"}}, "channels.ops.webhookSecretName: required"),
    (
        "channels",
        {"ops": {"type": "teams", "webhookUrl": "https://x.example/hook"}},
        "channels.ops.webhookUrl: unknown field",
    ),  # a URL with its signature is a secret: Key Vault only
    ("channels", {"ops": {"type": "teams", "webhookSecretName": "no spaces allowed"}}, "channels.ops.webhookSecretName: must be a Key Vault secret name"),
    ("channels", {"it": {"type": "graph-mail", "to": ["it@contoso.example"]}}, "channels.it.mailbox: required"),
    (
        "channels",
        {"it": {"type": "graph-mail", "mailbox": "m@contoso.example", "to": "it@contoso.example"}},
        "channels.it.to: must be a list of email addresses",
    ),
    (
        "channels",
        {"it": {"type": "smtp", "host": "smtp.contoso.example", "from": "a@contoso.example", "username": "a"}},
        "channels.it: username and passwordSecretName go together",
    ),
    (
        "channels",
        {"it": {"type": "smtp", "host": "smtp.contoso.example", "from": "a@contoso.example", "port": 70000}},
        "channels.it.port: must be a whole number from 1 to 65535",
    ),
    ("channels", {"bad name": {"type": "teams", "webhookSecretName": "x"}}, "channels.bad name: a channel name is letters, digits and dashes"),
    ("alerts", {"channels": ["nowhere"]}, "alerts.channels: no channel named 'nowhere'"),
    ("alerts", {"digest": "daily"}, "alerts.digest: must be true or false"),
    ("alerts", {"repeatCriticalHours": 0}, "alerts.repeatCriticalHours: must be a whole number from 1 to 720"),
    ("alerts", {"statusPageUrl": "http://status.example"}, "alerts.statusPageUrl: must be an https:// URL"),
    ("verify", {"retrySeconds": -1}, "verify.retrySeconds: must be a number from 0 to 300"),
    ("verify", {"confirmSeconds": "1"}, "verify.confirmSeconds: must be a number from 0 to 300"),
    ("apps[0].alertChannels", ["nowhere"], "apps (acme).alertChannels: no channel named 'nowhere'"),
    ("apps[0].alertChannels", "ops", "apps[0] (acme).alertChannels: must be a list of channel names"),
    # the client secret goes only to the facility's SmartTrace API host
    (
        "apps[0].handoff",
        {"mode": "http", "url": "https://attacker.example/v1/integrations/acme/azure-ad/client-secret", "tokenSecretName": "acme-token"},
        "apps[0] (acme).handoff.url: must be on the app's SmartTrace API host api.smarttrace.ai",
    ),
    (
        "apps[0].handoff",
        {"mode": "http", "url": "https://api.smarttrace.ai.attacker.example/x", "tokenSecretName": "acme-token"},
        "apps[0] (acme).handoff.url: must be on the app's SmartTrace API host",
    ),
    # a handoff token named like a facility's client secret
    (
        "apps[0].handoff",
        {"mode": "http", "url": "https://api.smarttrace.ai/v1/integrations/acme/azure-ad/client-secret", "tokenSecretName": "smarttrace-globex"},
        "apps (acme).handoff.tokenSecretName: smarttrace-globex is the client secret of globex",
    ),
]


@pytest.mark.parametrize("path, value, message", ERROR_CASES)
def test_each_error_names_the_app_and_field(path, value, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(with_change(path, value), environ={})
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_channels_and_routes():
    document = copy.deepcopy(BASE)
    document["channels"] = {
        "ops": {"type": "teams", "webhookSecretName": "teams-ops"},
        "relay": {
            "type": "smtp",
            "host": "smtp.contoso.example",
            "from": "sso@contoso.example",
            "username": "sso@contoso.example",
            "passwordSecretName": "smtp-password",
            "to": ["it@contoso.example"],
        },
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


# ---------------------------------------------------------------- defaults, and the rules between sections


def test_a_default_is_checked_in_each_app_that_uses_it():
    with pytest.raises(ConfigError) as caught:
        parse_config(with_change("defaults.maxActiveSecrets", 0), environ={})
    assert caught.value.problems == [
        "apps[0] (acme).maxActiveSecrets: must be a whole number from 1 to 20, not 0",
        "apps[1] (globex).maxActiveSecrets: must be a whole number from 1 to 20, not 0",
    ]


def test_a_section_in_defaults_may_be_partial():
    """A shared handoff token in defaults, each app's own URL: the merged section is whole."""
    data = with_change("defaults.handoff", {"mode": "http", "tokenSecretName": "smarttrace-handoff-token"})
    data["apps"][0]["handoff"] = {"url": "https://api.smarttrace.ai/v1/integrations/acme/azure-ad/client-secret"}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ={})
    assert caught.value.problems == ["apps[1] (globex).handoff.url: required"]
    data["apps"][1]["handoff"] = {"url": "https://api.staging.smarttrace.ai/v1/integrations/globex/azure-ad/client-secret"}
    acme, globex = parse_config(data, environ={}).apps
    assert acme.handoff.token_secret_name == globex.handoff.token_secret_name == "smarttrace-handoff-token"
    assert (acme.handoff.mode, globex.handoff.url) == ("http", "https://api.staging.smarttrace.ai/v1/integrations/globex/azure-ad/client-secret")


def test_rules_between_sections_are_reported_with_the_problems_of_fields():
    """One round of fixes: a duplicate facility and a route to nowhere are reported even
    though another app and another alerts field are wrong too."""
    data = with_change("apps[1].facility", "acme")
    data["apps"].append({"facility": "initech", "tenantId": "contoso", "appId": A1})
    data["alerts"] = {"channels": ["nowhere"], "digest": "daily"}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ={})
    assert set(caught.value.problems) == {
        "apps[2] (initech).tenantId: must be a tenant id (GUID), not 'contoso'",
        "alerts.digest: must be true or false, not 'daily'",
        "apps (acme).facility: appears more than once",
        "alerts.channels: no channel named 'nowhere' (channels: none configured)",
    }


# Every field says what it must be: none of pydantic's own wording reaches an operator.
WRONG_VALUES = [None, 5, -1, 2.5, True, "", " ", "x", [], ["x"], [5], {}, {"x": 1}]
FIELDS = [
    "$schema",
    "vaultUrl",
    "settingsVaultUrl",
    "homeTenantId",
    "apps",
    "defaults",
    "identities",
    "cloud",
    "network",
    "channels",
    "alerts",
    "verify",
    "adminApi",
    *(
        f"apps[0].{key}"
        for key in (
            "facility",
            "tenantId",
            "appId",
            "apiBase",
            "facilityUrl",
            "vaultSecretName",
            "rotation",
            "handoff",
            "thresholds",
            "maxActiveSecrets",
            "contacts",
            "alertChannels",
        )
    ),
    *(f"apps[0].rotation.{key}" for key in ("mode", "rotateBeforeDays", "lifetimeDays", "graceDays")),
    *(f"apps[0].handoff.{key}" for key in ("mode", "url", "method", "tokenSecretName", "allowedHosts")),
    *(f"identities.*.{key}" for key in ("kind", "clientId", "clientSecretSetting", "certificatePath")),
    *(f"cloud.{key}" for key in ("graphEndpoint", "graphScope", "authority")),
    *(f"network.{key}" for key in ("caBundle", "hostMap", "concurrency", "timeoutSeconds", "connectTimeoutSeconds", "tenantSize", "tenantSizes")),
    *(
        f"channels.{name}.{key}"
        for name, keys in (("t", ("type", "webhookSecretName")), ("m", ("mailbox", "to")), ("s", ("from", "host", "port", "username", "passwordSecretName")))
        for key in keys
    ),
    *(f"alerts.{key}" for key in ("channels", "operations", "repeatCriticalHours", "digest", "digestHourUtc", "statusPageUrl")),
    *(f"verify.{key}" for key in ("successes", "intervalSeconds", "deadlineSeconds", "retrySeconds", "confirmSeconds")),
    *(f"adminApi.{key}" for key in ("tenantId", "audience", "clientId")),
]
PYDANTIC_WORDING = ("Input should", "Field required", "Extra inputs", "Value error", "input_value", "Unable to extract", "Assertion failed")


def test_no_problem_is_worded_by_pydantic():
    full = {
        **copy.deepcopy(BASE),
        "identities": {"*": {"kind": "managed-identity"}},
        "channels": {
            "t": {"type": "teams", "webhookSecretName": "w"},
            "m": {"type": "graph-mail", "mailbox": "m@contoso.example"},
            "s": {"type": "smtp", "from": "a@contoso.example", "host": "smtp.contoso.example"},
        },
        "adminApi": {"tenantId": T1, "audience": "api://sso-monitor-admin"},
    }
    parse_config(full, environ={})
    worded = []
    for path in FIELDS:
        for value in WRONG_VALUES:
            data = copy.deepcopy(full)
            parts = path.replace("]", "").replace("[", ".").split(".")
            target = data
            for part in parts[:-1]:
                target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
            target[parts[-1]] = value
            try:
                parse_config(data, environ={})
            except ConfigError as error:
                worded += [(path, value, problem) for problem in error.problems if any(words in problem for words in PYDANTIC_WORDING)]
    assert not worded, worded


# ---------------------------------------------------------------- the published JSON Schema

REGENERATE = "python -m sso_monitor.config --schema > docs/config.schema.json"


def schema_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_published_schema_is_what_the_models_generate():
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), f"docs/config.schema.json differs from the models: {REGENERATE}"


def test_the_schema_command_prints_the_schema():
    printed = subprocess.run([sys.executable, "-m", "sso_monitor.config", "--schema"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert printed == schema_text()


def test_the_example_names_and_satisfies_the_schema():
    example = json.loads((ROOT / "examples" / "apps.json").read_text(encoding="utf-8"))
    assert example["$schema"] == "../docs/config.schema.json"
    assert (ROOT / "examples" / example["$schema"]).resolve() == SCHEMA.resolve()
    assert [error.message for error in schema_validator().iter_errors(example)] == []


def test_the_schema_accepts_documents_the_loader_accepts():
    channels = {
        "ops": {"type": "teams", "webhookSecretName": "teams-ops"},
        "relay": {"type": "smtp", "host": "smtp.contoso.example", "from": "sso@contoso.example", "username": "sso", "passwordSecretName": "smtp-password"},
    }
    for document in (
        BASE,
        {
            **BASE,
            "channels": channels,
            "alerts": {"channels": ["relay"], "operations": ["ops"]},
            "network": {"tenantSizes": {T2: "large"}, "hostMap": {"*.smarttrace.ai": "127.0.0.1:8443"}},
        },
    ):
        parse_config(document, environ={})
        assert [error.message for error in schema_validator().iter_errors(document)] == []


# The problems only loading can find: rules between fields or sections, files, app settings.
ONLY_ON_LOAD = {
    "apps[0] (acme).rotation.lifetimeDays",
    "apps[0] (acme).handoff.url",
    "apps (acme).facility",
    "apps (globex).vaultSecretName",
    "apps (acme).handoff.tokenSecretName",
    "apps (acme).alertChannels",
    "homeTenantId",
    "network.caBundle",
    f"identities.{T1}.clientSecretSetting",
    "channels.it",
    "alerts.channels",
}


@pytest.mark.parametrize("path, value, message", ERROR_CASES)
def test_the_schema_flags_what_an_editor_can_know(path, value, message):
    """An editor with the schema marks every problem in the table but those only loading can find."""
    flagged = any(True for _ in schema_validator().iter_errors(with_change(path, value)))
    assert flagged == (message.split(":")[0] not in ONLY_ON_LOAD), message


def test_the_settings_load_without_pydantic():
    """Modules that only need the settings' types do not pay for pydantic: it loads on the first parse."""
    check = f"import sys, sso_monitor.config; assert 'pydantic' not in sys.modules; sso_monitor.config.parse_config({{'vaultUrl': 'https://kv.vault.azure.net', 'apps': [{{'facility': 'a', 'tenantId': '{T1}', 'appId': '{A1}'}}]}}, {{}}); assert 'pydantic' in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=ROOT)


def test_the_connect_timeout_defaults_to_the_request_timeout():
    assert parse_config(copy.deepcopy(BASE), environ={}).network.connect_timeout == 30.0
    document = copy.deepcopy(BASE)
    document["network"] = {"timeoutSeconds": 20, "connectTimeoutSeconds": 4}
    network = parse_config(document, environ={}).network
    assert (network.timeout_seconds, network.connect_timeout) == (20, 4)
    document["network"] = {"connectTimeoutSeconds": 0}
    with pytest.raises(ConfigError, match="network.connectTimeoutSeconds"):
        parse_config(document, environ={})
