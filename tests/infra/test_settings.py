"""The app settings the code reads, local.settings.sample.json and the Bicep app settings
name the same set, and the configuration document the Bicep builds is one the code
accepts.

The code's set is derived by scanning sso_monitor/ (not written down here), so a
setting added to the code without the Bicep and the sample fails this test. What counts
as reading a setting:
- an environment lookup of a string constant: ``env.get("X")``, ``environ["X"]``,
  ``os.getenv("X")`` (config.py is the only module that reads the environment);
- a module-level ``ENV_... = "X"`` constant (config.py names its settings so);
- a binding expression ``%X%`` in a trigger's argument (the host resolves it from the
  app settings), e.g. ``schedule="%SSO_MONITOR_SCHEDULE%"``;
- a binding's ``connection="X"`` (the host reads X, or its identity-based form X__*).

Names the code reads through a variable are per deployment and not in any fixed list:
the setting a ``client-secret`` identity names (``clientSecretSetting``), and the
standard proxy variables config.network checks for (HTTPS_PROXY and kin). The sandbox
(sandbox/sso_sandbox) is never part of the Function App and is not scanned.

Settings are compared by connection name: ``AzureWebJobsStorage__blobServiceUri`` is the
identity-based form of ``AzureWebJobsStorage`` (the Functions host's ``<name>__<property>``
convention), so the sample's connection string and the Bicep's service URIs name the
same setting.
"""

from __future__ import annotations

import json
import re

import pytest

from sso_monitor.config import parse_config
from tests.infra.bicep import (
    ROOT,
    Template,
    array_items,
    nested,
    object_keys,
    string_value,
)

PACKAGE = ROOT / "sso_monitor"
SAMPLE = ROOT / "local.settings.sample.json"

# Settings the platform reads, not our code. Either side may have them; nothing else.
PLATFORM_SETTINGS = {
    # Core Tools needs it locally; Flex Consumption takes the runtime from
    # functionAppConfig and refuses it as an app setting.
    "FUNCTIONS_WORKER_RUNTIME",
    # The Functions host's telemetry to Application Insights, with Entra ID auth.
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # azure-identity's DefaultAzureCredential: the client id of the user-assigned managed
    # identity to take a token as (empty locally: az login).
    "AZURE_CLIENT_ID",
}

_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"
_READS = (
    # env.get("X"), environ.get("X"), self.env.get("X"), os.environ.get("X"), env["X"], os.getenv("X")
    re.compile(rf"\b(?:environ|env)\s*(?:\.\s*get\s*\(|\[)\s*[\"']{_NAME}[\"']"),
    re.compile(rf"\bgetenv\s*\(\s*[\"']{_NAME}[\"']"),
    # ENV_CONFIG = "SSO_MONITOR_CONFIG" at module level
    re.compile(rf"(?m)^ENV_[A-Z0-9_]*\s*(?::[^=\n]+)?=\s*[\"']{_NAME}[\"']"),
    # schedule="%SSO_MONITOR_SCHEDULE%": a keyword argument whose string holds a binding expression
    # (a name of three characters or more: "%Y-%m-%dT%H:%M:%SZ" holds "%dT%", a strftime format)
    re.compile(r"\b\w+\s*=\s*[\"'][^\"'\n]*%([A-Za-z_][A-Za-z0-9_]{2,})%[^\"'\n]*[\"']"),
    # connection="AzureWebJobsStorage"
    re.compile(rf"\bconnection\s*=\s*[\"']{_NAME}[\"']"),
)


def settings_read_by(source: str) -> set[str]:
    return {match.group(1) for pattern in _READS for match in pattern.finditer(source)}


def code_settings() -> dict[str, set[str]]:
    """Setting name -> the modules that read it."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sandbox" in path.relative_to(PACKAGE).parts:
            continue
        for name in settings_read_by(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return found


def connection_name(setting: str) -> str:
    return setting.split("__", 1)[0]


def bicep_settings() -> dict[str, str]:
    """App setting name -> raw Bicep value, from the Function App's siteConfig.appSettings."""
    site = Template.load("app/function.bicep").declaration("functionApp")
    items = array_items(nested(site.body["properties"], "siteConfig")["appSettings"])
    settings = {}
    for item in items:
        entry = object_keys(item, 0)
        name = string_value(entry["name"])
        assert name is not None, f"an app setting's name must be a literal: {entry['name']}"
        assert name not in settings, f"app setting {name} appears twice"
        settings[name] = entry["value"]
    return settings


def sample_settings() -> dict[str, str]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))["Values"]


# ---------------------------------------------------------------- the scanner itself


