//! Seed 003 (storage part): the blob storage of the dursor hosting design, its lifecycle policy,
//! Key Vault secrets for the connection strings, and optionally the VNet layout.
//!
//! [`AppStorageOnAzure`] adds: resource group (`dursor-rg`, `japaneast`) → storage account
//! (`Standard_GRS`: the design replicates blobs to Japan West) → containers `workspaces`,
//! `artifacts`, `temp` → lifecycle policy (`managementPolicies/default`: Cool after 30 days,
//! Archive after 90, delete after 365; `temp/` deleted after 7) → Key Vault secrets in the vault
//! given by URL (`https://dursor-vault.vault.azure.net/`): the storage connection string, plus
//! any connection string you pass (`postgresql-connection-string`, `redis-connection-string`, …)
//! → optionally VNet `10.0.0.0/16` with subnets `app` `10.0.1.0/24` and `data` `10.0.2.0/24`.
//!
//! The design's tree `dursor-storage/{workspaces,artifacts,temp}/` has two readings: one
//! container per area (the default, as its diagram labels them "コンテナ"), or one container
//! `dursor-storage` holding the three areas as folders ([`AppStorageOnAzure::single_container`]).
//! `dursor-storage` is never the account name: account names are 3–24 lowercase letters and
//! digits, so the account is `dursorstorage` + 5 digits.
//!
//! ```no_run
//! # fn demo() -> Result<(), stackup::core::Error> {
//! use stackup::azure::{ArmClient, AzureCloud, CredentialChain, KeyVaultSecrets};
//! use stackup::prelude::*;
//! use stackup::recipes::app_storage_on_azure::{AppStorageOnAzure, NetworkLayout, sensitive};
//!
//! let credential = CredentialChain::from_env(&AzureCloud::from_env()?)?;
//! let client = ArmClient::builder().credential(credential.clone()).build()?;
//! let mut stack = Stack::new("dursor");
//! let storage = AppStorageOnAzure::new()
//!     .secret("postgresql-connection-string", sensitive("postgresql://…"))
//!     .with_network(NetworkLayout::default())
//!     .add_to(&mut stack, &client, Some(&|| KeyVaultSecrets::new(credential.clone())))?;
//! # let _ = storage; Ok(()) }
//! ```

use std::collections::BTreeMap;

use stackup_azure::resources::blob_container::{BlobContainerSpec, BlobContainers, PublicAccess};
use stackup_azure::resources::key_vault_secret::{KeyVaultSecretSpec, KeyVaultSecrets};
use stackup_azure::resources::lifecycle_policy::{LifecyclePolicies, LifecyclePolicySpec, LifecycleRule};
use stackup_azure::resources::resource_group::{ResourceGroupSpec, ResourceGroups};
use stackup_azure::resources::storage_account::{StorageAccountSpec, StorageAccounts, StorageSku};
use stackup_azure::resources::subnet::{SubnetSpec, Subnets};
use stackup_azure::resources::virtual_network::{VirtualNetworkSpec, VirtualNetworks, validate_cidr};
use stackup_azure::{ArmClient, validate};
use stackup_core::{Error, Handle, Input, OutputRef, Secret, Stack, TemplatePart};

use super::blossom_on_azure::default_account_suffix;

/// Builds a Key Vault secrets provisioner (one per secret in the stack), for example
/// `|| KeyVaultSecrets::new(credential.clone())`.
pub type KeyVaultFactory<'a> = &'a dyn Fn() -> KeyVaultSecrets;

/// The design's VNet layout (section 8): `10.0.0.0/16`, subnets `app` and `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLayout {
    /// VNet name (default `dursor-vnet`).
    pub name: String,
    /// Address space (default `10.0.0.0/16`).
    pub address_space: String,
    /// Subnets by name (default `app` `10.0.1.0/24`, `data` `10.0.2.0/24`).
    pub subnets: Vec<(String, String)>,
}

impl Default for NetworkLayout {
    fn default() -> Self {
        NetworkLayout {
            name: "dursor-vnet".into(),
            address_space: "10.0.0.0/16".into(),
            subnets: vec![("app".into(), "10.0.1.0/24".into()), ("data".into(), "10.0.2.0/24".into())],
        }
    }
}

/// A secret the recipe writes to the vault.
#[derive(Debug, Clone)]
struct ExtraSecret {
    name: String,
    value: Input<String>,
    content_type: Option<String>,
}

