"""45 days of the unattended monitor against the sandbox, one timer run a day,
with the clock injected: a secret nearing expiry, its rotation with a manual
handoff confirmed on the third day of waiting, a logout URL broken and fixed,
and a day on which the monitor cannot read Graph.

Everything is real but the calendar: the check and the rotation over HTTPS
against the sandbox, the alert state in Azure Table Storage (Azurite), Teams
through the sandbox's Workflows webhook, email through Graph sendMail and
through SMTP. The exact sequence of alerts per channel is asserted, so nothing
is missing and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import email
import json
from datetime import timedelta

import pytest

from sso_monitor.config import parse_config
from sso_monitor.functions.api import AdminApi
from sso_monitor.service import MonitorService
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import standard_world
from tests.alerts.test_render import card_errors
from tests.azurite import forget_alert_state
from tests.rotation.harness import SandboxClock

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

SMTP_LOGIN, SMTP_PASSWORD = "alerts@contoso.example", "smtp-Pa55word-for-the-timeline"
WAITING_DAYS = 3  # the administrator confirms on the third day of waiting


def channels_document(vault_url: str, smtp_host: str, smtp_port: int) -> dict:
    return {
        "channels": {
            "facility-teams": {"type": "teams", "webhookSecretName": "teams-facility-webhook"},
            "facility-mail": {"type": "graph-mail", "mailbox": "sso-monitor@contoso.example", "to": ["it@contoso.example"]},
            "ops-mail": {
                "type": "smtp",
                "host": smtp_host,
                "port": smtp_port,
                "from": SMTP_LOGIN,
                "username": SMTP_LOGIN,
                "passwordSecretName": "smtp-password",
                "to": ["ops@msp.example"],
            },
        },
        "alerts": {"channels": ["facility-teams", "facility-mail"], "operations": ["ops-mail"], "statusPageUrl": "https://sso-monitor.example/api/status/page"},
        "verify": {"successes": 1, "intervalSeconds": 0},
    }


def card_titles(payload: dict) -> list[str]:
    """The alert titles a Teams card shows (each alert's title is one TextBlock)."""
    text = json.dumps(payload)
    return [title for title in ALL_TITLES if json.dumps(title)[1:-1] in text]


ALL_TITLES: list[str] = []


def test_45_days(azurite, tmp_path):
    world, ids = standard_world()
    clock = SandboxClock(world)
    start = world.clock.freeze(world.now().replace(microsecond=0))  # Graph keeps whole seconds
    app = world.find_app(ids.smarttrace_app_id)
    old = app.credential(ids.smarttrace_key_id)
    old.end = start + timedelta(days=40)  # rotation is due (and the first threshold crossed) on day 10
    vault = world.vault(ids.vault_name)
    vault.secrets[ids.vault_secret_name].latest.expires = old.end
    world.smtp_users[SMTP_LOGIN] = SMTP_PASSWORD
    good_logout = app.web["logoutUrl"]

    with Sandbox(world) as sandbox:
        world.set_secret(vault, "teams-facility-webhook", sandbox.endpoints.webhook_url(ids.webhook_id))
        world.set_secret(vault, "smtp-password", SMTP_PASSWORD)
        document, environ = monitor_document(
            sandbox,
            facilities=["acme"],
            app_overrides={"acme": {"contacts": ["plant-it@acme.example"], "rotation": {"rotateBeforeDays": 30, "lifetimeDays": 180, "graceDays": 7}}},
        )
        document.update(channels_document(document["vaultUrl"], sandbox.endpoints.smtp_host, sandbox.endpoints.smtp_port))
        environ["AzureWebJobsStorage"] = azurite.connection_string
        forget_alert_state(azurite.connection_string)
        config = parse_config(document, environ)
        admin = AdminApi(config, clock=clock)
        service = MonitorService(config, clock=clock)
        problems: list[str] = []

        def timer_day(day: int) -> None:
            now = clock.now()
            plan = asyncio.run(service.scheduled_check(now))
            problems.extend(asyncio.run(service.alert_check(plan.report, now, plan.failures, plan.stuck)))
            for item in plan.work:  # the worker, one message each (the queue itself: tests/functions)
                worker = MonitorService(config, clock=clock)
                outcome = asyncio.run(worker.work(item))
                problems.extend(asyncio.run(worker.alert_events(outcome.events, clock.now())))

        async def onboard() -> None:  # the hand-made secret is adopted (docs/deploy.md, onboarding)
            assert (await service.adopt(config.app("acme"), None, None)).result.error is None

        asyncio.run(onboard())
        new_key = None
        for day in range(46):
            # overnight, before the day's run
            if day == 20:
                app.web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme-old"
            if day == 23:
                app.web["logoutUrl"] = good_logout
            if day == 30:  # the monitor cannot read Graph today
                sandbox.faults.add("status", service="graph", method="POST", path="/v1.0/$batch", status=403)
            timer_day(day)
            if day == 30:
                sandbox.faults.clear()
            if day == 10:
                flight = next(v for v in reversed(vault.secrets[ids.vault_secret_name].versions) if v.tags.get("stage") == "awaiting-confirmation")
                new_key = flight.tags["keyId"]
            if day == 10 + WAITING_DAYS - 1:  # the administrator pastes the secret into SmartTrace, then confirms
                facility = world.facility("acme")
                facility.client_secret, facility.key_id = flight.value, new_key
                result = asyncio.run(admin.confirm("acme", new_key, "ann@contoso.example"))
                assert result["stage"] == "current" and result["alerts"] == {"sent": 2, "undelivered": 0}
            world.clock.advance(timedelta(days=1))

    assert problems == []
    assert world.sign_in_works("acme")
    expected_facility = [
        (10, "acme: client secret expires in 30 days"),
        (10, "acme: rotation started"),
        (10, f"acme: rotation awaiting confirmation (keyId {new_key})"),
        (12, f"acme: rotation completed (keyId {new_key})"),
        (13, "acme: resolved: SECRET_EXPIRING"),
        (19, f"acme: rotation retired (keyId {ids.smarttrace_key_id})"),
        (20, "acme: front-channel logout URL is not SmartTrace's callback for this facility"),
        (23, "acme: resolved: LOGOUT_URL_MISMATCH"),
    ]
    expected_ops = [(30, "SSO monitor: 2 failures in its run")]
    ALL_TITLES[:] = [t for _, t in expected_facility + expected_ops]

    # Teams: one card per alert, in order, each a valid Adaptive Card 1.5
    received = world.webhooks[ids.webhook_id].received
    assert [card_titles(p) for p in received] == [[t] for _, t in expected_facility]
    for payload in received:
        assert card_errors(payload["attachments"][0]["content"]) == []
    # Graph mail to the facility: the same sequence, to the channel's list and the facility's contacts
    graph_mail = [m for m in world.mail if m.via == "graph"]
    assert [subject_title(m.subject) for m in graph_mail] == [t for _, t in expected_facility]
    assert all(sorted(m.recipients) == ["it@contoso.example", "plant-it@acme.example"] for m in graph_mail)
    assert [m.at.date() for m in graph_mail] == [(start + timedelta(days=d)).date() for d, _ in expected_facility]
    # the handoff message carries the exact steps
    handoff = next(m for m in graph_mail if "awaiting confirmation" in m.subject)
    text, html = bodies(handoff.body)
    assert f"sso-monitor confirm acme --key-id {new_key}" in text and "Integrations" in text
    assert "https://sso-monitor.example/api/status/page" in html
    # SMTP to operations: the monitor's failure only
    smtp_mail = [m for m in world.mail if m.via == "smtp"]
    assert [subject_title(m.subject) for m in smtp_mail] == [t for _, t in expected_ops]
    assert [m.at.date() for m in smtp_mail] == [(start + timedelta(days=30)).date()]
    assert smtp_mail[0].recipients == ["ops@msp.example"]
    text, _ = bodies(smtp_mail[0].body)
    assert "403" in text or "denied" in text.lower()


def subject_title(subject: str) -> str:
    """ "[warning] acme: ..." -> "acme: ..." (the severity prefix is the renderer's)."""
    return subject.split("] ", 1)[1] if subject.startswith("[") else subject


def bodies(raw) -> tuple[str, str]:
    """(plain text, HTML) of a received message: raw RFC 5322 text, or Graph's MIME upload."""
    if isinstance(raw, dict):
        raw = raw.get("mime") or raw.get("raw") or ""
    message = email.message_from_string(raw if isinstance(raw, str) else raw.decode())
    text = html = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode()
    return text, html
