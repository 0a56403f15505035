"""The verify step's rule (docs/rotation.md, "Why this verify rule"): nothing is handed on
before ``verify_successes`` token requests in a row worked; any other answer starts the
count again; a refusal of the app stops; the deadline ends the run pending. Quick while
the secret does not work yet, then the confirming requests a short step apart, so a
rotation ends a few seconds after propagation.

Time is the sandbox's simulated clock on a frozen world: a wait moves the world, nothing
sleeps, and elapsed times are exact. Nothing here measures real time
(bench/rotation_timing.py does)."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sso_monitor.config import parse_config
from sso_monitor.models import ProbeOutcome, SecretProbe, SecretValue
from sso_monitor.rotation.ports import VaultVersion
from sso_monitor.rotation.protocol import MemoryNotifier, RotationDeps, RotationSettings, Rotator, verify_wait
from sso_sandbox import World
from sso_sandbox.clock import SimulatedClock
from tests.rotation.harness import Harness, config_for

WORKS, REJECTED, REFUSED, ERROR = ProbeOutcome.WORKS, ProbeOutcome.REJECTED, ProbeOutcome.REFUSED, ProbeOutcome.ERROR
DEFAULTS = RotationSettings()
BEFORE = RotationSettings(verify_successes=3, verify_interval=5.0, verify_retry=5.0, verify_confirm=5.0)  # the rule until 2026-12
GOAL = 5.0  # seconds a rotation may take beyond the propagation delay (docs/performance.md, goal 3)
TENANT, APP = "72f988bf-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002"
DOCUMENT = {"vaultUrl": "https://kv-sso.vault.azure.net", "apps": [{"facility": "acme", "tenantId": TENANT, "appId": APP}]}
ACME = parse_config(DOCUMENT, environ={}).apps[0]


# ---------------------------------------------------------------- the waits (pure)


@pytest.mark.parametrize(
    "verify, streak, misses, wait",
    [
        (DEFAULTS, 0, 1, 0.5),  # the first failure: look again soon
        (DEFAULTS, 0, 2, 1.0),  # doubling
        (DEFAULTS, 0, 3, 2.0),
        (DEFAULTS, 0, 4, 2.0),  # capped at the interval: propagation is noticed within 2 s
        (DEFAULTS, 0, 10_000, 2.0),  # a long wait never overflows
        (DEFAULTS, 1, 0, 1.0),  # it worked once: the confirming requests 1 s apart
        (DEFAULTS, 2, 0, 1.0),
        (RotationSettings(verify_interval=0.5, verify_confirm=1.0), 1, 0, 0.5),  # confirming is never slower than the interval
        (RotationSettings(verify_interval=0.0), 0, 3, 0.0),  # interval 0: no waiting at all (tests, the CLI's quick runs)
        (RotationSettings(verify_interval=0.0), 2, 0, 0.0),
        (BEFORE, 0, 1, 5.0),  # the old rule: every 5 s, whatever the answer
        (BEFORE, 0, 7, 5.0),
        (BEFORE, 2, 0, 5.0),
    ],
)
def test_verify_wait(verify, streak, misses, wait):
    assert verify_wait(verify, streak, misses) == wait


def test_the_configuration_reaches_the_verify_settings():
    document = copy.deepcopy(DOCUMENT)
    assert RotationSettings.from_config(parse_config(document, environ={})) == DEFAULTS  # left out: the defaults
    document["verify"] = {"successes": 4, "intervalSeconds": 3, "deadlineSeconds": 60, "retrySeconds": 0.25, "confirmSeconds": 1.5}
    configured = RotationSettings.from_config(parse_config(document, environ={}))
    assert (configured.verify_successes, configured.verify_interval, configured.verify_deadline) == (4, 3, 60)
    assert (configured.verify_retry, configured.verify_confirm) == (0.25, 1.5)


# ---------------------------------------------------------------- the step, with answers scripted


class ScriptedProbe:
    """Answers the script, then ``rest`` forever; each request takes ``latency`` s of the
    world's time. Keeps when each answer came."""

    def __init__(self, world: World, script: list[ProbeOutcome], rest: ProbeOutcome = REJECTED, latency: float = 0.0) -> None:
        self.world, self.script, self.rest, self.latency = world, list(script), rest, latency
        self.answers: list[tuple[float, ProbeOutcome]] = []  # (seconds since the start, outcome)
        self.start = world.now()

    async def probe(self, tenant_id: str, app_id: str, secret: SecretValue) -> SecretProbe:
        if self.latency:
            self.world.clock.advance(seconds=self.latency)
        outcome = self.script[len(self.answers)] if len(self.answers) < len(self.script) else self.rest
        self.answers.append(((self.world.now() - self.start).total_seconds(), outcome))
        return SecretProbe(outcome, code="AADSTS7000215" if outcome is REJECTED else ("AADSTS7000112" if outcome is REFUSED else None))

    @property
    def outcomes(self) -> list[ProbeOutcome]:
        return [outcome for _, outcome in self.answers]

    async def aclose(self) -> None:
        return None


