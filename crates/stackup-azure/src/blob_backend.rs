//! Remote state on Azure Blob Storage ([`AzureBlobBackend`], core's `StateBackend`), on
//! `azure_storage_blob` 1.x.
//!
//! - **State** is one block blob. Every write is conditional on the ETag it was read at
//!   (`If-Match`), or on absence for the first write (`If-None-Match: *`), so a concurrent
//!   writer can never be overwritten silently: the loser gets `PreconditionFailed`.
//! - **The lock** is a lease on a companion blob `{state}.lock`. The lease is *finite* (15–60 s,
//!   default 30 s) and a background task renews it every third of its duration while the run
//!   lives, so a crashed run's lock expires by itself (Terraform's infinite lease does not). The
//!   holder (`LockInfo`: who, host, pid, operation, since) is written into the lock blob's
//!   metadata, so a blocked run can say who holds it. [`StateBackend::force_unlock`] breaks the
//!   lease immediately (an operator's decision).
//! - **Auth**: a SAS in the container URL, an account key (turned into an account SAS), or an
//!   Entra ID credential (https only). The SAS never appears in `Debug`, `location()` or errors.
//!
//! Environment ([`AzureBlobBackend::from_env`]): `STACKUP_AZURE_STATE_URL` (container URL,
//! optionally with a SAS), `STACKUP_AZURE_STATE_BLOB` (default `stackup.state.json`),
//! `AZURE_STORAGE_KEY` (account key; the account is the URL's first host label, or
//! `AZURE_STORAGE_ACCOUNT`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Etag, HttpClient as SdkHttpClient, RequestContent, RetryOptions, Transport};
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientAcquireLeaseResultHeaders, BlobClientBreakLeaseOptions,
    BlobClientGetPropertiesResultHeaders, BlobClientSetMetadataOptions, BlobClientUploadOptions, LeaseState,
};
use azure_storage_blob::{BlobClient, BlobContainerClient, BlobContainerClientOptions};
use base64::Engine as _;
use stackup_core::backend::{StateBackend, StoredState};
use stackup_core::lock::LockInfo;
use stackup_core::retry::{Idempotency, RetryPolicy, retry};
use stackup_core::{ApiErrorDetails, Error, Secret};
use url::Url;

use crate::error::AzureError;

/// The blob service version sent (`x-ms-version`); Azurite 3.35 and Azure both accept it.
pub const BLOB_SERVICE_VERSION: &str = "2025-11-05";
/// Metadata key holding the lock holder (base64 JSON of `LockInfo`).
pub const LOCK_METADATA_KEY: &str = "stackuplock";
/// Environment variable: the container URL (may carry a SAS).
pub const ENV_STATE_URL: &str = "STACKUP_AZURE_STATE_URL";
/// Environment variable: the state blob's name.
pub const ENV_STATE_BLOB: &str = "STACKUP_AZURE_STATE_BLOB";
/// Environment variable: a storage account key (shared with the Azure CLI).
pub const ENV_STORAGE_KEY: &str = "AZURE_STORAGE_KEY";
/// Environment variable: the storage account name (shared with the Azure CLI).
pub const ENV_STORAGE_ACCOUNT: &str = "AZURE_STORAGE_ACCOUNT";

fn storage_error(e: &azure_core::Error) -> Error {
    AzureError::from_core(e).into()
}

fn status(e: &azure_core::Error) -> Option<u16> {
    e.http_status().map(u16::from)
}

fn error_code(e: &azure_core::Error) -> Option<String> {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
        _ => None,
    }
}

/// Configures an [`AzureBlobBackend`].
pub struct AzureBlobBackendBuilder {
    container_url: String,
    blob: String,
    sas: Option<Secret>,
    account_key: Option<(String, Secret)>,
    credential: Option<Arc<dyn TokenCredential>>,
    lease: Duration,
    renew_every: Option<Duration>,
    lock_timeout: Duration,
    retry: RetryPolicy,
    transport: Option<Arc<dyn SdkHttpClient>>,
}

impl std::fmt::Debug for AzureBlobBackendBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlobBackendBuilder").field("blob", &self.blob).finish_non_exhaustive()
    }
}

impl AzureBlobBackendBuilder {
    /// Authorizes with this SAS query string (`sv=…&sig=…`).
    pub fn sas(mut self, sas: Secret) -> Self {
        self.sas = Some(sas);
        self
    }

