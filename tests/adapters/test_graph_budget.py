"""The Graph read pacer: documented costs, and a sliding window that never overspends."""

from __future__ import annotations

import asyncio

import pytest

from sso_monitor.adapters.graph.budget import ResourceBudget, request_cost


@pytest.mark.parametrize(
    "method, url, cost",
    [
        ("GET", "/applications", 2),  # a listed path: base 2
        ("GET", "/applications?$select=id,appId", 1),  # $select -1
        ("GET", "/applications?$expand=owners", 3),  # $expand +1
        ("GET", "/applications(appId='x')?$select=id,web", 1),  # one entity: base 1, never below 1
        ("GET", "/applications(appId='x')/owners?$select=id", 1),
        ("GET", "/servicePrincipals(appId='x')/appRoleAssignedTo?$top=1&$select=id", 1),  # $top < 20 and $select: still 1
        ("GET", "/users?$top=5", 1),  # base 2, $top under 20 -1
        ("GET", "/policies/defaultAppManagementPolicy", 1),  # not in the table: 1
        ("POST", "/applications/x/addPassword", 1),
    ],
)
def test_request_cost_follows_the_documented_table(method, url, cost):
    assert request_cost(method, url) == cost


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_no_window_ever_holds_more_than_the_share():
    time = FakeTime()
    budget = ResourceBudget(100, window=10.0, share=0.9, clock=time.clock, sleep=time.sleep)
    sent: list[tuple[float, int]] = []

    async def run() -> None:
        for _ in range(50):
            await budget.spend(20)
            sent.append((time.now, 20))

    asyncio.run(run())
    for start, _ in sent:
        in_window = sum(units for at, units in sent if start <= at < start + 10.0)
        assert in_window <= 90
    # four 20-unit batches fit in 90 per window: 50 batches take 12 more windows, no fewer
    assert sent[-1][0] == pytest.approx(120.0, abs=0.1)
    assert budget.peak <= 90


def test_a_429_halves_the_share_down_to_a_floor():
    budget = ResourceBudget(3500)
    budget.throttled()
    assert budget.limit == int(3500 * 0.45)
    for _ in range(10):
        budget.throttled()
    assert budget.limit == int(3500 * 0.25)


def test_tenant_sizes():
    assert ResourceBudget.for_tenant_size("small").units_per_window == 3500
    assert ResourceBudget.for_tenant_size("medium").units_per_window == 5000
    assert ResourceBudget.for_tenant_size("large").units_per_window == 8000
