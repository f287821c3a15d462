//! Bucket, lifecycle and CORS provisioners against the local S3 server (moto).

mod common;

use stackup_core::{Action, Ctx, Error, Input, Provisioner};
use stackup_r2::resources::{BucketCors, BucketLifecycles, CorsRule, CorsSpec, LifecycleRule, LifecycleSpec};
use stackup_r2::{BucketSpec, Buckets};

#[tokio::test]
async fn bucket_create_reapply_and_delete() {
    let client = common::moto_client();
    let p = Buckets::new(client.clone());
    let ctx = Ctx::detached("r2.bucket");
    let name = common::unique("stackup-bkt");
    let spec = BucketSpec::new(&name);
    p.validate(&spec).unwrap();
    assert!(p.lookup(&ctx, &spec).await.unwrap().is_none(), "nothing to adopt yet");

    let created = p.create(&ctx, &spec).await.unwrap();
    assert_eq!(created.id, name);
    assert_eq!(created.outputs.name, name);
    assert_eq!(created.outputs.s3_endpoint, common::s3_endpoint().trim_end_matches('/'));

    // Re-apply: read returns exactly what diff compares, so nothing changes.
    let observed = p.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    assert_eq!(observed, created.outputs);
    assert_eq!(p.diff(&spec, &observed).action(), Action::NoOp);
    // An interrupted run finds the bucket again by name.
    assert_eq!(p.lookup(&ctx, &spec).await.unwrap().unwrap().id, name);
    // A rename replaces.
    assert_eq!(p.diff(&BucketSpec::new("other-name"), &observed).action(), Action::Replace);

    // Delete refuses a bucket with objects.
    let s3 = client.s3().unwrap();
    s3.put_object().bucket(&name).key("a/b.txt").body(b"x".to_vec().into()).send().await.unwrap();
    let err = p.delete(&ctx, &created.id, &observed).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("empty_on_delete"), "{err}");
    assert!(p.read(&ctx, &created.id, None).await.unwrap().is_some(), "nothing lost");

    // Asking to empty it first: flip the flag (an update with no API call), then delete.
    let spec2 = BucketSpec { empty_on_delete: true, ..spec.clone() };
    assert_eq!(p.diff(&spec2, &observed).action(), Action::Update);
    let updated = p.update(&ctx, &created.id, &spec2, &observed).await.unwrap();
    assert!(updated.empty_on_delete);
    // A pending multipart upload must not block the delete either.
    s3.create_multipart_upload().bucket(&name).key("pending").send().await.unwrap();
    p.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(p.read(&ctx, &created.id, None).await.unwrap().is_none());
    // Deleting again is success.
    p.delete(&ctx, &created.id, &updated).await.unwrap();
}

#[tokio::test]
async fn bad_bucket_names_fail_before_any_call() {
    // An unreachable endpoint proves no call is made: validation fails first.
    let config = stackup_r2::R2Config::for_endpoint("http://127.0.0.1:9", "a", "b").unwrap();
    let p = Buckets::new(stackup_r2::R2Client::new(config).unwrap());
    for bad in ["UPPER", "a", "has_underscore", "-lead", "trail-"] {
        let e = p.create(&Ctx::detached("b"), &BucketSpec::new(bad)).await.unwrap_err();
        assert!(matches!(&e.error, Error::InvalidInput { field, .. } if field == "name"), "{bad}: {}", e.error);
        assert!(e.partial_id.is_none());
    }
    let spec =
        BucketSpec { storage_class: Some(stackup_r2::StorageClass::InfrequentAccess), ..BucketSpec::new("ok-name") };
    let e = p.validate(&spec).unwrap_err();
    assert!(e.to_string().contains("CLOUDFLARE_API_TOKEN"), "{e}");
}

#[tokio::test]
async fn lifecycle_rules_apply_reapply_and_remove() {
    let client = common::moto_client();
    let name = common::unique("stackup-lc");
    common::create_bucket(&client, &name).await;
    let p = BucketLifecycles::new(client.clone());
    let ctx = Ctx::detached("r2.lifecycle");
    let mut expire = LifecycleRule::new("expire-logs", "logs/");
    expire.expire_after_days = Some(90);
    let mut abort = LifecycleRule::new("abort-mpu", "");
    abort.abort_multipart_after_days = Some(7);
    let spec = LifecycleSpec {
        bucket: Input::Value(name.clone()),
        jurisdiction: Default::default(),
        rules: vec![expire, abort],
    };
    p.validate(&spec).unwrap();
    let created = p.create(&ctx, &spec).await.unwrap();
    assert_eq!(created.outputs.rules, spec.rules);
    let observed = p.read(&ctx, &created.id, None).await.unwrap().unwrap();
    assert_eq!(p.diff(&spec, &observed).action(), Action::NoOp, "{:?}", p.diff(&spec, &observed));

    // Change a rule: update in place.
    let mut spec2 = spec.clone();
    spec2.rules[0].expire_after_days = Some(30);
    assert_eq!(p.diff(&spec2, &observed).action(), Action::Update);
    let updated = p.update(&ctx, &created.id, &spec2, &observed).await.unwrap();
    assert_eq!(updated.rules[0].expire_after_days, Some(30));

    // Removed: read shows no rules.
    p.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(p.read(&ctx, &created.id, None).await.unwrap().unwrap().rules.is_empty());
    common::cleanup(&client, &name).await;
    // Bucket gone: read says gone, delete is success.
    assert!(p.read(&ctx, &created.id, None).await.unwrap().is_none());
    p.delete(&ctx, &created.id, &updated).await.unwrap();
}

