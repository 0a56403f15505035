"""The sandbox's Entra sign-in for people (sso_sandbox/user_signin.py), at the protocol
level: the authorization code flow with PKCE as a single-page app runs it, and each
refusal the status page can meet (docs/sandbox/fidelity.md, "A person's sign-in").
The browser-driven flow is in tests/functions/test_status_view.py."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

PAGE = "http://localhost:7071/api/status/view"
ORIGIN = {"Origin": "http://localhost:7071"}


@pytest.fixture
def login(sandbox, ids):
    app = sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.admin_api_client_id)
    app.spa_redirect_uris.append(PAGE)
    return sandbox


def _verifier() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(43)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _scope(ids) -> str:
    """The page's scopes: the admin API's own, by its client id (a token for itself)."""
    return f"{ids.admin_api_client_id}/user_impersonation openid profile offline_access"


def _authorize(
    sandbox,
    ids,
    *,
    upn: str,
    password: str,
    challenge: str | None,
    scope: str | None = None,
    **extra: str,
):
    base = f"{sandbox.endpoints.authority}/{ids.tenant_id}/oauth2/v2.0/authorize"
    params = {
        "client_id": ids.admin_api_client_id,
        "redirect_uri": PAGE,
        "response_type": "code",
        "scope": scope or _scope(ids),
        "state": "s1",
        "nonce": "n1",
        **extra,
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    ca = str(sandbox.endpoints.ca_path)
    form = requests.get(base, params=params, verify=ca, timeout=10)
    assert form.status_code == 200 and 'name="password"' in form.text, form.text[:500]
    return requests.post(base, data={"ctx": json.dumps(params), "username": upn, "password": password}, verify=ca, timeout=10, allow_redirects=False)


def _code(answer: requests.Response) -> str:
    assert answer.status_code == 302, answer.text[:500]
    location = answer.headers["Location"]
    assert location.startswith(PAGE + "#")  # response_mode fragment by default
    fields = parse_qs(urlsplit(location).fragment)
    assert fields["state"] == ["s1"] and fields["client_info"]
    return fields["code"][0]


def _redeem(sandbox, ids, code: str, verifier: str, headers: dict | None = ORIGIN, **extra: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": ids.admin_api_client_id,
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": PAGE,
        "scope": _scope(ids),
        **extra,
    }
    return requests.post(
        f"{sandbox.endpoints.authority}/{ids.tenant_id}/oauth2/v2.0/token", data=form, headers=headers or {}, verify=str(sandbox.endpoints.ca_path), timeout=10
    )


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_a_reader_gets_a_v2_token_with_the_role_and_an_id_token_with_the_nonce(login, ids):
    verifier, challenge = _verifier()
    answer = _redeem(login, ids, _code(_authorize(login, ids, upn=ids.reader_upn, password=ids.user_password, challenge=challenge)), verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    body = answer.json()
    access = _claims(body["access_token"])
    assert access["aud"] == ids.admin_api_client_id and access["roles"] == ["SsoMonitor.Read"] and access["scp"] == "user_impersonation"
    assert access["preferred_username"] == ids.reader_upn and access["iss"].endswith(f"/{ids.tenant_id}/v2.0")
    identity = _claims(body["id_token"])
    assert identity["nonce"] == "n1" and identity["aud"] == ids.admin_api_client_id
    client_info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert client_info["utid"] == ids.tenant_id and client_info["uid"] == access["oid"]
    # the refresh token gives a new access token, without the person
    refreshed = requests.post(
        f"{login.endpoints.authority}/{ids.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": ids.admin_api_client_id,
            "refresh_token": body["refresh_token"],
            "scope": f"{ids.admin_api_client_id}/user_impersonation",
        },
        headers=ORIGIN,
        verify=str(login.endpoints.ca_path),
        timeout=10,
    )
    assert refreshed.status_code == 200 and _claims(refreshed.json()["access_token"])["roles"] == ["SsoMonitor.Read"]


@pytest.mark.parametrize(
    "change, number",
    [
        ({"verifier": "not-the-verifier-" + "x" * 30}, 501481),
        ({"headers": None}, 9002327),
        ({"redirect_uri": "http://localhost:7071/elsewhere"}, 9002313),
    ],
)
def test_a_code_is_redeemed_only_with_its_verifier_from_a_browser_at_its_redirect(login, ids, change, number):
    verifier, challenge = _verifier()
    code = _code(_authorize(login, ids, upn=ids.reader_upn, password=ids.user_password, challenge=challenge))
    extra = {"redirect_uri": change["redirect_uri"]} if "redirect_uri" in change else {}
    answer = _redeem(login, ids, code, change.get("verifier", verifier), headers=change.get("headers", ORIGIN), **extra)
    assert answer.status_code == 400 and answer.json()["error_codes"] == [number], answer.text


def test_a_code_is_redeemed_once(login, ids):
    verifier, challenge = _verifier()
    code = _code(_authorize(login, ids, upn=ids.reader_upn, password=ids.user_password, challenge=challenge))
    assert _redeem(login, ids, code, verifier).status_code == 200
    again = _redeem(login, ids, code, verifier)
    assert again.status_code == 400 and again.json()["error_codes"] == [54005]


def test_without_pkce_the_browser_cannot_redeem(login, ids):
    code = _code(_authorize(login, ids, upn=ids.reader_upn, password=ids.user_password, challenge=None))
    answer = _redeem(login, ids, code, "anything")
    assert answer.status_code == 400 and answer.json()["error_codes"] == [9002325]


def test_an_unassigned_person_is_refused_on_entras_page(login, ids):
    verifier, challenge = _verifier()
    answer = _authorize(login, ids, upn=ids.visitor_upn, password=ids.user_password, challenge=challenge)
    assert answer.status_code == 400 and "AADSTS50105" in answer.text and "Location" not in answer.headers
    assert login.world.user_sign_ins[-1] == (ids.visitor_upn, ids.admin_api_client_id, False)


def _authorize_only(sandbox, ids, **params: str) -> requests.Response:
    """GET authorize, not following the redirect: Entra's first answer."""
    base = f"{sandbox.endpoints.authority}/{ids.tenant_id}/oauth2/v2.0/authorize"
    query = {"client_id": ids.admin_api_client_id, "redirect_uri": PAGE, "response_type": "code", **params}
    return requests.get(base, params=query, verify=str(sandbox.endpoints.ca_path), timeout=10, allow_redirects=False)


