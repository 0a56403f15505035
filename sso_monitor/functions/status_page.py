"""The status page (GET /api/status/page): the status document as one HTML file.

Self-contained: inline CSS, inline SVG, no script, no URL; a Content-Security-Policy
forbids fetching anything. Every value from the document is escaped.
Stdlib only."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

from sso_monitor.models import days_until

STATUS_ORDER = ("critical", "error", "warning", "ok")
THRESHOLDS = (30, 14, 7)

# Colour is never the only signal: every badge carries a symbol and the status word.
_BADGE = {
    "critical": ("\u2716", "#b3261e", "#ffffff"),
    "error": ("!", "#6a1b9a", "#ffffff"),
    "warning": ("\u25b2", "#f2c200", "#2b2100"),
    "ok": ("\u2714", "#1e6b34", "#ffffff"),
}
_BADGE_OTHER = ("?", "#5f6368", "#ffffff")

# The SVG timeline's geometry (user units; the SVG scales to the card's width).
_W, _H = 640, 68
_X0, _X1 = 24, 616
_TRACK_Y, _TRACK_H = 28, 16

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;background:#f4f5f7}
main{max-width:980px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:1.5rem;margin:0 0 4px}
.sub{color:#57606a;margin:0 0 12px}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 20px;padding:0;list-style:none}
.counts li{background:#fff;border:1px solid #d0d7de;border-radius:999px;padding:2px 12px 2px 4px}
.badge{display:inline-block;border-radius:999px;padding:1px 10px;font-weight:700;font-size:.8rem;letter-spacing:.04em;text-transform:uppercase;white-space:nowrap}
.card{background:#fff;border:1px solid #d0d7de;border-left-width:6px;border-radius:8px;padding:14px 18px 10px;margin:0 0 14px}
.card header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 14px}
.card h2{font-size:1.2rem;margin:0}
.days{margin-left:auto;font-weight:700;font-size:1.05rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:2px 12px;margin:8px 0;font-size:.88rem}
dl.meta dt{color:#57606a}
dl.meta dd{margin:0;overflow-wrap:anywhere}
code{font:.85em ui-monospace,"DejaVu Sans Mono",monospace;background:#f0f2f4;border-radius:4px;padding:0 4px}
ul.findings{margin:6px 0 8px;padding-left:18px;font-size:.9rem}
ul.findings li{margin:2px 0}
.fix{color:#57606a;font-size:.85rem}
.none{color:#57606a;font-size:.9rem;margin:6px 0}
svg.timeline{display:block;width:100%;height:auto;max-width:720px;margin-top:4px}
.errors{background:#fff4f4;border:1px solid #e5a5a5;border-radius:8px;padding:8px 16px;margin:0 0 16px}
.notice{background:#fff8e1;border:1px solid #d4a72c;border-radius:8px;padding:8px 16px;margin:0 0 16px}
.notice h2{font-size:1rem;margin:4px 0}
""".strip()


def render_status_page(document: Mapping[str, Any], *, horizon_days: int = 90) -> str:
    """The status document (see sso_monitor.service.build_status) as a complete HTML5 page."""
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    generated = _text(document.get("generatedAt")) or "unknown"
    apps = sorted((a for a in document.get("apps") or [] if isinstance(a, Mapping)), key=_sort_key)

    counts: dict[str, int] = {}
    for app in apps:
        status = _status(app)
        counts[status] = counts.get(status, 0) + 1
    order = list(STATUS_ORDER) + sorted(s for s in counts if s not in STATUS_ORDER)
    count_items = "".join(f"<li>{_badge(s)} {counts.get(s, 0)}</li>" for s in order)
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in order)

    errors = [str(e) for e in document.get("errors") or []]
    errors_html = ""
    if errors:
        items = "".join(f"<li>{escape(e)}</li>" for e in errors)
        errors_html = f'<section class="errors" aria-label="Monitor errors"><h2>The monitor itself failed</h2><ul>{items}</ul></section>'

    notice_html = ""
    message = _text(document.get("message"))
    if document.get("stale") is True or message:
        title = "No scheduled run has completed yet" if not document.get("generatedAt") else "This report is stale" if document.get("stale") is True else "Note"
        notice_html = f'<section class="notice" role="status" aria-label="{escape(title)}"><h2>{escape(title)}</h2><p>{escape(message)}</p></section>'

    cards = "".join(_card(app, generated, horizon_days) for app in apps) or '<p class="none">No apps are configured.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>SSO monitor status: {escape(summary)}</title>"
        f"<style>{_CSS}</style></head>\n"
        "<body><main>"
        "<h1>SmartTrace sign-in: client secret status</h1>"
        f'<p class="sub">Generated <time datetime="{escape(generated)}">{escape(_human_time(generated))}</time>'
        f" \u00b7 {len(apps)} app{'s' if len(apps) != 1 else ''} \u00b7 timeline: today to +{horizon_days} days</p>"
        f'<ul class="counts" aria-label="Apps per status: {escape(summary)}">{count_items}</ul>'
        f"{notice_html}{errors_html}{cards}"
        "</main></body></html>\n"
    )


