//! Credentials: an API access token sent as a Bearer token, or an OAuth client whose
//! client-credentials tokens are cached and refreshed before they expire.
//!
//! The OAuth token is fetched lazily on the first request, reused until `refresh_margin` before
//! its expiry, and refreshed by exactly one caller at a time: concurrent requests wait for the
//! refresh in flight instead of starting their own. A `401` from the API invalidates the cached
//! token (see [`crate::client::TailscaleClient`]), so a token revoked early is replaced once.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use stackup_core::http::{Authorizer, HttpClient, HttpRequest};
use stackup_core::{Error, Secret};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::error::TailscaleError;

fn bearer(token: &Secret) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| Error::Config("the Tailscale token contains characters not allowed in a header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Sends an API access token (`tskey-api-…`) as `Authorization: Bearer <token>`.
pub struct ApiKeyAuth {
    key: Secret,
}

impl ApiKeyAuth {
    /// An authorizer for `key`.
    pub fn new(key: Secret) -> Self {
        ApiKeyAuth { key }
    }
}

impl fmt::Debug for ApiKeyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyAuth((sensitive))")
    }
}

#[async_trait]
impl Authorizer for ApiKeyAuth {
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), Error> {
        request.headers_mut().insert(AUTHORIZATION, bearer(&self.key)?);
        Ok(())
    }
}

/// An authorizer for a client built without credentials: every request fails with a clear
/// configuration error naming the environment variables to set. Lets programs plan offline.
#[derive(Debug, Clone, Copy, Default)]
pub struct MissingCredentials;

#[async_trait]
impl Authorizer for MissingCredentials {
    async fn authorize(&self, _request: &mut reqwest::Request) -> Result<(), Error> {
        Err(Error::Config(crate::config::MISSING_CREDENTIALS.into()))
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

/// OAuth client credentials (`tskey-client-…`) exchanged at `POST /api/v2/oauth/token` for
/// 1-hour access tokens, cached and refreshed before expiry, one refresh at a time.
pub struct OAuthAuth {
    client_id: String,
    client_secret: Secret,
    scopes: Vec<String>,
    token_url: Url,
    http: HttpClient,
    refresh_margin: Duration,
    cache: Mutex<Option<CachedToken>>,
    exchanges: AtomicU64,
}

impl fmt::Debug for OAuthAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthAuth")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Tokens whose lifetime the server does not state are assumed to live this long (Tailscale's
/// documented lifetime is one hour).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

impl OAuthAuth {
    /// An OAuth authorizer. `http` must not itself add credentials (use
    /// [`stackup_core::http::NoAuth`]); `token_url` is `<base>/api/v2/oauth/token`.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Secret,
        scopes: Vec<String>,
        token_url: Url,
        http: HttpClient,
        refresh_margin: Duration,
    ) -> Arc<Self> {
        Arc::new(OAuthAuth {
            client_id: client_id.into(),
            client_secret,
            scopes,
            token_url,
            http,
            refresh_margin,
            cache: Mutex::new(None),
            exchanges: AtomicU64::new(0),
        })
    }

    /// How many token exchanges this authorizer made (for tests and metrics).
    pub fn exchanges(&self) -> u64 {
        self.exchanges.load(Ordering::SeqCst)
    }

    /// Forgets the cached token, so the next request fetches a new one (after a `401`).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// A valid access token: the cached one, or a fresh one when it is missing or within the
    /// refresh margin of its expiry. Holding the lock while refreshing makes concurrent callers
    /// wait for the one exchange in flight.
    pub async fn token(&self) -> Result<Secret, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fetched_at = Instant::now();
        let resp = self.exchange().await?;
        let lifetime = resp.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_TOKEN_LIFETIME);
        // Refresh `refresh_margin` early, but never treat a token as expired on arrival.
        let usable = lifetime.saturating_sub(self.refresh_margin).max(lifetime / 2);
        let token = resp.access_token;
        *cache = Some(CachedToken { token: token.clone(), refresh_at: fetched_at + usable });
        Ok(token)
    }

    async fn exchange(&self) -> Result<TokenResponse, Error> {
        self.exchanges.fetch_add(1, Ordering::SeqCst);
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_secret", self.client_secret.expose());
            form.append_pair("grant_type", "client_credentials");
            if !self.scopes.is_empty() {
                form.append_pair("scope", &self.scopes.join(" "));
            }
            form.finish()
        };
        // Asking for a token twice is harmless, so the exchange may be retried.
        let req = HttpRequest::new(Method::POST, self.token_url.clone())
            .body("application/x-www-form-urlencoded", body)
            .idempotent();
        tracing::debug!(client_id = %self.client_id, "exchanging OAuth client credentials for an access token");
        let resp = self.http.send(req).await.map_err(|e| match e.api_details() {
            Some(d) => Error::from(TailscaleError::OAuth(d.clone())),
            None => e,
        })?;
        resp.json::<TokenResponse>().map_err(|_| {
            TailscaleError::UnexpectedResponse {
                operation: "POST /api/v2/oauth/token".into(),
                reason: "the body has no `access_token`".into(),
            }
            .into()
        })
    }
}

#[async_trait]
impl Authorizer for OAuthAuth {
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), Error> {
        let token = self.token().await?;
        request.headers_mut().insert(AUTHORIZATION, bearer(&token)?);
        Ok(())
    }
}
