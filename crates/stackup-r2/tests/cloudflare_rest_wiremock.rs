//! Bucket settings through the Cloudflare v4 REST API (wiremock with the API's envelope):
//! create with location hint, storage class and jurisdiction, read, storage-class update,
//! delete, envelope errors, 429 with Retry-After, 5xx retries, lifecycle and CORS bodies.

use serde_json::json;
use stackup_core::retry::RetryPolicy;
use stackup_core::{Action, Ctx, Error, Input, Provisioner};
use stackup_r2::resources::{BucketCors, BucketLifecycles, CorsRule, CorsSpec, LifecycleRule, LifecycleSpec};
use stackup_r2::{BucketSpec, Buckets, Jurisdiction, LocationHint, R2Client, R2Config, StorageClass};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "cf-test-token-value";

fn client(server: &MockServer) -> R2Client {
    let c = R2Config::for_endpoint(&server.uri(), "AK", "SK")
        .unwrap()
        .with_cloudflare_api(TOKEN, ACCT)
        .unwrap()
        .with_cloudflare_base_url(&format!("{}/client/v4", server.uri()))
        .unwrap()
        .with_rest_retry(RetryPolicy::fast());
    R2Client::new(c).unwrap()
}

fn ok(result: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"success": true, "errors": [], "messages": [], "result": result}))
}

fn fail(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("cf-ray", "8f1e2d3c4b5a6978-NRT").set_body_json(
        json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}),
    )
}

fn bucket_path(name: &str) -> String {
    format!("/client/v4/accounts/{ACCT}/r2/buckets/{name}")
}

fn bucket_json(storage_class: &str) -> serde_json::Value {
    json!({"name": "jamjam-logs", "creation_date": "2026-11-25T17:00:00.000Z", "location": "APAC",
           "storage_class": storage_class, "jurisdiction": "eu"})
}

#[tokio::test]
async fn create_read_update_and_delete_through_rest() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/client/v4/accounts/{ACCT}/r2/buckets")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("cf-r2-jurisdiction", "eu"))
        .and(body_json(json!({"name": "jamjam-logs", "locationHint": "apac", "storageClass": "Standard"})))
        .respond_with(ok(bucket_json("Standard")))
        .expect(1)
        .mount(&server)
        .await;
    // The first read is throttled (429 + Retry-After), then answered.
    Mock::given(method("GET"))
        .and(path(bucket_path("jamjam-logs")))
        .respond_with(fail(429, 10000, "Rate limited").insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(bucket_path("jamjam-logs")))
        .and(header("cf-r2-jurisdiction", "eu"))
        .respond_with(ok(bucket_json("Standard")))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    let p = Buckets::new(client(&server));
    let ctx = Ctx::detached("r2.bucket");
    let spec = BucketSpec {
        name: "jamjam-logs".into(),
        jurisdiction: Jurisdiction::Eu,
        location_hint: Some(LocationHint::Apac),
        storage_class: Some(StorageClass::Standard),
        empty_on_delete: false,
    };
    p.validate(&spec).unwrap();
    let created = p.create(&ctx, &spec).await.unwrap();
    assert_eq!(created.id, "eu/jamjam-logs");
    assert_eq!(created.outputs.location.as_deref(), Some("apac"));
    assert_eq!(created.outputs.storage_class, Some(StorageClass::Standard));
    assert_eq!(created.outputs.jurisdiction, Jurisdiction::Eu);
    let observed = p.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    assert_eq!(p.diff(&spec, &observed).action(), Action::NoOp);

    // Storage class change: PATCH with the cf-r2-storage-class header.
    Mock::given(method("PATCH"))
        .and(path(bucket_path("jamjam-logs")))
        .and(header("cf-r2-storage-class", "InfrequentAccess"))
        .and(header("cf-r2-jurisdiction", "eu"))
        .respond_with(ok(bucket_json("InfrequentAccess")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(bucket_path("jamjam-logs")))
        .respond_with(ok(bucket_json("InfrequentAccess")))
        .mount(&server)
        .await;
    let spec2 = BucketSpec { storage_class: Some(StorageClass::InfrequentAccess), ..spec.clone() };
    assert_eq!(p.diff(&spec2, &observed).action(), Action::Update);
    let updated = p.update(&ctx, &created.id, &spec2, &observed).await.unwrap();
    assert_eq!(updated.storage_class, Some(StorageClass::InfrequentAccess));

    // Delete: the S3 emptiness check, then REST DELETE.
    Mock::given(method("GET"))
        .and(path("/jamjam-logs/"))
        .and(query_param("list-type", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>jamjam-logs</Name><KeyCount>0</KeyCount>\
             <MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>",
        ))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(bucket_path("jamjam-logs")))
        .and(header("cf-r2-jurisdiction", "eu"))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    p.delete(&ctx, &created.id, &updated).await.unwrap();
}

