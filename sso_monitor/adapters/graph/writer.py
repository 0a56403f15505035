"""Graph writes for the rotation protocol: AppWriter on msgraph's pipeline.

One ``GraphPipeline`` (graph_client.py) per tenant, built on first use with
the identity configured for that tenant; the JSON parsers are the reader's
(graph.py), so an app reads the same whichever adapter read it.

addPassword is the one call that is not idempotent: every send may create a
credential. It is sent exactly once: the SDK's RetryHandler, which re-sends
POST on 429/503/504, is switched off for that request
(``GraphPipeline.send(retry=False)``), and httpx never re-sends on its own.
What an outcome means for the protocol:

- an answer with the credential: NewCredential, the only time the value is seen;
- 400 CredentialInvalidLifetimeAsPerAppPolicy: LifetimeExceedsPolicy;
- the request provably never left (token request failed, no connection) or
  Graph refused it (429, 4xx): Throttled, AccessDenied, NotFound or
  ExternalError: nothing was created;
- no answer (timeout, dropped connection), a 5xx, or a 200 we cannot read:
  AnswerLost. It may have been created; the protocol looks for its marker
  display name before it creates another.

removePassword is idempotent in effect, so the SDK's retries stay on. Any
failure is checked against a fresh read of the app: a keyId no longer there
is success (False: "already gone"), whoever removed it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from azure.core.exceptions import AzureError

from sso_monitor.adapters.errors import azure_error, status_error
from sso_monitor.adapters.graph.client import GraphAnswer, GraphPipeline
from sso_monitor.adapters.graph.reader import (
    APP_SELECT,
    POLICY_URL,
    _alternate_key,
    _application,
    _detail,
    _error_of,
    _policy,
    parse_datetime,
    parse_duration,
)
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import (
    AnswerLost,
    ConfigError,
    ExternalError,
    LifetimeExceedsPolicy,
    TransientError,
)
from sso_monitor.models import AppRegistration, PasswordPolicy, SecretValue, stamp
from sso_monitor.rotation.ports import LifetimePolicy, NewCredential

log = logging.getLogger(__name__)

SERVICE = "graph"
LIFETIME_CODE = "CredentialInvalidLifetimeAsPerAppPolicy"
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"  # the tenant default's id in Graph's answers
_GUID_IN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class GraphAppWriter:
    """AppWriter for any tenant the configuration has an identity for."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self._pipelines: dict[str, GraphPipeline] = {}

    # ---- the port

    async def read_app(self, tenant_id: str, app_id: str) -> AppRegistration:
        what = f"application {app_id} in tenant {tenant_id}"
        path = f"/applications(appId={_alternate_key(app_id.lower())})?$select={APP_SELECT}"
        answer = await self._read(tenant_id, path, what)
        if not 200 <= answer.status < 300:
            raise _status_error(answer, what)
        app = _application(app_id.lower(), answer)
        if not isinstance(app, AppRegistration):
            raise ExternalError(SERVICE, f"{what}: Graph answered HTTP {answer.status} without an application")
        return app

    async def read_policy(self, tenant_id: str, app_id: str) -> LifetimePolicy:
        unreadable: list[str] = []
        assigned = await self._app_policy(tenant_id, app_id, unreadable)
        if assigned is not None:
            return LifetimePolicy(assigned, tuple(unreadable))
        what = f"defaultAppManagementPolicy of tenant {tenant_id}"
        answer = await self._read(tenant_id, POLICY_URL, what)
        if answer.status == 403:
            log.info("graph %s: not readable (no Policy.Read.ApplicationConfiguration), no cap known", what)
            return LifetimePolicy(None, (*unreadable, "the tenant's default app management policy"))
        if not 200 <= answer.status < 300:
            raise _status_error(answer, what)
        policy = _policy(answer)
        if not isinstance(policy, PasswordPolicy):
            raise ExternalError(SERVICE, f"{what}: Graph answered HTTP {answer.status} without a policy")
        return LifetimePolicy(replace(policy, policy_id=DEFAULT_POLICY_ID, scope="tenant"), tuple(unreadable))

    async def _app_policy(self, tenant_id: str, app_id: str, unreadable: list[str]) -> PasswordPolicy | None:
        """The appManagementPolicy assigned to the app, which replaces the tenant default
        for it (GET /applications/{id}/appManagementPolicies); None: none assigned, or not readable."""
        what = f"appManagementPolicies of application {app_id}"
        answer = await self._read(tenant_id, f"/applications(appId={_alternate_key(app_id.lower())})/appManagementPolicies", what)
        if answer.status in (401, 403):
            log.info("graph %s: not readable, the app's own cap is unknown", what)
            unreadable.append("the app's own app management policy")
            return None
        if not 200 <= answer.status < 300:
            raise _status_error(answer, what)
        items = answer.body.get("value") if isinstance(answer.body, dict) else None
        for item in items or []:
            if not isinstance(item, dict) or item.get("isEnabled") is False:
                continue
            restrictions = (item.get("restrictions") or {}).get("passwordCredentials") or []
            lifetime = next(
                (r for r in restrictions if isinstance(r, dict) and r.get("restrictionType") == "passwordLifetime" and r.get("state", "enabled") != "disabled"),
                None,
            )
            return PasswordPolicy(
                max_lifetime=parse_duration(lifetime.get("maxLifetime")) if lifetime else None,
                policy_id=str(item.get("id") or "") or None,
                scope="app",
            )
        return None

    async def monitor_owns(self, tenant_id: str, app_id: str) -> tuple[bool | None, str | None]:
        what = f"owners of application {app_id} in tenant {tenant_id}"
        answer = await self._read(tenant_id, f"/applications(appId={_alternate_key(app_id.lower())})/owners?$select=id", what)
        try:
            monitor = await self._pipeline(tenant_id).caller_object_id()
        # Broad on purpose: without our own id the question has no answer, nothing more.
        except Exception:
            monitor = None
        if monitor is None or not 200 <= answer.status < 300 or not isinstance(answer.body, dict):
            return None, monitor
        owners = {str(o.get("id")).lower() for o in answer.body.get("value") or [] if isinstance(o, dict)}
        if monitor in owners:
            return True, monitor
        return (None if "@odata.nextLink" in answer.body else False), monitor

    async def add_password(self, tenant_id: str, app_id: str, display_name: str, end: datetime) -> NewCredential:
        app = await self.read_app(tenant_id, app_id)
        what = f"addPassword on application {app_id} in tenant {tenant_id}"
        body = {"passwordCredential": {"displayName": display_name, "endDateTime": graph_datetime(end)}}
        try:
            answer = await self._pipeline(tenant_id).send("POST", f"/applications/{quote(app.object_id)}/addPassword", body=body, retry=False)
        # Broad on purpose: httpx, azure-identity and kiota each raise their own types;
        # _transport_error decides whether the request can have reached Graph.
        except Exception as exc:
            raise _transport_error(exc, what, lost=AnswerLost) from exc
        if 200 <= answer.status < 300:
            credential = _new_credential(answer.body, display_name, end)
            if credential is None:
                raise AnswerLost(SERVICE, f"{what}: HTTP {answer.status} without a readable credential; it may exist", status=answer.status)
            log.info("graph %s: keyId %s, ends %s", what, credential.key_id, credential.end.isoformat())
            return credential
        code, message = _error_of(answer.body)
        if answer.status == 400 and code == LIFETIME_CODE:
            named = _GUID_IN.search(message or "")
            raise LifetimeExceedsPolicy(
                SERVICE,
                f"{what}: the end date {graph_datetime(end)} is beyond the app management policy",
                status=400,
                code=code,
                policy_id=named.group(0).lower() if named else None,
            )
        if answer.status >= 500:
            raise _status_error(answer, what, kind=AnswerLost)
        raise _status_error(answer, what)

    async def remove_password(self, tenant_id: str, app_id: str, key_id: str) -> bool:
        app = await self.read_app(tenant_id, app_id)
        what = f"removePassword of keyId {key_id} on application {app_id} in tenant {tenant_id}"
        cause: Exception | None
        try:
            # Idempotent in effect: the SDK may re-send it on 429/503/504.
            answer = await self._pipeline(tenant_id).send("POST", f"/applications/{quote(app.object_id)}/removePassword", body={"keyId": key_id})
        # Broad on purpose, as in add_password; the app is read again below either way.
        except Exception as exc:
            failure, cause = _transport_error(exc, what, lost=TransientError), exc
        else:
            if 200 <= answer.status < 300:
                log.info("graph %s: removed", what)
                return True
            failure, cause = _status_error(answer, what), None
        # Removing what is already gone is success: look before failing.
        try:
            again = await self.read_app(tenant_id, app_id)
        except ExternalError:
            raise failure from cause
        if all(c.key_id.lower() != key_id.lower() for c in again.password_credentials):
            log.info("graph %s: already gone (%s)", what, failure)
            return False
        raise failure from cause

    async def aclose(self) -> None:
        pipelines = list(self._pipelines.values())
        self._pipelines.clear()
        for pipeline in pipelines:
            await pipeline.aclose()

    # ---- helpers

    def _pipeline(self, tenant_id: str) -> GraphPipeline:
        key = tenant_id.lower()
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            pipeline = self._pipelines[key] = GraphPipeline(self.config, key)
        return pipeline

    async def _read(self, tenant_id: str, path: str, what: str) -> GraphAnswer:
        pipeline = self._pipeline(tenant_id)
        try:
            pipeline.adapter()
        except ConfigError as exc:
            raise ExternalError(SERVICE, f"no Graph client for tenant {tenant_id}: {exc}") from exc
        try:
            return await pipeline.send("GET", path)
        # Broad on purpose, as in add_password.
        except Exception as exc:
            raise _transport_error(exc, what, lost=TransientError) from exc


