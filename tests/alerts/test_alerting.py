"""Alerting against a store and channels (sso_monitor/alerting.py): each change
said once, nothing lost when a channel is down, the channel's outage reported
to operations once, the digest, snoozes.

The channels here are stateful fakes at the AlertChannel port (the real
adapters are tested against the sandbox in test_channels.py); the store is the
real MemoryAlertStore (the Table store passes the same contract against
Azurite in tests/adapters/test_alert_store.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sso_monitor.adapters.storage.alert_store import MemoryAlertStore
from sso_monitor.alerts.ports import ChannelError, Notice
from sso_monitor.alerts.render import handoff_steps
from sso_monitor.alerts.service import DIGEST, FINDINGS, OUTBOX, Alerting, UnknownCode
from sso_monitor.checks.findings import Severity, finding
from sso_monitor.checks.run import AppResult
from sso_monitor.rotation.protocol import HandoffFacts, RotationEvent

from .test_decisions import TENANT, config

START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


class FakeChannel:
    """A channel that keeps what it delivered, and can be switched off."""

    kind = "fake"

    def __init__(self, name: str) -> None:
        self.name = name
        self.delivered: list[Notice] = []
        self.down: str | None = None  # the reason it refuses, when down
        self.tries = 0

    async def send(self, notice: Notice) -> None:
        self.tries += 1
        if self.down:
            raise ChannelError(self.name, self.down)
        self.delivered.append(notice)

    async def aclose(self) -> None:
        pass

    def titles(self) -> list[str]:
        return [a.title for n in self.delivered for a in n.alerts]


def make(**alerts_settings):
    cfg = config(**alerts_settings)
    channels = {name: FakeChannel(name) for name in cfg.channels}
    return cfg, Alerting(cfg, MemoryAlertStore(), channels), channels


def results(cfg, **findings_by_facility):
    return [AppResult(app=cfg.app(f), findings=list(fs)) for f, fs in findings_by_facility.items()]


def run(coro):
    return asyncio.run(coro)


def expiring(days):
    return finding(
        "SECRET_EXPIRING", f"The client secret expires in {days} days.", severity=Severity.CRITICAL if days <= 7 else Severity.WARNING, days_left=days
    )


def test_each_change_is_said_once_and_resolution_is_said():
    cfg, alerting, ch = make()
    report = run(alerting.after_check(results(cfg, acme=[expiring(20)], harbor=[]), START))
    assert report.ok and len(report.sent) == 2  # acme's route: acme-teams and it
    assert ch["acme-teams"].titles() == ["acme: client secret expires in 20 days"]
    assert ch["it"].delivered[0].recipients == ("plant-it@acme.example",)
    # the next day nothing changed: nothing is sent
    report = run(alerting.after_check(results(cfg, acme=[expiring(19)], harbor=[]), START + timedelta(days=1)))
    assert report.sent == []
    # resolved
    report = run(alerting.after_check(results(cfg, acme=[], harbor=[]), START + timedelta(days=2)))
    assert ch["acme-teams"].titles()[-1] == "acme: resolved: SECRET_EXPIRING"
    assert run(alerting.store.list(FINDINGS)) == []
    assert ch["ops"].delivered == []


def test_a_channel_that_is_down_loses_nothing_and_operations_hear_once():
    cfg, alerting, ch = make()
    ch["acme-teams"].down = "HTTP 500 from the webhook"
    report = run(alerting.after_check(results(cfg, acme=[expiring(20)]), START))
    assert [n.channel for n, _ in report.undelivered] == ["acme-teams"]
    assert not report.ok and "acme-teams" in report.problems()[0]
    assert len(ch["it"].delivered) == 1  # the other channel got it
    down = [n for n in ch["ops"].delivered if n.alerts[0].kind == "channel-down"]
    assert len(down) == 1 and "acme-teams" in down[0].alerts[0].message
    # still down the next day (a new finding too): kept, operations not told again
    report = run(alerting.after_check(results(cfg, acme=[expiring(13)]), START + timedelta(days=1)))
    assert len(report.undelivered) == 2
    assert len([n for n in ch["ops"].delivered if n.alerts[0].kind == "channel-down"]) == 1
    assert len(run(alerting.store.list(OUTBOX))) == 2
    # back up: both are delivered, oldest first; the outbox is empty
    ch["acme-teams"].down = None
    report = run(alerting.after_check(results(cfg, acme=[expiring(12)]), START + timedelta(days=2)))
    assert report.ok
    assert ch["acme-teams"].titles() == ["acme: client secret expires in 20 days", "acme: worse: client secret expires in 13 days"]
    assert run(alerting.store.list(OUTBOX)) == []
    # a later outage is reported again
    ch["acme-teams"].down = "HTTP 502"
    run(alerting.after_check(results(cfg, acme=[expiring(6)]), START + timedelta(days=3)))
    assert len([n for n in ch["ops"].delivered if n.alerts[0].kind == "channel-down"]) == 2


def test_undelivered_for_a_week_is_dropped_loudly(caplog):
    cfg, alerting, ch = make()
    ch["acme-teams"].down = "HTTP 404 WorkflowNotFound"
    run(alerting.after_check(results(cfg, acme=[expiring(20)]), START))
    report = run(alerting.after_check(results(cfg, acme=[expiring(20)]), START + timedelta(days=7)))
    assert [n.channel for n, _ in report.dropped] == ["acme-teams"]
    assert "dropped" in " ".join(report.problems())
    assert "alert dropped after 7 days" in caplog.text
    assert run(alerting.store.list(OUTBOX)) == []


def test_a_down_channel_is_tried_once_per_run():
    cfg, alerting, ch = make()
    ch["acme-teams"].down = "timeout"
    run(alerting.after_check(results(cfg, acme=[expiring(20), finding("NO_ASSIGNMENTS", "none", severity=Severity.WARNING)]), START))
    assert ch["acme-teams"].tries == 1


def test_rotation_events_are_said_once_and_failures_repeat_daily():
    cfg, alerting, ch = make()

    facts = HandoffFacts("acme", "https://acme.smarttrace.ai", "https://kv.vault.azure.net", "smarttrace-acme", "v2", "k1")

    def event(kind, message="m", key_id="k1", handoff=None):
        return RotationEvent(kind, "acme", TENANT, cfg.app("acme").app_id, message, key_id, handoff)

    run(alerting.rotation_events([event("started", key_id=None), event("awaiting-confirmation", handoff=facts)], START))
    run(alerting.rotation_events([event("awaiting-confirmation", handoff=facts)], START + timedelta(minutes=5)))  # a retried run repeats it
    assert [a.kind for n in ch["acme-teams"].delivered for a in n.alerts] == ["rotation:started", "rotation:awaiting-confirmation"]
    assert ch["acme-teams"].delivered[1].alerts[0].steps == tuple(handoff_steps(facts))
    failed = event("failed", "Rotation of acme stopped: Graph 503")
    run(alerting.rotation_events([failed], START))
    run(alerting.rotation_events([failed], START + timedelta(hours=1)))
    run(alerting.rotation_events([failed], START + timedelta(hours=25)))
    failures = [n for n in ch["ops"].delivered if n.alerts[0].kind == "rotation:failed"]
    assert len(failures) == 2  # to operations too, at most once a day
    # the next rotation, months later: its "started" (no keyId yet) is news again
    run(alerting.rotation_events([event("started", key_id=None)], START + timedelta(days=150)))
    run(alerting.rotation_events([event("started", key_id=None)], START + timedelta(days=150, minutes=3)))
    assert [a.kind for n in ch["acme-teams"].delivered for a in n.alerts].count("rotation:started") == 2


def test_monitor_failures_go_to_operations_once_a_day():
    cfg, alerting, ch = make()
    for hours in (0, 2, 30):
        run(alerting.monitor_failures(["tenant 72f9: Graph unreachable"], START + timedelta(hours=hours)))
    assert [n.alerts[0].kind for n in ch["ops"].delivered] == ["monitor-failure", "monitor-failure"]
    assert ch["it"].delivered == [] and ch["acme-teams"].delivered == []


def test_check_failed_goes_to_operations_not_to_the_facility():
    cfg, alerting, ch = make()
    run(alerting.after_check(results(cfg, acme=[finding("CHECK_FAILED", "Graph timed out for acme")]), START))
    assert [n.alerts[0].kind for n in ch["ops"].delivered] == ["monitor-failure"]
    assert "Graph timed out" in ch["ops"].delivered[0].alerts[0].message


def test_digest_holds_warnings_until_the_hour_and_sends_one_per_channel():
    cfg, alerting, ch = make(digest=True, digestHourUtc=7)
    early = START.replace(hour=5)
    run(alerting.after_check(results(cfg, acme=[expiring(20)], harbor=[finding("NO_ASSIGNMENTS", "none", severity=Severity.WARNING)]), early))
    assert all(c.delivered == [] for c in ch.values())
    assert len(run(alerting.store.list(DIGEST))) == 3  # acme: 2 channels, harbor: 1
    # a critical does not wait
    run(
        alerting.after_check(
            results(cfg, acme=[expiring(20), finding("SECRET_MISSING", "none")], harbor=[finding("NO_ASSIGNMENTS", "none", severity=Severity.WARNING)]),
            early.replace(hour=6),
        )
    )
    assert ch["acme-teams"].titles() == ["acme: app has no client secret, so SmartTrace cannot sign anyone in"]
    # the first run at or after 07:00: one digest per channel and recipient list
    run(
        alerting.after_check(
            results(cfg, acme=[expiring(20), finding("SECRET_MISSING", "none")], harbor=[finding("NO_ASSIGNMENTS", "none", severity=Severity.WARNING)]),
            early.replace(hour=7),
        )
    )
    digests = [n for c in ch.values() for n in c.delivered if n.digest]
    assert sorted((n.channel, n.recipients, len(n.alerts)) for n in digests) == [
        ("acme-teams", ("plant-it@acme.example",), 1),
        ("it", (), 1),
        ("it", ("plant-it@acme.example",), 1),
    ]
    assert run(alerting.store.list(DIGEST)) == []
    # later that day: no second digest
    run(alerting.after_check(results(cfg, acme=[expiring(13), finding("SECRET_MISSING", "none")], harbor=[]), early.replace(hour=12)))
    assert len([n for c in ch.values() for n in c.delivered if n.digest]) == 3


def test_snooze():
    cfg, alerting, ch = make()
    mismatch = finding("LOGOUT_URL_MISMATCH", "The logout URL differs.", severity=Severity.WARNING)
    run(alerting.snooze("acme", "LOGOUT_URL_MISMATCH", START + timedelta(days=3), "ann@contoso.example", "SmartTrace is moving the URL"))
    assert [s.code for s in run(alerting.snoozes(START))] == ["LOGOUT_URL_MISMATCH"]
    run(alerting.after_check(results(cfg, acme=[mismatch]), START + timedelta(days=1)))
    assert ch["acme-teams"].delivered == []
    run(alerting.after_check(results(cfg, acme=[mismatch]), START + timedelta(days=3)))
    assert [(a.code, a.kind) for n in ch["acme-teams"].delivered for a in n.alerts] == [("LOGOUT_URL_MISMATCH", "appeared")]
    assert run(alerting.snoozes(START + timedelta(days=3))) == []
    with pytest.raises(UnknownCode):
        run(alerting.snooze("acme", "NOT_A_CODE", START + timedelta(days=1), "ann"))


def test_a_run_full_of_failures_is_one_operations_alert():
    cfg, alerting, ch = make()
    failed = {f: [finding("CHECK_FAILED", f"{f}: Graph answered 403 for the tenant")] for f in ("acme", "harbor")}
    run(alerting.after_check(results(cfg, **failed), START, ["tenant 72f988bf: Graph answered 403"]))
    assert len(ch["ops"].delivered) == 1
    only = ch["ops"].delivered[0].alerts[0]
    assert only.title == "SSO monitor: 3 failures in its run"
    assert only.message.count("\n") == 2 and "harbor: Graph answered 403" in only.message
    # the same failures an hour later: not again; a day later: once more
    run(alerting.after_check(results(cfg, **failed), START + timedelta(hours=1), ["tenant 72f988bf: Graph answered 403"]))
    run(alerting.after_check(results(cfg, **failed), START + timedelta(hours=24), ["tenant 72f988bf: Graph answered 403"]))
    assert len(ch["ops"].delivered) == 2
    assert ch["it"].delivered == [] and ch["acme-teams"].delivered == []  # nothing to the facilities


def test_an_app_removed_from_the_configuration_is_forgotten_silently():
    cfg, alerting, ch = make()
    run(alerting.after_check(results(cfg, acme=[expiring(20)], harbor=[expiring(10)]), START))
    sent = sum(len(c.delivered) for c in ch.values())
    smaller = config()
    smaller = type(smaller)(**{**smaller.__dict__, "apps": tuple(a for a in smaller.apps if a.facility != "harbor")})
    alerting.config = smaller
    run(alerting.after_check(results(smaller, acme=[expiring(19)]), START + timedelta(days=1)))
    assert sum(len(c.delivered) for c in ch.values()) == sent  # no "resolved" for an app nobody watches any more
    assert {i.key for i in run(alerting.store.list(FINDINGS))} == {"acme.SECRET_EXPIRING"}


def test_a_burst_is_bundled_instead_of_flooding_a_channel():
    codes = [
        "SECRET_MISSING",
        "LOGOUT_URL_MISSING",
        "REDIRECT_URI_MISSING",
        "ID_TOKENS_DISABLED",
        "ACCESS_TOKENS_DISABLED",
        "SERVICE_PRINCIPAL_MISSING",
        "VAULT_SECRET_MISSING",
        "FACILITY_UNREACHABLE",
        "APP_ACCESS_DENIED",
        "LOGOUT_CALLBACK_UNREACHABLE",
    ]
    ten = [finding(code, f"{code} for harbor") for code in codes]
    eleven = ten + [finding("NO_ASSIGNMENTS", "none", severity=Severity.WARNING)]
    # ten for one channel in one run: one message each
    cfg, alerting, ch = make()
    run(alerting.after_check(results(cfg, harbor=ten), START))
    assert [len(n.alerts) for n in ch["it"].delivered] == [1] * 10
    # eleven: one bundle, worst first, every alert in it once
    cfg, alerting, ch = make()
    run(alerting.after_check(results(cfg, harbor=eleven), START))
    (bundle,) = ch["it"].delivered
    assert bundle.digest and len(bundle.alerts) == 11 and len({a.code for a in bundle.alerts}) == 11
    assert bundle.alerts[-1].code == "NO_ASSIGNMENTS"  # the warning after the criticals


class SlowChannel(FakeChannel):
    """Takes a while to deliver, as a webhook does, so that runs overlap."""

    async def send(self, notice: Notice) -> None:
        await asyncio.sleep(0.05)
        await super().send(notice)


def test_runs_that_overlap_on_one_store_say_each_notice_once():
    # Queue workers on several instances share the outbox: each run reads every undelivered
    # notice, and without a claim each would send the others' too (33 cards for 6 events).
    cfg = config()
    store = MemoryAlertStore()
    channels = {name: SlowChannel(name) for name in cfg.channels}
    runs = [Alerting(cfg, store, channels) for _ in range(4)]

    async def scenario() -> None:
        await asyncio.gather(*(alerting.after_check(results(cfg, acme=[expiring(20 - i)]), START + timedelta(minutes=i)) for i, alerting in enumerate(runs)))

    run(scenario())
    titles = channels["acme-teams"].titles()
    assert len(titles) == len(set(titles)) and titles  # each said once
    assert run(store.list(OUTBOX)) == []  # and nothing left behind
