"""Signing and checking the sandbox's access tokens (RS256, published in a JWKS).

The sandbox's Entra issues these to clients; Graph and Key Vault accept them;
tests of the admin API mint their own with ``TokenIssuer.mint`` (including
deliberately broken ones: wrong key, expired, alg none).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# Generating an RSA key takes about 50 ms, and the test suite starts a sandbox (two
# keys) per test: keys come round-robin from a small per-process pool instead. Any
# few keys taken in a row are distinct, so within one sandbox the trusted key, the
# untrusted one and a rolled-over one never coincide; each gets its own kid.
_POOL_SIZE = 6
_pool: list[Any] = []
_taken = itertools.count()
_pool_lock = threading.Lock()


def _private_key() -> Any:
    with _pool_lock:
        index = next(_taken) % _POOL_SIZE
        while len(_pool) <= index:
            _pool.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _pool[index]


class SigningKey:
    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        self.private_key = _private_key()

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


class TokenError(Exception):
    """A bearer token the sandbox does not accept; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenIssuer:
    """The sandbox's token signer. ``issuer_base`` is the authority URL (no tenant)."""

    def __init__(self, issuer_base: str = "") -> None:
        self.issuer_base = issuer_base.rstrip("/")
        self.key = SigningKey()
        self.untrusted_key = SigningKey()  # signs tokens whose kid is not in the JWKS

    def issuer(self, tenant_id: str) -> str:
        return f"{self.issuer_base}/{tenant_id}/v2.0"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk()]}

    def mint(
        self,
        *,
        tenant_id: str,
        audience: str,
        now: datetime,
        subject: str | None = None,
        app_id: str | None = None,
        roles: list[str] | None = None,
        lifetime: timedelta = timedelta(hours=1),
        not_before: datetime | None = None,
        issuer: str | None = None,
        extra: dict[str, Any] | None = None,
        key: str = "trusted",
        algorithm: str = "RS256",
    ) -> str:
        """Sign a token. ``key`` is trusted, untrusted (valid signature, kid not published)
        or tampered (signature broken); ``algorithm`` may be ``none``."""
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer or self.issuer(tenant_id),
            "iat": int(now.timestamp()),
            "nbf": int((not_before or now).timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "tid": tenant_id,
            "sub": subject or app_id or str(uuid.uuid4()),
            "oid": subject or str(uuid.uuid4()),
            "ver": "2.0",
            "uti": uuid.uuid4().hex,
        }
        if app_id:
            claims["azp"] = app_id
            claims["appid"] = app_id
        if roles:
            claims["roles"] = list(roles)
        claims.update(extra or {})
        if algorithm == "none":
            header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
            payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
            return f"{header.decode()}.{payload.decode()}."
        signer = self.untrusted_key if key == "untrusted" else self.key
        token = jwt.encode(claims, signer.private_key, algorithm=algorithm, headers={"kid": signer.kid})
        if key == "tampered":
            head, body, signature = token.split(".")
            flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
            token = f"{head}.{body}.{flipped}"
        return token

    def validate(self, token: str, *, audiences: list[str], now: datetime, leeway: int = 60) -> dict[str, Any]:
        """Check a bearer token the way a Microsoft resource does; raise TokenError if not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        if header.get("kid") != self.key.kid:
            raise TokenError("signing key not recognised")
        try:
            claims = jwt.decode(
                token,
                self.key.private_key.public_key(),
                algorithms=["RS256"],
                audience=audiences,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidAudienceError:
            raise TokenError("invalid audience") from None
        except jwt.PyJWTError:
            raise TokenError("invalid signature") from None
        stamp = now.timestamp()
        if claims["exp"] + leeway < stamp:
            raise TokenError("token expired")
        if claims.get("nbf", 0) - leeway > stamp:
            raise TokenError("token not yet valid")
        tenant = claims.get("tid", "")
        if claims["iss"] != self.issuer(tenant):
            raise TokenError("invalid issuer")
        return claims
