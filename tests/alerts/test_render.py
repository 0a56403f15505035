"""alert_render: every card against the Adaptive Card 1.5 schema (Microsoft's, verbatim),
within Teams' size limit; email bodies that say the same, escaped; generated alerts."""

from __future__ import annotations

import copy
import functools
import json
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sso_monitor.alerts.ports import SEVERITIES, Alert, Notice
from sso_monitor.alerts.render import ADAPTIVE_CARD, TEAMS_BUDGET_BYTES, TEAMS_MAX_BYTES, email_bodies, email_message, serialise, teams_message
from sso_monitor.checks.findings import CODES
from tests.reference import require_reference

AT = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
TENANT = "72f988bf-0000-4000-8000-000000000001"
APP = "0b9d5c3f-1111-4000-8000-00000000abcd"
STATUS = "https://sso-monitor.contoso.example/api/status/page"
STEPS = (
    "Open Key Vault kv-sso > Secrets > smarttrace-acme and copy the value of version 3f2a.",
    "In SmartTrace: Integrations > Azure Active Directory > pencil > Client secret: paste it and Save.",
    "Confirm: POST /api/apps/acme/confirm with the keyId 5d1c.",
)


def alert(**fields: Any) -> Alert:
    values: dict[str, Any] = {
        "kind": "appeared",
        "severity": "warning",
        "title": "acme: client secret expires in 14 days",
        "message": CODES["SECRET_EXPIRING"].meaning,
        "at": AT,
        "facility": "acme",
        "tenant_id": TENANT,
        "app_id": APP,
        "code": "SECRET_EXPIRING",
        "days_left": 14,
        "fix": CODES["SECRET_EXPIRING"].fix,
    }
    return Alert(**{**values, **fields})


def many(count: int) -> tuple[Alert, ...]:
    return tuple(
        alert(
            facility=f"plant-{i:03d}", title=f"plant-{i:03d}: client secret expires in {i % 30} days", days_left=i % 30, status_url=STATUS, steps=STEPS[: i % 4]
        )
        for i in range(count)
    )


# A representative set: each kind of alert and each severity, with and without steps,
# status page and days left, a digest of three and one too large for a card.
NOTICES: dict[str, Notice] = {
    "expiring-warning": Notice("ops", (alert(),)),
    "expired-critical-with-status": Notice(
        "ops",
        (
            alert(
                severity="critical",
                code="SECRET_EXPIRED",
                days_left=-2,
                title="acme: client secret expired",
                message=CODES["SECRET_EXPIRED"].meaning,
                fix=CODES["SECRET_EXPIRED"].fix,
                status_url=STATUS,
            ),
        ),
    ),
    "check-error-no-days": Notice(
        "ops", (alert(severity="error", kind="worsened", code="VAULT_SECRET_MISSING", days_left=None, title="acme: the check could not run"),)
    ),
    "resolved": Notice("ops", (alert(severity="resolved", kind="resolved", title="acme: resolved", fix=None, days_left=None),)),
    "reminder-critical": Notice("ops", (alert(severity="critical", kind="reminder"),)),
    "manual-handoff-steps": Notice(
        "ops",
        (
            alert(
                severity="info",
                kind="rotation:awaiting-confirmation",
                code=None,
                title="acme: paste the new client secret into SmartTrace",
                message="A new client secret is in Key Vault and verified.",
                fix="Follow the steps, then confirm.",
                steps=STEPS,
                status_url=STATUS,
            ),
        ),
    ),
    "rotation-failed": Notice(
        "ops",
        (
            alert(
                severity="error",
                kind="rotation:failed",
                code=None,
                days_left=5,
                title="acme: rotation failed",
                message="addPassword was refused: CredentialInvalidLifetimeAsPerAppPolicy.",
                fix=None,
            ),
        ),
    ),
    "monitor-failure": Notice(
        "ops",
        (
            alert(
                severity="critical",
                kind="monitor-failure",
                facility=None,
                tenant_id=None,
                app_id=None,
                code=None,
                days_left=None,
                title="the monitor failed",
                message="3 of 40 apps could not be checked.",
                operations=True,
            ),
        ),
    ),
    "channel-down": Notice(
        "ops",
        (
            alert(
                severity="warning",
                kind="channel-down",
                facility=None,
                tenant_id=None,
                app_id=None,
                code=None,
                days_left=None,
                title="channel mail is down",
                message="SMTP 421 after 5 attempts.",
            ),
        ),
    ),
    "alerts-of-three": Notice("ops", many(3)),
    "digest-of-three": Notice("ops", many(3), digest=True),
    "two-status-pages": Notice("ops", (alert(status_url=STATUS), alert(facility="beta", status_url=STATUS + "#beta"))),
    "digest-of-200": Notice("ops", many(200), digest=True),
}


