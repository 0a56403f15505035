"""Graph: the identity and access service's throttling budget (budget.py and
docs/sandbox/fidelity.md): resource units per app and tenant per 10 s, writes per
150 s, each inner $batch request counted on its own, 429 with Retry-After."""

from __future__ import annotations

from typing import Any

import pytest

from sso_sandbox import Sandbox
from sso_sandbox.budget import Cost, GraphBudget, request_cost
from sso_sandbox.scenario import ScenarioError, load_scenario
from sso_sandbox.testing import StandardIds
from tests.sandbox.test_graph import call, monitor_token

LIST_APPS = {"method": "GET", "url": "/applications"}  # 2 resource units each


class FakeMonotonic:
    """The budget's clock, moved by the test: the windows run on real monotonic time."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(sandbox: Sandbox) -> FakeMonotonic:
    fake = FakeMonotonic()
    sandbox.world.graph_budget = GraphBudget(monotonic=fake)
    return fake


def batch(sandbox: Sandbox, token: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = call(sandbox, "POST", "/$batch", token, json={"requests": [{"id": str(n), **e} for n, e in enumerate(entries)]})
    assert response.status_code == 200  # throttling is per inner request; the batch itself succeeds
    return sorted(response.json()["responses"], key=lambda a: int(a["id"]))


@pytest.mark.parametrize(
    "method, path, query, cost",
    [
        ("GET", "/v1.0/applications", {}, Cost(2, 0)),  # GET applications: base 2
        ("GET", "/v1.0/applications", {"$select": ["id"]}, Cost(1, 0)),  # $select: -1
        ("GET", "/v1.0/applications", {"$top": ["5"], "$select": ["id"]}, Cost(1, 0)),  # never below 1
        ("GET", "/v1.0/applications", {"$expand": ["owners"]}, Cost(3, 0)),  # $expand: +1
        ("GET", "/v1.0/applications(appId='x')", {}, Cost(1, 0)),  # not listed: 1
        ("GET", "/v1.0/applications/x/owners", {"$top": ["999"]}, Cost(1, 0)),  # $top of 20 or more: no change
        ("GET", "/v1.0/servicePrincipals", {}, Cost(1, 0)),
        ("GET", "/v1.0/policies/defaultAppManagementPolicy", {}, Cost(1, 0)),  # policyBase is an identity resource
        ("POST", "/v1.0/applications/x/addPassword", {}, Cost(1, 1)),  # writes cost a unit and a write
        ("PATCH", "/v1.0/applications(appId='x')", {}, Cost(1, 1)),
        ("GET", "/v1.0/users", {}, Cost(2, 0)),
        ("POST", "/v1.0/users/someone@contoso.example/sendMail", {}, None),  # Outlook, not identity
        ("POST", "/v1.0/$batch", {}, None),  # the envelope is not charged; its inner requests are
    ],
)
def test_request_costs_follow_the_docs_table(method: str, path: str, query: dict[str, list[str]], cost: Cost | None) -> None:
    assert request_cost(method, path, query) == cost


def test_every_identity_response_carries_its_resource_units(sandbox: Sandbox, ids: StandardIds) -> None:
    token = monitor_token(sandbox, ids)
    assert call(sandbox, "GET", "/applications", token).headers["x-ms-resource-unit"] == "2"
    assert call(sandbox, "GET", "/applications", token, params={"$select": "id"}).headers["x-ms-resource-unit"] == "1"
    missing = call(sandbox, "GET", "/applications(appId='00000000-1111-4222-8333-444444444444')", token)
    assert missing.status_code == 404 and missing.headers["x-ms-resource-unit"] == "1"
    answers = batch(sandbox, token, [LIST_APPS, {"method": "GET", "url": f"/servicePrincipals(appId='{ids.smarttrace_app_id}')"}])
    assert [a["headers"]["x-ms-resource-unit"] for a in answers] == ["2", "1"]
    outer = call(sandbox, "POST", "/$batch", token, json={"requests": [{"id": "1", **LIST_APPS}]})
    assert "x-ms-resource-unit" not in outer.headers
    stats = sandbox.world.graph_budget_stats(ids.tenant_id)
    assert stats.resource_units == 2 + 1 + 1 + (2 + 1) + 2 and stats.requests == 6 and stats.throttled == 0


def test_the_resource_unit_budget_throttles_inner_requests_with_retry_after(sandbox: Sandbox, ids: StandardIds, clock: FakeMonotonic) -> None:
    token = monitor_token(sandbox, ids)
    for _ in range(87):  # 87 batches x 20 x 2 units = 3,480 of the small tenant's 3,500 per 10 s
        assert all(a["status"] == 200 for a in batch(sandbox, token, [LIST_APPS] * 20))
    answers = batch(sandbox, token, [LIST_APPS] * 20)
    assert [a["status"] for a in answers] == [200] * 10 + [429] * 10
    throttled = answers[-1]
    assert throttled["headers"]["Retry-After"] == "10"
    assert throttled["headers"]["x-ms-throttle-scope"] == f"Tenant_Application/ReadWrite/{ids.monitor_app_id}/{ids.tenant_id}"
    assert throttled["headers"]["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert throttled["headers"]["x-ms-throttle-limit-percentage"] == "1.0"  # demand 3,520 of 3,500
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    # a direct request is refused the same way, with Graph's 429 body
    direct = call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token)
    assert direct.status_code == 429 and direct.headers["Retry-After"] == "10"
    assert direct.json()["error"]["innerError"]["status"] == "429"
    assert (
        call(
            sandbox, "POST", f"/users/{ids.mailbox}/sendMail", token, json={"message": {"toRecipients": [{"emailAddress": {"address": "a@contoso.example"}}]}}
        ).status_code
        == 202
    )
    clock.now += 10  # the window has moved past every earlier request
    assert call(sandbox, "GET", f"/applications(appId='{ids.smarttrace_app_id}')", token).status_code == 200
    stats = sandbox.world.graph_budget_stats(ids.tenant_id)
    assert stats.peak_resource_units_10s == 3_500 and stats.throttled == 11


def test_retry_after_is_the_time_until_the_window_has_room(sandbox: Sandbox, ids: StandardIds, clock: FakeMonotonic) -> None:
    token = monitor_token(sandbox, ids)
    for _ in range(44):  # 1,760 units at t=0
        batch(sandbox, token, [LIST_APPS] * 20)
    clock.now += 2.25
    for _ in range(43):  # 1,720 more at t=2.25: 3,480 in the window
        batch(sandbox, token, [LIST_APPS] * 20)
    answers = batch(sandbox, token, [LIST_APPS] * 20)
    assert answers[-1]["status"] == 429
    assert answers[-1]["headers"]["Retry-After"] == "7.750"  # the t=0 requests leave the window at t=10


def test_an_honest_client_that_waits_retry_after_converges(sandbox: Sandbox, ids: StandardIds, clock: FakeMonotonic) -> None:
    token = monitor_token(sandbox, ids)
    pending = 2_400  # 4,800 units: more than one window's worth
    rounds = waited = 0
    while pending:
        rounds += 1
        answers = batch(sandbox, token, [LIST_APPS] * min(20, pending))
        pending -= sum(1 for a in answers if a["status"] == 200)
        refused = [a for a in answers if a["status"] == 429]
        assert all(a["status"] in (200, 429) for a in answers)
        if refused:
            wait = max(float(a["headers"]["Retry-After"]) for a in refused)
            clock.now += wait
            waited += 1
            # honouring Retry-After is enough: the very next batch is admitted in full
            assert all(a["status"] == 200 for a in batch(sandbox, token, [LIST_APPS] * len(refused)))
            pending -= len(refused)
    assert waited == 1 and rounds < 130
    assert sandbox.world.graph_budget_stats(ids.tenant_id).peak_resource_units_10s == 3_500


def test_the_write_budget_throttles_writes_while_reads_go_on(sandbox: Sandbox, ids: StandardIds, clock: FakeMonotonic) -> None:
    token = monitor_token(sandbox, ids)
    patch = {"method": "PATCH", "url": f"/applications/{ids.smarttrace_object_id}", "headers": {"Content-Type": "application/json"}, "body": {"notes": "n"}}
    for _ in range(150):  # 3,000 writes per 2 min 30 s per app and tenant
        assert all(a["status"] == 204 for a in batch(sandbox, token, [patch] * 20))
    refused = batch(sandbox, token, [patch])[0]
    assert refused["status"] == 429 and refused["headers"]["Retry-After"] == "150"
    assert refused["headers"]["x-ms-throttle-scope"] == f"Tenant_Application/Write/{ids.monitor_app_id}/{ids.tenant_id}"
    assert refused["headers"]["x-ms-throttle-information"] == "WriteLimitExceeded"
    # "you could encounter a scenario where writes are throttled but reads are still permitted"
    assert call(sandbox, "GET", f"/applications/{ids.smarttrace_object_id}", token).status_code == 200
    clock.now += 150
    assert call(sandbox, "PATCH", f"/applications/{ids.smarttrace_object_id}", token, json={"notes": "again"}).status_code == 204


def test_enforcement_can_be_switched_off_per_tenant(sandbox: Sandbox, ids: StandardIds, clock: FakeMonotonic) -> None:
    sandbox.world.tenant(ids.tenant_id).graph_throttling = False
    token = monitor_token(sandbox, ids)
    for _ in range(90):
        answers = batch(sandbox, token, [LIST_APPS] * 20)
    assert all(a["status"] == 200 for a in answers)
    assert answers[-1]["headers"]["x-ms-resource-unit"] == "2"
    assert sandbox.world.graph_budget_stats(ids.tenant_id).peak_resource_units_10s == 3_600


def test_tenant_sizes_and_the_limit_percentage() -> None:
    fake = FakeMonotonic()
    budget = GraphBudget(monotonic=fake)
    read = Cost(resource_units=1, writes=0)

    def spend(size: str, units: int, tenant: str) -> Any:
        decision = None
        for _ in range(units):
            decision = budget.charge(tenant_id=tenant, app_id="app", size=size, cost=read)
        return decision

    assert spend("medium", 5_000, "m").admitted and not budget.charge(tenant_id="m", app_id="app", size="medium", cost=read).admitted
    assert spend("large", 8_000, "l").admitted and not budget.charge(tenant_id="l", app_id="app", size="large", cost=read).admitted
    assert spend("small", 2_800, "s").limit_percentage is None  # 80%: not "more than 0.8"
    warned = budget.charge(tenant_id="s", app_id="app", size="small", cost=read)
    assert warned.admitted and warned.headers()["x-ms-throttle-limit-percentage"] == "0.8"
    # another app in the same tenant has a budget of its own
    assert budget.charge(tenant_id="m", app_id="other", size="medium", cost=read).admitted
    assert budget.stats("m").throttled == 1 and budget.stats("m").peak_resource_units_10s == 5_000


def test_scenario_fields_for_size_and_throttling() -> None:
    world, _ = load_scenario({"tenants": [{"id": "t", "size": "large", "graphThrottling": False}]})
    tenant = world.tenant("t")
    assert tenant.size == "large" and tenant.graph_throttling is False
    assert load_scenario({"tenants": [{"id": "t"}]})[0].tenant("t").size == "small"
    with pytest.raises(ScenarioError, match=r"tenants\[0\]\.size: expected one of small, medium, large"):
        load_scenario({"tenants": [{"id": "t", "size": "huge"}]})