def days_text(days_left: int | None) -> str:
    """How the page words the days to expiry: '12 days', '1 day', 'expired 3 days ago', 'unknown'."""
    if days_left is None:
        return "unknown"
    if days_left < 0:
        ago = -days_left
        return f"expired {ago} day{'s' if ago != 1 else ''} ago"
    return f"{days_left} day{'s' if days_left != 1 else ''}"


def _card(app: Mapping[str, Any], generated: str, horizon: int) -> str:
    facility = _text(app.get("facility")) or "(unnamed)"
    status = _status(app)
    days = _days_left(app, generated)
    label = days_text(days)
    expires = _text(app.get("secretExpires"))
    tenant = _text(app.get("tenantId"))
    app_id = _text(app.get("appId"))
    rotation = app.get("rotation")
    if not isinstance(rotation, Mapping):
        rotation = {}
    colour = _BADGE.get(status, _BADGE_OTHER)[1]

    meta = [
        ("Tenant", f'<span title="{escape(tenant)}">{escape(_short(tenant))}</span>' if tenant else "\u2014"),
        ("App", f'<span title="{escape(app_id)}">{escape(_short(app_id))}</span>' if app_id else "\u2014"),
        ("Secret expires", f'<time datetime="{escape(expires)}">{escape(_human_time(expires))}</time>' if expires else "unknown"),
        ("Rotation", _rotation(rotation)),
    ]
    meta_html = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)

    findings = [f for f in app.get("findings") or [] if isinstance(f, Mapping)]
    if findings:
        items = []
        for f in findings:
            fix = _text(f.get("fix"))
            items.append(
                f"<li><code>{escape(_text(f.get('code')))}</code> "
                f"<span>({escape(_text(f.get('severity')) or 'info')})</span> {escape(_text(f.get('message')))}"
                + (f'<br><span class="fix">Fix: {escape(fix)}</span>' if fix else "")
                + "</li>"
            )
        findings_html = f'<ul class="findings" aria-label="Findings">{"".join(items)}</ul>'
    else:
        findings_html = '<p class="none">No findings.</p>'

    days_aria = f"Secret expires in {label}" if days is not None and days >= 0 else f"Secret {label}" if days is not None else "Secret expiry unknown"
    return (
        f'<section class="card" style="border-left-color:{colour}" aria-label="{escape(facility)}: {escape(status)}, {escape(days_aria)}">'
        f"<header><h2>{escape(facility)}</h2>{_badge(status)}"
        f'<span class="days" aria-label="{escape(days_aria)}">{escape(label)}</span></header>'
        f'<dl class="meta">{meta_html}</dl>'
        f"{findings_html}"
        f"{_timeline(facility, days, horizon)}"
        "</section>"
    )


