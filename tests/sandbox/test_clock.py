"""The sandbox clock and the date and duration parsers (table-driven, plus properties)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sso_sandbox.clock import Clock, iso, parse_iso
from sso_sandbox.world import format_duration, parse_duration

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_frozen_clock_moves_only_when_advanced():
    clock = Clock(frozen_at=T0)
    assert clock.now() == T0
    assert clock.advance(days=3) == T0 + timedelta(days=3)


def test_running_clock_keeps_its_offset_after_unfreeze():
    clock = Clock()
    clock.advance(days=10)
    assert clock.now() - datetime.now(UTC) > timedelta(days=9, hours=23)
    frozen = clock.freeze()
    clock.unfreeze()
    assert clock.now() >= frozen


def test_the_clock_never_goes_back():
    with pytest.raises(ValueError):
        Clock().advance(seconds=-1)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-29T12:00:00Z", T0),  # Graph's usual form
        ("2026-11-29T12:00:00.1234567Z", T0 + timedelta(microseconds=123456)),  # .NET's 7 digits
        ("2026-11-29T13:00:00+01:00", T0),  # an offset
        ("2026-11-29T12:00:00", T0),  # naive means UTC
    ],
)
def test_parse_iso(text, expected):
    assert parse_iso(text) == expected


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda d: d.replace(microsecond=0, tzinfo=UTC)))
def test_iso_round_trips(value):
    assert parse_iso(iso(value)) == value


@pytest.mark.parametrize(
    "text, expected",
    [
        ("P90D", timedelta(days=90)),
        ("P1Y", timedelta(days=365)),  # policy years are 365 days
        ("P6M", timedelta(days=180)),
        ("PT12H", timedelta(hours=12)),
        ("P1DT2H3M4S", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("P2W", timedelta(days=14)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "90D", "P1.5D", "P-1D", "forever"])
def test_parse_duration_refuses_nonsense(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10 * 365 * 86400))
def test_duration_round_trips(seconds):
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value
