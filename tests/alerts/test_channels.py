"""The channel adapters against the sandbox: its Teams Workflows webhook, Graph's sendMail
and its SMTP submission server, over HTTPS/STARTTLS with the sandbox CA. Secrets (the
webhook URL, the SMTP password) come from the sandbox's Key Vault. Backoff runs on a
fake clock; what is asserted is what arrived (webhook.received, world.mail)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email import message_from_string, policy
from typing import Any

import pytest
import requests

from sso_monitor.adapters.channels.build import build_channels
from sso_monitor.adapters.channels.mail import GraphMailChannel, SmtpChannel
from sso_monitor.adapters.channels.teams import TeamsChannel
from sso_monitor.adapters.keyvault.secrets import KeyVaultSecretSource
from sso_monitor.alerts.ports import Alert, AlertChannel, ChannelError, Notice
from sso_monitor.config import MonitorConfig, parse_config
from sso_monitor.errors import NotFound
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds
from tests.alerts.test_render import STEPS, card_errors

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

WEBHOOK_SECRET = "teams-ops-webhook"
SMTP_SECRET = "smtp-alerts-password"
SMTP_LOGIN = "alerts@contoso.example"
STATUS = "https://sso-monitor.contoso.example/api/status/page"


class FakeTime:
    """monotonic() and sleep() on one made-up clock: a sleep returns at once and moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def notice(n: int = 0, **fields: Any) -> Notice:
    alert = Alert(
        kind="appeared",
        severity="critical",
        title=f"acme: client secret expires in {n + 3} days",
        message="The client secret SmartTrace uses expires soon.",
        at=datetime(2026, 11, 29, 7, n % 60, tzinfo=UTC),
        facility="acme",
        tenant_id="72f988bf-0000-4000-8000-000000000001",
        app_id="0b9d5c3f-1111-4000-8000-00000000abcd",
        code="SECRET_EXPIRING",
        days_left=n + 3,
        fix="Let the monitor rotate it.",
        steps=STEPS,
        status_url=STATUS,
    )
    return Notice(fields.pop("channel", "ops"), (alert,), **fields)


def configure(sandbox: Sandbox, channels: dict[str, Any], network: dict[str, Any] | None = None) -> MonitorConfig:
    document, environ = monitor_document(sandbox)
    document["channels"] = channels
    document["network"].update(network or {})
    return parse_config(document, environ)


def store(sandbox: Sandbox, ids: StandardIds, name: str, value: str) -> None:
    world = sandbox.world
    with world.lock:
        world.set_secret(world.vault(ids.vault_name), name, value, content_type="text/plain")


def webhook_url(sandbox: Sandbox, webhook_id: str) -> tuple[str, str]:
    """(URL, its signature): a signature of its own, to look for in logs and errors."""
    assert sandbox.endpoints is not None
    signature = secrets.token_urlsafe(24)
    url = re.sub(r"sig=[^&]+", f"sig={signature}", sandbox.endpoints.webhook_url(webhook_id))
    assert signature in url
    return url, signature


def run(config: MonitorConfig, make: Callable[[KeyVaultSecretSource], AlertChannel], body: Callable[[AlertChannel], Awaitable[Any]]) -> Any:
    """Build a channel on the sandbox's Key Vault, run ``body`` with it, close both."""

    async def main() -> Any:
        source = KeyVaultSecretSource(config)
        channel = make(source)
        try:
            return await body(channel)
        finally:
            await channel.aclose()
            await source.aclose()

    return asyncio.run(main())


async def failure_of(channel: AlertChannel, sent: Notice) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(sent)
    return caught.value


def monitor_log(caplog: pytest.LogCaptureFixture) -> str:
    """Every record but the sandbox servers' own (they stand for Microsoft's side)."""
    records = [r for phase in ("setup", "call", "teardown") for r in caplog.get_records(phase)]  # type: ignore[arg-type]
    return "\n".join(f"{r.name} {r.getMessage()}" for r in records if not r.name.startswith(("sso_sandbox", "mail.log")))


# ---------------------------------------------------------------- Teams


@pytest.fixture
def teams(sandbox: Sandbox, ids: StandardIds) -> tuple[MonitorConfig, str, str, FakeTime]:
    url, signature = webhook_url(sandbox, ids.webhook_id)
    store(sandbox, ids, WEBHOOK_SECRET, url)
    config = configure(sandbox, {"ops": {"type": "teams", "webhookSecretName": WEBHOOK_SECRET}})
    return config, url, signature, FakeTime()


