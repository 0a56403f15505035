"""Real sign-in failures from Entra's sign-in log (issue 15, part 1): the pure decision as a
table, and end to end through the real Graph adapter against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sso_monitor.checks.findings import Finding, finding
from sso_monitor.checks.ports import CredentialActivity, Retirement, SignInLog, SignInRecord
from sso_monitor.checks.run import CheckReport
from sso_monitor.checks.signins import activity_confirms, after_retirement, report_unusable, sign_in_findings, still_used_after
from sso_monitor.config import parse_config
from sso_monitor.models import Problem, ReadFailure, VaultSecretInfo
from sso_sandbox import Sandbox
from sso_sandbox.signin_records import record_user_sign_in
from sso_sandbox.testing import StandardIds, standard_world
from sso_sandbox.world import GRAPH_RESOURCE
from tests.checks import check_sandbox

# The codes these tests produce end to end (test_end_to_end.py counts them as covered); the
# last two come from the rotation, end to end in tests/rotation/test_activity.py.
SIGN_IN_CODES = {"SIGN_IN_FAILING", "NO_RECENT_SIGN_INS", "SIGN_INS_UNAVAILABLE", "OLD_SECRET_STILL_IN_USE", "ACTIVITY_REPORT_UNAVAILABLE"}

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
APP = "11111111-1111-1111-1111-111111111111"


def at(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def log(*rows: tuple[int, int], app: str = APP) -> SignInLog:
    return SignInLog(since=NOW - timedelta(days=7), records=tuple(SignInRecord(app, at(m), code) for m, code in rows))


@pytest.mark.parametrize(
    "records, expected",
    [
        (log((30, 0), (10, 0)), []),  # sign-ins work
        (log((30, 0), (10, 7000215)), ["SIGN_IN_FAILING"]),  # a wrong value pasted after the last success
        (log((30, 7000222), (10, 0)), []),  # failed, then fixed: the success after it clears it
        (log((5, 7000218)), ["SIGN_IN_FAILING"]),  # an empty paste, no success in the log at all
        (log((10, 50126)), []),  # a user's wrong password is not the secret's fault
        (log((10, 7000215), app="22222222-2222-2222-2222-222222222222"), ["NO_RECENT_SIGN_INS"]),  # another app's failure; none of ours
        (log(), ["NO_RECENT_SIGN_INS"]),  # quiet: information, never an error
        (ReadFailure(Problem.ACCESS_DENIED, "the monitor's identity lacks AuditLog.Read.All"), ["SIGN_INS_UNAVAILABLE"]),
        (None, []),  # not enabled: nothing read, nothing said
    ],
)
def test_sign_in_findings(records, expected) -> None:
    assert [f.code for f in sign_in_findings(APP, records, NOW)] == expected


def test_the_failing_finding_counts_and_dates_without_a_secret() -> None:
    [found] = sign_in_findings(APP, log((40, 0), (30, 7000215), (20, 7000215), (10, 7000222)), NOW)
    assert found.severity.value == "critical"
    assert found.details["count"] == 3 and found.details["codes"] == ["7000215", "7000222"]
    assert found.details["first"] == at(30).isoformat() and found.details["last"] == at(10).isoformat()
    assert "does not say which secret" in found.message


def test_no_recent_sign_ins_is_information() -> None:
    [found] = sign_in_findings(APP, log(), NOW)
    assert found.severity.value == "info"


# ---------------------------------------------------------------- SIGN_IN_FAILING after the monitor removed a secret

VAULT = "https://kv-sso.vault.azure.net"
ACME = parse_config({"vaultUrl": VAULT, "apps": [{"facility": "acme", "tenantId": "72f988bf-0000-4000-8000-000000000001", "appId": APP}]}, {}).apps[0]
OLD, NEW = "0ld00000-0000-0000-0000-000000000000", "5eed0000-0000-0000-0000-000000000000"
CURRENT = VaultSecretInfo("smarttrace-acme", "v2", True, None, {"stage": "current", "keyId": NEW.upper()})


def retired(minutes: int) -> tuple[Retirement, ...]:
    return (Retirement(OLD, at(minutes), "v1"),)


def failing(*rows: tuple[int, int]) -> Finding:
    [found] = [f for f in sign_in_findings(APP, log(*rows), NOW) if f.code == "SIGN_IN_FAILING"]
    return found


@pytest.mark.parametrize(
    "rows, removals, escalated",
    [
        (((90, 0), (20, 7000215)), retired(30), True),  # removed, then refused: SmartTrace held the removed secret
        (((20, 7000215),), retired(30), True),  # no success in the log at all
        (((90, 0), (60, 0), (20, 7000215)), retired(61), True),  # a success just after the removal: Entra accepted it a while longer (REMOVAL_LAG)
        (((200, 0), (20, 7000215)), retired(190) + (Retirement("other", at(30), "v0"),), True),  # the latest removal before the refusals is named
        (((90, 0), (40, 7000215), (20, 7000215)), retired(30), False),  # removed after the refusals began: not their cause
        (((180, 0), (20, 7000215)), retired(250), False),  # a success long after the removal: SmartTrace held another secret then
        (((90, 0), (20, 7000215)), (Retirement(OLD, NOW - timedelta(days=8), "v1"),), False),  # before the sign-in log's window
        (((90, 0), (20, 7000215)), (), False),  # the monitor removed nothing
    ],
)
def test_after_retirement(rows, removals, escalated) -> None:
    found = failing(*rows)
    made = after_retirement(found, removals, NOW - timedelta(days=7), ACME, VAULT, CURRENT)
    if not escalated:
        assert made == found
        return
    latest = max((r for r in removals if r.retired_at <= datetime.fromisoformat(found.details["first"])), key=lambda r: r.retired_at)
    assert made.severity.value == "critical" and made.details["retired_key_id"] == latest.key_id
    assert f"the monitor removed client secret keyId {latest.key_id} at {latest.retired_at:%Y-%m-%dT%H:%M:%SZ}" in made.message
    assert "SmartTrace probably still holds the removed secret" in made.message and found.message in made.message
    assert made.fix.startswith(
        f"Paste the current secret into SmartTrace now: copy the value of Key Vault kv-sso ({VAULT}), secret smarttrace-acme, version v2 (keyId {NEW})"
    )
    assert f"az keyvault secret show --id {VAULT}/secrets/smarttrace-acme/v2 --query value -o tsv" in made.fix
    assert "in SmartTrace at https://acme.smarttrace.ai: Integrations, Azure Active Directory, pencil (edit), Client secret" in made.fix
    assert "sso-monitor rotate acme --force" in made.fix


def test_after_retirement_never_escalates_on_a_guess() -> None:
    found = failing((90, 0), (20, 7000215))
    # Key Vault's versions unreadable: as found, with the reason said.
    unread = after_retirement(found, ReadFailure(Problem.ACCESS_DENIED, "403 Forbidden"), NOW - timedelta(days=7), ACME, VAULT, CURRENT)
    assert unread.severity == found.severity and unread.fix == found.fix and "removed client secret" not in unread.message
    assert unread.message.startswith(found.message) and "could not be read" in unread.message and "403 Forbidden" in unread.message
    # The current version unread: the fix names the version by its tag instead.
    blind = after_retirement(found, retired(30), NOW - timedelta(days=7), ACME, VAULT, None)
    assert "the version tagged stage=current" in blind.fix and blind.details["current_version"] is None
    # Any other finding passes through.
    quiet = finding("NO_RECENT_SIGN_INS", "quiet")
    assert after_retirement(quiet, retired(30), NOW - timedelta(days=7), ACME, VAULT, CURRENT) is quiet


# ---------------------------------------------------------------- evidence for the rotation (parts 2 and 3)

KEY = "aaaaaaaa-0000-0000-0000-000000000001"
VERIFIED = at(120)  # the monitor's own last use of KEY: the verify step's end


@pytest.mark.parametrize(
    "key_used, sign_ins, confirms",
    [
        (at(60), ((58, 0),), True),  # used an hour after verify, a success right after it
        (at(60), ((61, 0),), True),  # the success stamped a little before the activity: one redemption (SAME_EVENT)
        (at(60), ((70, 0),), False),  # a success well before the activity is someone else's (the old secret's)
        (at(60), ((58, 7000215),), False),  # only failures followed: a wrong paste
        (at(60), (), False),  # the key used, no sign-in at all (someone tried the value)
        (VERIFIED + timedelta(minutes=9), ((0, 0),), False),  # inside the margin: may be the monitor's own late probe
        (VERIFIED + timedelta(minutes=11), ((0, 0),), True),  # just past it
        (None, ((0, 0),), False),  # no row: nothing to go on
    ],
)
def test_activity_confirms(key_used, sign_ins, confirms) -> None:
    report = CredentialActivity(last_used={KEY: key_used} if key_used else {})
    evidence = activity_confirms(KEY.upper(), VERIFIED, report, log(*sign_ins), APP)
    assert (evidence is not None) is confirms
    if evidence is not None:
        text = evidence.describe()
        assert KEY in text and f"{evidence.key_last_used:%H:%M:%S}" in text and f"{evidence.sign_in_at:%H:%M:%S}" in text


@settings(max_examples=300, deadline=None)
@given(
    own=st.integers(0, 600),
    used=st.integers(0, 600),
    rows=st.lists(st.tuples(st.integers(0, 600), st.sampled_from([0, 0, 7000215, 50126])), max_size=8),
)
def test_activity_confirms_only_past_the_monitors_own_use_and_with_a_success_after_it(own: int, used: int, rows: list) -> None:
    """Minutes after a base time: whatever the records hold, a confirmation needs the key's
    use past the monitor's own + the margin, and a success at or after that use (one minute of
    stamping apart at most), past the monitor's own use + the margin too."""
    base = NOW - timedelta(days=1)
    monitor = base + timedelta(minutes=own)
    key_used = base + timedelta(minutes=used)
    sign_ins = SignInLog(since=base, records=tuple(SignInRecord(APP, base + timedelta(minutes=m), code) for m, code in rows))
    evidence = activity_confirms(KEY, monitor, CredentialActivity(last_used={KEY: key_used}), sign_ins, APP)
    if evidence is None:
        return
    assert key_used > monitor + timedelta(minutes=10)
    assert evidence.sign_in_at >= key_used - timedelta(minutes=1) and evidence.sign_in_at > monitor + timedelta(minutes=10)
    assert any(r.at == evidence.sign_in_at and r.error_code == 0 for r in sign_ins.records)


