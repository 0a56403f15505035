"""Every resource declaration in infra/ against Microsoft's Bicep type definitions
(shared/reference/bicep-types; tests/infra/bicep_types.py says what is checked and how).

The Bicep CLI, which type-checks against the same data, cannot be installed here. The
checker must be able to fail: each negative control below is a template with one kind of
mistake, written to a temporary folder, and the checker must name that mistake.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.infra.bicep import Template, templates
from tests.infra.bicep_types import REFERENCE, Report, check_template

pytestmark = pytest.mark.skipif(not (REFERENCE / "index.json").is_file(), reason=f"the Bicep type reference is not at {REFERENCE}")


def _report(*items: Template) -> Report:
    report = Report()
    for template in items:
        check_template(template, report)
    return report


def test_every_resource_in_infra_matches_its_type_definition() -> None:
    report = _report(*templates())
    assert not report.problems, "infra/ does not match the Bicep type definitions:\n" + "\n".join(report.problems)


def test_every_resource_declaration_was_checked() -> None:
    """Not vacuous: each `resource` in infra/ was looked up, Graph ones too, and many names were."""
    report = _report(*templates())
    declared = sum(1 for template in templates() for d in template.declarations() if d.kind == "resource")
    assert len(report.declarations) == declared >= 30
    assert any("Microsoft.Graph/appRoleAssignedTo@v1.0" in where for where in report.declarations)
    assert any("Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01" in where for where in report.declarations)
    assert any("Microsoft.Insights/diagnosticSettings@2021-05-01-preview" in where for where in report.declarations)
    assert report.checked_names >= 200, report.checked_names


# ---------------------------------------------------------------- negative controls

SITE = """
resource plan 'Microsoft.Web/serverfarms@2024-04-01' existing = {
  name: 'plan'
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func'
  location: 'westeurope'
  properties: {
    serverFarmId: plan.id
    %s
  }
}
"""

# (what is wrong, the template, words the checker's message must contain)
NEGATIVE = [
    (
        "an unknown resource type",
        "resource x 'Microsoft.Web/sitez@2024-04-01' = {\n  name: 'x'\n  location: 'westeurope'\n}\n",
        ["no such resource type"],
    ),
    (
        "an API version the type does not have",
        "resource x 'Microsoft.Web/sites@2099-01-01' = {\n  name: 'x'\n  location: 'westeurope'\n}\n",
        ["no such API version", "2024-04-01"],
    ),
    (
        "an unknown top-level property",
        "resource x 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'x'\n  location: 'westeurope'\n  tag: {}\n  properties: {\n    tenantId: tenant().tenantId\n    sku: {\n      family: 'A'\n      name: 'standard'\n    }\n  }\n}\n",
        ["unknown property 'tag'"],
    ),
    ("an unknown nested property", SITE % "siteConfig: {\n      minTlsVersio: '1.2'\n    }", ["unknown property 'minTlsVersio'", ".properties.siteConfig"]),
    (
        "an unknown property in an array item",
        SITE % "siteConfig: {\n      appSettings: [\n        {\n          nam: 'A'\n          value: 'b'\n        }\n      ]\n    }",
        ["unknown property 'nam'", "appSettings[0]"],
    ),
    ("a missing required property", "resource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n}\n", ["required property 'location' is missing"]),
    (
        "a missing required nested property",
        "resource x 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n  name: guid('x')\n  properties: {\n    roleDefinitionId: 'r'\n  }\n}\n",
        ["required property 'principalId' is missing"],
    ),
    (
        "a value outside a closed set",
        "resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'x'\n  location: 'westeurope'\n  kind: 'StorageV2'\n  sku: {\n    name: 'Standard_LRS'\n  }\n  properties: {\n    accessTier: 'Warm'\n  }\n}\n",
        ["'Warm' is not one of"],
    ),
    (
        "a value outside a closed set, in a conditional's branch",
        "param hot bool\nresource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n  location: 'westeurope'\n  identity: {\n    type: hot ? 'SystemAssigned' : 'Both'\n  }\n}\n",
        ["'Both' is not one of"],
    ),
    ("a string where a boolean is expected", SITE % "httpsOnly: 'yes'", ["a string where a boolean is expected"]),
    ("a read-only property", SITE % "defaultHostName: 'func.azurewebsites.net'", ["'defaultHostName' is read-only"]),
    (
        "an unknown property of a nested child resource",
        "resource s 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {\n  name: 's'\n\n  resource b 'blobServices' existing = {\n    name: 'default'\n\n    resource c 'containers' = {\n      name: 'c'\n      properties: {\n        publicAcess: 'None'\n      }\n    }\n  }\n}\n",
        ["blobServices/containers@2023-05-01", "unknown property 'publicAcess'"],
    ),
    (
        "a discriminator value the type does not have",
        "resource site 'Microsoft.Web/sites@2024-04-01' existing = {\n  name: 'func'\n}\n\nresource p 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {\n  parent: site\n  name: 'web'\n  properties: {\n    allow: false\n  }\n}\n",
        ["name 'web' is not one of ['ftp', 'scm']"],
    ),
    (
        "an unknown property in a loop's body",
        "param names array\nresource x 'Microsoft.Graph/applications@v1.0' existing = [for n in names: {\n  uniqueName: n\n  displayNam: n\n}]\n",
        ["unknown property 'displayNam'"],
    ),
    (
        "a Graph resource without a required property",
        "extension microsoftGraphV1\nresource a 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {\n  principalId: 'p'\n  resourceId: 'r'\n}\n",
        ["Microsoft.Graph/appRoleAssignedTo@v1.0", "required property 'appRoleId' is missing"],
    ),
    (
        "an unknown property of a Graph resource",
        "extension microsoftGraphV1\nresource a 'Microsoft.Graph/applications@v1.0' = {\n  uniqueName: 'a'\n  displayName: 'A'\n  owners: {\n    relationshipSemantic: 'append'\n    relationships: []\n  }\n}\n",
        ["unknown property 'relationshipSemantic'", "(known: relationshipSemantics, relationships)"],
    ),
    (
        "a Graph type that can only be read, declared to be written",
        "extension microsoftGraphV1\nresource u 'Microsoft.Graph/users@v1.0' = {\n  userPrincipalName: 'a@contoso.com'\n}\n",
        ["can only be read"],
    ),
    (
        "a string where an integer is expected",
        "resource w 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {\n  name: 'w'\n  location: 'westeurope'\n  properties: {\n    retentionInDays: '30'\n  }\n}\n",
        ["retentionInDays: a string where an integer is expected"],
    ),
    (
        "an integer out of range",
        "resource s 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {\n  name: 's'\n\n  resource b 'blobServices' = {\n    name: 'default'\n    properties: {\n      deleteRetentionPolicy: {\n        enabled: true\n        days: 400\n      }\n    }\n  }\n}\n",
        ["400 is above the maximum 365"],
    ),
    (
        "a resource at a scope its type cannot be deployed at",
        "targetScope = 'subscription'\nresource v 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'v'\n  location: 'westeurope'\n  properties: {\n    tenantId: tenant().tenantId\n    sku: {\n      family: 'A'\n      name: 'standard'\n    }\n  }\n}\n",
        ["cannot be deployed at the template's scope (subscription)"],
    ),
]


@pytest.mark.parametrize("mistake, bicep, expected", NEGATIVE, ids=[mistake for mistake, _, _ in NEGATIVE])
def test_the_checker_rejects(tmp_path: Path, mistake: str, bicep: str, expected: list[str]) -> None:
    path = tmp_path / "wrong.bicep"
    path.write_text(textwrap.dedent(bicep), encoding="utf-8")
    problems = _report(Template.load(path)).problems
    assert problems, f"{mistake}: the checker found nothing wrong"
    assert any(all(word in problem for word in expected) for problem in problems), f"{mistake}: expected {expected} in {problems}"


def test_the_controls_are_otherwise_right(tmp_path: Path) -> None:
    """The same shapes, right: the checker accepts them (so each control fails for its one mistake)."""
    path = tmp_path / "right.bicep"
    path.write_text(
        SITE
        % "httpsOnly: true\n    siteConfig: {\n      minTlsVersion: '1.2'\n      appSettings: [\n        {\n          name: 'A'\n          value: 'b'\n        }\n      ]\n    }",
        encoding="utf-8",
    )
    assert _report(Template.load(path)).problems == []


# ---------------------------------------------------------------- types the shared reference lacks

ALERT_RULE = """
resource rule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'r'
  location: 'westeurope'
  kind: 'LogAlert'
  properties: {
    severity: 1
    %s
    criteria: {
      allOf: [
        {
          query: 'AppMetrics'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'facility'
              %s
              values: [
                '*'
              ]
            }
          ]
        }
      ]
    }
  }
}
"""


def test_the_alert_rule_is_checked_against_microsofts_type_description() -> None:
    """scheduledQueryRules comes from tests/infra/reference-extra (bicep-types-az's types.md)."""
    report = _report(*templates())
    assert any("Microsoft.Insights/scheduledQueryRules@2023-12-01" in where for where in report.declarations)


@pytest.mark.parametrize(
    "properties, dimension, expected",
    [
        ("evaluationFrequency: 'PT6H'", "operator: 'Include'", []),
        ("evaluationFreqency: 'PT6H'", "operator: 'Include'", ["evaluationFreqency"]),
        ("createdWithApiVersion: 'x'", "operator: 'Include'", ["createdWithApiVersion", "read-only"]),
        ("evaluationFrequency: 'PT6H'", "", ["operator"]),  # required in a Dimension
        ("severity: 'high'", "operator: 'Include'", ["severity"]),
    ],
)
def test_the_alert_rules_type_can_fail(tmp_path: Path, properties: str, dimension: str, expected: list[str]) -> None:
    path = tmp_path / "rule.bicep"
    text = ALERT_RULE % (properties, dimension)
    if properties.startswith("severity"):
        text = text.replace("    severity: 1\n", "")
    path.write_text(text, encoding="utf-8")
    problems = _report(Template.load(path)).problems
    if not expected:
        assert not problems, problems
    else:
        assert any(all(word in problem for word in expected) for problem in problems), problems