def teams_channel(config: MonitorConfig, clock: FakeTime) -> Callable[[KeyVaultSecretSource], AlertChannel]:
    return lambda source: TeamsChannel(config, config.channels["ops"], source, sleep=clock.sleep, monotonic=clock.monotonic)


def test_teams_delivers_a_valid_card(sandbox, ids, teams, caplog) -> None:
    config, url, signature, clock = teams
    sent = notice()
    run(config, teams_channel(config, clock), lambda channel: channel.send(sent))
    hook = sandbox.world.webhooks[ids.webhook_id]
    (received,) = hook.received
    card = received["attachments"][0]["content"]
    assert card_errors(card) == []
    assert sent.alerts[0].title in json.dumps(card, ensure_ascii=False)
    assert clock.sleeps == [] and sandbox.services["teams"].undelivered == []
    log = monitor_log(caplog)
    assert "channel ops: notice" in log and "delivered" in log
    # urllib3 logged the request line, and the signature was masked there
    assert "sig=***" in log and signature not in log and url not in log


def test_teams_throttling_is_retried_then_reported_transient(sandbox, ids, teams, caplog) -> None:
    config, url, signature, clock = teams
    sandbox.world.webhooks[ids.webhook_id].mode = "throttled"  # 200 with "HTTP error 429" inside
    error = run(config, teams_channel(config, clock), lambda channel: failure_of(channel, notice()))
    assert error.transient is True and error.channel == "ops" and error.status == 429
    assert "5 attempts" in str(error) and "429" in str(error)
    assert sandbox.world.webhooks[ids.webhook_id].received == []
    assert [u["reason"] for u in sandbox.services["teams"].undelivered] == ["throttled"] * 5
    # exponential backoff with up to a second of jitter
    assert len(clock.sleeps) == 4
    for n, delay in enumerate(clock.sleeps):
        assert 2**n <= delay <= 2**n + 1
    assert url not in str(error) and signature not in str(error) and signature not in repr(error)
    assert signature not in monitor_log(caplog)


def test_teams_500_then_ok_delivers_once(sandbox, ids, teams) -> None:
    config, _, _, clock = teams
    sandbox.faults.add("status", service="teams", path="/workflows/*", status=500, times=1)
    run(config, teams_channel(config, clock), lambda channel: channel.send(notice()))
    assert len(sandbox.world.webhooks[ids.webhook_id].received) == 1
    assert len(clock.sleeps) == 1


def test_teams_429_retry_after_is_honoured(sandbox, ids, teams) -> None:
    config, _, _, clock = teams
    sandbox.faults.add("throttle", service="teams", path="/workflows/*", retry_after=7, times=2)
    run(config, teams_channel(config, clock), lambda channel: channel.send(notice()))
    assert clock.sleeps == [7.0, 7.0]
    assert len(sandbox.world.webhooks[ids.webhook_id].received) == 1


def test_teams_a_dropped_connection_is_retried(sandbox, ids, teams) -> None:
    config, _, _, clock = teams
    sandbox.faults.add("drop", service="teams", path="/workflows/*", times=1)
    run(config, teams_channel(config, clock), lambda channel: channel.send(notice()))
    assert len(sandbox.world.webhooks[ids.webhook_id].received) == 1 and len(clock.sleeps) == 1


def test_teams_a_lost_answer_means_at_least_once(sandbox, ids, teams) -> None:
    # Teams has no idempotency key: when the card arrived but the answer was lost,
    # the retry posts it again. A duplicate card beats a missing alert.
    config, _, _, clock = teams
    sandbox.faults.add("drop", service="teams", path="/workflows/*", when="after", times=1)
    run(config, teams_channel(config, clock), lambda channel: channel.send(notice()))
    assert len(sandbox.world.webhooks[ids.webhook_id].received) == 2


def test_teams_unknown_webhook_is_refused_without_retries(sandbox, ids, caplog) -> None:
    url, signature = webhook_url(sandbox, "no-such-workflow")
    store(sandbox, ids, WEBHOOK_SECRET, url)
    config = configure(sandbox, {"ops": {"type": "teams", "webhookSecretName": WEBHOOK_SECRET}})
    clock = FakeTime()
    error = run(config, teams_channel(config, clock), lambda channel: failure_of(channel, notice()))
    assert error.transient is False and error.status == 404 and "WorkflowNotFound" in str(error)
    assert clock.sleeps == []
    assert [r.status for r in sandbox.world.requests if r.service == "teams"] == [404]
    assert url not in str(error) and signature not in str(error)
    assert signature not in monitor_log(caplog)


