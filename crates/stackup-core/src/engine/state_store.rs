//! The state as one run sees it: an in-memory document, persisted through the backend with
//! group commit (concurrent nodes that ask for durability share one write), each write
//! conditional on the version read so a concurrent writer is never clobbered.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::backend::StateBackend;
use crate::error::Error;
use crate::state::{StateDoc, StateKey};

struct Doc {
    doc: StateDoc,
    generation: u64,
}

struct Writer {
    version: Option<String>,
    written: u64,
}

/// A state document being worked on, and where it is saved.
pub(crate) struct StateStore {
    backend: Arc<dyn StateBackend>,
    key: Option<StateKey>,
    doc: Mutex<Doc>,
    secrets: Mutex<BTreeSet<String>>,
    writer: tokio::sync::Mutex<Writer>,
}

impl StateStore {
    /// Loads state (or starts an empty one for `stack`).
    pub async fn load(backend: Arc<dyn StateBackend>, key: Option<StateKey>, stack: &str) -> Result<Self, Error> {
        let (doc, version) = match backend.read().await? {
            Some(stored) => (StateDoc::parse(&stored.bytes, &backend.location(), key.as_ref())?, Some(stored.version)),
            None => (StateDoc::new(stack), None),
        };
        Ok(StateStore {
            backend,
            key,
            secrets: Mutex::new(BTreeSet::new()),
            doc: Mutex::new(Doc { doc, generation: 0 }),
            writer: tokio::sync::Mutex::new(Writer { version, written: 0 }),
        })
    }

    /// True when the backend had no state.
    pub async fn is_new(&self) -> bool {
        self.writer.lock().await.version.is_none()
    }

    /// A copy of the document.
    pub fn snapshot(&self) -> StateDoc {
        self.lock().doc.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Doc> {
        self.doc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the document in memory.
    pub fn update<R>(&self, f: impl FnOnce(&mut StateDoc) -> R) -> R {
        let mut d = self.lock();
        d.generation += 1;
        f(&mut d.doc)
    }

    /// Remembers the secrets in a spec or outputs, so outputs derived from them are stored as
    /// secrets too.
    pub fn note_secrets(&self, v: &serde_json::Value) {
        let mut s = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        crate::state::collect_secret_strings(v, &mut s);
    }

    fn known_secrets(&self) -> BTreeSet<String> {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes every change so far durable. Returns once a write that includes them succeeded.
    pub async fn persist(&self) -> Result<(), Error> {
        let wanted = self.lock().generation;
        let mut w = self.writer.lock().await;
        if w.written >= wanted {
            return Ok(());
        }
        let (bytes, generation) = {
            let mut d = self.lock();
            d.doc.serial += 1;
            (d.doc.to_bytes_scrubbed(self.key.as_ref(), &self.known_secrets())?, d.generation)
        };
        let version = self.backend.write(&bytes, w.version.as_deref()).await?;
        w.version = Some(version);
        w.written = generation;
        Ok(())
    }

    /// Writes the document to a local file after the backend failed, so nothing is lost.
    pub fn write_errored_copy(&self) -> Option<std::path::PathBuf> {
        let d = self.lock();
        let bytes = d.doc.to_bytes_scrubbed(self.key.as_ref(), &self.known_secrets()).ok()?;
        let path = std::path::PathBuf::from(format!("errored-{}.stackup.json", d.doc.stack));
        std::fs::write(&path, bytes).ok().map(|_| path)
    }
}
