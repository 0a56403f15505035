// A Key Vault with Azure RBAC only (no access policies): deleted secrets stay
// recoverable, and purge protection means not even an owner can destroy them before the
// retention ends. main.bicep deploys two: the facility client secrets
// (smarttrace-<facility>, one version per credential, tagged with the rotation's stage and
// keyId), which the monitor writes, and its own setting secrets (Teams webhook URLs, SMTP
// passwords, handoff tokens), which it only reads. Every request to either is in the
// audit log (AuditEvent) in Log Analytics.
param location string
param tags object = {}
param name string

@description('Resource id of the Log Analytics workspace that receives the vault\'s audit log.')
param workspaceId string

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    // checkov:skip=CKV_AZURE_109:A firewall that denies by default needs the Function App in a virtual network with a private endpoint for the vault; this deployment has none (docs/deploy.md, "Network"). Every request needs an Entra ID token and an RBAC role on this vault.
    // checkov:skip=CKV_AZURE_189:Same reason: the Flex Consumption app, and the operator onboarding a facility, reach the vault over its public endpoint.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Every authenticated request (each read of a secret: SecretGet) and every refused one
// goes to the workspace, in the resource-specific table AZKVAuditLogs ('Dedicated').
// docs/deploy.md, "Who read a secret", has the query.
resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
