"""The one translator from the SDKs' errors to the monitor's exception tree.

Every adapter on an Azure SDK (Key Vault, Blob, Queue and Table storage, and the
token requests of azure-identity that Graph's pipeline makes) raises what
``azure_error`` makes of the SDK's exception, so the same failure reads and
classifies the same everywhere:

| the SDK said | ours |
|---|---|
| ResourceNotFoundError (404) | NotFound |
| ClientAuthenticationError with 401/403 or an AADSTS code | AccessDenied ("refused the monitor's identity") |
| ClientAuthenticationError otherwise (the token request failed) | TransientError |
| HTTP 403 | AccessDenied |
| HTTP 429, or 503 ServerBusy (Azure Storage's throttling) | Throttled, with Retry-After |
| HTTP 5xx | TransientError |
| ServiceRequestError / ServiceResponseError (no answer) | TransientError |
| anything else | ExternalError |

Messages keep ids, status codes, the service's error code and the first line of
its message (shortened), never a body or a value; every text is scrubbed of any
secret fragment as well (redact.py). HTTP answers that arrive as answers (Graph's
JSON batches, SmartTrace) go through ``status_error``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from sso_monitor import redact
from sso_monitor.errors import AccessDenied, ExternalError, NotFound, Throttled, TransientError

DETAIL_LIMIT = 240
AADSTS = re.compile(r"AADSTS\d+")


@dataclass(frozen=True)
class Described:
    """An SDK error, classified: the exception type to raise and what to say."""

    kind: type[ExternalError]
    detail: str  # e.g. "HTTP 403 Forbidden: Caller is not authorized ..."
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None


def describe(exc: AzureError, party: str = "the service") -> Described:
    """What an azure-core error means for us (see the table above); ``party`` names the
    service in the texts ("the vault refused the monitor's identity")."""
    if isinstance(exc, ClientAuthenticationError):
        # Raised by the service (401: token refused) or by our own credential. Only an
        # answer from Entra or the service is a denial; "HTTP Error: 503" or a dropped
        # connection while fetching the token is a failure to retry.
        status = exc.status_code or (exc.response.status_code if exc.response is not None else None)
        refusal = AADSTS.search(str(exc.message or ""))
        if status in (401, 403) or refusal:
            found = refusal.group(0) if refusal else None
            return Described(AccessDenied, shorten(f"{party} refused the monitor's identity", _first_line(exc), found), status, found)
        return Described(TransientError, shorten(f"getting a token for {party} failed", _first_line(exc)), status)
    if isinstance(exc, ResourceNotFoundError):
        return Described(NotFound, shorten(f"HTTP 404 {error_code(exc) or 'NotFound'}", _first_line(exc)), 404, error_code(exc))
    if isinstance(exc, HttpResponseError) and exc.status_code:
        status, code = exc.status_code, error_code(exc)
        detail = shorten(f"HTTP {status} {code or ''}".rstrip(), _first_line(exc))
        if status == 403:
            return Described(AccessDenied, detail, status, code)
        if status == 429 or (status == 503 and code == "ServerBusy"):
            return Described(Throttled, detail, status, code, retry_after(exc))
        if status >= 500:
            return Described(TransientError, detail, status, code)
        return Described(ExternalError, detail, status, code)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return Described(TransientError, shorten(type(exc).__name__, _first_line(exc)))
    return Described(ExternalError, shorten(type(exc).__name__, _first_line(exc)))


def azure_error(service: str, what: str, exc: AzureError, party: str = "the service") -> ExternalError:
    """``exc`` as our exception: ``{service}: {what}: {detail}``. Raise it ``from`` exc,
    except where the SDK error holds a request body with a value (Key Vault's set)."""
    found = describe(exc, party)
    return _make(found.kind, service, f"{what}: {found.detail}", found.status, found.code, found.retry_after)


def status_error(
    service: str, what: str, status: int, code: str | None, message: str, *, retry_after: float | None = None, kind: type[ExternalError] | None = None
) -> ExternalError:
    """An HTTP error answer as our exception: the service's code and the first line of its message."""
    text = shorten(f"{what}: HTTP {status} {code or ''}".rstrip(), message.strip().splitlines()[0] if message.strip() else "")
    if kind is None:
        kind = (
            NotFound
            if status == 404
            else AccessDenied
            if status in (401, 403)
            else Throttled
            if status == 429
            else TransientError
            if status >= 500
            else ExternalError
        )
    return _make(kind, service, text, status, code, retry_after)


def _make(kind: type[ExternalError], service: str, message: str, status: int | None, code: str | None, retry: float | None) -> ExternalError:
    if kind is Throttled:
        return Throttled(service, message, retry_after=retry, status=status, code=code)
    return kind(service, message, status=status, code=code)


def error_code(exc: HttpResponseError) -> str | None:
    """The service's error code as a plain string (the SDKs give a str, an enum or an ODataV4Format)."""
    code = getattr(exc, "error_code", None)
    if code is None:
        code = getattr(getattr(exc, "error", None), "code", None)
    return None if code is None else str(getattr(code, "value", code))


def inner_code(exc: HttpResponseError) -> str | None:
    """Key Vault's innererror code (``SecretDisabled``, ``ForbiddenByRbac``), the precise one."""
    inner = getattr(getattr(exc, "error", None), "innererror", None)
    return inner.get("code") if isinstance(inner, dict) else None


def retry_after(exc: HttpResponseError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _first_line(exc: AzureError) -> str:
    message = getattr(getattr(exc, "error", None), "message", None) or str(getattr(exc, "message", None) or exc)
    return message.strip().splitlines()[0] if message.strip() else ""


def shorten(prefix: str, first: str, code: str | None = None) -> str:
    """``prefix: first line`` within DETAIL_LIMIT characters, scrubbed of secrets."""
    if code and code not in first:
        first = f"{code}: {first}" if first else code
    text = f"{prefix}: {first}" if first and first not in prefix else prefix
    text = redact.scrub(" ".join(text.split()))
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"
