"""Graph: reads lag writes for a while (directory replication), per replication.py and
docs/sandbox/fidelity.md. Off by default; on per tenant, per world, per scenario or per
fault plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sso_sandbox import Sandbox
from sso_sandbox.replication import Replication, ReplicationLog
from sso_sandbox.scenario import ScenarioError, load_scenario
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import World
from tests.sandbox.test_graph import call, minted, monitor_token

ALWAYS_STALE = Replication(window_seconds=5, stale_probability=1.0, seed=1)
SHORT = {"passwordCredential": {"endDateTime": "2099-01-01T00:00:00Z", "startDateTime": "2098-06-01T00:00:00Z"}}  # within the tenant's 365 days


class FakeMonotonic:
    """Real monotonic time that a test can push forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _key_ids(body: dict[str, Any]) -> list[str]:
    return sorted(c["keyId"] for c in body["passwordCredentials"])


def test_off_by_default_reads_see_writes_at_once(sandbox: Sandbox, ids: StandardIds) -> None:
    assert World().replication == Replication() and not sandbox.world.tenant(ids.tenant_id).replication.enabled
    token = monitor_token(sandbox, ids)
    added = call(sandbox, "POST", f"/applications/{ids.smarttrace_object_id}/addPassword", token, json=SHORT).json()
    app = call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}", token).json()
    assert added["keyId"] in _key_ids(app)


def test_reads_in_the_window_show_the_state_before_the_write(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.tenant(ids.tenant_id).replication = ALWAYS_STALE
    token = monitor_token(sandbox, ids)
    before = _key_ids(call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}", token).json())
    added = call(sandbox, "POST", f"/applications/{ids.smarttrace_object_id}/addPassword", token, json=SHORT).json()
    assert added["secretText"]  # the write itself succeeded, on the primary
    stored = sandbox.world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    assert stored.credential(added["keyId"]) is not None

    # every kind of read: by id, by appId, the list, $batch, and the service principal (which copies app fields)
    assert _key_ids(call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}", token).json()) == before
    assert _key_ids(call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token).json()) == before
    listed = call(sandbox, "GET", "/applications", token, params={"$filter": f"appId eq '{ids.smarttrace_app_id}'"}).json()
    assert _key_ids(listed["value"][0]) == before
    batch = call(
        sandbox,
        "POST",
        "/$batch",
        token,
        json={"requests": [{"id": "1", "method": "GET", "url": f"/applications/{ids.smarttrace_object_id}?$select=passwordCredentials"}]},
    ).json()
    assert _key_ids(batch["responses"][0]["body"]) == before

    # once the world clock has moved past the window, every read shows the write
    sandbox.world.clock.advance(seconds=5)
    assert added["keyId"] in _key_ids(call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}", token).json())


