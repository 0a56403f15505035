"""EntraTokenProbe and UrlProbe against the sandbox over HTTPS."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import certifi
import pytest
import urllib3.connection

from sso_monitor.adapters.entra.probes import EntraTokenProbe, UrlProbe, classify_auth_error, scrub
from sso_monitor.config import MonitorConfig, parse_config
from sso_monitor.models import ProbeOutcome, Reachability, SecretProbe, SecretValue, UrlCheck
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds

ACME = "https://acme.smarttrace.ai"
LOGOUT = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme"


def config_for(sandbox: Sandbox, **network: Any) -> MonitorConfig:
    document, environ = monitor_document(sandbox)
    document["network"].update(network)
    return parse_config(document, environ)


def probe(sandbox: Sandbox, tenant_id: str, app_id: str, secret: str, **options: Any) -> SecretProbe:
    options.setdefault("retry_backoff_factor", 0.01)
    return asyncio.run(EntraTokenProbe(config_for(sandbox), **options).probe(tenant_id, app_id, SecretValue(secret)))


def check(config: MonitorConfig, *urls: str) -> list[UrlCheck]:
    async def run() -> list[UrlCheck]:
        prober = UrlProbe(config)
        try:
            return list(await asyncio.gather(*(prober.check(url) for url in urls)))
        finally:
            await prober.aclose()

    return asyncio.run(run())


def smarttrace_secret(sandbox: Sandbox, ids: StandardIds) -> str:
    return sandbox.world.find_app(ids.smarttrace_app_id).password_credentials[0].secret_text


pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


def assert_secret_not_in(result: SecretProbe, secret: str) -> None:
    assert secret not in result.detail and secret not in repr(result)


# ---------------------------------------------------------------- token probe


def test_the_smarttrace_secret_works(sandbox: Sandbox, ids: StandardIds) -> None:
    secret = smarttrace_secret(sandbox, ids)
    assert probe(sandbox, ids.tenant_id, ids.smarttrace_app_id, secret) == SecretProbe(ProbeOutcome.WORKS)
    assert sandbox.world.count_requests("login", "POST", "/oauth2/v2.0/token") == 1


def test_a_wrong_secret_is_rejected(sandbox: Sandbox, ids: StandardIds) -> None:
    result = probe(sandbox, ids.tenant_id, ids.smarttrace_app_id, "Abc8Q~not-the-secret-value")
    assert result.outcome is ProbeOutcome.REJECTED
    assert result.code == "AADSTS7000215"
    assert result.detail.startswith("AADSTS7000215: Invalid client secret provided.")
    assert_secret_not_in(result, "Abc8Q~not-the-secret-value")


def test_an_expired_secret_is_rejected(sandbox: Sandbox, ids: StandardIds) -> None:
    secret = smarttrace_secret(sandbox, ids)
    sandbox.world.clock.advance(days=66)  # the standard SmartTrace secret ends in 65 days
    result = probe(sandbox, ids.tenant_id, ids.smarttrace_app_id, secret)
    assert (result.outcome, result.code) == (ProbeOutcome.REJECTED, "AADSTS7000222")
    assert_secret_not_in(result, secret)


def test_a_fresh_secret_is_rejected_until_it_has_propagated(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    with world.lock:
        world.tenant(ids.tenant_id).propagation_delay = timedelta(seconds=30)
        fresh = world.add_password(world.find_app(ids.smarttrace_app_id), display_name="rotated")
    prober = EntraTokenProbe(config_for(sandbox), retry_backoff_factor=0.01)

    async def run() -> tuple[SecretProbe, SecretProbe]:
        before = await prober.probe(ids.tenant_id, ids.smarttrace_app_id, SecretValue(fresh.secret_text))
        world.clock.advance(seconds=31)
        return before, await prober.probe(ids.tenant_id, ids.smarttrace_app_id, SecretValue(fresh.secret_text))

    before, after = asyncio.run(run())
    assert (before.outcome, before.code) == (ProbeOutcome.REJECTED, "AADSTS7000215")
    # the same probe object asks Entra again: nothing was remembered from the refusal
    assert after == SecretProbe(ProbeOutcome.WORKS)
    assert world.count_requests("login", "POST", "/oauth2/v2.0/token") == 2


def test_a_working_secret_removed_since_is_rejected_not_remembered(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    secret = smarttrace_secret(sandbox, ids)
    prober = EntraTokenProbe(config_for(sandbox))

    async def run() -> tuple[SecretProbe, SecretProbe]:
        first = await prober.probe(ids.tenant_id, ids.smarttrace_app_id, SecretValue(secret))
        with world.lock:
            world.find_app(ids.smarttrace_app_id).password_credentials.clear()
        return first, await prober.probe(ids.tenant_id, ids.smarttrace_app_id, SecretValue(secret))

    first, second = asyncio.run(run())
    assert first.outcome is ProbeOutcome.WORKS
    assert (second.outcome, second.code) == (ProbeOutcome.REJECTED, "AADSTS7000215")  # no cached token answered


@pytest.mark.parametrize("fault", [{"fault": "status", "status": 503}, {"fault": "drop"}])
def test_entra_down_is_a_probe_error(sandbox: Sandbox, ids: StandardIds, fault: dict[str, Any]) -> None:
    sandbox.faults.add(service="login", **fault)
    secret = smarttrace_secret(sandbox, ids)
    started = time.monotonic()
    result = probe(sandbox, ids.tenant_id, ids.smarttrace_app_id, secret, retry_total=1)
    assert time.monotonic() - started < 10
    assert result.outcome is ProbeOutcome.ERROR
    assert result.code is None
    assert result.detail
    assert_secret_not_in(result, secret)


def test_an_unknown_tenant_is_a_probe_error_not_a_rejection(sandbox: Sandbox, ids: StandardIds) -> None:
    secret = smarttrace_secret(sandbox, ids)
    result = probe(sandbox, "00000000-0000-4000-8000-00000000dead", ids.smarttrace_app_id, secret)
    # MSAL fails at the tenant's OIDC discovery (Entra answers AADSTS90002 there) before
    # the token request; either way the secret was not tested.
    assert result.outcome is ProbeOutcome.ERROR
    assert "Unable to get authority configuration" in result.detail


def test_an_unknown_app_is_refused_not_a_secret_problem(sandbox: Sandbox, ids: StandardIds) -> None:
    result = probe(sandbox, ids.tenant_id, "00000000-0000-4000-8000-0000000000ff", smarttrace_secret(sandbox, ids))
    assert (result.outcome, result.code) == (ProbeOutcome.REFUSED, "AADSTS700016")


def test_an_empty_secret_is_rejected_without_asking_entra(sandbox: Sandbox, ids: StandardIds) -> None:
    result = probe(sandbox, ids.tenant_id, ids.smarttrace_app_id, "")
    assert result == SecretProbe(ProbeOutcome.REJECTED, detail="the secret is empty")
    assert sandbox.world.count_requests("login") == 0


def test_a_secret_that_appears_in_entras_answer_is_scrubbed(sandbox: Sandbox, ids: StandardIds) -> None:
    # The app id pasted where the secret value belongs (a common mistake): Entra's
    # message names the app, so the "secret" is in the text and must be masked.
    result = probe(sandbox, ids.tenant_id, ids.smarttrace_app_id, ids.smarttrace_app_id)
    assert (result.outcome, result.code) == (ProbeOutcome.REJECTED, "AADSTS7000215")
    assert ids.smarttrace_app_id not in result.detail
    assert "app '***'" in result.detail


@pytest.mark.parametrize(
    "message, outcome, code",
    [
        ("Authentication failed: AADSTS7000215: Invalid client secret provided.", ProbeOutcome.REJECTED, "AADSTS7000215"),  # wrong, or not yet propagated
        ("Authentication failed: AADSTS7000222: The provided client secret keys for app 'x' are expired.", ProbeOutcome.REJECTED, "AADSTS7000222"),
        # Refusals that are not about the secret: a new secret would be refused the same way.
        ("Authentication failed: AADSTS7000112: Application 'x' is disabled.", ProbeOutcome.REFUSED, "AADSTS7000112"),
        ("Authentication failed: AADSTS7000229: The client application x is missing service principal", ProbeOutcome.REFUSED, "AADSTS7000229"),
        ("Authentication failed: AADSTS53003: Access has been blocked by Conditional Access policies.", ProbeOutcome.REFUSED, "AADSTS53003"),
        ("Authentication failed: AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.", ProbeOutcome.REFUSED, "AADSTS700016"),
        ("Authentication failed: AADSTS9999999: Something new.", ProbeOutcome.REFUSED, "AADSTS9999999"),  # unknown to us: never a reason to rotate
        ("Authentication failed: AADSTS90002: Tenant 'x' not found.", ProbeOutcome.ERROR, "AADSTS90002"),  # our tenant id or cloud
        ("Authentication failed: AADSTS500011: The resource principal named x was not found", ProbeOutcome.ERROR, "AADSTS500011"),  # our scope
        ("Authentication failed: AADSTS90033: A transient error has occurred.", ProbeOutcome.ERROR, "AADSTS90033"),
        ("Authentication failed: HTTP Error: 503", ProbeOutcome.ERROR, None),  # Entra down
        ("Authentication failed: HTTP Error: 500 AADSTS7000215", ProbeOutcome.ERROR, "AADSTS7000215"),  # a 5xx is never a verdict
        ("Authentication failed: ('Connection aborted.', RemoteDisconnected('Remote end closed connection'))", ProbeOutcome.ERROR, None),
    ],
)
def test_auth_errors_classify(message: str, outcome: ProbeOutcome, code: str | None) -> None:
    result = classify_auth_error(message)
    assert (result.outcome, result.code) == (outcome, code)
    assert not result.detail.startswith("Authentication failed")


@pytest.mark.parametrize(
    "text, secret, expected",
    [
        ("rejected abc8Q~xyz twice: abc8Q~xyz", SecretValue("abc8Q~xyz"), "rejected *** twice: ***"),
        ("nothing to hide", SecretValue("abc8Q~xyz"), "nothing to hide"),
        ("an empty secret masks nothing", SecretValue(""), "an empty secret masks nothing"),
        ("plain strings too: s3cr3t", "s3cr3t", "plain strings too: ***"),
        ("no secret given", None, "no secret given"),
    ],
)
def test_scrub(text: str, secret: SecretValue | str | None, expected: str) -> None:
    assert scrub(text, secret) == expected


# ---------------------------------------------------------------- URL probe


def test_facility_page_and_logout_callback_answer(sandbox: Sandbox) -> None:
    page, logout = check(config_for(sandbox), ACME, LOGOUT)
    assert page == UrlCheck(ACME, Reachability.OK, status=200)
    assert logout == UrlCheck(LOGOUT, Reachability.OK, status=200)


@pytest.mark.parametrize("url", [LOGOUT, ACME])  # an empty answer, and a page with a body to read
def test_checks_on_one_host_share_a_connection(sandbox: Sandbox, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The logout callbacks of every facility live on SmartTrace's API host: one TLS
    connection serves them, not a handshake each. A page with a body keeps its
    connection only if the body is read to the end (a streamed answer closed unread
    drops the socket, and the pool's next request connects again)."""
    handshakes = []
    connect = urllib3.connection.HTTPSConnection.connect

    def counted(self: urllib3.connection.HTTPSConnection) -> None:  # counts, then connects as ever
        handshakes.append(self.host)
        connect(self)

    monkeypatch.setattr(urllib3.connection.HTTPSConnection, "connect", counted)

    async def run() -> None:
        prober = UrlProbe(config_for(sandbox))
        try:
            for _ in range(3):  # one after another: one connection is enough
                assert (await prober.check(url)).outcome == Reachability.OK
        finally:
            await prober.aclose()

    asyncio.run(run())
    assert len(handshakes) == 1


