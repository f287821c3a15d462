//! The shared REST layer for hand-written provider clients (OCI, Tailscale, Cloudflare).
//!
//! One [`HttpClient`] wraps one `reqwest::Client` and adds what every cloud API needs:
//! endpoint validation (`https://`, or `http://` only to loopback), per-attempt authorization
//! (a signer sees the exact bytes sent, and signs again on every retry), retries through
//! [`crate::retry`], and a single mapping from HTTP status to the semantic [`Error`], with the
//! provider's error code, message and request id kept.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{ApiErrorDetails, Error};
use crate::retry::{Idempotency, RetryPolicy, parse_retry_after, retry};

/// Checks that an endpoint is `https://`, or `http://` to a loopback address (tests, emulators).
/// Credentials are never sent in clear text to anything else.
pub fn validate_endpoint(name: &str, raw: &str) -> Result<Url, Error> {
    let url = Url::parse(raw).map_err(|e| Error::invalid(name, format!("`{raw}` is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Error::invalid(
            name,
            format!("plain http:// is allowed only to loopback addresses (127.0.0.0/8, ::1, localhost), not `{raw}`"),
        )),
        other => Err(Error::invalid(name, format!("scheme `{other}` is not supported; use https://"))),
    }
}

/// True when the URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Reads an endpoint override from the environment variable `var`, validated; `None` when unset.
pub fn endpoint_from_env(var: &str) -> Result<Option<Url>, Error> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => validate_endpoint(var, v.trim()).map(Some),
        _ => Ok(None),
    }
}

/// Adds credentials to a request just before it is sent. Called once per attempt, so a
/// signature always covers the date and bytes of the attempt that carries it.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Adds headers (`Authorization`, date, digests) to `request`.
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), Error>;
}

/// An authorizer that adds nothing (public endpoints, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuth;

#[async_trait]
impl Authorizer for NoAuth {
    async fn authorize(&self, _request: &mut reqwest::Request) -> Result<(), Error> {
        Ok(())
    }
}

/// Extracts the provider's error code and message from an error response body.
pub type ErrorParser = Arc<dyn Fn(StatusCode, &HeaderMap, &[u8]) -> ApiErrorDetails + Send + Sync>;

/// A request, kept as data so it can be rebuilt and re-signed on each attempt.
#[derive(Clone)]
pub struct HttpRequest {
    /// HTTP method.
    pub method: Method,
    /// Full URL.
    pub url: Url,
    /// Headers to send (besides what the authorizer adds).
    pub headers: HeaderMap,
    /// Body bytes, if any.
    pub body: Option<Bytes>,
    /// Whether the request may be repeated after an unknown outcome.
    pub idempotency: Idempotency,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers and body may hold secrets: show only the method and path.
        write!(f, "{} {}", self.method, self.url.path())
    }
}

impl HttpRequest {
    /// A request with no body. GET, HEAD, PUT and DELETE are idempotent by default; POST and
    /// PATCH are not (mark them with [`HttpRequest::idempotent`] when they carry a retry token).
    pub fn new(method: Method, url: Url) -> Self {
        let idempotency = match method {
            Method::POST | Method::PATCH => Idempotency::NotIdempotent,
            _ => Idempotency::Idempotent,
        };
        HttpRequest { method, url, headers: HeaderMap::new(), body: None, idempotency }
    }

    /// Sets a JSON body (and `Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::other("encoding request body", e))?;
        self.body = Some(Bytes::from(bytes));
        self.headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(self)
    }

    /// Sets a raw body with its content type.
    pub fn body(mut self, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self.headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    /// Adds a header. Invalid header values are rejected as invalid input.
    pub fn header(mut self, name: &'static str, value: &str) -> Result<Self, Error> {
        let v = HeaderValue::from_str(value).map_err(|_| Error::invalid(name, "not a valid header value"))?;
        self.headers.insert(HeaderName::from_static(name), v);
        Ok(self)
    }

    /// Marks the request safe to repeat (it carries an idempotency or retry token).
    pub fn idempotent(mut self) -> Self {
        self.idempotency = Idempotency::Idempotent;
        self
    }
}

/// A response with its body read. `Debug` shows the status and body size only: bodies can
/// carry secrets (created keys, tokens).
#[derive(Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl HttpResponse {
    /// Decodes the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::other(format!("decoding {} response body", self.status), e))
    }

    /// A header as a string, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Configuration for an [`HttpClient`].
#[derive(Clone)]
pub struct HttpClientConfig {
    /// The provider's name, used in logs.
    pub provider: &'static str,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Headers that carry the provider's request id, first match wins.
    pub request_id_headers: Vec<&'static str>,
    /// How to read the provider's error body.
    pub error_parser: ErrorParser,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// User agent.
    pub user_agent: String,
}

