//! The state as one run sees it: an in-memory document, persisted through the backend with
//! group commit (concurrent nodes that ask for durability share one write), each write
//! conditional on the version read so a concurrent writer is never clobbered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::backend::StateBackend;
use crate::error::Error;
use crate::state::{StateDoc, StateKey};

struct Doc {
    doc: StateDoc,
    generation: u64,
    /// Entries changed since the last write (`None`: all of them).
    dirty: Option<BTreeSet<String>>,
}

struct Writer {
    version: Option<String>,
    written: u64,
    /// Encoded entries from earlier writes, so a write re-encodes only what changed.
    cache: BTreeMap<String, Vec<u8>>,
    /// How many known secrets the cache was encoded with (more secrets: re-encode all).
    secrets_seen: usize,
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
            doc: Mutex::new(Doc { doc, generation: 0, dirty: None }),
            writer: tokio::sync::Mutex::new(Writer { version, written: 0, cache: BTreeMap::new(), secrets_seen: 0 }),
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

    /// Changes the document in memory (any part of it).
    pub fn update<R>(&self, f: impl FnOnce(&mut StateDoc) -> R) -> R {
        let mut d = self.lock();
        d.generation += 1;
        d.dirty = None;
        f(&mut d.doc)
    }

    /// Changes the entry of one resource (the closure must touch no other entry).
    pub fn update_resource<R>(&self, address: &str, f: impl FnOnce(&mut StateDoc) -> R) -> R {
        let mut d = self.lock();
        d.generation += 1;
        if let Some(dirty) = d.dirty.as_mut() {
            dirty.insert(address.to_owned());
        }
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
        let secrets = self.known_secrets();
        let (header, changed, generation) = {
            let mut d = self.lock();
            d.doc.serial += 1;
            let all = d.dirty.is_none() || secrets.len() != w.secrets_seen;
            let changed: Vec<(String, Option<crate::state::ResourceState>)> = if all {
                w.cache.clear();
                d.doc.resources.iter().map(|(a, r)| (a.clone(), Some(r.clone()))).collect()
            } else {
                let dirty = d.dirty.as_ref().expect("checked");
                dirty.iter().map(|a| (a.clone(), d.doc.resources.get(a).cloned())).collect()
            };
            d.dirty = Some(BTreeSet::new());
            let header = d.doc.clone_header();
            (header, changed, d.generation)
        };
        for (addr, entry) in changed {
            match entry {
                Some(r) => {
                    w.cache.insert(addr, crate::state::encode_resource(&r, self.key.as_ref(), &secrets)?);
                }
                None => {
                    w.cache.remove(&addr);
                }
            }
        }
        w.secrets_seen = secrets.len();
        let bytes = crate::state::assemble(&header, &w.cache);
        let version = match self.backend.write(&bytes, w.version.as_deref()).await {
            Ok(v) => v,
            Err(e) => {
                // The cache may not match what is stored: re-encode everything next time.
                self.lock().dirty = None;
                return Err(e);
            }
        };
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
