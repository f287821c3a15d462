//! [`TailscaleClient`]: typed calls to Tailscale API v2 on [`stackup_core::http::HttpClient`]
//! (retries on 429/5xx honouring `Retry-After`, semantic errors carrying Tailscale's message).
//!
//! Every path is built from the API root (`<base>/api/v2`) with each segment percent-encoded.

use std::sync::Arc;

use reqwest::Method;
use stackup_core::Error;
use stackup_core::http::{HttpClient, HttpRequest, HttpResponse};
use stackup_core::retry::{RetryPolicy, retry};
use url::Url;

use crate::auth::OAuthAuth;
use crate::config::TailscaleClientBuilder;
use crate::error::{TailscaleError, data_errors};
use crate::wire::{CreateKeyRequest, Device, DeviceList, DnsPreferences, Key, Nameservers, SearchPaths};

/// Appends path segments (percent-encoded) to `base`.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

pub(crate) struct Parts {
    /// Makes single attempts; retries are applied here.
    pub(crate) http: HttpClient,
    pub(crate) api_root: Url,
    pub(crate) tailnet: String,
    pub(crate) oauth: Option<Arc<OAuthAuth>>,
    pub(crate) has_credentials: bool,
    pub(crate) retry: RetryPolicy,
}

/// A Tailscale API client for one tailnet. Cheap to clone (shared connection pool and token cache).
#[derive(Clone)]
pub struct TailscaleClient {
    inner: Arc<Parts>,
}

impl std::fmt::Debug for TailscaleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailscaleClient")
            .field("api_root", &self.inner.api_root.as_str())
            .field("tailnet", &self.inner.tailnet)
            .field("oauth", &self.inner.oauth.is_some())
            .finish_non_exhaustive()
    }
}

/// Which policy version a write must replace (`If-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// Replace only the version with this `ETag` (from a `GET`).
    ETag(String),
    /// Replace only Tailscale's untouched default policy (`If-Match: "ts-default"`).
    TsDefault,
}

impl IfMatch {
    /// The header value: always quoted.
    pub fn header_value(&self) -> String {
        match self {
            IfMatch::ETag(e) => {
                let e = e.trim();
                if e.starts_with("W/") || (e.len() >= 2 && e.starts_with('"') && e.ends_with('"')) {
                    e.to_owned()
                } else {
                    format!("\"{}\"", e.trim_matches('"'))
                }
            }
            IfMatch::TsDefault => "\"ts-default\"".to_owned(),
        }
    }
}

/// The policy file as stored: HuJSON text and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// The HuJSON text, comments and formatting kept.
    pub hujson: String,
    /// The `ETag` header (quotes kept as sent).
    pub etag: String,
}

/// A key as `GET /tailnet/{tailnet}/keys` lists it: the id, and the type when the API says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedKey {
    /// Key id.
    pub id: String,
    /// `auth`, `api`, `client` or `federated`, when listed.
    #[serde(default)]
    pub key_type: Option<String>,
}

/// The outcome of `POST /tailnet/{tailnet}/acl/validate` that passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyValidation {
    /// Warnings Tailscale reported (for example groups not syncing from SCIM).
    pub warnings: Vec<String>,
}

impl TailscaleClient {
    /// A builder (nothing read from the environment unless asked).
    pub fn builder() -> TailscaleClientBuilder {
        TailscaleClientBuilder::new()
    }

    /// A client configured from the `TAILSCALE_*` environment variables (see [`crate::config`]).
    pub fn from_env() -> Result<Self, Error> {
        TailscaleClientBuilder::new().from_env().build()
    }

    pub(crate) fn from_parts(parts: Parts) -> Self {
        TailscaleClient { inner: Arc::new(parts) }
    }

    /// The tailnet (`-` for the credential's default).
    pub fn tailnet(&self) -> &str {
        &self.inner.tailnet
    }

    /// `<base>/api/v2`.
    pub fn api_root(&self) -> &Url {
        &self.inner.api_root
    }

