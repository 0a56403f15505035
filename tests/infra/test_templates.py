"""What issue 7 promises of infra/, read from the templates: no account keys, Key Vaults
with RBAC, purge protection and an audit log, Application Insights without local auth, a
user-assigned identity (the only kind another tenant's federated credential can trust),
the Microsoft Graph roles and nothing broader, Azure roles each on one resource, basic
publishing credentials off, the admin API's app roles as the code checks them, a Python
the package supports. And, since the Bicep CLI cannot run here, the wiring a compiler
would check: every module's parameters and outputs, and azure.yaml's service. (Each
property against Microsoft's type definitions: test_bicep_types.py.)
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from packaging.specifiers import SpecifierSet

from sso_monitor.functions.auth import ADMIN_ROLE, READ_ROLE
from tests.infra.bicep import (
    INFRA,
    ROOT,
    Template,
    array_items,
    nested,
    object_keys,
    string_value,
    templates,
    without_comments,
)

# Built-in Azure role definition ids (the same in every subscription).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"


def _literal(raw: str) -> str:
    value = string_value(raw)
    assert value is not None, f"expected a string literal, got {raw}"
    return value


# ---------------------------------------------------------------- storage


def test_storage_has_no_account_keys() -> None:
    storage = Template.load("app/storage.bicep").declaration("storage")
    properties = nested(storage.body["properties"])
    assert properties["allowSharedKeyAccess"] == "false"
    assert properties["allowBlobPublicAccess"] == "false"
    assert properties["defaultToOAuthAuthentication"] == "true"
    assert _literal(properties["minimumTlsVersion"]) == "TLS1_2"


def test_nothing_reads_an_account_key_or_a_connection_string() -> None:
    for template in templates():
        assert not re.search(r"listKeys\(|AccountKey=|primaryKey|InstrumentationKey", without_comments(template.text)), template.name


def test_the_deployment_package_is_read_with_the_managed_identity() -> None:
    site = Template.load("app/function.bicep").declaration("functionApp")
    storage = nested(site.body["properties"], "functionAppConfig", "deployment", "storage")
    assert _literal(storage["type"]) == "blobContainer"
    authentication = nested(site.body["properties"], "functionAppConfig", "deployment", "storage", "authentication")
    assert _literal(authentication["type"]) == "UserAssignedIdentity"
    assert authentication["userAssignedIdentityResourceId"] == "identityId"


# ---------------------------------------------------------------- Key Vault


def test_key_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    vault = Template.load("app/keyvault.bicep").declaration("vault")
    properties = nested(vault.body["properties"])
    assert properties["enableRbacAuthorization"] == "true"
    assert properties["enableSoftDelete"] == "true"
    assert properties["enablePurgeProtection"] == "true"
    assert "accessPolicies" not in properties, "RBAC only: no access policies"


def test_there_are_two_vaults_facility_secrets_and_settings() -> None:
    """The identity that writes facility secrets must not be able to change where alerts
    and secrets go: the channel and handoff secrets live in a vault of their own, which the
    configuration names as settingsVaultUrl."""
    main = Template.load("main.bicep")
    vaults = [d for d in main.declarations() if d.kind == "module" and d.target == "app/keyvault.bicep"]
    assert sorted(d.symbol for d in vaults) == ["settingsVault", "vault"]
    names = {d.symbol: nested(d.body["params"])["name"] for d in vaults}
    assert names["vault"] != names["settingsVault"]
    facts = object_keys(main.var("deploymentFacts"), 0)
    assert facts["vaultUrl"] == "vault.outputs.uri"
    assert facts["settingsVaultUrl"] == "settingsVault.outputs.uri"
    assert {"SSO_MONITOR_VAULT_URL", "SSO_MONITOR_SETTINGS_VAULT_URL", "SSO_MONITOR_SETTINGS_VAULT_NAME"} <= main.outputs()


def test_every_read_of_a_vault_is_audited_in_log_analytics() -> None:
    keyvault = Template.load("app/keyvault.bicep")
    (audit,) = keyvault.of_type("Microsoft.Insights/diagnosticSettings")
    assert audit.body["scope"] == "vault" and audit.condition is None
    properties = nested(audit.body["properties"])
    assert properties["workspaceId"] == "workspaceId"
    # The resource-specific table (AZKVAuditLogs) that docs/deploy.md's query reads.
    assert _literal(properties["logAnalyticsDestinationType"]) == "Dedicated"
    logs = [object_keys(item, 0) for item in array_items(properties["logs"])]
    assert [(_literal(log["category"]), log["enabled"]) for log in logs] == [("AuditEvent", "true")]
    main = Template.load("main.bicep")
    for symbol in ("vault", "settingsVault"):
        assert nested(main.declaration(symbol).body["params"])["workspaceId"] == "monitoring.outputs.logAnalyticsWorkspaceId"
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "AZKVAuditLogs" in deploy and "SecretGet" in deploy, "docs/deploy.md should show how to find reads of a secret"


# ---------------------------------------------------------------- monitoring


def test_application_insights_has_local_auth_off_and_a_workspace() -> None:
    monitoring = Template.load("app/monitoring.bicep")
    insights = nested(monitoring.declaration("applicationInsights").body["properties"])
    assert insights["DisableLocalAuth"] == "true"
    assert insights["WorkspaceResourceId"] == "logAnalytics.id"
    workspace = nested(monitoring.declaration("logAnalytics").body["properties"], "features")
    assert workspace["disableLocalAuth"] == "true"


# ---------------------------------------------------------------- the Function App


def test_the_function_app_is_flex_consumption_with_the_user_assigned_identity_only() -> None:
    """Entra trusts only a user-assigned identity in another tenant's federated credential;
    a system-assigned one beside it would be a second identity with no role to play."""
    function = Template.load("app/function.bicep")
    sku = nested(function.declaration("plan").body["sku"])
    assert (_literal(sku["name"]), _literal(sku["tier"])) == ("FC1", "FlexConsumption")
    site = function.declaration("functionApp")
    assert _literal(site.body["kind"]) == "functionapp,linux"
    identity = nested(site.body["identity"])
    assert _literal(identity["type"]) == "UserAssigned"
    assert object_keys(identity["userAssignedIdentities"], 0) == {"${identityId}": "{}"}
    properties = nested(site.body["properties"])
    assert properties["httpsOnly"] == "true"
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    runtime = nested(site.body["properties"], "functionAppConfig", "runtime")
    assert (_literal(runtime["name"]), runtime["version"]) == ("python", "pythonVersion")

    main = Template.load("main.bicep")
    (created,) = Template.load("app/identity.bicep").of_type("Microsoft.ManagedIdentity/userAssignedIdentities")
    assert not created.existing
    assert nested(main.declaration("api").body["params"])["identityId"] == "identity.outputs.id"
    for module in ("rbac", "entra"):
        assert nested(main.declaration(module).body["params"])["principalId"] == "identity.outputs.principalId"
    assert "SystemAssigned" not in without_comments("".join(t.text for t in templates()))


def test_basic_publishing_credentials_are_off() -> None:
    function = Template.load("app/function.bicep")
    policies = function.of_type("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert sorted(_literal(p.body["name"]) for p in policies) == ["ftp", "scm"]
    for policy in policies:
        assert policy.body["parent"] == "functionApp" and policy.condition is None
        assert nested(policy.body["properties"]) == {"allow": "false"}
    assert _literal(nested(function.declaration("functionApp").body["properties"], "siteConfig")["ftpsState"]) == "Disabled"


def test_the_graph_grants_wait_for_the_new_identity_to_replicate() -> None:
    """A Graph grant to a principal created seconds earlier can fail ("does not exist");
    the grants come after the Function App and the Azure roles, and docs/deploy.md says
    what to do if the first deployment still fails there."""
    entra = Template.load("main.bicep").declaration("entra")
    assert {item.strip() for item in array_items(entra.body["dependsOn"])} == {"api", "rbac"}
    assert "If the first azd up fails in Entra" in (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def test_python_versions_are_ones_the_package_supports() -> None:
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"])
    python = Template.load("main.bicep").params()["pythonVersion"]
    allowed = [_literal(item) for item in python.allowed]
    assert allowed, "pythonVersion should list its @allowed versions"
    # 3.12: azd's remote build has built 3.13 apps with 3.11 (Azure/azure-dev#8538).
    assert _literal(python.default or "") == "3.12" and "3.12" in allowed
    unsupported = [version for version in allowed if f"{version}.0" not in requires]
    assert not unsupported, f"pyproject.toml requires Python {requires}; infra/main.bicep allows {unsupported}"
    assert nested(Template.load("main.bicep").declaration("api").body["params"])["pythonVersion"] == "pythonVersion"


def test_the_scale_out_limit_is_one_flex_consumption_accepts() -> None:
    """Flex Consumption: "The lowest maximum scale is currently 40. The highest currently
    supported value is 1000." (flex-consumption-plan.md, Considerations; docs/deploy.md)."""
    main = Template.load("main.bicep")
    bounds = dict(re.findall(r"@(minValue|maxValue)\((\d+)\)\s*(?=(?:@[^\n]*\n\s*)*param maximumInstanceCount\b)", main.text))
    assert bounds == {"minValue": "40", "maxValue": "1000"}, bounds
    default = int(main.params()["maximumInstanceCount"].default or "0")
    assert 40 <= default <= 1000
    example = json.loads((INFRA / "main.parameters.example.json").read_text(encoding="utf-8"))["parameters"]
    assert 40 <= example["maximumInstanceCount"]["value"] <= 1000


