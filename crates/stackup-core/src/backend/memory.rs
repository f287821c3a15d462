//! State in memory: for tests, benchmarks, and plans that must not touch disk.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{StateBackend, StoredState};
use crate::error::{ApiErrorDetails, Error};
use crate::lock::LockInfo;

#[derive(Debug, Default)]
struct Inner {
    state: Option<StoredState>,
    generation: u64,
    lock: Option<LockInfo>,
    writes: u64,
}

/// An in-memory backend. Clones share the same store, so two "processes" in one test can
/// contend for it.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend(Arc<Mutex<Inner>>);

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    /// The stored bytes, if any.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        self.inner().state.as_ref().map(|s| s.bytes.clone())
    }

    /// How many writes succeeded.
    pub fn writes(&self) -> u64 {
        self.inner().writes
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl StateBackend for MemoryBackend {
    fn location(&self) -> String {
        "memory://".into()
    }

    async fn read(&self) -> Result<Option<StoredState>, Error> {
        Ok(self.inner().state.clone())
    }

    async fn write(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, Error> {
        let mut inner = self.inner();
        let current = inner.state.as_ref().map(|s| s.version.as_str());
        if current != expected {
            return Err(Error::PreconditionFailed(ApiErrorDetails {
                message: format!("state version is {current:?}, expected {expected:?}"),
                ..Default::default()
            }));
        }
        inner.generation += 1;
        inner.writes += 1;
        let version = inner.generation.to_string();
        inner.state = Some(StoredState { bytes: bytes.to_vec(), version: version.clone() });
        Ok(version)
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), Error> {
        let mut inner = self.inner();
        match &inner.lock {
            Some(h) => Err(Error::Locked(Box::new(h.clone()))),
            None => {
                inner.lock = Some(info.clone());
                Ok(())
            }
        }
    }

    async fn unlock(&self, info: &LockInfo) -> Result<(), Error> {
        let mut inner = self.inner();
        match &inner.lock {
            Some(h) if h.id != info.id => Err(Error::Locked(Box::new(h.clone()))),
            _ => {
                inner.lock = None;
                Ok(())
            }
        }
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, Error> {
        Ok(self.inner().lock.clone())
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, Error> {
        Ok(self.inner().lock.take())
    }
}
