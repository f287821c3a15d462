//! Ships Docker container logs to Cloudflare R2 as gzip objects: a drop-in for the cron job
//!
//! ```sh
//! gzip -c "$log" | rclone rcat r2:jamjam-logs/${TIMESTAMP}/${container_id}.log.gz
//! ```
//!
//! Same keys (`{YYYYmmdd_HHMMSS}/{container_id}.log.gz`), same environment
//! (`R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY`, `R2_ACCOUNT_ID`, `R2_BUCKET_NAME`), but
//! compression on every core, several parts uploading at once, bounded memory, no orphaned
//! multipart uploads, and reruns with `--timestamp` that never upload a file twice.
//!
//! ```sh
//! # crontab: 0 * * * * /opt/jamjam/bin/r2_ship_logs
//! cargo run -p stackup-r2 --example r2_ship_logs -- --help
//! ```
//!
//! Without credentials it only plans (lists files and keys) and says so. Exit codes: 0 all
//! shipped (or already shipped), 1 some files failed (others shipped; local files untouched),
//! 2 bad input or configuration (nothing uploaded).

use std::process::ExitCode;

use stackup_core::Provisioner;
use stackup_r2::shipper::rclone::{SecretInConfig, rclone_section};
use stackup_r2::shipper::{DEFAULT_GLOB, EXIT_USAGE, ShipOptions, Shipper};
use stackup_r2::{BucketSpec, Buckets, R2Client, R2Config};

const HELP: &str = "\
r2_ship_logs: gzip container logs and upload them to R2

USAGE: r2_ship_logs [OPTIONS]

