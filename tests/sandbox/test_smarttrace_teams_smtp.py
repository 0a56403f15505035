"""SmartTrace, the Teams Workflows webhook and SMTP, over real TLS against the running sandbox;
plus unit tests of sso_monitor.adapters.http (host-mapped requests sessions)."""

from __future__ import annotations

import json
import smtplib
import ssl
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_string, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sso_monitor.adapters.http import HostMap, HostMapAdapter, session_with_host_map
from sso_sandbox.smarttrace import SmartTraceService
from sso_sandbox.teams import MAX_PAYLOAD_BYTES, TeamsService

TOKEN = "stk_5Qw9Lm2Xr8Tz4Vb7Nc1Hd6Jf3Kp0Gs"
THROTTLE_TEXT = "Microsoft Teams endpoint returned HTTP error 429"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def http(sandbox: Any) -> requests.Session:
    """A session that resolves *.smarttrace.ai to the sandbox and trusts its CA."""
    return session_with_host_map(sandbox.endpoints.host_map, str(sandbox.endpoints.ca_path))


def secret_url(facility: str = "acme", host: str = "api.smarttrace.ai") -> str:
    return f"https://{host}/v1/integrations/{facility}/azure-ad/client-secret"


def new_credential(sandbox: Any, ids: Any) -> Any:
    world = sandbox.world
    with world.lock:
        app = world.find_app(ids.smarttrace_app_id)
        return world.add_password(app, display_name="rotated", end=world.now() + timedelta(days=180))


def push_body(ids: Any, credential: Any, **overrides: Any) -> dict[str, Any]:
    body = {
        "clientSecret": credential.secret_text,
        "keyId": credential.key_id,
        "applicationId": ids.smarttrace_app_id,
        "tenantId": ids.tenant_id,
        "expiresAt": credential.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def push(http: requests.Session, body: Any, token: str | None = TOKEN, facility: str = "acme") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.put(secret_url(facility), json=body, headers=headers, timeout=10)


def card(text: str = "Secret rotated for acme") -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.5",
                    "body": [{"type": "TextBlock", "text": text, "wrap": True}],
                },
            }
        ],
    }


def teams(sandbox: Any) -> TeamsService:
    service = sandbox.services["teams"]
    assert isinstance(service, TeamsService)
    return service


# ---------------------------------------------------------------- facility pages


def test_facility_page_over_verified_tls(sandbox: Any, http: requests.Session) -> None:
    response = http.get("https://acme.smarttrace.ai/", timeout=10)
    assert response.status_code == 200
    assert response.url == "https://acme.smarttrace.ai/"
    assert "text/html" in response.headers["Content-Type"]
    assert "Sign in with Microsoft" in response.text and "acme" in response.text
    app_id = sandbox.world.facility("acme").app_id
    assert f"client_id={app_id}" in response.text
    assert "redirect_uri=https%3A%2F%2Fapi.smarttrace.ai%2Fv1%2Fauth%2Fcallback%2Fazure%2Facme" in response.text


def test_facility_page_without_the_sandbox_ca_fails_verification(sandbox: Any) -> None:
    untrusting = session_with_host_map(sandbox.endpoints.host_map, None)
    with pytest.raises(requests.exceptions.SSLError):
        untrusting.get("https://acme.smarttrace.ai/", timeout=10)


def test_facility_page_unknown_offline_and_other_paths(sandbox: Any, http: requests.Session) -> None:
    assert http.get("https://nosuchplant.smarttrace.ai/", timeout=10).status_code == 404
    assert http.get("https://acme.smarttrace.ai/admin", timeout=10).status_code == 404
    assert http.get("https://acme.staging.smarttrace.ai/", timeout=10).status_code == 404  # acme is production
    with sandbox.world.lock:
        sandbox.world.facility("acme").online = False
    offline = http.get("https://acme.smarttrace.ai/", timeout=10)
    assert offline.status_code == 503
    assert "Sign in with Microsoft" not in offline.text


