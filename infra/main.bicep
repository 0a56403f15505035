// SmartTrace SSO Monitor: everything one deployment needs, with no more rights than
// the monitor uses. Shaped like Microsoft's azd templates for Python Functions on the
// Flex Consumption plan (functions-quickstart-python-http-azd), with plain resources
// instead of AVM modules so that checkov can read every property. docs/deploy.md
// explains each permission; tests/infra checks the facts this file promises.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds a short unique token used in every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. Flex Consumption is not offered everywhere: az functionapp list-flexconsumption-locations')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Python of the Function App (Flex Consumption). The package needs 3.11 or newer. 3.12 by default: azd\'s remote build has built apps configured for 3.13 with Python 3.11 (Azure/azure-dev#8538), and a package built for one Python may not import on another (docs/deploy.md, "Decisions and sources").')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.12'

@description('The monitor configuration document (docs/configuration.md) without vaultUrl, settingsVaultUrl and adminApi: this deployment fills those in from the two vaults and the admin API app registration it creates, homeTenantId from the tenant, and cloud endpoints from the Azure environment unless the document sets them.')
param monitorConfig object

@description('NCRONTAB (six fields, seconds first) of the scheduled check; the app setting SSO_MONITOR_SCHEDULE.')
param schedule string = '0 0 6 * * *'

@description('uniqueName of each monitored SmartTrace app registration in this tenant. The managed identity becomes an owner of each (added; existing owners stay). An app made by hand has no uniqueName until it is set once: docs/deploy.md, "Onboard a facility".')
param monitoredAppUniqueNames array = []

@description('Grant Mail.Send (Microsoft Graph application role) to the managed identity: only when the configuration has a graph-mail alert channel. Scope it to one mailbox in Exchange Online (docs/deploy.md).')
param sendMailThroughGraph bool = false

@description('Grant Policy.Read.ApplicationConfiguration (read-only), so the monitor can read the tenant\'s secret lifetime policy. Optional: without it one check is skipped (docs/decisions.md).')
param readAppManagementPolicy bool = false

@description('Grant AuditLog.Read.All (read-only), so the monitor reads Entra\'s sign-in log and per-credential activity (signIns.enabled, handoff.confirmation activity). Optional; the tenant also needs Entra ID P1/P2 (docs/deploy.md, docs/evidence.md).')
param readSignInLogs bool = false

@description('Save the telemetry query SsoMonitorAttention (the apps whose secret ends within 14 days or with a critical finding) in the Log Analytics workspace, and an alert rule on it (one alert per facility), for Azure Monitor (docs/deploy.md, "Telemetry").')
param telemetryQueries bool = false

@description('With telemetryQueries: the action group (resource id) the alert rule sso-monitor-attention notifies. Empty: the alerts show in Azure Monitor only.')
param telemetryActionGroupId string = ''

@description('Object id of the person who operates the monitor (azd fills in the signed-in user). Gets Key Vault Secrets Officer on both vaults (to store facility and channel secrets) and the SsoMonitor.Admin role of the admin API. Empty: no one.')
param operatorPrincipalId string = ''

@description('What operatorPrincipalId is: a user, or a service principal when a pipeline deploys.')
@allowed([
  'User'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Largest number of Function App instances (Flex Consumption scale-out). Flex Consumption takes 40 to 1000 ("The lowest maximum scale is currently 40. The highest currently supported value is 1000."); 100 is the platform\'s default (docs/deploy.md, "Decisions and sources").')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days a deleted secret or vault can be recovered, in both vaults. With purge protection nothing shortens this once set.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 90

@description('The App Service domain of this cloud: azurewebsites.net (public), azurewebsites.us (US Government), chinacloudsites.cn (China). The status page\'s URL is built from it.')
param appServiceDomainSuffix string = 'azurewebsites.net'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'smarttrace-sso-monitor'
}
var functionAppName = 'func-sso-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'
var adminApiUniqueName = 'sso-monitor-admin-${resourceToken}'
// The status page every alert links to (sso_monitor/functions/status_view.py): the Function
// App's default host name is <name>.<suffix> (this template does not ask for the
// randomized "unique default hostname").
var statusPageUrl = 'https://${functionAppName}.${appServiceDomainSuffix}/api/status/view'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    telemetryQueries: telemetryQueries
    alertActionGroupId: telemetryActionGroupId
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    deploymentContainerName: deploymentContainerName
  }
}

// The monitor's identity first: everything else names it.
module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-sso-${resourceToken}'
  }
}

