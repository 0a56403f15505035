"""The token endpoint's refusals that are not about a wrong secret, and the exact wording,
status and body of every AADSTS answer the product classifies. Driven by the real MSAL
(ConfidentialClientApplication, as the product's probe uses it) and azure-identity, plus
raw ``requests`` for the wire details. Sources: docs/sandbox/fidelity.md, "Entra ID".
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from sso_monitor.adapters.http import session_with_host_map
from sso_sandbox import Sandbox
from sso_sandbox.entra import AADSTS, DESCRIPTION_SEPARATOR
from sso_sandbox.testing import StandardIds

GRAPH = "https://graph.microsoft.com/.default"


def acquire(sandbox: Sandbox, tenant: str, client: str, secret: str, scope: str = GRAPH) -> dict[str, Any]:
    """A client-credentials token request through MSAL, as sso_monitor.adapters.entra.probes makes it."""
    app = msal.ConfidentialClientApplication(
        client,
        client_credential=secret,
        authority=f"{sandbox.endpoints.authority}/{tenant}",
        http_client=session_with_host_map(None, str(sandbox.endpoints.ca_path)),
        token_cache=msal.TokenCache(),
        instance_discovery=False,
    )
    return app.acquire_token_for_client(scopes=[scope])


def post_token(sandbox: Sandbox, tenant: str, **form: str) -> requests.Response:
    return requests.post(f"{sandbox.endpoints.authority}/{tenant}/oauth2/v2.0/token", data=form, verify=str(sandbox.endpoints.ca_path), timeout=10)


def smarttrace_secret(sandbox: Sandbox, ids: StandardIds) -> str:
    return sandbox.world.find_app(ids.smarttrace_app_id).password_credentials[0].secret_text


def form(ids: StandardIds, secret: str, client: str | None = None, scope: str = GRAPH) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client or ids.smarttrace_app_id, "client_secret": secret, "scope": scope}


def description_text(body: dict[str, Any]) -> str:
    """The error_description without its Trace ID / Correlation ID / Timestamp tail."""
    return body["error_description"].split(f"{DESCRIPTION_SEPARATOR}Trace ID: ")[0]


# ---------------------------------------------------------------- the refusals


def test_a_disabled_service_principal_is_aadsts7000112_with_the_app_name(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.smarttrace_app_id).account_enabled = False
    answer = acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, smarttrace_secret(sandbox, ids))
    assert answer["error"] == "unauthorized_client" and answer["error_codes"] == [7000112]
    assert description_text(answer) == f"AADSTS7000112: Application '{ids.smarttrace_app_id}'(SmartTrace) is disabled."
    raw = post_token(sandbox, ids.tenant_id, **form(ids, smarttrace_secret(sandbox, ids)))
    assert raw.status_code == 400
    # a disabled service principal breaks user sign-in too
    assert not sandbox.world.sign_in_works(ids.facility)


def test_an_application_disabled_by_microsoft_is_aadsts7000112(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.find_app(ids.smarttrace_app_id).disabled_by_microsoft_status = "DisabledDueToViolationOfServicesAgreement"
    answer = acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, smarttrace_secret(sandbox, ids))
    assert answer["error_codes"] == [7000112]
    sandbox.world.find_app(ids.smarttrace_app_id).disabled_by_microsoft_status = "NotDisabled"
    assert "access_token" in acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, smarttrace_secret(sandbox, ids))


def test_no_service_principal_in_the_tenant_is_aadsts7000229(sandbox: Sandbox, ids: StandardIds) -> None:
    tenant = sandbox.world.tenant(ids.tenant_id)
    del tenant.service_principals[tenant.sp_by_app_id(ids.smarttrace_app_id).object_id]
    answer = acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, smarttrace_secret(sandbox, ids))
    assert answer["error"] == "invalid_client" and answer["error_codes"] == [7000229]
    assert description_text(answer) == (
        f"AADSTS7000229: The client application {ids.smarttrace_app_id} is missing service principal in the tenant "
        f"{ids.tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"
    )
    assert post_token(sandbox, ids.tenant_id, **form(ids, smarttrace_secret(sandbox, ids))).status_code == 401


def test_conditional_access_for_workload_identities_is_aadsts53003(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.smarttrace_app_id).blocked_by_conditional_access = True
    answer = acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, smarttrace_secret(sandbox, ids))
    assert answer["error"] == "invalid_grant" and answer["error_codes"] == [53003]
    assert description_text(answer) == ("AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
    raw = post_token(sandbox, ids.tenant_id, **form(ids, smarttrace_secret(sandbox, ids)))
    assert raw.status_code == 400
    body = raw.json()
    assert body["suberror"] == "message_only"
    capolids = json.loads(body["claims"])["access_token"]["capolids"]
    assert capolids["essential"] is True and re.fullmatch(r"[0-9a-f-]{36}", capolids["values"][0])
    # azure-identity surfaces it as an authentication error naming the code
    with pytest.raises(ClientAuthenticationError, match="AADSTS53003"):
        ClientSecretCredential(
            ids.tenant_id,
            ids.smarttrace_app_id,
            smarttrace_secret(sandbox, ids),
            authority=sandbox.endpoints.authority,
            disable_instance_discovery=True,
            connection_verify=str(sandbox.endpoints.ca_path),
        ).get_token(GRAPH)
    # workload-identity policies do not apply to user sign-ins: SSO keeps working
    assert sandbox.world.sign_in_works(ids.facility)


def test_an_unknown_client_is_aadsts700016_naming_the_directory_and_the_wrong_tenant_hint(sandbox: Sandbox, ids: StandardIds) -> None:
    stranger = "3512c988-55e1-4f46-a1e6-6949e0b55a16"
    answer = acquire(sandbox, ids.tenant_id, stranger, "whatever")
    assert answer["error"] == "unauthorized_client" and answer["error_codes"] == [700016]
    assert description_text(answer) == (
        f"AADSTS700016: Application with identifier '{stranger}' was not found in the directory 'Contoso Foods'. "
        "This can happen if the application has not been installed by the administrator of the tenant or consented to by any user "
        "in the tenant. You may have sent your authentication request to the wrong tenant."
    )
    assert post_token(sandbox, ids.tenant_id, **form(ids, "x", client=stranger)).status_code == 400


def test_an_unknown_resource_is_aadsts500011_with_the_wrong_tenant_hint(sandbox: Sandbox, ids: StandardIds) -> None:
    answer = acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, smarttrace_secret(sandbox, ids), scope="api://nothing/.default")
    assert answer["error"] == "invalid_resource" and answer["error_codes"] == [500011]
    assert description_text(answer) == (
        f"AADSTS500011: The resource principal named api://nothing was not found in the tenant named {ids.tenant_id}. "
        "This can happen if the application has not been installed by the administrator of the tenant or consented to by any user "
        "in the tenant. You might have sent your authentication request to the wrong tenant."
    )


def test_unknown_and_malformed_tenants(sandbox: Sandbox, ids: StandardIds) -> None:
    missing = "00000000-0000-0000-0000-00000000dead"
    token = post_token(sandbox, missing, **form(ids, "x"))
    assert token.status_code == 400 and token.json()["error"] == "invalid_request" and token.json()["error_codes"] == [90002]
    assert description_text(token.json()) == (
        f"AADSTS90002: Tenant '{missing}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
    )
    ca = str(sandbox.endpoints.ca_path)
    metadata = requests.get(f"{sandbox.endpoints.authority}/{missing}/v2.0/.well-known/openid-configuration", verify=ca, timeout=10)
    assert metadata.status_code == 400 and metadata.json()["error"] == "invalid_tenant"
    malformed = post_token(sandbox, "y", **form(ids, "x"))
    assert malformed.status_code == 400 and malformed.json()["error_codes"] == [900023]
    assert description_text(malformed.json()) == "AADSTS900023: Specified tenant identifier 'y' is neither a valid DNS name, nor a valid external domain."
    # MSAL reads the tenant's metadata first and raises there
    with pytest.raises(ValueError):
        acquire(sandbox, missing, ids.smarttrace_app_id, "x")


@pytest.mark.parametrize(
    ("code", "secret_kind"),
    [(7000215, "wrong"), (7000222, "expired")],
)
def test_secret_refusals_keep_their_live_wording(sandbox: Sandbox, ids: StandardIds, code: int, secret_kind: str) -> None:
    secret = smarttrace_secret(sandbox, ids)
    if secret_kind == "wrong":
        secret = "not-the-secret"
    else:
        sandbox.world.clock.advance(days=66)
    answer = acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, secret)
    assert answer["error"] == "invalid_client" and answer["error_codes"] == [code]
    expected = AADSTS[code][2].format(client=ids.smarttrace_app_id)
    assert description_text(answer) == f"AADSTS{code}: {expected}"
    assert post_token(sandbox, ids.tenant_id, **form(ids, secret)).status_code == 401


# ---------------------------------------------------------------- the body layout


def test_the_description_ends_with_trace_correlation_and_timestamp_matching_the_body(sandbox: Sandbox, ids: StandardIds) -> None:
    body = post_token(sandbox, ids.tenant_id, **form(ids, "wrong")).json()
    assert DESCRIPTION_SEPARATOR == " "
    tail = f" Trace ID: {body['trace_id']} Correlation ID: {body['correlation_id']} Timestamp: {body['timestamp']}"
    assert body["error_description"].endswith(tail)
    assert "\r\n" not in body["error_description"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z", body["timestamp"])
    assert body["error_uri"].endswith("/error?code=7000215")


def test_the_older_crlf_layout_can_be_chosen(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.services["login"].description_separator = "\r\n"
    body = post_token(sandbox, ids.tenant_id, **form(ids, "wrong")).json()
    assert body["error_description"].endswith(f"\r\nTrace ID: {body['trace_id']}\r\nCorrelation ID: {body['correlation_id']}\r\nTimestamp: {body['timestamp']}")


# ---------------------------------------------------------------- which refusal wins


def _prepare(sandbox: Sandbox, ids: StandardIds, conditions: set[str]) -> str:
    world = sandbox.world
    tenant = world.tenant(ids.tenant_id)
    app = tenant.app_by_app_id(ids.smarttrace_app_id)
    sp = tenant.sp_by_app_id(ids.smarttrace_app_id)
    secret = app.password_credentials[0].secret_text
    if "expired" in conditions:
        world.clock.advance(days=66)
    if "wrong" in conditions:
        secret = "not-the-secret"
    if "blocked" in conditions:
        sp.blocked_by_conditional_access = True
    if "disabled" in conditions:
        sp.account_enabled = False
    if "no-sp" in conditions:
        del tenant.service_principals[sp.object_id]
    return secret


@pytest.mark.parametrize(
    ("conditions", "scope", "code"),
    [
        ({"wrong", "blocked"}, GRAPH, 7000215),  # Conditional Access applies after client authentication (documented)
        ({"expired", "blocked"}, GRAPH, 7000222),
        ({"expired", "disabled"}, GRAPH, 7000222),  # assumption
        ({"wrong", "no-sp"}, GRAPH, 7000215),  # assumption
        ({"no-sp"}, "api://nothing/.default", 500011),  # the resource is resolved before the client's principal
        ({"disabled", "blocked"}, GRAPH, 7000112),  # assumption
    ],
)
def test_the_order_in_which_refusals_apply(sandbox: Sandbox, ids: StandardIds, conditions: set[str], scope: str, code: int) -> None:
    secret = _prepare(sandbox, ids, conditions)
    assert acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, secret, scope=scope)["error_codes"] == [code]


def test_world_secret_works_names_each_refusal(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    secret = smarttrace_secret(sandbox, ids)
    assert world.secret_works(ids.tenant_id, ids.smarttrace_app_id, secret) is None
    world.tenant(ids.tenant_id).sp_by_app_id(ids.smarttrace_app_id).blocked_by_conditional_access = True
    assert world.secret_works(ids.tenant_id, ids.smarttrace_app_id, secret) == "AADSTS53003"
    assert world.secret_works(ids.tenant_id, ids.smarttrace_app_id, secret, client_credentials=False) is None
    assert world.secret_works(ids.tenant_id, ids.smarttrace_app_id, secret, resource="api://nothing") == "AADSTS500011"
    assert world.secret_works("00000000-0000-0000-0000-00000000dead", ids.smarttrace_app_id, secret) == "AADSTS90002"


# ---------------------------------------------------------------- scenario fields


def test_scenario_fields_seed_each_refusal() -> None:
    from sso_sandbox.scenario import load_scenario

    tenant = "72f988bf-0000-4000-8000-0000000000bb"
    world, _ = load_scenario(
        {
            "tenants": [
                {
                    "id": tenant,
                    "name": "Fabrikam",
                    "applications": [
                        {
                            "key": "blocked",
                            "displayName": "Blocked",
                            "passwordCredentials": [{"ref": "b"}],
                            "servicePrincipal": {"blockedByConditionalAccess": True},
                        },
                        {
                            "key": "banned",
                            "displayName": "Banned",
                            "disabledByMicrosoftStatus": "DisabledDueToViolationOfServicesAgreement",
                            "passwordCredentials": [{"ref": "m"}],
                        },
                        {"key": "off", "displayName": "Off", "passwordCredentials": [{"ref": "o"}], "servicePrincipal": {"accountEnabled": False}},
                        {"key": "nosp", "displayName": "No SP", "passwordCredentials": [{"ref": "n"}], "servicePrincipal": False},
                    ],
                }
            ],
        }
    )
    refs = world.scenario_refs  # type: ignore[attr-defined]
    expect = {"blocked": "AADSTS53003", "banned": "AADSTS7000112", "off": "AADSTS7000112", "nosp": "AADSTS7000229"}
    for key, ref in (("blocked", "b"), ("banned", "m"), ("off", "o"), ("nosp", "n")):
        assert world.secret_works(tenant, refs.apps[key].app_id, refs.credentials[ref].secret_text) == expect[key], key


def test_a_propagating_secret_is_still_7000215_with_a_disabled_principal(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    world.tenant(ids.tenant_id).propagation_delay = timedelta(seconds=30)
    fresh = world.add_password(world.find_app(ids.smarttrace_app_id))
    world.tenant(ids.tenant_id).sp_by_app_id(ids.smarttrace_app_id).account_enabled = False
    assert acquire(sandbox, ids.tenant_id, ids.smarttrace_app_id, fresh.secret_text)["error_codes"] == [7000215]
