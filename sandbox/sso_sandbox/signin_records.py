"""Entra's sign-in records in the world: rows and per-credential activity (the Graph
endpoints that serve them are in signins.py; docs/sandbox/fidelity.md)."""

from __future__ import annotations

import secrets as _secrets
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sso_sandbox.clock import iso

if TYPE_CHECKING:
    from sso_sandbox.world import World

# The words Entra uses for each refusal (docs/sandbox/fidelity.md, the Entra rows).
FAILURE_REASONS = {
    0: None,
    7000215: "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
    7000222: "The provided client secret keys are expired.",
    7000218: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    7000112: "Application is disabled.",
    7000229: "The client application is missing service principal in the tenant.",
}


@dataclass
class SignInRow:
    tenant_id: str
    app_id: str
    app_display_name: str
    at: datetime
    event_type: str  # nonInteractiveUser | servicePrincipal
    error_code: int
    key_id: str | None = None  # servicePrincipal rows only
    user_principal_name: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def json(self) -> dict[str, Any]:
        user = self.event_type != "servicePrincipal"
        return {
            "id": self.id,
            "createdDateTime": iso(self.at),
            "appId": self.app_id,
            "appDisplayName": self.app_display_name,
            "isInteractive": False,
            "signInEventTypes": [self.event_type],
            "clientCredentialType": "clientSecret",
            "userPrincipalName": self.user_principal_name if user else None,
            "userDisplayName": None,
            "servicePrincipalId": None if user else self.app_id,
            "servicePrincipalName": None if user else self.app_display_name,
            "servicePrincipalCredentialKeyId": None if user else self.key_id,
            "resourceDisplayName": "Microsoft Graph",
            "status": {"errorCode": self.error_code, "failureReason": FAILURE_REASONS.get(self.error_code, "Other."), "additionalDetails": None},
        }


@dataclass
class SignInRecords:
    """What Entra recorded in one world: rows, per-credential activity, the reporting budget."""

    rows: list[SignInRow] = field(default_factory=list)
    # (tenant, appId, keyId) -> the times the credential was used
    activity: dict[tuple[str, str, str], list[datetime]] = field(default_factory=dict)
    budget: dict[tuple[str, str], deque[datetime]] = field(default_factory=dict)


def records(world: World) -> SignInRecords:
    found: SignInRecords = world.sign_in_records
    return found


def _matched_key(world: World, tenant_id: str, app_id: str, secret_text: str) -> str | None:
    tenant = world.tenant(tenant_id)
    app = tenant.app_by_app_id(app_id) if tenant else None
    if app is None:
        return None
    match = next((c for c in app.password_credentials if _secrets.compare_digest(c.secret_text, secret_text)), None)
    return match.key_id if match else None


def _note_activity(world: World, tenant_id: str, app_id: str, key_id: str, at: datetime) -> None:
    records(world).activity.setdefault((tenant_id.lower(), app_id.lower(), key_id.lower()), []).append(at)


def record_user_sign_in(world: World, facility_name: str, *, user: str = "user@facility.example", at: datetime | None = None) -> int:
    """A user of the facility signs in through SmartTrace; the error code Entra logged (0: success)."""
    with world.lock:
        facility = world.facility(facility_name)
        if facility is None:
            raise KeyError(f"unknown facility {facility_name}")
        at = at or world.now()
        tenant = world.tenant(facility.tenant_id)
        app = tenant.app_by_app_id(facility.app_id) if tenant else None
        if not facility.client_secret:
            code = 7000218
        else:
            reason = world.secret_works(facility.tenant_id, facility.app_id, facility.client_secret, client_credentials=False)
            code = 0 if reason is None else int(reason.removeprefix("AADSTS"))
            key_id = _matched_key(world, facility.tenant_id, facility.app_id, facility.client_secret)
            if key_id is not None:
                # Counted whatever the outcome: the report's activity "may include partial
                # sign-ins" (assumption, by analogy with servicePrincipalSignInActivity).
                _note_activity(world, facility.tenant_id, facility.app_id, key_id, at)
        records(world).rows.append(
            SignInRow(
                tenant_id=facility.tenant_id.lower(),
                app_id=facility.app_id,
                app_display_name=app.display_name if app else "",
                at=at,
                event_type="nonInteractiveUser",
                error_code=code,
                user_principal_name=user.lower(),
            )
        )
        return code


def record_client_credentials(world: World, tenant_id: str, app_id: str, secret_text: str, reason: str | None) -> None:
    """A client-credentials token request with a client secret (called by the token endpoint)."""
    with world.lock:
        key_id = _matched_key(world, tenant_id, app_id, secret_text)
        tenant = world.tenant(tenant_id)
        app = tenant.app_by_app_id(app_id) if tenant else None
        if app is None:
            return  # no app in the tenant: nothing Entra could attribute a row to
        now = world.now()
        if key_id is not None:
            _note_activity(world, tenant_id, app_id, key_id, now)
        code = 0 if reason is None else int(reason.removeprefix("AADSTS"))
        records(world).rows.append(
            SignInRow(
                tenant_id=tenant_id.lower(),
                app_id=app.app_id,
                app_display_name=app.display_name,
                at=now,
                event_type="servicePrincipal",
                error_code=code,
                key_id=key_id,
            )
        )
