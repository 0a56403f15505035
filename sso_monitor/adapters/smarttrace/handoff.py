"""The http handoff: push a new client secret to SmartTrace (docs/handoff.md).

``HttpSecretPusher`` sends the contract's request (docs/sandbox/smarttrace.md,
"The integration-settings contract") with requests, through
``net.session_with_host_map`` (the sandbox's host map and CA, the configured
proxy setting), in a bounded worker pool:

    PUT {apiBase}/integrations/{facility}/azure-ad/client-secret
    Authorization: Bearer <facility API token, read from Key Vault>
    {"clientSecret", "keyId", "applicationId", "tenantId", "expiresAt"}

How answers map:

- 2xx whose ``keyId`` is ours: done. SmartTrace holds the new secret;
- 2xx without it (not JSON, no keyId): TransientError, unconfirmed; the push
  is idempotent, so it may be repeated;
- 2xx naming another keyId: HandoffRejected ``key_id_mismatch``;
- a redirect: HandoffRejected ``redirect``. Redirects are never followed: the
  secret and the token go to the configured URL only;
- 408, 429 (Throttled), 5xx, a timeout or a dropped connection: TransientError;
- any other 4xx: HandoffRejected with SmartTrace's ``error.code`` (and its
  ``reason``, an AADSTS code for ``secret_rejected``, in the message);
- a TLS failure, or a URL that is not https: ExternalError. The secret is
  never sent over plain HTTP.

The request body and the token are never logged, and every text kept from an
answer or an exception is scrubbed of both, although the contract says
SmartTrace's answers never carry them.
"""

from __future__ import annotations

import functools
import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from sso_monitor import redact
from sso_monitor.adapters.http import session_with_host_map
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import ExternalError, HandoffRejected, Throttled, TransientError
from sso_monitor.models import SecretValue, stamp

log = logging.getLogger(__name__)

SERVICE = "smarttrace"
_DETAIL_LIMIT = 240


