//! The log shipper against the local S3 server (moto): multipart content round trip, rerun
//! idempotency, abort on failure, bad inputs.

mod common;

use std::io::Read;
use std::sync::Arc;

use stackup_r2::R2Error;
use stackup_r2::shipper::{EXIT_OK, EXIT_PARTIAL, MIN_PART_SIZE, MemorySource, ShipOptions, Shipper, Source};

fn options(bucket: &str) -> ShipOptions {
    let mut o = ShipOptions::new(bucket);
    o.timestamp = "20261125_160000".into();
    o.part_size = MIN_PART_SIZE;
    o.chunk_size = 256 * 1024;
    o.level = 0; // debug builds deflate slowly; chunking, ordering, parts and CRCs are the same at every level
    o
}

/// Random bytes (barely compressible): a few MiB give several parts.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn download(
    client: &stackup_r2::R2Client,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, aws_sdk_s3::operation::get_object::GetObjectOutput) {
    let mut out = client.s3().unwrap().get_object().bucket(bucket).key(key).send().await.unwrap();
    let body = std::mem::take(&mut out.body).collect().await.unwrap().into_bytes().to_vec();
    (body, out)
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut back).unwrap();
    back
}

async fn pending_uploads(client: &stackup_r2::R2Client, bucket: &str) -> usize {
    client.s3().unwrap().list_multipart_uploads().bucket(bucket).send().await.unwrap().uploads().len()
}

#[tokio::test]
async fn multipart_ship_round_trips_and_reruns_idempotently() {
    let client = common::moto_client();
    let bucket = common::unique("stackup-ship");
    common::create_bucket(&client, &bucket).await;
    let dir = tempfile::tempdir().unwrap();
    // Two containers in Docker's layout: one big (several parts), one small (single PutObject).
    let big_id = "a1b2c3d4e5f6";
    let small_id = "0f0e0d0c0b0a";
    let mut big = noise(10 * 1024 * 1024, 7);
    big.extend_from_slice(&common::docker_log(1024 * 1024, 1));
    let small = common::docker_log(300 * 1024, 2);
    for (id, data) in [(big_id, &big), (small_id, &small)] {
        std::fs::create_dir_all(dir.path().join(id)).unwrap();
        std::fs::write(dir.path().join(id).join(format!("{id}-json.log")), data).unwrap();
    }
    let shipper = Shipper::new(client.clone(), options(&bucket)).unwrap();
    let pattern = format!("{}/*/*-json.log", dir.path().display());
    let items = shipper.plan(&pattern).unwrap();
    assert_eq!(items.len(), 2);

    let report = shipper.ship(&items).await;
    assert_eq!(report.exit_code(), EXIT_OK, "{report}");
    assert_eq!((report.uploaded(), report.skipped(), report.failed()), (2, 0, 0));
    let line = report.to_string();
    assert!(
        line.contains("shipped 2 file(s)")
            && line.contains("ratio")
            && line.contains("MiB/s")
            && line.contains("MiB in"),
        "{line}"
    );

    for (id, data) in [(big_id, &big), (small_id, &small)] {
        let key = format!("20261125_160000/{id}.log.gz");
        let (gz, out) = download(&client, &bucket, &key).await;
        assert_eq!(gunzip(&gz), *data, "{key} content");
        assert_eq!(out.content_type(), Some("application/gzip"));
        assert_eq!(out.content_encoding(), None, "no Content-Encoding: clients must not decompress on GET");
    }
    let (_, big_item_outcome) = &report.files.iter().find(|(i, _)| i.container_id == big_id).unwrap();
    let outcome = big_item_outcome.as_ref().unwrap();
    assert!(outcome.parts >= 3, "{outcome:?}");
    let head = client.s3().unwrap().head_object().bucket(&bucket).key(&outcome.key).send().await.unwrap();
    assert!(head.e_tag().unwrap().ends_with(&format!("-{}\"", outcome.parts)), "{:?}", head.e_tag());
    assert_eq!(pending_uploads(&client, &bucket).await, 0);

    // Rerun with the same timestamp: nothing is uploaded twice.
    let again = shipper.ship(&items).await;
    assert_eq!((again.uploaded(), again.skipped(), again.failed()), (0, 2, 0), "{again}");
    assert_eq!(again.exit_code(), EXIT_OK);
    let head2 = client.s3().unwrap().head_object().bucket(&bucket).key(&outcome.key).send().await.unwrap();
    assert_eq!(head2.last_modified(), head.last_modified());
    common::cleanup(&client, &bucket).await;
}

