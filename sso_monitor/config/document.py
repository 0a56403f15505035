"""The configuration document: pydantic models of what an operator writes, the JSON
Schema published from them (docs/config.schema.json), and the step from a checked
document to the settings the code reads (settings.py).

The models say what each field is: its type, range, pattern, default and meaning
(the ``description``, which editors show). Every model forbids unknown fields. On
top of pydantic, this module keeps the configuration's own way of reporting:

- each field says what it must be (``_says``), in place of pydantic's generic text,
  and ``_problem`` turns pydantic's error locations into the paths operators read,
  ``apps[0] (acme).handoff.url: ...``;
- ``defaults`` merge into each app field by field, nested sections too, before the
  app is checked: a default is checked in each app that uses it, so ``defaults`` is
  checked only for unknown fields (a partial section there is fine);
- a rule between fields of one section is a validator of the later field, which sees
  the earlier ones (``info.data``); the rules between sections (duplicate facilities
  and secret names, routes naming channels) are ``_across``, and they run on whatever
  is valid even when something else is not: all problems are reported at once;
- the environment (client secret settings, AZURE_CLIENT_ID, AzureWebJobsStorage,
  proxies) is read here and in __init__.py, nowhere else; validators get it as the
  validation context.
"""

import json
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema

from ..errors import ConfigError
from ..models import SecretValue
from .settings import (
    DEFAULT_API_BASE,
    DEFAULT_THRESHOLDS,
    PUBLIC_AUTHORITY,
    PUBLIC_GRAPH,
    TENANT_SIZES,
    AdminApiConfig,
    AlertsConfig,
    AppConfig,
    ChannelConfig,
    CloudConfig,
    HandoffConfig,
    IdentityConfig,
    MonitorConfig,
    NetworkConfig,
    RotationPolicy,
    SignInsConfig,
    StorageConfig,
    VerifyConfig,
    deployment_id,
)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_T = TypeVar("_T")

_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_EMAIL = r"""^[^@\s<>"',;]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$|^[^@\s<>"',;]+@localhost$"""

# ---------------------------------------------------------------- the fields' types


def _says(message: str, *, show_value: bool = True, inside: bool = True) -> WrapValidator:
    """Any error of the value it annotates becomes this message (pydantic's own would
    say "Input should be a valid string"), followed by the value unless show_value is
    false. inside=False: errors of the items in the value keep their own messages."""

    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if not inside and any(error["loc"] for error in exc.errors()):
                raise
            raise ValueError(f"{message}, not {value!r}" if show_value else message) from None

    return WrapValidator(check)


def _text(pattern: str | None = None, what: str = "a non-empty string") -> Any:
    """A non-empty string, stripped, matching pattern."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=pattern), _says(f"must be {what}")]


def _whole(low: int, high: int) -> Any:
    """A whole number from low to high (not true, not 3.0)."""
    return Annotated[int, Field(ge=low, le=high), _says(f"must be a whole number from {low} to {high}")]


def _number(low: float, high: float) -> Any:
    return Annotated[float, Field(ge=low, le=high), _says(f"must be a number from {low:g} to {high:g}")]


def _one_of(*values: str, message: str | None = None) -> Any:
    choices = ", ".join(values[:-1]) + f" or {values[-1]}"
    return Annotated[Literal[values], _says(message or f"must be {choices}")]


def _https(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("not an https URL")
    return url.rstrip("/")


def _existing_file(path: str) -> str:
    if not Path(path).is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _distinct(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("repeated")
    return values


def _list_of(item: Any, message: str) -> Any:
    return Annotated[list[item], _says(message, show_value=False)]


def _key(pattern: str, message: str) -> Any:
    """A key of a map: the problem is named by the key itself."""
    return Annotated[str, StringConstraints(pattern=pattern), _says(message, show_value=False)]


Text = _text()
TenantId = _text(_GUID, "a tenant id (GUID)")
ClientId = _text(_GUID, "an application (client) id (GUID)")
SecretName = _text(r"^[0-9a-zA-Z-]{1,127}$", "a Key Vault secret name (letters, digits, dashes)")
Host = _text(r"^[A-Za-z0-9.-]+$|^\[[0-9a-fA-F:]+\]$", "a host name")
Email = _text(_EMAIL, "an email address")
HttpsUrl = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^https://[^/?#\s]+"), AfterValidator(_https), _says("must be an https:// URL")]
ExistingFile = Annotated[Text, AfterValidator(_existing_file)]
Emails = _list_of(Email, "must be a list of email addresses")
ChannelNames = _list_of(Text, "must be a list of channel names (see channels)")
Thresholds = Annotated[
    list[Annotated[int, Field(ge=1, le=365)]],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
    _says("must be a list of distinct whole days from 1 to 365, e.g. [30, 14, 7, 3, 1]"),
]
TenantSize = _one_of(*TENANT_SIZES, message=f"must be one of {', '.join(TENANT_SIZES)}")
IdentityKind = _one_of("default", "managed-identity", "client-secret", "certificate", "federated")


def _error_at(field: str, message: str, value: Any) -> ValidationError:
    """A problem of another field than the validator's own (loc is relative to it)."""
    return ValidationError.from_exception_data("config", [{"type": "value_error", "loc": (field,), "input": value, "ctx": {"error": ValueError(message)}}])


