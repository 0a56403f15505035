"""Who may call the admin API: the roles, the caller (``Principal``), the refusal
(``AuthError``) and its answer (``json_error``). The bearer token itself is checked by
tokens.py (``TokenValidator``: PyJWT and requests, loaded on the first call)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import azure.functions as func

from sso_monitor import redact
from sso_monitor.errors import MonitorError

log = logging.getLogger(__name__)

READ_ROLE = "SsoMonitor.Read"
ADMIN_ROLE = "SsoMonitor.Admin"
ALGORITHM = "RS256"  # Entra signs access tokens with RS256; nothing else is accepted
REALM = "sso-monitor"
MAX_TOKEN_LENGTH = 16 * 1024  # Entra tokens are a few KB; longer is not worth parsing

# A role satisfies itself and the roles listed here.
_IMPLIED_ROLES: Mapping[str, frozenset[str]] = {ADMIN_ROLE: frozenset({READ_ROLE})}


@dataclass(frozen=True)
class AdminAuthSettings:
    tenant_id: str
    audience: str  # the admin API's app id URI, e.g. api://sso-monitor-admin
    authority: str  # e.g. https://login.microsoftonline.com (the tenant goes after it)
    ca_bundle: str | None = None  # None: the system's trust store
    leeway_seconds: int = 60  # clock skew allowed on exp, nbf and iat
    jwks_ttl_seconds: int = 3600  # how long discovery and keys are kept
    client_id: str | None = None  # the admin API's client id: the aud of v2.0 tokens
    refetch_interval_seconds: int = 300  # at most one unknown-kid JWKS refetch per this
    timeout_seconds: float = 10.0
    use_env_proxies: bool = False

    @property
    def audiences(self) -> list[str]:
        return [a for a in (self.audience, self.client_id) if a]

    @property
    def discovery_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant_id}/v2.0/.well-known/openid-configuration"


@dataclass(frozen=True)
class Principal:
    """The caller, as the validated token describes it."""

    subject: str  # sub: what the audit log records
    object_id: str | None  # oid
    app_id: str | None  # azp (v2.0) or appid (v1.0): the calling client
    tenant_id: str | None  # tid
    roles: tuple[str, ...]
    name: str | None = None
    upn: str | None = None  # preferred_username or upn, for users

    def has_role(self, role: str) -> bool:
        return any(held == role or role in _IMPLIED_ROLES.get(held, ()) for held in self.roles)


class AuthError(MonitorError):
    """The caller is not let in. ``message`` is safe to answer with: it never holds the token."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def require(principal: Principal, role: str) -> Principal:
    """The principal, if it holds ``role`` (Admin implies Read); else a 403."""
    if not principal.has_role(role):
        raise AuthError(403, "insufficient_role", f"the token does not carry the app role {role}")
    return principal


def json_error(status: int, code: str, message: str) -> func.HttpResponse:
    """``{"error": {"code", "message"}}``; a 401 also says how to authenticate (RFC 6750)."""
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        # RFC 6750 3.1: no error code when the request simply carried no bearer token.
        error = "" if code == "missing_token" else ', error="invalid_token"'
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"{error}'
    return func.HttpResponse(
        redact.scrub(json.dumps({"error": {"code": code, "message": message}})),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )
