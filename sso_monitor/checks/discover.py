"""Onboarding a tenant (`sso-monitor discover`): which app registrations are SmartTrace's,
under which facility, how healthy they are, and the configuration that monitors them.

Pure decisions, plus one run over a port (``ApplicationDirectory``, implemented by the
Graph directory reader):

- ``classify``: an app is SmartTrace's when its front-channel logout URL or one of its
  web redirect URIs is on ``smarttrace.ai`` or a host under it (an exact host suffix:
  ``smarttrace.ai.example.com`` and ``notsmarttrace.ai`` are not). A host under
  ``staging.smarttrace.ai`` is SmartTrace's staging: reported apart and added only
  when asked (``include_staging``), never by default.
- the facility is the name SmartTrace's callbacks end with,
  ``<apiBase>/auth/callback/azure-logout/<facility>`` (the logout URL first, then a
  redirect URI ``<apiBase>/auth/callback/azure/<facility>``), else the first label of a
  facility host (``<facility>.smarttrace.ai``): exactly what the check expects
  (config.AppConfig.expected_logout_url), so a discovered app checks clean when it is.
- ``merge_apps``: the discovered apps join an existing configuration document, keyed by
  appId; an app already there keeps its entry untouched, whatever was edited in it; a
  facility name already taken by another app is not added (it is reported).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from sso_monitor.checks.decisions import evaluate
from sso_monitor.checks.findings import Finding, Severity
from sso_monitor.checks.ports import DirectorySnapshot
from sso_monitor.config import DEFAULT_API_BASE, DEFAULT_THRESHOLDS, AppConfig, HandoffConfig, MonitorConfig, RotationPolicy
from sso_monitor.models import AppObservation, AppRegistration

DOMAIN = "smarttrace.ai"
STAGING_DOMAIN = "staging.smarttrace.ai"
STAGING_API_BASE = "https://api.staging.smarttrace.ai/v1"
PRODUCTION, STAGING = "production", "staging"
CALLBACK = "/auth/callback/"
LOGOUT_CALLBACK, SIGN_IN_CALLBACK = "azure-logout", "azure"
FACILITY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # as the configuration's facility field
NOT_FACILITIES = frozenset({"api", "www", "app", "staging"})  # SmartTrace's own hosts, not a facility's


class ApplicationDirectory(Protocol):
    """What discovery reads from Graph (the directory reader implements it)."""

    async def list_applications(self) -> list[AppRegistration]:
        """Every application registration of the tenant."""
        ...

    async def snapshot(self, tenant_id: str, app_ids: Sequence[str]) -> DirectorySnapshot: ...

    async def monitor_object_id(self) -> str | None: ...


# ---------------------------------------------------------------- what a URL says


def smarttrace_host(url: str | None) -> str | None:
    """``production`` or ``staging`` when the URL's host is SmartTrace's (an exact
    ``smarttrace.ai`` suffix, by labels), else None."""
    try:
        host = (urlsplit((url or "").strip()).hostname or "").rstrip(".").lower()
    except ValueError:  # an unparseable URL (a bad port, brackets) is nobody's
        return None
    if host == STAGING_DOMAIN or host.endswith("." + STAGING_DOMAIN):
        return STAGING
    if host == DOMAIN or host.endswith("." + DOMAIN):
        return PRODUCTION
    return None


@dataclass(frozen=True)
class Link:
    """What one SmartTrace URL says: its environment, and the facility and API base when
    it is one of SmartTrace's callbacks (or a facility's own host)."""

    url: str
    environment: str
    facility: str | None = None
    api_base: str | None = None


def read_link(url: str | None, callback: str) -> Link | None:
    environment = smarttrace_host(url)
    if environment is None or url is None:
        return None
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    path = parts.path
    if CALLBACK in path:
        prefix, _, rest = path.partition(CALLBACK)
        segments = [s for s in rest.split("/") if s]
        if len(segments) == 2 and segments[0].lower() == callback:
            netloc = host if parts.port is None else f"{host}:{parts.port}"
            return Link(url, environment, segments[1].lower(), f"https://{netloc}{prefix.rstrip('/')}")
    domain = STAGING_DOMAIN if environment == STAGING else DOMAIN
    label = host.removesuffix("." + domain)
    if label != host and "." not in label and label not in NOT_FACILITIES:
        return Link(url, environment, label)
    return Link(url, environment)


# ---------------------------------------------------------------- which apps are SmartTrace's


@dataclass(frozen=True)
class Candidate:
    """A SmartTrace app registration found in the tenant."""

    app: AppRegistration
    environment: str  # production | staging
    facility: str | None  # None: no facility name could be read (problem says why)
    api_base: str
    facility_url: str | None  # None: the default, https://<facility>.smarttrace.ai
    evidence: str  # the URL that made it SmartTrace's
    problem: str | None = None

    @property
    def entry(self) -> dict[str, Any]:
        """Its entry in the configuration document: only what differs from the defaults."""
        assert self.facility is not None
        entry: dict[str, Any] = {"facility": self.facility, "tenantId": "", "appId": self.app.app_id}
        if self.api_base != DEFAULT_API_BASE:
            entry["apiBase"] = self.api_base
        if self.facility_url is not None:
            entry["facilityUrl"] = self.facility_url
        return entry


def classify(app: AppRegistration) -> Candidate | None:
    """A Candidate when the app's logout URL or a web redirect URI is on a SmartTrace host."""
    links = [read_link(app.web.logout_url, LOGOUT_CALLBACK)] + [read_link(uri, SIGN_IN_CALLBACK) for uri in app.web.redirect_uris]
    found = [link for link in links if link is not None]
    if not found:
        return None
    named = [link for link in found if link.facility is not None]
    # The logout URL first (found[0] when it is SmartTrace's), then the redirect URIs; a
    # callback (which also names the API) before a facility's own host.
    best = next((link for link in named if link.api_base is not None), named[0] if named else None)
    environment = (best or found[0]).environment
    api_base = (best.api_base if best is not None else None) or (STAGING_API_BASE if environment == STAGING else DEFAULT_API_BASE)
    facility = best.facility if best is not None else None
    problem = None
    if facility is None:
        problem = "no facility name in its SmartTrace URLs (expected .../auth/callback/azure-logout/<facility> or https://<facility>.smarttrace.ai)"
    elif not FACILITY.match(facility):
        problem = f"{facility!r} is not a facility name the configuration accepts (lower-case letters, digits, dashes)"
        facility = None
    facility_url = f"https://{facility}.{STAGING_DOMAIN}" if environment == STAGING and facility else None
    return Candidate(app, environment, facility, api_base, facility_url, (best or found[0]).url, problem)


