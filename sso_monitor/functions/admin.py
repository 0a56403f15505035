"""The HTTP admin API under /api: thin handlers that authenticate, parse, call
AdminApi and map the result. Bad input is a 4xx with a clear message,
never a 5xx; no answer ever holds a secret value. Actions are logged with the
caller's identity (the token's subject or UPN).

Load: status answers from the last scheduled run's stored report, cached per
worker process (status_report.py), never from a live check; every caller is
rate-limited per kind of call (ratelimit.py: reads, the live check, actions),
with a 429 and Retry-After past the limit. Time: Azure ends an HTTP request
after 230 s, so rotate bounds its wait for propagation (ROTATE_VERIFY_DEADLINE)
and its whole answer (ROTATE_ANSWER_WITHIN); a rotation still in flight is a
202 whose Location is GET apps/{facility}/rotation."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import azure.functions as func

from sso_monitor import redact
from sso_monitor.errors import ConfigError, MonitorError
from sso_monitor.functions import PerProcess
from sso_monitor.functions.auth import ADMIN_ROLE, READ_ROLE, AdminAuthSettings, AuthError, Principal, json_error
from sso_monitor.functions.bounds import MOVING, POLL_SECONDS, ROTATE_ANSWER_WITHIN, ROTATE_VERIFY_DEADLINE, RUNNING
from sso_monitor.functions.ratelimit import ACTION, CHECK, READ, RateLimited, RateLimiter

if TYPE_CHECKING:
    from sso_monitor.functions.api import AdminApi

# Cold start: the host imports this module to index the routes, so it imports at the top
# only what every call needs and costs little; the service, the token validator, the
# status page and report, and the OpenAPI document load in the calls that use them
# (`import function_app`: 0.11 s this way, 0.43 s with everything at the top;
# docs/architecture.md, "Cold start").
bp = func.Blueprint()
log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
_FACILITY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CODE = re.compile(r"[A-Z][A-Z_]{1,40}")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _State:
    """The admin service and the token validator, built once per worker process."""

    def __init__(self) -> None:
        # Cold start: the service, the SDKs and the token validator (PyJWT, requests) load
        # on the first call, not when the host indexes the functions (docs/architecture.md,
        # "Cold start", has the measurements).
        from sso_monitor.config import load_config
        from sso_monitor.functions.api import AdminApi
        from sso_monitor.functions.tokens import TokenValidator

        config = load_config()
        if config.admin_api is None:
            raise ConfigError(["adminApi: required for the admin API (tenantId and audience of its app registration)"])
        self.config = config
        self.service: AdminApi = AdminApi(config)
        self.limiter = RateLimiter()
        self.validator = TokenValidator(
            AdminAuthSettings(
                tenant_id=config.admin_api.tenant_id,
                audience=config.admin_api.audience,
                client_id=config.admin_api.client_id,
                authority=config.cloud.authority,
                ca_bundle=config.network.ca_bundle,
                use_env_proxies=config.network.use_env_proxies,
            )
        )


_state = PerProcess(_State)
_get_state = _state.get


def reset() -> None:
    """Forget the per-process state (the settings changed: tests)."""
    from sso_monitor.functions.status_report import cache

    _state.reset()
    cache.clear()


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """An answer, in the one JSON style of the CLI and the API (service.to_json: camelCase
    keys, ISO 8601 UTC times). Every caller has the state, so the service is loaded already."""
    from sso_monitor.service import to_json

    return _body_of(status, to_json(payload), headers)


def _body_of(status: int, document: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    body = redact.scrub(json.dumps(document))  # no fragment of a secret in any answer
    return func.HttpResponse(body, status_code=status, mimetype="application/json", headers={"Cache-Control": "no-store", **(headers or {})})


def _facility(req: func.HttpRequest) -> str:
    facility = (req.route_params.get("facility") or "").strip()
    if not _FACILITY.match(facility):
        raise BadRequest(400, "invalid_facility", "facility must be the SmartTrace instance name: lower-case letters, digits and dashes")
    return facility


def _body(req: func.HttpRequest, fields: dict[str, type], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY:
        raise BadRequest(413, "body_too_large", f"the request body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(400, "invalid_json", "the request body is not valid JSON") from None
        except RecursionError:  # e.g. 16 KB of "[": the decoder gives up on the nesting
            raise BadRequest(400, "invalid_json", "the request body's JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(400, "invalid_body", "the request body must be a JSON object")
    for key in data:
        if key not in fields:
            raise BadRequest(400, "unknown_field", f"unknown field {key!r}; allowed: {', '.join(sorted(fields)) or 'none'}")
    for key, kind in fields.items():
        if key in data and not (isinstance(data[key], kind) and not (kind is not bool and isinstance(data[key], bool))):
            raise BadRequest(400, "invalid_field", f"{key} must be a {kind.__name__}")
    for key in required:
        if key not in data:
            raise BadRequest(400, "missing_field", f"{key} is required")
    for key, value in data.items():
        if isinstance(value, str) and not _is_unicode(value):
            # JSON's \ud800 escapes decode to unpaired surrogates: no store, log or channel can keep them.
            raise BadRequest(400, "invalid_field", f"{key} must be Unicode text (it holds an unpaired surrogate escape)")
    return data


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _handle(req: func.HttpRequest, role: str, kind: str, action: Callable[[_State, Principal], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    """Authenticate (``role``), charge the caller's ``kind`` of call, run ``action``, map errors."""
    try:
        state = _get_state()
        principal = state.validator.validate(req.headers.get("Authorization"), required_role=role)
        state.limiter.take(kind, _caller(principal))
        return await action(state, principal)
    except AuthError as exc:
        return json_error(exc.status, exc.code, exc.message)
    except RateLimited as exc:
        log.info("admin API: %s call refused, rate limit (retry after %d s)", exc.kind, exc.retry_after)
        return _json(
            429, {"error": {"code": "rate_limited", "message": str(exc) + " (the limit is per caller and per instance)"}}, {"Retry-After": str(exc.retry_after)}
        )
    except BadRequest as exc:
        return json_error(exc.status, exc.code, exc.message)
    except ConfigError as exc:
        log.error("admin API not configured: %s", exc)
        return json_error(503, "not_configured", "the admin API is not configured; see the Function App's log")
    except MonitorError as exc:
        from sso_monitor.functions.api import http_error  # loaded already: the state holds the API

        answer = http_error(exc)
        if answer is None:
            raise
        return json_error(*answer)