def test_the_scanner_finds_every_form_of_reading_a_setting() -> None:
    """Not vacuous: each form the docstring lists is found; format strings are not settings."""
    source = """
ENV_CONFIG = "SSO_MONITOR_CONFIG"
ENV_TYPED: str = "TYPED_SETTING"
value = self.env.get("AzureWebJobsStorage__blobServiceUri")
other = os.environ["DIRECT"]
third = os.getenv('OLD_STYLE')
fourth = environ.get(
    "ACROSS_LINES")
@bp.timer_trigger(schedule="%SSO_MONITOR_SCHEDULE%", arg_name="timer")
@bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE_NAME%", connection="AzureWebJobsStorage")
stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
STAMP = "%Y-%m-%dT%H:%M:%SZ"
rotation_id = f"{now:%Y%m%dT%H%M%SZ}-x"
for name in ("HTTPS_PROXY", "HTTP_PROXY"):
    env.get(name)
"""
    assert settings_read_by(source) == {
        "SSO_MONITOR_CONFIG",
        "TYPED_SETTING",
        "AzureWebJobsStorage__blobServiceUri",
        "DIRECT",
        "OLD_STYLE",
        "ACROSS_LINES",
        "SSO_MONITOR_SCHEDULE",
        "WORK_QUEUE_NAME",
        "AzureWebJobsStorage",
    }


def test_the_code_reads_the_settings_this_test_was_written_against() -> None:
    """A floor, not the list: if the scan stopped finding these, it would prove nothing."""
    found = code_settings()
    assert {"SSO_MONITOR_CONFIG", "SSO_MONITOR_SCHEDULE", "AzureWebJobsStorage"} <= set(found), found


# ---------------------------------------------------------------- one set, three places


def test_bicep_and_the_sample_name_the_settings_the_code_reads() -> None:
    code = code_settings()
    wanted = {connection_name(name) for name in code}
    in_bicep = {connection_name(name) for name in bicep_settings()}
    in_sample = {connection_name(name) for name in sample_settings()}
    where: dict[str, set[str]] = {}
    for name, modules in code.items():
        where.setdefault(connection_name(name), set()).update(modules)

    missing_in_bicep = wanted - in_bicep
    assert not missing_in_bicep, f"the code reads settings infra/app/function.bicep does not set: {sorted(missing_in_bicep)} (read in {where})"
    missing_in_sample = wanted - in_sample
    assert not missing_in_sample, f"the code reads settings local.settings.sample.json lacks: {sorted(missing_in_sample)} (read in {where})"
    assert in_bicep - wanted <= PLATFORM_SETTINGS, f"infra/app/function.bicep sets settings nothing reads: {sorted(in_bicep - wanted - PLATFORM_SETTINGS)}"
    assert in_sample - wanted <= PLATFORM_SETTINGS, f"local.settings.sample.json has settings nothing reads: {sorted(in_sample - wanted - PLATFORM_SETTINGS)}"


def test_each_connection_is_set_in_a_form_the_code_reads() -> None:
    """Same connection name is not enough: the code must find the exact setting it looks up
    (Bicep's identity-based AzureWebJobsStorage__blobServiceUri, the sample's connection string)."""
    code = set(code_settings())
    for where, settings in (("infra/app/function.bicep", set(bicep_settings())), ("local.settings.sample.json", set(sample_settings()))):
        for connection in {connection_name(name) for name in code}:
            read = {name for name in code if connection_name(name) == connection}
            assert read & settings, f"{where}: none of {sorted(read)} is set, so the code would not find {connection}"


def test_storage_is_identity_based_in_azure() -> None:
    settings = bicep_settings()
    assert "AzureWebJobsStorage" not in settings, "a connection string carries an account key; use the identity-based settings"
    assert string_value(settings["AzureWebJobsStorage__credential"]) == "managedidentity"
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"storage.properties.primaryEndpoints.{service}"


def test_every_token_is_taken_as_the_user_assigned_identity() -> None:
    """Without its client id, the host and azure-identity look for a system-assigned
    identity, which the Function App does not have: storage, telemetry and the code's
    DefaultAzureCredential each name the user-assigned one."""
    settings = bicep_settings()
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "'ClientId=${identityClientId};Authorization=AAD'"
    assert nested(Template.load("main.bicep").declaration("api").body["params"])["identityClientId"] == "identity.outputs.clientId"


def test_the_schedule_setting_defaults_to_the_samples() -> None:
    main = Template.load("main.bicep")
    assert string_value(main.params()["schedule"].default or "") == sample_settings()["SSO_MONITOR_SCHEDULE"]
    assert bicep_settings()["SSO_MONITOR_SCHEDULE"] == "schedule"
    assert bicep_settings()["SSO_MONITOR_CONFIG"] == "monitorDocument"


# ---------------------------------------------------------------- the configuration document

