"""The status document: every app, its findings, its secret's expiry and its
rotation stage. One shape for GET /api/status (JSON) and the status page."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sso_monitor.rotation.protocol import RotationStatus
from sso_monitor.checks.run import CheckReport
from sso_monitor.models import stamp


def build_status(report: CheckReport, rotations: Mapping[str, RotationStatus], now: datetime) -> dict[str, Any]:
    apps: list[dict[str, Any]] = []
    for result in sorted(report.results, key=lambda r: r.app.facility):
        rotation = rotations.get(result.app.facility)
        expires = result.secret_expires
        apps.append(
            {
                "facility": result.app.facility,
                "tenantId": result.app.tenant_id,
                "appId": result.app.app_id,
                "status": result.status,
                "secretExpires": _utc(expires),
                "daysLeft": math.floor((expires - now).total_seconds() / 86400) if expires else None,
                "findings": [f.as_dict() for f in result.findings],
                "rotation": {
                    "stage": rotation.stage if rotation else "unknown",
                    "currentKeyId": rotation.current_key_id if rotation else None,
                    "inFlightKeyId": rotation.in_flight_key_id if rotation else None,
                    "retiring": list(rotation.retiring) if rotation else [],
                },
            }
        )
    counts: dict[str, int] = {}
    for app in apps:
        counts[app["status"]] = counts.get(app["status"], 0) + 1
    return {"generatedAt": _utc(now), "summary": counts, "errors": list(report.errors), "apps": apps}


def _utc(moment: datetime | None) -> str | None:
    return stamp(moment) if moment else None
