from __future__ import annotations

import pytest

from tests.rotation.harness import Harness, config_for


@pytest.fixture
def harness(sandbox, tmp_path) -> Harness:
    return Harness(sandbox, config_for(sandbox), tmp_path / "locks")


@pytest.fixture
def http_harness(sandbox, tmp_path) -> Harness:
    return Harness(sandbox, config_for(sandbox, handoff="http"), tmp_path / "locks")
