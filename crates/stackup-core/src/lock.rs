//! Who holds a state lock, for how long, and why.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Recorded with every lock so a second process can say who holds it and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// A random id for this acquisition; unlock checks it.
    pub id: String,
    /// `user@host`.
    pub who: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// What the holder is doing (`apply`, `destroy`, `refresh`).
    pub operation: String,
    /// When the lock was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

impl LockInfo {
    /// Lock info for this process doing `operation`.
    pub fn for_operation(operation: &str) -> Self {
        let host = hostname();
        let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
        LockInfo {
            id: random_id(),
            who: format!("{user}@{host}"),
            host,
            pid: std::process::id(),
            operation: operation.to_owned(),
            created: OffsetDateTime::now_utc(),
        }
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.created.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        write!(f, "{} (pid {}, {}, since {}, lock id {})", self.who, self.pid, self.operation, since, self.id)
    }
}

/// The machine's host name (from `/proc/sys/kernel/hostname`, `HOSTNAME`, or `unknown`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// 16 random hex characters.
pub fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
