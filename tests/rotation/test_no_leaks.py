"""No secret value in any log line, alert, report, exception or stored state other
than Key Vault (and Entra, and SmartTrace's endpoint, whose job it is to hold it).

Full rotations, manual and http, through the CLI's commands (``rotate`` dry run,
text and JSON, ``status`` text and JSON, ``confirm``, a failing ``confirm``), with
faults on the calls that carry or return a secret (addPassword's answer lost, the
push to SmartTrace refused, Key Vault failing the store); everything is captured
and searched for every secret value the sandbox ever issued: every log record of
every logger at DEBUG (``no_secret_in_logs``), the commands' standard output and
error, every RotationEvent (alert) and its steps, repr() of every result, the
full text of every exception (causes included), Key Vault tags, the lease files
and what SmartTrace recorded about pushes. The fault sweep
(test_fault_sweep.py) runs the same search on each of its scenarios.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest

from sso_monitor.cli.rotate import confirm_command, rotate_command, status_command
from sso_sandbox import Sandbox
from tests.rotation.test_fault_sweep import MODES, Scenario, due, running

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


@pytest.fixture
def sandbox(standard: tuple) -> Iterator[Sandbox]:
    """tests/conftest.py's fixture, with the fault sweep's speedups."""
    with running(standard[0]) as started:
        yield started


class Cli:
    """The CLI's commands on the scenario's world, output and alerts kept."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.config = scenario.harness.config
        self.out, self.err = StringIO(), StringIO()
        self.notifiers = scenario.harness.notifiers  # every session's, through the service

    def call(self, command, *args, **kwargs) -> int:
        return command(self.config, *args, out=self.out, **kwargs, service=self.scenario.harness.service())

    def rotate(self, **kwargs) -> int:
        return self.call(rotate_command, "acme", err=self.err, **kwargs)

    def confirm(self, key_id: str) -> int:
        return self.call(confirm_command, "acme", key_id, "test:admin", err=self.err)

    def status(self, **kwargs) -> int:
        return self.call(status_command, **kwargs)

    def text(self) -> str:
        events = [repr(event) for notifier in self.notifiers for event in notifier.events]
        return "\n".join([self.out.getvalue(), self.err.getvalue(), *events])


@pytest.mark.parametrize("mode", MODES)
def test_a_rotation_through_the_cli_leaks_no_secret(mode: str, sandbox: Sandbox, tmp_path: Path):
    scenario = Scenario(sandbox, mode, tmp_path / "locks")
    due(scenario)
    cli = Cli(scenario)
    issued_before = len(sandbox.world.issued_secrets)

    assert cli.rotate(dry_run=True, force=True) == 0
    assert cli.rotate(dry_run=False, force=True, as_json=True) == 0
    assert cli.status() == 0 and cli.status(as_json=True) == 0
    if mode == "manual":
        key_id = scenario.awaiting()
        assert key_id is not None
        scenario.harness.admin_pastes(key_id)
        assert cli.confirm("00000000-0000-0000-0000-000000000000") == 2  # no such rotation: an error on stderr
        assert cli.confirm(key_id) == 0
    assert cli.status() == 0
    assert cli.rotate(dry_run=False, force=False) == 0  # not due any more

    assert scenario.converged(), scenario.describe()
    current = next(v for v in scenario.versions() if v.tags.get("stage") == "current")
    assert current.value in sandbox.world.issued_secrets and len(sandbox.world.issued_secrets) > issued_before  # the search is not vacuous
    text = cli.text()
    assert current.tags["keyId"] in text and "current" in text and (mode == "http" or "no rotation of acme waits" in text)
    assert not scenario.leaks(text), "a secret value reached the CLI's output, an alert, a tag or the lease files"


