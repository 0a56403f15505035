"""One credential factory per tenant, from the configured identity kind.

Home tenant: DefaultAzureCredential (the Function App's managed identity in
Azure, `az login` on a laptop). Other tenants: a multi-tenant app registration
that trusts the home managed identity through a federated credential (no
secret anywhere), or a certificate. ``client-secret`` exists for local use and
the sandbox; its value comes from an app setting, never from the config file.

The federated kind presents a token of the home tenant's *user-assigned*
managed identity as its client assertion: Entra accepts no other identity in a
federated credential on an app ("Only user-assigned managed identities can be
used as a federated credential for apps", Microsoft Entra docs,
workload-identity-federation-config-app-trust-managed-identity). That token's
audience depends on the cloud (token_exchange_scope).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sso_monitor.config import CloudConfig, IdentityConfig, MonitorConfig
from sso_monitor.errors import ConfigError

# Authorities that MSAL's instance discovery knows; any other (the sandbox,
# a private endpoint) needs discovery off.
KNOWN_AUTHORITY_HOSTS = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
}
# The audience a managed identity's token must carry for a federated identity
# credential to accept it, by the cloud's Entra authority host ("Microsoft Entra ID
# global service: api://AzureADTokenExchange; Microsoft Entra ID for US Government:
# api://AzureADTokenExchangeUSGov; Microsoft Entra China operated by 21Vianet:
# api://AzureADTokenExchangeChina"; docs/configuration.md cites the page).
PUBLIC_TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
TOKEN_EXCHANGE_AUDIENCES = {
    "login.microsoftonline.us": "api://AzureADTokenExchangeUSGov",
    "login.chinacloudapi.cn": "api://AzureADTokenExchangeChina",
    "login.partner.microsoftonline.cn": "api://AzureADTokenExchangeChina",
}


def token_exchange_scope(authority: str) -> str:
    """The scope to ask the managed identity for, so that its token is a client assertion
    the configured cloud's Entra accepts: the public cloud's audience for any authority
    that is not a sovereign cloud's (the sandbox included)."""
    host = (urlsplit(authority).hostname or "").lower()
    return f"{TOKEN_EXCHANGE_AUDIENCES.get(host, PUBLIC_TOKEN_EXCHANGE_AUDIENCE)}/.default"


def home_managed_identity_client_id(config: MonitorConfig) -> str | None:
    """The client id of the home tenant's user-assigned managed identity: the home tenant's
    ``managed-identity`` entry in ``identities``, else the AZURE_CLIENT_ID setting (which
    infra/ sets, and config reads as ``managed_identity_client_id``)."""
    home = config.identity_for(config.home_tenant_id)
    if home.kind == "managed-identity" and home.client_id:
        return home.client_id
    return config.managed_identity_client_id


def federated_assertion(config: MonitorConfig, tenant_id: str) -> Callable[[], str]:
    """The client assertion of a ``federated`` identity: a token of the home tenant's
    user-assigned managed identity for the cloud's token-exchange audience."""
    client_id = home_managed_identity_client_id(config)
    if not client_id:
        raise ConfigError(
            [
                f"identities.{tenant_id}: a federated identity needs the client id of the home tenant's user-assigned managed identity: "
                f'set AZURE_CLIENT_ID, or identities.{config.home_tenant_id} to {{"kind": "managed-identity", "clientId": ...}}'
            ]
        )
    import azure.identity as identity

    home = identity.ManagedIdentityCredential(client_id=client_id)
    scope = token_exchange_scope(config.cloud.authority)

    def assertion() -> str:
        return home.get_token(scope).token

    return assertion


def _common(cloud: CloudConfig, ca_bundle: str | None) -> dict[str, Any]:
    host = urlsplit(cloud.authority).hostname or ""
    options: dict[str, Any] = {"authority": cloud.authority}
    if host not in KNOWN_AUTHORITY_HOSTS:
        options["disable_instance_discovery"] = True
    if ca_bundle:
        options["connection_verify"] = ca_bundle
    return options


def authority_options(config: MonitorConfig) -> dict[str, Any]:
    """The authority, instance-discovery and CA options for an azure-identity credential.

    For adapters that build their own credential (the token probe builds one per
    probe) and must reach the same Entra as ``credential_for``'s credentials.
    """
    return _common(config.cloud, config.network.ca_bundle)


def credential_for(config: MonitorConfig, tenant_id: str, *, aio: bool = False) -> Any:
    """An azure-identity credential (sync, or ``aio`` for the async SDKs) for this tenant."""
    if aio:
        from azure.identity import aio as identity
    else:
        import azure.identity as identity  # type: ignore[no-redef]
    identity_config: IdentityConfig = config.identity_for(tenant_id)
    options = _common(config.cloud, config.network.ca_bundle)
    kind = identity_config.kind
    if kind == "client-secret":
        assert identity_config.secret is not None and identity_config.client_id is not None
        return identity.ClientSecretCredential(tenant_id, identity_config.client_id, identity_config.secret.reveal(), **options)
    if kind == "certificate":
        assert identity_config.certificate_path and identity_config.client_id
        return identity.CertificateCredential(tenant_id, identity_config.client_id, identity_config.certificate_path, **options)
    if kind == "managed-identity":
        return identity.ManagedIdentityCredential(client_id=identity_config.client_id) if identity_config.client_id else identity.ManagedIdentityCredential()
    if kind == "federated":
        # The multi-tenant app (clientId) is registered in the home tenant and consented in
        # tenant_id; the home managed identity's token is the assertion its credential trusts.
        assert identity_config.client_id is not None
        return identity.ClientAssertionCredential(tenant_id, identity_config.client_id, federated_assertion(config, tenant_id), **options)
    if kind == "default":
        if tenant_id.lower() != config.home_tenant_id.lower() and tenant_id.lower() not in config.identities:
            raise ConfigError([f"identities.{tenant_id}: tenant {tenant_id} is not the home tenant; configure a federated or certificate identity for it"])
        return identity.DefaultAzureCredential(authority=config.cloud.authority, exclude_interactive_browser_credential=True)
    raise ConfigError([f"identities.{tenant_id}.kind: unsupported {kind!r}"])
