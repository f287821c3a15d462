//! Azure Files shares through ARM, `Microsoft.Storage/storageAccounts/fileServices/shares`
//! (api-version [`crate::api_versions::STORAGE`]): `PUT {account}/fileServices/default/shares/{share}`
//! with `shareQuota` (GiB), `accessTier` and `metadata`; all synchronous.
//!
//! Share snapshots (the seed's manual backup) are [`FileShares::create_snapshot`] (`PUT` on the
//! share with `$expand=snapshots`), [`FileShares::list_snapshots`] (`GET
//! {account}/fileServices/default/shares?$expand=snapshots`) and
//! [`FileShares::delete_snapshot`] (`DELETE` with `x-ms-snapshot`); the
//! [`crate::resources::share_snapshot`] provisioner makes one part of a stack.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::retry::Idempotency;
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, id_of, opt_str_at, str_at};
use crate::api_versions::STORAGE;
use crate::client::{ArmClient, ArmMethod, ArmRequest};
use crate::ids::ResourceId;
use crate::validate;

/// Access tier of a standard share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareAccessTier {
    /// The default for standard accounts.
    TransactionOptimized,
    /// Hot.
    Hot,
    /// Cool.
    Cool,
    /// Premium (FileStorage accounts).
    Premium,
}

/// Metadata keys stackup sets on shares and containers to recognise its own objects.
pub const MANAGED_METADATA: &[&str] = &["managed_by", "stackup_stack", "stackup_address"];

/// User metadata plus stackup's markers.
pub fn with_managed_metadata(ctx: &Ctx, user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut m = user.clone();
    m.insert("managed_by".into(), "stackup".into());
    m.insert("stackup_stack".into(), ctx.stack().to_owned());
    m.insert("stackup_address".into(), ctx.address().to_owned());
    m
}

/// True when metadata says this stack created the object at this address.
pub fn metadata_is_ours(ctx: &Ctx, m: &BTreeMap<String, String>) -> bool {
    m.get("managed_by").map(String::as_str) == Some("stackup")
        && m.get("stackup_stack").map(String::as_str) == Some(ctx.stack())
        && m.get("stackup_address").map(String::as_str) == Some(ctx.address())
}

/// Metadata without stackup's markers.
pub fn user_metadata(m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    m.iter().filter(|(k, _)| !MANAGED_METADATA.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// `properties.metadata` of a share or container body.
pub fn metadata_of(body: &Value) -> BTreeMap<String, String> {
    body.pointer("/properties/metadata")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// Metadata keys are C# identifiers (letters, digits, `_`, not starting with a digit), stored
/// in lower case; values are ASCII.
pub fn validate_metadata(field: &str, m: &BTreeMap<String, String>) -> Result<(), Error> {
    for (k, v) in m {
        let f = format!("{field}.{k}");
        let first = k.chars().next().unwrap_or('0');
        if !(first.is_ascii_alphabetic() || first == '_') || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid(f, "metadata names are letters, digits and '_', not starting with a digit"));
        }
        if k.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(Error::invalid(f, "metadata names are stored in lower case; write them in lower case"));
        }
        if !v.is_ascii() {
            return Err(Error::invalid(f, "metadata values must be ASCII"));
        }
        if MANAGED_METADATA.contains(&k.as_str()) {
            return Err(Error::invalid(f, "this metadata key is set by stackup itself"));
        }
    }
    Ok(())
}

/// An Azure Files share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileShareSpec {
    /// Name: 3–63 lowercase letters, digits and single `-`.
    pub name: String,
    /// The storage account's ARM id (its `id` output).
    pub storage_account_id: Input<String>,
    /// Quota in GiB: 1–5120 (up to 102400 with large file shares).
    pub quota_gib: u32,
    /// Access tier; the account's default (`TransactionOptimized`) when `None`.
    #[serde(default)]
    pub access_tier: Option<ShareAccessTier>,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// An observed share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileShareOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The storage account's ARM id.
    pub storage_account_id: String,
    /// The storage account's name (the SMB user name).
    pub account_name: String,
    /// Quota in GiB.
    pub quota_gib: u32,
    /// Access tier (`TransactionOptimized`, `Hot`, `Cool`, `Premium`).
    pub access_tier: Option<String>,
    /// All metadata, stackup's markers included.
    pub metadata: BTreeMap<String, String>,
    /// The SMB path: `//{account}.file.core.windows.net/{share}`.
    pub smb_path: String,
}

