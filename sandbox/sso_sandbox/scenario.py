"""Scenario files: seed a World (and a fault plan) from one JSON document.

The format is documented in docs/sandbox.md; examples/scenario.json shows all
of nearly all of it. Dates are ISO 8601 or relative to the world's start:
"now", "+30d", "-300d", "+2h", "-90m", "+45s". The clock runs from the real time
unless it is frozen: by the scenario's ``now``, or by the caller (``load_scenario(data,
now=...)``; ``sso-monitor sandbox`` runs the real time and freezes only with --frozen-now). Applications get a local ``key`` that
owners, vault secrets and facilities refer to; password credentials get a
``ref`` so a vault secret or a facility can hold *that* credential's value
without the file spelling a secret out.

Every error names where it is (``tenants[0].applications[1].web.logoutUrl``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sso_sandbox.budget import TENANT_SIZES
from sso_sandbox.clock import Clock, parse_iso
from sso_sandbox.faults import FaultPlan, FaultRule
from sso_sandbox.replication import Replication
from sso_sandbox.world import (
    GRAPH_RESOURCE,
    Application,
    AppRoleAssignment,
    PasswordCredential,
    Tenant,
    User,
    World,
    new_guid,
    parse_duration,
)


class ScenarioError(ValueError):
    """A scenario file that cannot be loaded; the message names the field."""


@dataclass
class ScenarioRefs:
    """Names the scenario gave to things, for the demo, the CLI and tests."""

    apps: dict[str, Application] = field(default_factory=dict)  # key -> app
    credentials: dict[str, PasswordCredential] = field(default_factory=dict)  # ref -> credential
    monitors: dict[str, str] = field(default_factory=dict)  # tenant id -> appId of the monitor identity
    description: str = ""
    stated_now: datetime | None = None  # the scenario's own ``now``, whether or not it froze the clock


# Whose time the world keeps: "scenario" (the scenario's ``now`` freezes the clock; without
# one the real time runs), "real" (the real time, running, whatever the scenario says),
# "frozen" (frozen at the scenario's ``now``, or at the moment of loading), or an instant
# to freeze at.
ClockChoice = Literal["scenario", "real", "frozen"] | datetime


_RELATIVE = re.compile(r"^(?P<sign>[+-])(?P<n>\d+(?:\.\d+)?)(?P<unit>[dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class _Loader:
    def __init__(self, data: dict[str, Any], now: ClockChoice = "scenario") -> None:
        self.data = data
        self.now = now
        self.refs = ScenarioRefs()

    # ---- small typed readers that name the field on error

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected an object, got {type(value).__name__}")
        return value

    def arr(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ScenarioError(f"{where}: expected a list, got {type(value).__name__}")
        return value

    def text(self, value: Any, where: str, *, required: bool = True) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ScenarioError(f"{where}: expected a non-empty string")
        return value

    def flag(self, value: Any, where: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: expected true or false")
        return value

    def number(self, value: Any, where: str, default: float) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ScenarioError(f"{where}: expected a number >= 0")
        return float(value)

    def date(self, value: Any, where: str, now: datetime) -> datetime:
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: expected a date (ISO 8601, 'now' or relative like '+30d')")
        if value == "now":
            return now
        match = _RELATIVE.match(value)
        if match:
            amount = float(match["n"]) * (1 if match["sign"] == "+" else -1)
            return now + timedelta(**{_UNITS[match["unit"]]: amount})
        try:
            return parse_iso(value)
        except ValueError:
            raise ScenarioError(f"{where}: not a date: {value!r}") from None

    def lag(self, value: Any, where: str) -> float | tuple[float, float]:
        """Seconds: a number, or [low, high] for a per-operation value drawn from that range."""
        if isinstance(value, list):
            if len(value) != 2:
                raise ScenarioError(f"{where}: expected a number of seconds or [low, high]")
            low, high = (self.number(v, where, 0) for v in value)
            if high < low:
                raise ScenarioError(f"{where}: high must not be below low")
            return (low, high)
        return self.number(value, where, 0)

    def duration(self, value: Any, where: str) -> timedelta:
        try:
            return parse_duration(self.text(value, where) or "")
        except ValueError:
            raise ScenarioError(f"{where}: not an ISO 8601 duration (e.g. P90D): {value!r}") from None

    def check_keys(self, item: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = set(item) - allowed
        if unknown:
            raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")

    # ---- the document

    def load(self) -> tuple[World, FaultPlan]:
        root = self.obj(self.data, "scenario")
        self.check_keys(root, {"$schema", "description", "now", "tenants", "vaults", "facilities", "webhooks", "smtpUsers", "faults"}, "scenario")
        clock = Clock()
        stated = self.date(root["now"], "now", clock.now()) if root.get("now") is not None else None
        self.refs.stated_now = stated
        if isinstance(self.now, datetime):
            clock.freeze(self.now)
        elif self.now == "frozen" or (self.now == "scenario" and stated is not None):
            clock.freeze(stated or clock.now())
        elif self.now not in ("scenario", "real"):
            raise ValueError(f"now: expected scenario, real, frozen or an instant, not {self.now!r}")
        world = World(clock)
        self.refs.description = root.get("description") or ""
        now = world.now()
        tenants = self.arr(root.get("tenants"), "tenants")
        if not tenants:
            raise ScenarioError("tenants: a scenario needs at least one tenant")
        for index, tenant in enumerate(tenants):
            self.tenant(world, self.obj(tenant, f"tenants[{index}]"), f"tenants[{index}]", now)
        for index, tenant in enumerate(tenants):  # owners may name apps of later entries
            self.ownership(world, tenant, f"tenants[{index}]")
        for index, vault in enumerate(self.arr(root.get("vaults"), "vaults")):
            self.vault(world, self.obj(vault, f"vaults[{index}]"), f"vaults[{index}]", now)
        for index, facility in enumerate(self.arr(root.get("facilities"), "facilities")):
            self.facility(world, self.obj(facility, f"facilities[{index}]"), f"facilities[{index}]")
        for index, hook in enumerate(self.arr(root.get("webhooks"), "webhooks")):
            where = f"webhooks[{index}]"
            hook = self.obj(hook, where)
            self.check_keys(hook, {"id", "mode"}, where)
            mode = hook.get("mode", "ok")
            if mode not in ("ok", "throttled", "error"):
                raise ScenarioError(f"{where}.mode: expected ok, throttled or error")
            world.add_webhook(self.text(hook.get("id"), f"{where}.id"), mode)
        users = root.get("smtpUsers") or {}
        for login, password in self.obj(users, "smtpUsers").items():
            world.smtp_users[login] = self.text(password, f"smtpUsers.{login}") or ""
        faults = FaultPlan()
        for index, rule in enumerate(self.arr(root.get("faults"), "faults")):
            try:
                faults.rules.append(FaultRule.from_dict(self.obj(rule, f"faults[{index}]")))
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"faults[{index}]: {exc}") from None
        world.scenario_refs = self.refs  # type: ignore[attr-defined]
        return world, faults

    def tenant(self, world: World, data: dict[str, Any], where: str, now: datetime) -> None:
        self.check_keys(
            data,
            {
                "id",
                "name",
                "propagationDelaySeconds",
                "appManagementPolicy",
                "users",
                "groups",
                "applications",
                "monitor",
                "size",
                "graphThrottling",
                "replication",
                "premium",
            },
            where,
        )
        tenant_id = self.text(data.get("id"), f"{where}.id") or ""
        if world.tenant(tenant_id):
            raise ScenarioError(f"{where}.id: tenant {tenant_id} appears twice")
        size = data.get("size", "small")
        if size not in TENANT_SIZES:
            raise ScenarioError(f"{where}.size: expected one of {', '.join(TENANT_SIZES)}")
        tenant = world.add_tenant(
            tenant_id,
            data.get("name") or tenant_id,
            propagation_delay=timedelta(seconds=self.number(data.get("propagationDelaySeconds"), f"{where}.propagationDelaySeconds", 0)),
            size=size,
            graph_throttling=self.flag(data.get("graphThrottling"), f"{where}.graphThrottling", True),
        )
        tenant.premium = self.flag(data.get("premium"), f"{where}.premium", True)
        if data.get("replication") is not None:
            try:
                tenant.replication = Replication.from_dict(self.obj(data["replication"], f"{where}.replication"))
            except ValueError as exc:
                raise ScenarioError(f"{where}.replication: {exc}") from None
        policy = data.get("appManagementPolicy")
        if policy is not None:
            pwhere = f"{where}.appManagementPolicy"
            policy = self.obj(policy, pwhere)
            self.check_keys(policy, {"passwordMaxLifetime", "restrictForAppsCreatedAfter", "enabled"}, pwhere)
            if policy.get("passwordMaxLifetime") is not None:
                tenant.password_max_lifetime = self.duration(policy["passwordMaxLifetime"], f"{pwhere}.passwordMaxLifetime")
            if policy.get("restrictForAppsCreatedAfter") is not None:
                tenant.policy_restrict_after = self.date(policy["restrictForAppsCreatedAfter"], f"{pwhere}.restrictForAppsCreatedAfter", now)
            tenant.policy_enabled = self.flag(policy.get("enabled"), f"{pwhere}.enabled", True)
        for index, user in enumerate(self.arr(data.get("users"), f"{where}.users")):
            uwhere = f"{where}.users[{index}]"
            user = self.obj(user, uwhere)
            self.check_keys(user, {"id", "upn", "displayName", "mail", "password"}, uwhere)
            upn = self.text(user.get("upn"), f"{uwhere}.upn") or ""
            record = User(
                id=user.get("id") or new_guid(),
                user_principal_name=upn,
                display_name=user.get("displayName") or upn,
                mail=user.get("mail") or upn,
                password=self.text(user.get("password"), f"{uwhere}.password") if user.get("password") is not None else None,
            )
            tenant.users[record.id] = record
        for index, group in enumerate(self.arr(data.get("groups"), f"{where}.groups")):
            gwhere = f"{where}.groups[{index}]"
            group = self.obj(group, gwhere)
            self.check_keys(group, {"id", "displayName"}, gwhere)
            tenant.groups[group.get("id") or new_guid()] = self.text(group.get("displayName"), f"{gwhere}.displayName") or ""
        for index, app in enumerate(self.arr(data.get("applications"), f"{where}.applications")):
            self.application(world, tenant.tenant_id, self.obj(app, f"{where}.applications[{index}]"), f"{where}.applications[{index}]", now)
        monitor = data.get("monitor")
        if monitor is not None:
            app = self.refs.apps.get(self.text(monitor, f"{where}.monitor") or "")
            if app is None or app.tenant_id != tenant.tenant_id:
                raise ScenarioError(f"{where}.monitor: no application with key {monitor!r} in this tenant")
            self.refs.monitors[tenant.tenant_id] = app.app_id
            world.monitors[tenant.tenant_id] = app.app_id

    def application(self, world: World, tenant_id: str, data: dict[str, Any], where: str, now: datetime) -> None:
        self.check_keys(
            data,
            {
                "key",
                "displayName",
                "appId",
                "id",
                "owners",
                "web",
                "identifierUris",
                "appRoles",
                "passwordMaxLifetime",
                "appManagementPolicy",
                "passwordCredentials",
                "servicePrincipal",
                "created",
                "notes",
                "disabledByMicrosoftStatus",
            },
            where,
        )
        key = self.text(data.get("key"), f"{where}.key") or ""
        if key in self.refs.apps:
            raise ScenarioError(f"{where}.key: {key!r} is used twice")
        web = data.get("web") or {}
        self.obj(web, f"{where}.web")
        self.check_keys(web, {"homePageUrl", "logoutUrl", "redirectUris", "implicitGrantSettings"}, f"{where}.web")
        app = world.add_application(
            tenant_id,
            self.text(data.get("displayName"), f"{where}.displayName") or "",
            app_id=data.get("appId"),
            object_id=data.get("id"),
            web={
                "homePageUrl": web.get("homePageUrl"),
                "logoutUrl": web.get("logoutUrl"),
                "redirectUris": list(self.arr(web.get("redirectUris"), f"{where}.web.redirectUris")),
                "implicitGrantSettings": {
                    "enableIdTokenIssuance": bool((web.get("implicitGrantSettings") or {}).get("enableIdTokenIssuance", False)),
                    "enableAccessTokenIssuance": bool((web.get("implicitGrantSettings") or {}).get("enableAccessTokenIssuance", False)),
                },
            },
            identifier_uris=list(self.arr(data.get("identifierUris"), f"{where}.identifierUris")),
            app_roles=list(self.arr(data.get("appRoles"), f"{where}.appRoles")),
            notes=data.get("notes"),
        )
        if data.get("created") is not None:
            app.created = self.date(data["created"], f"{where}.created", now)
        if data.get("passwordMaxLifetime") is not None:
            app.password_max_lifetime = self.duration(data["passwordMaxLifetime"], f"{where}.passwordMaxLifetime")
        if data.get("appManagementPolicy") is not None:
            self.app_policy(app, self.obj(data["appManagementPolicy"], f"{where}.appManagementPolicy"), f"{where}.appManagementPolicy")
        if data.get("disabledByMicrosoftStatus") is not None:
            app.disabled_by_microsoft_status = self.text(data["disabledByMicrosoftStatus"], f"{where}.disabledByMicrosoftStatus")
        self.refs.apps[key] = app
        for index, cred in enumerate(self.arr(data.get("passwordCredentials"), f"{where}.passwordCredentials")):
            cwhere = f"{where}.passwordCredentials[{index}]"
            cred = self.obj(cred, cwhere)
            self.check_keys(cred, {"ref", "displayName", "keyId", "secretText", "start", "end", "created"}, cwhere)
            start = self.date(cred.get("start", "-1d"), f"{cwhere}.start", now)
            end = self.date(cred.get("end", "+730d"), f"{cwhere}.end", now)
            if end <= start:
                raise ScenarioError(f"{cwhere}.end: must be after start")
            credential = world.add_password(
                app,
                display_name=cred.get("displayName"),
                start=start,
                end=end,
                created=self.date(cred["created"], f"{cwhere}.created", now) if cred.get("created") else start,
                secret_text=cred.get("secretText"),
                key_id=cred.get("keyId"),
            )
            ref = cred.get("ref")
            if ref is not None:
                ref = self.text(ref, f"{cwhere}.ref") or ""
                if ref in self.refs.credentials:
                    raise ScenarioError(f"{cwhere}.ref: {ref!r} is used twice")
                self.refs.credentials[ref] = credential
        sp = data.get("servicePrincipal", {})
        if sp is not None and sp is not False:
            self.service_principal(world, app, self.obj(sp, f"{where}.servicePrincipal"), f"{where}.servicePrincipal", now)

    def service_principal(self, world: World, app: Application, data: dict[str, Any], where: str, now: datetime) -> None:
        self.check_keys(
            data, {"id", "accountEnabled", "appRoleAssignmentRequired", "owners", "graphRoles", "roles", "assignments", "blockedByConditionalAccess"}, where
        )
        roles: dict[str, list[str]] = {}
        if data.get("graphRoles") is not None:
            roles[GRAPH_RESOURCE] = [self.text(r, f"{where}.graphRoles") or "" for r in self.arr(data["graphRoles"], f"{where}.graphRoles")]
        for resource, granted in self.obj(data.get("roles") or {}, f"{where}.roles").items():
            roles.setdefault(resource, []).extend(self.arr(granted, f"{where}.roles.{resource}"))
        sp = world.add_service_principal(
            app,
            object_id=data.get("id"),
            account_enabled=self.flag(data.get("accountEnabled"), f"{where}.accountEnabled", True),
            app_role_assignment_required=self.flag(data.get("appRoleAssignmentRequired"), f"{where}.appRoleAssignmentRequired", False),
            granted_roles=roles,
            blocked_by_conditional_access=self.flag(data.get("blockedByConditionalAccess"), f"{where}.blockedByConditionalAccess", False),
        )
        sp.owners = set()  # resolved in ownership(), once every app is known
        tenant = world.tenant(app.tenant_id)
        assert tenant is not None
        for index, assignment in enumerate(self.arr(data.get("assignments"), f"{where}.assignments")):
            awhere = f"{where}.assignments[{index}]"
            assignment = self.obj(assignment, awhere)
            self.check_keys(assignment, {"principalType", "displayName", "principalId", "appRoleId"}, awhere)
            kind = assignment.get("principalType", "Group")
            if kind not in ("User", "Group", "ServicePrincipal"):
                raise ScenarioError(f"{awhere}.principalType: expected User, Group or ServicePrincipal")
            sp.assigned_to.append(
                AppRoleAssignment(
                    id=new_guid(),
                    principal_id=assignment.get("principalId") or new_guid(),
                    principal_type=kind,
                    principal_display_name=self.text(assignment.get("displayName"), f"{awhere}.displayName") or "",
                    resource_id=sp.object_id,
                    resource_display_name=sp.display_name,
                    app_role_id=assignment.get("appRoleId") or "00000000-0000-0000-0000-000000000000",
                    created=now,
                )
            )

    def ownership(self, world: World, tenant_data: dict[str, Any], where: str) -> None:
        for index, data in enumerate(tenant_data.get("applications") or []):
            awhere = f"{where}.applications[{index}]"
            app = self.refs.apps[data["key"]]
            tenant = world.tenant(app.tenant_id)
            assert tenant is not None
            app.owners, app.owner_users = self.owners(tenant, data.get("owners"), f"{awhere}.owners")
            sp_data = data.get("servicePrincipal", {})
            sp = tenant.sp_by_app_id(app.app_id)
            if sp is not None and isinstance(sp_data, dict):
                sp.owners, sp.owner_users = self.owners(tenant, sp_data.get("owners"), f"{awhere}.servicePrincipal.owners")

    def app_policy(self, app: Application, data: dict[str, Any], where: str) -> None:
        """An appManagementPolicy assigned to this app: {"id"?, "displayName"?, "passwordMaxLifetime"?}."""
        self.check_keys(data, {"id", "displayName", "passwordMaxLifetime"}, where)
        app.policy_id = self.text(data.get("id"), f"{where}.id", required=False) or new_guid()
        app.policy_name = self.text(data.get("displayName"), f"{where}.displayName", required=False)
        if data.get("passwordMaxLifetime") is not None:
            app.password_max_lifetime = self.duration(data["passwordMaxLifetime"], f"{where}.passwordMaxLifetime")

    def owners(self, tenant: Tenant, values: Any, where: str) -> tuple[set[str], set[str]]:
        """Owners named by application key (its service principal), user (userPrincipalName or id) or appId:
        the appIds of the owning service principals, and the ids of the owning users."""
        principals: set[str] = set()
        users: set[str] = set()
        for value in self.arr(values, where):
            name = self.text(value, where) or ""
            user = tenant.user(name) if name not in self.refs.apps else None
            if user is not None:
                users.add(user.id)
            elif name in self.refs.apps or re.fullmatch(r"[0-9a-fA-F-]{36}", name):
                principals.add(self.owner(name, where))
            else:
                raise ScenarioError(f"{where}: {name!r} is neither an application key, a user of this tenant nor an appId")
        return principals, users

    def owner(self, value: Any, where: str) -> str:
        name = self.text(value, where) or ""
        if name in self.refs.apps:
            return self.refs.apps[name].app_id
        if re.fullmatch(r"[0-9a-fA-F-]{36}", name):
            return name
        raise ScenarioError(f"{where}: {name!r} is neither an application key nor an appId")

    def credential(self, ref: Any, where: str) -> PasswordCredential:
        name = self.text(ref, where) or ""
        if name not in self.refs.credentials:
            raise ScenarioError(f"{where}: no password credential has ref {name!r}")
        return self.refs.credentials[name]

    def vault(self, world: World, data: dict[str, Any], where: str, now: datetime) -> None:
        self.check_keys(data, {"name", "tenant", "access", "secrets", "purgeProtection", "softDeleteDays", "softDeleteLagSeconds", "lagSeed"}, where)
        name = self.text(data.get("name"), f"{where}.name") or ""
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", name):
            raise ScenarioError(f"{where}.name: Key Vault names are 3-24 letters, digits and dashes, starting with a letter")
        tenant_id = self.text(data.get("tenant"), f"{where}.tenant") or ""
        if world.tenant(tenant_id) is None:
            raise ScenarioError(f"{where}.tenant: unknown tenant {tenant_id}")
        access = {
            self.owner(k, f"{where}.access"): self.text(v, f"{where}.access.{k}") or ""
            for k, v in self.obj(data.get("access") or {}, f"{where}.access").items()
        }
        vault = world.add_vault(
            name,
            tenant_id,
            access=access,
            purge_protection=self.flag(data.get("purgeProtection"), f"{where}.purgeProtection", False),
            soft_delete_days=int(self.number(data.get("softDeleteDays"), f"{where}.softDeleteDays", 90)),
        )
        if data.get("softDeleteLagSeconds") is not None:
            vault.soft_delete_lag = self.lag(data["softDeleteLagSeconds"], f"{where}.softDeleteLagSeconds")
        if data.get("lagSeed") is not None:
            seed = data["lagSeed"]
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ScenarioError(f"{where}.lagSeed: expected an integer")
            vault.lag_seed = seed
        deleted: dict[str, tuple[datetime, str]] = {}  # lower-case name -> (deleted at, where)
        for index, secret in enumerate(self.arr(data.get("secrets"), f"{where}.secrets")):
            swhere = f"{where}.secrets[{index}]"
            secret = self.obj(secret, swhere)
            self.check_keys(secret, {"name", "value", "credential", "tags", "contentType", "expires", "enabled", "deleted"}, swhere)
            tags = {str(k): str(v) for k, v in self.obj(secret.get("tags") or {}, f"{swhere}.tags").items()}
            expires = None
            # 'credential' takes the value, keyId tag and expiry of that credential;
            # a 'value' beside it stands in for a wrong value pasted by hand.
            if secret.get("credential") is None and secret.get("value") is None:
                raise ScenarioError(f"{swhere}: give 'credential' (a credential ref), 'value', or both")
            value = ""
            if secret.get("credential") is not None:
                credential = self.credential(secret["credential"], f"{swhere}.credential")
                value = credential.secret_text
                tags.setdefault("keyId", credential.key_id)
                expires = credential.end
            if secret.get("value") is not None:
                value = self.text(secret["value"], f"{swhere}.value") or ""
            if secret.get("expires") is not None:
                expires = self.date(secret["expires"], f"{swhere}.expires", now)
            world.set_secret(
                vault,
                self.text(secret.get("name"), f"{swhere}.name") or "",
                value,
                content_type=secret.get("contentType", "text/plain"),
                tags=tags,
                enabled=self.flag(secret.get("enabled"), f"{swhere}.enabled", True),
                expires=expires,
            )
            marker = secret.get("deleted")
            if marker is not None and marker is not False:
                if vault.soft_delete_days <= 0:
                    raise ScenarioError(f"{swhere}.deleted: a vault without soft delete (softDeleteDays 0) keeps no deleted secrets")
                at = now if marker is True else self.date(marker, f"{swhere}.deleted", now)
                deleted[str(secret.get("name")).lower()] = (at, swhere)
        # soft-deleted (recoverable) secrets: every version of the name, deletion already finished
        for name, (at, _swhere) in deleted.items():
            vault.soft_delete(name, at, settled=True)

    def facility(self, world: World, data: dict[str, Any], where: str) -> None:
        self.check_keys(data, {"name", "app", "apiBase", "credential", "apiTokens", "online", "logoutCallbackOnline", "verifyOnPush"}, where)
        name = self.text(data.get("name"), f"{where}.name") or ""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
            raise ScenarioError(f"{where}.name: a facility name is lower-case letters, digits and dashes")
        app_key = self.text(data.get("app"), f"{where}.app") or ""
        app = self.refs.apps.get(app_key)
        if app is None:
            raise ScenarioError(f"{where}.app: no application with key {app_key!r}")
        secret = key_id = None
        if data.get("credential") is not None:
            credential = self.credential(data["credential"], f"{where}.credential")
            secret, key_id = credential.secret_text, credential.key_id
        world.add_facility(
            name,
            app.tenant_id,
            app.app_id,
            api_base=data.get("apiBase") or "https://api.smarttrace.ai/v1",
            client_secret=secret,
            key_id=key_id,
            updated=world.now() if secret else None,
            api_tokens=set(self.arr(data.get("apiTokens"), f"{where}.apiTokens")),
            online=self.flag(data.get("online"), f"{where}.online", True),
            logout_callback_online=self.flag(data.get("logoutCallbackOnline"), f"{where}.logoutCallbackOnline", True),
            verify_on_push=self.flag(data.get("verifyOnPush"), f"{where}.verifyOnPush", True),
        )


def load_scenario(data: dict[str, Any], *, now: ClockChoice = "scenario") -> tuple[World, FaultPlan]:
    """Build a World and a FaultPlan from a parsed scenario document; ``now`` says
    whose time its clock keeps (ClockChoice; by default the scenario's)."""
    return _Loader(data, now).load()


def scenario_refs(world: World) -> ScenarioRefs:
    return getattr(world, "scenario_refs", ScenarioRefs())
