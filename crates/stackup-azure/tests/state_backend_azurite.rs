//! The Azure Blob state backend against Azurite (`STACKUP_TEST_AZURITE_URL`, default
//! `http://127.0.0.1:10000/devstoreaccount1`; `scripts/test-services.sh start`): ETag-conditional
//! writes, two contending runs, holder info, lease renewal, force-unlock, and a crashed run's
//! lease expiring by itself.

mod common;

use std::time::Duration;

use stackup_azure::AzureBlobBackend;
use stackup_core::backend::StateBackend;
use stackup_core::lock::LockInfo;
use stackup_core::retry::RetryPolicy;
use stackup_core::{Error, Secret};

/// Azurite's documented, public development account key.
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn azurite_url() -> String {
    std::env::var("STACKUP_TEST_AZURITE_URL").unwrap_or_else(|_| "http://127.0.0.1:10000/devstoreaccount1".into())
}

async fn require_azurite() -> String {
    let base = azurite_url();
    let u = url::Url::parse(&base).expect("STACKUP_TEST_AZURITE_URL is a URL");
    let addr = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap_or(10000));
    if tokio::net::TcpStream::connect(&addr).await.is_err() {
        panic!(
            "Azurite is not reachable at {base}: start it with `bash scripts/test-services.sh start` (or set STACKUP_TEST_AZURITE_URL)"
        );
    }
    base
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

fn backend(base: &str, container: &str, blob: &str) -> stackup_azure::blob_backend::AzureBlobBackendBuilder {
    AzureBlobBackend::builder(format!("{base}/{container}"), blob)
        .account_key("devstoreaccount1", Secret::new(AZURITE_KEY))
        .retry_policy(RetryPolicy::fast())
}

fn info(op: &str) -> LockInfo {
    LockInfo::for_operation(op)
}

#[tokio::test]
async fn writes_are_conditional_on_the_etag() {
    let base = require_azurite().await;
    let container = unique("state");
    let b = backend(&base, &container, "env/prod.state.json").build().unwrap();
    assert!(b.read().await.unwrap().is_none(), "no state yet (container does not even exist)");

    let v1 = b.write(b"{\"serial\":1}", None).await.unwrap();
    let got = b.read().await.unwrap().unwrap();
    assert_eq!(got.bytes, b"{\"serial\":1}");
    assert_eq!(got.version, v1);

    // A second "first write" loses: someone created the state meanwhile.
    let err = b.write(b"{\"serial\":1}", None).await.unwrap_err();
    assert!(matches!(err, Error::PreconditionFailed(_)), "{err:?}");

    let v2 = b.write(b"{\"serial\":2}", Some(&v1)).await.unwrap();
    assert_ne!(v1, v2);
    // A writer holding the old ETag cannot clobber the newer state.
    let other = backend(&base, &container, "env/prod.state.json").build().unwrap();
    let err = other.write(b"{\"serial\":\"stale\"}", Some(&v1)).await.unwrap_err();
    assert!(matches!(err, Error::PreconditionFailed(_)), "{err:?}");
    assert!(err.to_string().contains("changed since it was read"), "{err}");
    assert_eq!(b.read().await.unwrap().unwrap().bytes, b"{\"serial\":2}");
}