# ---------------------------------------------------------------- the schema


@functools.lru_cache(maxsize=1)
def _card_validator() -> jsonschema.Draft6Validator:
    schema = json.loads(require_reference("teams", "adaptive-card-1.5.0.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER)


def card_errors(card: dict[str, Any]) -> list[str]:
    """Schema errors of a card, against Microsoft's Adaptive Card 1.5 schema as it is.
    (Our cards leave out Teams' ``msteams`` width extension: the schema refuses
    unknown properties, and a strictly valid card matters more than full width.)"""
    validator = _card_validator()
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(card)]


def card_of(message: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = message["attachments"]
    return attachment["content"]


def elements(node: Any) -> list[dict[str, Any]]:
    """Every object with a ``type`` in the card, depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "type" in node:
            found.append(node)
        for value in node.values():
            found += elements(value)
    elif isinstance(node, list):
        for value in node:
            found += elements(value)
    return found


def card_text(card: dict[str, Any]) -> str:
    """The card's text as shown: a line per TextBlock and per RichTextBlock (its runs joined)."""
    lines = [
        e["text"] if e["type"] == "TextBlock" else "".join(run["text"] for run in e["inlines"])
        for e in elements(card)
        if e["type"] in ("TextBlock", "RichTextBlock")
    ]
    return "\n".join(lines)


def test_the_validator_is_not_vacuous() -> None:
    card = card_of(teams_message(NOTICES["manual-handoff-steps"]))
    assert card_errors(card) == []
    broken = [copy.deepcopy(card) for _ in range(5)]
    broken[0]["version"] = 1.5  # a number, not a string
    broken[1]["body"][1]["items"] = "not a list"
    broken[2]["body"][1]["items"][0]["inlines"][0]["colour"] = "attention"  # misspelt property
    broken[3]["body"][1]["style"] = "danger"  # not a ContainerStyle
    broken[4]["actions"][0].pop("url")
    for card_ in broken:
        assert card_errors(card_), card_
    # Teams' width extension is not in the schema: a card with it would fail
    assert card_errors({**card, "msteams": {"width": "Full"}})


# ---------------------------------------------------------------- cards


@pytest.mark.parametrize("name", list(NOTICES))
def test_every_card_is_valid_and_within_the_size_limit(name: str) -> None:
    notice = NOTICES[name]
    message = teams_message(notice)
    card = card_of(message)
    assert card_errors(card) == []
    assert card["version"] == "1.5" and card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert len(serialise(message)) < 28 * 1024
    assert len(json.dumps(message, separators=(",", ":")).encode()) < 28 * 1024  # escaped as ASCII, too


def _jsonc(text: str) -> Any:
    """The reference sample is JSON with a trailing comma."""
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


def test_the_envelope_has_the_shape_of_teams_reference_sample() -> None:
    reference = _jsonc(require_reference("teams", "incoming-webhook-adaptive-card-payload.VERBATIM.jsonc").read_text(encoding="utf-8"))
    message = teams_message(NOTICES["expiring-warning"])
    assert set(message) == set(reference) and message["type"] == reference["type"] == "message"
    (ours,), (theirs,) = message["attachments"], reference["attachments"]
    assert set(ours) == set(theirs)
    assert ours["contentType"] == theirs["contentType"] == ADAPTIVE_CARD
    assert ours["contentUrl"] is None and theirs["contentUrl"] is None
    assert ours["content"]["type"] == theirs["content"]["type"] == "AdaptiveCard"
    assert ours["content"]["$schema"] == theirs["content"]["$schema"]
    assert card_errors(theirs["content"]) == []  # the sample is a valid card, and the validator agrees


def test_a_card_shows_what_the_alert_says() -> None:
    a = NOTICES["manual-handoff-steps"].alerts[0]
    card = card_of(teams_message(NOTICES["manual-handoff-steps"]))
    text = card_text(card)
    for value in (a.facility, a.tenant_id, a.app_id, a.title, a.message, a.fix, "INFO"):
        assert value and value in text
    for number, step in enumerate(STEPS, 1):
        assert f"{number}. {step}" in text
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the status page", "url": STATUS}]
    assert "Days left: 14" in text.splitlines() and f"App (client) id: {APP}" in text.splitlines()
    assert "msteams" not in card


@pytest.mark.parametrize(
    "severity, style",
    [
        ("critical", "attention"),
        ("error", "attention"),
        ("warning", "warning"),
        ("resolved", "good"),
        ("info", "emphasis"),
        ("something-new", "emphasis"),  # an unknown severity still renders
    ],
)
def test_severity_is_shown_with_a_colour(severity: str, style: str) -> None:
    card = card_of(teams_message(Notice("ops", (alert(severity=severity),))))
    (section,) = [e for e in card["body"] if e["type"] == "Container"]
    assert section["style"] == style
    label = section["items"][0]["inlines"][0]
    assert label["text"].strip() == severity.upper() and label.get("color")
    assert card_errors(card) == []


def test_no_days_left_and_no_status_page_means_neither_is_shown() -> None:
    card = card_of(teams_message(NOTICES["check-error-no-days"]))
    assert "Days left" not in card_text(card) and "actions" not in card


def test_a_digest_has_one_section_per_alert() -> None:
    card = card_of(teams_message(NOTICES["digest-of-three"]))
    sections = [e for e in card["body"] if e["type"] == "Container"]
    assert len(sections) == 3
    assert [s["items"][0]["inlines"][1]["text"] for s in sections] == [a.title for a in NOTICES["digest-of-three"].alerts]
    assert "daily digest, 3 changes" in card["body"][0]["text"]
    assert "more: see the status page" not in card_text(card)


def test_several_status_pages_get_a_link_each() -> None:
    card = card_of(teams_message(NOTICES["two-status-pages"]))
    assert "actions" not in card
    urls = [a["url"] for e in elements(card) if e["type"] == "ActionSet" for a in e["actions"]]
    assert urls == [STATUS, STATUS + "#beta"]


def test_a_digest_too_large_keeps_whole_sections_and_counts_the_rest() -> None:
    notice = NOTICES["digest-of-200"]
    message = teams_message(notice)
    card = card_of(message)
    sections = [e for e in card["body"] if e["type"] == "Container"]
    assert 1 <= len(sections) < 200
    assert card["body"][-1]["text"] == f"and {200 - len(sections)} more: see the status page"
    # whole sections, the first ones, in order; nothing cut inside them
    assert [s["items"][0]["inlines"][1]["text"] for s in sections] == [a.title for a in notice.alerts[: len(sections)]]
    for section, a in zip(sections, notice.alerts):
        assert sum(1 for item in section["items"] if item["type"] == "RichTextBlock" and re.match(r"\d+\. ", item["inlines"][0]["text"])) == len(a.steps)
    size = len(serialise(message))
    assert size < 28 * 1024
    # and it used the room: the next section would not have fitted in our budget
    (next_section,) = [e for e in card_of(teams_message(Notice("ops", notice.alerts[len(sections) : len(sections) + 1])))["body"] if e["type"] == "Container"]
    assert size + len(serialise(next_section)) > TEAMS_BUDGET_BYTES - 10  # the "N more" line loses a digit at most
    assert card_errors(card) == []


def test_one_huge_alert_is_kept_and_shortened() -> None:
    # four bytes a character: even the first section at the usual text limits is too large
    huge = alert(message="\U0001f600" * 1_000_000, fix="y" * 100_000, title="t" * 10_000, steps=tuple("s" * 5000 for _ in range(100)))
    message = teams_message(Notice("ops", (huge, alert())))
    card = card_of(message)
    sections = [e for e in card["body"] if e["type"] == "Container"]
    # texts are shortened for every section alike; whatever then fits is kept
    assert len(sections) in (1, 2) and (len(sections) == 2) == ("more: see the status page" not in card_text(card))
    first = sections[0]["items"]
    assert first[0]["inlines"][1]["text"].startswith("ttt") and first[0]["inlines"][1]["text"].endswith("…")
    shown = card_text(card)
    assert "What is wrong: \U0001f600" in shown and shown.count("\U0001f600") < 3000  # shortened below the usual 3000
    assert "30. sss" in shown and "… and 70 more steps on the status page" in shown
    assert len(serialise(message)) < TEAMS_MAX_BYTES
    assert card_errors(card) == []


def test_one_step_left_out_is_one_step() -> None:
    shown = card_text(card_of(teams_message(Notice("ops", (alert(steps=tuple(f"step {n}" for n in range(31))),)))))
    assert "… and 1 more step on the status page" in shown and "1 more steps" not in shown


HOSTILE = '<script>alert("x")</script> & [click](https://evil.example) **bold**'


def test_alert_text_never_becomes_markup_in_a_card() -> None:
    a = alert(title=HOSTILE, message=HOSTILE, fix=HOSTILE, steps=(HOSTILE,), facility="acme[x](https://evil.example)", status_url="javascript:alert(1)")
    card = card_of(teams_message(Notice("ops", (a,))))
    assert card_errors(card) == []
    # Alert text lives in TextRuns only (shown as typed); TextBlocks (markdown) hold our own words.
    for e in elements(card):
        if e["type"] == "TextBlock":
            assert "evil" not in e["text"] and "script" not in e["text"]
    assert "javascript:" not in json.dumps(card)
    assert "actions" not in card


# ---------------------------------------------------------------- email


@pytest.mark.parametrize("name", [n for n in NOTICES if n != "digest-of-200"])
def test_email_bodies_say_what_the_card_says(name: str) -> None:
    notice = NOTICES[name]
    subject, text, markup = email_bodies(notice)
    assert subject == notice.subject
    for a in notice.alerts:
        for value in (a.facility, a.tenant_id, a.app_id, a.title, a.message, a.fix, *a.steps):
            if value:
                assert value in text, value
                assert _html_text(value) in markup, value
        if a.days_left is not None:
            assert f"Days left: {a.days_left}" in text and f'Days left</td><td style="padding:2px 0;">{a.days_left}<' in markup
    for number, step in enumerate(notice.alerts[0].steps, 1):
        assert f"{number}. {step}" in text
    if notice.alerts[0].steps:
        assert markup.count("<li ") == sum(len(a.steps) for a in notice.alerts)


def _html_text(value: str) -> str:
    import html

    return html.escape(value, quote=True)


def test_html_escapes_every_field_and_links_only_the_status_page() -> None:
    a = alert(
        title=HOSTILE, message=HOSTILE, fix=HOSTILE, steps=(HOSTILE,), facility='"><img src=x onerror=alert(1)>', code="<b>", status_url=STATUS + '?a=1&b="2"'
    )
    _, text, markup = email_bodies(Notice("ops", (a,)))
    assert "<script" not in markup and "<img" not in markup and "<b>" not in markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; [click](https://evil.example)" in markup
    assert HOSTILE in text  # the plain text is as typed
    assert re.findall(r"<a [^>]*>", markup) == []  # a status URL with a quote is not linked
    ok = email_bodies(Notice("ops", (alert(status_url=STATUS + "?a=1&b=2"),)))[2]
    assert re.findall(r'href="([^"]*)"', ok) == [STATUS + "?a=1&amp;b=2"]
    assert not re.search(r"<(img|link|script|style|iframe)\b", ok) and "url(" not in ok and "src=" not in ok
    assert 'style="' in ok and "class=" not in ok  # inline styles only


def test_email_message_is_multipart_alternative_with_a_stable_message_id() -> None:
    notice = Notice("mail", (alert(status_url=STATUS, steps=STEPS, title="acme: überfällig — 3 days"),), recipients=("it@acme.example",))
    first = email_message(notice, "sso-monitor@contoso.example", ["ops@contoso.example", "it@acme.example"])
    again = email_message(notice, "sso-monitor@contoso.example", ["ops@contoso.example", "it@acme.example"], date=AT + timedelta(hours=5))
    parsed = message_from_bytes(first.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["From"] == "sso-monitor@contoso.example"
    assert parsed["To"] == "ops@contoso.example, it@acme.example"
    assert parsed["Subject"] == notice.subject
    assert parsed["Date"].datetime == AT  # the newest alert's time unless given
    assert parsed["Message-ID"] == again["Message-ID"] == f"<{notice.id}.sso-monitor@contoso.example>"
    other = email_message(Notice("mail", (alert(title="other"),)), "sso-monitor@contoso.example", ["ops@contoso.example"])
    assert other["Message-ID"] != first["Message-ID"]
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert "überfällig" in parsed.get_body(("plain",)).get_content()
    assert "überfällig" in parsed.get_body(("html",)).get_content()


def test_a_title_cannot_inject_headers() -> None:
    notice = Notice("mail", (alert(title="expiring\r\nBcc: evil@example.com\nX-Evil: 1"),))
    raw = email_message(notice, "sso-monitor@contoso.example", ["ops@contoso.example"]).as_bytes(policy=policy.SMTP)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert "Bcc: evil@example.com" in parsed["Subject"]


# ---------------------------------------------------------------- generated alerts


texts = st.text(max_size=40) | st.text(min_size=500, max_size=6000)
optional_texts = st.none() | texts
generated_alert = st.builds(
    Alert,
    kind=st.sampled_from(["appeared", "worsened", "reminder", "resolved", "rotation:failed", "monitor-failure"]),
    severity=st.sampled_from(SEVERITIES) | st.text(max_size=12),
    title=texts,
    message=texts,
    at=st.datetimes(timezones=st.just(UTC)),
    facility=optional_texts,
    tenant_id=optional_texts,
    app_id=optional_texts,
    code=st.none() | st.sampled_from(sorted(CODES)),
    days_left=st.none() | st.integers(-10_000, 10_000),
    fix=optional_texts,
    steps=st.lists(texts, max_size=40).map(tuple),
    status_url=st.none() | st.just(STATUS) | st.text(max_size=30),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(alerts=st.lists(generated_alert, min_size=1, max_size=25), digest=st.booleans())
def test_generated_alerts_give_valid_cards_within_the_limit(alerts: list[Alert], digest: bool) -> None:
    notice = Notice("ops", tuple(alerts), digest=digest)
    message = teams_message(notice)
    card = card_of(message)
    assert card_errors(card) == []
    assert len(serialise(message)) < 28 * 1024
    sections = [e for e in card["body"] if e["type"] == "Container"]
    assert 1 <= len(sections) <= len(alerts)
    if len(sections) < len(alerts):
        assert card["body"][-1]["text"] == f"and {len(alerts) - len(sections)} more: see the status page"
    subject, _, _ = email_bodies(notice)
    assert "\n" not in subject and "\r" not in subject
    email_message(notice, "sso-monitor@contoso.example", ["ops@contoso.example"]).as_bytes(policy=policy.SMTP)
