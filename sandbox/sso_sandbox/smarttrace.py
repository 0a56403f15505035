"""SmartTrace: the facility sites, the Entra callbacks and the integration-settings API.

One server answers every SmartTrace name; the Host header picks the part:

- ``<facility>.smarttrace.ai`` / ``<facility>.staging.smarttrace.ai``:
  the facility's login page (``GET /``): 200 with "Sign in with Microsoft",
  503 while the facility is offline, 404 for an unknown facility;
- ``api.smarttrace.ai`` / ``api.staging.smarttrace.ai`` (and 127.0.0.1,
  localhost, which serve every facility), under ``/v1``:
  - ``GET /v1/auth/callback/azure-logout/<facility>``: front-channel logout;
  - ``GET|POST /v1/auth/callback/azure/<facility>``: the redirect URI;
  - ``PUT|GET /v1/integrations/<facility>/azure-ad/client-secret``: the
    integration-settings contract the monitor's "http handoff" pushes to.
- ``smarttrace.ai`` / ``www.smarttrace.ai``: a marketing page.

SmartTrace publishes no integration-settings API; the contract served here is
the project's own, documented in docs/sandbox/smarttrace.md. Secret values
never appear in answers, error messages, logs or ``facility.received``.
"""

from __future__ import annotations

import html
import json
import logging
import secrets as _secrets
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from sso_sandbox.clock import iso, parse_iso
from sso_sandbox.faults import FaultPlan
from sso_sandbox.http import HttpError, Request, Response, Service, bearer_token
from sso_sandbox.world import Facility, HandoffRecord, World

log = logging.getLogger("sso_sandbox.smarttrace")

DOMAIN = "smarttrace.ai"
API_HOSTS = {"api.smarttrace.ai": "production", "api.staging.smarttrace.ai": "staging"}
LOOPBACK_HOSTS = {"", "127.0.0.1", "localhost", "::1"}
SITE_HOSTS = {"smarttrace.ai", "www.smarttrace.ai"}

SECRET_FIELDS = ("clientSecret", "keyId", "applicationId", "tenantId", "expiresAt")

_AADSTS_HINTS = {
    "AADSTS7000215": "invalid client secret (a new secret can take minutes to replicate in Entra ID)",
    "AADSTS7000222": "the client secret has expired",
    "AADSTS700016": "the application was not found in the tenant",
    "AADSTS90002": "the tenant was not found",
    "AADSTS7000112": "the application is disabled",
}


def environment_of(facility: Facility) -> str:
    """'staging' for a facility whose API base is on api.staging.smarttrace.ai, else 'production'."""
    host = (urlsplit(facility.api_base).hostname or "").lower()
    return "staging" if host.endswith("staging." + DOMAIN) else "production"


def facility_host(facility: Facility) -> str:
    suffix = f"staging.{DOMAIN}" if environment_of(facility) == "staging" else DOMAIN
    return f"{facility.name}.{suffix}"


