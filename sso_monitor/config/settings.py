"""The settings the code reads: frozen dataclasses built from a checked document.

These are what the rest of the package imports (``MonitorConfig``, ``AppConfig``...);
they hold values already checked and defaulted, with Python names. The document an
operator writes, its checks and its JSON Schema are in document.py. Nothing here
imports pydantic, so a module that only needs these types does not pay for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..models import SecretValue

ENV_CONFIG = "SSO_MONITOR_CONFIG"

PUBLIC_GRAPH = "https://graph.microsoft.com/v1.0"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_API_BASE = "https://api.smarttrace.ai/v1"
DEFAULT_THRESHOLDS = (30, 14, 7, 3, 1)
TENANT_SIZES = ("small", "medium", "large")
MAX_DOCUMENT_CHARS = 20_000_000  # thousands of apps fit in a few MB


@dataclass(frozen=True)
class RotationPolicy:
    mode: str = "auto"  # auto | notify-only
    rotate_before_days: int = 30
    lifetime_days: int = 180
    grace_days: int = 7


@dataclass(frozen=True)
class HandoffConfig:
    mode: str = "manual"  # manual | http
    url: str | None = None
    method: str = "PUT"
    token_secret_name: str | None = None  # Key Vault secret holding the bearer token
    allowed_hosts: tuple[str, ...] = ()  # hosts besides the app's SmartTrace API host the secret may go to
    # manual handoff: who confirms SmartTrace holds the new secret: a person (manual), Entra's
    # credential-activity records (activity; a person when they are unavailable), or either
    confirmation: str = "manual"  # manual | activity | activity-or-manual


@dataclass(frozen=True)
class SignInsConfig:
    """Entra's sign-in log as a second opinion (docs/evidence.md): needs AuditLog.Read.All and P1/P2."""

    enabled: bool = False
    quiet_days: int = 7  # no sign-in through SmartTrace for this long: NO_RECENT_SIGN_INS (information)


@dataclass(frozen=True)
class ChannelConfig:
    """One alert channel. Secrets (the webhook URL, the SMTP password) are Key Vault
    secret names here, never values."""

    name: str
    type: str  # teams | graph-mail | smtp
    webhook_secret_name: str | None = None  # teams: the Workflows webhook URL (it carries a signature)
    mailbox: str | None = None  # graph-mail: the mailbox that sends (Mail.Send scoped to it)
    sender: str | None = None  # smtp: the From address
    host: str | None = None  # smtp
    port: int = 587  # smtp: submission with STARTTLS
    username: str | None = None  # smtp
    password_secret_name: str | None = None  # smtp
    to: tuple[str, ...] = ()  # email channels: recipients of every notice on this channel


@dataclass(frozen=True)
class AlertsConfig:
    """Routing, de-duplication and delivery of alerts (docs/alerts.md)."""

    channels: tuple[str, ...] = ()  # the default route for a facility's alerts
    operations: tuple[str, ...] = ()  # the monitor's own failures (default: the default route)
    repeat_critical_hours: int = 24  # an unresolved critical finding is repeated at most this often
    digest: bool = False  # one message per channel per day instead of one per change
    digest_hour_utc: int = 7  # the first run at or after this hour sends the day's digest
    status_page_url: str | None = None

    @property
    def operations_route(self) -> tuple[str, ...]:
        return self.operations or self.channels


@dataclass(frozen=True)
class AppConfig:
    facility: str
    tenant_id: str
    app_id: str
    api_base: str
    facility_url: str
    vault_secret_name: str
    rotation: RotationPolicy
    handoff: HandoffConfig
    thresholds: tuple[int, ...]
    max_active_secrets: int
    contacts: tuple[str, ...] = ()
    alert_channels: tuple[str, ...] | None = None  # None: the default route (alerts.channels)
    # The app's Entra owners (users with a mail address, read from Graph when an alert is
    # sent) are added to its alerts' recipients on the email channels of its route.
    notify_owners: bool = False
    sign_ins: SignInsConfig = field(default_factory=SignInsConfig)
    # This deployment's id (from its vault), in the display name of every credential it
    # creates: only those are ever swept as its own (rotation_state.is_ours).
    deployment_id: str = ""

    @property
    def expected_logout_url(self) -> str:
        return f"{self.api_base}/auth/callback/azure-logout/{self.facility}"

    @property
    def expected_redirect_uri(self) -> str:
        return f"{self.api_base}/auth/callback/azure/{self.facility}"


@dataclass(frozen=True)
class CloudConfig:
    graph_endpoint: str = PUBLIC_GRAPH
    graph_scope: str = "https://graph.microsoft.com/.default"
    authority: str = PUBLIC_AUTHORITY


