"""A small standard world for tests: one tenant, the monitor's identity, one
SmartTrace app it owns, one it does not, a vault, a facility and a webhook.

    world, ids = standard_world()
    with Sandbox(world) as sandbox: ...
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sso_sandbox.world import GRAPH_RESOURCE, Application, World


@dataclass
class StandardIds:
    tenant_id: str
    monitor_app_id: str
    monitor_secret: str
    smarttrace_app_id: str
    smarttrace_object_id: str
    smarttrace_key_id: str
    foreign_app_id: str
    foreign_object_id: str
    vault_name: str
    vault_secret_name: str
    facility: str
    webhook_id: str
    mailbox: str
    admin_api_uri: str
    admin_api_client_id: str = ""
    # people who sign in to the status page (user_signin.py): one holds SsoMonitor.Read, one no role
    reader_upn: str = "reader@contoso.example"
    visitor_upn: str = "visitor@contoso.example"
    user_password: str = ""


def standard_world(propagation_seconds: float = 0) -> tuple[World, StandardIds]:
    world = World()
    now = world.now()
    tenant = world.add_tenant(
        "72f988bf-0000-4000-8000-000000000001",
        "Contoso Foods",
        propagation_delay=timedelta(seconds=propagation_seconds),
        password_max_lifetime=timedelta(days=365),
    )
    # The monitor's own identity (stands in for the Function App's managed identity).
    monitor = world.add_application(tenant.tenant_id, "SmartTrace SSO Monitor")
    world.add_service_principal(
        monitor,
        granted_roles={GRAPH_RESOURCE: ["Application.ReadWrite.OwnedBy", "Mail.Send"]},
    )
    world.monitors[tenant.tenant_id] = monitor.app_id
    monitor_secret = world.add_password(monitor, display_name="sandbox", created=now - timedelta(days=1), start=now - timedelta(days=1))
    # The SmartTrace SSO app registration, owned by the monitor.
    smarttrace = world.add_application(
        tenant.tenant_id,
        "SmartTrace",
        owners={monitor.app_id},
        web={
            "homePageUrl": "https://acme.smarttrace.ai",
            "logoutUrl": "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme",
            "redirectUris": ["https://api.smarttrace.ai/v1/auth/callback/azure/acme"],
            "implicitGrantSettings": {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True},
        },
    )
    credential = world.add_password(
        smarttrace, display_name="SmartTrace SSO", start=now - timedelta(days=300), end=now + timedelta(days=65), created=now - timedelta(days=300)
    )
    sp = world.add_service_principal(smarttrace, app_role_assignment_required=True, owners={monitor.app_id})
    # An app the monitor does not own.
    foreign = world.add_application(tenant.tenant_id, "Payroll")
    world.add_password(foreign, created=now - timedelta(days=10), start=now - timedelta(days=10))
    world.add_service_principal(foreign)
    vault = world.add_vault("kv-sso", tenant.tenant_id, access={monitor.app_id: "Key Vault Secrets Officer"})
    world.set_secret(
        vault,
        "smarttrace-acme",
        credential.secret_text,
        content_type="text/plain",
        tags={"keyId": credential.key_id, "stage": "current"},
        expires=credential.end,
    )
    world.add_facility(
        "acme",
        tenant.tenant_id,
        smarttrace.app_id,
        client_secret=credential.secret_text,
        key_id=credential.key_id,
        api_tokens={"stk_5Qw9Lm2Xr8Tz4Vb7Nc1Hd6Jf3Kp0Gs"},
    )
    hook = world.add_webhook("ops")
    mailbox = "sso-monitor@contoso.example"
    _add_user(world, tenant.tenant_id, mailbox, "SSO Monitor mailbox")
    from sso_sandbox.world import AppRoleAssignment, new_guid

    sp.assigned_to.append(
        AppRoleAssignment(
            id=new_guid(),
            principal_id=new_guid(),
            principal_type="Group",
            principal_display_name="Plant staff",
            resource_id=sp.object_id,
            resource_display_name=sp.display_name,
            app_role_id="00000000-0000-0000-0000-000000000000",
            created=now - timedelta(days=300),
        )
    )
    admin_api, password = _admin_api(world, tenant.tenant_id, now)
    return world, StandardIds(
        tenant_id=tenant.tenant_id,
        monitor_app_id=monitor.app_id,
        monitor_secret=monitor_secret.secret_text,
        smarttrace_app_id=smarttrace.app_id,
        smarttrace_object_id=smarttrace.object_id,
        smarttrace_key_id=credential.key_id,
        foreign_app_id=foreign.app_id,
        foreign_object_id=foreign.object_id,
        vault_name=vault.name,
        vault_secret_name="smarttrace-acme",
        facility="acme",
        webhook_id=hook.id,
        mailbox=mailbox,
        admin_api_uri="api://sso-monitor-admin",
        admin_api_client_id=admin_api.app_id,
        user_password=password,
    )


READ_ROLE_ID = "6f1d7c2a-0000-4000-8000-00000000c001"
ADMIN_ROLE_ID = "6f1d7c2a-0000-4000-8000-00000000c002"


def _admin_api(world: World, tenant_id: str, now: datetime) -> tuple[Application, str]:
    """The admin API's registration as infra/app/admin-api.bicep makes it: app roles
    SsoMonitor.Read and .Admin, the user_impersonation scope, assignment required; the
    status page signs in with it (a test adds the page's URL to its spa redirect URIs).
    Two test users: reader (assigned SsoMonitor.Read) and visitor (no assignment)."""
    from sso_sandbox.world import AppRoleAssignment, new_guid

    roles = [
        {"id": READ_ROLE_ID, "value": "SsoMonitor.Read", "displayName": "SsoMonitor.Read", "allowedMemberTypes": ["User", "Application"], "isEnabled": True},
        {"id": ADMIN_ROLE_ID, "value": "SsoMonitor.Admin", "displayName": "SsoMonitor.Admin", "allowedMemberTypes": ["User", "Application"], "isEnabled": True},
    ]
    admin_api = world.add_application(tenant_id, "SSO Monitor admin API", identifier_uris=["api://sso-monitor-admin"], app_roles=roles)
    admin_api.delegated_scopes = ["user_impersonation"]
    sp = world.add_service_principal(admin_api, app_role_assignment_required=True)
    password = "Sandbox-" + new_guid()[:13]
    reader = world.add_user(tenant_id, "reader@contoso.example", "Riley Reader", mail="reader@contoso.example", password=password)
    world.add_user(tenant_id, "visitor@contoso.example", "Vic Visitor", mail="visitor@contoso.example", password=password)
    sp.assigned_to.append(
        AppRoleAssignment(
            id=new_guid(),
            principal_id=reader.id,
            principal_type="User",
            principal_display_name=reader.display_name,
            resource_id=sp.object_id,
            resource_display_name=sp.display_name,
            app_role_id=READ_ROLE_ID,
            created=now - timedelta(days=30),
        )
    )
    return admin_api, password


def _add_user(world: World, tenant_id: str, upn: str, name: str) -> None:
    from sso_sandbox.world import User, new_guid

    tenant = world.tenant(tenant_id)
    assert tenant is not None
    user = User(id=new_guid(), user_principal_name=upn, display_name=name, mail=upn)
    tenant.users[user.id] = user
