"""The status page people open from an alert (GET /api/status/view): a person signs in
with Microsoft (MSAL.js, authorization code + PKCE) and sees the report, in headless
Chromium driven by Playwright, against the Function App's HTTP functions
(tests/functions_http.py) and the sandbox's Entra sign-in (sso_sandbox/user_signin.py).
Without a browser: the page's frame, its files and its headers."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sso_monitor.functions import admin
from sso_monitor.functions.status_view import ASSETS, STATIC
from tests.functions import after_a_scheduled_run, configure_admin_api, run_timer
from tests.functions_http import FunctionsHttpHost

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(sandbox, ids, monkeypatch, tmp_path, azurite) -> Iterator[FunctionsHttpHost]:
    """The Function App after one scheduled run, served over HTTP; the admin API's
    registration lists the page as a single-page-app redirect URI, as infra does."""

    def timer_off_this_thread() -> None:  # Playwright's sync API holds this thread's event loop
        with ThreadPoolExecutor(1) as thread:
            thread.submit(run_timer).result()

    after_a_scheduled_run(sandbox, ids, monkeypatch, tmp_path, azurite.connection_string, run=timer_off_this_thread)
    with FunctionsHttpHost() as host:
        app = _admin_app(sandbox, ids)
        app.spa_redirect_uris.append(host.url("status/view"))
        yield host
    admin.reset()


def _admin_app(sandbox, ids):
    tenant = sandbox.world.tenant(ids.tenant_id)
    return tenant.app_by_app_id(ids.admin_api_client_id)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


# --- the frame, its files, its headers (no browser) -----------------------------------------


def test_the_frame_holds_sign_in_settings_and_no_data(site, sandbox, ids):
    status, headers, body = _get(site.url("status/view"))
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert f'data-client-id="{ids.admin_api_client_id}"' in page
    assert f'data-authority="{sandbox.endpoints.authority}/{ids.tenant_id}"' in page
    assert f'data-scope="{ids.admin_api_client_id}/user_impersonation"' in page  # its own scope, by the GUID form (AADSTS90009)
    assert "acme" not in page and "daysLeft" not in page  # the report comes from the API, with a token
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert f"connect-src 'self' {sandbox.endpoints.authority}" in policy
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert not re.search(r"<script>(?!</script>)|<script\s+(?!src=)", page)  # no inline script
    assert re.findall(r'<script src="([^"]+)"', page) == ["view/msal-browser.min.js", "view/status-view.js"]


def test_the_frame_needs_no_function_key_but_the_report_needs_a_token(site):
    assert _get(site.url("status/view"))[0] == 200
    status, headers, body = _get(site.url("status/page"))
    assert status == 401 and json.loads(body)["error"]["code"] == "missing_token"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    # every other admin route still needs the function key first
    assert _get(site.url("status"))[0] == 401 and _get(site.url("status"))[2] == b""


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_each_file_of_the_page_is_served_with_its_type(site, name):
    status, headers, body = _get(site.url(f"status/view/{name}"))
    assert status == 200 and body == (STATIC / ASSETS[name][0]).read_bytes()
    assert headers["Content-Type"].split(";")[0] == ("text/css" if name.endswith(".css") else "text/javascript")
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", ["admin.py", "..%2Fadmin.py", "vendor%2Fmsal-browser.min.js", "msal-browser.LICENSE.txt", "STATUS-VIEW.JS", "%2e%2e"])
def test_no_other_file_is_served(site, name):
    status, _, body = _get(site.url(f"status/view/{name}"))
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_without_the_client_id_the_page_says_what_to_configure(sandbox, ids, monkeypatch, tmp_path):
    without = {"adminApi": {"tenantId": ids.tenant_id, "audience": ids.admin_api_uri}}
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, extra=without)
    with FunctionsHttpHost() as host:
        status, _, body = _get(host.url("status/view"))
    admin.reset()
    assert status == 503 and "adminApi.clientId" in body.decode()


def test_the_bundled_msal_is_the_npm_package_at_the_pinned_version():
    """msal-browser is bundled from npm (package.json pins it; `make vendor` copies it):
    the file served is byte for byte the package's, and says its version."""
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["@azure/msal-browser"]
    bundled = (STATIC / "vendor" / "msal-browser.min.js").read_bytes()
    assert bundled.startswith(f"/*! @azure/msal-browser v{pinned} ".encode())
    assert (STATIC / "vendor" / "msal-browser.LICENSE.txt").read_text().startswith("MIT License")
    installed = ROOT / "node_modules" / "@azure" / "msal-browser"
    if not installed.exists():
        if os.environ.get("CI"):
            pytest.fail("node_modules is missing: make test installs it (npm ci)")
        pytest.skip("node_modules not installed (npm ci)")
    assert json.loads((installed / "package.json").read_text())["version"] == pinned
    assert bundled == (installed / "lib" / "msal-browser.min.js").read_bytes()


# --- a person in Chromium -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        reason = "Chromium not installed: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs it; CI is set, so this is a failure)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=found, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


class Visit:
    """One person's tab: the page, what its console said, what it asked for."""

    def __init__(self, browser, site: FunctionsHttpHost) -> None:
        # the sandbox's HTTPS certificate is signed by its own CA, not one Chromium knows
        self.context = browser.new_context(ignore_https_errors=True)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.failures: list[str] = []  # answers of 400 and more, by URL
        self.page.on("response", lambda response: self.failures.append(f"{response.status} {response.url}") if response.status >= 400 else None)
        self.site = site

    def open_and_sign_in(self, upn: str, password: str) -> None:
        self.page.goto(self.site.url("status/view"))
        self.page.wait_for_selector("#username", timeout=30_000)  # Microsoft's sign-in form
        assert "/oauth2/v2.0/authorize" in self.page.url and "code_challenge_method=S256" in self.page.url
        self.page.fill("#username", upn)
        self.page.fill("#password", password)
        self.page.click("#submit")

    def wait_for_report_or_problem(self) -> None:
        self.page.wait_for_selector("section.card, #state.problem", timeout=30_000)

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line or "Refused to" in line]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, site) -> Iterator[Visit]:
    tab = Visit(browser, site)
    yield tab
    tab.close()