# ---------------------------------------------------------------- Azure roles


def _role_assignments() -> list[tuple[str, str, str, str]]:
    """(template, symbol, role definition id, scope expression) of each role assignment."""
    found = []
    for template in templates():
        variables = {}
        if "var roles" in template.text:
            variables = {key: _literal(value) for key, value in object_keys(template.var("roles"), 0).items()}
        for assignment in template.of_type("Microsoft.Authorization/roleAssignments"):
            definition = nested(assignment.body["properties"])["roleDefinitionId"]
            match = re.search(r"roles\.(\w+)\)|'([0-9a-f-]{36})'\)", definition)
            assert match, f"{template.name} {assignment.symbol}: cannot read its role from {definition}"
            role = variables[match.group(1)] if match.group(1) else match.group(2)
            found.append((template.name, assignment.symbol, role, assignment.body.get("scope", "")))
    return found


def test_each_azure_role_is_granted_on_one_resource_only() -> None:
    assignments = _role_assignments()
    assert assignments, "no role assignments found: the reader is broken"
    for template, symbol, _, scope in assignments:
        assert scope in {"storage", "vault", "settingsVault", "applicationInsights"}, (
            f"{template} {symbol}: scope {scope or '(the deployment scope)'} is broader than one resource"
        )


def test_the_managed_identity_gets_exactly_the_roles_it_needs() -> None:
    granted = {(role, scope) for _, symbol, role, scope in _role_assignments() if not symbol.startswith("operator")}
    assert granted == {
        (STORAGE_BLOB_DATA_OWNER, "storage"),
        (STORAGE_QUEUE_DATA_CONTRIBUTOR, "storage"),
        (STORAGE_TABLE_DATA_CONTRIBUTOR, "storage"),
        (KEY_VAULT_SECRETS_OFFICER, "vault"),
        (KEY_VAULT_SECRETS_USER, "settingsVault"),
        (MONITORING_METRICS_PUBLISHER, "applicationInsights"),
    }


