"""One credential factory per tenant, from the configured identity kind.

Home tenant: DefaultAzureCredential (the Function App's managed identity in
Azure, `az login` on a laptop). Other tenants: a multi-tenant app registration
that trusts the home managed identity through a federated credential (no
secret anywhere), or a certificate. ``client-secret`` exists for local use and
the sandbox; its value comes from an app setting, never from the config file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..config import CloudConfig, IdentityConfig, MonitorConfig
from ..errors import ConfigError

# Authorities that MSAL's instance discovery knows; any other (the sandbox,
# a private endpoint) needs discovery off.
KNOWN_AUTHORITY_HOSTS = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
}
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"


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
        assert identity_config.client_id is not None
        home = credential_for(config, config.home_tenant_id, aio=False)

        def assertion() -> str:
            # The home managed identity's token for the token-exchange audience is
            # the client assertion the other tenant's app trusts.
            return home.get_token(TOKEN_EXCHANGE_SCOPE).token

        return identity.ClientAssertionCredential(tenant_id, identity_config.client_id, assertion, **options)
    if kind == "default":
        if tenant_id.lower() != config.home_tenant_id.lower() and tenant_id.lower() not in config.identities:
            raise ConfigError([f"identities.{tenant_id}: tenant {tenant_id} is not the home tenant; configure a federated or certificate identity for it"])
        return identity.DefaultAzureCredential(authority=config.cloud.authority, exclude_interactive_browser_credential=True)
    raise ConfigError([f"identities.{tenant_id}.kind: unsupported {kind!r}"])
