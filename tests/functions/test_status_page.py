"""The status page: pure rendering tests, then the page as headless Chromium renders it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sso_monitor.functions.status_page import days_text, render_status_page

TENANT = "8f2c1d4e-0000-4000-8000-00000000a001"


def _app(facility: str, status: str, days: int | None, *, expires: str | None = "2026-12-11T12:00:00Z", findings=(), stage="current") -> dict:
    return {
        "facility": facility,
        "tenantId": TENANT,
        "appId": "0b7e5f3a-1111-4111-8111-00000000b001",
        "status": status,
        "secretExpires": expires if days is not None else None,
        "daysLeft": days,
        "findings": [dict(f) for f in findings],
        "rotation": {"stage": stage, "inFlightKeyId": None, "previousRetiresAt": None},
    }


def _finding(code: str, severity: str, message: str) -> dict:
    return {"code": code, "severity": severity, "message": message, "fix": "Rotate the secret."}


DOCUMENT = {
    "generatedAt": "2026-11-29T12:00:00Z",
    "apps": [
        _app("ok-far", "ok", 120, expires="2027-03-29T12:00:00Z"),
        _app("harbor", "warning", 12, findings=[_finding("SECRET_EXPIRING", "warning", "The secret expires in 12 days.")], stage="awaiting-confirmation"),
        _app("inland", "ok", 45, expires="2027-01-13T12:00:00Z"),
        _app("quay & dock", "critical", -3, expires="2026-11-26T12:00:00Z", findings=[_finding("SECRET_EXPIRED", "critical", "Expired 3 days ago.")]),
        _app("nodata", "error", None, findings=[_finding("APP_ACCESS_DENIED", "error", "Graph said 403.")], stage="unknown"),
        _app("edge", "critical", 5, expires="2026-12-04T12:00:00Z", findings=[_finding("SECRET_EXPIRING", "critical", "Five days left.")]),
    ],
}
EXPECTED_DAYS = {"ok-far": "120 days", "harbor": "12 days", "inland": "45 days", "quay & dock": "expired 3 days ago", "nodata": "unknown", "edge": "5 days"}


class _Text(HTMLParser):
    """The page's visible text (not attributes, not CSS), entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.chunks))


def _cards(html: str) -> list[str]:
    return re.findall(r'<section class="card".*?</section>', html, flags=re.DOTALL)


# --- pure rendering -------------------------------------------------------------------------


def test_days_wording():
    assert [days_text(d) for d in (12, 1, 0, -1, -3, None)] == ["12 days", "1 day", "0 days", "expired 1 day ago", "expired 3 days ago", "unknown"]


def test_every_facility_and_its_days_are_on_the_page():
    html = render_status_page(DOCUMENT)
    assert html.startswith("<!DOCTYPE html>")
    text = page_text(html)
    for facility, days in EXPECTED_DAYS.items():
        assert facility in text
        assert days in text
    cards = _cards(html)
    assert len(cards) == len(DOCUMENT["apps"])
    for facility, days in EXPECTED_DAYS.items():
        (card,) = [c for c in cards if f"<h2>{facility.replace('&', '&amp;')}</h2>" in c]
        assert days in page_text(card), facility


def test_header_counts_and_generation_time():
    html = render_status_page(DOCUMENT)
    text = page_text(html)
    assert "2026-11-29 12:00 UTC" in text
    assert "6 apps" in text
    summary = re.search(r'<ul class="counts" aria-label="Apps per status: ([^"]*)"', html).group(1)
    assert summary == "2 critical, 1 error, 1 warning, 2 ok"
    assert "<title>SSO monitor status: 2 critical, 1 error, 1 warning, 2 ok</title>" in html


def test_apps_sorted_worst_first_then_by_facility():
    facilities = [re.search(r"<h2>(.*?)</h2>", c).group(1) for c in _cards(render_status_page(DOCUMENT))]
    assert facilities == ["edge", "quay &amp; dock", "nodata", "harbor", "inland", "ok-far"]


def test_status_is_spelled_out_not_colour_alone():
    for card in _cards(render_status_page(DOCUMENT)):
        badge = re.search(r'<span class="badge"[^>]*>(.*?)</span>\s*(\w+)</span>', card)
        assert badge and badge.group(2) in ("critical", "error", "warning", "ok")


def test_document_text_is_escaped():
    evil = "<script>alert('x')</script>"
    document = {
        "generatedAt": '2026-11-29T12:00:00Z"><script>',
        "errors": ["tenant t: <b>boom</b>"],
        "apps": [
            _app('evil"<img src=x>', "warning", 12, findings=[_finding("SECRET_EXPIRING", "warning", f"message {evil}")], stage="<i>stage</i>"),
        ],
    }
    document["apps"][0]["tenantId"] = '"><script>1</script>'
    html = render_status_page(document)
    assert "<script" not in html.lower()
    assert "<img" not in html and "<b>boom" not in html and "<i>stage" not in html
    assert "message &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    text = page_text(html)
    assert f"message {evil}" in text  # shown, as text
    assert 'evil"<img src=x>' in text
    assert "tenant t: <b>boom</b>" in text


