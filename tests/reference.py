"""Where Microsoft's reference material is: ../shared/reference beside the
checkout (as on developers' machines and in CI), or SSO_MONITOR_REFERENCE.

Tests that validate against it skip on a machine without it, but fail under
CI, where the material is always laid out: coverage must not vanish quietly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    configured = os.environ.get("SSO_MONITOR_REFERENCE")
    return Path(configured) if configured else ROOT.parent / "shared" / "reference"


def require_reference(*parts: str) -> Path:
    path = reference_dir().joinpath(*parts)
    if not path.exists():
        message = f"reference material not found at {path} (set SSO_MONITOR_REFERENCE)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
