"""pytest fixtures for the sandbox. Enable with
``pytest_plugins = ["sso_sandbox.pytest_plugin"]`` in a conftest.py.

- ``sandbox_scenario``: the scenario to load; override it in a test module
  (a path or a dict). Default: the built-in demo scenario.
- ``scenario_sandbox``: a started Sandbox for that scenario, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sso_sandbox.runtime import Sandbox
from sso_sandbox.serve import BUILTIN_SCENARIO


@pytest.fixture
def sandbox_scenario() -> Path | dict[str, Any]:
    return BUILTIN_SCENARIO


@pytest.fixture
def scenario_sandbox(sandbox_scenario: Path | dict[str, Any], tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.from_scenario(sandbox_scenario, workdir=tmp_path / "sandbox") as running:
        yield running