    /// True when credentials were configured (false for an offline-only client).
    pub fn has_credentials(&self) -> bool {
        self.inner.has_credentials
    }

    /// True when authenticating with an OAuth client (keys it creates must carry tags).
    pub fn uses_oauth(&self) -> bool {
        self.inner.oauth.is_some()
    }

    /// The OAuth authorizer, when OAuth is used (to inspect token exchanges).
    pub fn oauth(&self) -> Option<&Arc<OAuthAuth>> {
        self.inner.oauth.as_ref()
    }

    /// `<api root>/<segments…>`.
    pub fn url(&self, segments: &[&str]) -> Url {
        join(&self.inner.api_root, segments)
    }

    /// `<api root>/tailnet/<tailnet>/<segments…>`.
    pub fn tailnet_url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["tailnet", self.inner.tailnet.as_str()];
        all.extend_from_slice(segments);
        self.url(&all)
    }

    /// Sends a request with retries. A `401` while using OAuth drops the cached token and
    /// retries once with a fresh one (the token may have been revoked before its expiry).
    pub async fn send(&self, req: HttpRequest) -> Result<HttpResponse, Error> {
        self.refreshing_on_401(|| self.send_with_retries(&req)).await
    }

    /// Runs `send`; on a `401` while using OAuth, drops the cached token and runs it once more.
    /// A 401 means the request was refused unprocessed, so even a create may be sent again.
    async fn refreshing_on_401<F, Fut>(&self, send: F) -> Result<HttpResponse, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<HttpResponse, Error>>,
    {
        match send().await {
            Err(Error::Unauthenticated(_)) if self.inner.oauth.is_some() => {
                if let Some(o) = &self.inner.oauth {
                    o.invalidate().await;
                }
                send().await
            }
            other => other,
        }
    }

    async fn send_with_retries(&self, req: &HttpRequest) -> Result<HttpResponse, Error> {
        retry(
            &self.inner.retry,
            req.idempotency,
            |_| self.inner.http.send(req.clone()),
            |attempt, delay, err| {
                tracing::info!(provider = "tailscale", method = %req.method, path = req.url.path(), attempt, ?delay, error = %err, "retrying request");
            },
        )
        .await
    }

    /// Sends a request that creates something and must not be repeated blindly: retried only
    /// when the server certainly did not act on it (429 throttling, connection refused), never
    /// after a 5xx or a dropped connection, which might hide a created object.
    pub async fn send_create(&self, req: HttpRequest) -> Result<HttpResponse, Error> {
        self.refreshing_on_401(|| self.send_create_with_retries(&req)).await
    }

    async fn send_create_with_retries(&self, req: &HttpRequest) -> Result<HttpResponse, Error> {
        let policy = &self.inner.retry;
        let start = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            let err = match self.inner.http.send(req.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            let safe = matches!(err, Error::Throttled { .. } | Error::Transport(_));
            if !safe || attempt >= policy.max_attempts {
                return Err(err);
            }
            let delay = policy.delay_for(attempt, &err);
            if start.elapsed() + delay > policy.max_elapsed {
                return Err(err);
            }
            tracing::info!(provider = "tailscale", path = req.url.path(), attempt, ?delay, error = %err, "retrying create");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: Url, op: &str) -> Result<T, Error> {
        let resp = self.send(HttpRequest::new(Method::GET, url)).await?;
        decode(&resp, op)
    }

    async fn get_optional<T: serde::de::DeserializeOwned>(&self, url: Url, op: &str) -> Result<Option<T>, Error> {
        match self.send(HttpRequest::new(Method::GET, url)).await {
            Ok(resp) => decode(&resp, op).map(Some),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn post_json<B: serde::Serialize>(&self, url: Url, body: &B) -> Result<HttpResponse, Error> {
        // Setting a value to the same thing twice is harmless: these POSTs are idempotent.
        self.send(HttpRequest::new(Method::POST, url).json(body)?.idempotent()).await
    }

    async fn delete_gone_ok(&self, url: Url) -> Result<(), Error> {
        match self.send(HttpRequest::new(Method::DELETE, url)).await {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ---- keys ----

    /// `POST /tailnet/{tailnet}/keys`: creates an auth key; the response carries the secret once.
    pub async fn create_auth_key(&self, body: &CreateKeyRequest) -> Result<Key, Error> {
        let req = HttpRequest::new(Method::POST, self.tailnet_url(&["keys"])).json(body)?;
        let resp = self.send_create(req).await?;
        decode(&resp, "POST /tailnet/{tailnet}/keys")
    }

    /// `GET /tailnet/{tailnet}/keys`: the ids of the keys the credential can see (only ids are
    /// guaranteed in the list).
    pub async fn list_key_ids(&self) -> Result<Vec<String>, Error> {
        Ok(self.list_keys(false).await?.into_iter().map(|k| k.id).collect())
    }

    /// `GET /tailnet/{tailnet}/keys[?all=true]`. Without `all`, a user's token lists that user's
    /// keys, but a token derived from an OAuth client lists the tailnet's OAuth clients; `all`
    /// lists auth keys, API access tokens and OAuth clients alike.
    pub async fn list_keys(&self, all: bool) -> Result<Vec<ListedKey>, Error> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            keys: Option<Vec<ListedKey>>,
        }
        let mut url = self.tailnet_url(&["keys"]);
        if all {
            url.query_pairs_mut().append_pair("all", "true");
        }
        let list: List = self.get_json(url, "GET /tailnet/{tailnet}/keys").await?;
        Ok(list.keys.unwrap_or_default())
    }

    /// `GET /tailnet/{tailnet}/keys/{keyId}`; `None` when it does not exist.
    pub async fn get_key(&self, id: &str) -> Result<Option<Key>, Error> {
        self.get_optional(self.tailnet_url(&["keys", id]), "GET /tailnet/{tailnet}/keys/{keyId}").await
    }

    /// `DELETE /tailnet/{tailnet}/keys/{keyId}` (revoke); a missing key is success.
    pub async fn delete_key(&self, id: &str) -> Result<(), Error> {
        self.delete_gone_ok(self.tailnet_url(&["keys", id])).await
    }

    // ---- devices ----

    /// `GET /tailnet/{tailnet}/devices?<field>=<value>…` with server-side exact-match filters.
    pub async fn list_devices(&self, filters: &[(&str, &str)]) -> Result<Vec<Device>, Error> {
        let mut url = self.tailnet_url(&["devices"]);
        if !filters.is_empty() {
            url.query_pairs_mut().extend_pairs(filters);
        }
        let list: DeviceList = self.get_json(url, "GET /tailnet/{tailnet}/devices").await?;
        Ok(list.devices)
    }

    /// `GET /device/{deviceId}`; `None` when it does not exist.
    pub async fn get_device(&self, id: &str) -> Result<Option<Device>, Error> {
        self.get_optional(self.url(&["device", id]), "GET /device/{deviceId}").await
    }

    /// `DELETE /device/{deviceId}`; a missing device is success.
    pub async fn delete_device(&self, id: &str) -> Result<(), Error> {
        self.delete_gone_ok(self.url(&["device", id])).await
    }

    /// `POST /device/{deviceId}/authorized {"authorized": …}`.
    pub async fn set_device_authorized(&self, id: &str, authorized: bool) -> Result<(), Error> {
        self.post_json(self.url(&["device", id, "authorized"]), &serde_json::json!({ "authorized": authorized }))
            .await
            .map(drop)
    }

    /// `POST /device/{deviceId}/tags {"tags": […]}` (replaces all tags).
    pub async fn set_device_tags(&self, id: &str, tags: &[String]) -> Result<(), Error> {
        self.post_json(self.url(&["device", id, "tags"]), &serde_json::json!({ "tags": tags })).await.map(drop)
    }

    /// `POST /device/{deviceId}/key {"keyExpiryDisabled": …}`.
    pub async fn set_device_key_expiry_disabled(&self, id: &str, disabled: bool) -> Result<(), Error> {
        self.post_json(self.url(&["device", id, "key"]), &serde_json::json!({ "keyExpiryDisabled": disabled }))
            .await
            .map(drop)
    }

    /// `POST /device/{deviceId}/name {"name": …}` (the MagicDNS name; empty resets it to the
    /// hostname-derived default).
    pub async fn set_device_name(&self, id: &str, name: &str) -> Result<(), Error> {
        self.post_json(self.url(&["device", id, "name"]), &serde_json::json!({ "name": name })).await.map(drop)
    }

    // ---- policy file ----

    /// `GET /tailnet/{tailnet}/acl` with `Accept: application/hujson`: the text as stored and its
    /// `ETag`.
    pub async fn get_policy(&self) -> Result<PolicyFile, Error> {
        let req = HttpRequest::new(Method::GET, self.tailnet_url(&["acl"])).header("accept", "application/hujson")?;
        let resp = self.send(req).await?;
        let hujson = String::from_utf8(resp.body.to_vec()).map_err(|_| unexpected("GET /acl", "body is not UTF-8"))?;
        let etag = resp.header("etag").unwrap_or_default().to_owned();
        Ok(PolicyFile { hujson, etag })
    }

    /// `POST /tailnet/{tailnet}/acl` with the HuJSON text as written and `If-Match`. Returns the
    /// stored policy and its new `ETag` (read back with a `GET` when the reply has none).
    /// A `412` is [`Error::PreconditionFailed`]: someone changed the policy since it was read.
    pub async fn set_policy(&self, hujson: &str, if_match: &IfMatch) -> Result<PolicyFile, Error> {
        let req = HttpRequest::new(Method::POST, self.tailnet_url(&["acl"]))
            .body("application/hujson", hujson.to_owned())
            .header("accept", "application/hujson")?
            .header("if-match", &if_match.header_value())?;
        // Not retried after an unknown outcome: the caller checks a 412 against what it wrote.
        let resp = self.send(req).await?;
        match resp.header("etag").filter(|e| !e.is_empty()) {
            Some(etag) => {
                let body = String::from_utf8(resp.body.to_vec()).unwrap_or_default();
                let hujson = if body.trim().is_empty() { hujson.to_owned() } else { body };
                Ok(PolicyFile { hujson, etag: etag.to_owned() })
            }
            None => self.get_policy().await,
        }
    }

    /// `POST /tailnet/{tailnet}/acl/validate`: checks a policy (syntax and its tests) without
    /// saving it. Errors become [`TailscaleError::AclInvalid`]; warnings are returned.
    pub async fn validate_policy(&self, hujson: &str) -> Result<PolicyValidation, Error> {
        let req = HttpRequest::new(Method::POST, self.tailnet_url(&["acl", "validate"]))
            .body("application/hujson", hujson.to_owned())
            .idempotent();
        let resp = match self.send(req).await {
            Ok(r) => r,
            Err(Error::Provider(d)) if d.status == Some(400) => {
                return Err(TailscaleError::AclInvalid { message: d.message, details: vec![] }.into());
            }
            Err(e) => return Err(e),
        };
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(PolicyValidation::default());
        }
        let v: serde_json::Value = decode(&resp, "POST /tailnet/{tailnet}/acl/validate")?;
        let message = v.get("message").and_then(|m| m.as_str()).unwrap_or("").to_owned();
        let errors = data_errors(&v);
        let warnings = data_warnings(&v);
        if message.is_empty() && errors.is_empty() {
            return Ok(PolicyValidation { warnings });
        }
        if errors.is_empty() && !warnings.is_empty() {
            return Ok(PolicyValidation { warnings });
        }
        Err(TailscaleError::AclInvalid { message, details: errors }.into())
    }

    // ---- DNS ----

    /// `GET /tailnet/{tailnet}/dns/nameservers`.
    pub async fn get_nameservers(&self) -> Result<Vec<String>, Error> {
        let n: Nameservers = self.get_json(self.tailnet_url(&["dns", "nameservers"]), "GET dns/nameservers").await?;
        Ok(n.dns)
    }

    /// `POST /tailnet/{tailnet}/dns/nameservers {"dns": […]}`; the reply says whether MagicDNS is
    /// still on (removing every nameserver turns it off).
    pub async fn set_nameservers(&self, dns: &[String]) -> Result<Nameservers, Error> {
        let body = Nameservers { dns: dns.to_vec(), magic_dns: None };
        let resp = self.post_json(self.tailnet_url(&["dns", "nameservers"]), &body).await?;
        if resp.body.is_empty() {
            return Ok(body);
        }
        decode(&resp, "POST dns/nameservers")
    }

    /// `GET /tailnet/{tailnet}/dns/searchpaths`.
    pub async fn get_search_paths(&self) -> Result<Vec<String>, Error> {
        let s: SearchPaths = self.get_json(self.tailnet_url(&["dns", "searchpaths"]), "GET dns/searchpaths").await?;
        Ok(s.search_paths)
    }

    /// `POST /tailnet/{tailnet}/dns/searchpaths {"searchPaths": […]}`.
    pub async fn set_search_paths(&self, paths: &[String]) -> Result<(), Error> {
        let body = SearchPaths { search_paths: paths.to_vec() };
        self.post_json(self.tailnet_url(&["dns", "searchpaths"]), &body).await.map(drop)
    }

    /// `GET /tailnet/{tailnet}/dns/preferences`.
    pub async fn get_dns_preferences(&self) -> Result<DnsPreferences, Error> {
        self.get_json(self.tailnet_url(&["dns", "preferences"]), "GET dns/preferences").await
    }

    /// `POST /tailnet/{tailnet}/dns/preferences {"magicDNS": …}` (fails when there is no
    /// nameserver and MagicDNS is being turned on).
    pub async fn set_dns_preferences(&self, prefs: DnsPreferences) -> Result<(), Error> {
        self.post_json(self.tailnet_url(&["dns", "preferences"]), &prefs).await.map(drop)
    }
}

fn unexpected(operation: &str, reason: &str) -> Error {
    TailscaleError::UnexpectedResponse { operation: operation.to_owned(), reason: reason.to_owned() }.into()
}

fn decode<T: serde::de::DeserializeOwned>(resp: &HttpResponse, op: &str) -> Result<T, Error> {
    // The serde message names the field and position, never the (possibly secret) content.
    serde_json::from_slice(&resp.body).map_err(|e| unexpected(op, &format!("undecodable body: {e}")))
}

fn data_warnings(v: &serde_json::Value) -> Vec<String> {
    let mut out = vec![];
    for item in v.get("data").and_then(|d| d.as_array()).into_iter().flatten() {
        let user = item.get("user").and_then(|u| u.as_str()).unwrap_or("");
        for w in item.get("warnings").and_then(|e| e.as_array()).into_iter().flatten() {
            let text = w.as_str().map(str::to_owned).unwrap_or_else(|| w.to_string());
            out.push(if user.is_empty() { text } else { format!("{user}: {text}") });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_and_if_match_is_quoted() {
        let c = TailscaleClient::builder().api_key("k").build().unwrap();
        assert_eq!(c.tailnet_url(&["keys", "k1"]).as_str(), "https://api.tailscale.com/api/v2/tailnet/-/keys/k1");
        assert_eq!(c.url(&["device", "a/b"]).as_str(), "https://api.tailscale.com/api/v2/device/a%2Fb");
        assert_eq!(IfMatch::ETag("e0b2816b418".into()).header_value(), "\"e0b2816b418\"");
        assert_eq!(IfMatch::ETag("\"e0b2816b418\"".into()).header_value(), "\"e0b2816b418\"");
        assert_eq!(IfMatch::TsDefault.header_value(), "\"ts-default\"");
    }
}
