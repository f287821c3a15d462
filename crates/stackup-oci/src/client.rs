//! The OCI REST client: per-service endpoints for a region (overridable by builder and
//! environment), request signing on every attempt, retries on 429/5xx honouring `Retry-After`,
//! `opc-retry-token` on creates, pagination through `opc-next-page`, and errors that keep OCI's
//! `code`, `message` and `opc-request-id`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Digest as _;
use stackup_core::http::{
    Authorizer, HttpClient, HttpClientConfig, HttpRequest, HttpResponse, endpoint_from_env, generic_error_parser,
    validate_endpoint,
};
use stackup_core::retry::RetryPolicy;
use stackup_core::{ApiErrorDetails, Error};
use url::Url;

use crate::config::{Credentials, OciConfig};
use crate::signer::{OciAuthorizer, RequestSigner};
use crate::timing::Timing;

/// Overrides the Core Services (iaas) endpoint.
pub const ENV_IAAS_ENDPOINT: &str = "STACKUP_OCI_IAAS_ENDPOINT";
/// Overrides the Identity endpoint.
pub const ENV_IDENTITY_ENDPOINT: &str = "STACKUP_OCI_IDENTITY_ENDPOINT";
/// Overrides the Limits endpoint.
pub const ENV_LIMITS_ENDPOINT: &str = "STACKUP_OCI_LIMITS_ENDPOINT";
/// Region fallback when neither the builder nor the config file names one.
pub const ENV_REGION: &str = "OCI_REGION";

/// Core Services API version prefix.
pub const CORE_API: &str = "/20160918";
/// Identity API version prefix.
pub const IDENTITY_API: &str = "/20160918";
/// Limits API version prefix.
pub const LIMITS_API: &str = "/20190729";

/// Page size for list calls.
const PAGE_LIMIT: &str = "100";

/// An OCI service with its own endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Core Services (networking, compute): `iaas.{region}.oraclecloud.com`.
    Iaas,
    /// Identity (availability domains): `identity.{region}.oci.oraclecloud.com`.
    Identity,
    /// Limits: `limits.{region}.oci.oraclecloud.com`.
    Limits,
}

/// Percent-encodes a query component: everything but unreserved characters (`A-Z a-z 0-9 - . _
/// ~`), spaces as `%20` (never `+`), exactly as OCI signs it.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A retry token for a create: stable for the same resource operation (the engine's idempotency
/// token) *and* the same body, so retransmits of one request share it while a changed request
/// (another availability domain, another attempt) gets a new one. 64 characters at most.
pub fn retry_token(idempotency_token: &str, operation: &str, body: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(idempotency_token.as_bytes());
    h.update([0]);
    h.update(operation.as_bytes());
    h.update([0]);
    h.update(body);
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("stackup-{}", &hex[..48])
}

/// Reads OCI's `{"code","message"}` error body and adds a hint to authentication failures.
fn oci_error_parser(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiErrorDetails {
    let mut d = generic_error_parser(status, headers, body);
    d.request_id = headers.get("opc-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if status == StatusCode::UNAUTHORIZED {
        d.message.push_str(
            " (check that the config's fingerprint belongs to key_file and is uploaded for the user, and that the \
             clock is within 5 minutes)",
        );
    }
    d
}

struct Inner {
    http: HttpClient,
    http_once: HttpClient,
    iaas: Url,
    identity: Url,
    limits: Url,
    tenancy: String,
    region: String,
    timing: Timing,
}

/// A signed client for one tenancy and region. Cheap to clone.
#[derive(Clone)]
pub struct OciClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OciClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciClient")
            .field("region", &self.inner.region)
            .field("iaas", &self.inner.iaas.as_str())
            .finish_non_exhaustive()
    }
}

/// Builds an [`OciClient`].
#[derive(Debug, Default)]
pub struct OciClientBuilder {
    config_file: Option<PathBuf>,
    profile: Option<String>,
    credentials: Option<Credentials>,
    region: Option<String>,
    iaas: Option<String>,
    identity: Option<String>,
    limits: Option<String>,
    retry: Option<RetryPolicy>,
    timing: Option<Timing>,
    timeout: Option<Duration>,
    offline_tenancy: Option<String>,
}

/// An authorizer for clients built without credentials: every call fails with a clear message.
struct NoCredentials;

#[async_trait]
impl Authorizer for NoCredentials {
    async fn authorize(&self, _request: &mut reqwest::Request) -> Result<(), Error> {
        Err(Error::Config(
            "no OCI credentials: this client was built offline (create ~/.oci/config with `oci setup config`, \
             or set OCI_CONFIG_FILE)"
                .into(),
        ))
    }
}