def verify(script: list[ProbeOutcome], verify: RotationSettings = DEFAULTS, *, rest: ProbeOutcome = REJECTED, latency: float = 0.0):
    """The verify step alone, on a frozen world's clock: (verified, the probe, the step's lines)."""
    world = World()
    world.clock.freeze()
    probe = ScriptedProbe(world, script, rest, latency)
    deps = RotationDeps(writer=None, vault=None, probe=probe, pusher=None, notifier=MemoryNotifier(), lease=None, clock=SimulatedClock(world))  # type: ignore[arg-type]
    rotator = Rotator(ACME, deps, verify)
    verified = asyncio.run(rotator._verify(VaultVersion("v1", {"keyId": "5a1e0000-0000-4000-8000-00000000c0de"}), SecretValue("not-a-real-secret-value")))
    return verified, probe, rotator.result.actions


def test_hands_on_only_after_n_successes_in_a_row():
    verified, probe, lines = verify([REJECTED, REJECTED, WORKS, WORKS, WORKS])
    assert verified and probe.outcomes == [REJECTED, REJECTED, WORKS, WORKS, WORKS]  # stops at the third success, not before
    assert lines == ["verify: keyId 5a1e0000-0000-4000-8000-00000000c0de worked 3 times in a row (5 attempts)"]


def test_a_failure_after_a_success_starts_the_count_again():
    # Entra answered from a replica that had the secret, then from one that had not yet.
    verified, probe, _ = verify([WORKS, WORKS, REJECTED, WORKS, WORKS, WORKS])
    assert verified and len(probe.answers) == 6
    verified, probe, _ = verify([WORKS, ERROR, WORKS, WORKS, WORKS])  # a failed request proves nothing either
    assert verified and len(probe.answers) == 5


def test_after_a_failure_the_next_request_comes_soon_again():
    _, probe, _ = verify([REJECTED, REJECTED, REJECTED, WORKS, REJECTED, WORKS, WORKS, WORKS])
    times = [at for at, _ in probe.answers]
    waits = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    # 0.5, 1, 2 while failing; 1 after the success; 0.5 again after the relapse; then 1, 1
    assert waits == [0.5, 1.0, 2.0, 1.0, 0.5, 1.0, 1.0]


def test_a_refusal_of_the_app_stops_at_once():
    verified, probe, lines = verify([WORKS, WORKS, REFUSED, WORKS, WORKS, WORKS])
    assert not verified and len(probe.answers) == 3
    assert "Entra refuses app" in lines[-1] and "AADSTS7000112" in lines[-1]


def test_the_deadline_ends_the_run_pending():
    verified, probe, lines = verify([], RotationSettings(verify_deadline=30.0))
    assert not verified
    times = [at for at, _ in probe.answers]
    assert times[-2] < 30.0 <= times[-1] <= 30.0 + DEFAULTS.verify_interval  # it tried until the deadline, and stopped there
    assert "waiting for propagation" in lines[-1] and f"after {len(times)} attempts" in lines[-1]