def test_still_used_after_counts_only_past_the_margin() -> None:
    moment = at(600)
    assert still_used_after(KEY, moment, CredentialActivity(last_used={KEY: moment + timedelta(minutes=5)})) is None
    assert still_used_after(KEY, moment, CredentialActivity(last_used={KEY: at(10)})) == at(10)
    assert still_used_after(KEY, moment, CredentialActivity(last_used={})) is None  # absence is never evidence either way


def test_report_unusable() -> None:
    assert report_unusable(ReadFailure(Problem.ACCESS_DENIED, "no P1/P2 licence"), {}, NOW) == "no P1/P2 licence"
    assert report_unusable(CredentialActivity(last_used={}), {KEY: NOW - timedelta(hours=2)}, NOW) is None  # not yet: latency
    assert "empty" in (report_unusable(CredentialActivity(last_used={}), {KEY: NOW - timedelta(hours=25)}, NOW) or "")
    assert report_unusable(CredentialActivity(last_used={KEY: NOW - timedelta(hours=25)}), {KEY.upper(): NOW - timedelta(hours=25)}, NOW) is None


# ---------------------------------------------------------------- end to end


def run(sandbox: Sandbox, *, enabled: bool = True) -> CheckReport:
    return check_sandbox(sandbox, {"acme": {"signIns": {"enabled": enabled}}})


