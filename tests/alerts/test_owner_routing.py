"""Routing a facility's alerts to its app registration's Entra owners (``notifyOwners``):
the decision (which channel, which alerts), the composing (one app's owners never see
another's alerts), and the delivery through the real email channels against the
sandbox, with and without the user permission that makes owners' addresses readable."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from sso_monitor.adapters.channels.build import build_channels
from sso_monitor.adapters.keyvault.secrets import KeyVaultSecretSource
from sso_monitor.adapters.storage.alert_store import MemoryAlertStore
from sso_monitor.alerts.decisions import compose_digest, routed
from sso_monitor.alerts.ports import APPEARED, Alert, Notice
from sso_monitor.alerts.service import Alerting
from sso_monitor.checks.findings import Severity, finding
from sso_monitor.checks.run import AppResult
from sso_monitor.config import parse_config
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds
from tests.alerts.test_alerting import FakeChannel

TENANT = "72f988bf-0000-4000-8000-000000000001"
ACME_APP = "11111111-2222-4333-8444-555555555555"
HARBOR_APP = "21111111-2222-4333-8444-555555555555"
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def config(**alerts):
    return parse_config(
        {
            "vaultUrl": "https://kv-sso.vault.azure.net",
            "channels": {
                "teams": {"type": "teams", "webhookSecretName": "teams-it"},
                "it": {"type": "graph-mail", "mailbox": "sso@contoso.example", "to": ["it@contoso.example"]},
                "ops-mail": {"type": "graph-mail", "mailbox": "sso@contoso.example", "to": ["ops@contoso.example"]},
            },
            "alerts": {"channels": ["teams", "it"], "operations": ["ops-mail"], **alerts},
            "apps": [
                {"facility": "acme", "tenantId": TENANT, "appId": ACME_APP, "notifyOwners": True, "contacts": ["plant-it@acme.example"]},
                {"facility": "harbor", "tenantId": TENANT, "appId": HARBOR_APP},
            ],
        },
        {},
    )


CONFIG = config()


def alert(**overrides) -> Alert:
    values = {"kind": APPEARED, "severity": "warning", "title": "t", "message": "m", "at": NOW, "facility": "acme", "code": "NO_ASSIGNMENTS"}
    values.update(overrides)
    return Alert(**values)


def owners_by_channel(sent: Alert) -> dict[str, tuple[str, str] | None]:
    return {channel: routed_alert.owners_of for routed_alert, channel, _ in routed(sent, CONFIG)}


@pytest.mark.parametrize(
    "overrides, expected",
    [
        # an email channel of acme's own route: its owners too (the tenant and app filled in from the configuration)
        ({}, {"teams": None, "it": (TENANT, ACME_APP)}),
        # a rotation that failed: the facility's channels as above, never the operations route
        ({"kind": "rotation:failed", "operations": True}, {"teams": None, "it": (TENANT, ACME_APP), "ops-mail": None}),
        # the monitor's own failure, even naming acme: operations only, no owners
        ({"kind": "monitor-failure", "operations": True}, {"ops-mail": None}),
        # harbor has no notifyOwners
        ({"facility": "harbor"}, {"teams": None, "it": None}),
    ],
)
def test_owners_are_recipients_only_on_the_facilitys_email_channels(overrides, expected):
    assert owners_by_channel(alert(**overrides)) == expected


def test_routed_keeps_the_alert_as_it_is_elsewhere():
    plain = alert(facility="harbor")
    assert [a for a, _, _ in routed(plain, CONFIG)] == [plain, plain]
    (teams, it) = routed(alert(), CONFIG)
    assert teams[0].notify_owners is False and it[0].notify_owners is True and it[2] == ("plant-it@acme.example",)


def test_a_digest_never_mixes_one_apps_owners_with_another_facilitys_alerts():
    acme = routed(alert(title="a"), CONFIG)[1]
    harbor = routed(alert(facility="harbor", title="h"), CONFIG)[1]
    other_acme = routed(alert(title="a2", code="LOGOUT_URL_MISSING"), CONFIG)[1]
    notices = compose_digest([acme, harbor, other_acme])
    by_owners = {n.owners_of: [a.title for a in n.alerts] for n in notices}
    assert by_owners == {((TENANT, ACME_APP),): ["a", "a2"], (): ["h"]}


def test_notice_serialisation_keeps_the_owner_routing():
    (_, (sent, channel, recipients)) = routed(alert(), CONFIG)
    notice = Notice(channel, (sent,), recipients)
    assert Notice.from_dict(notice.as_dict()).owners_of == ((TENANT, ACME_APP),)
    legacy = notice.as_dict()
    del legacy["alerts"][0]["notify_owners"]  # stored before notifyOwners existed
    assert Notice.from_dict(legacy).owners_of == ()


def test_alerting_marks_the_email_notice_for_the_owners():
    channels = {name: FakeChannel(name) for name in CONFIG.channels}
    alerting = Alerting(CONFIG, MemoryAlertStore(), channels)
    found = finding("SECRET_EXPIRING", "expires in 20 days", severity=Severity.WARNING, days_left=20)
    report = asyncio.run(alerting.after_check([AppResult(CONFIG.app("acme"), [found]), AppResult(CONFIG.app("harbor"), [found])], NOW))
    assert report.ok
    assert [n.owners_of for n in channels["it"].delivered] == [((TENANT, ACME_APP),), ()]
    assert all(n.owners_of == () for n in channels["teams"].delivered)


def test_in_digest_mode_the_owners_get_their_facilitys_digest_only():
    cfg = config(digest=True, digestHourUtc=0)
    channels = {name: FakeChannel(name) for name in cfg.channels}
    alerting = Alerting(cfg, MemoryAlertStore(), channels)
    warn = finding("LOGOUT_URL_MISSING", "no logout URL")
    asyncio.run(alerting.after_check([AppResult(cfg.app("acme"), [warn]), AppResult(cfg.app("harbor"), [warn])], NOW))
    digests = [n for n in channels["it"].delivered if n.digest]
    assert sorted((n.owners_of, tuple(a.facility for a in n.alerts)) for n in digests) == [((), ("harbor",)), (((TENANT, ACME_APP),), ("acme",))]


# ---------------------------------------------------------------- against the sandbox


def sandbox_config(sandbox: Sandbox, ids: StandardIds, *, notify_owners: bool = True):
    document, environ = monitor_document(sandbox)
    document["apps"][0]["notifyOwners"] = notify_owners
    document["channels"] = {"mail": {"type": "graph-mail", "mailbox": ids.mailbox, "to": ["ops@contoso.example"]}}
    document["alerts"] = {"channels": ["mail"]}
    return parse_config(document, environ)


def owners(sandbox: Sandbox, ids: StandardIds) -> None:
    """acme's app is owned by the monitor (a service principal), a person with a mailbox
    and a person without one."""
    world = sandbox.world
    app = world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    world.add_owner(app, world.add_user(ids.tenant_id, "alex@contoso.example", "Alex Wilber", mail="Alex.Wilber@contoso.example"))
    world.add_owner(app, world.add_user(ids.tenant_id, "pat@contoso.example", "Pat (no mailbox)"))


def grant(sandbox: Sandbox, ids: StandardIds, role: str) -> None:
    sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id).granted_roles["https://graph.microsoft.com"].append(role)


def send(config, notices: list[Notice]) -> None:
    async def main() -> None:
        source = KeyVaultSecretSource(config)
        channels = build_channels(config, source)
        try:
            for notice in notices:
                await channels[notice.channel].send(notice)
        finally:
            for channel in channels.values():
                await channel.aclose()
            await source.aclose()

    asyncio.run(main())


def acme_notice(config, sandbox: Sandbox, **overrides) -> Notice:
    sent = alert(**{"facility": "acme", "at": sandbox.world.now(), **overrides})
    ((routed_alert, channel, recipients),) = routed(sent, config)
    return Notice(channel, (routed_alert,), recipients)


def owner_reads(sandbox: Sandbox) -> int:
    return sandbox.world.count_requests("graph", "GET", "/owners")


@pytest.mark.usefixtures("no_secret_in_logs")
def test_with_a_user_permission_the_owners_mailboxes_receive_the_alert(sandbox, ids):
    owners(sandbox, ids)
    grant(sandbox, ids, "User.Read.All")
    config = sandbox_config(sandbox, ids)
    first, second = acme_notice(config, sandbox, title="one"), acme_notice(config, sandbox, title="two", at=sandbox.world.now() + timedelta(minutes=1))
    send(config, [first, second])
    assert [m.recipients for m in sandbox.world.mail] == [["ops@contoso.example", "Alex.Wilber@contoso.example"]] * 2
    assert owner_reads(sandbox) == 1  # once per app per run


@pytest.mark.usefixtures("no_secret_in_logs")
def test_with_owned_by_alone_the_owners_cannot_be_read_and_the_log_says_why(sandbox, ids, caplog):
    owners(sandbox, ids)
    config = sandbox_config(sandbox, ids)
    with caplog.at_level(logging.WARNING, logger="sso_monitor"):
        send(config, [acme_notice(config, sandbox)])
    (mail,) = sandbox.world.mail
    assert mail.recipients == ["ops@contoso.example"]  # the alert still goes out
    warning = next(r.getMessage() for r in caplog.records if r.name == "sso_monitor.adapters.graph.owners")
    assert "2 user(s) came back without their properties" in warning and "User.Read.All" in warning


@pytest.mark.usefixtures("no_secret_in_logs")
def test_a_failing_owners_read_never_stops_the_alert(sandbox, ids, caplog):
    owners(sandbox, ids)
    grant(sandbox, ids, "User.Read.All")
    sandbox.faults.add("status", service="graph", method="GET", path="/v1.0/applications(appId=*/owners*", status=500)
    config = sandbox_config(sandbox, ids)
    send(config, [acme_notice(config, sandbox)])
    (mail,) = sandbox.world.mail
    assert mail.recipients == ["ops@contoso.example"]
    assert "owners of app" in caplog.text and "HTTP 500" in caplog.text


@pytest.mark.usefixtures("no_secret_in_logs")
def test_without_notify_owners_nothing_is_read(sandbox, ids):
    owners(sandbox, ids)
    grant(sandbox, ids, "User.Read.All")
    config = sandbox_config(sandbox, ids, notify_owners=False)
    send(config, [acme_notice(config, sandbox)])
    assert sandbox.world.mail[0].recipients == ["ops@contoso.example"] and owner_reads(sandbox) == 0
