"""Properties of the alert decisions over random histories (hypothesis): whatever
the findings do day after day, each change is said once and nothing is said
out of turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sso_monitor.alerts.decisions import finding_alerts, parse_until
from sso_monitor.alerts.ports import APPEARED, REMINDER, RESOLVED, WORSENED
from sso_monitor.checks.findings import Severity, finding
from sso_monitor.config import AlertsConfig

from .test_decisions import ACME

START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
POLICY = AlertsConfig(repeat_critical_hours=24)

# One day's findings: whether the logout URL is wrong (a warning), the secret's
# days to expiry (or no expiry finding), and whether the check could not finish.
day = st.fixed_dictionaries(
    {
        "logout": st.booleans(),
        "days_left": st.none() | st.integers(-3, 40),
        "check_failed": st.booleans() | st.just(False),
    }
)


def findings_of(today: dict) -> list:
    found = []
    if today["logout"]:
        found.append(finding("LOGOUT_URL_MISMATCH", "logout URL differs", severity=Severity.WARNING))
    days = today["days_left"]
    if days is not None and days <= 30:
        if days < 0:
            found.append(finding("SECRET_EXPIRED", "expired", days_left=days))
        else:
            found.append(finding("SECRET_EXPIRING", f"{days} days", severity=Severity.CRITICAL if days <= 7 else Severity.WARNING, days_left=days))
    if today["check_failed"]:
        found.append(finding("CHECK_FAILED", "Graph timed out"))
    return found


@settings(max_examples=150, deadline=None)
@given(st.lists(day, min_size=1, max_size=40))
def test_histories(days):
    states: dict = {}
    said: list[tuple[int, str, str]] = []  # (day, code, kind)
    for index, today in enumerate(days):
        now = START + timedelta(days=index)
        found = findings_of(today)
        alerts, changes = finding_alerts(ACME, found, states, {}, now, POLICY)
        for code, change in changes.items():
            if change is None:
                states.pop(code, None)
            else:
                states[code] = change
        codes_today = [a.code for a in alerts]
        assert len(codes_today) == len(set(codes_today)), "one alert per code and day"
        present = {f.code for f in found}
        for alert in alerts:
            said.append((index, alert.code, alert.kind))
            assert alert.code != "CHECK_FAILED"  # the monitor's own failure goes to operations
            if alert.kind == RESOLVED:
                assert alert.code not in present and not today["check_failed"]
            else:
                assert alert.code in present
        if today["check_failed"]:
            assert all(a.kind != RESOLVED for a in alerts), "an unfinished check resolves nothing"
        # the stored state is exactly the open, alerted findings
        assert set(states) <= present | (set(states) if today["check_failed"] else set())
    # per code: appeared / resolved alternate, starting with appeared; others only while open
    for code in {c for _, c, _ in said}:
        open_ = False
        for _, c, kind in said:
            if c != code:
                continue
            if kind == APPEARED:
                assert not open_
                open_ = True
            elif kind == RESOLVED:
                assert open_
                open_ = False
            else:
                assert kind in (WORSENED, REMINDER) and open_
        # warnings are never repeated: a reminder is for a critical finding only
    for _, code, kind in said:
        if kind == REMINDER:
            assert code in ("SECRET_EXPIRING", "SECRET_EXPIRED")  # the only criticals here


@given(st.text(max_size=60))
def test_parse_until_accepts_or_refuses_clearly(text):
    try:
        moment = parse_until(text)
    except ValueError as exc:
        assert "ISO 8601" in str(exc)
    else:
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