def test_teams_rereads_a_rotated_webhook_url_after_404(sandbox, ids, teams) -> None:
    config, _, _, clock = teams
    world = sandbox.world
    replacement = world.add_webhook("ops-new")

    async def body(channel: AlertChannel) -> None:
        await channel.send(notice(1))  # the URL is read and kept
        new_url, _ = webhook_url(sandbox, replacement.id)
        store(sandbox, ids, WEBHOOK_SECRET, new_url)
        await channel.send(notice(2))  # still the kept URL: Key Vault is not read per send
        del world.webhooks[ids.webhook_id]  # the old workflow is deleted
        await channel.send(notice(3))  # 404, read again, sent to the new one

    run(config, teams_channel(config, clock), body)
    assert len(replacement.received) == 1
    assert [r.status for r in world.requests if r.service == "teams"] == [202, 202, 404, 202]
    vault_reads = [r for r in world.requests if r.service.startswith("vault") and r.method == "GET" and r.status == 200 and WEBHOOK_SECRET in r.path]
    assert len(vault_reads) == 2


def test_teams_missing_webhook_secret_is_a_lasting_refusal(sandbox, ids) -> None:
    config = configure(sandbox, {"ops": {"type": "teams", "webhookSecretName": "no-such-secret"}})
    error = run(config, teams_channel(config, FakeTime()), lambda channel: failure_of(channel, notice()))
    assert error.transient is False and "no-such-secret" in str(error) and "NotFound" in str(error)
    assert not [r for r in sandbox.world.requests if r.service == "teams"]


def _rate_limited(sandbox: Sandbox) -> int:
    return sum(1 for u in sandbox.services["teams"].undelivered if u["reason"] == "rate_limited")


def test_the_sandbox_rate_limit_bites_without_pacing(sandbox, ids, teams) -> None:
    # The control for the next test: on a clock that does not move, five posts in a row
    # get the fifth throttled.
    _, url, _, clock = teams
    sandbox.services["teams"].monotonic = clock.monotonic
    assert sandbox.endpoints is not None
    envelope = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": {"type": "AdaptiveCard", "version": "1.5", "body": []}}
        ],
    }
    with requests.Session() as session:
        statuses = [session.post(url, json=envelope, verify=str(sandbox.endpoints.ca_path), timeout=10).status_code for _ in range(5)]
    assert statuses == [202, 202, 202, 202, 200]
    assert _rate_limited(sandbox) == 1


def test_teams_paces_ten_notices_within_the_rate_limit(sandbox, ids, teams) -> None:
    config, _, _, clock = teams
    sandbox.services["teams"].monotonic = clock.monotonic  # the server counts on the same made-up clock

    async def body(channel: AlertChannel) -> None:
        for n in range(10):
            await channel.send(notice(n))

    run(config, teams_channel(config, clock), body)
    assert len(sandbox.world.webhooks[ids.webhook_id].received) == 10
    assert _rate_limited(sandbox) == 0
    # two waits of about a second: before the 5th and the 9th post
    assert len(clock.sleeps) == 2 and all(1.0 <= s <= 1.1 for s in clock.sleeps)


def test_teams_paces_concurrent_notices_in_real_time(sandbox, ids, teams) -> None:
    config, _, _, _ = teams
    sent = [notice(n) for n in range(10)]

    async def body(channel: AlertChannel) -> None:
        await asyncio.gather(*(channel.send(n) for n in sent))

    run(config, lambda source: TeamsChannel(config, config.channels["ops"], source), body)
    received = sandbox.world.webhooks[ids.webhook_id].received
    assert len(received) == 10
    assert _rate_limited(sandbox) == 0
    titles = {r["attachments"][0]["content"]["body"][1]["items"][0]["inlines"][1]["text"] for r in received}
    assert titles == {n.alerts[0].title for n in sent}


# ---------------------------------------------------------------- Graph mail


def mail_config(sandbox: Sandbox, mailbox: str) -> MonitorConfig:
    return configure(sandbox, {"mail": {"type": "graph-mail", "mailbox": mailbox, "to": ["ops@contoso.example", "it@acme.example"]}})


def graph_channel(config: MonitorConfig, clock: FakeTime) -> Callable[[KeyVaultSecretSource], AlertChannel]:
    return lambda source: GraphMailChannel(config, config.channels["mail"], sleep=clock.sleep)


