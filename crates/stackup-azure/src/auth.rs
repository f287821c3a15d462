//! The bearer-token pipeline policy for ARM.
//!
//! `azure_core`'s own `BearerTokenAuthorizationPolicy` refuses every `http://` URL, which rules
//! out local emulators and test servers. This policy sends the token to `https://` endpoints
//! and to `http://` loopback addresses only (the rule of `stackup_core::http::validate_endpoint`),
//! caches the token until five minutes before it expires, and fetches a fresh one once when
//! ARM answers 401 (a revoked or rotated token).

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request, StatusCode};
use azure_core::time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;

/// Adds `Authorization: Bearer …` for one scope.
pub struct BearerPolicy {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    cached: Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for BearerPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerPolicy").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl BearerPolicy {
    /// A policy getting tokens for `scope` from `credential`.
    pub fn new(credential: Arc<dyn TokenCredential>, scope: impl Into<String>) -> Self {
        BearerPolicy { credential, scope: scope.into(), cached: Mutex::new(None) }
    }

    async fn token(&self, refresh: bool) -> azure_core::Result<String> {
        let mut cached = self.cached.lock().await;
        if !refresh
            && let Some(t) = cached.as_ref()
            && t.expires_on > OffsetDateTime::now_utc() + Duration::minutes(5)
        {
            return Ok(t.token.secret().to_owned());
        }
        let fresh = self.credential.get_token(&[self.scope.as_str()], None).await?;
        let value = fresh.token.secret().to_owned();
        *cached = Some(fresh);
        Ok(value)
    }
}

/// True when a bearer token may be sent to this URL: `https://`, or `http://` to loopback.
pub fn may_carry_token(url: &url::Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && stackup_core::http::is_loopback(url))
}

#[async_trait]
impl Policy for BearerPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        if !may_carry_token(request.url()) {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                format!(
                    "refusing to send an Azure token over plain http to {} (only https or loopback)",
                    request.url().host_str().unwrap_or("?")
                ),
            ));
        }
        let token = self.token(false).await?;
        request.insert_header("authorization", format!("Bearer {token}"));
        let response = next[0].send(ctx, request, &next[1..]).await?;
        if response.status() != StatusCode::Unauthorized {
            return Ok(response);
        }
        tracing::debug!("ARM answered 401; fetching a fresh token once");
        let token = self.token(true).await?;
        request.insert_header("authorization", format!("Bearer {token}"));
        next[0].send(ctx, request, &next[1..]).await
    }
}
