//! The crate's error type, [`OciError`], and its conversion into the semantic
//! [`stackup_core::Error`].

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in this crate before or around an OCI API call. API responses
/// themselves are mapped by the shared HTTP layer into [`stackup_core::Error`] with the OCI
/// `code`, `message` and `opc-request-id` kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The config file is missing, unreadable or wrong.
    #[error("OCI config file {}: profile [{profile}]: {message}", file.display())]
    Config {
        /// The file read.
        file: PathBuf,
        /// The profile selected.
        profile: String,
        /// What is wrong (names the key).
        message: String,
    },
    /// The API signing key cannot be used.
    #[error("OCI API signing key {source_name}: {message}")]
    Key {
        /// Where the key came from (file path or "inline key").
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// The key's fingerprint is not the one configured: OCI would answer 401 NotAuthenticated.
    #[error(
        "the API key's fingerprint is {actual}, but the configuration says {configured}: OCI would reject every \
         request with 401 NotAuthenticated (this mismatch is the classic cause); point key_file at the key you \
         uploaded, or copy its fingerprint from the console"
    )]
    FingerprintMismatch {
        /// The fingerprint configured.
        configured: String,
        /// The fingerprint of the key file.
        actual: String,
    },
    /// Signing a request failed.
    #[error("signing the request failed: {0}")]
    Signing(String),
    /// A1 capacity was not found before the deadline.
    #[error(
        "no host capacity for {shape} after {attempts} launch attempts over {elapsed:?} (deadline {deadline:?}); \
         last answer: {last}"
    )]
    OutOfCapacity {
        /// The shape requested.
        shape: String,
        /// Launch attempts made.
        attempts: u32,
        /// Time spent hunting.
        elapsed: Duration,
        /// The configured deadline.
        deadline: Duration,
        /// The last error seen.
        last: String,
    },
    /// The request would leave the Always Free allowance.
    #[error("{field} would leave the Always Free allowance: {message}")]
    FreeTier {
        /// The spec field at fault.
        field: String,
        /// What would be billed and why.
        message: String,
    },
}

impl From<OciError> for stackup_core::Error {
    fn from(e: OciError) -> Self {
        match e {
            OciError::FreeTier { field, message } => stackup_core::Error::InvalidInput {
                field,
                rule: format!(
                    "would leave the Always Free allowance: {message} (set `allow_billing: true` to accept the charge)"
                ),
            },
            e @ OciError::OutOfCapacity { .. } => {
                let elapsed = match &e {
                    OciError::OutOfCapacity { elapsed, .. } => *elapsed,
                    _ => Duration::ZERO,
                };
                stackup_core::Error::Timeout { what: e.to_string(), after: elapsed }
            }
            other => stackup_core::Error::Config(other.to_string()),
        }
    }
}