def _who(principal: Principal) -> str:
    return principal.upn or principal.name or principal.subject


def _caller(principal: Principal) -> str:
    """Whom the rate limit counts: the token's object id (oid), else its subject."""
    return principal.object_id or f"sub:{principal.subject}"


def _status_url(req: func.HttpRequest, facility: str) -> str:
    """GET apps/{facility}/rotation beside the request's route: same scheme, host and
    route prefix; never the request's query (it may carry the function key)."""
    parts = urlsplit(req.url or "")
    path = (parts.path or "").rstrip("/")
    route = f"/apps/{facility}/rotate"
    prefix = path[: -len(route)] if path.lower().endswith(route) else "/api"
    return urlunsplit((parts.scheme, parts.netloc, f"{prefix}/apps/{facility}/rotation", "", ""))


def _now() -> datetime:
    return datetime.now(UTC)


@bp.function_name("admin_status")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def status(req: func.HttpRequest) -> func.HttpResponse:
    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        return _json(200, await _stored_status(state))

    return await _handle(req, READ_ROLE, READ, act)


# The status page's data: no function key (a browser page cannot hold one; the page at
# status/view calls it with the signed-in person's token), the bearer token as everywhere.
@bp.function_name("admin_status_page")
@bp.route(route="status/page", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def status_page(req: func.HttpRequest) -> func.HttpResponse:
    from sso_monitor.functions.status_page import render_status_page

    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        page = redact.scrub(render_status_page(await _stored_status(state)))
        return func.HttpResponse(page, status_code=200, mimetype="text/html", headers={"Cache-Control": "no-store"})

    return await _handle(req, READ_ROLE, READ, act)


@bp.function_name("admin_status_view")
@bp.route(route="status/view", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def status_view(req: func.HttpRequest) -> func.HttpResponse:
    """The status page people open from an alert: it signs them in (status_view.py)."""
    from sso_monitor.functions.status_view import SECURITY_HEADERS, content_security_policy, not_configured_view, render_view

    try:
        state = _get_state()
    except ConfigError as exc:
        log.error("status page: the admin API is not configured: %s", exc)
        return func.HttpResponse(not_configured_view(), status_code=503, mimetype="text/html", headers=SECURITY_HEADERS)
    api = state.config.admin_api
    assert api is not None  # _State refuses a configuration without it
    if not api.client_id:
        log.error("status page: adminApi.clientId is not configured")
        return func.HttpResponse(not_configured_view(), status_code=503, mimetype="text/html", headers=SECURITY_HEADERS)
    authority = state.config.cloud.authority
    page = render_view(client_id=api.client_id, tenant_id=api.tenant_id, authority=authority)
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": content_security_policy(authority)}
    return func.HttpResponse(page, status_code=200, mimetype="text/html", headers=headers)


@bp.function_name("admin_status_view_file")
@bp.route(route="status/view/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def status_view_file(req: func.HttpRequest) -> func.HttpResponse:
    """The status page's scripts and styles, by name from a fixed list; 404 for any other."""
    from sso_monitor.functions.status_view import SECURITY_HEADERS, asset

    found = asset(req.route_params.get("name", ""))
    if found is None:
        return json_error(404, "not_found", "no such file of the status page")
    body, media_type = found
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"}
    return func.HttpResponse(body, status_code=200, mimetype=media_type, charset="utf-8", headers=headers)


async def _stored_status(state: _State) -> dict[str, Any]:
    """The last scheduled run's report (at most one storage read per process per minute)."""
    from sso_monitor.functions.status_report import cache, schedule_setting, served_status

    document = await cache.get(state.service.stored_status)
    return served_status(document, state.config, _now(), schedule_setting())


@bp.function_name("admin_check")
@bp.route(route="apps/{facility}/check", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def check(req: func.HttpRequest) -> func.HttpResponse:
    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        facility = _facility(req)
        _body(req, {})
        log.info("admin: %s asked to check %s", _who(principal), facility)
        return _json(200, await state.service.check(facility, _now()))

    return await _handle(req, ADMIN_ROLE, CHECK, act)


@bp.function_name("admin_rotate")
@bp.route(route="apps/{facility}/rotate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def rotate(req: func.HttpRequest) -> func.HttpResponse:
    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"dryRun": bool, "force": bool})
        dry_run = body.get("dryRun", False)
        result = await state.service.rotate(
            facility,
            dry_run=dry_run,
            force=body.get("force", False),
            who=_who(principal),
            verify_deadline=ROTATE_VERIFY_DEADLINE,
            answer_within=ROTATE_ANSWER_WITHIN,
        )
        if dry_run or result.get("error") or result.get("stage") not in MOVING + (RUNNING,):
            return _json(200, result)
        # Still in flight: waiting for propagation (the rest is the worker's or the next
        # timer run's), or still running here. 202, and where to follow it.
        url = _status_url(req, facility)
        if result["stage"] == RUNNING:
            result["resume"] = "running"
            result["message"] = f"the rotation of {facility} is still running; follow it at {url}"
        else:
            queued = await state.service.queue_resume(facility)
            result["resume"] = "queued" if queued else "next-scheduled-run"
            result["message"] = (
                f"the new secret of {facility} is not yet reliable at Entra (propagation); "
                + ("the rotation worker resumes it now" if queued else "the timer's next run resumes it")
                + f"; follow it at {url}"
            )
        result["statusUrl"] = url
        return _json(202, result, {"Location": url, "Retry-After": str(POLL_SECONDS)})

    return await _handle(req, ADMIN_ROLE, ACTION, act)


@bp.function_name("admin_rotation_status")
@bp.route(route="apps/{facility}/rotation", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def rotation_status(req: func.HttpRequest) -> func.HttpResponse:
    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        facility = _facility(req)
        return _json(200, await state.service.rotation(facility, _now()))

    return await _handle(req, READ_ROLE, READ, act)


@bp.function_name("admin_confirm")
@bp.route(route="apps/{facility}/confirm", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def confirm(req: func.HttpRequest) -> func.HttpResponse:
    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"keyId": str}, required=("keyId",))
        if not _GUID.fullmatch(body["keyId"]):  # not match: "$" also matches before a trailing newline
            raise BadRequest(400, "invalid_field", "keyId must be a GUID (the new secret's keyId from the handoff message)")
        return _json(200, await state.service.confirm(facility, body["keyId"], _who(principal)))

    return await _handle(req, ADMIN_ROLE, ACTION, act)


@bp.function_name("admin_push")
@bp.route(route="apps/{facility}/push", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def push(req: func.HttpRequest) -> func.HttpResponse:
    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"dryRun": bool})
        return _json(200, await state.service.push(facility, _who(principal), dry_run=body.get("dryRun", False)))

    return await _handle(req, ADMIN_ROLE, ACTION, act)


@bp.function_name("admin_snooze")
@bp.route(route="apps/{facility}/snooze", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def snooze(req: func.HttpRequest) -> func.HttpResponse:
    async def act(state: _State, principal: Principal) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"code": str, "until": str, "reason": str}, required=("code", "until"))
        if not _CODE.fullmatch(body["code"]):
            raise BadRequest(400, "invalid_field", "code must be a finding code such as SECRET_EXPIRING (see docs/checks.md)")
        return _json(200, await state.service.snooze(facility, body["code"], body["until"], _who(principal), body.get("reason", ""), _now()))

    return await _handle(req, ADMIN_ROLE, ACTION, act)


@bp.function_name("admin_openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from sso_monitor.functions.openapi import openapi_document

    # The document's keys are OpenAPI's ("$ref", "application/json", paths): not shaped.
    return _body_of(200, openapi_document())
