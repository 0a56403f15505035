"""The in-memory world behind every sandbox service.

One World holds tenants (applications, service principals, users, policies),
Key Vaults, SmartTrace facilities and what the alert channels received. The
HTTP services only translate between wire formats and these objects, so a
test can seed, inspect and assert on the world directly.

Secret values live here (the sandbox *is* the other side), and every value
the sandbox ever issued is recorded in ``issued_secrets`` so that tests can
search everything the monitor emitted for leaks.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import secrets as _secrets
import string
import threading
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sso_sandbox.budget import TENANT_SIZES, BudgetStats, GraphBudget
from sso_sandbox.clock import Clock
from sso_sandbox.replication import REPLICATION_OFF, Replication, ReplicationLog
from sso_sandbox.signin_records import SignInRecords

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
VAULT_RESOURCE = "https://vault.azure.net"

# addPassword's documented default: "endDateTime ... The default value is "startDateTime + 2 years"".
# Calendar years: the doc's own example runs 2019-09-09T19:50:29Z to 2021-09-09T19:50:29Z (731 days).
DEFAULT_PASSWORD_YEARS = 2
# The tenant's default appManagementPolicy (GET /policies/defaultAppManagementPolicy) has this id.
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"


def new_guid() -> str:
    return str(uuid.uuid4())


def new_secret_text() -> str:
    """A value shaped like Entra's client secrets: 40 characters, a 3-character prefix, then
    "8Q~" (a digit and "Q~": the shape secret scanners match, ``[a-zA-Z0-9_~.]{3}\\dQ~[a-zA-Z0-9_~.-]{31,34}``),
    then 34 characters of letters, digits and ``_~.-`` (see docs/sandbox/fidelity.md)."""
    alphabet = string.ascii_letters + string.digits + "-_.~"
    prefix = "".join(_secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    body = "".join(_secrets.choice(alphabet) for _ in range(34))
    return f"{prefix}8Q~{body}"


def add_years(moment: datetime, years: int) -> datetime:
    """The same instant ``years`` calendar years later; 29 February becomes 28 February (.NET AddYears)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def default_password_end(start: datetime) -> datetime:
    """addPassword's default endDateTime: startDateTime + 2 years."""
    return add_years(start, DEFAULT_PASSWORD_YEARS)


