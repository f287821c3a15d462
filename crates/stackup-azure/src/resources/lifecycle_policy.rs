//! The storage account's lifecycle management policy, `Microsoft.Storage/storageAccounts/managementPolicies`
//! (api-version [`crate::api_versions::STORAGE`]): `PUT {account}/managementPolicies/default`
//! (the name must be `default`), which replaces the whole policy. Seed 003: tier to Cool after
//! 30 days, Archive after 90, delete after 365, and delete `temp/` after 7:
//!
//! ```
//! use stackup_azure::resources::lifecycle_policy::LifecycleRule;
//! let rules = vec![
//!     LifecycleRule::new("tiering", ["dursor-storage/"]).cool_after(30).archive_after(90).delete_after(365),
//!     LifecycleRule::new("temp", ["dursor-storage/temp/"]).delete_after(7),
//! ];
//! # assert_eq!(rules.len(), 2);
//! ```

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, id_of, opt_str_at};
use crate::api_versions::STORAGE;
use crate::client::ArmClient;
use crate::validate;

fn yes() -> bool {
    true
}

fn block_blob() -> Vec<String> {
    vec!["blockBlob".into()]
}

/// One rule: filters and the actions on base blobs (days after last modification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// Rule name (letters and digits… unique in the policy).
    pub name: String,
    /// Whether the rule runs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Prefixes, each starting with the container name (`container/prefix`).
    pub prefix_match: Vec<String>,
    /// Blob types (default `blockBlob`).
    #[serde(default = "block_blob")]
    pub blob_types: Vec<String>,
    /// Move to Cool this many days after modification.
    #[serde(default)]
    pub tier_to_cool_after_days: Option<u32>,
    /// Move to Archive this many days after modification.
    #[serde(default)]
    pub tier_to_archive_after_days: Option<u32>,
    /// Delete this many days after modification.
    #[serde(default)]
    pub delete_after_days: Option<u32>,
    /// Delete snapshots this many days after their creation.
    #[serde(default)]
    pub delete_snapshots_after_days: Option<u32>,
}

impl LifecycleRule {
    /// An enabled block-blob rule for these prefixes, with no actions yet.
    pub fn new<I, S>(name: impl Into<String>, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LifecycleRule {
            name: name.into(),
            enabled: true,
            prefix_match: prefixes.into_iter().map(Into::into).collect(),
            blob_types: block_blob(),
            tier_to_cool_after_days: None,
            tier_to_archive_after_days: None,
            delete_after_days: None,
            delete_snapshots_after_days: None,
        }
    }

    /// Tier to Cool after `days`.
    pub fn cool_after(mut self, days: u32) -> Self {
        self.tier_to_cool_after_days = Some(days);
        self
    }

    /// Tier to Archive after `days`.
    pub fn archive_after(mut self, days: u32) -> Self {
        self.tier_to_archive_after_days = Some(days);
        self
    }

    /// Delete after `days`.
    pub fn delete_after(mut self, days: u32) -> Self {
        self.delete_after_days = Some(days);
        self
    }

    fn to_arm(&self) -> Value {
        let mut base = json!({});
        let after = |d: u32| json!({"daysAfterModificationGreaterThan": d});
        if let Some(d) = self.tier_to_cool_after_days {
            base["tierToCool"] = after(d);
        }
        if let Some(d) = self.tier_to_archive_after_days {
            base["tierToArchive"] = after(d);
        }
        if let Some(d) = self.delete_after_days {
            base["delete"] = after(d);
        }
        let mut actions = json!({});
        if base.as_object().is_some_and(|m| !m.is_empty()) {
            actions["baseBlob"] = base;
        }
        if let Some(d) = self.delete_snapshots_after_days {
            actions["snapshot"] = json!({"delete": {"daysAfterCreationGreaterThan": d}});
        }
        json!({
            "enabled": self.enabled,
            "name": self.name,
            "type": "Lifecycle",
            "definition": {
                "filters": {"blobTypes": self.blob_types, "prefixMatch": self.prefix_match},
                "actions": actions,
            },
        })
    }

    fn from_arm(v: &Value) -> Option<Self> {
        let days = |p: &str| v.pointer(p).and_then(Value::as_f64).map(|d| d as u32);
        let strings = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        Some(LifecycleRule {
            name: v.get("name")?.as_str()?.to_owned(),
            enabled: v.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            prefix_match: strings("/definition/filters/prefixMatch"),
            blob_types: strings("/definition/filters/blobTypes"),
            tier_to_cool_after_days: days("/definition/actions/baseBlob/tierToCool/daysAfterModificationGreaterThan"),
            tier_to_archive_after_days: days(
                "/definition/actions/baseBlob/tierToArchive/daysAfterModificationGreaterThan",
            ),
            delete_after_days: days("/definition/actions/baseBlob/delete/daysAfterModificationGreaterThan"),
            delete_snapshots_after_days: days("/definition/actions/snapshot/delete/daysAfterCreationGreaterThan"),
        })
    }
}

/// Rules sorted by name, so diffs do not depend on order.
fn sorted(rules: &[LifecycleRule]) -> Vec<LifecycleRule> {
    let mut r = rules.to_vec();
    r.sort_by(|a, b| a.name.cmp(&b.name));
    r
}

/// The account's lifecycle policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecyclePolicySpec {
    /// The storage account's ARM id.
    pub storage_account_id: Input<String>,
    /// Rules (at most 100).
    pub rules: Vec<LifecycleRule>,
}

