//! [`Buckets`]: an R2 bucket, created through the Cloudflare REST API when it is configured
//! (location hint, jurisdiction, default storage class) and through S3 `CreateBucket`
//! otherwise.
//!
//! The resource id is the bucket name, prefixed with the jurisdiction for jurisdiction buckets
//! (`eu/jamjam-logs`). R2 buckets carry no tags, so an interrupted create is found again by its
//! (account-unique) name. Delete refuses a bucket that still holds objects unless
//! `empty_on_delete` is set, in which case it deletes every object and aborts every pending
//! multipart upload first.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use stackup_core::{ApiErrorDetails, CreateError, Created, Ctx, Diff, Error, Provisioner, ResourceKind};

use crate::client::R2Client;
use crate::config::Jurisdiction;
use crate::error::{R2Error, s3_error};
use crate::names::validate_bucket_name;

/// Where R2 should place a new bucket (a hint; R2 decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationHint {
    /// Asia-Pacific.
    Apac,
    /// Eastern Europe.
    Eeur,
    /// Eastern North America.
    Enam,
    /// Western Europe.
    Weur,
    /// Western North America.
    Wnam,
    /// Oceania.
    Oc,
}

impl LocationHint {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            LocationHint::Apac => "apac",
            LocationHint::Eeur => "eeur",
            LocationHint::Enam => "enam",
            LocationHint::Weur => "weur",
            LocationHint::Wnam => "wnam",
            LocationHint::Oc => "oc",
        }
    }
}

/// The default storage class of objects uploaded to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageClass {
    /// Standard storage.
    Standard,
    /// Infrequent Access (cheaper storage, retrieval fees, 30-day minimum).
    InfrequentAccess,
}

impl StorageClass {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "Standard",
            StorageClass::InfrequentAccess => "InfrequentAccess",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "Standard" => Some(StorageClass::Standard),
            "InfrequentAccess" => Some(StorageClass::InfrequentAccess),
            _ => None,
        }
    }
}

/// A bucket, as the user wants it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketSpec {
    /// Bucket name (3 to 63 characters: `a-z`, `0-9`, `-`).
    pub name: String,
    /// Jurisdiction (changing it replaces the bucket).
    #[serde(default)]
    pub jurisdiction: Jurisdiction,
    /// Location hint, used at creation only (R2 cannot move a bucket, so a later change is
    /// not a diff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_hint: Option<LocationHint>,
    /// Default storage class (needs the Cloudflare REST API). `None` keeps R2's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    /// Delete every object (and abort pending multipart uploads) before deleting the bucket.
    /// Off by default: deleting a bucket that holds objects fails.
    #[serde(default)]
    pub empty_on_delete: bool,
}

impl BucketSpec {
    /// A bucket named `name` in the default jurisdiction.
    pub fn new(name: impl Into<String>) -> Self {
        BucketSpec {
            name: name.into(),
            jurisdiction: Jurisdiction::Default,
            location_hint: None,
            storage_class: None,
            empty_on_delete: false,
        }
    }
}

/// A bucket as observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketOutputs {
    /// Bucket name.
    pub name: String,
    /// Jurisdiction.
    pub jurisdiction: Jurisdiction,
    /// Location R2 chose (REST API only), lowercase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Default storage class (REST API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    /// Creation time (REST API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// The S3 endpoint that serves this bucket.
    pub s3_endpoint: String,
    /// Carried from the spec: whether delete empties the bucket first.
    #[serde(default)]
    pub empty_on_delete: bool,
}

/// Builds the resource id: the name, prefixed with the jurisdiction unless it is the default.
pub fn bucket_id(name: &str, jurisdiction: Jurisdiction) -> String {
    match jurisdiction {
        Jurisdiction::Default => name.to_owned(),
        j => format!("{j}/{name}"),
    }
}

/// Parses a resource id made by [`bucket_id`].
pub fn parse_bucket_id(id: &str) -> Result<(Jurisdiction, &str), Error> {
    match id.split_once('/') {
        None => Ok((Jurisdiction::Default, id)),
        Some(("eu", n)) => Ok((Jurisdiction::Eu, n)),
        Some(("fedramp", n)) => Ok((Jurisdiction::Fedramp, n)),
        Some(("default", n)) => Ok((Jurisdiction::Default, n)),
        Some((j, _)) => Err(Error::invalid("id", format!("unknown jurisdiction `{j}` in bucket id `{id}`"))),
    }
}

/// The bucket provisioner.
#[derive(Debug, Clone)]
pub struct Buckets {
    client: R2Client,
}

impl Buckets {
    /// A provisioner using `client`.
    pub fn new(client: R2Client) -> Self {
        Buckets { client }
    }

