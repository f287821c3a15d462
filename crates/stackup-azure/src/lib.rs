//! # stackup-azure
//!
//! Azure for [stackup](https://github.com/stackup-rs/stackup): Azure Resource Manager resources
//! as typed [`stackup_core::Provisioner`]s, on the official Azure SDK for Rust (`azure_core`
//! 1.x pipeline and `azure_identity` credentials).
//!
//! | file | what |
//! |---|---|
//! | [`client`] | [`ArmClient`]: requests, retries, ARM errors |
//! | [`lro`] | long-running operations (`Azure-AsyncOperation`, `Location`, `provisioningState`) |
//! | [`credentials`] | the credential chain (service principal, workload identity, managed identity, Azure CLI) |
//! | [`auth`] | the bearer-token pipeline policy |
//! | [`cloud`] | endpoints of the public cloud, Azure China and Azure US Government |
//! | [`resources`] | one provisioner per resource kind |
//!
//! ```no_run
//! use stackup_azure::{ArmClient, resources::resource_group::{ResourceGroups, ResourceGroupSpec}};
//! # async fn demo() -> Result<(), stackup_core::Error> {
//! let client = ArmClient::from_env()?; // AZURE_SUBSCRIPTION_ID + the credential chain
//! let rgs = ResourceGroups::new(client.clone());
//! # let _ = rgs; Ok(()) }
//! ```

pub mod api_versions;
pub mod auth;
pub mod blob_backend;
pub mod client;
pub mod cloud;
pub mod credentials;
pub mod error;
pub mod ids;
pub mod lro;
pub mod resources;
pub mod sas;
pub mod validate;

pub use blob_backend::AzureBlobBackend;
pub use client::{ArmClient, ArmClientBuilder};
pub use cloud::AzureCloud;
pub use credentials::{CredentialChain, StaticTokenCredential};
pub use error::AzureError;
pub use lro::LroOptions;
pub use resources::blob_container::{BlobContainerOutputs, BlobContainerSpec, BlobContainers, PublicAccess};
pub use resources::file_share::{FileShareOutputs, FileShareSpec, FileShares, ShareAccessTier, ShareSnapshot};
pub use resources::key_vault_secret::{KeyVaultSecretOutputs, KeyVaultSecretSpec, KeyVaultSecrets};
pub use resources::lifecycle_policy::{LifecyclePolicies, LifecyclePolicyOutputs, LifecyclePolicySpec, LifecycleRule};
pub use resources::network_interface::{NetworkInterfaceOutputs, NetworkInterfaceSpec, NetworkInterfaces};
pub use resources::network_security_group::{
    Access, Direction, NetworkSecurityGroupOutputs, NetworkSecurityGroupSpec, NetworkSecurityGroups, Protocol,
    SecurityRule,
};
pub use resources::public_ip_address::{PublicIpAddressOutputs, PublicIpAddressSpec, PublicIpAddresses};
pub use resources::resource_group::{ResourceGroupOutputs, ResourceGroupSpec, ResourceGroups};
pub use resources::share_snapshot::{ShareSnapshotOutputs, ShareSnapshotSpec, ShareSnapshots};
pub use resources::storage_account::{
    KeyName, MinTlsVersion, StorageAccountKeys, StorageAccountOutputs, StorageAccountSpec, StorageAccounts,
    StorageKind, StorageSku,
};
pub use resources::subnet::{SubnetOutputs, SubnetSpec, Subnets};
pub use resources::virtual_machine::{ImageReference, VirtualMachineOutputs, VirtualMachineSpec, VirtualMachines};
pub use resources::virtual_network::{VirtualNetworkOutputs, VirtualNetworkSpec, VirtualNetworks};
