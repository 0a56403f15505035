"""Shared fixtures: a started sandbox with the standard world."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from sso_monitor import redact
from sso_sandbox import Sandbox
from sso_sandbox.testing import StandardIds, standard_world

pytest_plugins = ["sso_sandbox.pytest_plugin", "tests.azurite"]


@pytest.fixture(autouse=True)
def _own_secrets() -> Iterator[None]:
    """The redactor is process-wide: a secret one test registers ("not-the-monitor-secret")
    would mask "-monitor" in the next test's texts. Each test starts from what was
    registered before it."""
    saved = redact.SECRETS.snapshot()
    yield
    redact.SECRETS.restore(saved)


@pytest.fixture
def standard() -> tuple:
    return standard_world()


@pytest.fixture
def sandbox(standard: tuple) -> Iterator[Sandbox]:
    world, _ = standard
    with Sandbox(world) as running:
        yield running


@pytest.fixture
def ids(standard: tuple) -> StandardIds:
    return standard[1]


@pytest.fixture
def no_secret_in_logs(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, standard: tuple) -> Iterator[None]:
    """Run the test with DEBUG logging (SDKs, MSAL, urllib3, the sandbox, ours) and fail
    if any secret the sandbox issued appears in any record of any phase.
    Use with ``pytestmark = pytest.mark.usefixtures("no_secret_in_logs")``."""
    caplog.set_level(logging.DEBUG)
    yield
    world = standard[0]
    records = [record for phase in ("setup", "call", "teardown") for record in caplog.get_records(phase)]  # type: ignore[arg-type]
    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(record) for record in records)
    if "sandbox" in request.fixturenames:
        assert text, "nothing was logged: the leak check would prove nothing"
    leaked = [secret for secret in world.issued_secrets if secret in text]
    assert not leaked, "a secret value reached the log"
