"""Entra's sign-in records, as the monitor reads them (docs/evidence.md, docs/sandbox/fidelity.md).

- ``signin_records.record_user_sign_in(world, facility)``: a facility's user signs in through SmartTrace.
  SmartTrace redeems the authorization code with the client secret it holds; Entra logs
  that as a **non-interactive user** sign-in: ``clientCredentialType`` ``clientSecret``,
  ``status.errorCode`` 0 or the secret's refusal (7000215, 7000222, 7000218), and **no**
  ``servicePrincipalCredentialKeyId``. A secret that matched a credential moves that
  credential's activity.
- The token endpoint calls ``signin_records.record_client_credentials`` for every client-credentials
  request with a client secret (the monitor's own probes): a **servicePrincipal** row
  carrying ``servicePrincipalCredentialKeyId``, and the credential's activity.
- ``GET /beta/auditLogs/signIns``: rows filtered by ``signInEventTypes/any(t: t eq '…')``
  (interactive rows only without it), ``createdDateTime ge|le``, ``appId eq`` (joined by
  ``or``), newest first, ``$top`` pages with ``@odata.nextLink``.
- ``GET /beta/reports/appCredentialSignInActivities``: one row per (app, keyId) with the
  last activity across all flows, visible ``Tenant.activity_report_delay`` after it
  happened; ``Tenant.activity_report`` ``"available"`` | ``"unavailable"`` (403) |
  ``"empty"`` (200, no rows).
- Both need AuditLog.Read.All (or Directory.Read.All) in the token's roles (else 403
  ``Authorization_RequestDenied``) and a P1/P2 tenant (``Tenant.premium``, else 403
  ``Authentication_RequestFromNonPremiumTenantOrB2CTenant``), and share the reporting
  limit: 5 requests per 10 s per app per tenant (429 with Retry-After).
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sso_sandbox.clock import iso, parse_iso
from sso_sandbox.http import HttpError, Request
from sso_sandbox.signin_records import records

if TYPE_CHECKING:
    from sso_sandbox.graph import GraphService
    from sso_sandbox.world import Tenant

AUDIT_ROLES = frozenset({"AuditLog.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"})
REPORT_LIMIT = 5  # requests per app per tenant per window (throttling-entra-logs-reports.md)
REPORT_WINDOW = timedelta(seconds=10)
MAX_TOP = 1000


def _guard(service: GraphService, request: Request, tenant: Tenant) -> None:
    roles = service._roles(request)
    if not roles & AUDIT_ROLES:
        raise HttpError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    if not tenant.premium:
        raise HttpError(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Neither tenant is B2C or tenant doesn't have premium license")
    window = records(service.world).budget.setdefault((tenant.tenant_id, (request.caller or "").lower()), deque())
    now = datetime.now(UTC)  # the budget runs on the real clock, as the identity budget does
    while window and window[0] <= now - REPORT_WINDOW:
        window.popleft()
    if len(window) >= REPORT_LIMIT:
        wait = (window[0] + REPORT_WINDOW - now).total_seconds()
        raise HttpError(429, "TooManyRequests", "Too many requests.", {"Retry-After": str(max(1, int(wait + 0.999)))})
    window.append(now)


_ANY = re.compile(r"^signInEventTypes/any\(\s*(\w+)\s*:\s*\1\s+eq\s+'(\w+)'\s*\)$", re.IGNORECASE)
_TIME = re.compile(r"^createdDateTime\s+(ge|le|gt|lt)\s+(\S+)$", re.IGNORECASE)
_APP = re.compile(r"^appId\s+eq\s+'([^']*)'$", re.IGNORECASE)
_KEY = re.compile(r"^keyId\s+eq\s+'([^']*)'$", re.IGNORECASE)


def _split(text: str, word: str) -> list[str]:
    """Split at top-level `` and `` / `` or `` (outside parentheses and quotes)."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    token = f" {word} "
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and text[i : i + len(token)].lower() == token:
            parts.append(text[start:i].strip())
            i += len(token)
            start = i
            continue
        i += 1
    parts.append(text[start:].strip())
    return parts


def _unwrap(text: str) -> str:
    while text.startswith("(") and text.endswith(")") and _split(text[1:-1], "or") and text.count("(") == text.count(")"):
        inner = text[1:-1].strip()
        if inner.count("(") != inner.count(")"):
            break
        text = inner
    return text


@dataclass
class _Filter:
    event_types: set[str] = field(default_factory=set)
    after: list[tuple[str, datetime]] = field(default_factory=list)
    app_ids: set[str] | None = None
    key_ids: set[str] | None = None


def _bad_filter(text: str) -> HttpError:
    return HttpError(400, "BadRequest", f"Invalid filter clause: {text}")


