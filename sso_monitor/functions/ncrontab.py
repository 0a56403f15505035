"""How often the timer fires: the longest gap between two runs of an NCRONTAB
schedule (SSO_MONITOR_SCHEDULE), for telling whether the stored status is stale.

Azure Functions timers take six fields, ``{second} {minute} {hour} {day} {month}
{day-of-week}`` (NCrontab with seconds), each a ``*``, a number, a range ``a-b``,
a step ``*/n``, ``a-b/n`` or ``a/n``, or a comma list of those; months and days
of the week may be names (``JAN``, ``MON``, or in full), Sunday is 0 (or 7). A
TimeSpan (``hh:mm:ss``, or ``d.hh:mm:ss``; App Service plans only) is a fixed
interval. Anything else is None: the caller falls back to a fixed age.

A day must match both the day-of-month and the day-of-week fields (NCrontab's
rule). The longest gap does not depend on the time zone the host evaluates the
schedule in (UTC unless WEBSITE_TIME_ZONE or TZ says otherwise), daylight saving
aside. Stdlib only; the result for one expression is computed once per process.
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_TIMESPAN = re.compile(r"(?:(\d{1,3})\.)?(\d{1,2}):(\d{2}):(\d{2})")
_NUMBER = re.compile(r"\d{1,4}")
# The calendar repeats its days of the week every 28 years between 1901 and 2099:
# two cycles see every gap between matching days, the one across cycles included.
_SCAN_FROM, _SCAN_YEARS = date(2000, 1, 1), 57


def longest_interval(expression: str | None) -> timedelta | None:
    """The longest time between two consecutive firings of the schedule, or None when
    it is not a schedule this module understands (or one that never fires twice)."""
    if not isinstance(expression, str):
        return None
    return _longest(" ".join(expression.split()))


@functools.lru_cache(maxsize=16)
def _longest(expression: str) -> timedelta | None:
    span = _TIMESPAN.fullmatch(expression)
    if span:
        days, hours, minutes, seconds = (int(part or 0) for part in span.groups())
        if hours > 23 or minutes > 59 or seconds > 59:
            return None
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        return interval if interval > timedelta(0) else None
    fields = expression.split(" ")
    if len(fields) != 6:
        return None
    try:
        at_seconds = _field(fields[0], 0, 59)
        at_minutes = _field(fields[1], 0, 59)
        at_hours = _field(fields[2], 0, 23)
        on_days = _field(fields[3], 1, 31)
        months = _field(fields[4], 1, 12, (_MONTHS, _MONTH_NAMES), base=1)
        weekdays = {d % 7 for d in _field(fields[5], 0, 7, (_DAYS, _DAY_NAMES), base=0)}
    except ValueError:
        return None
    times = sorted(h * 3600 + m * 60 + s for h in at_hours for m in at_minutes for s in at_seconds)
    day_gap = _longest_day_gap(frozenset(on_days), frozenset(months), frozenset(weekdays))
    if day_gap is None:
        return None
    within = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0)
    across = day_gap * 86400 - times[-1] + times[0]  # the last run of a day to the first of the next run day
    return timedelta(seconds=max(within, across))


def _longest_day_gap(days: frozenset[int], months: frozenset[int], weekdays: frozenset[int]) -> int | None:
    """The most days between two consecutive matching days (1: every day), or None if
    fewer than two days match in the scanned years."""
    previous: date | None = None
    gap = 0
    day = _SCAN_FROM
    end = _SCAN_FROM.replace(year=_SCAN_FROM.year + _SCAN_YEARS)
    one = timedelta(days=1)
    while day < end:
        # date.weekday(): Monday 0; cron: Sunday 0.
        if day.month in months and day.day in days and (day.weekday() + 1) % 7 in weekdays:
            if previous is not None:
                gap = max(gap, (day - previous).days)
            previous = day
        day += one
    return gap or None


def _field(text: str, low: int, high: int, names: tuple[tuple[str, ...], ...] = (), *, base: int = 0) -> set[int]:
    """The values a field allows. ``names``: lists of names for base, base + 1, ..."""
    values: set[int] = set()
    for item in text.split(","):
        part, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _NUMBER.fullmatch(step_text) or int(step_text) < 1:
                raise ValueError(f"bad step {item!r}")
            step = int(step_text)
        if part == "*":
            start, stop = low, high
        else:
            first, dash, last = part.partition("-")
            start = _value(first, low, high, names, base)
            stop = _value(last, low, high, names, base) if dash else (high if slash else start)
            if stop < start:
                raise ValueError(f"bad range {item!r}")
        values.update(range(start, stop + 1, step))
    if not values:
        raise ValueError(f"empty field {text!r}")
    return values


def _value(text: str, low: int, high: int, names: tuple[tuple[str, ...], ...], base: int) -> int:
    lowered = text.lower()
    for listed in names:
        if lowered in listed:
            return listed.index(lowered) + base
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"bad value {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{value} is out of {low}-{high}")
    return value