OPTIONS:
  --glob PATTERN          files to ship [default: /var/lib/docker/containers/*/*-json.log]
  --bucket NAME           target bucket [default: $R2_BUCKET_NAME]
  --prefix PREFIX         key prefix before the timestamp [default: none]
  --timestamp TS          YYYYmmdd_HHMMSS segment; reuse one to rerun without duplicates [default: now, UTC]
  --part-size-mib N       multipart part size, 5..=5120 [default: 8]
  --uploads N             parts uploading at once [default: 3]
  --threads N             compression threads [default: all cores]
  --level N               gzip level 0..=9 (0 = store) [default: 5, within ~3% of gzip -6's size]
  --ensure-bucket         create the bucket first if it does not exist
  --print-rclone-conf     print the rclone.conf section (secret replaced by a placeholder) and exit
  --write-rclone-conf F   write the rclone.conf section with the secret to F (mode 0600) and exit
  --dry-run               plan only: list files and keys, upload nothing
  -h, --help              this help

ENVIRONMENT:
  R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_ACCOUNT_ID, R2_BUCKET_NAME
  R2_ENDPOINT (S3 endpoint override, e.g. http://127.0.0.1:5055), R2_REGION [default: auto]
  CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID (bucket creation through the REST API)
";

struct Args {
    glob: String,
    bucket: Option<String>,
    prefix: String,
    timestamp: Option<String>,
    part_size_mib: usize,
    uploads: Option<usize>,
    threads: Option<usize>,
    level: u32,
    ensure_bucket: bool,
    print_rclone: bool,
    write_rclone: Option<String>,
    dry_run: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        glob: DEFAULT_GLOB.to_owned(),
        bucket: std::env::var("R2_BUCKET_NAME").ok().filter(|b| !b.is_empty()),
        prefix: String::new(),
        timestamp: None,
        part_size_mib: 8,
        uploads: None,
        threads: None,
        level: 5,
        ensure_bucket: false,
        print_rclone: false,
        write_rclone: None,
        dry_run: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<usize>().map_err(|_| format!("{name}: `{v}` is not a number"));
        match arg.as_str() {
            "--glob" => a.glob = value("--glob")?,
            "--bucket" => a.bucket = Some(value("--bucket")?),
            "--prefix" => a.prefix = value("--prefix")?,
            "--timestamp" => a.timestamp = Some(value("--timestamp")?),
            "--part-size-mib" => a.part_size_mib = number("--part-size-mib", value("--part-size-mib")?)?,
            "--uploads" => a.uploads = Some(number("--uploads", value("--uploads")?)?),
            "--threads" => a.threads = Some(number("--threads", value("--threads")?)?),
            "--level" => a.level = number("--level", value("--level")?)? as u32,
            "--ensure-bucket" => a.ensure_bucket = true,
            "--print-rclone-conf" => a.print_rclone = true,
            "--write-rclone-conf" => a.write_rclone = Some(value("--write-rclone-conf")?),
            "--dry-run" => a.dry_run = true,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(a)
}

fn has_credentials() -> bool {
    ["R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"].iter().all(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
        && ["R2_ACCOUNT_ID", "R2_ENDPOINT"].iter().any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE as u8)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return usage_error(e),
    };
    if args.print_rclone || args.write_rclone.is_some() {
        let config = match R2Config::from_env() {
            Ok(c) => c,
            Err(e) => return usage_error(format!("{e} (the rclone section needs the R2_* variables)")),
        };
        if args.print_rclone {
            print!("{}", rclone_section("r2", &config, stackup_r2::Jurisdiction::Default, SecretInConfig::Placeholder));
        }
        if let Some(path) = &args.write_rclone {
            let section = rclone_section("r2", &config, stackup_r2::Jurisdiction::Default, SecretInConfig::Include);
            if let Err(e) = write_private(path, &section) {
                return usage_error(format!("writing {path}: {e}"));
            }
            eprintln!("wrote rclone remote `r2` to {path} (mode 0600)");
        }
        return ExitCode::SUCCESS;
    }

    let online = has_credentials() && !args.dry_run;
    let bucket = match (&args.bucket, online) {
        (Some(b), _) => b.clone(),
        (None, false) => "jamjam-logs".to_owned(),
        (None, true) => return usage_error("no bucket: pass --bucket or set R2_BUCKET_NAME"),
    };
    let mut opts = ShipOptions::new(bucket);
    opts.prefix = args.prefix.clone();
    if let Some(ts) = &args.timestamp {
        opts.timestamp = ts.clone();
    }
    opts.part_size = args.part_size_mib.saturating_mul(1024 * 1024);
    if let Some(u) = args.uploads {
        opts.upload_concurrency = u;
    }
    if let Some(t) = args.threads {
        opts.compression_threads = t;
    }
    opts.level = args.level;
    if let Err(e) = opts.validate() {
        return usage_error(e);
    }

    let items = match opts.plan(&args.glob) {
        Ok(items) => items,
        Err(e) => return usage_error(e),
    };
    if !online {
        println!(
            "{}: plan only, nothing will be uploaded",
            if args.dry_run {
                "dry run"
            } else {
                "no R2 credentials (R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_ACCOUNT_ID)"
            }
        );
        for item in &items {
            let size = std::fs::metadata(&item.path).map(|m| m.len()).unwrap_or(0);
            println!("  + {} ({size} bytes) -> r2:{}/{}", item.path.display(), opts.bucket, item.key);
        }
        println!("plan: {} file(s) to ship to bucket {}", items.len(), opts.bucket);
        return ExitCode::SUCCESS;
    }

    let client = match R2Client::from_env() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    if args.ensure_bucket {
        let buckets = Buckets::new(client.clone());
        let ctx = stackup_core::Ctx::detached("r2_ship_logs.bucket");
        let spec = BucketSpec::new(&opts.bucket);
        match buckets.lookup(&ctx, &spec).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Err(e) = buckets.create(&ctx, &spec).await {
                    eprintln!("error: creating bucket {}: {}", opts.bucket, e.error);
                    return ExitCode::from(1);
                }
                eprintln!("created bucket {}", opts.bucket);
            }
            Err(e) => {
                eprintln!("error: checking bucket {}: {e}", opts.bucket);
                return ExitCode::from(1);
            }
        }
    }
    let shipper = match Shipper::new(client, opts) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let report = shipper.ship(&items).await;
    for (item, result) in &report.files {
        match result {
            Ok(o) => println!(
                "  {:?} {} -> {} ({} -> {} bytes, {} part(s))",
                o.status,
                item.path.display(),
                o.key,
                o.bytes_in,
                o.bytes_out,
                o.parts
            ),
            Err(e) => eprintln!("  FAILED {}: {e}", item.path.display()),
        }
    }
    println!("{report}");
    ExitCode::from(report.exit_code() as u8)
}

fn write_private(path: &str, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(contents.as_bytes())
}
