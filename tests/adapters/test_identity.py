"""The credential factory: one per tenant, by identity kind, never a secret in the config."""

from __future__ import annotations

import dataclasses

import pytest
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

from sso_monitor.adapters.entra import identity as identity_adapter
from sso_monitor.adapters.entra.identity import credential_for, federated_assertion, token_exchange_scope
from sso_monitor.config import parse_config
from sso_monitor.errors import ConfigError

HOME = "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11"
MANAGED_IDENTITY = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"  # the user-assigned identity's client id
OTHER = "a8e3d9c4-6b12-4f7a-8e5d-2c9b0f1e3d22"
THIRD = "c0ffee00-6b12-4f7a-8e5d-2c9b0f1e3d22"
CLIENT = "11111111-2222-4333-8444-555555555555"


def config(identities: dict, environ: dict | None = None, cloud: dict | None = None):
    return parse_config(
        {
            "vaultUrl": "https://kv.vault.azure.net",
            "homeTenantId": HOME,
            "identities": identities,
            "cloud": cloud or {},
            "apps": [{"facility": "acme", "tenantId": HOME, "appId": CLIENT}, {"facility": "globex", "tenantId": OTHER, "appId": CLIENT.replace("1", "7")}],
        },
        environ=environ or {},
    )


def test_home_tenant_defaults_to_default_azure_credential():
    assert isinstance(credential_for(config({}), HOME), DefaultAzureCredential)


def test_another_tenant_needs_its_own_identity():
    with pytest.raises(ConfigError, match=f"identities.{OTHER}: tenant {OTHER} is not the home tenant"):
        credential_for(config({}), OTHER)


@pytest.mark.parametrize(
    "identity, environ, expected",
    [
        ({"kind": "managed-identity"}, {}, ManagedIdentityCredential),
        ({"kind": "managed-identity", "clientId": CLIENT}, {}, ManagedIdentityCredential),
        ({"kind": "client-secret", "clientId": CLIENT, "clientSecretSetting": "MY_SECRET"}, {"MY_SECRET": "x"}, ClientSecretCredential),
    ],
)
def test_each_kind_builds_its_credential(identity, environ, expected):
    assert isinstance(credential_for(config({OTHER: identity}, environ), OTHER), expected)


# ---------------------------------------------------------------- federated: the home user-assigned identity's token


@pytest.mark.parametrize(
    "authority, scope",
    [
        # The public cloud, with or without a trailing slash or a tenant in the path.
        ("https://login.microsoftonline.com", "api://AzureADTokenExchange/.default"),
        ("https://login.microsoftonline.com/", "api://AzureADTokenExchange/.default"),
        ("https://login.microsoftonline.com/organizations", "api://AzureADTokenExchange/.default"),
        # US Government (GCC High and DoD share the authority).
        ("https://login.microsoftonline.us", "api://AzureADTokenExchangeUSGov/.default"),
        ("https://LOGIN.MICROSOFTONLINE.US/", "api://AzureADTokenExchangeUSGov/.default"),
        # China, operated by 21Vianet: both of its authority hosts.
        ("https://login.chinacloudapi.cn", "api://AzureADTokenExchangeChina/.default"),
        ("https://login.partner.microsoftonline.cn/", "api://AzureADTokenExchangeChina/.default"),
        # Anything else (the sandbox, a private endpoint) gets the public audience.
        ("https://127.0.0.1:8443", "api://AzureADTokenExchange/.default"),
        ("https://login.microsoftonline.us.example.com", "api://AzureADTokenExchange/.default"),
    ],
)
def test_the_token_exchange_scope_follows_the_cloud(authority, scope):
    assert token_exchange_scope(authority) == scope


class FakeManagedIdentity:
    """Stands in for azure.identity.ManagedIdentityCredential: records who asked for what."""

    made: list[str | None] = []
    scopes: list[str] = []

    def __init__(self, *, client_id=None, **_):
        self.client_id = client_id
        FakeManagedIdentity.made.append(client_id)

    def get_token(self, *scopes, **_):
        FakeManagedIdentity.scopes.extend(scopes)
        return type("AccessToken", (), {"token": f"mi-token-for-{self.client_id}"})()


@pytest.fixture
def managed_identity(monkeypatch):
    import azure.identity

    FakeManagedIdentity.made, FakeManagedIdentity.scopes = [], []
    monkeypatch.setattr(azure.identity, "ManagedIdentityCredential", FakeManagedIdentity)
    return FakeManagedIdentity