def test_no_external_resources():
    html = render_status_page(DOCUMENT)
    assert not re.search(r"<link\b", html, re.IGNORECASE)
    assert not re.search(r"<script\b", html, re.IGNORECASE)
    assert not re.search(r"<(img|iframe|object|embed|audio|video|source)\b", html, re.IGNORECASE)
    assert not re.search(r"""(src|href|xlink:href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html  # and the browser is told so


def test_one_svg_timeline_per_app_with_ticks_and_thresholds():
    html = render_status_page(DOCUMENT)
    cards = _cards(html)
    assert html.count("<svg") == len(cards) == 6
    for card in cards:
        svg = re.search(r"<svg.*?</svg>", card, re.DOTALL).group(0)
        assert 'role="img"' in svg and "aria-label=" in svg and "<title>" in svg
        labels = re.findall(r"<text[^>]*>(.*?)</text>", svg)
        for tick in ("today", "+30", "+60", "+90 days"):
            assert tick in labels
        assert svg.count("stroke-dasharray") == 3  # the 30/14/7-day threshold lines
    inland = next(c for c in cards if "<h2>inland</h2>" in c)
    assert {"30d", "14d", "7d"} <= set(re.findall(r"<text[^>]*>(.*?)</text>", inland))
    harbor = next(c for c in cards if "<h2>harbor</h2>" in c)
    # the 12-day marker would cover the "14d" label: the label goes, its line stays
    assert {"30d", "7d"} <= set(re.findall(r"<text[^>]*>(.*?)</text>", harbor)) and ">14d<" not in harbor
    assert "expires in 12 days" in re.search(r"<svg.*?</svg>", harbor, re.DOTALL).group(0)
    assert re.search(r'aria-label="Expiry timeline for harbor: expires in 12 days', harbor)


def _marker_x(card: str) -> float:
    return float(re.search(r'<line x1="([\d.]+)" y1="22"', card).group(1))


def test_expired_and_beyond_horizon_are_clamped_with_a_label():
    cards = {re.search(r"<h2>(.*?)</h2>", c).group(1): c for c in _cards(render_status_page(DOCUMENT))}
    expired, far, near = cards["quay &amp; dock"], cards["ok-far"], cards["harbor"]
    assert _marker_x(expired) == 24.0  # the left end: today
    assert "\u25c0 expired 3 days ago" in expired
    assert _marker_x(far) == 616.0  # the right end: the horizon
    assert "expires in 120 days \u25b6" in far
    assert "beyond the 90-day horizon" in far
    assert 24.0 < _marker_x(near) < 616.0 and "\u25b6" not in near and "\u25c0" not in near
    assert "expiry unknown" in cards["nodata"]
    # a longer horizon brings the far app onto the line
    wide = {re.search(r"<h2>(.*?)</h2>", c).group(1): c for c in _cards(render_status_page(DOCUMENT, horizon_days=180))}
    assert 24.0 < _marker_x(wide["ok-far"]) < 616.0 and "+180 days" in wide["ok-far"]


def test_days_left_falls_back_to_the_expiry_date():
    app = _app("calc", "warning", None)
    app["secretExpires"] = "2026-12-09T18:00:00Z"
    html = render_status_page({"generatedAt": "2026-11-29T12:00:00Z", "apps": [app]})
    assert "10 days" in page_text(html)


def test_empty_apps_list():
    for document in ({"generatedAt": "2026-11-29T12:00:00Z", "apps": []}, {}):
        html = render_status_page(document)
        assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
        assert "No apps are configured." in page_text(html)
        assert "<svg" not in html
        assert "0 critical, 0 error, 0 warning, 0 ok" in html


def test_horizon_must_be_positive():
    with pytest.raises(ValueError):
        render_status_page(DOCUMENT, horizon_days=0)


# --- rendered by headless Chromium ----------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
WIDTH, HEIGHT = 1280, 1600


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if not found:
        reason = "Chromium not installed: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs it; CI is set, so this is a failure)")
        pytest.skip(reason)
    return found


@pytest.fixture
def page_file(tmp_path: Path) -> Path:
    path = tmp_path / "status.html"
    path.write_text(render_status_page(DOCUMENT), encoding="utf-8")
    return path


def _run_chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Chromium in its own process group, with a fresh profile; kill the whole group
    (and only it) on timeout or when it leaves helpers behind."""
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    profile.mkdir()
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        out, err = process.communicate()
        pytest.fail(f"Chromium did not finish in 60 s: {' '.join(command)}\n{err[-2000:]}")
    _kill_group(process.pid)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def test_chromium_screenshot(chromium: str, page_file: Path, tmp_path: Path):
    shot = tmp_path / "page.png"
    started = time.monotonic()
    result = _run_chromium(chromium, tmp_path, f"--screenshot={shot}", page_file.as_uri())
    elapsed = time.monotonic() - started
    assert shot.exists(), f"no screenshot (exit {result.returncode}):\n{result.stderr[-2000:]}"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert abs(width - WIDTH) <= WIDTH * 0.1 and abs(height - HEIGHT) <= HEIGHT * 0.1, (width, height)
    assert len(data) > 20_000  # a rendered page, not a blank frame
    print(f"status page screenshot: {shot} ({width}x{height}, {len(data)} bytes, {elapsed:.1f} s)")


def test_chromium_rendered_dom_has_every_facility_and_its_days(chromium: str, page_file: Path, tmp_path: Path):
    result = _run_chromium(chromium, tmp_path, "--dump-dom", page_file.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<svg" in dom and dom.count('class="card"') == len(DOCUMENT["apps"])
    text = page_text(dom)
    for facility, days in EXPECTED_DAYS.items():
        assert facility in text, facility
        assert days in text, (facility, days)
