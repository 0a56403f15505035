// The Function App on the Flex Consumption plan, with a system-assigned managed
// identity and the app settings the code reads. Shaped like the Flex Consumption
// module of Microsoft's azd templates (functionAppConfig: deployment storage,
// scaleAndConcurrency, runtime). Flex Consumption takes the runtime from
// functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are
// not app settings here (the platform refuses them).
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
    type: 'SystemAssigned'
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
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: []
      }
      // Every setting the code or the host reads (tests/infra/test_settings.py keeps this
      // list, local.settings.sample.json and the code in step). Storage is identity-based:
      // the service URIs and the managed identity, never a connection string or a key.
      appSettings: [
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
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
          value: 'Authorization=AAD'
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
            type: 'SystemAssignedIdentity'
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

output name string = functionApp.name
output principalId string = functionApp.identity.principalId
output uri string = 'https://${functionApp.properties.defaultHostName}'