def test_the_identity_writes_facility_secrets_and_only_reads_settings() -> None:
    identity_roles = {(role, scope) for _, symbol, role, scope in _role_assignments() if not symbol.startswith("operator")}
    assert {scope for role, scope in identity_roles if role == KEY_VAULT_SECRETS_OFFICER} == {"vault"}
    assert {role for role, scope in identity_roles if scope == "settingsVault"} == {KEY_VAULT_SECRETS_USER}
    # ...the vaults this deployment creates, not ones named elsewhere.
    rbac = Template.load("app/rbac.bicep")
    params = nested(Template.load("main.bicep").declaration("rbac").body["params"])
    for symbol, param, module in (("vault", "keyVaultName", "vault"), ("settingsVault", "settingsVaultName", "settingsVault")):
        vault = rbac.declaration(symbol)
        assert vault.existing and vault.body["name"] == param
        assert params[param] == f"{module}.outputs.name"


def test_the_operators_roles_are_optional() -> None:
    rbac = Template.load("app/rbac.bicep")
    operator = [d for d in rbac.of_type("Microsoft.Authorization/roleAssignments") if d.symbol.startswith("operator")]
    assert sorted(d.symbol for d in operator) == ["operatorSecretsOfficer", "operatorSettingsOfficer"]
    assert all(d.condition == "!empty(operatorPrincipalId)" for d in operator)
    assert {(role, scope) for _, symbol, role, scope in _role_assignments() if symbol.startswith("operator")} == {
        (KEY_VAULT_SECRETS_OFFICER, "vault"),
        (KEY_VAULT_SECRETS_OFFICER, "settingsVault"),
    }


# ---------------------------------------------------------------- Microsoft Graph


