"""Which apps need rotation work, and why: pure decisions, and the work message.

The timer checks every app, decides here which need a worker run and why
(``work_due``, pure, from the check's view of the secret in use and the app's
Key Vault version tags), and queues one message per such app (ports.WorkItem).
The queue-triggered worker runs the rotation protocol for one app under its
lease (service.MonitorService.work). The protocol decides again under the lease
before it acts, so a message that went stale in the queue, or arrived twice, is
harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sso_monitor.checks.run import AppResult
from sso_monitor.config import RotationPolicy
from sso_monitor.rotation.ports import RESUME, RETIRE, ROTATE, SWEEP, VaultVersion
from sso_monitor.rotation.state import AWAITING, in_flight, retirable, rotation_due

log = logging.getLogger(__name__)

# A rotation that has not moved for this long is stuck (a worker run takes minutes;
# waiting for the administrator's confirmation is not stuck: it has reminders).
STUCK_AFTER = timedelta(hours=24)


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True)
class AppState:
    """What the timer knows of one app: from its check, and its Key Vault version tags."""

    secret_known: bool  # the check read the registration (False: its secret's end is unknown)
    secret_end: datetime | None = None  # the end of the secret in use; None with secret_known: it has none
    versions: tuple[VaultVersion, ...] = ()
    orphans: int = 0  # credentials with our marker that Key Vault does not know


def work_due(policy: RotationPolicy, state: AppState, now: datetime) -> str | None:
    """The reason the app needs a worker run now, or None."""
    versions = list(state.versions)
    if in_flight(versions) is not None:
        return RESUME  # verify, remind or finish: a rotation left mid-way
    # Unknown is not due: a failed read would otherwise look like "no secret" and
    # queue work bound to fail the same way; the check's findings report it.
    if state.secret_known and policy.mode != "notify-only" and rotation_due(state.secret_end, now, policy.rotate_before_days):
        return ROTATE
    if retirable(versions, now, policy.grace_days):
        return RETIRE
    if state.orphans:
        return SWEEP
    return None


def stuck_rotation(versions: Sequence[VaultVersion], now: datetime) -> VaultVersion | None:
    """The in-flight version of a rotation that has not moved for STUCK_AFTER, if any."""
    flight = in_flight(list(versions))
    if flight is None or flight.stage == AWAITING or flight.created is None:
        return None
    return flight if now - flight.created > STUCK_AFTER else None


def app_state(result: AppResult, versions: Sequence[VaultVersion]) -> AppState:
    # A registration that was read has a secret in use (whose end the check gives)
    # or none at all (SECRET_MISSING); anything else means the read failed.
    known = result.secret_expires is not None or any(f.code == "SECRET_MISSING" for f in result.findings)
    return AppState(
        secret_known=known,
        secret_end=result.secret_expires,
        versions=tuple(versions),
        orphans=sum(1 for f in result.findings if f.code == "ORPHAN_CREDENTIAL"),
    )
