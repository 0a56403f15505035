"""GET /api/status and /api/status/page from the last completed scheduled run, and the
admin API's rate limit.

The report is written by a real timer run (the scheduled_run function) against the
sandbox and Azurite, read back by the status functions through the per-process cache;
reads are counted at the report store, and time is moved by hand (the cache's
monotonic clock, the API's notion of now), never waited for.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobClient

from sso_monitor.adapters.storage.report_store import DEFAULT_CONTAINER, STATUS_BLOB
from sso_monitor.functions import admin, ratelimit, status_report
from sso_monitor.functions.ncrontab import longest_interval
from sso_monitor.functions.ratelimit import Limit, RateLimited, RateLimiter
from tests.functions import configure_admin_api, forget_status_report, run_timer
from tests.functions.test_admin_api import call, error_code, token

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

DAILY = "0 0 6 * * *"


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stored(sandbox, ids, monkeypatch, tmp_path, azurite):
    """The admin API on the sandbox and Azurite, with no report stored yet and a daily schedule."""
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0}, storage=azurite.connection_string)
    monkeypatch.setenv("SSO_MONITOR_SCHEDULE", DAILY)
    forget_status_report(azurite.connection_string)
    ticks = Ticks()
    monkeypatch.setattr(status_report.cache, "_monotonic", ticks)
    sandbox.ticks = ticks
    yield sandbox
    admin.reset()


def status(sandbox, ids, *, subject: str = "user-alice", route: str = "status", name: str = "admin_status"):
    return call(name, route=route, bearer=token(sandbox, ids, "SsoMonitor.Read", subject=subject))


def reads() -> int:
    return admin._get_state().service.report_store().reads


def stored_blob(connection: str) -> dict:
    with BlobClient.from_connection_string(connection, DEFAULT_CONTAINER, STATUS_BLOB) as blob:
        return json.loads(blob.download_blob().readall())


def test_status_is_the_timer_runs_stored_report(stored, ids, azurite):
    run_timer()
    written = stored_blob(azurite.connection_string)
    (app,) = written["apps"]
    assert app["facility"] == "acme" and app["status"] == "ok" and app["rotation"]["stage"] == "current"
    # Everything the live check would call is down now: the status does not call it.
    for service in ("graph", "vault"):
        stored.faults.add("status", service=service, status=503)
    stored.faults.add("status", service="login", method="POST", status=503)  # the token endpoint; discovery and keys stay up
    status_report.cache.clear()  # as on an instance that did not run the timer
    response = status(stored, ids)
    assert response.status_code == 200, response.get_body()
    document = json.loads(response.get_body())
    assert document["generatedAt"] == written["generatedAt"] and document["stale"] is False
    assert document["apps"] == written["apps"] and document["apps"][0]["daysLeft"] in (64, 65)
    generated = datetime.fromisoformat(document["generatedAt"])
    assert document["staleAfter"] == (generated + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")  # twice a daily timer
    assert "message" not in document
    assert reads() == 1


def test_the_page_is_the_stored_report_too(stored, ids):
    run_timer()
    response = status(stored, ids, route="status/page", name="admin_status_page")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_body().decode()
    assert "acme" in page and "stale" not in page.lower()


def test_a_second_call_within_the_ttl_reads_nothing(stored, ids, azurite):
    run_timer()
    status_report.cache.clear()
    first = json.loads(status(stored, ids).get_body())
    assert reads() == 1
    # Another instance's run replaces the report: this one keeps serving what it read, for a minute.
    replaced = {**first, "generatedAt": (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "errors": ["from the next run"]}
    asyncio.run(admin._get_state().service.report_store().write(replaced))
    for route, name in (("status", "admin_status"), ("status/page", "admin_status_page"), ("status", "admin_status")):
        assert status(stored, ids, route=route, name=name).status_code == 200
    assert reads() == 1
    assert json.loads(status(stored, ids).get_body())["errors"] == first["errors"]
    stored.ticks.now += status_report.STATUS_TTL  # a minute later: one read, then the cache again
    assert json.loads(status(stored, ids).get_body())["errors"] == ["from the next run"]
    assert json.loads(status(stored, ids).get_body())["errors"] == ["from the next run"]
    assert reads() == 2


def test_the_instance_that_ran_the_timer_serves_its_report_without_a_read(stored, ids):
    run_timer()
    assert status(stored, ids).status_code == 200
    assert reads() == 0


def test_concurrent_callers_at_expiry_share_one_read(stored, ids):
    run_timer()
    status_report.cache.clear()
    service = admin._get_state().service

    async def many() -> list:
        return await asyncio.gather(*(status_report.cache.get(service.stored_status) for _ in range(20)))

    documents = asyncio.run(many())
    assert all(d == documents[0] for d in documents) and reads() == 1


def test_a_failed_read_serves_the_report_read_before(stored, ids, monkeypatch):
    run_timer()
    status_report.cache.clear()
    assert status(stored, ids).status_code == 200
    store = admin._get_state().service.report_store()

    async def broken() -> None:
        from sso_monitor.errors import TransientError

        raise TransientError("blob storage", "read: 503 ServerBusy", status=503)

    monkeypatch.setattr(store, "read", broken)
    stored.ticks.now += status_report.STATUS_TTL
    assert status(stored, ids).status_code == 200  # the older copy
    status_report.cache.clear()
    response = status(stored, ids)  # nothing to fall back on: a clear 502, not a crash
    assert (response.status_code, error_code(response)) == (502, "upstream_failed")


@pytest.mark.parametrize(
    "schedule, age, stale",
    [
        (DAILY, timedelta(hours=47), False),
        (DAILY, timedelta(hours=49), True),
        ("0 */5 * * * *", timedelta(minutes=9), False),
        ("0 */5 * * * *", timedelta(minutes=11), True),
        ("0 0 6 * * 1-5", timedelta(days=5), False),  # weekdays: the weekend's gap is the interval
        ("not a schedule", timedelta(hours=25), False),  # unreadable: 26 hours
        ("not a schedule", timedelta(hours=27), True),
        (None, timedelta(hours=27), True),
    ],
)
def test_staleness(stored, ids, monkeypatch, schedule, age, stale):
    if schedule is None:
        monkeypatch.delenv("SSO_MONITOR_SCHEDULE")
    else:
        monkeypatch.setenv("SSO_MONITOR_SCHEDULE", schedule)
    run_timer()
    generated = datetime.fromisoformat(stored_blob_generated(stored))
    monkeypatch.setattr(admin, "_now", lambda: generated + age)
    document = json.loads(status(stored, ids).get_body())
    assert document["stale"] is stale
    assert ("message" in document) is stale
    if stale:
        assert "the timer's runs are failing or not happening" in document["message"]
        page = status(stored, ids, route="status/page", name="admin_status_page").get_body().decode()
        assert "This report is stale" in page


def stored_blob_generated(sandbox) -> str:
    return asyncio.run(admin._get_state().service.report_store().read())["generatedAt"]


def test_before_any_run_every_configured_app_is_unknown(stored, ids):
    response = status(stored, ids)
    assert response.status_code == 200
    document = json.loads(response.get_body())
    assert document["generatedAt"] is None and document["stale"] is True
    assert "no scheduled run has completed yet" in document["message"]
    assert [(a["facility"], a["status"], a["rotation"]["stage"]) for a in document["apps"]] == [("acme", "unknown", "unknown")]
    assert document["summary"] == {"unknown": 1}
    page = status(stored, ids, route="status/page", name="admin_status_page").get_body().decode()
    assert "No scheduled run has completed yet" in page
    assert reads() == 1  # the absence is cached too
    status(stored, ids)
    assert reads() == 1


def test_an_app_configured_after_the_run_is_listed_as_unknown(stored, ids, azurite, monkeypatch):
    run_timer()
    from sso_monitor.config import load_config

    state = admin._get_state()
    first = state.config.apps[0]
    from dataclasses import replace

    monkeypatch.setattr(state, "config", replace(load_config(), apps=(first, replace(first, facility="zeta", vault_secret_name="smarttrace-zeta"))))
    document = json.loads(status(stored, ids).get_body())
    assert [(a["facility"], a["status"]) for a in document["apps"]] == [("acme", "ok"), ("zeta", "unknown")]
    assert document["stale"] is False and document["message"] == "1 app configured since the last run is not checked yet: zeta"


def test_status_without_storage_is_503(sandbox, ids, monkeypatch, tmp_path):
    configure_admin_api(sandbox, ids, monkeypatch, tmp_path, facility="acme", verify={"successes": 1, "intervalSeconds": 0})
    try:
        response = status(sandbox, ids)
        assert (response.status_code, error_code(response)) == (503, "not_configured")
    finally:
        admin.reset()


def test_a_corrupt_stored_report_is_a_clear_502(stored, ids, azurite):
    with BlobClient.from_connection_string(azurite.connection_string, DEFAULT_CONTAINER, STATUS_BLOB) as blob:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContainerClient

        with ContainerClient.from_connection_string(azurite.connection_string, DEFAULT_CONTAINER) as container:
            try:
                container.create_container()
            except ResourceExistsError:
                pass
        blob.upload_blob(b"\xff{not json", overwrite=True)
    response = status(stored, ids)
    assert (response.status_code, error_code(response)) == (502, "upstream_failed")
    assert "the next scheduled run replaces it" in json.loads(response.get_body())["error"]["message"]


# ---------------------------------------------------------------- the schedule's interval


@pytest.mark.parametrize(
    "expression, interval",
    [
        ("0 0 6 * * *", timedelta(days=1)),
        ("0  0 6 * *  *", timedelta(days=1)),
        ("0 */5 * * * *", timedelta(minutes=5)),
        ("*/10 * * * * *", timedelta(seconds=10)),
        ("0 0 6,18 * * *", timedelta(hours=12)),
        ("0 0 6 * * 1-5", timedelta(days=3)),
        ("0 0 6 * * MON-FRI", timedelta(days=3)),
        ("0 0 0 * * 7", timedelta(days=7)),
        ("0 30 9 1 * *", timedelta(days=31)),
        ("0 0 9-17 * * *", timedelta(hours=16)),
        ("0 5/15 * * * *", timedelta(minutes=15)),
        ("00:05:00", timedelta(minutes=5)),
        ("1.00:00:00", timedelta(days=1)),
        ("0 0 6 * *", None),  # five fields: not an Azure Functions schedule
        ("0 0 0 30 2 *", None),  # never fires
        ("0 0 25 * * *", None),
        ("0 0 6-1 * * *", None),
        ("0 */0 * * * *", None),
        ("00:00:00", None),
        ("", None),
        (None, None),
    ],
)
def test_longest_interval(expression, interval):
    assert longest_interval(expression) == interval


# ---------------------------------------------------------------- the rate limit


def test_the_limiter_refills_and_says_when():
    ticks = Ticks()
    limiter = RateLimiter({"read": Limit(3, 60.0)}, monotonic=ticks)
    for _ in range(3):
        limiter.take("read", "a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("read", "a")
    assert refused.value.retry_after == 20  # one token per 20 s
    limiter.take("read", "b")  # another caller: a bucket of its own
    ticks.now += 19.5
    with pytest.raises(RateLimited) as refused:
        limiter.take("read", "a")
    assert refused.value.retry_after == 1
    ticks.now += 0.5
    limiter.take("read", "a")
    ticks.now += 3600
    for _ in range(3):  # refilled to the burst, not beyond
        limiter.take("read", "a")
    with pytest.raises(RateLimited):
        limiter.take("read", "a")


def test_idle_buckets_are_forgotten(monkeypatch):
    ticks = Ticks()
    monkeypatch.setattr(ratelimit, "_PRUNE_AT", 5)
    limiter = RateLimiter({"read": Limit(2, 60.0)}, monotonic=ticks)
    for caller in range(6):
        limiter.take("read", str(caller))
    ticks.now += 120
    limiter.take("read", "late")
    assert len(limiter) == 1


def test_reads_are_limited_per_caller(stored, ids):
    run_timer()
    limit = ratelimit.LIMITS[ratelimit.READ].capacity
    for _ in range(limit):
        assert status(stored, ids, subject="reader-one").status_code == 200
    refused = status(stored, ids, subject="reader-one")
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert "per caller and per instance" in json.loads(refused.get_body())["error"]["message"]
    page = status(stored, ids, subject="reader-one", route="status/page", name="admin_status_page")
    assert page.status_code == 429  # the same bucket for every read
    assert status(stored, ids, subject="reader-two").status_code == 200  # another caller is unaffected


def test_the_live_check_has_the_strictest_limit(stored, ids):
    limit = ratelimit.LIMITS[ratelimit.CHECK].capacity
    assert limit < ratelimit.LIMITS[ratelimit.ACTION].capacity < ratelimit.LIMITS[ratelimit.READ].capacity
    bearer = token(stored, ids, "SsoMonitor.Admin", subject="operator-one")

    def check(facility: str, who: str = bearer):
        return call("admin_check", method="POST", route=f"apps/{facility}/check", params={"facility": facility}, bearer=who)

    assert check("acme").status_code == 200  # one real live check
    for _ in range(limit - 1):
        assert error_code(check("nowhere")) == "unknown_facility"  # refused calls count too
    refused = check("acme")
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited") and int(refused.headers["Retry-After"]) >= 1
    # Reads and actions of the same caller have buckets of their own; other callers are unaffected.
    assert call("admin_status", route="status", bearer=bearer).status_code == 200
    assert error_code(call("admin_rotate", method="POST", route="apps/nowhere/rotate", params={"facility": "nowhere"}, bearer=bearer)) == "unknown_facility"
    assert error_code(check("nowhere", token(stored, ids, "SsoMonitor.Admin", subject="operator-two"))) == "unknown_facility"


def test_unauthenticated_calls_are_not_counted(stored, ids):
    for _ in range(ratelimit.LIMITS[ratelimit.READ].capacity + 5):
        assert call("admin_status", route="status").status_code == 401
    assert len(admin._get_state().limiter) == 0


def test_a_report_that_cannot_be_stored_fails_the_run_but_not_its_alerts(stored, ids, monkeypatch, caplog):
    from sso_monitor.adapters.storage.report_store import BlobReportStore
    from sso_monitor.errors import TransientError
    from sso_monitor.service import ScheduledRunFailed

    async def refused(self, document):
        raise TransientError("blob storage", "sso-monitor-reports/status.json: write: 503 ServerBusy", status=503)

    monkeypatch.setattr(BlobReportStore, "write", refused)
    with pytest.raises(ScheduledRunFailed):
        run_timer()
    (summary,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert summary:")]
    assert "status report not stored: blob storage: sso-monitor-reports/status.json: write: 503 ServerBusy" in summary
    assert json.loads(status(stored, ids).get_body())["generatedAt"] is None  # nothing was stored
