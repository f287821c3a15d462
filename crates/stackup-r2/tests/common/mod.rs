//! Shared test helpers: the local S3 server (moto) and unique names.
#![allow(dead_code)]

use std::time::Duration;

use stackup_r2::{R2Client, R2Config};

/// The local S3 server (`bash scripts/test-services.sh start`), checked to be up.
pub fn s3_endpoint() -> String {
    let endpoint = std::env::var("STACKUP_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned());
    let url = url::Url::parse(&endpoint).expect("STACKUP_TEST_S3_ENDPOINT is a URL");
    let addr = format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port_or_known_default().unwrap_or(80));
    let up = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    assert!(
        up,
        "the local S3 server is not reachable at {endpoint} (STACKUP_TEST_S3_ENDPOINT); \
         start it with `bash scripts/test-services.sh start`"
    );
    endpoint
}

/// A client for the local S3 server, region `us-east-1`, fast retries.
pub fn moto_client() -> R2Client {
    let config = R2Config::for_endpoint(&s3_endpoint(), "stackup-test", "stackup-test-secret")
        .unwrap()
        .with_s3_retry(3, Duration::from_millis(5));
    R2Client::new(config).unwrap()
}

/// A unique lowercase name with `prefix`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish() as u32
}

/// Creates a bucket directly through S3 (test setup).
pub async fn create_bucket(client: &R2Client, name: &str) {
    client.s3().unwrap().create_bucket().bucket(name).send().await.unwrap();
}

/// Deletes every object and the bucket (test cleanup); ignores errors.
pub async fn cleanup(client: &R2Client, name: &str) {
    let s3 = client.s3().unwrap();
    if let Ok(list) = s3.list_objects_v2().bucket(name).send().await {
        for o in list.contents() {
            let _ = s3.delete_object().bucket(name).key(o.key().unwrap_or_default()).send().await;
        }
    }
    if let Ok(up) = s3.list_multipart_uploads().bucket(name).send().await {
        for u in up.uploads() {
            let _ = s3
                .abort_multipart_upload()
                .bucket(name)
                .key(u.key().unwrap_or_default())
                .upload_id(u.upload_id().unwrap_or_default())
                .send()
                .await;
        }
    }
    let _ = s3.delete_bucket().bucket(name).send().await;
}

/// A JSON-lines Docker log of about `bytes` bytes, moderately compressible like real logs.
pub fn docker_log(bytes: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 256);
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut i = 0u64;
    while out.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
        let line = format!(
            "{{\"log\":\"{} req={:016x} path=/api/v1/rooms/{} status={} dur={}ms\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-25T16:{:02}:{:02}.{:09}Z\"}}\n",
            ["INFO", "WARN", "DEBUG", "ERROR"][(x % 4) as usize],
            x,
            x % 5000,
            [200, 201, 204, 400, 404, 500][(x >> 8) as usize % 6],
            (x >> 16) % 2000,
            (i / 60) % 60,
            i % 60,
            x % 1_000_000_000
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(bytes);
    out
}
