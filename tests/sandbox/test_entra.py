"""Entra ID in the sandbox, driven by the real azure-identity / MSAL."""

from __future__ import annotations

from datetime import UTC, timedelta

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from sso_sandbox import Sandbox
from sso_sandbox.tokens import TokenError

GRAPH = "https://graph.microsoft.com/.default"


def credential(sandbox: Sandbox, tenant: str, client: str, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(
        tenant,
        client,
        secret,
        authority=sandbox.endpoints.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.endpoints.ca_path),
    )


def test_client_credentials_token_carries_the_granted_roles(sandbox, ids):
    token = credential(sandbox, ids.tenant_id, ids.monitor_app_id, ids.monitor_secret).get_token(GRAPH)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["appid"] == ids.monitor_app_id
    assert claims["tid"] == ids.tenant_id
    assert claims["roles"] == ["Application.ReadWrite.OwnedBy", "Mail.Send"]
    # and the sandbox's own resources accept it
    assert sandbox.issuer.validate(token.token, audiences=["https://graph.microsoft.com"], now=sandbox.world.now())["appid"] == ids.monitor_app_id


def test_a_new_secret_works_only_after_the_propagation_delay(sandbox, ids):
    world = sandbox.world
    world.tenant(ids.tenant_id).propagation_delay = timedelta(seconds=30)
    app = world.find_app(ids.smarttrace_app_id)
    fresh = world.add_password(app, display_name="new")
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential(sandbox, ids.tenant_id, ids.smarttrace_app_id, fresh.secret_text).get_token(GRAPH)
    world.clock.advance(seconds=31)
    # a fresh credential object: MSAL keeps no state across instances
    assert credential(sandbox, ids.tenant_id, ids.smarttrace_app_id, fresh.secret_text).get_token(GRAPH).token


def test_a_wrong_secret_is_refused(sandbox, ids):
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential(sandbox, ids.tenant_id, ids.smarttrace_app_id, "not-the-secret").get_token(GRAPH)


def test_an_expired_secret_is_refused(sandbox, ids):
    sandbox.world.clock.advance(days=66)  # the standard SmartTrace secret ends in 65 days
    secret = sandbox.world.find_app(ids.smarttrace_app_id).password_credentials[0].secret_text
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000222"):
        credential(sandbox, ids.tenant_id, ids.smarttrace_app_id, secret).get_token(GRAPH)


def test_a_disabled_service_principal_cannot_sign_in(sandbox, ids):
    tenant = sandbox.world.tenant(ids.tenant_id)
    tenant.sp_by_app_id(ids.smarttrace_app_id).account_enabled = False
    secret = tenant.app_by_app_id(ids.smarttrace_app_id).password_credentials[0].secret_text
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000112"):
        credential(sandbox, ids.tenant_id, ids.smarttrace_app_id, secret).get_token(GRAPH)


def token_request(sandbox: Sandbox, tenant: str, **form: str) -> requests.Response:
    return requests.post(
        f"{sandbox.endpoints.authority}/{tenant}/oauth2/v2.0/token",
        data=form,
        verify=str(sandbox.endpoints.ca_path),
        timeout=10,
    )


@pytest.mark.parametrize(
    "form, status, error, code",
    [
        ({"grant_type": "client_credentials", "client_id": "bad", "client_secret": "x", "scope": GRAPH}, 400, "unauthorized_client", 700016),
        ({"grant_type": "client_credentials", "client_id": "{app}", "client_secret": "wrong", "scope": GRAPH}, 401, "invalid_client", 7000215),
        ({"grant_type": "client_credentials", "client_id": "{app}", "scope": GRAPH}, 401, "invalid_client", 7000218),
        (
            {"grant_type": "client_credentials", "client_id": "{app}", "client_secret": "{secret}", "scope": "https://graph.microsoft.com/User.Read"},
            400,
            "invalid_scope",
            1002012,
        ),
        (
            {"grant_type": "client_credentials", "client_id": "{app}", "client_secret": "{secret}", "scope": "api://nothing/.default"},
            400,
            "invalid_resource",
            500011,
        ),
        ({"grant_type": "password", "client_id": "{app}"}, 400, "unsupported_grant_type", 70003),
        ({"client_id": "{app}"}, 400, "invalid_request", 900144),
    ],
)
def test_token_errors_are_aadsts_bodies(sandbox, ids, form, status, error, code):
    filled = {k: v.format(app=ids.monitor_app_id, secret=ids.monitor_secret) for k, v in form.items()}
    answer = token_request(sandbox, ids.tenant_id, **filled)
    body = answer.json()
    assert answer.status_code == status
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)
    assert ids.monitor_secret not in answer.text


def test_unknown_tenant_is_aadsts90002(sandbox):
    answer = token_request(sandbox, "00000000-0000-0000-0000-00000000dead", grant_type="client_credentials")
    assert answer.status_code == 400 and answer.json()["error_codes"] == [90002]


def test_discovery_and_jwks_describe_the_sandbox(sandbox, ids):
    ca = str(sandbox.endpoints.ca_path)
    doc = requests.get(f"{sandbox.endpoints.authority}/{ids.tenant_id}/v2.0/.well-known/openid-configuration", verify=ca, timeout=10).json()
    assert doc["issuer"] == f"{sandbox.endpoints.authority}/{ids.tenant_id}/v2.0"
    assert doc["token_endpoint"] == f"{sandbox.endpoints.authority}/{ids.tenant_id}/oauth2/v2.0/token"
    keys = requests.get(doc["jwks_uri"], verify=ca, timeout=10).json()["keys"]
    token = sandbox.mint_token(tenant_id=ids.tenant_id, audience=ids.admin_api_uri, subject="user-1", roles=["SsoMonitor.Read"])
    # A relying party can validate a minted token with nothing but the published JWKS.
    signing_key = jwt.PyJWKClient(doc["jwks_uri"], ssl_context=_context(ca)).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience=ids.admin_api_uri, issuer=doc["issuer"])
    assert claims["roles"] == ["SsoMonitor.Read"] and keys[0]["kid"] == signing_key.key_id


def _context(ca: str):
    import ssl

    return ssl.create_default_context(cafile=ca)


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"key": "untrusted"}, "signing key not recognised"),
        ({"key": "tampered"}, "invalid signature"),
        ({"algorithm": "none"}, "signing key not recognised"),
        ({"lifetime": timedelta(minutes=-10)}, "token expired"),
        ({"audience": "api://someone-else"}, "invalid audience"),
        ({"issuer": "https://login.microsoftonline.com/evil/v2.0"}, "invalid issuer"),
    ],
)
def test_the_token_helper_mints_broken_tokens_for_negative_tests(sandbox, ids, kwargs, reason):
    from datetime import datetime

    base = {"tenant_id": ids.tenant_id, "audience": ids.admin_api_uri, "subject": "user-1"}
    base.update(kwargs)
    token = sandbox.mint_token(**base)
    with pytest.raises(TokenError, match=reason):
        sandbox.issuer.validate(token, audiences=[ids.admin_api_uri], now=datetime.now(UTC))


def test_not_yet_valid_tokens_are_refused(sandbox, ids):
    from datetime import datetime

    now = datetime.now(UTC)
    token = sandbox.mint_token(tenant_id=ids.tenant_id, audience=ids.admin_api_uri, not_before=now + timedelta(minutes=10))
    with pytest.raises(TokenError, match="not yet valid"):
        sandbox.issuer.validate(token, audiences=[ids.admin_api_uri], now=now)
