"""Who may call the admin API: an Entra ID bearer token, checked here in code.

The function key only says "someone with the key"; the token says who, and
with which app role. ``TokenValidator.validate`` checks the signature against
the tenant's published keys (RS256 only), the issuer, the audience, expiry and
not-before (with a small clock skew), then hands back a ``Principal``;
``require`` checks the role. Every refusal is an ``AuthError`` with the HTTP
status to answer (401 for the token, 403 for the role, 503 if the signing keys
cannot be fetched at all); ``json_error`` turns it into the answer.

    validator = TokenValidator(AdminAuthSettings(tenant_id, "api://sso-monitor-admin", authority))
    try:
        principal = validator.validate(req.headers.get("Authorization"), required_role=ADMIN_ROLE)
    except AuthError as err:
        return json_error(err.status, err.code, err.message)
    log.info("rotate asked by %s", principal.subject)

The admin API's app registration must issue v2.0 tokens
(``accessTokenAcceptedVersion: 2`` in its manifest): the v1.0 issuer
(``https://sts.windows.net/{tenant}/``) is not accepted. v2.0 tokens carry the
API's client id as ``aud``, so give ``client_id`` as well as the app id URI.

Keys: the OpenID configuration (issuer, jwks_uri) and the JWKS are fetched once
and kept for ``jwks_ttl_seconds``. A token whose ``kid`` is not in the cached
set makes one JWKS refetch (Entra rolls its keys), but only once per
``refetch_interval_seconds`` whatever the token, so garbage tokens cannot make
us hammer the login endpoint. If a refresh fails, the old keys stay in use.

Nothing here ever puts a token, or any part of one, in a message or a log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from sso_monitor.functions.auth import ALGORITHM, MAX_TOKEN_LENGTH, AdminAuthSettings, AuthError, Principal, require

log = logging.getLogger("sso_monitor.functions.auth")  # the name operators filter on


@dataclass
class _SigningKeys:
    issuer: str
    jwks_uri: str
    keys: dict[str, jwt.PyJWK]  # kid -> key
    expires_at: float  # monotonic


class TokenValidator:
    """Checks admin API bearer tokens against the tenant's published signing keys.

    One per process: it caches the keys, and is safe to share between threads.
    ``monotonic`` is the clock for the cache (tests move it); token times are
    checked by PyJWT against the wall clock.
    """

    def __init__(
        self,
        settings: AdminAuthSettings,
        *,
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.audiences:
            raise ValueError("the admin API needs an audience")
        self.settings = settings
        self._session = session or _session(settings)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cache: _SigningKeys | None = None
        self._last_forced_refetch: float | None = None

    # ---- the check

    def validate(self, authorization_header: str | None, required_role: str | None = None) -> Principal:
        """The caller behind ``Authorization: Bearer <token>``, or AuthError."""
        try:
            principal = self._principal(_bearer_token(authorization_header))
            return require(principal, required_role) if required_role else principal
        except AuthError as err:
            log.info("admin API: request refused (%s %s)", err.status, err.code)
            raise

    def _principal(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(401, "invalid_token", "the bearer token is not a well-formed JWT") from None
        # Pinned before anything else: "none", HS256 with the public key as secret, etc. never get further.
        if header.get("alg") != ALGORITHM:
            raise AuthError(401, "unsupported_algorithm", f"the token must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError(401, "invalid_token", "the token names no signing key (kid)")
        issuer, key = self._key(kid)
        claims = self._decode(token, key, issuer)
        return _principal_from(claims)

    def _decode(self, token: str, key: jwt.PyJWK, issuer: str) -> dict[str, Any]:
        settings = self.settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=settings.audiences,
                issuer=issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        # PyJWT's own messages are not passed on: ours are fixed texts, so nothing from the token leaks.
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "token_expired", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError(401, "token_not_yet_valid", "the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise AuthError(401, "invalid_audience", "the token is not meant for this API (audience)") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, "invalid_issuer", "the token was not issued by the expected tenant") from None
        except jwt.InvalidSignatureError:
            raise AuthError(401, "invalid_signature", "the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as err:
            raise AuthError(401, "invalid_token", f"the token lacks the {err.claim} claim") from None
        except jwt.PyJWTError:
            raise AuthError(401, "invalid_token", "the token could not be validated") from None

    # ---- keys

    def _key(self, kid: str) -> tuple[str, jwt.PyJWK]:
        """(expected issuer, the key for ``kid``), refreshing the cache as the policy allows."""
        with self._lock:  # one fetch at a time; the others wait for its result
            cache = self._fresh_cache()
            key = cache.keys.get(kid)
            if key is None and self._may_refetch():
                log.info("admin API: token signed with an unknown key id; refetching the JWKS")
                cache = self._refetch_keys(cache)
                key = cache.keys.get(kid)
            if key is None:
                raise AuthError(401, "unknown_signing_key", "the token is signed with a key the tenant does not publish")
            return cache.issuer, key

    def _fresh_cache(self) -> _SigningKeys:
        now = self._monotonic()
        cache = self._cache
        if cache is not None and now < cache.expires_at:
            return cache
        try:
            self._cache = self._fetch_all(now)
        except _FetchFailed as err:
            if cache is None:
                log.warning("admin API: cannot fetch the token signing keys: %s", err)
                raise AuthError(503, "auth_unavailable", "the token signing keys cannot be fetched; try again later") from None
            log.warning("admin API: refreshing the token signing keys failed (%s); keeping the old ones", err)
            cache.expires_at = now + self.settings.refetch_interval_seconds  # retry later, not per request
        assert self._cache is not None
        return self._cache

    def _may_refetch(self) -> bool:
        now = self._monotonic()
        last = self._last_forced_refetch
        if last is not None and now - last < self.settings.refetch_interval_seconds:
            return False
        self._last_forced_refetch = now
        return True

    def _refetch_keys(self, cache: _SigningKeys) -> _SigningKeys:
        try:
            cache.keys = self._fetch_keys(cache.jwks_uri)
        except _FetchFailed as err:
            log.warning("admin API: refetching the JWKS failed (%s); keeping the old keys", err)
        return cache

    def _fetch_all(self, now: float) -> _SigningKeys:
        document = self._get_json(self.settings.discovery_url)
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if not isinstance(issuer, str) or not issuer or not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise _FetchFailed(f"{self.settings.discovery_url}: no issuer or https jwks_uri in the OpenID configuration")
        keys = self._fetch_keys(jwks_uri)
        log.info("admin API: loaded %d signing key(s) for issuer %s", len(keys), issuer)
        return _SigningKeys(issuer=issuer, jwks_uri=jwks_uri, keys=keys, expires_at=now + self.settings.jwks_ttl_seconds)

    def _fetch_keys(self, jwks_uri: str) -> dict[str, jwt.PyJWK]:
        document = self._get_json(jwks_uri)
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise _FetchFailed(f"{jwks_uri}: no keys in the JWKS")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig" or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry, algorithm=ALGORITHM)
            except jwt.PyJWTError:
                log.warning("admin API: skipping unusable signing key %s", entry.get("kid"))
        return keys

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._session.get(url, timeout=self.settings.timeout_seconds)
        except requests.RequestException as err:
            raise _FetchFailed(f"{url}: {type(err).__name__}") from err
        if response.status_code != 200:
            raise _FetchFailed(f"{url}: HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise _FetchFailed(f"{url}: not JSON") from None
        if not isinstance(document, dict):
            raise _FetchFailed(f"{url}: not a JSON object")
        return document


class _FetchFailed(Exception):
    """Discovery or the JWKS could not be fetched (internal; callers see AuthError)."""


def _bearer_token(authorization_header: str | None) -> str:
    scheme, _, token = (authorization_header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError(401, "missing_token", "send an Entra ID access token: Authorization: Bearer <token>")
    token = token.strip()
    if not token or " " in token or len(token) > MAX_TOKEN_LENGTH:
        raise AuthError(401, "invalid_token", "the bearer token is not a well-formed JWT")
    return token


def _principal_from(claims: Mapping[str, Any]) -> Principal:
    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) and value else None

    roles = claims.get("roles")
    if not isinstance(roles, list):
        roles = []
    return Principal(
        subject=str(claims["sub"]),
        object_id=text("oid"),
        app_id=text("azp") or text("appid"),
        tenant_id=text("tid"),
        roles=tuple(r for r in roles if isinstance(r, str)),
        name=text("name"),
        upn=text("preferred_username") or text("upn"),
    )


def _session(settings: AdminAuthSettings) -> requests.Session:
    from sso_monitor.wiring import http_session  # the composition root builds HTTP clients

    return http_session(settings.ca_bundle, trust_env=settings.use_env_proxies)
