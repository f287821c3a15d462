//! The ARM client: requests on `azure_core::http::Pipeline`, with bearer tokens
//! ([`crate::auth`]), retries that honour `Retry-After` (through `stackup_core::retry`), ARM
//! error bodies mapped onto the semantic error with the `x-ms-request-id`, and long-running
//! operations awaited by [`crate::lro`].
//!
//! Build one with [`ArmClient::builder`] and share it (it is cheap to clone) between all the
//! provisioners of a stack.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::{
    ClientOptions, Context, HttpClient as SdkHttpClient, Method, Pipeline, PipelineSendOptions, Request, RetryOptions,
    Transport,
};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use stackup_core::retry::{Idempotency, RetryPolicy, parse_retry_after, retry};
use stackup_core::{ApiErrorDetails, Ctx, Error};
use url::Url;

use crate::auth::{BearerPolicy, may_carry_token};
use crate::cloud::AzureCloud;
use crate::credentials::CredentialChain;
use crate::error::AzureError;
use crate::lro::{self, LroOptions};

/// Environment variable holding the default subscription id.
pub const ENV_SUBSCRIPTION_ID: &str = "AZURE_SUBSCRIPTION_ID";

/// HTTP methods the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmMethod {
    /// GET
    Get,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// POST
    Post,
    /// DELETE
    Delete,
}

impl ArmMethod {
    fn sdk(self) -> Method {
        match self {
            ArmMethod::Get => Method::Get,
            ArmMethod::Put => Method::Put,
            ArmMethod::Patch => Method::Patch,
            ArmMethod::Post => Method::Post,
            ArmMethod::Delete => Method::Delete,
        }
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ArmMethod::Get => "GET",
            ArmMethod::Put => "PUT",
            ArmMethod::Patch => "PATCH",
            ArmMethod::Post => "POST",
            ArmMethod::Delete => "DELETE",
        }
    }
}

/// One request, kept as data so each retry rebuilds it.
#[derive(Clone)]
pub struct ArmRequest {
    /// Method.
    pub method: ArmMethod,
    /// Absolute URL, with `api-version`.
    pub url: Url,
    /// JSON body.
    pub body: Option<Bytes>,
    /// Extra headers (`x-ms-snapshot`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for ArmRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies may hold secrets; the path never does.
        write!(f, "{} {}", self.method.as_str(), self.url.path())
    }
}

impl ArmRequest {
    /// A request without body.
    pub fn new(method: ArmMethod, url: Url) -> Self {
        ArmRequest { method, url, body: None, headers: Vec::new() }
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(Bytes::from(body.to_string()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// `PUT …` style description for errors and progress.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method.as_str(), self.url.path())
    }
}

/// A response with its body read. Its `Debug` shows no body: bodies carry secrets (the keys
/// `listKeys` and `regenerateKey` return).
#[derive(Clone)]
pub struct ArmResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Body bytes.
    pub body: Bytes,
}

impl std::fmt::Debug for ArmResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmResponse")
            .field("status", &self.status)
            .field("request_id", &self.request_id())
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl ArmResponse {
    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON (`null` when empty).
    pub fn json_value(&self) -> Result<Value, Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| AzureError::decode("ARM response body", e).into())
    }

    /// The body decoded into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| AzureError::decode(std::any::type_name::<T>(), e).into())
    }

    /// `x-ms-request-id`, else `x-ms-correlation-request-id`.
    pub fn request_id(&self) -> Option<String> {
        self.header("x-ms-request-id").or_else(|| self.header("x-ms-correlation-request-id")).map(str::to_owned)
    }

    /// The delay the server asked for: `x-ms-retry-after-ms`, `retry-after-ms`, or
    /// `Retry-After` (seconds or HTTP date).
    pub fn retry_after(&self) -> Option<Duration> {
        for h in ["x-ms-retry-after-ms", "retry-after-ms"] {
            if let Some(ms) = self.header(h).and_then(|v| v.trim().parse::<u64>().ok()) {
                return Some(Duration::from_millis(ms));
            }
        }
        self.header("retry-after").and_then(parse_retry_after)
    }

    /// The ARM error in this response: `{"error": {"code", "message"}}` (or the same at top
    /// level), with the request id.
    pub fn error_details(&self) -> ApiErrorDetails {
        let mut d = ApiErrorDetails { status: Some(self.status), request_id: self.request_id(), ..Default::default() };
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
            let e = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
            d.code = e.get("code").and_then(Value::as_str).map(str::to_owned);
            d.message = e.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
        }
        if d.code.is_none() {
            d.code = self.header("x-ms-error-code").map(str::to_owned);
        }
        if d.message.is_empty() {
            d.message = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).trim().to_owned();
        }
        d
    }

    /// The semantic error for a non-success response.
    pub fn into_error(self) -> Error {
        let retry_after = self.retry_after();
        AzureError::Api { details: self.error_details(), retry_after }.into()
    }
}