def test_redirects_are_followed_over_https(sandbox: Sandbox) -> None:
    url = "https://api.smarttrace.ai/v1/auth/callback/azure/acme?code=abc"  # 302 to the facility page
    (result,) = check(config_for(sandbox), url)
    assert result == UrlCheck(url, Reachability.OK, status=200, detail=f"after redirects, at {ACME}/")


def test_unknown_facility_and_offline_facility_are_http_errors(sandbox: Sandbox) -> None:
    sandbox.world.facility("acme").online = False
    unknown, offline = check(config_for(sandbox), "https://nowhere.smarttrace.ai", ACME)
    assert (unknown.outcome, unknown.status) == (Reachability.HTTP_ERROR, 404)
    assert (offline.outcome, offline.status) == (Reachability.HTTP_ERROR, 503)


def test_a_certificate_from_an_untrusted_ca_is_a_tls_error(sandbox: Sandbox) -> None:
    (result,) = check(config_for(sandbox, caBundle=certifi.where()), ACME)
    assert result.outcome is Reachability.TLS_ERROR
    assert result.status is None
    assert result.detail.startswith("certificate verify failed")


def test_a_closed_port_is_unreachable(sandbox: Sandbox) -> None:
    (result,) = check(config_for(sandbox), "https://127.0.0.1:1/")
    assert result.outcome is Reachability.UNREACHABLE
    assert result.detail