/// One share snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSnapshot {
    /// The share's ARM id.
    pub share_id: String,
    /// The snapshot's time stamp (`2020-10-26T05:48:07.0000000Z`), its identity.
    pub snapshot_time: String,
}

/// Manages file shares.
#[derive(Debug, Clone)]
pub struct FileShares {
    client: ArmClient,
}

impl FileShares {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        FileShares { client }
    }

    fn path(account_id: &str, name: &str) -> String {
        format!("{}/fileServices/default/shares/{name}", account_id.trim_end_matches('/'))
    }

    fn outputs(&self, body: &Value, fallback_id: &str) -> FileShareOutputs {
        let id = id_of(body, fallback_id);
        let parsed = ResourceId::parse(&id).ok();
        let account_name = parsed.as_ref().map(|r| r.root_name().to_owned()).unwrap_or_default();
        let storage_account_id = parsed
            .as_ref()
            .map(|r| {
                format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
                    r.subscription, r.resource_group, account_name
                )
            })
            .unwrap_or_default();
        let name = str_at(body, "/name");
        FileShareOutputs {
            smb_path: format!("//{}/{name}", self.client.cloud().file_host(&account_name)),
            id,
            name,
            storage_account_id,
            account_name,
            quota_gib: body.pointer("/properties/shareQuota").and_then(Value::as_u64).unwrap_or(0) as u32,
            access_tier: opt_str_at(body, "/properties/accessTier"),
            metadata: metadata_of(body),
        }
    }

    fn body(ctx: &Ctx, spec: &FileShareSpec) -> Value {
        let mut props = json!({"shareQuota": spec.quota_gib, "metadata": with_managed_metadata(ctx, &spec.metadata)});
        if let Some(t) = spec.access_tier {
            props["accessTier"] = json!(t);
        }
        json!({ "properties": props })
    }

    /// Takes a snapshot of the share (`PUT {share}?$expand=snapshots` with `{}`).
    ///
    /// Unlike every other PUT, this one is not idempotent: each request that reaches Azure makes
    /// a new snapshot. So a connection that drops after the request was sent is not simply
    /// retried: the share's snapshots are listed again, and one that appeared meanwhile is the
    /// one this call made (the newest, should several have appeared); only when none did is the
    /// request sent again.
    pub async fn create_snapshot(&self, share_id: &str) -> Result<ShareSnapshot, Error> {
        let before = self.list_snapshots(share_id).await?;
        let req = ArmRequest::new(ArmMethod::Put, self.client.url(share_id, STORAGE, &[("$expand", "snapshots")])?)
            .json(&json!({}));
        let initial = match self.client.send_with(&req, Idempotency::NotIdempotent).await {
            Ok(r) => r,
            Err(Error::MaybeSent(reason)) => {
                let appeared: Vec<ShareSnapshot> =
                    self.list_snapshots(share_id).await?.into_iter().filter(|s| !before.contains(s)).collect();
                if let Some(made) = appeared.last() {
                    tracing::debug!(share = share_id, %reason, "the snapshot request's answer was lost; adopting the snapshot it made");
                    return Ok(made.clone());
                }
                self.client.send_with(&req, Idempotency::NotIdempotent).await?
            }
            Err(e) => return Err(e),
        };
        let body = crate::lro::finish_put(&self.client, None, &req, initial, share_id, STORAGE).await?;
        let snapshot_time = opt_str_at(&body, "/properties/snapshotTime").ok_or_else(|| {
            crate::error::AzureError::decode("share snapshot response", "properties.snapshotTime is missing")
        })?;
        Ok(ShareSnapshot { share_id: share_id.to_owned(), snapshot_time })
    }

    /// The share's snapshots, oldest first.
    pub async fn list_snapshots(&self, share_id: &str) -> Result<Vec<ShareSnapshot>, Error> {
        let id = ResourceId::parse(share_id)?;
        let share_name = id.name().to_owned();
        let list_path =
            share_id.rsplit_once("/shares/").map(|(prefix, _)| format!("{prefix}/shares")).ok_or_else(|| {
                Error::invalid("share_id", "must be a file share id (…/fileServices/default/shares/{name})")
            })?;
        let mut url = self.client.url(&list_path, STORAGE, &[("$expand", "snapshots")])?;
        let mut out = Vec::new();
        loop {
            let page = self.client.send(&ArmRequest::new(ArmMethod::Get, url)).await?.json_value()?;
            for item in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                if item.get("name").and_then(Value::as_str) == Some(share_name.as_str())
                    && let Some(t) = opt_str_at(item, "/properties/snapshotTime")
                {
                    out.push(ShareSnapshot { share_id: share_id.to_owned(), snapshot_time: t });
                }
            }
            match page.get("nextLink").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => url = self.client.check_poll_url(next)?,
                _ => break,
            }
        }
        out.sort_by(|a, b| a.snapshot_time.cmp(&b.snapshot_time));
        Ok(out)
    }

    /// Reads one snapshot; `None` when it is gone.
    pub async fn get_snapshot(&self, share_id: &str, snapshot_time: &str) -> Result<Option<Value>, Error> {
        self.client.get_with(share_id, STORAGE, &[], &[("x-ms-snapshot", snapshot_time.to_owned())]).await
    }

    /// Deletes one snapshot (`DELETE {share}` with `x-ms-snapshot`). Already gone is success.
    pub async fn delete_snapshot(&self, share_id: &str, snapshot_time: &str) -> Result<(), Error> {
        self.client.delete_with(None, share_id, STORAGE, &[], &[("x-ms-snapshot", snapshot_time.to_owned())]).await
    }
}

