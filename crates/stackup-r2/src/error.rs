//! The crate's error type and its conversion into [`stackup_core::Error`].
//!
//! S3 failures keep the operation name, HTTP status, S3 error code, message and request id
//! (`x-amz-request-id`, or `cf-ray` on R2), so `From<R2Error> for stackup_core::Error` maps them
//! onto the semantic error with [`stackup_core::Error::from_status`].

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use stackup_core::{ApiErrorDetails, Error};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum R2Error {
    /// Input was rejected before any API call.
    #[error("invalid input `{field}`: {rule}")]
    InvalidInput {
        /// The field (or environment variable) that is wrong.
        field: String,
        /// The rule it broke.
        rule: String,
    },
    /// Configuration (credentials, endpoint) is missing or wrong.
    #[error("configuration error: {0}")]
    Config(String),
    /// An S3 API call answered with an error.
    #[error("S3 {operation} failed: {details}")]
    S3 {
        /// The S3 operation (`PutObject`, `UploadPart`, …).
        operation: &'static str,
        /// Status, code, message and request id.
        details: ApiErrorDetails,
    },
    /// An S3 call failed before an answer arrived.
    #[error("S3 {operation}: {message}")]
    Transport {
        /// The S3 operation.
        operation: &'static str,
        /// What failed.
        message: String,
        /// Whether the request may have reached the server.
        maybe_sent: bool,
    },
    /// Reading a local file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Any core error (Cloudflare REST calls go through core's HTTP layer).
    #[error(transparent)]
    Core(#[from] Error),
}

impl R2Error {
    /// Shorthand for [`R2Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        R2Error::InvalidInput { field: field.into(), rule: rule.into() }
    }

    /// The HTTP status of an S3 failure, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            R2Error::S3 { details, .. } => details.status,
            R2Error::Core(e) => e.api_details().and_then(|d| d.status),
            _ => None,
        }
    }

    /// The S3 error code (`NoSuchKey`, `PreconditionFailed`, …), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            R2Error::S3 { details, .. } => details.code.as_deref(),
            R2Error::Core(e) => e.code(),
            _ => None,
        }
    }

    /// True when the object or bucket does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
            || matches!(self.code(), Some("NoSuchKey" | "NoSuchBucket" | "NotFound" | "NoSuchUpload"))
    }

    /// True when a conditional request failed (`If-Match` / `If-None-Match`).
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412) || self.code() == Some("PreconditionFailed")
    }
}

impl From<R2Error> for Error {
    fn from(e: R2Error) -> Self {
        match e {
            R2Error::InvalidInput { field, rule } => Error::InvalidInput { field, rule },
            R2Error::Config(m) => Error::Config(m),
            R2Error::S3 { operation, details } => {
                let details = ApiErrorDetails { message: format!("{operation}: {}", details.message), ..details };
                match details.status {
                    Some(status) => Error::from_status(status, details, None),
                    None => Error::Provider(details),
                }
            }
            R2Error::Transport { operation, message, maybe_sent: true } => {
                Error::MaybeSent(format!("S3 {operation}: {message}"))
            }
            R2Error::Transport { operation, message, maybe_sent: false } => {
                Error::Transport(format!("S3 {operation}: {message}"))
            }
            e @ R2Error::Io { .. } => Error::other("local file", e),
            R2Error::Core(e) => e,
        }
    }
}

/// Converts an SDK error, keeping status, code, message and request id. Never includes the URL
/// or headers (presigned queries and credentials stay out of errors).
pub(crate) fn s3_error<E>(operation: &'static str, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> R2Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let raw = err.raw_response();
            let status = raw.map(|r| r.status().as_u16());
            let request_id = raw.and_then(|r| {
                ["x-amz-request-id", "cf-ray"].iter().find_map(|h| r.headers().get(*h).map(str::to_owned))
            });
            let code = err.code().map(str::to_owned);
            let message = err.message().map(str::to_owned).or_else(|| code.clone()).unwrap_or_else(|| match status {
                Some(404) => "not found".to_owned(),
                Some(412) => "precondition failed".to_owned(),
                Some(s) => format!("HTTP {s}"),
                None => "error response".to_owned(),
            });
            let code = code.or_else(|| match status {
                Some(404) => Some("NotFound".to_owned()),
                Some(412) => Some("PreconditionFailed".to_owned()),
                _ => None,
            });
            R2Error::S3 { operation, details: ApiErrorDetails { status, code, message, request_id } }
        }
        SdkError::DispatchFailure(d) => {
            let message = error_chain(&err);
            let connect = d.as_connector_error().is_some_and(|c| c.is_io())
                && (message.contains("onnect") || message.contains("refused"));
            R2Error::Transport { operation, message, maybe_sent: !connect }
        }
        SdkError::TimeoutError(_) => R2Error::Transport { operation, message: error_chain(&err), maybe_sent: true },
        _ => R2Error::Transport { operation, message: error_chain(&err), maybe_sent: false },
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
