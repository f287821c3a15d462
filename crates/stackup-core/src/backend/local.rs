//! State in a local file: atomic writes (temp file, fsync, rename), mode 0600, and a lock file
//! that other processes see, with the holder's name, pid and start time.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{StateBackend, StoredState};
use crate::error::Error;
use crate::lock::{LockInfo, hostname};

/// A state file on local disk, with `<file>.lock` beside it.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    path: PathBuf,
}

impl LocalBackend {
    /// State at `path` (created on first write; its directory must exist or be creatable).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalBackend { path: path.into() }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    fn read_lock(&self) -> Result<Option<LockInfo>, Error> {
        match std::fs::read(self.lock_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::State(format!(
                    "lock file {} is unreadable ({e}); if no run is active, remove it or force-unlock",
                    self.lock_path().display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading lock file", &self.lock_path(), e)),
        }
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::State(format!("{what} {}: {e}", path.display()))
}

/// The version of a local state file: the SHA-256 of its bytes.
fn version_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `info` was written by a process on this host that no longer runs.
fn holder_is_dead(info: &LockInfo) -> bool {
    info.host == hostname() && cfg!(target_os = "linux") && !Path::new(&format!("/proc/{}", info.pid)).exists()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[async_trait]
impl StateBackend for LocalBackend {
    fn location(&self) -> String {
        format!("file://{}", self.path.display())
    }

    async fn read(&self) -> Result<Option<StoredState>, Error> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => Ok(Some(StoredState { version: version_of(&bytes), bytes })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading state", &self.path, e)),
        }
    }

    async fn write(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, Error> {
        let path = self.path.clone();
        let bytes = bytes.to_vec();
        let expected = expected.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let current = match std::fs::read(&path) {
                Ok(b) => Some(version_of(&b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err("reading state", &path, e)),
            };
            if current != expected {
                return Err(Error::PreconditionFailed(crate::error::ApiErrorDetails {
                    message: format!(
                        "state file {} changed since it was read (expected version {:?}, found {:?})",
                        path.display(),
                        expected,
                        current
                    ),
                    ..Default::default()
                }));
            }
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(|e| io_err("creating state directory", dir, e))?;
            let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
            write_private(&tmp, &bytes).map_err(|e| io_err("writing state", &tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io_err("replacing state", &path, e)
            })?;
            // Make the rename itself durable.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(version_of(&bytes))
        })
        .await
        .map_err(|e| Error::other("state writer task", e))?
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), Error> {
        let lock_path = self.lock_path();
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err("creating state directory", dir, e))?;
        }
        let body = serde_json::to_vec_pretty(info).map_err(|e| Error::other("encoding lock", e))?;
        for _ in 0..2 {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(&lock_path) {
                Ok(mut f) => {
                    f.write_all(&body).and_then(|_| f.sync_all()).map_err(|e| io_err("writing lock", &lock_path, e))?;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = self.read_lock()?;
                    match holder {
                        Some(h) if holder_is_dead(&h) => {
                            tracing::warn!(holder = %h, "breaking stale lock: its process is gone");
                            let _ = std::fs::remove_file(&lock_path);
                            continue;
                        }
                        Some(h) => return Err(Error::Locked(Box::new(h))),
                        None => continue,
                    }
                }
                Err(e) => return Err(io_err("creating lock", &lock_path, e)),
            }
        }
        Err(Error::State(format!("could not take lock {}", lock_path.display())))
    }

    async fn unlock(&self, info: &LockInfo) -> Result<(), Error> {
        match self.read_lock()? {
            Some(h) if h.id == info.id => {
                std::fs::remove_file(self.lock_path()).map_err(|e| io_err("removing lock", &self.lock_path(), e))
            }
            Some(h) => Err(Error::Locked(Box::new(h))),
            None => Ok(()),
        }
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, Error> {
        self.read_lock()
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, Error> {
        let holder = self.read_lock().unwrap_or(None);
        match std::fs::remove_file(self.lock_path()) {
            Ok(()) => Ok(holder),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("removing lock", &self.lock_path(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn atomic_private_writes_with_version_checks() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s/state.json"));
        assert!(b.read().await.unwrap().is_none());
        let v1 = b.write(b"one", None).await.unwrap();
        assert!(matches!(b.write(b"x", None).await, Err(Error::PreconditionFailed(_))));
        let v2 = b.write(b"two", Some(&v1)).await.unwrap();
        assert!(matches!(b.write(b"x", Some(&v1)).await, Err(Error::PreconditionFailed(_))));
        let got = b.read().await.unwrap().unwrap();
        assert_eq!((got.bytes.as_slice(), got.version.as_str()), (&b"two"[..], v2.as_str()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(b.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("s")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }

    #[tokio::test]
    async fn lock_names_holder_and_can_be_forced() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("state.json"));
        let me = LockInfo::for_operation("apply");
        b.lock(&me).await.unwrap();
        let other = LockInfo::for_operation("destroy");
        match b.lock(&other).await {
            Err(Error::Locked(h)) => assert_eq!(h.id, me.id),
            r => panic!("{r:?}"),
        }
        assert!(b.unlock(&other).await.is_err(), "only the holder unlocks");
        assert_eq!(b.force_unlock().await.unwrap().unwrap().id, me.id);
        b.lock(&other).await.unwrap();
        b.unlock(&other).await.unwrap();
        assert!(b.lock_holder().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_dead_holders_lock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("state.json"));
        let mut ghost = LockInfo::for_operation("apply");
        ghost.pid = u32::MAX - 7; // no such process
        std::fs::write(b.lock_path(), serde_json::to_vec(&ghost).unwrap()).unwrap();
        let me = LockInfo::for_operation("apply");
        b.lock(&me).await.unwrap();
        assert_eq!(b.lock_holder().await.unwrap().unwrap().id, me.id);
    }
}
