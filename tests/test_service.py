"""The status document: check results, secret expiry and rotation stage per app."""

from __future__ import annotations

import asyncio
import json

from sso_monitor.config import parse_config
from sso_monitor.rotation.protocol import rotation_status
from sso_monitor.service import build_status
from sso_monitor.wiring import build_rotation_deps
from sso_sandbox.settings import monitor_document
from tests.checks import check_sandbox


def test_status_document_for_the_demo_world(scenario_sandbox, tmp_path):
    report = check_sandbox(scenario_sandbox)
    document, environ = monitor_document(scenario_sandbox)
    config = parse_config(document, environ)

    async def stages():
        from sso_monitor.adapters.storage.lease import LocalLease

        deps = build_rotation_deps(config, lease=LocalLease(tmp_path))
        try:
            return {app.facility: await rotation_status(app, deps) for app in config.apps}
        finally:
            await deps.aclose()

    status = build_status(report, asyncio.run(stages()), scenario_sandbox.world.now())
    by_name = {a["facility"]: a for a in status["apps"]}
    assert set(by_name) == {"riverside", "harbor", "valley", "summit", "prairie", "lakeside", "meadow", "orchard"}
    assert by_name["harbor"]["daysLeft"] in (11, 12) and by_name["harbor"]["status"] == "warning"
    assert by_name["valley"]["daysLeft"] < 0 and by_name["valley"]["status"] == "critical"
    assert by_name["riverside"]["rotation"]["stage"] == "current"  # a hand-stored secret counts as current
    assert status["summary"] == {"ok": 1, "warning": 2, "critical": 5}
    text = json.dumps(status)
    assert not [s for s in scenario_sandbox.world.issued_secrets if s in text]


def test_a_rotation_results_findings_are_in_its_json_in_the_one_style():
    """RotationResult.findings (from Entra's records) are in every serialized rotate answer
    (the CLI's --json, the admin API's rotate and confirm): code, severity, message, fix and
    details, keys camelCase, as a check's findings."""
    from sso_monitor.checks.findings import Severity, finding
    from sso_monitor.rotation.protocol import RotationResult
    from sso_monitor.service import Outcome, outcome_json, result_json

    still = finding(
        "OLD_SECRET_STILL_IN_USE",
        "SmartTrace still signs in with the old secret: paste the new one.",
        severity=Severity.ERROR,
        key_id="k0",
        last_used="2026-12-06T08:00:00Z",
        since="2026-12-01T08:00:00Z",
    )
    result = RotationResult("acme", stage="current", key_id="k1", findings=[still])
    answer = outcome_json(Outcome(result, []))
    assert answer["findings"] == [
        {
            "code": "OLD_SECRET_STILL_IN_USE",
            "severity": "error",
            "message": "SmartTrace still signs in with the old secret: paste the new one.",
            "fix": still.fix,
            "details": {"keyId": "k0", "lastUsed": "2026-12-06T08:00:00Z", "since": "2026-12-01T08:00:00Z"},
        }
    ]
    assert result_json(RotationResult("acme", stage="idle"))["findings"] == []
    assert json.loads(json.dumps(answer)) == answer