    /// Authorizes with an account key (an account SAS valid for a day is derived from it).
    pub fn account_key(mut self, account: impl Into<String>, key: Secret) -> Self {
        self.account_key = Some((account.into(), key));
        self
    }

    /// Authorizes with an Entra ID credential (needs a data-plane role such as Storage Blob
    /// Data Contributor; https only).
    pub fn credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Lease duration, 15–60 s (default 30 s): how long a crashed run keeps the lock.
    pub fn lease_duration(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// How often the lease is renewed (default: a third of its duration).
    pub fn renew_every(mut self, d: Duration) -> Self {
        self.renew_every = Some(d);
        self
    }

    /// How long `lock` waits for a held lock before failing with `Locked` (default: not at all).
    pub fn lock_timeout(mut self, d: Duration) -> Self {
        self.lock_timeout = d;
        self
    }

    /// Retry policy for 408/429/5xx and connection failures.
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }

    /// Sends requests through this HTTP client.
    pub fn transport(mut self, t: Arc<dyn SdkHttpClient>) -> Self {
        self.transport = Some(t);
        self
    }

    /// Builds the backend (no network call).
    pub fn build(self) -> Result<AzureBlobBackend, Error> {
        let mut url = stackup_core::http::validate_endpoint("container_url", &self.container_url)?;
        if self.blob.is_empty() || self.blob.len() > 1024 || self.blob.ends_with('/') {
            return Err(Error::invalid("blob", "blob names are 1-1024 characters and do not end with '/'"));
        }
        let secs = self.lease.as_secs();
        if !(15..=60).contains(&secs) {
            return Err(Error::invalid("lease_duration", "blob leases last 15-60 seconds"));
        }
        let renew = self.renew_every.unwrap_or(Duration::from_secs(secs / 3));
        if renew >= self.lease {
            return Err(Error::invalid("renew_every", "the lease must be renewed more often than it lasts"));
        }
        // Where the SAS comes from: explicit, account key, or already in the URL.
        let in_url = url.query_pairs().any(|(k, _)| k == "sig");
        let sas = match (self.sas, self.account_key) {
            (Some(s), _) => Some(s),
            (None, Some((account, key))) => Some(crate::sas::blob_account_sas(
                &account,
                &key,
                time::OffsetDateTime::now_utc() + time::Duration::days(1),
            )?),
            (None, None) if in_url => {
                let q = url.query().unwrap_or_default().to_owned();
                Some(Secret::new(q))
            }
            (None, None) => None,
        };
        url.set_query(None);
        let display = format!(
            "azblob://{}{}/{}",
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            url.path().trim_matches('/')
        );
        let mut client_url = url.clone();
        if let Some(s) = &sas {
            client_url.set_query(Some(s.expose()));
        }
        let credential = if sas.is_some() { None } else { self.credential };
        if sas.is_none() && credential.is_none() {
            return Err(Error::Config(format!(
                "no credentials for the Azure state container {display}: give a SAS, an account key ({ENV_STORAGE_KEY}) or a credential"
            )));
        }
        let options = |retry: RetryOptions| BlobContainerClientOptions {
            version: BLOB_SERVICE_VERSION.into(),
            client_options: ClientOptions {
                retry,
                transport: self.transport.clone().map(Transport::new),
                ..Default::default()
            },
        };
        let container = BlobContainerClient::new(
            client_url.clone(),
            credential.clone(),
            Some(options(crate::client::sdk_retry_options(&self.retry))),
        )
        .map_err(|e| storage_error(&e))?;
        // State writes retry by themselves (see `write`): a conditional write whose answer was
        // lost must not be resent blindly, or its own success comes back as a conflict.
        let write_blob = BlobContainerClient::new(client_url, credential, Some(options(RetryOptions::none())))
            .map_err(|e| storage_error(&e))?
            .blob_client(&self.blob);
        let blob = container.blob_client(&self.blob);
        let lock_blob = container.blob_client(&format!("{}.lock", self.blob));
        Ok(AzureBlobBackend {
            inner: Arc::new(BackendInner {
                container,
                blob,
                write_blob,
                lock_blob,
                retry: self.retry,
                location: format!("{display}/{}", self.blob),
                lease_seconds: secs as i32,
                renew_every: renew,
                lock_timeout: self.lock_timeout,
                held: Mutex::new(None),
            }),
        })
    }
}

