"""`sso-monitor check` and the check part of the demo: run, render, exit code."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.progress import Progress as Bar

from sso_monitor.checks.run import CheckReport, select_apps
from sso_monitor.cli.alerts import send_check_alerts
from sso_monitor.cli.exits import EXIT_MONITOR_FAILED, exit_code, worst_exit
from sso_monitor.cli.output import plural, write_json, write_report
from sso_monitor.config import MonitorConfig
from sso_monitor.service import MonitorService, check_json


def check_and_report(
    config: MonitorConfig,
    *,
    facility: str | None = None,
    as_json: bool = False,
    now: datetime | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    alert_state: Path | None = None,
    reports: list[CheckReport] | None = None,
) -> int:
    """``alert_state``: also send alerts through the configured channels, remembering
    what was said in this file (de-duplication across runs). ``reports``: the report
    is appended there too (the demo goes on from it)."""
    out = out or sys.stdout
    err = err or sys.stderr
    apps = select_apps(config, facility)
    if not apps:
        err.write(f"sso-monitor: no app for facility {facility!r} in the configuration\n")
        return EXIT_MONITOR_FAILED
    moment = now or datetime.now(UTC)
    report = asyncio.run(_checked(config, apps, moment, err, show_progress=not as_json))
    if reports is not None:
        reports.append(report)
    missing = no_credential(config, report)
    if as_json:
        write_json(check_json(report), out)
    elif missing is None:
        write_report(report, out)
    if missing is not None:
        # Every app failed the same way, for want of any credential: said once, with the
        # command that fixes it, instead of the same failure for every app. (No alert
        # either: the channels' secrets are in the same Key Vault.)
        err.write(f"sso-monitor: {missing}\n")
        return EXIT_MONITOR_FAILED
    code = exit_code(report)
    if code == EXIT_MONITOR_FAILED:  # the report says why; a script reading only stderr learns it too
        failed = len(report.results)
        err.write(f"sso-monitor: no app could be checked ({failed} of {plural(failed, 'app')} failed; see the report's errors)\n")
    if alert_state is not None:
        if not send_check_alerts(config, report, moment, alert_state, err):
            code = worst_exit(code, EXIT_MONITOR_FAILED)
    return code


async def _checked(config: MonitorConfig, apps: list, now: datetime, err: IO[str], *, show_progress: bool) -> CheckReport:
    service = MonitorService(config)
    if show_progress and err.isatty() and len(apps) > 1:
        with Bar(transient=True, console=_console(err)) as bar:
            task = bar.add_task("checking apps", total=len(apps))

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done)

            return await service.check(now, apps, progress=step)
    return await service.check(now, apps)


def _console(stream: IO[str]):
    from rich.console import Console

    return Console(file=stream)


# What azure-identity says when it has no credential to try at all (CredentialUnavailableError,
# and DefaultAzureCredential's summary of its chain), as the adapters pass its first line on
# in the check's CHECK_FAILED messages ("getting a token for the vault failed: ...").
NO_CREDENTIAL_SIGNS = (
    "DefaultAzureCredential failed to retrieve a token from the included credentials",
    "ManagedIdentityCredential authentication unavailable",
    "No managed identity endpoint found",
    "Azure CLI not found on path",
    "Please run 'az login'",
)


def _without_credential(text: str) -> bool:
    return any(sign in text for sign in NO_CREDENTIAL_SIGNS)


def no_credential(config: MonitorConfig, report: CheckReport) -> str | None:
    """What to say, once, when no app could be read because the monitor has no credential
    at all (no `az login` here, no managed identity): every app's check failed for it. None
    when any app got further (then the report says what is wrong, app by app)."""
    if not report.results:
        return None
    for result in report.results:
        failed = [f for f in result.findings if f.code == "CHECK_FAILED"]
        if not failed or not any(_without_credential(f.message) for f in failed):
            return None
    tenants = sorted({r.app.tenant_id for r in report.results})
    where = "tenant " + tenants[0] if len(tenants) == 1 else "tenants " + ", ".join(tenants)
    home = config.home_tenant_id
    kind = config.identity_for(home).kind
    if kind == "default":
        return (
            f"no Azure credential: the monitor could not get a token for {where} (no `az login` here, no managed identity), so no app was checked. "
            f"Run `az login --tenant {home}` and try again (in Azure, the Function App's managed identity is used)."
        )
    return (
        f"no Azure credential: the monitor could not get a token for {where} (no managed identity here), so no app was checked. "
        f"identities.{home} asks for the Function App's managed identity: run this where it is assigned, or locally set "
        f'identities.{home} to {{"kind": "default"}} and run `az login --tenant {home}`.'
    )