class SmartTraceService(Service):
    name = "smarttrace"

    def __init__(self, world: World, faults: FaultPlan) -> None:
        super().__init__(world, faults)
        f = r"(?P<facility>[^/]+)"
        self.route("GET", r"/v1/auth/callback/azure-logout/" + f, self.logout_callback)
        self.route("HEAD", r"/v1/auth/callback/azure-logout/" + f, self.logout_callback)
        self.route("GET", r"/v1/auth/callback/azure/" + f, self.redirect_callback)
        self.route("POST", r"/v1/auth/callback/azure/" + f, self.redirect_callback)
        self.route("PUT", r"/v1/integrations/" + f + r"/azure-ad/client-secret", self.push_secret)
        self.route("GET", r"/v1/integrations/" + f + r"/azure-ad/client-secret", self.get_secret_settings)

    # ---- routing by Host

    def dispatch(self, request: Request) -> Response:
        host = request.host.rstrip(".")
        if host in API_HOSTS or host in LOOPBACK_HOSTS:
            try:
                return super().dispatch(request)
            except HttpError as exc:
                if exc.code == "NotFound":
                    raise HttpError(404, "not_found", f"No such route: {request.method} {request.path}") from None
                if exc.code == "MethodNotAllowed":
                    raise HttpError(405, "method_not_allowed", exc.message) from None
                raise
        if host in SITE_HOSTS:
            return self._site_page(request)
        for suffix, environment in ((f".staging.{DOMAIN}", "staging"), (f".{DOMAIN}", "production")):
            if host.endswith(suffix):
                label = host[: -len(suffix)]
                if label and "." not in label:
                    return self._facility_page(request, label, environment)
        raise HttpError(404, "unknown_host", f"SmartTrace does not serve the host {request.host!r}.")

    def _api_environment(self, request: Request) -> str | None:
        """The environment an API host serves; None (every facility) on loopback."""
        return API_HOSTS.get(request.host.rstrip("."))

    def _lookup(self, name: str, environment: str | None) -> Facility | None:
        facility = self.world.facility(name)
        if facility is None:
            return None
        if environment is not None and environment_of(facility) != environment:
            return None
        return facility

    # ---- facility sites

    def _facility_page(self, request: Request, label: str, environment: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _html(405, "Method not allowed", "<p>This page only answers GET.</p>", {"Allow": "GET, HEAD"})
        if request.path not in ("", "/", "/login"):
            return _html(404, "Not found", "<p>There is no such page.</p>")
        facility = self._lookup(label, environment)
        if facility is None:
            return _html(404, "Facility not found", f"<p>There is no SmartTrace facility called {html.escape(label)}.</p>")
        if not facility.online:
            return _html(
                503,
                "SmartTrace is unavailable",
                f"<p>{html.escape(facility.name)} is temporarily unavailable. Please try again later.</p>",
                {"Retry-After": "120"},
            )
        authorize = self._authorize_url(facility)
        body = (
            f"<h1>{html.escape(facility.name)}</h1>\n"
            f"<p>Sign in to SmartTrace for {html.escape(facility.name)}.</p>\n"
            f'<a class="sso-button" id="sign-in-with-microsoft" href="{html.escape(authorize)}">Sign in with Microsoft</a>\n'
        )
        return _html(200, f"{facility.name} | SmartTrace", body)

    def _authorize_url(self, facility: Facility) -> str:
        query = urlencode(
            {
                "client_id": facility.app_id,
                "response_type": "code",
                "redirect_uri": f"{facility.api_base.rstrip('/')}/auth/callback/azure/{facility.name}",
                "response_mode": "query",
                "scope": "openid profile email",
            }
        )
        return f"https://login.microsoftonline.com/{facility.tenant_id}/oauth2/v2.0/authorize?{query}"

    def _site_page(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _html(405, "Method not allowed", "<p>This page only answers GET.</p>", {"Allow": "GET, HEAD"})
        return _html(200, "SmartTrace", "<h1>SmartTrace</h1><p>Food safety and traceability.</p>")

    # ---- Entra callbacks

    def logout_callback(self, request: Request, facility: str) -> Response:
        found = self._lookup(facility, self._api_environment(request))
        if found is None:
            raise HttpError(404, "facility_not_found", f"Unknown facility {facility!r}.")
        if not found.logout_callback_online:
            raise HttpError(503, "service_unavailable", "The logout callback is temporarily unavailable.", {"Retry-After": "120"})
        return _html(200, "Signed out", f"<p>You have been signed out of SmartTrace for {html.escape(found.name)}.</p>")

    def redirect_callback(self, request: Request, facility: str) -> Response:
        found = self._lookup(facility, self._api_environment(request))
        if found is None:
            raise HttpError(404, "facility_not_found", f"Unknown facility {facility!r}.")
        params = dict(request.form()) if request.method == "POST" else {}
        params.update({key: values[0] for key, values in request.query.items() if values})
        if params.get("error"):
            raise HttpError(400, "authorization_failed", f"Entra ID answered the sign-in with error {params['error'][:64]!r}.")
        if not params.get("code"):
            raise HttpError(400, "missing_code", "The authorization response has no 'code' parameter.")
        # The sandbox does not redeem the code; a real SmartTrace would, then start a session.
        return Response.empty(302, {"Location": f"https://{facility_host(found)}/", "Cache-Control": "no-store"})

    # ---- integration settings: the client-secret handoff

    def get_secret_settings(self, request: Request, facility: str) -> Response:
        found = self._authorized_facility(request, facility, record=False)
        return Response.json(
            200,
            {
                "facility": found.name,
                "keyId": found.key_id,
                "updatedAt": iso(found.updated),
                "applicationId": found.app_id,
                "tenantId": found.tenant_id,
                "status": "active" if found.client_secret else "not_configured",
            },
            {"Cache-Control": "no-store"},
        )

    def push_secret(self, request: Request, facility: str) -> Response:
        found = self._authorized_facility(request, facility, record=True)
        body = self._push_body(request, found)
        key_id = body["keyId"].lower()
        secret = body["clientSecret"]
        if body["applicationId"].lower() != found.app_id.lower():
            raise self._reject(
                found, key_id, 409, "application_mismatch", f"applicationId does not match the application configured for {found.name}.", "applicationId"
            )
        if body["tenantId"].lower() != found.tenant_id.lower():
            raise self._reject(found, key_id, 409, "tenant_mismatch", f"tenantId does not match the tenant configured for {found.name}.", "tenantId")
        if found.echo_secret_in_errors:
            raise self._reject(found, key_id, 400, "secret_rejected", f"The client secret {secret[:-1]} could not be saved.", "clientSecret", reason=secret[1:])
        if found.key_id and found.key_id.lower() == key_id:
            if found.client_secret and _secrets.compare_digest(found.client_secret.encode(), secret.encode()):
                self._record(found, key_id, 200, "unchanged")
                return self._accepted(found)
            raise self._reject(
                found, key_id, 409, "key_id_conflict", f"keyId {key_id} is already configured for {found.name} with a different secret.", "keyId"
            )
        if found.verify_on_push:
            reason = self.world.secret_works(found.tenant_id, found.app_id, secret)
            if reason is not None:
                hint = _AADSTS_HINTS.get(reason, "Entra ID refused a sign-in with it")
                raise self._reject(
                    found,
                    key_id,
                    422,
                    "secret_rejected",
                    f"SmartTrace tested the client secret against Entra ID and it was rejected: {reason}: {hint}. The current secret was kept.",
                    "clientSecret",
                    reason=reason,
                )
        found.client_secret = secret
        found.key_id = key_id
        found.updated = self.world.now()
        if secret not in self.world.issued_secrets:
            self.world.issued_secrets.append(secret)
        self._record(found, key_id, 200, "accepted")
        return self._accepted(found)

    def _accepted(self, facility: Facility) -> Response:
        return Response.json(
            200,
            {"facility": facility.name, "keyId": facility.key_id, "updatedAt": iso(facility.updated), "status": "active"},
            {"Cache-Control": "no-store"},
        )

    def _authorized_facility(self, request: Request, name: str, *, record: bool) -> Facility:
        found = self._lookup(name, self._api_environment(request))
        if found is None:
            raise HttpError(404, "facility_not_found", f"Unknown facility {name!r}.")
        token = bearer_token(request)
        challenge = {"WWW-Authenticate": 'Bearer realm="smarttrace-api"'}
        if token is None:
            if record:
                self._record(found, None, 401, "missing_token")
            raise HttpError(401, "unauthorized", "An 'Authorization: Bearer <api token>' header is required.", challenge)
        if _token_in(token, found.api_tokens):
            return found
        if any(_token_in(token, other.api_tokens) for other in self.world.facilities.values() if other is not found):
            if record:
                self._record(found, None, 403, "forbidden")
            raise HttpError(403, "forbidden", f"The API token is not valid for facility {found.name}.")
        if record:
            self._record(found, None, 401, "invalid_token")
        raise HttpError(401, "invalid_token", "The API token is not valid.", challenge)

    def _push_body(self, request: Request, facility: Facility) -> dict[str, str]:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type and content_type != "application/json" and not content_type.endswith("+json"):
            raise self._reject(facility, None, 415, "unsupported_media_type", "The body must be application/json.")
        if not request.body:
            raise self._reject(facility, None, 400, "invalid_body", "A JSON object body is required.")
        try:
            data: Any = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise self._reject(facility, None, 400, "invalid_json", "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise self._reject(facility, None, 400, "invalid_body", "The body must be a JSON object.")
        raw_key = data.get("keyId")
        key_id = raw_key.lower() if isinstance(raw_key, str) and _is_guid(raw_key) else None
        for name in SECRET_FIELDS:
            if data.get(name) is None:
                raise self._reject(facility, key_id, 400, "missing_field", f"The field '{name}' is required.", name)
        for name in SECRET_FIELDS:
            if not isinstance(data[name], str):
                raise self._reject(facility, key_id, 422, "invalid_field", f"The field '{name}' must be a string.", name)
        secret = data["clientSecret"]
        if not secret:
            raise self._reject(facility, key_id, 422, "invalid_field", "The field 'clientSecret' must not be empty.", "clientSecret")
        if secret != secret.strip() or any(ch in secret for ch in "\r\n\t"):
            raise self._reject(facility, key_id, 422, "invalid_field", "The field 'clientSecret' must not contain whitespace or line breaks.", "clientSecret")
        if len(secret) > 1024:
            raise self._reject(facility, key_id, 422, "invalid_field", "The field 'clientSecret' is too long.", "clientSecret")
        for name in ("keyId", "applicationId", "tenantId"):
            if not _is_guid(data[name]):
                raise self._reject(facility, key_id, 422, "invalid_field", f"The field '{name}' must be a GUID.", name)
        try:
            expires = parse_iso(data["expiresAt"])
        except (ValueError, TypeError):
            raise self._reject(facility, key_id, 422, "invalid_field", "The field 'expiresAt' must be an ISO 8601 date-time.", "expiresAt") from None
        if expires <= self.world.now():
            raise self._reject(facility, key_id, 422, "invalid_field", "The field 'expiresAt' is in the past.", "expiresAt")
        return {name: data[name] for name in SECRET_FIELDS}

    def _reject(
        self,
        facility: Facility,
        key_id: str | None,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        *,
        reason: str | None = None,
    ) -> _PushError:
        self._record(facility, key_id, status, f"{code}:{reason}" if reason else code)
        return _PushError(status, code, message, target, reason)

    def _record(self, facility: Facility, key_id: str | None, status: int, reason: str) -> None:
        facility.received.append(HandoffRecord(at=self.world.now(), key_id=key_id, status=status, reason=reason))
        log.info("smarttrace push facility=%s keyId=%s status=%s reason=%s", facility.name, key_id, status, reason)

    def handle(self, request: Request) -> Response:
        try:
            return super().handle(request)
        except _PushError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.target:
                error["target"] = exc.target
            if exc.reason:
                error["reason"] = exc.reason
            return Response.json(exc.status, {"error": error})


class _PushError(Exception):
    def __init__(self, status: int, code: str, message: str, target: str | None, reason: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.reason = reason


def _token_in(token: str, accepted: set[str]) -> bool:
    # Compare every candidate (no early exit) in constant time per candidate.
    found = False
    for candidate in accepted:
        if _secrets.compare_digest(candidate.encode(), token.encode()):
            found = True
    return found


def _is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        return False


def _html(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> Response:
    page = f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body>\n</html>\n'
    return Response.text(status, page, "text/html; charset=utf-8", headers)
