"""GraphDirectoryReader against the sandbox Graph over HTTPS: $batch through the
msgraph pipeline, inner and outer throttling, per-app failures, tenant failures."""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sso_monitor.adapters.graph.reader import (
    BATCH_LIMIT,
    GraphDirectoryReader,
    parse_datetime,
    parse_duration,
    plan_reads,
)
from sso_monitor.checks.ports import DirectorySnapshot
from sso_monitor.config import MonitorConfig, parse_config
from sso_monitor.errors import AccessDenied, ConfigError, ExternalError, TransientError
from sso_monitor.models import (
    AppRegistration,
    PasswordPolicy,
    Problem,
    ReadFailure,
    ServicePrincipalInfo,
)
from sso_sandbox import Sandbox, World
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import GRAPH_RESOURCE, AppRoleAssignment, new_guid

FLEET_TENANT = "3c9a1f52-0000-4000-8000-00000000fa01"
OWNED_BY = "Application.ReadWrite.OwnedBy"
POLICY_READ = "Policy.Read.All"


# ---------------------------------------------------------------- helpers


def config_for(sandbox: Sandbox, *, network: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> MonitorConfig:
    document, settings = monitor_document(sandbox)
    document["network"].update(network or {})
    settings.update(environ or {})
    return parse_config(document, settings)


def snapshot(sandbox: Sandbox, tenant_id: str, app_ids: list[str], config: MonitorConfig | None = None, **options: Any) -> DirectorySnapshot:
    """One snapshot with a fresh reader, closed afterwards."""

    async def run() -> DirectorySnapshot:
        reader = GraphDirectoryReader(config or config_for(sandbox), tenant_id, **options)
        try:
            return await reader.snapshot(tenant_id, app_ids)
        finally:
            await reader.aclose()

    return asyncio.run(run())


def batch_posts(world: World) -> int:
    """HTTP requests POST /v1.0/$batch (count_requests leaves the inner ones out)."""
    return world.count_requests(service="graph", method="POST", path_contains="/v1.0/$batch")


def inner_gets(world: World, path_contains: str) -> int:
    """GETs sent inside a $batch."""
    return world.count_requests(service="graph", method="GET", path_contains=path_contains, inner=True)


def inner_gets_of(world: World, path_suffix: str) -> int:
    """GETs sent inside a $batch whose path ends with ``path_suffix`` (the app itself, not its owners)."""
    return sum(1 for r in list(world.requests) if r.inner and r.method == "GET" and r.path.endswith(path_suffix))


def grant(world: World, tenant_id: str, roles: list[str]) -> None:
    monitor = world.tenant(tenant_id).sp_by_app_id(world.monitors[tenant_id])
    monitor.granted_roles = {GRAPH_RESOURCE: roles}


def fleet_world(count: int) -> tuple[World, list[str]]:
    """One tenant, the monitor (OwnedBy + Policy.Read.All) owning ``count`` healthy apps."""
    world = World()
    now = world.now()
    tenant = world.add_tenant(FLEET_TENANT, "Fabrikam Dairy", password_max_lifetime=timedelta(days=180))
    monitor = world.add_application(tenant.tenant_id, "SmartTrace SSO Monitor")
    world.add_service_principal(monitor, granted_roles={GRAPH_RESOURCE: [OWNED_BY, POLICY_READ]})
    world.monitors[tenant.tenant_id] = monitor.app_id
    world.add_password(monitor, display_name="sandbox", start=now - timedelta(days=1), created=now - timedelta(days=1))
    world.add_vault("kv-fleet", tenant.tenant_id, access={monitor.app_id: "Key Vault Secrets Officer"})
    app_ids = []
    for index in range(count):
        facility = f"plant{index:03d}"
        app = world.add_application(
            tenant.tenant_id,
            f"SmartTrace {facility}",
            owners={monitor.app_id},
            web={
                "logoutUrl": f"https://api.smarttrace.ai/v1/auth/callback/azure-logout/{facility}",
                "redirectUris": [f"https://api.smarttrace.ai/v1/auth/callback/azure/{facility}"],
                "implicitGrantSettings": {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True},
            },
        )
        world.add_password(app, display_name="SmartTrace SSO", start=now - timedelta(days=10), end=now + timedelta(days=100))
        sp = world.add_service_principal(app, app_role_assignment_required=True, owners={monitor.app_id})
        sp.assigned_to.append(
            AppRoleAssignment(
                id=new_guid(),
                principal_id=new_guid(),
                principal_type="Group",
                principal_display_name="Plant staff",
                resource_id=sp.object_id,
                resource_display_name=sp.display_name,
                app_role_id="00000000-0000-0000-0000-000000000000",
                created=now - timedelta(days=10),
            )
        )
        world.add_facility(facility, tenant.tenant_id, app.app_id)
        app_ids.append(app.app_id)
    return world, app_ids


@pytest.fixture
def fleet() -> Iterator[tuple[Sandbox, list[str]]]:
    world, app_ids = fleet_world(50)
    with Sandbox(world) as running:
        yield running, app_ids


def assert_all_read(result: DirectorySnapshot, app_ids: list[str]) -> None:
    for app_id in app_ids:
        app, sp = result.apps[app_id], result.service_principals[app_id]
        assert isinstance(app, AppRegistration), app
        assert isinstance(sp, ServicePrincipalInfo), sp
        assert app.app_id == app_id and len(app.password_credentials) == 1
        assert sp.enabled and sp.assignment_required and sp.assignments == 1


@pytest.fixture(autouse=True)
def no_secret_in_logs(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test runs with DEBUG logging (SDKs, azure-identity, ours); no secret the
    sandbox issued may appear in any record."""
    caplog.set_level(logging.DEBUG)
    worlds = [request.getfixturevalue(name) for name in ("sandbox", "fleet", "scenario_sandbox") if name in request.fixturenames]
    yield
    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for phase in ("setup", "call", "teardown") for r in caplog.get_records(phase))  # type: ignore[arg-type]
    for item in worlds:
        world = item.world if isinstance(item, Sandbox) else item[0].world
        leaked = [secret for secret in world.issued_secrets if secret in text]
        assert not leaked, "a secret value reached the log"


# ---------------------------------------------------------------- (1) one app, read fully


def test_reads_the_smarttrace_app_its_service_principal_and_the_policy(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    grant(world, ids.tenant_id, [OWNED_BY, POLICY_READ])
    stored = world.find_app(ids.smarttrace_app_id)
    result = snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id.upper()])  # keys are lower-case

    app = result.apps[ids.smarttrace_app_id]
    assert isinstance(app, AppRegistration)
    assert (app.object_id, app.app_id, app.display_name) == (ids.smarttrace_object_id, ids.smarttrace_app_id, "SmartTrace")
    assert app.created == stored.created.replace(microsecond=0)
    (credential,) = app.password_credentials
    assert credential.key_id == ids.smarttrace_key_id
    assert credential.display_name == "SmartTrace SSO"
    assert credential.hint == stored.password_credentials[0].secret_text[:3]
    assert credential.end == stored.password_credentials[0].end.replace(microsecond=0)
    assert credential.start is not None and credential.start.tzinfo is not None
    assert stored.password_credentials[0].secret_text not in repr(result)  # Graph never returns secretText on a GET
    assert app.web.logout_url == "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme"
    assert app.web.redirect_uris == ("https://api.smarttrace.ai/v1/auth/callback/azure/acme",)
    assert app.web.home_page_url == "https://acme.smarttrace.ai"
    assert app.web.id_tokens is True and app.web.access_tokens is True

    sp = result.service_principals[ids.smarttrace_app_id]
    assert isinstance(sp, ServicePrincipalInfo)
    assert sp.app_id == ids.smarttrace_app_id and sp.object_id
    assert (sp.enabled, sp.assignment_required, sp.assignments) == (True, True, 1)

    assert result.policy == PasswordPolicy(max_lifetime=timedelta(days=365), restrict_for_apps_created_after=None, enabled=True)
    # one app, one policy: four inner requests in one outer request
    assert batch_posts(world) == 1
    assert inner_gets(world, "/defaultAppManagementPolicy") == 1
    assert inner_gets(world, "/appRoleAssignedTo") == 1


def test_policy_without_policy_read_is_access_denied_and_the_apps_are_read(sandbox: Sandbox, ids: StandardIds) -> None:
    # The standard world's monitor holds OwnedBy and Mail.Send only (least privilege).
    result = snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id])
    assert isinstance(result.policy, ReadFailure) and result.policy.problem is Problem.ACCESS_DENIED
    assert "Authorization_RequestDenied" in result.policy.detail
    assert isinstance(result.apps[ids.smarttrace_app_id], AppRegistration)
    assert isinstance(result.service_principals[ids.smarttrace_app_id], ServicePrincipalInfo)


def test_no_app_ids_no_request(sandbox: Sandbox, ids: StandardIds) -> None:
    assert snapshot(sandbox, ids.tenant_id, []) == DirectorySnapshot()
    assert sandbox.world.count_requests(service="graph") == 0


# ---------------------------------------------------------------- (2) per-app problems


def test_unknown_foreign_and_missing_service_principal(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    unknown = "0badc0de-0000-4000-8000-000000000000"
    lonely = world.add_application(ids.tenant_id, "SmartTrace (no enterprise app)", owners={ids.monitor_app_id})
    result = snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id, unknown, ids.foreign_app_id, lonely.app_id])

    assert isinstance(result.apps[ids.smarttrace_app_id], AppRegistration)
    # unknown appId: 404 for the app and its (absent) service principal
    assert result.apps[unknown].problem is Problem.NOT_FOUND
    assert result.service_principals[unknown].problem is Problem.NOT_FOUND
    # Payroll exists and the monitor does not own it: Application.ReadWrite.OwnedBy still
    # reads it (only writes need ownership); its owners say the monitor is not one
    assert isinstance(result.apps[ids.foreign_app_id], AppRegistration)
    assert isinstance(result.service_principals[ids.foreign_app_id], ServicePrincipalInfo)
    foreign_owners = result.owners[ids.foreign_app_id]
    assert not isinstance(foreign_owners, ReadFailure) and foreign_owners.monitor_owns is False
    assert result.owners[ids.smarttrace_app_id].monitor_owns is True
    # app without an enterprise app: the app reads, the SP is not found
    assert isinstance(result.apps[lonely.app_id], AppRegistration)
    assert result.service_principals[lonely.app_id].problem is Problem.NOT_FOUND
    assert batch_posts(world) == 1  # 17 inner requests


# ---------------------------------------------------------------- (3) many apps, few requests


def test_fifty_apps_take_eleven_batches(fleet: tuple[Sandbox, list[str]]) -> None:
    sandbox, app_ids = fleet
    result = snapshot(sandbox, FLEET_TENANT, app_ids)
    assert sorted(result.apps) == sorted(result.service_principals) == sorted(app_ids)
    assert_all_read(result, app_ids)
    assert result.policy == PasswordPolicy(max_lifetime=timedelta(days=180))
    world = sandbox.world
    posts = batch_posts(world)
    # four reads per app (app, owners, SP, one assignment) and the policy
    assert posts == math.ceil((4 * 50 + 1) / BATCH_LIMIT) == 11
    assert posts / len(app_ids) <= 0.25
    assert inner_gets(world, "/defaultAppManagementPolicy") == 1
    assert inner_gets(world, "/v1.0/applications(") == 100  # the app and its owners
    assert inner_gets(world, "/owners") == 50
    assert inner_gets(world, "/appRoleAssignedTo") == 50
    assert world.count_requests(service="graph") == posts  # no other HTTP request
    assert world.count_requests(service="graph", inner=True) == 201


def test_plan_puts_the_policy_first_and_keeps_each_apps_reads_together() -> None:
    reads = plan_reads(["a-1", "b'2"])
    assert [r.kind for r in reads] == ["policy", "app", "owners", "sp", "assigned", "app", "owners", "sp", "assigned"]
    assert len({r.id for r in reads}) == len(reads)
    assert reads[5].url.startswith("/applications(appId='b''2')?$select=")  # OData quote doubled


# ---------------------------------------------------------------- (4) inner throttling


def test_inner_429_storm_is_resent_after_retry_after(fleet: tuple[Sandbox, list[str]]) -> None:
    sandbox, app_ids = fleet
    rule = sandbox.faults.add("throttle", service="graph", method="GET", path="/v1.0/applications*", times=30, retry_after=0.2)
    started = time.monotonic()
    result = snapshot(sandbox, FLEET_TENANT, app_ids)
    elapsed = time.monotonic() - started
    assert_all_read(result, app_ids)
    assert rule.fired == 30
    world = sandbox.world
    assert inner_gets(world, "/v1.0/applications(") == 100 + 30  # apps and owners; the 30 throttled ones were sent again
    assert inner_gets(world, "/appRoleAssignedTo") == 50  # and nothing else was
    assert batch_posts(world) == 11 + math.ceil(30 / BATCH_LIMIT)
    assert elapsed >= 0.2  # the inner Retry-After was honoured


def test_inner_throttling_that_outlasts_the_rounds_fails_only_that_read(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.faults.add("throttle", service="graph", method="GET", path=f"re:^/v1\\.0/applications\\(appId='{ids.smarttrace_app_id}'\\)$", retry_after=0.05)
    result = snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id], max_rounds=2)
    failure = result.apps[ids.smarttrace_app_id]
    assert isinstance(failure, ReadFailure) and failure.problem is Problem.FAILED and "throttled" in failure.detail
    assert isinstance(result.service_principals[ids.smarttrace_app_id], ServicePrincipalInfo)
    assert inner_gets_of(sandbox.world, f"/applications(appId='{ids.smarttrace_app_id}')") == 3  # first try + 2 rounds
    assert inner_gets(sandbox.world, f"/applications(appId='{ids.smarttrace_app_id}')/owners") == 1  # its owners were read once


# ---------------------------------------------------------------- (5) outer throttling


def test_outer_429_is_retried_by_the_sdk_honouring_a_fractional_retry_after(sandbox: Sandbox, ids: StandardIds) -> None:
    rule = sandbox.faults.add("throttle", service="graph", method="POST", path="/v1.0/$batch", times=2, retry_after=0.1)
    started = time.monotonic()
    result = snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id])
    elapsed = time.monotonic() - started
    assert isinstance(result.apps[ids.smarttrace_app_id], AppRegistration)
    assert rule.fired == 2 and batch_posts(sandbox.world) == 3
    assert elapsed < 3  # 0.1 s twice, not kiota's 3.5 s backoff for a Retry-After it cannot parse


def test_outer_429_that_outlasts_the_sdk_fails_that_batchs_apps_only(fleet: tuple[Sandbox, list[str]]) -> None:
    sandbox, app_ids = fleet
    # One batch at a time, so that the first batch takes every 429: its first try and the SDK's 3 retries.
    config = config_for(sandbox, network={"concurrency": 1})
    sandbox.faults.add("throttle", service="graph", method="POST", path="/v1.0/$batch", times=4, retry_after=0.05)
    result = snapshot(sandbox, FLEET_TENANT, app_ids, config=config)
    failed = [a for a in app_ids if isinstance(result.apps[a], ReadFailure) or isinstance(result.service_principals[a], ReadFailure)]
    # the first batch: the policy and the reads of apps 0..4 (app 4 all but its assignment)
    assert failed == app_ids[:5]
    assert all(result.apps[a].problem is Problem.FAILED and "HTTP 429" in result.apps[a].detail for a in app_ids[:5])
    assert isinstance(result.policy, ReadFailure) and result.policy.problem is Problem.FAILED
    assert_all_read(result, app_ids[5:])
    assert batch_posts(sandbox.world) == 11 + 3


# ---------------------------------------------------------------- (6) one app failing for good


def test_a_permanently_failing_app_is_failed_and_the_others_are_read(fleet: tuple[Sandbox, list[str]]) -> None:
    sandbox, app_ids = fleet
    broken = app_ids[17]
    sandbox.faults.add("status", service="graph", path=f"re:^/v1\\.0/applications\\(appId='{broken}'\\)$", status=500, code="UnknownError", message="Boom.")
    result = snapshot(sandbox, FLEET_TENANT, app_ids)
    failure = result.apps[broken]
    assert failure == ReadFailure(Problem.FAILED, f"application {broken}: HTTP 500 UnknownError: Boom.")
    assert isinstance(result.service_principals[broken], ServicePrincipalInfo)
    assert_all_read(result, [a for a in app_ids if a != broken])
    assert inner_gets_of(sandbox.world, f"/applications(appId='{broken}')") == 1  # a 500 is not re-sent


# ---------------------------------------------------------------- (7) the tenant level


def test_monitor_without_any_graph_role_gets_access_denied_per_app(sandbox: Sandbox, ids: StandardIds) -> None:
    """Graph answers every inner request 403 (the batch itself is 200): no Graph
    permission was consented for the monitor. Reads are never refused for ownership
    (Application.ReadWrite.OwnedBy reads every app), so this is reported per app as
    APP_ACCESS_DENIED, whose fix is the consent; the reader does not raise."""
    grant(sandbox.world, ids.tenant_id, [])
    result = snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id, ids.foreign_app_id])
    for app_id in (ids.smarttrace_app_id, ids.foreign_app_id):
        assert result.apps[app_id].problem is Problem.ACCESS_DENIED
        assert result.service_principals[app_id].problem is Problem.ACCESS_DENIED
    assert isinstance(result.policy, ReadFailure) and result.policy.problem is Problem.ACCESS_DENIED


def test_outer_403_on_every_batch_raises_access_denied(fleet: tuple[Sandbox, list[str]]) -> None:
    sandbox, app_ids = fleet
    sandbox.faults.add("status", service="graph", method="POST", path="/v1.0/$batch", status=403, code="Authorization_RequestDenied")
    with pytest.raises(AccessDenied) as info:
        snapshot(sandbox, FLEET_TENANT, app_ids)
    assert info.value.status == 403 and info.value.code == "Authorization_RequestDenied"
    assert FLEET_TENANT in str(info.value)


def test_a_refused_monitor_secret_raises_access_denied(sandbox: Sandbox, ids: StandardIds) -> None:
    document, settings = monitor_document(sandbox)
    (setting,) = settings
    config = parse_config(document, {setting: "not-the-monitor-secret"})
    with pytest.raises(AccessDenied) as info:
        snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id], config=config)
    assert info.value.code == "AADSTS7000215"
    assert info.value.__cause__ is not None  # translated with raise ... from
    assert batch_posts(sandbox.world) == 0


def test_every_batch_failing_otherwise_raises_transient_error(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.faults.add("status", service="graph", method="POST", path="/v1.0/$batch", status=500)
    with pytest.raises(TransientError) as info:
        snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id])
    assert info.value.status == 500


def test_a_dropped_connection_on_every_batch_raises_transient_error_from_httpx(sandbox: Sandbox, ids: StandardIds) -> None:
    import httpx

    sandbox.faults.add("drop", service="graph", method="POST", path="/v1.0/$batch")
    with pytest.raises(TransientError) as info:
        snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id])
    assert isinstance(info.value.__cause__, httpx.HTTPError)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_lost_batch_answer_is_sent_once_more(sandbox: Sandbox, ids: StandardIds, when: str) -> None:
    # Reads are idempotent: a dropped connection costs one more POST, not a CHECK_FAILED.
    sandbox.faults.add("drop", service="graph", method="POST", path="/v1.0/$batch", when=when, times=1)
    result = snapshot(sandbox, ids.tenant_id, [ids.smarttrace_app_id])
    assert isinstance(result.apps[ids.smarttrace_app_id.lower()], AppRegistration)
    assert sandbox.world.count_requests(service="graph", method="POST", path_contains="$batch") == 2


def test_a_tenant_without_a_usable_identity_raises_external_error() -> None:
    # "default" (DefaultAzureCredential) serves only the home tenant: credential_for refuses.
    config = MonitorConfig(apps=(), vault_url="https://kv.vault.azure.net", home_tenant_id=FLEET_TENANT, identities={})
    other = "0f0f0f0f-0000-4000-8000-000000000000"

    async def run() -> None:
        reader = GraphDirectoryReader(config, other)
        try:
            await reader.snapshot(other, ["11111111-0000-4000-8000-000000000000"])
        finally:
            await reader.aclose()

    with pytest.raises(ExternalError) as info:
        asyncio.run(run())
    assert isinstance(info.value.__cause__, ConfigError) and other in str(info.value)


# ---------------------------------------------------------------- the demo scenario


def test_demo_scenario_each_tenant_in_as_few_batches_as_its_reads_need(scenario_sandbox: Sandbox) -> None:
    config = config_for(scenario_sandbox)
    tenants: dict[str, list[str]] = {}
    for app in config.apps:
        tenants.setdefault(app.tenant_id, []).append(app.app_id)
    for tenant_id, app_ids in tenants.items():
        result = snapshot(scenario_sandbox, tenant_id, app_ids, config=config)
        assert sorted(result.apps) == sorted(app_ids)
        failures = [r for r in [*result.apps.values(), *result.service_principals.values()] if isinstance(r, ReadFailure)]
        assert not [f for f in failures if f.problem is Problem.FAILED], failures
    assert batch_posts(scenario_sandbox.world) == sum(math.ceil((4 * len(apps) + 1) / BATCH_LIMIT) for apps in tenants.values())


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),  # Graph's usual form
        ("2021-05-04T18:33:22.1234567Z", datetime(2021, 5, 4, 18, 33, 22, 123456, tzinfo=UTC)),  # 7 fraction digits
        ("2021-05-04T18:33:22.5+02:00", datetime(2021, 5, 4, 16, 33, 22, 500000, tzinfo=UTC)),  # an offset
        ("2021-05-04T18:33:22", datetime(2021, 5, 4, 18, 33, 22, tzinfo=UTC)),  # naive: UTC
        (None, None),  # null
        ("not a date", None),  # garbage is "unknown", not a crash
    ],
)
def test_parse_datetime(text: str | None, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("P365D", timedelta(days=365)),  # the usual policy
        ("P90DT12H30M5S", timedelta(days=90, hours=12, minutes=30, seconds=5)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("P1Y", timedelta(days=365)),  # years as 365 days
        ("P2W", timedelta(days=14)),
        ("P", None),  # empty duration
        ("365", None),  # not ISO 8601
        (None, None),
    ],
)
def test_parse_duration(text: str | None, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


# ---------------------------------------------------------------- (8) cold start


def test_import_and_construction_load_no_sdk() -> None:
    code = (
        "import sys\n"
        "from sso_monitor.adapters.graph.reader import GraphDirectoryReader\n"
        "from sso_monitor.config import MonitorConfig\n"
        "GraphDirectoryReader(MonitorConfig(apps=(), vault_url='https://kv.vault.azure.net', home_tenant_id='t', identities={}), 't')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'msgraph_core', 'kiota_http', 'kiota_abstractions', 'azure', 'httpx', 'aiohttp'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
