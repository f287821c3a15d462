//! The S3 wire format against a recording fake (wiremock): no `x-amz-checksum-*`,
//! `x-amz-sdk-checksum-algorithm`, `Content-MD5`, `x-amz-acl` or `Expect` on uploads; equal-size
//! parts; retries of 5xx; abort after a part keeps failing.

use std::sync::Arc;
use std::time::Duration;

use stackup_r2::shipper::{MIN_PART_SIZE, MemorySource, ShipOptions, Shipper};
use stackup_r2::{R2Client, R2Config};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const BUCKET: &str = "jamjam-logs";

fn client(server: &MockServer) -> R2Client {
    let c = R2Config::for_endpoint(&server.uri(), "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG")
        .unwrap()
        .with_s3_retry(3, Duration::from_millis(1));
    R2Client::new(c).unwrap()
}

fn options() -> ShipOptions {
    let mut o = ShipOptions::new(BUCKET);
    o.timestamp = "20261125_170000".into();
    o.part_size = MIN_PART_SIZE;
    o.chunk_size = 256 * 1024;
    o.level = 0; // stored deflate blocks: fast in debug builds, same pipeline
    o
}

fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

async fn mount_multipart(server: &MockServer, key_path: &str, part_status: u16) {
    Mock::given(method("HEAD")).and(path(key_path)).respond_with(ResponseTemplate::new(404)).mount(server).await;
    Mock::given(method("POST"))
        .and(path(key_path))
        .and(query_param("uploads", ""))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult><Bucket>jamjam-logs</Bucket>\
             <Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>",
        ))
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path(key_path))
        .and(query_param("uploadId", "up-1"))
        .respond_with(move |req: &Request| {
            let n =
                req.url.query_pairs().find(|(k, _)| k == "partNumber").map(|(_, v)| v.into_owned()).unwrap_or_default();
            ResponseTemplate::new(part_status).insert_header("etag", format!("\"etag-{n}\"").as_str())
        })
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(key_path))
        .and(query_param("uploadId", "up-1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUploadResult><Bucket>jamjam-logs</Bucket>\
             <Key>k</Key><ETag>\"x-3\"</ETag></CompleteMultipartUploadResult>",
        ))
        .mount(server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(key_path))
        .and(query_param("uploadId", "up-1"))
        .respond_with(ResponseTemplate::new(204))
        .mount(server)
        .await;
}

fn forbidden_headers(req: &Request) -> Vec<String> {
    req.headers
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .filter(|k| {
            k.starts_with("x-amz-checksum-")
                || k == "x-amz-sdk-checksum-algorithm"
                || k == "content-md5"
                || k == "x-amz-acl"
                || k.starts_with("x-amz-grant-")
                || k == "expect"
                || k == "content-encoding"
        })
        .collect()
}

#[tokio::test]
async fn multipart_upload_sends_equal_parts_without_checksum_md5_or_acl_headers() {
    let server = MockServer::start().await;
    let key = "20261125_170000/abc.log.gz";
    mount_multipart(&server, &format!("/{BUCKET}/{key}"), 200).await;
    let shipper = Shipper::new(client(&server), options()).unwrap();
    let out = shipper.ship_source(Arc::new(MemorySource::new("noise", noise(11 * 1024 * 1024))), key).await.unwrap();
    assert_eq!(out.parts, 3);

    let reqs = server.received_requests().await.unwrap();
    for r in &reqs {
        assert!(forbidden_headers(r).is_empty(), "{} {} sent {:?}", r.method, r.url, forbidden_headers(r));
    }
    let mut parts: Vec<(u32, usize)> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "PUT")
        .map(|r| {
            let n = r.url.query_pairs().find(|(k, _)| k == "partNumber").unwrap().1.parse().unwrap();
            (n, r.body.len())
        })
        .collect();
    parts.sort();
    assert_eq!(parts.len(), 3);
    assert!(parts[..2].iter().all(|(_, len)| *len == MIN_PART_SIZE), "{parts:?}");
    assert!(parts[2].1 <= MIN_PART_SIZE && parts[2].1 > 0, "{parts:?}");
    assert_eq!(parts.iter().map(|p| p.1 as u64).sum::<u64>(), out.bytes_out);
    // The completion lists the parts in order with their ETags.
    let complete =
        reqs.iter().find(|r| r.method.as_str() == "POST" && r.url.query().unwrap_or("").contains("uploadId")).unwrap();
    let xml = String::from_utf8_lossy(&complete.body);
    for n in 1..=3 {
        assert!(xml.contains(&format!("<PartNumber>{n}</PartNumber>")) && xml.contains(&format!("etag-{n}")), "{xml}");
    }
    // The multipart upload is created with the gzip content type.
    let create =
        reqs.iter().find(|r| r.method.as_str() == "POST" && r.url.query().unwrap_or("").contains("uploads")).unwrap();
    assert_eq!(create.headers.get("content-type").unwrap(), "application/gzip");
}

