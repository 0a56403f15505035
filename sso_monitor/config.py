"""Configuration: one JSON document, validated on load into typed settings.

The document lists the monitored apps, with ``defaults`` that each app may
override field by field. It comes from a file, or from an app setting that
holds the JSON itself (``SSO_MONITOR_CONFIG``: a path, or a document starting
with ``{``). This module is the only one that reads the environment.

Every problem names the app and the field (``apps[2] (acme).tenantId: ...``);
all problems are reported at once, and nothing starts on a bad document.
Secrets are never values here: identities name the setting or Key Vault
secret that holds them. See docs/configuration.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .models import SecretValue

ENV_CONFIG = "SSO_MONITOR_CONFIG"

PUBLIC_GRAPH = "https://graph.microsoft.com/v1.0"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_API_BASE = "https://api.smarttrace.ai/v1"
DEFAULT_THRESHOLDS = (30, 14, 7, 3, 1)
TENANT_SIZES = ("small", "medium", "large")
MAX_DOCUMENT_CHARS = 20_000_000  # thousands of apps fit in a few MB

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_FACILITY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$|^[^@\s<>\"',;]+@localhost$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$|^\[[0-9a-fA-F:]+\]$")
_CHANNEL_FIELDS: dict[str, set[str]] = {
    "teams": {"webhookSecretName"},
    "graph-mail": {"mailbox", "to"},
    "smtp": {"from", "host", "port", "username", "passwordSecretName", "to"},
}


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
    concurrency: int = 8
    timeout_seconds: float = 30.0
    # Whether HTTP(S)_PROXY / NO_PROXY from the environment apply. Read once here:
    # requests otherwise rescans the whole environment on every request.
    use_env_proxies: bool = False
    # Graph's identity throttling budget depends on the tenant's size (users: small
    # under 50, medium to 500, large above): the check paces its reads to stay under it.
    tenant_size: str = "small"
    tenant_sizes: Mapping[str, str] = field(default_factory=dict)  # by lower-case tenant id

    def size_of(self, tenant_id: str) -> str:
        return self.tenant_sizes.get(tenant_id.lower(), self.tenant_size)


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

    successes: int = 3
    interval_seconds: float = 5.0
    deadline_seconds: float = 300.0


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


# ---------------------------------------------------------------- loading


def load_config(source: str | Path | None = None, environ: Mapping[str, str] | None = None) -> MonitorConfig:
    """Load from a path, a JSON text, or (source None) the SSO_MONITOR_CONFIG setting."""
    env = os.environ if environ is None else environ
    if source is None:
        source = env.get(ENV_CONFIG)
        if not source:
            raise ConfigError([f"no configuration: pass --config FILE or set {ENV_CONFIG} (a path or the JSON itself)"])
    text = str(source)
    if isinstance(source, Path) or not text.lstrip().startswith("{"):
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read the configuration file ({exc.strerror or exc})"]) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
        origin = str(path)
    else:
        origin = ENV_CONFIG
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ConfigError([f"{origin}: the configuration is larger than {MAX_DOCUMENT_CHARS // 1_000_000} MB"])
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
    except RecursionError:
        raise ConfigError([f"{origin}: nested too deeply to be a configuration"]) from None
    return parse_config(document, env)


def parse_config(document: Any, environ: Mapping[str, str] | None = None) -> MonitorConfig:
    validator = _Validator(os.environ if environ is None else environ)
    config = validator.document(document)
    if validator.problems or config is None:
        raise ConfigError(validator.problems or ["the configuration is empty"])
    return config


_TOP_KEYS = {"$schema", "vaultUrl", "settingsVaultUrl", "homeTenantId", "identities", "cloud", "network", "channels", "alerts", "defaults", "apps", "verify", "adminApi"}
_APP_KEYS = {"facility", "tenantId", "appId", "apiBase", "facilityUrl", "vaultSecretName", "rotation", "handoff", "thresholds", "maxActiveSecrets", "contacts", "alertChannels"}
_DEFAULT_KEYS = _APP_KEYS - {"facility", "tenantId", "appId", "facilityUrl", "vaultSecretName"}


def deployment_id(vault_url: str) -> str:
    """Eight hex digits that tell this deployment's credentials from any other's: a
    hash of the vault that holds its facility secrets (the one thing two deployments
    never share without also sharing their state). Its host and path, not its port: a
    local vault (the sandbox) keeps its identity when it listens on another port."""
    parts = urlsplit(vault_url.strip())
    key = f"{(parts.hostname or '').lower()}{parts.path.rstrip('/').lower()}"
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _Validator:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = environ
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def unknown(self, data: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(data) - allowed):
            self.fail(f"{where}.{key}" if where else key, "unknown field")

    # ---- typed readers: they record a problem and return None when wrong

    def string(self, data: Mapping[str, Any], key: str, where: str, *, required: bool = False, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(f"{where}.{key}" if where else key, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}.{key}" if where else key, "must be a non-empty string")
            return None
        if pattern is not None and not pattern.match(value):
            self.fail(f"{where}.{key}" if where else key, f"must be {what}, not {value!r}")
            return None
        return value.strip()

    def https_url(self, data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = self.string(data, key, where, required=required)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            self.fail(f"{where}.{key}" if where else key, f"must be an https:// URL, not {value!r}")
            return None
        return value.rstrip("/")

    def integer(self, data: Mapping[str, Any], key: str, where: str, default: int, *, minimum: int = 0, maximum: int = 10**6) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.fail(f"{where}.{key}" if where else key, f"must be a whole number from {minimum} to {maximum}, not {value!r}")
            return default
        return value

    def mapping(self, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(f"{where}.{key}" if where else key, "must be an object")
            return {}
        return value

    # ---- sections

    def document(self, data: Any) -> MonitorConfig | None:
        if not isinstance(data, Mapping):
            self.fail("configuration", "must be a JSON object")
            return None
        self.unknown(data, _TOP_KEYS, "")
        vault_url = self.https_url(data, "vaultUrl", "", required=True)
        settings_vault = self.https_url(data, "settingsVaultUrl", "")
        managed_identity = self.env.get("AZURE_CLIENT_ID") or None
        if managed_identity is not None and not _GUID.match(managed_identity):
            self.fail("AZURE_CLIENT_ID", "must be the managed identity's client id (a GUID)")
        home = self.string(data, "homeTenantId", "", pattern=_GUID, what="a tenant id (GUID)")
        cloud = self.cloud(self.mapping(data, "cloud", ""))
        network = self.network(self.mapping(data, "network", ""))
        defaults = self.mapping(data, "defaults", "")
        self.unknown(defaults, _DEFAULT_KEYS, "defaults")
        apps_data = data.get("apps")
        apps: list[AppConfig] = []
        if not isinstance(apps_data, list) or not apps_data:
            self.fail("apps", "must list at least one app")
        else:
            for index, raw in enumerate(apps_data):
                app = self.app(raw, defaults, index)
                if app is not None:
                    apps.append(app)
            self.duplicates(apps)
        identities = self.identities(self.mapping(data, "identities", ""))
        if "schedule" in data:
            self.fail("schedule", "the timer's schedule is the app setting SSO_MONITOR_SCHEDULE (an NCRONTAB expression), not part of this document")
        channels = self.channels(self.mapping(data, "channels", ""))
        alerts = self.alerts(self.mapping(data, "alerts", ""), channels)
        for app in apps:
            self.route(app.alert_channels or (), channels, f"apps ({app.facility}).alertChannels")
        verify = self.verify(self.mapping(data, "verify", ""))
        admin_api = self.admin_api(data.get("adminApi"))
        if self.problems or vault_url is None:
            return None
        tenants = {a.tenant_id for a in apps}
        home_tenant = (home or (next(iter(tenants)) if len(tenants) == 1 else "")).lower()
        if not home_tenant:
            self.fail("homeTenantId", "required when the apps span several tenants")
            return None
        deployment = deployment_id(vault_url)
        return MonitorConfig(
            apps=tuple(replace(app, deployment_id=deployment) for app in apps),
            vault_url=vault_url,
            settings_vault=settings_vault,
            managed_identity_client_id=managed_identity,
            home_tenant_id=home_tenant,
            identities=identities,
            cloud=cloud,
            network=network,
            channels=channels,
            alerts=alerts,
            verify=verify,
            admin_api=admin_api,
            storage=self.storage(),
        )

    def admin_api(self, data: Any) -> AdminApiConfig | None:
        if data is None:
            return None
        if not isinstance(data, Mapping):
            self.fail("adminApi", "must be an object")
            return None
        self.unknown(data, {"tenantId", "audience", "clientId"}, "adminApi")
        tenant = self.string(data, "tenantId", "adminApi", required=True, pattern=_GUID, what="a tenant id (GUID)")
        audience = self.string(data, "audience", "adminApi", required=True)
        client_id = self.string(data, "clientId", "adminApi", pattern=_GUID, what="an application (client) id (GUID)")
        if tenant is None or audience is None:
            return None
        return AdminApiConfig(tenant_id=tenant.lower(), audience=audience, client_id=client_id)

    def storage(self) -> StorageConfig:
        # The Functions host's own setting: a connection string, or the identity-based
        # form (AzureWebJobsStorage__blobServiceUri / __accountName).
        connection = self.env.get("AzureWebJobsStorage")
        if connection:  # includes UseDevelopmentStorage=true: Azurite on its default ports
            return StorageConfig(connection_string=SecretValue(connection))
        uri = self.env.get("AzureWebJobsStorage__blobServiceUri")
        account = self.env.get("AzureWebJobsStorage__accountName")
        if uri:
            return StorageConfig(account_url=uri.rstrip("/"))
        if account:
            return StorageConfig(account_url=f"https://{account}.blob.core.windows.net")
        return StorageConfig()

    def verify(self, data: Mapping[str, Any]) -> VerifyConfig:
        self.unknown(data, {"successes", "intervalSeconds", "deadlineSeconds"}, "verify")
        numbers = {}
        for key, default, low, high in (("intervalSeconds", 5.0, 0.0, 300.0), ("deadlineSeconds", 300.0, 1.0, 3600.0)):
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                self.fail(f"verify.{key}", f"must be a number from {low:g} to {high:g}, not {value!r}")
                value = default
            numbers[key] = float(value)
        return VerifyConfig(
            successes=self.integer(data, "successes", "verify", 3, minimum=1, maximum=20),
            interval_seconds=numbers["intervalSeconds"],
            deadline_seconds=numbers["deadlineSeconds"],
        )

    def cloud(self, data: Mapping[str, Any]) -> CloudConfig:
        self.unknown(data, {"graphEndpoint", "graphScope", "authority"}, "cloud")
        graph = self.https_url(data, "graphEndpoint", "cloud") or PUBLIC_GRAPH
        authority = self.https_url(data, "authority", "cloud") or PUBLIC_AUTHORITY
        scope = self.string(data, "graphScope", "cloud")
        if scope is None:
            scope = _default_graph_scope(graph)
        elif not scope.endswith("/.default"):
            self.fail("cloud.graphScope", "must end with /.default (application permissions)")
        return CloudConfig(graph_endpoint=graph, graph_scope=scope, authority=authority)

    def network(self, data: Mapping[str, Any]) -> NetworkConfig:
        proxies = any(self.env.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"))
        self.unknown(data, {"caBundle", "hostMap", "concurrency", "timeoutSeconds", "tenantSize", "tenantSizes"}, "network")
        ca = self.string(data, "caBundle", "network")
        if ca is not None and not Path(ca).is_file():
            self.fail("network.caBundle", f"no such file: {ca}")
        host_map = self.mapping(data, "hostMap", "network")
        for name, target in host_map.items():
            if not isinstance(target, str) or not re.fullmatch(r"[0-9a-zA-Z.\[\]:-]+:\d{1,5}", target):
                self.fail(f"network.hostMap.{name}", f"must be 'host:port', not {target!r}")
        timeout = data.get("timeoutSeconds", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 300:
            self.fail("network.timeoutSeconds", f"must be a number from 1 to 300, not {timeout!r}")
            timeout = 30
        size = data.get("tenantSize", "small")
        if size not in TENANT_SIZES:
            self.fail("network.tenantSize", f"must be one of {', '.join(TENANT_SIZES)}, not {size!r}")
            size = "small"
        sizes = self.mapping(data, "tenantSizes", "network")
        for tenant, value in sizes.items():
            if not _GUID.match(str(tenant)):
                self.fail(f"network.tenantSizes.{tenant}", "must be a tenant id (GUID)")
            if value not in TENANT_SIZES:
                self.fail(f"network.tenantSizes.{tenant}", f"must be one of {', '.join(TENANT_SIZES)}, not {value!r}")
        return NetworkConfig(
            ca_bundle=ca,
            host_map={str(k).lower(): str(v) for k, v in host_map.items()},
            concurrency=self.integer(data, "concurrency", "network", 8, minimum=1, maximum=64),
            timeout_seconds=float(timeout),
            use_env_proxies=proxies,
            tenant_size=size,
            tenant_sizes={str(k).lower(): str(v) for k, v in sizes.items() if v in TENANT_SIZES},
        )

    def identities(self, data: Mapping[str, Any]) -> dict[str, IdentityConfig]:
        result: dict[str, IdentityConfig] = {}
        for tenant, raw in data.items():
            where = f"identities.{tenant}"
            if tenant != "*" and not _GUID.match(tenant):
                self.fail(where, "the key must be a tenant id (GUID) or '*'")
                continue
            if not isinstance(raw, Mapping):
                self.fail(where, "must be an object")
                continue
            self.unknown(raw, {"kind", "clientId", "clientSecretSetting", "certificatePath"}, where)
            kind = raw.get("kind", "default")
            if kind not in ("default", "managed-identity", "client-secret", "certificate", "federated"):
                self.fail(f"{where}.kind", f"must be default, managed-identity, client-secret, certificate or federated, not {kind!r}")
                continue
            client_id = self.string(raw, "clientId", where, required=kind in ("client-secret", "certificate", "federated"), pattern=_GUID, what="an application (client) id (GUID)")
            secret = None
            if kind == "client-secret":
                setting = self.string(raw, "clientSecretSetting", where, required=True, pattern=_SETTING_NAME, what="an app setting name")
                if setting is not None:
                    if not self.env.get(setting):
                        self.fail(f"{where}.clientSecretSetting", f"the app setting {setting} is not set")
                    else:
                        secret = SecretValue(self.env[setting])
            certificate = None
            if kind == "certificate":
                certificate = self.string(raw, "certificatePath", where, required=True)
                if certificate is not None and not Path(certificate).is_file():
                    self.fail(f"{where}.certificatePath", f"no such file: {certificate}")
            result[tenant.lower()] = IdentityConfig(kind=kind, client_id=client_id, secret=secret, certificate_path=certificate)
        return result

    def app(self, raw: Any, defaults: Mapping[str, Any], index: int) -> AppConfig | None:
        where = f"apps[{index}]"
        if not isinstance(raw, Mapping):
            self.fail(where, "must be an object")
            return None
        facility = raw.get("facility")
        if isinstance(facility, str) and facility:
            where = f"apps[{index}] ({facility})"
        before = len(self.problems)
        self.unknown(raw, _APP_KEYS, where)
        data = _merge(defaults, raw)
        facility = self.string(data, "facility", where, required=True, pattern=_FACILITY, what="the SmartTrace instance name (lower-case letters, digits, dashes)")
        tenant_id = self.string(data, "tenantId", where, required=True, pattern=_GUID, what="a tenant id (GUID)")
        app_id = self.string(data, "appId", where, required=True, pattern=_GUID, what="an application (client) id (GUID)")
        api_base = self.https_url(data, "apiBase", where) or DEFAULT_API_BASE
        facility_url = self.https_url(data, "facilityUrl", where) or (f"https://{facility}.smarttrace.ai" if facility else "")
        secret_name = self.string(data, "vaultSecretName", where, pattern=_SECRET_NAME, what="a Key Vault secret name (letters, digits, dashes)") or f"smarttrace-{facility}"
        rotation = self.rotation(self.mapping(data, "rotation", where), f"{where}.rotation")
        handoff = self.handoff(self.mapping(data, "handoff", where), f"{where}.handoff")
        thresholds = self.thresholds(data.get("thresholds", list(DEFAULT_THRESHOLDS)), f"{where}.thresholds")
        max_active = self.integer(data, "maxActiveSecrets", where, 2, minimum=1, maximum=20)
        contacts = data.get("contacts", [])
        if not isinstance(contacts, list) or not all(isinstance(c, str) and "@" in c for c in contacts):
            self.fail(f"{where}.contacts", "must be a list of email addresses")
            contacts = []
        alert_channels = data.get("alertChannels")
        if alert_channels is not None and (not isinstance(alert_channels, list) or not all(isinstance(c, str) and c for c in alert_channels)):
            self.fail(f"{where}.alertChannels", "must be a list of channel names (see channels)")
            alert_channels = None
        if handoff.url:
            # The client secret goes only to this facility's SmartTrace API host (or a
            # host the configuration names explicitly): a typo or an edit of the URL
            # must not send it anywhere else.
            host = (urlsplit(handoff.url).hostname or "").lower()
            if host != (urlsplit(api_base).hostname or "").lower() and host not in handoff.allowed_hosts:
                self.fail(f"{where}.handoff.url", f"must be on the app's SmartTrace API host {urlsplit(api_base).hostname} (or a host in handoff.allowedHosts), not {host}")
        if len(self.problems) > before or facility is None or tenant_id is None or app_id is None:
            return None
        return AppConfig(
            facility=facility,
            tenant_id=tenant_id.lower(),
            app_id=app_id.lower(),
            api_base=api_base,
            facility_url=facility_url,
            vault_secret_name=secret_name,
            rotation=rotation,
            handoff=handoff,
            thresholds=thresholds,
            max_active_secrets=max_active,
            contacts=tuple(contacts),
            alert_channels=tuple(alert_channels) if alert_channels is not None else None,
        )

    def channels(self, data: Mapping[str, Any]) -> dict[str, ChannelConfig]:
        result: dict[str, ChannelConfig] = {}
        for name, raw in data.items():
            where = f"channels.{name}"
            if not _CHANNEL_NAME.match(name):
                self.fail(where, "a channel name is letters, digits and dashes")
                continue
            if not isinstance(raw, Mapping):
                self.fail(where, "must be an object")
                continue
            kind = raw.get("type")
            fields = _CHANNEL_FIELDS.get(kind) if isinstance(kind, str) else None
            if fields is None:
                self.fail(f"{where}.type", f"must be teams, graph-mail or smtp, not {kind!r}")
                continue
            before = len(self.problems)
            self.unknown(raw, fields | {"type"}, where)
            secret = dict(pattern=_SECRET_NAME, what="a Key Vault secret name (letters, digits, dashes)")
            to = raw.get("to", [])
            if not isinstance(to, list) or not all(isinstance(t, str) and _EMAIL.match(t) for t in to):
                self.fail(f"{where}.to", "must be a list of email addresses")
                to = []
            channel = ChannelConfig(
                name=name,
                type=kind,
                webhook_secret_name=self.string(raw, "webhookSecretName", where, required=kind == "teams", **secret),
                mailbox=self.string(raw, "mailbox", where, required=kind == "graph-mail", pattern=_EMAIL, what="the sending mailbox's address"),
                sender=self.string(raw, "from", where, required=kind == "smtp", pattern=_EMAIL, what="an email address"),
                host=self.string(raw, "host", where, required=kind == "smtp", pattern=_HOST, what="a host name"),
                port=self.integer(raw, "port", where, 587, minimum=1, maximum=65535),
                username=self.string(raw, "username", where),
                password_secret_name=self.string(raw, "passwordSecretName", where, **secret),
                to=tuple(to),
            )
            if kind == "smtp" and (channel.username is None) != (channel.password_secret_name is None):
                self.fail(where, "username and passwordSecretName go together (or neither, for a relay without AUTH)")
            if len(self.problems) == before:
                result[name] = channel
        return result

    def alerts(self, data: Mapping[str, Any], channels: Mapping[str, ChannelConfig]) -> AlertsConfig:
        self.unknown(data, {"channels", "operations", "repeatCriticalHours", "digest", "digestHourUtc", "statusPageUrl"}, "alerts")
        digest = data.get("digest", False)
        if not isinstance(digest, bool):
            self.fail("alerts.digest", f"must be true or false, not {digest!r}")
            digest = False
        routes = {}
        for key in ("channels", "operations"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
                self.fail(f"alerts.{key}", "must be a list of channel names (see channels)")
                value = []
            self.route(value, channels, f"alerts.{key}")
            routes[key] = tuple(value)
        return AlertsConfig(
            channels=routes["channels"],
            operations=routes["operations"],
            repeat_critical_hours=self.integer(data, "repeatCriticalHours", "alerts", 24, minimum=1, maximum=24 * 30),
            digest=digest,
            digest_hour_utc=self.integer(data, "digestHourUtc", "alerts", 7, minimum=0, maximum=23),
            status_page_url=self.https_url(data, "statusPageUrl", "alerts"),
        )

    def route(self, names: Any, channels: Mapping[str, ChannelConfig], where: str) -> None:
        for name in names:
            if name not in channels:
                self.fail(where, f"no channel named {name!r} (channels: {', '.join(sorted(channels)) or 'none configured'})")

    def rotation(self, data: Mapping[str, Any], where: str) -> RotationPolicy:
        self.unknown(data, {"mode", "rotateBeforeDays", "lifetimeDays", "graceDays"}, where)
        mode = data.get("mode", "auto")
        if mode not in ("auto", "notify-only"):
            self.fail(f"{where}.mode", f"must be auto or notify-only, not {mode!r}")
            mode = "auto"
        before = self.integer(data, "rotateBeforeDays", where, 30, minimum=1, maximum=365)
        lifetime = self.integer(data, "lifetimeDays", where, 180, minimum=1, maximum=730)
        grace = self.integer(data, "graceDays", where, 7, minimum=0, maximum=90)
        if lifetime <= before:
            self.fail(f"{where}.lifetimeDays", f"must be longer than rotateBeforeDays ({before}), or every run would rotate")
        return RotationPolicy(mode=mode, rotate_before_days=before, lifetime_days=lifetime, grace_days=grace)

    def handoff(self, data: Mapping[str, Any], where: str) -> HandoffConfig:
        self.unknown(data, {"mode", "url", "method", "tokenSecretName", "allowedHosts"}, where)
        mode = data.get("mode", "manual")
        if mode not in ("manual", "http"):
            self.fail(f"{where}.mode", f"must be manual or http, not {mode!r}")
            return HandoffConfig()
        method = data.get("method", "PUT")
        if method not in ("PUT", "POST", "PATCH"):
            self.fail(f"{where}.method", f"must be PUT, POST or PATCH, not {method!r}")
        url = self.https_url(data, "url", where, required=mode == "http")
        token = self.string(data, "tokenSecretName", where, required=mode == "http", pattern=_SECRET_NAME, what="a Key Vault secret name")
        hosts = data.get("allowedHosts", [])
        if not isinstance(hosts, list) or not all(isinstance(h, str) and _HOST.match(h) for h in hosts):
            self.fail(f"{where}.allowedHosts", "must be a list of host names")
            hosts = []
        return HandoffConfig(mode=mode, url=url, method=method, token_secret_name=token, allowed_hosts=tuple(h.lower() for h in hosts))

    def thresholds(self, value: Any, where: str) -> tuple[int, ...]:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 365 for v in value)
            or len(set(value)) != len(value)
        ):
            self.fail(where, f"must be a list of distinct whole days from 1 to 365, e.g. [30, 14, 7, 3, 1], not {value!r}")
            return DEFAULT_THRESHOLDS
        return tuple(sorted(value, reverse=True))

    def duplicates(self, apps: list[AppConfig]) -> None:
        seen: dict[str, int] = {}
        for index, app in enumerate(apps):
            if app.facility in seen:
                self.fail(f"apps ({app.facility}).facility", "appears more than once")
            seen[app.facility] = index
        secret_names: dict[str, str] = {}
        for app in apps:
            other = secret_names.setdefault(app.vault_secret_name.lower(), app.facility)
            if other != app.facility:
                self.fail(f"apps ({app.facility}).vaultSecretName", f"{app.vault_secret_name} is already used by {other}")
        for app in apps:
            # A handoff token named like a facility's client secret would send that
            # secret to SmartTrace as a bearer token (and read it from the wrong vault).
            token = (app.handoff.token_secret_name or "").lower()
            if token and token in secret_names:
                self.fail(f"apps ({app.facility}).handoff.tokenSecretName", f"{app.handoff.token_secret_name} is the client secret of {secret_names[token]}, not a handoff token")


def _default_graph_scope(graph_endpoint: str) -> str:
    parts = urlsplit(graph_endpoint)
    host = parts.hostname or "graph.microsoft.com"
    # Sovereign clouds: the scope is the Graph host of that cloud. A loopback
    # endpoint (the sandbox) keeps the public Graph audience.
    if host in ("127.0.0.1", "localhost", "::1"):
        host = "graph.microsoft.com"
    return f"https://{host}/.default"
