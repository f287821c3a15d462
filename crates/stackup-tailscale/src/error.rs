//! The crate's error type, and how Tailscale's error bodies are read.
//!
//! Most failures are API failures, which [`stackup_core::http::HttpClient`] already maps onto the
//! semantic [`stackup_core::Error`] (status, message, request id kept). [`TailscaleError`] adds
//! the failures that only this provider knows about (a device that joined under a suffixed
//! MagicDNS name, an ACL that failed the API's validation, a malformed response) and converts
//! into [`stackup_core::Error`] so callers match on one type.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use stackup_core::{ApiErrorDetails, Error};

/// What can go wrong in the Tailscale provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailscaleError {
    /// An API call failed (already mapped to a semantic error).
    #[error(transparent)]
    Api(#[from] Error),
    /// The OAuth token exchange was refused.
    #[error("OAuth token exchange failed: {0}")]
    OAuth(ApiErrorDetails),
    /// The API answered 2xx with a body we could not read.
    #[error("unexpected response from {operation}: {reason}")]
    UnexpectedResponse {
        /// The operation (`GET /device/{id}`).
        operation: String,
        /// What was wrong with the body.
        reason: String,
    },
    /// The device joined, but Tailscale gave it a suffixed MagicDNS name (`egograph-prod-1`)
    /// because other devices already hold the name, and the spec did not allow that.
    #[error(
        "device `{hostname}` ({node_id}) joined as `{got}`, not `{hostname}`, because the name is held by {}; \
         remove the stale device(s), or set `on_name_conflict` to `AcceptSuffix` or `ReclaimName`",
        holders.join(", ")
    )]
    NameSuffixed {
        /// The hostname we waited for.
        hostname: String,
        /// The joined device's node id.
        node_id: String,
        /// The MagicDNS label it got (`egograph-prod-1`).
        got: String,
        /// The devices holding the unsuffixed name, as `name (nodeId, online|offline)`.
        holders: Vec<String>,
    },
    /// `ReclaimName` would have to remove a device that is still connected.
    #[error(
        "cannot reclaim the name `{hostname}`: device {node_id} holding it is connected to the tailnet; \
         stackup removes only offline devices"
    )]
    NameHeldByOnlineDevice {
        /// The name.
        hostname: String,
        /// The connected device.
        node_id: String,
    },
    /// The policy file failed the API's validation or its tests.
    #[error("policy file rejected by Tailscale: {message}{}", details_suffix(details))]
    AclInvalid {
        /// Tailscale's message (`test(s) failed`).
        message: String,
        /// Per-user errors (`user1@example.com: address "2.2.2.2:22": want: Drop, got: Accept`).
        details: Vec<String>,
    },
    /// The HuJSON text is not valid HuJSON.
    #[error("policy is not valid HuJSON: {0}")]
    HuJson(String),
}

fn details_suffix(details: &[String]) -> String {
    if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) }
}

impl From<TailscaleError> for Error {
    fn from(e: TailscaleError) -> Self {
        match e {
            TailscaleError::Api(e) => e,
            TailscaleError::OAuth(d) => match d.status {
                Some(status) if status >= 500 || status == 429 => Error::from_status(status, d, None),
                _ => Error::Unauthenticated(d),
            },
            e @ TailscaleError::UnexpectedResponse { .. } => Error::other("tailscale", e),
            e @ (TailscaleError::NameSuffixed { .. } | TailscaleError::NameHeldByOnlineDevice { .. }) => {
                Error::Conflict(ApiErrorDetails { message: e.to_string(), ..Default::default() })
            }
            e @ TailscaleError::AclInvalid { .. } => Error::invalid("policy", e.to_string()),
            TailscaleError::HuJson(m) => Error::invalid("policy", format!("not valid HuJSON: {m}")),
        }
    }
}

/// Reads Tailscale's error bodies:
///
/// * the API's `{"message": "…", "data": [{"user": "…", "errors": ["…"]}]}`;
/// * the OAuth token endpoint's `{"error": "invalid_client", "error_description": "…"}`;
/// * anything else: the start of the body text, or the status reason.
///
/// The body never echoes credentials, but only the first 512 bytes of an unknown body are kept.
pub fn parse_error(status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> ApiErrorDetails {
    let mut d = ApiErrorDetails { status: Some(status.as_u16()), ..Default::default() };
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            d.message = m.to_owned();
            let details = data_errors(&v);
            if !details.is_empty() {
                d.message = format!("{} ({})", d.message, details.join("; "));
            }
        } else if let Some(code) = v.get("error").and_then(|e| e.as_str()) {
            d.code = Some(code.to_owned());
            d.message = v.get("error_description").and_then(|m| m.as_str()).unwrap_or(code).to_owned();
        }
    }
    if d.message.is_empty() {
        d.message = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_owned();
    }
    if d.message.is_empty() {
        d.message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    d
}

/// The `data[].errors` of a Tailscale error or validation body, as `user: error` lines.
pub(crate) fn data_errors(v: &serde_json::Value) -> Vec<String> {
    let mut out = vec![];
    if let Some(items) = v.get("data").and_then(|d| d.as_array()) {
        for item in items {
            let user = item.get("user").and_then(|u| u.as_str()).unwrap_or("");
            for err in item.get("errors").and_then(|e| e.as_array()).into_iter().flatten() {
                let text = err.as_str().map(str::to_owned).unwrap_or_else(|| err.to_string());
                out.push(if user.is_empty() { text } else { format!("{user}: {text}") });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_and_acl_test_errors() {
        let body = br#"{"message":"test(s) failed","data":[{"user":"a@example.com","errors":["address \"2.2.2.2:22\": want: Drop, got: Accept"]}]}"#;
        let d = parse_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(d.status, Some(400));
        assert!(d.message.starts_with("test(s) failed (a@example.com: address"), "{}", d.message);
    }

    #[test]
    fn reads_oauth_errors_and_plain_bodies() {
        let d = parse_error(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            br#"{"error":"invalid_client","error_description":"bad client"}"#,
        );
        assert_eq!(d.code.as_deref(), Some("invalid_client"));
        assert_eq!(d.message, "bad client");
        let d = parse_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"");
        assert_eq!(d.message, "Bad Gateway");
        let d = parse_error(
            StatusCode::PRECONDITION_FAILED,
            &HeaderMap::new(),
            br#"{"message":"precondition failed, invalid old hash"}"#,
        );
        assert_eq!(d.message, "precondition failed, invalid old hash");
    }

    #[test]
    fn converts_to_semantic_errors() {
        let e: Error = TailscaleError::NameSuffixed {
            hostname: "egograph-prod".into(),
            node_id: "n2".into(),
            got: "egograph-prod-1".into(),
            holders: vec!["egograph-prod (n1, offline)".into()],
        }
        .into();
        assert!(matches!(e, Error::Conflict(_)));
        assert!(e.to_string().contains("egograph-prod-1") && e.to_string().contains("ReclaimName"));
        let e: Error =
            TailscaleError::AclInvalid { message: "test(s) failed".into(), details: vec!["x".into()] }.into();
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "policy"));
        let e: Error = TailscaleError::OAuth(ApiErrorDetails { status: Some(401), ..Default::default() }).into();
        assert!(matches!(e, Error::Unauthenticated(_)));
        let e: Error = TailscaleError::OAuth(ApiErrorDetails { status: Some(503), ..Default::default() }).into();
        assert!(e.is_transient());
    }
}