def test_a_reader_signs_in_and_sees_the_status(visit, site, sandbox, ids):
    visit.open_and_sign_in(ids.reader_upn, ids.user_password)
    visit.wait_for_report_or_problem()
    page = visit.page
    assert page.url == site.url("status/view")  # back on the page; the code is gone from the address
    cards = page.locator("section.card")
    assert cards.count() == 1
    text = cards.first.inner_text()
    assert "acme" in text and re.search(r"\b6[45] days\b", text), text
    assert "Riley Reader (reader@contoso.example)" in page.inner_text("#who")
    assert page.is_visible("#sign-out") and not page.is_visible("#sign-in")
    assert page.title().startswith("SSO monitor status: ")
    assert not visit.csp_violations() and not [line for line in visit.console if line.startswith("pageerror")], visit.console
    assert not [line for line in visit.failures if site.base_url in line], visit.failures  # nothing of ours failed
    # the token went to the API in a header, never in a URL
    report_calls = [url for url in visit.requests if "/api/status/page" in url]
    assert report_calls == [site.url("status/page")]
    assert ("GET", "/api/status/page", 200) in site.calls
    assert sandbox.world.user_sign_ins == [(ids.reader_upn, ids.admin_api_client_id, True)]


def test_a_wrong_password_stays_on_microsofts_form(visit, ids):
    visit.open_and_sign_in(ids.reader_upn, "not-the-password")
    visit.page.wait_for_selector("#error", timeout=30_000)
    assert "AADSTS50126" in visit.page.inner_text("#error")
    assert "/oauth2/v2.0/authorize" in visit.page.url


def test_someone_not_assigned_is_stopped_by_entra(visit, ids):
    """The registration requires assignment (as infra makes it): Entra refuses the person
    on its own page (AADSTS50105) and never sends them back with a code."""
    visit.open_and_sign_in(ids.visitor_upn, ids.user_password)
    visit.page.wait_for_selector("#error", timeout=30_000)
    assert "AADSTS50105" in visit.page.inner_text("#error")
    assert "/api/status/view" not in visit.page.url


def test_someone_without_the_role_is_told_what_is_missing(visit, site, sandbox, ids):
    """Assignment not required (someone changed it): the person gets a token without
    SsoMonitor.Read, the API answers 403 and the page says which role to ask for; no data."""
    tenant = sandbox.world.tenant(ids.tenant_id)
    tenant.sp_by_app_id(ids.admin_api_client_id).app_role_assignment_required = False
    visit.open_and_sign_in(ids.visitor_upn, ids.user_password)
    visit.wait_for_report_or_problem()
    problem = visit.page.inner_text("#state")
    assert "visitor@contoso.example" in problem and "SsoMonitor.Read" in problem
    assert visit.page.locator("section.card").count() == 0
    assert ("GET", "/api/status/page", 403) in site.calls
    assert not visit.csp_violations(), visit.console


def test_sign_out_then_the_page_asks_again(visit, site, ids):
    visit.open_and_sign_in(ids.reader_upn, ids.user_password)
    visit.wait_for_report_or_problem()
    visit.page.click("#sign-out")
    visit.page.wait_for_selector("#username", timeout=30_000)  # signed out, back, and sent to sign in again
    assert "/oauth2/v2.0/authorize" in visit.page.url


def test_a_refresh_reads_the_report_again_with_the_cached_token(visit, site, ids):
    visit.open_and_sign_in(ids.reader_upn, ids.user_password)
    visit.wait_for_report_or_problem()
    before = [c for c in site.calls if c[1] == "/api/status/page"]
    visit.page.click("#reload")
    visit.page.wait_for_function("document.querySelectorAll('section.card').length === 1")
    visit.page.wait_for_timeout(200)
    after = [c for c in site.calls if c[1] == "/api/status/page"]
    assert len(after) == len(before) + 1 and after[-1][2] == 200


def test_the_page_registered_as_web_instead_of_spa_says_how_to_fix_it(visit, site, sandbox, ids):
    """A common mistake: the URL added under the Web platform. Entra lets the person sign
    in, then refuses the browser's code redemption (AADSTS9002326); the page says so."""
    app = _admin_app(sandbox, ids)
    app.spa_redirect_uris.remove(site.url("status/view"))
    app.web = {**app.web, "redirectUris": [site.url("status/view")]}
    visit.open_and_sign_in(ids.reader_upn, ids.user_password)
    visit.wait_for_report_or_problem()
    problem = visit.page.inner_text("#state")
    assert "AADSTS9002326" in problem and "Single-page application redirect URI" in problem, problem
    assert visit.page.locator("section.card").count() == 0


def test_a_page_url_not_registered_at_all_stops_at_entra(visit, site, sandbox, ids):
    _admin_app(sandbox, ids).spa_redirect_uris.clear()
    visit.page.goto(site.url("status/view"))
    visit.page.wait_for_selector("#error", timeout=30_000)
    assert "AADSTS50011" in visit.page.inner_text("#error") and site.url("status/view") in visit.page.inner_text("#error")