def _graph_role_grants() -> dict[str, str | None]:
    """Microsoft Graph application role -> the condition of its grant (None: always)."""
    entra = Template.load("app/entra.bicep")
    grants = {}
    for assignment in entra.of_type("Microsoft.Graph/appRoleAssignedTo"):
        match = re.fullmatch(r"filter\(microsoftGraph\.appRoles, role => role\.value == '([\w.]+)'\)\[0\]\.id", assignment.body["appRoleId"])
        assert match, f"{assignment.symbol}: grant Graph roles by name, got {assignment.body['appRoleId']}"
        assert (assignment.body["principalId"], assignment.body["resourceId"]) == ("principalId", "microsoftGraph.id")
        grants[match.group(1)] = assignment.condition
    return grants


def test_the_identity_gets_application_readwrite_ownedby_and_mail_send_only_when_asked() -> None:
    assert _graph_role_grants() == {
        "Application.ReadWrite.OwnedBy": None,
        "Mail.Send": "sendMailThroughGraph",
        "Policy.Read.ApplicationConfiguration": "readAppManagementPolicy",
        "AuditLog.Read.All": "readSignInLogs",
    }
    graph = Template.load("app/entra.bicep").declaration("microsoftGraph")
    assert graph.existing and _literal(Template.load("app/entra.bicep").var("microsoftGraphAppId")) == "00000003-0000-0000-c000-000000000000"
    main = Template.load("main.bicep").params()
    assert main["sendMailThroughGraph"].default == "false"
    assert main["readAppManagementPolicy"].default == "false"
    assert main["readSignInLogs"].default == "false"


def test_graph_permissions_are_granted_in_entra_bicep_only() -> None:
    """checkov has no check for Microsoft.Graph resources (test_checkov.py shows it parses
    them and reports none), so the Graph permissions are held here and in the test above:
    application roles on Microsoft Graph only in entra.bicep, exactly the three named there;
    one delegated grant, the admin API's consent to its own user_impersonation scope (the
    status page signs in with the registration itself) and no other; no requested
    permissions on any app registration."""
    seen = 0
    for template in templates():
        for assignment in template.of_type("Microsoft.Graph/appRoleAssignedTo"):
            seen += 1
            if template.name == "app/entra.bicep":
                assert assignment.body["resourceId"] == "microsoftGraph.id"
                continue
            # Elsewhere only the admin API's own roles, on its own service principal.
            assert (template.name, assignment.body["resourceId"]) == ("app/admin-api.bicep", "adminApiServicePrincipal.id"), assignment.symbol
        for grant in template.of_type("Microsoft.Graph/oauth2PermissionGrants"):
            # Only the admin API to itself: nothing on Microsoft Graph, nothing wider.
            assert template.name == "app/admin-api.bicep", f"{template.name}: a delegated permission grant"
            assert grant.body["clientId"] == grant.body["resourceId"] == "adminApiServicePrincipal.id", grant.symbol
            assert grant.body["scope"] == "'user_impersonation'" and grant.body["consentType"] == "'AllPrincipals'", grant.body
        for app in template.of_type("Microsoft.Graph/applications"):
            assert "requiredResourceAccess" not in app.body, f"{template.name} {app.symbol}: requests API permissions"
    assert seen == 5, "the reader found a different number of app role assignments than infra/ has"


def test_no_directory_wide_graph_permission_appears_anywhere() -> None:
    broad = re.compile(r"\b(Application\.ReadWrite\.All|Directory\.\w+\.All|AppRoleAssignment\.ReadWrite\.All|Mail\.Send\.Shared|RoleManagement\.\w+)")
    texts = {template.name: without_comments(template.text) for template in templates()}
    texts.update({path.name: path.read_text(encoding="utf-8") for path in INFRA.glob("*.json")})
    for name, text in texts.items():
        assert not broad.search(text), name


def test_the_identity_is_appended_as_owner_of_each_monitored_app() -> None:
    entra = Template.load("app/entra.bicep")
    apps = entra.declaration("monitoredApps")
    assert apps.existing and apps.loop and apps.body["uniqueName"] == "uniqueName"
    ownership = entra.declaration("ownership")
    assert ownership.loop and ownership.target == "owner.bicep"
    assert "for (uniqueName, i) in monitoredAppUniqueNames" in ownership.text
    assert nested(ownership.body["params"]) == {"uniqueName": "uniqueName", "displayName": "monitoredApps[i].displayName", "ownerPrincipalId": "principalId"}

    app = Template.load("app/owner.bicep").declaration("monitoredApp")
    assert not app.existing
    assert set(app.body) == {"uniqueName", "displayName", "owners"}, "declare nothing else: Graph would change it on the app"
    owners = nested(app.body["owners"])
    assert _literal(owners["relationshipSemantics"]) == "append", "replace would remove the administrators who own the app"
    assert array_items(owners["relationships"]) == ["ownerPrincipalId"]