def _timeline(facility: str, days: int | None, horizon: int) -> str:
    def x(day: float) -> float:
        return round(_X0 + (_X1 - _X0) * min(max(day, 0), horizon) / horizon, 1)

    top, bottom = _TRACK_Y, _TRACK_Y + _TRACK_H
    parts: list[str] = []
    # The track: zones coloured by how urgent a secret expiring there is, tinted lightly.
    zones = [(0, 7, "#f6c9c5"), (7, 14, "#fbe0b8"), (14, 30, "#fdf1c4"), (30, horizon, "#e3efe5")]
    for start, end, fill in zones:
        if start < horizon:
            parts.append(f'<rect x="{x(start)}" y="{top}" width="{round(x(end) - x(start), 1)}" height="{_TRACK_H}" fill="{fill}"/>')
    parts.append(f'<rect x="{_X0}" y="{top}" width="{_X1 - _X0}" height="{_TRACK_H}" fill="none" stroke="#8c959f"/>')
    # Threshold markers, labelled inside the track just left of their line, unless the
    # expiry marker would sit on the label (the dashed line stays).
    marker = x(days) if days is not None else None
    for t in THRESHOLDS:
        if 0 < t < horizon:
            parts.append(f'<line x1="{x(t)}" y1="{top - 3}" x2="{x(t)}" y2="{bottom + 3}" stroke="#6e4a00" stroke-dasharray="3 2"/>')
            right = x(t) - 3
            left = right - 6 * len(f"{t}d")
            if marker is None or not left - 4 <= marker <= right + 2:
                parts.append(f'<text x="{right}" y="{top + 12}" font-size="10" text-anchor="end" fill="#4a3200">{t}d</text>')
    # Ticks every 30 days, and the horizon.
    for tick in sorted(set(range(0, horizon + 1, 30)) | {horizon}):
        if tick != horizon and horizon - tick < 12:
            continue  # too close to the horizon's own label
        anchor = "start" if tick == 0 else "end" if tick == horizon else "middle"
        text = "today" if tick == 0 else f"+{tick} days" if tick == horizon else f"+{tick}"
        parts.append(f'<line x1="{x(tick)}" y1="{bottom}" x2="{x(tick)}" y2="{bottom + 6}" stroke="#57606a"/>')
        parts.append(
            f'<text x="{x(tick) - 2 if tick == horizon else x(tick)}" y="{bottom + 18}" font-size="11" text-anchor="{anchor}" fill="#57606a">{text}</text>'
        )
    # The secret's expiry.
    label = days_text(days)
    if days is None:
        parts.append(f'<text x="{(_X0 + _X1) / 2}" y="14" font-size="12" text-anchor="middle" fill="#57606a">expiry unknown</text>')
        summary = "expiry unknown"
    else:
        mx = x(days)
        if days < 0:
            caption, anchor, tx = f"\u25c0 {label}", "start", float(_X0 - 4)
            summary = f"secret {label}"
        elif days > horizon:
            caption, anchor, tx = f"expires in {label} \u25b6", "end", _X1 + 4
            summary = f"expires in {label}, beyond the {horizon}-day horizon"
        else:
            caption = f"expires in {label}"
            anchor, tx = ("start", mx - 6) if mx < _X0 + 80 else ("end", mx + 6) if mx > _X1 - 80 else ("middle", mx)
            summary = f"expires in {label}"
        colour = "#b3261e" if days < 7 else "#7a4f00" if days <= 30 else "#1e6b34"
        parts.append(f'<line x1="{mx}" y1="{top - 6}" x2="{mx}" y2="{bottom + 2}" stroke="{colour}" stroke-width="3"/>')
        parts.append(f'<path d="M{mx - 6} {top - 11} L{mx + 6} {top - 11} L{mx} {top - 3} Z" fill="{colour}"/>')
        parts.append(f'<text x="{tx}" y="13" font-size="12" font-weight="700" text-anchor="{anchor}" fill="{colour}">{escape(caption)}</text>')
    aria = f"Expiry timeline for {facility}: {summary}; thresholds at 30, 14 and 7 days; axis from today to {horizon} days"
    return f'<svg class="timeline" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(aria)}"><title>{escape(aria)}</title>{"".join(parts)}</svg>'


def _rotation(rotation: Mapping[str, Any]) -> str:
    stage = _text(rotation.get("stage")) or "unknown"
    bits = [escape(stage)]
    in_flight = _text(rotation.get("inFlightKeyId"))
    if in_flight:
        bits.append(f'in flight <code title="{escape(in_flight)}">{escape(_short(in_flight))}</code>')
    retires = _text(rotation.get("previousRetiresAt"))
    if retires:
        bits.append(f'previous retires <time datetime="{escape(retires)}">{escape(_human_time(retires))}</time>')
    retiring = rotation.get("retiring")
    if isinstance(retiring, list) and retiring:
        bits.append(f"{len(retiring)} previous secret{'s' if len(retiring) != 1 else ''} retiring")
    return " \u00b7 ".join(bits)


def _badge(status: str) -> str:
    symbol, bg, fg = _BADGE.get(status, _BADGE_OTHER)
    return f'<span class="badge" style="background:{bg};color:{fg}"><span aria-hidden="true">{symbol}</span> {escape(status)}</span>'


def _sort_key(app: Mapping[str, Any]) -> tuple[int, str]:
    status = _status(app)
    rank = STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)
    return rank, _text(app.get("facility")).casefold()


def _status(app: Mapping[str, Any]) -> str:
    return _text(app.get("status")) or "unknown"


def _days_left(app: Mapping[str, Any], generated: str) -> int | None:
    days = app.get("daysLeft")
    if isinstance(days, (int, float)) and not isinstance(days, bool) and math.isfinite(days):
        return math.floor(days)
    expires, now = _parse(app.get("secretExpires")), _parse(generated)
    if expires and now:
        return days_until(expires, now)
    return None


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _human_time(value: str) -> str:
    moment = _parse(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else value


def _short(value: str, keep: int = 8) -> str:
    return value if len(value) <= keep + 1 else value[:keep] + "\u2026"


def _text(value: Any) -> str:
    return "" if value is None else str(value)
