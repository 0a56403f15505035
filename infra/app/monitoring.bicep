// Log Analytics and a workspace-based Application Insights. Local (instrumentation key)
// authentication is off: the Function App sends telemetry with its managed identity
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING and Monitoring Metrics Publisher, rbac.bicep).
param location string
param tags object = {}
param logAnalyticsName string
param applicationInsightsName string

@description('Days the workspace keeps logs.')
param retentionInDays int = 30

@description('Save the monitor\'s telemetry query in the workspace (function SsoMonitorAttention): the apps whose secret ends within telemetryDaysLeft days or that have a critical finding, from the metrics the monitor sends (docs/deploy.md, "Telemetry").')
param telemetryQueries bool = false

@description('Days left under which SsoMonitorAttention lists an app.')
param telemetryDaysLeft int = 14

@description('With telemetryQueries: the action group (resource id) the alert rule notifies. Empty: the alerts show in Azure Monitor only.')
param alertActionGroupId string = ''

// The metrics the monitor sends (sso_monitor/adapters/telemetry.py) land in AppMetrics,
// their dimensions in Properties: the last day's lowest days left and critical findings
// per app (the timer runs daily), the apps that need attention. An alert rule (log
// search, "Table rows > 0", window 1 day) or a workbook uses the function as it is.
var attentionLines = [
  'AppMetrics'
  '| where TimeGenerated > ago(25h) and Name in ("sso_monitor.secret.days_left", "sso_monitor.findings")'
  '| extend facility = tostring(Properties.facility), tenant = tostring(Properties.tenant), appId = tostring(Properties.appId), severity = tostring(Properties.severity), code = tostring(Properties.code)'
  '| summarize daysLeft = min(iff(Name == "sso_monitor.secret.days_left", Min, real(null))), critical = make_set_if(code, Name == "sso_monitor.findings" and severity == "critical") by facility, tenant, appId'
  '| where daysLeft < ${telemetryDaysLeft} or array_length(critical) > 0'
  '| order by daysLeft asc'
]
var attentionQuery = join(attentionLines, '\n')

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

resource attention 'Microsoft.OperationalInsights/workspaces/savedSearches@2023-09-01' = if (telemetryQueries) {
  parent: logAnalytics
  name: 'sso-monitor-attention'
  properties: {
    category: 'SSO Monitor'
    displayName: 'SSO Monitor: apps that need attention'
    functionAlias: 'SsoMonitorAttention'
    query: attentionQuery
    version: 2
  }
}

// The alert rule on the same query: one alert per facility (split by the facility column)
// while it lists the facility, resolved by itself when it no longer does. The query keeps
// its own 25-hour filter; the rule reads two days so that filter decides.
resource attentionAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (telemetryQueries) {
  name: 'sso-monitor-attention'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'SSO Monitor: a SmartTrace sign-in needs attention'
    description: 'A facility whose SmartTrace client secret ends within ${telemetryDaysLeft} days, or with a critical finding, in the monitor\'s metrics of the last 25 hours (docs/deploy.md, "Telemetry").'
    enabled: true
    severity: 1
    scopes: [
      logAnalytics.id
    ]
    evaluationFrequency: 'PT6H'
    windowSize: 'P1D'
    overrideQueryTimeRange: 'P2D'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: attentionQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'facility'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(alertActionGroupId) ? [] : [
        alertActionGroupId
      ]
    }
  }
}

output applicationInsightsName string = applicationInsights.name
output logAnalyticsWorkspaceId string = logAnalytics.id
// The workspace (customer) id that `az monitor log-analytics query --workspace` takes.
output logAnalyticsCustomerId string = logAnalytics.properties.customerId
