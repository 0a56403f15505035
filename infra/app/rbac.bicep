// Azure roles of the monitor's user-assigned managed identity, each on the one resource
// it is for (never the resource group or the subscription), and, optionally, of the
// person who onboards facilities. docs/deploy.md has the table of why each one and why
// nothing broader.
@description('Object (principal) id of the monitor\'s user-assigned managed identity.')
param principalId string
param storageAccountName string

@description('The vault of the facilities\' client secrets: the monitor writes new versions and tags there.')
param keyVaultName string

@description('The vault of the monitor\'s own setting secrets (Teams webhook URLs, SMTP passwords, handoff tokens): the monitor only reads there.')
param settingsVaultName string
param applicationInsightsName string

@description('Object id of the operator (a user); empty: no role for anyone but the monitor.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// Built-in role definition ids (the same in every subscription).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource settingsVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: settingsVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The host's own containers (timer schedule state, host locks), the deployment
// package, and the rotation's blob leases (container sso-monitor-leases).
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The work queue sso-monitor-work (the timer sends, the trigger reads) and its poison queue.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The alert de-duplication state.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Read, add versions to and tag the facilities' client secrets: on that vault only.
resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Read the webhook URLs, SMTP passwords and handoff tokens; never change them, so a
// compromised monitor cannot redirect where alerts or secrets go.
resource settingsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(settingsVault.id, principalId, roles.keyVaultSecretsUser)
  scope: settingsVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry with Entra ID: Application Insights' local authentication is off.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The operator stores a facility's current secret when onboarding it (sso-monitor adopt)...
resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// ...and the channels' secrets (a Teams webhook URL, an SMTP password, a handoff token).
resource operatorSettingsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(settingsVault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  scope: settingsVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}
