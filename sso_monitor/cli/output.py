"""How the command line prints: JSON for scripts, words for people.

``--json`` is the service's one JSON style (service.to_json: camelCase keys, ISO 8601
UTC times), as the admin API answers. For people, a check report is a table on a
terminal, as wide as the terminal (rich reads its size, or COLUMNS) and coloured
unless NO_COLOR is set; piped or redirected it is plain lines, one per finding and
never wrapped, so that grep, a file or a mail shows whole sentences at any width.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import IO, Any

from sso_monitor.checks.run import AppResult, CheckReport
from sso_monitor.models import days_until, stamp

STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "error": "magenta"}
STATUSES = ("ok", "warning", "critical", "error")
_RANK = {"ok": 0, "warning": 1, "error": 2, "critical": 3}
FOOTNOTE = "Every code is explained in docs/checks.md; --json gives the same report for machines."


def write_json(document: Any, out: IO[str]) -> None:
    """A document the service shaped (to_json), indented for people who read it too."""
    json.dump(document, out, indent=2)
    out.write("\n")


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 app``, ``2 apps``: the count and the noun agree."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def summary_line(report: CheckReport) -> str:
    """``3 apps: 1 ok, 1 warning, 1 critical, 0 errors``."""
    counts = Counter(r.status for r in report.results)
    parts = [
        f"{counts.get('ok', 0)} ok",
        plural(counts.get("warning", 0), "warning"),
        f"{counts.get('critical', 0)} critical",
        plural(counts.get("error", 0), "error"),
    ]
    return f"{plural(len(report.results), 'app')}: {', '.join(parts)}"


def days_left_text(result: AppResult, report: CheckReport) -> str:
    """``12 days left``, ``expired 3 days ago`` (whole days at the check, as --json's daysLeft)."""
    assert result.secret_expires is not None
    days = days_until(result.secret_expires, report.started)
    if days >= 0:
        return f"{plural(days, 'day')} left"
    ago = days_until(report.started, result.secret_expires)  # whole days since, rounded down as daysLeft is
    return f"expired {plural(ago, 'day')} ago" if ago else "expired less than a day ago"


def expiry_text(result: AppResult, report: CheckReport) -> str:
    """When the secret SmartTrace uses ends, and the days left then."""
    if result.secret_expires is None:
        return "secret expiry unknown"
    return f"secret expires {stamp(result.secret_expires)}, {days_left_text(result, report)}"


def _ordered(report: CheckReport) -> list[AppResult]:
    return sorted(report.results, key=lambda r: (-_RANK[r.status], r.app.facility))


def write_report(report: CheckReport, out: IO[str]) -> None:
    """The check report for people: a table on a terminal, plain lines otherwise."""
    if _is_terminal(out):
        _write_table(report, out)
    else:
        _write_lines(report, out)


def _is_terminal(out: IO[str]) -> bool:
    try:
        return bool(out.isatty())
    except (ValueError, OSError):  # closed meanwhile
        return False


def _write_lines(report: CheckReport, out: IO[str]) -> None:
    out.write(f"SmartTrace SSO health, {stamp(report.started)}\n")
    for result in _ordered(report):
        app = result.app
        out.write(f"\n{app.facility}: {result.status} (tenant {app.tenant_id}, app {app.app_id}; {expiry_text(result, report)})\n")
        if not result.findings:
            out.write("  all checks passed\n")
        for found in result.findings:
            out.write(f"  {found.code} {found.message}\n    fix: {found.fix}\n")
    out.write(f"\n{summary_line(report)}\n")
    for error in report.errors:
        out.write(f"monitor error: {error}\n")
    if any(r.findings for r in report.results):
        out.write(FOOTNOTE + "\n")


def _write_table(report: CheckReport, out: IO[str]) -> None:
    # rich only for a terminal (docs/architecture.md, "Cold start")
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # width None: the terminal's (or COLUMNS); no_color None: rich honours NO_COLOR.
    console = Console(file=out, force_terminal=True, highlight=False)
    table = Table(title="SmartTrace SSO health", title_justify="left", show_lines=True)
    table.add_column("facility", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("secret")
    table.add_column("findings")
    for result in _ordered(report):
        lines = [f"[{STATUS_STYLE.get(f.severity.value, '')}]{f.code}[/] {escape(f.message)}\n[dim]fix: {escape(f.fix)}[/]" for f in result.findings]
        expires = result.secret_expires
        secret = "unknown" if expires is None else f"{expires:%Y-%m-%d}\n{days_left_text(result, report)}"
        table.add_row(
            f"{result.app.facility}\n[dim]{result.app.tenant_id[:8]}[/]",
            f"[{STATUS_STYLE[result.status]}]{result.status}[/]",
            secret,
            "\n".join(lines) or "[green]all checks passed[/]",
        )
    console.print(table)
    console.print(summary_line(report))
    for error in report.errors:
        console.print(f"[magenta]monitor error:[/] {escape(error)}")
    if any(r.findings for r in report.results):
        console.print(FOOTNOTE)
