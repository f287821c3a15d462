//! [`BucketLifecycles`]: a bucket's object lifecycle rules (expire objects, abort stale
//! multipart uploads, move objects to Infrequent Access), as one resource that owns the whole
//! configuration: applying it replaces every rule (both APIs replace all rules on PUT).
//!
//! Through the Cloudflare REST API (`PUT /accounts/{id}/r2/buckets/{name}/lifecycle`, ages in
//! seconds) when it is configured, otherwise through S3 `PutBucketLifecycleConfiguration`.
//! Storage-class transitions need the REST API.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use crate::client::R2Client;
use crate::config::Jurisdiction;
use crate::error::{R2Error, s3_error};
use crate::names::validate_bucket_name;
use crate::resources::bucket::{bucket_id, parse_bucket_id};

const DAY: u64 = 86_400;

fn yes() -> bool {
    true
}

/// One lifecycle rule. Ages are in whole days since the object was uploaded (or the upload
/// started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// Rule id (1 to 255 characters, unique in the bucket).
    pub id: String,
    /// Whether the rule is active.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Key prefix the rule applies to (empty: every object).
    #[serde(default)]
    pub prefix: String,
    /// Delete objects this many days after upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_days: Option<u32>,
    /// Abort multipart uploads this many days after they started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_multipart_after_days: Option<u32>,
    /// Move objects to Infrequent Access this many days after upload (REST API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrequent_access_after_days: Option<u32>,
}

impl LifecycleRule {
    /// An enabled rule with no actions yet, for every key under `prefix`.
    pub fn new(id: impl Into<String>, prefix: impl Into<String>) -> Self {
        LifecycleRule {
            id: id.into(),
            enabled: true,
            prefix: prefix.into(),
            expire_after_days: None,
            abort_multipart_after_days: None,
            infrequent_access_after_days: None,
        }
    }
}

/// The lifecycle configuration of a bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleSpec {
    /// The bucket (often another resource's `name` output).
    pub bucket: Input<String>,
    /// The bucket's jurisdiction.
    #[serde(default)]
    pub jurisdiction: Jurisdiction,
    /// The rules, in order. An empty list removes every rule.
    pub rules: Vec<LifecycleRule>,
}

/// The lifecycle configuration as observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleOutputs {
    /// Bucket name.
    pub bucket: String,
    /// Jurisdiction.
    pub jurisdiction: Jurisdiction,
    /// The rules R2 reports.
    pub rules: Vec<LifecycleRule>,
}

