"""Microsoft Graph v1.0, the parts the monitor uses.

- GET    /v1.0/applications                      ($filter appId/id/displayName eq|in, $select, $top)
- GET    /v1.0/applications/{id} | /applications(appId='{appId}')      ($select)
- PATCH  the same                                 (displayName, notes, web, identifierUris, signInAudience)
- POST   .../addPassword, .../removePassword
- GET    /v1.0/servicePrincipals                  ($filter, $select, $top)
- GET    /v1.0/servicePrincipals/{id} | /servicePrincipals(appId='{appId}')
- GET    .../appRoleAssignedTo                    ($top paging with @odata.nextLink)
- GET    .../owners on applications and service principals ($select, $top)
- GET    /v1.0/applications/{id}/appManagementPolicies (and the appId form)
- GET    /v1.0/policies/defaultAppManagementPolicy
- POST   /v1.0/users/{id | userPrincipalName}/sendMail
- POST   /v1.0/$batch                             (20 requests, dependsOn, faults per inner request)

Callers authenticate with the sandbox's Entra tokens (audience Graph); the
application permissions in the token's ``roles`` decide what they may read and
write (see docs/sandbox/graph.md for the model and every deviation from Graph).
Errors use Graph's body: ``{"error": {"code", "message", "innerError": {...}}}``.

Two models sit behind thin hooks here: the identity service's throttling budget
(budget.py, charged per request and per inner $batch request) and directory
replication lag (replication.py: reads may show an object as it was before a
recent write).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.parser import Parser
from email.utils import getaddresses
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from sso_sandbox import signins
from sso_sandbox.budget import request_cost
from sso_sandbox.clock import iso, parse_iso
from sso_sandbox.faults import FaultPlan
from sso_sandbox.http import HttpError, Request, Response, Service, _Drop, _retry_after, bearer_token
from sso_sandbox.replication import ReplicaView
from sso_sandbox.tokens import TokenError, TokenIssuer
from sso_sandbox.world import (
    DEFAULT_POLICY_ID,
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    Application,
    AppPolicy,
    AppRoleAssignment,
    KeyCredential,
    PasswordCredential,
    RequestRecord,
    SentMail,
    ServicePrincipal,
    Tenant,
    User,
    World,
    default_password_end,
    format_duration,
)

AUDIENCES = [GRAPH_RESOURCE, GRAPH_APP_ID]
_Directory = TypeVar("_Directory", Application, ServicePrincipal)
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

# ---- the permission model (application permissions, i.e. the token's "roles")
READ_ANY = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
WRITE_ANY = frozenset({"Application.ReadWrite.All"})
OWNED_BY = "Application.ReadWrite.OwnedBy"
POLICY_READ = frozenset({"Policy.Read.All", "Policy.Read.ApplicationConfiguration", "Policy.ReadWrite.ApplicationConfiguration"})
# Roles that may read users; without one, users in a directoryObject collection (owners)
# come back with only @odata.type and id ("Limited information returned for inaccessible
# member objects", Graph permissions overview).
USER_READ = frozenset({"User.Read.All", "User.ReadWrite.All", "User.ReadBasic.All", "Directory.Read.All", "Directory.ReadWrite.All"})
MAIL_SEND = "Mail.Send"

BATCH_LIMIT = 20
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
LOGOUT_URL_MAX = 255
REDIRECT_URI_MAX = 256

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

V = r"/v1\.0"
APP_KEY = r"/applications(?:/(?P<object_id>[^/()]+)|\(appId='(?P<app_id>[^'/]*)'\))"
SP_KEY = r"/servicePrincipals(?:/(?P<object_id>[^/()]+)|\(appId='(?P<app_id>[^'/]*)'\))"
BATCH_PATH = re.compile(V + r"/\$batch/?\Z", re.IGNORECASE)

# Non-navigation properties of microsoft.graph.application (from the OpenAPI subset), so that
# PATCH can tell "no such property" (Graph's OData error) from "not modelled by the sandbox".
APPLICATION_PROPERTIES = frozenset(
    {
        "id",
        "deletedDateTime",
        "addIns",
        "api",
        "appId",
        "applicationTemplateId",
        "appRoles",
        "certification",
        "createdDateTime",
        "defaultRedirectUri",
        "description",
        "disabledByMicrosoftStatus",
        "displayName",
        "groupMembershipClaims",
        "identifierUris",
        "info",
        "isDeviceOnlyAuthSupported",
        "isFallbackPublicClient",
        "keyCredentials",
        "logo",
        "nativeAuthenticationApisEnabled",
        "notes",
        "oauth2RequirePostResponse",
        "optionalClaims",
        "parentalControlSettings",
        "passwordCredentials",
        "publicClient",
        "publisherDomain",
        "requestSignatureVerification",
        "requiredResourceAccess",
        "samlMetadataUrl",
        "serviceManagementReference",
        "servicePrincipalLockConfiguration",
        "signInAudience",
        "spa",
        "tags",
        "tokenEncryptionKeyId",
        "uniqueName",
        "verifiedPublisher",
        "web",
    }
)
READ_ONLY_PROPERTIES = frozenset({"id", "appId", "createdDateTime", "deletedDateTime", "publisherDomain", "applicationTemplateId", "disabledByMicrosoftStatus"})
SIGN_IN_AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount")

_TOKEN_MESSAGES = {
    "malformed token": "IDX14100: JWT is not well formed, it does not have the three segments of a JWS.",
    "invalid audience": "Access token validation failure. Invalid audience.",
    "token expired": "Lifetime validation failed, the token is expired.",
    "token not yet valid": "Lifetime validation failed, the token is not yet valid.",
    "invalid issuer": "Access token validation failure. Invalid issuer.",
    "invalid signature": "Access token validation failure. Invalid signature.",
    "signing key not recognised": "Access token validation failure. Signing key not found.",
}


def _not_found(key: str) -> HttpError:
    return HttpError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.")


def _denied() -> HttpError:
    return HttpError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


class _DetailedError(HttpError):
    """An OData error with ``details`` (Graph puts them between message and innerError)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(status, code, message)
        self.details = details


def _lifetime_refused(policy_id: str) -> _DetailedError:
    # The body Graph answers (OfficeDev/microsoft-365-agents-toolkit#10998, Azure/azure-cli#28522).
    message = f"Credential lifetime exceeds the max value allowed as per assigned policy '{policy_id}'."
    return _DetailedError(400, "CredentialInvalidLifetimeAsPerAppPolicy", message, [{"code": "InvalidKeyEndDate", "message": message, "target": "EndDate"}])


def _bad_value(prop: str) -> HttpError:
    return HttpError(400, "Request_BadRequest", f"Invalid value specified for property '{prop}' of resource 'Application'.")


def _type_error(expected: str) -> HttpError:
    return HttpError(400, "BadRequest", f"Cannot convert a primitive value to the expected type '{expected}'. See the inner exception for more details.")


class _Context(threading.local):
    request_id: str | None = None
    client_request_id: str | None = None