# ---------------------------------------------------------------- the configuration document


@dataclass
class Merge:
    """What ``merge_apps`` did, per appId (lower-case)."""

    added: list[str] = field(default_factory=list)  # facilities added
    kept: dict[str, str] = field(default_factory=dict)  # appId -> the facility it is configured as
    conflicts: dict[str, str] = field(default_factory=dict)  # appId -> why it was not added


def configured_apps(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    apps = document.get("apps")
    return [a for a in apps if isinstance(a, Mapping)] if isinstance(apps, list) else []


def merge_apps(document: Mapping[str, Any], tenant_id: str, candidates: Sequence[Candidate]) -> tuple[dict[str, Any], Merge]:
    """The document with the candidates' entries appended (a copy; key order kept). An app
    whose appId is already configured keeps its entry as it is; a candidate whose facility
    name another app uses is not added."""
    merged = copy.deepcopy(dict(document))
    apps = merged.get("apps")
    if not isinstance(apps, list):
        apps = merged["apps"] = []
    outcome = Merge()
    by_app_id = {str(a.get("appId", "")).lower(): a for a in configured_apps(merged)}
    facilities = {str(a.get("facility", "")).lower(): str(a.get("appId", "")).lower() for a in configured_apps(merged)}
    for candidate in candidates:
        app_id = candidate.app.app_id.lower()
        existing = by_app_id.get(app_id)
        if existing is not None:
            outcome.kept[app_id] = str(existing.get("facility", ""))
            continue
        if candidate.facility is None:
            continue
        owner = facilities.get(candidate.facility)
        if owner is not None:
            outcome.conflicts[app_id] = f"facility {candidate.facility} is already configured for app {owner}"
            continue
        entry = {**candidate.entry, "tenantId": tenant_id.lower()}
        apps.append(entry)
        by_app_id[app_id] = entry
        facilities[candidate.facility] = app_id
        outcome.added.append(candidate.facility)
    return merged, outcome


def app_config(candidate: Candidate, tenant_id: str, settings: MonitorConfig | None) -> AppConfig | None:
    """The settings the check would use for a candidate: the configured app's when the
    merged document is valid, else the defaults (None: no facility to check against)."""
    if settings is not None:
        found = next((a for a in settings.apps if a.app_id == candidate.app.app_id.lower()), None)
        if found is not None:
            return found
    if candidate.facility is None:
        return None
    return AppConfig(
        facility=candidate.facility,
        tenant_id=tenant_id.lower(),
        app_id=candidate.app.app_id.lower(),
        api_base=candidate.api_base,
        facility_url=candidate.facility_url or f"https://{candidate.facility}.{DOMAIN}",
        vault_secret_name=f"smarttrace-{candidate.facility}",
        rotation=RotationPolicy(),
        handoff=HandoffConfig(),
        thresholds=DEFAULT_THRESHOLDS,
        max_active_secrets=2,
    )


# ---------------------------------------------------------------- health from what Graph says


def directory_observation(app_id: str, snapshot: DirectorySnapshot) -> AppObservation:
    """An app's observation from Graph alone: no Key Vault, no token request, no pages
    (discovery needs only the read permission the monitor has in the tenant)."""
    return snapshot.observation(app_id)


@dataclass
class Discovered:
    candidate: Candidate
    findings: list[Finding] = field(default_factory=list)
    owned: bool | None = None  # is the monitor an owner (None: not known)
    configured_as: str | None = None  # the facility of the configured app with this appId
    not_added: str | None = None  # why it is not in the configuration (a conflict, a problem, staging)
    checked: bool = True  # False: no facility to check it against (its health is not known)

    @property
    def status(self) -> str:
        if not self.checked:
            return "unchecked"
        worst = max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)
        return "ok" if worst is None or worst is Severity.INFO else worst.value