_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 durations as Graph policies use them (P90D, P1Y, P6M, PT12H).

    Years count 365 days and months 30, as Entra evaluates policy lifetimes.
    """
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {key: float(value) if value else 0.0 for key, value in match.groupdict().items()}
    return timedelta(
        days=parts["y"] * 365 + parts["mo"] * 30 + parts["w"] * 7 + parts["d"],
        hours=parts["h"],
        minutes=parts["mi"],
        seconds=parts["s"],
    )


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    if rest == 0:
        return f"P{days}D"
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{secs}S"


# ---------------------------------------------------------------- directory


@dataclass
class PasswordCredential:
    key_id: str
    secret_text: str
    start: datetime
    end: datetime
    created: datetime
    display_name: str | None = None
    custom_key_identifier: str | None = None

    @property
    def hint(self) -> str:
        return self.secret_text[:3]


@dataclass
class KeyCredential:
    """A certificate on an application (Graph's keyCredential). ``key`` is the certificate's
    public raw data (DER), which Graph returns only for a single object's
    ``$select=keyCredentials``; None: not kept (answered as null)."""

    key_id: str
    start: datetime
    end: datetime
    display_name: str | None = None
    type: str = "AsymmetricX509Cert"
    usage: str = "Verify"
    custom_key_identifier: str | None = None  # base64; Graph defaults it to the certificate's thumbprint
    key: bytes | None = None


@dataclass
class Application:
    object_id: str
    app_id: str
    tenant_id: str
    display_name: str
    created: datetime
    owners: set[str] = field(default_factory=set)  # appIds of the service principals that own it
    owner_users: set[str] = field(default_factory=set)  # object ids of the users that own it
    password_credentials: list[PasswordCredential] = field(default_factory=list)
    key_credentials: list[KeyCredential] = field(default_factory=list)
    web: dict[str, Any] = field(default_factory=dict)
    sign_in_audience: str = "AzureADMyOrg"
    identifier_uris: list[str] = field(default_factory=list)
    app_roles: list[dict[str, Any]] = field(default_factory=list)
    # the single-page-app platform's redirect URIs (spa.redirectUris), for user sign-in (user_signin.py)
    spa_redirect_uris: list[str] = field(default_factory=list)
    # the delegated scopes the app exposes (api.oauth2PermissionScopes' values)
    delegated_scopes: list[str] = field(default_factory=list)
    notes: str | None = None
    # appManagementPolicy assigned to this app (overrides the tenant default): its
    # passwordLifetime restriction, and its id and displayName (see assigned_policy)
    password_max_lifetime: timedelta | None = None
    policy_id: str | None = None
    policy_name: str | None = None
    # Graph's disabledByMicrosoftStatus: None/"NotDisabled", or e.g.
    # "DisabledDueToViolationOfServicesAgreement" (the token endpoint then answers AADSTS7000112)
    disabled_by_microsoft_status: str | None = None

    def credential(self, key_id: str) -> PasswordCredential | None:
        wanted = key_id.lower()
        return next((c for c in self.password_credentials if c.key_id.lower() == wanted), None)

    def assigned_policy(self) -> AppPolicy | None:
        """The appManagementPolicy assigned to this app, if any. Setting only
        ``password_max_lifetime`` assigns one with a stable id derived from the app."""
        if self.password_max_lifetime is None and self.policy_id is None:
            return None
        return AppPolicy(
            id=self.policy_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:appManagementPolicy:{self.object_id}")),
            display_name=self.policy_name or "Custom app management policy",
            password_max_lifetime=self.password_max_lifetime,
        )


@dataclass(frozen=True)
class AppPolicy:
    """An appManagementPolicy (GET /applications/{id}/appManagementPolicies): it replaces the
    tenant's default policy for the apps it is assigned to."""

    id: str
    display_name: str
    password_max_lifetime: timedelta | None


@dataclass
class AppRoleAssignment:
    id: str
    principal_id: str
    principal_type: str  # User, Group or ServicePrincipal
    principal_display_name: str
    resource_id: str
    resource_display_name: str
    app_role_id: str
    created: datetime


@dataclass
class ServicePrincipal:
    object_id: str
    app_id: str
    tenant_id: str
    display_name: str
    account_enabled: bool = True
    app_role_assignment_required: bool = False
    owners: set[str] = field(default_factory=set)  # appIds of the service principals that own it
    assigned_to: list[AppRoleAssignment] = field(default_factory=list)
    # Application permissions granted to this principal, by resource URI:
    # {"https://graph.microsoft.com": ["Application.ReadWrite.OwnedBy"]}
    granted_roles: dict[str, list[str]] = field(default_factory=dict)
    service_principal_type: str = "Application"
    # a Conditional Access policy for workload identities blocks this principal's
    # client-credentials sign-ins (AADSTS53003); user sign-ins to the app are not affected
    blocked_by_conditional_access: bool = False
    owner_users: set[str] = field(default_factory=set)  # object ids of the users that own it


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    password: str | None = None  # a test user's password, for the sign-in form (user_signin.py); None: cannot sign in


@dataclass
class Tenant:
    tenant_id: str
    display_name: str
    applications: dict[str, Application] = field(default_factory=dict)  # by object id
    service_principals: dict[str, ServicePrincipal] = field(default_factory=dict)  # by object id
    users: dict[str, User] = field(default_factory=dict)  # by object id
    groups: dict[str, str] = field(default_factory=dict)  # object id -> display name
    # defaultAppManagementPolicy: passwordLifetime restriction
    password_max_lifetime: timedelta | None = None
    policy_restrict_after: datetime | None = None
    policy_enabled: bool = True
    # how long a new client secret takes before the token endpoint accepts it
    propagation_delay: timedelta = timedelta(0)
    # Graph's identity and access throttling (budget.py): the tenant's size class, which
    # sets its resource-unit budget, and whether the budget is enforced
    size: str = "small"
    graph_throttling: bool = True
    # directory replication lag after Graph writes (replication.py); off unless set
    replication: Replication = REPLICATION_OFF
    replica_log: ReplicationLog = field(default_factory=ReplicationLog, repr=False, compare=False)
    # Entra's sign-in records (signins.py): a P1/P2 licence lets the reporting API answer;
    # the per-credential activity report is "available", "unavailable" (403) or "empty"
    # (200, no rows), and shows an activity this long after it happened
    premium: bool = True
    activity_report: str = "available"
    activity_report_delay: timedelta = timedelta(0)

    def app_by_app_id(self, app_id: str) -> Application | None:
        wanted = app_id.lower()
        return next((a for a in self.applications.values() if a.app_id.lower() == wanted), None)

    def sp_by_app_id(self, app_id: str) -> ServicePrincipal | None:
        wanted = app_id.lower()
        return next((s for s in self.service_principals.values() if s.app_id.lower() == wanted), None)

    def user(self, id_or_upn: str) -> User | None:
        wanted = id_or_upn.lower()
        return next(
            (u for u in self.users.values() if u.id.lower() == wanted or u.user_principal_name.lower() == wanted),
            None,
        )


# ---------------------------------------------------------------- Key Vault


@dataclass
class SecretVersion:
    version: str
    value: str
    created: datetime
    updated: datetime
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    not_before: datetime | None = None
    expires: datetime | None = None


# How long Key Vault takes to finish a delete, recover or purge in the background, in
# seconds: drawn per operation from this range. Recorded SDK traffic shows windows from
# under 2 s (2022) to about 13 s (2021); see docs/sandbox/fidelity.md.
DEFAULT_SOFT_DELETE_LAG = (1.0, 13.0)


@dataclass
class Settling:
    """A Key Vault operation that finishes in the background (soft delete, recovery, purge).

    It counts as finished once ``seconds`` have passed on EITHER the world clock OR the
    real monotonic clock, so it ends whether the world clock is frozen, running or
    simulated (a rotation that sleeps on the world clock, a test that advances it, or
    the SDK's poller that sleeps in real time).
    """

    started: datetime
    seconds: float
    started_monotonic: float = field(default_factory=time.monotonic)

    def done(self, now: datetime) -> bool:
        if self.seconds <= 0:
            return True
        return now >= self.started + timedelta(seconds=self.seconds) or time.monotonic() >= self.started_monotonic + self.seconds


@dataclass
class VaultSecret:
    name: str
    versions: list[SecretVersion] = field(default_factory=list)  # in creation order: the last is the latest
    # set while a recovery is still under way: reads answer 404 until it is done
    recovering: Settling | None = None

    @property
    def latest(self) -> SecretVersion:
        return self.versions[-1]

    def version(self, version_id: str) -> SecretVersion | None:
        return next((v for v in self.versions if v.version == version_id), None)


@dataclass
class DeletedSecret:
    secret: VaultSecret
    deleted: datetime
    scheduled_purge: datetime
    # set while the deletion is still under way: GET /deletedsecrets/{name} answers 404
    settling: Settling | None = None


@dataclass
class Vault:
    name: str
    tenant_id: str
    secrets: dict[str, VaultSecret] = field(default_factory=dict)  # by lower-case name
    deleted: dict[str, DeletedSecret] = field(default_factory=dict)
    # appId of a principal -> "Key Vault Secrets Officer" | "Key Vault Secrets User" | ...
    access: dict[str, str] = field(default_factory=dict)
    soft_delete_days: int = 90
    purge_protection: bool = False
    # seconds a delete, recover or purge takes to finish: a number, or (low, high) for a
    # value drawn per operation from a generator seeded by lag_seed (default: the name)
    soft_delete_lag: float | tuple[float, float] = DEFAULT_SOFT_DELETE_LAG
    lag_seed: int | None = None
    # names whose purge is still under way (lower-case name -> its settling)
    purging: dict[str, Settling] = field(default_factory=dict)
    _lag_rng: random.Random | None = field(default=None, init=False, repr=False, compare=False)

    def next_lag(self) -> float:
        lag = self.soft_delete_lag
        if isinstance(lag, (int, float)):
            return float(lag)
        low, high = float(lag[0]), float(lag[1])
        if high <= low:
            return low
        if self._lag_rng is None:
            self._lag_rng = random.Random(self.lag_seed if self.lag_seed is not None else zlib.crc32(self.name.encode("utf-8")))
        return self._lag_rng.uniform(low, high)

    def soft_delete(self, name: str, now: datetime, *, settled: bool = False) -> DeletedSecret:
        """Move a secret (all its versions) to the deleted collection; unless ``settled``,
        the deletion finishes after ``next_lag()`` seconds, as on the live service."""
        secret = self.secrets.pop(name.lower())
        secret.recovering = None
        deleted = DeletedSecret(
            secret=secret,
            deleted=now,
            scheduled_purge=now + timedelta(days=self.soft_delete_days),
            settling=None if settled else Settling(now, self.next_lag()),
        )
        self.deleted[name.lower()] = deleted
        return deleted

    def settle(self, now: datetime) -> None:
        """Finish the background operations whose time has come."""
        for deleted in self.deleted.values():
            if deleted.settling is not None and deleted.settling.done(now):
                deleted.settling = None
        for secret in self.secrets.values():
            if secret.recovering is not None and secret.recovering.done(now):
                secret.recovering = None
        for key in [k for k, s in self.purging.items() if s.done(now)]:
            del self.purging[key]


# ---------------------------------------------------------------- SmartTrace


@dataclass
class HandoffRecord:
    """One push received by SmartTrace's integration-settings endpoint (metadata only)."""

    at: datetime
    key_id: str | None
    status: int
    reason: str


@dataclass
class Facility:
    name: str
    tenant_id: str
    app_id: str
    api_base: str = "https://api.smarttrace.ai/v1"
    client_secret: str | None = None  # what SmartTrace holds today
    key_id: str | None = None
    updated: datetime | None = None
    online: bool = True
    logout_callback_online: bool = True
    # bearer tokens accepted on the integration-settings endpoint
    api_tokens: set[str] = field(default_factory=set)
    # SmartTrace tests the pushed secret against Entra before accepting it
    verify_on_push: bool = True
    # A hostile or careless upstream: refuse every push with an error whose free text
    # echoes 39 of the secret's 40 characters (for the monitor's redaction tests).
    echo_secret_in_errors: bool = False
    received: list[HandoffRecord] = field(default_factory=list)


# ---------------------------------------------------------------- alerts


@dataclass
class TeamsWebhook:
    id: str
    mode: str = "ok"  # ok | throttled (200 with a 429 text) | error (500)
    received: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SentMail:
    via: str  # graph | smtp
    sender: str
    recipients: list[str]
    subject: str
    body: Any  # the Graph message object, or the raw RFC 5322 text
    at: datetime


# ---------------------------------------------------------------- world


@dataclass
class RequestRecord:
    service: str
    method: str
    path: str
    status: int
    at: datetime
    caller: str | None = None  # appId of the token's client
    inner: bool = False  # an inner request of a Graph $batch (not an HTTP request of its own)


class World:
    """Everything the simulated cloud knows. All access goes through ``lock``."""

    def __init__(self, clock: Clock | None = None, *, replication: Replication | None = None) -> None:
        self.clock = clock or Clock()
        # the replication setting new tenants start with (Tenant.replication); see set_replication
        self.replication = replication or REPLICATION_OFF
        # Graph's identity and access throttling budget, shared by every tenant (budget.py)
        self.graph_budget = GraphBudget()
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.vaults: dict[str, Vault] = {}
        self.facilities: dict[str, Facility] = {}
        self.webhooks: dict[str, TeamsWebhook] = {}
        self.mail: list[SentMail] = []
        self.smtp_users: dict[str, str] = {}  # login -> password
        self.user_sign_ins: list[tuple[str, str, bool]] = []  # (userPrincipalName, client id, succeeded), user_signin.py
        self.issued_secrets: list[str] = []
        self.requests: deque[RequestRecord] = deque(maxlen=200_000)
        # tenant id -> appId of the application that stands for the monitor's own
        # identity there (its managed identity or multi-tenant app in real life)
        self.monitors: dict[str, str] = {}
        # Entra's sign-in logs and credential activity (signins.py)
        self.sign_in_records = SignInRecords()

    def monitor_secret(self, tenant_id: str) -> str:
        """The monitor identity's newest live secret in that tenant (sandbox only)."""
        tenant = self.tenant(tenant_id)
        app = tenant.app_by_app_id(self.monitors.get(tenant_id.lower(), "")) if tenant else None
        live = [c for c in (app.password_credentials if app else []) if c.end > self.now()]
        if not live:
            raise KeyError(f"no monitor identity with a live secret in tenant {tenant_id}")
        return live[-1].secret_text

    # ---- look-ups

    def now(self) -> datetime:
        return self.clock.now()

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self.tenants.get(tenant_id.lower())

    def find_app(self, app_id: str) -> Application | None:
        for tenant in self.tenants.values():
            app = tenant.app_by_app_id(app_id)
            if app:
                return app
        return None

    def vault(self, name: str) -> Vault | None:
        return self.vaults.get(name.lower())

    def facility(self, name: str) -> Facility | None:
        return self.facilities.get(name.lower())

    # ---- building (used by the scenario loader and by tests)

    def add_tenant(self, tenant_id: str, display_name: str = "", **options: Any) -> Tenant:
        options.setdefault("replication", self.replication)
        tenant = Tenant(tenant_id=tenant_id.lower(), display_name=display_name or tenant_id, **options)
        if tenant.size not in TENANT_SIZES:
            raise ValueError(f"tenant size must be one of {', '.join(TENANT_SIZES)}, not {tenant.size!r}")
        self.tenants[tenant.tenant_id] = tenant
        return tenant

    def set_replication(self, replication: Replication) -> None:
        """Directory replication lag for every tenant, present and future."""
        self.replication = replication
        for tenant in self.tenants.values():
            tenant.replication = replication

    def add_application(
        self,
        tenant_id: str,
        display_name: str,
        *,
        app_id: str | None = None,
        object_id: str | None = None,
        **fields: Any,
    ) -> Application:
        tenant = self._require_tenant(tenant_id)
        app = Application(
            object_id=object_id or new_guid(),
            app_id=app_id or new_guid(),
            tenant_id=tenant.tenant_id,
            display_name=display_name,
            created=self.now(),
            **fields,
        )
        tenant.applications[app.object_id] = app
        return app

    def add_service_principal(self, app: Application, *, object_id: str | None = None, **fields: Any) -> ServicePrincipal:
        tenant = self._require_tenant(app.tenant_id)
        sp = ServicePrincipal(
            object_id=object_id or new_guid(),
            app_id=app.app_id,
            tenant_id=tenant.tenant_id,
            display_name=fields.pop("display_name", app.display_name),
            **fields,
        )
        tenant.service_principals[sp.object_id] = sp
        return sp

    def add_password(
        self,
        app: Application,
        *,
        display_name: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        secret_text: str | None = None,
        key_id: str | None = None,
        created: datetime | None = None,
    ) -> PasswordCredential:
        now = self.now()
        begin = start or now
        credential = PasswordCredential(
            key_id=key_id or new_guid(),
            secret_text=secret_text or new_secret_text(),
            start=begin,
            end=end or default_password_end(begin),
            created=created or now,
            display_name=display_name,
        )
        app.password_credentials.append(credential)
        self.issued_secrets.append(credential.secret_text)
        return credential

    def add_key_credential(
        self,
        app: Application,
        *,
        display_name: str | None = "CN=SmartTrace SSO",
        start: datetime | None = None,
        end: datetime | None = None,
        usage: str = "Verify",
        type: str = "AsymmetricX509Cert",
        key_id: str | None = None,
        key: bytes | None = None,
    ) -> KeyCredential:
        """A certificate on ``app``, as the portal's upload or addKey leaves it (its public part
        only: the sandbox holds no private key). Its customKeyIdentifier is the SHA-1
        thumbprint of ``key`` (of the key id when no raw data is given), base64."""
        begin = start or self.now()
        thumbprint = hashlib.sha1(key or (key_id or "").encode() or _secrets.token_bytes(16), usedforsecurity=False).digest()
        credential = KeyCredential(
            key_id=key_id or new_guid(),
            start=begin,
            end=end or add_years(begin, 1),
            display_name=display_name,
            type=type,
            usage=usage,
            custom_key_identifier=base64.b64encode(thumbprint).decode(),
            key=key,
        )
        app.key_credentials.append(credential)
        return credential

    def add_user(
        self,
        tenant_id: str,
        user_principal_name: str,
        display_name: str = "",
        *,
        user_id: str | None = None,
        mail: str | None = None,
        password: str | None = None,
    ) -> User:
        tenant = self._require_tenant(tenant_id)
        user = User(
            id=user_id or new_guid(), user_principal_name=user_principal_name, display_name=display_name or user_principal_name, mail=mail, password=password
        )
        tenant.users[user.id] = user
        return user

    def add_owner(self, target: Application | ServicePrincipal, owner: Application | ServicePrincipal | User | str) -> None:
        """Make ``owner`` an owner of ``target`` (as POST .../owners/$ref does). ``owner`` is a
        service principal, an application (meaning its service principal), a user, or an appId,
        user id or userPrincipalName. This is a directory write: reads may lag it (replication.py)."""
        tenant = self._require_tenant(target.tenant_id)
        kind, key = self._owner_reference(tenant, owner)
        self.note_write(target)
        if kind == "user":
            target.owner_users.add(key)
        else:
            target.owners.add(key)

    def note_write(self, obj: Application | ServicePrincipal) -> None:
        """Call just before a directory write to ``obj``: lagging replicas keep the state before it."""
        self._require_tenant(obj.tenant_id).replica_log.record_write(obj, self.now())

    def graph_budget_stats(self, tenant_id: str) -> BudgetStats:
        """For benchmarks: the peak resource units one app spent in any 10 s window in this tenant,
        the 429s the throttling budget sent, and the resource units and requests charged."""
        return self.graph_budget.stats(tenant_id)

    def _owner_reference(self, tenant: Tenant, owner: Application | ServicePrincipal | User | str) -> tuple[str, str]:
        if isinstance(owner, User):
            return "user", owner.id
        if isinstance(owner, (Application, ServicePrincipal)):
            return "servicePrincipal", owner.app_id
        user = tenant.user(owner)
        if user is not None:
            return "user", user.id
        if tenant.sp_by_app_id(owner) is not None or tenant.app_by_app_id(owner) is not None:
            return "servicePrincipal", owner
        raise KeyError(f"no user, application or service principal {owner!r} in tenant {tenant.tenant_id}")

    def add_vault(self, name: str, tenant_id: str, **fields: Any) -> Vault:
        vault = Vault(name=name.lower(), tenant_id=tenant_id.lower(), **fields)
        self.vaults[vault.name] = vault
        return vault

    def set_secret(
        self,
        vault: Vault,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
        not_before: datetime | None = None,
        expires: datetime | None = None,
    ) -> SecretVersion:
        now = self.now()
        secret = vault.secrets.setdefault(name.lower(), VaultSecret(name=name))
        version = SecretVersion(
            version=uuid.uuid4().hex,
            value=value,
            created=now,
            updated=now,
            content_type=content_type,
            tags=dict(tags or {}),
            enabled=enabled,
            not_before=not_before,
            expires=expires,
        )
        secret.versions.append(version)
        if value not in self.issued_secrets:
            self.issued_secrets.append(value)
        return version

    def add_facility(self, name: str, tenant_id: str, app_id: str, **fields: Any) -> Facility:
        facility = Facility(name=name.lower(), tenant_id=tenant_id.lower(), app_id=app_id, **fields)
        if facility.client_secret and facility.client_secret not in self.issued_secrets:
            self.issued_secrets.append(facility.client_secret)
        self.facilities[facility.name] = facility
        return facility

    def add_webhook(self, webhook_id: str | None = None, mode: str = "ok") -> TeamsWebhook:
        hook = TeamsWebhook(id=webhook_id or uuid.uuid4().hex, mode=mode)
        self.webhooks[hook.id] = hook
        return hook

    # ---- behaviour shared by several services

    def secret_works(self, tenant_id: str, app_id: str, secret_text: str, *, resource: str | None = None, client_credentials: bool = True) -> str | None:
        """None if a sign-in with this client secret would succeed, else the AADSTS code Entra answers.

        The checks, in the order applied (docs/sandbox/fidelity.md says which order is
        sourced and which is an assumption):

        1. AADSTS90002  the tenant does not exist
        2. AADSTS700016 no application with this appId in the tenant
        3. AADSTS7000222 the secret matches an expired credential;
           AADSTS7000215 it matches none, or one not yet valid or not yet propagated
        4. AADSTS500011 ``resource`` (a client-credentials scope's resource) is not in the tenant
        5. AADSTS7000229 the application has no service principal in the tenant
        6. AADSTS7000112 the service principal is disabled, or Microsoft disabled the application
        7. AADSTS53003  a Conditional Access policy for workload identities blocks the service
           principal (``client_credentials`` only: such policies do not apply to user sign-ins)
        """
        tenant = self.tenant(tenant_id)
        if tenant is None:
            return "AADSTS90002"
        app = tenant.app_by_app_id(app_id)
        if app is None:
            return "AADSTS700016"
        now = self.now()
        matched = next((c for c in app.password_credentials if _secrets.compare_digest(c.secret_text, secret_text)), None)
        if matched is None:
            return "AADSTS7000215"
        if matched.end <= now:
            return "AADSTS7000222"
        if matched.start > now or matched.created + tenant.propagation_delay > now:
            return "AADSTS7000215"  # not yet replicated: Entra says the secret is invalid
        if resource is not None and resource not in (GRAPH_RESOURCE, VAULT_RESOURCE):
            if not any(resource in a.identifier_uris or resource.lower() == a.app_id.lower() for a in tenant.applications.values()):
                return "AADSTS500011"
        sp = tenant.sp_by_app_id(app_id)
        if sp is None:
            return "AADSTS7000229"
        if not sp.account_enabled or app.disabled_by_microsoft_status not in (None, "NotDisabled"):
            return "AADSTS7000112"
        if client_credentials and sp.blocked_by_conditional_access:
            return "AADSTS53003"
        return None

    def sign_in_works(self, facility_name: str) -> bool:
        """Would SSO work for this facility right now, with the secret SmartTrace holds?"""
        facility = self.facility(facility_name)
        if facility is None or not facility.client_secret:
            return False
        return self.secret_works(facility.tenant_id, facility.app_id, facility.client_secret, client_credentials=False) is None

    def record(self, record: RequestRecord) -> None:
        self.requests.append(record)

    def count_requests(self, service: str | None = None, method: str | None = None, path_contains: str | None = None, *, inner: bool | None = False) -> int:
        """Recorded requests; by default HTTP requests only (``inner=None`` counts $batch parts too)."""
        return sum(
            1
            for r in list(self.requests)
            if (inner is None or r.inner == inner)
            and (service is None or r.service == service)
            and (method is None or r.method == method)
            and (path_contains is None or path_contains in r.path)
        )

    def _require_tenant(self, tenant_id: str) -> Tenant:
        tenant = self.tenant(tenant_id)
        if tenant is None:
            raise KeyError(f"unknown tenant {tenant_id}")
        return tenant