/// The SDK pipeline's retry options equivalent to a stackup [`RetryPolicy`] (for the data-plane
/// clients, whose pipelines retry by themselves).
pub fn sdk_retry_options(policy: &RetryPolicy) -> RetryOptions {
    let to_sdk = |d: Duration| azure_core::time::Duration::milliseconds(d.as_millis().min(i64::MAX as u128) as i64);
    RetryOptions::exponential(azure_core::http::ExponentialRetryOptions {
        initial_delay: to_sdk(policy.initial_backoff),
        max_retries: policy.max_attempts.saturating_sub(1),
        max_total_elapsed: to_sdk(policy.max_elapsed),
        max_delay: to_sdk(policy.max_backoff),
    })
}

/// Statuses retried (with `Retry-After` when given): request timeout, throttling, server errors.
fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Configures an [`ArmClient`].
pub struct ArmClientBuilder {
    credential: Option<Arc<dyn TokenCredential>>,
    subscription_id: Option<String>,
    cloud: Option<AzureCloud>,
    arm_endpoint: Option<String>,
    retry: RetryPolicy,
    lro: LroOptions,
    transport: Option<Arc<dyn SdkHttpClient>>,
}

impl std::fmt::Debug for ArmClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClientBuilder")
            .field("subscription_id", &self.subscription_id)
            .field("arm_endpoint", &self.arm_endpoint)
            .finish_non_exhaustive()
    }
}

impl ArmClientBuilder {
    /// Uses this credential instead of the environment chain.
    pub fn credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// The subscription (default: `AZURE_SUBSCRIPTION_ID`).
    pub fn subscription_id(mut self, id: impl Into<String>) -> Self {
        self.subscription_id = Some(id.into());
        self
    }

    /// A cloud preset (default: [`AzureCloud::from_env`]).
    pub fn cloud(mut self, cloud: AzureCloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// Overrides the ARM endpoint (wins over `STACKUP_AZURE_ARM_ENDPOINT`).
    pub fn arm_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.arm_endpoint = Some(endpoint.into());
        self
    }

    /// The retry policy for 408/429/5xx and connection failures.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long-running operations are polled.
    pub fn lro_options(mut self, options: LroOptions) -> Self {
        self.lro = options;
        self
    }

    /// Sends requests through this HTTP client instead of the SDK's default (a proxy, a test
    /// double).
    pub fn transport(mut self, client: Arc<dyn SdkHttpClient>) -> Self {
        self.transport = Some(client);
        self
    }

    /// Builds the client. No network call is made; credentials are resolved on first use.
    pub fn build(self) -> Result<ArmClient, Error> {
        let mut cloud = match self.cloud {
            Some(c) => c,
            None => AzureCloud::from_env()?,
        };
        if let Some(ep) = &self.arm_endpoint {
            cloud = cloud.with_arm_endpoint(ep)?;
        }
        let subscription_id = match self.subscription_id {
            Some(s) => Some(s),
            None => std::env::var(ENV_SUBSCRIPTION_ID).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
        };
        if let Some(s) = &subscription_id {
            crate::validate::subscription_id(s)?;
        }
        let credential: Arc<dyn TokenCredential> = match self.credential {
            Some(c) => c,
            None => CredentialChain::from_env(&cloud)?,
        };
        let options = ClientOptions {
            retry: RetryOptions::none(),
            transport: self.transport.map(Transport::new),
            ..Default::default()
        };
        let auth: Arc<dyn Policy> = Arc::new(BearerPolicy::new(credential, cloud.arm_scope.clone()));
        let pipeline = Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            vec![auth],
            None,
        );
        Ok(ArmClient { inner: Arc::new(Inner { pipeline, cloud, subscription_id, retry: self.retry, lro: self.lro }) })
    }
}

struct Inner {
    pipeline: Pipeline,
    cloud: AzureCloud,
    subscription_id: Option<String>,
    retry: RetryPolicy,
    lro: LroOptions,
}

/// A client for Azure Resource Manager. Clones share one pipeline and token cache.
#[derive(Clone)]
pub struct ArmClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.inner.cloud.arm_endpoint.as_str())
            .field("subscription_id", &self.inner.subscription_id)
            .finish_non_exhaustive()
    }
}

impl ArmClient {
    /// A builder with defaults from the environment.
    pub fn builder() -> ArmClientBuilder {
        ArmClientBuilder {
            credential: None,
            subscription_id: None,
            cloud: None,
            arm_endpoint: None,
            retry: RetryPolicy::default(),
            lro: LroOptions::default(),
            transport: None,
        }
    }

