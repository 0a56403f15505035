"""A person signing in to a single-page app: Entra's authorization code flow with PKCE,
as MSAL.js (msal-browser) drives it from the monitor's status page.

- GET  /{tenant}/oauth2/v2.0/authorize   a sign-in form for the tenant's test users
- POST /{tenant}/oauth2/v2.0/authorize   the form: check the password and the user's
  assignment, then redirect to the app with a code (query or fragment, as asked)
- POST /{tenant}/oauth2/v2.0/token       grant_type authorization_code (with the PKCE
  verifier, from a browser: an Origin header) and refresh_token
- GET  /{tenant}/oauth2/v2.0/logout      back to post_logout_redirect_uri

What Entra does and the sandbox copies (docs/sandbox/fidelity.md, "A person's sign-in"):
the redirect URI must be one of the app's redirect URIs, exactly, or Entra shows
AADSTS50011 on its own page and never redirects; a code for a ``spa`` redirect URI is
redeemed only cross-origin (AADSTS9002327), one for a ``web`` URI only not
(AADSTS9002326: the page registered under the wrong platform); a user who is not
assigned to an app whose service principal requires assignment sees AADSTS50105 on
Entra's page; a code is redeemed once (AADSTS54005), within 10 minutes (AADSTS70008),
with the verifier whose S256 hash was the challenge (AADSTS501481; none at all:
AADSTS9002325). An app asking for a token for itself names itself by its client id
("{client id}/scope"), not its api:// URI (AADSTS90009). Access tokens for an API whose
registration asks for v2 tokens carry its client id as ``aud``, the scope as ``scp``
and the user's app roles as ``roles``. Simplified: no session cookie (``prompt=none``
always answers ``login_required``, so Entra's silent ``interaction_required`` for an
unassigned user is never reached), no MFA, no consent prompt (the scope must exist).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from sso_sandbox.aadsts import aadsts_body, describe
from sso_sandbox.http import Request, Response
from sso_sandbox.tokens import TokenIssuer
from sso_sandbox.world import Application, Tenant, User, World

CODE_LIFETIME = timedelta(minutes=10)
REFRESH_LIFETIME = timedelta(hours=24)  # Entra: refresh tokens issued to SPAs live 24 hours
ACCESS_LIFETIME = timedelta(minutes=75)
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})

# AADSTS number -> (OAuth error, description), as Entra words them (fidelity.md, "User sign-in").
USER_AADSTS = {
    50011: (
        "invalid_request",
        "The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application '{client}'. "
        "Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. "
        "Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    ),
    50105: (
        "access_denied",
        "Your administrator has configured the application {name} ('{client}') to block users unless they are specifically granted ('assigned') "
        "access to the application. The signed in user '{user}' is blocked because they are not a direct member of a group with access, "
        "nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application.",
    ),
    50126: ("invalid_grant", "Error validating credentials due to invalid username or password."),
    50034: (
        "invalid_grant",
        "The user account {user} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory.",
    ),
    50058: ("login_required", "A silent sign-in request was sent but no user is signed in."),
    700016: (
        "unauthorized_client",
        "Application with identifier '{client}' was not found in the directory '{tenant}'. This can happen if the application has not been installed "
        "by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    ),
    70011: ("invalid_scope", "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist."),
    90009: (
        "invalid_request",
        "Application '{client}'({resource}) is requesting a token for itself. This scenario is supported only if resource is specified using the GUID based App Identifier.",
    ),
    54005: ("invalid_grant", "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."),
    70008: (
        "invalid_grant",
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    ),
    9002313: ("invalid_grant", "Invalid request. Request is malformed or invalid."),
    9002325: ("invalid_request", "Proof Key for Code Exchange is required for cross-origin authorization code redemption."),
    9002327: ("invalid_request", "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests."),
    9002326: ("invalid_request", "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type."),
    501481: ("invalid_grant", "The Code_Verifier does not match the code_challenge supplied in the authorization request."),
}


@dataclass
class _Grant:
    """What a code or refresh token stands for."""

    tenant_id: str
    client_id: str
    user_id: str
    scopes: list[str]
    redirect_uri: str
    expires: datetime
    nonce: str | None = None
    challenge: str | None = None
    redeemed: bool = False


@dataclass
class UserSignIn:
    """The authorization code flow's state: codes and refresh tokens, in memory."""

    world: World
    issuer: TokenIssuer
    codes: dict[str, _Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, _Grant] = field(default_factory=dict)

    # ---- GET authorize: the form

    def authorize_page(self, request: Request, tenant: str) -> Response:
        params = {key: values[0] for key, values in request.query.items() if values}
        known, app, failure = self._check_request(tenant, params)
        if failure is not None:
            return failure
        assert known is not None and app is not None
        if params.get("prompt") == "none":
            return self._redirect_error(params, 50058)
        return self._form(params, app, hint=params.get("login_hint", ""))

    # ---- POST authorize: the person's answer

    def authorize_submit(self, request: Request, tenant: str) -> Response:
        form = request.form()
        try:
            params = json.loads(form.get("ctx", "{}"))
        except ValueError:
            params = {}
        if not isinstance(params, dict):
            params = {}
        known, app, failure = self._check_request(tenant, params)
        if failure is not None:
            return failure
        assert known is not None and app is not None
        username, password = form.get("username", "").strip(), form.get("password", "")
        user = known.user(username) if username else None
        if user is None:
            return self._form(params, app, hint=username, error=self._describe(50034, user=username, tenant=known.display_name or known.tenant_id))
        if not user.password or not secrets.compare_digest(user.password.encode(), password.encode()):
            self.world.user_sign_ins.append((user.user_principal_name, app.app_id, False))
            return self._form(params, app, hint=username, error=self._describe(50126))
        sp = known.sp_by_app_id(app.app_id)
        if sp is not None and sp.app_role_assignment_required and not self._assigned(known, user, app):
            self.world.user_sign_ins.append((user.user_principal_name, app.app_id, False))
            return self._error_page(50105, name=app.display_name, client=app.app_id, user=user.user_principal_name)
        self.world.user_sign_ins.append((user.user_principal_name, app.app_id, True))
        code = secrets.token_urlsafe(48)
        self.codes[code] = _Grant(
            tenant_id=known.tenant_id,
            client_id=app.app_id,
            user_id=user.id,
            scopes=params.get("scope", "").split(),
            redirect_uri=params["redirect_uri"],
            expires=datetime.now(UTC) + CODE_LIFETIME,
            nonce=params.get("nonce"),
            challenge=params.get("code_challenge"),
        )
        answer = {"code": code, "client_info": _client_info(user, known), "session_state": str(uuid.uuid4())}
        if params.get("state"):
            answer["state"] = params["state"]
        return self._redirect(params, answer)

    # ---- POST token

    def token(self, request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            grant = self.codes.get(form.get("code", ""))
            if grant is None or grant.tenant_id != tenant.tenant_id:
                return self._token_error(9002313)
            if grant.redeemed:
                return self._token_error(54005)
            if datetime.now(UTC) > grant.expires:
                return self._token_error(70008)
            if form.get("client_id", "").lower() != grant.client_id.lower() or form.get("redirect_uri", "") != grant.redirect_uri:
                return self._token_error(9002313)
            app = tenant.app_by_app_id(grant.client_id)
            spa = app is not None and grant.redirect_uri in app.spa_redirect_uris
            if request.header("origin") and not spa:
                return self._token_error(9002326)  # the redirect URI is registered as Web, not as a single-page app
            if spa and not request.header("origin"):
                return self._token_error(9002327)
            if not grant.challenge:
                return self._token_error(9002325)
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest()).rstrip(b"=").decode()
            if not verifier or not secrets.compare_digest(digest, grant.challenge):
                return self._token_error(501481)
            grant.redeemed = True
            return self._tokens(tenant, grant, nonce=grant.nonce)
        # refresh_token
        grant = self.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.tenant_id != tenant.tenant_id or form.get("client_id", "").lower() != grant.client_id.lower():
            return self._token_error(9002313)
        if datetime.now(UTC) > grant.expires:
            return self._token_error(70008)
        requested = form.get("scope", "").split() or grant.scopes
        return self._tokens(tenant, _Grant(**{**grant.__dict__, "scopes": requested}), nonce=None)

    def logout(self, request: Request, tenant: str) -> Response:
        target = request.q("post_logout_redirect_uri") or ""
        known = self.world.tenant(tenant)
        apps = known.applications.values() if known else []
        if target and any(target in a.spa_redirect_uris for a in apps):
            return Response.empty(302, {"Location": target, "Cache-Control": "no-store"})
        return _page(200, "Signed out", "<p>You have signed out of your account.</p>")

    # ---- helpers

    def _check_request(self, tenant: str, params: dict[str, str]) -> tuple[Tenant | None, Application | None, Response | None]:
        known = self.world.tenant(tenant)
        if known is None:
            return None, None, self._error_page(90002, tenant=tenant)
        client = params.get("client_id", "")
        app = known.app_by_app_id(client) if client else None
        if app is None:
            return known, None, self._error_page(700016, client=client, tenant=known.display_name or known.tenant_id)
        if params.get("redirect_uri", "") not in app.spa_redirect_uris + list(app.web.get("redirectUris") or []):
            return known, app, self._error_page(50011, redirect=params.get("redirect_uri", ""), client=app.app_id)
        if params.get("response_type") != "code":
            return known, app, self._redirect_error(params, 9002313)
        resources = [s for s in params.get("scope", "").split() if s not in OIDC_SCOPES]
        for scope in resources:
            target = self._scope_target(known, scope)
            if target is None:
                return known, app, self._redirect_error(params, 70011, scope=scope)
            resource = scope.rpartition("/")[0]
            if target.app_id == app.app_id and resource.lower() != app.app_id.lower():
                return known, app, self._redirect_error(params, 90009, client=app.app_id, resource=resource)
        return known, app, None

    def _scope_target(self, tenant: Tenant, scope: str) -> Application | None:
        """The API a ``<app id URI or client id>/<scope>`` names, if it exposes that scope."""
        resource, _, name = scope.rpartition("/")
        for app in tenant.applications.values():
            if resource in app.identifier_uris or resource.lower() in (app.app_id.lower(), f"api://{app.app_id.lower()}"):
                if name == ".default" or name in app.delegated_scopes:
                    return app
        return None

    def _assigned(self, tenant: Tenant, user: User, app: Application) -> bool:
        sp = tenant.sp_by_app_id(app.app_id)
        return sp is not None and any(a.principal_id == user.id for a in sp.assigned_to)

    def _roles(self, tenant: Tenant, user: User, api: Application) -> list[str]:
        sp = tenant.sp_by_app_id(api.app_id)
        if sp is None:
            return []
        ids = {a.app_role_id for a in sp.assigned_to if a.principal_id == user.id}
        return sorted(r["value"] for r in api.app_roles if r.get("id") in ids and r.get("isEnabled", True))

    def _tokens(self, tenant: Tenant, grant: _Grant, *, nonce: str | None) -> Response:
        user = tenant.users[grant.user_id]
        now = datetime.now(UTC)
        resources = [s for s in grant.scopes if s not in OIDC_SCOPES]
        body: dict[str, object] = {
            "token_type": "Bearer",
            "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "ext_expires_in": int(ACCESS_LIFETIME.total_seconds()),
        }
        identity = {"oid": user.id, "preferred_username": user.user_principal_name, "name": user.display_name}
        if resources:
            api = self._scope_target(tenant, resources[0])
            if api is None:
                return self._token_error(70011, scope=resources[0])
            named = [s.rpartition("/")[2] for s in resources if s.rpartition("/")[2] != ".default"]
            body["access_token"] = self.issuer.mint(
                tenant_id=tenant.tenant_id,
                audience=api.app_id,  # v2 tokens: the API's client id
                now=now,
                subject=_pairwise(user.id, grant.client_id),
                app_id=grant.client_id,
                roles=self._roles(tenant, user, api),
                lifetime=ACCESS_LIFETIME,
                extra={**identity, "scp": " ".join(named or sorted(api.delegated_scopes)), "idtyp": "user"},
            )
            body["scope"] = " ".join(resources)
        if "openid" in grant.scopes:
            claims = {**identity, "aud": grant.client_id}
            if nonce:
                claims["nonce"] = nonce
            body["id_token"] = self.issuer.mint(
                tenant_id=tenant.tenant_id, audience=grant.client_id, now=now, subject=_pairwise(user.id, grant.client_id), extra=claims
            )
            body["client_info"] = _client_info(user, tenant)
        if "offline_access" in grant.scopes:
            refresh = secrets.token_urlsafe(64)
            self.refresh_tokens[refresh] = _Grant(**{**grant.__dict__, "expires": now + REFRESH_LIFETIME, "redeemed": False})
            body["refresh_token"] = refresh
            body["refresh_token_expires_in"] = int(REFRESH_LIFETIME.total_seconds())
        return Response.json(200, body, {"Cache-Control": "no-store"})

    def _token_error(self, number: int, **values: str) -> Response:
        error = USER_AADSTS[number][0]
        return Response.json(400, aadsts_body(number, error, self._describe(number, **values)), {"Cache-Control": "no-store"})

    def _describe(self, number: int, **values: str) -> str:
        return describe(number, USER_AADSTS[number][1], values)

    def _redirect_error(self, params: dict[str, str], number: int, **values: str) -> Response:
        answer = {
            "error": USER_AADSTS[number][0],
            "error_description": self._describe(number, **values),
            "error_uri": f"https://login.microsoftonline.com/error?code={number}",
        }
        if params.get("state"):
            answer["state"] = params["state"]
        return self._redirect(params, answer)

    def _redirect(self, params: dict[str, str], answer: dict[str, str]) -> Response:
        target = params["redirect_uri"]
        joined = urlencode(answer)
        if params.get("response_mode", "fragment") == "query":
            location = f"{target}{'&' if urlsplit(target).query else '?'}{joined}"
        else:
            location = f"{target}#{joined}"
        return Response.empty(302, {"Location": location, "Cache-Control": "no-store"})

    def _error_page(self, number: int, **values: str) -> Response:
        if number == 90002:
            text = f"AADSTS90002: Tenant '{values.get('tenant', '')}' not found."
        else:
            text = self._describe(number, **values)
        return _page(400, "Sign in", f'<h1>Sorry, but we\'re having trouble signing you in.</h1><p id="error">{html.escape(text)}</p>')

    def _form(self, params: dict[str, str], app: Application, *, hint: str = "", error: str | None = None) -> Response:
        problem = f'<p id="error" role="alert">{html.escape(error)}</p>' if error else ""
        ctx = html.escape(json.dumps(params), quote=True)
        body = (
            f"<h1>Sign in</h1><p>to continue to {html.escape(app.display_name)}</p>{problem}"
            '<form method="post">'
            f'<input type="hidden" name="ctx" value="{ctx}">'
            f'<label>Email or phone <input id="username" name="username" type="email" autocomplete="username" value="{html.escape(hint, quote=True)}"></label>'
            '<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>'
            '<button id="submit" type="submit">Sign in</button></form>'
        )
        return _page(200, "Sign in to your account", body)


def _page(status: int, title: str, body: str) -> Response:
    document = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><main>{body}<p><small>SSO Monitor sandbox: Microsoft Entra ID sign-in</small></p></main></body></html>"
    )
    return Response.text(status, document, "text/html; charset=utf-8", {"Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin-allow-popups"})


def _client_info(user: User, tenant: Tenant) -> str:
    raw = json.dumps({"uid": user.id, "utid": tenant.tenant_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pairwise(user_id: str, client_id: str) -> str:
    """``sub``: a per-app identifier for the user (Entra's is pairwise, not the object id)."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{user_id}:{client_id.lower()}".encode()).digest()[:24]).rstrip(b"=").decode()
