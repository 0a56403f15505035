"""Status per app and the exit code, table-driven."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from sso_monitor.checks.findings import Severity, finding
from sso_monitor.checks.report import as_dict, write_table
from sso_monitor.checks.run import AppResult, CheckReport, app_status
from sso_monitor.cli.exits import exit_code
from sso_monitor.config import parse_config

APP = parse_config(
    {
        "vaultUrl": "https://kv.vault.azure.net",
        "apps": [{"facility": "acme", "tenantId": "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11", "appId": "11111111-2222-4333-8444-555555555555"}],
    },
    environ={},
).apps[0]
NOW = datetime(2026, 11, 29, tzinfo=UTC)

WARN = finding("LOGOUT_URL_MISSING", "m")
CRIT = finding("ID_TOKENS_DISABLED", "m")
ERR = finding("CHECK_FAILED", "m")
INFO = finding("LOGOUT_URL_MISSING", "m", severity=Severity.INFO)


@pytest.mark.parametrize(
    "findings, status",
    [
        ([], "ok"),
        ([INFO], "ok"),  # info never raises the status
        ([WARN], "warning"),
        ([WARN, ERR], "error"),  # could not check everything: worse than a warning
        ([ERR, CRIT], "critical"),  # a known breakage outranks an unknown
    ],
)
def test_app_status(findings, status):
    assert app_status(findings) == status


def report_of(*statuses_findings: list) -> CheckReport:
    return CheckReport(results=[AppResult(APP, list(f)) for f in statuses_findings], started=NOW)


@pytest.mark.parametrize(
    "apps, code",
    [
        ([[]], 0),  # all ok
        ([[], [WARN]], 1),  # warnings only
        ([[WARN], [CRIT]], 2),  # any critical
        ([[], [ERR]], 2),  # one app could not be checked: we cannot vouch for it
        ([[ERR], [ERR]], 3),  # nothing could be checked: the monitor failed
        ([], 3),  # no apps at all
    ],
)
def test_exit_code(apps, code):
    assert exit_code(report_of(*apps)) == code


def test_json_and_table_carry_the_findings():
    report = report_of([CRIT])
    data = as_dict(report)
    assert data["summary"] == {"ok": 0, "warning": 0, "critical": 1, "error": 0}
    assert data["apps"][0]["findings"][0]["code"] == "ID_TOKENS_DISABLED"
    out = io.StringIO()
    write_table(report, out, color=False)
    text = out.getvalue()
    assert "acme" in text and "ID_TOKENS_DISABLED" in text and "critical" in text
    assert "\x1b[" not in text  # no colour codes when not on a terminal
    coloured = io.StringIO()
    write_table(report, coloured, color=True)
    assert "\x1b[" in coloured.getvalue()