    async fn read_bucket(&self, name: &str, jurisdiction: Jurisdiction) -> Result<Option<BucketOutputs>, R2Error> {
        let s3_endpoint = self.client.config().s3_endpoint(jurisdiction)?;
        if let Some(cf) = self.client.cloudflare() {
            return Ok(cf.get_bucket(name, jurisdiction).await?.map(|b| BucketOutputs {
                name: name.to_owned(),
                jurisdiction,
                location: b.location.map(|l| l.to_ascii_lowercase()),
                storage_class: b.storage_class.as_deref().and_then(StorageClass::parse),
                creation_date: b.creation_date,
                s3_endpoint,
                empty_on_delete: false,
            }));
        }
        let s3 = self.client.s3_for(jurisdiction)?;
        match s3.head_bucket().bucket(name).send().await {
            Ok(_) => Ok(Some(BucketOutputs {
                name: name.to_owned(),
                jurisdiction,
                location: None,
                storage_class: None,
                creation_date: None,
                s3_endpoint,
                empty_on_delete: false,
            })),
            Err(e) => {
                let e = s3_error("HeadBucket", e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn create_bucket(&self, spec: &BucketSpec) -> Result<(), R2Error> {
        if let Some(cf) = self.client.cloudflare() {
            cf.create_bucket(
                &spec.name,
                spec.jurisdiction,
                spec.location_hint.map(LocationHint::as_str),
                spec.storage_class.map(StorageClass::as_str),
            )
            .await?;
            return Ok(());
        }
        let s3 = self.client.s3_for(spec.jurisdiction)?;
        let region = self.client.config().region();
        // On R2 a LocationConstraint is a location hint; `auto`, empty and `us-east-1` mean auto.
        let constraint = spec
            .location_hint
            .map(|l| l.as_str().to_owned())
            .or_else(|| (!matches!(region, "auto" | "us-east-1" | "")).then(|| region.to_owned()));
        let mut req = s3.create_bucket().bucket(&spec.name);
        if let Some(c) = constraint {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(c.as_str()))
                    .build(),
            );
        }
        req.send().await.map_err(|e| s3_error("CreateBucket", e))?;
        Ok(())
    }

    /// Deletes every object and aborts every pending multipart upload in the bucket.
    pub async fn empty_bucket(&self, ctx: &Ctx, name: &str, jurisdiction: Jurisdiction) -> Result<u64, R2Error> {
        let s3 = self.client.s3_for(jurisdiction)?;
        let mut deleted = 0u64;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(name)
                .max_keys(1000)
                .send()
                .await
                .map_err(|e| s3_error("ListObjectsV2", e))?;
            let keys: Vec<String> = page.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
            if keys.is_empty() {
                break;
            }
            // One DeleteObject per key: DeleteObjects requires a Content-MD5 or checksum header.
            let n = keys.len() as u64;
            futures::stream::iter(keys)
                .map(|key| async move {
                    match s3.delete_object().bucket(name).key(&key).send().await {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            let e = s3_error("DeleteObject", e);
                            if e.is_not_found() { Ok(()) } else { Err(e) }
                        }
                    }
                })
                .buffer_unordered(16)
                .try_collect::<Vec<()>>()
                .await?;
            deleted += n;
            ctx.progress(format!("emptying bucket {name}: {deleted} objects deleted"));
        }
        // At most 1000 uploads per page: follow the key and upload-id markers to the end.
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut req = s3.list_multipart_uploads().bucket(name);
            if let Some((key, upload_id)) = &markers {
                req = req.key_marker(key).upload_id_marker(upload_id);
            }
            let page = req.send().await.map_err(|e| s3_error("ListMultipartUploads", e))?;
            for u in page.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    match s3.abort_multipart_upload().bucket(name).key(key).upload_id(id).send().await {
                        Ok(_) => {}
                        Err(e) => {
                            let e = s3_error("AbortMultipartUpload", e);
                            if !e.is_not_found() {
                                return Err(e);
                            }
                        }
                    }
                }
            }
            let next = match (page.next_key_marker(), page.next_upload_id_marker()) {
                (Some(k), Some(u)) if page.is_truncated() == Some(true) => (k.to_owned(), u.to_owned()),
                _ => break,
            };
            if markers.as_ref() == Some(&next) {
                break; // no progress: a server that repeats its page
            }
            markers = Some(next);
        }
        Ok(deleted)
    }

    async fn is_empty(&self, name: &str, jurisdiction: Jurisdiction) -> Result<bool, R2Error> {
        let s3 = self.client.s3_for(jurisdiction)?;
        let page =
            s3.list_objects_v2().bucket(name).max_keys(1).send().await.map_err(|e| s3_error("ListObjectsV2", e))?;
        Ok(page.contents().is_empty())
    }
}

