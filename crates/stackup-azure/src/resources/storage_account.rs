//! `Microsoft.Storage/storageAccounts` (api-version [`crate::api_versions::STORAGE`]).
//!
//! Create checks the global name first (`POST …/providers/Microsoft.Storage/checkNameAvailability`),
//! then `PUT {account}`, which answers 200 with the account or 202 + `Location` + `Retry-After`.
//! Update is `PATCH {account}`. Keys come from `POST {account}/listKeys` and are rotated with
//! `POST {account}/regenerateKey` ([`StorageAccounts::regenerate_key`]); they are
//! [`Secret`]s everywhere.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::{ApiErrorDetails, CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind, Secret};

use super::{PROVIDER, bool_at, id_of, is_ours, not_ours, str_at, tags_of, user_tags, with_managed_tags};
use crate::api_versions::STORAGE;
use crate::client::ArmClient;
use crate::ids::ResourceId;
use crate::validate;

/// Replication and performance tier (`sku.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StorageSku {
    /// Locally redundant, standard.
    #[default]
    #[serde(rename = "Standard_LRS")]
    StandardLrs,
    /// Geo-redundant.
    #[serde(rename = "Standard_GRS")]
    StandardGrs,
    /// Read-access geo-redundant.
    #[serde(rename = "Standard_RAGRS")]
    StandardRagrs,
    /// Zone-redundant.
    #[serde(rename = "Standard_ZRS")]
    StandardZrs,
    /// Geo-zone-redundant.
    #[serde(rename = "Standard_GZRS")]
    StandardGzrs,
    /// Read-access geo-zone-redundant.
    #[serde(rename = "Standard_RAGZRS")]
    StandardRagzrs,
    /// Premium, locally redundant.
    #[serde(rename = "Premium_LRS")]
    PremiumLrs,
    /// Premium, zone-redundant.
    #[serde(rename = "Premium_ZRS")]
    PremiumZrs,
}

impl StorageSku {
    /// The wire name (`Standard_LRS`).
    pub fn as_str(self) -> &'static str {
        match self {
            StorageSku::StandardLrs => "Standard_LRS",
            StorageSku::StandardGrs => "Standard_GRS",
            StorageSku::StandardRagrs => "Standard_RAGRS",
            StorageSku::StandardZrs => "Standard_ZRS",
            StorageSku::StandardGzrs => "Standard_GZRS",
            StorageSku::StandardRagzrs => "Standard_RAGZRS",
            StorageSku::PremiumLrs => "Premium_LRS",
            StorageSku::PremiumZrs => "Premium_ZRS",
        }
    }
}

/// Whether ARM can move an account from one SKU to another in place (Standard LRS/GRS/RA-GRS
/// among themselves and ZRS/GZRS/RA-GZRS among themselves; anything else is a migration or a
/// new account).
fn sku_change_in_place(from: &str, to: &str) -> bool {
    let group = |s: &str| match s {
        "Standard_LRS" | "Standard_GRS" | "Standard_RAGRS" => 1,
        "Standard_ZRS" | "Standard_GZRS" | "Standard_RAGZRS" => 2,
        _ => 0,
    };
    from == to || (group(from) != 0 && group(from) == group(to))
}

/// Account kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StorageKind {
    /// General purpose v2 (blobs, files, queues, tables).
    #[default]
    StorageV2,
    /// Premium block blobs.
    BlockBlobStorage,
    /// Premium file shares.
    FileStorage,
    /// Legacy blob-only.
    BlobStorage,
}

/// Minimum TLS version accepted by the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MinTlsVersion {
    /// TLS 1.2.
    #[default]
    #[serde(rename = "TLS1_2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLS1_3")]
    Tls13,
}

fn yes() -> bool {
    true
}