#[tokio::test]
async fn envelope_errors_keep_code_message_and_ray_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(fail(409, 10004, "The bucket you tried to create already exists, and you own it."))
        .mount(&server)
        .await;
    let p = Buckets::new(client(&server));
    let e = p.create(&Ctx::detached("b"), &BucketSpec::new("jamjam-logs")).await.unwrap_err();
    assert!(matches!(e.error, Error::Conflict(_)), "{}", e.error);
    assert_eq!(e.error.code(), Some("10004"));
    assert_eq!(e.error.request_id(), Some("8f1e2d3c4b5a6978-NRT"));
    assert!(e.error.to_string().contains("already exists"), "{}", e.error);
    // Not retried: a conflict is permanent.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn success_false_in_a_200_is_an_error_and_5xx_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(bucket_path("jamjam-logs")))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(bucket_path("jamjam-logs")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"success": false, "errors": [{"code": 10042, "message": "Please enable R2 through the Cloudflare Dashboard."}], "messages": [], "result": null}),
            ),
        )
        .mount(&server)
        .await;
    let p = Buckets::new(client(&server));
    let e = p.read(&Ctx::detached("b"), "jamjam-logs", None).await.unwrap_err();
    assert_eq!(e.code(), Some("10042"), "{e}");
    assert!(e.to_string().contains("enable R2"), "{e}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "two 502s retried");
}

#[tokio::test]
async fn a_missing_bucket_reads_as_gone_and_deletes_as_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(bucket_path("gone-bucket")))
        .respond_with(fail(404, 10006, "The specified bucket does not exist."))
        .mount(&server)
        .await;
    let p = Buckets::new(client(&server));
    assert!(p.read(&Ctx::detached("b"), "gone-bucket", None).await.unwrap().is_none());
}

#[tokio::test]
async fn lifecycle_and_cors_bodies_match_the_rest_shapes() {
    let server = MockServer::start().await;
    let lifecycle = json!({"rules": [{"id": "expire-logs", "enabled": true, "conditions": {"prefix": ""},
        "deleteObjectsTransition": {"condition": {"type": "Age", "maxAge": 7776000}},
        "storageClassTransitions": [{"condition": {"type": "Age", "maxAge": 2592000}, "storageClass": "InfrequentAccess"}]}]});
    Mock::given(method("PUT"))
        .and(path(format!("{}/lifecycle", bucket_path("jamjam-logs"))))
        .and(body_json(lifecycle.clone()))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{}/lifecycle", bucket_path("jamjam-logs"))))
        .respond_with(ok(lifecycle))
        .mount(&server)
        .await;
    let mut rule = LifecycleRule::new("expire-logs", "");
    rule.expire_after_days = Some(90);
    rule.infrequent_access_after_days = Some(30);
    let lp = BucketLifecycles::new(client(&server));
    let spec = LifecycleSpec {
        bucket: Input::Value("jamjam-logs".into()),
        jurisdiction: Jurisdiction::Default,
        rules: vec![rule],
    };
    lp.validate(&spec).unwrap();
    let created = lp.create(&Ctx::detached("lc"), &spec).await.unwrap();
    assert_eq!(lp.diff(&spec, &created.outputs).action(), Action::NoOp);

    let cors = json!({"rules": [{"id": "web", "allowed": {"methods": ["GET", "PUT"], "origins": ["https://app.example.com"],
        "headers": ["content-type"]}, "exposeHeaders": ["etag"], "maxAgeSeconds": 3600}]});
    Mock::given(method("PUT"))
        .and(path(format!("{}/cors", bucket_path("jamjam-logs"))))
        .and(body_json(cors.clone()))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{}/cors", bucket_path("jamjam-logs"))))
        .respond_with(ok(cors))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{}/cors", bucket_path("jamjam-logs"))))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let cp = BucketCors::new(client(&server));
    let spec = CorsSpec {
        bucket: Input::Value("jamjam-logs".into()),
        jurisdiction: Jurisdiction::Default,
        rules: vec![CorsRule {
            id: Some("web".into()),
            allowed_origins: vec!["https://app.example.com".into()],
            allowed_methods: vec!["GET".into(), "PUT".into()],
            allowed_headers: vec!["content-type".into()],
            expose_headers: vec!["etag".into()],
            max_age_seconds: Some(3600),
        }],
    };
    let created = cp.create(&Ctx::detached("cors"), &spec).await.unwrap();
    assert_eq!(cp.diff(&spec, &created.outputs).action(), Action::NoOp);
    cp.delete(&Ctx::detached("cors"), &created.id, &created.outputs).await.unwrap();
}

#[tokio::test]
async fn the_token_never_appears_in_debug_or_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(fail(403, 10000, "Authentication error")).mount(&server).await;
    let c = client(&server);
    assert!(!format!("{c:?}").contains(TOKEN));
    let e = Buckets::new(c).read(&Ctx::detached("b"), "jamjam-logs", None).await.unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    assert!(!e.to_string().contains(TOKEN) && !format!("{e:?}").contains(TOKEN));
}
