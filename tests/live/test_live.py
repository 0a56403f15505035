"""Against a real tenant, Teams channel and mail server: skipped unless configured
(tests/live/README.md). Read-only for the tenant; one card and one email sent."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest

from sso_monitor.alerts.ports import Alert, Notice
from sso_monitor.config import ChannelConfig, load_config, parse_config
from sso_monitor.models import SecretValue

pytestmark = pytest.mark.live


def setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set (see tests/live/README.md)")
    return value


class Given:
    """A SecretSource holding secrets given in the environment (Key Vault's stand-in here)."""

    def __init__(self, **secrets: str) -> None:
        self.secrets = {k: SecretValue(v) for k, v in secrets.items()}

    async def secret(self, name: str) -> SecretValue:
        return self.secrets[name]

    async def aclose(self) -> None:
        pass


def notice(channel: str) -> Notice:
    now = datetime.now(UTC)
    alert = Alert(
        kind="appeared",
        severity="info",
        title="SSO monitor live test: please ignore",
        message=f"Sent by tests/live at {now:%Y-%m-%d %H:%M} UTC.",
        at=now,
        fix="Nothing to do.",
    )
    return Notice(channel=channel, alerts=(alert,))


def minimal_config():
    return parse_config(
        {
            "vaultUrl": "https://unused.vault.azure.net",
            "apps": [{"facility": "live", "tenantId": "00000000-0000-4000-8000-000000000000", "appId": "00000000-0000-4000-8000-000000000001"}],
        },
        {},
    )


def test_check_against_the_tenant():
    from sso_monitor.checks.run import run_checks
    from sso_monitor.wiring import build_adapters

    config = load_config(setting("SSO_MONITOR_LIVE_CONFIG"))

    async def check():
        adapters = build_adapters(config)
        try:
            return await run_checks(config, adapters, datetime.now(UTC))
        finally:
            await adapters.aclose()

    report = asyncio.run(check())
    assert not report.errors, report.errors
    assert all(f.code != "CHECK_FAILED" for r in report.results for f in r.findings)


def test_a_card_reaches_the_teams_channel():
    from sso_monitor.adapters.channels.teams import TeamsChannel

    url = setting("SSO_MONITOR_LIVE_TEAMS_WEBHOOK")
    channel = TeamsChannel(minimal_config(), ChannelConfig(name="live-teams", type="teams", webhook_secret_name="webhook"), Given(webhook=url))
    asyncio.run(channel.send(notice("live-teams")))  # raises ChannelError if Teams did not take it


def test_an_email_reaches_the_smtp_server():
    from sso_monitor.adapters.channels.mail import SmtpChannel

    host, _, port = setting("SSO_MONITOR_LIVE_SMTP").partition(":")
    user = setting("SSO_MONITOR_LIVE_SMTP_USER")
    channel = ChannelConfig(
        name="live-smtp",
        type="smtp",
        host=host,
        port=int(port or 587),
        sender=user,
        username=user,
        password_secret_name="smtp",
        to=(setting("SSO_MONITOR_LIVE_SMTP_TO"),),
    )
    smtp = SmtpChannel(minimal_config(), channel, Given(smtp=setting("SSO_MONITOR_LIVE_SMTP_PASSWORD")))
    asyncio.run(smtp.send(notice("live-smtp")))
