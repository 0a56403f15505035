"""Random interleavings of the rotation's events, with the invariants checked after
every step (a hypothesis state machine over one sandbox world per example).

Steps: timer runs (sometimes forced), the administrator's paste and
confirmation of a version that awaits it, the clock moving on (minutes to
weeks), and "settle" (the faults are over: restart, an hour later, one run).
Each of the first three may arm a fault for an upcoming call first: a crash
(the monitor process dies at the nth call of a service, before or after the
service acted; every later call fails until a restart) or a transient fault
(503, throttling, an answer lost after the fact); runs and confirmations may
restart the crashed process first.

After every step: sign-in works with the secret SmartTrace holds; no
credential without the monitor's marker was removed or added (the hand-made
one included); the versions in flight are of one credential at most; the
credential SmartTrace holds is never tagged ``previous`` (due for retirement). After
"settle": the run succeeded and none of our credentials is unknown to Key
Vault's live versions (nothing lost). At the end: settle until the rotation
converges (current, SmartTrace holds it), one more run after the grace
period (retire) keeps sign-in working, and no secret value showed up in any
log record (DEBUG, every logger), result, event, exception, tag or lease file.

The world starts with the rotation due (the hand-made secret has 25 days
left). The clock never jumps closer than two days to the end of the secret
SmartTrace holds: in manual mode only the administrator can prevent that
outage (the monitor escalates), so the machine models one who acts in time.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sso_sandbox.testing import standard_world
from tests.rotation.test_fault_sweep import MODES, Scenario, due, running, speedups

# Where a fault strikes: any call of a service, or one of the protocol's writes.
TARGETS = (
    ("graph", "*", "*"),
    ("vault", "*", "*"),
    ("login", "*", "*"),
    ("smarttrace", "*", "*"),
    ("graph", "POST", "*/addPassword"),
    ("graph", "POST", "*/removePassword"),
    ("vault", "PUT", "*"),
    ("vault", "PATCH", "*"),
    ("smarttrace", "PUT", "*"),
)
# None (no fault), a crash (the process dies at that call, before or after the service
# acted), or a transient fault: 503, throttling (429, Retry-After), an answer lost after
# the fact. The fault strikes the nth matching call from now (this step or a later one).
FAULTS = st.one_of(
    st.none(),
    st.tuples(st.just("crash"), st.sampled_from(TARGETS), st.integers(1, 3), st.sampled_from(("before", "after"))),
    st.tuples(st.sampled_from(("status", "throttle", "lost")), st.sampled_from(TARGETS), st.integers(1, 3), st.just("")),
)
MARGIN = timedelta(days=2)  # settle moves an hour at a time on top of that
SETTLE_LIMIT = 8

SETTINGS = settings(
    max_examples=20,  # per handoff mode
    stateful_step_count=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=False,
)


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log record of every logger at DEBUG, formatted (exceptions included)."""
    lines: list[str] = []
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                lines.append(formatter.format(record))
            except Exception as exc:
                lines.append(f"unformattable record {record.name}: {exc!r}")

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class RotationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stack = contextlib.ExitStack()
        self.scenario: Scenario | None = None
        self.logs: list[str] = []

    # ---- start

    mode = "http"  # the handoff mode; one machine per mode (see the test)

    @initialize()
    def start(self) -> None:
        mode = self.mode
        self.logs = self.stack.enter_context(captured_logs())
        world, _ = standard_world()
        self.sandbox = self.stack.enter_context(running(world))
        tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory()))
        self.scenario = Scenario(self.sandbox, mode, tmp / "locks")
        due(self.scenario)
        self.scenario.steps.append(f"{mode} handoff")

    @property
    def world(self):
        return self.sandbox.world

    # ---- rules (few, so that hypothesis's swarm testing, which switches whole rules off
    # per example, still leaves runs in most examples; faults are armed as part of a step)

    @precondition(lambda self: self.scenario is not None)
    @rule(force=st.booleans(), restart_first=st.booleans(), fault=FAULTS)
    def timer_run(self, force: bool, restart_first: bool, fault: tuple | None) -> None:
        self.arm(fault)
        if restart_first:
            self.restart()
        self.scenario.pass_(force=force, confirm=False)

    @precondition(lambda self: self.scenario is not None and self.scenario.awaiting() is not None)
    @rule(restart_first=st.booleans(), fault=FAULTS)
    def confirm(self, restart_first: bool, fault: tuple | None) -> None:
        self.arm(fault)
        if restart_first:
            self.restart()
        self.scenario.paste_and_confirm()

    @precondition(lambda self: self.scenario is not None)
    @rule(minutes=st.sampled_from((1, 5, 11, 60, 6 * 60, 24 * 60, 3 * 24 * 60, 8 * 24 * 60, 30 * 24 * 60)), fault=FAULTS)
    def advance_clock(self, minutes: int, fault: tuple | None) -> None:
        self.arm(fault)
        step = min(timedelta(minutes=minutes), self.room())
        if step > timedelta(0):
            self.world.clock.advance(step)
        self.scenario.steps.append(f"clock +{step}")

    def arm(self, fault: tuple | None) -> None:
        """A fault for an upcoming call (the nth call of that service and method from now,
        in this step or a later one)."""
        if fault is None:
            return
        kind, (service, method, path), nth, when = fault
        where = {"service": service, "method": method, "path": path, "nth": nth}
        if kind == "crash":
            self.sandbox.faults.add("crash", when=when, **where)
        elif kind == "status":
            self.sandbox.faults.add("status", status=503, **where)
        elif kind == "throttle":
            self.sandbox.faults.add("throttle", retry_after=0.05, **where)
        else:
            self.sandbox.faults.add("drop", when="after", **where)
        self.scenario.steps.append(f"armed: {kind} {service} {method} {path} #{nth}{' ' + when if kind == 'crash' else ''}")

    def restart(self) -> None:
        """The crashed process restarts (part of a timer run or a confirmation: a restart
        on its own changes nothing until the next call)."""
        self.sandbox.restart_caller()
        self.scenario.steps.append("restart")

    @precondition(lambda self: self.scenario is not None)
    @rule()
    def settle(self) -> None:
        result = self.settle_once()
        assert result.error is None, f"a run in a healthy world failed: {result.error}"
        assert not self.scenario.orphans(), f"credentials lost (ours, unknown to Key Vault) after a healthy run: {self.scenario.describe()}"

    # ---- invariants

    @invariant()
    def invariants_hold(self) -> None:
        if self.scenario is not None:
            self.scenario.check("after a step")

    # ---- end

    def teardown(self) -> None:
        try:
            if self.scenario is None:
                return
            for _ in range(SETTLE_LIMIT):
                if self.scenario.converged():
                    break
                self.settle_once()
                if self.scenario.awaiting() is not None:
                    self.scenario.paste_and_confirm()
            assert self.scenario.converged(), f"did not converge: {self.scenario.describe()} ({'; '.join(self.scenario.steps)})"
            self.scenario.after_grace()  # SSO holds past the grace period too (checked in the run)
            assert not self.scenario.leaks("\n".join(self.logs)), "a secret value reached a log record, result, event, exception, tag or lease file"
        finally:
            self.stack.close()

    # ---- helpers

    def settle_once(self):
        self.sandbox.faults.clear()
        self.sandbox.restart_caller()
        self.world.clock.advance(hours=1)
        self.scenario.steps.append("settle")
        return self.scenario.pass_(confirm=False)

    def room(self) -> timedelta:
        """How far advance_clock may move: up to two days before the secret SmartTrace holds ends."""
        facility = self.world.facility("acme")
        held = self.world.find_app(facility.app_id).credential(facility.key_id)
        assert held is not None, "SmartTrace holds a credential that no longer exists"
        return max(timedelta(0), held.end - self.world.now() - MARGIN)


@pytest.mark.parametrize("mode", MODES)
def test_random_interleavings_keep_the_invariants(mode: str):
    machine = type(f"RotationMachine_{mode}", (RotationMachine,), {"mode": mode})
    with speedups():  # for the examples' shrinking too (every world starts its own)
        run_state_machine_as_test(machine, settings=SETTINGS)