@pytest.mark.parametrize("delay", [0, 10, 60])
@pytest.mark.parametrize("rule, over, requests", [(DEFAULTS, 3.5, 35), (BEFORE, 10.0, 15)])
def test_seconds_and_requests_beyond_propagation(delay, rule, over, requests):
    """A secret that works from ``delay`` s on: the time the step takes beyond it, and its
    token requests, bounded. The defaults end within the goal; the old rule did not."""
    works_from = [WORKS if at >= delay else REJECTED for at in _schedule(rule, delay)]
    verified, probe, _ = verify(works_from, rule, rest=WORKS)
    assert verified
    assert probe.answers[-1][0] - delay <= over
    assert len(probe.answers) <= requests
    assert (probe.answers[-1][0] - delay <= GOAL) is (rule is DEFAULTS)


def _schedule(rule: RotationSettings, delay: float) -> list[float]:
    """When the step asks (the propagation's answer does not change the waits while it fails)."""
    at, misses, times = 0.0, 0, []
    while at < delay + 60:
        times.append(at)
        misses += 1
        at += verify_wait(rule, 0, misses)
    return times


# ---------------------------------------------------------------- any answers: the rule holds

OUTCOMES = st.sampled_from([WORKS, WORKS, WORKS, REJECTED, ERROR, REFUSED])
RULES = st.builds(
    RotationSettings,
    verify_successes=st.integers(1, 5),
    verify_interval=st.sampled_from([0.0, 0.5, 2.0, 5.0]),
    verify_deadline=st.floats(1.0, 30.0).map(lambda seconds: round(seconds, 3)),  # whole milliseconds: the clock keeps microseconds
    verify_retry=st.sampled_from([0.0, 0.25, 0.5, 5.0]),
    verify_confirm=st.sampled_from([0.0, 1.0, 5.0]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(OUTCOMES, max_size=40), rule=RULES, rest=st.sampled_from([WORKS, REJECTED, ERROR]), latency=st.sampled_from([0.05, 0.3, 1.0]))
def test_never_verified_without_n_successes_in_a_row_and_always_stops(script, rule, rest, latency):
    verified, probe, _ = verify(script, rule, rest=rest, latency=latency)
    outcomes, times = probe.outcomes, [at for at, _ in probe.answers]
    n = rule.verify_successes
    streaks = _streaks(outcomes)
    # It stops at the first of: n successes in a row, a refusal, an answer past the deadline.
    assert all(s < n for s in streaks[:-1]) and REFUSED not in outcomes[:-1]
    assert all(at < rule.verify_deadline for at in times[:-1])
    if verified:
        assert outcomes[-n:] == [WORKS] * n and streaks[-1] == n  # never without n trailing successes
    else:
        assert outcomes[-1] is REFUSED or times[-1] >= rule.verify_deadline
        assert streaks[-1] < n
    # Never waits longer than the interval, so it ends soon after the deadline.
    assert times[-1] <= rule.verify_deadline + rule.verify_interval + latency
    assert all(b - a <= rule.verify_interval + latency + 1e-9 for a, b in zip(times, times[1:], strict=False))


def _streaks(outcomes: list[ProbeOutcome]) -> list[int]:
    """Successes in a row after each answer."""
    streak, streaks = 0, []
    for outcome in outcomes:
        streak = streak + 1 if outcome is WORKS else 0
        streaks.append(streak)
    return streaks


# ---------------------------------------------------------------- end to end, against the sandbox


@pytest.mark.parametrize("delay", [0, 10, 60])
def test_a_rotation_ends_within_seconds_of_propagation(sandbox, tmp_path, delay):
    """The whole rotation (http handoff) with the configuration's defaults: it ends in
    ``current`` no more than the goal's seconds after the secret started to work, and
    SmartTrace holds a secret that works."""
    world = sandbox.world
    world.clock.freeze()
    world.tenant(next(iter(world.tenants))).propagation_delay = timedelta(seconds=delay)
    config = config_for(sandbox, handoff="http")
    harness = Harness(sandbox, config, tmp_path / "locks", settings=RotationSettings.from_config(config))
    started = world.now()
    result = harness.rotate(force=True)
    assert result.error is None and result.stage == "current"
    assert world.facility("acme").key_id == result.key_id and world.sign_in_works("acme")
    over = (world.now() - started).total_seconds() - delay
    assert 0 <= over <= GOAL
    (line,) = [a for a in result.actions if a.startswith("verify: keyId")]
    attempts = int(line.rsplit("(", 1)[1].split()[0])
    assert attempts <= delay / harness.settings.verify_interval + 6
