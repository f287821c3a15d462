//! [`R2StateBackend`]: stackup state in an R2 (or any S3-compatible) bucket.
//!
//! * State is one object; its version is the ETag. A write sends `If-Match: <etag>` (or
//!   `If-None-Match: *` for the first write), so a concurrent writer gets
//!   [`Error::PreconditionFailed`] instead of silently overwriting.
//! * The lock is a second object, `<key>.lock`, created with `If-None-Match: *` and holding the
//!   holder's [`LockInfo`] as JSON. A second process gets [`Error::Locked`] naming the holder.
//! * Stale locks: with [`StaleLockPolicy::BreakAfter`] the holder rewrites the lock (with
//!   `If-Match`) every third of that period, and a lock whose object was not rewritten for the
//!   whole period is taken over atomically (`If-Match` on the stale lock's ETag, so two
//!   breakers cannot both win). Every write of the lock object carries a fresh `written` nonce
//!   next to the [`LockInfo`], so each renewal changes the ETag: a takeover based on a read
//!   from before the holder's last renewal fails its `If-Match` instead of breaking a live lock
//!   (with an unchanged body, the ETag, the MD5 of the body, would stay the same). Under
//!   `BreakAfter`, a lock left by a process on this host that no longer runs is taken over the
//!   same way without waiting for the period. [`StaleLockPolicy::Never`] (the default) never
//!   breaks a lock, not even a dead local process's (its pid may be alive in another PID
//!   namespace on a host of the same name): an operator calls [`StateBackend::force_unlock`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use stackup_core::backend::{StateBackend, StoredState};
use stackup_core::lock::{LockInfo, hostname};
use stackup_core::{ApiErrorDetails, Error};

use crate::client::R2Client;
use crate::config::Jurisdiction;
use crate::error::{R2Error, s3_error};
use crate::names::{validate_bucket_name, validate_object_key};

/// When another process's lock may be broken without an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaleLockPolicy {
    /// Never: a crashed holder's lock stays until `force_unlock`.
    #[default]
    Never,
    /// When the lock object has not been renewed for this long (holders renew every third
    /// of it while they run).
    BreakAfter(Duration),
}

struct Held {
    id: String,
    etag: Arc<Mutex<String>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(t) = self.renewer.take() {
            t.abort();
        }
    }
}

/// State and lock objects in one bucket.
pub struct R2StateBackend {
    client: R2Client,
    bucket: String,
    key: String,
    jurisdiction: Jurisdiction,
    policy: StaleLockPolicy,
    held: Mutex<Option<Held>>,
}

impl fmt::Debug for R2StateBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("R2StateBackend")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("jurisdiction", &self.jurisdiction)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The lock object as read.
struct LockObject {
    info: Option<LockInfo>,
    etag: String,
    age: Option<Duration>,
}

impl R2StateBackend {
    /// State at `bucket`/`key` (the lock is `key` + `.lock`). Checked now, no network call.
    pub fn new(client: R2Client, bucket: impl Into<String>, key: impl Into<String>) -> Result<Self, R2Error> {
        let (bucket, key) = (bucket.into(), key.into());
        validate_bucket_name("bucket", &bucket)?;
        validate_object_key("key", &key)?;
        validate_object_key("key", &format!("{key}.lock"))?;
        Ok(R2StateBackend {
            client,
            bucket,
            key,
            jurisdiction: Jurisdiction::Default,
            policy: StaleLockPolicy::Never,
            held: Mutex::new(None),
        })
    }

    /// Uses a jurisdiction bucket.
    pub fn with_jurisdiction(mut self, jurisdiction: Jurisdiction) -> Self {
        self.jurisdiction = jurisdiction;
        self
    }

