//! The crate's error type, [`AzureError`], and its conversion into the semantic
//! [`stackup_core::Error`].
//!
//! Every variant keeps what Azure said (status, error code, message, `x-ms-request-id`), so an
//! operator can quote the request id to Azure support. Nothing here ever holds a token, key or
//! SAS signature.

use std::time::Duration;

use stackup_core::{ApiErrorDetails, Error};

/// A failure talking to Azure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AzureError {
    /// ARM (or a data-plane service) answered with a non-success status.
    #[error("Azure returned {details}")]
    Api {
        /// Status, ARM error code and message, request id.
        details: ApiErrorDetails,
        /// The delay Azure asked for (`Retry-After`, `x-ms-retry-after-ms`), if any.
        retry_after: Option<Duration>,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("Azure operation {operation} ended {status}: {details}")]
    OperationFailed {
        /// What was being done (`PUT …/storageAccounts/x`).
        operation: String,
        /// The terminal status (`Failed`, `Canceled`).
        status: String,
        /// ARM's error code and message, and the request id of the call that started it.
        details: ApiErrorDetails,
    },
    /// A long-running operation did not finish before the deadline.
    #[error("timed out after {after:?} waiting for {operation}")]
    OperationTimeout {
        /// What was being waited for.
        operation: String,
        /// How long we waited.
        after: Duration,
    },
    /// The connection failed before the request was sent (safe to retry).
    #[error("could not reach Azure: {0}")]
    Connect(String),
    /// The connection failed after the request may have been sent.
    #[error("connection to Azure failed mid-request (outcome unknown): {0}")]
    Io(String),
    /// No credential could produce a token.
    #[error("Azure authentication failed: {0}")]
    Credential(String),
    /// Configuration (subscription, endpoint, cloud) is missing or wrong.
    #[error("Azure configuration error: {0}")]
    Config(String),
    /// A response could not be decoded.
    #[error("unexpected response from Azure for {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The run was cancelled while waiting.
    #[error("cancelled")]
    Cancelled,
}

impl AzureError {
    /// A decode error.
    pub fn decode(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        AzureError::Decode { what: what.into(), reason: reason.to_string() }
    }

    /// Maps an `azure_core` error that is not an HTTP response (transport, credential, other).
    pub fn from_core(e: &azure_core::Error) -> Self {
        use azure_core::error::ErrorKind;
        // `{}` only: the Debug form carries a backtrace, and neither form carries the token.
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::Connection => AzureError::Connect(msg),
            ErrorKind::Io => AzureError::Io(msg),
            ErrorKind::Credential => AzureError::Credential(msg),
            ErrorKind::HttpResponse { status, error_code, raw_response } => {
                let mut details = ApiErrorDetails {
                    status: Some(u16::from(*status)),
                    code: error_code.clone(),
                    message: msg,
                    request_id: None,
                };
                let mut retry_after = None;
                if let Some(raw) = raw_response {
                    let header = |name: &'static str| {
                        raw.headers()
                            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(name))
                            .map(str::to_owned)
                    };
                    details.request_id = header("x-ms-request-id");
                    retry_after = header("retry-after").and_then(|v| stackup_core::retry::parse_retry_after(&v));
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw.body())
                        && let Some(m) = v.pointer("/error/message").and_then(|m| m.as_str())
                    {
                        details.message = m.to_owned();
                    }
                }
                AzureError::Api { details, retry_after }
            }
            _ => AzureError::Config(msg),
        }
    }
}

impl From<AzureError> for Error {
    fn from(e: AzureError) -> Self {
        match e {
            AzureError::Api { details, retry_after } => {
                let status = details.status.unwrap_or(0);
                Error::from_status(status, details, retry_after)
            }
            AzureError::OperationFailed { operation, status, mut details } => {
                details.message = format!("{operation} ended {status}: {}", details.message);
                Error::Provider(details)
            }
            AzureError::OperationTimeout { operation, after } => Error::Timeout { what: operation, after },
            AzureError::Connect(m) => Error::Transport(m),
            AzureError::Io(m) => Error::MaybeSent(m),
            AzureError::Credential(m) => Error::Unauthenticated(ApiErrorDetails { message: m, ..Default::default() }),
            AzureError::Config(m) => Error::Config(m),
            e @ AzureError::Decode { .. } => Error::other("decoding Azure response", e),
            AzureError::Cancelled => Error::Cancelled,
        }
    }
}

/// Shorthand for `Result<T, stackup_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_map_to_semantic_errors_and_keep_details() {
        let details = ApiErrorDetails {
            status: Some(409),
            code: Some("StorageAccountAlreadyTaken".into()),
            message: "taken".into(),
            request_id: Some("rid".into()),
        };
        let e: Error = AzureError::Api { details, retry_after: None }.into();
        assert!(matches!(e, Error::Conflict(_)));
        assert_eq!(e.code(), Some("StorageAccountAlreadyTaken"));
        assert_eq!(e.request_id(), Some("rid"));

        let failed: Error = AzureError::OperationFailed {
            operation: "PUT vm".into(),
            status: "Failed".into(),
            details: ApiErrorDetails {
                code: Some("OSProvisioningTimedOut".into()),
                message: "boom".into(),
                request_id: Some("r2".into()),
                ..Default::default()
            },
        }
        .into();
        assert_eq!(failed.code(), Some("OSProvisioningTimedOut"));
        assert!(failed.to_string().contains("ended Failed: boom"), "{failed}");
        assert!(matches!(Error::from(AzureError::Io("reset".into())), Error::MaybeSent(_)));
        assert!(matches!(Error::from(AzureError::Connect("refused".into())), Error::Transport(_)));
    }
}