def test_an_unknown_scope_goes_back_as_an_error(login, ids):
    answer = _authorize_only(login, ids, scope="api://sso-monitor-admin/nope openid", state="s2")
    fields = parse_qs(urlsplit(answer.headers["Location"]).fragment)
    assert answer.status_code == 302 and fields["error"] == ["invalid_scope"] and fields["state"] == ["s2"]


def test_an_app_asking_for_itself_by_its_uri_is_aadsts90009(login, ids):
    """The page and the API are one registration: the api:// form of its own scope is refused."""
    answer = _authorize_only(login, ids, scope="api://sso-monitor-admin/user_impersonation openid", state="s3")
    fields = parse_qs(urlsplit(answer.headers["Location"]).fragment)
    assert answer.status_code == 302 and fields["error"] == ["invalid_request"] and "AADSTS90009" in fields["error_description"][0]


def test_silent_sign_in_without_a_session_is_login_required(login, ids):
    answer = _authorize_only(login, ids, scope="openid", prompt="none", response_mode="query")
    assert answer.status_code == 302 and parse_qs(urlsplit(answer.headers["Location"]).query)["error"] == ["login_required"]


def test_discovery_and_token_answer_a_browsers_preflight(login, ids):
    url = f"{login.endpoints.authority}/{ids.tenant_id}/oauth2/v2.0/token"
    answer = requests.options(url, headers={**ORIGIN, "Access-Control-Request-Method": "POST"}, verify=str(login.endpoints.ca_path), timeout=10)
    assert answer.status_code == 204 and answer.headers["Access-Control-Allow-Origin"] == "*" and "POST" in answer.headers["Access-Control-Allow-Methods"]
    discovery = requests.get(
        f"{login.endpoints.authority}/{ids.tenant_id}/v2.0/.well-known/openid-configuration", headers=ORIGIN, verify=str(login.endpoints.ca_path), timeout=10
    )
    assert discovery.headers["Access-Control-Allow-Origin"] == "*" and discovery.json()["authorization_endpoint"].endswith("/oauth2/v2.0/authorize")
