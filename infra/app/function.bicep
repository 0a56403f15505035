// The Function App on the Flex Consumption plan, running as the monitor's user-assigned
// managed identity (identity.bicep), with the app settings the code reads. Shaped like
// the Flex Consumption module of Microsoft's azd templates (functionAppConfig: deployment
// storage, scaleAndConcurrency, runtime; a user-assigned identity named by its client id
// in AzureWebJobsStorage__clientId and APPLICATIONINSIGHTS_AUTHENTICATION_STRING). Flex
// Consumption takes the runtime from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION are not app settings here (the platform refuses them).
// Basic (user name and password) publishing is off for SCM and FTP: deployments
// authenticate with Entra ID.
param location string
param tags object = {}
param name string
param planName string
param pythonVersion string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param maximumInstanceCount int = 100
param instanceMemoryMB int = 2048

@description('Resource id of the monitor\'s user-assigned managed identity.')
param identityId string

@description('Client (application) id of that identity: how the host, azure-identity and the deployment pick it.')
param identityClientId string

@description('NCRONTAB of the scheduled check (SSO_MONITOR_SCHEDULE).')
param schedule string

@description('The monitor configuration document, as JSON text (SSO_MONITOR_CONFIG).')
param monitorDocument string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  // checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption is offered in some regions only and keeps two always-ready instances per function group billed around the clock. The monitor runs on a timer and a queue: a zone outage delays a run, and the next run converges (docs/rotation.md).
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by itself; a standing minimum of instances buys nothing for a daily timer and a queue.
  // checkov:skip=CKV_AZURE_222:The admin API is called from operators' machines and from automation holding an SsoMonitor role; it is protected by the function key and an Entra ID token validated in code (sso_monitor/functions/auth.py), not by network isolation.
  // checkov:skip=CKV_AZURE_213:Flex Consumption has no platform health check (healthCheckPath). GET /api/health answers for an external probe.
  // checkov:skip=CKV_AZURE_17:Callers authenticate with a function key and an Entra ID bearer token; client certificates would add a second credential to manage and are not used.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    // A Key Vault reference in an app setting (@Microsoft.KeyVault(...)) is resolved with
    // this identity; without it the platform would look for a system-assigned one.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: []
      }
      // Every setting the code or the host reads (tests/infra/test_settings.py keeps this list,
      // local.settings.sample.json and the code in step). Storage is identity-based: service
      // URIs and the identity, never a key. The user-assigned identity is named by its client
      // id wherever a token is taken; without one, a system-assigned identity is looked for.
      appSettings: [
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          // DefaultAzureCredential (the code's Graph, Key Vault and storage clients) takes
          // the user-assigned identity named here.
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'SSO_MONITOR_SCHEDULE'
          value: schedule
        }
        {
          name: 'SSO_MONITOR_CONFIG'
          value: monitorDocument
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No publishing with a user name and password (the site's basic credentials). azd
// deploys a Flex Consumption app through the OneDeploy endpoint (/api/publish), which
// takes a Microsoft Entra token, and the Azure CLI (2.48.1 or later) falls back to one
// when basic authentication is off (docs/deploy.md, "Decisions and sources").
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