def test_staging_facility_is_served_on_staging_hosts_only(sandbox: Any, http: requests.Session, ids: Any) -> None:
    with sandbox.world.lock:
        sandbox.world.add_facility("beta", ids.tenant_id, ids.smarttrace_app_id, api_base="https://api.staging.smarttrace.ai/v1")
    page = http.get("https://beta.staging.smarttrace.ai/", timeout=10)
    assert page.status_code == 200
    assert "redirect_uri=https%3A%2F%2Fapi.staging.smarttrace.ai" in page.text
    assert http.get("https://beta.smarttrace.ai/", timeout=10).status_code == 404
    assert http.get("https://api.staging.smarttrace.ai/v1/auth/callback/azure-logout/beta", timeout=10).status_code == 200
    assert http.get("https://api.smarttrace.ai/v1/auth/callback/azure-logout/beta", timeout=10).status_code == 404


def test_unknown_host_is_404(sandbox: Any, http: requests.Session) -> None:
    response = http.get(sandbox.endpoints.smarttrace + "/", headers={"Host": "example.com"}, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_host"


def test_logout_callback(sandbox: Any, http: requests.Session) -> None:
    base = "https://api.smarttrace.ai/v1/auth/callback/azure-logout"
    ok = http.get(f"{base}/acme?sid=abc&iss=https%3A%2F%2Flogin.microsoftonline.com", timeout=10)
    assert ok.status_code == 200 and "signed out" in ok.text.lower()
    assert http.head(f"{base}/acme", timeout=10).status_code == 200
    assert http.get(f"{base}/nosuchplant", timeout=10).status_code == 404
    with sandbox.world.lock:
        sandbox.world.facility("acme").logout_callback_online = False
    assert http.get(f"{base}/acme", timeout=10).status_code == 503


def test_redirect_uri_exists_and_wants_a_code(sandbox: Any, http: requests.Session) -> None:
    base = "https://api.smarttrace.ai/v1/auth/callback/azure"
    missing = http.get(f"{base}/acme", timeout=10)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_code"
    assert http.get(f"{base}/nosuchplant", timeout=10).status_code == 404
    denied = http.get(f"{base}/acme?error=access_denied&error_description=AADSTS50105", timeout=10)
    assert denied.status_code == 400 and denied.json()["error"]["code"] == "authorization_failed"
    signed_in = http.get(f"{base}/acme?code=0.AXYZ&state=s", allow_redirects=False, timeout=10)
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "https://acme.smarttrace.ai/"


def test_api_answers_on_loopback_too(sandbox: Any, http: requests.Session) -> None:
    response = http.get(
        f"{sandbox.endpoints.smarttrace}/v1/integrations/acme/azure-ad/client-secret",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert http.get(f"{sandbox.endpoints.smarttrace}/v1/nothing-here", timeout=10).json()["error"]["code"] == "not_found"


# ---------------------------------------------------------------- the client-secret push


def test_push_success_updates_the_facility_and_is_idempotent(sandbox: Any, http: requests.Session, ids: Any) -> None:
    world = sandbox.world
    credential = new_credential(sandbox, ids)
    bodies: list[str] = []

    first = push(http, push_body(ids, credential))
    bodies.append(first.text)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["facility"] == "acme" and answer["keyId"] == credential.key_id and answer["status"] == "active"
    assert answer["updatedAt"].endswith("Z")
    facility = world.facility("acme")
    assert facility.client_secret == credential.secret_text
    assert facility.key_id == credential.key_id
    assert facility.updated is not None
    assert world.sign_in_works("acme")

    again = push(http, push_body(ids, credential))
    bodies.append(again.text)
    assert again.status_code == 200 and again.json() == answer

    settings = http.get(secret_url(), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    bodies.append(settings.text)
    assert settings.status_code == 200
    assert settings.json() == {
        "facility": "acme",
        "keyId": credential.key_id,
        "updatedAt": answer["updatedAt"],
        "applicationId": ids.smarttrace_app_id,
        "tenantId": ids.tenant_id,
        "status": "active",
    }

    assert [(r.status, r.reason, r.key_id) for r in facility.received] == [
        (200, "accepted", credential.key_id),
        (200, "unchanged", credential.key_id),
    ]
    assert credential.secret_text not in repr(facility.received)
    assert all(credential.secret_text not in body for body in bodies)


def test_push_rejects_bad_tokens(sandbox: Any, http: requests.Session, ids: Any) -> None:
    with sandbox.world.lock:
        sandbox.world.add_facility("other", ids.tenant_id, ids.smarttrace_app_id, api_tokens={"other-token"})
    credential = new_credential(sandbox, ids)
    before = sandbox.world.facility("acme").client_secret

    missing = push(http, push_body(ids, credential), token=None)
    assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
    wrong = push(http, push_body(ids, credential), token="not-a-token")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_token"
    foreign = push(http, push_body(ids, credential), token="other-token")
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "forbidden"
    unknown = push(http, push_body(ids, credential), facility="nosuchplant")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "facility_not_found"
    assert http.get(secret_url(), timeout=10).status_code == 401

    facility = sandbox.world.facility("acme")
    assert facility.client_secret == before
    assert [(r.status, r.reason) for r in facility.received] == [(401, "missing_token"), (401, "invalid_token"), (403, "forbidden")]
    for response in (missing, wrong, foreign, unknown):
        assert credential.secret_text not in response.text


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("applicationId", str(uuid.uuid4()), "application_mismatch"),
        ("tenantId", str(uuid.uuid4()), "tenant_mismatch"),
    ],
)
def test_push_rejects_another_application_or_tenant(sandbox: Any, http: requests.Session, ids: Any, field: str, value: str, code: str) -> None:
    credential = new_credential(sandbox, ids)
    response = push(http, push_body(ids, credential, **{field: value}))
    assert response.status_code == 409
    assert response.json()["error"] == {"code": code, "message": response.json()["error"]["message"], "target": field}
    assert sandbox.world.facility("acme").client_secret != credential.secret_text
    assert credential.secret_text not in response.text


def test_push_of_a_secret_that_does_not_work_yet_is_rejected(sandbox: Any, http: requests.Session, ids: Any) -> None:
    world = sandbox.world
    with world.lock:
        world.tenant(ids.tenant_id).propagation_delay = timedelta(seconds=60)
    credential = new_credential(sandbox, ids)
    facility = world.facility("acme")
    before = (facility.client_secret, facility.key_id, facility.updated)

    rejected = push(http, push_body(ids, credential))
    assert rejected.status_code == 422
    error = rejected.json()["error"]
    assert error["code"] == "secret_rejected" and error["reason"] == "AADSTS7000215"
    assert "AADSTS7000215" in error["message"]
    assert credential.secret_text not in rejected.text
    assert (facility.client_secret, facility.key_id, facility.updated) == before
    assert world.sign_in_works("acme")  # the old secret still serves sign-in

    world.clock.advance(seconds=61)
    accepted = push(http, push_body(ids, credential))
    assert accepted.status_code == 200
    assert facility.client_secret == credential.secret_text
    assert [(r.status, r.reason) for r in facility.received] == [(422, "secret_rejected:AADSTS7000215"), (200, "accepted")]
    assert credential.secret_text not in repr(facility.received)


def test_push_of_a_random_string_is_rejected(sandbox: Any, http: requests.Session, ids: Any) -> None:
    credential = new_credential(sandbox, ids)
    bogus = "abc8Q~" + "x" * 34
    response = push(http, push_body(ids, credential, clientSecret=bogus))
    assert response.status_code == 422 and response.json()["error"]["code"] == "secret_rejected"
    assert bogus not in response.text and bogus not in repr(sandbox.world.facility("acme").received)
    assert sandbox.world.facility("acme").client_secret != bogus


def test_push_without_verification_accepts_and_tracks_the_value(sandbox: Any, http: requests.Session, ids: Any) -> None:
    with sandbox.world.lock:
        sandbox.world.facility("acme").verify_on_push = False
    credential = new_credential(sandbox, ids)
    bogus = "zzz8Q~" + "y" * 34
    response = push(http, push_body(ids, credential, clientSecret=bogus))
    assert response.status_code == 200
    assert sandbox.world.facility("acme").client_secret == bogus
    assert not sandbox.world.sign_in_works("acme")
    assert bogus in sandbox.world.issued_secrets  # leak checks will look for it


@pytest.mark.parametrize("field", ["clientSecret", "keyId", "applicationId", "tenantId", "expiresAt"])
def test_push_with_a_missing_field_names_it(sandbox: Any, http: requests.Session, ids: Any, field: str) -> None:
    credential = new_credential(sandbox, ids)
    response = push(http, push_body(ids, credential, **{field: ...}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "missing_field" and error["target"] == field and field in error["message"]
    assert credential.secret_text not in response.text
    assert sandbox.world.facility("acme").received[-1].status == 400


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clientSecret", 12345),
        ("clientSecret", ""),
        ("keyId", "not-a-guid"),
        ("applicationId", ["x"]),
        ("tenantId", "contoso.onmicrosoft.com"),
        ("expiresAt", "next tuesday"),
        ("expiresAt", "2001-01-01T00:00:00Z"),
    ],
)
def test_push_with_a_bad_field_names_it(sandbox: Any, http: requests.Session, ids: Any, field: str, value: Any) -> None:
    credential = new_credential(sandbox, ids)
    response = push(http, push_body(ids, credential, **{field: value}))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_field" and error["target"] == field and field in error["message"]
    assert credential.secret_text not in response.text


def test_push_with_a_trailing_newline_in_the_secret_is_refused(sandbox: Any, http: requests.Session, ids: Any) -> None:
    credential = new_credential(sandbox, ids)
    response = push(http, push_body(ids, credential, clientSecret=credential.secret_text + "\n"))
    assert response.status_code == 422 and response.json()["error"]["target"] == "clientSecret"
    assert credential.secret_text not in response.text


def test_push_body_shape_errors(sandbox: Any, http: requests.Session, ids: Any) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    not_json = http.put(secret_url(), data=b"{not json", headers=headers, timeout=10)
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    array = http.put(secret_url(), data=b"[]", headers=headers, timeout=10)
    assert array.status_code == 400 and array.json()["error"]["code"] == "invalid_body"
    form = http.put(secret_url(), data={"clientSecret": "x"}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert form.status_code == 415
    assert http.delete(secret_url(), headers=headers, timeout=10).status_code == 405


def test_push_with_a_known_key_id_but_another_secret_conflicts(sandbox: Any, http: requests.Session, ids: Any) -> None:
    credential = new_credential(sandbox, ids)
    assert push(http, push_body(ids, credential)).status_code == 200
    other = new_credential(sandbox, ids)
    response = push(http, push_body(ids, credential, clientSecret=other.secret_text))
    assert response.status_code == 409 and response.json()["error"]["code"] == "key_id_conflict"
    assert sandbox.world.facility("acme").client_secret == credential.secret_text
    assert other.secret_text not in response.text


# ---------------------------------------------------------------- Teams


def test_teams_ok_accepts_and_records(sandbox: Any, http: requests.Session) -> None:
    payload = card()
    response = http.post(sandbox.endpoints.webhook_url("ops"), json=payload, timeout=10)
    assert response.status_code == 202
    assert response.content == b""
    assert sandbox.world.webhooks["ops"].received == [payload]


def test_teams_power_automate_url_shape(sandbox: Any, http: requests.Session) -> None:
    url = f"{sandbox.endpoints.teams}/powerautomate/automations/direct/workflows/ops/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=abc"
    assert http.post(url, json=card(), timeout=10).status_code == 202


def test_teams_throttled_mode_answers_200_with_429_text(sandbox: Any, http: requests.Session) -> None:
    hook = sandbox.world.webhooks["ops"]
    hook.mode = "throttled"
    response = http.post(sandbox.endpoints.webhook_url("ops"), json=card(), timeout=10)
    assert response.status_code == 200
    assert THROTTLE_TEXT in response.text
    assert hook.received == []
    assert teams(sandbox).undelivered[-1]["reason"] == "throttled"


def test_teams_error_mode_is_500(sandbox: Any, http: requests.Session) -> None:
    hook = sandbox.world.webhooks["ops"]
    hook.mode = "error"
    assert http.post(sandbox.endpoints.webhook_url("ops"), json=card(), timeout=10).status_code == 500
    assert hook.received == []


def test_teams_rate_limit_real_time(sandbox: Any, http: requests.Session) -> None:
    url = sandbox.endpoints.webhook_url("ops")
    answers = [http.post(url, json=card(f"alert {n}"), timeout=10) for n in range(5)]
    assert [a.status_code for a in answers[:4]] == [202, 202, 202, 202]
    assert answers[4].status_code == 200 and THROTTLE_TEXT in answers[4].text
    assert len(sandbox.world.webhooks["ops"].received) == 4
    assert teams(sandbox).undelivered[-1]["reason"] == "rate_limited"


def test_teams_rate_limit_window_resets(sandbox: Any, http: requests.Session) -> None:
    service = teams(sandbox)
    now = [1000.0]
    service.monotonic = lambda: now[0]
    url = sandbox.endpoints.webhook_url("ops")
    statuses = [http.post(url, json=card(), timeout=10).status_code for _ in range(5)]
    assert statuses == [202, 202, 202, 202, 200]
    now[0] += 0.99
    assert http.post(url, json=card(), timeout=10).status_code == 200
    now[0] += 0.02
    assert http.post(url, json=card(), timeout=10).status_code == 202
    # per webhook: another webhook has its own window
    sandbox.world.add_webhook("dev")
    assert http.post(sandbox.endpoints.webhook_url("dev"), json=card(), timeout=10).status_code == 202


def test_teams_rate_limit_can_be_disabled(sandbox: Any, http: requests.Session) -> None:
    service = teams(sandbox)
    service.rate_limits = None
    url = sandbox.endpoints.webhook_url("ops")
    assert [http.post(url, json=card(), timeout=10).status_code for _ in range(6)] == [202] * 6
    service.rate_limit_per_second = 2
    service.reset_rate_limits()
    assert [http.post(url, json=card(), timeout=10).status_code for _ in range(3)] == [202, 202, 200]


def test_teams_unknown_webhook_is_404(sandbox: Any, http: requests.Session) -> None:
    response = http.post(sandbox.endpoints.webhook_url("nope"), json=card(), timeout=10)
    assert response.status_code == 404


def test_teams_needs_sig_and_api_version(sandbox: Any, http: requests.Session) -> None:
    base = f"{sandbox.endpoints.teams}/workflows/ops/triggers/manual/paths/invoke"
    assert http.post(f"{base}?api-version=2016-06-01", json=card(), timeout=10).status_code == 401
    assert http.post(f"{base}?sig=x", json=card(), timeout=10).status_code == 400
    assert sandbox.world.webhooks["ops"].received == []


def _broken_envelopes() -> list[Any]:
    good = card()
    wrong_type = dict(good, type="card")
    no_attachments = {"type": "message", "attachments": []}
    wrong_content_type = json.loads(json.dumps(good))
    wrong_content_type["attachments"][0]["contentType"] = "application/vnd.microsoft.card.hero"
    not_a_card = json.loads(json.dumps(good))
    not_a_card["attachments"][0]["content"] = {"type": "TextBlock", "version": "1.5"}
    no_version = json.loads(json.dumps(good))
    del no_version["attachments"][0]["content"]["version"]
    return [[], "message", wrong_type, no_attachments, wrong_content_type, not_a_card, no_version]


@pytest.mark.parametrize("payload", _broken_envelopes())
def test_teams_malformed_envelope_is_400(sandbox: Any, http: requests.Session, payload: Any) -> None:
    response = http.post(sandbox.endpoints.webhook_url("ops"), json=payload, timeout=10)
    assert response.status_code == 400
    assert sandbox.world.webhooks["ops"].received == []


def test_teams_bad_json_is_400(sandbox: Any, http: requests.Session) -> None:
    response = http.post(sandbox.endpoints.webhook_url("ops"), data=b'{"type": "message",', headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"


def test_teams_oversized_payload_is_413(sandbox: Any, http: requests.Session) -> None:
    payload = card("x" * (MAX_PAYLOAD_BYTES + 1))
    response = http.post(sandbox.endpoints.webhook_url("ops"), json=payload, timeout=10)
    assert response.status_code == 413
    assert "returned HTTP error 413" in response.text
    assert sandbox.world.webhooks["ops"].received == []
    just_fits = card("x" * (MAX_PAYLOAD_BYTES - 600))
    assert len(json.dumps(just_fits)) <= MAX_PAYLOAD_BYTES
    assert http.post(sandbox.endpoints.webhook_url("ops"), json=just_fits, timeout=10).status_code == 202


def test_teams_wants_json_content_type(sandbox: Any, http: requests.Session) -> None:
    response = http.post(sandbox.endpoints.webhook_url("ops"), data=json.dumps(card()), headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 415


# ---------------------------------------------------------------- SMTP

SMTP_LOGIN = "alerts@contoso.example"
SMTP_PASSWORD = "correct horse battery staple"


@pytest.fixture
def smtp_user(sandbox: Any) -> None:
    with sandbox.world.lock:
        sandbox.world.smtp_users[SMTP_LOGIN] = SMTP_PASSWORD


def client_context(sandbox: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sandbox.endpoints.ca_path))


def alert_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = SMTP_LOGIN
    message["To"] = "ops@contoso.example, security@contoso.example"
    message["Subject"] = "SmartTrace SSO: secret for acme expires in 14 days"
    message.set_content("The client secret for acme expires soon.")
    message.add_alternative("<p>The client secret for <b>acme</b> expires soon.</p>", subtype="html")
    return message


def test_smtp_starttls_login_and_capture(sandbox: Any, smtp_user: None) -> None:
    with smtplib.SMTP(sandbox.endpoints.smtp_host, sandbox.endpoints.smtp_port, timeout=10) as client:
        client.starttls(context=client_context(sandbox))
        client.login(SMTP_LOGIN, SMTP_PASSWORD)
        refused = client.send_message(alert_mail())
    assert refused == {}
    mail = [m for m in sandbox.world.mail if m.via == "smtp"]
    assert len(mail) == 1
    sent = mail[0]
    assert sent.subject == "SmartTrace SSO: secret for acme expires in 14 days"
    assert sent.sender == SMTP_LOGIN
    assert sent.recipients == ["ops@contoso.example", "security@contoso.example"]
    parsed = message_from_string(sent.body, policy=policy.default)
    assert parsed.get_body(("plain",)).get_content().strip() == "The client secret for acme expires soon."
    assert "<b>acme</b>" in parsed.get_body(("html",)).get_content()
    assert SMTP_PASSWORD not in repr(sandbox.world.mail)


def test_smtp_auth_before_starttls_is_refused(sandbox: Any, smtp_user: None) -> None:
    with smtplib.SMTP(sandbox.endpoints.smtp_host, sandbox.endpoints.smtp_port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")  # AUTH is only offered after STARTTLS
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.login(SMTP_LOGIN, SMTP_PASSWORD)
        code, _ = client.docmd("AUTH", "PLAIN AGFsZXJ0c0Bjb250b3NvLmV4YW1wbGUAeA==")
        assert code == 530
        code, _ = client.docmd("MAIL", f"FROM:<{SMTP_LOGIN}>")
        assert code == 530
    assert sandbox.world.mail == []


def test_smtp_wrong_password_is_535(sandbox: Any, smtp_user: None) -> None:
    with smtplib.SMTP(sandbox.endpoints.smtp_host, sandbox.endpoints.smtp_port, timeout=10) as client:
        client.starttls(context=client_context(sandbox))
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.login(SMTP_LOGIN, "wrong")
        assert failure.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # no mail without AUTH when users exist
            client.send_message(alert_mail())
        assert refused.value.smtp_code == 530
    assert sandbox.world.mail == []


def test_smtp_without_users_needs_no_auth(sandbox: Any) -> None:
    assert sandbox.world.smtp_users == {}
    with smtplib.SMTP(sandbox.endpoints.smtp_host, sandbox.endpoints.smtp_port, timeout=10) as client:
        client.starttls(context=client_context(sandbox))
        client.send_message(alert_mail())
    assert len(sandbox.world.mail) == 1


def test_smtp_server_certificate_is_the_sandbox_one(sandbox: Any) -> None:
    with smtplib.SMTP(sandbox.endpoints.smtp_host, sandbox.endpoints.smtp_port, timeout=10) as client:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())


# ---------------------------------------------------------------- sso_monitor.adapters.http


def test_host_map_matching() -> None:
    mapping = HostMap(
        {
            "*.smarttrace.ai": "127.0.0.1:1001",
            "*.staging.smarttrace.ai": "127.0.0.1:1002",
            "api.smarttrace.ai": "127.0.0.1:1003",
            "smarttrace.ai": "10.0.0.1",
            "v6.example": "[::1]:1004",
        }
    )
    assert mapping.resolve("acme.smarttrace.ai") == ("127.0.0.1", 1001)
    assert mapping.resolve("ACME.SmartTrace.AI.") == ("127.0.0.1", 1001)
    assert mapping.resolve("a.b.smarttrace.ai") == ("127.0.0.1", 1001)  # any depth
    assert mapping.resolve("acme.staging.smarttrace.ai") == ("127.0.0.1", 1002)  # longer wildcard wins
    assert mapping.resolve("api.smarttrace.ai") == ("127.0.0.1", 1003)  # exact beats wildcard
    assert mapping.resolve("smarttrace.ai") == ("10.0.0.1", None)  # the wildcard does not cover the apex
    assert mapping.resolve("v6.example") == ("::1", 1004)
    for unmapped in ("notsmarttrace.ai", "smarttrace.ai.evil.example", "graph.microsoft.com", "", None):
        assert mapping.resolve(unmapped) is None
    assert not HostMap({})
    with pytest.raises(ValueError):
        HostMap({"api.*.example": "127.0.0.1:1"})


def test_adapter_pool_key_keeps_the_original_name() -> None:
    adapter = HostMapAdapter({"*.smarttrace.ai": "127.0.0.1:4443"})
    mapped = requests.Request("GET", "https://acme.smarttrace.ai/x").prepare()
    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(mapped, "/tmp/ca.pem")
    assert host_params == {"scheme": "https", "host": "127.0.0.1", "port": 4443}
    assert pool_kwargs["server_hostname"] == "acme.smarttrace.ai"
    assert pool_kwargs["assert_hostname"] == "acme.smarttrace.ai"
    assert pool_kwargs["ca_certs"] == "/tmp/ca.pem"
    plain = requests.Request("GET", "https://graph.microsoft.com/v1.0").prepare()
    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(plain, True)
    assert host_params["host"] == "graph.microsoft.com"
    assert "server_hostname" not in pool_kwargs and "assert_hostname" not in pool_kwargs


def test_empty_map_is_a_plain_session() -> None:
    session = session_with_host_map({}, None)
    assert not any(isinstance(adapter, HostMapAdapter) for adapter in session.adapters.values())


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/echo")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"host": self.headers.get("Host"), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_mapped_requests_keep_the_host_header(echo_port: int) -> None:
    session = session_with_host_map({"*.example.test": f"127.0.0.1:{echo_port}"}, None)
    session.proxies = {"http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9"}  # a mapped name never uses a proxy
    answer = session.get("http://svc.example.test/hello?x=1", timeout=5)
    assert answer.json() == {"host": "svc.example.test", "path": "/hello?x=1"}
    assert answer.url == "http://svc.example.test/hello?x=1"
    with_port = session.get("http://svc.example.test:8080/", timeout=5)
    assert with_port.json()["host"] == "svc.example.test:8080"
    # a redirect to an unmapped host must not inherit the mapped Host header
    session.proxies = {}
    session.trust_env = False
    redirected = session.get("http://svc.example.test/redirect", timeout=5)
    assert redirected.json() == {"host": f"127.0.0.1:{echo_port}", "path": "/echo"}


def test_unmapped_hosts_are_untouched(echo_port: int) -> None:
    session = session_with_host_map({"*.example.test": "127.0.0.1:9"}, None)
    session.trust_env = False
    answer = session.get(f"http://127.0.0.1:{echo_port}/plain", timeout=5)
    assert answer.json() == {"host": f"127.0.0.1:{echo_port}", "path": "/plain"}


def test_smarttrace_service_is_the_one_running(sandbox: Any) -> None:
    assert isinstance(sandbox.services["smarttrace"], SmartTraceService)