# ---------------------------------------------------------------- translation


def graph_datetime(value: datetime) -> str:
    """Graph's Edm.DateTimeOffset in UTC, whole seconds (rounding down keeps a capped
    end date within the policy). A naive datetime is taken as UTC."""
    return stamp(value)


def _new_credential(body: Any, display_name: str, end: datetime) -> NewCredential | None:
    """addPassword's answer as our type, or None when it holds no keyId or secret.
    Nothing from the body is logged or put in an exception."""
    if not isinstance(body, dict):
        return None
    key_id, secret = body.get("keyId"), body.get("secretText")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        return None
    return NewCredential(
        key_id=key_id,
        secret=SecretValue(secret),
        start=parse_datetime(body.get("startDateTime")) or datetime.now(UTC),
        end=parse_datetime(body.get("endDateTime")) or end,
        display_name=str(body.get("displayName") or display_name),
    )


def _status_error(answer: GraphAnswer, what: str, *, kind: type[ExternalError] | None = None) -> ExternalError:
    """An HTTP error answer as our exception: Graph's code and the first line of its
    message (ids and reasons, never a value), by the one translation."""
    code, message = _error_of(answer.body)
    return status_error(SERVICE, what, answer.status, code, message, retry_after=answer.retry_after, kind=kind)


def _transport_error(exc: BaseException, what: str, *, lost: type[TransientError]) -> ExternalError:
    """An exception instead of an answer. Entra refusing our identity is AccessDenied;
    a failed token request or connection means nothing was sent (TransientError);
    anything else may have happened after the request left: ``lost``."""
    if isinstance(exc, AzureError):  # our token request: refused by Entra, or it failed (nothing was sent to Graph)
        return azure_error(SERVICE, what, exc, "Entra")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransientError(SERVICE, _detail(f"{what}: no connection to Graph ({type(exc).__name__})", str(exc)))
    return lost(SERVICE, _detail(f"{what}: no answer from Graph ({type(exc).__name__})", str(exc)))
