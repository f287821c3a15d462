//! [`BucketCors`]: a bucket's CORS policy, as one resource owning every rule.
//!
//! Through the Cloudflare REST API (`PUT /accounts/{id}/r2/buckets/{name}/cors`) when it is
//! configured, otherwise through S3 `PutBucketCors`. Removing it deletes the policy.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use crate::client::R2Client;
use crate::config::Jurisdiction;
use crate::error::{R2Error, s3_error};
use crate::names::validate_bucket_name;
use crate::resources::bucket::{bucket_id, parse_bucket_id};

/// The methods R2 accepts in CORS rules.
pub const CORS_METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// One CORS rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// Optional rule id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Allowed origins (`https://app.example.com`, or `*`).
    pub allowed_origins: Vec<String>,
    /// Allowed methods, from `GET PUT POST DELETE HEAD`.
    pub allowed_methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers exposed to scripts.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long browsers may cache the preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

/// The CORS policy of a bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorsSpec {
    /// The bucket.
    pub bucket: Input<String>,
    /// The bucket's jurisdiction.
    #[serde(default)]
    pub jurisdiction: Jurisdiction,
    /// The rules, in order (the first match wins).
    pub rules: Vec<CorsRule>,
}

/// The CORS policy as observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorsOutputs {
    /// Bucket name.
    pub bucket: String,
    /// Jurisdiction.
    pub jurisdiction: Jurisdiction,
    /// The rules.
    pub rules: Vec<CorsRule>,
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct RestCors {
    #[serde(default)]
    rules: Vec<RestCorsRule>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestCorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    allowed: RestAllowed,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age_seconds: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RestAllowed {
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<String>,
}

fn to_rest(rules: &[CorsRule]) -> RestCors {
    RestCors {
        rules: rules
            .iter()
            .map(|r| RestCorsRule {
                id: r.id.clone(),
                allowed: RestAllowed {
                    methods: r.allowed_methods.clone(),
                    origins: r.allowed_origins.clone(),
                    headers: r.allowed_headers.clone(),
                },
                expose_headers: r.expose_headers.clone(),
                max_age_seconds: r.max_age_seconds,
            })
            .collect(),
    }
}

fn from_rest(rest: RestCors) -> Vec<CorsRule> {
    rest.rules
        .into_iter()
        .map(|r| CorsRule {
            id: r.id,
            allowed_origins: r.allowed.origins,
            allowed_methods: r.allowed.methods,
            allowed_headers: r.allowed.headers,
            expose_headers: r.expose_headers,
            max_age_seconds: r.max_age_seconds,
        })
        .collect()
}

fn to_s3(rules: &[CorsRule]) -> Result<aws_sdk_s3::types::CorsConfiguration, R2Error> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let rule = aws_sdk_s3::types::CorsRule::builder()
            .set_id(r.id.clone())
            .set_allowed_origins(Some(r.allowed_origins.clone()))
            .set_allowed_methods(Some(r.allowed_methods.clone()))
            .set_allowed_headers((!r.allowed_headers.is_empty()).then(|| r.allowed_headers.clone()))
            .set_expose_headers((!r.expose_headers.is_empty()).then(|| r.expose_headers.clone()))
            .set_max_age_seconds(r.max_age_seconds.map(|s| s as i32))
            .build()
            .map_err(|e| R2Error::invalid("rules", e.to_string()))?;
        out.push(rule);
    }
    aws_sdk_s3::types::CorsConfiguration::builder()
        .set_cors_rules(Some(out))
        .build()
        .map_err(|e| R2Error::invalid("rules", e.to_string()))
}

fn from_s3(rules: &[aws_sdk_s3::types::CorsRule]) -> Vec<CorsRule> {
    rules
        .iter()
        .map(|r| CorsRule {
            id: r.id().map(str::to_owned),
            allowed_origins: r.allowed_origins().to_vec(),
            allowed_methods: r.allowed_methods().to_vec(),
            allowed_headers: r.allowed_headers().to_vec(),
            expose_headers: r.expose_headers().to_vec(),
            max_age_seconds: r.max_age_seconds().and_then(|s| u32::try_from(s).ok()),
        })
        .collect()
}

/// The CORS provisioner.
#[derive(Debug, Clone)]
pub struct BucketCors {
    client: R2Client,
}

impl BucketCors {
    /// A provisioner using `client`.
    pub fn new(client: R2Client) -> Self {
        BucketCors { client }
    }

    async fn get(&self, bucket: &str, j: Jurisdiction) -> Result<Option<Vec<CorsRule>>, R2Error> {
        if let Some(cf) = self.client.cloudflare() {
            return match cf.get_setting::<RestCors>(bucket, "cors", j).await {
                Ok(r) => Ok(Some(from_rest(r.unwrap_or_default()))),
                Err(e) if e.code() == Some("10059") => Ok(Some(Vec::new())),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            };
        }
        match self.client.s3_for(j)?.get_bucket_cors().bucket(bucket).send().await {
            Ok(out) => Ok(Some(from_s3(out.cors_rules()))),
            Err(e) => {
                let e = s3_error("GetBucketCors", e);
                match e.code() {
                    Some("NoSuchCORSConfiguration") => Ok(Some(Vec::new())),
                    _ if e.is_not_found() => Ok(None),
                    _ => Err(e),
                }
            }
        }
    }

