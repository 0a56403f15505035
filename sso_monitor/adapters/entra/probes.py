"""Probes: does a client secret work at Entra, and does a URL answer over valid TLS.

``EntraTokenProbe`` asks Entra for a client-credentials token with the secret.
A new MSAL application (azure-identity's engine) per probe, on purpose:
MSAL caches tokens and, for some error answers, the failure itself, per
instance (docs/decisions.md), so a reused one could answer from memory:
"works" for a secret removed since, or "rejected" for one that has finished
propagating. The secret goes only to Entra's token endpoint; every text kept
from an error is scrubbed of it anyway.

How an answer maps (``classify_auth_error``):

- a token: WORKS;
- Entra refused the secret itself: REJECTED, only for the codes in
  ``SECRET_REJECTION_CODES`` (7000215 wrong, or not yet propagated; 7000222
  expired). Only these say "this secret will not do": a rotation fixes them;
- Entra refused with any other AADSTS code: REFUSED with that code (700016 the
  app is not in the tenant, 7000112 app disabled, 7000229 no service
  principal, 53003 Conditional Access for workload identities, and codes we do
  not know). These are about the app or the tenant, not the secret: a new
  secret would be refused the same way, so nothing here may lead to a rotation
  (the check's table in checks.py says what each means and how to fix it);
- the codes in ``PROBE_FAILURE_CODES`` are ERROR: they say our request or our
  settings are wrong (the tenant id or cloud, the scope) or Entra had a
  transient fault, so they tell nothing about the secret. AADSTS90002 (tenant
  not found) is one of them: the tenant id comes from our configuration, and
  the Graph checks of the same tenant report that problem;
- no code (a 5xx, a timeout, a dropped connection, a TLS failure): ERROR.

``UrlProbe`` GETs facility pages and callbacks with one shared requests
session that honours the sandbox host map and CA. It follows up to three
redirects itself, each to an https URL (a browser following the facility's
redirects would end where we end); a redirect to http is a TLS_ERROR, more
than three an HTTP_ERROR. Final status 2xx/3xx is OK, 4xx/5xx HTTP_ERROR.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import ssl
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import msal
import msal.exceptions
import requests

from sso_monitor import redact
from sso_monitor.adapters.entra.identity import authority_options
from sso_monitor.adapters.http import session_with_host_map
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.config import MonitorConfig
from sso_monitor.models import ProbeOutcome, Reachability, SecretProbe, SecretValue, UrlCheck

log = logging.getLogger(__name__)

_AADSTS = re.compile(r"AADSTS\d+")
_HTTP_STATUS = re.compile(r"HTTP Error: (\d{3})")
_DETAIL_LIMIT = 240

# Entra's codes for "this client secret is not valid" (reference-error-codes.md:
# InvalidClientSecretExpiredKeysProvided 7000222; invalid client secret 7000215).
SECRET_REJECTION_CODES = frozenset({"AADSTS7000215", "AADSTS7000222"})

# AADSTS codes that mean the probe could not test the secret, not that Entra refused it.
PROBE_FAILURE_CODES = {
    "AADSTS90002": "tenant not found (wrong tenant id or cloud)",
    "AADSTS900023": "the tenant id is not valid",
    "AADSTS500011": "the scope's resource is not in the tenant",
    "AADSTS1002012": "the scope is not valid for client credentials",
    "AADSTS900144": "the request missed a parameter",
    "AADSTS70003": "the grant type is not supported",
    "AADSTS7000218": "no client secret was sent",
    "AADSTS50196": "Entra detected a request loop (throttled)",
    "AADSTS90033": "a transient Entra error",
    "AADSTS90024": "a transient Entra error (request budget exceeded)",
}

MAX_REDIRECTS = 3


def scrub(text: str, secret: SecretValue | str | None) -> str:
    """``text`` with the secret, and every run of 8+ characters of any secret this
    process holds, replaced by ``***``."""
    value = secret.reveal() if isinstance(secret, SecretValue) else secret
    return redact.scrub(text.replace(value, "***") if value else text)


def _shorten(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= _DETAIL_LIMIT else first[: _DETAIL_LIMIT - 1] + "…"


def classify_auth_error(message: str) -> SecretProbe:
    """Map the text of azure-identity's ClientAuthenticationError to a probe result.

    The caller scrubs ``message`` of the secret first; this function keeps a short form of it.
    """
    detail = _shorten(message.removeprefix("Authentication failed: "))
    status = _HTTP_STATUS.search(message)
    match = _AADSTS.search(message)
    if status is not None and int(status.group(1)) >= 500:
        return SecretProbe(ProbeOutcome.ERROR, code=match.group(0) if match else None, detail=f"Entra answered HTTP {status.group(1)}")
    if match is None:
        return SecretProbe(ProbeOutcome.ERROR, detail=detail)
    code = match.group(0)
    if code in PROBE_FAILURE_CODES:
        return SecretProbe(ProbeOutcome.ERROR, code=code, detail=f"{PROBE_FAILURE_CODES[code]}: {detail}")
    if code in SECRET_REJECTION_CODES:
        return SecretProbe(ProbeOutcome.REJECTED, code=code, detail=detail)
    return SecretProbe(ProbeOutcome.REFUSED, code=code, detail=detail)


class EntraTokenProbe:
    """TokenProbe: a client-credentials token request at ``config.cloud.authority``.

    Built on MSAL, the library azure-identity's credentials run on, used
    directly for two reasons: a new application object (and an empty token
    cache) per probe, so no answer comes from memory; and one shared
    ``http_cache`` for the tenant's OpenID metadata, so a probe costs one
    request, not two. Connections to Entra are pooled across probes.
    ``retry_total`` bounds retries of a dropped connection or a 5xx (the
    rotation's verify step has its own loop, so a probe need not insist).
    """

    def __init__(self, config: MonitorConfig, *, retry_total: int = 2, retry_backoff_factor: float = 0.8) -> None:
        options = authority_options(config)
        self.scope = config.cloud.graph_scope
        self.authority = options["authority"].rstrip("/")
        self.instance_discovery = not options.get("disable_instance_discovery", False)
        self.timeout = config.network.timeout_seconds
        self.connect_timeout = config.network.connect_timeout
        self.retry_total = retry_total
        self.retry_backoff_factor = retry_backoff_factor
        self._pool = BlockingPool(config.network.concurrency, "token-probe")
        # No redirect is followed: MSAL would re-post the client secret to the Location.
        self._session = session_with_host_map({}, config.network.ca_bundle, trust_env=config.network.use_env_proxies, follow_redirects=False)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(10, config.network.concurrency))
        self._session.mount("https://", adapter)
        self._http_cache: dict[Any, Any] = {}  # MSAL's: discovery answers (and its own throttling memory)

    async def probe(self, tenant_id: str, app_id: str, secret: SecretValue) -> SecretProbe:
        return await self._pool.run(self.probe_blocking, tenant_id, app_id, secret)

    async def aclose(self) -> None:
        self._pool.close()
        self._session.close()

    def probe_blocking(self, tenant_id: str, app_id: str, secret: SecretValue) -> SecretProbe:
        """``probe`` in the calling thread."""
        if not secret.reveal():
            return SecretProbe(ProbeOutcome.REJECTED, detail="the secret is empty")
        for attempt in range(self.retry_total + 1):
            result = self._attempt(tenant_id, app_id, secret)
            transient = result.outcome is ProbeOutcome.ERROR and result.code is None
            if not transient or attempt == self.retry_total:
                break
            time.sleep(self.retry_backoff_factor * (2**attempt))
        log.info("token probe app %s tenant %s: %s %s", app_id, tenant_id, result.outcome.value, result.code or "")
        return result

    def _attempt(self, tenant_id: str, app_id: str, secret: SecretValue) -> SecretProbe:
        try:
            application = msal.ConfidentialClientApplication(
                app_id,
                client_credential=secret.reveal(),
                authority=f"{self.authority}/{tenant_id}",
                http_client=self._session,
                token_cache=msal.TokenCache(),
                http_cache=self._http_cache,
                instance_discovery=self.instance_discovery,
                timeout=(self.connect_timeout, self.timeout),
            )
            answer = application.acquire_token_for_client(scopes=[self.scope])
        except requests.RequestException as exc:
            return SecretProbe(ProbeOutcome.ERROR, detail=_shorten(scrub(f"{type(exc).__name__}: {exc}", secret)))
        except msal.exceptions.MsalError as exc:  # e.g. "HTTP Error: 503" fetching the tenant's metadata
            return classify_auth_error(scrub(str(exc), secret))
        except ValueError as exc:  # MSAL: no tenant metadata, or an answer that was not JSON
            return SecretProbe(ProbeOutcome.ERROR, detail=_shorten(scrub(f"{type(exc).__name__}: {exc}", secret)))
        if "access_token" in answer:
            return SecretProbe(ProbeOutcome.WORKS)
        message = answer.get("error_description") or f"Entra answered {answer.get('error', 'an error')}"
        return classify_auth_error(scrub(message, secret))


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Each check stands alone: a cookie from one page never goes to the next."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


class UrlProbe:
    """UrlProber with one shared requests session (host map and CA from the config)."""

    def __init__(self, config: MonitorConfig) -> None:
        self.timeout = config.network.timeout_seconds
        self.connect_timeout = config.network.connect_timeout
        workers = 2 * config.network.concurrency  # two pages per app
        # One kept connection per worker, whatever the host: most pages are on the one API host.
        self._session = session_with_host_map(
            dict(config.network.host_map), config.network.ca_bundle, trust_env=config.network.use_env_proxies, pool_maxsize=workers
        )
        self._session.cookies.set_policy(_NoCookies())
        self._pool = BlockingPool(workers, "url-probe")

    async def check(self, url: str) -> UrlCheck:
        return await self._pool.run(self.check_blocking, url)

    async def aclose(self) -> None:
        self._pool.close()
        self._session.close()

    def check_blocking(self, url: str) -> UrlCheck:
        """``check`` in the calling thread."""
        current = url
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                with self._session.get(current, allow_redirects=False, stream=True, timeout=(self.connect_timeout, self.timeout)) as response:
                    status = response.status_code
                    location = response.headers.get("Location") if response.is_redirect else None
                    _drain(response)
                if location is None:
                    outcome = Reachability.OK if status < 400 else Reachability.HTTP_ERROR
                    detail = "" if current == url else f"after redirects, at {current}"
                    return UrlCheck(url, outcome, status=status, detail=detail)
                current = urljoin(current, location)
                if urlsplit(current).scheme.lower() != "https":
                    return UrlCheck(url, Reachability.TLS_ERROR, status=status, detail=f"redirects to a non-https URL: {current}")
            return UrlCheck(url, Reachability.HTTP_ERROR, status=status, detail=f"more than {MAX_REDIRECTS} redirects")
        except requests.exceptions.SSLError as exc:
            return UrlCheck(url, Reachability.TLS_ERROR, detail=_reason(exc))
        except requests.exceptions.Timeout:
            return UrlCheck(url, Reachability.UNREACHABLE, detail=f"no answer within {self.timeout:g} s")
        except requests.exceptions.RequestException as exc:  # connection refused, DNS, bad URL
            return UrlCheck(url, Reachability.UNREACHABLE, detail=_reason(exc))
        except (OSError, ValueError) as exc:  # the port promises never to raise; this is a failed check
            return UrlCheck(url, Reachability.UNREACHABLE, detail=_shorten(f"{type(exc).__name__}: {exc}"))


DRAIN_LIMIT = 64 * 1024  # a page read whole up to this keeps its connection for the next probe


def _drain(response: requests.Response) -> None:
    """Read a small body to its end, so that closing the response returns the connection
    to the pool (a response closed unread drops it: a new TLS handshake per probe). A body
    past DRAIN_LIMIT is left unread and its connection dropped: a probe reads no more. The
    status is the answer: a body that fails half-way changes nothing but the reuse."""
    read = 0
    try:
        for chunk in response.iter_content(chunk_size=16 * 1024):
            read += len(chunk)
            if read > DRAIN_LIMIT:
                return
    except (requests.exceptions.RequestException, OSError, ValueError):
        return


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, shortly (urllib3 nests them in args)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    deepest: BaseException = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        deepest = current
        if isinstance(current, ssl.SSLCertVerificationError):
            return _shorten(f"certificate verify failed: {current.verify_message}")
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = inner or current.__cause__ or current.__context__
    text = str(deepest) or type(deepest).__name__
    return _shorten(text)