impl HttpClientConfig {
    /// Defaults for `provider`: standard retry policy, a generic JSON error parser, 60 s timeout.
    pub fn new(provider: &'static str) -> Self {
        HttpClientConfig {
            provider,
            retry: RetryPolicy::default(),
            request_id_headers: vec!["x-request-id"],
            error_parser: Arc::new(generic_error_parser),
            timeout: Duration::from_secs(60),
            user_agent: format!("stackup/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Reads `{"code": …, "message": …}` (or `error`/`errors[0]`) from a JSON error body, falling
/// back to the body text.
pub fn generic_error_parser(status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> ApiErrorDetails {
    let mut d = ApiErrorDetails { status: Some(status.as_u16()), ..Default::default() };
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let obj = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
        let obj = obj.get("errors").and_then(|e| e.get(0)).unwrap_or(obj);
        d.code = obj.get("code").map(|c| c.as_str().map(str::to_owned).unwrap_or_else(|| c.to_string()));
        d.message = obj.get("message").and_then(|m| m.as_str()).map(str::to_owned).unwrap_or_default();
    }
    if d.message.is_empty() {
        d.message = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_owned();
    }
    if d.message.is_empty() {
        d.message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    d
}

/// A REST client with retries, authorization and semantic errors.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    config: Arc<HttpClientConfig>,
    auth: Arc<dyn Authorizer>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").field("provider", &self.config.provider).finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds a client with its own connection pool.
    pub fn new(config: HttpClientConfig, auth: Arc<dyn Authorizer>) -> Result<Self, Error> {
        let inner = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Error::other("building HTTP client", e))?;
        Ok(HttpClient { inner, config: Arc::new(config), auth })
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.config.retry
    }

    /// Sends a request with retries, returning the response on 2xx/3xx and the semantic error
    /// otherwise.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let policy = self.config.retry.clone();
        let provider = self.config.provider;
        retry(
            &policy,
            request.idempotency,
            |attempt| self.attempt(&request, attempt),
            |attempt, delay, err| {
                tracing::info!(provider, method = %request.method, path = request.url.path(), attempt, ?delay, error = %err, "retrying request");
            },
        )
        .await
    }

    /// Sends and decodes a JSON response.
    pub async fn send_json<T: DeserializeOwned>(&self, request: HttpRequest) -> Result<T, Error> {
        self.send(request).await?.json()
    }

    async fn attempt(&self, request: &HttpRequest, attempt: u32) -> Result<HttpResponse, Error> {
        let mut req = reqwest::Request::new(request.method.clone(), request.url.clone());
        *req.headers_mut() = request.headers.clone();
        if let Some(body) = &request.body {
            *req.body_mut() = Some(reqwest::Body::from(body.clone()));
        }
        self.auth.authorize(&mut req).await?;
        tracing::debug!(provider = self.config.provider, method = %request.method, path = request.url.path(), attempt, "request");
        let resp = self.inner.execute(req).await.map_err(classify_transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| Error::MaybeSent(format!("reading response body: {e}")))?;
        if status.is_success() || status.is_redirection() {
            return Ok(HttpResponse { status, headers, body });
        }
        let mut details = (self.config.error_parser)(status, &headers, &body);
        if details.request_id.is_none() {
            details.request_id = self
                .config
                .request_id_headers
                .iter()
                .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned));
        }
        let retry_after =
            headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        Err(Error::from_status(status.as_u16(), details, retry_after))
    }
}

/// Maps a reqwest transport error: a failure to connect never reached the server and is safe to
/// retry; anything later may have been processed and is [`Error::MaybeSent`].
pub fn classify_transport(e: reqwest::Error) -> Error {
    // Never include the URL: query strings can carry credentials (SAS tokens).
    let e = e.without_url();
    if e.is_connect() { Error::Transport(e.to_string()) } else { Error::MaybeSent(e.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn endpoints_must_be_https_or_loopback() {
        assert!(validate_endpoint("e", "https://management.azure.com").is_ok());
        assert!(validate_endpoint("e", "http://127.0.0.1:8080").is_ok());
        assert!(validate_endpoint("e", "http://127.9.9.9").is_ok());
        assert!(validate_endpoint("e", "http://[::1]:9").is_ok());
        assert!(validate_endpoint("e", "http://localhost:9").is_ok());
        let err = validate_endpoint("STACKUP_X", "http://10.0.0.1").unwrap_err();
        assert!(err.to_string().contains("STACKUP_X") && err.to_string().contains("loopback"));
        assert!(validate_endpoint("e", "http://example.com").is_err());
        assert!(validate_endpoint("e", "ftp://example.com").is_err());
        assert!(validate_endpoint("e", "not a url").is_err());
    }

    fn client() -> HttpClient {
        let mut cfg = HttpClientConfig::new("test");
        cfg.retry = RetryPolicy::fast();
        cfg.request_id_headers = vec!["x-req"];
        HttpClient::new(cfg, Arc::new(NoAuth)).unwrap()
    }

    #[test]
    fn response_debug_hides_the_body() {
        let r = HttpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{\"key\":\"tskey-auth-SECRET\"}"),
        };
        let d = format!("{r:?}");
        assert!(!d.contains("SECRET") && d.contains("200"), "{d}");
    }

    #[tokio::test]
    async fn retries_429_with_retry_after_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/x"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/x"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
            .mount(&server)
            .await;
        let url = Url::parse(&format!("{}/x", server.uri())).unwrap();
        let v: serde_json::Value = client().send_json(HttpRequest::new(Method::GET, url)).await.unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn errors_carry_code_message_and_request_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(409)
                    .insert_header("x-req", "rid-1")
                    .set_body_json(serde_json::json!({"error": {"code": "Exists", "message": "already there"}})),
            )
            .mount(&server)
            .await;
        let url = Url::parse(&server.uri()).unwrap();
        let err = client().send(HttpRequest::new(Method::POST, url)).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)));
        assert_eq!(err.code(), Some("Exists"));
        assert_eq!(err.request_id(), Some("rid-1"));
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn server_errors_are_retried_up_to_the_attempt_limit() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(503)).mount(&server).await;
        let url = Url::parse(&server.uri()).unwrap();
        // A 503 without Retry-After is a server error: transient, retried for any method since the
        // server answered (it did not process the request).
        let err = client().send(HttpRequest::new(Method::GET, url)).await.unwrap_err();
        assert!(err.is_transient());
        assert_eq!(server.received_requests().await.unwrap().len(), 6);
    }
}
