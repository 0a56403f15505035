"""One check run over the configured apps: read, decide, report.

Reads are grouped per tenant (the directory reader batches them), then each
app's Key Vault secret, token probe and URL probes run under a bound on
concurrency. One app's failure becomes its CHECK_FAILED finding; it never
stops the others. Decisions are checks.evaluate, with ``now`` passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sso_monitor.checks.decisions import evaluate, in_use_credential
from sso_monitor.checks.findings import Finding, Severity, finding
from sso_monitor.checks.ports import Adapters, DirectorySnapshot, OwnReads, SignInLog
from sso_monitor.checks.signins import after_retirement, sign_in_findings
from sso_monitor.config import AppConfig, MonitorConfig
from sso_monitor.errors import AccessDenied, ExternalError
from sso_monitor.models import AppObservation, Problem, ReadFailure, is_ours

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class AppResult:
    app: AppConfig
    findings: list[Finding]
    secret_expires: datetime | None = None  # the end of the client secret SmartTrace is taken to use

    @property
    def status(self) -> str:
        return app_status(self.findings)


@dataclass
class CheckReport:
    results: list[AppResult]
    started: datetime
    finished: datetime | None = None
    errors: list[str] = field(default_factory=list)  # the monitor's own failures (not per app)


def app_status(findings: Sequence[Finding]) -> str:
    """ok, warning, error (a check could not run) or critical: the worst finding wins."""
    worst = max((f.severity for f in findings), key=lambda s: s.rank, default=None)
    if worst is None or worst is Severity.INFO:
        return "ok"
    return worst.value


def select_apps(config: MonitorConfig, facility: str | None) -> list[AppConfig]:
    if facility is None:
        return list(config.apps)
    app = config.app(facility)
    return [app] if app else []


async def run_checks(
    config: MonitorConfig,
    adapters: Adapters,
    now: datetime,
    *,
    apps: Sequence[AppConfig] | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    chosen = list(apps if apps is not None else config.apps)
    report = CheckReport(results=[], started=now)
    tenants: dict[str, list[AppConfig]] = {}
    for app in chosen:
        tenants.setdefault(app.tenant_id, []).append(app)
    # Graph's batched reads run while each app's own reads (Key Vault, the two pages, the
    # token probe) go on under the concurrency bound: an app waits for its tenant's
    # snapshot only to decide (docs/performance.md).
    snapshots = {tenant: asyncio.create_task(_snapshot(adapters, tenant, members, report)) for tenant, members in tenants.items()}
    # Entra's sign-in log (signIns.enabled): one query per tenant, beside the snapshot.
    sign_ins = {
        tenant: asyncio.create_task(_sign_ins(adapters, tenant, [a for a in members if a.sign_ins.enabled], now))
        for tenant, members in tenants.items()
        if adapters.signins is not None and any(a.sign_ins.enabled for a in members)
    }
    gate = asyncio.Semaphore(config.network.concurrency)
    done = 0

    async def one(app: AppConfig) -> AppResult:
        nonlocal done
        expires = None
        try:
            async with gate:
                own = await own_reads(app, adapters)
            observation = await observe(app, await snapshots[app.tenant_id], own, adapters, gate)
            findings = evaluate(app, observation, now)
            if app.tenant_id in sign_ins and app.sign_ins.enabled:
                findings += await _sign_in_findings(app, await sign_ins[app.tenant_id], observation, adapters, gate, config.vault_url, now)
            if observation.app is not None:
                in_use = in_use_credential(observation.app, observation.vault_secret.key_id if observation.vault_secret else None, now)
                expires = in_use.end if in_use else None
        except Exception as exc:  # isolation: one app's bug or outage must not stop the run
            log.exception("check %s: unexpected failure", app.facility)
            findings = [finding("CHECK_FAILED", f"unexpected {exc.__class__.__name__} while checking; see the monitor's log")]
        done += 1
        if progress:
            progress(done, len(chosen))
        return AppResult(app, findings, expires)

    try:
        report.results = list(await asyncio.gather(*(one(app) for app in chosen)))
    finally:
        for task in (*snapshots.values(), *sign_ins.values()):
            task.cancel()
    return report


async def _sign_in_findings(
    app: AppConfig, log: SignInLog | ReadFailure, observation: AppObservation, adapters: Adapters, gate: asyncio.Semaphore, vault_url: str, now: datetime
) -> list[Finding]:
    """The app's findings from Entra's sign-in log; a SIGN_IN_FAILING is escalated when the
    monitor removed a credential of the app just before (Key Vault's retired versions, read
    only then: one listing for a failing app, none for the others)."""
    found = sign_in_findings(app.app_id, log, now, app.sign_ins.quiet_days)
    if isinstance(log, ReadFailure) or not any(f.code == "SIGN_IN_FAILING" for f in found):
        return found
    async with gate:
        retired = await adapters.vault.retirements(app.vault_secret_name)
    return [after_retirement(f, retired, log.since, app, vault_url, observation.vault_secret) for f in found]


async def _sign_ins(adapters: Adapters, tenant_id: str, apps: list[AppConfig], now: datetime) -> SignInLog | ReadFailure:
    assert adapters.signins is not None
    since = now - timedelta(days=max(a.sign_ins.quiet_days for a in apps))
    return await adapters.signins.recent_sign_ins(tenant_id, [a.app_id for a in apps], since)


async def _snapshot(adapters: Adapters, tenant_id: str, apps: list[AppConfig], report: CheckReport) -> DirectorySnapshot | ReadFailure:
    directory = adapters.directories.get(tenant_id)
    if directory is None:
        return ReadFailure(Problem.FAILED, f"no directory reader for tenant {tenant_id}")
    try:
        return await directory.snapshot(tenant_id, [a.app_id for a in apps])
    except AccessDenied as exc:
        report.errors.append(f"tenant {tenant_id}: {exc}")
        return ReadFailure(Problem.ACCESS_DENIED, str(exc))
    except ExternalError as exc:
        report.errors.append(f"tenant {tenant_id}: {exc}")
        return ReadFailure(Problem.FAILED, str(exc))


async def own_reads(app: AppConfig, adapters: Adapters) -> OwnReads:
    return await adapters.apps.read(app.vault_secret_name, app.tenant_id, app.app_id, app.facility_url, app.expected_logout_url)


async def observe(
    app: AppConfig, snapshot: DirectorySnapshot | ReadFailure, own: OwnReads, adapters: Adapters, gate: asyncio.Semaphore | None = None
) -> AppObservation:
    """Everything one app's checks need; each read's failure is recorded, not raised."""
    if isinstance(snapshot, ReadFailure):
        obs = AppObservation()
        obs.app_failure = (
            snapshot
            if snapshot.problem is not Problem.ACCESS_DENIED
            else ReadFailure(Problem.FAILED, f"the monitor cannot read tenant {app.tenant_id}: {snapshot.detail}")
        )
    else:
        obs = snapshot.observation(app.app_id)
    obs.facility_page, obs.logout_callback = own.facility_page, own.logout_callback
    stored = own.stored
    if isinstance(stored, ReadFailure):
        obs.vault_failure = stored
        return obs
    # Every version's keyId is needed only to tell orphans: credentials the monitor
    # created. Without one of those on the app, one request per app is saved.
    if obs.app is None or any(is_ours(c.display_name, app.deployment_id) for c in obs.app.password_credentials):
        async with gate or contextlib.nullcontext():
            key_ids = await adapters.vault.key_ids(app.vault_secret_name)
        if isinstance(key_ids, ReadFailure):  # all of them or none: a partial set would make orphans of stored keys
            obs.vault_failure = key_ids
            return obs
        obs.vault_key_ids = key_ids
    obs.vault_secret = stored.info
    obs.probe = own.probe
    return obs
