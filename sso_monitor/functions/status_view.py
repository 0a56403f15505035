"""The status page people open from an alert (GET /api/status/view) and its files.

Why not the platform's sign-in: Microsoft's Flex Consumption documentation says
"EasyAuth is currently not supported. Unauthenticated callers currently aren't
blocked when EasyAuth is enabled in a Flex Consumption plan app" (azure-docs,
articles/azure-functions/flex-consumption-plan.md, "Considerations"; docs/status-page.md).
So the page signs the person in itself, with MSAL.js (msal-browser, from npm, served
from here: no CDN), by the authorization code flow with PKCE against the admin API's
own registration (its single-page-app redirect URI is this page's URL), and calls
GET /api/status/page with the access token. Who may see what is decided where it
always was: the API validates the token and requires SsoMonitor.Read.

The page itself is a frame with no data and no secret (so it needs no function key
and no token): the admin API's client id, tenant and scope are public values that any
sign-in URL shows. Its Content-Security-Policy lets scripts come only from here and
lets the page talk only to here and to the sign-in authority.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import urlsplit

STATIC = Path(__file__).with_name("static")
SCOPE = "user_impersonation"  # the delegated scope infra/app/admin-api.bicep exposes

# The files the page loads: name -> (path under static/, media type). Nothing else is served.
ASSETS: dict[str, tuple[str, str]] = {
    "status-view.js": ("status-view.js", "text/javascript"),
    "status-view.css": ("status-view.css", "text/css"),
    "msal-browser.min.js": ("vendor/msal-browser.min.js", "text/javascript"),
}

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def authority_url(authority: str, tenant_id: str) -> str:
    return f"{authority.rstrip('/')}/{tenant_id}"


def content_security_policy(authority: str) -> str:
    parts = urlsplit(authority)
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        f"connect-src 'self' {origin}; frame-src {origin}; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def render_view(*, client_id: str, tenant_id: str, authority: str) -> str:
    """The frame: the sign-in settings as data attributes, the scripts, no data."""
    attributes = {
        "data-client-id": client_id,
        "data-authority": authority_url(authority, tenant_id),
        # The page and the API are one registration: a token for itself is asked for by the
        # GUID form of its identifier, "{client id}/scope"; the api:// form is AADSTS90009
        # ("requesting a token for itself ... only if resource is specified using the GUID
        # based App Identifier"; docs/sandbox/fidelity.md).
        "data-scope": f"{client_id}/{SCOPE}",
        "data-report": "page",  # GET /api/status/page, beside this page
    }
    data = " ".join(f'{name}="{escape(value, quote=True)}"' for name, value in attributes.items())
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        "<title>SSO monitor status</title>"
        '<link rel="icon" href="data:,">'  # no favicon request (a 404 in the console otherwise)
        '<link rel="stylesheet" href="view/status-view.css"></head>\n'
        f"<body {data}>"
        '<header class="bar"><strong>SmartTrace SSO monitor</strong>'
        '<span id="who" hidden></span>'
        '<button id="reload" type="button" hidden>Refresh</button>'
        '<button id="sign-out" type="button" hidden>Sign out</button>'
        '<button id="sign-in" type="button" hidden>Sign in with Microsoft</button></header>\n'
        '<p id="state" role="status" aria-live="polite">Signing you in with Microsoft\u2026</p>\n'
        '<main id="report"></main>\n'
        "<noscript><p>This page signs you in with Microsoft, which needs JavaScript. Without it, ask the admin API: "
        "GET /api/status with a bearer token (docs/admin-api.md).</p></noscript>\n"
        '<script src="view/msal-browser.min.js"></script><script src="view/status-view.js"></script>'
        "</body></html>\n"
    )


def not_configured_view() -> str:
    """What the page says when the admin API's client id is not configured."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>SSO monitor status: not configured</title></head>'
        "<body><h1>The status page is not configured</h1><p>It signs people in with the admin API's app registration: "
        "set <code>adminApi.clientId</code> (its application (client) id) in the monitor's configuration, and add this page's URL "
        "as a single-page-application redirect URI of that registration (docs/status-page.md).</p></body></html>\n"
    )


def asset(name: str) -> tuple[bytes, str] | None:
    """A file the page loads, by its public name; None for any other name."""
    entry = ASSETS.get(name)
    if entry is None:
        return None
    relative, media_type = entry
    return (STATIC / relative).read_bytes(), media_type