def _parse(text: str | None, allowed: set[str]) -> _Filter:
    wanted = _Filter()
    if not text:
        return wanted
    for clause in _split(text.strip(), "and"):
        clause = _unwrap(clause)
        if (m := _ANY.match(clause)) and "event" in allowed:
            wanted.event_types.add(m.group(2))
            continue
        if (m := _TIME.match(clause)) and "time" in allowed:
            moment = parse_iso(m.group(2).strip("'"))
            if moment is None:
                raise _bad_filter(clause)
            wanted.after.append((m.group(1).lower(), moment))
            continue
        alternatives = _split(clause, "or")
        apps = [_APP.match(_unwrap(a)) for a in alternatives]
        keys = [_KEY.match(_unwrap(a)) for a in alternatives]
        if all(apps) and "app" in allowed:
            found = {m.group(1).lower() for m in apps if m}
            wanted.app_ids = found if wanted.app_ids is None else wanted.app_ids & found
            continue
        if all(keys) and "key" in allowed:
            found = {m.group(1).lower() for m in keys if m}
            wanted.key_ids = found if wanted.key_ids is None else wanted.key_ids & found
            continue
        raise _bad_filter(clause)
    return wanted


def _in_time(at: datetime, bounds: list[tuple[str, datetime]]) -> bool:
    checks = {"ge": at.__ge__, "gt": at.__gt__, "le": at.__le__, "lt": at.__lt__}
    return all(checks[op](moment) for op, moment in bounds)


def list_sign_ins(service: GraphService, request: Request) -> Any:
    tenant = service._tenant(request)
    _guard(service, request, tenant)
    wanted = _parse(request.q("$filter") or request.q("filter"), {"event", "time", "app"})
    kinds = wanted.event_types or {"interactiveUser"}  # "returns only interactive sign-ins unless you set an explicit filter"
    rows = [
        r
        for r in records(service.world).rows
        if r.tenant_id == tenant.tenant_id
        and r.event_type in kinds
        and _in_time(r.at, wanted.after)
        and (wanted.app_ids is None or r.app_id.lower() in wanted.app_ids)
    ]
    rows.sort(key=lambda r: r.at, reverse=True)
    top_text = request.q("$top") or request.q("top") or str(MAX_TOP)
    if not top_text.isdigit() or not 1 <= int(top_text) <= MAX_TOP:
        raise HttpError(400, "BadRequest", f"Invalid page size specified: '{top_text}'. Must be between 1 and {MAX_TOP} inclusive.")
    top = int(top_text)
    skip_text = request.q("$skiptoken") or "0"
    skip = int(skip_text) if skip_text.isdigit() else 0
    page = rows[skip : skip + top]
    body: dict[str, Any] = {"@odata.context": f"{service.base_url}/beta/$metadata#auditLogs/signIns", "value": [r.json() for r in page]}
    if skip + top < len(rows):
        query = request.raw_path.split("?", 1)[1] if "?" in request.raw_path else ""
        kept = "&".join(p for p in query.split("&") if p and not p.lower().startswith(("$skiptoken=", "%24skiptoken=")))
        body["@odata.nextLink"] = f"{service.base_url}/beta/auditLogs/signIns?{kept}&$skiptoken={quote(str(skip + top))}"
    return service._ok(body)


def list_credential_activities(service: GraphService, request: Request) -> Any:
    tenant = service._tenant(request)
    if tenant.activity_report == "unavailable":
        raise HttpError(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Neither tenant is B2C or tenant doesn't have premium license")
    _guard(service, request, tenant)
    wanted = _parse(request.q("$filter") or request.q("filter"), {"app", "key"})
    visible_before = service.world.now() - tenant.activity_report_delay
    value: list[dict[str, Any]] = []
    if tenant.activity_report != "empty":
        for (tenant_id, app_id, key_id), times in sorted(records(service.world).activity.items()):
            if tenant_id != tenant.tenant_id:
                continue
            if (wanted.app_ids is not None and app_id not in wanted.app_ids) or (wanted.key_ids is not None and key_id not in wanted.key_ids):
                continue
            seen = [t for t in times if t <= visible_before]
            if not seen:
                continue
            app = tenant.app_by_app_id(app_id)
            last = max(seen)
            value.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app_id}|{key_id}")),
                    "appId": app_id,
                    "appObjectId": app.object_id if app else None,
                    "keyId": key_id,
                    "keyType": "clientSecret",
                    "keyUsage": "verify",
                    "credentialOrigin": "application",
                    "signInActivity": {"lastSignInDateTime": iso(last), "lastSignInRequestId": str(uuid.uuid4())},
                }
            )
    return service._ok({"@odata.context": f"{service.base_url}/beta/$metadata#reports/appCredentialSignInActivities", "value": value})