def parts_of(raw: str) -> tuple[Any, str, str]:
    parsed = message_from_string(raw, policy=policy.default)
    return parsed, parsed.get_body(("plain",)).get_content(), parsed.get_body(("html",)).get_content()


def test_graph_mail_sends_one_message_with_both_bodies(sandbox, ids) -> None:
    clock = FakeTime()
    config = mail_config(sandbox, ids.mailbox)
    sent = notice(channel="mail", recipients=("IT@acme.example", "facility-admin@acme.example"))
    run(config, graph_channel(config, clock), lambda channel: channel.send(sent))
    (mail,) = sandbox.world.mail
    assert mail.via == "graph" and mail.sender == ids.mailbox
    assert mail.subject == sent.subject
    assert mail.recipients == ["ops@contoso.example", "it@acme.example", "facility-admin@acme.example"]
    parsed, text, markup = parts_of(mail.body)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == f"<{sent.id}.sso-monitor@contoso.example>"
    alert = sent.alerts[0]
    for value in (alert.title, alert.facility, alert.app_id, alert.tenant_id, alert.message, alert.fix, *STEPS):
        assert value in text
    assert alert.title in markup and f'href="{STATUS}"' in markup
    assert clock.sleeps == []


def test_graph_mail_429_with_retry_after_is_retried(sandbox, ids) -> None:
    clock = FakeTime()
    config = mail_config(sandbox, ids.mailbox)
    sandbox.faults.add("throttle", service="graph", path="/v1.0/users/*/sendMail", retry_after=7, times=1)
    run(config, graph_channel(config, clock), lambda channel: channel.send(notice(channel="mail")))
    assert clock.sleeps == [7.0]
    assert len(sandbox.world.mail) == 1


def test_graph_mail_5xx_exhausted_is_transient(sandbox, ids) -> None:
    clock = FakeTime()
    config = mail_config(sandbox, ids.mailbox)
    sandbox.faults.add("status", service="graph", path="/v1.0/users/*/sendMail", status=503)
    error = run(config, graph_channel(config, clock), lambda channel: failure_of(channel, notice(channel="mail")))
    assert error.transient is True and error.status == 503 and len(clock.sleeps) == 4
    assert sandbox.world.mail == []


def test_graph_mail_unknown_mailbox_is_refused(sandbox, ids) -> None:
    clock = FakeTime()
    config = mail_config(sandbox, "nobody@contoso.example")
    error = run(config, graph_channel(config, clock), lambda channel: failure_of(channel, notice(channel="mail")))
    assert error.transient is False and error.status == 404 and "ErrorInvalidUser" in str(error)
    assert clock.sleeps == [] and sandbox.world.mail == []
    assert [r.status for r in sandbox.world.requests if r.path.endswith("/sendMail")] == [404]


def test_graph_mail_without_mail_send_is_refused(sandbox, ids) -> None:
    world = sandbox.world
    with world.lock:
        monitor_sp = next(sp for t in world.tenants.values() for sp in t.service_principals.values() if sp.app_id == ids.monitor_app_id)
        for roles in monitor_sp.granted_roles.values():
            if "Mail.Send" in roles:
                roles.remove("Mail.Send")
    config = mail_config(sandbox, ids.mailbox)
    error = run(config, graph_channel(config, FakeTime()), lambda channel: failure_of(channel, notice(channel="mail")))
    assert error.transient is False and error.status == 403 and "ErrorAccessDenied" in str(error)


# ---------------------------------------------------------------- SMTP


@pytest.fixture
def smtp(sandbox: Sandbox, ids: StandardIds) -> tuple[MonitorConfig, str]:
    assert sandbox.endpoints is not None
    password = secrets.token_urlsafe(18)
    with sandbox.world.lock:
        sandbox.world.smtp_users[SMTP_LOGIN] = password
    store(sandbox, ids, SMTP_SECRET, password)
    config = configure(
        sandbox,
        {
            "mail": {
                "type": "smtp",
                "from": SMTP_LOGIN,
                "host": sandbox.endpoints.smtp_host,
                "port": sandbox.endpoints.smtp_port,
                "username": SMTP_LOGIN,
                "passwordSecretName": SMTP_SECRET,
                "to": ["ops@contoso.example"],
            }
        },
    )
    return config, password


def smtp_channel(config: MonitorConfig, clock: FakeTime) -> Callable[[KeyVaultSecretSource], AlertChannel]:
    return lambda source: SmtpChannel(config, config.channels["mail"], source, sleep=clock.sleep)


