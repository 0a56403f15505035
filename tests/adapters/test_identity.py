"""The credential factory: one per tenant, by identity kind, never a secret in the config."""

from __future__ import annotations

import pytest
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

from sso_monitor.adapters.identity import credential_for
from sso_monitor.config import parse_config
from sso_monitor.errors import ConfigError

HOME = "5f1c2b7e-3a41-4c8e-9d2a-1b6e7f0a9c11"
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
        ({"kind": "federated", "clientId": CLIENT}, {}, ClientAssertionCredential),
    ],
)
def test_each_kind_builds_its_credential(identity, environ, expected):
    assert isinstance(credential_for(config({OTHER: identity}, environ), OTHER), expected)


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
    from sso_monitor.sandbox.settings import monitor_document

    document, environ = monitor_document(sandbox)
    cfg = parse_config(document, environ)
    token = credential_for(cfg, ids.tenant_id).get_token(cfg.cloud.graph_scope)
    assert token.token