def test_patch_remove_password_and_owner_add_lag_too(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    world.tenant(ids.tenant_id).replication = ALWAYS_STALE
    token = monitor_token(sandbox, ids)
    path = f"/applications/{ids.smarttrace_object_id}"
    assert call(sandbox, "PATCH", path, token, json={"notes": "rotated"}).status_code == 204
    assert call(sandbox, "GET", path, token).json()["notes"] is None
    assert call(sandbox, "POST", path + "/removePassword", token, json={"keyId": ids.smarttrace_key_id}).status_code == 204
    assert ids.smarttrace_key_id in _key_ids(call(sandbox, "GET", path, token).json())

    app = world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    user = world.add_user(ids.tenant_id, "late@contoso.example", "Late owner")
    world.add_owner(app, user)
    reader = minted(sandbox, ids, ["Application.Read.All", "User.Read.All"])
    owners = call(sandbox, "GET", path + "/owners", reader).json()["value"]
    assert user.id not in [o["id"] for o in owners]
    world.clock.advance(seconds=6)
    assert user.id in [o["id"] for o in call(sandbox, "GET", path + "/owners", reader).json()["value"]]
    assert call(sandbox, "GET", path, token).json()["notes"] == "rotated"


def test_the_window_also_ends_in_real_time_when_the_world_clock_is_frozen(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    world.clock.freeze()
    tenant = world.tenant(ids.tenant_id)
    tenant.replication = ALWAYS_STALE
    monotonic = FakeMonotonic()
    tenant.replica_log.monotonic = monotonic
    token = monitor_token(sandbox, ids)
    path = f"/applications/{ids.smarttrace_object_id}"
    assert call(sandbox, "PATCH", path, token, json={"notes": "n1"}).status_code == 204
    monotonic.now += 4.9
    assert call(sandbox, "GET", path, token).json()["notes"] is None
    monotonic.now += 0.1  # 5 real seconds, not one on the world clock
    assert call(sandbox, "GET", path, token).json()["notes"] == "n1"


def test_a_read_never_mixes_two_versions(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    world.tenant(ids.tenant_id).replication = Replication(window_seconds=60, stale_probability=0.5, seed=11)
    token = monitor_token(sandbox, ids)
    path = f"/applications/{ids.smarttrace_object_id}"
    states = [(None, tuple(_key_ids(call(sandbox, "GET", path, token).json())))]
    assert call(sandbox, "PATCH", path, token, json={"notes": "v1"}).status_code == 204
    added = call(sandbox, "POST", path + "/addPassword", token, json=SHORT).json()
    app = world.tenant(ids.tenant_id).app_by_app_id(ids.smarttrace_app_id)
    states += [("v1", states[0][1]), ("v1", tuple(sorted(c.key_id for c in app.password_credentials)))]
    seen = set()
    for _ in range(30):
        body = call(sandbox, "GET", path, token).json()
        state = (body["notes"], tuple(_key_ids(body)))
        assert state in states, state  # a state that existed, never notes of one version with keys of another
        seen.add(state)
    assert seen == {states[0], states[2]}  # a lagging replica has neither write; the primary has both
    assert added["keyId"] in states[2][1]


def test_the_generator_is_seeded(sandbox: Sandbox, ids: StandardIds) -> None:
    tenant = sandbox.world.tenant(ids.tenant_id)
    setting = Replication(window_seconds=120, stale_probability=0.5, seed=7)
    tenant.replication = setting
    token = monitor_token(sandbox, ids)
    path = f"/applications/{ids.smarttrace_object_id}"
    call(sandbox, "PATCH", path, token, json={"notes": "seeded"})

    def run() -> list[bool]:
        return [call(sandbox, "GET", path + "?$select=notes", token).json()["notes"] is None for _ in range(16)]

    first = run()
    tenant.replication = Replication(window_seconds=120, stale_probability=0.5, seed=8)
    call(sandbox, "GET", path, token)  # a draw with other settings
    tenant.replication = setting  # the same settings again: the generator starts over from seed 7
    assert run() == first and True in first and False in first


def test_a_fault_plan_turns_it_on_for_a_run(sandbox: Sandbox, ids: StandardIds) -> None:
    assert not sandbox.world.tenant(ids.tenant_id).replication.enabled
    rule = sandbox.faults.add("replication", service="graph", window_seconds=5, stale_probability=1.0, seed=3)
    token = monitor_token(sandbox, ids)
    path = f"/applications/{ids.smarttrace_object_id}"
    call(sandbox, "PATCH", path, token, json={"notes": "planned"})
    assert call(sandbox, "GET", path, token).json()["notes"] is None
    assert rule.fired == 0 and sandbox.faults.log == []  # a setting, not a fault that fires
    sandbox.faults.clear()
    assert call(sandbox, "GET", path, token).json()["notes"] == "planned"


def test_world_and_scenario_settings() -> None:
    world = World(replication=ALWAYS_STALE)
    assert world.add_tenant("t1").replication == ALWAYS_STALE
    world.set_replication(Replication())
    assert not world.tenant("t1").replication.enabled and not world.add_tenant("t2").replication.enabled

    scenario = {"tenants": [{"id": "t", "replication": {"windowSeconds": 5, "staleProbability": 0.5, "seed": 7}}]}
    loaded, _ = load_scenario(scenario)
    assert loaded.tenant("t").replication == Replication(5.0, 0.5, 7)
    with pytest.raises(ScenarioError, match=r"tenants\[0\]\.replication: replication staleProbability must be between 0 and 1"):
        load_scenario({"tenants": [{"id": "t", "replication": {"windowSeconds": 5, "staleProbability": 2}}]})
    with pytest.raises(ScenarioError, match="unknown replication field"):
        load_scenario({"tenants": [{"id": "t", "replication": {"window": 5}}]})


def test_the_log_forgets_replicated_writes() -> None:
    log = ReplicationLog(monotonic=FakeMonotonic())
    world = World()
    app = world.add_application(world.add_tenant("t").tenant_id, "A")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    log.record_write(app, start)
    app.notes = "after"
    assert log.view(ALWAYS_STALE, start).of(app).notes is None
    later = start.replace(second=5)
    assert log.view(ALWAYS_STALE, later).of(app) is app
    assert log._prior == {}
