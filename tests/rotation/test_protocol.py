"""The rotation protocol end to end against the sandbox: manual and http
handoff, propagation, the policy cap, retire after grace, sweep, adopt, dry run,
one rotation at a time. Assertions are on the world's end state."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta

import pytest

from sso_monitor.alerts.render import handoff_steps
from sso_monitor.models import SecretValue
from sso_monitor.rotation.protocol import MemoryNotifier, Rotator, adopt, rotation_status
from tests.rotation.harness import Harness, config_for

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")
GRAPH = "https://graph.microsoft.com"


def test_manual_handoff_waits_for_confirmation_then_finishes(harness: Harness):
    world = harness.world
    old_key = world.facility("acme").key_id
    notifier = MemoryNotifier()
    result = harness.rotate(force=True, notifier=notifier)
    assert result.error is None and result.stage == "awaiting-confirmation"
    new_key = result.key_id
    # Entra holds the new credential, Key Vault holds it, SmartTrace still holds the old one.
    assert {c.key_id for c in harness.credentials()} == {old_key, new_key}
    assert harness.version_for(new_key).tags["stage"] == "awaiting-confirmation"
    assert world.facility("acme").key_id == old_key and world.sign_in_works("acme")
    (asking,) = [e for e in notifier.events if e.kind == "awaiting-confirmation"]
    text = " ".join(handoff_steps(asking.handoff))
    assert "smarttrace-acme" in text and harness.version_for(new_key).version in text
    assert "Integrations, Azure Active Directory, pencil (edit), Client secret" in text
    assert f"sso-monitor confirm acme --key-id {new_key}" in text
    # A later run changes nothing while waiting.
    assert harness.rotate().stage == "awaiting-confirmation"
    harness.admin_pastes(new_key)
    done = harness.confirm(new_key)
    assert done.stage == "current"
    assert harness.version_for(new_key).tags["stage"] == "current"
    assert harness.version_for(old_key).tags["stage"] == "previous"
    assert world.sign_in_works("acme")


def test_http_handoff_pushes_and_finishes_in_one_run(http_harness: Harness):
    world = http_harness.world
    result = http_harness.rotate(force=True)
    assert result.error is None and result.stage == "current"
    assert world.facility("acme").key_id == result.key_id
    assert world.sign_in_works("acme")
    assert http_harness.version_for(result.key_id).tags["stage"] == "current"


def test_not_due_changes_nothing(harness: Harness):
    before = len(harness.credentials())
    result = harness.rotate()  # 65 days left, rotation starts at 30
    assert result.stage == "current" and "not due" in result.actions[-1]
    assert len(harness.credentials()) == before


def test_due_rotates_without_force(http_harness: Harness):
    http_harness.world.clock.advance(days=40)  # 25 days left
    assert http_harness.rotate().stage == "current"


def test_propagation_delay_keeps_it_pending_until_verified(http_harness: Harness):
    world = http_harness.world
    world.tenant(http_harness.app.tenant_id).propagation_delay = timedelta(minutes=10)
    first = http_harness.rotate(force=True)  # the verify deadline (2 min) passes first
    assert first.stage == "pending" and "waiting for propagation" in first.actions[-1]
    assert world.facility("acme").key_id != first.key_id  # never handed on unverified
    world.clock.advance(minutes=10)
    second = http_harness.rotate()
    assert second.stage == "current" and second.key_id == first.key_id
    assert world.facility("acme").key_id == first.key_id


def test_lifetime_is_capped_by_the_tenant_policy(sandbox, tmp_path):
    monitor = sandbox.world.tenant(next(iter(sandbox.world.tenants))).sp_by_app_id(next(iter(sandbox.world.monitors.values())))
    monitor.granted_roles[GRAPH].append("Policy.Read.All")
    harness = Harness(sandbox, config_for(sandbox, handoff="http", lifetimeDays=700), tmp_path)
    result = harness.rotate(force=True)
    assert result.error is None
    new = next(c for c in harness.credentials() if c.key_id == result.key_id)
    assert new.end - new.start <= timedelta(days=365)


def test_without_policy_read_a_refused_lifetime_is_retried_once_at_the_fallback(sandbox, tmp_path):
    # The tenant caps at 365 days; the monitor cannot read that, asks for 700, is refused,
    # and retries once at 90 days (the fallback) rather than failing the rotation.
    harness = Harness(sandbox, config_for(sandbox, handoff="http", lifetimeDays=700), tmp_path)
    result = harness.rotate(force=True)
    assert result.error is None and result.stage == "current"
    new = next(c for c in harness.credentials() if c.key_id == result.key_id)
    assert timedelta(days=89) <= new.end - new.start <= timedelta(days=90)
    assert any("tenant's default app management policy refused" in line for line in result.actions)


def test_an_apps_own_short_policy_fails_clearly_naming_it(sandbox, tmp_path):
    world = sandbox.world
    harness = Harness(sandbox, config_for(sandbox, handoff="http", lifetimeDays=700), tmp_path)
    app = world.find_app(harness.app.app_id)
    app.password_max_lifetime, app.policy_id = timedelta(days=30), "9c1f2a55-0000-4000-8000-00000000aaaa"
    before = {c.key_id for c in harness.credentials()}
    result = harness.rotate(force=True)
    error = result.error or ""
    assert "the app management policy 9c1f2a55-0000-4000-8000-00000000aaaa assigned to this app" in error
    assert "tenant's default app management policy refuse" not in error  # the app's own policy refused: never blame the tenant's
    assert "Policy.Read.ApplicationConfiguration" in error  # the monitor could not read it: say how it could
    assert {c.key_id for c in harness.credentials()} == before  # nothing created
    # With the permission, the monitor reads the app's cap and stays inside it, and says no permission is missing.
    world.tenant(harness.app.tenant_id).sp_by_app_id(world.monitors[harness.app.tenant_id]).granted_roles[GRAPH].append("Policy.Read.All")
    world.clock.advance(minutes=15)
    done = harness.rotate(force=True)
    assert done.error is None
    created = next(c for c in harness.credentials() if c.key_id == done.key_id)
    assert created.end - created.start <= timedelta(days=30)


def test_retire_after_grace_removes_only_our_own(http_harness: Harness):
    world = http_harness.world
    hand_made = world.facility("acme").key_id
    first = http_harness.rotate(force=True)
    second = http_harness.rotate(force=True)
    assert second.stage == "current"
    world.clock.advance(days=8)  # grace is 7 days
    http_harness.rotate()
    keys = {c.key_id for c in http_harness.credentials()}
    assert first.key_id not in keys  # ours, previous, grace over: removed
    assert hand_made in keys  # never created or adopted by the monitor: left in place
    assert http_harness.version_for(first.key_id).tags["stage"] == "retired"
    assert http_harness.version_for(hand_made).tags["stage"] == "superseded"
    assert world.sign_in_works("acme")


def test_sweep_removes_our_orphans_after_the_window_only(harness: Harness):
    world = harness.world
    app = world.find_app(harness.app.app_id)
    ours = harness.app.deployment_id
    young = world.add_password(app, display_name=f"sso-monitor {ours} 20261129T000000Z-0000000a")
    old = world.add_password(
        app, display_name=f"sso-monitor {ours} 20261128T000000Z-0000000b", start=world.now() - timedelta(hours=2), created=world.now() - timedelta(hours=2)
    )
    mine = world.add_password(app, display_name="made by an admin", start=world.now() - timedelta(days=3))
    # Named like ours by a person, by an older release, by another deployment: never swept.
    lookalikes = [
        world.add_password(app, display_name=name, start=world.now() - timedelta(days=3), created=world.now() - timedelta(days=3))
        for name in ("sso-monitor (prod)", "sso-monitor 20261128T000000Z-0000000c", "sso-monitor 9f9f9f9f 20261128T000000Z-0000000d")
    ]
    harness.rotate()
    keys = {c.key_id for c in harness.credentials()}
    assert old.key_id not in keys and young.key_id in keys and mine.key_id in keys
    assert all(c.key_id in keys for c in lookalikes)


def test_no_sweep_while_a_hand_stored_version_could_hold_an_orphan(harness: Harness):
    """SmartTrace holds a secret an earlier run made; someone copied its value into the
    vault by hand (no keyId tag). Its hint protects it; an unreadable one stops the sweep."""
    world = harness.world
    app = world.find_app(harness.app.app_id)
    ours = harness.app.deployment_id
    held = world.add_password(
        app, display_name=f"sso-monitor {ours} 20261101T000000Z-0000000e", start=world.now() - timedelta(days=20), created=world.now() - timedelta(days=20)
    )
    vault = next(iter(world.vaults.values()))
    world.set_secret(vault, harness.app.vault_secret_name, held.secret_text)  # az keyvault secret set: no tags
    harness.rotate()
    assert held.key_id in {c.key_id for c in harness.credentials()}


def test_dry_run_changes_nothing_anywhere(harness: Harness):
    world = harness.world
    snapshot = copy.deepcopy((world.tenants, world.vaults, world.facilities))
    writes_before = sum(1 for r in world.requests if r.method in ("POST", "PUT", "PATCH", "DELETE") and r.service in ("graph", "vault", "smarttrace"))
    result = harness.rotate(force=True, dry_run=True)
    assert result.error is None
    assert any(line.startswith("create: would add a client secret") for line in result.actions)
    assert copy.deepcopy((world.tenants, world.vaults, world.facilities)) == snapshot
    writes_after = sum(1 for r in world.requests if r.method in ("POST", "PUT", "PATCH", "DELETE") and r.service in ("graph", "vault", "smarttrace"))
    assert writes_after == writes_before


def test_concurrent_rotations_create_exactly_one_credential(http_harness: Harness):
    before = len(http_harness.credentials())

    async def many():
        deps = [http_harness.deps() for _ in range(6)]
        try:
            return await asyncio.gather(*(Rotator(http_harness.app, d, http_harness.settings, force=True).run() for d in deps))
        finally:
            for d in deps:
                await d.aclose()

    results = asyncio.run(many())
    assert len(http_harness.credentials()) == before + 1
    assert sum(1 for r in results if r.error is None) == 1
    assert all("lease" in (r.error or "lease") for r in results)


def test_adopt_takes_a_hand_made_secret_under_management(harness: Harness):
    world = harness.world
    facility = world.facility("acme")
    value = SecretValue(facility.client_secret)

    async def go():
        deps = harness.deps()
        try:
            return await adopt(harness.app, deps, value)
        finally:
            await deps.aclose()

    result = asyncio.run(go())
    assert result.stage == "current" and result.key_id == facility.key_id
    latest = harness.vault_versions()[-1]
    assert latest.tags["managed"] == "true" and latest.tags["stage"] == "current"


def test_status_reports_the_stage(harness: Harness):
    harness.rotate(force=True)

    async def go():
        deps = harness.deps()
        try:
            return await rotation_status(harness.app, deps)
        finally:
            await deps.aclose()

    status = asyncio.run(go())
    assert status.stage == "awaiting-confirmation" and status.in_flight_key_id


def test_notify_only_mode_alerts_and_changes_nothing(sandbox, tmp_path):
    harness = Harness(sandbox, config_for(sandbox, mode="notify-only"), tmp_path)
    before = {c.key_id for c in harness.credentials()}
    notifier = MemoryNotifier()
    result = harness.rotate(force=True, notifier=notifier)
    assert result.stage == "due" and result.error is None
    assert [e.kind for e in notifier.events] == ["due"]
    assert {c.key_id for c in harness.credentials()} == before


def test_waiting_for_confirmation_reminds_once_per_threshold(harness: Harness):
    world = harness.world
    harness.rotate(force=True)  # the old secret has 65 days left: no threshold crossed yet
    world.clock.advance(days=40)  # 25 days left: crosses 30
    first = MemoryNotifier()
    harness.rotate(notifier=first)
    assert [e.kind for e in first.events] == ["reminder"] and handoff_steps(first.events[0].handoff)
    again = MemoryNotifier()
    harness.rotate(notifier=again)  # same threshold: no second reminder
    assert again.events == []
    world.clock.advance(days=12)  # 13 days left: crosses 14
    later = MemoryNotifier()
    harness.rotate(notifier=later)
    assert [e.kind for e in later.events] == ["reminder"]
    assert world.sign_in_works("acme")


def test_adopt_with_an_ambiguous_hint_needs_the_key_id(harness: Harness):
    world = harness.world
    facility = world.facility("acme")
    app = world.find_app(harness.app.app_id)
    twin = world.add_password(app, secret_text=facility.client_secret[:3] + "8Q~" + "x" * 34)

    async def go(key_id):
        deps = harness.deps()
        try:
            return await adopt(harness.app, deps, SecretValue(facility.client_secret), key_id)
        finally:
            await deps.aclose()

    from sso_monitor.rotation.protocol import RotationFailed

    with pytest.raises(RotationFailed, match="several client secrets share this value's hint"):
        asyncio.run(go(None))
    assert asyncio.run(go(facility.key_id)).key_id == facility.key_id
    assert twin.key_id != facility.key_id


# ---- reads that lag writes: a credential missing from one read is not yet seen


def _drop_from_graph(harness: Harness, key_id: str) -> None:
    """A person deletes the credential under Certificates & secrets."""
    app = harness.world.find_app(harness.app.app_id)
    app.password_credentials = [c for c in app.password_credentials if c.key_id.lower() != key_id.lower()]


def test_a_young_unseen_credential_is_not_abandoned(http_harness: Harness):
    # Verification never completes (long propagation), so the flight stays pending.
    http_harness.world.tenants[http_harness.app.tenant_id].propagation_delay = timedelta(hours=20)  # the monitor's own secret is a day old
    first = http_harness.rotate(force=True)
    assert first.stage == "pending"
    _drop_from_graph(http_harness, first.key_id)  # what a lagging read shows, minutes later
    http_harness.world.clock.advance(minutes=10)
    again = http_harness.rotate()
    assert again.stage == "pending" and again.key_id == first.key_id
    assert any("not in Graph's answer yet" in line for line in again.actions)
    assert http_harness.version_for(first.key_id).tags["stage"] == "pending"


def test_an_old_missing_credential_is_abandoned_removed_and_its_version_disabled(http_harness: Harness):
    http_harness.world.tenants[http_harness.app.tenant_id].propagation_delay = timedelta(hours=20)  # the monitor's own secret is a day old
    first = http_harness.rotate(force=True)
    _drop_from_graph(http_harness, first.key_id)
    http_harness.world.clock.advance(hours=2)
    http_harness.world.tenants[http_harness.app.tenant_id].propagation_delay = timedelta(0)
    http_harness.rotate(force=True)
    abandoned = http_harness.version_for(first.key_id)
    assert abandoned.tags["stage"] == "abandoned" and abandoned.enabled is False
    assert http_harness.world.sign_in_works("acme")


def test_a_handed_on_credential_that_vanished_is_left_to_a_person(harness: Harness):
    first = harness.rotate(force=True)
    assert first.stage == "awaiting-confirmation"
    _drop_from_graph(harness, first.key_id)
    harness.world.clock.advance(hours=2)
    notifier = MemoryNotifier()
    again = harness.rotate(notifier=notifier)
    # Never abandoned: the administrator may already have pasted it into SmartTrace.
    assert harness.version_for(first.key_id).tags["stage"] == "awaiting-confirmation"
    assert harness.version_for(first.key_id).enabled
    assert again.stage == "awaiting-confirmation"
    assert [e.kind for e in notifier.events] == ["failed"] and first.key_id in notifier.events[0].message


# ---- confirm needs evidence in http mode


def test_confirm_after_a_failed_push_is_refused_until_smarttrace_holds_the_key(http_harness: Harness):
    from sso_monitor.rotation.protocol import ConfirmationRefused

    world = http_harness.world
    old_key = world.facility("acme").key_id
    http_harness.sandbox.faults.add("status", service="smarttrace", method="PUT", path="*/client-secret", status=503, times=1)  # the push fails
    first = http_harness.rotate(force=True)
    assert first.stage == "verified" and first.error
    # A person "confirms" the new key: SmartTrace does not report it, so it is refused,
    # nothing becomes current and the old secret is never scheduled for removal.
    with pytest.raises(ConfirmationRefused, match="push it first"):
        http_harness.confirm(first.key_id)
    assert http_harness.version_for(first.key_id).tags["stage"] == "verified"
    assert all(v.tags.get("stage") != "previous" for v in http_harness.vault_versions())
    assert world.facility("acme").key_id == old_key and world.sign_in_works("acme")
    # Once SmartTrace holds it (a later push), the same confirmation is evidence enough.
    http_harness.rotate()
    assert world.facility("acme").key_id == first.key_id
    assert http_harness.version_for(first.key_id).tags["stage"] == "current"


# ---- a lease lost mid-run: no write after the loss, and the report says what was done


class LosingLease:
    """The real local lease, but the service says "not yours" from the ``lose_at``-th
    confirmation on (another run broke it and took over)."""

    def __init__(self, inner, world, lose_at: int) -> None:
        self.inner, self.world, self.lose_at = inner, world, lose_at
        self.confirms = 0
        self.lost_after_request: int | None = None

    def hold(self, key, **options):
        from contextlib import asynccontextmanager

        from sso_monitor.errors import LeaseUnavailable

        outer = self

        class Held:
            def __init__(self, held) -> None:
                self.held = held

            def ensure(self) -> None:
                self.held.ensure()

            async def confirm(self) -> None:
                outer.confirms += 1
                if outer.confirms >= outer.lose_at:
                    if outer.lost_after_request is None:
                        outer.lost_after_request = len(outer.world.requests)
                    raise LeaseUnavailable(f"lease {key} was lost (renewal refused: LeaseIdMismatchWithLeaseOperation)")

        @asynccontextmanager
        async def held_block():
            async with outer.inner.hold(key, **options) as held:
                yield Held(held)

        return held_block()


def _writes(world, since: int) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in list(world.requests)[since:]
        if r.method in ("POST", "PUT", "PATCH", "DELETE") and r.service in ("graph", "vault", "smarttrace") and not r.inner
    ]


@pytest.mark.parametrize("lose_at", range(1, 8))  # an http rotation confirms the lease before each of its 7 writes
def test_a_lost_lease_stops_before_the_next_write(http_harness: Harness, lose_at: int):
    from sso_monitor.adapters.storage.lease import LocalLease

    world = http_harness.world
    losing = LosingLease(LocalLease(http_harness.lock_dir), world, lose_at)
    deps = http_harness.deps()
    deps.lease = losing

    async def run():
        try:
            return await Rotator(http_harness.app, deps, http_harness.settings, force=True).run()
        finally:
            await deps.aclose()

    result = asyncio.run(run())
    assert losing.lost_after_request is not None, "the lease was never confirmed that often"
    assert _writes(world, losing.lost_after_request) == []  # nothing written after the loss
    assert result.error and "lost during the run" in result.error and "nothing was done" not in result.error
    assert world.sign_in_works("acme")
    # The stage reported is the one Key Vault holds.
    from sso_monitor.rotation.ports import VaultVersion
    from sso_monitor.rotation.state import in_flight

    versions = [VaultVersion(v.version, dict(v.tags), v.enabled, v.expires, v.created) for v in http_harness.vault_versions()]
    flight = in_flight(versions)
    assert result.stage == (flight.stage if flight else "current")
    # The next run (lease held again) converges.
    world.clock.advance(minutes=15)
    again = http_harness.rotate()
    assert again.error is None and again.stage == "current" and world.sign_in_works("acme")


# ---- refusals known before anything is created: no create-remove cycle, and a dry run says so


def test_a_soft_deleted_secret_name_stops_the_rotation_before_a_credential_is_created(http_harness: Harness):
    world = http_harness.world
    vault = next(iter(world.vaults.values()))
    vault.soft_delete(http_harness.app.vault_secret_name, world.now() - timedelta(hours=1), settled=True)
    before = {c.key_id for c in http_harness.credentials()}
    for _ in range(2):  # run after run: never a credential created and removed again
        notifier = MemoryNotifier()
        result = http_harness.rotate(force=True, notifier=notifier)
        assert "deleted but recoverable" in (result.error or "") and "recover" in result.error
        assert {c.key_id for c in http_harness.credentials()} == before
        assert [e.kind for e in notifier.events] == ["failed"]
        assert not any(line.startswith(("create:", "store:")) for line in result.actions)
        world.clock.advance(minutes=15)
    assert world.sign_in_works("acme")


def test_a_dry_run_that_would_be_refused_says_so(harness: Harness):
    world = harness.world
    world.find_app(harness.app.app_id).owners.clear()  # the monitor is not an owner any more
    result = harness.rotate(force=True, dry_run=True)
    assert result.error and "az ad app owner add --id" in result.error
    from io import StringIO

    from sso_monitor.cli.rotate import rotate_command

    out, err = StringIO(), StringIO()
    code = rotate_command(harness.config, "acme", dry_run=True, force=True, out=out, err=err, service=harness.service())
    assert code != 0 and "az ad app owner add" in out.getvalue()


def test_lines_say_what_happened_and_plans_say_would(http_harness: Harness):
    # addPassword fails for good: there must be no "store:" line, the store never ran.
    http_harness.sandbox.faults.add("status", service="graph", method="POST", path="*/addPassword", status=400, code="Request_BadRequest")
    failed = http_harness.rotate(force=True)
    assert failed.error and not any(line.startswith("store:") for line in failed.actions)
    http_harness.sandbox.faults.clear()
    done = http_harness.rotate(force=True)
    assert any(line.startswith("create: added client secret") for line in done.actions)
    assert any(line.startswith("store: stored keyId") for line in done.actions)
    assert any(line.startswith("finish: keyId") and "is current" in line for line in done.actions)
    plan = http_harness.rotate(force=True, dry_run=True)
    assert all(
        " would " in f" {line.split(':', 1)[1]} " or line.startswith(("plan:", "resume:")) for line in plan.actions if not line.startswith("sweep: nothing")
    ), plan.actions


def test_a_check_right_after_a_rotation_reads_no_unknown_key_from_a_lagging_replica(http_harness: Harness):
    """Every Graph read in the window after a write comes from a replica that has not seen
    it (probability 1): the check right after the rotation sees the app without the new
    credential, and must not call the Key Vault copy's keyId unknown."""
    from sso_sandbox.replication import Replication
    from tests.checks import check_sandbox

    world = http_harness.world
    world.set_replication(Replication(window_seconds=600, stale_probability=1.0, seed=1))
    done = http_harness.rotate(force=True)
    assert done.stage == "current" and world.sign_in_works("acme")
    app = world.find_app(http_harness.app.app_id)
    report = check_sandbox(http_harness.sandbox)
    acme = next(r for r in report.results if r.app.facility == "acme")
    codes = [f.code for f in acme.findings]
    assert "VAULT_SECRET_UNKNOWN_KEY" not in codes, codes
    assert done.key_id in {c.key_id for c in app.password_credentials}  # it is there; the read lagged
