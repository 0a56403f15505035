// The admin API's app registration: the audience of the bearer tokens the Function App
// validates in code (sso_monitor/functions/auth.py), with the app roles it checks.
// SsoMonitor.Read allows status; SsoMonitor.Admin allows check, rotate and confirm (and
// implies Read). Only principals assigned a role get a token at all
// (appRoleAssignmentRequired).
extension microsoftGraphV1

param uniqueName string
param displayName string

@description('The status page\'s URL (https://<function app>/api/status/view): it signs people in with this registration (MSAL.js, authorization code + PKCE), so it is the registration\'s single-page-application redirect URI.')
param statusPageUrl string

@description('Object id of the operator: owner of this registration and holder of SsoMonitor.Admin. Empty: neither.')
param operatorPrincipalId string = ''

var audience = 'api://${tenant().tenantId}/${uniqueName}'
var readRoleId = guid(uniqueName, 'SsoMonitor.Read')
var adminRoleId = guid(uniqueName, 'SsoMonitor.Admin')
var scopeId = guid(uniqueName, 'user_impersonation')
// Azure CLI's application id, the same in every tenant: operators get a token with
// az account get-access-token --scope <audience>/user_impersonation
var azureCliAppId = '04b07795-8ddb-461a-bbee-02f9e1bf7b46'

resource adminApi 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    audience
  ]
  spa: {
    redirectUris: [
      statusPageUrl
    ]
  }
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: scopeId
        value: 'user_impersonation'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Call the SSO Monitor admin API'
        adminConsentDescription: 'Lets the application call the SSO Monitor admin API as the signed-in user; what the user may do is decided by the user\'s app role.'
        userConsentDisplayName: 'Call the SSO Monitor admin API'
        userConsentDescription: 'Lets the application call the SSO Monitor admin API as you.'
      }
    ]
    preAuthorizedApplications: [
      {
        appId: azureCliAppId
        delegatedPermissionIds: [
          scopeId
        ]
      }
    ]
  }
  appRoles: [
    {
      id: readRoleId
      value: 'SsoMonitor.Read'
      displayName: 'SsoMonitor.Read'
      description: 'Read the status of every monitored app (GET /api/status).'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
    {
      id: adminRoleId
      value: 'SsoMonitor.Admin'
      displayName: 'SsoMonitor.Admin'
      description: 'Check, rotate and confirm (POST /api/apps/...); includes SsoMonitor.Read.'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
  owners: {
    relationshipSemantics: 'append'
    relationships: empty(operatorPrincipalId) ? [] : [
      operatorPrincipalId
    ]
  }
}

resource adminApiServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: adminApi.appId
  appRoleAssignmentRequired: true
}

// The status page signs people in with this same registration and asks for its own
// user_impersonation scope. Admin consent for the whole tenant, so nobody meets a consent
// prompt (or, where user consent is off, "needs admin approval"); what anyone may do is
// still decided by their app role, and assignment is required to get a token at all.
resource statusPageConsent 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: adminApiServicePrincipal.id
  resourceId: adminApiServicePrincipal.id
  consentType: 'AllPrincipals'
  scope: 'user_impersonation'
}

resource operatorAdmin 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!empty(operatorPrincipalId)) {
  appRoleId: adminRoleId
  principalId: operatorPrincipalId
  resourceId: adminApiServicePrincipal.id
}

output clientId string = adminApi.appId
output audience string = audience