/// An observed policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecyclePolicyOutputs {
    /// ARM id (`…/managementPolicies/default`).
    pub id: String,
    /// The storage account's ARM id.
    pub storage_account_id: String,
    /// Rules, sorted by name.
    pub rules: Vec<LifecycleRule>,
    /// When Azure last changed the policy.
    pub last_modified_time: Option<String>,
}

/// Manages lifecycle policies.
#[derive(Debug, Clone)]
pub struct LifecyclePolicies {
    client: ArmClient,
}

impl LifecyclePolicies {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        LifecyclePolicies { client }
    }

    fn path(account_id: &str) -> String {
        format!("{}/managementPolicies/default", account_id.trim_end_matches('/'))
    }

    fn outputs(body: &Value, fallback: &str) -> LifecyclePolicyOutputs {
        let id = id_of(body, fallback);
        let rules: Vec<LifecycleRule> = body
            .pointer("/properties/policy/rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(LifecycleRule::from_arm).collect())
            .unwrap_or_default();
        LifecyclePolicyOutputs {
            storage_account_id: id.split_once("/managementPolicies").map(|(a, _)| a.to_owned()).unwrap_or_default(),
            id,
            rules: sorted(&rules),
            last_modified_time: opt_str_at(body, "/properties/lastModifiedTime"),
        }
    }

    fn body(spec: &LifecyclePolicySpec) -> Value {
        let rules: Vec<Value> = spec.rules.iter().map(LifecycleRule::to_arm).collect();
        json!({"properties": {"policy": {"rules": rules}}})
    }
}

#[async_trait]
impl Provisioner for LifecyclePolicies {
    type Spec = LifecyclePolicySpec;
    type Outputs = LifecyclePolicyOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "lifecycle_policy")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::known(&spec.storage_account_id, |id| {
            validate::arm_id("storage_account_id", id, "Microsoft.Storage/storageAccounts")
        })?;
        if spec.rules.is_empty() || spec.rules.len() > 100 {
            return Err(Error::invalid("rules", "a policy has 1-100 rules"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in spec.rules.iter().enumerate() {
            let f = |k: &str| format!("rules[{i}].{k}");
            if r.name.is_empty() || r.name.len() > 256 || !r.name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Error::invalid(f("name"), "rule names are 1-256 letters and digits"));
            }
            if !names.insert(r.name.clone()) {
                return Err(Error::invalid(f("name"), "rule names must be unique"));
            }
            if r.prefix_match.len() > 10 {
                return Err(Error::invalid(f("prefix_match"), "at most 10 prefixes per rule"));
            }
            for p in &r.prefix_match {
                let container = p.split('/').next().unwrap_or_default();
                validate::share_or_container_name(&f("prefix_match"), "container", container).map_err(|_| {
                    Error::invalid(
                        f("prefix_match"),
                        format!("`{p}` must start with a container name (`container/prefix`)"),
                    )
                })?;
            }
            for t in &r.blob_types {
                if !matches!(t.as_str(), "blockBlob" | "appendBlob") {
                    return Err(Error::invalid(f("blob_types"), "blob types are blockBlob or appendBlob"));
                }
            }
            if r.blob_types.is_empty() {
                return Err(Error::invalid(f("blob_types"), "at least one blob type"));
            }
            let (cool, archive, delete) =
                (r.tier_to_cool_after_days, r.tier_to_archive_after_days, r.delete_after_days);
            if cool.is_none() && archive.is_none() && delete.is_none() && r.delete_snapshots_after_days.is_none() {
                return Err(Error::invalid(f("actions"), "a rule needs at least one action"));
            }
            if r.blob_types.iter().any(|t| t == "appendBlob") && (cool.is_some() || archive.is_some()) {
                return Err(Error::invalid(f("blob_types"), "append blobs can only be deleted, not tiered"));
            }
            if let (Some(c), Some(a)) = (cool, archive)
                && c >= a
            {
                return Err(Error::invalid(f("tier_to_archive_after_days"), "archive must come after cool"));
            }
            if let Some(d) = delete
                && (cool.is_some_and(|c| c >= d) || archive.is_some_and(|a| a >= d))
            {
                return Err(Error::invalid(f("delete_after_days"), "delete must come after the tiering actions"));
            }
        }
        Ok(())
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        Ok(self.client.get(id, STORAGE).await?.map(|b| Self::outputs(&b, id)))
    }

    async fn lookup(&self, _ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        // The account has one policy and PUT replaces it: an existing one is adopted.
        let Some(account) = spec.storage_account_id.known() else { return Ok(None) };
        let path = Self::path(account);
        Ok(self.client.get(&path, STORAGE).await?.map(|b| {
            let out = Self::outputs(&b, &path);
            Created { id: out.id.clone(), outputs: out }
        }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        super::diff_ci(&mut d, "storage_account_id", &desired.storage_account_id, &observed.storage_account_id, true);
        d.field("rules", &sorted(&desired.rules), &observed.rules);
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = Self::path(spec.storage_account_id.get("storage_account_id")?);
        let body = self.client.put(Some(ctx), &path, STORAGE, &Self::body(spec)).await?;
        let out = Self::outputs(&body, &path);
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
        let body = self.client.put(Some(ctx), id, STORAGE, &Self::body(spec)).await?;
        Ok(Self::outputs(&body, id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, STORAGE).await
    }
}
