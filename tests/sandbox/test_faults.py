"""The fault plan: every kind of fault, its timing (before/after the world
changes), and its counting (nth, times), on a real HTTPS server."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sso_sandbox.certs import make_tls
from sso_sandbox.faults import FaultPlan, FaultRule
from sso_sandbox.http import Request, Response, SandboxServer, Service
from sso_sandbox.replication import Replication
from sso_sandbox.world import World


class CounterService(Service):
    """A minimal service whose only effect is visible in the world: POST /count adds one."""

    name = "counter"

    def __init__(self, world: World, faults: FaultPlan) -> None:
        super().__init__(world, faults)
        self.count = 0
        self.route("POST", r"/count", self.increment)
        self.route("GET", r"/count", self.read)

    def increment(self, request: Request) -> Response:
        self.count += 1
        return Response.json(200, {"count": self.count})

    def read(self, request: Request) -> Response:
        return Response.json(200, {"count": self.count})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CounterService, str, str]]:
    tls = make_tls(tmp_path)
    service = CounterService(World(), FaultPlan())
    server = SandboxServer(service, tls.server_context)
    server.start()
    try:
        yield service, f"https://127.0.0.1:{server.port}", str(tls.ca_path)
    finally:
        server.stop()


def post(url: str, ca: str, timeout: float = 5) -> requests.Response:
    return requests.post(f"{url}/count", verify=ca, timeout=timeout)


def test_no_fault_answers_normally(served):
    service, url, ca = served
    assert post(url, ca).json() == {"count": 1}


def test_latency_delays_then_answers(served):
    service, url, ca = served
    service.faults.add("latency", service="counter", path="/count", latency_ms=300)
    started = time.monotonic()
    answer = post(url, ca)
    assert answer.status_code == 200 and service.count == 1
    assert time.monotonic() - started >= 0.3  # a lower bound only: never flaky


def test_status_answers_the_services_error_body_and_leaves_the_world_alone(served):
    service, url, ca = served
    service.faults.add("status", path="/count", status=503, code="ServiceUnavailable", times=1)
    first = post(url, ca)
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "ServiceUnavailable"
    assert service.count == 0
    assert post(url, ca).status_code == 200 and service.count == 1


def test_throttle_answers_429_with_retry_after(served):
    service, url, ca = served
    service.faults.add("throttle", path="/count", retry_after=2.128, times=1)
    answer = post(url, ca)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "2.128"
    assert service.count == 0


def test_timeout_holds_the_connection_past_the_clients_patience(served):
    service, url, ca = served
    service.faults.add("timeout", path="/count", seconds=2, times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(url, ca, timeout=0.5)
    assert service.count == 0


def test_timeout_after_means_the_world_changed_but_the_answer_was_lost(served):
    service, url, ca = served
    service.faults.add("timeout", path="/count", seconds=2, when="after", times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(url, ca, timeout=0.5)
    assert service.count == 1


@pytest.mark.parametrize("when, count_after", [("before", 0), ("after", 1)])
def test_drop_closes_the_connection_unanswered(served, when, count_after):
    service, url, ca = served
    service.faults.add("drop", path="/count", when=when, times=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(url, ca)
    assert service.count == count_after
    assert post(url, ca).status_code == 200


@pytest.mark.parametrize("when, count_after", [("before", 0), ("after", 1)])
def test_crash_refuses_everything_until_the_caller_restarts(served, when, count_after):
    service, url, ca = served
    service.faults.add("crash", method="POST", path="/count", when=when, times=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(url, ca)
    assert service.faults.crashed == {"service": "counter", "method": "POST", "path": "/count", "when": when}
    # A crashed caller does nothing more: every later request is refused, on any route.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/count", verify=ca, timeout=5)
    assert service.count == count_after
    service.faults.recover()
    assert requests.get(f"{url}/count", verify=ca, timeout=5).json() == {"count": count_after}


def test_nth_fails_only_that_call(served):
    service, url, ca = served
    service.faults.add("status", path="/count", status=500, nth=2)
    statuses = [post(url, ca).status_code for _ in range(4)]
    assert statuses == [200, 500, 200, 200]


def test_times_caps_how_often_a_rule_fires(served):
    service, url, ca = served
    service.faults.add("status", path="/count", status=502, times=2)
    assert [post(url, ca).status_code for _ in range(3)] == [502, 502, 200]


def test_rules_match_method_service_and_regex_paths(served):
    service, url, ca = served
    service.faults.add("status", method="GET", path="/count", status=500)
    service.faults.add("status", service="graph", path="*", status=500)
    service.faults.add("status", path=r"re:^/nothing-\d+$", status=500)
    assert post(url, ca).status_code == 200  # POST is not GET; graph is another service
    assert requests.get(f"{url}/count", verify=ca, timeout=5).status_code == 500


def test_the_log_records_fired_faults(served):
    service, url, ca = served
    service.faults.add("status", path="/count", status=500, times=1)
    post(url, ca)
    assert service.faults.log == [{"fault": "status", "service": "counter", "method": "POST", "path": "/count"}]


def test_tls_is_real(served):
    service, url, ca = served
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/count", timeout=5)  # the system trust store does not know the sandbox CA
    context = ssl.create_default_context(cafile=ca)
    assert context.cert_store_stats()["x509_ca"] == 1


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"fault": "explode"}, "unknown fault"),
        ({"fault": "drop", "when": "later"}, "'when'"),
        ({"fault": "status", "nth": 0}, "counts from 1"),
        ({"fault": "status", "colour": "red"}, "colour"),
        ({"path": "/x"}, "needs 'fault'"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(rule, message):
    with pytest.raises(ValueError, match=message):
        FaultRule.from_dict(rule)


def test_a_plan_loads_from_a_list():
    plan = FaultPlan.from_list([{"fault": "throttle", "service": "graph", "path": "/v1.0/$batch", "retry_after": 3}])
    assert plan.rules[0].retry_after == 3 and plan.rules[0].matches("graph", "POST", "/v1.0/$batch")


def test_a_replication_rule_is_a_setting_for_the_run_not_a_fault():
    plan = FaultPlan.from_list(
        [{"fault": "replication", "service": "graph", "path": "/v1.0/applications*", "window_seconds": 5, "stale_probability": 0.5, "seed": 7}]
    )
    assert plan.replication("graph", "GET", "/v1.0/applications/x") == Replication(5, 0.5, 7)
    assert plan.replication("graph", "GET", "/v1.0/servicePrincipals") is None
    assert plan.replication("vault", "GET", "/v1.0/applications/x") is None
    assert plan.select("graph", "GET", "/v1.0/applications/x") == [] and plan.log == []
    with pytest.raises(ValueError, match="staleProbability"):
        FaultRule.from_dict({"fault": "replication", "stale_probability": 1.5, "window_seconds": 1})