#[tokio::test]
async fn lifecycle_bad_rules_are_rejected() {
    let p = BucketLifecycles::new(common::moto_client());
    let base =
        LifecycleSpec { bucket: Input::Value("bkt-name".into()), jurisdiction: Default::default(), rules: vec![] };
    let no_action = LifecycleSpec { rules: vec![LifecycleRule::new("r", "")], ..base.clone() };
    assert!(p.validate(&no_action).unwrap_err().to_string().contains("at least one action"));
    let mut ia = LifecycleRule::new("r", "");
    ia.infrequent_access_after_days = Some(30);
    let e = p.validate(&LifecycleSpec { rules: vec![ia], ..base.clone() }).unwrap_err();
    assert!(e.to_string().contains("rules[0].infrequent_access_after_days"), "{e}");
    let mut dup = LifecycleRule::new("r", "");
    dup.expire_after_days = Some(1);
    let e = p.validate(&LifecycleSpec { rules: vec![dup.clone(), dup], ..base.clone() }).unwrap_err();
    assert!(e.to_string().contains("duplicate"), "{e}");
    // S3 takes days as a signed 32-bit number: a huge age is refused, not wrapped.
    let mut huge = LifecycleRule::new("r", "");
    huge.expire_after_days = Some(u32::MAX);
    let e = p.validate(&LifecycleSpec { rules: vec![huge], ..base }).unwrap_err();
    assert!(e.to_string().contains("rules[0].expire_after_days") && e.to_string().contains("at most"), "{e}");
}

#[tokio::test]
async fn cors_apply_reapply_and_remove() {
    let client = common::moto_client();
    let name = common::unique("stackup-cors");
    common::create_bucket(&client, &name).await;
    let p = BucketCors::new(client.clone());
    let ctx = Ctx::detached("r2.cors");
    let spec = CorsSpec {
        bucket: Input::Value(name.clone()),
        jurisdiction: Default::default(),
        rules: vec![CorsRule {
            id: Some("web".into()),
            allowed_origins: vec!["https://app.example.com".into()],
            allowed_methods: vec!["GET".into(), "HEAD".into()],
            allowed_headers: vec!["content-type".into()],
            expose_headers: vec!["etag".into()],
            max_age_seconds: Some(3600),
        }],
    };
    p.validate(&spec).unwrap();
    let created = p.create(&ctx, &spec).await.unwrap();
    assert_eq!(created.outputs.rules, spec.rules);
    let observed = p.read(&ctx, &created.id, None).await.unwrap().unwrap();
    assert_eq!(p.diff(&spec, &observed).action(), Action::NoOp);
    p.delete(&ctx, &created.id, &observed).await.unwrap();
    assert!(p.read(&ctx, &created.id, None).await.unwrap().unwrap().rules.is_empty());
    common::cleanup(&client, &name).await;
}

#[tokio::test]
async fn cors_bad_rules_are_rejected() {
    let p = BucketCors::new(common::moto_client());
    let rule = CorsRule {
        id: None,
        allowed_origins: vec!["https://ok.example".into()],
        allowed_methods: vec!["GET".into()],
        allowed_headers: vec![],
        expose_headers: vec![],
        max_age_seconds: None,
    };
    let spec = |r: CorsRule| CorsSpec {
        bucket: Input::Value("bkt-name".into()),
        jurisdiction: Default::default(),
        rules: vec![r],
    };
    p.validate(&spec(rule.clone())).unwrap();
    let e = p.validate(&spec(CorsRule { allowed_methods: vec!["PATCH".into()], ..rule.clone() })).unwrap_err();
    assert!(e.to_string().contains("rules[0].allowed_methods"), "{e}");
    let e = p.validate(&spec(CorsRule { allowed_origins: vec!["example.com".into()], ..rule.clone() })).unwrap_err();
    assert!(e.to_string().contains("rules[0].allowed_origins"), "{e}");
    let e = p.validate(&CorsSpec { bucket: Input::Value("Bad".into()), ..spec(rule) }).unwrap_err();
    assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "bucket"), "{e}");
}