@dataclass
class Discovery:
    tenant_id: str
    scanned: int  # app registrations read
    monitor_object_id: str | None
    apps: list[Discovered]  # production, then staging, each by facility
    missing: list[str]  # configured facilities of this tenant whose app is not in it
    merge: Merge
    document: dict[str, Any]  # the configuration with the discovered apps merged in

    @property
    def production(self) -> list[Discovered]:
        return [d for d in self.apps if d.candidate.environment == PRODUCTION]

    @property
    def staging(self) -> list[Discovered]:
        return [d for d in self.apps if d.candidate.environment == STAGING]

    @property
    def not_owned(self) -> list[Discovered]:
        return [d for d in self.apps if d.owned is False]


async def discover(
    directory: ApplicationDirectory,
    tenant_id: str,
    document: Mapping[str, Any],
    now: datetime,
    *,
    include_staging: bool = False,
    settings_of: Any = None,
) -> Discovery:
    """List the tenant's applications, keep SmartTrace's, merge them into ``document`` and
    judge each one's health from Graph. ``settings_of(document)``: the document's settings
    (MonitorConfig), or None when it is not valid (the health then uses the defaults)."""
    listed = await directory.list_applications()
    candidates = sorted(
        (c for c in (classify(app) for app in listed) if c is not None),
        key=lambda c: (c.environment != PRODUCTION, c.facility or "~", c.app.app_id),
    )
    to_add = [c for c in candidates if c.problem is None and (c.environment == PRODUCTION or include_staging)]
    merged, merge = merge_apps(document, tenant_id, to_add)
    settings = settings_of(merged) if settings_of is not None else None
    snapshot = await directory.snapshot(tenant_id, [c.app.app_id for c in candidates]) if candidates else DirectorySnapshot()
    monitor = await directory.monitor_object_id() if candidates else None
    found: list[Discovered] = []
    for candidate in candidates:
        app_id = candidate.app.app_id.lower()
        obs = directory_observation(app_id, snapshot)
        config = app_config(candidate, tenant_id, settings)
        findings = evaluate(config, obs, now) if config is not None else []
        owned = obs.ownership.monitor_owns if obs.ownership is not None else None
        why = candidate.problem or merge.conflicts.get(app_id)
        if why is None and candidate.environment == STAGING and not include_staging and app_id not in merge.kept:
            why = "staging (--include-staging adds it)"
        found.append(Discovered(candidate, findings, owned, merge.kept.get(app_id), why, checked=config is not None))
    present = {app.app_id.lower() for app in listed}
    missing = sorted(
        str(a.get("facility"))
        for a in configured_apps(document)
        if str(a.get("tenantId", "")).lower() == tenant_id.lower() and str(a.get("appId", "")).lower() not in present
    )
    return Discovery(tenant_id.lower(), len(listed), monitor, found, missing, merge, merged)