#[tokio::test]
async fn single_put_is_conditional_and_has_no_checksum_headers() {
    let server = MockServer::start().await;
    let key = "20261125_170000/small.log.gz";
    Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    // First attempt: 503 (retried by the SDK), then success.
    Mock::given(method("PUT"))
        .and(path(format!("/{BUCKET}/{key}")))
        .and(query_param_is_missing("uploadId"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string(
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/{BUCKET}/{key}")))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"abc\""))
        .mount(&server)
        .await;
    let shipper = Shipper::new(client(&server), options()).unwrap();
    let out = shipper.ship_source(Arc::new(MemorySource::new("small", b"hello\n".repeat(1000))), key).await.unwrap();
    assert_eq!(out.parts, 1);
    let puts: Vec<_> =
        server.received_requests().await.unwrap().into_iter().filter(|r| r.method.as_str() == "PUT").collect();
    assert_eq!(puts.len(), 2, "503 retried once");
    for p in &puts {
        assert!(forbidden_headers(p).is_empty(), "{:?}", forbidden_headers(p));
        assert_eq!(p.headers.get("if-none-match").unwrap(), "*");
        assert_eq!(p.headers.get("content-type").unwrap(), "application/gzip");
        assert_eq!(p.headers.get("x-amz-meta-source-bytes").unwrap(), "6000");
    }
}

#[tokio::test]
async fn a_part_that_keeps_failing_aborts_the_upload() {
    let server = MockServer::start().await;
    let key = "20261125_170000/fail.log.gz";
    mount_multipart(&server, &format!("/{BUCKET}/{key}"), 500).await;
    let shipper = Shipper::new(client(&server), options()).unwrap();
    let err =
        shipper.ship_source(Arc::new(MemorySource::new("noise", noise(11 * 1024 * 1024))), key).await.unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    assert!(err.to_string().contains("UploadPart"), "{err}");
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs.iter().any(|r| r.method.as_str() == "DELETE" && r.url.query().unwrap_or("").contains("uploadId=up-1")),
        "AbortMultipartUpload was sent"
    );
    assert!(
        !reqs.iter().any(|r| r.method.as_str() == "POST" && r.url.query().unwrap_or("").contains("uploadId")),
        "never completed"
    );
    // Each failing part was attempted 3 times (the SDK's standard retry).
    let part1 = reqs
        .iter()
        .filter(|r| r.method.as_str() == "PUT" && r.url.query().unwrap_or("").contains("partNumber=1"))
        .count();
    assert_eq!(part1, 3);
}

#[tokio::test]
async fn an_existing_object_is_not_uploaded_again() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"abc\"").insert_header("content-length", "10"))
        .mount(&server)
        .await;
    let shipper = Shipper::new(client(&server), options()).unwrap();
    let out =
        shipper.ship_source(Arc::new(MemorySource::new("x", b"x".to_vec())), "20261125_170000/x.log.gz").await.unwrap();
    assert_eq!(out.status, stackup_r2::shipper::FileStatus::AlreadyShipped);
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1, "only the HEAD");
}

