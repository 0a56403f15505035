// Entra ID for the monitor's user-assigned managed identity, through the Microsoft Graph Bicep
// extension: the Microsoft Graph application roles it uses, and ownership of each
// monitored SmartTrace app registration in this tenant. Application.ReadWrite.OwnedBy
// lets it read and change only the apps it owns, which is why ownership is granted
// per app instead of Application.ReadWrite.All over the whole directory.
extension microsoftGraphV1

@description('Object (principal) id of the monitor\'s user-assigned managed identity (its service principal).')
param principalId string

@description('uniqueName of each monitored app registration; the identity becomes one of its owners.')
param monitoredAppUniqueNames array = []

@description('Grant Mail.Send: only for a graph-mail alert channel.')
param sendMailThroughGraph bool = false

@description('Grant Policy.Read.ApplicationConfiguration, so the monitor reads the tenant\'s secret lifetime policy (SECRET_LIFETIME_EXCEEDS_POLICY, and the cap of a new secret). Without it that one check is skipped and rotation learns the cap from Graph\'s refusal.')
param readAppManagementPolicy bool = false

@description('Grant AuditLog.Read.All (read-only), so the monitor reads Entra\'s sign-in log and credential-activity report (signIns.enabled, handoff.confirmation activity). The tenant also needs an Entra ID P1/P2 licence. Without either, SIGN_INS_UNAVAILABLE / ACTIVITY_REPORT_UNAVAILABLE say what is missing.')
param readSignInLogs bool = false

// Microsoft Graph's well-known application id, the same in every tenant.
var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

// Read the apps it owns, add and remove their client secrets (addPassword, removePassword).
resource applicationReadWriteOwnedBy 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: filter(microsoftGraph.appRoles, role => role.value == 'Application.ReadWrite.OwnedBy')[0].id
  principalId: principalId
  resourceId: microsoftGraph.id
}

// Alerts by email through Graph. Exchange Online then scopes it to one mailbox (docs/deploy.md).
resource mailSend 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (sendMailThroughGraph) {
  appRoleId: filter(microsoftGraph.appRoles, role => role.value == 'Mail.Send')[0].id
  principalId: principalId
  resourceId: microsoftGraph.id
}

resource appManagementPolicyRead 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (readAppManagementPolicy) {
  appRoleId: filter(microsoftGraph.appRoles, role => role.value == 'Policy.Read.ApplicationConfiguration')[0].id
  principalId: principalId
  resourceId: microsoftGraph.id
}

// Sign-in log and per-credential activity (Graph beta reports): real sign-in failures, and
// a handoff confirmed by Entra's records (docs/evidence.md).
resource auditLogRead 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (readSignInLogs) {
  appRoleId: filter(microsoftGraph.appRoles, role => role.value == 'AuditLog.Read.All')[0].id
  principalId: principalId
  resourceId: microsoftGraph.id
}

resource monitoredApps 'Microsoft.Graph/applications@v1.0' existing = [for uniqueName in monitoredAppUniqueNames: {
  uniqueName: uniqueName
}]

// A module per app: declaring an application again (to add an owner) needs its
// display name, which only the existing app can tell.
module ownership 'owner.bicep' = [for (uniqueName, i) in monitoredAppUniqueNames: {
  name: 'owner-${uniqueString(uniqueName)}'
  params: {
    uniqueName: uniqueName
    displayName: monitoredApps[i].displayName
    ownerPrincipalId: principalId
  }
}]
