//! The provisioners, one file per resource kind.

use std::sync::Arc;

use time::OffsetDateTime;

pub mod auth_key;

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