class HttpSecretPusher:
    """SecretPusher over HTTPS with one pooled requests session."""

    def __init__(self, config: MonitorConfig) -> None:
        network = config.network
        self.timeout = network.timeout_seconds
        self.connect_timeout = network.connect_timeout
        self._session = session_with_host_map(dict(network.host_map), network.ca_bundle, trust_env=network.use_env_proxies, follow_redirects=False)
        self._pool = BlockingPool(network.concurrency, "handoff")

    async def push(
        self, *, url: str, method: str, token: SecretValue, facility: str, tenant_id: str, app_id: str, key_id: str, secret: SecretValue, expires: datetime
    ) -> None:
        call = functools.partial(
            self._push,
            url=url,
            method=method,
            token=token,
            facility=facility,
            tenant_id=tenant_id,
            app_id=app_id,
            key_id=key_id,
            secret=secret,
            expires=expires,
        )
        await self._pool.run(call)

    async def held_key_id(self, *, url: str, token: SecretValue, facility: str) -> str | None:
        return await self._pool.run(functools.partial(self._held, url=url, token=token, facility=facility))

    async def aclose(self) -> None:
        self._pool.close()
        self._session.close()

    # ---- blocking parts, run in a worker thread

    def _held(self, *, url: str, token: SecretValue, facility: str) -> str | None:
        """GET on the handoff URL: which keyId SmartTrace says it holds (docs/handoff.md)."""
        what = f"reading which keyId {facility}'s SmartTrace holds"
        if urlsplit(url).scheme.lower() != "https":
            raise ExternalError(SERVICE, f"{what}: the handoff URL must be https")
        failure: ExternalError | None = None
        try:
            response = self._session.get(url, headers=_headers(token), timeout=(self.connect_timeout, self.timeout), allow_redirects=False)
        except requests.RequestException as exc:
            failure = TransientError(SERVICE, _scrub(f"{what}: no answer ({type(exc).__name__})", token))
        if failure is not None:
            raise failure
        with response:
            body = _json(response)
            if response.status_code != 200 or not isinstance(body, dict):
                raise ExternalError(SERVICE, f"{what}: SmartTrace answered HTTP {response.status_code}", status=response.status_code)
            held = body.get("keyId")
            return held.lower() if isinstance(held, str) and held else None

    def _push(
        self, *, url: str, method: str, token: SecretValue, facility: str, tenant_id: str, app_id: str, key_id: str, secret: SecretValue, expires: datetime
    ) -> None:
        what = f"handoff of keyId {key_id} to {facility}"
        if urlsplit(url).scheme.lower() != "https":
            raise ExternalError(SERVICE, f"{what}: the handoff URL must be https, not {urlsplit(url).scheme or 'relative'}")
        failure: ExternalError | None = None
        try:
            response = self._session.request(
                method.upper(),
                url,
                json=_body(secret, key_id, app_id, tenant_id, expires),
                headers=_headers(token),
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            failure = ExternalError(SERVICE, _scrub(f"{what}: TLS failure ({type(exc).__name__}): {exc}", secret, token))
        except requests.RequestException as exc:
            failure = TransientError(SERVICE, _scrub(f"{what}: no answer ({type(exc).__name__}): {exc}", secret, token))
        if failure is not None:
            # Raised outside the handler, so the requests exception is neither the cause
            # nor the context: it holds the prepared request, body and token included.
            raise failure
        with response:
            self._check(response, what, key_id, secret, token)

    def _check(self, response: requests.Response, what: str, key_id: str, secret: SecretValue, token: SecretValue) -> None:
        status = response.status_code
        body = _json(response)
        log.info("%s: HTTP %s", what, status)
        if 200 <= status < 300:
            answered = body.get("keyId") if isinstance(body, dict) else None
            if isinstance(answered, str) and answered.lower() == key_id.lower():
                return
            if isinstance(answered, str):
                raise HandoffRejected(SERVICE, f"{what}: SmartTrace answered HTTP {status} for another keyId", status=status, code="key_id_mismatch")
            raise TransientError(SERVICE, f"{what}: SmartTrace answered HTTP {status} without confirming the keyId", status=status)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        code = _error_code(error)
        detail = _scrub(_describe(what, status, error), secret, token)
        if 300 <= status < 400:
            raise HandoffRejected(SERVICE, f"{what}: SmartTrace answered a redirect (HTTP {status}), not followed", status=status, code="redirect")
        if status == 429:
            raise Throttled(SERVICE, detail, retry_after=_seconds(response.headers.get("Retry-After")), status=status, code=code)
        if status == 408 or status >= 500:
            raise TransientError(SERVICE, detail, status=status, code=code)
        raise HandoffRejected(SERVICE, detail, status=status, code=code or f"http_{status}")


def _body(secret: SecretValue, key_id: str, app_id: str, tenant_id: str, expires: datetime) -> dict[str, str]:
    """The contract's body. Built in the call, so no frame of ours keeps the value in a local."""
    return {"clientSecret": secret.reveal(), "keyId": key_id, "applicationId": app_id, "tenantId": tenant_id, "expiresAt": _iso(expires)}


def _headers(token: SecretValue) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}


def _iso(value: datetime) -> str:
    return stamp(value)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: left to the caller's own backoff


def _json(response: requests.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


# SmartTrace's error fields are passed on only when they have the strict shape of a code
# (snake_case), an AADSTS reason or a field name: its free text may echo what it was
# sent (the secret, or most of it), so it never is.
_FIELD_SHAPES = {
    "code": re.compile(r"^[a-z][a-z0-9_]{1,39}$"),
    "reason": re.compile(r"^(?:AADSTS\d{4,8}|[a-z][a-z0-9_]{1,39})$"),
    "target": re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$"),
}


def _token_field(error: dict[str, Any], key: str) -> str | None:
    value = error.get(key)
    return value if isinstance(value, str) and _FIELD_SHAPES[key].match(value) else None


def _error_code(error: dict[str, Any]) -> str | None:
    return _token_field(error, "code")


def _describe(what: str, status: int, error: dict[str, Any]) -> str:
    parts = [f"{what}: SmartTrace answered HTTP {status}"]
    for key, shown in (("code", "{}"), ("reason", "({})"), ("target", "on {}")):
        field = _token_field(error, key)
        if field:
            parts.append(shown.format(field))
    return " ".join(parts)


def _scrub(text: str, *secrets: SecretValue) -> str:
    """Fragments of any secret this process holds (these ``secrets`` among them) masked."""
    text = redact.scrub(text)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"
