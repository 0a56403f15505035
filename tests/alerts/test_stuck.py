"""A rotation stuck in a stage (schedule.stuck_rotation) and the alert the timer makes of it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sso_monitor.checks.run import AppResult, CheckReport
from sso_monitor.rotation.ports import VaultVersion
from sso_monitor.rotation.schedule import STUCK_AFTER, stuck_rotation
from sso_monitor.service import plan_work

from .test_decisions import CONFIG

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def version(stage, age: timedelta, key="k-new") -> VaultVersion:
    return VaultVersion(f"v-{stage}-{age}", {"stage": stage, "keyId": key}, created=NOW - age)


@pytest.mark.parametrize(
    "versions, stuck",
    [
        ([version("current", timedelta(days=90), "k-old")], False),  # nothing in flight
        ([version("current", timedelta(days=90), "k-old"), version("pending", timedelta(hours=2))], False),  # in flight, recent
        ([version("current", timedelta(days=90), "k-old"), version("pending", STUCK_AFTER + timedelta(minutes=1))], True),  # pending for over a day
        ([version("current", timedelta(days=90), "k-old"), version("verified", timedelta(days=3))], True),
        ([version("current", timedelta(days=90), "k-old"), version("handed-off", timedelta(days=2))], True),  # pushed, never finished
        (
            [version("current", timedelta(days=90), "k-old"), version("awaiting-confirmation", timedelta(days=10))],
            False,
        ),  # waiting for a person: reminders, not stuck
        (
            [version("current", timedelta(days=90), "k-old"), VaultVersion("v-x", {"stage": "pending", "keyId": "k"})],
            False,
        ),  # no creation date: unknown, not stuck
    ],
)
def test_stuck_rotation(versions, stuck):
    assert (stuck_rotation(versions, NOW) is not None) is stuck


class Vault:
    async def versions(self, name):
        return [version("current", timedelta(days=90), "k-old"), version("verified", timedelta(days=2))]


def test_the_timer_turns_a_stuck_rotation_into_an_event():
    report = CheckReport(results=[AppResult(CONFIG.app("acme"), [])], started=NOW)
    plan = asyncio.run(plan_work(CONFIG, report, Vault(), NOW))
    (event,) = plan.stuck
    assert (event.kind, event.facility, event.key_id) == ("stuck", "acme", "k-new")
    assert "stage verified since" in event.message
    assert [w.reason for w in plan.work] == ["resume"]  # and the worker is asked to resume it
