"""The rotation's writers against the sandbox over HTTPS, with the real SDKs:
GraphAppWriter (addPassword sent once), KeyVaultWriter (versions and tags as
state), HttpSecretPusher (the handoff contract). Assertions are on the
world's end state and on what reached the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from sso_monitor.adapters.graph.writer import GraphAppWriter
from sso_monitor.adapters.keyvault.writer import KeyVaultWriter
from sso_monitor.adapters.smarttrace.handoff import HttpSecretPusher
from sso_monitor.config import MonitorConfig, parse_config
from sso_monitor.errors import (
    AccessDenied,
    AnswerLost,
    ExternalError,
    HandoffRejected,
    LifetimeExceedsPolicy,
    NotFound,
    TransientError,
)
from sso_monitor.models import SecretValue
from sso_monitor.rotation.ports import NewCredential
from sso_monitor.rotation.state import ordered
from sso_sandbox import Sandbox
from sso_sandbox.settings import monitor_document
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import GRAPH_RESOURCE, Application, World, new_guid

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

T = TypeVar("T")
MARKER = "sso-monitor r-test"
ADD_PASSWORD = "/v1.0/applications/*/addPassword"
REMOVE_PASSWORD = "/v1.0/applications/*/removePassword"
TOKEN = SecretValue("stk_5Qw9Lm2Xr8Tz4Vb7Nc1Hd6Jf3Kp0Gs")


# ---------------------------------------------------------------- helpers


def config_for(sandbox: Sandbox) -> MonitorConfig:
    document, environ = monitor_document(sandbox)
    return parse_config(document, environ)


def with_adapter(factory: Callable[[MonitorConfig], Any], sandbox: Sandbox, body: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``body(adapter)`` in one event loop with a fresh adapter, closed afterwards."""

    async def run() -> T:
        adapter = factory(config_for(sandbox))
        try:
            return await body(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def smarttrace_app(world: World, ids: StandardIds) -> Application:
    app = world.find_app(ids.smarttrace_app_id)
    assert app is not None
    return app


def add_password_posts(world: World) -> int:
    return world.count_requests(service="graph", method="POST", path_contains="addPassword")


def grant(world: World, tenant_id: str, roles: list[str]) -> None:
    world.tenant(tenant_id).sp_by_app_id(world.monitors[tenant_id]).granted_roles = {GRAPH_RESOURCE: roles}


# ---------------------------------------------------------------- Graph: reads


def test_read_app_gives_the_app_and_its_credentials(sandbox: Sandbox, ids: StandardIds) -> None:
    app = with_adapter(GraphAppWriter, sandbox, lambda w: w.read_app(ids.tenant_id, ids.smarttrace_app_id))
    assert app.object_id == ids.smarttrace_object_id
    assert app.app_id == ids.smarttrace_app_id and app.display_name == "SmartTrace"
    assert [c.key_id for c in app.password_credentials] == [ids.smarttrace_key_id]
    assert app.web.logout_url == "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme"


def test_read_app_missing_is_not_found_and_foreign_is_readable(sandbox: Sandbox, ids: StandardIds) -> None:
    with pytest.raises(NotFound):
        with_adapter(GraphAppWriter, sandbox, lambda w: w.read_app(ids.tenant_id, new_guid()))
    # Application.ReadWrite.OwnedBy reads every app; only writes need ownership (docs/sandbox/fidelity.md).
    foreign = with_adapter(GraphAppWriter, sandbox, lambda w: w.read_app(ids.tenant_id, ids.foreign_app_id))
    assert foreign.app_id == ids.foreign_app_id


def test_read_policy_with_policy_read_gives_the_cap_and_without_says_what_was_unreadable(sandbox: Sandbox, ids: StandardIds) -> None:
    unknown = with_adapter(GraphAppWriter, sandbox, lambda w: w.read_policy(ids.tenant_id, ids.smarttrace_app_id))
    assert unknown.policy is None and len(unknown.unreadable) == 2  # the app's own policy and the tenant default
    grant(sandbox.world, ids.tenant_id, ["Application.ReadWrite.OwnedBy", "Policy.Read.All"])
    known = with_adapter(GraphAppWriter, sandbox, lambda w: w.read_policy(ids.tenant_id, ids.smarttrace_app_id))
    assert known.unreadable == ()
    assert known.policy is not None and known.policy.max_lifetime == timedelta(days=365) and known.policy.enabled
    assert (known.policy.scope, known.policy.policy_id) == ("tenant", "00000000-0000-0000-0000-000000000000")


def test_an_apps_own_policy_replaces_the_tenant_default(sandbox: Sandbox, ids: StandardIds) -> None:
    grant(sandbox.world, ids.tenant_id, ["Application.ReadWrite.OwnedBy", "Policy.Read.All"])
    app = smarttrace_app(sandbox.world, ids)
    app.password_max_lifetime, app.policy_id = timedelta(days=30), "9c1f2a55-0000-4000-8000-00000000aaaa"
    reading = with_adapter(GraphAppWriter, sandbox, lambda w: w.read_policy(ids.tenant_id, ids.smarttrace_app_id))
    assert reading.policy is not None and reading.policy.max_lifetime == timedelta(days=30)
    assert (reading.policy.scope, reading.policy.policy_id) == ("app", "9c1f2a55-0000-4000-8000-00000000aaaa")
    end = sandbox.world.now() + timedelta(days=60)
    with pytest.raises(LifetimeExceedsPolicy) as info:
        with_adapter(GraphAppWriter, sandbox, lambda w: w.add_password(ids.tenant_id, ids.smarttrace_app_id, MARKER, end))
    assert info.value.policy_id == "9c1f2a55-0000-4000-8000-00000000aaaa"  # Graph names the refusing policy


# ---------------------------------------------------------------- Graph: addPassword


def test_add_password_returns_a_working_secret_with_the_end_asked_for(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    end = world.now() + timedelta(days=180)
    created: NewCredential = with_adapter(GraphAppWriter, sandbox, lambda w: w.add_password(ids.tenant_id, ids.smarttrace_app_id, MARKER, end))
    held = smarttrace_app(world, ids).credential(created.key_id)
    assert held is not None and held.display_name == MARKER == created.display_name
    assert created.secret == SecretValue(held.secret_text)
    assert world.secret_works(ids.tenant_id, ids.smarttrace_app_id, created.secret.reveal()) is None
    assert abs(created.end - end) < timedelta(seconds=1) and abs(held.end - end) < timedelta(seconds=1)
    assert held.secret_text not in repr(created)
    assert add_password_posts(world) == 1


def test_add_password_beyond_the_tenant_policy_is_lifetime_exceeds_policy(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    end = world.now() + timedelta(days=400)  # the standard tenant caps at 365 days
    with pytest.raises(LifetimeExceedsPolicy) as info:
        with_adapter(GraphAppWriter, sandbox, lambda w: w.add_password(ids.tenant_id, ids.smarttrace_app_id, MARKER, end))
    assert info.value.code == "CredentialInvalidLifetimeAsPerAppPolicy"
    assert info.value.policy_id == "00000000-0000-0000-0000-000000000000"  # the tenant default
    assert len(smarttrace_app(world, ids).password_credentials) == 1


def test_throttled_add_password_is_sent_once_and_fails(sandbox: Sandbox, ids: StandardIds) -> None:
    # The SDK's RetryHandler would re-send this POST after the 429; it must not.
    world = sandbox.world
    sandbox.faults.add("throttle", service="graph", method="POST", path=ADD_PASSWORD, times=1, retry_after=0.05)
    end = world.now() + timedelta(days=180)
    with pytest.raises(ExternalError) as info:
        with_adapter(GraphAppWriter, sandbox, lambda w: w.add_password(ids.tenant_id, ids.smarttrace_app_id, MARKER, end))
    assert add_password_posts(world) == 1
    assert info.value.status == 429 and not isinstance(info.value, AnswerLost)  # Graph refused it: nothing was created
    assert len(smarttrace_app(world, ids).password_credentials) == 1


def test_add_password_answered_503_is_sent_once_and_may_have_happened(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    sandbox.faults.add("status", service="graph", method="POST", path=ADD_PASSWORD, status=503, times=1)
    end = world.now() + timedelta(days=180)
    with pytest.raises(AnswerLost) as info:
        with_adapter(GraphAppWriter, sandbox, lambda w: w.add_password(ids.tenant_id, ids.smarttrace_app_id, MARKER, end))
    assert add_password_posts(world) == 1 and info.value.status == 503


def test_add_password_whose_answer_is_lost_is_answer_lost_and_the_credential_exists(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    sandbox.faults.add("drop", service="graph", method="POST", path=ADD_PASSWORD, when="after", times=1)
    end = world.now() + timedelta(days=180)
    with pytest.raises(AnswerLost):
        with_adapter(GraphAppWriter, sandbox, lambda w: w.add_password(ids.tenant_id, ids.smarttrace_app_id, MARKER, end))
    assert add_password_posts(world) == 1
    # It happened: the protocol finds it by its marker.
    assert [c.display_name for c in smarttrace_app(world, ids).password_credentials] == ["SmartTrace SSO", MARKER]


def test_add_password_on_an_app_we_do_not_own_is_access_denied(sandbox: Sandbox, ids: StandardIds) -> None:
    end = sandbox.world.now() + timedelta(days=30)
    before = len(sandbox.world.find_app(ids.foreign_app_id).password_credentials)
    with pytest.raises(AccessDenied):
        with_adapter(GraphAppWriter, sandbox, lambda w: w.add_password(ids.tenant_id, ids.foreign_app_id, MARKER, end))
    # The read is allowed (OwnedBy reads everything); Graph refuses the write itself.
    assert add_password_posts(sandbox.world) == 1
    assert len(sandbox.world.find_app(ids.foreign_app_id).password_credentials) == before


# ---------------------------------------------------------------- Graph: removePassword


def test_remove_password_then_again_is_already_gone(sandbox: Sandbox, ids: StandardIds) -> None:
    async def twice(writer: GraphAppWriter) -> tuple[bool, bool]:
        first = await writer.remove_password(ids.tenant_id, ids.smarttrace_app_id, ids.smarttrace_key_id)
        second = await writer.remove_password(ids.tenant_id, ids.smarttrace_app_id, ids.smarttrace_key_id)
        return first, second

    assert with_adapter(GraphAppWriter, sandbox, twice) == (True, False)
    assert smarttrace_app(sandbox.world, ids).password_credentials == []


def test_remove_password_is_retried_by_the_sdk_and_a_lost_answer_is_checked(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    sandbox.faults.add("throttle", service="graph", method="POST", path=REMOVE_PASSWORD, times=1, retry_after=0.05)
    assert with_adapter(GraphAppWriter, sandbox, lambda w: w.remove_password(ids.tenant_id, ids.smarttrace_app_id, ids.smarttrace_key_id)) is True
    assert world.count_requests(service="graph", method="POST", path_contains="removePassword") == 2

    other = world.add_password(smarttrace_app(world, ids), display_name=MARKER)
    sandbox.faults.add("drop", service="graph", method="POST", path=REMOVE_PASSWORD, when="after", times=1)
    assert with_adapter(GraphAppWriter, sandbox, lambda w: w.remove_password(ids.tenant_id, ids.smarttrace_app_id, other.key_id)) is False
    assert smarttrace_app(world, ids).password_credentials == []


def test_remove_password_on_an_app_we_do_not_own_is_access_denied(sandbox: Sandbox, ids: StandardIds) -> None:
    foreign = sandbox.world.find_app(ids.foreign_app_id)
    key_id = foreign.password_credentials[0].key_id
    with pytest.raises(AccessDenied):
        with_adapter(GraphAppWriter, sandbox, lambda w: w.remove_password(ids.tenant_id, ids.foreign_app_id, key_id))
    assert foreign.credential(key_id) is not None


# ---------------------------------------------------------------- Key Vault


def test_add_version_is_listed_last_with_its_tags_and_value(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    expires = world.now() + timedelta(days=180)
    value = SecretValue("kv-writer-test-value-1")
    # storedAt: the monitor's own stamp orders versions made in the same second (Key Vault lists by id)
    tags = {"stage": "pending", "keyId": "6a1d2c1e-0f4b-4c55-9a8e-0b9d5c3f2e11", "rotation": "r-test", "storedAt": "2999-01-01T00:00:00.000000Z"}

    token = world.set_secret(world.vault(ids.vault_name), "handoff-token", "kv-writer-token-value-1")

    async def body(writer: KeyVaultWriter) -> tuple[Any, ...]:
        added = await writer.add_version(ids.vault_secret_name, value, tags=tags, expires=expires)
        return (
            added,
            await writer.versions(ids.vault_secret_name),
            await writer.value(ids.vault_secret_name, added.version),
            await writer.read_secret("handoff-token"),
        )

    added, versions, read_back, setting = with_adapter(KeyVaultWriter, sandbox, body)
    assert {v.version for v in versions} == {v.version for v in world.vault(ids.vault_name).secrets[ids.vault_secret_name].versions}
    assert ordered(versions)[-1] == added and len(versions) == 2  # by created, then our storedAt: never the listing's position
    assert added.tags == tags and added.stage == "pending" and added.key_id == tags["keyId"] and added.enabled
    assert added.expires is not None and abs(added.expires - expires) < timedelta(seconds=1)
    assert ordered(versions)[0].stage == "current" and ordered(versions)[0].key_id == ids.smarttrace_key_id
    assert read_back == value
    assert setting.reveal() == token.value  # a setting secret (here in the same vault: no settingsVaultUrl)


def test_set_tags_replaces_the_tags_and_can_disable(sandbox: Sandbox, ids: StandardIds) -> None:
    stored = sandbox.world.vault(ids.vault_name).secrets[ids.vault_secret_name].latest

    async def body(writer: KeyVaultWriter) -> Any:
        await writer.set_tags(ids.vault_secret_name, stored.version, {"stage": "previous"}, enabled=False)
        return await writer.versions(ids.vault_secret_name)

    (version,) = with_adapter(KeyVaultWriter, sandbox, body)
    assert version.tags == {"stage": "previous"} and version.enabled is False
    assert stored.tags == {"stage": "previous"} and stored.enabled is False


def test_missing_secret_has_no_versions_and_no_value(sandbox: Sandbox, ids: StandardIds) -> None:
    assert with_adapter(KeyVaultWriter, sandbox, lambda w: w.versions("no-such-secret")) == []
    with pytest.raises(NotFound):
        with_adapter(KeyVaultWriter, sandbox, lambda w: w.read_secret("no-such-secret"))


def test_no_vault_access_is_access_denied(sandbox: Sandbox, ids: StandardIds) -> None:
    sandbox.world.vault(ids.vault_name).access.clear()
    with pytest.raises(AccessDenied):
        with_adapter(KeyVaultWriter, sandbox, lambda w: w.versions(ids.vault_secret_name))
    with pytest.raises(AccessDenied):
        with_adapter(KeyVaultWriter, sandbox, lambda w: w.add_version(ids.vault_secret_name, SecretValue("kv-writer-test-value-2"), tags={}, expires=None))


# ---------------------------------------------------------------- SmartTrace handoff


def push(sandbox: Sandbox, ids: StandardIds, *, secret: str, key_id: str, token: SecretValue = TOKEN) -> None:
    facility = sandbox.world.facility(ids.facility)
    url = f"{facility.api_base}/integrations/{facility.name}/azure-ad/client-secret"
    expires = sandbox.world.now() + timedelta(days=180)
    with_adapter(
        HttpSecretPusher,
        sandbox,
        lambda p: p.push(
            url=url,
            method="PUT",
            token=token,
            facility=facility.name,
            tenant_id=ids.tenant_id,
            app_id=ids.smarttrace_app_id,
            key_id=key_id,
            secret=SecretValue(secret),
            expires=expires,
        ),
    )


def test_push_hands_the_new_secret_to_smarttrace(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    new = world.add_password(smarttrace_app(world, ids), display_name=MARKER)
    push(sandbox, ids, secret=new.secret_text, key_id=new.key_id)
    facility = world.facility(ids.facility)
    assert facility.client_secret == new.secret_text and facility.key_id == new.key_id
    assert world.sign_in_works(ids.facility)
    push(sandbox, ids, secret=new.secret_text, key_id=new.key_id)  # idempotent: a lost answer is simply repeated
    assert [r.reason for r in facility.received] == ["accepted", "unchanged"]


def test_push_with_a_bad_token_is_rejected(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    new = world.add_password(smarttrace_app(world, ids), display_name=MARKER)
    with pytest.raises(HandoffRejected) as info:
        push(sandbox, ids, secret=new.secret_text, key_id=new.key_id, token=SecretValue("not-the-token"))
    assert info.value.status == 401 and info.value.code == "invalid_token"
    assert world.facility(ids.facility).key_id == ids.smarttrace_key_id


def test_push_of_a_secret_that_does_not_work_is_secret_rejected(sandbox: Sandbox, ids: StandardIds) -> None:
    world = sandbox.world
    wrong = "wrong8Q~" + new_guid()
    with pytest.raises(HandoffRejected) as info:
        push(sandbox, ids, secret=wrong, key_id=new_guid())
    assert info.value.status == 422 and info.value.code == "secret_rejected"
    assert "AADSTS7000215" in str(info.value) and wrong not in str(info.value)
    assert world.facility(ids.facility).key_id == ids.smarttrace_key_id and world.sign_in_works(ids.facility)


@pytest.mark.parametrize("fault", [{"fault": "status", "status": 503}, {"fault": "drop"}], ids=["503", "dropped"])
def test_push_without_an_answer_is_an_external_error_not_a_rejection(sandbox: Sandbox, ids: StandardIds, fault: dict[str, Any]) -> None:
    world = sandbox.world
    new = world.add_password(smarttrace_app(world, ids), display_name=MARKER)
    sandbox.faults.add(service="smarttrace", method="PUT", path="/v1/integrations/*", **fault)
    with pytest.raises(ExternalError) as info:
        push(sandbox, ids, secret=new.secret_text, key_id=new.key_id)
    assert isinstance(info.value, TransientError) and not isinstance(info.value, HandoffRejected)
    # requests' exception holds the request (secret and token): it is not kept.
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert world.facility(ids.facility).key_id == ids.smarttrace_key_id


def test_push_refuses_plain_http(sandbox: Sandbox, ids: StandardIds) -> None:
    new = sandbox.world.add_password(smarttrace_app(sandbox.world, ids), display_name=MARKER)
    expires = sandbox.world.now() + timedelta(days=1)
    with pytest.raises(ExternalError, match="https"):
        with_adapter(
            HttpSecretPusher,
            sandbox,
            lambda p: p.push(
                url="http://api.smarttrace.ai/v1/integrations/acme/azure-ad/client-secret",
                method="PUT",
                token=TOKEN,
                facility="acme",
                tenant_id=ids.tenant_id,
                app_id=ids.smarttrace_app_id,
                key_id=new.key_id,
                secret=SecretValue(new.secret_text),
                expires=expires,
            ),
        )
    assert sandbox.world.count_requests(service="smarttrace") == 0