#[async_trait]
impl Provisioner for Buckets {
    type Spec = BucketSpec;
    type Outputs = BucketOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("r2", "bucket")
    }

    fn validate(&self, spec: &BucketSpec) -> Result<(), Error> {
        validate_bucket_name("name", &spec.name)?;
        if spec.storage_class.is_some() && !self.client.config().has_cloudflare_api() {
            return Err(Error::invalid(
                "storage_class",
                "setting a bucket's default storage class needs the Cloudflare REST API \
                 (set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID)",
            ));
        }
        Ok(())
    }

    async fn read(&self, _ctx: &Ctx, id: &str, prior: Option<&BucketOutputs>) -> Result<Option<BucketOutputs>, Error> {
        let (jurisdiction, name) = parse_bucket_id(id)?;
        let mut out = self.read_bucket(name, jurisdiction).await?;
        if let (Some(o), Some(p)) = (&mut out, prior) {
            o.empty_on_delete = p.empty_on_delete;
        }
        Ok(out)
    }

    async fn lookup(&self, ctx: &Ctx, spec: &BucketSpec) -> Result<Option<Created<BucketOutputs>>, Error> {
        let id = bucket_id(&spec.name, spec.jurisdiction);
        Ok(self.read(ctx, &id, None).await?.map(|mut outputs| {
            outputs.empty_on_delete = spec.empty_on_delete;
            Created { id, outputs }
        }))
    }

    fn diff(&self, desired: &BucketSpec, observed: &BucketOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name, &observed.name);
        d.field_replace("jurisdiction", &desired.jurisdiction, &observed.jurisdiction);
        if desired.storage_class.is_some() {
            d.field("storage_class", &desired.storage_class, &observed.storage_class);
        }
        d.field("empty_on_delete", &desired.empty_on_delete, &observed.empty_on_delete);
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &BucketSpec) -> Result<Created<BucketOutputs>, CreateError> {
        self.validate(spec)?;
        let id = bucket_id(&spec.name, spec.jurisdiction);
        ctx.progress(format!("creating bucket {}", spec.name));
        self.create_bucket(spec).await.map_err(Error::from)?;
        let mut outputs = self
            .read_bucket(&spec.name, spec.jurisdiction)
            .await
            .map_err(|e| CreateError::partial(e.into(), id.clone()))?
            .ok_or_else(|| {
                CreateError::partial(
                    Error::Provider(ApiErrorDetails {
                        message: format!("bucket {} was created but cannot be read back", spec.name),
                        ..Default::default()
                    }),
                    id.clone(),
                )
            })?;
        outputs.empty_on_delete = spec.empty_on_delete;
        Ok(Created { id, outputs })
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        id: &str,
        spec: &BucketSpec,
        observed: &BucketOutputs,
    ) -> Result<BucketOutputs, Error> {
        self.validate(spec)?;
        let (jurisdiction, name) = parse_bucket_id(id)?;
        let mut out = observed.clone();
        if let Some(class) = spec.storage_class.filter(|c| observed.storage_class != Some(*c)) {
            let cf = self.client.cloudflare().ok_or_else(|| {
                Error::invalid("storage_class", "changing the storage class needs the Cloudflare REST API")
            })?;
            cf.set_storage_class(name, jurisdiction, class.as_str()).await?;
            out = self.read_bucket(name, jurisdiction).await?.ok_or_else(|| {
                Error::NotFound(ApiErrorDetails { message: format!("bucket {name}"), ..Default::default() })
            })?;
        }
        out.empty_on_delete = spec.empty_on_delete;
        Ok(out)
    }

    async fn delete(&self, ctx: &Ctx, id: &str, observed: &BucketOutputs) -> Result<(), Error> {
        let (jurisdiction, name) = parse_bucket_id(id)?;
        let empty = match self.is_empty(name, jurisdiction).await {
            Ok(e) => e,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !empty {
            if !observed.empty_on_delete {
                return Err(Error::Conflict(ApiErrorDetails {
                    code: Some("BucketNotEmpty".into()),
                    message: format!(
                        "bucket `{name}` still holds objects; refusing to delete it. Set `empty_on_delete: true` \
                         to delete its objects first"
                    ),
                    ..Default::default()
                }));
            }
            let n = self.empty_bucket(ctx, name, jurisdiction).await?;
            ctx.progress(format!("emptied bucket {name} ({n} objects)"));
        }
        ctx.progress(format!("deleting bucket {name}"));
        if let Some(cf) = self.client.cloudflare() {
            cf.delete_bucket(name, jurisdiction).await?;
            return Ok(());
        }
        match self.client.s3_for(jurisdiction)?.delete_bucket().bucket(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = s3_error("DeleteBucket", e);
                if e.is_not_found() { Ok(()) } else { Err(e.into()) }
            }
        }
    }
}
