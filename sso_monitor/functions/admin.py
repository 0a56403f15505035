"""The HTTP admin API under /api: thin handlers that authenticate, parse, call
AdminService and map the result. Bad input is a 4xx with a clear message,
never a 5xx; no answer ever holds a secret value. Actions are logged with the
caller's identity (the token's subject or UPN)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import azure.functions as func

from .. import redact
from . import PerProcess

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
        from ..admin import AdminService
        from ..config import load_config
        from .auth import AdminAuthSettings, TokenValidator

        config = load_config()
        if config.admin_api is None:
            from ..errors import ConfigError

            raise ConfigError(["adminApi: required for the admin API (tenantId and audience of its app registration)"])
        self.service = AdminService(config)
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
reset = _state.reset
_get_state = _state.get


def _json(status: int, payload: Any) -> func.HttpResponse:
    body = redact.scrub(json.dumps(payload, default=str))  # no fragment of a secret in any answer
    return func.HttpResponse(body, status_code=status, mimetype="application/json", headers={"Cache-Control": "no-store"})


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
    return data


async def _handle(req: func.HttpRequest, role: str, action: Callable[[_State, Any], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    from ..admin import InvalidSnooze, UnknownFacility
    from ..alerting import UnknownCode
    from ..errors import ConfigError, ExternalError, LeaseUnavailable
    from ..rotation import RotationFailed
    from .auth import AuthError, json_error

    try:
        state = _get_state()
        principal = state.validator.validate(req.headers.get("Authorization"), required_role=role)
        return await action(state, principal)
    except AuthError as exc:
        return json_error(exc.status, exc.code, exc.message)
    except BadRequest as exc:
        return json_error(exc.status, exc.code, exc.message)
    except UnknownFacility as exc:
        return json_error(404, "unknown_facility", str(exc))
    except (UnknownCode, InvalidSnooze) as exc:
        return json_error(400, "invalid_field", str(exc))
    except RotationFailed as exc:
        return json_error(409, "rotation_conflict", str(exc))
    except LeaseUnavailable:
        return json_error(409, "rotation_busy", "another run holds this app's lease (a rotation is running); try again in a minute")
    except ConfigError as exc:
        log.error("admin API not configured: %s", exc)
        return json_error(503, "not_configured", "the admin API is not configured; see the Function App's log")
    except ExternalError as exc:
        return json_error(502, "upstream_failed", str(exc))


def _who(principal: Any) -> str:
    return principal.upn or principal.name or principal.subject


def _now() -> datetime:
    return datetime.now(timezone.utc)


@bp.function_name("admin_status")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def status(req: func.HttpRequest) -> func.HttpResponse:
    from .auth import READ_ROLE

    async def act(state: _State, principal: Any) -> func.HttpResponse:
        return _json(200, await state.service.status(_now()))

    return await _handle(req, READ_ROLE, act)


@bp.function_name("admin_status_page")
@bp.route(route="status/page", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def status_page(req: func.HttpRequest) -> func.HttpResponse:
    from .auth import READ_ROLE
    from .status_page import render_status_page

    async def act(state: _State, principal: Any) -> func.HttpResponse:
        page = redact.scrub(render_status_page(await state.service.status(_now())))
        return func.HttpResponse(page, status_code=200, mimetype="text/html", headers={"Cache-Control": "no-store"})

    return await _handle(req, READ_ROLE, act)


@bp.function_name("admin_check")
@bp.route(route="apps/{facility}/check", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def check(req: func.HttpRequest) -> func.HttpResponse:
    from .auth import ADMIN_ROLE

    async def act(state: _State, principal: Any) -> func.HttpResponse:
        facility = _facility(req)
        _body(req, {})
        log.info("admin: %s asked to check %s", _who(principal), facility)
        return _json(200, await state.service.check(facility, _now()))

    return await _handle(req, ADMIN_ROLE, act)


@bp.function_name("admin_rotate")
@bp.route(route="apps/{facility}/rotate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def rotate(req: func.HttpRequest) -> func.HttpResponse:
    from .auth import ADMIN_ROLE

    async def act(state: _State, principal: Any) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"dryRun": bool, "force": bool})
        result = await state.service.rotate(facility, dry_run=body.get("dryRun", False), force=body.get("force", False), who=_who(principal))
        return _json(200, result)

    return await _handle(req, ADMIN_ROLE, act)


@bp.function_name("admin_confirm")
@bp.route(route="apps/{facility}/confirm", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def confirm(req: func.HttpRequest) -> func.HttpResponse:
    from .auth import ADMIN_ROLE

    async def act(state: _State, principal: Any) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"keyId": str}, required=("keyId",))
        if not _GUID.fullmatch(body["keyId"]):  # not match: "$" also matches before a trailing newline
            raise BadRequest(400, "invalid_field", "keyId must be a GUID (the new secret's keyId from the handoff message)")
        return _json(200, await state.service.confirm(facility, body["keyId"], _who(principal)))

    return await _handle(req, ADMIN_ROLE, act)


@bp.function_name("admin_push")
@bp.route(route="apps/{facility}/push", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def push(req: func.HttpRequest) -> func.HttpResponse:
    from .auth import ADMIN_ROLE

    async def act(state: _State, principal: Any) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"dryRun": bool})
        return _json(200, await state.service.push(facility, _who(principal), dry_run=body.get("dryRun", False)))

    return await _handle(req, ADMIN_ROLE, act)


@bp.function_name("admin_snooze")
@bp.route(route="apps/{facility}/snooze", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def snooze(req: func.HttpRequest) -> func.HttpResponse:
    from ..alerts import parse_until
    from .auth import ADMIN_ROLE

    async def act(state: _State, principal: Any) -> func.HttpResponse:
        facility = _facility(req)
        body = _body(req, {"code": str, "until": str, "reason": str}, required=("code", "until"))
        if not _CODE.fullmatch(body["code"]):
            raise BadRequest(400, "invalid_field", "code must be a finding code such as SECRET_EXPIRING (see docs/checks.md)")
        try:
            until = parse_until(body["until"])
        except ValueError as exc:
            raise BadRequest(400, "invalid_field", str(exc)) from None
        return _json(200, await state.service.snooze(facility, body["code"], until, _who(principal), body.get("reason", ""), _now()))

    return await _handle(req, ADMIN_ROLE, act)


@bp.function_name("admin_openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from .openapi import openapi_document

    return _json(200, openapi_document())