@dataclass(frozen=True)
class NetworkConfig:
    ca_bundle: str | None = None  # extra CA (the sandbox's); None = the system's
    host_map: Mapping[str, str] = field(default_factory=dict)  # "*.smarttrace.ai" -> "127.0.0.1:PORT"
    concurrency: int = 16
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float | None = None  # opening a connection; None: timeout_seconds
    # Whether HTTP(S)_PROXY / NO_PROXY from the environment apply. Read once here:
    # requests otherwise rescans the whole environment on every request.
    use_env_proxies: bool = False
    # Graph's identity throttling budget depends on the tenant's size (users: small
    # under 50, medium to 500, large above): the check paces its reads to stay under it.
    tenant_size: str = "small"
    tenant_sizes: Mapping[str, str] = field(default_factory=dict)  # by lower-case tenant id

    def size_of(self, tenant_id: str) -> str:
        return self.tenant_sizes.get(tenant_id.lower(), self.tenant_size)

    @property
    def connect_timeout(self) -> float:
        """The time to open a connection (connectTimeoutSeconds, else timeoutSeconds)."""
        return self.connect_timeout_seconds if self.connect_timeout_seconds is not None else self.timeout_seconds


@dataclass(frozen=True)
class IdentityConfig:
    """How the monitor authenticates in one tenant.

    kind: ``default`` (DefaultAzureCredential: managed identity in Azure, az
    login locally), ``managed-identity`` (optionally a user-assigned client
    id), ``client-secret`` (a secret from an app setting: local use and the
    sandbox), ``certificate`` (a PEM file), ``federated`` (a multi-tenant app
    whose federated credential trusts the home managed identity).
    """

    kind: str = "default"
    client_id: str | None = None
    secret: SecretValue | None = None
    certificate_path: str | None = None


@dataclass(frozen=True)
class VerifyConfig:
    """How a new secret is proven before it is handed on (propagation takes seconds to minutes)."""

    successes: int = 3  # token requests in a row that must succeed
    interval_seconds: float = 2.0  # the longest wait between two of them
    deadline_seconds: float = 300.0  # per run; the next run resumes
    retry_seconds: float = 0.5  # the wait after a failure, doubling with each failure in a row (up to interval_seconds)
    confirm_seconds: float = 1.0  # the wait between confirming successes (at most interval_seconds)


@dataclass(frozen=True)
class AdminApiConfig:
    """Who may call the HTTP admin API: Entra tokens for this app registration."""

    tenant_id: str
    audience: str  # the admin API's application ID URI, e.g. api://sso-monitor-admin
    client_id: str | None = None  # v2 tokens carry the client id as audience


@dataclass(frozen=True)
class StorageConfig:
    """The Function App's storage (AzureWebJobsStorage): leases now, queues and tables later."""

    connection_string: SecretValue | None = None  # key-based or Azurite
    account_url: str | None = None  # identity-based: https://<account>.blob.core.windows.net


@dataclass(frozen=True)
class MonitorConfig:
    apps: tuple[AppConfig, ...]
    vault_url: str
    home_tenant_id: str
    identities: Mapping[str, IdentityConfig]
    cloud: CloudConfig = field(default_factory=CloudConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    channels: Mapping[str, ChannelConfig] = field(default_factory=dict)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    admin_api: AdminApiConfig | None = None
    storage: StorageConfig = field(default_factory=StorageConfig)
    # The vault of the monitor's own setting secrets (webhook URLs, SMTP passwords,
    # handoff tokens), read only; None: the same vault as the facility secrets.
    settings_vault: str | None = None
    # The client id of the Function App's user-assigned managed identity (the
    # AZURE_CLIENT_ID app setting, which infra/ sets): the identity a federated
    # credential in another tenant trusts.
    managed_identity_client_id: str | None = None

    @property
    def settings_vault_url(self) -> str:
        return self.settings_vault or self.vault_url

    def identity_for(self, tenant_id: str) -> IdentityConfig:
        return self.identities.get(tenant_id.lower()) or self.identities.get("*") or IdentityConfig()

    def app(self, facility: str) -> AppConfig | None:
        return next((a for a in self.apps if a.facility == facility.lower()), None)


def deployment_id(vault_url: str) -> str:
    """Eight hex digits that tell this deployment's credentials from any other's: a
    hash of the vault that holds its facility secrets (the one thing two deployments
    never share without also sharing their state). Its host and path, not its port: a
    local vault (the sandbox) keeps its identity when it listens on another port."""
    parts = urlsplit(vault_url.strip())
    key = f"{(parts.hostname or '').lower()}{parts.path.rstrip('/').lower()}"
    return hashlib.sha256(key.encode()).hexdigest()[:8]
