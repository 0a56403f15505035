"""Scenario files seed the world; every mistake names its field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sso_sandbox.scenario import ScenarioError, load_scenario, scenario_refs
from sso_sandbox.serve import BUILTIN_SCENARIO

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "scenario.json").read_text())


FROZEN = datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_the_example_seeds_every_part_of_the_world():
    world, faults = load_scenario(EXAMPLE, now=FROZEN)
    refs = scenario_refs(world)
    tenant = world.tenant("3c5a9f0e-7d21-4b6a-9e84-0f1d2c3b4a55")
    assert world.now() == FROZEN and world.clock.frozen
    assert tenant.propagation_delay == timedelta(seconds=3)  # a shell user's rotation waits seconds
    assert tenant.password_max_lifetime == timedelta(days=180)
    app = tenant.app_by_app_id("6d1e9b52-8c3f-4a07-b1d9-5e2f7a8c0b66")
    monitor_app_id = refs.monitors[tenant.tenant_id]
    assert app.owners == {monitor_app_id}
    assert app.web["implicitGrantSettings"] == {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True}
    credential = refs.credentials["harbor-current"]
    assert credential.end - world.now() == timedelta(days=20)
    sp = tenant.sp_by_app_id(app.app_id)
    assert sp.app_role_assignment_required and sp.owners == {monitor_app_id}
    assert [a.principal_display_name for a in sp.assigned_to] == ["Harbor staff"]
    vault = world.vault("kv-northwind-sso")
    stored = vault.secrets["smarttrace-harbor"].latest
    assert stored.value == credential.secret_text
    assert stored.tags == {"keyId": credential.key_id, "stage": "current"}
    assert stored.expires == credential.end
    assert vault.access == {monitor_app_id: "Key Vault Secrets Officer"} and vault.purge_protection
    assert world.facility("harbor").key_id == credential.key_id
    assert world.sign_in_works("harbor")
    assert list(world.webhooks) == ["northwind-sso"]
    assert world.smtp_users == {"sso-alerts@northwind.example": "sandbox-smtp-password"}
    assert [r.fault for r in faults.rules] == ["throttle", "latency"]
    # every secret the scenario created is known, for leak searches
    assert credential.secret_text in world.issued_secrets


def test_the_example_runs_on_the_real_time_its_dates_counted_from_the_start():
    before = datetime.now(UTC)
    world, _ = load_scenario(EXAMPLE)
    assert not world.clock.frozen and scenario_refs(world).stated_now is None
    end = scenario_refs(world).credentials["harbor-current"].end
    assert before + timedelta(days=20) <= end <= datetime.now(UTC) + timedelta(days=20)


@pytest.mark.parametrize(
    "choice, frozen_at",
    [
        ("scenario", FROZEN),  # the library's default: a scenario's now freezes the clock
        ("real", None),  # `sso-monitor sandbox`: the real time, the scenario's now only noted
        ("frozen", FROZEN),  # --frozen-now: at the scenario's now
        (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),  # --frozen-now WHEN
    ],
)
def test_whose_time_the_world_keeps(choice, frozen_at):
    stated = {**EXAMPLE, "now": "2026-12-01T09:00:00Z"}
    world, _ = load_scenario(stated, now=choice)
    assert scenario_refs(world).stated_now == FROZEN
    assert world.clock.frozen == (frozen_at is not None)
    start = frozen_at or datetime.now(UTC)
    end = scenario_refs(world).credentials["harbor-current"].end
    assert abs(end - (start + timedelta(days=20))) < timedelta(seconds=5)  # relative dates count from the world's start


def test_frozen_without_a_stated_now_freezes_at_the_start():
    before = datetime.now(UTC)
    world, _ = load_scenario(EXAMPLE, now="frozen")
    assert world.clock.frozen and before <= world.now() <= datetime.now(UTC)


def test_the_builtin_demo_scenario_has_eight_facilities_in_two_tenants():
    world, _ = load_scenario(json.loads(BUILTIN_SCENARIO.read_text()))
    assert len(world.facilities) >= 8 and len(world.tenants) == 2
    # lakeside's vault holds a value Entra does not know, under the right keyId
    lakeside = world.vault("kv-sso-demo").secrets["smarttrace-lakeside"].latest
    app = world.find_app(world.facility("lakeside").app_id)
    assert lakeside.tags["keyId"] == app.password_credentials[0].key_id
    assert world.secret_works(app.tenant_id, app.app_id, lakeside.value) == "AADSTS7000215"


def broken(path: str, value):
    """The example with one field replaced; path is dotted with [index] parts."""
    data = copy.deepcopy(EXAMPLE)
    parts = path.replace("]", "").replace("[", ".").split(".")
    target = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("tenants", [], "tenants: a scenario needs at least one tenant"),
        ("tenants[0].id", 7, "tenants[0].id: expected a non-empty string"),
        ("tenants[0].propagationDelaySeconds", -1, "tenants[0].propagationDelaySeconds: expected a number >= 0"),
        ("tenants[0].appManagementPolicy.passwordMaxLifetime", "90 days", "tenants[0].appManagementPolicy.passwordMaxLifetime: not an ISO 8601 duration"),
        ("tenants[0].applications[1].passwordCredentials[0].end", "someday", "tenants[0].applications[1].passwordCredentials[0].end: not a date"),
        ("tenants[0].applications[1].passwordCredentials[0].end", "-200d", "tenants[0].applications[1].passwordCredentials[0].end: must be after start"),
        (
            "tenants[0].applications[1].owners",
            ["nobody"],
            "tenants[0].applications[1].owners: 'nobody' is neither an application key, a user of this tenant nor an appId",
        ),
        ("tenants[0].applications[1].key", "monitor", "tenants[0].applications[1].key: 'monitor' is used twice"),
        ("tenants[0].applications[1].colour", "red", "tenants[0].applications[1]: unknown field(s) colour"),
        ("tenants[0].applications[1].servicePrincipal.assignments[0].principalType", "Robot", "principalType: expected User, Group or ServicePrincipal"),
        ("tenants[0].monitor", "harbr", "tenants[0].monitor: no application with key 'harbr'"),
        ("vaults[0].name", "kv", "vaults[0].name: Key Vault names"),
        ("vaults[0].tenant", "elsewhere", "vaults[0].tenant: unknown tenant elsewhere"),
        ("vaults[0].secrets[0].credential", "nope", "vaults[0].secrets[0].credential: no password credential has ref 'nope'"),
        ("vaults[0].secrets[1].value", DELETE, "vaults[0].secrets[1]: give 'credential'"),
        ("facilities[0].app", "ghost", "facilities[0].app: no application with key 'ghost'"),
        ("facilities[0].name", "Pack House", "facilities[0].name: a facility name is lower-case"),
        ("webhooks[0].mode", "sometimes", "webhooks[0].mode: expected ok, throttled or error"),
        ("faults[0].fault", "gremlins", "faults[0]: unknown fault"),
    ],
)
def test_errors_name_the_field(path, value, message):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(broken(path, value))
    assert message in str(caught.value)


def test_a_tenant_without_a_premium_licence_and_users_who_can_sign_in():
    data = copy.deepcopy(EXAMPLE)
    tenant = data["tenants"][0]
    tenant["premium"] = False
    tenant.setdefault("users", []).append({"upn": "reader@example.test", "displayName": "Reader", "password": "pw-1"})
    world, _ = load_scenario(data)
    loaded = world.tenant(tenant["id"])
    assert loaded.premium is False and loaded.user("reader@example.test").password == "pw-1"
    assert load_scenario(EXAMPLE)[0].tenant(tenant["id"]).premium is True  # the default
    bad = copy.deepcopy(EXAMPLE)
    bad["tenants"][0]["premium"] = "no"
    with pytest.raises(ScenarioError, match=r"tenants\[0\]\.premium: expected true or false"):
        load_scenario(bad)
