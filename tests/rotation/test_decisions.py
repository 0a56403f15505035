"""The rotation's pure decisions, table-driven, `now` passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sso_monitor.models import PasswordCredentialInfo, PasswordPolicy
from sso_monitor.rotation.ports import VaultVersion
from sso_monitor.rotation.state import (
    POLICY_MARGIN,
    capped_end,
    current_version,
    escalation_threshold,
    in_flight,
    is_managed,
    may_abandon,
    missing_too_long,
    new_end,
    ordered,
    orphans,
    retirable,
    rotation_due,
    stamp,
    unstamp,
    untagged_versions,
    version_of,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def v(version: str, **tags: str) -> VaultVersion:
    return VaultVersion(version, dict(tags))


@pytest.mark.parametrize(
    "days_left, before, force, due",
    [
        (31, 30, False, False),  # outside the window
        (30, 30, False, True),  # at the window's edge
        (5, 30, False, True),
        (-1, 30, False, True),  # already expired: certainly due
        (200, 30, True, True),  # forced
        (None, 30, False, True),  # no current secret known: due
    ],
)
def test_rotation_due(days_left, before, force, due):
    end = None if days_left is None else NOW + timedelta(days=days_left)
    assert rotation_due(end, NOW, before, force=force) is due


@pytest.mark.parametrize(
    "lifetime_days, policy, expected",
    [
        (180, None, NOW + 180 * DAY),  # no policy known
        (180, PasswordPolicy(timedelta(days=365)), NOW + 180 * DAY),  # within the cap
        (400, PasswordPolicy(timedelta(days=365)), NOW + 365 * DAY - POLICY_MARGIN),  # capped inside it
        (400, PasswordPolicy(timedelta(days=365), enabled=False), NOW + 400 * DAY),  # disabled policy
    ],
)
def test_new_end(lifetime_days, policy, expected):
    assert new_end(NOW, lifetime_days, policy) == expected


def test_capped_end_needs_a_known_policy():
    assert capped_end(NOW, None) is None
    assert capped_end(NOW, PasswordPolicy(timedelta(days=90))) == NOW + 90 * DAY - POLICY_MARGIN


@pytest.mark.parametrize(
    "versions, flight, current",
    [
        ([v("a", keyId="k1")], None, "a"),  # a hand-stored secret, no stage: it is current
        ([v("a", stage="current", keyId="k1"), v("b", stage="pending", keyId="k2")], "b", "a"),  # rotation in flight
        ([v("a", stage="previous"), v("b", stage="current"), v("c", stage="awaiting-confirmation")], "c", "b"),
        ([v("a", stage="current"), v("b", stage="abandoned")], None, "a"),  # abandoned is not in flight
        ([v("a", stage="retired"), v("b", stage="current"), v("c", stage="current")], None, "c"),  # two current: the newest
        ([], None, None),
    ],
)
def test_in_flight_and_current(versions, flight, current):
    assert (in_flight(versions).version if in_flight(versions) else None) == flight
    assert (current_version(versions).version if current_version(versions) else None) == current


def test_only_managed_versions_are_ours():
    assert is_managed(v("a", managed="true"))
    assert not is_managed(v("a"))
    assert not is_managed(v("a", managed="false"))


@pytest.mark.parametrize(
    "since_days_ago, grace, stage, retire",
    [
        (8, 7, "previous", True),  # grace over
        (6, 7, "previous", False),  # grace not over
        (7, 7, "previous", True),  # exactly over
        (30, 7, "current", False),  # never the current one
        (30, 7, "retired", False),  # already done
    ],
)
def test_retirable(since_days_ago, grace, stage, retire):
    version = v("a", stage=stage, previousSince=stamp(NOW - timedelta(days=since_days_ago)), keyId="k")
    assert (retirable([version], NOW, grace) == [version]) is retire


def test_previous_without_a_date_is_never_retired():
    assert retirable([v("a", stage="previous")], NOW, 0) == []


def cred(key: str, name: str, age: timedelta, hint: str = "abc") -> PasswordCredentialInfo:
    return PasswordCredentialInfo(key, name, hint, NOW - age, NOW + 100 * DAY)


DEPLOYMENT = "1a2b3c4d"
OURS = f"sso-monitor {DEPLOYMENT} 20261129T101500Z-0a1b2c3d"


@pytest.mark.parametrize(
    "credential, orphan",
    [
        (cred("k9", OURS, timedelta(hours=2)), True),  # ours, unknown to the vault, old enough
        (cred("k9", OURS + "-2", timedelta(hours=2)), True),  # the second try after a lost answer
        (cred("k9", OURS, timedelta(minutes=5)), False),  # ours but maybe being stored right now
        (cred("k1", OURS, timedelta(hours=2)), False),  # the vault knows it
        (cred("k9", "made by hand", timedelta(days=2)), False),  # not ours: never touched
        (cred("k9", "sso-monitor (prod)", timedelta(days=2)), False),  # a person's name that starts like ours
        (cred("k9", "sso-monitor 20261129T101500Z-0a1b2c3d", timedelta(days=2)), False),  # an older release's marker: no deployment id
        (cred("k9", "sso-monitor 9f9f9f9f 20261129T101500Z-0a1b2c3d", timedelta(days=2)), False),  # another deployment's (another vault)
        (cred("k9", OURS + " copy", timedelta(days=2)), False),  # not the exact pattern
        (cred("k9", OURS, timedelta(hours=2), hint="xyz"), False),  # a hand-stored version's value starts with its hint
    ],
)
def test_orphans(credential, orphan):
    versions = [v("a", keyId="k1")]
    found = orphans((credential,), versions, NOW, timedelta(minutes=10), DEPLOYMENT, held_hints=frozenset({"xyz"}))
    assert (found == [credential]) is orphan


def test_untagged_enabled_versions_are_the_hand_stored_ones():
    hand = VaultVersion("h", {}, enabled=True)
    disabled = VaultVersion("d", {}, enabled=False)
    tagged = v("t", keyId="k1", stage="current")
    assert untagged_versions([hand, disabled, tagged]) == [hand]


@pytest.mark.parametrize(
    "days_left, expected",
    [(40, None), (30, 30), (10, 14), (7, 7), (1, 1), (-3, 1)],
)
def test_escalation_threshold(days_left, expected):
    assert escalation_threshold(NOW + timedelta(days=days_left), NOW, (30, 14, 7, 3, 1)) == expected


def test_stamp_round_trip():
    assert unstamp(stamp(NOW)) == NOW
    assert unstamp("yesterday") is None and unstamp(None) is None


# ---- version order: never the listing's position


def at(version: str, created: datetime | None, **tags: str) -> VaultVersion:
    return VaultVersion(version, dict(tags), created=created)


def test_order_is_created_then_our_stamp_not_the_listing():
    t = NOW
    newest = at("0000", t + timedelta(seconds=1), stage="pending", keyId="b")  # lowest id, listed first by Key Vault
    older = at("ffff", t, stage="current", keyId="a")
    assert ordered([newest, older]) == [older, newest]
    # the same second: our storedAt stamp decides
    late = at("0001", t, stage="pending", keyId="c", storedAt="2026-11-29T12:00:00.900000Z")
    early = at("fffe", t, stage="current", keyId="a", storedAt="2026-11-29T12:00:00.100000Z")
    assert ordered([late, early]) == [early, late]
    assert in_flight([late, early]) is late and current_version([late, early]) is early


@pytest.mark.parametrize(
    "stage, age, abandon",
    [
        ("pending", timedelta(minutes=5), False),  # young: a lagging read, not yet seen
        ("pending", timedelta(hours=2), True),  # old and still missing: gone
        ("verified", timedelta(hours=2), True),
        ("awaiting-confirmation", timedelta(hours=2), False),  # SmartTrace may hold it: a person decides
        ("handed-off", timedelta(days=3), False),
    ],
)
def test_may_abandon(stage, age, abandon):
    flight = v("1", stage=stage, createdAt=stamp(NOW - age))
    assert missing_too_long(flight, NOW) is (age >= timedelta(hours=1))
    assert may_abandon(flight, NOW) is abandon


def test_the_version_of_a_key_id_is_its_copy_furthest_along():
    # A retried store wrote two copies in the same second with the same tags; one was
    # abandoned as stale, the other waits for confirmation: confirm must find that one.
    same = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    live = VaultVersion("0aaa", {"stage": "awaiting-confirmation", "keyId": "k"}, created=same)
    stale = VaultVersion("ffff", {"stage": "abandoned", "keyId": "k"}, created=same)
    for versions in ([live, stale], [stale, live]):
        assert version_of(versions, "K") is live
    assert version_of([stale], "k") is stale and version_of([live], "x") is None