// ---- Cloudflare REST wire shapes -------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, Default)]
struct RestLifecycle {
    #[serde(default)]
    rules: Vec<RestRule>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestRule {
    id: String,
    enabled: bool,
    #[serde(default)]
    conditions: RestConditions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delete_objects_transition: Option<RestTransition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    abort_multipart_uploads_transition: Option<RestTransition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    storage_class_transitions: Vec<RestStorageTransition>,
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct RestConditions {
    #[serde(default)]
    prefix: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct RestTransition {
    condition: RestCondition,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestStorageTransition {
    condition: RestCondition,
    storage_class: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestCondition {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    date: Option<String>,
}

/// The longest age a rule may name: 100 years (S3 takes days as a 32-bit signed number; no log
/// retention needs more).
pub const MAX_DAYS: u32 = 36_500;

fn age(days: u32) -> RestCondition {
    RestCondition { kind: "Age".into(), max_age: Some(u64::from(days) * DAY), date: None }
}

/// Days of an `Age` condition; a `Date` condition (or a non-whole day) has no day count and
/// shows up as a difference, which the next apply replaces.
fn days_of(c: &RestCondition) -> Option<u32> {
    match (c.kind.as_str(), c.max_age) {
        ("Age", Some(s)) if s % DAY == 0 => u32::try_from(s / DAY).ok(),
        _ => None,
    }
}

fn to_rest(rules: &[LifecycleRule]) -> RestLifecycle {
    RestLifecycle {
        rules: rules
            .iter()
            .map(|r| RestRule {
                id: r.id.clone(),
                enabled: r.enabled,
                conditions: RestConditions { prefix: r.prefix.clone() },
                delete_objects_transition: r.expire_after_days.map(|d| RestTransition { condition: age(d) }),
                abort_multipart_uploads_transition: r
                    .abort_multipart_after_days
                    .map(|d| RestTransition { condition: age(d) }),
                storage_class_transitions: r
                    .infrequent_access_after_days
                    .map(|d| RestStorageTransition { condition: age(d), storage_class: "InfrequentAccess".into() })
                    .into_iter()
                    .collect(),
            })
            .collect(),
    }
}

fn from_rest(rest: RestLifecycle) -> Vec<LifecycleRule> {
    rest.rules
        .into_iter()
        .map(|r| LifecycleRule {
            id: r.id,
            enabled: r.enabled,
            prefix: r.conditions.prefix,
            expire_after_days: r.delete_objects_transition.as_ref().and_then(|t| days_of(&t.condition)),
            abort_multipart_after_days: r
                .abort_multipart_uploads_transition
                .as_ref()
                .and_then(|t| days_of(&t.condition)),
            infrequent_access_after_days: r
                .storage_class_transitions
                .iter()
                .find(|t| t.storage_class == "InfrequentAccess")
                .and_then(|t| days_of(&t.condition)),
        })
        .collect()
}

// ---- S3 wire shapes ---------------------------------------------------------------------------

fn to_s3(rules: &[LifecycleRule]) -> Result<aws_sdk_s3::types::BucketLifecycleConfiguration, R2Error> {
    use aws_sdk_s3::types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration,
        LifecycleRuleFilter,
    };
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let mut b = aws_sdk_s3::types::LifecycleRule::builder()
            .id(&r.id)
            .status(if r.enabled { ExpirationStatus::Enabled } else { ExpirationStatus::Disabled })
            .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build());
        if let Some(d) = r.expire_after_days {
            b = b.expiration(LifecycleExpiration::builder().days(d as i32).build());
        }
        if let Some(d) = r.abort_multipart_after_days {
            b = b.abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(d as i32).build(),
            );
        }
        out.push(b.build().map_err(|e| R2Error::invalid("rules", e.to_string()))?);
    }
    BucketLifecycleConfiguration::builder()
        .set_rules(Some(out))
        .build()
        .map_err(|e| R2Error::invalid("rules", e.to_string()))
}

fn from_s3(rules: &[aws_sdk_s3::types::LifecycleRule]) -> Vec<LifecycleRule> {
    rules
        .iter()
        .map(|r| LifecycleRule {
            id: r.id().unwrap_or_default().to_owned(),
            enabled: r.status() == &aws_sdk_s3::types::ExpirationStatus::Enabled,
            #[allow(deprecated)]
            prefix: r.filter().and_then(|f| f.prefix()).or(r.prefix()).unwrap_or_default().to_owned(),
            expire_after_days: r.expiration().and_then(|e| e.days()).and_then(|d| u32::try_from(d).ok()),
            abort_multipart_after_days: r
                .abort_incomplete_multipart_upload()
                .and_then(|a| a.days_after_initiation())
                .and_then(|d| u32::try_from(d).ok()),
            infrequent_access_after_days: None,
        })
        .collect()
}

/// The lifecycle provisioner.
#[derive(Debug, Clone)]
pub struct BucketLifecycles {
    client: R2Client,
}

impl BucketLifecycles {
    /// A provisioner using `client`.
    pub fn new(client: R2Client) -> Self {
        BucketLifecycles { client }
    }

    /// Reads the rules; `None` when the bucket does not exist.
    async fn get(&self, bucket: &str, j: Jurisdiction) -> Result<Option<Vec<LifecycleRule>>, R2Error> {
        if let Some(cf) = self.client.cloudflare() {
            return match cf.get_setting::<RestLifecycle>(bucket, "lifecycle", j).await {
                Ok(r) => Ok(Some(from_rest(r.unwrap_or_default()))),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            };
        }
        match self.client.s3_for(j)?.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
            Ok(out) => Ok(Some(from_s3(out.rules()))),
            Err(e) => {
                let e = s3_error("GetBucketLifecycleConfiguration", e);
                match e.code() {
                    Some("NoSuchLifecycleConfiguration") => Ok(Some(Vec::new())),
                    _ if e.is_not_found() => Ok(None),
                    _ => Err(e),
                }
            }
        }
    }

    async fn put(&self, bucket: &str, j: Jurisdiction, rules: &[LifecycleRule]) -> Result<(), R2Error> {
        if let Some(cf) = self.client.cloudflare() {
            return cf.put_setting(bucket, "lifecycle", j, &to_rest(rules)).await;
        }
        let s3 = self.client.s3_for(j)?;
        if rules.is_empty() {
            return match s3.delete_bucket_lifecycle().bucket(bucket).send().await {
                Ok(_) => Ok(()),
                Err(e) => Err(s3_error("DeleteBucketLifecycle", e)),
            };
        }
        s3.put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(to_s3(rules)?)
            .send()
            .await
            .map_err(|e| s3_error("PutBucketLifecycleConfiguration", e))?;
        Ok(())
    }

    async fn apply(&self, spec: &LifecycleSpec) -> Result<(String, LifecycleOutputs), Error> {
        self.validate(spec)?;
        let bucket = spec.bucket.get("bucket")?;
        self.put(bucket, spec.jurisdiction, &spec.rules).await?;
        let rules = self.get(bucket, spec.jurisdiction).await?.unwrap_or_default();
        let id = bucket_id(bucket, spec.jurisdiction);
        Ok((id, LifecycleOutputs { bucket: bucket.clone(), jurisdiction: spec.jurisdiction, rules }))
    }
}

