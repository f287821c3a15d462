//! Where R2 is and how to sign in: account, static S3 credentials, endpoint override, region,
//! jurisdiction endpoints, and the optional Cloudflare v4 REST API token.
//!
//! Environment variables (read by [`R2Config::from_env`]):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `R2_ACCOUNT_ID` | Cloudflare account id (32 hex characters); builds the S3 endpoint | required unless `R2_ENDPOINT` is set |
//! | `R2_ACCESS_KEY_ID` | S3 access key id of an R2 API token | required |
//! | `R2_SECRET_ACCESS_KEY` | S3 secret access key | required |
//! | `R2_ENDPOINT` | S3 endpoint override (local S3 servers: `http://127.0.0.1:5055`) | `https://<account>.r2.cloudflarestorage.com` |
//! | `R2_REGION` | SigV4 region | `auto` |
//! | `CLOUDFLARE_API_TOKEN` | Cloudflare API token ("Workers R2 Storage Write") for bucket settings | unset: S3 API only |
//! | `CLOUDFLARE_ACCOUNT_ID` | account for the REST API | `R2_ACCOUNT_ID` |
//! | `STACKUP_CLOUDFLARE_API_URL` | REST base URL override | `https://api.cloudflare.com/client/v4` |

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stackup_core::Secret;
use stackup_core::http::{endpoint_from_env, validate_endpoint};
use stackup_core::retry::RetryPolicy;
use url::Url;

use crate::error::R2Error;

/// The default Cloudflare v4 REST base URL.
pub const CLOUDFLARE_API_URL: &str = "https://api.cloudflare.com/client/v4";

/// The data-residency jurisdiction of a bucket. Jurisdiction buckets live behind their own S3
/// endpoint and need the `cf-r2-jurisdiction` header on REST calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jurisdiction {
    /// No jurisdiction restriction.
    #[default]
    Default,
    /// European Union.
    Eu,
    /// FedRAMP.
    Fedramp,
}

impl Jurisdiction {
    /// The wire value (`default`, `eu`, `fedramp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Jurisdiction::Default => "default",
            Jurisdiction::Eu => "eu",
            Jurisdiction::Fedramp => "fedramp",
        }
    }

    /// The S3 endpoint for `account_id` in this jurisdiction.
    pub fn s3_endpoint(self, account_id: &str) -> String {
        match self {
            Jurisdiction::Default => format!("https://{account_id}.r2.cloudflarestorage.com"),
            Jurisdiction::Eu => format!("https://{account_id}.eu.r2.cloudflarestorage.com"),
            Jurisdiction::Fedramp => format!("https://{account_id}.fedramp.r2.cloudflarestorage.com"),
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of the Cloudflare v4 REST API, used for bucket settings S3 cannot express
/// (location hint, storage class, jurisdiction on create).
#[derive(Clone)]
pub struct CloudflareApiConfig {
    /// The API token (sent as `Authorization: Bearer`).
    pub api_token: Secret,
    /// The account id in REST paths.
    pub account_id: String,
    /// Base URL (`https://api.cloudflare.com/client/v4`).
    pub base_url: Url,
}

impl fmt::Debug for CloudflareApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareApiConfig")
            .field("api_token", &self.api_token)
            .field("account_id", &self.account_id)
            .field("base_url", &self.base_url.as_str())
            .finish()
    }
}

/// Everything needed to reach R2 (or a local S3 server).
#[derive(Clone)]
pub struct R2Config {
    pub(crate) account_id: Option<String>,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: Secret,
    pub(crate) session_token: Option<Secret>,
    pub(crate) endpoint: Option<Url>,
    pub(crate) region: String,
    pub(crate) cloudflare: Option<CloudflareApiConfig>,
    pub(crate) rest_retry: RetryPolicy,
    pub(crate) s3_max_attempts: u32,
    pub(crate) s3_initial_backoff: Duration,
}

impl fmt::Debug for R2Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("R2Config")
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("region", &self.region)
            .field("cloudflare", &self.cloudflare)
            .finish_non_exhaustive()
    }
}

