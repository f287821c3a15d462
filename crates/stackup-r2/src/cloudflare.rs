//! The Cloudflare v4 REST API for R2 bucket settings, through core's [`HttpClient`].
//!
//! Every answer is the v4 envelope `{"success", "errors": [{"code", "message"}], "messages",
//! "result"}`; failures keep the first error's numeric code and all messages, and the `cf-ray`
//! header as request id. Bucket-scoped calls carry `cf-r2-jurisdiction`.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stackup_core::http::{Authorizer, HttpClient, HttpClientConfig, HttpRequest};
use stackup_core::retry::RetryPolicy;
use stackup_core::{ApiErrorDetails, Error, Secret};
use url::Url;

use crate::config::{CloudflareApiConfig, Jurisdiction};
use crate::error::R2Error;

/// A bucket as the REST API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RestBucket {
    /// Bucket name.
    #[serde(default)]
    pub name: String,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// Location (`wnam`, `enam`, `weur`, `eeur`, `apac`, `oc`), as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Default storage class (`Standard` or `InfrequentAccess`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Jurisdiction (`default`, `eu`, `fedramp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<EnvelopeMessage>,
    #[serde(default = "Option::default")]
    result: Option<T>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeMessage {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: String,
}

/// Reads the v4 envelope's `errors` into code and message.
pub fn parse_envelope_error(status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> ApiErrorDetails {
    let mut d = ApiErrorDetails { status: Some(status.as_u16()), ..Default::default() };
    if let Ok(env) = serde_json::from_slice::<Envelope<serde_json::Value>>(body) {
        if let Some(first) = env.errors.first() {
            d.code = first.code.as_ref().map(|c| c.as_str().map(str::to_owned).unwrap_or_else(|| c.to_string()));
        }
        d.message = env
            .errors
            .iter()
            .map(|e| match &e.code {
                Some(c) => format!("{} [code: {c}]", e.message),
                None => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    if d.message.is_empty() {
        d.message = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_owned();
    }
    if d.message.is_empty() {
        d.message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    d
}

struct Bearer(Secret);

#[async_trait]
impl Authorizer for Bearer {
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), Error> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0.expose()))
            .map_err(|_| Error::invalid("CLOUDFLARE_API_TOKEN", "not a valid header value"))?;
        v.set_sensitive(true);
        request.headers_mut().insert(reqwest::header::AUTHORIZATION, v);
        Ok(())
    }
}

/// The R2 part of the Cloudflare v4 REST API.
#[derive(Debug, Clone)]
pub struct CloudflareApi {
    http: HttpClient,
    base: Url,
    account_id: String,
}

impl CloudflareApi {
    /// A client for `config` with the given retry policy.
    pub fn new(config: &CloudflareApiConfig, retry: RetryPolicy) -> Result<Self, R2Error> {
        let mut hc = HttpClientConfig::new("cloudflare");
        hc.retry = retry;
        hc.request_id_headers = vec!["cf-ray"];
        hc.error_parser = Arc::new(parse_envelope_error);
        let http = HttpClient::new(hc, Arc::new(Bearer(config.api_token.clone())))?;
        Ok(CloudflareApi { http, base: config.base_url.clone(), account_id: config.account_id.clone() })
    }

    /// `{base}/accounts/{account}/r2/buckets[/{segments…}]`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, R2Error> {
        let mut url = self.base.clone();
        {
            let mut p = url
                .path_segments_mut()
                .map_err(|_| R2Error::Config(format!("Cloudflare API URL `{}` cannot be a base", self.base)))?;
            p.pop_if_empty().extend(["accounts", &self.account_id, "r2", "buckets"]).extend(segments);
        }
        Ok(url)
    }

    async fn call<T: DeserializeOwned>(&self, request: HttpRequest) -> Result<Option<T>, R2Error> {
        let resp = self.http.send(request).await?;
        let env: Envelope<T> = resp.json()?;
        if !env.success {
            let details = parse_envelope_error(resp.status, &resp.headers, &resp.body);
            let details = ApiErrorDetails { request_id: resp.header("cf-ray").map(str::to_owned), ..details };
            return Err(Error::Provider(details).into());
        }
        Ok(env.result)
    }

    fn request(&self, method: Method, segments: &[&str], jurisdiction: Jurisdiction) -> Result<HttpRequest, R2Error> {
        Ok(HttpRequest::new(method, self.url(segments)?).header("cf-r2-jurisdiction", jurisdiction.as_str())?)
    }

    /// `POST /accounts/{id}/r2/buckets` (r2-create-bucket).
    pub async fn create_bucket(
        &self,
        name: &str,
        jurisdiction: Jurisdiction,
        location_hint: Option<&str>,
        storage_class: Option<&str>,
    ) -> Result<RestBucket, R2Error> {
        let mut body = serde_json::json!({ "name": name });
        if let Some(l) = location_hint {
            body["locationHint"] = l.into();
        }
        if let Some(s) = storage_class {
            body["storageClass"] = s.into();
        }
        let req = self.request(Method::POST, &[], jurisdiction)?.json(&body)?;
        let b: Option<RestBucket> = self.call(req).await?;
        Ok(b.unwrap_or_else(|| RestBucket { name: name.to_owned(), ..Default::default() }))
    }

    /// `GET /accounts/{id}/r2/buckets/{name}` (r2-get-bucket); `None` when it does not exist.
    pub async fn get_bucket(&self, name: &str, jurisdiction: Jurisdiction) -> Result<Option<RestBucket>, R2Error> {
        match self.call(self.request(Method::GET, &[name], jurisdiction)?).await {
            Ok(b) => Ok(b),
            Err(R2Error::Core(Error::NotFound(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PATCH /accounts/{id}/r2/buckets/{name}` with `cf-r2-storage-class` (r2-patch-bucket).
    pub async fn set_storage_class(
        &self,
        name: &str,
        jurisdiction: Jurisdiction,
        storage_class: &str,
    ) -> Result<Option<RestBucket>, R2Error> {
        let req = self.request(Method::PATCH, &[name], jurisdiction)?.header("cf-r2-storage-class", storage_class)?;
        // Setting an absolute value is safe to repeat.
        self.call(req.idempotent()).await
    }

    /// `DELETE /accounts/{id}/r2/buckets/{name}` (r2-delete-bucket); gone already is success.
    pub async fn delete_bucket(&self, name: &str, jurisdiction: Jurisdiction) -> Result<(), R2Error> {
        match self.call::<serde_json::Value>(self.request(Method::DELETE, &[name], jurisdiction)?).await {
            Ok(_) | Err(R2Error::Core(Error::NotFound(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /accounts/{id}/r2/buckets/{name}/{setting}` (lifecycle, cors).
    pub async fn get_setting<T: DeserializeOwned>(
        &self,
        name: &str,
        setting: &str,
        jurisdiction: Jurisdiction,
    ) -> Result<Option<T>, R2Error> {
        self.call(self.request(Method::GET, &[name, setting], jurisdiction)?).await
    }

    /// `PUT /accounts/{id}/r2/buckets/{name}/{setting}` with a JSON body (replaces it whole).
    pub async fn put_setting<T: Serialize>(
        &self,
        name: &str,
        setting: &str,
        jurisdiction: Jurisdiction,
        body: &T,
    ) -> Result<(), R2Error> {
        let req = self.request(Method::PUT, &[name, setting], jurisdiction)?.json(body)?;
        self.call::<serde_json::Value>(req).await.map(|_| ())
    }

    /// `DELETE /accounts/{id}/r2/buckets/{name}/{setting}`; gone already is success.
    pub async fn delete_setting(&self, name: &str, setting: &str, jurisdiction: Jurisdiction) -> Result<(), R2Error> {
        match self.call::<serde_json::Value>(self.request(Method::DELETE, &[name, setting], jurisdiction)?).await {
            Ok(_) | Err(R2Error::Core(Error::NotFound(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