@pytest.mark.parametrize(
    "authority, audience",
    [
        (None, "api://AzureADTokenExchange"),
        ("https://login.microsoftonline.us", "api://AzureADTokenExchangeUSGov"),
        ("https://login.chinacloudapi.cn", "api://AzureADTokenExchangeChina"),
    ],
)
def test_federated_presents_the_home_user_assigned_identitys_token(managed_identity, authority, audience):
    cfg = config(
        {HOME: {"kind": "managed-identity", "clientId": MANAGED_IDENTITY}, OTHER: {"kind": "federated", "clientId": CLIENT}},
        cloud={"authority": authority} if authority else None,
    )
    assert isinstance(credential_for(cfg, OTHER), ClientAssertionCredential)
    assert federated_assertion(cfg, OTHER)() == f"mi-token-for-{MANAGED_IDENTITY}"
    # The user-assigned identity (never a system-assigned one), for the cloud's audience.
    assert set(managed_identity.made) == {MANAGED_IDENTITY}
    assert managed_identity.scopes == [f"{audience}/.default"]


def test_federated_async_credential_uses_the_same_assertion(managed_identity):
    from azure.identity.aio import ClientAssertionCredential as AsyncClientAssertionCredential

    cfg = config({HOME: {"kind": "managed-identity", "clientId": MANAGED_IDENTITY}, OTHER: {"kind": "federated", "clientId": CLIENT}})
    assert isinstance(credential_for(cfg, OTHER, aio=True), AsyncClientAssertionCredential)
    assert managed_identity.made == [MANAGED_IDENTITY]


def test_federated_without_the_identitys_client_id_says_what_to_set(managed_identity):
    cfg = config({OTHER: {"kind": "federated", "clientId": CLIENT}})
    assert cfg.managed_identity_client_id is None
    with pytest.raises(ConfigError, match=f"identities.{OTHER}: a federated identity needs the client id .* set AZURE_CLIENT_ID"):
        credential_for(cfg, OTHER)
    assert managed_identity.made == []


def test_federated_takes_the_client_id_from_azure_client_id(managed_identity):
    # What infra/ deploys: no identities entry for the home tenant, AZURE_CLIENT_ID set.
    cfg = config({OTHER: {"kind": "federated", "clientId": CLIENT}}, environ={"AZURE_CLIENT_ID": MANAGED_IDENTITY})
    assert federated_assertion(cfg, OTHER)() == f"mi-token-for-{MANAGED_IDENTITY}"
    assert managed_identity.made == [MANAGED_IDENTITY]


def test_an_explicit_home_identity_wins_over_azure_client_id(managed_identity):
    cfg = config({HOME: {"kind": "managed-identity", "clientId": MANAGED_IDENTITY}, OTHER: {"kind": "federated", "clientId": CLIENT}})
    cfg = dataclasses.replace(cfg, managed_identity_client_id=CLIENT.replace("1", "3"))
    federated_assertion(cfg, OTHER)()
    assert managed_identity.made == [MANAGED_IDENTITY]
    assert identity_adapter.home_managed_identity_client_id(cfg) == MANAGED_IDENTITY


def test_certificate_identity(tmp_path):
    pem = tmp_path / "cert.pem"
    import trustme

    trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("monitor", key_type=trustme.KeyType.RSA).private_key_and_cert_chain_pem.write_to_path(str(pem))
    assert isinstance(credential_for(config({OTHER: {"kind": "certificate", "clientId": CLIENT, "certificatePath": str(pem)}}), OTHER), CertificateCredential)


def test_a_wildcard_identity_covers_every_tenant():
    cfg = config({"*": {"kind": "client-secret", "clientId": CLIENT, "clientSecretSetting": "S"}}, {"S": "x"})
    assert isinstance(credential_for(cfg, THIRD), ClientSecretCredential)


def test_async_variant(monkeypatch):
    from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

    cfg = config({OTHER: {"kind": "client-secret", "clientId": CLIENT, "clientSecretSetting": "S"}}, {"S": "x"})
    assert isinstance(credential_for(cfg, OTHER, aio=True), AsyncClientSecretCredential)


def test_a_private_authority_turns_instance_discovery_off(sandbox, ids):
    # Against the sandbox (an authority MSAL does not know) the credential must work
    # with discovery off: prove it by getting a token.
    from sso_sandbox.settings import monitor_document

    document, environ = monitor_document(sandbox)
    cfg = parse_config(document, environ)
    token = credential_for(cfg, ids.tenant_id).get_token(cfg.cloud.graph_scope)
    assert token.token
