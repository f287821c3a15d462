//! Where state lives: the [`StateBackend`] trait and the backends core ships (a local file and
//! an in-memory store). Remote backends (Azure Blob, R2/S3) live in their provider crates and
//! implement the same trait.
//!
//! A backend stores opaque bytes with a version (an ETag, a generation) and offers a lock. The
//! engine serialises state itself, so every backend gets the same document, the same secret
//! handling and the same version checks.

mod local;
mod memory;

pub use local::LocalBackend;
pub use memory::MemoryBackend;

use async_trait::async_trait;

use crate::error::Error;
use crate::lock::LockInfo;

/// State bytes and the version they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    /// The serialised state document.
    pub bytes: Vec<u8>,
    /// The backend's version of these bytes (ETag, generation, content hash).
    pub version: String,
}

/// Stores state and locks it.
#[async_trait]
pub trait StateBackend: Send + Sync + std::fmt::Debug {
    /// Where the state is (`file:///…`, `azblob://…`, `r2://…`), for messages.
    fn location(&self) -> String;

    /// Reads the state, `None` when none was ever written.
    async fn read(&self) -> Result<Option<StoredState>, Error>;

    /// Writes the state if the stored version is still `expected` (`None`: only if no state
    /// exists yet). Returns the new version. A mismatch is [`Error::PreconditionFailed`]: a
    /// concurrent writer changed it, and nothing is overwritten.
    async fn write(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, Error>;

    /// Takes the lock, or fails with [`Error::Locked`] naming the holder. Backends with
    /// leases keep renewing them until `unlock`, so a crashed holder's lock expires.
    async fn lock(&self, info: &LockInfo) -> Result<(), Error>;

    /// Releases a lock this process holds (`info.id` must match).
    async fn unlock(&self, info: &LockInfo) -> Result<(), Error>;

    /// Who holds the lock now, if anyone.
    async fn lock_holder(&self) -> Result<Option<LockInfo>, Error>;

    /// Breaks the lock whoever holds it (an operator's explicit decision after a crash).
    /// Returns the info of the lock that was broken.
    async fn force_unlock(&self) -> Result<Option<LockInfo>, Error>;
}
