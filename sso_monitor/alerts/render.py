"""How a notice looks: a Teams Adaptive Card, and an email (plain text and HTML).

Pure functions of a ``Notice``: no I/O, no clock, nothing that is not in the
alerts. A secret cannot reach a card or an email this way, because no alert
field holds one (alert_ports.py).

Teams (docs/alerts.md, "Channels"): the webhook envelope around one Adaptive
Card 1.5, full width. One Container per alert, styled by severity, with the
facility, tenant, app id and days left as facts, then what is wrong, what to
do and the numbered steps. Free text goes into TextRuns, which Teams shows
as typed: a message cannot turn itself into a markdown link. A card stays
under Teams' 28 KB limit: whole alert sections are dropped from the end, with
a line "and N more: see the status page"; the first is always kept, its long
texts shortened until it fits.

Email: a multipart/alternative message whose plain text and HTML say the
same; the HTML has inline styles only, every field escaped, and no link but
the status page.
"""

from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from sso_monitor.alerts.ports import Alert, Notice
from sso_monitor.models import stamp


def handoff_steps(facts: Any) -> list[str]:
    """The numbered steps of a manual handoff (rotation.protocol.HandoffFacts), in words:
    copy the value from Key Vault, paste it into SmartTrace, sign in, confirm, and what
    becomes of the old secret."""
    vault = facts.vault_url or "the monitor's Key Vault"
    steps = [
        f"Copy the new secret value: Key Vault {vault}, Secrets, {facts.secret_name}, version {facts.version}, Show secret value "
        f"(or: az keyvault secret show --id {vault.rstrip('/')}/secrets/{facts.secret_name}/{facts.version} --query value -o tsv).",
        f"In SmartTrace ({facts.facility_url}): Integrations, Azure Active Directory, pencil (edit), Client secret: paste the value, Save.",
        f"Sign in once with Microsoft at {facts.facility_url} to check it works.",
        _confirm_step(facts),
    ]
    if facts.old_key_id and facts.old_end is not None:
        if facts.old_managed:
            after = f"The monitor removes it {facts.grace_days} days after your confirmation."
        else:  # hands off what is not ours: a secret made by hand is never removed by the monitor
            after = "It was made by hand, so the monitor leaves it alone: remove it under Certificates & secrets once sign-in works with the new one, or let it expire."
        steps.append(f"Before {stamp(facts.old_end)}: the old secret {facts.old_key_id} stops working then. {after}")
    return steps


def _confirm_step(facts: Any) -> str:
    command = f"sso-monitor confirm {facts.facility} --key-id {facts.key_id} (or POST /api/apps/{facts.facility}/confirm)"
    mode = getattr(facts, "confirmation", "manual")
    if mode == "activity":
        return (
            "Nothing to confirm: the monitor confirms from Entra's records once SmartTrace has used the new secret. "
            f"If it says those records cannot be read, confirm yourself: {command}."
        )
    if mode == "activity-or-manual":
        return f"Confirm: {command}; or leave it to the monitor, which confirms from Entra's records once SmartTrace has used the new secret."
    return f"Confirm: {command}."


ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
TEAMS_MAX_BYTES = 28 * 1024  # Teams' message size limit: 413 above it
# Our own budget stays 1 KB below it: the limit applies to the message as Teams
# stores it, after the Workflow has wrapped the card.
TEAMS_BUDGET_BYTES = TEAMS_MAX_BYTES - 1024

# Longest text kept per field, before a card has to shrink further.
_TEXT_LIMITS = {"title": 300, "message": 3000, "fix": 2000, "step": 600}
_MAX_STEPS = 30
_SHORTEST = 40  # the first alert's texts are never cut below this

# severity -> (Container style, TextRun colour, HTML colour)
_LOOK = {
    "critical": ("attention", "attention", "#c4314b"),
    "error": ("attention", "attention", "#c4314b"),
    "warning": ("warning", "warning", "#c19c00"),
    "resolved": ("good", "good", "#237b4b"),
    "info": ("emphasis", "accent", "#5b5fc7"),
}


# ---------------------------------------------------------------- Teams


