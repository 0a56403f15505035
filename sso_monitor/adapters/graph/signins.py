"""Entra's sign-in records on Graph's beta endpoint (docs/evidence.md): the SignInReader port.

- ``GET /beta/auditLogs/signIns?$filter=signInEventTypes/any(t: t eq 'nonInteractiveUser')
  and createdDateTime ge {since} and (appId eq '…' or …)&$top=1000``: one query per tenant
  per run for all its apps (pages followed), with the identity configured for the tenant.
- ``GET /beta/reports/appCredentialSignInActivities?$filter=appId eq '…'``: one app's
  per-credential activity (a rotation awaiting confirmation, or keeping an old secret).

Both need AuditLog.Read.All and a P1/P2 tenant; a 403 is answered as a ReadFailure that
names which (``Authentication_RequestFromNonPremiumTenantOrB2CTenant``: the licence;
any other: the permission). The reporting API allows 5 requests per 10 s per app per
tenant: requests are paced at 4 (the rest is left to retries and other instances), and
the pipeline's RetryHandler honours a 429's Retry-After. Never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from sso_monitor.adapters.graph.budget import ResourceBudget
from sso_monitor.adapters.graph.client import GraphPipeline
from sso_monitor.checks.ports import CredentialActivity, SignInLog, SignInRecord
from sso_monitor.config import MonitorConfig
from sso_monitor.models import Problem, ReadFailure

log = logging.getLogger(__name__)

REPORT_REQUESTS = 5  # per 10 s per app per tenant (Graph throttling limits, identity and access reports)
REPORT_WINDOW = 10.0
REPORT_SHARE = 0.8
MAX_PAGES = 20  # 20,000 sign-ins a run: far more than a day of code redemptions
APPS_PER_QUERY = 15  # appId clauses joined by "or" in one filter (Graph caps a filter's length and clauses)
NO_LICENCE = "authentication_requestfromnonpremiumtenantorb2ctenant"


def beta_endpoint(graph_endpoint: str) -> str:
    """``https://graph.microsoft.com/v1.0`` -> ``https://graph.microsoft.com/beta`` (the same host)."""
    base = graph_endpoint.rstrip("/")
    head, _, last = base.rpartition("/")
    return f"{head}/beta" if last.lower() in ("v1.0", "beta") else f"{base}/beta"


class _BetaPipeline(GraphPipeline):
    """The tenant's Graph pipeline (same identity, middleware, CA) on the beta endpoint."""

    def adapter(self) -> Any:
        adapter = super().adapter()
        adapter.base_url = beta_endpoint(self.config.cloud.graph_endpoint)
        return adapter


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def refusal(status: int, body: Any, what: str) -> ReadFailure:
    """A Graph error answer as a ReadFailure naming what is missing."""
    error = body.get("error") if isinstance(body, dict) else None
    code = str((error or {}).get("code") or "") if isinstance(error, dict) else ""
    if status == 403 and code.lower() == NO_LICENCE:
        return ReadFailure(Problem.ACCESS_DENIED, f"{what}: the tenant has no Microsoft Entra ID P1/P2 licence (Graph: {code})")
    if status == 403:
        return ReadFailure(Problem.ACCESS_DENIED, f"{what}: the monitor's identity lacks AuditLog.Read.All in this tenant (Graph: HTTP 403 {code})")
    if status in (400, 404):
        return ReadFailure(Problem.NOT_FOUND, f"{what}: not served here (HTTP {status} {code}; the report is in the global cloud only)")
    return ReadFailure(Problem.FAILED, f"{what}: Graph answered HTTP {status} {code}".rstrip())