def test_smtp_submits_with_starttls_and_auth(sandbox, ids, smtp, caplog) -> None:
    config, password = smtp
    clock = FakeTime()
    sent = notice(channel="mail", recipients=("it@acme.example",))
    run(config, smtp_channel(config, clock), lambda channel: channel.send(sent))
    (mail,) = sandbox.world.mail
    assert mail.via == "smtp" and mail.sender == SMTP_LOGIN
    assert mail.recipients == ["ops@contoso.example", "it@acme.example"]
    assert mail.subject == sent.subject
    parsed, text, markup = parts_of(mail.body)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert sent.alerts[0].title in text and sent.alerts[0].title in markup
    assert password not in monitor_log(caplog) and clock.sleeps == []


def test_smtp_wrong_password_is_a_lasting_refusal(sandbox, ids, smtp, caplog) -> None:
    config, password = smtp
    wrong = secrets.token_urlsafe(18)
    store(sandbox, ids, SMTP_SECRET, wrong)  # a newer version, not the server's password
    clock = FakeTime()
    error = run(config, smtp_channel(config, clock), lambda channel: failure_of(channel, notice(channel="mail")))
    assert error.transient is False and error.status == 535 and "authentication" in str(error)
    assert clock.sleeps == [] and sandbox.world.mail == []
    for value in (wrong, password):
        assert value not in str(error) and value not in repr(error.__context__) and value not in monitor_log(caplog)


def test_smtp_unreachable_server_is_retried_then_transient(sandbox, ids, smtp) -> None:
    config, _ = smtp
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    channel_config = dataclasses.replace(config.channels["mail"], port=closed_port)
    clock = FakeTime()
    error = run(
        config, lambda source: SmtpChannel(config, channel_config, source, sleep=clock.sleep), lambda channel: failure_of(channel, notice(channel="mail"))
    )
    assert error.transient is True and "ConnectionRefusedError" in str(error) and len(clock.sleeps) == 4


def test_smtp_missing_password_secret_is_a_lasting_refusal(sandbox, ids, smtp) -> None:
    config, _ = smtp
    with sandbox.world.lock:
        del sandbox.world.vault(ids.vault_name).secrets[SMTP_SECRET]
    error = run(config, smtp_channel(config, FakeTime()), lambda channel: failure_of(channel, notice(channel="mail")))
    assert error.transient is False and SMTP_SECRET in str(error)


def test_a_notice_without_recipients_is_refused(sandbox, ids) -> None:
    config = configure(sandbox, {"mail": {"type": "graph-mail", "mailbox": ids.mailbox}})
    error = run(config, graph_channel(config, FakeTime()), lambda channel: failure_of(channel, notice(channel="mail")))
    assert error.transient is False and "no recipients" in str(error)
    assert sandbox.world.mail == []


# ---------------------------------------------------------------- wiring


def test_build_channels_makes_one_adapter_per_configured_channel(sandbox, ids, smtp) -> None:
    config, _ = smtp
    document, environ = monitor_document(sandbox)
    document["channels"] = {
        "ops": {"type": "teams", "webhookSecretName": WEBHOOK_SECRET},
        "mail": {"type": "graph-mail", "mailbox": ids.mailbox, "to": ["ops@contoso.example"]},
        "relay": {"type": "smtp", "from": SMTP_LOGIN, "host": "127.0.0.1", "port": 2525},
    }
    config = parse_config(document, environ)

    async def main() -> dict[str, str]:
        source = KeyVaultSecretSource(config)
        built = build_channels(config, source)
        try:
            return {name: channel.kind for name, channel in built.items()}
        finally:
            for channel in built.values():
                await channel.aclose()
            await source.aclose()

    assert asyncio.run(main()) == {"ops": "teams", "mail": "graph-mail", "relay": "smtp"}


def test_secret_source_reads_the_current_value_and_names_a_missing_secret(sandbox, ids) -> None:
    store(sandbox, ids, "some-channel-secret", "value-one")
    store(sandbox, ids, "some-channel-secret", "value-two")
    config = configure(sandbox, {})

    async def main() -> tuple[str, NotFound]:
        source = KeyVaultSecretSource(config)
        try:
            value = (await source.secret("some-channel-secret")).reveal()
            with pytest.raises(NotFound) as caught:
                await source.secret("absent-secret")
            return value, caught.value
        finally:
            await source.aclose()

    value, missing = asyncio.run(main())
    assert value == "value-two"
    assert "absent-secret" in str(missing)
