//! Benchmark: our shipper vs `gzip -6 -c | rclone rcat`, to the same S3 server.
//!
//! Generates a JSON-lines Docker log (default 1 GiB), ships it with [`stackup_r2::shipper`],
//! then ships the same file with `gzip -c | rclone rcat`, and prints both throughputs, both
//! object sizes, our peak RSS, and finally
//! `ship ratio vs rclone: X, peak rss MiB: Y`.
//!
//! ```sh
//! bash scripts/test-services.sh start          # moto[server] on 127.0.0.1:5055
//! apt-get install -y rclone                    # Debian's rclone (not needed by CI)
//! cargo run --release -p stackup-r2 --example r2_ship_bench -- --size-mib 1024
//! ```
//!
//! Options: `--size-mib N` (default 1024), `--endpoint URL` (default
//! `$STACKUP_TEST_S3_ENDPOINT` or `http://127.0.0.1:5055`), `--keep` (keep the bucket).
//! Peak RSS is this process's `VmHWM`, read right after our upload (the file is generated with
//! a small buffer, and rclone runs as a child process, so neither counts).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use stackup_r2::shipper::{ShipOptions, Shipper};
use stackup_r2::{R2Client, R2Config};

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Writes `bytes` of Docker json-file lines: realistic mix of levels, ids, paths, latencies.
fn generate(path: &Path, bytes: u64) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let (mut written, mut i) = (0u64, 0u64);
    let levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
    let paths = ["/ws", "/api/v1/rooms", "/api/v1/rooms/join", "/healthz", "/api/v1/echo", "/api/v1/users/me"];
    let msgs = [
        "request completed",
        "peer connected",
        "peer disconnected",
        "signaling offer relayed",
        "ice candidate relayed",
        "room created",
        "slow upstream",
    ];
    let mut line = String::with_capacity(512);
    while written < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "{{\"log\":\"{}Z {} signaling_server: {} room={:08x} peer={:016x} path={} status={} latency_ms={}\\n\",\"stream\":\"{}\",\"time\":\"2026-11-25T{:02}:{:02}:{:02}.{:09}Z\"}}",
            format_args!(
                "2026-11-25T{:02}:{:02}:{:02}.{:06}",
                (i / 3_600_000) % 24,
                (i / 60_000) % 60,
                (i / 1000) % 60,
                x % 1_000_000
            ),
            levels[(x % levels.len() as u64) as usize],
            msgs[((x >> 8) % msgs.len() as u64) as usize],
            (x >> 20) % 4096,
            x.rotate_left(17) % 100_000,
            paths[((x >> 12) % paths.len() as u64) as usize],
            [200, 200, 200, 101, 204, 404, 500][((x >> 4) % 7) as usize],
            (x >> 30) % 900,
            if x.is_multiple_of(11) { "stderr" } else { "stdout" },
            (i / 3_600_000) % 24,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            x % 1_000_000_000
        );
        let take = (bytes - written).min(line.len() as u64) as usize;
        w.write_all(&line.as_bytes()[..take])?;
        written += take as u64;
    }
    w.flush()
}

