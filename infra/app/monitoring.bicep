// Log Analytics and a workspace-based Application Insights. Local (instrumentation key)
// authentication is off: the Function App sends telemetry with its managed identity
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING and Monitoring Metrics Publisher, rbac.bicep).
param location string
param tags object = {}
param logAnalyticsName string
param applicationInsightsName string

@description('Days the workspace keeps logs.')
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
output logAnalyticsWorkspaceId string = logAnalytics.id
// The workspace (customer) id that `az monitor log-analytics query --workspace` takes.
output logAnalyticsCustomerId string = logAnalytics.properties.customerId