def _env(info: ValidationInfo) -> Mapping[str, str]:
    return (info.context or {}).get("env", os.environ)


class _Section(BaseModel):
    # strict: no coercion ("5" is not 5, true is not 1); camelCase in the document.
    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel)

    @model_validator(mode="before")
    @classmethod
    def _fill_checked_defaults(cls, data: Any) -> Any:
        """A field with validate_default is checked when left out too (a rule between
        fields). Its default is filled in here, so that a problem is named by the
        field's name in the document (pydantic would use its Python name)."""
        if not isinstance(data, Mapping):
            return data
        left_out = {field.alias: field.default for field in cls.model_fields.values() if field.validate_default and field.alias not in data}
        return {**left_out, **data} if left_out else data


# ---------------------------------------------------------------- an app


class Rotation(_Section):
    """When a facility's client secret is rotated, and how long the new one lives."""

    mode: _one_of("auto", "notify-only") = Field(
        "auto", description="auto: create the new secret, prove it and hand it on; notify-only: alert that a rotation is due instead"
    )
    rotate_before_days: _whole(1, 365) = Field(30, description="rotate when the client secret expires within this many days")
    lifetime_days: _whole(1, 730) = Field(
        180, validate_default=True, description="how long a new secret lives (capped by the tenant's policy); longer than rotateBeforeDays"
    )
    grace_days: _whole(0, 90) = Field(7, description="days the old secret is kept after SmartTrace holds the new one, then removed")

    @field_validator("lifetime_days")
    @classmethod
    def _outlives_the_rotation(cls, lifetime: int, info: ValidationInfo) -> int:
        before = info.data.get("rotate_before_days")
        if before is not None and lifetime <= before:
            raise ValueError(f"must be longer than rotateBeforeDays ({before}), or every run would rotate")
        return lifetime


