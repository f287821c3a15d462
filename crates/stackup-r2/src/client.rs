//! [`R2Client`]: the configured `aws-sdk-s3` clients (one per jurisdiction endpoint, built on
//! first use) and the optional Cloudflare REST client.
//!
//! The S3 client is built from `aws_sdk_s3::Config` directly (no `aws-config`, so no
//! `~/.aws` files or `AWS_*` variables are read): static credentials, path-style addressing,
//! and checksum calculation and validation `WhenRequired`, so PutObject and UploadPart carry no
//! `x-amz-checksum-*` headers (R2 rejects some combinations; see the notes in the docs). We
//! never set `Content-MD5` or ACL headers.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};

use crate::cloudflare::CloudflareApi;
use crate::config::{Jurisdiction, R2Config};
use crate::error::R2Error;

/// A cheap-to-clone handle on R2: S3 data plane plus optional Cloudflare REST.
#[derive(Clone)]
pub struct R2Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: R2Config,
    s3: [OnceLock<aws_sdk_s3::Client>; 3],
    cloudflare: Option<CloudflareApi>,
}

impl fmt::Debug for R2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("R2Client").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl R2Client {
    /// A client for `config`. Validates the endpoints now; no network call.
    pub fn new(config: R2Config) -> Result<Self, R2Error> {
        config.s3_endpoint(Jurisdiction::Default)?;
        let cloudflare = match &config.cloudflare {
            Some(cf) => Some(CloudflareApi::new(cf, config.rest_retry.clone())?),
            None => None,
        };
        Ok(R2Client { inner: Arc::new(Inner { config, s3: Default::default(), cloudflare }) })
    }

    /// A client configured from the environment ([`R2Config::from_env`]).
    pub fn from_env() -> Result<Self, R2Error> {
        Self::new(R2Config::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &R2Config {
        &self.inner.config
    }

    /// The Cloudflare REST client, when configured.
    pub fn cloudflare(&self) -> Option<&CloudflareApi> {
        self.inner.cloudflare.as_ref()
    }

    /// The S3 client of the default jurisdiction.
    pub fn s3(&self) -> Result<&aws_sdk_s3::Client, R2Error> {
        self.s3_for(Jurisdiction::Default)
    }

    /// The S3 client for a jurisdiction's endpoint.
    pub fn s3_for(&self, jurisdiction: Jurisdiction) -> Result<&aws_sdk_s3::Client, R2Error> {
        let slot = &self.inner.s3[jurisdiction.index()];
        if let Some(c) = slot.get() {
            return Ok(c);
        }
        let client = build_s3(&self.inner.config, jurisdiction)?;
        Ok(slot.get_or_init(|| client))
    }
}

/// Builds the `aws_sdk_s3::Config` described in the module docs.
pub fn s3_config(config: &R2Config, jurisdiction: Jurisdiction) -> Result<aws_sdk_s3::Config, R2Error> {
    let credentials = Credentials::new(
        config.access_key_id.clone(),
        config.secret_access_key.expose().to_owned(),
        config.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "stackup-r2",
    );
    let retry = RetryConfig::standard()
        .with_max_attempts(config.s3_max_attempts)
        .with_initial_backoff(config.s3_initial_backoff)
        .with_max_backoff(Duration::from_secs(20).max(config.s3_initial_backoff));
    Ok(aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .credentials_provider(credentials)
        .region(Region::new(config.region.clone()))
        .endpoint_url(config.s3_endpoint(jurisdiction)?)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(retry)
        .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).build())
        .build())
}

fn build_s3(config: &R2Config, jurisdiction: Jurisdiction) -> Result<aws_sdk_s3::Client, R2Error> {
    Ok(aws_sdk_s3::Client::from_conf(s3_config(config, jurisdiction)?))
}