#[async_trait]
impl Provisioner for BucketLifecycles {
    type Spec = LifecycleSpec;
    type Outputs = LifecycleOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("r2", "bucket_lifecycle")
    }

    fn validate(&self, spec: &LifecycleSpec) -> Result<(), Error> {
        if let Some(b) = spec.bucket.known() {
            validate_bucket_name("bucket", b)?;
        }
        if spec.rules.len() > 1000 {
            return Err(Error::invalid("rules", "at most 1000 rules"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in spec.rules.iter().enumerate() {
            let f = |name: &str| format!("rules[{i}].{name}");
            if r.id.is_empty() || r.id.len() > 255 {
                return Err(Error::invalid(f("id"), "must be 1 to 255 characters"));
            }
            if !seen.insert(&r.id) {
                return Err(Error::invalid(f("id"), format!("duplicate rule id `{}`", r.id)));
            }
            if r.expire_after_days.is_none()
                && r.abort_multipart_after_days.is_none()
                && r.infrequent_access_after_days.is_none()
            {
                return Err(Error::invalid(
                    f("id"),
                    "a rule needs at least one action (expire_after_days, abort_multipart_after_days, \
                     infrequent_access_after_days)",
                ));
            }
            for (name, v) in [
                ("expire_after_days", r.expire_after_days),
                ("abort_multipart_after_days", r.abort_multipart_after_days),
                ("infrequent_access_after_days", r.infrequent_access_after_days),
            ] {
                if v == Some(0) {
                    return Err(Error::invalid(f(name), "must be at least 1 day"));
                }
                if v.is_some_and(|d| d > MAX_DAYS) {
                    return Err(Error::invalid(f(name), format!("must be at most {MAX_DAYS} days (100 years)")));
                }
            }
            if let Some(ia) = r.infrequent_access_after_days {
                if !self.client.config().has_cloudflare_api() {
                    return Err(Error::invalid(
                        f("infrequent_access_after_days"),
                        "storage-class transitions need the Cloudflare REST API \
                         (set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID)",
                    ));
                }
                if r.expire_after_days.is_some_and(|e| e <= ia) {
                    return Err(Error::invalid(
                        f("infrequent_access_after_days"),
                        "must be earlier than expire_after_days",
                    ));
                }
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        _prior: Option<&LifecycleOutputs>,
    ) -> Result<Option<LifecycleOutputs>, Error> {
        let (jurisdiction, bucket) = parse_bucket_id(id)?;
        Ok(self.get(bucket, jurisdiction).await?.map(|rules| LifecycleOutputs {
            bucket: bucket.to_owned(),
            jurisdiction,
            rules,
        }))
    }

    fn diff(&self, desired: &LifecycleSpec, observed: &LifecycleOutputs) -> Diff {
        let mut d = Diff::new();
        d.input_replace("bucket", &desired.bucket, &observed.bucket);
        d.field_replace("jurisdiction", &desired.jurisdiction, &observed.jurisdiction);
        d.field("rules", &desired.rules, &observed.rules);
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &LifecycleSpec) -> Result<Created<LifecycleOutputs>, CreateError> {
        ctx.progress(format!("setting {} lifecycle rule(s)", spec.rules.len()));
        let (id, outputs) = self.apply(spec).await?;
        Ok(Created { id, outputs })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _id: &str,
        spec: &LifecycleSpec,
        _observed: &LifecycleOutputs,
    ) -> Result<LifecycleOutputs, Error> {
        ctx.progress(format!("replacing lifecycle rules ({} rule(s))", spec.rules.len()));
        Ok(self.apply(spec).await?.1)
    }

    async fn delete(&self, _ctx: &Ctx, id: &str, _observed: &LifecycleOutputs) -> Result<(), Error> {
        let (jurisdiction, bucket) = parse_bucket_id(id)?;
        match self.put(bucket, jurisdiction, &[]).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_shape_uses_seconds_and_round_trips() {
        let mut r = LifecycleRule::new("expire-logs", "");
        r.expire_after_days = Some(90);
        r.abort_multipart_after_days = Some(7);
        r.infrequent_access_after_days = Some(30);
        let json = serde_json::to_value(to_rest(std::slice::from_ref(&r))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"rules":[{"id":"expire-logs","enabled":true,"conditions":{"prefix":""},
                "deleteObjectsTransition":{"condition":{"type":"Age","maxAge":7776000}},
                "abortMultipartUploadsTransition":{"condition":{"type":"Age","maxAge":604800}},
                "storageClassTransitions":[{"condition":{"type":"Age","maxAge":2592000},"storageClass":"InfrequentAccess"}]}]})
        );
        let back = from_rest(serde_json::from_value(json).unwrap());
        assert_eq!(back, vec![r]);
    }
}
