"""Discovery's decisions (checks/discover.py), table-driven: which hosts are SmartTrace's,
which facility an app is, and how found apps merge into a configuration."""

from __future__ import annotations

import copy

import pytest

from sso_monitor.checks.discover import Candidate, classify, merge_apps, smarttrace_host
from sso_monitor.config import parse_config
from sso_monitor.models import AppRegistration, WebSettings

TENANT = "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11"
APP_ID = "11111111-2222-4333-8444-555555555555"
OTHER_APP_ID = "21111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme", "production"),
        ("https://acme.smarttrace.ai", "production"),
        ("https://smarttrace.ai/x", "production"),  # the domain itself
        ("https://API.SmartTrace.AI./v1", "production"),  # case and a trailing dot do not matter
        ("https://api.smarttrace.ai:8443/v1", "production"),
        ("https://api.staging.smarttrace.ai/v1/auth/callback/azure/harbor", "staging"),
        ("https://harbor.staging.smarttrace.ai", "staging"),
        ("https://api.smarttrace.ai.example.com/v1", None),  # a suffix by labels, not a substring
        ("https://notsmarttrace.ai/cb", None),
        ("https://example.com/?next=https://api.smarttrace.ai/v1", None),  # the host decides, not the text
        ("https://smarttrace.ai@evil.example/cb", None),  # user info is not the host
        ("http://localhost:8080/auth/callback/azure/acme", None),
        ("not a url", None),
        ("https://[::1/cb", None),  # unparseable: nobody's
        (None, None),
        ("", None),
    ],
)
def test_smarttrace_hosts(url, expected):
    assert smarttrace_host(url) == expected


def app(logout=None, *redirects, app_id=APP_ID) -> AppRegistration:
    return AppRegistration(object_id="o", app_id=app_id, display_name="d", web=WebSettings(logout_url=logout, redirect_uris=tuple(redirects)))


API = "https://api.smarttrace.ai/v1/auth/callback"


@pytest.mark.parametrize(
    "registration, facility, environment, api_base, facility_url, problem",
    [
        # the logout callback names the facility and the API
        (app(f"{API}/azure-logout/acme"), "acme", "production", "https://api.smarttrace.ai/v1", None, None),
        # only a redirect URI: its callback names it
        (app(None, "https://localhost/cb", f"{API}/azure/riverside"), "riverside", "production", "https://api.smarttrace.ai/v1", None, None),
        # the logout URL wins over a redirect URI naming another facility (the check then says which is wrong)
        (app(f"{API}/azure-logout/acme", f"{API}/azure/globex"), "acme", "production", "https://api.smarttrace.ai/v1", None, None),
        # a facility's own host when no callback names it
        (app(None, "https://summit.smarttrace.ai/sso"), "summit", "production", "https://api.smarttrace.ai/v1", None, None),
        # upper case in the path: the configuration's facility names are lower case
        (app(f"{API}/azure-logout/Acme/"), "acme", "production", "https://api.smarttrace.ai/v1", None, None),
        # staging: its own API, its own facility host
        (
            app("https://api.staging.smarttrace.ai/v1/auth/callback/azure-logout/harbor"),
            "harbor",
            "staging",
            "https://api.staging.smarttrace.ai/v1",
            "https://harbor.staging.smarttrace.ai",
            None,
        ),
        # another API version or path prefix is kept as the app's apiBase
        (app("https://api.smarttrace.ai/v2/eu/auth/callback/azure-logout/acme"), "acme", "production", "https://api.smarttrace.ai/v2/eu", None, None),
        # SmartTrace's, but nothing names a facility
        (app(None, "https://api.smarttrace.ai/"), None, "production", "https://api.smarttrace.ai/v1", None, "no facility name"),
        # a name the configuration would refuse
        (app(f"{API}/azure-logout/acme_plant"), None, "production", "https://api.smarttrace.ai/v1", None, "not a facility name"),
        # the wrong callback kind in the logout URL does not name a facility
        (app(f"{API}/azure/acme"), None, "production", "https://api.smarttrace.ai/v1", None, "no facility name"),
    ],
)
def test_classify(registration, facility, environment, api_base, facility_url, problem):
    found = classify(registration)
    assert found is not None
    assert (found.facility, found.environment, found.api_base, found.facility_url) == (facility, environment, api_base, facility_url)
    assert (found.problem is None) if problem is None else (problem in found.problem)


@pytest.mark.parametrize(
    "registration",
    [
        app(None),  # no web settings at all
        app("https://contoso.example/logout", "https://contoso.example/cb"),
        app("https://api.smarttrace.ai.example.com/v1/auth/callback/azure-logout/acme"),
        app(None, "https://notsmarttrace.ai/auth/callback/azure/acme"),
    ],
)
def test_unrelated_apps_are_not_candidates(registration):
    assert classify(registration) is None


DOCUMENT = {
    "$schema": "../docs/config.schema.json",
    "vaultUrl": "https://kv.vault.azure.net",
    "defaults": {"thresholds": [21, 7]},
    "apps": [{"facility": "acme", "tenantId": TENANT, "appId": APP_ID.upper(), "contacts": ["it@acme.example"], "rotation": {"mode": "notify-only"}}],
}


def candidate(facility: str, app_id: str, logout: str | None = None) -> Candidate:
    found = classify(app(logout or f"{API}/azure-logout/{facility}", app_id=app_id))
    assert found is not None
    return found


def test_merge_keeps_configured_apps_as_they_are_and_appends_new_ones():
    original = copy.deepcopy(DOCUMENT)
    merged, outcome = merge_apps(DOCUMENT, TENANT, [candidate("renamed", APP_ID), candidate("riverside", OTHER_APP_ID)])
    assert DOCUMENT == original  # a copy: the input is untouched
    assert list(merged) == list(DOCUMENT)  # key order kept
    assert merged["apps"][0] == DOCUMENT["apps"][0]  # the same appId (any case): the hand-edited entry stays
    assert merged["apps"][1] == {"facility": "riverside", "tenantId": TENANT, "appId": OTHER_APP_ID}
    assert (outcome.added, outcome.kept, outcome.conflicts) == (["riverside"], {APP_ID: "acme"}, {})
    assert parse_config(merged, {}).app("riverside").thresholds == (21, 7)  # the document's defaults apply to what was added


def test_merge_does_not_take_a_facility_name_another_app_uses():
    merged, outcome = merge_apps(DOCUMENT, TENANT, [candidate("acme", OTHER_APP_ID)])
    assert merged["apps"] == DOCUMENT["apps"]
    assert outcome.conflicts == {OTHER_APP_ID: f"facility acme is already configured for app {APP_ID}"}


def test_merge_into_a_document_without_apps_and_non_default_api():
    staging = candidate("harbor", OTHER_APP_ID, "https://api.staging.smarttrace.ai/v1/auth/callback/azure-logout/harbor")
    merged, outcome = merge_apps({"vaultUrl": "https://kv.vault.azure.net"}, TENANT, [staging])
    assert merged["apps"] == [
        {
            "facility": "harbor",
            "tenantId": TENANT,
            "appId": OTHER_APP_ID,
            "apiBase": "https://api.staging.smarttrace.ai/v1",
            "facilityUrl": "https://harbor.staging.smarttrace.ai",
        }
    ]
    settings = parse_config(merged, {}).app("harbor")
    assert settings.expected_logout_url == "https://api.staging.smarttrace.ai/v1/auth/callback/azure-logout/harbor"  # checks clean