impl OciClientBuilder {
    /// Reads this config file instead of `OCI_CONFIG_FILE` / `~/.oci/config`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Uses this profile instead of `OCI_CLI_PROFILE` / `DEFAULT`.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Uses these credentials instead of reading a config file.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sets the region (default: the profile's `region`, then `OCI_REGION`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Overrides the Core Services endpoint (beats `STACKUP_OCI_IAAS_ENDPOINT`).
    pub fn iaas_endpoint(mut self, url: impl Into<String>) -> Self {
        self.iaas = Some(url.into());
        self
    }

    /// Overrides the Identity endpoint (beats `STACKUP_OCI_IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(mut self, url: impl Into<String>) -> Self {
        self.identity = Some(url.into());
        self
    }

    /// Overrides the Limits endpoint (beats `STACKUP_OCI_LIMITS_ENDPOINT`).
    pub fn limits_endpoint(mut self, url: impl Into<String>) -> Self {
        self.limits = Some(url.into());
        self
    }

    /// Points every service at one base URL (a mock server).
    pub fn all_endpoints(self, url: impl Into<String>) -> Self {
        let u = url.into();
        self.iaas_endpoint(u.clone()).identity_endpoint(u.clone()).limits_endpoint(u)
    }

    /// Sets the transport retry policy (use `RetryPolicy::fast()` in tests).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sets lifecycle poll intervals and timeouts (use `Timing::fast()` in tests).
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = Some(timing);
        self
    }

    /// Per-attempt HTTP timeout (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Builds a client with no credentials for offline planning: any API call fails with a
    /// configuration error. `tenancy` is used as the root compartment.
    pub fn offline(mut self, tenancy: impl Into<String>) -> Self {
        self.offline_tenancy = Some(tenancy.into());
        self
    }

    fn endpoint(given: Option<String>, var: &str, default: String) -> Result<Url, Error> {
        match given {
            Some(u) => validate_endpoint(var, &u),
            None => match endpoint_from_env(var)? {
                Some(u) => Ok(u),
                None => validate_endpoint(var, &default),
            },
        }
    }

    /// Reads credentials (unless given or offline), resolves endpoints and builds the client.
    pub fn build(self) -> Result<OciClient, Error> {
        let (auth, tenancy, config_region): (Arc<dyn Authorizer>, String, Option<String>) =
            match (self.credentials, &self.offline_tenancy) {
                (_, Some(t)) => (Arc::new(NoCredentials), t.clone(), None),
                (Some(c), None) => {
                    // Same check as for a config profile: a keyId fingerprint that is not the
                    // key's own makes OCI answer 401 to every request.
                    if let crate::signer::KeyId::ApiKey { fingerprint, .. } = &c.key_id
                        && fingerprint != c.key.fingerprint()
                    {
                        return Err(crate::error::OciError::FingerprintMismatch {
                            configured: fingerprint.clone(),
                            actual: c.key.fingerprint().to_owned(),
                        }
                        .into());
                    }
                    let region = c.region.clone();
                    (Arc::new(OciAuthorizer::new(RequestSigner::new(c.key), c.key_id)), c.tenancy, region)
                }
                (None, None) => {
                    let c = OciConfig::load(self.config_file.as_deref(), self.profile.as_deref())?.credentials()?;
                    let region = c.region.clone();
                    (Arc::new(OciAuthorizer::new(RequestSigner::new(c.key), c.key_id)), c.tenancy, region)
                }
            };
        let region = self
            .region
            .or(config_region)
            .or_else(|| std::env::var(ENV_REGION).ok().filter(|r| !r.trim().is_empty()))
            .ok_or_else(|| {
                Error::Config("no OCI region: set `region` in the config profile, OCI_REGION, or the builder".into())
            })?;
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(Error::invalid("region", format!("`{region}` is not a region identifier like us-ashburn-1")));
        }
        let iaas = Self::endpoint(self.iaas, ENV_IAAS_ENDPOINT, format!("https://iaas.{region}.oraclecloud.com"))?;
        let identity = Self::endpoint(
            self.identity,
            ENV_IDENTITY_ENDPOINT,
            format!("https://identity.{region}.oci.oraclecloud.com"),
        )?;
        let limits =
            Self::endpoint(self.limits, ENV_LIMITS_ENDPOINT, format!("https://limits.{region}.oci.oraclecloud.com"))?;
        let mut cfg = HttpClientConfig::new("oci");
        cfg.retry = self.retry.unwrap_or_default();
        cfg.request_id_headers = vec!["opc-request-id"];
        cfg.error_parser = Arc::new(oci_error_parser);
        if let Some(t) = self.timeout {
            cfg.timeout = t;
        }
        let http = HttpClient::new(cfg.clone(), auth.clone())?;
        let mut once = cfg;
        once.retry = RetryPolicy::none();
        let http_once = HttpClient::new(once, auth)?;
        Ok(OciClient {
            inner: Arc::new(Inner {
                http,
                http_once,
                iaas,
                identity,
                limits,
                tenancy,
                region,
                timing: self.timing.unwrap_or_default(),
            }),
        })
    }
}

