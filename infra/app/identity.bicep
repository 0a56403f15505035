// The monitor's own identity: a user-assigned managed identity, not the Function App's
// system-assigned one. Another tenant is reached without a secret through a multi-tenant
// app registration whose federated identity credential trusts this identity, and Entra
// accepts only user-assigned identities there ("Only user-assigned managed identities can
// be used as a federated credential for apps. system-assigned identities aren't
// supported.", Microsoft Entra docs, workload-identity-federation-config-app-trust-managed-identity).
// The same identity is the Function App's for Graph, Key Vault, storage and telemetry
// (docs/deploy.md, "Every permission and why"); it outlives a re-created Function App.
param location string
param tags object = {}
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
