//! The provisioners, one file per resource kind.

use std::sync::Arc;

use stackup_core::{ApiErrorDetails, Error, Input};
use time::OffsetDateTime;

pub mod acl_policy;
pub mod auth_key;
pub mod device;
pub mod device_authorization;
pub mod device_key_expiry;
pub mod device_tags;
pub mod dns;

/// "Now", injectable for tests.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub(crate) fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// Sorted and deduplicated, for order-insensitive comparisons (tags).
pub(crate) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// A device id, when known, must be non-empty and contain no `/`.
pub(crate) fn known_device_id(id: &Input<String>) -> Result<(), Error> {
    if let Some(v) = id.known()
        && (v.is_empty() || v.contains(['/', '?', '#']) || v.chars().any(char::is_whitespace))
    {
        return Err(Error::invalid("device_id", format!("`{v}` is not a device id (a nodeId such as nTESTJ30)")));
    }
    Ok(())
}

/// The error for a device that no longer exists.
pub(crate) fn device_gone(id: &str) -> Error {
    Error::NotFound(ApiErrorDetails { message: format!("device {id} does not exist"), ..Default::default() })
}