def teams_message(notice: Notice) -> dict[str, Any]:
    """The webhook envelope with one Adaptive Card for the notice, within TEAMS_BUDGET_BYTES."""
    several_links = len(_distinct_links(notice.alerts)) > 1
    limits = dict(_TEXT_LIMITS)
    while True:
        sections = _candidate_sections(notice.alerts, limits, several_links)
        kept = _most_that_fit(notice, sections)
        if kept or not sections or min(limits.values()) <= _SHORTEST:
            return _envelope(notice, sections[: max(kept, min(1, len(sections)))])
        limits = {name: max(_SHORTEST, limit // 2) for name, limit in limits.items()}


def serialise(message: dict[str, Any]) -> bytes:
    """The bytes sent to the webhook (compact JSON, UTF-8): what the size limit counts."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _candidate_sections(alerts: Sequence[Alert], limits: dict[str, int], link_each: bool) -> list[dict[str, Any]]:
    """The alerts' sections in order, up to the first that takes the total past the
    budget: those after it cannot fit (a digest of thousands costs no more than one of 30)."""
    sections: list[dict[str, Any]] = []
    total = 0
    for index, alert in enumerate(alerts):
        sections.append(_alert_section(alert, index, limits, link_each=link_each))
        total += len(serialise(sections[-1]))
        if total > TEAMS_BUDGET_BYTES:
            break
    return sections


def _most_that_fit(notice: Notice, sections: list[dict[str, Any]]) -> int:
    """The largest k such that the first k sections (and the "N more" line) fit; 0 if none does."""
    low, high = 0, len(sections)
    while low < high:
        middle = (low + high + 1) // 2
        if len(serialise(_envelope(notice, sections[:middle]))) <= TEAMS_BUDGET_BYTES:
            low = middle
        else:
            high = middle - 1
    return low


def _envelope(notice: Notice, sections: list[dict[str, Any]]) -> dict[str, Any]:
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": _heading(notice), "weight": "Bolder", "size": "Medium", "wrap": True}]
    body.extend(sections)
    left_out = len(notice.alerts) - len(sections)
    if left_out > 0:
        body.append({"type": "TextBlock", "text": f"and {left_out} more: see the status page", "wrap": True, "isSubtle": True, "separator": True})
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.5",
        "fallbackText": _clean(notice.subject, 300),
        "body": body,
    }
    links = _distinct_links(notice.alerts)
    if len(links) == 1:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the status page", "url": links[0]}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def _heading(notice: Notice) -> str:
    if notice.digest:
        return f"SmartTrace SSO monitor: daily digest, {_count(len(notice.alerts))}"
    if len(notice.alerts) == 1:
        return "SmartTrace SSO monitor"
    return f"SmartTrace SSO monitor: {_count(len(notice.alerts))}"


def _alert_section(alert: Alert, index: int, limits: dict[str, int], *, link_each: bool) -> dict[str, Any]:
    style, colour, _ = _look(alert.severity)
    items: list[dict[str, Any]] = [
        _runs(
            {"text": f"{_severity_label(alert.severity)} ", "weight": "Bolder", "color": colour},
            {"text": _clean(alert.title, limits["title"]), "weight": "Bolder"},
        )
    ]
    # Facts as TextRuns too, not a FactSet: a fact's value is markdown in Teams,
    # and markdown has no escape that Teams documents ("SECRET_EXPIRING").
    items.extend(_runs({"text": f"{title}: ", "isSubtle": True}, {"text": _clean(value, 200)}) for title, value in _facts(alert))
    for label, text, limit in (("What is wrong: ", alert.message, limits["message"]), ("What to do: ", alert.fix, limits["fix"])):
        if text:
            items.append(_runs({"text": label, "weight": "Bolder"}, {"text": _clean(text, limit)}))
    steps = alert.steps[:_MAX_STEPS]
    if steps:
        items.append(_runs({"text": "Steps", "weight": "Bolder"}))
        items.extend(_runs({"text": f"{number}. {_clean(step, limits['step'])}"}) for number, step in enumerate(steps, 1))
        if len(alert.steps) > len(steps):
            more = len(alert.steps) - len(steps)
            items.append(_runs({"text": f"… and {more} more step{'' if more == 1 else 's'} on the status page", "italic": True}))
    link = _link(alert.status_url)
    if link and link_each:
        items.append({"type": "ActionSet", "actions": [{"type": "Action.OpenUrl", "title": "Open the status page", "url": link}]})
    section: dict[str, Any] = {"type": "Container", "style": style, "items": items, "spacing": "Medium"}
    if index:
        section["separator"] = True
    return section


def _runs(*runs: dict[str, Any]) -> dict[str, Any]:
    """A RichTextBlock: its TextRuns are shown as typed (no markdown)."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", **run} for run in runs]}


def _distinct_links(alerts: Iterable[Alert]) -> list[str]:
    links: list[str] = []
    for alert in alerts:
        link = _link(alert.status_url)
        if link and link not in links:
            links.append(link)
    return links


# ---------------------------------------------------------------- email


def email_bodies(notice: Notice) -> tuple[str, str, str]:
    """(subject, plain text, HTML) for the notice."""
    subject = _clean(" ".join(notice.subject.split()), 250)
    return subject, _text_body(notice), _html_body(notice, subject)


