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
