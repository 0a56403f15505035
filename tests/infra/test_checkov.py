"""checkov over infra/, offline: no failed check, each skip justified where it is made,
and every template parsed.

checkov is installed by `make test` in a venv of its own (.venv-checkov; make checkov).
Missing, the test is skipped with the reason, except under CI (CI=true), where it fails.

checkov's Bicep parser (pycep-parser 0.5.1, which checkov 3.3.30 pins) predates the
`extension` statement that Bicep's Microsoft Graph extension needs. So checkov runs over a
copy of infra/ in which each `extension <name>` line is a comment (same line numbers,
nothing else changed). The copy also holds one deliberately broken template, and the
test requires checkov to report exactly that file as unparsable: the parser would
catch a syntax error in ours, which is the nearest this machine gets to `bicep build`
(the Bicep CLI downloads a binary and cannot be installed here).

The files that declare Microsoft Graph resources are parsed too, their Graph resources
with them (checkov's own parser is asked which resources it read). checkov has no check
for any Microsoft.Graph type, though, so it passes or fails none of them: the Graph
permissions are held by test_templates.py (exactly Application.ReadWrite.OwnedBy plus the
two optional roles, nothing directory-wide) and test_bicep_types.py (every property
against the Graph extension's type definitions).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep import INFRA, ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_PYTHON = CHECKOV.with_name("python")
# The resources checkov's Bicep parser reads from each file: {file: [type, ...]}.
LIST_RESOURCES = """
import json, sys
from pathlib import Path
from checkov.bicep.parser import Parser
root = Path(sys.argv[1])
found = {}
for path in sorted(root.rglob("*.bicep")):
    template, _ = Parser().parse(path)
    if template is not None:
        found[path.relative_to(root).as_posix()] = sorted({r.get("type", "") for r in template.get("resources", {}).values()})
print(json.dumps(found))
"""
EXTENSION_LINE = re.compile(r"(?m)^(extension [A-Za-z_][A-Za-z0-9_]*)[ \t]*$")
SKIP_COMMENT = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")
CANARY = "zz-syntax-canary.bicep"
BROKEN = """// Not part of the deployment: written by tests/infra/test_checkov.py, and must not parse.
resource canary 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stcanary'
  properties: {
    allowSharedKeyAccess: false
"""


def _reports(output: str) -> dict[str, dict[str, Any]]:
    data = json.loads(output)
    return {report["check_type"]: report for report in (data if isinstance(data, list) else [data])}


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """infra/ as checkov can read it, with the canary."""
    if not CHECKOV.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHECKOV.relative_to(ROOT)} is missing: make test installs it (make checkov)")
        pytest.skip(f"checkov is not installed ({CHECKOV.relative_to(ROOT)}): run make checkov, or make test")
    copy = tmp_path_factory.mktemp("checkov") / "infra"
    shutil.copytree(INFRA, copy)
    rewritten = 0
    for path in copy.rglob("*.bicep"):
        text, count = EXTENSION_LINE.subn(r"// \1", path.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")
        rewritten += count
    assert rewritten, "no `extension` line was found: is this workaround still needed?"
    (copy / CANARY).write_text(BROKEN, encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def reports(copy: Path) -> dict[str, dict[str, Any]]:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [str(CHECKOV), "--skip-download", "--framework", "bicep", "secrets", "--directory", str(copy), "--output", "json"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,  # the exit code is asserted below, with the output
    )
    # 0: nothing failed, 1: something failed; anything else is checkov itself failing.
    assert result.returncode in (0, 1) and result.stdout.strip(), f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}"
    return _reports(result.stdout)


def test_checkov_parses_every_template_and_rejects_a_broken_one(reports: dict[str, dict[str, Any]]) -> None:
    bicep = reports["bicep"]
    unparsed = [Path(path).name for path in bicep["results"]["parsing_errors"]]
    assert unparsed == [CANARY], f"checkov could not parse {unparsed}; only the canary should fail"
    assert bicep["summary"]["resource_count"] > 0 and bicep["summary"]["passed"] > 0, bicep["summary"]


def test_the_graph_extension_files_are_parsed_with_their_graph_resources(copy: Path, reports: dict[str, dict[str, Any]]) -> None:
    result = subprocess.run([str(CHECKOV_PYTHON), "-c", LIST_RESOURCES, str(copy)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout)
    graph_files = sorted(path.relative_to(INFRA).as_posix() for path in INFRA.rglob("*.bicep") if EXTENSION_LINE.search(path.read_text(encoding="utf-8")))
    assert graph_files == ["app/admin-api.bicep", "app/entra.bicep", "app/owner.bicep"]
    for name in graph_files:
        graph_types = [t for t in parsed.get(name, []) if t.startswith("Microsoft.Graph/")]
        assert graph_types, f"checkov's parser read no Microsoft.Graph resource from {name}: {parsed.get(name)}"
    assert {"Microsoft.Graph/appRoleAssignedTo", "Microsoft.Graph/applications", "Microsoft.Graph/servicePrincipals"} <= {
        t for name in graph_files for t in parsed[name]
    }
    # ...and checks none of them: checkov has no Microsoft.Graph checks. If it gains some,
    # this fails: then its results cover the Graph resources too, and this note can go.
    checked = {
        check["resource"] for report in reports.values() for kind in ("passed_checks", "failed_checks", "skipped_checks") for check in report["results"][kind]
    }
    assert not [r for r in checked if r.startswith("Microsoft.Graph/")], sorted(checked)


def test_no_check_fails(reports: dict[str, dict[str, Any]]) -> None:
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range']}): {check['check_name']}"
        for report in reports.values()
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks (fix them, or skip with a reason inside the resource):\n" + "\n".join(failed)


def test_each_skip_says_why(reports: dict[str, dict[str, Any]]) -> None:
    skipped = reports["bicep"]["results"]["skipped_checks"]
    for check in skipped:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) >= 40, f"{check['check_id']} on {check['resource']}: give the reason for the skip, not {reason!r}"


def test_every_skip_comment_names_a_check_and_a_reason() -> None:
    """Checked without checkov too: a bare `checkov:skip=ID` would pass silently."""
    found = 0
    for path in INFRA.rglob("*.bicep"):
        for match in SKIP_COMMENT.finditer(path.read_text(encoding="utf-8")):
            found += 1
            assert match.group(1).startswith("CKV_"), f"{path.name}: {match.group(0)}"
            assert len((match.group(2) or "").strip()) >= 40, f"{path.name}: {match.group(1)} needs a reason after the colon"
    assert found, "no skip comments found: update this test if infra/ no longer needs any"
