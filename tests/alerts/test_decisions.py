"""The alert decisions (sso_monitor/alerts.py): pure functions of findings, what
was last alerted, snoozes and ``now``, driven by tables (a comment per row)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from sso_monitor.alerts.decisions import (
    FindingState,
    Snooze,
    compose_digest,
    digest_due,
    event_key,
    finding_alert,
    finding_alerts,
    immediate,
    level_of,
    parse_until,
    rotation_alert,
    route,
)
from sso_monitor.alerts.ports import APPEARED, REMINDER, RESOLVED, WORSENED, Alert, Notice
from sso_monitor.alerts.render import email_bodies, handoff_steps, teams_message
from sso_monitor.checks.findings import Severity, finding
from sso_monitor.config import AlertsConfig, parse_config
from sso_monitor.rotation.protocol import HandoffFacts, RotationEvent

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
TENANT = "72f988bf-0000-4000-8000-000000000001"
APP_ID = "11111111-2222-4333-8444-555555555555"


def config(**alerts):
    document = {
        "vaultUrl": "https://kv-sso.vault.azure.net",
        "channels": {
            "ops": {"type": "teams", "webhookSecretName": "teams-ops"},
            "it": {"type": "graph-mail", "mailbox": "sso@contoso.example", "to": ["it@contoso.example"]},
            "acme-teams": {"type": "teams", "webhookSecretName": "teams-acme"},
        },
        "alerts": {"channels": ["it"], "operations": ["ops"], **alerts},
        "apps": [
            {"facility": "acme", "tenantId": TENANT, "appId": APP_ID, "contacts": ["plant-it@acme.example"], "alertChannels": ["acme-teams", "it"]},
            {"facility": "harbor", "tenantId": TENANT, "appId": "21111111-2222-4333-8444-555555555555"},
        ],
    }
    return parse_config(document, {})


CONFIG = config()
ACME = CONFIG.app("acme")
POLICY = AlertsConfig(repeat_critical_hours=24)


def expiring(days: int):
    return finding("SECRET_EXPIRING", f"expires in {days} days", severity=Severity.CRITICAL if days <= 7 else Severity.WARNING, days_left=days)


def logout(severity=Severity.WARNING):
    return finding("LOGOUT_URL_MISMATCH", "logout URL differs", severity=severity)


def state(code, severity, level=None, alerted=NOW - timedelta(days=1)):
    return FindingState("acme", code, severity, level, NOW - timedelta(days=5), alerted)


# (findings now, previous states, snoozes, expected alert kinds by code, expected change per code: "new" state / None deleted / absent)
ROWS = [
    pytest.param([expiring(29)], {}, {}, {"SECRET_EXPIRING": APPEARED}, {"SECRET_EXPIRING": 30}, id="first sight of an expiring secret: appeared, level 30"),
    pytest.param([expiring(28)], {"SECRET_EXPIRING": state("SECRET_EXPIRING", "warning", 30)}, {}, {}, {}, id="next day, same threshold: silent"),
    pytest.param(
        [expiring(13)],
        {"SECRET_EXPIRING": state("SECRET_EXPIRING", "warning", 30)},
        {},
        {"SECRET_EXPIRING": WORSENED},
        {"SECRET_EXPIRING": 14},
        id="crosses 14: worsened",
    ),
    pytest.param(
        [expiring(2)],
        {"SECRET_EXPIRING": state("SECRET_EXPIRING", "warning", 14)},
        {},
        {"SECRET_EXPIRING": WORSENED},
        {"SECRET_EXPIRING": 3},
        id="jumps from 14 to 3 (timer was down): one alert, not three",
    ),
    pytest.param(
        [expiring(6)],
        {"SECRET_EXPIRING": state("SECRET_EXPIRING", "critical", 7, NOW - timedelta(hours=23))},
        {},
        {},
        {},
        id="critical, alerted 23 h ago: not yet repeated",
    ),
    pytest.param(
        [expiring(6)],
        {"SECRET_EXPIRING": state("SECRET_EXPIRING", "critical", 7, NOW - timedelta(hours=24))},
        {},
        {"SECRET_EXPIRING": REMINDER},
        {"SECRET_EXPIRING": 7},
        id="critical, alerted 24 h ago: repeated once",
    ),
    pytest.param(
        [logout(Severity.CRITICAL)],
        {"LOGOUT_URL_MISMATCH": state("LOGOUT_URL_MISMATCH", "critical", alerted=NOW - timedelta(days=10))},
        {},
        {"LOGOUT_URL_MISMATCH": REMINDER},
        {"LOGOUT_URL_MISMATCH": None},
        id="open critical logout URL: repeated after the interval",
    ),
    pytest.param(
        [finding("NO_ASSIGNMENTS", "nobody assigned", severity=Severity.WARNING)],
        {"NO_ASSIGNMENTS": state("NO_ASSIGNMENTS", "warning", alerted=NOW - timedelta(days=30))},
        {},
        {},
        {},
        id="open warning: never repeated",
    ),
    pytest.param(
        [],
        {"LOGOUT_URL_MISMATCH": state("LOGOUT_URL_MISMATCH", "critical")},
        {},
        {"LOGOUT_URL_MISMATCH": RESOLVED},
        {"LOGOUT_URL_MISMATCH": "deleted"},
        id="gone: resolved, state forgotten",
    ),
    pytest.param(
        [finding("CHECK_FAILED", "Graph timed out")],
        {"LOGOUT_URL_MISMATCH": state("LOGOUT_URL_MISMATCH", "critical")},
        {},
        {},
        {},
        id="check failed: nothing is taken as resolved (and it goes to operations, not here)",
    ),
    pytest.param(
        [logout()],
        {},
        {"LOGOUT_URL_MISMATCH": Snooze("acme", "LOGOUT_URL_MISMATCH", NOW + timedelta(days=1), "ann")},
        {},
        {},
        id="snoozed: silent and no state",
    ),
    pytest.param(
        [logout()],
        {},
        {"LOGOUT_URL_MISMATCH": Snooze("acme", "LOGOUT_URL_MISMATCH", NOW, "ann")},
        {"LOGOUT_URL_MISMATCH": APPEARED},
        {"LOGOUT_URL_MISMATCH": None},
        id="snooze ended: said then",
    ),
    pytest.param(
        [expiring(20)],
        {"SECRET_EXPIRING": state("SECRET_EXPIRING", "critical", 3)},
        {},
        {},
        {"SECRET_EXPIRING": 30},
        id="better but open (a longer secret): state lowered silently",
    ),
    pytest.param([finding("SECRET_EXPIRING", "x", severity=Severity.INFO, days_left=200)], {}, {}, {}, {}, id="info findings are not alerted"),
    pytest.param(
        [finding("SECRET_EXPIRED", "expired", days_left=-2)],
        {"SECRET_EXPIRING": state("SECRET_EXPIRING", "critical", 1)},
        {},
        {"SECRET_EXPIRED": APPEARED, "SECRET_EXPIRING": RESOLVED},
        {"SECRET_EXPIRED": 0, "SECRET_EXPIRING": "deleted"},
        id="expiring turns expired: the new code appears, the old resolves",
    ),
]


@pytest.mark.parametrize("findings, previous, snoozes, kinds, changes", ROWS)
def test_finding_alerts(findings, previous, snoozes, kinds, changes):
    alerts, new = finding_alerts(ACME, findings, previous, snoozes, NOW, POLICY)
    assert {a.code: a.kind for a in alerts} == kinds
    assert len(alerts) == len(kinds)  # one alert per code at most
    for code, expected in changes.items():
        if expected == "deleted":
            assert new[code] is None
        else:
            assert new[code] is not None and new[code].level == expected
    for code in set(new) - set(changes):
        # every other change is a kept or lowered state, never a deletion
        assert new[code] is not None
    for alert in alerts:
        assert alert.facility == "acme" and alert.app_id == APP_ID and alert.tenant_id == TENANT
        if alert.kind != RESOLVED:
            assert alert.fix  # what to do, from docs/checks.md
    for code, kind in kinds.items():
        if kind in (APPEARED, WORSENED, REMINDER):
            assert new[code].last_alerted == NOW


def test_worsening_is_said_once_per_threshold_over_a_countdown():
    """30 days down to 0, one check a day: one alert per threshold crossed, then daily criticals."""
    states: dict[str, FindingState] = {}
    said = []
    for day in range(31):
        now = NOW + timedelta(days=day)
        days_left = 30 - day
        alerts, changes = finding_alerts(ACME, [expiring(days_left)], states, {}, now, POLICY)
        for code, change in changes.items():
            if change is None:
                states.pop(code, None)
            else:
                states[code] = change
        said += [(days_left, a.kind) for a in alerts]
    crossings = [(d, k) for d, k in said if k != REMINDER]
    assert crossings == [(30, APPEARED), (14, WORSENED), (7, WORSENED), (3, WORSENED), (1, WORSENED)]
    # critical from 7 days: repeated on each day no threshold was crossed (24 h interval)
    assert [d for d, k in said if k == REMINDER] == [6, 5, 4, 2, 0]


@pytest.mark.parametrize(
    "details, code, expected",
    [
        ({"days_left": 31}, "SECRET_EXPIRING", None),  # not crossed yet
        ({"days_left": 30}, "SECRET_EXPIRING", 30),  # on the threshold
        ({"days_left": 8}, "SECRET_EXPIRING", 14),
        ({"days_left": 0}, "SECRET_EXPIRING", 1),
        ({"days_left": -1}, "SECRET_EXPIRED", 0),  # expired is below every threshold
        ({}, "LOGOUT_URL_MISMATCH", None),  # not an expiry finding
        ({"days_left": True}, "SECRET_EXPIRING", None),  # a bool is not a day count
        ({"days_left": 13}, "CERTIFICATE_EXPIRING", 14),  # certificates count down on the same thresholds
        ({"days_left": -3}, "CERTIFICATE_EXPIRED", 0),
    ],
)
def test_level_of(details, code, expected):
    assert level_of(finding(code, "m", **details), (30, 14, 7, 3, 1)) == expected


def test_certificate_alerts_say_certificate_not_secret():
    (warned,), _ = finding_alerts(ACME, [finding("CERTIFICATE_EXPIRING", "m", days_left=12)], {}, {}, NOW, POLICY)
    assert warned.title == "acme: certificate expires in 12 days" and warned.days_left == 12
    (gone,), _ = finding_alerts(ACME, [finding("CERTIFICATE_EXPIRED", "m", days_left=-1)], {}, {}, NOW, POLICY)
    assert gone.title == "acme: certificate has expired" and gone.severity == "critical"


def alert(**overrides):
    values = {
        "kind": APPEARED,
        "severity": "warning",
        "title": "t",
        "message": "m",
        "at": NOW,
        "facility": "acme",
        "tenant_id": TENANT,
        "app_id": APP_ID,
        "code": "NO_ASSIGNMENTS",
    }
    values.update(overrides)
    return Alert(**values)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, [("acme-teams", ("plant-it@acme.example",)), ("it", ("plant-it@acme.example",))]),  # the app's own route, with its contacts
        ({"facility": "harbor"}, [("it", ())]),  # no alertChannels: the default route
        (
            {"kind": "rotation:failed", "operations": True},
            [("acme-teams", ("plant-it@acme.example",)), ("it", ("plant-it@acme.example",)), ("ops", ())],
        ),  # a failed rotation: the facility and operations
        ({"kind": "monitor-failure", "operations": True, "facility": None}, [("ops", ())]),  # the monitor itself: operations only
        ({"kind": "monitor-failure", "operations": True}, [("ops", ())]),  # even when it names a facility: no facility contacts
        ({"facility": "unknown"}, [("ops", ())]),  # an app no longer configured: operations
    ],
)
def test_route(overrides, expected):
    assert route(alert(**overrides), CONFIG) == expected


def test_operations_default_to_the_default_route():
    cfg = config(operations=[])
    assert route(alert(kind="monitor-failure", operations=True, facility=None), cfg) == [("it", ())]


@pytest.mark.parametrize(
    "overrides, digest, expected",
    [
        ({}, False, True),  # no digest: everything at once
        ({}, True, False),  # a warning waits for the digest
        ({"severity": "critical"}, True, True),  # criticals never wait
        ({"severity": "resolved", "kind": RESOLVED}, True, False),
        ({"kind": "rotation:awaiting-confirmation"}, True, True),  # a person must act
        ({"kind": "monitor-failure", "operations": True, "severity": "error"}, True, True),
    ],
)
def test_immediate(overrides, digest, expected):
    assert immediate(alert(**overrides), AlertsConfig(digest=digest)) is expected


def test_compose_digest_keeps_each_facilitys_contacts_apart():
    a = alert(facility="acme", severity="warning")
    b = alert(facility="harbor", severity="critical", title="h")
    c = alert(facility="acme", severity="resolved", kind=RESOLVED, title="r")
    notices = compose_digest([(a, "it", ("plant-it@acme.example",)), (b, "it", ()), (c, "it", ("plant-it@acme.example",)), (b, "ops", ())])
    by_key = {(n.channel, n.recipients): n for n in notices}
    assert set(by_key) == {("it", ("plant-it@acme.example",)), ("it", ()), ("ops", ())}
    assert [x.title for x in by_key[("it", ("plant-it@acme.example",))].alerts] == ["t", "r"]  # worst first
    assert all(n.digest for n in notices)


@pytest.mark.parametrize(
    "last, hour, expected",
    [
        (None, 7, True),  # never sent, at the digest hour
        (None, 6, False),  # before the hour
        ("2026-11-30", 9, False),  # already sent today
        ("2026-11-29", 23, True),  # yesterday's: today's is due
    ],
)
def test_digest_due(last, hour, expected):
    assert digest_due(last, NOW.replace(hour=hour), AlertsConfig(digest=True, digest_hour_utc=7)) is expected
    assert digest_due(last, NOW.replace(hour=hour), AlertsConfig(digest=False)) is False


def test_rotation_alert_and_its_key():
    facts = HandoffFacts("acme", "https://acme.smarttrace.ai", "https://kv.vault.azure.net", "smarttrace-acme", "v2", "k1")
    event = SimpleNamespace(kind="awaiting-confirmation", facility="acme", tenant_id=TENANT, app_id=APP_ID, message="ready", key_id="k1", handoff=facts)
    made = rotation_alert(event, NOW, POLICY)
    assert (made.kind, made.severity, made.operations) == ("rotation:awaiting-confirmation", "warning", False)
    assert made.steps == tuple(handoff_steps(facts)) and "sso-monitor confirm acme --key-id k1" in made.steps[3]  # the words are the alerts' own
    again = SimpleNamespace(**vars(event))
    assert event_key(event) == event_key(again)  # a re-emitted event is recognised
    assert event_key(event) != event_key(SimpleNamespace(**{**vars(event), "key_id": "k2"}))
    assert event_key(event).startswith("acme.")


def test_sign_in_failing_after_a_removal_says_so_in_its_title():
    plain = finding("SIGN_IN_FAILING", "2 sign-in(s) refused", count=2)
    removed = finding("SIGN_IN_FAILING", "refused since the monitor removed ...", cause="removed-by-monitor", retired_key_id="k0")
    assert (
        finding_alert(ACME, removed, APPEARED, NOW, POLICY).title
        == "acme: sign-in is broken: SmartTrace still holds client secret k0, which the monitor removed"
    )
    assert "removed" not in finding_alert(ACME, plain, APPEARED, NOW, POLICY).title


def still_in_use(severity: str | None) -> RotationEvent:
    return RotationEvent(
        "still-in-use",
        "acme",
        TENANT,
        APP_ID,
        f"OLD_SECRET_STILL_IN_USE ({severity}): SmartTrace still signs in with the old secret: paste the new one.",
        "k0",
        severity=severity,
        code="OLD_SECRET_STILL_IN_USE",
    )


@pytest.mark.parametrize(
    "severity, expected",
    [
        ("warning", "warning"),  # more than 14 days to the old secret's expiry: not the reminder's critical
        ("error", "error"),  # 14 days or fewer
        ("critical", "critical"),  # 7 days or fewer
        (None, "warning"),  # an event without its own severity: the kind's default from the table
    ],
)
def test_a_still_in_use_event_is_alerted_at_its_findings_severity(severity, expected):
    made = rotation_alert(still_in_use(severity), NOW, POLICY)
    assert (made.kind, made.severity, made.code, made.operations) == ("rotation:still-in-use", expected, "OLD_SECRET_STILL_IN_USE", False)
    assert made.title == "acme: SmartTrace still signs in with the old client secret (keyId k0)"
    # In digest mode it goes at once, whatever its severity: a person must paste the new secret.
    assert immediate(made, AlertsConfig(digest=True))
    # Channels show it as it is: its severity, its finding code, its words.
    card = json.dumps(teams_message(Notice("acme-teams", (made,))))
    subject, text, _ = email_bodies(Notice("it", (made,)))
    assert f"{expected.upper()} " in card and f"[{expected}] acme:" in text
    for shown in (card, text):
        assert "Finding: " in shown and "OLD_SECRET_STILL_IN_USE" in shown and "paste the new one" in shown
    assert "still signs in with the old client secret" in subject


def test_an_events_own_severity_is_part_of_its_key_and_other_keys_are_unchanged():
    # A rise in severity is a new event (said again); the same severity re-emitted is recognised.
    assert event_key(still_in_use("warning")) != event_key(still_in_use("error"))
    assert event_key(still_in_use("error")) == event_key(still_in_use("error"))
    # Events without a severity keep the key they had (what the store remembers stays valid).
    plain = RotationEvent("completed", "acme", TENANT, APP_ID, "done", "k1")
    text = "\x1f".join(("completed", "k1", "done", ""))
    assert event_key(plain) == f"acme.{hashlib.sha256(text.encode()).hexdigest()[:24]}"
    # The reminder's table severity is unchanged.
    assert rotation_alert(RotationEvent("reminder", "acme", TENANT, APP_ID, "still waiting", "k1"), NOW, POLICY).severity == "critical"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-12-31", datetime(2026, 12, 31, tzinfo=UTC)),
        ("2026-12-31T08:00:00Z", datetime(2026, 12, 31, 8, tzinfo=UTC)),
        ("2026-12-31T08:00:00+02:00", datetime(2026, 12, 31, 6, tzinfo=UTC)),
        ("2026-12-31T08:00", datetime(2026, 12, 31, 8, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_parse_until(text, expected):
    assert parse_until(text) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "31/12/2026", "2026-13-01", "x" * 100])
def test_parse_until_refuses(text):
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_until(text)


def test_a_big_digest_is_split_into_parts():
    items = [(alert(facility=f"f{i:03d}", title=f"t{i}"), "it", ()) for i in range(45)]
    notices = compose_digest(items)
    assert [len(n.alerts) for n in notices] == [20, 20, 5]
    assert [a.title for n in notices for a in n.alerts] == [f"t{i}" for i in range(45)]  # all, once, in order


@pytest.mark.parametrize(
    "mode, starts, asks_for_confirm",
    [
        ("manual", "Confirm: sso-monitor confirm acme --key-id k1", True),
        ("activity-or-manual", "Confirm: sso-monitor confirm acme --key-id k1", True),
        ("activity", "Nothing to confirm: the monitor confirms from Entra's records", False),
    ],
)
def test_the_confirm_step_says_who_confirms(mode: str, starts: str, asks_for_confirm: bool) -> None:
    # In activity mode the person is not asked to confirm (only if Entra's records cannot be
    # read); in activity-or-manual either will do.
    facts = HandoffFacts("acme", "https://acme.smarttrace.ai", "https://kv.vault.azure.net", "smarttrace-acme", "v2", "k1", confirmation=mode)
    step = handoff_steps(facts)[3]
    assert step.startswith(starts)
    assert "sso-monitor confirm acme --key-id k1" in step  # the command is there for the fallback too
    assert ("Entra's records" in step) is (mode != "manual")
    assert step.startswith("Confirm:") is asks_for_confirm
