"""A Teams channel that stays throttled (Teams answers 200 with "HTTP error 429"),
end to end: the real Teams adapter retries with backoff, the notice is kept,
operations hear about it once by email (SMTP), and the kept notice is
delivered, once, when Teams takes messages again."""

from __future__ import annotations

import asyncio
import json

import pytest

from sso_monitor.adapters.storage.alert_store import MemoryAlertStore
from sso_monitor.checks.findings import Severity, finding
from sso_monitor.checks.run import AppResult
from sso_monitor.config import parse_config
from sso_monitor.wiring import build_alerting
from sso_sandbox.settings import monitor_document

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

LOGIN, PASSWORD = "alerts@contoso.example", "smtp-password-for-the-outage"


def test_a_channel_that_stays_down_is_reported_and_nothing_is_lost(sandbox, ids):
    world = sandbox.world
    vault = world.vault(ids.vault_name)
    world.set_secret(vault, "teams-webhook", sandbox.endpoints.webhook_url(ids.webhook_id))
    world.set_secret(vault, "smtp-password", PASSWORD)
    world.smtp_users[LOGIN] = PASSWORD
    document, environ = monitor_document(sandbox, facilities=["acme"])
    document["channels"] = {
        "teams": {"type": "teams", "webhookSecretName": "teams-webhook"},
        "ops": {
            "type": "smtp",
            "host": sandbox.endpoints.smtp_host,
            "port": sandbox.endpoints.smtp_port,
            "from": LOGIN,
            "username": LOGIN,
            "passwordSecretName": "smtp-password",
            "to": ["ops@msp.example"],
        },
    }
    document["alerts"] = {"channels": ["teams"], "operations": ["ops"]}
    config = parse_config(document, environ)
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:  # backoff without the wall-clock wait
        waits.append(seconds)

    store = MemoryAlertStore()
    hook = world.webhooks[ids.webhook_id]
    mismatch = [AppResult(config.app("acme"), [finding("LOGOUT_URL_MISMATCH", "The logout URL differs.", severity=Severity.WARNING)])]

    async def run_once(now):
        alerting = build_alerting(config, store=store, sleep=no_wait)
        try:
            return await alerting.after_check(mismatch, now)
        finally:
            await alerting.aclose()

    hook.mode = "throttled"
    report = asyncio.run(run_once(world.now()))
    assert [n.channel for n, _ in report.undelivered] == ["teams"] and "429" in report.undelivered[0][1]
    assert hook.received == []
    throttled = [u for u in sandbox.services["teams"].undelivered if u["reason"] == "throttled"]
    assert len(throttled) == 5  # every attempt reached Teams
    assert len(waits) >= 4 and waits == sorted(waits[:4]) + waits[4:]  # growing backoff between them
    ops = [m for m in world.mail if m.via == "smtp"]
    assert len(ops) == 1 and "alert channel down" in ops[0].subject and ops[0].recipients == ["ops@msp.example"]
    url = sandbox.endpoints.webhook_url(ids.webhook_id)
    assert "channel teams" in ops[0].body.replace("=\r\n", "") and url not in ops[0].body and "sig=" not in ops[0].body  # names the channel, never its URL

    # still down the next run: kept, operations not told twice
    asyncio.run(run_once(world.now()))
    assert len([m for m in world.mail if m.via == "smtp"]) == 1

    # Teams is back: the kept card is delivered once, and nothing else is
    hook.mode = "ok"
    report = asyncio.run(run_once(world.now()))
    assert report.ok and len(hook.received) == 1
    assert "LOGOUT_URL_MISMATCH" in json.dumps(hook.received[0])
    asyncio.run(run_once(world.now()))
    assert len(hook.received) == 1