class Handoff(_Section):
    """How a new client secret reaches SmartTrace (docs/sandbox/smarttrace.md has the contract)."""

    mode: _one_of("manual", "http") = Field(
        "manual", description="manual: the alert asks an administrator to paste the new secret into SmartTrace; http: the monitor sends it to url"
    )
    url: HttpsUrl | None = Field(
        None,
        validate_default=True,
        description="http (required): where the new secret is sent; on the app's SmartTrace API host (apiBase) unless its host is in allowedHosts",
    )
    method: _one_of("PUT", "POST", "PATCH") = Field("PUT", description="the HTTP method of the handoff request")
    token_secret_name: SecretName | None = Field(
        None,
        validate_default=True,
        description="http (required): the Key Vault secret, in settingsVaultUrl, holding the bearer token for url; never a facility's client secret",
    )
    allowed_hosts: _list_of(Host, "must be a list of host names") = Field(
        default_factory=list, description="hosts besides the app's SmartTrace API host that url may name"
    )
    confirmation: _one_of("manual", "activity", "activity-or-manual") = Field(
        "manual",
        description="manual mode: who confirms that SmartTrace holds the new secret: a person (manual); Entra's credential-activity report "
        "and sign-in log (activity; a person only while they are unavailable); or either (activity-or-manual). Needs AuditLog.Read.All and "
        "Entra ID P1/P2 (docs/evidence.md)",
    )

    @field_validator("url", "token_secret_name")
    @classmethod
    def _required_for_http(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("mode") == "http":
            raise ValueError("required")
        return value


class SignIns(_Section):
    """Entra's sign-in log as a second opinion (docs/evidence.md)."""

    enabled: Annotated[bool, _says("must be true or false")] = Field(
        False,
        description="true: each check reads the app's non-interactive sign-ins (one query per tenant) and reports SIGN_IN_FAILING; "
        "needs AuditLog.Read.All and an Entra ID P1/P2 licence (SIGN_INS_UNAVAILABLE says which is missing)",
    )
    quiet_days: _whole(1, 30) = Field(7, description="no sign-in through SmartTrace for this many days is NO_RECENT_SIGN_INS (information, never an error)")


class App(_Section):
    """One monitored SmartTrace app: a facility and its app registration."""

    facility: _text(r"^[a-z0-9][a-z0-9-]{0,62}$", "the SmartTrace instance name (lower-case letters, digits, dashes)") = Field(
        description="the SmartTrace instance name: acme in https://acme.smarttrace.ai"
    )
    tenant_id: TenantId = Field(description="the tenant of the app registration")
    app_id: ClientId = Field(description="the app registration's Application (client) ID, as on SmartTrace's Integrations page")
    api_base: HttpsUrl | None = Field(
        DEFAULT_API_BASE,
        description="SmartTrace's API (staging: https://api.staging.smarttrace.ai/v1); the expected redirect URI is <apiBase>/auth/callback/azure/<facility> and the logout URL <apiBase>/auth/callback/azure-logout/<facility>",
    )
    facility_url: HttpsUrl | None = Field(None, description="the page whose reachability is checked; default https://<facility>.smarttrace.ai")
    vault_secret_name: SecretName | None = Field(
        None,
        description="the Key Vault secret, in vaultUrl, holding the client secret (each version tagged with the credential's keyId); default smarttrace-<facility>; one per app",
    )
    rotation: Rotation = Field(default_factory=Rotation, description="when the client secret is rotated")
    handoff: Handoff = Field(default_factory=Handoff, description="how a new client secret reaches SmartTrace")
    thresholds: Thresholds = Field(
        list(DEFAULT_THRESHOLDS), description="days before expiry at which SECRET_EXPIRING is raised and raised again; critical at 7 or less"
    )
    max_active_secrets: _whole(1, 20) = Field(2, description="more unexpired client secrets than this is TOO_MANY_SECRETS (2 allows the rotation's overlap)")
    contacts: _list_of(Annotated[str, Field(pattern="@")], "must be a list of email addresses") = Field(
        default_factory=list, description="the facility's administrators: added to the recipients of its alerts on the email channels of its route"
    )
    alert_channels: ChannelNames | None = Field(None, description="the channels (names from channels) this facility's alerts go to; default alerts.channels")
    notify_owners: Annotated[bool, _says("must be true or false")] = Field(
        False,
        description="true: the app registration's Entra owners (users with a mail address, read from Graph when an alert is sent) also receive "
        "this facility's alerts on the email channels of its route; reading their addresses needs User.Read.All (or User.ReadBasic.All) besides "
        "Application.ReadWrite.OwnedBy",
    )
    sign_ins: SignIns = Field(default_factory=SignIns, description="Entra's sign-in log: real sign-in failures through SmartTrace")

    @field_validator("handoff")
    @classmethod
    def _secret_goes_to_smarttrace(cls, handoff: Handoff, info: ValidationInfo) -> Handoff:
        # The client secret goes only to this facility's SmartTrace API host (or a host
        # the configuration names explicitly): a typo or an edit of the URL must not
        # send it anywhere else.
        api_host = urlsplit(info.data.get("api_base") or DEFAULT_API_BASE).hostname
        host = (urlsplit(handoff.url or "").hostname or "").lower()
        if handoff.url and api_host and host != api_host.lower() and host not in {h.lower() for h in handoff.allowed_hosts}:
            raise _error_at("url", f"must be on the app's SmartTrace API host {api_host} (or a host in handoff.allowedHosts), not {host}", handoff.url)
        return handoff


_IDENTIFYING = ("facility", "tenant_id", "app_id", "facility_url", "vault_secret_name")


def _not_checked(value: Any, handler: Callable[[Any], Any]) -> Any:
    """As WrapValidator: the value as it is; the schema still comes from the type."""
    return value


# Any app field but the identifying ones, with the app's schema; the values are checked
# in each app after the merge, so a partial section (handoff without its url) is fine.
AppDefaults = create_model(
    "AppDefaults",
    __base__=_Section,
    __doc__="Fields every app takes unless it sets them itself; nested sections merge field by field.",
    **{
        name: (
            Annotated[(field.annotation, *field.metadata, WrapValidator(_not_checked))],
            Field(None, alias=field.alias, description=field.description, json_schema_extra=field.json_schema_extra),
        )
        for name, field in App.model_fields.items()
        if name not in _IDENTIFYING
    },
)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def with_defaults(document: Any) -> Any:
    """The document with ``defaults`` merged into each app (an unknown default is
    reported once, at defaults, not in every app)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("defaults"), Mapping) or not isinstance(document.get("apps"), list):
        return document
    known = {field.alias for field in AppDefaults.model_fields.values()}
    defaults = {key: value for key, value in document["defaults"].items() if key in known}
    return {**document, "apps": [_merge(defaults, app) if isinstance(app, Mapping) else app for app in document["apps"]]}


# ---------------------------------------------------------------- identities, cloud, network


class Identity(_Section):
    """How the monitor authenticates in one tenant (docs/configuration.md, Identities)."""

    kind: IdentityKind = Field(
        "default",
        description="default: DefaultAzureCredential (the Function App's managed identity, az login locally); managed-identity: a user-assigned identity; "
        "federated: a multi-tenant app of the home tenant whose federated credential trusts the monitor's managed identity; "
        "certificate: an app with a PEM certificate; client-secret: an app with a secret from an app setting (local runs, the sandbox)",
    )
    client_id: ClientId | None = Field(
        None,
        validate_default=True,
        description="managed-identity: the user-assigned identity's client id; federated, certificate, client-secret (required): the app's",
    )
    client_secret_setting: _text(r"^[A-Za-z_][A-Za-z0-9_]*$", "an app setting name") | None = Field(
        None, validate_default=True, description="client-secret (required): the name of the app setting holding the secret, never the secret itself"
    )
    certificate_path: Text | None = Field(
        None, validate_default=True, description="certificate (required): a PEM file with the certificate and its private key"
    )

    @field_validator("client_id")
    @classmethod
    def _required_for_apps(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("kind") in ("client-secret", "certificate", "federated"):
            raise ValueError("required")
        return value

    @field_validator("client_secret_setting")
    @classmethod
    def _setting_is_set(cls, setting: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") != "client-secret":
            return setting
        if setting is None:
            raise ValueError("required")
        if not _env(info).get(setting):
            raise ValueError(f"the app setting {setting} is not set")
        return setting

    @field_validator("certificate_path")
    @classmethod
    def _certificate_exists(cls, path: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") != "certificate":
            return path
        if path is None:
            raise ValueError("required")
        return _existing_file(path)


class Cloud(_Section):
    """The Microsoft cloud: global Azure by default; a sovereign cloud, or the sandbox."""

    graph_endpoint: HttpsUrl | None = Field(PUBLIC_GRAPH, description="Microsoft Graph, e.g. https://graph.microsoft.us/v1.0 in US Government")
    graph_scope: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"/\.default$"), _says("must end with /.default (application permissions)")] | None
    ) = Field(None, description="default: the Graph host's /.default")
    authority: HttpsUrl | None = Field(PUBLIC_AUTHORITY, description="the Entra ID login host, e.g. https://login.microsoftonline.us")


class Network(_Section):
    """How the monitor connects (the sandbox sets caBundle and hostMap)."""

    ca_bundle: ExistingFile | None = Field(None, description="a file of extra CA certificates to trust (the sandbox's); default: the system's")
    host_map: dict[str, _text(r"^[0-9a-zA-Z.\[\]:-]+:\d{1,5}$", "'host:port'")] = Field(
        default_factory=dict,
        description='connect to host:port instead, keeping the real name for TLS, e.g. {"*.smarttrace.ai": "127.0.0.1:8443"} (the sandbox\'s)',
    )
    concurrency: _whole(1, 64) = Field(16, description="apps checked at the same time (each app's four requests run one after another)")
    timeout_seconds: _number(1, 300) = Field(30.0, description="the timeout of each HTTP request")
    connect_timeout_seconds: _number(1, 300) | None = Field(None, description="the time to open a connection; default: timeoutSeconds")
    tenant_size: TenantSize = Field("small", description="the tenants' size for Graph's throttling budget (users: small under 50, medium to 500, large above)")
    tenant_sizes: dict[_key(_GUID, "must be a tenant id (GUID)"), TenantSize] = Field(
        default_factory=dict, description="tenantSize of particular tenants, by tenant id"
    )


# ---------------------------------------------------------------- channels and alerts


class TeamsChannel(_Section):
    """A Teams channel, through a Workflows webhook."""

    type: Literal["teams"]
    webhook_secret_name: SecretName = Field(description="the Key Vault secret, in settingsVaultUrl, holding the webhook URL (which carries a signature)")


class GraphMailChannel(_Section):
    """Email sent through Microsoft Graph from one mailbox."""

    type: Literal["graph-mail"]
    mailbox: _text(_EMAIL, "the sending mailbox's address") = Field(description="the mailbox that sends (Mail.Send scoped to it)")
    to: Emails = Field(default_factory=list, description="recipients of every alert on this channel")


class SmtpChannel(_Section):
    """Email sent through an SMTP server (submission with STARTTLS)."""

    type: Literal["smtp"]
    sender: Email = Field(alias="from", description="the From address")
    host: Host = Field(description="the SMTP server")
    port: _whole(1, 65535) = Field(587, description="587: submission with STARTTLS")
    username: Text | None = Field(None, description="with passwordSecretName, or neither for a relay without AUTH")
    password_secret_name: SecretName | None = Field(None, description="the Key Vault secret, in settingsVaultUrl, holding the SMTP password")
    to: Emails = Field(default_factory=list, description="recipients of every alert on this channel")

    @model_validator(mode="after")
    def _login_or_none(self) -> "SmtpChannel":
        if (self.username is None) != (self.password_secret_name is None):
            raise ValueError("username and passwordSecretName go together (or neither, for a relay without AUTH)")
        return self


Channel = Annotated[TeamsChannel | GraphMailChannel | SmtpChannel, Field(discriminator="type")]


class Alerts(_Section):
    """Routing, repetition and digests of alerts (docs/alerts.md)."""

    channels: ChannelNames = Field(default_factory=list, description="the default route of the facilities' alerts (names from channels)")
    operations: ChannelNames = Field(default_factory=list, description="where the monitor's own failures go; default: channels")
    repeat_critical_hours: _whole(1, 24 * 30) = Field(24, description="an unresolved critical finding is alerted again at most this often")
    digest: Annotated[bool, _says("must be true or false")] = Field(
        False, description="true: one message per channel a day, at digestHourUtc (criticals still at once); false: one per change"
    )
    digest_hour_utc: _whole(0, 23) = Field(7, description="the first run at or after this hour (UTC) sends the day's digest")
    status_page_url: HttpsUrl | None = Field(None, description="the status page, linked from every alert")


# ---------------------------------------------------------------- the document


class Verify(_Section):
    """How a new secret is proven before it is handed on (propagation takes seconds to minutes)."""

    successes: _whole(1, 20) = Field(3, description="token requests in a row that must succeed; any failure starts the count again")
    interval_seconds: _number(0, 300) = Field(2.0, description="the longest wait in seconds between two token requests")
    deadline_seconds: _number(1, 3600) = Field(300.0, description="seconds a run keeps trying; the next run resumes")
    retry_seconds: _number(0, 300) = Field(
        0.5, description="the wait in seconds after a token request the new secret failed; it doubles with each failure in a row, up to intervalSeconds"
    )
    confirm_seconds: _number(0, 300) = Field(
        1.0, description="the wait in seconds between the successes that confirm a secret that worked once; at most intervalSeconds"
    )


class AdminApi(_Section):
    """Who may call the HTTP admin API: Entra tokens for its app registration."""

    tenant_id: TenantId = Field(description="the tenant of the admin API's app registration")
    audience: Text = Field(description="the admin API's application ID URI, e.g. api://sso-monitor-admin")
    client_id: ClientId | None = Field(None, description="the admin API's client id (v2 tokens carry it as the audience)")


class Document(_Section):
    """The monitored SmartTrace apps and how the monitor reaches them. Secrets are never
    values here: fields name the app setting or Key Vault secret that holds them."""

    model_config = ConfigDict(title="SmartTrace SSO Monitor configuration")

    schema_: Annotated[str | None, WrapValidator(_not_checked)] = Field(
        None, alias="$schema", description="the JSON Schema of this document, for editors; the monitor ignores it"
    )
    vault_url: HttpsUrl = Field(
        description="the Key Vault holding each facility's client secret, e.g. https://kv-sso.vault.azure.net; the monitor writes new versions there"
    )
    settings_vault_url: HttpsUrl | None = Field(
        None,
        description="the Key Vault holding the monitor's own setting secrets (webhook URLs, SMTP passwords, handoff tokens), which it only reads; default: vaultUrl",
    )
    home_tenant_id: TenantId | None = Field(
        None, description="the tenant of the monitor's own identity and of the vaults; required when the apps span several tenants"
    )
    apps: Annotated[list[App], Field(min_length=1), _says("must list at least one app", show_value=False, inside=False)] = Field(
        description="the monitored apps"
    )
    defaults: AppDefaults | None = Field(
        None,
        description="any app field but facility, tenantId, appId, facilityUrl and vaultSecretName; an app overrides them field by field, nested sections too",
    )
    identities: dict[_key(_GUID + r"|^\*$", "the key must be a tenant id (GUID) or '*'"), Identity] = Field(
        default_factory=dict, description="how to authenticate, by tenant id or '*'; a tenant without one uses kind default"
    )
    cloud: Cloud = Field(default_factory=Cloud, description="the Microsoft cloud's endpoints")
    network: Network = Field(default_factory=Network, description="how the monitor connects")
    channels: dict[_key(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$", "a channel name is letters, digits and dashes"), Channel] = Field(
        default_factory=dict, description="the alert channels, by name (letters, digits, dashes): Teams, email through Graph, or SMTP"
    )
    alerts: Alerts = Field(default_factory=Alerts, description="where alerts go, and how often")
    verify: Verify = Field(default_factory=Verify, description="how a new secret is proven before it is handed on")
    admin_api: AdminApi | None = Field(None, description="who may call the HTTP admin API; required for it")

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        return with_defaults(data)


# ---------------------------------------------------------------- problems, as operators read them

# A field that moved out of the document: its own message instead of "unknown field".
_MOVED = {("schedule",): "the timer's schedule is the app setting SSO_MONITOR_SCHEDULE (an NCRONTAB expression), not part of this document"}


def _problem(error: Mapping[str, Any], document: Any) -> str:
    """One pydantic error as ``apps[0] (acme).handoff.url: must be ...``."""
    loc = list(error["loc"])
    if loc[-1:] == ["[key]"]:  # a map's key is wrong: named by the key itself
        loc.pop()
    if loc[:1] == ["channels"] and len(loc) > 2:  # the tag pydantic adds for the channel's type
        del loc[2]
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":  # ours: _says, the validators
        message = str(ctx["error"])
    elif kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = _MOVED.get(tuple(loc), "unknown field")
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "must be an object" if loc else "must be a JSON object"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        loc.append(ctx["discriminator"].strip("'"))
        tags = [tag.strip(" '") for tag in ctx.get("expected_tags", "").split(",")]
        message = f"must be {', '.join(tags[:-1])} or {tags[-1]}, not {error['input'][loc[-1]]!r}" if "tag" in ctx else "required"
    else:  # every field says what it must be: this is a field that does not yet
        message = f"{error['msg'][:1].lower()}{error['msg'][1:]}, not {error['input']!r}"
    return f"{_where(loc, document)}: {message}"


def _where(loc: Sequence[str | int], document: Any) -> str:
    if not loc:
        return "configuration"
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            if text == f"apps[{part}]":  # the app's facility as written, even a wrong one
                apps = document.get("apps") if isinstance(document, Mapping) else None
                facility = apps[part].get("facility") if isinstance(apps, list) and isinstance(apps[part], Mapping) else None
                text += f" ({facility})" if isinstance(facility, str) and facility else ""
        else:
            text += f".{part}" if text else part
    return text


def _across(apps: Sequence[AppConfig], channels: Collection[str], routes: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """The rules between sections: one facility and one secret per app, handoff tokens
    that are not client secrets, routes that name channels."""
    problems = []
    seen: set[str] = set()
    for app in apps:
        if app.facility in seen:
            problems.append(f"apps ({app.facility}).facility: appears more than once")
        seen.add(app.facility)
    secret_names: dict[str, str] = {}
    for app in apps:
        other = secret_names.setdefault(app.vault_secret_name.lower(), app.facility)
        if other != app.facility:
            problems.append(f"apps ({app.facility}).vaultSecretName: {app.vault_secret_name} is already used by {other}")
    for app in apps:
        # A handoff token named like a facility's client secret would send that
        # secret to SmartTrace as a bearer token (and read it from the wrong vault).
        token = (app.handoff.token_secret_name or "").lower()
        if token and token in secret_names:
            problems.append(
                f"apps ({app.facility}).handoff.tokenSecretName: {app.handoff.token_secret_name} is the client secret of {secret_names[token]}, not a handoff token"
            )
    for where, names in [*routes, *((f"apps ({a.facility}).alertChannels", a.alert_channels or ()) for a in apps)]:
        for name in names:
            if name not in channels:
                problems.append(f"{where}: no channel named {name!r} (channels: {', '.join(sorted(channels)) or 'none configured'})")
    return problems


def _valid_parts(document: Any, errors: list[Any]) -> tuple[list[AppConfig], list[str], list[tuple[str, Sequence[str]]]]:
    """For _across when the document has problems: the apps, channels and alert routes
    that are valid on their own."""
    bad = {tuple(error["loc"][:2]) for error in errors}
    raw = with_defaults(document) if isinstance(document, Mapping) else {}
    apps = []
    for index, app in enumerate(raw.get("apps") if isinstance(raw.get("apps"), list) else []):
        if ("apps", index) not in bad:
            apps.append(_app(App.model_validate(app)))  # no error named it: it is valid
    channels = [name for name in raw.get("channels") or {} if ("channels", name) not in bad] if isinstance(raw.get("channels"), Mapping) else []
    alerts = raw.get("alerts") if isinstance(raw.get("alerts"), Mapping) else {}
    routes = [(f"alerts.{key}", alerts.get(key) or []) for key in ("channels", "operations") if ("alerts", key) not in bad]
    return apps, channels, routes


# ---------------------------------------------------------------- from the document to the settings


def settings_of(document: Any, env: Mapping[str, str]) -> MonitorConfig:
    """The settings a document describes, or ConfigError with every problem in it."""
    try:
        doc = Document.model_validate(document, context={"env": env})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = [_problem(error, document) for error in errors]
        problems += _across(*_valid_parts(document, errors))
        raise ConfigError([*problems, *_environment_problems(env)]) from None
    apps = [_app(app) for app in doc.apps]
    problems = _across(apps, list(doc.channels), [("alerts.channels", doc.alerts.channels), ("alerts.operations", doc.alerts.operations)])
    problems += _environment_problems(env)
    tenants = {app.tenant_id for app in apps}
    home_tenant = (doc.home_tenant_id or (next(iter(tenants)) if len(tenants) == 1 else "")).lower()
    if not problems and not home_tenant:
        problems.append("homeTenantId: required when the apps span several tenants")
    if problems:
        raise ConfigError(problems)
    deployment = deployment_id(doc.vault_url)
    return MonitorConfig(
        apps=tuple(replace(app, deployment_id=deployment) for app in apps),
        vault_url=doc.vault_url,
        settings_vault=doc.settings_vault_url,
        managed_identity_client_id=env.get("AZURE_CLIENT_ID") or None,
        home_tenant_id=home_tenant,
        identities={tenant.lower(): _identity(identity, env) for tenant, identity in doc.identities.items()},
        cloud=_cloud(doc.cloud),
        network=_settings(
            NetworkConfig,
            doc.network,
            host_map={name.lower(): target for name, target in doc.network.host_map.items()},
            tenant_sizes={tenant.lower(): size for tenant, size in doc.network.tenant_sizes.items()},
            # Read once here: requests otherwise rescans the whole environment on every request.
            use_env_proxies=any(env.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")),
        ),
        channels={name: _settings(ChannelConfig, channel, name=name) for name, channel in doc.channels.items()},
        alerts=_settings(AlertsConfig, doc.alerts),
        verify=_settings(VerifyConfig, doc.verify),
        admin_api=_settings(AdminApiConfig, doc.admin_api, tenant_id=doc.admin_api.tenant_id.lower()) if doc.admin_api else None,
        storage=_storage(env),
    )


def _settings(cls: type[_T], model: BaseModel, **values: Any) -> _T:
    """A settings dataclass from the model whose field names it shares (lists become
    tuples); values are the fields that differ."""
    names = {field.name for field in fields(cls)}
    return cls(**{**{name: tuple(value) if isinstance(value, list) else value for name, value in model if name in names}, **values})


def _environment_problems(env: Mapping[str, str]) -> list[str]:
    managed_identity = env.get("AZURE_CLIENT_ID") or None
    if managed_identity is not None and not re.match(_GUID, managed_identity):
        return ["AZURE_CLIENT_ID: must be the managed identity's client id (a GUID)"]
    return []


def _app(app: App) -> AppConfig:
    return _settings(
        AppConfig,
        app,
        tenant_id=app.tenant_id.lower(),
        app_id=app.app_id.lower(),
        api_base=app.api_base or DEFAULT_API_BASE,
        facility_url=app.facility_url or f"https://{app.facility}.smarttrace.ai",
        vault_secret_name=app.vault_secret_name or f"smarttrace-{app.facility}",
        rotation=_settings(RotationPolicy, app.rotation),
        handoff=_settings(HandoffConfig, app.handoff, allowed_hosts=tuple(host.lower() for host in app.handoff.allowed_hosts)),
        sign_ins=_settings(SignInsConfig, app.sign_ins),
        thresholds=tuple(sorted(app.thresholds, reverse=True)),
    )


def _identity(identity: Identity, env: Mapping[str, str]) -> IdentityConfig:
    secret = SecretValue(env[identity.client_secret_setting]) if identity.kind == "client-secret" and identity.client_secret_setting else None
    certificate = identity.certificate_path if identity.kind == "certificate" else None
    return _settings(IdentityConfig, identity, secret=secret, certificate_path=certificate)


def _cloud(cloud: Cloud) -> CloudConfig:
    graph = cloud.graph_endpoint or PUBLIC_GRAPH
    return CloudConfig(graph_endpoint=graph, graph_scope=cloud.graph_scope or _default_graph_scope(graph), authority=cloud.authority or PUBLIC_AUTHORITY)


def _default_graph_scope(graph_endpoint: str) -> str:
    host = urlsplit(graph_endpoint).hostname or "graph.microsoft.com"
    # Sovereign clouds: the scope is the Graph host of that cloud. A loopback
    # endpoint (the sandbox) keeps the public Graph audience.
    if host in ("127.0.0.1", "localhost", "::1"):
        host = "graph.microsoft.com"
    return f"https://{host}/.default"


def _storage(env: Mapping[str, str]) -> StorageConfig:
    # The Functions host's own setting: a connection string, or the identity-based
    # form (AzureWebJobsStorage__blobServiceUri / __accountName).
    connection = env.get("AzureWebJobsStorage")
    if connection:  # includes UseDevelopmentStorage=true: Azurite on its default ports
        return StorageConfig(connection_string=SecretValue(connection))
    uri = env.get("AzureWebJobsStorage__blobServiceUri")
    account = env.get("AzureWebJobsStorage__accountName")
    if uri:
        return StorageConfig(account_url=uri.rstrip("/"))
    if account:
        return StorageConfig(account_url=f"https://{account}.blob.core.windows.net")
    return StorageConfig()


# ---------------------------------------------------------------- the published JSON Schema


class _PublishedSchema(GenerateJsonSchema):
    """The schema editors read: no generated titles on fields (the descriptions say
    it), an optional field is one that may be left out (null is tolerated, not
    advertised), and a map's keys must match its key pattern."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: Any) -> Any:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: Any) -> Any:
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None:
            del json_schema["default"]
        return json_schema

    def dict_schema(self, schema: Any) -> Any:
        json_schema = super().dict_schema(schema)
        if "patternProperties" in json_schema:
            json_schema["additionalProperties"] = False
        return json_schema


def document_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration document (docs/config.schema.json)."""
    return {"$schema": SCHEMA_DIALECT, **Document.model_json_schema(schema_generator=_PublishedSchema)}


def schema_text() -> str:
    return json.dumps(document_schema(), indent=2, ensure_ascii=False) + "\n"