    /// Sets the stale-lock policy (default [`StaleLockPolicy::Never`]).
    pub fn with_stale_lock_policy(mut self, policy: StaleLockPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The lock object's key.
    pub fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    fn s3(&self) -> Result<&aws_sdk_s3::Client, R2Error> {
        self.client.s3_for(self.jurisdiction)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn read_lock(&self) -> Result<Option<LockObject>, Error> {
        let out = match self.s3()?.get_object().bucket(&self.bucket).key(self.lock_key()).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = s3_error("GetObject", e);
                return if e.is_not_found() { Ok(None) } else { Err(e.into()) };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let age = out.last_modified().and_then(|lm| {
            let modified = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(lm.secs()).ok()?);
            std::time::SystemTime::now().duration_since(modified).ok()
        });
        let bytes = out.body.collect().await.map_err(|e| Error::MaybeSent(format!("reading lock object: {e}")))?;
        let info = serde_json::from_slice::<LockInfo>(&bytes.into_bytes()).ok();
        Ok(Some(LockObject { info, etag, age }))
    }

    /// Writes the lock object: `If-None-Match: *` to take a free lock, or `If-Match` to take
    /// over. Returns the new ETag, or `None` when the write did not happen (condition failed, or
    /// a concurrent conditional write conflicted).
    async fn put_lock(&self, info: &LockInfo, if_match: Option<&str>) -> Result<Option<String>, Error> {
        Ok(match put_lock(self.s3()?, &self.bucket, &self.lock_key(), info, if_match).await? {
            PutLock::Written(etag) => Some(etag),
            PutLock::PreconditionFailed | PutLock::Conflict => None,
        })
    }

    fn is_stale(&self, lock: &LockObject) -> bool {
        let StaleLockPolicy::BreakAfter(after) = self.policy else {
            return false;
        };
        let holder_is_dead = lock.info.as_ref().is_some_and(|info| {
            info.host == hostname()
                && cfg!(target_os = "linux")
                && !std::path::Path::new(&format!("/proc/{}", info.pid)).exists()
        });
        if holder_is_dead {
            return true;
        }
        lock.age.is_some_and(|age| age > after)
    }

    fn hold(&self, info: &LockInfo, etag: String) {
        let etag = Arc::new(Mutex::new(etag));
        let renewer = match self.policy {
            StaleLockPolicy::BreakAfter(after) => {
                let (s3, bucket, key, info, etag) =
                    (self.s3().ok().cloned(), self.bucket.clone(), self.lock_key(), info.clone(), etag.clone());
                s3.map(|s3| {
                    tokio::spawn(async move {
                        let every = (after / 3).max(Duration::from_millis(10));
                        loop {
                            tokio::time::sleep(every).await;
                            let current = etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
                            match put_lock(&s3, &bucket, &key, &info, Some(&current)).await {
                                Ok(PutLock::Written(new)) => *etag.lock().unwrap_or_else(|p| p.into_inner()) = new,
                                Ok(PutLock::PreconditionFailed) => {
                                    tracing::error!(lock = %key, "state lock was broken by another process; stopped renewing");
                                    return;
                                }
                                // A concurrent conditional write (a would-be breaker) collided with
                                // ours: that says nothing about who won. Keep the ETag and try
                                // again; if the lock was taken over, the next If-Match fails with 412.
                                Ok(PutLock::Conflict) => {
                                    tracing::warn!(lock = %key, "renewing state lock collided with another write; retrying")
                                }
                                Err(e) => tracing::warn!(lock = %key, error = %e, "renewing state lock failed; retrying"),
                            }
                        }
                    })
                })
            }
            StaleLockPolicy::Never => None,
        };
        *self.held() = Some(Held { id: info.id.clone(), etag, renewer });
    }

    async fn delete_lock(&self) -> Result<(), Error> {
        match self.s3()?.delete_object().bucket(&self.bucket).key(self.lock_key()).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = s3_error("DeleteObject", e);
                if e.is_not_found() { Ok(()) } else { Err(e.into()) }
            }
        }
    }
}

/// The outcome of a conditional lock write.
enum PutLock {
    /// Written; the new ETag.
    Written(String),
    /// 412: the object is not (or no longer) the one the condition named.
    PreconditionFailed,
    /// 409 `ConditionalRequestConflict`: a concurrent conditional write to the same key; this
    /// one was not applied, and who won is unknown.
    Conflict,
}

async fn put_lock(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    info: &LockInfo,
    if_match: Option<&str>,
) -> Result<PutLock, Error> {
    // The nonce makes every write's body, and so its ETag, unique (see the module docs).
    #[derive(serde::Serialize)]
    struct LockBody<'a> {
        #[serde(flatten)]
        info: &'a LockInfo,
        written: String,
    }
    let body = LockBody { info, written: stackup_core::lock::random_id() };
    let body = serde_json::to_vec_pretty(&body).map_err(|e| Error::other("encoding lock", e))?;
    let mut req = s3.put_object().bucket(bucket).key(key).content_type("application/json").body(ByteStream::from(body));
    req = match if_match {
        Some(etag) => req.if_match(etag),
        None => req.if_none_match("*"),
    };
    match req.send().await {
        Ok(out) => Ok(PutLock::Written(out.e_tag().unwrap_or_default().to_owned())),
        Err(e) => {
            let e = s3_error("PutObject", e);
            if e.is_precondition_failed() {
                Ok(PutLock::PreconditionFailed)
            } else if e.status() == Some(409) {
                Ok(PutLock::Conflict)
            } else {
                Err(e.into())
            }
        }
    }
}