#[async_trait]
impl Provisioner for FileShares {
    type Spec = FileShareSpec;
    type Outputs = FileShareOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "file_share")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::share_or_container_name("name", "file share", &spec.name)?;
        validate::known(&spec.storage_account_id, |id| {
            validate::arm_id("storage_account_id", id, "Microsoft.Storage/storageAccounts")
        })?;
        if !(1..=102_400).contains(&spec.quota_gib) {
            return Err(Error::invalid(
                "quota_gib",
                "share quota is 1-5120 GiB (up to 102400 GiB on accounts with large file shares)",
            ));
        }
        if spec.quota_gib > 5120 && spec.access_tier != Some(ShareAccessTier::Premium) {
            tracing::debug!(quota = spec.quota_gib, "quota above 5 TiB needs large file shares enabled on the account");
        }
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
        d.field("quota_gib", &desired.quota_gib, &observed.quota_gib);
        if let Some(tier) = desired.access_tier {
            d.field("access_tier", &Some(json!(tier)), &observed.access_tier.as_ref().map(|t| json!(t)));
        }
        d.field("metadata", &desired.metadata, &user_metadata(&observed.metadata));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let account = spec.storage_account_id.get("storage_account_id")?;
        let path = Self::path(account, &spec.name);
        if let Some(existing) = self.client.get(&path, STORAGE).await?
            && !metadata_is_ours(ctx, &metadata_of(&existing))
        {
            return Err(super::not_ours("file share", &spec.name).into());
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
        // `$include=snapshots` deletes the share with its snapshots (the share's data goes anyway).
        self.client.delete_with(Some(ctx), id, STORAGE, &[("$include", "snapshots")], &[]).await
    }
}