def test_no_answer_in_time_is_unreachable(sandbox: Sandbox) -> None:
    sandbox.faults.add("timeout", service="smarttrace", seconds=3)
    started = time.monotonic()
    (result,) = check(config_for(sandbox, timeoutSeconds=1), ACME)
    assert time.monotonic() - started < 2.5
    assert result == UrlCheck(ACME, Reachability.UNREACHABLE, detail="no answer within 1 s")


def test_checks_share_one_session_concurrently(sandbox: Sandbox) -> None:
    sandbox.faults.add("latency", service="smarttrace", latency_ms=300)
    started = time.monotonic()
    results = check(config_for(sandbox), *[ACME] * 4, LOGOUT)
    assert time.monotonic() - started < 1.2
    assert all(result.outcome is Reachability.OK for result in results)


@pytest.mark.parametrize("status", [302, 307, 308])
def test_the_probe_never_follows_a_redirect_with_the_secret(sandbox: Sandbox, ids: StandardIds, status: int) -> None:
    # A 307/308 would have the HTTP client re-post the body, client_secret included, to
    # wherever Location points: the probe answers the redirect as it is, and nothing
    # reaches the other host.
    elsewhere = f"{sandbox.endpoints.smarttrace}/steal-the-secret"
    sandbox.faults.add("status", service="login", method="POST", path="*/token", status=status, code="moved", location=elsewhere)
    result = probe(sandbox, ids.tenant_id, ids.smarttrace_app_id, smarttrace_secret(sandbox, ids))
    assert result.outcome is ProbeOutcome.ERROR
    assert sandbox.world.count_requests(path_contains="steal-the-secret") == 0
