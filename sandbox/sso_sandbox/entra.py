"""Entra ID (login.microsoftonline.com) as the SDKs use it.

- GET  /{tenant}/v2.0/.well-known/openid-configuration
- GET  /{tenant}/discovery/v2.0/keys  (and /common/discovery/v2.0/keys)
- POST /{tenant}/oauth2/v2.0/token    client_credentials with client_secret; a person's
  authorization_code (PKCE) and refresh_token grants from a browser (user_signin.py)
- GET/POST /{tenant}/oauth2/v2.0/authorize, GET /{tenant}/oauth2/v2.0/logout  (user_signin.py)

A browser calls discovery, keys and token cross-origin: their answers allow any origin
(Access-Control-Allow-Origin: *), and OPTIONS preflights are answered.

The token endpoint checks the secret against the world (start and end dates,
the tenant's propagation delay, the service principal, Conditional Access for
workload identities; ``World.secret_works`` decides which refusal applies) and
answers with AADSTS error bodies as Entra does. Access tokens carry the
application permissions granted to the client's service principal for the
resource. Every template below and its source is in docs/sandbox/fidelity.md.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

from sso_sandbox.aadsts import DESCRIPTION_SEPARATOR, aadsts_body, describe
from sso_sandbox.faults import FaultPlan
from sso_sandbox.http import Request, Response, Service
from sso_sandbox.signin_records import record_client_credentials
from sso_sandbox.tokens import TokenIssuer
from sso_sandbox.user_signin import UserSignIn
from sso_sandbox.world import GRAPH_APP_ID, GRAPH_RESOURCE, VAULT_RESOURCE, Tenant, World

TOKEN_LIFETIME_SECONDS = 3599

# error code -> (OAuth error, HTTP status, description template), as the live service words them.
# invalid_client answers 401, as the live service does (RFC 6749 5.2); MSAL caches
# exact-400 answers for 60 s, so the status matters to callers that retry.
AADSTS = {
    90002: (
        "invalid_request",
        400,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
    ),
    900023: ("invalid_request", 400, "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."),
    700016: (
        "unauthorized_client",
        400,
        "Application with identifier '{client}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    ),
    7000215: (
        "invalid_client",
        401,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client}'.",
    ),
    7000222: (
        "invalid_client",
        401,
        "The provided client secret keys for app '{client}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
    ),
    7000112: ("unauthorized_client", 400, "Application '{client}'({name}) is disabled."),
    7000229: (
        "invalid_client",
        401,
        "The client application {client} is missing service principal in the tenant {tenant}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
    ),
    53003: ("invalid_grant", 400, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."),
    500011: (
        "invalid_resource",
        400,
        "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
    ),
    1002012: (
        "invalid_scope",
        400,
        "The provided value for scope {resource} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
    ),
    900144: ("invalid_request", 400, "The request body must contain the following parameter: '{parameter}'."),
    7000218: ("invalid_client", 401, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
    70003: ("unsupported_grant_type", 400, "The app requested an unsupported grant type '{grant}'."),
}

# World.secret_works reasons -> AADSTS number
_REASON_CODES = {
    "AADSTS90002": 90002,
    "AADSTS700016": 700016,
    "AADSTS7000215": 7000215,
    "AADSTS7000222": 7000222,
    "AADSTS500011": 500011,
    "AADSTS7000229": 7000229,
    "AADSTS7000112": 7000112,
    "AADSTS53003": 53003,
}


# A tenant path segment Entra can resolve: a GUID, a domain name, or an alias.
_TENANT_SHAPE = re.compile(r"^(?:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|common|organizations|consumers)$")

RESOURCE_ALIASES = {
    GRAPH_APP_ID: GRAPH_RESOURCE,
    "https://graph.microsoft.com/": GRAPH_RESOURCE,
    "https://vault.azure.net/": VAULT_RESOURCE,
    "https://vault.azure.net": VAULT_RESOURCE,
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093": VAULT_RESOURCE,
}


class EntraService(Service):
    name = "login"

    def __init__(self, world: World, faults: FaultPlan, issuer: TokenIssuer) -> None:
        super().__init__(world, faults)
        self.issuer = issuer
        # set to "\r\n" to answer as Entra did up to 2023
        self.description_separator = DESCRIPTION_SEPARATOR
        t = r"/(?P<tenant>[^/]+)"
        self.route("GET", t + r"/v2\.0/\.well-known/openid-configuration", self.discovery)
        self.route("GET", t + r"/\.well-known/openid-configuration", self.discovery)
        self.route("GET", t + r"/discovery/v2\.0/keys", self.keys)
        self.route("GET", t + r"/discovery/keys", self.keys)
        self.route("POST", t + r"/oauth2/v2\.0/token", self.token)
        self.users = UserSignIn(world, issuer)
        self.route("GET", t + r"/oauth2/v2\.0/authorize", self.users.authorize_page)
        self.route("POST", t + r"/oauth2/v2\.0/authorize", self.users.authorize_submit)
        self.route("GET", t + r"/oauth2/v2\.0/logout", self.users.logout)
        for path in (r"/v2\.0/\.well-known/openid-configuration", r"/discovery/v2\.0/keys", r"/oauth2/v2\.0/token"):
            self.route("OPTIONS", t + path, self.preflight)

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if request.header("origin"):
            response.headers.setdefault("Access-Control-Allow-Origin", "*")
        return response

    def preflight(self, request: Request, tenant: str) -> Response:
        return Response.empty(
            204,
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": request.header("access-control-request-headers") or "content-type",
                "Access-Control-Max-Age": "86400",
            },
        )

    # OAuth errors are not OData errors
    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response.json(status, {"error": code, "error_description": message}, headers)

    def discovery(self, request: Request, tenant: str) -> Response:
        known = self.world.tenant(tenant)
        if known is None and tenant not in ("common", "organizations"):
            if not _TENANT_SHAPE.match(tenant):
                return self._aadsts(900023, tenant=tenant)
            # the metadata endpoint names the error invalid_tenant; the token endpoint invalid_request
            return self._aadsts(90002, error="invalid_tenant", tenant=tenant)
        base = f"{self.base_url}/{tenant}"
        return Response.json(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": self.issuer.issuer(tenant if known is None else known.tenant_id),
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "roles", "oid", "azp", "appid"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            },
        )

    def keys(self, request: Request, tenant: str) -> Response:
        return Response.json(200, self.issuer.jwks())

    def token(self, request: Request, tenant: str) -> Response:
        form = request.form()
        known = self.world.tenant(tenant)
        if known is None:
            return self._aadsts(900023 if not _TENANT_SHAPE.match(tenant) else 90002, tenant=tenant)
        grant = form.get("grant_type", "")
        if not grant:
            return self._aadsts(900144, tenant=tenant, parameter="grant_type")
        if grant in ("authorization_code", "refresh_token"):
            return self.users.token(request, known, form)
        if grant != "client_credentials":
            return self._aadsts(70003, tenant=tenant, grant=grant)
        client_id = form.get("client_id", "")
        if not client_id:
            return self._aadsts(900144, tenant=tenant, parameter="client_id")
        scope = form.get("scope", "")
        if not scope:
            return self._aadsts(900144, tenant=tenant, parameter="scope")
        secret = form.get("client_secret")
        if secret is None:
            return self._aadsts(7000218, tenant=tenant, client=client_id)
        resource = self._resource(scope)
        if resource is None:
            return self._aadsts(1002012, tenant=tenant, resource=scope)
        reason = self.world.secret_works(known.tenant_id, client_id, secret, resource=resource)
        record_client_credentials(self.world, known.tenant_id, client_id, secret, reason)  # a servicePrincipal sign-in row
        if reason is not None:
            return self._refusal(_REASON_CODES[reason], tenant, known, client_id, resource)
        sp = known.sp_by_app_id(client_id)
        assert sp is not None  # secret_works answered AADSTS7000229 otherwise
        request.caller = client_id
        now = datetime.now(UTC)  # token lifetimes follow the real clock (the SDKs cache by it)
        roles = sorted(set(sp.granted_roles.get(resource, [])))
        access_token = self.issuer.mint(
            tenant_id=known.tenant_id,
            audience=resource,
            now=now,
            subject=sp.object_id,
            app_id=client_id,
            roles=roles,
            extra={"oid": sp.object_id, "idtyp": "app"},
        )
        return Response.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "ext_expires_in": TOKEN_LIFETIME_SECONDS,
                "access_token": access_token,
            },
        )

    # ---- helpers

    def _resource(self, scope: str) -> str | None:
        first = scope.split()[0]
        if not first.endswith("/.default"):
            return None
        resource = first[: -len("/.default")]
        return RESOURCE_ALIASES.get(resource, resource)

    def _refusal(self, number: int, tenant: str, known: Tenant, client_id: str, resource: str) -> Response:
        app = known.app_by_app_id(client_id)
        extra: dict[str, object] = {}
        if number == 53003:
            # Entra names the blocking policies in a claims challenge (capolids) and marks
            # the message as one the client cannot resolve interactively.
            sp = known.sp_by_app_id(client_id)
            policy = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:ca-workload-block:{known.tenant_id}:{sp.object_id if sp else client_id}"))
            extra = {
                "suberror": "message_only",
                "claims": json.dumps({"access_token": {"capolids": {"essential": True, "values": [policy]}}}, separators=(",", ":")),
            }
        return self._aadsts(
            number,
            extra=extra,
            tenant=tenant,
            client=client_id,
            resource=resource,
            directory=known.display_name or known.tenant_id,
            name=app.display_name if app else "",
        )

    def _aadsts(self, number: int, *, error: str | None = None, extra: dict[str, object] | None = None, **values: str) -> Response:
        default_error, status, template = AADSTS[number]
        body = aadsts_body(
            number,
            error or default_error,
            describe(number, template, values),
            separator=self.description_separator,
            error_uri=f"{self.base_url}/error?code={number}",
        )
        body.update(extra or {})
        return Response.json(status, body)
