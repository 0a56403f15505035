"""Entra ID (login.microsoftonline.com) as the SDKs use it.

- GET  /{tenant}/v2.0/.well-known/openid-configuration
- GET  /{tenant}/discovery/v2.0/keys  (and /common/discovery/v2.0/keys)
- POST /{tenant}/oauth2/v2.0/token    client_credentials with client_secret

The token endpoint checks the secret against the world (start and end dates,
the tenant's propagation delay, the service principal) and answers with
AADSTS error bodies as Entra does. Access tokens carry the application
permissions granted to the client's service principal for the resource.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from .faults import FaultPlan
from .http import Request, Response, Service
from .tokens import TokenIssuer
from .world import GRAPH_APP_ID, GRAPH_RESOURCE, VAULT_RESOURCE, World

TOKEN_LIFETIME_SECONDS = 3599

# error code -> (OAuth error, HTTP status, description template).
# invalid_client answers 401, as the live service does (RFC 6749 5.2); MSAL caches
# exact-400 answers for 60 s, so the status matters to callers that retry.
AADSTS = {
    90002: ("invalid_request", 400, "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
    700016: ("unauthorized_client", 400, "Application with identifier '{client}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
    7000215: ("invalid_client", 401, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client}'."),
    7000222: ("invalid_client", 401, "The provided client secret keys for app '{client}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
    7000112: ("unauthorized_client", 400, "Application '{client}' is disabled."),
    7000229: ("invalid_client", 401, "The client application {client} is missing service principal in the tenant {tenant}."),
    500011: ("invalid_resource", 400, "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
    1002012: ("invalid_scope", 400, "The provided value for scope {resource} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
    900144: ("invalid_request", 400, "The request body must contain the following parameter: '{parameter}'."),
    7000218: ("invalid_client", 401, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
    70003: ("unsupported_grant_type", 400, "The app requested an unsupported grant type '{grant}'."),
}

_REASON_CODES = {"AADSTS90002": 90002, "AADSTS700016": 700016, "AADSTS7000215": 7000215, "AADSTS7000222": 7000222, "AADSTS7000112": 7000112}

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
        t = r"/(?P<tenant>[^/]+)"
        self.route("GET", t + r"/v2\.0/\.well-known/openid-configuration", self.discovery)
        self.route("GET", t + r"/\.well-known/openid-configuration", self.discovery)
        self.route("GET", t + r"/discovery/v2\.0/keys", self.keys)
        self.route("GET", t + r"/discovery/keys", self.keys)
        self.route("POST", t + r"/oauth2/v2\.0/token", self.token)

    # OAuth errors are not OData errors
    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response.json(status, {"error": code, "error_description": message}, headers)

    def discovery(self, request: Request, tenant: str) -> Response:
        known = self.world.tenant(tenant)
        if known is None and tenant not in ("common", "organizations"):
            return self._aadsts(90002, tenant=tenant)
        base = f"{self.base_url}/{tenant}"
        return Response.json(200, {
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
        })

    def keys(self, request: Request, tenant: str) -> Response:
        return Response.json(200, self.issuer.jwks())

    def token(self, request: Request, tenant: str) -> Response:
        form = request.form()
        known = self.world.tenant(tenant)
        if known is None:
            return self._aadsts(90002, tenant=tenant)
        grant = form.get("grant_type", "")
        if not grant:
            return self._aadsts(900144, tenant=tenant, parameter="grant_type")
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
        reason = self.world.secret_works(known.tenant_id, client_id, secret)
        if reason is not None:
            return self._aadsts(_REASON_CODES[reason], tenant=tenant, client=client_id)
        sp = known.sp_by_app_id(client_id)
        if sp is None:
            return self._aadsts(7000229, tenant=tenant, client=client_id)
        if not self._resource_exists(known.tenant_id, resource):
            return self._aadsts(500011, tenant=tenant, resource=resource)
        request.caller = client_id
        now = datetime.now(timezone.utc)  # token lifetimes follow the real clock (the SDKs cache by it)
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
        return Response.json(200, {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "ext_expires_in": TOKEN_LIFETIME_SECONDS,
            "access_token": access_token,
        })

    # ---- helpers

    def _resource(self, scope: str) -> str | None:
        first = scope.split()[0]
        if not first.endswith("/.default"):
            return None
        resource = first[: -len("/.default")]
        return RESOURCE_ALIASES.get(resource, resource)

    def _resource_exists(self, tenant_id: str, resource: str) -> bool:
        if resource in (GRAPH_RESOURCE, VAULT_RESOURCE):
            return True
        tenant = self.world.tenant(tenant_id)
        assert tenant is not None
        return any(resource in app.identifier_uris or resource == app.app_id for app in tenant.applications.values())

    def _aadsts(self, number: int, **values: str) -> Response:
        error, status, template = AADSTS[number]
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        description = f"AADSTS{number}: {template.format_map(_Blank(values))} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
        return Response.json(status, {
            "error": error,
            "error_description": description,
            "error_codes": [number],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.base_url}/error?code={number}",
        })


class _Blank(dict):  # format_map helper: a missing value prints as empty
    def __missing__(self, key: str) -> str:
        return ""