impl OciClient {
    /// A builder.
    pub fn builder() -> OciClientBuilder {
        OciClientBuilder::default()
    }

    /// Reads `~/.oci/config` (honouring `OCI_CONFIG_FILE`, `OCI_CLI_PROFILE`) with defaults.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// The tenancy OCID (the root compartment).
    pub fn tenancy(&self) -> &str {
        &self.inner.tenancy
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Poll intervals and timeouts.
    pub fn timing(&self) -> &Timing {
        &self.inner.timing
    }

    /// The transport retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        self.inner.http.retry_policy()
    }

    /// The base URL of a service.
    pub fn endpoint(&self, service: Service) -> &Url {
        match service {
            Service::Iaas => &self.inner.iaas,
            Service::Identity => &self.inner.identity,
            Service::Limits => &self.inner.limits,
        }
    }

    /// Builds a URL: the service's base, `path` (with its API version prefix), and the query
    /// encoded exactly as it will be signed (`%20` for spaces).
    pub fn url(&self, service: Service, path: &str, query: &[(&str, &str)]) -> Result<Url, Error> {
        let base = self.endpoint(service);
        let mut url = base.clone();
        url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
        if query.is_empty() {
            url.set_query(None);
        } else {
            let q: Vec<String> =
                query.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect();
            url.set_query(Some(&q.join("&")));
        }
        Ok(url)
    }

