//! Blob containers through ARM, `Microsoft.Storage/storageAccounts/blobServices/containers`
//! (api-version [`crate::api_versions::STORAGE`]): `PUT {account}/blobServices/default/containers/{name}`
//! with `publicAccess` and `metadata` (synchronous), updated with `PATCH`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::file_share::{metadata_is_ours, metadata_of, user_metadata, validate_metadata, with_managed_metadata};
use super::{PROVIDER, id_of, not_ours, opt_str_at, str_at};
use crate::api_versions::STORAGE;
use crate::client::ArmClient;
use crate::ids::ResourceId;
use crate::validate;

/// Anonymous read access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PublicAccess {
    /// Private (the default).
    #[default]
    None,
    /// Anonymous read of blobs by URL.
    Blob,
    /// Anonymous read and listing.
    Container,
}

/// A blob container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobContainerSpec {
    /// Name: 3–63 lowercase letters, digits and single `-` (`dursor-storage`).
    pub name: String,
    /// The storage account's ARM id.
    pub storage_account_id: Input<String>,
    /// Anonymous access (default none; anything else also needs the account to allow it).
    #[serde(default)]
    pub public_access: PublicAccess,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// An observed container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobContainerOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The storage account's ARM id.
    pub storage_account_id: String,
    /// The storage account's name.
    pub account_name: String,
    /// Anonymous access.
    pub public_access: PublicAccess,
    /// All metadata.
    pub metadata: BTreeMap<String, String>,
    /// `https://{account}.blob.core.windows.net/{name}`.
    pub url: String,
}

/// Manages blob containers.
#[derive(Debug, Clone)]
pub struct BlobContainers {
    client: ArmClient,
}

impl BlobContainers {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        BlobContainers { client }
    }

    fn path(account_id: &str, name: &str) -> String {
        format!("{}/blobServices/default/containers/{name}", account_id.trim_end_matches('/'))
    }

    fn outputs(&self, body: &Value, fallback: &str) -> BlobContainerOutputs {
        let id = id_of(body, fallback);
        let account_id = id.split_once("/blobServices/").map(|(a, _)| a.to_owned()).unwrap_or_default();
        let account_name = ResourceId::parse(&id).map(|r| r.root_name().to_owned()).unwrap_or_default();
        let name = str_at(body, "/name");
        BlobContainerOutputs {
            url: format!("https://{account_name}.blob.{}/{name}", self.client.cloud().storage_suffix),
            id,
            name,
            storage_account_id: account_id,
            account_name,
            public_access: opt_str_at(body, "/properties/publicAccess")
                .and_then(|s| serde_json::from_value(json!(s)).ok())
                .unwrap_or_default(),
            metadata: metadata_of(body),
        }
    }

    fn body(ctx: &Ctx, spec: &BlobContainerSpec) -> Value {
        json!({"properties": {"publicAccess": spec.public_access, "metadata": with_managed_metadata(ctx, &spec.metadata)}})
    }
}

#[async_trait]
impl Provisioner for BlobContainers {
    type Spec = BlobContainerSpec;
    type Outputs = BlobContainerOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "blob_container")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::share_or_container_name("name", "container", &spec.name)?;
        validate::known(&spec.storage_account_id, |id| {
            validate::arm_id("storage_account_id", id, "Microsoft.Storage/storageAccounts")
        })?;
        validate_metadata("metadata", &spec.metadata)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        Ok(self.client.get(id, STORAGE).await?.map(|b| self.outputs(&b, id)))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let Some(account) = spec.storage_account_id.known() else { return Ok(None) };
        let path = Self::path(account, &spec.name);
        let Some(body) = self.client.get(&path, STORAGE).await? else { return Ok(None) };
        let out = self.outputs(&body, &path);
        Ok(metadata_is_ours(ctx, &out.metadata).then(|| Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name, &observed.name);
        super::diff_ci(&mut d, "storage_account_id", &desired.storage_account_id, &observed.storage_account_id, true);
        d.field("public_access", &desired.public_access, &observed.public_access);
        d.field("metadata", &desired.metadata, &user_metadata(&observed.metadata));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = Self::path(spec.storage_account_id.get("storage_account_id")?, &spec.name);
        if let Some(existing) = self.client.get(&path, STORAGE).await?
            && !metadata_is_ours(ctx, &metadata_of(&existing))
        {
            return Err(not_ours("blob container", &spec.name).into());
        }
        let body = self.client.put(Some(ctx), &path, STORAGE, &Self::body(ctx, spec)).await?;
        let out = self.outputs(&body, &path);
        Ok(Created { id: out.id.clone(), outputs: out })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &Self::Spec,
        _observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error> {
        self.validate(spec)?;
        let body = self.client.patch(Some(ctx), id, STORAGE, &Self::body(ctx, spec)).await?;
        Ok(self.outputs(&body, id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, STORAGE).await
    }
}
