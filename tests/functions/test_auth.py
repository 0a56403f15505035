"""The admin API's bearer-token check, against the sandbox's Entra (real discovery
and JWKS over HTTPS with the sandbox CA) and tokens it mints, good and broken."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from sso_monitor.functions.auth import (
    ADMIN_ROLE,
    READ_ROLE,
    AdminAuthSettings,
    AuthError,
    Principal,
    json_error,
    require,
)
from sso_monitor.functions.tokens import TokenValidator
from sso_sandbox import Sandbox
from sso_sandbox.testing import StandardIds, standard_world
from sso_sandbox.tokens import SigningKey

DISCOVERY = ".well-known/openid-configuration"
JWKS = "discovery/v2.0/keys"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def settings(sandbox, ids) -> AdminAuthSettings:
    return settings_for(sandbox, ids)


@pytest.fixture
def validator(settings, clock) -> TokenValidator:
    return TokenValidator(settings, monotonic=clock)


def settings_for(sandbox, ids) -> AdminAuthSettings:
    return AdminAuthSettings(
        tenant_id=ids.tenant_id,
        audience=ids.admin_api_uri,
        authority=sandbox.endpoints.authority,
        ca_bundle=str(sandbox.endpoints.ca_path),
    )


def minter(sandbox, ids) -> Callable[..., str]:
    """Mints a token for the admin API with the Read role, unless told otherwise."""

    def mint(**kwargs) -> str:
        kwargs.setdefault("audience", ids.admin_api_uri)
        kwargs.setdefault("roles", [READ_ROLE])
        return sandbox.mint_token(tenant_id=ids.tenant_id, **kwargs)

    return mint


@pytest.fixture
def mint(sandbox, ids) -> Callable[..., str]:
    return minter(sandbox, ids)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[tuple[Sandbox, StandardIds]]:
    """One sandbox for the table of refusals (each case still gets a fresh validator)."""
    world, ids = standard_world()
    with Sandbox(world) as running:
        yield running, ids


def bearer(token: str) -> str:
    return f"Bearer {token}"


def requests_to(sandbox, fragment: str) -> int:
    return sandbox.world.count_requests(service="login", path_contains=fragment)


# ---- the caller gets in


def test_a_valid_read_token_gives_the_principal(validator, mint, ids):
    token = mint(subject="5f1c-user-oid", app_id="0c3e-client", roles=[READ_ROLE], extra={"name": "Ana Ops", "preferred_username": "ana@contoso.example"})

    principal = validator.validate(bearer(token), required_role=READ_ROLE)

    assert principal == Principal(
        subject="5f1c-user-oid",
        object_id="5f1c-user-oid",
        app_id="0c3e-client",
        tenant_id=ids.tenant_id,
        roles=(READ_ROLE,),
        name="Ana Ops",
        upn="ana@contoso.example",
    )


def test_an_admin_token_may_act_and_read(validator, mint):
    header = bearer(mint(roles=[ADMIN_ROLE]))

    assert validator.validate(header, required_role=ADMIN_ROLE).roles == (ADMIN_ROLE,)
    assert validator.validate(header, required_role=READ_ROLE).has_role(READ_ROLE)  # Admin implies Read


def test_the_bare_client_id_is_accepted_as_audience_when_given(settings, clock, mint):
    validator = TokenValidator(AdminAuthSettings(**{**settings.__dict__, "client_id": "6a1d0c2e-admin-api"}), monotonic=clock)

    assert validator.validate(bearer(mint(audience="6a1d0c2e-admin-api")), READ_ROLE).roles == (READ_ROLE,)
    assert validator.validate(bearer(mint()), READ_ROLE).roles == (READ_ROLE,)


def test_the_scheme_is_case_insensitive(validator, mint):
    assert validator.validate(f"bearer  {mint()}", READ_ROLE).has_role(READ_ROLE)


# ---- the caller is refused: each case from the issue, and a few more

FIVE_MINUTES = timedelta(minutes=5)

# (case, how to build the Authorization header from `mint`, role the endpoint needs, status, code)
REFUSALS: list[tuple[str, Callable[[Callable[..., str]], str | None], str, int, str]] = [
    ("expired", lambda mint: bearer(mint(lifetime=-FIVE_MINUTES)), READ_ROLE, 401, "token_expired"),
    ("not yet valid", lambda mint: bearer(mint(not_before=datetime.now(UTC) + FIVE_MINUTES)), READ_ROLE, 401, "token_not_yet_valid"),
    ("wrong audience", lambda mint: bearer(mint(audience="https://graph.microsoft.com")), READ_ROLE, 401, "invalid_audience"),
    (
        "wrong issuer",
        lambda mint: bearer(mint(issuer="https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000beef/v2.0")),
        READ_ROLE,
        401,
        "invalid_issuer",
    ),
    ("bad signature", lambda mint: bearer(mint(key="tampered")), READ_ROLE, 401, "invalid_signature"),
    ("unknown key id", lambda mint: bearer(mint(key="untrusted")), READ_ROLE, 401, "unknown_signing_key"),
    ("alg none", lambda mint: bearer(mint(algorithm="none")), READ_ROLE, 401, "unsupported_algorithm"),
    # HS256 keyed with anything: the classic algorithm confusion attempt
    (
        "alg HS256",
        lambda mint: bearer(jwt.encode(jwt.decode(mint(), options={"verify_signature": False}), "the-public-key-used-as-an-hmac-secret", algorithm="HS256")),
        READ_ROLE,
        401,
        "unsupported_algorithm",
    ),
    ("missing role", lambda mint: bearer(mint(roles=None)), READ_ROLE, 403, "insufficient_role"),
    ("read role on an action", lambda mint: bearer(mint(roles=[READ_ROLE])), ADMIN_ROLE, 403, "insufficient_role"),
    ("some other role", lambda mint: bearer(mint(roles=["SsoMonitor.Reader"])), READ_ROLE, 403, "insufficient_role"),
    ("no header", lambda mint: None, READ_ROLE, 401, "missing_token"),
    ("empty header", lambda mint: "", READ_ROLE, 401, "missing_token"),
    ("Basic credentials", lambda mint: "Basic xyz", READ_ROLE, 401, "missing_token"),
    ("bare token without scheme", lambda mint: mint(), READ_ROLE, 401, "missing_token"),
    ("Bearer with nothing", lambda mint: "Bearer ", READ_ROLE, 401, "invalid_token"),
    ("garbage", lambda mint: "Bearer abc", READ_ROLE, 401, "invalid_token"),
    ("oversized", lambda mint: bearer("a" * 20000), READ_ROLE, 401, "invalid_token"),
]


@pytest.mark.parametrize(("case", "header_for", "role", "status", "code"), REFUSALS, ids=[row[0] for row in REFUSALS])
def test_refusals_have_the_right_status_and_never_echo_the_token(case, header_for, role, status, code, shared_sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    validator = TokenValidator(settings_for(*shared_sandbox))
    header = header_for(minter(*shared_sandbox))

    with pytest.raises(AuthError) as caught:
        validator.validate(header, required_role=role)

    err = caught.value
    assert (err.status, err.code) == (status, code)
    response = json_error(err.status, err.code, err.message)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == {"error": {"code": code, "message": err.message}}
    # neither the token nor any of its parts reaches the error, the answer or the log
    token = (header or "").partition(" ")[2] or (header or "")
    exposed = "\n".join([str(err), err.message, response.get_body().decode(), *(str(v) for v in response.headers.values()), caplog.text])
    for part in [token, *token.split(".")]:
        if len(part) >= 8:
            assert part not in exposed, f"{case}: a part of the token was exposed"


def test_a_401_says_how_to_authenticate_and_a_403_does_not():
    assert json_error(401, "token_expired", "the token has expired").headers["WWW-Authenticate"] == 'Bearer realm="sso-monitor", error="invalid_token"'
    assert json_error(401, "missing_token", "send a token").headers["WWW-Authenticate"] == 'Bearer realm="sso-monitor"'
    assert "WWW-Authenticate" not in json_error(403, "insufficient_role", "no").headers


def test_require_checks_the_role_on_its_own():
    reader = Principal(subject="s", object_id=None, app_id=None, tenant_id=None, roles=(READ_ROLE,))
    assert require(reader, READ_ROLE) is reader
    with pytest.raises(AuthError) as caught:
        require(reader, ADMIN_ROLE)
    assert caught.value.status == 403


# ---- clock skew


def test_a_token_expired_within_the_leeway_passes_and_one_well_past_it_fails(validator, mint):
    assert validator.validate(bearer(mint(lifetime=timedelta(seconds=-30))), READ_ROLE)  # 30 s late, 60 s leeway
    assert validator.validate(bearer(mint(not_before=datetime.now(UTC) + timedelta(seconds=30))), READ_ROLE)  # 30 s early

    with pytest.raises(AuthError) as caught:
        validator.validate(bearer(mint(lifetime=-FIVE_MINUTES)), READ_ROLE)
    assert (caught.value.status, caught.value.code) == (401, "token_expired")


# ---- discovery and keys: cached, refetched once on an unknown kid, never in a storm


def test_discovery_and_keys_are_fetched_once_for_many_validations(validator, mint, sandbox, clock):
    for _ in range(5):
        validator.validate(bearer(mint()), READ_ROLE)

    assert (requests_to(sandbox, DISCOVERY), requests_to(sandbox, JWKS)) == (1, 1)
    assert sandbox.world.count_requests(service="login") == 2

    clock.advance(3601)  # past the TTL: both are fetched again, once
    for _ in range(3):
        validator.validate(bearer(mint()), READ_ROLE)
    assert (requests_to(sandbox, DISCOVERY), requests_to(sandbox, JWKS)) == (2, 2)


def test_an_unknown_key_id_refetches_the_jwks_once_and_then_not_again_for_a_while(validator, mint, sandbox, clock):
    validator.validate(bearer(mint()), READ_ROLE)  # warm cache
    assert requests_to(sandbox, JWKS) == 1

    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            validator.validate(bearer(mint(key="untrusted")), READ_ROLE)
        assert (caught.value.status, caught.value.code) == (401, "unknown_signing_key")
    assert requests_to(sandbox, JWKS) == 2  # exactly one refetch for three garbage-kid tokens

    clock.advance(301)  # the refetch interval has passed: one more is allowed
    with pytest.raises(AuthError):
        validator.validate(bearer(mint(key="untrusted")), READ_ROLE)
    assert requests_to(sandbox, JWKS) == 3
    assert requests_to(sandbox, DISCOVERY) == 1


def test_a_rolled_signing_key_is_picked_up_by_the_refetch(validator, mint, sandbox):
    validator.validate(bearer(mint()), READ_ROLE)  # keys cached
    sandbox.issuer.key = SigningKey()  # Entra rolls its key; the JWKS now publishes only the new one

    principal = validator.validate(bearer(mint(roles=[ADMIN_ROLE])), ADMIN_ROLE)

    assert principal.roles == (ADMIN_ROLE,)
    assert requests_to(sandbox, JWKS) == 2


def test_when_the_keys_cannot_be_fetched_at_all_the_answer_is_503(settings, clock, mint):
    validator = TokenValidator(AdminAuthSettings(**{**settings.__dict__, "tenant_id": "no-such-tenant"}), monotonic=clock)

    with pytest.raises(AuthError) as caught:
        validator.validate(bearer(mint()), READ_ROLE)

    assert (caught.value.status, caught.value.code) == (503, "auth_unavailable")


def test_a_failed_refresh_keeps_the_old_keys_and_does_not_retry_per_request(validator, mint, sandbox, clock):
    validator.validate(bearer(mint()), READ_ROLE)
    sandbox.faults.add("status", service="login", status=503)
    clock.advance(3601)

    for _ in range(3):
        assert validator.validate(bearer(mint()), READ_ROLE).has_role(READ_ROLE)

    assert requests_to(sandbox, DISCOVERY) == 2  # one failed refresh, then the stale keys until the retry time