FAULTS = {
    # addPassword created the credential; its answer (the only copy of the value) is lost.
    "addPassword-answer-lost": {"fault": "drop", "when": "after", "service": "graph", "method": "POST", "path": "*/addPassword", "nth": 1},
    # Key Vault fails the store (all retries): the new credential is removed again.
    "store-fails": {"fault": "status", "status": 500, "service": "vault", "method": "PUT", "path": "/secrets/smarttrace-acme", "times": 6},
    # SmartTrace refuses the push (http), then its answer is lost once.
    "push-refused": {"fault": "status", "status": 400, "code": "secret_rejected", "service": "smarttrace", "method": "PUT", "path": "*", "nth": 1},
    "push-answer-lost": {"fault": "drop", "when": "after", "service": "smarttrace", "method": "PUT", "path": "*", "nth": 1},
    # The monitor dies right after Key Vault stored the value.
    "crash-after-store": {"fault": "crash", "when": "after", "service": "vault", "method": "PUT", "path": "/secrets/smarttrace-acme", "nth": 1},
}


@pytest.mark.parametrize(("mode", "fault"), [(mode, fault) for mode in MODES for fault in FAULTS if mode == "http" or not fault.startswith("push")])
def test_failing_rotations_leak_no_secret(mode: str, fault: str, sandbox: Sandbox, tmp_path: Path):
    scenario = Scenario(sandbox, mode, tmp_path / "locks")
    due(scenario)
    cli = Cli(scenario)
    sandbox.faults.add(**FAULTS[fault])
    for _ in range(4):
        cli.rotate(dry_run=False, force=False)
        sandbox.restart_caller()
        if scenario.awaiting() is not None:
            key_id = scenario.awaiting()
            scenario.harness.admin_pastes(key_id)
            cli.confirm(key_id)
        if scenario.converged():
            break
        sandbox.world.clock.advance(minutes=15)
    assert scenario.converged(), scenario.describe()
    assert sandbox.faults.log, "the fault never fired"
    assert not scenario.leaks(cli.text()), "a secret value reached the CLI's output, an alert, a tag or the lease files"


def runs_of_eight(text: str, secrets: list[str]) -> list[str]:
    """The secrets of which some run of 8 characters appears in ``text``."""
    return [s for s in secrets if len(s) >= 8 and any(s[i : i + 8] in text for i in range(len(s) - 7))]


def test_an_upstream_that_echoes_most_of_the_secret_leaks_no_fragment(sandbox: Sandbox, tmp_path: Path, caplog):
    """SmartTrace refuses the push with an error whose free text (and 'reason') echoes 39
    of the secret's 40 characters. Nothing the monitor emits may carry 8 of them in a row:
    the CLI's output, the events, the alert cards and emails built from them, the logs."""
    import logging

    from sso_monitor.alerts.decisions import rotation_alert
    from sso_monitor.alerts.ports import Notice
    from sso_monitor.alerts.render import email_bodies, serialise, teams_message
    from sso_monitor.config import AlertsConfig

    caplog.set_level(logging.DEBUG)
    scenario = Scenario(sandbox, "http", tmp_path / "locks")
    due(scenario)
    sandbox.world.facility("acme").echo_secret_in_errors = True
    cli = Cli(scenario)
    assert cli.rotate(dry_run=False, force=True) == 2  # the push was refused
    assert [r.status for r in sandbox.world.facility("acme").received][-1] == 400  # and its error echoed the secret
    new = [v.value for v in scenario.versions() if v.tags.get("stage") == "verified"]
    assert new, scenario.describe()
    events = [event for notifier in cli.notifiers for event in notifier.events]
    alerts = [rotation_alert(event, sandbox.world.now(), AlertsConfig()) for event in events]
    rendered = [serialise(teams_message(Notice("ops", (alert,)))).decode() for alert in alerts]
    rendered += ["\n".join(email_bodies(Notice("mail", (alert,)))) for alert in alerts]
    text = "\n".join([cli.text(), *rendered, caplog.text])
    assert "secret_rejected" in text  # SmartTrace's code is passed on...
    assert not runs_of_eight(text, list(sandbox.world.issued_secrets)), "8+ characters of a secret reached an output"
