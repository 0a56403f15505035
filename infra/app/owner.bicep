// Makes the monitor's managed identity an owner of one existing app registration.
// Owners are appended: the administrators who own it already stay owners. Only the
// display name is declared besides, unchanged, so nothing else of the app is touched
// (Graph applies a declared application as a PATCH).
extension microsoftGraphV1

@description('The app registration\'s uniqueName (set once, docs/deploy.md).')
param uniqueName string

@description('Its current display name, passed through unchanged.')
param displayName string

@description('Object id of the monitor\'s managed identity.')
param ownerPrincipalId string

resource monitoredApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  owners: {
    relationshipSemantics: 'append'
    relationships: [
      ownerPrincipalId
    ]
  }
}