/// A storage account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageAccountSpec {
    /// Globally unique name: 3–24 lowercase letters and digits.
    pub name: String,
    /// The resource group (usually another resource's `name` output).
    pub resource_group: Input<String>,
    /// Region.
    pub location: String,
    /// SKU, default `Standard_LRS`.
    #[serde(default)]
    pub sku: StorageSku,
    /// Kind, default `StorageV2`.
    #[serde(default)]
    pub kind: StorageKind,
    /// Refuse plain HTTP (default true).
    #[serde(default = "yes")]
    pub https_only: bool,
    /// Minimum TLS version (default TLS 1.2).
    #[serde(default)]
    pub min_tls_version: MinTlsVersion,
    /// Allow anonymous public read of containers that ask for it (default false).
    #[serde(default)]
    pub allow_blob_public_access: bool,
    /// Allow account-key auth, which SMB mounts need (default true).
    #[serde(default = "yes")]
    pub allow_shared_key_access: bool,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl StorageAccountSpec {
    /// An account with the secure defaults: `Standard_LRS`, `StorageV2`, https only, TLS 1.2,
    /// no public blob access, shared keys allowed.
    pub fn new(name: impl Into<String>, resource_group: impl Into<Input<String>>, location: impl Into<String>) -> Self {
        StorageAccountSpec {
            name: name.into(),
            resource_group: resource_group.into(),
            location: location.into(),
            sku: StorageSku::default(),
            kind: StorageKind::default(),
            https_only: true,
            min_tls_version: MinTlsVersion::default(),
            allow_blob_public_access: false,
            allow_shared_key_access: true,
            tags: BTreeMap::new(),
        }
    }
}

/// The account's service endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryEndpoints {
    /// `https://{acct}.blob.core.windows.net/`
    #[serde(default)]
    pub blob: String,
    /// `https://{acct}.file.core.windows.net/`
    #[serde(default)]
    pub file: String,
    /// Queue endpoint.
    #[serde(default)]
    pub queue: String,
    /// Table endpoint.
    #[serde(default)]
    pub table: String,
    /// Data Lake endpoint.
    #[serde(default)]
    pub dfs: String,
    /// Static website endpoint.
    #[serde(default)]
    pub web: String,
}

/// An observed storage account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageAccountOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Region, normalised.
    pub location: String,
    /// SKU name (`Standard_LRS`).
    pub sku: String,
    /// Kind (`StorageV2`).
    pub kind: String,
    /// `supportsHttpsTrafficOnly`.
    pub https_only: bool,
    /// `minimumTlsVersion` (`TLS1_2`).
    pub min_tls_version: String,
    /// `allowBlobPublicAccess`.
    pub allow_blob_public_access: bool,
    /// `allowSharedKeyAccess`.
    pub allow_shared_key_access: bool,
    /// All tags.
    pub tags: BTreeMap<String, String>,
    /// Service endpoints.
    pub primary_endpoints: PrimaryEndpoints,
    /// The SMB host of Azure Files (`{acct}.file.core.windows.net`).
    pub file_host: String,
    /// Access key 1 (re-read on every refresh; absent when the caller may not list keys).
    #[serde(default)]
    pub key1: Option<Secret>,
    /// Access key 2.
    #[serde(default)]
    pub key2: Option<Secret>,
}

/// Both access keys of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageAccountKeys {
    /// `key1`.
    pub key1: Secret,
    /// `key2`.
    pub key2: Secret,
}

/// Which key to regenerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyName {
    /// `key1`
    Key1,
    /// `key2`
    Key2,
}

impl KeyName {
    /// `key1` or `key2`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Key1 => "key1",
            KeyName::Key2 => "key2",
        }
    }
}

fn parse_keys(body: &Value) -> Result<StorageAccountKeys, Error> {
    let find = |name: &str| {
        body.get("keys")
            .and_then(Value::as_array)
            .and_then(|keys| keys.iter().find(|k| k.get("keyName").and_then(Value::as_str) == Some(name)))
            .and_then(|k| k.get("value"))
            .and_then(Value::as_str)
            .map(Secret::new)
    };
    match (find("key1"), find("key2")) {
        (Some(key1), Some(key2)) => Ok(StorageAccountKeys { key1, key2 }),
        _ => Err(crate::error::AzureError::decode("listKeys response", "key1/key2 missing").into()),
    }
}

/// Manages storage accounts.
#[derive(Debug, Clone)]
pub struct StorageAccounts {
    client: ArmClient,
}