def test_the_admin_api_defines_the_roles_the_code_checks() -> None:
    admin = Template.load("app/admin-api.bicep")
    app = admin.declaration("adminApi")
    roles = [object_keys(item, 0) for item in array_items(app.body["appRoles"])]
    assert {_literal(role["value"]) for role in roles} == {READ_ROLE, ADMIN_ROLE} == {"SsoMonitor.Read", "SsoMonitor.Admin"}
    for role in roles:
        assert role["isEnabled"] == "true"
        assert {_literal(member) for member in array_items(role["allowedMemberTypes"])} == {"User", "Application"}
    assert len({role["id"] for role in roles}) == 2
    # auth.py accepts v2.0 tokens only (issuer .../v2.0).
    assert nested(app.body["api"])["requestedAccessTokenVersion"] == "2"
    assert _literal(app.body["signInAudience"]) == "AzureADMyOrg"
    # Only principals assigned a role get a token for the API at all.
    assert admin.declaration("adminApiServicePrincipal").body["appRoleAssignmentRequired"] == "true"
    assert admin.declaration("operatorAdmin").body["appRoleId"] == "adminRoleId"


def test_every_graph_declaration_file_declares_the_extension() -> None:
    for template in templates():
        uses_graph = bool(re.search(r"'Microsoft\.Graph/", template.text))
        declares = bool(re.search(r"(?m)^extension microsoftGraphV1\s*$", template.text))
        assert uses_graph == declares, template.name
    config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    assert config["extensions"]["microsoftGraphV1"].startswith("br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:")


# ---------------------------------------------------------------- wiring a compiler would check


def _module_calls() -> list[tuple[Template, str, Template, dict[str, str]]]:
    calls = []
    for template in templates():
        for module in (d for d in template.declarations() if d.kind == "module"):
            target_path = template.path.parent / module.target
            assert target_path.is_file(), f"{template.name}: module {module.symbol} points at {module.target}, which does not exist"
            calls.append((template, module.symbol, Template.load(target_path), nested(module.body["params"])))
    return calls


def test_every_module_gets_the_parameters_it_declares() -> None:
    calls = _module_calls()
    assert len(calls) >= 8
    for caller, symbol, target, given in calls:
        declared = target.params()
        required = {name for name, param in declared.items() if param.default is None}
        assert set(given) <= set(declared), f"{caller.name} {symbol}: {target.name} has no parameters {sorted(set(given) - set(declared))}"
        assert required <= set(given), f"{caller.name} {symbol}: {target.name} needs {sorted(required - set(given))}"


def test_every_output_used_is_declared() -> None:
    modules = {(caller.path, symbol): target for caller, symbol, target, _ in _module_calls()}
    for template in templates():
        for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", template.code):
            target = modules.get((template.path, symbol))
            assert target is not None, f"{template.name}: {symbol} is not a module"
            assert output in target.outputs(), f"{template.name}: {target.name} has no output {output}"


def test_every_parameter_is_used() -> None:
    for template in templates():
        for name in template.params():
            uses = re.findall(rf"(?<![\w.']){name}\b", template.code)
            assert len(uses) >= 2, f"{template.name}: parameter {name} is never used"


def test_azure_yaml_deploys_the_function_app_from_the_repository_root() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    service = re.search(r"(?m)^services:\n  (\w+):\n((?:    .*\n)+)", text)
    assert service, "azure.yaml needs one service"
    settings = dict(re.findall(r"(?m)^    (\w+): (\S+)$", service.group(2)))
    assert settings == {"project": ".", "language": "python", "host": "function"}
    assert re.search(r"(?m)^  path: infra$", text) and re.search(r"(?m)^  module: main$", text)
    # azd finds the app to deploy by this tag.
    site = Template.load("app/function.bicep").declaration("functionApp")
    assert f"'azd-service-name': '{service.group(1)}'" in site.body["tags"]
    for needed in ("function_app.py", "host.json", "requirements.txt"):
        assert (ROOT / needed).is_file()


@pytest.mark.parametrize("variable", ["AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID"])
def test_azd_fills_in_the_environment(variable: str) -> None:
    assert f"${{{variable}" in (INFRA / "main.parameters.json").read_text(encoding="utf-8")
