"""Key Vault's real-tenant behaviours the product relies on, against the sandbox over HTTPS
with the real azure-keyvault-secrets client (and raw ``requests`` for the wire details):

- GET /secrets/{name}/versions lists versions in ascending version-id order, not creation order;
  GET /secrets lists names case-insensitively ordered;
- delete, recover and purge finish in the background: for a few seconds GET /deletedsecrets/{name}
  (after a delete) or GET /secrets/{name} (after a recover) answers 404, and SetSecret on the name
  answers 409 ObjectIsBeingDeleted / ObjectIsBeingRecovered; the window ends when EITHER the world
  clock OR real time has moved past it, so it ends in every clock mode;
- SetSecret on a soft-deleted name answers 409 ObjectIsDeletedButRecoverable with the live text.

Sources for each: docs/sandbox/fidelity.md, "Key Vault".
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from sso_sandbox import Sandbox
from sso_sandbox.keyvault import MISSING_TOKEN_MESSAGE
from sso_sandbox.scenario import load_scenario
from sso_sandbox.testing import StandardIds
from sso_sandbox.world import DEFAULT_SOFT_DELETE_LAG, Vault, World
from tests.sandbox.test_keyvault import SECRET, VAULT, Raw, error_of, make_client


@pytest.fixture
def client(sandbox: Sandbox, ids: StandardIds) -> SecretClient:
    return make_client(sandbox, ids.tenant_id, ids.monitor_app_id, ids.monitor_secret)


@pytest.fixture
def raw(sandbox: Sandbox, ids: StandardIds) -> Raw:
    return Raw(sandbox, ids)


def vault_requests(sandbox: Sandbox, method: str, path_contains: str) -> list[int]:
    return [r.status for r in list(sandbox.world.requests) if r.service == "vault" and r.method == method and path_contains in r.path]


# ---------------------------------------------------------------- listing order


def test_versions_are_listed_in_ascending_version_id_order_not_creation_order(sandbox: Sandbox, client: SecretClient, raw: Raw) -> None:
    # the three versions of azure-sdk-for-js's "can retrieve all versions of a secret" recording,
    # created in this order and listed by the live service as a7b8…, e422…, e979…
    created = ["e979194c0eb845909239d4db199e5b2a", "a7b8228ad5a5414490d01f72656d2520", "e422cb713c284f22ad7df4129cc4bb81"]
    world = sandbox.world
    with world.lock:
        vault = world.vault(VAULT)
        for n, version_id in enumerate(created):
            world.set_secret(vault, "listSecretName", f"SECRET_VALUE{n}").version = version_id
    listed = [p.version for p in client.list_properties_of_secret_versions("listSecretName")]
    assert listed == ["a7b8228ad5a5414490d01f72656d2520", "e422cb713c284f22ad7df4129cc4bb81", "e979194c0eb845909239d4db199e5b2a"]
    # "latest" is still the newest created version, whatever its id
    assert client.get_secret("listSecretName").value == "SECRET_VALUE2"
    # the order holds across pages
    paged = [p.version for page in client.list_properties_of_secret_versions("listSecretName", max_page_size=1).by_page() for p in page]
    assert paged == listed
    first = raw("GET", "/secrets/listSecretName/versions", maxresults="2").json()
    assert [item["id"].rsplit("/", 1)[1] for item in first["value"]] == listed[:2] and first["nextLink"]


def test_versions_created_through_the_sdk_list_in_id_order(client: SecretClient) -> None:
    made = [client.set_secret("many", f"v{n}").properties.version for n in range(12)]
    listed = [p.version for p in client.list_properties_of_secret_versions("many", max_page_size=5)]
    assert listed == sorted(made)


def test_secret_names_are_listed_case_insensitively(client: SecretClient) -> None:
    for name in ("recoverCertificateName-1", "CRUDSecretName-1", "a-0", "Zeta", "crudSecretName-0"):
        client.set_secret(name, "x")
    names = [p.name for p in client.list_properties_of_secrets(max_page_size=2)]
    assert names == sorted(names, key=str.upper)
    assert names.index("crudSecretName-0") < names.index("CRUDSecretName-1") < names.index("recoverCertificateName-1")


# ---------------------------------------------------------------- the 401 without a token


def test_a_request_without_a_token_is_told_bearer_pop_or_mtls_pop(raw: Raw) -> None:
    response = raw("GET", f"/secrets/{SECRET}", token=False)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token."}}
    assert MISSING_TOKEN_MESSAGE == "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token."


# ---------------------------------------------------------------- delete


def test_a_deleted_secret_shows_in_deletedsecrets_only_after_the_lag_and_the_sdk_poller_waits_for_it(sandbox: Sandbox, client: SecretClient) -> None:
    sandbox.world.vault(VAULT).soft_delete_lag = 0.6
    started = time.monotonic()
    poller = client.begin_delete_secret(SECRET, _polling_interval=0.1)
    poller.wait()
    assert time.monotonic() - started >= 0.6
    assert poller.result().name == SECRET
    polls = vault_requests(sandbox, "GET", f"/deletedsecrets/{SECRET}")
    # the poller saw 404 first, then 200: exactly what DeleteRecoverPollingMethod polls for
    assert polls[0] == 404 and polls[-1] == 200 and set(polls) == {404, 200}
    assert client.get_deleted_secret(SECRET).name == SECRET


def test_during_the_deletion_reads_answer_404_and_set_answers_409_object_is_being_deleted(sandbox: Sandbox, raw: Raw) -> None:
    sandbox.world.vault(VAULT).soft_delete_lag = 3600  # only the world clock will end it here
    deleted = raw("DELETE", f"/secrets/{SECRET}")
    assert deleted.status_code == 200 and deleted.json()["recoveryId"].endswith(f"/deletedsecrets/{SECRET}")
    assert raw("GET", f"/secrets/{SECRET}").status_code == 404  # gone from /secrets at once
    pending = raw("GET", f"/deletedsecrets/{SECRET}")
    assert pending.status_code == 404
    assert pending.json() == {"error": {"code": "SecretNotFound", "message": f"Deleted Secret not found: {SECRET}"}}
    assert raw("GET", "/deletedsecrets").json()["value"] == []
    assert SECRET not in [i["id"].rsplit("/", 1)[1] for i in raw("GET", "/secrets").json()["value"]]

    again = raw("PUT", f"/secrets/{SECRET}", body={"value": "new"})
    assert again.status_code == 409
    assert again.json() == {
        "error": {
            "code": "Conflict",
            "message": f"Secret {SECRET} is currently being deleted and cannot be re-created; retry later.",
            "innererror": {"code": "ObjectIsBeingDeleted"},
        }
    }
    for method, path in (("DELETE", f"/deletedsecrets/{SECRET}"), ("POST", f"/deletedsecrets/{SECRET}/recover")):
        busy = raw(method, path)
        assert busy.status_code == 409, path
        assert busy.json() == {"error": {"code": "Conflict", "message": "Secret is currently being deleted.", "innererror": {"code": "ObjectIsBeingDeleted"}}}

    sandbox.world.clock.advance(seconds=3601)
    assert raw("GET", f"/deletedsecrets/{SECRET}").status_code == 200
    recoverable = raw("PUT", f"/secrets/{SECRET}", body={"value": "new"})
    assert recoverable.status_code == 409
    assert recoverable.json()["error"]["innererror"] == {"code": "ObjectIsDeletedButRecoverable"}


def test_the_lag_ends_on_real_time_when_the_world_clock_is_frozen(sandbox: Sandbox, raw: Raw) -> None:
    world = sandbox.world
    world.clock.freeze()
    world.vault(VAULT).soft_delete_lag = 0.4
    assert raw("DELETE", f"/secrets/{SECRET}").status_code == 200
    assert raw("GET", f"/deletedsecrets/{SECRET}").status_code == 404
    time.sleep(0.5)
    assert raw("GET", f"/deletedsecrets/{SECRET}").status_code == 200


def test_the_lag_ends_on_the_world_clock_when_real_time_stands_still(sandbox: Sandbox, raw: Raw) -> None:
    world = sandbox.world
    world.clock.freeze()
    world.vault(VAULT).soft_delete_lag = 86_400.0
    assert raw("DELETE", f"/secrets/{SECRET}").status_code == 200
    world.clock.advance(hours=23)
    assert raw("GET", f"/deletedsecrets/{SECRET}").status_code == 404
    world.clock.advance(hours=1, seconds=1)  # e.g. a rotation sleeping on a SimulatedClock
    assert raw("GET", f"/deletedsecrets/{SECRET}").status_code == 200


def test_set_over_a_soft_deleted_name_is_refused_before_anything_is_written(sandbox: Sandbox, client: SecretClient) -> None:
    sandbox.world.vault(VAULT).soft_delete_lag = 0
    client.begin_delete_secret(SECRET).wait()
    with pytest.raises(ResourceExistsError) as conflict:
        client.set_secret(SECRET, "new value", tags={"stage": "pending"})
    assert conflict.value.status_code == 409
    assert error_of(conflict.value) == {
        "code": "Conflict",
        "message": f"Secret {SECRET} is currently in a deleted but recoverable state, and its name cannot be reused; "
        "in this state, the secret can only be recovered or purged.",
        "innererror": {"code": "ObjectIsDeletedButRecoverable"},
    }
    deleted = sandbox.world.vault(VAULT).deleted[SECRET]
    assert len(deleted.secret.versions) == 1 and SECRET not in sandbox.world.vault(VAULT).secrets


# ---------------------------------------------------------------- recover and purge


def test_a_recovered_secret_reads_404_until_the_recovery_finishes_and_the_sdk_poller_waits(sandbox: Sandbox, client: SecretClient, raw: Raw) -> None:
    vault = sandbox.world.vault(VAULT)
    vault.soft_delete_lag = 0
    original = client.get_secret(SECRET)
    client.begin_delete_secret(SECRET).wait()

    vault.soft_delete_lag = 3600
    recovered = raw("POST", f"/deletedsecrets/{SECRET}/recover")
    assert recovered.status_code == 200 and "value" not in recovered.json()
    assert raw("GET", f"/deletedsecrets/{SECRET}").status_code == 404  # left the deleted collection at once
    missing = raw("GET", f"/secrets/{SECRET}/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SecretNotFound"
    assert raw("GET", f"/secrets/{SECRET}/versions").json()["value"] == []
    assert SECRET not in [i["id"].rsplit("/", 1)[1] for i in raw("GET", "/secrets").json()["value"]]
    busy = raw("PUT", f"/secrets/{SECRET}", body={"value": "new"})
    assert busy.status_code == 409
    assert busy.json() == {
        "error": {
            "code": "Conflict",
            "message": f"Secret {SECRET} is currently being recovered and cannot be re-created; retry later.",
            "innererror": {"code": "ObjectIsBeingRecovered"},
        }
    }
    sandbox.world.clock.advance(seconds=3601)
    assert client.get_secret(SECRET).value == original.value

    # through the SDK: its recover poller polls GET /secrets/{name}/ until 200
    vault.soft_delete_lag = 0
    client.begin_delete_secret(SECRET).wait()
    vault.soft_delete_lag = 0.5
    poller = client.begin_recover_deleted_secret(SECRET, _polling_interval=0.1)
    poller.wait()
    assert poller.result().version == original.properties.version
    polls = vault_requests(sandbox, "GET", f"/secrets/{SECRET}")
    assert 404 in polls and polls[-1] == 200


def test_a_purged_name_cannot_be_reused_until_the_purge_finishes(sandbox: Sandbox, raw: Raw) -> None:
    vault = sandbox.world.vault(VAULT)
    vault.soft_delete_lag = 0
    assert raw("DELETE", f"/secrets/{SECRET}").status_code == 200
    vault.soft_delete_lag = 3600
    assert raw("DELETE", f"/deletedsecrets/{SECRET}").status_code == 204
    assert raw("GET", f"/deletedsecrets/{SECRET}").status_code == 404
    busy = raw("PUT", f"/secrets/{SECRET}", body={"value": "new"})
    assert busy.status_code == 409
    assert busy.json()["error"] == {
        "code": "Conflict",
        "message": f"Secret {SECRET} is currently being deleted and cannot be re-created; retry later.",
        "innererror": {"code": "ObjectIsBeingDeleted"},
    }
    sandbox.world.clock.advance(seconds=3601)
    assert raw("PUT", f"/secrets/{SECRET}", body={"value": "new"}).status_code == 200


# ---------------------------------------------------------------- the lag itself


def test_the_default_lag_is_realistic_and_deterministic() -> None:
    a, b = Vault("kv-sso", "t"), Vault("kv-sso", "t")
    draws = [a.next_lag() for _ in range(50)]
    assert draws == [b.next_lag() for _ in range(50)]  # seeded by the vault's name
    low, high = DEFAULT_SOFT_DELETE_LAG
    assert all(low <= d <= high for d in draws) and len(set(draws)) > 1
    seeded = Vault("kv-sso", "t", lag_seed=7)
    assert [seeded.next_lag() for _ in range(5)] != draws[:5]
    assert [Vault("kv-sso", "t", lag_seed=7).next_lag() for _ in range(1)] == [Vault("other", "t", lag_seed=7).next_lag()]
    assert Vault("kv", "t", soft_delete_lag=2.5).next_lag() == 2.5
    assert Vault("kv", "t", soft_delete_lag=(4, 4)).next_lag() == 4


def _scenario(vault_extra: dict[str, Any], secret_extra: dict[str, Any]) -> World:
    tenant = "72f988bf-0000-4000-8000-0000000000aa"
    world, _faults = load_scenario(
        {
            "now": "2030-01-01T00:00:00Z",
            "tenants": [{"id": tenant, "applications": [{"key": "monitor", "displayName": "Monitor"}]}],
            "vaults": [
                {
                    "name": "kv-lag",
                    "tenant": tenant,
                    "access": {"monitor": "Key Vault Secrets Officer"},
                    "secrets": [{"name": "kept", "value": "v"}, {"name": "gone", "value": "old", **secret_extra}],
                    **vault_extra,
                }
            ],
        }
    )
    return world


def test_scenario_fields_seed_the_lag_and_soft_deleted_secrets() -> None:
    world = _scenario({"softDeleteLagSeconds": [2, 5], "lagSeed": 11}, {"deleted": "-2d"})
    vault = world.vault("kv-lag")
    assert vault.soft_delete_lag == (2.0, 5.0) and vault.lag_seed == 11
    assert list(vault.secrets) == ["kept"]
    gone = vault.deleted["gone"]
    assert gone.settling is None  # a seeded deletion has finished
    assert (world.now() - gone.deleted).days == 2 and (gone.scheduled_purge - gone.deleted).days == 90
    assert _scenario({"softDeleteLagSeconds": 0}, {"deleted": True}).vault("kv-lag").soft_delete_lag == 0
    from sso_sandbox.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"vaults\[0\]\.secrets\[1\]\.deleted"):
        _scenario({"softDeleteDays": 0}, {"deleted": True})
    with pytest.raises(ScenarioError, match="softDeleteLagSeconds"):
        _scenario({"softDeleteLagSeconds": [5, 2]}, {})


def test_a_seeded_soft_deleted_secret_blocks_set_with_the_sdk() -> None:
    world = _scenario({}, {"deleted": True})
    tenant = next(iter(world.tenants.values()))
    monitor = next(iter(tenant.applications.values()))
    world.add_service_principal(monitor)
    secret = world.add_password(monitor, start=world.now(), created=world.now()).secret_text
    with Sandbox(world) as sandbox:
        ca = str(sandbox.endpoints.ca_path)
        credential = ClientSecretCredential(
            tenant.tenant_id, monitor.app_id, secret, authority=sandbox.endpoints.authority, disable_instance_discovery=True, connection_verify=ca
        )
        kv = SecretClient(sandbox.endpoints.vault("kv-lag"), credential, verify_challenge_resource=False, connection_verify=ca)
        with pytest.raises(HttpResponseError) as conflict:
            kv.set_secret("gone", "new")
        assert conflict.value.status_code == 409
        assert error_of(conflict.value)["innererror"] == {"code": "ObjectIsDeletedButRecoverable"}
        assert json.loads(conflict.value.response.text())["error"]["message"].startswith("Secret gone is currently in a deleted but recoverable state")
        assert kv.get_deleted_secret("gone").properties.version
        assert [p.name for p in kv.list_properties_of_secrets()] == ["kept"]