impl StorageAccounts {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        StorageAccounts { client }
    }

    fn path(&self, rg: &str, name: &str) -> Result<String, Error> {
        Ok(format!("{}/providers/Microsoft.Storage/storageAccounts/{name}", self.client.resource_group_path(rg)?))
    }

    fn outputs(&self, body: &Value, fallback_id: &str, keys: Option<StorageAccountKeys>) -> StorageAccountOutputs {
        let id = id_of(body, fallback_id);
        let resource_group = ResourceId::parse(&id).map(|r| r.resource_group).unwrap_or_default();
        let name = str_at(body, "/name");
        let primary_endpoints: PrimaryEndpoints = body
            .pointer("/properties/primaryEndpoints")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let (key1, key2) = keys.map(|k| (Some(k.key1), Some(k.key2))).unwrap_or((None, None));
        StorageAccountOutputs {
            file_host: self.client.cloud().file_host(&name),
            id,
            name,
            resource_group,
            location: validate::normalize_location(&str_at(body, "/location")),
            sku: str_at(body, "/sku/name"),
            kind: str_at(body, "/kind"),
            https_only: bool_at(body, "/properties/supportsHttpsTrafficOnly", true),
            min_tls_version: body
                .pointer("/properties/minimumTlsVersion")
                .and_then(Value::as_str)
                .unwrap_or("TLS1_0")
                .to_owned(),
            allow_blob_public_access: bool_at(body, "/properties/allowBlobPublicAccess", false),
            allow_shared_key_access: bool_at(body, "/properties/allowSharedKeyAccess", true),
            tags: tags_of(body),
            primary_endpoints,
            key1,
            key2,
        }
    }

    /// Lists the account's two access keys (`POST {account}/listKeys`).
    pub async fn list_keys(&self, account_id: &str) -> Result<StorageAccountKeys, Error> {
        parse_keys(&self.client.post(&format!("{account_id}/listKeys"), STORAGE, None).await?)
    }

    /// Rotates one access key (`POST {account}/regenerateKey` with `{"keyName": "key2"}`) and
    /// returns both keys afterwards. Rotate the key clients do not use, switch them to it, then
    /// rotate the other (the seed's key2 rotation).
    pub async fn regenerate_key(&self, account_id: &str, key: KeyName) -> Result<StorageAccountKeys, Error> {
        let body = json!({"keyName": key.as_str()});
        parse_keys(&self.client.post(&format!("{account_id}/regenerateKey"), STORAGE, Some(&body)).await?)
    }

    /// Keys, or `None` when the caller lacks permission to list them.
    async fn keys_if_allowed(&self, account_id: &str) -> Result<Option<StorageAccountKeys>, Error> {
        match self.list_keys(account_id).await {
            Ok(k) => Ok(Some(k)),
            Err(Error::PermissionDenied(d)) => {
                tracing::warn!(account = account_id, reason = %d, "cannot list storage account keys");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn body(&self, ctx: &Ctx, spec: &StorageAccountSpec) -> Value {
        json!({
            "location": spec.location,
            "kind": spec.kind,
            "sku": {"name": spec.sku},
            "properties": {
                "supportsHttpsTrafficOnly": spec.https_only,
                "minimumTlsVersion": spec.min_tls_version,
                "allowBlobPublicAccess": spec.allow_blob_public_access,
                "allowSharedKeyAccess": spec.allow_shared_key_access,
            },
            "tags": with_managed_tags(ctx, &spec.tags),
        })
    }

    async fn check_name(&self, name: &str) -> Result<(), Error> {
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.Storage/checkNameAvailability",
            self.client.subscription_id()?
        );
        let body = json!({"name": name, "type": "Microsoft.Storage/storageAccounts"});
        let r = self.client.post(&path, STORAGE, Some(&body)).await?;
        if r.get("nameAvailable").and_then(Value::as_bool) == Some(false) {
            return Err(Error::Conflict(ApiErrorDetails {
                status: None,
                code: r.get("reason").and_then(Value::as_str).map(str::to_owned),
                message: r
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the storage account name is not available")
                    .to_owned(),
                request_id: None,
            }));
        }
        Ok(())
    }
}

#[async_trait]
impl Provisioner for StorageAccounts {
    type Spec = StorageAccountSpec;
    type Outputs = StorageAccountOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "storage_account")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::storage_account_name("name", &spec.name)?;
        validate::known(&spec.resource_group, |rg| validate::resource_group_name("resource_group", rg))?;
        validate::location("location", &spec.location)?;
        if spec.kind == StorageKind::FileStorage && !matches!(spec.sku, StorageSku::PremiumLrs | StorageSku::PremiumZrs)
        {
            return Err(Error::invalid("sku", "FileStorage accounts need a Premium_LRS or Premium_ZRS sku"));
        }
        validate::tags("tags", &spec.tags)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        let Some(body) = self.client.get(id, STORAGE).await? else { return Ok(None) };
        let keys = self.keys_if_allowed(id).await?;
        Ok(Some(self.outputs(&body, id, keys)))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let Some(rg) = spec.resource_group.known() else { return Ok(None) };
        let path = self.path(rg, &spec.name)?;
        let Some(body) = self.client.get(&path, STORAGE).await? else { return Ok(None) };
        if !is_ours(ctx, &tags_of(&body)) {
            return Ok(None);
        }
        let keys = self.keys_if_allowed(&path).await?;
        let out = self.outputs(&body, &path, keys);
        Ok(Some(Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name, &observed.name);
        super::diff_ci(&mut d, "resource_group", &desired.resource_group, &observed.resource_group, true);
        d.field_replace("location", &validate::normalize_location(&desired.location), &observed.location);
        d.field_replace("kind", &serde_json::to_value(desired.kind).unwrap_or_default(), &json!(observed.kind));
        let sku = desired.sku.as_str();
        if sku_change_in_place(&observed.sku, sku) {
            d.field("sku", sku, &observed.sku);
        } else {
            d.field_replace("sku", sku, &observed.sku);
        }
        d.field("https_only", &desired.https_only, &observed.https_only);
        d.field(
            "min_tls_version",
            &serde_json::to_value(desired.min_tls_version).unwrap_or_default(),
            &json!(observed.min_tls_version),
        );
        d.field("allow_blob_public_access", &desired.allow_blob_public_access, &observed.allow_blob_public_access);
        d.field("allow_shared_key_access", &desired.allow_shared_key_access, &observed.allow_shared_key_access);
        d.field("tags", &desired.tags, &user_tags(&observed.tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let rg = spec.resource_group.get("resource_group")?;
        let path = self.path(rg, &spec.name)?;
        match self.client.get(&path, STORAGE).await? {
            Some(existing) if !is_ours(ctx, &tags_of(&existing)) => {
                return Err(not_ours("storage account", &spec.name).into());
            }
            Some(_) => {}
            None => self.check_name(&spec.name).await?,
        }
        let body = match self.client.put(Some(ctx), &path, STORAGE, &self.body(ctx, spec)).await {
            Ok(b) => b,
            Err(e) if self.client.exists(&path, STORAGE).await => return Err(CreateError::partial(e, path)),
            Err(e) => return Err(e.into()),
        };
        let keys = match self.keys_if_allowed(&path).await {
            Ok(k) => k,
            Err(e) => return Err(CreateError::partial(e, path)),
        };
        let out = self.outputs(&body, &path, keys);
        Ok(Created { id: out.id.clone(), outputs: out })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &Self::Spec,
        observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error> {
        self.validate(spec)?;
        let mut body = self.body(ctx, spec);
        if let Some(m) = body.as_object_mut() {
            // PATCH cannot carry location or kind (they force a replacement instead).
            m.remove("location");
            m.remove("kind");
            m.insert("tags".into(), json!(super::update_tags(ctx, &spec.tags, &observed.tags)));
        }
        let updated = self.client.patch(Some(ctx), id, STORAGE, &body).await?;
        let keys = self.keys_if_allowed(id).await?;
        Ok(self.outputs(&updated, id, keys))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, STORAGE).await
    }
}
