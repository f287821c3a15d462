//! The semantic error every provider error converts into.
//!
//! Provider crates keep their own detailed error enum and implement
//! `From<their::Error> for stackup_core::Error`, so callers can match on *what happened*
//! (`NotFound`, `Throttled`, `Locked`, …) without knowing which cloud said it.

use std::fmt;
use std::time::Duration;

use crate::lock::LockInfo;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Details a cloud API returned with a failure: its error code, message and request id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiErrorDetails {
    /// HTTP status, when the failure came from an HTTP response.
    pub status: Option<u16>,
    /// The provider's machine-readable error code (for example `ResourceGroupNotFound`).
    pub code: Option<String>,
    /// The provider's human-readable message.
    pub message: String,
    /// The request id the provider assigned (`x-ms-request-id`, `opc-request-id`, `cf-ray`, …).
    pub request_id: Option<String>,
}

impl fmt::Display for ApiErrorDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(status) = self.status {
            write!(f, "HTTP {status}")?;
        }
        if let Some(code) = &self.code {
            if self.status.is_some() {
                f.write_str(" ")?;
            }
            write!(f, "{code}")?;
        }
        if !self.message.is_empty() {
            if self.status.is_some() || self.code.is_some() {
                f.write_str(": ")?;
            }
            f.write_str(&self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input was rejected before any API call: `field` broke `rule`.
    #[error("invalid input `{field}`: {rule}")]
    InvalidInput {
        /// The field (or resource address and field) that is wrong.
        field: String,
        /// The rule it broke, in words a user can act on.
        rule: String,
    },
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(ApiErrorDetails),
    /// The object exists already or is in a conflicting state.
    #[error("conflict: {0}")]
    Conflict(ApiErrorDetails),
    /// A conditional request failed (ETag / `If-Match` mismatch): someone else changed it.
    #[error("precondition failed (the object was changed concurrently): {0}")]
    PreconditionFailed(ApiErrorDetails),
    /// The provider throttled us; retry after the given delay if known.
    #[error("throttled{}: {details}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Throttled {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
        /// What the provider said.
        details: ApiErrorDetails,
    },
    /// Credentials are missing, invalid or expired.
    #[error("unauthenticated: {0}")]
    Unauthenticated(ApiErrorDetails),
    /// Credentials are valid but lack permission.
    #[error("permission denied: {0}")]
    PermissionDenied(ApiErrorDetails),
    /// Any other failure reported by a provider API.
    #[error("provider error: {0}")]
    Provider(ApiErrorDetails),
    /// A long-running operation or wait did not finish in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// The state is locked by someone else.
    #[error("state is locked by {0}")]
    Locked(Box<LockInfo>),
    /// A transport failure after the request may have reached the server: a non-idempotent
    /// call must not be blindly retried.
    #[error("request may have been sent, outcome unknown: {0}")]
    MaybeSent(String),
    /// A transport failure (connection refused, DNS, TLS) before the request was sent.
    #[error("transport error: {0}")]
    Transport(String),
    /// The state document could not be read or written safely.
    #[error("state error: {0}")]
    State(String),
    /// The stack definition is wrong (cycle, dangling reference, duplicate address).
    #[error("stack error: {0}")]
    Stack(String),
    /// The plan no longer matches the state or the stack; plan again.
    #[error("stale plan: {0}")]
    StalePlan(String),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Configuration (credentials file, environment, endpoint) is missing or wrong.
    #[error("configuration error: {0}")]
    Config(String),
    /// Anything else, with its source kept.
    #[error("{context}: {source}")]
    Other {
        /// What we were doing.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::InvalidInput { field: field.into(), rule: rule.into() }
    }

    /// Shorthand for [`Error::Other`].
    pub fn other(context: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Other { context: context.into(), source: source.into() }
    }

    /// The provider's API details, if this error came from an API response.
    pub fn api_details(&self) -> Option<&ApiErrorDetails> {
        match self {
            Error::NotFound(d)
            | Error::Conflict(d)
            | Error::PreconditionFailed(d)
            | Error::Unauthenticated(d)
            | Error::PermissionDenied(d)
            | Error::Provider(d) => Some(d),
            Error::Throttled { details, .. } => Some(details),
            _ => None,
        }
    }

    /// The provider's error code, if any.
    pub fn code(&self) -> Option<&str> {
        self.api_details().and_then(|d| d.code.as_deref())
    }

    /// The provider's request id, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.api_details().and_then(|d| d.request_id.as_deref())
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// Whether a retry of the same request may succeed (throttling, 5xx, transport failures
    /// before sending). `MaybeSent` is retryable only for idempotent requests, which the
    /// caller decides.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Throttled { .. } | Error::Transport(_) => true,
            // 501 Not Implemented and 505 HTTP Version Not Supported answer the same way again.
            Error::Provider(d) => {
                matches!(d.status, Some(500..=599) | Some(408)) && !matches!(d.status, Some(501 | 505))
            }
            _ => false,
        }
    }

    /// The delay the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Maps an HTTP status and the provider's details onto the semantic error (the one place
    /// status codes are interpreted).
    pub fn from_status(status: u16, details: ApiErrorDetails, retry_after: Option<Duration>) -> Self {
        let details = ApiErrorDetails { status: Some(status), ..details };
        match status {
            401 => Error::Unauthenticated(details),
            403 => Error::PermissionDenied(details),
            404 | 410 => Error::NotFound(details),
            409 => Error::Conflict(details),
            412 => Error::PreconditionFailed(details),
            429 => Error::Throttled { retry_after, details },
            // A server error that says when to come back is a request to back off: keep the delay.
            500..=599 if retry_after.is_some() && !matches!(status, 501 | 505) => {
                Error::Throttled { retry_after, details }
            }
            _ => Error::Provider(details),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_is_semantic() {
        let d = ApiErrorDetails { code: Some("X".into()), message: "m".into(), ..Default::default() };
        assert!(matches!(Error::from_status(404, d.clone(), None), Error::NotFound(_)));
        assert!(matches!(Error::from_status(412, d.clone(), None), Error::PreconditionFailed(_)));
        let t = Error::from_status(429, d.clone(), Some(Duration::from_secs(3)));
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert!(t.is_transient());
        assert!(Error::from_status(502, d.clone(), None).is_transient());
        let t = Error::from_status(500, d.clone(), Some(Duration::from_secs(7)));
        assert_eq!(t.retry_after(), Some(Duration::from_secs(7)), "Retry-After kept on any 5xx");
        assert_eq!(t.api_details().and_then(|d| d.status), Some(500));
        assert!(!Error::from_status(501, d.clone(), None).is_transient());
        assert!(!Error::from_status(501, d.clone(), Some(Duration::from_secs(1))).is_transient());
        assert!(!Error::from_status(400, d.clone(), None).is_transient());
        assert_eq!(Error::from_status(400, d, None).code(), Some("X"));
    }

    #[test]
    fn display_carries_code_message_and_request_id() {
        let d = ApiErrorDetails {
            status: Some(409),
            code: Some("Conflict".into()),
            message: "exists".into(),
            request_id: Some("abc".into()),
        };
        assert_eq!(d.to_string(), "HTTP 409 Conflict: exists (request id abc)");
    }
}
