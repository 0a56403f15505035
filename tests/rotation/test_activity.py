"""Issue 15 parts 2 and 3 against the sandbox: a manual handoff confirmed by Entra's records
(the per-credential activity report and the sign-in log), the monitor's own token requests
never counted as SmartTrace's, the fallback to a person when the records cannot be read, and
an old secret kept while SmartTrace still signs in with it (docs/evidence.md).

The sandbox's records: a user's sign-in through SmartTrace moves the activity of the keyId
SmartTrace holds and logs a non-interactive row without a key id; the monitor's own token
requests (verify) move the activity of the keyId they send (sso_sandbox.signin_records)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sso_monitor.checks.run import run_checks
from sso_monitor.config import parse_config
from sso_monitor.models import SecretValue
from sso_monitor.rotation.protocol import ConfirmationRefused, MemoryNotifier, RotationResult, adopt
from sso_monitor.rotation.state import AWAITING, CURRENT, PREVIOUS, RETIRED
from sso_monitor.wiring import build_adapters, build_rotation_deps
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.signin_records import record_user_sign_in, records
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import GRAPH_RESOURCE
from tests.rotation.harness import Harness

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


def harness_for(sandbox: Sandbox, ids: StandardIds, tmp_path: Any, confirmation: str, *, sign_ins: bool = False, audit: bool = True) -> Harness:
    overrides = {"acme": {"handoff": {"confirmation": confirmation}, "signIns": {"enabled": sign_ins}}}
    document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides=overrides)
    if audit:
        sandbox.world.tenant(ids.tenant_id).sp_by_app_id(ids.monitor_app_id).granted_roles[GRAPH_RESOURCE].append("AuditLog.Read.All")
    return Harness(sandbox, parse_config(document, environ), tmp_path / "locks")


def run(h: Harness, *, force: bool = False, dry_run: bool = False, notifier: MemoryNotifier | None = None) -> RotationResult:
    records(h.world).budget.clear()  # the reporting limit runs on the real clock: test runs come faster than a timer's
    return h.rotate(force=force, dry_run=dry_run, notifier=notifier)


def confirm(h: Harness, key_id: str) -> RotationResult:
    records(h.world).budget.clear()
    return h.confirm(key_id)


def codes(result: RotationResult) -> list[str]:
    return [f.code for f in result.findings]


def activity_of(h: Harness, key_id: str) -> list:
    return list(records(h.world).activity.get((h.app.tenant_id.lower(), h.app.app_id.lower(), key_id.lower()), []))


def adopt_old(h: Harness) -> None:
    """The facility's hand-made secret taken under management, so that the monitor may remove it."""

    async def go() -> None:
        deps = h.deps()
        try:
            await adopt(h.app, deps, SecretValue(h.world.facility("acme").client_secret))
        finally:
            await deps.aclose()

    asyncio.run(go())


# ---------------------------------------------------------------- part 2: confirmation by activity


@pytest.mark.parametrize("lag", [False, True], ids=["no-lag", "replication-lag"])
def test_a_facility_that_switches_to_the_new_secret_is_confirmed_by_activity(sandbox: Sandbox, ids: StandardIds, tmp_path: Any, lag: bool) -> None:
    h = harness_for(sandbox, ids, tmp_path, "activity")
    world = h.world
    if lag:
        from tests.rotation.test_fault_sweep import realistic

        realistic(world)
    old = world.facility("acme").key_id
    first = run(h, force=True)
    assert first.stage == AWAITING and first.error is None
    new = first.key_id
    assert activity_of(h, new)  # verify's own token requests are in the report ...
    world.clock.advance(minutes=15)
    assert run(h).stage == AWAITING  # ... and never count as SmartTrace's use
    h.admin_pastes(new)
    assert record_user_sign_in(world, "acme") == 0
    world.clock.advance(minutes=1)
    assert run(h, dry_run=True).stage == AWAITING  # a dry run says it would confirm, and does not
    notifier = MemoryNotifier()
    done = run(h, notifier=notifier)
    assert done.stage == CURRENT and done.error is None
    assert any(line.startswith("confirm: Entra's records show SmartTrace using keyId") for line in done.actions)
    [completed] = [e for e in notifier.events if e.kind == "completed"]
    assert "credential-activity report" in completed.message and new in completed.message and "successful sign-in" in completed.message
    assert h.version_for(new).tags["confirmedBy"].startswith("activity: keyId used")
    assert h.version_for(old).tags["stage"] == PREVIOUS
    assert world.sign_in_works("acme")
    secret = h.version_for(new).value
    assert all(secret not in e.message for e in notifier.events) and secret not in str(done.as_dict())