#[tokio::test]
async fn dropped_connections_are_retried_then_reported_as_transport_errors() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        // Read the request, then hang up without answering.
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
            drop(s);
        }
    });
    let config = R2Config::for_endpoint(&format!("http://{addr}"), "AK", "SK")
        .unwrap()
        .with_s3_retry(3, Duration::from_millis(1));
    let shipper = Shipper::new(R2Client::new(config).unwrap(), options()).unwrap();
    let err = shipper.ship_source(Arc::new(MemorySource::new("x", b"x".to_vec())), "t/x.log.gz").await.unwrap_err();
    assert!(matches!(err, stackup_r2::R2Error::Transport { .. }), "{err}");
    assert!(err.to_string().contains("HeadObject"), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "the SDK retried the dropped connection");
    let core: stackup_core::Error = err.into();
    assert!(matches!(core, stackup_core::Error::MaybeSent(_) | stackup_core::Error::Transport(_)), "{core}");
}

fn list_objects_xml(keys: &[&str]) -> String {
    let contents: String = keys.iter().map(|k| format!("<Contents><Key>{k}</Key><Size>1</Size></Contents>")).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>{BUCKET}</Name><KeyCount>{}</KeyCount>\
         <MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
        keys.len()
    )
}

#[tokio::test]
async fn emptying_a_bucket_aborts_every_page_of_pending_multipart_uploads() {
    use stackup_core::Provisioner;
    let server = MockServer::start().await;
    let bucket_path = format!("/{BUCKET}/");
    // One object: listed by the emptiness check and the first emptying pass, then gone.
    Mock::given(method("GET"))
        .and(path(bucket_path.as_str()))
        .and(query_param("list-type", "2"))
        .and(query_param("max-keys", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(list_objects_xml(&["a.log.gz"])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(bucket_path.as_str()))
        .and(query_param("list-type", "2"))
        .and(query_param("max-keys", "1000"))
        .respond_with(ResponseTemplate::new(200).set_body_string(list_objects_xml(&["a.log.gz"])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(bucket_path.as_str()))
        .and(query_param("list-type", "2"))
        .and(query_param("max-keys", "1000"))
        .respond_with(ResponseTemplate::new(200).set_body_string(list_objects_xml(&[])))
        .mount(&server)
        .await;
    // Pending uploads, two pages (R2 and S3 answer at most 1000 per page).
    let page = |uploads: &[(&str, &str)], next: Option<(&str, &str)>| {
        let ups: String =
            uploads.iter().map(|(k, u)| format!("<Upload><Key>{k}</Key><UploadId>{u}</UploadId></Upload>")).collect();
        let next = next
            .map(|(k, u)| format!("<NextKeyMarker>{k}</NextKeyMarker><NextUploadIdMarker>{u}</NextUploadIdMarker>"))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult><Bucket>{BUCKET}</Bucket>{next}\
             <MaxUploads>1</MaxUploads><IsTruncated>{}</IsTruncated>{ups}</ListMultipartUploadsResult>",
            !next.is_empty()
        )
    };
    Mock::given(method("GET"))
        .and(path(bucket_path.as_str()))
        .and(query_param("uploads", ""))
        .and(query_param_is_missing("key-marker"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page(&[("k1", "u1")], Some(("k1", "u1")))))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(bucket_path.as_str()))
        .and(query_param("uploads", ""))
        .and(query_param("key-marker", "k1"))
        .and(query_param("upload-id-marker", "u1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page(&[("k2", "u2")], None)))
        .mount(&server)
        .await;
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&server).await;

    let p = stackup_r2::Buckets::new(client(&server));
    let ctx = stackup_core::Ctx::detached("r2.bucket");
    let observed = stackup_r2::BucketOutputs {
        name: BUCKET.into(),
        jurisdiction: Default::default(),
        location: None,
        storage_class: None,
        creation_date: None,
        s3_endpoint: server.uri(),
        empty_on_delete: true,
    };
    p.delete(&ctx, BUCKET, &observed).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let mut aborted: Vec<(String, String)> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .filter_map(|r| {
            let id = r.url.query_pairs().find(|(k, _)| k == "uploadId")?.1.into_owned();
            Some((r.url.path().to_owned(), id))
        })
        .collect();
    aborted.sort();
    assert_eq!(
        aborted,
        vec![(format!("/{BUCKET}/k1"), "u1".to_owned()), (format!("/{BUCKET}/k2"), "u2".to_owned())],
        "the uploads of both pages are aborted"
    );
    // Then the bucket itself is deleted.
    assert!(
        reqs.iter()
            .any(|r| r.method.as_str() == "DELETE" && r.url.path().trim_end_matches('/') == format!("/{BUCKET}")),
        "DeleteBucket was sent"
    );
}

#[tokio::test]
async fn a_cancelled_shipment_aborts_its_multipart_upload() {
    let server = MockServer::start().await;
    let key = "20261125_170000/cancelled.log.gz";
    let key_path = format!("/{BUCKET}/{key}");
    Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(key_path.as_str()))
        .and(query_param("uploads", ""))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult><Bucket>jamjam-logs</Bucket>\
             <Key>k</Key><UploadId>up-9</UploadId></InitiateMultipartUploadResult>",
        ))
        .mount(&server)
        .await;
    // Parts hang: the caller gives up (a timeout, a cancelled task) while they are in flight.
    Mock::given(method("PUT"))
        .and(path(key_path.as_str()))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"e\"").set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let shipper = Shipper::new(client(&server), options()).unwrap();
    let source = Arc::new(MemorySource::new("noise", noise(11 * 1024 * 1024)));
    let shipped = tokio::time::timeout(Duration::from_secs(2), shipper.ship_source(source, key)).await;
    assert!(shipped.is_err(), "the shipment was cancelled by the timeout");
    let aborted = |reqs: &[Request]| {
        reqs.iter().any(|r| r.method.as_str() == "DELETE" && r.url.query().unwrap_or("").contains("uploadId=up-9"))
    };
    let mut seen = false;
    for _ in 0..50 {
        if aborted(&server.received_requests().await.unwrap()) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "AbortMultipartUpload was sent for the upload the cancelled shipment had started");
}

