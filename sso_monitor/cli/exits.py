"""The command line's exit codes, one rule for every command (docs/decisions.md, "Exit codes").

0 every app ok; 1 warnings only; 2 any critical finding or any app that could not be
checked; 3 the monitor itself failed (bad usage or configuration, or no app could be
checked at all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # every command imports this module first: keep it free of the check's imports
    from sso_monitor.checks.run import CheckReport

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_MONITOR_FAILED = 0, 1, 2, 3
# A rotation that failed leaves the secret due: as severe as a critical finding (EXIT_CRITICAL).
# One rule for every command: the most severe meaning wins, and "sign-in is or will
# be broken" (2) is more severe than "the monitor itself failed" (3), which is more
# severe than warnings (1). So an undelivered alert (3) never hides a critical (2).
_PRECEDENCE = (EXIT_OK, EXIT_WARNING, EXIT_MONITOR_FAILED, EXIT_CRITICAL)


def worst_exit(*codes: int) -> int:
    """The exit code that keeps the most severe meaning of ``codes`` visible."""
    return max(codes, key=_PRECEDENCE.index, default=EXIT_OK)


def exit_code(report: CheckReport) -> int:
    statuses = [r.status for r in report.results]
    if not statuses or all(s == "error" for s in statuses):
        return EXIT_MONITOR_FAILED
    if any(s in ("critical", "error") for s in statuses):
        return EXIT_CRITICAL
    if any(s == "warning" for s in statuses):
        return EXIT_WARNING
    return EXIT_OK
