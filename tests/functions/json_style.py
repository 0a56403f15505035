"""The one JSON style of the CLI's --json and the admin API (service.to_json), as a test
sees it: every key camelCase, at any depth; every moment ISO 8601 UTC with whole
seconds (``2026-12-06T02:13:03Z``)."""

from __future__ import annotations

import re
from typing import Any

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# Anything that looks like a moment: a date followed by a time, in any spelling
# ("2026-12-06 02:13:03+00:00" was status --json's before).
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# Keys that always hold a moment (or null).
MOMENT_KEYS = re.compile(r"(At|Since|Expires|After)$|^until$")


def style_problems(value: Any, path: str = "$") -> list[str]:
    """Where ``value`` breaks the style (empty: it keeps it)."""
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if not isinstance(key, str) or not CAMEL.match(key):
                problems.append(f"{where}: key not camelCase")
            if MOMENT_KEYS.search(str(key)) and item is not None and not (isinstance(item, str) and STAMP.match(item)):
                problems.append(f"{where}: {item!r} is not an ISO 8601 UTC time")
            problems += style_problems(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems += style_problems(item, f"{path}[{index}]")
    elif isinstance(value, str) and MOMENT.match(value) and not STAMP.match(value):
        problems.append(f"{path}: {value!r} is not an ISO 8601 UTC time")
    return problems


def assert_style(document: Any) -> None:
    problems = style_problems(document)
    assert not problems, problems[:10]