/// True for a Cloudflare account id: 32 lowercase hexadecimal characters.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_account_id(field: &str, id: &str) -> Result<(), R2Error> {
    if is_account_id(id) {
        Ok(())
    } else {
        Err(R2Error::invalid(field, "a Cloudflare account id is 32 lowercase hexadecimal characters"))
    }
}

impl R2Config {
    /// R2 in `account_id` with an R2 API token's S3 credentials. Region `auto`.
    pub fn new(
        account_id: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
    ) -> Result<Self, R2Error> {
        let account_id = account_id.into();
        check_account_id("account_id", &account_id)?;
        Self::base(Some(account_id), access_key_id.into(), secret_access_key.into())
    }

    /// Any S3-compatible endpoint (a local server, a test double): no account id, region
    /// `us-east-1` (set another with [`R2Config::with_region`]). `http://` only to loopback.
    pub fn for_endpoint(
        endpoint: &str,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
    ) -> Result<Self, R2Error> {
        let mut c = Self::base(None, access_key_id.into(), secret_access_key.into())?;
        c.endpoint = Some(validate_endpoint("endpoint", endpoint)?);
        c.region = "us-east-1".to_owned();
        Ok(c)
    }

    fn base(account_id: Option<String>, access_key_id: String, secret: Secret) -> Result<Self, R2Error> {
        if access_key_id.trim().is_empty() {
            return Err(R2Error::invalid("access_key_id", "must not be empty"));
        }
        if secret.is_empty() {
            return Err(R2Error::invalid("secret_access_key", "must not be empty"));
        }
        Ok(R2Config {
            account_id,
            access_key_id,
            secret_access_key: secret,
            session_token: None,
            endpoint: None,
            region: "auto".to_owned(),
            cloudflare: None,
            rest_retry: RetryPolicy::default(),
            s3_max_attempts: 4,
            s3_initial_backoff: Duration::from_millis(200),
        })
    }