class GraphSignInReader:
    """SignInReader on Graph beta, one pipeline and one reporting pacer per tenant."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self._pipelines: dict[str, GraphPipeline] = {}
        self._budgets: dict[str, ResourceBudget] = {}

    def _for(self, tenant_id: str) -> tuple[GraphPipeline, ResourceBudget]:
        key = tenant_id.lower()
        if key not in self._pipelines:
            self._pipelines[key] = _BetaPipeline(self.config, key)
            self._budgets[key] = ResourceBudget(REPORT_REQUESTS, window=REPORT_WINDOW, share=REPORT_SHARE)
        return self._pipelines[key], self._budgets[key]

    async def recent_sign_ins(self, tenant_id: str, app_ids: Sequence[str], since: datetime) -> SignInLog | ReadFailure:
        found: list[SignInRecord] = []
        wanted = sorted({a.lower() for a in app_ids})
        for start in range(0, len(wanted), APPS_PER_QUERY):
            chunk = wanted[start : start + APPS_PER_QUERY]
            apps = " or ".join(f"appId eq {_quoted(a)}" for a in chunk)
            flt = f"signInEventTypes/any(t: t eq 'nonInteractiveUser') and createdDateTime ge {since:%Y-%m-%dT%H:%M:%SZ} and ({apps})"
            answer = await self._pages(tenant_id, f"/auditLogs/signIns?$filter={quote(flt, safe='')}&$top=1000", "sign-in log")
            if isinstance(answer, ReadFailure):
                return answer
            for row in answer:
                record = _sign_in(row)
                if record is not None and record.app_id in chunk:
                    found.append(record)
        return SignInLog(since=since, records=tuple(found))

    async def credential_activity(self, tenant_id: str, app_id: str) -> CredentialActivity | ReadFailure:
        flt = quote(f"appId eq {_quoted(app_id.lower())}", safe="")
        answer = await self._pages(tenant_id, f"/reports/appCredentialSignInActivities?$filter={flt}", "credential-activity report")
        if isinstance(answer, ReadFailure):
            return answer
        last: dict[str, datetime | None] = {}
        for row in answer:
            key_id = str(row.get("keyId") or "").lower()
            if not key_id or str(row.get("appId") or "").lower() != app_id.lower():
                continue
            activity = row.get("signInActivity")
            at = _time(activity.get("lastSignInDateTime")) if isinstance(activity, dict) else None
            previous = last.get(key_id)
            last[key_id] = max((t for t in (previous, at) if t is not None), default=None)
        return CredentialActivity(last_used=last)

    async def aclose(self) -> None:
        pipelines, self._pipelines = self._pipelines, {}
        for pipeline in pipelines.values():
            await pipeline.aclose()

    async def _pages(self, tenant_id: str, path: str, what: str) -> list[dict[str, Any]] | ReadFailure:
        pipeline, budget = self._for(tenant_id)
        rows: list[dict[str, Any]] = []
        next_path: str | None = path
        pages = 0
        while next_path is not None and pages < MAX_PAGES:
            await budget.spend(1)
            try:
                answer = await pipeline.send("GET", next_path)
            # Broad on purpose: a record that cannot be read is a finding (or a fallback to
            # a person's confirmation), never a failed run.
            except Exception as exc:
                log.warning("%s of tenant %s not read (%s)", what, tenant_id, type(exc).__name__)
                return ReadFailure(Problem.FAILED, f"{what}: not read ({type(exc).__name__})")
            pages += 1
            if answer.status != 200:
                failure = refusal(answer.status, answer.body, what)
                log.warning("tenant %s: %s", tenant_id, failure.detail)
                return failure
            body = answer.body if isinstance(answer.body, dict) else {}
            rows.extend(r for r in body.get("value") or [] if isinstance(r, dict))
            next_path = self._next(body.get("@odata.nextLink"))
        return rows

    def _next(self, link: object) -> str | None:
        """The next page's path, only on our own Graph beta endpoint (the token goes with it)."""
        if not link:
            return None
        there, here = urlsplit(str(link)), urlsplit(beta_endpoint(self.config.cloud.graph_endpoint))
        prefix = here.path.rstrip("/") + "/"
        if (there.scheme, there.hostname, there.port) != (here.scheme, here.hostname, here.port) or not there.path.startswith(prefix):
            return None
        return there.path[len(prefix) - 1 :] + (f"?{there.query}" if there.query else "")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _sign_in(row: dict[str, Any]) -> SignInRecord | None:
    at = _time(row.get("createdDateTime"))
    status = row.get("status") if isinstance(row.get("status"), dict) else {}
    code = status.get("errorCode") if isinstance(status, dict) else None
    if at is None or not isinstance(code, int) or not row.get("appId"):
        return None
    return SignInRecord(app_id=str(row["appId"]).lower(), at=at, error_code=code)