// Two vaults, so that the identity that writes facility secrets can only read the
// secrets that say where alerts and secrets go. Facility client secrets
// (smarttrace-<facility>): the monitor writes new versions and tags.
module vault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
    workspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
  }
}

// The monitor's own setting secrets (Teams webhook URLs, SMTP passwords, handoff
// tokens): the monitor only reads them (settingsVaultUrl in the configuration).
module settingsVault 'app/keyvault.bicep' = {
  name: 'settings-keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'kvset-${resourceToken}'
    workspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
  }
}

// The admin API's app registration first: the configuration document names it.
module adminApi 'app/admin-api.bicep' = {
  name: 'admin-api'
  scope: rg
  params: {
    uniqueName: adminApiUniqueName
    displayName: 'SmartTrace SSO Monitor admin API (${environmentName})'
    operatorPrincipalId: operatorPrincipalId
    statusPageUrl: statusPageUrl
  }
}

// What the code reads from the document and this deployment knows better than a
// parameter file: the vaults it created, its tenant, the admin API it registered.
// Cloud endpoints come from the Azure environment (sovereign clouds too) unless the
// document says otherwise.
var cloudFromEnvironment = {
  cloud: {
    graphEndpoint: '${environment().graph}v1.0'
    authority: environment().authentication.loginEndpoint
  }
}
var deploymentFacts = {
  vaultUrl: vault.outputs.uri
  settingsVaultUrl: settingsVault.outputs.uri
  homeTenantId: tenant().tenantId
  adminApi: {
    tenantId: tenant().tenantId
    audience: adminApi.outputs.audience
    clientId: adminApi.outputs.clientId
  }
}
// Alerts link to the status page unless the document names another (union merges nested objects).
var statusPageDefault = {
  alerts: {
    statusPageUrl: statusPageUrl
  }
}
var monitorDocument = union(cloudFromEnvironment, statusPageDefault, monitorConfig, deploymentFacts)

module api 'app/function.bicep' = {
  name: 'api'
  scope: rg
  params: {
    location: location
    tags: tags
    name: functionAppName
    planName: 'plan-${resourceToken}'
    pythonVersion: pythonVersion
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    schedule: schedule
    monitorDocument: string(monitorDocument)
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: vault.outputs.name
    settingsVaultName: settingsVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

// Microsoft Graph grants to the identity come last. Entra is eventually consistent: an
// app role assignment or an owner added for a principal created seconds earlier can fail
// with "does not exist" (microsoftgraph/msgraph-bicep-types#193). Waiting for the Function
// App and the Azure roles gives the new identity minutes to replicate; if the first
// deployment still fails there, run it again (docs/deploy.md, "If the first azd up fails
// in Entra"): every declaration here is idempotent.
module entra 'app/entra.bicep' = {
  name: 'entra'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    monitoredAppUniqueNames: monitoredAppUniqueNames
    sendMailThroughGraph: sendMailThroughGraph
    readAppManagementPolicy: readAppManagementPolicy
    readSignInLogs: readSignInLogs
  }
  dependsOn: [
    api
    rbac
  ]
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
// The monitor's user-assigned identity: object id (Graph grants, Exchange, the subject of
// a federated credential), client id, resource id.
output SSO_MONITOR_PRINCIPAL_ID string = identity.outputs.principalId
output SSO_MONITOR_CLIENT_ID string = identity.outputs.clientId
output SSO_MONITOR_IDENTITY_ID string = identity.outputs.id
// Facility client secrets (the monitor writes), and the monitor's own setting secrets (it reads).
output SSO_MONITOR_VAULT_NAME string = vault.outputs.name
output SSO_MONITOR_VAULT_URL string = vault.outputs.uri
output SSO_MONITOR_SETTINGS_VAULT_NAME string = settingsVault.outputs.name
output SSO_MONITOR_SETTINGS_VAULT_URL string = settingsVault.outputs.uri
// The workspace holding both vaults' audit logs (az monitor log-analytics query --workspace).
output SSO_MONITOR_LOG_ANALYTICS_WORKSPACE string = monitoring.outputs.logAnalyticsCustomerId
output SSO_MONITOR_ADMIN_API_CLIENT_ID string = adminApi.outputs.clientId
output SSO_MONITOR_ADMIN_API_AUDIENCE string = adminApi.outputs.audience
output SSO_MONITOR_STATUS_PAGE_URL string = statusPageUrl
output SSO_MONITOR_API_URL string = api.outputs.uri