    async fn put(&self, bucket: &str, j: Jurisdiction, rules: &[CorsRule]) -> Result<(), R2Error> {
        if let Some(cf) = self.client.cloudflare() {
            if rules.is_empty() {
                return cf.delete_setting(bucket, "cors", j).await;
            }
            return cf.put_setting(bucket, "cors", j, &to_rest(rules)).await;
        }
        let s3 = self.client.s3_for(j)?;
        if rules.is_empty() {
            return s3
                .delete_bucket_cors()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| s3_error("DeleteBucketCors", e));
        }
        s3.put_bucket_cors()
            .bucket(bucket)
            .cors_configuration(to_s3(rules)?)
            .send()
            .await
            .map_err(|e| s3_error("PutBucketCors", e))?;
        Ok(())
    }

    async fn apply(&self, spec: &CorsSpec) -> Result<(String, CorsOutputs), Error> {
        self.validate(spec)?;
        let bucket = spec.bucket.get("bucket")?;
        self.put(bucket, spec.jurisdiction, &spec.rules).await?;
        let rules = self.get(bucket, spec.jurisdiction).await?.unwrap_or_default();
        Ok((
            bucket_id(bucket, spec.jurisdiction),
            CorsOutputs { bucket: bucket.clone(), jurisdiction: spec.jurisdiction, rules },
        ))
    }
}

#[async_trait]
impl Provisioner for BucketCors {
    type Spec = CorsSpec;
    type Outputs = CorsOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("r2", "bucket_cors")
    }

    fn validate(&self, spec: &CorsSpec) -> Result<(), Error> {
        if let Some(b) = spec.bucket.known() {
            validate_bucket_name("bucket", b)?;
        }
        if spec.rules.len() > 100 {
            return Err(Error::invalid("rules", "at most 100 CORS rules"));
        }
        for (i, r) in spec.rules.iter().enumerate() {
            let f = |name: &str| format!("rules[{i}].{name}");
            if r.allowed_origins.is_empty() {
                return Err(Error::invalid(f("allowed_origins"), "needs at least one origin (or `*`)"));
            }
            if let Some(o) = r.allowed_origins.iter().find(|o| {
                o.as_str() != "*" && !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/')
            }) {
                return Err(Error::invalid(
                    f("allowed_origins"),
                    format!("`{o}` is not an origin: use `*` or scheme://host[:port] without a trailing slash"),
                ));
            }
            if r.allowed_methods.is_empty() {
                return Err(Error::invalid(f("allowed_methods"), "needs at least one method"));
            }
            if let Some(m) = r.allowed_methods.iter().find(|m| !CORS_METHODS.contains(&m.as_str())) {
                return Err(Error::invalid(
                    f("allowed_methods"),
                    format!("`{m}` is not one of GET, PUT, POST, DELETE, HEAD (uppercase)"),
                ));
            }
            if r.max_age_seconds.is_some_and(|s| s > 86_400) {
                return Err(Error::invalid(f("max_age_seconds"), "must be at most 86400"));
            }
        }
        Ok(())
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&CorsOutputs>) -> Result<Option<CorsOutputs>, Error> {
        let (jurisdiction, bucket) = parse_bucket_id(id)?;
        Ok(self.get(bucket, jurisdiction).await?.map(|rules| CorsOutputs {
            bucket: bucket.to_owned(),
            jurisdiction,
            rules,
        }))
    }

    fn diff(&self, desired: &CorsSpec, observed: &CorsOutputs) -> Diff {
        let mut d = Diff::new();
        d.input_replace("bucket", &desired.bucket, &observed.bucket);
        d.field_replace("jurisdiction", &desired.jurisdiction, &observed.jurisdiction);
        d.field("rules", &desired.rules, &observed.rules);
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &CorsSpec) -> Result<Created<CorsOutputs>, CreateError> {
        ctx.progress(format!("setting {} CORS rule(s)", spec.rules.len()));
        let (id, outputs) = self.apply(spec).await?;
        Ok(Created { id, outputs })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _id: &str,
        spec: &CorsSpec,
        _observed: &CorsOutputs,
    ) -> Result<CorsOutputs, Error> {
        ctx.progress(format!("replacing CORS rules ({} rule(s))", spec.rules.len()));
        Ok(self.apply(spec).await?.1)
    }

    async fn delete(&self, _ctx: &Ctx, id: &str, _observed: &CorsOutputs) -> Result<(), Error> {
        let (jurisdiction, bucket) = parse_bucket_id(id)?;
        match self.put(bucket, jurisdiction, &[]).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