#[tokio::test]
async fn two_contending_runs_one_waits_and_sees_the_holder() {
    let base = require_azurite().await;
    let container = unique("lock");
    let a = backend(&base, &container, "s.json").build().unwrap();
    let b = backend(&base, &container, "s.json").build().unwrap();
    let a_info = info("apply");
    a.lock(&a_info).await.unwrap();
    assert!(a.holds_lock());

    let err = b.lock(&info("destroy")).await.unwrap_err();
    match err {
        Error::Locked(holder) => {
            assert_eq!(holder.id, a_info.id);
            assert_eq!(holder.operation, "apply");
            assert_eq!(holder.pid, std::process::id());
            assert_eq!(holder.who, a_info.who);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.lock_holder().await.unwrap().unwrap().id, a_info.id);
    // B cannot release A's lock.
    assert!(matches!(b.unlock(&info("destroy")).await, Err(Error::Locked(_))));

    // A waiting run gets the lock as soon as A releases it.
    let waiter = backend(&base, &container, "s.json").lock_timeout(Duration::from_secs(10)).build().unwrap();
    let w_info = info("plan");
    let wait = tokio::spawn(async move { waiter.lock(&w_info).await.map(|_| waiter) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.unlock(&a_info).await.unwrap();
    let waiter = wait.await.unwrap().unwrap();
    assert!(waiter.holds_lock());
    assert_eq!(b.lock_holder().await.unwrap().unwrap().operation, "plan");
}

#[tokio::test]
async fn the_lease_is_renewed_while_held_and_force_unlock_breaks_it() {
    let base = require_azurite().await;
    let container = unique("renew");
    let a = backend(&base, &container, "s.json").renew_every(Duration::from_millis(150)).build().unwrap();
    let a_info = info("apply");
    a.lock(&a_info).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.lease_renewals() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.lease_renewals() >= 3, "renewed {} times", a.lease_renewals());
    assert!(a.holds_lock());
    let v = a.write(b"{}", None).await.unwrap();

    // An operator breaks the lock: the holder info comes back, another run can lock, and the
    // old holder notices at its next renewal and refuses to write.
    let ops = backend(&base, &container, "s.json").build().unwrap();
    let broken = ops.force_unlock().await.unwrap().unwrap();
    assert_eq!(broken.id, a_info.id);
    ops.lock(&info("apply")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!a.holds_lock(), "renewal noticed the broken lease");
    let err = a.write(b"{\"late\":true}", Some(&v)).await.unwrap_err();
    assert!(err.to_string().contains("lock") && err.to_string().contains("lost"), "{err}");
    assert_eq!(ops.force_unlock().await.unwrap().unwrap().operation, "apply");
    assert!(ops.lock_holder().await.unwrap().is_none());
}

/// The one slow test (about 16 s): Azure leases last at least 15 s and Azurite keeps real time.
#[tokio::test]
async fn a_crashed_runs_lease_expires_while_a_live_run_keeps_its_lock() {
    let base = require_azurite().await;
    let container = unique("crash");
    let lease = Duration::from_secs(15);
    // The crashed run: takes the lock, then dies without unlocking (dropping stops renewal).
    let crashed = backend(&base, &container, "crashed.json").lease_duration(lease).build().unwrap();
    let crashed_info = info("apply");
    crashed.lock(&crashed_info).await.unwrap();
    drop(crashed);
    // A live run on another state keeps renewing.
    let live = backend(&base, &container, "live.json").lease_duration(lease).build().unwrap();
    live.lock(&info("apply")).await.unwrap();

    let next = backend(&base, &container, "crashed.json")
        .lease_duration(lease)
        .lock_timeout(Duration::from_secs(25))
        .build()
        .unwrap();
    let err = backend(&base, &container, "crashed.json").build().unwrap().lock(&info("apply")).await.unwrap_err();
    assert!(matches!(&err, Error::Locked(h) if h.id == crashed_info.id), "{err:?}");
    let start = std::time::Instant::now();
    next.lock(&info("apply")).await.expect("the crashed run's lease expired");
    assert!(start.elapsed() >= Duration::from_secs(5), "the lock was held until its lease ran out");
    let other = backend(&base, &container, "live.json").build().unwrap();
    assert!(matches!(other.lock(&info("apply")).await, Err(Error::Locked(_))), "the renewed lease outlived 15 s");
    assert!(live.lease_renewals() >= 2);
}

#[tokio::test]
async fn the_sas_never_shows_in_debug_location_errors_or_logs() {
    let base = require_azurite().await;
    let (logs, _guard) = common::capture_logs();
    let b = backend(&base, &unique("sas"), "s.json").build().unwrap();
    b.write(b"{}", None).await.unwrap();
    let err = b.write(b"{}", None).await.unwrap_err();
    for text in [format!("{b:?}"), b.location(), err.to_string(), logs.text()] {
        // The SDK logs URLs with the signature replaced by REDACTED; any other value is a leak.
        for (i, _) in text.match_indices("sig=") {
            assert!(
                text[i + 4..].starts_with("REDACTED"),
                "SAS signature leaked: {}",
                &text[i..(i + 60).min(text.len())]
            );
        }
        assert!(!text.contains(AZURITE_KEY), "account key leaked");
    }
    assert!(b.location().starts_with("azblob://127.0.0.1:10000/devstoreaccount1/sas"), "{}", b.location());
    assert!(logs.text().contains("performing request"), "{}", logs.text());
}

#[tokio::test]
async fn bad_backend_configuration_is_rejected_before_any_call() {
    let bad = [
        AzureBlobBackend::builder("http://storage.example.com/c", "s.json")
            .account_key("a", Secret::new("a2V5"))
            .build(),
        AzureBlobBackend::builder("https://a.blob.core.windows.net/c", "")
            .account_key("a", Secret::new("a2V5"))
            .build(),
        AzureBlobBackend::builder("https://a.blob.core.windows.net/c", "s.json")
            .account_key("a", Secret::new("a2V5"))
            .lease_duration(Duration::from_secs(5))
            .build(),
        AzureBlobBackend::builder("https://a.blob.core.windows.net/c", "s.json")
            .account_key("a", Secret::new("not base64"))
            .build(),
        AzureBlobBackend::builder("https://a.blob.core.windows.net/c", "s.json").build(),
    ];
    for r in bad {
        assert!(r.is_err());
    }
}

#[tokio::test]
async fn a_state_write_whose_answer_is_lost_is_not_reported_as_a_conflict() {
    let base = require_azurite().await;
    let container = unique("lost");
    let a = backend(&base, &container, "s.json").build().unwrap();
    let v1 = a.write(b"{\"serial\":1}", None).await.unwrap();

    // The upload reaches Azure and is applied; the connection drops before the answer. The
    // resent conditional write then fails its own If-Match: that must not be a conflict.
    let lossy =
        backend(&base, &container, "s.json").transport(common::DroppingTransport::new(vec![1])).build().unwrap();
    let v2 = lossy.write(b"{\"serial\":2}", Some(&v1)).await.unwrap();
    let now = a.read().await.unwrap().unwrap();
    assert_eq!(now.bytes, b"{\"serial\":2}");
    assert_eq!(v2, now.version, "the ETag returned is the one the state now has");

    // The same for the first write of a state (If-None-Match: *).
    let lossy =
        backend(&base, &container, "t.json").transport(common::DroppingTransport::new(vec![1])).build().unwrap();
    let t1 = lossy.write(b"{\"serial\":1}", None).await.unwrap();
    assert_eq!(lossy.read().await.unwrap().unwrap().version, t1);

    // A real conflict after a lost answer is still one: someone else's bytes are there.
    let lossy =
        backend(&base, &container, "s.json").transport(common::DroppingTransport::new(vec![1])).build().unwrap();
    let err = lossy.write(b"{\"serial\":\"stale\"}", Some(&v1)).await.unwrap_err();
    assert!(matches!(err, Error::PreconditionFailed(_)), "{err:?}");
    assert_eq!(a.read().await.unwrap().unwrap().bytes, b"{\"serial\":2}");
}