def test_the_monitors_own_probes_never_count_as_smarttraces_use(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    h = harness_for(sandbox, ids, tmp_path, "activity", sign_ins=True)
    world = h.world
    first = run(h, force=True)
    new = first.key_id
    verified = activity_of(h, new)
    assert verified
    # A token request with the new secret (a late probe, a run that began before verify ended)
    # inside the margin, then a successful sign-in through SmartTrace (with the old secret).
    world.clock.advance(minutes=5)
    assert world.secret_works(h.app.tenant_id, h.app.app_id, h.version_for(new).value) is None
    from sso_sandbox.signin_records import record_client_credentials

    record_client_credentials(world, h.app.tenant_id, h.app.app_id, h.version_for(new).value, None)
    world.clock.advance(minutes=1)
    assert record_user_sign_in(world, "acme") == 0
    world.clock.advance(minutes=30)
    result = run(h)
    assert result.stage == AWAITING and codes(result) == []
    assert any("is the monitor's own" in line for line in result.actions)
    # The check run while the handoff waits probes the current secret only: the new keyId's activity does not move.
    before = activity_of(h, new)

    async def check() -> None:
        adapters = build_adapters(h.config)
        try:
            await run_checks(h.config, adapters, world.now())
        finally:
            await adapters.aclose()

    asyncio.run(check())
    assert activity_of(h, new) == before
    assert run(h).stage == AWAITING


def test_the_new_key_used_without_a_successful_sign_in_is_not_confirmed(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    """Someone tries the new value (curl, another tool): its activity moves, but no sign-in through SmartTrace followed."""
    from sso_sandbox.signin_records import record_client_credentials

    h = harness_for(sandbox, ids, tmp_path, "activity-or-manual")
    world = h.world
    new = run(h, force=True).key_id
    world.clock.advance(minutes=20)
    record_client_credentials(world, h.app.tenant_id, h.app.app_id, h.version_for(new).value, None)
    world.clock.advance(minutes=1)
    result = run(h)
    assert result.stage == AWAITING
    assert any("no successful sign-in through SmartTrace followed it" in line for line in result.actions)


@pytest.mark.parametrize("how", ["unavailable", "no-permission", "no-licence", "empty"])
def test_an_unusable_report_falls_back_to_a_person_with_a_finding(sandbox: Sandbox, ids: StandardIds, tmp_path: Any, how: str) -> None:
    h = harness_for(sandbox, ids, tmp_path, "activity", audit=how != "no-permission")
    world = h.world
    tenant = world.tenant(ids.tenant_id)
    if how in ("unavailable", "empty"):
        tenant.activity_report = how
    if how == "no-licence":
        tenant.premium = False
    notifier = MemoryNotifier()
    first = run(h, force=True, notifier=notifier)
    new = first.key_id
    if how == "empty":
        # Empty is told from "not yet" only once the monitor's own use is older than the report's latency.
        assert codes(first) == [] and first.stage == AWAITING
        world.clock.advance(hours=25)
        notifier = MemoryNotifier()
        first = run(h, notifier=notifier)
    assert first.stage == AWAITING and codes(first) == ["ACTIVITY_REPORT_UNAVAILABLE"]
    said = first.findings[0].message
    expected = {"unavailable": "P1/P2", "no-permission": "AuditLog.Read.All", "no-licence": "P1/P2", "empty": "empty"}[how]
    assert expected in said
    fallback = [e for e in notifier.events if e.kind == "awaiting-confirmation" and "cannot be confirmed from Entra's records" in e.message]
    assert len(fallback) == 1 and fallback[0].handoff is not None
    # Said once: the next run finds the same and does not tell the administrator again.
    again = MemoryNotifier()
    assert codes(run(h, notifier=again)) == ["ACTIVITY_REPORT_UNAVAILABLE"]
    assert not [e for e in again.events if e.kind == "awaiting-confirmation"]
    # A person's confirmation is taken, in activity mode too, while the records cannot be read.
    h.admin_pastes(new)
    assert confirm(h, new).stage == CURRENT
    assert world.sign_in_works("acme")


def test_in_activity_mode_a_persons_confirmation_waits_for_the_records_while_they_work(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    h = harness_for(sandbox, ids, tmp_path, "activity")
    world = h.world
    new = run(h, force=True).key_id
    world.clock.advance(minutes=15)
    with pytest.raises(ConfirmationRefused, match="do not show SmartTrace using keyId"):
        confirm(h, new)
    assert h.version_for(new).tags["stage"] == AWAITING
    h.admin_pastes(new)
    record_user_sign_in(world, "acme")
    assert confirm(h, new).stage == CURRENT  # the records show it now: confirmed by them
    assert h.version_for(new).tags["confirmedBy"].startswith("activity")


FAULTS = {"error": {"fault": "status", "status": 500}, "refused": {"fault": "status", "status": 403}, "dropped": {"fault": "drop", "when": "before"}}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failing_report_read_never_confirms(sandbox: Sandbox, ids: StandardIds, tmp_path: Any, fault: str) -> None:
    h = harness_for(sandbox, ids, tmp_path, "activity")
    world = h.world
    new = run(h, force=True).key_id
    world.clock.advance(minutes=15)
    h.admin_pastes(new)
    record_user_sign_in(world, "acme")
    world.clock.advance(minutes=1)
    for path in ("*/appCredentialSignInActivities*", "*/auditLogs/signIns*"):
        sandbox.faults.add(service="graph", method="GET", path=path, times=20, **FAULTS[fault])
        result = run(h)
        assert result.stage == AWAITING and codes(result) == ["ACTIVITY_REPORT_UNAVAILABLE"]
        sandbox.faults.clear()
    assert run(h).stage == CURRENT  # healthy again: confirmed


def test_without_the_reader_behaviour_is_as_before(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    h = harness_for(sandbox, ids, tmp_path, "manual")
    assert build_rotation_deps(h.config).signins is None
    new = run(h, force=True).key_id
    assert run(h).stage == AWAITING
    assert h.world.count_requests("graph", path_contains="/beta/") == 0
    h.admin_pastes(new)
    assert confirm(h, new).stage == CURRENT


# ---------------------------------------------------------------- part 3: the old secret kept while it is used


def stages(h: Harness, key_id: str) -> set[str]:
    return {v.tags.get("stage", "") for v in h.vault_versions() if v.tags.get("keyId", "").lower() == key_id.lower()}


def still_in_use(result: RotationResult) -> list:
    return [f for f in result.findings if f.code == "OLD_SECRET_STILL_IN_USE"]


@pytest.mark.parametrize("confirmation, sign_ins", [("activity-or-manual", False), ("manual", True)])
def test_a_mistaken_manual_confirmation_is_caught_before_retirement(
    sandbox: Sandbox, ids: StandardIds, tmp_path: Any, confirmation: str, sign_ins: bool
) -> None:
    h = harness_for(sandbox, ids, tmp_path, confirmation, sign_ins=sign_ins)
    world = h.world
    adopt_old(h)  # the monitor may remove the old secret: only the report stops it
    old = world.facility("acme").key_id
    new = run(h, force=True).key_id
    assert confirm(h, new).stage == CURRENT  # nobody pasted it: a mistaken confirmation
    assert PREVIOUS in stages(h, old)
    world.clock.advance(minutes=20)
    assert record_user_sign_in(world, "acme") == 0  # SmartTrace still sends the old secret
    world.clock.advance(minutes=1)
    notifier = MemoryNotifier()
    seen = run(h, notifier=notifier)
    [found] = still_in_use(seen)
    assert found.severity.value == "warning" and found.details["key_id"] == old  # two months before the old secret expires
    [alert] = [e for e in notifier.events if e.message.startswith("OLD_SECRET_STILL_IN_USE")]
    assert "SmartTrace still signs in with the old secret: paste the new one" in alert.message and h.version_for(new).version in alert.message
    assert (alert.kind, alert.severity, alert.code) == ("still-in-use", "warning", "OLD_SECRET_STILL_IN_USE")
    assert h.version_for(new).value not in alert.message
    quiet = MemoryNotifier()
    assert still_in_use(run(h, notifier=quiet)) and not quiet.events  # said once per severity
    # Past the grace period and still used: kept, sign-in works.
    for _ in range(8):
        world.clock.advance(days=1)
        record_user_sign_in(world, "acme")
    kept = run(h)
    assert any(line.startswith("retire: keep previous credential") for line in kept.actions)
    assert old in {c.key_id for c in h.credentials()} and PREVIOUS in stages(h, old)
    assert world.sign_in_works("acme")
    # A failed read of the report lets nothing go that an earlier run saw in use.
    world.clock.advance(days=1)
    sandbox.faults.add("status", service="graph", method="GET", path="*/appCredentialSignInActivities*", status=500, times=20)
    failed = run(h)
    sandbox.faults.clear()
    assert [f.code for f in failed.findings] == ["ACTIVITY_REPORT_UNAVAILABLE"] and old in {c.key_id for c in h.credentials()}
    # The administrator pastes the new one: a grace period after the old one's last use it is retired.
    h.admin_pastes(new)
    record_user_sign_in(world, "acme")
    world.clock.advance(days=8)
    notifier = MemoryNotifier()
    done = run(h, notifier=notifier)
    assert not still_in_use(done)
    [retired] = [e for e in notifier.events if e.kind == "retired"]
    assert "SIGN_IN_FAILING" in retired.message and "sso-monitor rotate acme --force" in retired.message  # the way back, said with the removal
    assert old not in {c.key_id for c in h.credentials()} and RETIRED in stages(h, old)
    assert world.sign_in_works("acme")


def test_the_old_secret_still_in_use_is_alerted_at_the_findings_severity_once_per_severity(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    """OLD_SECRET_STILL_IN_USE after a mistaken confirmation is an event of its own kind whose
    alert has the finding's severity (warning; error at 14 days to the old secret's expiry;
    critical at 7), not the reminder's critical: delivered through the alerting service in
    digest mode, each at once (someone must paste), one per severity, never repeated."""
    from dataclasses import replace

    from sso_monitor.adapters.storage.alert_store import MemoryAlertStore
    from sso_monitor.alerts.service import DIGEST, Alerting
    from tests.alerts.test_alerting import FakeChannel

    h = harness_for(sandbox, ids, tmp_path, "manual", sign_ins=True)
    world = h.world
    adopt_old(h)
    old = world.facility("acme").key_id
    old_end = next(c.end for c in h.credentials() if c.key_id == old)
    new = run(h, force=True).key_id
    assert confirm(h, new).stage == CURRENT  # nobody pasted it
    config = replace(h.config, alerts=replace(h.config.alerts, channels=("teams",), digest=True, digest_hour_utc=23))
    channel = FakeChannel("teams")
    alerting = Alerting(config, MemoryAlertStore(), {"teams": channel})
    severities: list[tuple[int, str]] = []  # (days left, severity) of each finding seen
    while (old_end - world.now()).days > 2:
        world.clock.advance(days=2)
        assert record_user_sign_in(world, "acme") == 0  # SmartTrace still sends the old secret
        world.clock.advance(minutes=11)
        notifier = MemoryNotifier()
        result = run(h, notifier=notifier)
        [found] = still_in_use(result)
        severities.append(((old_end - world.now()).days, found.severity.value))
        for event in notifier.events:
            assert event.kind != "reminder"
            if event.code == "OLD_SECRET_STILL_IN_USE":
                assert (event.kind, event.severity) == ("still-in-use", found.severity.value)
        assert asyncio.run(alerting.rotation_events(notifier.events, world.now())).ok
    said = [(a.kind, a.severity, a.code) for n in channel.delivered if not n.digest for a in n.alerts]
    assert said == [("rotation:still-in-use", s, "OLD_SECRET_STILL_IN_USE") for s in ("warning", "error", "critical")]
    assert all(n.alerts[0].title == f"acme: SmartTrace still signs in with the old client secret (keyId {old})" for n in channel.delivered)
    assert asyncio.run(alerting.store.list(DIGEST)) == []  # none waited for the digest
    # The finding's own thresholds: warning above 14 days, error at 14 and below, critical at 7 and below.
    assert all(s == ("warning" if d > 14 else "error" if d > 7 else "critical") for d, s in severities)
    # The end state: kept while used, SSO never broke, nothing handed over.
    assert old in {c.key_id for c in h.credentials()} and PREVIOUS in stages(h, old)
    assert world.facility("acme").key_id == old and world.sign_in_works("acme")
    assert h.version_for(old).tags["activity"] == "still-used:critical"


def test_a_facility_that_never_switches_is_never_confirmed_and_warned_before_the_old_secret_expires(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    h = harness_for(sandbox, ids, tmp_path, "activity")
    world = h.world
    old = world.facility("acme").key_id
    old_end = next(c.end for c in h.credentials() if c.key_id == old)
    new = run(h, force=True).key_id
    warned: list[tuple[int, str]] = []  # (days left, severity) of each OLD_SECRET_STILL_IN_USE alert
    while (old_end - world.now()).days > 4:
        world.clock.advance(days=5)
        record_user_sign_in(world, "acme")  # every day SmartTrace signs in with the old secret
        notifier = MemoryNotifier()
        result = run(h, notifier=notifier)
        assert result.stage == AWAITING and h.version_for(new).tags["stage"] == AWAITING  # never confirmed
        found = still_in_use(result)
        assert found and found[0].details["key_id"] == old
        warned += [((old_end - world.now()).days, found[0].severity.value) for e in notifier.events if e.message.startswith("OLD_SECRET_STILL_IN_USE")]
    assert warned and warned[0][0] >= 14  # the first alert comes weeks before the old secret expires
    assert [s for _, s in warned][-1] == "critical" and "warning" in {s for _, s in warned}  # and rises as expiry nears
    assert world.facility("acme").key_id == old and world.sign_in_works("acme")
    assert {old, new} <= {c.key_id for c in h.credentials()}


def test_without_the_report_retirement_follows_the_grace_period(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    h = harness_for(sandbox, ids, tmp_path, "activity-or-manual")
    world = h.world
    world.tenant(ids.tenant_id).activity_report = "unavailable"
    adopt_old(h)
    old = world.facility("acme").key_id
    new = run(h, force=True).key_id
    h.admin_pastes(new)
    assert confirm(h, new).stage == CURRENT
    world.clock.advance(days=8)
    done = run(h)
    assert "ACTIVITY_REPORT_UNAVAILABLE" in [f.code for f in done.findings]
    assert old not in {c.key_id for c in h.credentials()} and world.sign_in_works("acme")
    # The next rotation retires this one: a version that went through every stage, with the
    # activity tag, stays within Key Vault's 15 tags a version.
    newer = run(h, force=True).key_id
    h.admin_pastes(newer)
    assert confirm(h, newer).stage == CURRENT
    world.clock.advance(days=8)
    again = run(h)
    assert again.error is None and RETIRED in stages(h, new)
    assert len(h.version_for(new).tags) <= 15 and h.version_for(new).tags["activity"] == "unavailable"


# ---------------------------------------------------------------- under the fault plan


def _switched_world() -> tuple[Any, StandardIds]:
    from sso_sandbox.testing import standard_world

    return standard_world()


def _to_confirming_run(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> tuple[Harness, str, str]:
    """A rotation awaiting confirmation in activity mode, the new secret pasted and used: the next run confirms."""
    h = harness_for(sandbox, ids, tmp_path, "activity", sign_ins=True)
    world = h.world
    old = world.facility("acme").key_id
    new = run(h, force=True).key_id
    world.clock.advance(minutes=15)
    h.admin_pastes(new)
    record_user_sign_in(world, "acme")
    world.clock.advance(minutes=1)
    return h, old, new


def _shape(path: str) -> str:
    """A request path as a fault rule's pattern: ids (GUIDs, Key Vault version ids) differ between worlds."""
    import re

    ids = re.sub(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}", "\x01", path.split("?", 1)[0])
    return "re:^" + re.escape(ids).replace("\x01", r"[^/?']+") + r"(\?|$)"


def _confirming_calls() -> list[tuple[str, str, str, int]]:
    """Every call of the confirming run, recorded once, uninterrupted: (service, method, path shape, k), the k-th call of that shape."""
    import tempfile
    from collections import Counter
    from pathlib import Path

    world, ids = _switched_world()
    with Sandbox(world) as sandbox, tempfile.TemporaryDirectory() as tmp:
        h, _, _ = _to_confirming_run(sandbox, ids, Path(tmp))
        start = len(world.requests)
        assert run(h).stage == CURRENT
        seen: Counter = Counter()
        calls = []
        for r in list(world.requests)[start:]:
            if r.inner:
                continue
            shape = (r.service, r.method, _shape(r.path))
            seen[shape] += 1
            calls.append((*shape, seen[shape]))
    return calls


CONFIRMING_CALLS = _confirming_calls()


def _call_id(call: tuple[str, str, str, int]) -> str:
    service, method, shape, k = call
    words = [w for w in shape.removeprefix("re:^").split("/") if w and "[" not in w and "\\?" not in w]
    return f"{service}-{method}-{(words[-1] if words else '').replace(chr(92), '')}-{k}"


@pytest.mark.parametrize("kind", ["error", "lost"])
@pytest.mark.parametrize("call", CONFIRMING_CALLS, ids=[_call_id(c) for c in CONFIRMING_CALLS])
def test_a_fault_at_any_call_of_the_confirming_run_never_confirms_wrongly_and_converges(tmp_path: Any, call: tuple[str, str, str, int], kind: str) -> None:
    world, ids = _switched_world()
    with Sandbox(world) as sandbox:
        h, old, new = _to_confirming_run(sandbox, ids, tmp_path)
        service, method, pattern, k = call
        if kind == "error":  # this call and the next of its shape (the SDK's retries): the call fails as the protocol sees it
            sandbox.faults.add("status", service=service, method=method, path=pattern, status=500, nth=k, times=6)
        else:  # the service did the work, the answer is lost
            sandbox.faults.add("drop", service=service, method=method, path=pattern, when="after", nth=k)
        results = [run(h)]
        assert sandbox.faults.log, "the fault fired"
        if "beta" in pattern and kind == "error":
            assert results[0].stage == AWAITING and "ACTIVITY_REPORT_UNAVAILABLE" in [f.code for f in results[0].findings]  # a failed read never confirms
        sandbox.faults.clear()
        for _ in range(3):
            version = h.version_for(new)
            if version.tags["stage"] in (CURRENT, "handed-off"):
                assert version.tags["confirmedBy"].startswith("activity: keyId used")  # only ever confirmed by the evidence
            assert world.sign_in_works("acme") and old in {c.key_id for c in h.credentials()}
            if version.tags["stage"] == CURRENT:
                break
            world.clock.advance(minutes=15)
            results.append(run(h))
        assert h.version_for(new).tags["stage"] == CURRENT and PREVIOUS in stages(h, old)
        secret = h.version_for(new).value
        assert all(secret not in str(r.as_dict()) and secret not in str([f.as_dict() for f in r.findings]) for r in results)


# ---------------------------------------------------------------- SIGN_IN_FAILING after the monitor removed a secret


def check(h: Harness) -> Any:
    """A check run as the service runs it (its fixes naming the facility), on the harness's world."""
    from sso_monitor.service import MonitorService

    records(h.world).budget.clear()
    report = asyncio.run(MonitorService(h.config).check(now=h.world.now()))
    [result] = report.results
    return result


def test_sign_in_failing_after_the_monitor_removed_the_old_secret_is_critical_with_the_exact_fix(sandbox: Sandbox, ids: StandardIds, tmp_path: Any) -> None:
    """The outage this product exists to prevent: a confirmation by mistake (nobody pasted),
    no activity report to catch it, retirement after the grace period removes the secret
    SmartTrace still holds. The next check's SIGN_IN_FAILING says so: which keyId was removed
    when (Key Vault's retired version), and the exact paste that mends it."""
    h = harness_for(sandbox, ids, tmp_path, "manual", sign_ins=True)
    world = h.world
    world.tenant(ids.tenant_id).activity_report = "unavailable"  # the rotation cannot see the old secret still used
    adopt_old(h)
    old = world.facility("acme").key_id
    old_value = world.facility("acme").client_secret
    new = run(h, force=True).key_id
    assert confirm(h, new).stage == CURRENT  # nobody pasted it
    world.clock.advance(days=8)
    assert record_user_sign_in(world, "acme") == 0  # the old secret still works ...
    world.clock.advance(minutes=5)
    retired = run(h)
    assert old not in {c.key_id for c in h.credentials()} and RETIRED in stages(h, old)  # ... until retire removes it
    retired_at = h.version_for(old).tags["retiredAt"]
    world.clock.advance(minutes=20)
    assert record_user_sign_in(world, "acme") != 0 and record_user_sign_in(world, "acme") != 0
    world.clock.advance(minutes=5)
    result = check(h)
    [failing] = [f for f in result.findings if f.code == "SIGN_IN_FAILING"]
    assert failing.severity.value == "critical" and result.status == "critical"
    current = h.version_for(new)
    assert f"the monitor removed client secret keyId {old} at {retired_at}" in failing.message
    assert "SmartTrace probably still holds the removed secret" in failing.message
    assert (failing.details["cause"], failing.details["retired_key_id"], failing.details["retired_at"]) == ("removed-by-monitor", old, retired_at)
    vault = h.config.vault_url.rstrip("/")
    for named in (
        f"Key Vault {vault}, secret smarttrace-acme",
        f"{vault}/secrets/smarttrace-acme/{current.version}",
        f"version {current.version}",
        f"keyId {new}",
        h.app.facility_url,
        "Integrations",
    ):
        assert named in failing.fix, named
    assert all(value not in str(failing.as_dict()) for value in (old_value, current.value))  # ids and dates, never a value
    assert not [e for e in retired.findings if e.code == "OLD_SECRET_STILL_IN_USE"]
    # Key Vault's record of removals unreadable: SIGN_IN_FAILING as before, not escalated on a guess, and it says so.
    sandbox.faults.add("status", service="vault", method="GET", path="*/versions*", status=403, times=200)
    blind = check(h)
    sandbox.faults.clear()
    [plain] = [f for f in blind.findings if f.code == "SIGN_IN_FAILING"]
    assert "cause" not in plain.details and "removed client secret" not in plain.message
    assert "could not be read" in plain.message and plain.details["retirements"] == "unreadable"
    # The fix as written mends it: the administrator pastes the version it names; sign-in works, the finding goes.
    h.admin_pastes(new)
    assert record_user_sign_in(world, "acme") == 0
    world.clock.advance(minutes=5)
    assert "SIGN_IN_FAILING" not in [f.code for f in check(h).findings]