/// The recipe.
#[derive(Debug, Clone)]
pub struct AppStorageOnAzure {
    address_prefix: String,
    resource_group: String,
    location: String,
    account_prefix: String,
    account_suffix: Option<String>,
    account_name: Option<String>,
    sku: StorageSku,
    containers: Vec<String>,
    single_container: Option<String>,
    tiered_containers: Vec<String>,
    cool_after_days: Option<u32>,
    archive_after_days: Option<u32>,
    delete_after_days: Option<u32>,
    temp_container: Option<String>,
    temp_delete_after_days: u32,
    vault_url: Option<String>,
    connection_string_secret: Option<String>,
    secrets: Vec<ExtraSecret>,
    purge_secrets_on_delete: bool,
    network: Option<NetworkLayout>,
    tags: BTreeMap<String, String>,
}

/// What [`AppStorageOnAzure::add_to`] added.
#[derive(Debug, Clone)]
pub struct AppStorageOnAzureOutputs {
    /// The resource group.
    pub resource_group: Handle<ResourceGroups>,
    /// The storage account.
    pub storage_account: Handle<StorageAccounts>,
    /// The storage account name (known before apply).
    pub storage_account_name: String,
    /// The containers by name (`workspaces`, `artifacts`, `temp`; or the one
    /// [`AppStorageOnAzure::single_container`]).
    pub containers: BTreeMap<String, Handle<BlobContainers>>,
    /// The lifecycle policy.
    pub lifecycle_policy: Handle<LifecyclePolicies>,
    /// The Key Vault secrets by secret name (empty without a vault URL).
    pub secrets: BTreeMap<String, Handle<KeyVaultSecrets>>,
    /// The VNet, when the layout was asked for.
    pub virtual_network: Option<Handle<VirtualNetworks>>,
    /// The subnets by name.
    pub subnets: BTreeMap<String, Handle<Subnets>>,
    /// The blob endpoint (`https://{account}.blob.core.windows.net/`).
    pub blob_endpoint: OutputRef,
    /// The storage connection string (sensitive; resolved at apply time).
    pub connection_string: Input<String>,
}

impl AppStorageOnAzure {
    /// The design's storage with its defaults.
    pub fn new() -> Self {
        AppStorageOnAzure {
            address_prefix: "dursor".into(),
            resource_group: "dursor-rg".into(),
            location: "japaneast".into(),
            account_prefix: "dursorstorage".into(),
            account_suffix: None,
            account_name: None,
            sku: StorageSku::StandardGrs,
            containers: vec!["workspaces".into(), "artifacts".into(), "temp".into()],
            single_container: None,
            tiered_containers: vec!["workspaces".into(), "artifacts".into()],
            cool_after_days: Some(30),
            archive_after_days: Some(90),
            delete_after_days: Some(365),
            temp_container: Some("temp".into()),
            temp_delete_after_days: 7,
            vault_url: Some("https://dursor-vault.vault.azure.net/".into()),
            connection_string_secret: Some("storage-connection-string".into()),
            secrets: vec![],
            purge_secrets_on_delete: false,
            network: None,
            tags: BTreeMap::new(),
        }
    }

