//! The R2/S3 state backend against the local S3 server (moto 5.2.5 implements conditional
//! PutObject: `If-None-Match: *` and `If-Match`, answering 412 PreconditionFailed).

mod common;

use std::time::Duration;

use stackup_core::Error;
use stackup_core::backend::StateBackend;
use stackup_core::lock::LockInfo;
use stackup_r2::{R2StateBackend, StaleLockPolicy};

async fn setup() -> (stackup_r2::R2Client, String) {
    let client = common::moto_client();
    let bucket = common::unique("stackup-state");
    common::create_bucket(&client, &bucket).await;
    (client, bucket)
}

#[tokio::test]
async fn writes_are_conditional_on_the_etag() {
    let (client, bucket) = setup().await;
    let b = R2StateBackend::new(client.clone(), &bucket, "stacks/demo.json").unwrap();
    assert_eq!(b.location(), format!("r2://{bucket}/stacks/demo.json"));
    assert!(b.read().await.unwrap().is_none());
    let v1 = b.write(b"{\"v\":1}", None).await.unwrap();
    // A second "first write" must not overwrite.
    assert!(matches!(b.write(b"{\"v\":0}", None).await, Err(Error::PreconditionFailed(_))));
    let v2 = b.write(b"{\"v\":2}", Some(&v1)).await.unwrap();
    assert_ne!(v1, v2);
    // A writer holding the old version loses, and nothing is overwritten.
    let e = b.write(b"{\"v\":3}", Some(&v1)).await.unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed(_)), "{e}");
    let got = b.read().await.unwrap().unwrap();
    assert_eq!((got.bytes.as_slice(), got.version.as_str()), (&b"{\"v\":2}"[..], v2.as_str()));
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn lock_contention_names_the_holder_and_force_unlock_breaks_it() {
    let (client, bucket) = setup().await;
    let a = R2StateBackend::new(client.clone(), &bucket, "demo.json").unwrap();
    let b = R2StateBackend::new(client.clone(), &bucket, "demo.json").unwrap();
    let mut me = LockInfo::for_operation("apply");
    me.host = "host-a".into(); // another host: never treated as a dead local process
    a.lock(&me).await.unwrap();
    let mut other = LockInfo::for_operation("destroy");
    other.host = "host-b".into();
    match b.lock(&other).await {
        Err(Error::Locked(h)) => {
            assert_eq!(h.id, me.id);
            assert_eq!(h.operation, "apply");
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(b.lock_holder().await.unwrap().unwrap().id, me.id);
    assert!(matches!(b.unlock(&other).await, Err(Error::Locked(_))), "only the holder unlocks");
    // Explicit operator decision.
    assert_eq!(b.force_unlock().await.unwrap().unwrap().id, me.id);
    b.lock(&other).await.unwrap();
    b.unlock(&other).await.unwrap();
    assert!(a.lock_holder().await.unwrap().is_none());
    // Unlocking a free lock is fine.
    a.unlock(&me).await.unwrap();
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn concurrent_lockers_exactly_one_wins() {
    let (client, bucket) = setup().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let client = client.clone();
        let bucket = bucket.clone();
        tasks.push(tokio::spawn(async move {
            let b = R2StateBackend::new(client, &bucket, "race.json").unwrap();
            let mut info = LockInfo::for_operation("apply");
            info.host = format!("racer-{i}");
            b.lock(&info).await.map(|_| info.id)
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => winners += 1,
            Err(Error::Locked(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(winners, 1);
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn stale_locks_are_taken_over_only_under_the_policy() {
    let (client, bucket) = setup().await;
    // A crashed holder on another host: its lock object is never renewed.
    let crashed = R2StateBackend::new(client.clone(), &bucket, "stale.json").unwrap();
    let mut ghost = LockInfo::for_operation("apply");
    ghost.host = "gone-host".into();
    crashed.lock(&ghost).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // Last-Modified has 1 s resolution

    let never = R2StateBackend::new(client.clone(), &bucket, "stale.json").unwrap();
    let mut me = LockInfo::for_operation("apply");
    me.host = "new-host".into();
    assert!(matches!(never.lock(&me).await, Err(Error::Locked(_))), "the default never breaks a lock");

    let breaker = R2StateBackend::new(client.clone(), &bucket, "stale.json")
        .unwrap()
        .with_stale_lock_policy(StaleLockPolicy::BreakAfter(Duration::from_millis(500)));
    breaker.lock(&me).await.unwrap();
    assert_eq!(breaker.lock_holder().await.unwrap().unwrap().id, me.id);
    breaker.unlock(&me).await.unwrap();
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn a_live_holder_renews_its_lock_so_it_is_not_stale() {
    let (client, bucket) = setup().await;
    let policy = StaleLockPolicy::BreakAfter(Duration::from_secs(3));
    let holder = R2StateBackend::new(client.clone(), &bucket, "live.json").unwrap().with_stale_lock_policy(policy);
    let mut me = LockInfo::for_operation("apply");
    me.host = "busy-host".into();
    holder.lock(&me).await.unwrap();
    let first = holder.held_lock_etag().unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // Renewed (every second; Last-Modified has 1 s resolution) so another process with the same policy may not break it.
    let contender = R2StateBackend::new(client.clone(), &bucket, "live.json").unwrap().with_stale_lock_policy(policy);
    let mut other = LockInfo::for_operation("apply");
    other.host = "other-host".into();
    assert!(matches!(contender.lock(&other).await, Err(Error::Locked(_))));
    let renewed = holder.held_lock_etag().unwrap();
    assert_ne!(renewed, first, "each renewal writes a fresh nonce, so the ETag changes");
    holder.unlock(&me).await.unwrap();
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn a_takeover_based_on_a_read_from_before_a_renewal_loses() {
    let (client, bucket) = setup().await;
    let policy = StaleLockPolicy::BreakAfter(Duration::from_millis(600));
    let holder = R2StateBackend::new(client.clone(), &bucket, "renew.json").unwrap().with_stale_lock_policy(policy);
    let mut me = LockInfo::for_operation("apply");
    me.host = "busy-host".into();
    holder.lock(&me).await.unwrap();
    let first = holder.held_lock_etag().unwrap();
    // A contender reads the lock object now (it would judge staleness from this read) ...
    let s3 = client.s3().unwrap();
    let seen = s3.get_object().bucket(&bucket).key(holder.lock_key()).send().await.unwrap();
    let seen_etag = seen.e_tag().unwrap().to_owned();
    assert_eq!(seen_etag, first);
    // ... the holder renews (every 200 ms) ...
    tokio::time::sleep(Duration::from_millis(500)).await;
    let renewed = holder.held_lock_etag().unwrap();
    assert_ne!(renewed, first, "a renewal must change the lock object's ETag");
    // ... so a takeover conditional on the ETag it saw must fail: the lock is alive.
    let takeover = s3
        .put_object()
        .bucket(&bucket)
        .key(holder.lock_key())
        .if_match(&seen_etag)
        .body(b"{\"id\":\"intruder\"}".to_vec().into())
        .send()
        .await;
    let err = takeover.expect_err("a takeover based on a pre-renewal read must not win");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412));
    assert_eq!(holder.lock_holder().await.unwrap().unwrap().id, me.id);
    holder.unlock(&me).await.unwrap();
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn the_default_policy_never_breaks_a_lock_even_of_a_dead_local_process() {
    let (client, bucket) = setup().await;
    let crashed = R2StateBackend::new(client.clone(), &bucket, "dead.json").unwrap();
    // A holder on this host name whose pid does not run here (above Linux's pid_max): a crashed
    // process, or a live one in another PID namespace (a container sharing the host name).
    let mut ghost = LockInfo::for_operation("apply");
    ghost.host = stackup_core::lock::hostname();
    ghost.pid = 0x7fff_fff0;
    crashed.lock(&ghost).await.unwrap();

    let never = R2StateBackend::new(client.clone(), &bucket, "dead.json").unwrap();
    let me = LockInfo::for_operation("apply");
    match never.lock(&me).await {
        Err(Error::Locked(h)) => assert_eq!(h.id, ghost.id),
        r => panic!("StaleLockPolicy::Never broke the lock: {r:?}"),
    }
    // Under BreakAfter, a dead local holder is taken over without waiting for the period.
    let breaker = R2StateBackend::new(client.clone(), &bucket, "dead.json")
        .unwrap()
        .with_stale_lock_policy(StaleLockPolicy::BreakAfter(Duration::from_secs(3600)));
    if cfg!(target_os = "linux") {
        breaker.lock(&me).await.unwrap();
        assert_eq!(breaker.lock_holder().await.unwrap().unwrap().id, me.id);
        breaker.unlock(&me).await.unwrap();
    }
    common::cleanup(&client, &bucket).await;
}