    /// Sends a request through the retrying client.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.inner.http.send(request).await
    }

    /// Sends a request exactly once (the capacity loop does its own retries).
    pub async fn send_once(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.inner.http_once.send(request).await
    }

    /// GETs and decodes one object.
    pub async fn get<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, Error> {
        self.send(HttpRequest::new(Method::GET, self.url(service, path, query)?)).await?.json()
    }

    /// GETs one object, `None` on 404.
    pub async fn get_opt<T: DeserializeOwned>(&self, service: Service, path: &str) -> Result<Option<T>, Error> {
        match self.get(service, path, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GETs every page of a list (`limit`/`page` query, `opc-next-page` header).
    pub async fn list<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, Error> {
        let mut out = vec![];
        let mut page: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", PAGE_LIMIT));
            if let Some(p) = &page {
                q.push(("page", p));
            }
            let resp = self.send(HttpRequest::new(Method::GET, self.url(service, path, &q)?)).await?;
            let items: Vec<T> = resp.json()?;
            out.extend(items);
            match resp.header("opc-next-page") {
                Some(next) if !next.is_empty() && page.as_deref() != Some(next) => page = Some(next.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// Builds a POST carrying an `opc-retry-token` derived from `idempotency_token`, the
    /// operation and the body; it is safe to retransmit.
    pub fn create_request<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        idempotency_token: &str,
    ) -> Result<HttpRequest, Error> {
        let url = self.url(Service::Iaas, path, &[])?;
        let req = HttpRequest::new(Method::POST, url).json(body)?;
        let token = retry_token(idempotency_token, path, req.body.as_deref().unwrap_or_default());
        Ok(req.header("opc-retry-token", &token)?.idempotent())
    }

    /// POSTs a create with a retry token and decodes the created object.
    pub async fn create<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        idempotency_token: &str,
    ) -> Result<T, Error> {
        self.send(self.create_request(path, body, idempotency_token)?).await?.json()
    }

    /// POSTs a read-only query (capacity reports) and decodes the answer.
    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<T, Error> {
        let req = HttpRequest::new(Method::POST, self.url(Service::Iaas, path, &[])?).json(body)?.idempotent();
        self.send(req).await?.json()
    }

    /// PUTs an update and decodes the object. `409 IncorrectState` (the object or its parent is
    /// busy, e.g. a VCN still UPDATING) is retried until the timing's conflict timeout, as OCI's
    /// SDKs do.
    pub async fn put<T: DeserializeOwned, B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<T, Error> {
        let req = HttpRequest::new(Method::PUT, self.url(Service::Iaas, path, &[])?).json(body)?;
        let timing = self.timing().clone();
        let waiter = stackup_core::wait::Waiter {
            what: format!("PUT {path} to leave IncorrectState"),
            interval: timing.poll_interval,
            max_interval: timing.max_poll_interval,
            timeout: timing.conflict_timeout,
        };
        let resp = waiter
            .wait(|| {
                let req = req.clone();
                async move {
                    match self.send(req).await {
                        Ok(r) => Ok(stackup_core::wait::Poll::Done(r)),
                        Err(e @ Error::Conflict(_)) if e.code() == Some("IncorrectState") => {
                            tracing::debug!(path, error = %e, "update conflicts with the object's state; retrying");
                            Ok(stackup_core::wait::Poll::Pending(None))
                        }
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        resp.json()
    }

    /// DELETEs an object; already gone (404) is success. A `409 Conflict` (a dependent object
    /// still going away) is retried until the timing's conflict timeout.
    pub async fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<(), Error> {
        let url = self.url(Service::Iaas, path, query)?;
        let timing = self.timing().clone();
        let waiter = stackup_core::wait::Waiter {
            what: format!("DELETE {path} to stop conflicting"),
            interval: timing.poll_interval,
            max_interval: timing.max_poll_interval,
            timeout: timing.conflict_timeout,
        };
        waiter
            .wait(|| {
                let req = HttpRequest::new(Method::DELETE, url.clone());
                async move {
                    match self.send(req).await {
                        Ok(_) => Ok(stackup_core::wait::Poll::Done(())),
                        Err(e) if e.is_not_found() => Ok(stackup_core::wait::Poll::Done(())),
                        Err(Error::Conflict(d)) => {
                            tracing::debug!(path, error = %d, "delete conflicts; retrying");
                            Ok(stackup_core::wait::Poll::Pending(None))
                        }
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded_the_way_oci_signs_them() {
        assert_eq!(encode_component("Pjwf: PHX-AD-1"), "Pjwf%3A%20PHX-AD-1");
        assert_eq!(encode_component("Canonical Ubuntu"), "Canonical%20Ubuntu");
        assert_eq!(encode_component("a+b/c~d"), "a%2Bb%2Fc~d");
    }

    #[test]
    fn retry_tokens_follow_the_body() {
        let a = retry_token("tok", "/instances/", b"{\"ad\":1}");
        assert_eq!(a, retry_token("tok", "/instances/", b"{\"ad\":1}"));
        assert_ne!(a, retry_token("tok", "/instances/", b"{\"ad\":2}"));
        assert_ne!(a, retry_token("tok2", "/instances/", b"{\"ad\":1}"));
        assert!(a.len() <= 64);
    }

    #[test]
    fn given_credentials_have_their_fingerprint_checked() {
        use crate::testing::{TEST_KEY_FINGERPRINT, TEST_KEY_PKCS1, TEST_TENANCY, TEST_USER, TEST_VECTOR_FINGERPRINT};
        let creds = |fingerprint: &str| Credentials {
            key: crate::key::ApiKey::from_pem(TEST_KEY_PKCS1, "test key").unwrap(),
            key_id: crate::signer::KeyId::ApiKey {
                tenancy: TEST_TENANCY.into(),
                user: TEST_USER.into(),
                fingerprint: fingerprint.into(),
            },
            tenancy: TEST_TENANCY.into(),
            region: Some("us-phoenix-1".into()),
        };
        let e = OciClient::builder().credentials(creds(TEST_VECTOR_FINGERPRINT)).build().unwrap_err().to_string();
        assert!(e.contains("401") && e.contains(TEST_KEY_FINGERPRINT) && e.contains(TEST_VECTOR_FINGERPRINT), "{e}");
        OciClient::builder().credentials(creds(TEST_KEY_FINGERPRINT)).build().unwrap();
    }

    #[test]
    fn endpoints_default_to_the_region_and_reject_plain_http() {
        let c = OciClient::builder().offline("ocid1.tenancy.oc1..x").region("eu-frankfurt-1").build().unwrap();
        assert_eq!(c.endpoint(Service::Iaas).as_str(), "https://iaas.eu-frankfurt-1.oraclecloud.com/");
        assert_eq!(c.endpoint(Service::Identity).as_str(), "https://identity.eu-frankfurt-1.oci.oraclecloud.com/");
        assert_eq!(c.endpoint(Service::Limits).as_str(), "https://limits.eu-frankfurt-1.oci.oraclecloud.com/");
        let u = c.url(Service::Iaas, "/20160918/images", &[("operatingSystem", "Canonical Ubuntu")]).unwrap();
        assert_eq!(
            u.as_str(),
            "https://iaas.eu-frankfurt-1.oraclecloud.com/20160918/images?operatingSystem=Canonical%20Ubuntu"
        );
        let e = OciClient::builder().offline("t").region("r-1").iaas_endpoint("http://10.1.1.1").build().unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let m =
            OciClient::builder().offline("t").region("r-1").all_endpoints("http://127.0.0.1:9/mock").build().unwrap();
        assert_eq!(
            m.url(Service::Limits, "/20190729/limitValues", &[]).unwrap().as_str(),
            "http://127.0.0.1:9/mock/20190729/limitValues"
        );
        assert!(OciClient::builder().offline("t").region("US East").build().is_err());
    }
}