struct Held {
    lock_id: String,
    lease_id: String,
    task: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
    renewals: Arc<AtomicU64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct BackendInner {
    container: BlobContainerClient,
    blob: BlobClient,
    /// The state blob on a pipeline without retries (`write` decides what to resend).
    write_blob: BlobClient,
    lock_blob: BlobClient,
    retry: RetryPolicy,
    location: String,
    lease_seconds: i32,
    renew_every: Duration,
    lock_timeout: Duration,
    held: Mutex<Option<Held>>,
}

/// State in an Azure Blob container. See the [module docs](self).
#[derive(Clone)]
pub struct AzureBlobBackend {
    inner: Arc<BackendInner>,
}

impl std::fmt::Debug for AzureBlobBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlobBackend").field("location", &self.inner.location).finish_non_exhaustive()
    }
}

impl AzureBlobBackend {
    /// A builder for the state blob `blob` in the container at `container_url`
    /// (`https://{account}.blob.core.windows.net/{container}`, optionally with a SAS query).
    pub fn builder(container_url: impl Into<String>, blob: impl Into<String>) -> AzureBlobBackendBuilder {
        AzureBlobBackendBuilder {
            container_url: container_url.into(),
            blob: blob.into(),
            sas: None,
            account_key: None,
            credential: None,
            lease: Duration::from_secs(30),
            renew_every: None,
            lock_timeout: Duration::ZERO,
            retry: RetryPolicy::default(),
            transport: None,
        }
    }

    /// A backend configured from `STACKUP_AZURE_STATE_URL`, `STACKUP_AZURE_STATE_BLOB`,
    /// `AZURE_STORAGE_KEY`/`AZURE_STORAGE_ACCOUNT`, or else the credential chain.
    pub fn from_env() -> Result<Self, Error> {
        let url = std::env::var(ENV_STATE_URL)
            .map_err(|_| Error::Config(format!("{ENV_STATE_URL} is not set (the state container URL)")))?;
        let blob = std::env::var(ENV_STATE_BLOB).unwrap_or_else(|_| "stackup.state.json".into());
        let mut b = Self::builder(url.clone(), blob);
        if let Ok(key) = std::env::var(ENV_STORAGE_KEY) {
            let account = std::env::var(ENV_STORAGE_ACCOUNT).ok().or_else(|| {
                Url::parse(&url).ok().and_then(|u| {
                    if stackup_core::http::is_loopback(&u) {
                        // Azurite: http://127.0.0.1:10000/{account}/{container}
                        u.path_segments().and_then(|mut s| s.next().map(str::to_owned))
                    } else {
                        u.host_str().and_then(|h| h.split('.').next()).map(str::to_owned)
                    }
                })
            });
            let account =
                account.ok_or_else(|| Error::Config(format!("set {ENV_STORAGE_ACCOUNT} with {ENV_STORAGE_KEY}")))?;
            b = b.account_key(account, Secret::new(key));
        } else if !url.contains("sig=") {
            let cloud = crate::cloud::AzureCloud::from_env()?;
            b = b.credential(crate::credentials::CredentialChain::from_env(&cloud)?);
        }
        b.build()
    }

    /// How many times the current lock's lease was renewed (0 when no lock is held).
    pub fn lease_renewals(&self) -> u64 {
        self.held().as_ref().map(|h| h.renewals.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// True when this process holds the lock and its lease is still being renewed.
    pub fn holds_lock(&self) -> bool {
        self.held().as_ref().is_some_and(|h| !h.lost.load(Ordering::Relaxed))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.inner.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ensure_container(&self) -> Result<(), Error> {
        match self.inner.container.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(409) => Ok(()),
            Err(e) => Err(storage_error(&e)),
        }
    }

    async fn ensure_lock_blob(&self) -> Result<(), Error> {
        for attempt in 0..2 {
            let opts = BlobClientUploadOptions::default().if_not_exists();
            match self.inner.lock_blob.upload(RequestContent::from(Vec::new()), Some(opts)).await {
                Ok(_) => return Ok(()),
                // Exists already (possibly leased by someone else).
                Err(e) if matches!(status(&e), Some(409) | Some(412)) => return Ok(()),
                Err(e) if attempt == 0 && error_code(&e).as_deref() == Some("ContainerNotFound") => {
                    self.ensure_container().await?
                }
                Err(e) => return Err(storage_error(&e)),
            }
        }
        Ok(())
    }

    fn spawn_renewal(
        &self,
        lease_id: String,
        lost: Arc<AtomicBool>,
        renewals: Arc<AtomicU64>,
    ) -> tokio::task::JoinHandle<()> {
        // A weak reference: when the backend is dropped (the run ends or crashes), renewal stops
        // and the lease runs out.
        let inner = Arc::downgrade(&self.inner);
        let every = self.inner.renew_every;
        let location = self.inner.location.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = inner.upgrade() else { return };
                let renewed = inner.lock_blob.renew_lease(lease_id.clone(), None).await;
                drop(inner);
                match renewed {
                    Ok(_) => {
                        renewals.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if matches!(status(&e), Some(409) | Some(412) | Some(404)) => {
                        tracing::error!(%location, error = %e, "state lock lease lost (broken or expired); writes are refused");
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        // Transient (the SDK already retried): try again next tick, the lease
                        // lasts three ticks.
                        tracing::warn!(%location, error = %e, "renewing the state lock lease failed; will retry");
                    }
                }
            }
        })
    }

