// The Function App's own storage account (AzureWebJobsStorage): the host's blobs and
// timer state, the deployment package, the rotation's blob leases, the work queue
// (sso-monitor-work) and the alert de-duplication table. No account keys: every
// client, the host included, authenticates with Entra ID (roles in rbac.bicep).
param location string
param tags object = {}
param name string
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  // checkov:skip=CKV_AZURE_206:Nothing here needs a second region: host bookkeeping, 60-second leases, queue messages the next timer run re-creates, and alert de-duplication state whose loss at worst repeats an alert. The secrets, the only state of value, live in Key Vault.
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    dnsEndpointType: 'Standard'
    // checkov:skip=CKV_AZURE_35:Default-deny needs the Function App in a virtual network with private endpoints; this deployment has none (docs/deploy.md, "Network"). Every request still needs an Entra ID token: shared keys are off.
    // checkov:skip=CKV_AZURE_59:Same reason: without VNet integration the Flex Consumption app reaches its storage over the public endpoint, authenticated with its managed identity.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'
    properties: {
      deleteRetentionPolicy: {
        enabled: true
        days: 7
      }
      containerDeleteRetentionPolicy: {
        enabled: true
        days: 7
      }
    }

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

output name string = storage.name
