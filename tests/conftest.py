"""Shared fixtures: a started sandbox with the standard world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sso_monitor.sandbox import Sandbox
from sso_monitor.sandbox.testing import StandardIds, standard_world

pytest_plugins = ["sso_monitor.sandbox.pytest_plugin"]


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