def grant_audit_log(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id).granted_roles[GRAPH_RESOURCE].append("AuditLog.Read.All")


def codes(report: CheckReport) -> list[str]:
    [result] = [r for r in report.results if r.app.facility == "acme"]
    return [f.code for f in result.findings]


@pytest.fixture
def world_ids() -> tuple:
    return standard_world()


def test_a_wrong_value_pasted_into_smarttrace_is_caught_in_the_next_run(world_ids) -> None:
    world, ids = world_ids
    with Sandbox(world) as sandbox:
        grant_audit_log(sandbox, ids)
        record_user_sign_in(world, "acme")
        assert "SIGN_IN_FAILING" not in codes(run(sandbox))
        world.facility("acme").client_secret = ids.smarttrace_key_id  # the Secret ID pasted instead of the Value
        for _ in range(2):
            world.clock.advance(timedelta(minutes=3))
            record_user_sign_in(world, "acme")
        before = world.count_requests("graph", path_contains="/beta/auditLogs/signIns")
        listings = world.count_requests("vault", path_contains="/versions")
        report = run(sandbox)
        assert world.count_requests("graph", path_contains="/beta/auditLogs/signIns") == before + 1  # one query for the tenant
        [failing] = [f for r in report.results for f in r.findings if f.code == "SIGN_IN_FAILING"]
        assert failing.details["count"] == 2 and failing.details["codes"] == ["7000215"]
        # The monitor removed nothing: Key Vault's versions listed once (for acme, the failing app), nothing escalated.
        assert world.count_requests("vault", path_contains="/versions") == listings + 1 and "cause" not in failing.details
        assert world.facility("acme").client_secret not in str(failing.as_dict())


def test_quiet_is_information_and_leaves_the_app_ok(world_ids) -> None:
    world, ids = world_ids
    with Sandbox(world) as sandbox:
        grant_audit_log(sandbox, ids)
        report = run(sandbox)
        assert codes(report) == ["NO_RECENT_SIGN_INS"]
        assert report.results[0].status == "ok"
        assert world.count_requests("vault", path_contains="/versions") == 0  # no failing sign-ins: Key Vault's retirements are not read


def test_without_the_permission_or_the_licence_the_finding_says_what_is_missing(world_ids) -> None:
    world, ids = world_ids
    with Sandbox(world) as sandbox:
        [missing] = [f for f in run(sandbox).results[0].findings if f.code == "SIGN_INS_UNAVAILABLE"]
        assert "AuditLog.Read.All" in missing.message
        grant_audit_log(sandbox, ids)
        world.tenant(ids.tenant_id).premium = False
        [unlicensed] = [f for f in run(sandbox).results[0].findings if f.code == "SIGN_INS_UNAVAILABLE"]
        assert "P1/P2" in unlicensed.message


def test_not_enabled_reads_nothing(world_ids) -> None:
    world, ids = world_ids
    with Sandbox(world) as sandbox:
        grant_audit_log(sandbox, ids)
        world.facility("acme").client_secret = "wrong"
        record_user_sign_in(world, "acme")
        assert codes(run(sandbox, enabled=False)) == []
        assert world.count_requests("graph", path_contains="/beta/") == 0
