"""Entra's AADSTS error body, one shape for the token endpoint (entra.py) and the
sign-in pages and code redemption (user_signin.py); docs/sandbox/fidelity.md has the
sources of the shape and of each text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

# How Entra separates the Trace ID, Correlation ID and Timestamp lines of an
# error_description: one space since 2024 ("\r\n" in captures up to 2023).
DESCRIPTION_SEPARATOR = " "


class Blank(dict[str, str]):
    """format_map helper: a missing value prints as empty."""

    def __missing__(self, key: str) -> str:
        return ""


def describe(number: int, template: str, values: dict[str, str]) -> str:
    """``AADSTS<number>: <the template, filled>``."""
    return f"AADSTS{number}: {template.format_map(Blank(values))}"


def aadsts_body(number: int, error: str, text: str, *, separator: str = DESCRIPTION_SEPARATOR, error_uri: str | None = None) -> dict[str, object]:
    """The JSON body: ``error``, ``error_description`` (the text, then Trace ID,
    Correlation ID and Timestamp), ``error_codes``, the ids and time, ``error_uri``."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body: dict[str, object] = {
        "error": error,
        "error_description": f"{text}{separator}Trace ID: {trace}{separator}Correlation ID: {correlation}{separator}Timestamp: {stamp}",
        "error_codes": [number],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
    }
    if error_uri:
        body["error_uri"] = error_uri
    return body