class GraphService(Service):
    name = "graph"

    def __init__(self, world: World, faults: FaultPlan, issuer: TokenIssuer) -> None:
        super().__init__(world, faults)
        self.issuer = issuer
        self._ctx = _Context()
        action = r"/(?:microsoft\.graph\.)?"
        self.route("GET", V + r"/applications", self.list_applications)
        self.route("GET", V + APP_KEY, self.get_application)
        self.route("GET", V + APP_KEY + r"/owners", self.list_application_owners)
        self.route("GET", V + APP_KEY + r"/appManagementPolicies", self.list_app_management_policies)
        self.route("PATCH", V + APP_KEY, self.update_application)
        self.route("POST", V + APP_KEY + action + r"addPassword", self.add_password)
        self.route("POST", V + APP_KEY + action + r"removePassword", self.remove_password)
        self.route("GET", V + r"/servicePrincipals", self.list_service_principals)
        self.route("GET", V + SP_KEY, self.get_service_principal)
        self.route("GET", V + SP_KEY + r"/appRoleAssignedTo", self.list_app_role_assigned_to)
        self.route("GET", V + SP_KEY + r"/owners", self.list_service_principal_owners)
        self.route("GET", V + r"/policies/defaultAppManagementPolicy", self.default_app_management_policy)
        self.route("POST", V + r"/users/(?P<user>[^/]+)" + action + r"sendMail", self.send_mail)
        # Entra's sign-in records, beta only (signins.py)
        self.route("GET", r"/beta/auditLogs/signIns", lambda request: signins.list_sign_ins(self, request))
        self.route("GET", r"/beta/reports/appCredentialSignInActivities", lambda request: signins.list_credential_activities(self, request))

    # ------------------------------------------------------------ wire shapes

    def error_response(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, details: list[dict[str, Any]] | None = None
    ) -> Response:
        request_id = self._ctx.request_id or str(uuid.uuid4())
        merged = {"Content-Type": "application/json", "request-id": request_id}
        merged.update(headers or {})
        error: dict[str, Any] = {"code": code, "message": message}
        if details:
            error["details"] = details
        error["innerError"] = {
            "date": self._date(),
            "request-id": request_id,
            "client-request-id": self._ctx.client_request_id or request_id,
        }
        return Response.json(status, {"error": error}, merged)

    def _error(self, exc: HttpError) -> Response:
        return self.error_response(exc.status, exc.code, exc.message, exc.headers, getattr(exc, "details", None))

    def throttle_response(self, retry_after: float) -> Response:
        # The shape of reference/graph/errors/throttling-429-sample-response.http.
        request_id = self._ctx.request_id or str(uuid.uuid4())
        return Response.json(
            429,
            {
                "error": {
                    "code": "TooManyRequests",
                    "innerError": {
                        "code": "429",
                        "date": self._date(),
                        "message": "Please retry after",
                        "request-id": request_id,
                        "status": "429",
                    },
                    "message": "Please retry again later.",
                }
            },
            {"Content-Type": "application/json", "Retry-After": _retry_after(retry_after), "request-id": request_id},
        )

    def _date(self) -> str:
        return self.world.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def _ok(self, payload: Any, status: int = 200) -> Response:
        return Response.json(status, payload, {"Content-Type": ODATA_JSON, "OData-Version": "4.0"})

    def _context(self, fragment: str) -> str:
        return f"{self.base_url}/v1.0/$metadata#{fragment}"

    # ------------------------------------------------------------ request flow

    def process(self, request: Request) -> Response | _Drop:
        self._ctx.request_id = str(uuid.uuid4())
        self._ctx.client_request_id = request.header("client-request-id") or self._ctx.request_id
        try:
            outcome = super().process(request)
            if isinstance(outcome, Response):
                outcome.headers.setdefault("request-id", self._ctx.request_id)
                outcome.headers.setdefault("client-request-id", self._ctx.client_request_id)
            return outcome
        finally:
            self._ctx.request_id = None
            self._ctx.client_request_id = None

    def handle(self, request: Request) -> Response:
        try:
            if request.method == "POST" and BATCH_PATH.match(request.path):
                with self.world.lock:
                    self._authenticate(request)
                # Inner requests take the world lock one at a time, so that latency
                # faults on them do not stall every other client.
                return self._batch(request)  # type: ignore[return-value]  # may be DROP
            with self.world.lock:
                return self.dispatch(request)
        except HttpError as exc:
            return self._error(exc)

    def dispatch(self, request: Request) -> Response:
        self._authenticate(request)
        return self._route_charged(request)

    def _route_charged(self, request: Request) -> Response:
        """Route one request (or one inner $batch request) through the identity service's
        throttling budget: charged before it runs, refused with 429 when a limit is full."""
        cost = request_cost(request.method, request.path, request.query)
        if cost is None:  # not the identity service (sendMail, unknown paths)
            return Service.dispatch(self, request)
        tenant = self._tenant(request)
        decision = self.world.graph_budget.charge(
            tenant_id=tenant.tenant_id, app_id=request.caller or "", size=tenant.size, cost=cost, enforce=tenant.graph_throttling
        )
        if not decision.admitted:
            response = self.throttle_response(decision.retry_after)
        else:
            try:
                response = Service.dispatch(self, request)
            except HttpError as exc:
                response = self._error(exc)
        response.headers.update(decision.headers())
        return response

    def not_allowed(self, request: Request, allowed: list[str]) -> HttpError:
        return HttpError(405, "Request_BadRequest", f"The HTTP method '{request.method}' is not allowed on this resource; allowed: {', '.join(allowed)}.")

    def no_route(self, request: Request) -> HttpError:
        segment = request.path.rstrip("/").rsplit("/", 1)[-1] or request.path
        return HttpError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def _authenticate(self, request: Request) -> None:
        challenge = {
            "WWW-Authenticate": (f'Bearer realm="", authorization_uri="{self.issuer.issuer_base}/common/oauth2/authorize", client_id="{GRAPH_APP_ID}"')
        }
        token = bearer_token(request)
        if token is None:
            raise HttpError(401, "InvalidAuthenticationToken", "Access token is empty.", challenge)
        try:
            claims = self.issuer.validate(token, audiences=AUDIENCES, now=datetime.now(UTC))
        except TokenError as exc:
            raise HttpError(401, "InvalidAuthenticationToken", _TOKEN_MESSAGES.get(exc.reason, "Access token validation failure."), challenge) from None
        if self.world.tenant(str(claims.get("tid", ""))) is None:
            raise HttpError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid tenant.", challenge)
        request.claims = claims
        request.caller = claims.get("appid") or claims.get("azp")

    # ------------------------------------------------------------ permissions

    def _tenant(self, request: Request) -> Tenant:
        tenant = self.world.tenant(str(request.claims.get("tid", "")))
        assert tenant is not None  # checked by _authenticate
        return tenant

    @staticmethod
    def _roles(request: Request) -> set[str]:
        roles = request.claims.get("roles") or []
        return {str(role) for role in roles} if isinstance(roles, list) else set()

    def _may_read_directory(self, request: Request) -> bool:
        """Reads of any application or service principal, lists included. Application.ReadWrite.OwnedBy
        reads everything: "The Application.ReadWrite.OwnedBy permission allows an app to call
        GET /applications and GET /servicePrincipals to list all applications and service
        principals in the tenant" (serviceprincipal-get, application-list; docs issues #17416, #15850)."""
        roles = self._roles(request)
        return bool(roles & READ_ANY) or OWNED_BY in roles

    @staticmethod
    def _is_own(request: Request, app_id: str) -> bool:
        """ "A service principal can retrieve its own application and service principal details
        without being granted any application permissions" (serviceprincipal-get)."""
        return request.caller is not None and request.caller.lower() == app_id.lower()

    def _may_write_app(self, request: Request, app: Application) -> bool:
        """Writes need Application.ReadWrite.All, or OwnedBy and the caller among the app's owners
        (as the primary has it: a write is not served from a lagging replica)."""
        roles = self._roles(request)
        if roles & WRITE_ANY:
            return True
        return OWNED_BY in roles and request.caller is not None and _owns(app.owners, request.caller)

    def _view(self, request: Request) -> ReplicaView:
        """The replicas this read is answered from (replication.py). A fault plan rule wins over the tenant's setting."""
        tenant = self._tenant(request)
        settings = self.faults.replication(self.name, request.method, request.path) or tenant.replication
        return tenant.replica_log.view(settings, self.world.now())

    # ------------------------------------------------------------ look-ups

    def _find_application(self, request: Request, object_id: str | None, app_id: str | None) -> Application:
        tenant = self._tenant(request)
        if object_id is not None:
            if not GUID.match(object_id):
                raise HttpError(400, "Request_BadRequest", f"Invalid object identifier '{object_id}'.")
            app = next((a for a in tenant.applications.values() if a.object_id.lower() == object_id.lower()), None)
            key = object_id
        else:
            key = app_id or ""
            app = tenant.app_by_app_id(key) if key else None
        if app is None:
            raise _not_found(key)
        return app

    def _find_service_principal(self, request: Request, object_id: str | None, app_id: str | None) -> ServicePrincipal:
        tenant = self._tenant(request)
        if object_id is not None:
            if not GUID.match(object_id):
                raise HttpError(400, "Request_BadRequest", f"Invalid object identifier '{object_id}'.")
            sp = next((s for s in tenant.service_principals.values() if s.object_id.lower() == object_id.lower()), None)
            key = object_id
        else:
            key = app_id or ""
            sp = tenant.sp_by_app_id(key) if key else None
        if sp is None:
            raise _not_found(key)
        return sp

    def _readable_application(self, request: Request, object_id: str | None, app_id: str | None) -> Application:
        return self._readable(request, lambda: self._find_application(request, object_id, app_id))

    def _readable_service_principal(self, request: Request, object_id: str | None, app_id: str | None) -> ServicePrincipal:
        return self._readable(request, lambda: self._find_service_principal(request, object_id, app_id))

    def _readable(self, request: Request, find: Callable[[], _Directory]) -> _Directory:
        """The addressed object if the caller may read it. Without a directory role only the
        caller's own application and service principal can be read; the rest is 403, whether
        it exists or not."""
        if self._may_read_directory(request):
            return find()
        try:
            found = find()
        except HttpError:
            raise _denied() from None
        if not self._is_own(request, found.app_id):
            raise _denied()
        return found

    def _writable_application(self, request: Request, object_id: str | None, app_id: str | None) -> Application:
        """403 before any look-up without a directory role; 404 for a missing app; 403 for one the caller may not write."""
        if not self._may_read_directory(request):
            raise _denied()
        app = self._find_application(request, object_id, app_id)
        if not self._may_write_app(request, app):
            raise _denied()
        return app

    # ------------------------------------------------------------ applications

    def list_applications(self, request: Request) -> Response:
        _check_query(request, {"$select", "$filter", "$top", "$skiptoken"})
        if not self._may_read_directory(request):
            raise _denied()
        tenant, view = self._tenant(request), self._view(request)
        predicate = _parse_filter(request, "Application", {"appId": lambda a: a.app_id, "id": lambda a: a.object_id, "displayName": lambda a: a.display_name})
        apps = [shown for shown in (view.of(a) for a in tenant.applications.values()) if predicate(shown)]
        items = [_application_json(tenant, a) for a in apps]
        selected = _selection(request, "application", _APPLICATION_KEYS)
        return self._page(request, items, selected, "applications")

    def get_application(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        _check_query(request, {"$select"})
        app = self._readable_application(request, object_id, app_id)
        shown = self._view(request).of(app)
        body = _application_json(self._tenant(request), shown)
        selected = _selection(request, "application", _APPLICATION_KEYS)
        if selected is not None and "keyCredentials" in selected:
            # The certificates' raw data comes only with $select on a single object (keyCredential doc).
            body["keyCredentials"] = [_key_json(c, with_key=True) for c in shown.key_credentials]
        return self._ok(self._entity(body, selected, "applications"))

    def update_application(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        app = self._writable_application(request, object_id, app_id)
        body = _json_object(request)
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key.startswith("@odata."):
                continue
            if key not in APPLICATION_PROPERTIES:
                raise HttpError(
                    400,
                    "BadRequest",
                    f"The property '{key}' does not exist on type 'microsoft.graph.application'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                )
            if key in READ_ONLY_PROPERTIES:
                raise HttpError(400, "Request_BadRequest", f"Property '{key}' is read-only and cannot be set.")
            if key in ("passwordCredentials", "keyCredentials"):
                raise HttpError(400, "Request_BadRequest", f"Updating '{key}' with PATCH is not supported; use addPassword and removePassword.")
            if key == "displayName":
                if not isinstance(value, str) or not value.strip():
                    raise _bad_value("displayName")
                changes["display_name"] = value
            elif key == "notes":
                if value is not None and not isinstance(value, str):
                    raise _type_error("Edm.String")
                if isinstance(value, str) and len(value) > 1024:
                    raise _bad_value("notes")
                changes["notes"] = value
            elif key == "signInAudience":
                if value not in SIGN_IN_AUDIENCES:
                    raise _bad_value("signInAudience")
                changes["sign_in_audience"] = value
            elif key == "identifierUris":
                if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                    raise _type_error("Collection(Edm.String)")
                changes["identifier_uris"] = list(value)
            elif key == "web":
                changes["web"] = _merge_web(app.web, value)
            else:
                raise HttpError(400, "Request_BadRequest", f"The sandbox does not model updates to '{key}'.")
        self.world.note_write(app)
        for attribute, value in changes.items():
            setattr(app, attribute, value)
        return Response.empty(204)

    def add_password(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        app = self._writable_application(request, object_id, app_id)
        body = _parameters(_json_object(request, optional=True), ("passwordCredential",), "addPassword")
        spec = body.get("passwordCredential") or {}
        if not isinstance(spec, dict):
            raise HttpError(400, "BadRequest", "Cannot convert the value of 'passwordCredential' to the expected type 'microsoft.graph.passwordCredential'.")
        for key in spec:
            if key.startswith("@odata.") or key in ("displayName", "startDateTime", "endDateTime", "keyId", "hint", "secretText", "customKeyIdentifier"):
                continue
            raise HttpError(
                400,
                "BadRequest",
                f"The property '{key}' does not exist on type 'microsoft.graph.passwordCredential'. Make sure to only use property names that are defined by the type or mark the type as open type.",
            )
        display_name = spec.get("displayName")
        if display_name is not None and not isinstance(display_name, str):
            raise _type_error("Edm.String")
        now = self.world.now()
        start = _datetime(spec.get("startDateTime")) or now
        end = _datetime(spec.get("endDateTime")) or default_password_end(start)
        if end <= start:
            raise HttpError(400, "Request_BadRequest", "The endDateTime of a password credential must be later than its startDateTime.")
        limit, policy_id = _password_policy(self._tenant(request), app)
        if limit is not None and end - start > limit:
            raise _lifetime_refused(policy_id)
        self.world.note_write(app)
        credential = self.world.add_password(app, display_name=display_name, start=start, end=end, created=now)
        payload = {"@odata.context": self._context("microsoft.graph.passwordCredential")}
        payload.update(_password_json(credential, secret=True))
        return self._ok(payload)

    def remove_password(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        app = self._writable_application(request, object_id, app_id)
        body = _parameters(_json_object(request), ("keyId",), "removePassword")
        key_id = body.get("keyId")
        if key_id is None:
            raise HttpError(400, "BadRequest", "The parameter 'keyId' is required for the operation 'removePassword'.")
        if not isinstance(key_id, str) or not GUID.match(key_id):
            raise HttpError(400, "BadRequest", f"Cannot convert the literal '{key_id}' to the expected type 'Edm.Guid'.")
        credential = app.credential(key_id)
        if credential is None:
            # Unverified guess at Graph's answer (see docs/sandbox/graph.md).
            raise HttpError(400, "Request_BadRequest", f"No password credential with keyId '{key_id}' was found on application '{app.app_id}'.")
        self.world.note_write(app)
        app.password_credentials.remove(credential)
        return Response.empty(204)

    def list_app_management_policies(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        """The appManagementPolicy assigned to the app (at most one), or an empty collection."""
        _check_query(request, {"$select", "$top", "$skiptoken"})
        # Reading an app's policies takes a policy role and a directory role (assumption, after
        # appManagementPolicy-list-appliesTo: "Application.Read.All and Policy.Read.All").
        if not self._roles(request) & POLICY_READ or not self._may_read_directory(request):
            raise _denied()
        app = self._find_application(request, object_id, app_id)
        policy = self._view(request).of(app).assigned_policy()
        items = [_app_policy_json(policy)] if policy is not None else []
        selected = _selection(request, "appManagementPolicy", _APP_POLICY_KEYS)
        return self._page(request, items, selected, "policies/appManagementPolicies")

    # ------------------------------------------------------------ service principals

    def list_service_principals(self, request: Request) -> Response:
        _check_query(request, {"$select", "$filter", "$top", "$skiptoken"})
        if not self._may_read_directory(request):
            raise _denied()
        tenant, view = self._tenant(request), self._view(request)
        predicate = _parse_filter(
            request, "ServicePrincipal", {"appId": lambda s: s.app_id, "id": lambda s: s.object_id, "displayName": lambda s: s.display_name}
        )
        sps = [shown for shown in (view.of(s) for s in tenant.service_principals.values()) if predicate(shown)]
        items = [self._service_principal_json(tenant, view, s) for s in sps]
        selected = _selection(request, "servicePrincipal", _SERVICE_PRINCIPAL_KEYS)
        return self._page(request, items, selected, "servicePrincipals")

    def get_service_principal(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        _check_query(request, {"$select"})
        sp = self._readable_service_principal(request, object_id, app_id)
        view = self._view(request)
        body = self._service_principal_json(self._tenant(request), view, view.of(sp))
        selected = _selection(request, "servicePrincipal", _SERVICE_PRINCIPAL_KEYS)
        return self._ok(self._entity(body, selected, "servicePrincipals"))

    def list_app_role_assigned_to(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        _check_query(request, {"$select", "$top", "$skiptoken"})
        sp = self._readable_service_principal(request, object_id, app_id)
        shown = self._view(request).of(sp)
        items = [_assignment_json(a) for a in sorted(shown.assigned_to, key=lambda a: a.created)]
        selected = _selection(request, "appRoleAssignment", _ASSIGNMENT_KEYS)
        return self._page(request, items, selected, f"servicePrincipals('{sp.object_id}')/appRoleAssignedTo", select_in_context=False)

    def _service_principal_json(self, tenant: Tenant, view: ReplicaView, sp: ServicePrincipal) -> dict[str, Any]:
        app = tenant.app_by_app_id(sp.app_id)
        return _service_principal_json(tenant, sp, view.of(app) if app is not None else None)

    # ------------------------------------------------------------ owners

    def list_application_owners(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        _check_query(request, {"$select", "$top", "$skiptoken"})
        if not self._may_read_directory(request):
            raise _denied()
        app = self._find_application(request, object_id, app_id)
        return self._owners(request, app)

    def list_service_principal_owners(self, request: Request, object_id: str | None = None, app_id: str | None = None) -> Response:
        _check_query(request, {"$select", "$top", "$skiptoken"})
        if not self._may_read_directory(request):
            raise _denied()
        sp = self._find_service_principal(request, object_id, app_id)
        return self._owners(request, sp)

    def _owners(self, request: Request, target: Application | ServicePrincipal) -> Response:
        """A directoryObject collection: service principals, then users, each with its @odata.type."""
        tenant, view = self._tenant(request), self._view(request)
        shown = view.of(target)
        principals = [view.of(sp) for sp in (tenant.sp_by_app_id(a) for a in shown.owners) if sp is not None]
        users = [u for u in (tenant.users.get(user_id) for user_id in shown.owner_users) if u is not None]
        readable_users = bool(self._roles(request) & USER_READ)
        items = [
            {"@odata.type": "#microsoft.graph.servicePrincipal", **self._service_principal_json(tenant, view, sp)}
            for sp in sorted(principals, key=lambda s: (s.display_name.lower(), s.object_id))
        ] + [_user_json(u, readable=readable_users) for u in sorted(users, key=lambda u: (u.display_name.lower(), u.id))]
        selected = _selection(request, "directoryObject", _DIRECTORY_OBJECT_KEYS)
        return self._page(request, items, selected, "directoryObjects")

    # ------------------------------------------------------------ policies

    def default_app_management_policy(self, request: Request) -> Response:
        _check_query(request, {"$select"})
        if not self._roles(request) & POLICY_READ:
            raise _denied()
        tenant = self._tenant(request)
        passwords: list[dict[str, Any]] = []
        if tenant.password_max_lifetime is not None:
            passwords.append(
                {
                    "restrictionType": "passwordLifetime",
                    "maxLifetime": format_duration(tenant.password_max_lifetime),
                    "restrictForAppsCreatedAfterDateTime": iso(tenant.policy_restrict_after),
                }
            )
        body = {
            "id": DEFAULT_POLICY_ID,
            "displayName": "Default app management tenant policy",
            "description": "Default tenant policy that enforces app management restrictions on applications and service principals. To apply policy to targeted resources, create a new policy under appManagementPolicies collection.",
            "isEnabled": tenant.policy_enabled,
            "applicationRestrictions": {"passwordCredentials": passwords, "keyCredentials": []},
            "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []},
        }
        selected = _selection(request, "tenantAppManagementPolicy", tuple(body))
        return self._ok(self._entity(body, selected, "policies/defaultAppManagementPolicy"))

    # ------------------------------------------------------------ mail

    def send_mail(self, request: Request, user: str) -> Response:
        if MAIL_SEND not in self._roles(request):
            raise HttpError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        tenant = self._tenant(request)
        target = tenant.user(user)
        if target is None:
            raise HttpError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        sender = target.mail or target.user_principal_name
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type == "text/plain":
            return self._send_mime(request, sender)
        body = _parameters(_json_object(request, code="RequestBodyRead"), ("message", "saveToSentItems"), "sendMail", code="RequestBodyRead")
        message = body.get("message")
        if message is None:
            raise HttpError(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
        if not isinstance(message, dict):
            raise HttpError(400, "RequestBodyRead", "Cannot convert the value of 'message' to the expected type 'microsoft.graph.message'.")
        save = body.get("saveToSentItems", True)
        if isinstance(save, str) and save.lower() in ("true", "false"):
            save = save.lower() == "true"
        if not isinstance(save, bool):
            raise HttpError(400, "RequestBodyRead", f"Cannot convert the literal '{save}' to the expected type 'Edm.Boolean'.")
        subject = message.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise HttpError(400, "RequestBodyRead", "Cannot convert a primitive value to the expected type 'Edm.String'.")
        content = message.get("body")
        if content is not None:
            if not isinstance(content, dict):
                raise HttpError(400, "RequestBodyRead", "Cannot convert the value of 'body' to the expected type 'microsoft.graph.itemBody'.")
            kind = content.get("contentType", "text")
            if not isinstance(kind, str) or kind.lower() not in ("text", "html"):
                raise HttpError(400, "RequestBodyRead", f"Cannot convert the literal '{kind}' to the expected type 'microsoft.graph.bodyType'.")
            if content.get("content") is not None and not isinstance(content.get("content"), str):
                raise HttpError(400, "RequestBodyRead", "Cannot convert a primitive value to the expected type 'Edm.String'.")
        recipients: list[str] = []
        for field_name in ("toRecipients", "ccRecipients", "bccRecipients"):
            entries = message.get(field_name) or []
            if not isinstance(entries, list):
                raise HttpError(
                    400, "RequestBodyRead", f"Cannot convert the value of '{field_name}' to the expected type 'Collection(microsoft.graph.recipient)'."
                )
            for entry in entries:
                address = entry.get("emailAddress", {}).get("address") if isinstance(entry, dict) and isinstance(entry.get("emailAddress"), dict) else None
                if not isinstance(address, str) or not EMAIL.match(address.strip()):
                    raise HttpError(
                        400,
                        "ErrorInvalidRecipients",
                        f"At least one recipient isn't valid., Recipient '{address or ''}' isn't resolved. All recipients must be resolved before a message can be submitted.",
                    )
                recipients.append(address.strip())
        if not recipients:
            raise HttpError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be sent because it contains no recipients.")
        self.world.mail.append(
            SentMail(via="graph", sender=sender, recipients=recipients, subject=subject or "", body=copy.deepcopy(message), at=self.world.now())
        )
        return Response.empty(202)

    def _send_mime(self, request: Request, sender: str) -> Response:
        try:
            raw = base64.b64decode(b"".join(request.body.split()), validate=True).decode("utf-8")
            if not raw.strip():
                raise ValueError("empty")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise HttpError(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.") from None
        parsed = Parser(policy=email_policy.default).parsestr(raw, headersonly=True)  # unfolds and decodes headers, as a mailbox shows them
        recipients = [addr for _, addr in getaddresses(parsed.get_all("To", []) + parsed.get_all("Cc", []) + parsed.get_all("Bcc", [])) if addr]
        if not recipients:
            raise HttpError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be sent because it contains no recipients.")
        self.world.mail.append(
            SentMail(via="graph", sender=sender, recipients=recipients, subject=str(parsed.get("Subject", "") or "").strip(), body=raw, at=self.world.now())
        )
        return Response.empty(202)

    # ------------------------------------------------------------ $batch

    def _batch(self, request: Request) -> Response | _Drop:
        payload = _json_object(request)
        entries = payload.get("requests")
        if not isinstance(entries, list) or not entries:
            raise HttpError(400, "BadRequest", "Invalid batch payload format.")
        if len(entries) > BATCH_LIMIT:
            raise HttpError(400, "BadRequest", f"Invalid batch payload format: the number of requests ({len(entries)}) exceeds the limit of {BATCH_LIMIT}.")
        items: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                raise HttpError(400, "BadRequest", "Invalid batch payload format.")
            rid, method, url = entry.get("id"), entry.get("method"), entry.get("url")
            if not isinstance(rid, str) or not rid:
                raise HttpError(400, "BadRequest", "Invalid batch payload format: every request needs a string 'id'.")
            if rid in items:
                raise HttpError(400, "BadRequest", f"Batch request contains a duplicate id '{rid}'.")
            if not isinstance(method, str) or method.upper() not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
                raise HttpError(400, "BadRequest", f"Invalid batch payload format: request '{rid}' has an invalid method.")
            if not isinstance(url, str) or not url:
                raise HttpError(400, "BadRequest", f"Invalid batch payload format: request '{rid}' has no url.")
            headers = entry.get("headers") or {}
            if not isinstance(headers, dict):
                raise HttpError(400, "BadRequest", f"Invalid batch payload format: request '{rid}' has invalid headers.")
            depends = entry.get("dependsOn") or []
            if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
                raise HttpError(400, "BadRequest", f"Invalid batch payload format: request '{rid}' has an invalid dependsOn.")
            if "body" in entry and entry["body"] is not None and not any(k.lower() == "content-type" for k in headers):
                raise HttpError(400, "BadRequest", f"Write request id : {rid} does not contain Content-Type header or body.")
            items[rid] = entry
        for rid, entry in items.items():
            for dep in entry.get("dependsOn") or []:
                if dep not in items or dep == rid:
                    raise HttpError(400, "BadRequest", f"Request '{rid}' depends on '{dep}', which is not a request of this batch.")
        order = _topological(items)
        outcomes: dict[str, Response] = {}
        answers: list[dict[str, Any]] = []
        for rid in order:
            entry = items[rid]
            failed = next((d for d in entry.get("dependsOn") or [] if not 200 <= outcomes[d].status < 300), None)
            if failed is not None:
                outcome: Response | _Drop = self.error_response(424, "FailedDependency", f"The request depends on request '{failed}', which failed.")
            else:
                outcome = self._inner(request, entry)
            if isinstance(outcome, _Drop):
                return outcome
            outcomes[rid] = outcome
            answers.append(_batch_answer(rid, outcome))
        return Response.json(200, {"responses": answers}, {"Content-Type": ODATA_JSON, "OData-Version": "4.0"})

    def _inner(self, outer: Request, entry: dict[str, Any]) -> Response | _Drop:
        method = str(entry["method"]).upper()
        url = str(entry["url"])
        headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
        saved = (self._ctx.request_id, self._ctx.client_request_id)
        self._ctx.request_id = str(uuid.uuid4())
        self._ctx.client_request_id = headers.get("client-request-id") or saved[1] or self._ctx.request_id
        try:
            if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
                return self.error_response(400, "BadRequest", "Batch request URLs must be relative to the service root, e.g. '/applications'.")
            if not url.startswith("/"):
                url = "/" + url
            split = urlsplit(url)
            body = entry.get("body")
            if body is None:
                raw = b""
            elif isinstance(body, str) and "json" not in headers.get("content-type", "json"):
                raw = body.encode("utf-8")
            else:
                raw = json.dumps(body).encode("utf-8")
            inner = Request(
                method=method,
                path="/v1.0" + unquote(split.path),
                raw_path="/v1.0" + url,
                query=parse_qs(split.query, keep_blank_values=True),
                headers=headers,
                body=raw,
                host=outer.host,
                service=self.name,
                caller=outer.caller,
                claims=outer.claims,
            )
            response = self._inner_with_faults(inner)
            status = 0 if isinstance(response, _Drop) else response.status
            self.world.record(RequestRecord(self.name, inner.method, inner.path, status, self.world.now(), inner.caller, inner=True))
            return response
        finally:
            self._ctx.request_id, self._ctx.client_request_id = saved

    def _inner_with_faults(self, inner: Request) -> Response | _Drop:
        rules = self.faults.select(self.name, inner.method, inner.path)
        for rule in rules:
            if rule.fault == "latency":
                self.stopping.wait(rule.latency_ms / 1000.0)
        for rule in rules:
            if rule.fault in ("status", "throttle"):
                return self.fault_response(rule)
            if rule.when == "before" and rule.fault in ("drop", "timeout", "crash"):
                return self._fail_connection(rule, inner)
        if BATCH_PATH.match(inner.path):
            response = self.error_response(400, "BadRequest", "Nested batch requests are not supported.")
        else:
            try:
                with self.world.lock:
                    response = self._route_charged(inner)
            except HttpError as exc:
                response = self._error(exc)
        for rule in rules:
            if rule.when == "after" and rule.fault in ("drop", "timeout", "crash"):
                return self._fail_connection(rule, inner)
        return response

    # ------------------------------------------------------------ shapes

    def _entity(self, body: dict[str, Any], selected: list[str] | None, entity_set: str) -> dict[str, Any]:
        if selected is None:
            return {"@odata.context": self._context(f"{entity_set}/$entity"), **body}
        return {"@odata.context": self._context(f"{entity_set}({','.join(selected)})/$entity"), **{k: body[k] for k in selected}}

    def _page(self, request: Request, items: list[dict[str, Any]], selected: list[str] | None, entity_set: str, select_in_context: bool = True) -> Response:
        top_text = _query(request, "$top")
        if top_text is None:
            top = DEFAULT_PAGE_SIZE
        else:
            try:
                top = int(top_text)
            except ValueError:
                raise HttpError(400, "BadRequest", f"Invalid value '{top_text}' for the query option '$top'.") from None
            if not 1 <= top <= MAX_PAGE_SIZE:
                raise HttpError(400, "Request_BadRequest", f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.")
        token = _query(request, "$skiptoken")
        offset = _decode_skiptoken(token) if token else 0
        page = items[offset : offset + top]
        if selected is not None:
            page = [_select_item(item, selected) for item in page]
        fragment = f"{entity_set}({','.join(selected)})" if selected is not None and select_in_context else entity_set
        payload: dict[str, Any] = {"@odata.context": self._context(fragment)}
        if offset + top < len(items):
            pairs = [(k, v) for k, values in request.query.items() for v in values if k.lstrip("$").lower() not in ("skiptoken", "top")]
            pairs += [("$top", str(top)), ("$skiptoken", _encode_skiptoken(offset + top))]
            payload["@odata.nextLink"] = f"{self.base_url}{quote(request.path, safe='/()=$,')}?{urlencode(pairs, quote_via=quote, safe='$,()')}"
        payload["value"] = page
        return self._ok(payload)


# ---------------------------------------------------------------- helpers


def _application_json(tenant: Tenant, app: Application) -> dict[str, Any]:
    return {
        "id": app.object_id,
        "deletedDateTime": None,
        "appId": app.app_id,
        "applicationTemplateId": None,
        "disabledByMicrosoftStatus": getattr(app, "disabled_by_microsoft_status", None),
        "createdDateTime": iso(app.created),
        "displayName": app.display_name,
        "description": None,
        "groupMembershipClaims": None,
        "identifierUris": list(app.identifier_uris),
        "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": None,
        "nativeAuthenticationApisEnabled": None,
        "notes": app.notes,
        "oauth2RequirePostResponse": False,
        "publisherDomain": _publisher_domain(tenant),
        "serviceManagementReference": None,
        "signInAudience": app.sign_in_audience,
        "tags": [],
        "tokenEncryptionKeyId": None,
        "uniqueName": None,
        "samlMetadataUrl": None,
        "defaultRedirectUri": None,
        "certification": None,
        "optionalClaims": None,
        "requestSignatureVerification": None,
        "servicePrincipalLockConfiguration": None,
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": None,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        },
        "appRoles": copy.deepcopy(app.app_roles),
        "info": _info_json(),
        "keyCredentials": [_key_json(c) for c in app.key_credentials],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [_password_json(c) for c in app.password_credentials],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [],
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        "web": _web_json(app.web),
        "spa": {"redirectUris": []},
    }


def _service_principal_json(tenant: Tenant, sp: ServicePrincipal, app: Application | None) -> dict[str, Any]:
    """``app`` is the SP's application as the same read sees it: several properties are copied from it."""
    web = app.web if app else {}
    names = [sp.app_id] + (list(app.identifier_uris) if app else [])
    return {
        "id": sp.object_id,
        "deletedDateTime": None,
        "accountEnabled": sp.account_enabled,
        "alternativeNames": [],
        "appDescription": None,
        "appDisplayName": app.display_name if app else sp.display_name,
        "appId": sp.app_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": tenant.tenant_id,
        "appRoleAssignmentRequired": sp.app_role_assignment_required,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": sp.display_name,
        "homepage": web.get("homePageUrl"),
        "loginUrl": None,
        "logoutUrl": web.get("logoutUrl"),
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": list(web.get("redirectUris") or []),
        "servicePrincipalNames": names,
        "servicePrincipalType": sp.service_principal_type,
        "signInAudience": app.sign_in_audience if app else "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": copy.deepcopy(app.app_roles) if app else [],
        "info": _info_json(),
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
    }


def _owns(owners: set[str], caller: str) -> bool:
    wanted = caller.lower()
    return any(owner.lower() == wanted for owner in owners)


def _password_policy(tenant: Tenant, app: Application) -> tuple[timedelta | None, str]:
    """The password lifetime cap that applies to ``app`` and the id of the policy that sets it.
    An app's own policy replaces the tenant default, in both directions."""
    assigned = app.assigned_policy()
    if assigned is not None:
        return assigned.password_max_lifetime, assigned.id
    if not tenant.policy_enabled or tenant.password_max_lifetime is None:
        return None, DEFAULT_POLICY_ID
    if tenant.policy_restrict_after is not None and app.created <= tenant.policy_restrict_after:
        return None, DEFAULT_POLICY_ID
    return tenant.password_max_lifetime, DEFAULT_POLICY_ID


def _app_policy_json(policy: AppPolicy) -> dict[str, Any]:
    """The shape of appmanagementpolicy-get's example: restrictions.passwordCredentials and keyCredentials."""
    passwords = []
    if policy.password_max_lifetime is not None:
        passwords.append(
            {
                "restrictionType": "passwordLifetime",
                "maxLifetime": format_duration(policy.password_max_lifetime),
                "restrictForAppsCreatedAfterDateTime": None,
            }
        )
    return {
        "id": policy.id,
        "displayName": policy.display_name,
        "description": "Custom policy that enforces app management restrictions on specific applications and service principals.",
        "isEnabled": True,
        "restrictions": {"passwordCredentials": passwords, "keyCredentials": []},
    }


def _user_json(user: User, *, readable: bool) -> dict[str, Any]:
    """A user in a directoryObject collection: Graph's default user properties, or, when the
    caller may not read users, only @odata.type and id with every other property null."""
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.user",
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": None,
        "jobTitle": None,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": None,
        "userPrincipalName": user.user_principal_name,
    }
    if not readable:
        body = {key: (value if key in ("@odata.type", "id") else None) for key, value in body.items()}
    return body


def _select_item(item: dict[str, Any], selected: list[str]) -> dict[str, Any]:
    """$select on one collection item. A directoryObject collection keeps each item's @odata.type
    (as Graph's answers do), and an item has only the selected properties its type has."""
    chosen = {k: item[k] for k in selected if k in item}
    return {"@odata.type": item["@odata.type"], **chosen} if "@odata.type" in item else chosen


def _publisher_domain(tenant: Tenant) -> str:
    slug = re.sub(r"[^a-z0-9]", "", tenant.display_name.lower()) or tenant.tenant_id.split("-")[0]
    return f"{slug}.onmicrosoft.com"


def _info_json() -> dict[str, Any]:
    return {"logoUrl": None, "marketingUrl": None, "privacyStatementUrl": None, "supportUrl": None, "termsOfServiceUrl": None}


def _web_json(web: dict[str, Any]) -> dict[str, Any]:
    grants = web.get("implicitGrantSettings") or {}
    uris = list(web.get("redirectUris") or [])
    return {
        "homePageUrl": web.get("homePageUrl"),
        "logoutUrl": web.get("logoutUrl"),
        "redirectUris": uris,
        "implicitGrantSettings": {
            "enableAccessTokenIssuance": bool(grants.get("enableAccessTokenIssuance", False)),
            "enableIdTokenIssuance": bool(grants.get("enableIdTokenIssuance", False)),
        },
        "redirectUriSettings": [{"uri": uri, "index": None} for uri in uris],
    }


def _password_json(credential: PasswordCredential, secret: bool = False) -> dict[str, Any]:
    return {
        "customKeyIdentifier": credential.custom_key_identifier,
        "displayName": credential.display_name,
        "endDateTime": iso(credential.end),
        "hint": credential.hint,
        "keyId": credential.key_id,
        "secretText": credential.secret_text if secret else None,
        "startDateTime": iso(credential.start),
    }


def _key_json(credential: KeyCredential, with_key: bool = False) -> dict[str, Any]:
    """A keyCredential as Graph answers it: ``key`` (the certificate's raw data, base64) only
    for a single object's ``$select=keyCredentials``, otherwise null."""
    return {
        "customKeyIdentifier": credential.custom_key_identifier,
        "displayName": credential.display_name,
        "endDateTime": iso(credential.end),
        "key": base64.b64encode(credential.key).decode() if with_key and credential.key is not None else None,
        "keyId": credential.key_id,
        "startDateTime": iso(credential.start),
        "type": credential.type,
        "usage": credential.usage,
    }


def _assignment_json(assignment: AppRoleAssignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "deletedDateTime": None,
        "appRoleId": assignment.app_role_id,
        "createdDateTime": iso(assignment.created),
        "principalDisplayName": assignment.principal_display_name,
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "resourceDisplayName": assignment.resource_display_name,
        "resourceId": assignment.resource_id,
    }


_APPLICATION_KEYS = tuple(_application_json(Tenant("t", "t"), Application("o", "a", "t", "d", datetime.now(UTC))))
_SERVICE_PRINCIPAL_KEYS = tuple(_service_principal_json(Tenant("t", "t"), ServicePrincipal("o", "a", "t", "d"), None))
_USER_KEYS = tuple(k for k in _user_json(User("i", "u", "d"), readable=True) if not k.startswith("@"))
_DIRECTORY_OBJECT_KEYS = tuple(dict.fromkeys(_SERVICE_PRINCIPAL_KEYS + _USER_KEYS))
_APP_POLICY_KEYS = tuple(_app_policy_json(AppPolicy("i", "d", None)))
_ASSIGNMENT_KEYS = tuple(_assignment_json(AppRoleAssignment("i", "p", "User", "n", "r", "n", "a", datetime.now(UTC))))


def _merge_web(current: dict[str, Any], value: Any) -> dict[str, Any]:
    """PATCH of the web complex property: named sub-properties replace, others stay."""
    if not isinstance(value, dict):
        raise HttpError(400, "BadRequest", "Cannot convert the value of 'web' to the expected type 'microsoft.graph.webApplication'.")
    web = copy.deepcopy(current)
    for key, item in value.items():
        if key.startswith("@odata."):
            continue
        if key == "logoutUrl":
            if item is not None:
                if not isinstance(item, str):
                    raise _type_error("Edm.String")
                if len(item) > LOGOUT_URL_MAX or not _is_https_url(item):
                    raise _bad_value("web.logoutUrl")
            web["logoutUrl"] = item
        elif key == "homePageUrl":
            if item is not None and not isinstance(item, str):
                raise _type_error("Edm.String")
            if isinstance(item, str) and (len(item) > LOGOUT_URL_MAX or not re.match(r"^https?://[^\s/]+", item, re.IGNORECASE)):
                raise _bad_value("web.homePageUrl")
            web["homePageUrl"] = item
        elif key == "redirectUris":
            if not isinstance(item, list) or not all(isinstance(u, str) for u in item):
                raise _type_error("Collection(Edm.String)")
            for uri in item:
                if len(uri) > REDIRECT_URI_MAX or "#" in uri or not (_is_https_url(uri) or _is_localhost_http(uri)):
                    raise _bad_value("web.redirectUris")
            web["redirectUris"] = list(item)
        elif key == "implicitGrantSettings":
            if not isinstance(item, dict):
                raise HttpError(
                    400, "BadRequest", "Cannot convert the value of 'implicitGrantSettings' to the expected type 'microsoft.graph.implicitGrantSettings'."
                )
            grants = dict(web.get("implicitGrantSettings") or {})
            for name, flag in item.items():
                if name.startswith("@odata."):
                    continue
                if name not in ("enableIdTokenIssuance", "enableAccessTokenIssuance"):
                    raise HttpError(
                        400,
                        "BadRequest",
                        f"The property '{name}' does not exist on type 'microsoft.graph.implicitGrantSettings'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                    )
                if not isinstance(flag, bool):
                    raise _type_error("Edm.Boolean")
                grants[name] = flag
            web["implicitGrantSettings"] = grants
        elif key == "redirectUriSettings":
            raise HttpError(400, "Request_BadRequest", "The sandbox does not model updates to 'web.redirectUriSettings'.")
        else:
            raise HttpError(
                400,
                "BadRequest",
                f"The property '{key}' does not exist on type 'microsoft.graph.webApplication'. Make sure to only use property names that are defined by the type or mark the type as open type.",
            )
    return web


def _is_https_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() == "https" and bool(parts.hostname) and not any(c.isspace() for c in text)


def _is_localhost_http(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() == "http" and (parts.hostname or "") in ("localhost", "127.0.0.1")


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise HttpError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.")
    try:
        return parse_iso(value)
    except ValueError:
        raise HttpError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.") from None


def _json_object(request: Request, optional: bool = False, code: str = "BadRequest") -> dict[str, Any]:
    if not request.body.strip():
        if optional:
            return {}
        raise HttpError(400, code, "Empty Payload. JSON content expected.")
    try:
        value = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(
            400, code, "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
        ) from None
    if not isinstance(value, dict):
        raise HttpError(400, code, "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
    return value


def _parameters(body: dict[str, Any], names: tuple[str, ...], operation: str, code: str = "BadRequest") -> dict[str, Any]:
    """An action's parameters by their canonical names. Graph matches them case-insensitively:
    the msgraph SDK sends sendMail's as "Message" and "SaveToSentItems", the docs "message"."""
    canonical = {name.lower(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key.startswith("@odata."):
            continue
        name = canonical.get(key.lower())
        if name is None or name in out:
            raise HttpError(400, code, f"The parameter '{key}' in the request payload is not a valid parameter for the operation '{operation}'.")
        out[name] = value
    return out


_SYSTEM_OPTIONS = ("select", "filter", "top", "skiptoken", "skip", "expand", "orderby", "count", "search", "format", "apply")


def _query(request: Request, name: str) -> str | None:
    """A system query option, with or without its '$' (Graph v1.0 accepts both)."""
    value = request.q(name)
    return value if value is not None else request.q(name.lstrip("$"))


def _check_query(request: Request, allowed: set[str]) -> None:
    for key in request.query:
        bare = key.lstrip("$").lower()
        if bare in _SYSTEM_OPTIONS and f"${bare}" not in {a.lower() for a in allowed}:
            raise HttpError(400, "Request_UnsupportedQuery", f"The query option '${bare}' is not supported on this resource by the sandbox.")


def _selection(request: Request, type_name: str, keys: tuple[str, ...]) -> list[str] | None:
    text = _query(request, "$select")
    if text is None:
        return None
    by_lower = {k.lower(): k for k in keys}
    chosen: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        key = by_lower.get(name.lower())
        if key is None:
            raise HttpError(400, "Request_BadRequest", f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.")
        if key not in chosen:
            chosen.append(key)
    return chosen or None


_FILTER_EQ = re.compile(r"^\s*(?P<prop>[A-Za-z]+)\s+eq\s+'(?P<value>(?:[^']|'')*)'\s*$", re.IGNORECASE)
_FILTER_IN = re.compile(r"^\s*(?P<prop>[A-Za-z]+)\s+in\s+\(\s*(?P<values>'(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*)\s*\)\s*$", re.IGNORECASE)
_FILTER_SHAPE = re.compile(r"^\s*(?:[A-Za-z/]+\s+(?:eq|ne|in|gt|ge|lt|le|has)\s+\S|(?:not\s+)?[A-Za-z]+\s*\()", re.IGNORECASE)


def _parse_filter(request: Request, resource: str, fields: dict[str, Any]):
    text = _query(request, "$filter")
    if text is None:
        return lambda obj: True
    by_lower = {k.lower(): k for k in fields}
    match = _FILTER_EQ.match(text)
    if match:
        values = [match.group("value").replace("''", "'")]
    else:
        match = _FILTER_IN.match(text)
        if match:
            values = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", match.group("values"))]
    if match:
        prop = by_lower.get(match.group("prop").lower())
        if prop is None:
            raise HttpError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{match.group('prop')}' of resource '{resource}'.",
            )
        getter = fields[prop]
        wanted = {v.casefold() for v in values}
        return lambda obj: str(getter(obj)).casefold() in wanted
    if _FILTER_SHAPE.match(text):
        raise HttpError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported query: the sandbox filters only \"<property> eq '<value>'\" and \"<property> in ('<a>','<b>')\" on {', '.join(fields)} of resource '{resource}'.",
        )
    raise HttpError(400, "BadRequest", f"Invalid filter clause: syntax error in '{text}'.")


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise HttpError(400, "Request_BadRequest", "The specified page token value has expired or is invalid.") from None


def _topological(items: dict[str, dict[str, Any]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(rid: str) -> None:
        if state.get(rid) == 2:
            return
        if state.get(rid) == 1:
            raise HttpError(400, "BadRequest", f"The dependsOn of request '{rid}' forms a cycle.")
        state[rid] = 1
        for dep in items[rid].get("dependsOn") or []:
            visit(dep)
        state[rid] = 2
        order.append(rid)

    for rid in items:
        visit(rid)
    return order


def _batch_answer(rid: str, response: Response) -> dict[str, Any]:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "request-id", "client-request-id")}
    answer: dict[str, Any] = {"id": rid, "status": response.status, "headers": headers}
    if response.body:
        content_type = response.headers.get("Content-Type", "")
        if "json" in content_type:
            answer["body"] = json.loads(response.body)
        else:
            answer["body"] = response.body.decode("utf-8", "replace")
    return answer
