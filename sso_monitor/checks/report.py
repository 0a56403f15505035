"""Reports: JSON for machines, a table for people (the exit code: cli/exits.py)."""

from __future__ import annotations

import json
from collections import Counter
from typing import IO, Any

from sso_monitor.checks.run import CheckReport

STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "error": "magenta"}


def as_dict(report: CheckReport) -> dict[str, Any]:
    counts = Counter(r.status for r in report.results)
    return {
        "generatedAt": report.started.isoformat().replace("+00:00", "Z"),
        "summary": {status: counts.get(status, 0) for status in ("ok", "warning", "critical", "error")},
        "errors": list(report.errors),
        "apps": [
            {
                "facility": r.app.facility,
                "tenantId": r.app.tenant_id,
                "appId": r.app.app_id,
                "status": r.status,
                "findings": [f.as_dict() for f in r.findings],
            }
            for r in sorted(report.results, key=lambda r: r.app.facility)
        ],
    }


def write_json(report: CheckReport, out: IO[str]) -> None:
    json.dump(as_dict(report), out, indent=2)
    out.write("\n")


def write_table(report: CheckReport, out: IO[str], *, color: bool | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, force_terminal=color, no_color=color is False, width=None if color else 160, highlight=False)
    table = Table(title="SmartTrace SSO health", title_justify="left", show_lines=True)
    table.add_column("facility", no_wrap=True)
    table.add_column("tenant", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("findings")
    for r in sorted(report.results, key=lambda r: (-_rank(r.status), r.app.facility)):
        lines = [f"[{STATUS_STYLE.get(f.severity.value, '')}]{f.code}[/] {_escape(f.message)}\n[dim]fix: {_escape(f.fix)}[/]" for f in r.findings] or [
            "[green]all checks passed[/]"
        ]
        table.add_row(r.app.facility, r.app.tenant_id[:8], f"[{STATUS_STYLE[r.status]}]{r.status}[/]", "\n".join(lines))
    console.print(table)
    counts = Counter(r.status for r in report.results)
    console.print(", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "warning", "critical", "error")) + f" of {len(report.results)} apps")
    for error in report.errors:
        console.print(f"[magenta]monitor error:[/] {_escape(error)}")
    if any(r.findings for r in report.results):
        console.print("Every code is explained in docs/checks.md; --json gives the same report for machines.")


def _rank(status: str) -> int:
    return {"ok": 0, "warning": 1, "error": 2, "critical": 3}[status]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