    async fn try_lock(&self, info: &LockInfo) -> Result<Option<Held>, Error> {
        self.ensure_lock_blob().await?;
        let proposed = lease_guid(&info.id);
        let opts = BlobClientAcquireLeaseOptions { proposed_lease_id: Some(proposed), ..Default::default() };
        let lease_id = match self.inner.lock_blob.acquire_lease(self.inner.lease_seconds, Some(opts)).await {
            Ok(r) => r.lease_id().map_err(|e| storage_error(&e))?.unwrap_or_default(),
            Err(e) if status(&e) == Some(409) => return Ok(None),
            Err(e) => return Err(storage_error(&e)),
        };
        let json = serde_json::to_vec(info).map_err(|e| Error::other("encoding lock info", e))?;
        let meta =
            HashMap::from([(LOCK_METADATA_KEY.to_owned(), base64::engine::general_purpose::STANDARD.encode(json))]);
        let opts = BlobClientSetMetadataOptions { lease_id: Some(lease_id.clone()), ..Default::default() };
        if let Err(e) = self.inner.lock_blob.set_metadata(&meta, Some(opts)).await {
            let _ = self.inner.lock_blob.release_lease(lease_id, None).await;
            return Err(storage_error(&e));
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewals = Arc::new(AtomicU64::new(0));
        let task = self.spawn_renewal(lease_id.clone(), lost.clone(), renewals.clone());
        Ok(Some(Held { lock_id: info.id.clone(), lease_id, task, lost, renewals }))
    }

    fn locked_error(holder: Option<LockInfo>) -> Error {
        Error::Locked(Box::new(holder.unwrap_or_else(|| LockInfo {
            id: "unknown".into(),
            who: "unknown (the lock blob is leased but carries no holder info)".into(),
            host: "unknown".into(),
            pid: 0,
            operation: "unknown".into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
        })))
    }
}

/// A lease id must be a GUID; derive one from the lock id so the holder is recognisable.
fn lease_guid(lock_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{lock_id}:{}", rand::random::<u64>()).as_bytes());
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-4{}-8{}-{}", &x[0..8], &x[8..12], &x[13..16], &x[17..20], &x[20..32])
}

#[async_trait]
impl StateBackend for AzureBlobBackend {
    fn location(&self) -> String {
        self.inner.location.clone()
    }

    async fn read(&self) -> Result<Option<StoredState>, Error> {
        let resp = match self.inner.blob.download(None).await {
            Ok(r) => r,
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(storage_error(&e)),
        };
        let etag = resp.properties.etag.clone().map(String::from).unwrap_or_default();
        let bytes = resp.body.collect().await.map_err(|e| storage_error(&e))?;
        Ok(Some(StoredState { bytes: bytes.to_vec(), version: etag }))
    }