fn rclone_conf(dir: &Path, endpoint: &str) -> std::io::Result<std::path::PathBuf> {
    let p = dir.join("rclone.conf");
    std::fs::write(
        &p,
        format!(
            "[bench]\ntype = s3\nprovider = Other\naccess_key_id = bench\nsecret_access_key = bench-secret\n\
             endpoint = {endpoint}\nregion = us-east-1\nforce_path_style = true\nacl = private\nno_head = true\n"
        ),
    )?;
    Ok(p)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut size_mib: u64 = 1024;
    let mut endpoint = std::env::var("STACKUP_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned());
    let mut keep = false;
    let mut level: u32 = ShipOptions::new("x-y-z").level;
    let mut skip_rclone = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--size-mib" => size_mib = it.next().ok_or("--size-mib needs a value")?.parse()?,
            "--endpoint" => endpoint = it.next().ok_or("--endpoint needs a value")?,
            "--keep" => keep = true,
            "--level" => level = it.next().ok_or("--level needs a value")?.parse()?,
            "--no-rclone" => skip_rclone = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    // rclone 1.60 fails with LoadCustomCABundleError when AWS_CA_BUNDLE is set.
    let rclone_version =
        Command::new("rclone").arg("version").env_remove("AWS_CA_BUNDLE").output().ok().filter(|o| o.status.success());
    let Some(rclone_version) = rclone_version else {
        return Err("rclone not found: install Debian's rclone (apt-get install -y rclone)".into());
    };
    let rclone_version = String::from_utf8_lossy(&rclone_version.stdout).lines().next().unwrap_or("").to_owned();
    let server = reqwest_server_header(&endpoint);

    let dir = tempfile::tempdir()?;
    let log = dir.path().join("bench-json.log");
    let t = Instant::now();
    generate(&log, size_mib * 1024 * 1024)?;
    let bytes_in = std::fs::metadata(&log)?.len();
    println!("input: {:.1} MiB of JSON lines generated in {:.1}s", mib(bytes_in), t.elapsed().as_secs_f64());
    println!("server: {server} at {endpoint}; {rclone_version}; {} cores", std::thread::available_parallelism()?);

    let config = R2Config::for_endpoint(&endpoint, "bench", "bench-secret")?;
    let client = R2Client::new(config)?;
    let s3 = client.s3()?.clone();
    let bucket = format!("stackup-bench-{:08x}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await?;
    // moto answers `x-amz-version-id: null` on an unversioned bucket, and rclone 1.60 then sends
    // `HEAD ?versionId=null`, which moto rejects (400): versioning gives rclone a real version id.
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await?;

    // Ours.
    let mut opts = ShipOptions::new(&bucket);
    opts.timestamp = "20261125_000000".into();
    opts.level = level;
    let threads = opts.compression_threads;
    let (part_mib, uploads) = (opts.part_size / (1024 * 1024), opts.upload_concurrency);
    let shipper = Shipper::new(client.clone(), opts)?;
    let t = Instant::now();
    let ours = shipper.ship_file(&log, "stackup/bench.log.gz").await?;
    let ours_secs = t.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    let ours_size =
        s3.head_object().bucket(&bucket).key("stackup/bench.log.gz").send().await?.content_length().unwrap_or(0) as u64;
    let ours_tp = mib(bytes_in) / ours_secs;
    println!(
        "stackup: {:.1} MiB in {:.2}s = {:.1} MiB/s; object {:.2} MiB ({} bytes) in {} parts ({} MiB parts, {} uploads in flight, {} compression threads, zlib-rs level {})",
        mib(bytes_in),
        ours_secs,
        ours_tp,
        mib(ours_size),
        ours_size,
        ours.parts,
        part_mib,
        uploads,
        threads,
        level
    );
    if skip_rclone {
        println!("peak rss MiB: {rss:.1} (rclone skipped)");
        return Ok(());
    }

    // rclone: the seed's pipeline.
    let conf = rclone_conf(dir.path(), &endpoint)?;
    let t = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -6 -c '{}' | rclone --config '{}' rcat 'bench:{bucket}/rclone/bench.log.gz'",
            log.display(),
            conf.display()
        ))
        .env_remove("AWS_CA_BUNDLE")
        .stdout(Stdio::null())
        .status()?;
    let rclone_secs = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("gzip | rclone rcat failed: {status}").into());
    }
    let rclone_size =
        s3.head_object().bucket(&bucket).key("rclone/bench.log.gz").send().await?.content_length().unwrap_or(0) as u64;
    let rclone_tp = mib(bytes_in) / rclone_secs;
    println!(
        "rclone:  gzip -6 -c | rclone rcat: {:.1} MiB in {:.2}s = {:.1} MiB/s; object {:.2} MiB",
        mib(bytes_in),
        rclone_secs,
        rclone_tp,
        mib(rclone_size)
    );

    // Context: gzip -6 alone (the rclone pipeline's compressor, no upload).
    let t = Instant::now();
    let gz = Command::new("sh").arg("-c").arg(format!("gzip -6 -c '{}' | wc -c", log.display())).output()?;
    let gzip_secs = t.elapsed().as_secs_f64();
    let gzip_size: u64 = String::from_utf8_lossy(&gz.stdout).trim().parse().unwrap_or(0);
    println!("gzip -6 alone (no upload): {:.1} MiB/s, {:.2} MiB", mib(bytes_in) / gzip_secs, mib(gzip_size));
    println!(
        "size: ours {} bytes vs gzip -6 {} bytes ({:+.2}%), compression ratio {:.2}x",
        ours_size,
        gzip_size,
        (ours_size as f64 / gzip_size as f64 - 1.0) * 100.0,
        bytes_in as f64 / ours_size as f64
    );

    // Verify our object is a gzip of the input (size from the gzip trailer, full check with gunzip).
    let verify = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "rclone --config '{}' cat 'bench:{bucket}/stackup/bench.log.gz' | gunzip -c | cmp - '{}' && echo same",
            conf.display(),
            log.display()
        ))
        .env_remove("AWS_CA_BUNDLE")
        .output()?;
    println!(
        "verify: downloaded + gunzip equals the input: {}",
        String::from_utf8_lossy(&verify.stdout).trim() == "same"
    );

    if !keep {
        let versions = s3.list_object_versions().bucket(&bucket).send().await?;
        for v in versions.versions() {
            let _ = s3
                .delete_object()
                .bucket(&bucket)
                .key(v.key().unwrap_or_default())
                .set_version_id(v.version_id().map(str::to_owned))
                .send()
                .await;
        }
        for m in versions.delete_markers() {
            let _ = s3
                .delete_object()
                .bucket(&bucket)
                .key(m.key().unwrap_or_default())
                .set_version_id(m.version_id().map(str::to_owned))
                .send()
                .await;
        }
        let _ = s3.delete_bucket().bucket(&bucket).send().await;
    }
    println!("ship ratio vs rclone: {:.2}, peak rss MiB: {:.1}", ours_tp / rclone_tp, rss);
    Ok(())
}

/// Names the server from its `Server` header (moto answers `Werkzeug/...`), best effort.
fn reqwest_server_header(endpoint: &str) -> String {
    let out = Command::new("curl").args(["-sI", endpoint]).output();
    let server = out
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .and_then(|s| {
            s.lines().find(|l| l.to_ascii_lowercase().starts_with("server:")).map(|l| l[7..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("S3 server (Server: {server}; moto[server] 5.2.5 when started by scripts/test-services.sh)")
}