#[async_trait]
impl StateBackend for R2StateBackend {
    fn location(&self) -> String {
        match self.jurisdiction {
            Jurisdiction::Default => format!("r2://{}/{}", self.bucket, self.key),
            j => format!("r2://{}/{} ({j})", self.bucket, self.key),
        }
    }

    async fn read(&self) -> Result<Option<StoredState>, Error> {
        let out = match self.s3()?.get_object().bucket(&self.bucket).key(&self.key).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = s3_error("GetObject", e);
                return if e.is_not_found() { Ok(None) } else { Err(e.into()) };
            }
        };
        let version = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out.body.collect().await.map_err(|e| Error::MaybeSent(format!("reading state object: {e}")))?;
        Ok(Some(StoredState { bytes: bytes.into_bytes().to_vec(), version }))
    }

    async fn write(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, Error> {
        let mut req = self
            .s3()?
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(ByteStream::from(bytes.to_vec()));
        req = match expected {
            Some(etag) => req.if_match(etag),
            None => req.if_none_match("*"),
        };
        match req.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_owned()),
            Err(e) => {
                let e = s3_error("PutObject", e);
                if e.is_precondition_failed() || e.status() == Some(409) {
                    Err(Error::PreconditionFailed(ApiErrorDetails {
                        status: e.status(),
                        code: e.code().map(str::to_owned),
                        message: format!(
                            "state {} changed since it was read (expected version {}); nothing was overwritten",
                            self.location(),
                            expected.unwrap_or("none: no state yet")
                        ),
                        request_id: None,
                    }))
                } else {
                    Err(e.into())
                }
            }
        }
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), Error> {
        for _ in 0..3 {
            if let Some(etag) = self.put_lock(info, None).await? {
                self.hold(info, etag);
                return Ok(());
            }
            let Some(current) = self.read_lock().await? else { continue };
            let Some(holder) = current.info.clone() else {
                return Err(Error::State(format!(
                    "lock object {} is unreadable; if no run is active, force-unlock it",
                    self.lock_key()
                )));
            };
            if holder.id == info.id {
                self.hold(info, current.etag);
                return Ok(());
            }
            if !self.is_stale(&current) {
                return Err(Error::Locked(Box::new(holder)));
            }
            tracing::warn!(holder = %holder, age = ?current.age, "taking over a stale state lock");
            if let Some(etag) = self.put_lock(info, Some(&current.etag)).await? {
                self.hold(info, etag);
                return Ok(());
            }
        }
        match self.read_lock().await? {
            Some(LockObject { info: Some(holder), .. }) => Err(Error::Locked(Box::new(holder))),
            _ => Err(Error::State(format!("could not take lock {}", self.lock_key()))),
        }
    }

    async fn unlock(&self, info: &LockInfo) -> Result<(), Error> {
        match self.read_lock().await? {
            None => {
                self.held().take();
                Ok(())
            }
            Some(LockObject { info: Some(h), .. }) if h.id != info.id => Err(Error::Locked(Box::new(h))),
            Some(_) => {
                let held = self.held().take();
                drop(held);
                self.delete_lock().await
            }
        }
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, Error> {
        Ok(self.read_lock().await?.and_then(|l| l.info))
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, Error> {
        let holder = self.read_lock().await.ok().flatten();
        self.held().take();
        self.delete_lock().await?;
        Ok(holder.and_then(|l| l.info))
    }
}

impl R2StateBackend {
    /// The ETag of the lock this process holds, if any (for diagnostics).
    pub fn held_lock_etag(&self) -> Option<String> {
        self.held().as_ref().map(|h| h.etag.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The id of the lock this process holds, if any.
    pub fn held_lock_id(&self) -> Option<String> {
        self.held().as_ref().map(|h| h.id.clone())
    }
}