    async fn write(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, Error> {
        if let Some(h) = self.held().as_ref()
            && h.lost.load(Ordering::Relaxed)
        {
            return Err(Error::State(format!(
                "the lock on {} was lost (its lease was broken or expired); refusing to write state",
                self.inner.location
            )));
        }
        // Whether an earlier attempt may have reached the service although its answer was lost.
        let maybe_written = AtomicBool::new(false);
        let upload = || async {
            let mut opts =
                BlobClientUploadOptions { blob_content_type: Some("application/json".into()), ..Default::default() };
            opts = match expected {
                Some(etag) => BlobClientUploadOptions { if_match: Some(Etag::from(etag)), ..opts },
                None => opts.if_not_exists(),
            };
            let content = RequestContent::from(bytes.to_vec());
            match self.inner.write_blob.upload(content, Some(opts)).await {
                Ok(r) => Ok(r.etag.map(String::from).unwrap_or_default()),
                Err(e) => {
                    let err = storage_error(&e);
                    if matches!(err, Error::MaybeSent(_)) {
                        maybe_written.store(true, Ordering::Relaxed);
                    }
                    Err(err)
                }
            }
        };
        let mut created_container = false;
        loop {
            let result = retry(&self.inner.retry, Idempotency::Idempotent, |_| upload(), |attempt, delay, err| {
                tracing::debug!(location = %self.inner.location, attempt, ?delay, error = %err, "retrying the state write");
            })
            .await;
            match result {
                Ok(etag) => return Ok(etag),
                Err(e) if !created_container && e.code() == Some("ContainerNotFound") => {
                    created_container = true;
                    self.ensure_container().await?;
                }
                Err(Error::Conflict(d) | Error::PreconditionFailed(d)) => {
                    // After a lost answer, the condition can fail because of this very write:
                    // then the blob holds exactly these bytes, and the write succeeded.
                    if maybe_written.load(Ordering::Relaxed)
                        && let Some(current) = self.read().await?
                        && current.bytes == bytes
                    {
                        return Ok(current.version);
                    }
                    return Err(Error::PreconditionFailed(ApiErrorDetails {
                        status: d.status,
                        code: d.code,
                        message: format!(
                            "state at {} changed since it was read (expected {}); re-run to plan against the new state",
                            self.inner.location,
                            expected.map(|v| format!("ETag {v}")).unwrap_or_else(|| "no state".into())
                        ),
                        request_id: d.request_id,
                    }));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), Error> {
        if self.held().is_some() {
            return Err(Error::State("this backend already holds the lock".into()));
        }
        let start = tokio::time::Instant::now();
        loop {
            if let Some(h) = self.try_lock(info).await? {
                *self.held() = Some(h);
                return Ok(());
            }
            if start.elapsed() >= self.inner.lock_timeout {
                return Err(Self::locked_error(self.lock_holder().await?));
            }
            tokio::time::sleep(Duration::from_secs(1).min(self.inner.lock_timeout)).await;
        }
    }

    async fn unlock(&self, info: &LockInfo) -> Result<(), Error> {
        let held = self.held().take();
        match held {
            Some(h) if h.lock_id == info.id => {
                h.task.abort();
                let opts = BlobClientSetMetadataOptions { lease_id: Some(h.lease_id.clone()), ..Default::default() };
                let _ = self.inner.lock_blob.set_metadata(&HashMap::new(), Some(opts)).await;
                match self.inner.lock_blob.release_lease(h.lease_id.clone(), None).await {
                    Ok(_) => Ok(()),
                    // Broken or expired meanwhile: it is not ours any more, which is the goal.
                    Err(e) if matches!(status(&e), Some(409) | Some(412)) => Ok(()),
                    Err(e) => Err(storage_error(&e)),
                }
            }
            other => {
                *self.held() = other;
                match self.lock_holder().await? {
                    Some(h) if h.id != info.id => Err(Error::Locked(Box::new(h))),
                    _ => Ok(()),
                }
            }
        }
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, Error> {
        let props = match self.inner.lock_blob.get_properties(None).await {
            Ok(p) => p,
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(storage_error(&e)),
        };
        let state = props.lease_state().map_err(|e| storage_error(&e))?;
        if !matches!(state, Some(LeaseState::Leased) | Some(LeaseState::Breaking)) {
            return Ok(None);
        }
        let meta = props.metadata().map_err(|e| storage_error(&e))?;
        let info = meta
            .get(LOCK_METADATA_KEY)
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok());
        Ok(Some(info.unwrap_or_else(|| match Self::locked_error(None) {
            Error::Locked(i) => *i,
            _ => unreachable!("locked_error returns Locked"),
        })))
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, Error> {
        let holder = self.lock_holder().await?;
        if holder.is_none() {
            return Ok(None);
        }
        let opts = BlobClientBreakLeaseOptions { break_period: Some(0), ..Default::default() };
        match self.inner.lock_blob.break_lease(Some(opts)).await {
            Ok(_) => {}
            Err(e) if matches!(status(&e), Some(409) | Some(404)) => {}
            Err(e) => return Err(storage_error(&e)),
        }
        tracing::warn!(location = %self.inner.location, holder = ?holder, "state lock broken by force-unlock");
        Ok(holder)
    }
}
