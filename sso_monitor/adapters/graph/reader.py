"""Graph reads for the health checks: JSON $batch through the msgraph pipeline.

Per app four GETs (the app with its credentials and web settings, its owners,
its service principal, one assignment), plus the tenant's default app
management policy once; 20 to a ``POST /$batch``, several batches in flight under
``network.concurrency``. See docs/graph-reads.md.

Why raw JSON and not the fluent client: the reads are fixed, few and small,
and msgraph's models would cost an import of the whole generated package and
a parse per object (DESIGN.md, "Scale and speed"). We still send through the
SDK's request pipeline (graph_client.GraphPipeline, shared with the writer:
msgraph_core's middleware: auth, RetryHandler, TLS),
so an outer 429/503/504 is retried by the SDK, honouring Retry-After.

Throttled inner requests (429, 503, 504) are re-sent in a later batch after
the largest inner Retry-After, for a bounded number of rounds. One app's
problem becomes its ReadFailure; only a tenant where no batch got through
raises (AccessDenied when Graph or Entra refused the monitor itself,
TransientError otherwise).

``list_applications`` reads every application registration of the tenant, for
`sso-monitor discover`: ``GET /applications?$select=...&$top=999``, page after
page. Graph cannot filter on what makes an app SmartTrace's (``web/logoutUrl`` is not
filterable; ``web/redirectUris/any(...)`` takes only ``eq`` and ``startsWith``, and only
as an advanced query: Microsoft Learn, "Advanced query capabilities on Microsoft Entra
ID objects"), so the list is read whole and filtered by checks/discover.py.

Nothing here is imported from msgraph, kiota or azure-identity until the
first read: building the reader costs no import and no network.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

from sso_monitor.adapters.graph.budget import ResourceBudget, request_cost
from sso_monitor.adapters.graph.client import GraphAnswer, GraphPipeline, parse_seconds
from sso_monitor.checks.ports import DirectorySnapshot
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import AccessDenied, ConfigError, ExternalError, TransientError
from sso_monitor.models import (
    AppRegistration,
    KeyCredentialInfo,
    Ownership,
    PasswordCredentialInfo,
    PasswordPolicy,
    Problem,
    ReadFailure,
    ServicePrincipalInfo,
    WebSettings,
)

log = logging.getLogger(__name__)

SERVICE = "graph"
BATCH_LIMIT = 20  # Graph's JSON batching limit
DEFAULT_MAX_ROUNDS = 5  # re-sends of throttled inner requests
DEFAULT_MAX_WAIT = 30.0  # seconds; cap on one inner Retry-After we honour
RETRYABLE = frozenset({429, 503, 504})
_DETAIL_LIMIT = 240
_AADSTS = re.compile(r"AADSTS\d+")

APP_SELECT = "id,appId,displayName,createdDateTime,passwordCredentials,keyCredentials,web"
LIST_PAGE_SIZE = 999  # Graph's largest page of directory objects
LIST_MAX_PAGES = 1000  # a million applications, beyond any tenant: a loop of nextLinks ends here
SP_SELECT = "id,appId,accountEnabled,appRoleAssignmentRequired"
POLICY_URL = "/policies/defaultAppManagementPolicy"


# ---------------------------------------------------------------- the requests


@dataclass(frozen=True)
class _Read:
    """One inner request: ``kind`` is app, owners, sp, assigned or policy."""

    id: str
    kind: str
    app_id: str  # lower-case; "" for the policy
    url: str


# One answer, outer or inner: status, JSON body, Retry-After.
_Answer = GraphAnswer


@dataclass(frozen=True)
class _BatchFailure:
    """The outer POST /$batch gave no usable answer."""

    detail: str
    denied: bool  # Graph (401/403) or Entra refused the monitor's identity
    status: int | None = None
    code: str | None = None
    cause: BaseException | None = None


def _alternate_key(app_id: str) -> str:
    # OData string literal: a quote doubles; then the URL encoding.
    return quote("'" + app_id.replace("'", "''") + "'", safe="'")


def plan_reads(app_ids: Sequence[str]) -> list[_Read]:
    """The policy first, then each app's four reads side by side, so that one
    failing batch touches as few apps as possible."""
    reads = [_Read("policy", "policy", "", POLICY_URL)]
    for index, app_id in enumerate(app_ids):
        key = _alternate_key(app_id)
        reads += [
            _Read(f"a{index}", "app", app_id, f"/applications(appId={key})?$select={APP_SELECT}"),
            _Read(f"o{index}", "owners", app_id, f"/applications(appId={key})/owners?$select=id"),
            _Read(f"s{index}", "sp", app_id, f"/servicePrincipals(appId={key})?$select={SP_SELECT}"),
            _Read(f"r{index}", "assigned", app_id, f"/servicePrincipals(appId={key})/appRoleAssignedTo?$top=1&$select=id"),
        ]
    return reads


def _chunks(reads: list[_Read], size: int = BATCH_LIMIT) -> list[list[_Read]]:
    return [reads[start : start + size] for start in range(0, len(reads), size)]


# ---------------------------------------------------------------- the reader


class GraphDirectoryReader:
    """DirectoryReader for one tenant, with the identity configured for it.

    ``max_rounds`` bounds the re-sends of throttled inner requests, and
    ``max_wait`` the wait before one round (seconds); the SDK's RetryHandler
    (3 retries) handles the outer request.
    """

    def __init__(self, config: MonitorConfig, tenant_id: str, *, max_rounds: int = DEFAULT_MAX_ROUNDS, max_wait: float = DEFAULT_MAX_WAIT) -> None:
        self.config = config
        self.tenant_id = tenant_id.lower()
        self.max_rounds = max_rounds
        self.max_wait = max_wait
        self._pipeline = GraphPipeline(config, self.tenant_id)
        # Paced under Graph's resource-unit budget for this app and tenant (graph_budget.py).
        self.budget = ResourceBudget.for_tenant_size(config.network.size_of(self.tenant_id))

    # ---- the port

    async def snapshot(self, tenant_id: str, app_ids: Sequence[str]) -> DirectorySnapshot:
        if tenant_id.lower() != self.tenant_id:
            raise ValueError(f"this reader reads tenant {self.tenant_id}, not {tenant_id}")
        wanted = list(dict.fromkeys(a.lower() for a in app_ids))
        snapshot = DirectorySnapshot()
        if not wanted:
            return snapshot
        try:
            self._pipeline.adapter()
        except ConfigError as exc:
            # No usable identity for this tenant: that tenant's apps fail, the others' run on.
            raise ExternalError(SERVICE, f"no Graph client for tenant {tenant_id}: {exc}") from exc
        reads = plan_reads(wanted)
        answers, failures = await self._read_all(reads)
        if failures and len(failures) == len(reads):
            _raise_for_tenant(tenant_id, list(failures.values()))
        results: dict[str, _Answer | ReadFailure] = {**answers, **{rid: _failure_of(f) for rid, f in failures.items()}}
        by_id = {read.id: read for read in reads}
        snapshot.policy = _policy(results["policy"])
        monitor = await self._monitor_object_id()
        for index, app_id in enumerate(wanted):
            snapshot.apps[app_id] = _application(app_id, results[f"a{index}"])
            snapshot.service_principals[app_id] = _service_principal(app_id, results[f"s{index}"], results[f"r{index}"])
            if monitor is not None:
                snapshot.owners[app_id] = _ownership(app_id, monitor, results[f"o{index}"])
        failed = [by_id[rid] for rid, result in results.items() if isinstance(result, ReadFailure) or not 200 <= result.status < 300]
        log.debug(
            "graph snapshot tenant %s: %d app(s), %d inner request(s), %d without a value (%s)",
            tenant_id,
            len(wanted),
            len(reads),
            len(failed),
            ", ".join(f"{r.kind} {r.app_id}".rstrip() for r in failed[:20]),
        )
        return snapshot

    async def aclose(self) -> None:
        await self._pipeline.aclose()

    async def monitor_object_id(self) -> str | None:
        """The object id of the monitor's own service principal in this tenant (the ``oid``
        of its Graph token); None when it cannot be known."""
        return await self._monitor_object_id()

    async def list_applications(self) -> list[AppRegistration]:
        """Every application registration of the tenant (with its credentials, certificates
        and web settings), page after page. Application.ReadWrite.OwnedBy lists them all
        (application-list's permission note). Each page costs 1 resource unit (a list of
        ``applications`` costs 2, ``$select`` takes 1 off), paced under the same budget
        as the batches. Raises AccessDenied when Graph or Entra refuses the monitor,
        TransientError otherwise (the SDK's RetryHandler has retried 429, 503 and 504)."""
        try:
            self._pipeline.adapter()
        except ConfigError as exc:
            raise ExternalError(SERVICE, f"no Graph client for tenant {self.tenant_id}: {exc}") from exc
        what = f"listing the applications of tenant {self.tenant_id}"
        path: str | None = f"/applications?$select={APP_SELECT}&$top={LIST_PAGE_SIZE}"
        apps: list[AppRegistration] = []
        pages = 0
        while path is not None:
            if pages >= LIST_MAX_PAGES:
                raise TransientError(SERVICE, f"{what}: more than {LIST_MAX_PAGES} pages")
            await self.budget.spend(request_cost("GET", path))
            try:
                answer = await self._pipeline.send("GET", path)
            # Broad on purpose, as in _send: httpx, azure-identity and kiota each raise their own types.
            except Exception as exc:
                failure = _transport_failure(exc)
                kind = AccessDenied if failure.denied else TransientError
                raise kind(SERVICE, f"{what}: {failure.detail}", status=failure.status, code=failure.code) from exc
            pages += 1
            if answer.status != 200 or not isinstance(answer.body, dict):
                code, message = _error_of(answer.body)
                kind = AccessDenied if answer.status in (401, 403) else TransientError
                raise kind(SERVICE, _detail(f"{what}: HTTP {answer.status} {code or ''}".rstrip(), message), status=answer.status, code=code)
            items = answer.body.get("value")
            apps += [application_of(item) for item in (items if isinstance(items, list) else []) if isinstance(item, dict) and item.get("appId")]
            path = self._next_page(answer.body.get("@odata.nextLink"), what)
        log.debug("graph tenant %s: %d application(s) listed in %d page(s)", self.tenant_id, len(apps), pages)
        return apps

    def _next_page(self, link: Any, what: str) -> str | None:
        """The next page's path under the Graph endpoint. A link anywhere else is refused:
        the pipeline would send the monitor's token with it."""
        if not link:
            return None
        there, here = urlsplit(str(link)), urlsplit(self.config.cloud.graph_endpoint.rstrip("/"))
        prefix = here.path.rstrip("/") + "/"
        if (there.scheme, there.hostname, there.port) != (here.scheme, here.hostname, here.port) or not there.path.startswith(prefix):
            raise TransientError(SERVICE, f"{what}: the next page is not on the Graph endpoint ({there.hostname})")
        return there.path[len(prefix) - 1 :] + (f"?{there.query}" if there.query else "")

    async def _monitor_object_id(self) -> str | None:
        # After the reads: their token is in the credential's cache by now.
        try:
            return await self._pipeline.caller_object_id()
        # Broad on purpose, as in _send: without our own id ownership is simply not judged.
        except Exception as exc:
            log.debug("graph tenant %s: the monitor's own object id is unknown (%s)", self.tenant_id, type(exc).__name__)
            return None

    # ---- rounds and batches

    async def _read_all(self, reads: list[_Read]) -> tuple[dict[str, _Answer], dict[str, _BatchFailure]]:
        """Every read's final answer, or the failure of the batch that carried it."""
        answers: dict[str, _Answer] = {}
        failures: dict[str, _BatchFailure] = {}
        gate = asyncio.Semaphore(self.config.network.concurrency)
        pending = reads
        resent_after_transport: set[str] = set()
        for round_number in range(self.max_rounds + 1):
            batches = _chunks(pending)
            outcomes = await asyncio.gather(*(self._send(batch, gate) for batch in batches))
            throttled: list[_Read] = []
            waits: list[float] = []
            for batch, outcome in zip(batches, outcomes):
                if isinstance(outcome, _BatchFailure):
                    # A lost answer (dropped connection, timeout) is worth one more try:
                    # these reads are idempotent. An HTTP error already had the SDK's retries.
                    again = [
                        r
                        for r in batch
                        if outcome.status is None and not outcome.denied and r.id not in resent_after_transport and round_number < self.max_rounds
                    ]
                    if again:
                        resent_after_transport.update(r.id for r in again)
                        throttled.extend(again)
                        waits.append(1.0)
                        continue
                    failures.update((read.id, outcome) for read in batch)
                    continue
                for read in batch:
                    answer = outcome.get(read.id) or _Answer(
                        0, {"error": {"code": "NoAnswer", "message": "the batch answer holds no response for this request"}}
                    )
                    if answer.status in RETRYABLE:
                        if answer.status == 429:
                            self.budget.throttled()
                        throttled.append(read)
                        waits.append(answer.retry_after if answer.retry_after is not None else 2.0**round_number)
                    answers[read.id] = answer
            log.debug("graph round %d: %d batch(es), %d request(s), %d throttled", round_number, len(batches), len(pending), len(throttled))
            if not throttled or round_number == self.max_rounds:
                break
            await asyncio.sleep(min(max(waits), self.max_wait))
            pending = throttled
        return answers, failures

    async def _send(self, batch: list[_Read], gate: asyncio.Semaphore) -> dict[str, _Answer] | _BatchFailure:
        payload = {"requests": [{"id": read.id, "method": "GET", "url": read.url} for read in batch]}
        async with gate:
            # Inside the gate, so that what is counted as spent is what is being sent now.
            await self.budget.spend(sum(request_cost("GET", read.url) for read in batch))
            try:
                # Reads are idempotent: the SDK's RetryHandler may re-send POST /$batch.
                answer = await self._pipeline.send("POST", "/$batch", body=payload)
            # Broad on purpose: httpx, azure-identity, aiohttp and kiota each raise their own
            # types; any of them fails this batch only, and _transport_failure translates it.
            except Exception as exc:
                failure = _transport_failure(exc)
                log.debug("graph $batch of %d failed: %s", len(batch), failure.detail)
                return failure
        status, body = answer.status, answer.body
        if status != 200:
            code, message = _error_of(body)
            return _BatchFailure(
                _detail(f"$batch answered HTTP {status} {code or ''}".rstrip(), message), denied=status in (401, 403), status=status, code=code
            )
        responses = body.get("responses") if isinstance(body, dict) else None
        if not isinstance(responses, list):
            return _BatchFailure("$batch answered 200 without a responses list", denied=False, status=status)
        return {str(item.get("id")): _answer(item) for item in responses if isinstance(item, dict)}


# ---------------------------------------------------------------- translation


def _answer(item: dict[str, Any]) -> _Answer:
    headers = item.get("headers")
    if not isinstance(headers, dict):
        headers = {}
    retry_after = next((parse_seconds(v) for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    status = item.get("status")
    return _Answer(status if isinstance(status, int) else 0, item.get("body"), retry_after)


def _error_of(body: Any) -> tuple[str | None, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    return (str(error["code"]) if error.get("code") else None), str(error.get("message") or "")


def _detail(prefix: str, message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    text = f"{prefix}: {first}" if first else prefix
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _transport_failure(exc: BaseException) -> _BatchFailure:
    """An exception from the pipeline: Entra refusing our identity is a denial;
    a network error or a failed token request otherwise is transient."""
    # Here, not at the top: building the reader loads no SDK (cold start; tested).
    from azure.core.exceptions import AzureError

    from sso_monitor.adapters.errors import describe

    if isinstance(exc, AzureError):  # our token request: refused by Entra, or it failed (network, Entra down)
        found = describe(exc, "Entra")
        return _BatchFailure(found.detail, denied=found.kind is AccessDenied, status=found.status, code=found.code, cause=exc)
    return _BatchFailure(_detail(f"$batch failed ({type(exc).__name__})", str(exc)), denied=False, cause=exc)


def _raise_for_tenant(tenant_id: str, failures: list[_BatchFailure]) -> NoReturn:
    first = failures[0]
    message = f"no Graph read got through for tenant {tenant_id}: {first.detail}"
    if all(f.denied for f in failures):
        raise AccessDenied(SERVICE, message, status=first.status, code=first.code) from first.cause
    raise TransientError(SERVICE, message, status=first.status, code=first.code) from first.cause


def _failure_of(failure: _BatchFailure) -> ReadFailure:
    return ReadFailure(Problem.FAILED, failure.detail)


def _inner_failure(what: str, answer: _Answer) -> ReadFailure:
    code, message = _error_of(answer.body)
    if answer.status == 404:
        return ReadFailure(Problem.NOT_FOUND, f"{what} not found (HTTP 404 {code or 'Not Found'})")
    if answer.status in (401, 403):
        return ReadFailure(Problem.ACCESS_DENIED, _detail(f"{what}: HTTP {answer.status} {code or ''}".rstrip(), message))
    if answer.status in RETRYABLE:
        return ReadFailure(Problem.FAILED, _detail(f"{what}: throttled (HTTP {answer.status}) after every re-send we allow", message))
    return ReadFailure(Problem.FAILED, _detail(f"{what}: HTTP {answer.status} {code or ''}".rstrip(), message))


def _ok(result: _Answer | ReadFailure) -> dict[str, Any] | None:
    if isinstance(result, _Answer) and 200 <= result.status < 300 and isinstance(result.body, dict):
        return result.body
    return None


def _application(app_id: str, result: _Answer | ReadFailure) -> AppRegistration | ReadFailure:
    body = _ok(result)
    if body is None:
        return result if isinstance(result, ReadFailure) else _inner_failure(f"application {app_id}", result)
    return application_of(body, app_id)


def application_of(body: dict[str, Any], app_id: str = "") -> AppRegistration:
    """An application as Graph answers it (a GET, or one item of a list) as our model.
    A certificate's raw data (``key``, which Graph sends for a single object's
    ``$select=keyCredentials``) is never read."""
    web = body.get("web") or {}
    grants = web.get("implicitGrantSettings") or {}
    return AppRegistration(
        object_id=str(body.get("id") or ""),
        app_id=str(body.get("appId") or app_id),
        display_name=str(body.get("displayName") or ""),
        password_credentials=tuple(
            PasswordCredentialInfo(
                key_id=str(c.get("keyId") or ""),
                display_name=c.get("displayName"),
                hint=c.get("hint"),
                start=parse_datetime(c.get("startDateTime")),
                end=parse_datetime(c.get("endDateTime")),
            )
            for c in body.get("passwordCredentials") or []
            if isinstance(c, dict)
        ),
        web=WebSettings(
            logout_url=web.get("logoutUrl"),
            redirect_uris=tuple(web.get("redirectUris") or ()),
            id_tokens=bool(grants.get("enableIdTokenIssuance")),
            access_tokens=bool(grants.get("enableAccessTokenIssuance")),
            home_page_url=web.get("homePageUrl"),
        ),
        created=parse_datetime(body.get("createdDateTime")),
        key_credentials=tuple(
            KeyCredentialInfo(
                key_id=str(c.get("keyId") or ""),
                display_name=c.get("displayName"),
                type=c.get("type"),
                usage=c.get("usage"),
                start=parse_datetime(c.get("startDateTime")),
                end=parse_datetime(c.get("endDateTime")),
            )
            for c in body.get("keyCredentials") or []
            if isinstance(c, dict)
        ),
    )


def _service_principal(app_id: str, sp: _Answer | ReadFailure, assigned: _Answer | ReadFailure) -> ServicePrincipalInfo | ReadFailure:
    body = _ok(sp)
    if body is None:
        return sp if isinstance(sp, ReadFailure) else _inner_failure(f"service principal of {app_id}", sp)
    page = _ok(assigned)
    if page is None:
        # Without the assignment count the SP check cannot decide: report the read as failed.
        failure = assigned if isinstance(assigned, ReadFailure) else _inner_failure(f"assignments of {app_id}", assigned)
        return ReadFailure(Problem.FAILED if failure.problem is Problem.NOT_FOUND else failure.problem, failure.detail)
    return ServicePrincipalInfo(
        object_id=str(body.get("id") or ""),
        app_id=str(body.get("appId") or app_id),
        # null is "not set": Entra signs in unless the account is explicitly disabled
        enabled=body.get("accountEnabled") is not False,
        assignment_required=bool(body.get("appRoleAssignmentRequired")),
        assignments=len(page.get("value") or []),
    )


def _ownership(app_id: str, monitor_object_id: str, result: _Answer | ReadFailure) -> Ownership | ReadFailure:
    body = _ok(result)
    if body is None:
        return result if isinstance(result, ReadFailure) else _inner_failure(f"owners of {app_id}", result)
    owners = frozenset(str(o.get("id")).lower() for o in body.get("value") or [] if isinstance(o, dict) and o.get("id"))
    return Ownership(monitor_object_id, owners, complete="@odata.nextLink" not in body)


def _policy(result: _Answer | ReadFailure) -> PasswordPolicy | ReadFailure:
    body = _ok(result)
    if body is None:
        return result if isinstance(result, ReadFailure) else _inner_failure("defaultAppManagementPolicy", result)
    restrictions = (body.get("applicationRestrictions") or {}).get("passwordCredentials") or []
    lifetime = next(
        (r for r in restrictions if isinstance(r, dict) and r.get("restrictionType") == "passwordLifetime" and r.get("state", "enabled") != "disabled"),
        None,
    )
    if lifetime is None:
        return PasswordPolicy(max_lifetime=None, enabled=body.get("isEnabled") is not False)
    return PasswordPolicy(
        max_lifetime=parse_duration(lifetime.get("maxLifetime")),
        restrict_for_apps_created_after=parse_datetime(lifetime.get("restrictForAppsCreatedAfterDateTime")),
        enabled=body.get("isEnabled") is not False,
    )


def parse_datetime(value: Any) -> datetime | None:
    """Graph's Edm.DateTimeOffset: '2024-01-01T00:00:00Z', with up to 7 fraction digits."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Python keeps microseconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> timedelta | None:
    """An ISO 8601 duration as Graph writes maxLifetime ('P365D', 'P90DT12H').
    Years and months count as 365 and 30 days (Graph's limits are given in days)."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip().upper())
    if match is None or value.strip().upper() in ("P", "PT"):
        return None
    part = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return timedelta(
        days=part["years"] * 365 + part["months"] * 30 + part["weeks"] * 7 + part["days"],
        hours=part["hours"],
        minutes=part["minutes"],
        seconds=part["seconds"],
    )
