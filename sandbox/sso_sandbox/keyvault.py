"""Azure Key Vault, secrets data plane (REST 7.x / 2025-07-01), one vault per listener.

Served (paths, bodies and status codes of the spec in
../shared/reference/keyvault/spec-2025-07-01/secrets.json):

- PUT    /secrets/{name}                       SetSecret          -> 200 SecretBundle
- GET    /secrets/{name}[/{version}]           GetSecret          -> 200 SecretBundle (with value)
- PATCH  /secrets/{name}/{version}             UpdateSecret       -> 200 SecretBundle (no value)
- DELETE /secrets/{name}                       DeleteSecret       -> 200 DeletedSecretBundle
- GET    /secrets                              GetSecrets         -> 200 SecretListResult (paged)
- GET    /secrets/{name}/versions              GetSecretVersions  -> 200 SecretListResult (paged)
- POST   /secrets/{name}/backup                BackupSecret       -> 200 BackupSecretResult
- POST   /secrets/restore                      RestoreSecret      -> 200 SecretBundle (no value)
- GET    /deletedsecrets                       GetDeletedSecrets  -> 200 DeletedSecretListResult (paged)
- GET    /deletedsecrets/{name}                GetDeletedSecret   -> 200 DeletedSecretBundle
- POST   /deletedsecrets/{name}/recover        RecoverDeletedSecret -> 200 SecretBundle (no value)
- DELETE /deletedsecrets/{name}                PurgeDeletedSecret -> 204

Every request needs ``api-version``; then the Key Vault challenge protocol (401
with ``WWW-Authenticate``), token validation, the vault's tenant and Azure RBAC
(the vault's ``access`` map: appId -> role name). Errors are KeyVaultError bodies.
Dates on the wire are Unix seconds taken from the sandbox clock.

Delete, recover and purge finish in the background, as on the live service: for
``vault.next_lag()`` seconds after a delete, GET /deletedsecrets/{name} answers 404
and SetSecret 409 ObjectIsBeingDeleted; after a recover, GET /secrets/{name} answers
404 and SetSecret 409 ObjectIsBeingRecovered; after a purge, SetSecret answers 409
ObjectIsBeingDeleted. Versions are listed in ascending version-id order.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from sso_sandbox.faults import FaultPlan
from sso_sandbox.http import HttpError, Request, Response, Service, _retry_after, bearer_token
from sso_sandbox.tokens import TokenError, TokenIssuer
from sso_sandbox.world import VAULT_RESOURCE, DeletedSecret, SecretVersion, Settling, Vault, VaultSecret, World

VAULT_AUDIENCES = [VAULT_RESOURCE, "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"]
SERVICE_VERSION = "1.9.2900.1"  # x-ms-keyvault-service-version, as the live service reports one

_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_API_VERSION = re.compile(r"^(?:7\.\d(?:-preview)?|(?P<year>\d{4})-\d{2}-\d{2}(?:-preview)?)$")
LATEST_API_VERSION = "2025-07-01"
DEFAULT_PAGE = 25
MAX_PAGE = 25
MAX_VALUE_CHARS = 25 * 1024
MAX_TAGS = 15

NOT_FOUND_HINT = (
    "If you recently deleted this secret you may be able to recover it using the correct recovery command. "
    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)
# The 401 answer to a request without a token (the live text since the service accepted mTLS PoP tokens).
MISSING_TOKEN_MESSAGE = "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token."

# Azure RBAC data actions (Microsoft.KeyVault/vaults/secrets/...) granted by each built-in role.
ACTION_GET = "getSecret/action"
ACTION_READ_METADATA = "readMetadata/action"
ACTION_SET = "setSecret/action"
ACTION_UPDATE = "update/action"
ACTION_DELETE = "delete"
ACTION_RECOVER = "recover/action"
ACTION_PURGE = "purge/action"
ACTION_BACKUP = "backup/action"
ACTION_RESTORE = "restore/action"
ALL_ACTIONS = frozenset(
    {ACTION_GET, ACTION_READ_METADATA, ACTION_SET, ACTION_UPDATE, ACTION_DELETE, ACTION_RECOVER, ACTION_PURGE, ACTION_BACKUP, ACTION_RESTORE}
)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "key vault administrator": ALL_ACTIONS,
    "key vault secrets officer": ALL_ACTIONS,
    "key vault secrets user": frozenset({ACTION_GET, ACTION_READ_METADATA}),
    "key vault reader": frozenset({ACTION_READ_METADATA}),
}


class VaultError(HttpError):
    """An HttpError that carries Key Vault's ``innererror`` code."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message, headers)
        self.inner = inner


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _from_unix(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VaultError(400, "BadParameter", f"Property 'attributes.{field}' must be a Unix time in seconds (an integer).")
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (OverflowError, OSError, ValueError):
        raise VaultError(400, "BadParameter", f"Property 'attributes.{field}' is out of range.") from None


class KeyVaultService(Service):
    name = "vault"

    def __init__(self, world: World, faults: FaultPlan, issuer: TokenIssuer, *, vault_name: str, authority: str) -> None:
        super().__init__(world, faults)
        self.issuer = issuer
        self.vault_name = vault_name
        self.authority = authority.rstrip("/")
        n = r"(?P<name>[^/]+)"
        # order matters: literal segments before the {name}/{version} catch-all
        self.route("GET", r"/secrets/?", self.list_secrets)
        self.route("POST", r"/secrets/restore", self.restore_secret)
        self.route("GET", rf"/secrets/{n}/versions", self.list_versions)
        self.route("POST", rf"/secrets/{n}/backup", self.backup_secret)
        self.route("PUT", rf"/secrets/{n}", self.set_secret)
        self.route("GET", rf"/secrets/{n}", self.get_secret)
        self.route("DELETE", rf"/secrets/{n}", self.delete_secret)
        self.route("GET", rf"/secrets/{n}/(?P<version>[^/]*)", self.get_secret)
        self.route("PATCH", rf"/secrets/{n}/(?P<version>[^/]*)", self.update_secret)
        self.route("GET", r"/deletedsecrets/?", self.list_deleted)
        self.route("GET", rf"/deletedsecrets/{n}", self.get_deleted)
        self.route("DELETE", rf"/deletedsecrets/{n}", self.purge_deleted)
        self.route("POST", rf"/deletedsecrets/{n}/recover", self.recover_deleted)

    # ------------------------------------------------------------ wire shapes

    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return self._error(status, code, message, None, headers)

    def _error(self, status: int, code: str, message: str, inner: str | None, headers: dict[str, str] | None) -> Response:
        error: dict[str, Any] = {"code": code, "message": message}
        if inner:
            error["innererror"] = {"code": inner}
        merged = self._service_headers()
        merged.update(headers or {})
        return Response.json(status, {"error": error}, merged)

    def throttle_response(self, retry_after: float) -> Response:
        return self.error_response(
            429,
            "Throttled",
            "Request was not processed because too many requests were received. Reason: A generic error occurred.",
            {"Retry-After": _retry_after(retry_after)},
        )

    def _service_headers(self) -> dict[str, str]:
        return {
            "Cache-Control": "no-cache",
            "x-ms-keyvault-service-version": SERVICE_VERSION,
            "x-ms-keyvault-region": "sandbox",
            "x-ms-request-id": str(uuid.uuid4()),
        }

    def _ok(self, payload: Any) -> Response:
        return Response.json(200, payload, self._service_headers())

    # ------------------------------------------------------------ pipeline

    def handle(self, request: Request) -> Response:
        try:
            with self.world.lock:
                return self.dispatch(request)
        except VaultError as exc:
            return self._error(exc.status, exc.code, exc.message, exc.inner, exc.headers)
        except HttpError as exc:
            return self.error_response(exc.status, exc.code, exc.message, exc.headers)

    def dispatch(self, request: Request) -> Response:
        vault = self._vault()
        self._check_api_version(request)
        self._authenticate(request, vault)
        self._purge_expired(vault)
        vault.settle(self.world.now())
        return super().dispatch(request)

    def _vault(self) -> Vault:
        vault = self.world.vault(self.vault_name)
        if vault is None:
            raise VaultError(404, "VaultNotFound", f"The vault '{self.vault_name}' no longer exists in the sandbox world.")
        return vault

    def _check_api_version(self, request: Request) -> str:
        version = request.q("api-version")
        if not version:
            raise VaultError(400, "BadParameter", "The request URI does not contain the required 'api-version' query parameter.")
        match = _API_VERSION.match(version)
        if not match or (match.group("year") and int(match.group("year")) < 2016):
            raise VaultError(
                400,
                "BadParameter",
                f"The specified version ({version}) is not recognized. Consider using the latest supported version ({LATEST_API_VERSION}).",
            )
        return version

    def _challenge(self, vault: Vault) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer authorization="{self.authority}/{vault.tenant_id}", resource="{VAULT_RESOURCE}"'}

    def _authenticate(self, request: Request, vault: Vault) -> None:
        token = bearer_token(request)
        challenge = self._challenge(vault)
        if token is None:
            raise VaultError(401, "Unauthorized", MISSING_TOKEN_MESSAGE, headers=challenge)
        try:
            claims = self.issuer.validate(token, audiences=VAULT_AUDIENCES, now=datetime.now(UTC))
        except TokenError as exc:
            raise VaultError(401, "Unauthorized", self._token_message(token, exc.reason, vault), headers=challenge) from None
        tenant = str(claims.get("tid", "")).lower()
        if tenant != vault.tenant_id.lower():
            raise VaultError(
                401,
                "Unauthorized",
                f"AKV10032: Invalid issuer. Expected one of {self.issuer.issuer(vault.tenant_id)}, found {claims.get('iss')}.",
                headers=challenge,
            )
        request.claims = claims
        request.caller = claims.get("appid") or claims.get("azp")

    def _token_message(self, token: str, reason: str, vault: Vault) -> str:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            unverified = {}
        if reason == "invalid audience":
            return f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {unverified.get('aud')}."
        if reason == "invalid issuer":
            return f"AKV10032: Invalid issuer. Expected one of {self.issuer.issuer(vault.tenant_id)}, found {unverified.get('iss')}."
        if reason == "token expired":
            return "AKV10022: Invalid token: the token is expired."
        if reason == "token not yet valid":
            return "AKV10022: Invalid token: the token is not yet valid."
        if reason == "signing key not recognised":
            return "AKV10046: Unable to resolve the key used for signature validation."
        return f"AKV10022: Invalid token: {reason}."

    def _authorize(self, request: Request, vault: Vault, action: str, resource: str) -> None:
        caller = (request.caller or "").lower()
        granted: set[str] = set()
        for app_id, roles in vault.access.items():
            if app_id.lower() != caller:
                continue
            for role in [roles] if isinstance(roles, str) else list(roles):
                granted |= ROLE_ACTIONS.get(str(role).strip().lower(), frozenset())
        if action in granted:
            return
        claims = request.claims
        raise VaultError(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"
            f"Caller: appid={request.caller};oid={claims.get('oid')};iss={claims.get('iss')}\r\n"
            f"Action: 'Microsoft.KeyVault/vaults/secrets/{action}'\r\n"
            f"Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/sandbox/providers/microsoft.keyvault/vaults/{vault.name}{resource}'\r\n"
            "Assignment: (not found)\r\n"
            "DenyAssignmentId: null\r\n"
            "DecisionReason: null \r\n"
            f"Vault: {vault.name};location=sandbox\r\n",
            inner="ForbiddenByRbac",
        )

    def _purge_expired(self, vault: Vault) -> None:
        now = self.world.now()
        for key in [k for k, d in vault.deleted.items() if d.scheduled_purge <= now and d.settling is None]:
            del vault.deleted[key]

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise VaultError(400, "BadParameter", f"The request URI contains an invalid name: {name}")

    @staticmethod
    def _visible(secret: VaultSecret | None) -> bool:
        """A secret readers can see: it has versions and no recovery is still under way."""
        return secret is not None and bool(secret.versions) and secret.recovering is None

    def _secret(self, vault: Vault, name: str) -> VaultSecret:
        secret = vault.secrets.get(name.lower())
        if secret is None or not self._visible(secret):
            raise VaultError(404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault. {NOT_FOUND_HINT}")
        return secret

    def _version(self, secret: VaultSecret, name: str, version: str) -> SecretVersion:
        if not version:
            return secret.latest
        wanted = version.lower()
        found = next((v for v in secret.versions if v.version.lower() == wanted), None)
        if found is None:
            raise VaultError(404, "SecretNotFound", f"A secret with (name/id) {name}/{version} was not found in this key vault. {NOT_FOUND_HINT}")
        return found

    def _deleted(self, vault: Vault, name: str, *, pending_conflicts: bool = False) -> DeletedSecret:
        """The soft-deleted secret. While its deletion is still under way, look-ups answer
        404 (the SDK's delete poller waits for exactly this); with ``pending_conflicts``
        (purge, recover) the answer is 409 ObjectIsBeingDeleted instead."""
        deleted = vault.deleted.get(name.lower())
        if deleted is not None and deleted.settling is not None and pending_conflicts:
            raise VaultError(409, "Conflict", "Secret is currently being deleted.", inner="ObjectIsBeingDeleted")
        if deleted is None or deleted.settling is not None:
            raise VaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return deleted

    @staticmethod
    def _recovery(vault: Vault) -> tuple[str, int]:
        days = vault.soft_delete_days
        if days <= 0:
            return "Purgeable", 0
        prefix = "Recoverable" if days >= 90 else "CustomizedRecoverable"
        return (prefix if vault.purge_protection else f"{prefix}+Purgeable"), days

    def _attributes(self, vault: Vault, version: SecretVersion) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": version.enabled}
        if version.not_before is not None:
            attributes["nbf"] = _unix(version.not_before)
        if version.expires is not None:
            attributes["exp"] = _unix(version.expires)
        attributes["created"] = _unix(version.created)
        attributes["updated"] = _unix(version.updated)
        level, days = self._recovery(vault)
        attributes["recoverableDays"] = days
        attributes["recoveryLevel"] = level
        return attributes

    def _secret_url(self, name: str, version: str | None = None) -> str:
        return f"{self.base_url}/secrets/{name}" + (f"/{version}" if version else "")

    def _bundle(self, vault: Vault, secret: VaultSecret, version: SecretVersion, *, with_value: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if with_value:
            body["value"] = version.value
        body["id"] = self._secret_url(secret.name, version.version)
        if version.content_type is not None:
            body["contentType"] = version.content_type
        body["attributes"] = self._attributes(vault, version)
        if version.tags:
            body["tags"] = dict(version.tags)
        return body

    def _item(self, vault: Vault, secret: VaultSecret, version: SecretVersion, *, versioned: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self._secret_url(secret.name, version.version if versioned else None)}
        item["attributes"] = self._attributes(vault, version)
        if version.tags:
            item["tags"] = dict(version.tags)
        if version.content_type is not None:
            item["contentType"] = version.content_type
        return item

    def _deleted_fields(self, deleted: DeletedSecret) -> dict[str, Any]:
        return {
            "recoveryId": f"{self.base_url}/deletedsecrets/{deleted.secret.name}",
            "deletedDate": _unix(deleted.deleted),
            "scheduledPurgeDate": _unix(deleted.scheduled_purge),
        }

    def _deleted_bundle(self, vault: Vault, deleted: DeletedSecret) -> dict[str, Any]:
        body = self._deleted_fields(deleted)
        body.update(self._bundle(vault, deleted.secret, deleted.secret.latest, with_value=False))
        return body

    def _deleted_item(self, vault: Vault, deleted: DeletedSecret) -> dict[str, Any]:
        body = self._deleted_fields(deleted)
        body.update(self._item(vault, deleted.secret, deleted.secret.latest, versioned=False))
        return body

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise VaultError(400, "BadParameter", "The request body must be a JSON object.")
        return body

    @staticmethod
    def _tags(body: dict[str, Any]) -> dict[str, str] | None:
        if "tags" not in body or body["tags"] is None:
            return None
        tags = body["tags"]
        if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise VaultError(400, "BadParameter", "Property 'tags' must be an object of string names to string values.")
        if len(tags) > MAX_TAGS:
            raise VaultError(400, "BadParameter", f"A secret can have at most {MAX_TAGS} tags.")
        if any(len(k) > 512 or len(v) > 256 for k, v in tags.items()):
            raise VaultError(400, "BadParameter", "Tag names are limited to 512 characters and tag values to 256 characters.")
        return dict(tags)

    @staticmethod
    def _content_type(body: dict[str, Any]) -> str | None:
        value = body.get("contentType")
        if value is not None and not isinstance(value, str):
            raise VaultError(400, "BadParameter", "Property 'contentType' must be a string.")
        return value

    @staticmethod
    def _attrs_in(body: dict[str, Any]) -> dict[str, Any]:
        attributes = body.get("attributes")
        if attributes is None:
            return {}
        if not isinstance(attributes, dict):
            raise VaultError(400, "BadParameter", "Property 'attributes' must be an object.")
        if "enabled" in attributes and attributes["enabled"] is not None and not isinstance(attributes["enabled"], bool):
            raise VaultError(400, "BadParameter", "Property 'attributes.enabled' must be a boolean.")
        return attributes

    # ---- paging

    def _page(self, request: Request, path: str, rows: list[tuple[Any, dict[str, Any]]]) -> Response:
        """rows: (sort key, item) in a stable order; the continuation token names the last key served."""
        raw = request.q("maxresults")
        size = DEFAULT_PAGE
        if raw not in (None, ""):
            try:
                size = int(raw)
            except ValueError:
                size = 0
            if not 1 <= size <= MAX_PAGE:
                raise VaultError(400, "BadParameter", f"The value of parameter 'maxresults' must be an integer between 1 and {MAX_PAGE}; got '{raw}'.")
        token = request.q("$skiptoken")
        after = self._decode_token(token, path) if token else None
        remaining = [(key, item) for key, item in rows if after is None or key > after]
        page = remaining[:size]
        next_link = None
        if len(remaining) > size:
            marker = self._encode_token(path, page[-1][0])
            version = request.q("api-version")
            next_link = f"{self.base_url}{path}?api-version={version}&$skiptoken={marker}&maxresults={size}"
        return self._ok({"value": [item for _, item in page], "nextLink": next_link})

    @staticmethod
    def _encode_token(path: str, key: Any) -> str:
        raw = json.dumps({"path": path.lower(), "after": key}, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @staticmethod
    def _decode_token(token: str, path: str) -> Any:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if data["path"] != path.lower():
                raise ValueError
            after = data["after"]
        except (ValueError, KeyError, TypeError):
            raise VaultError(400, "BadParameter", "The $skiptoken parameter is not valid for this request.") from None
        return tuple(after) if isinstance(after, list) else after

    # ------------------------------------------------------------ handlers

    def set_secret(self, request: Request, name: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_SET, f"/secrets/{name}")
        body = self._body(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise VaultError(400, "BadParameter", "Property 'value' is required and must be a string.")
        if len(value) > MAX_VALUE_CHARS:
            raise VaultError(400, "BadParameter", f"The secret value exceeds the maximum size of {MAX_VALUE_CHARS} characters.")
        tags = self._tags(body)
        content_type = self._content_type(body)
        attributes = self._attrs_in(body)
        self._check_name_reusable(vault, name)
        enabled = attributes.get("enabled")
        version = self.world.set_secret(
            vault,
            name,
            value,
            content_type=content_type,
            tags=tags,
            enabled=True if enabled is None else enabled,
            not_before=_from_unix(attributes.get("nbf"), "nbf"),
            expires=_from_unix(attributes.get("exp"), "exp"),
        )
        secret = vault.secrets[name.lower()]
        return self._ok(self._bundle(vault, secret, version, with_value=True))

    @staticmethod
    def _check_name_reusable(vault: Vault, name: str) -> None:
        """SetSecret over a name that is deleted, being deleted or purged, or being recovered: 409."""
        key = name.lower()
        deleted = vault.deleted.get(key)
        if (deleted is not None and deleted.settling is not None) or key in vault.purging:
            raise VaultError(
                409,
                "Conflict",
                f"Secret {name} is currently being deleted and cannot be re-created; retry later.",
                inner="ObjectIsBeingDeleted",
            )
        if deleted is not None:
            raise VaultError(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
                "in this state, the secret can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            )
        existing = vault.secrets.get(key)
        if existing is not None and existing.recovering is not None:
            raise VaultError(
                409,
                "Conflict",
                f"Secret {name} is currently being recovered and cannot be re-created; retry later.",
                inner="ObjectIsBeingRecovered",
            )

    def get_secret(self, request: Request, name: str, version: str = "") -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_GET, f"/secrets/{name}")
        secret = self._secret(vault, name)
        found = self._version(secret, name, version)
        if not found.enabled:
            raise VaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled")
        return self._ok(self._bundle(vault, secret, found, with_value=True))

    def update_secret(self, request: Request, name: str, version: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_UPDATE, f"/secrets/{name}")
        body = self._body(request) if request.body else {}
        tags = self._tags(body)
        content_type = self._content_type(body)
        attributes = self._attrs_in(body)
        secret = self._secret(vault, name)
        found = self._version(secret, name, version)
        if "contentType" in body:
            found.content_type = content_type
        if tags is not None:
            found.tags = tags
        if attributes.get("enabled") is not None:
            found.enabled = attributes["enabled"]
        if "nbf" in attributes:
            found.not_before = _from_unix(attributes["nbf"], "nbf")
        if "exp" in attributes:
            found.expires = _from_unix(attributes["exp"], "exp")
        found.updated = self.world.now()
        return self._ok(self._bundle(vault, secret, found, with_value=False))

    def delete_secret(self, request: Request, name: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_DELETE, f"/secrets/{name}")
        secret = self._secret(vault, name)
        if vault.soft_delete_days <= 0:  # soft delete off: gone at once, no recovery id
            del vault.secrets[name.lower()]
            return self._ok(self._bundle(vault, secret, secret.latest, with_value=False))
        # gone from /secrets at once; in /deletedsecrets only once the deletion finishes
        deleted = vault.soft_delete(name, self.world.now())
        return self._ok(self._deleted_bundle(vault, deleted))

    def list_secrets(self, request: Request) -> Response:
        vault = self._vault()
        self._authorize(request, vault, ACTION_READ_METADATA, "/secrets")
        rows = [(key, self._item(vault, secret, secret.latest, versioned=False)) for key, secret in sorted(vault.secrets.items()) if self._visible(secret)]
        return self._page(request, "/secrets", rows)

    def list_versions(self, request: Request, name: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_READ_METADATA, f"/secrets/{name}")
        secret = vault.secrets.get(name.lower())
        if secret is None or not self._visible(secret):  # an unknown name lists no versions (200, empty list)
            return self._page(request, f"/secrets/{name}/versions", [])
        # ascending version id (the live service's order), not creation order
        ordered = sorted(secret.versions, key=lambda v: v.version.lower())
        rows = [(v.version.lower(), self._item(vault, secret, v, versioned=True)) for v in ordered]
        return self._page(request, f"/secrets/{secret.name}/versions", rows)

    def list_deleted(self, request: Request) -> Response:
        vault = self._vault()
        self._authorize(request, vault, ACTION_READ_METADATA, "/deletedsecrets")
        rows = [(key, self._deleted_item(vault, d)) for key, d in sorted(vault.deleted.items()) if d.settling is None]
        return self._page(request, "/deletedsecrets", rows)

    def get_deleted(self, request: Request, name: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_READ_METADATA, f"/deletedsecrets/{name}")
        return self._ok(self._deleted_bundle(vault, self._deleted(vault, name)))

    def recover_deleted(self, request: Request, name: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_RECOVER, f"/deletedsecrets/{name}")
        deleted = self._deleted(vault, name, pending_conflicts=True)
        if name.lower() in vault.secrets:
            raise VaultError(409, "Conflict", f"Secret {name} already exists and cannot be recovered over.")
        del vault.deleted[name.lower()]
        # back in /secrets only once the recovery finishes (GETs answer 404 until then)
        now = self.world.now()
        deleted.secret.recovering = Settling(now, vault.next_lag())
        vault.secrets[name.lower()] = deleted.secret
        return self._ok(self._bundle(vault, deleted.secret, deleted.secret.latest, with_value=False))

    def purge_deleted(self, request: Request, name: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_PURGE, f"/deletedsecrets/{name}")
        self._deleted(vault, name, pending_conflicts=True)
        if vault.purge_protection:
            raise VaultError(
                403,
                "Forbidden",
                f'Operation "purge" is not allowed because purge protection is enabled for this vault. '
                f"Key Vault service will automatically purge it after the retention period has passed.\r\nVault: {vault.name};location=sandbox",
                inner="VaultPurgeProtectionEnabled",
            )
        del vault.deleted[name.lower()]
        # the purge also finishes in the background: the name cannot be reused until then
        vault.purging[name.lower()] = Settling(self.world.now(), vault.next_lag())
        return Response.empty(204, self._service_headers())

    # ---- backup / restore (the blob is opaque to clients; here it is base64url JSON)

    def backup_secret(self, request: Request, name: str) -> Response:
        vault = self._vault()
        self._check_name(name)
        self._authorize(request, vault, ACTION_BACKUP, f"/secrets/{name}")
        secret = self._secret(vault, name)
        blob = {
            "kind": "sso-monitor-sandbox-secret-backup/1",
            "tenant": vault.tenant_id,
            "name": secret.name,
            "versions": [
                {
                    "version": v.version,
                    "value": v.value,
                    "created": v.created.isoformat(),
                    "updated": v.updated.isoformat(),
                    "contentType": v.content_type,
                    "tags": v.tags,
                    "enabled": v.enabled,
                    "nbf": v.not_before.isoformat() if v.not_before else None,
                    "exp": v.expires.isoformat() if v.expires else None,
                }
                for v in secret.versions
            ],
        }
        encoded = base64.urlsafe_b64encode(json.dumps(blob).encode("utf-8")).rstrip(b"=").decode("ascii")
        return self._ok({"value": encoded})

    def restore_secret(self, request: Request) -> Response:
        vault = self._vault()
        self._authorize(request, vault, ACTION_RESTORE, "/secrets")
        body = self._body(request)
        raw = body.get("value")
        try:
            if not isinstance(raw, str):
                raise ValueError
            blob = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if blob.get("kind") != "sso-monitor-sandbox-secret-backup/1":
                raise ValueError
            name = blob["name"]
            versions = [
                SecretVersion(
                    version=v["version"],
                    value=v["value"],
                    created=datetime.fromisoformat(v["created"]),
                    updated=datetime.fromisoformat(v["updated"]),
                    content_type=v["contentType"],
                    tags=dict(v["tags"] or {}),
                    enabled=bool(v["enabled"]),
                    not_before=datetime.fromisoformat(v["nbf"]) if v["nbf"] else None,
                    expires=datetime.fromisoformat(v["exp"]) if v["exp"] else None,
                )
                for v in blob["versions"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise VaultError(400, "BadParameter", "The backup blob is malformed or was not produced by this service.") from None
        if str(blob.get("tenant", "")).lower() != vault.tenant_id.lower():
            raise VaultError(403, "Forbidden", "The backup blob belongs to a vault in another tenant and cannot be restored here.")
        if name.lower() in vault.secrets or name.lower() in vault.deleted or name.lower() in vault.purging or not versions:
            raise VaultError(409, "Conflict", f"Secret {name} already exists in this vault (or is deleted but recoverable); it cannot be restored.")
        secret = VaultSecret(name=name, versions=versions)
        vault.secrets[name.lower()] = secret
        return self._ok(self._bundle(vault, secret, secret.latest, with_value=False))