# A plausible value for each key main.bicep fills into the document from the deployment.
# A key added there without a value here fails the test below: add one.
_DEPLOYMENT_VALUES = {
    "vaultUrl": "https://kv-abc123.vault.azure.net/",
    "settingsVaultUrl": "https://kvset-abc123.vault.azure.net/",
    "homeTenantId": "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11",
    "tenantId": "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11",
    "audience": "api://5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11/sso-monitor-admin-abc123",
    "clientId": "3b2a1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d",
    "graphEndpoint": "https://graph.microsoft.com/v1.0",  # '${environment().graph}v1.0'
    "authority": "https://login.microsoftonline.com/",  # environment().authentication.loginEndpoint
    "statusPageUrl": "https://func-sso-abc123.azurewebsites.net/api/status/view",  # var statusPageUrl
}


def _filled(raw_object: str) -> dict:
    """An object literal of main.bicep with each leaf replaced by its plausible value."""
    document = {}
    for key, value in object_keys(raw_object, 0).items():
        if value.startswith("{"):
            document[key] = _filled(value)
        else:
            assert key in _DEPLOYMENT_VALUES, f"main.bicep fills {key!r} into the document: give it a plausible value in _DEPLOYMENT_VALUES"
            document[key] = _DEPLOYMENT_VALUES[key]
    return document


def deployed_document(monitor_config: dict) -> dict:
    """What main.bicep computes: union(cloudFromEnvironment, statusPageDefault, monitorConfig, deploymentFacts)."""
    main = Template.load("main.bicep")
    assert re.sub(r"\s", "", main.var("monitorDocument")) == "union(cloudFromEnvironment,statusPageDefault,monitorConfig,deploymentFacts)"
    document = _filled(main.var("cloudFromEnvironment"))
    for layer in (_filled(main.var("statusPageDefault")), monitor_config, _filled(main.var("deploymentFacts"))):
        for key, value in layer.items():  # Bicep's union merges nested objects
            document[key] = {**document[key], **value} if isinstance(value, dict) and isinstance(document.get(key), dict) else value
    return document


@pytest.mark.parametrize("parameters_file", ["main.parameters.json", "main.parameters.example.json"])
def test_the_deployed_document_is_a_valid_configuration(parameters_file: str) -> None:
    parameters = json.loads((ROOT / "infra" / parameters_file).read_text(encoding="utf-8"))["parameters"]
    document = deployed_document(parameters["monitorConfig"]["value"])
    config = parse_config(document, environ={})
    assert config.vault_url == "https://kv-abc123.vault.azure.net"
    # Channel and handoff secrets come from the second vault, which the identity only reads.
    assert config.settings_vault_url == "https://kvset-abc123.vault.azure.net"
    assert config.admin_api is not None and config.admin_api.client_id == _DEPLOYMENT_VALUES["clientId"]
    assert config.cloud.graph_endpoint == "https://graph.microsoft.com/v1.0"
    assert config.cloud.authority == "https://login.microsoftonline.com"
    # every alert links to the status page people can open (it signs them in)
    assert config.alerts.status_page_url == _DEPLOYMENT_VALUES["statusPageUrl"]


def test_the_status_page_is_the_admin_registrations_spa_redirect_uri() -> None:
    main = Template.load("main.bicep")
    assert re.sub(r"\s", "", main.var("statusPageUrl")) == "'https://${functionAppName}.${appServiceDomainSuffix}/api/status/view'"
    registration = (ROOT / "infra" / "app" / "admin-api.bicep").read_text(encoding="utf-8")
    assert re.search(r"spa:\s*\{\s*redirectUris:\s*\[\s*statusPageUrl\s*\]", registration)


def test_a_document_names_its_own_status_page() -> None:
    document = deployed_document({"alerts": {"statusPageUrl": "https://status.contoso.example/"}, "apps": []})
    assert document["alerts"]["statusPageUrl"] == "https://status.contoso.example/"


def test_the_document_keeps_its_own_cloud_endpoints() -> None:
    """A sovereign cloud or the sandbox set cloud in the document; the deployment's
    defaults come first in the union, so the document's win."""
    document = deployed_document({"cloud": {"graphEndpoint": "https://graph.microsoft.us/v1.0"}, "apps": []})
    assert document["cloud"]["graphEndpoint"] == "https://graph.microsoft.us/v1.0"
    assert document["cloud"]["authority"] == "https://login.microsoftonline.com/"


def test_a_bicep_parameter_file_names_only_declared_parameters() -> None:
    declared = Template.load("main.bicep").params()
    required = {name for name, param in declared.items() if param.default is None}
    for parameters_file in ("main.parameters.json", "main.parameters.example.json"):
        given = set(json.loads((ROOT / "infra" / parameters_file).read_text(encoding="utf-8"))["parameters"])
        assert given <= set(declared), f"{parameters_file}: unknown parameters {sorted(given - set(declared))}"
        assert required <= given, f"{parameters_file}: missing required parameters {sorted(required - given)}"