    /// A client configured only from the environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// The cloud (endpoints, suffixes).
    pub fn cloud(&self) -> &AzureCloud {
        &self.inner.cloud
    }

    /// The ARM endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.inner.cloud.arm_endpoint
    }

    /// The long-running-operation settings.
    pub fn lro_options(&self) -> &LroOptions {
        &self.inner.lro
    }

    /// The subscription id, or a configuration error naming `AZURE_SUBSCRIPTION_ID`.
    pub fn subscription_id(&self) -> Result<&str, Error> {
        self.inner.subscription_id.as_deref().ok_or_else(|| {
            Error::Config(format!(
                "no Azure subscription: set {ENV_SUBSCRIPTION_ID} or ArmClientBuilder::subscription_id"
            ))
        })
    }

    /// `/subscriptions/{id}/resourceGroups/{rg}`.
    pub fn resource_group_path(&self, rg: &str) -> Result<String, Error> {
        Ok(format!("/subscriptions/{}/resourceGroups/{}", self.subscription_id()?, rg))
    }

    /// The absolute URL of an ARM path with `api-version` and extra query parameters.
    pub fn url(&self, path: &str, api_version: &str, query: &[(&str, &str)]) -> Result<Url, Error> {
        let mut url = self.endpoint().clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            q.append_pair("api-version", api_version);
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Checks that a URL from a response header (`Azure-AsyncOperation`, `Location`) points at
    /// the ARM endpoint, so the token is never sent anywhere else.
    pub fn check_poll_url(&self, raw: &str) -> Result<Url, Error> {
        let url = Url::parse(raw).map_err(|e| AzureError::decode("polling URL", e))?;
        let ep = self.endpoint();
        let same = url.scheme() == ep.scheme()
            && url.host_str() == ep.host_str()
            && url.port_or_known_default() == ep.port_or_known_default();
        if !same || !may_carry_token(&url) {
            return Err(AzureError::decode(
                "polling URL",
                format!(
                    "`{}` is not on the ARM endpoint {}",
                    url.host_str().unwrap_or("?"),
                    ep.host_str().unwrap_or("?")
                ),
            )
            .into());
        }
        Ok(url)
    }

    async fn attempt(&self, req: &ArmRequest) -> Result<ArmResponse, Error> {
        let mut sdk = Request::new(req.url.clone(), req.method.sdk());
        sdk.insert_header("accept", "application/json");
        for (k, v) in &req.headers {
            sdk.insert_header(*k, v.clone());
        }
        if let Some(body) = &req.body {
            sdk.insert_header("content-type", "application/json");
            sdk.set_body(body.clone());
        }
        let options = PipelineSendOptions { skip_checks: true, ..Default::default() };
        let raw = self
            .inner
            .pipeline
            .send(&Context::new(), &mut sdk, Some(options))
            .await
            .map_err(|e| Error::from(AzureError::from_core(&e)))?;
        let (status, headers, body) = raw.deconstruct();
        let headers = headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.as_str().to_owned())).collect();
        let resp = ArmResponse { status: u16::from(status), headers, body: body.into() };
        if is_retryable_status(resp.status) {
            return Err(resp.into_error());
        }
        Ok(resp)
    }

    /// Sends one request, retrying connection failures, 408, 429 and 5xx (honouring
    /// `Retry-After`). Every status that is not retryable is returned as is.
    pub async fn send_raw(&self, req: &ArmRequest) -> Result<ArmResponse, Error> {
        // Nearly every ARM call this crate makes is idempotent: PUT and DELETE by name, GET, and
        // POST actions (listKeys, checkNameAvailability, regenerateKey) whose repetition leaves
        // the same end state. The exception (a share snapshot, a new object per PUT) goes
        // through `send_raw_with(.., Idempotency::NotIdempotent)`.
        self.send_raw_with(req, Idempotency::Idempotent).await
    }

    /// Like [`ArmClient::send_raw`]; with [`Idempotency::NotIdempotent`] a connection that
    /// failed after the request may have been sent is not retried (`Error::MaybeSent` is
    /// returned for the caller to find out what happened).
    pub async fn send_raw_with(&self, req: &ArmRequest, idempotency: Idempotency) -> Result<ArmResponse, Error> {
        retry(
            &self.inner.retry,
            idempotency,
            |_| self.attempt(req),
            |attempt, delay, err| {
                tracing::info!(request = %req.describe(), attempt, ?delay, error = %err, "retrying ARM request");
            },
        )
        .await
    }

    /// Sends one request; a non-2xx answer becomes the semantic error.
    pub async fn send(&self, req: &ArmRequest) -> Result<ArmResponse, Error> {
        self.send_with(req, Idempotency::Idempotent).await
    }

    /// Like [`ArmClient::send`] with an explicit [`Idempotency`].
    pub async fn send_with(&self, req: &ArmRequest, idempotency: Idempotency) -> Result<ArmResponse, Error> {
        let resp = self.send_raw_with(req, idempotency).await?;
        if (200..300).contains(&resp.status) { Ok(resp) } else { Err(resp.into_error()) }
    }

    /// GETs a resource; `None` when it does not exist (404).
    pub async fn get(&self, path: &str, api_version: &str) -> Result<Option<Value>, Error> {
        self.get_with(path, api_version, &[], &[]).await
    }

    /// GET with query parameters and headers; `None` on 404.
    pub async fn get_with(
        &self,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
        headers: &[(&'static str, String)],
    ) -> Result<Option<Value>, Error> {
        let mut req = ArmRequest::new(ArmMethod::Get, self.url(path, api_version, query)?);
        req.headers.extend(headers.iter().cloned());
        let resp = self.send_raw(&req).await?;
        match resp.status {
            404 => Ok(None),
            200..=299 => resp.json_value().map(Some),
            _ => Err(resp.into_error()),
        }
    }

    /// PUTs a resource and waits for the operation to finish; returns the final resource.
    pub async fn put(&self, ctx: Option<&Ctx>, path: &str, api_version: &str, body: &Value) -> Result<Value, Error> {
        self.put_with(ctx, path, api_version, &[], body).await
    }

    /// PUT with extra query parameters.
    pub async fn put_with(
        &self,
        ctx: Option<&Ctx>,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, Error> {
        let req = ArmRequest::new(ArmMethod::Put, self.url(path, api_version, query)?).json(body);
        let initial = self.send(&req).await?;
        lro::finish_put(self, ctx, &req, initial, path, api_version).await
    }

    /// PATCHes a resource and waits for the operation to finish; returns the final resource.
    pub async fn patch(&self, ctx: Option<&Ctx>, path: &str, api_version: &str, body: &Value) -> Result<Value, Error> {
        let req = ArmRequest::new(ArmMethod::Patch, self.url(path, api_version, &[])?).json(body);
        let initial = self.send(&req).await?;
        lro::finish_put(self, ctx, &req, initial, path, api_version).await
    }

    /// `true` when the resource at `path` exists (used to report a partially created object
    /// after a failure).
    pub async fn exists(&self, path: &str, api_version: &str) -> bool {
        matches!(self.get(path, api_version).await, Ok(Some(_)))
    }

    /// POSTs an action and returns its result (following a 202 to the end).
    pub async fn post(&self, path: &str, api_version: &str, body: Option<&Value>) -> Result<Value, Error> {
        let mut req = ArmRequest::new(ArmMethod::Post, self.url(path, api_version, &[])?);
        if let Some(b) = body {
            req = req.json(b);
        }
        let initial = self.send(&req).await?;
        lro::finish_post(self, None, &req, initial).await
    }

    /// DELETEs a resource and waits until it is gone. Already gone is success.
    pub async fn delete(&self, ctx: Option<&Ctx>, path: &str, api_version: &str) -> Result<(), Error> {
        self.delete_with(ctx, path, api_version, &[], &[]).await
    }

    /// DELETE with query parameters and headers.
    pub async fn delete_with(
        &self,
        ctx: Option<&Ctx>,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
        headers: &[(&'static str, String)],
    ) -> Result<(), Error> {
        let mut req = ArmRequest::new(ArmMethod::Delete, self.url(path, api_version, query)?);
        req.headers.extend(headers.iter().cloned());
        let resp = self.send_raw(&req).await?;
        match resp.status {
            404 => Ok(()),
            200..=299 => lro::finish_delete(self, ctx, &req, resp).await,
            _ => Err(resp.into_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_debug_never_shows_its_body() {
        let key = "bXlTdG9yYWdlS2V5VmFsdWVXaGljaE11c3ROb3RMZWFr==";
        let resp = ArmResponse {
            status: 200,
            headers: BTreeMap::from([("x-ms-request-id".to_owned(), "rid-1".to_owned())]),
            body: Bytes::from(format!(r#"{{"keys":[{{"keyName":"key1","permissions":"Full","value":"{key}"}}]}}"#)),
        };
        let shown = format!("{resp:?} {resp:#?}");
        assert!(!shown.contains(key), "{shown}");
        assert!(!shown.contains("bXlTdG9yYWdl"), "{shown}");
        assert!(shown.contains("200") && shown.contains("rid-1"), "{shown}");
    }
}