#[tokio::test]
async fn a_409_conditional_conflict_does_not_stop_the_lock_renewal() {
    use stackup_core::backend::StateBackend;
    use wiremock::matchers::header_exists;
    let server = MockServer::start().await;
    let lock_path = format!("/{BUCKET}/state.json.lock");
    Mock::given(method("PUT"))
        .and(path(lock_path.as_str()))
        .and(header_exists("if-none-match"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"e1\""))
        .mount(&server)
        .await;
    // The first renewal collides with another conditional write (R2 answers 409); later ones pass.
    Mock::given(method("PUT"))
        .and(path(lock_path.as_str()))
        .and(header_exists("if-match"))
        .respond_with(ResponseTemplate::new(409).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ConditionalRequestConflict</Code>\
             <Message>A conflicting operation is in progress on this object.</Message></Error>",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(lock_path.as_str()))
        .and(header_exists("if-match"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"e2\""))
        .mount(&server)
        .await;
    let backend = stackup_r2::R2StateBackend::new(client(&server), BUCKET, "state.json")
        .unwrap()
        .with_stale_lock_policy(stackup_r2::StaleLockPolicy::BreakAfter(Duration::from_millis(150)));
    let mut me = stackup_core::lock::LockInfo::for_operation("apply");
    me.host = "busy-host".into();
    backend.lock(&me).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let renewals = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "PUT" && r.headers.contains_key("if-match"))
        .count();
    assert!(renewals >= 2, "the holder kept renewing after the 409 ({renewals} renewal(s))");
    assert_eq!(backend.held_lock_etag().as_deref(), Some("\"e2\""));
}