    /// Prefix of every address in the stack (default `dursor`).
    pub fn address_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.address_prefix = prefix.into();
        self
    }

    /// Resource group (default `dursor-rg`).
    pub fn resource_group(mut self, name: impl Into<String>) -> Self {
        self.resource_group = name.into();
        self
    }

    /// Region (default `japaneast`, the design's primary).
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = location.into();
        self
    }

    /// Account name prefix (default `dursorstorage`).
    pub fn storage_account_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.account_prefix = prefix.into();
        self
    }

    /// Account name suffix (default 5 digits derived from the stack name).
    pub fn storage_account_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.account_suffix = Some(suffix.into());
        self
    }

    /// The whole account name (wins over prefix and suffix).
    pub fn storage_account_name(mut self, name: impl Into<String>) -> Self {
        self.account_name = Some(name.into());
        self
    }

    /// Replication (default `Standard_GRS`: "Blob Storage (GRS)" to Japan West in section 10).
    pub fn sku(mut self, sku: StorageSku) -> Self {
        self.sku = sku;
        self
    }

    /// The containers (default `workspaces`, `artifacts`, `temp`).
    pub fn containers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.containers = names.into_iter().map(Into::into).collect();
        self
    }

    /// Keep the areas ([`Self::containers`]: `workspaces`, `artifacts`, `temp`) as folders of one
    /// container named `name`: the design's `dursor-storage/workspaces/{repo_uuid}/repo.tar.gz`
    /// read as container `dursor-storage` (a hyphenated name can be a container, never an
    /// account). Only that container is created, and the lifecycle rules match
    /// `dursor-storage/workspaces/`, `dursor-storage/artifacts/` and `dursor-storage/temp/`.
    /// Default: one container per area.
    pub fn single_container(mut self, name: impl Into<String>) -> Self {
        self.single_container = Some(name.into());
        self
    }

    /// Containers the tiering rule covers (default `workspaces` and `artifacts`).
    pub fn tiered_containers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.tiered_containers = names.into_iter().map(Into::into).collect();
        self
    }

    /// Days after modification before Cool, Archive and deletion (default 30, 90, 365; `None`
    /// leaves an action out).
    pub fn tiering(mut self, cool: Option<u32>, archive: Option<u32>, delete: Option<u32>) -> Self {
        self.cool_after_days = cool;
        self.archive_after_days = archive;
        self.delete_after_days = delete;
        self
    }

    /// The scratch container and how long its blobs live (default `temp`, 7 days; `None` for no
    /// such rule).
    pub fn temp_container(mut self, name: Option<String>, delete_after_days: u32) -> Self {
        self.temp_container = name;
        self.temp_delete_after_days = delete_after_days;
        self
    }

    /// The Key Vault (default `https://dursor-vault.vault.azure.net/`; `None`: no secrets).
    pub fn vault_url(mut self, url: Option<String>) -> Self {
        self.vault_url = url;
        self
    }

    /// Name of the secret holding the storage connection string (default
    /// `storage-connection-string`; `None` to not store it).
    pub fn connection_string_secret(mut self, name: Option<String>) -> Self {
        self.connection_string_secret = name;
        self
    }

    /// Another secret for the vault, such as `postgresql-connection-string` or
    /// `redis-connection-string` (the design's table), from a [`Secret`] or another resource's
    /// output.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<Input<String>>) -> Self {
        let value = match value.into() {
            Input::Value(v) => Input::Sensitive(v),
            other => other,
        };
        self.secrets.push(ExtraSecret { name: name.into(), value, content_type: None });
        self
    }

    /// Purge secrets when the stack is destroyed (default: leave them in the soft-delete bin).
    pub fn purge_secrets_on_delete(mut self, yes: bool) -> Self {
        self.purge_secrets_on_delete = yes;
        self
    }

    /// Also add the design's VNet layout.
    pub fn with_network(mut self, layout: NetworkLayout) -> Self {
        self.network = Some(layout);
        self
    }

    /// A tag on every Azure resource.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// The storage account name in the stack named `stack_name`.
    pub fn account_name_for(&self, stack_name: &str) -> String {
        match &self.account_name {
            Some(n) => n.clone(),
            None => format!(
                "{}{}",
                self.account_prefix,
                self.account_suffix.clone().unwrap_or_else(|| default_account_suffix(stack_name))
            ),
        }
    }

    /// The lifecycle rules: `tiering` on the tiered containers, `tempcleanup` on the scratch
    /// container. Prefixes are `container/` (ARM's `prefixMatch` starts with the container), or
    /// `container/area/` with [`Self::single_container`].
    pub fn lifecycle_rules(&self) -> Vec<LifecycleRule> {
        let prefix = |area: &String| match &self.single_container {
            Some(c) => format!("{c}/{area}/"),
            None => format!("{area}/"),
        };
        let mut rules = vec![];
        if !self.tiered_containers.is_empty()
            && (self.cool_after_days.is_some() || self.archive_after_days.is_some() || self.delete_after_days.is_some())
        {
            let mut r = LifecycleRule::new("tiering", self.tiered_containers.iter().map(prefix));
            r.tier_to_cool_after_days = self.cool_after_days;
            r.tier_to_archive_after_days = self.archive_after_days;
            r.delete_after_days = self.delete_after_days;
            rules.push(r);
        }
        if let Some(t) = &self.temp_container {
            rules.push(LifecycleRule::new("tempcleanup", [prefix(t)]).delete_after(self.temp_delete_after_days));
        }
        rules
    }

    fn addr(&self, name: &str) -> String {
        format!("{}/{name}", self.address_prefix)
    }

    /// Checks every value before anything is added (`Error::InvalidInput` naming the setting).
    pub fn validate(&self, stack_name: &str, has_key_vault: bool) -> Result<(), Error> {
        let f = |n: &str| format!("app_storage_on_azure.{n}");
        let account_field = if self.account_name.is_some() { "storage_account_name" } else { "storage_account_suffix" };
        validate::storage_account_name(&f(account_field), &self.account_name_for(stack_name))?;
        validate::resource_group_name(&f("resource_group"), &self.resource_group)?;
        validate::location(&f("location"), &self.location)?;
        if self.containers.is_empty() {
            return Err(Error::invalid(f("containers"), "at least one container"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.containers {
            validate::share_or_container_name(&f("containers"), "container", c)?;
            if !seen.insert(c) {
                return Err(Error::invalid(f("containers"), format!("`{c}` is listed twice")));
            }
        }
        if let Some(c) = &self.single_container {
            validate::share_or_container_name(&f("single_container"), "container", c)?;
        }
        for c in self.tiered_containers.iter().chain(self.temp_container.iter()) {
            if !self.containers.contains(c) {
                return Err(Error::invalid(f("lifecycle"), format!("`{c}` is not one of the containers")));
            }
        }
        if self.temp_container.as_ref().is_some_and(|t| self.tiered_containers.contains(t)) {
            return Err(Error::invalid(f("temp_container"), "the scratch container cannot also be tiered"));
        }
        let days = [self.cool_after_days, self.archive_after_days, self.delete_after_days];
        if days.iter().flatten().any(|d| *d > 99_999) || self.temp_delete_after_days > 99_999 {
            return Err(Error::invalid(f("lifecycle"), "days are 0-99999"));
        }
        let ordered: Vec<u32> = days.iter().flatten().copied().collect();
        if ordered.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(f("lifecycle"), "Cool, Archive and delete must come in increasing days"));
        }
        if self.temp_container.is_some() && self.temp_delete_after_days == 0 {
            return Err(Error::invalid(f("temp_container"), "delete after at least 1 day"));
        }
        let wants_secrets = self.connection_string_secret.is_some() || !self.secrets.is_empty();
        if let Some(url) = &self.vault_url
            && wants_secrets
        {
            let ok = url.starts_with("https://") && url.len() > "https://".len() && !url.contains(char::is_whitespace);
            if !ok {
                return Err(Error::invalid(f("vault_url"), "the vault URL is https://{vault}.vault.azure.net/"));
            }
            if !has_key_vault {
                return Err(Error::invalid(
                    f("vault_url"),
                    "secrets need a Key Vault client: pass a KeyVaultFactory, or set vault_url(None)",
                ));
            }
        }
        if self.vault_url.is_none() && !self.secrets.is_empty() {
            return Err(Error::invalid(f("vault_url"), "secrets were given but no vault URL"));
        }
        let mut names = std::collections::BTreeSet::new();
        for n in self.connection_string_secret.iter().chain(self.secrets.iter().map(|s| &s.name)) {
            if n.is_empty() || n.len() > 127 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(Error::invalid(
                    f("secrets"),
                    format!("`{n}`: secret names are 1-127 letters, digits and '-'"),
                ));
            }
            if !names.insert(n) {
                return Err(Error::invalid(f("secrets"), format!("`{n}` is given twice")));
            }
        }
        if let Some(net) = &self.network {
            validate::network_name(&f("network.name"), &net.name)?;
            validate_cidr(&f("network.address_space"), &net.address_space)?;
            let mut prefixes = vec![];
            for (name, prefix) in &net.subnets {
                validate::network_name(&f("network.subnets"), name)?;
                validate_cidr(&f("network.subnets"), prefix)?;
                if !super::blossom_on_azure::cidr_contains(&net.address_space, prefix) {
                    return Err(Error::invalid(
                        f("network.subnets"),
                        format!("{prefix} is not inside {}", net.address_space),
                    ));
                }
                if prefixes.iter().any(|p: &&String| super::blossom_on_azure::cidrs_overlap(p, prefix)) {
                    return Err(Error::invalid(f("network.subnets"), format!("{prefix} overlaps another subnet")));
                }
                prefixes.push(prefix);
            }
        }
        validate::tags(&f("tags"), &self.tags)
    }

    /// Adds the storage to `stack`; `key_vault` builds the secrets provisioner (needed when a
    /// vault URL and secrets are set). Nothing is added when a value is invalid.
    pub fn add_to(
        &self,
        stack: &mut Stack,
        client: &ArmClient,
        key_vault: Option<KeyVaultFactory<'_>>,
    ) -> Result<AppStorageOnAzureOutputs, Error> {
        self.validate(stack.name(), key_vault.is_some())?;
        if stack.node(&self.addr("rg")).is_some() {
            return Err(Error::Stack(format!(
                "`{}` is already in the stack: give this recipe another address_prefix",
                self.addr("rg")
            )));
        }
        let account = self.account_name_for(stack.name());
        let rg = stack.add(
            &self.addr("rg"),
            ResourceGroups::new(client.clone()),
            ResourceGroupSpec {
                name: self.resource_group.clone(),
                location: self.location.clone(),
                tags: self.tags.clone(),
            },
        )?;
        let rg_name: Input<String> = rg.output("name").input();
        let mut spec = StorageAccountSpec::new(account.clone(), rg_name.clone(), self.location.clone());
        spec.sku = self.sku;
        spec.tags = self.tags.clone();
        let storage = stack.add(&self.addr("storage"), StorageAccounts::new(client.clone()), spec)?;

        let mut containers = BTreeMap::new();
        let container_names = match &self.single_container {
            Some(c) => std::slice::from_ref(c),
            None => self.containers.as_slice(),
        };
        for c in container_names {
            let h = stack.add(
                &self.addr(&format!("container/{c}")),
                BlobContainers::new(client.clone()),
                BlobContainerSpec {
                    name: c.clone(),
                    storage_account_id: storage.id().input(),
                    public_access: PublicAccess::None,
                    metadata: BTreeMap::new(),
                },
            )?;
            containers.insert(c.clone(), h);
        }
        let lifecycle_policy = stack.add(
            &self.addr("lifecycle"),
            LifecyclePolicies::new(client.clone()),
            LifecyclePolicySpec { storage_account_id: storage.id().input(), rules: self.lifecycle_rules() },
        )?;
        // The policy names containers: create it after them.
        for c in containers.values() {
            stack.depends_on(lifecycle_policy.address(), c.address())?;
        }

        let suffix = client.cloud().storage_suffix.clone();
        let connection_string = Input::template([
            TemplatePart::Text("DefaultEndpointsProtocol=https;AccountName=".into()),
            TemplatePart::Ref(storage.output("name")),
            TemplatePart::Text(";AccountKey=".into()),
            TemplatePart::Ref(storage.output("key1")),
            TemplatePart::Text(format!(";EndpointSuffix={suffix}")),
        ]);

        let mut secrets = BTreeMap::new();
        if let (Some(vault), Some(factory)) = (&self.vault_url, key_vault) {
            let mut all: Vec<ExtraSecret> = vec![];
            if let Some(name) = &self.connection_string_secret {
                all.push(ExtraSecret {
                    name: name.clone(),
                    value: connection_string.clone(),
                    content_type: Some("text/plain".into()),
                });
            }
            all.extend(self.secrets.iter().cloned());
            for s in all {
                let h = stack.add(
                    &self.addr(&format!("secret/{}", s.name)),
                    factory(),
                    KeyVaultSecretSpec {
                        vault_url: Input::Value(vault.clone()),
                        name: s.name.clone(),
                        value: s.value,
                        content_type: s.content_type,
                        tags: self.tags.clone(),
                        purge_on_delete: self.purge_secrets_on_delete,
                    },
                )?;
                secrets.insert(s.name, h);
            }
        }

        let mut virtual_network = None;
        let mut subnets = BTreeMap::new();
        if let Some(net) = &self.network {
            let vnet = stack.add(
                &self.addr("vnet"),
                VirtualNetworks::new(client.clone()),
                VirtualNetworkSpec {
                    name: net.name.clone(),
                    resource_group: rg_name.clone(),
                    location: self.location.clone(),
                    address_prefixes: vec![net.address_space.clone()],
                    tags: self.tags.clone(),
                },
            )?;
            let mut previous: Option<String> = None;
            for (name, prefix) in &net.subnets {
                let h = stack.add(
                    &self.addr(&format!("subnet/{name}")),
                    Subnets::new(client.clone()),
                    SubnetSpec {
                        name: name.clone(),
                        virtual_network_id: vnet.id().input(),
                        address_prefix: prefix.clone(),
                        network_security_group_id: None,
                    },
                )?;
                // ARM serialises subnet writes on one VNet (`AnotherOperationInProgress`): one at a time.
                if let Some(p) = &previous {
                    stack.depends_on(h.address(), p)?;
                }
                previous = Some(h.address().to_owned());
                subnets.insert(name.clone(), h);
            }
            virtual_network = Some(vnet);
        }

        Ok(AppStorageOnAzureOutputs {
            blob_endpoint: storage.output("primary_endpoints.blob"),
            resource_group: rg,
            storage_account: storage,
            storage_account_name: account,
            containers,
            lifecycle_policy,
            secrets,
            virtual_network,
            subnets,
            connection_string,
        })
    }
}

impl Default for AppStorageOnAzure {
    fn default() -> Self {
        Self::new()
    }
}

/// A literal secret value for [`AppStorageOnAzure::secret`].
pub fn sensitive(value: impl Into<String>) -> Input<String> {
    Secret::new(value.into()).into()
}
