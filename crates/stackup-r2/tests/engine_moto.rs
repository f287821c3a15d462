//! The R2 log-bucket stack through the engine on the local S3 server (moto), with its state in
//! the R2/S3 state backend: apply, a re-apply that plans zero changes, destroy leaving nothing.

mod common;

use std::sync::Arc;

use stackup_core::backend::StateBackend;
use stackup_core::{Engine, Stack};
use stackup_r2::resources::{BucketCors, BucketLifecycles, CorsRule, CorsSpec, LifecycleRule, LifecycleSpec};
use stackup_r2::{BucketSpec, Buckets, R2StateBackend};

fn stack(client: &stackup_r2::R2Client, bucket: &str) -> Stack {
    let mut stack = Stack::new("jamjam-logs");
    let b = stack
        .add("logs", Buckets::new(client.clone()), BucketSpec { empty_on_delete: true, ..BucketSpec::new(bucket) })
        .unwrap();
    let mut expire = LifecycleRule::new("expire-logs", "");
    expire.expire_after_days = Some(90);
    expire.abort_multipart_after_days = Some(1);
    stack
        .add(
            "logs_lifecycle",
            BucketLifecycles::new(client.clone()),
            LifecycleSpec { bucket: b.output("name").input(), jurisdiction: Default::default(), rules: vec![expire] },
        )
        .unwrap();
    stack
        .add(
            "logs_cors",
            BucketCors::new(client.clone()),
            CorsSpec {
                bucket: b.output("name").input(),
                jurisdiction: Default::default(),
                rules: vec![CorsRule {
                    id: None,
                    allowed_origins: vec!["https://signaling-jamjam.koeda.me".into()],
                    allowed_methods: vec!["GET".into()],
                    allowed_headers: vec![],
                    expose_headers: vec![],
                    max_age_seconds: None,
                }],
            },
        )
        .unwrap();
    stack
}

#[tokio::test]
async fn apply_reapply_and_destroy_with_state_on_s3() {
    let client = common::moto_client();
    let state_bucket = common::unique("stackup-tfstate");
    common::create_bucket(&client, &state_bucket).await;
    let bucket = common::unique("jamjam-logs");
    let backend: Arc<dyn StateBackend> =
        Arc::new(R2StateBackend::new(client.clone(), &state_bucket, "stacks/jamjam.json").unwrap());

    let engine = Engine::new(stack(&client, &bucket), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.summary.create, 3, "{}", plan.render());
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{:?}", report.failed);
    assert!(backend.read().await.unwrap().is_some(), "state written to the S3 backend");
    assert!(backend.lock_holder().await.unwrap().is_none(), "lock released");

    // Objects shipped into the bucket meanwhile.
    let s3 = client.s3().unwrap();
    s3.put_object().bucket(&bucket).key("20261125_170000/abc.log.gz").body(b"x".to_vec().into()).send().await.unwrap();

    // A fresh engine (new process) over the same state: nothing to do.
    let engine = Engine::new(stack(&client, &bucket), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "re-apply must plan zero changes:\n{}", plan.render());
    assert_eq!(plan.summary.unchanged, 3);
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success());
    assert_eq!((report.summary.create, report.summary.update, report.summary.replace), (0, 0, 0));

    // Destroy: empties the bucket (empty_on_delete) and leaves nothing behind.
    let report = engine.destroy().await.unwrap();
    assert!(report.is_success(), "{:?}", report.failed);
    let head = s3.head_bucket().bucket(&bucket).send().await;
    assert!(head.is_err(), "bucket deleted");
    common::cleanup(&client, &state_bucket).await;
}