    /// Reads the configuration from the environment (see the [module docs](self)).
    pub fn from_env() -> Result<Self, R2Error> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let access_key_id =
            var("R2_ACCESS_KEY_ID").ok_or_else(|| R2Error::Config("R2_ACCESS_KEY_ID is not set".into()))?;
        let secret = var("R2_SECRET_ACCESS_KEY")
            .map(Secret::new)
            .ok_or_else(|| R2Error::Config("R2_SECRET_ACCESS_KEY is not set".into()))?;
        let account_id = var("R2_ACCOUNT_ID");
        if let Some(a) = &account_id {
            check_account_id("R2_ACCOUNT_ID", a)?;
        }
        let endpoint = endpoint_from_env("R2_ENDPOINT")?;
        if account_id.is_none() && endpoint.is_none() {
            return Err(R2Error::Config("set R2_ACCOUNT_ID (R2) or R2_ENDPOINT (another S3-compatible server)".into()));
        }
        let mut c = Self::base(account_id.clone(), access_key_id, secret)?;
        c.endpoint = endpoint;
        if let Some(region) = var("R2_REGION") {
            c.region = region;
        }
        if let Some(token) = var("CLOUDFLARE_API_TOKEN") {
            let cf_account = var("CLOUDFLARE_ACCOUNT_ID").or(account_id).ok_or_else(|| {
                R2Error::Config(
                    "CLOUDFLARE_API_TOKEN is set but CLOUDFLARE_ACCOUNT_ID (or R2_ACCOUNT_ID) is not".into(),
                )
            })?;
            check_account_id("CLOUDFLARE_ACCOUNT_ID", &cf_account)?;
            let base_url = endpoint_from_env("STACKUP_CLOUDFLARE_API_URL")?
                .map(Ok)
                .unwrap_or_else(|| Url::parse(CLOUDFLARE_API_URL))
                .map_err(|e| R2Error::Config(e.to_string()))?;
            c.cloudflare =
                Some(CloudflareApiConfig { api_token: Secret::new(token), account_id: cf_account, base_url });
        }
        Ok(c)
    }

    /// Overrides the S3 endpoint (`https://`, or `http://` to loopback).
    pub fn with_endpoint(mut self, endpoint: &str) -> Result<Self, R2Error> {
        self.endpoint = Some(validate_endpoint("endpoint", endpoint)?);
        Ok(self)
    }

    /// Sets the SigV4 region (`auto` on R2; `us-east-1` for moto).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Adds a session token (R2 temporary credentials).
    pub fn with_session_token(mut self, token: impl Into<Secret>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Enables the Cloudflare v4 REST API for bucket settings.
    pub fn with_cloudflare_api(mut self, api_token: impl Into<Secret>, account_id: &str) -> Result<Self, R2Error> {
        check_account_id("cloudflare.account_id", account_id)?;
        self.cloudflare = Some(CloudflareApiConfig {
            api_token: api_token.into(),
            account_id: account_id.to_owned(),
            base_url: Url::parse(CLOUDFLARE_API_URL).map_err(|e| R2Error::Config(e.to_string()))?,
        });
        Ok(self)
    }

    /// Overrides the REST base URL (tests, proxies). Needs [`R2Config::with_cloudflare_api`] first.
    pub fn with_cloudflare_base_url(mut self, base_url: &str) -> Result<Self, R2Error> {
        let url = validate_endpoint("cloudflare.base_url", base_url)?;
        match &mut self.cloudflare {
            Some(cf) => cf.base_url = url,
            None => return Err(R2Error::Config("call with_cloudflare_api before with_cloudflare_base_url".into())),
        }
        Ok(self)
    }

    /// The retry policy of REST calls (use `RetryPolicy::fast()` in tests).
    pub fn with_rest_retry(mut self, policy: RetryPolicy) -> Self {
        self.rest_retry = policy;
        self
    }

    /// Attempts and first backoff of the SDK's standard retry for S3 calls (default 4, 200 ms).
    pub fn with_s3_retry(mut self, max_attempts: u32, initial_backoff: Duration) -> Self {
        self.s3_max_attempts = max_attempts.max(1);
        self.s3_initial_backoff = initial_backoff;
        self
    }

    /// The account id, if configured.
    pub fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    /// The access key id (not secret; shown in rclone config and logs).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// True when bucket settings go through the Cloudflare REST API.
    pub fn has_cloudflare_api(&self) -> bool {
        self.cloudflare.is_some()
    }

    /// The S3 endpoint for a jurisdiction: the override if set, else the account's R2 endpoint.
    pub fn s3_endpoint(&self, jurisdiction: Jurisdiction) -> Result<String, R2Error> {
        match (&self.endpoint, &self.account_id) {
            (Some(e), _) => Ok(e.as_str().trim_end_matches('/').to_owned()),
            (None, Some(a)) => Ok(jurisdiction.s3_endpoint(a)),
            (None, None) => Err(R2Error::Config("no account id and no endpoint".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCT: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn jurisdiction_endpoints() {
        let c = R2Config::new(ACCT, "AK", "SK").unwrap();
        assert_eq!(c.s3_endpoint(Jurisdiction::Default).unwrap(), format!("https://{ACCT}.r2.cloudflarestorage.com"));
        assert_eq!(c.s3_endpoint(Jurisdiction::Eu).unwrap(), format!("https://{ACCT}.eu.r2.cloudflarestorage.com"));
        assert_eq!(
            c.s3_endpoint(Jurisdiction::Fedramp).unwrap(),
            format!("https://{ACCT}.fedramp.r2.cloudflarestorage.com")
        );
        assert_eq!(c.region(), "auto");
        let local = c.with_endpoint("http://127.0.0.1:5055/").unwrap();
        assert_eq!(local.s3_endpoint(Jurisdiction::Eu).unwrap(), "http://127.0.0.1:5055");
    }

    #[test]
    fn bad_config_is_rejected_before_any_call() {
        let e = R2Config::new("not-an-account", "AK", "SK").unwrap_err();
        assert!(matches!(e, R2Error::InvalidInput { ref field, .. } if field == "account_id"), "{e}");
        assert!(R2Config::new(ACCT, "", "SK").is_err());
        assert!(R2Config::new(ACCT, "AK", "").is_err());
        let e = R2Config::for_endpoint("http://10.1.2.3:9000", "AK", "SK").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = R2Config::new(ACCT, "AKID", "super-secret-value")
            .unwrap()
            .with_cloudflare_api("cf-token-value", ACCT)
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("super-secret-value") && !dbg.contains("cf-token-value"), "{dbg}");
        assert!(dbg.contains("AKID"));
    }
}