def email_message(notice: Notice, sender: str, recipients: Sequence[str], *, date: datetime | None = None) -> EmailMessage:
    """The RFC 5322 message: multipart/alternative (plain text, then HTML).

    ``date``: the Date header; by default the newest alert's time, so the function
    stays pure. The Message-ID comes from ``notice.id``: a retry of the same notice
    carries the same one, and mail systems can recognise the duplicate."""
    subject, text, markup = email_bodies(notice)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    when = date or max((a.at for a in notice.alerts), default=None)
    if when is not None:
        message["Date"] = format_datetime(when if when.tzinfo else when.astimezone())
    domain = sender.rpartition("@")[2] or "sso-monitor.invalid"
    message["Message-ID"] = f"<{notice.id}.sso-monitor@{domain}>"
    # RFC 3834, and Exchange's own header: no out-of-office replies to the monitor.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(markup, subtype="html")
    return message


def _text_body(notice: Notice) -> str:
    lines: list[str] = [_heading(notice), ""]
    for index, alert in enumerate(notice.alerts):
        if index:
            lines += ["-" * 60, ""]
        lines.append(f"[{alert.severity}] {_clean(alert.title)}")
        lines += [f"{title}: {_clean(value)}" for title, value in _facts(alert)]
        for label, text in (("What is wrong", alert.message), ("What to do", alert.fix)):
            if text:
                lines += ["", f"{label}:", _clean(text)]
        if alert.steps:
            lines += ["", "Steps:"]
            lines += [f"  {number}. {_clean(step)}" for number, step in enumerate(alert.steps, 1)]
        link = _link(alert.status_url)
        if link:
            lines += ["", f"Status page: {link}"]
        lines.append("")
    lines.append("Sent by the SmartTrace SSO monitor.")
    return "\n".join(lines) + "\n"


def _html_body(notice: Notice, subject: str) -> str:
    e = _escape
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>' + e(subject) + "</title></head>",
        '<body style="margin:0;padding:16px;background:#f5f5f5;font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#242424;">',
        f'<h1 style="font-size:18px;margin:0 0 12px 0;">{e(_heading(notice))}</h1>',
    ]
    for alert in notice.alerts:
        colour = _look(alert.severity)[2]
        parts.append(f'<div style="background:#ffffff;border-left:6px solid {colour};padding:12px 16px;margin:0 0 12px 0;">')
        parts.append(
            f'<p style="margin:0 0 8px 0;font-size:16px;"><strong style="color:{colour};">{e(_severity_label(alert.severity))}</strong> '
            f"<strong>{e(_clean(alert.title))}</strong></p>"
        )
        facts = _facts(alert)
        if facts:
            rows = "".join(
                f'<tr><td style="padding:2px 12px 2px 0;color:#616161;white-space:nowrap;vertical-align:top;">{e(title)}</td>'
                f'<td style="padding:2px 0;">{e(value)}</td></tr>'
                for title, value in facts
            )
            parts.append(f'<table role="presentation" style="border-collapse:collapse;margin:0 0 8px 0;">{rows}</table>')
        for label, text in (("What is wrong", alert.message), ("What to do", alert.fix)):
            if text:
                parts.append(f'<p style="margin:8px 0 4px 0;"><strong>{label}</strong></p><p style="margin:0;white-space:pre-wrap;">{e(_clean(text))}</p>')
        if alert.steps:
            items = "".join(f'<li style="margin:0 0 4px 0;">{e(_clean(step))}</li>' for step in alert.steps)
            parts.append(f'<p style="margin:8px 0 4px 0;"><strong>Steps</strong></p><ol style="margin:0;padding-left:24px;">{items}</ol>')
        link = _link(alert.status_url)
        if link:
            parts.append(f'<p style="margin:8px 0 0 0;"><a href="{e(link)}" style="color:#5b5fc7;">Open the status page</a></p>')
        parts.append("</div>")
    parts.append('<p style="margin:12px 0 0 0;font-size:12px;color:#616161;">Sent by the SmartTrace SSO monitor.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- shared


def _facts(alert: Alert) -> list[tuple[str, str]]:
    facts = [
        ("Facility", alert.facility),
        ("Tenant", alert.tenant_id),
        ("App (client) id", alert.app_id),
        ("Days left", None if alert.days_left is None else str(alert.days_left)),
        ("Finding", alert.code),
    ]
    return [(title, value) for title, value in facts if value not in (None, "")]


def _look(severity: str) -> tuple[str, str, str]:
    return _LOOK.get(severity, _LOOK["info"])


def _severity_label(severity: str) -> str:
    return _clean(severity, 20).upper() or "INFO"


def _count(n: int) -> str:
    return f"{n} change{'' if n == 1 else 's'}"


def _link(url: str | None) -> str | None:
    """The status page URL when it is an absolute http(s) URL; anything else is not linked."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("https", "http") or not parts.netloc or any(ch.isspace() or ch in '"<>' for ch in url):
        return None
    return url


def _clean(text: str | None, limit: int | None = None) -> str:
    """Text without control characters (newlines and tabs kept) or lone surrogates,
    cut to ``limit`` characters with an ellipsis."""
    if not text:
        return ""
    kept = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))
    if limit is not None and len(kept) > limit:
        kept = kept[: limit - 1].rstrip() + "…"
    return kept


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