/// Fails every read past `fail_after` bytes, like a disk error mid-file.
struct FailingSource {
    inner: MemorySource,
    fail_after: u64,
}

impl Source for FailingSource {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if offset + buf.len() as u64 > self.fail_after {
            return Err(std::io::Error::other("injected read failure"));
        }
        self.inner.read_at(buf, offset)
    }
    fn describe(&self) -> String {
        "failing-source".into()
    }
}

#[tokio::test]
async fn a_failure_mid_file_aborts_the_multipart_upload() {
    let client = common::moto_client();
    let bucket = common::unique("stackup-abort");
    common::create_bucket(&client, &bucket).await;
    let shipper = Shipper::new(client.clone(), options(&bucket)).unwrap();
    let source =
        FailingSource { inner: MemorySource::new("noise", noise(12 * 1024 * 1024, 3)), fail_after: 9 * 1024 * 1024 };
    let err = shipper.ship_source(Arc::new(source), "20261125_160000/broken.log.gz").await.unwrap_err();
    assert!(matches!(err, R2Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("injected read failure"), "{err}");
    assert_eq!(pending_uploads(&client, &bucket).await, 0, "the multipart upload was aborted");
    let head = client.s3().unwrap().head_object().bucket(&bucket).key("20261125_160000/broken.log.gz").send().await;
    assert!(head.is_err(), "no object was completed");
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn bad_inputs_give_clear_errors_and_lose_nothing() {
    let client = common::moto_client();
    let bucket = common::unique("stackup-badin");
    common::create_bucket(&client, &bucket).await;
    let shipper = Shipper::new(client.clone(), options(&bucket)).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let e = shipper.plan(&format!("{}/*/*-json.log", dir.path().display())).unwrap_err();
    assert!(
        matches!(&e, R2Error::InvalidInput { field, rule } if field == "glob" && rule.contains("matched no files")),
        "{e}"
    );
    let e = shipper.plan("[").unwrap_err();
    assert!(matches!(&e, R2Error::InvalidInput { field, .. } if field == "glob"), "{e}");

    // One readable file and one that cannot be opened (a dangling symlink).
    std::fs::write(dir.path().join("good.log"), common::docker_log(10_000, 5)).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("missing-target"), dir.path().join("broken.log")).unwrap();
    let items = shipper.plan(&format!("{}/*.log", dir.path().display())).unwrap();
    let report = shipper.ship(&items).await;
    #[cfg(unix)]
    {
        assert_eq!((report.uploaded(), report.failed()), (1, 1), "{report}");
        assert_eq!(report.exit_code(), EXIT_PARTIAL);
        let (_, failed) = report.files.iter().find(|(i, _)| i.container_id == "broken").unwrap();
        let e = failed.as_ref().unwrap_err();
        assert!(e.to_string().contains("broken.log"), "the error names the file: {e}");
    }
    assert!(dir.path().join("good.log").exists(), "local files are never removed");

    // Bad options fail before any call.
    let e =
        Shipper::new(client.clone(), ShipOptions { timestamp: "yesterday".into(), ..options(&bucket) }).unwrap_err();
    assert!(matches!(&e, R2Error::InvalidInput { field, .. } if field == "timestamp"), "{e}");
    common::cleanup(&client, &bucket).await;
}

#[tokio::test]
async fn level_6_output_is_a_standard_gzip_of_the_input() {
    let client = common::moto_client();
    let bucket = common::unique("stackup-lvl6");
    common::create_bucket(&client, &bucket).await;
    let shipper =
        Shipper::new(client.clone(), ShipOptions { level: 6, chunk_size: 64 * 1024, ..options(&bucket) }).unwrap();
    let data = common::docker_log(200 * 1024, 9);
    let out = shipper.ship_source(Arc::new(MemorySource::new("log", data.clone())), "lvl6/x.log.gz").await.unwrap();
    assert!(out.bytes_out * 3 < out.bytes_in, "compressed: {out:?}");
    let (gz, _) = download(&client, &bucket, "lvl6/x.log.gz").await;
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 0x08], "gzip magic + deflate");
    assert_eq!(gunzip(&gz), data);
    common::cleanup(&client, &bucket).await;
}
