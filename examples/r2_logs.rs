//! Seed 001's log bucket on Cloudflare R2 (recipe `logs_to_r2`): the private bucket
//! `jamjam-logs` and the configuration of the shipper that replaces the hourly cron script, with
//! the seed's environment (`R2_*`, secret redacted) and `rclone.conf` section.
//!
//! ```text
//! cargo run -p stackup --features r2 --example r2_logs -- plan
//! R2_ACCOUNT_ID=… R2_ACCESS_KEY_ID=… R2_SECRET_ACCESS_KEY=… \
//!     cargo run -p stackup --features r2 --example r2_logs -- apply --bucket jamjam-logs --retention-days 365
//! ```
//!
//! Without the `R2_*` credentials `plan` runs offline against an empty state and says so
//! (`R2_ENDPOINT` points at another S3-compatible server, `CLOUDFLARE_API_TOKEN` enables the
//! REST API for bucket settings). Then ship with `stackup-r2`'s `r2_ship_logs` (cron
//! `0 * * * *`), or put [`LogsToR2::ship_from_vm`]'s files on the machine (printed by `plan`).

use std::process::ExitCode;

use stackup::cli::{Cli, Command};
use stackup::prelude::*;
use stackup::r2::{R2Client, R2Config};
use stackup::recipes::logs_to_r2::{LogsToR2, ShipperCredentials};

/// Placeholder account for offline plans (32 hex characters, never called).
const OFFLINE_ACCOUNT: &str = "00000000000000000000000000000000";

fn recipe(cli: &Cli) -> Result<LogsToR2, Error> {
    let mut r = LogsToR2::new();
    if let Some(b) = cli.option("bucket").map(str::to_owned).or_else(|| std::env::var("R2_BUCKET_NAME").ok()) {
        r = r.bucket(b);
    }
    if let Some(d) = cli.option("retention-days") {
        r = r.retention_days(d.parse().map_err(|_| Error::invalid("--retention-days", "whole days"))?);
    }
    if let Some(p) = cli.option("key-prefix") {
        r = r.key_prefix(p);
    }
    Ok(r)
}

async fn run() -> Result<ExitCode, Error> {
    let mut cli = Cli::from_env()?;
    let (client, shipper) = match (R2Client::from_env().map_err(Error::from), ShipperCredentials::from_env()) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            if cli.command != Command::Plan {
                return Err(Error::Config(format!("{e}; `plan` works without credentials")));
            }
            cli.offline = true;
            let placeholder = R2Config::new(OFFLINE_ACCOUNT, "offline", "offline")?;
            (
                R2Client::new(placeholder)?,
                ShipperCredentials::new(OFFLINE_ACCOUNT, "<R2_ACCESS_KEY_ID>", Secret::new("offline")),
            )
        }
    };
    let recipe = recipe(&cli)?;
    let mut stack = Stack::new("jamjam-logs");
    let out = recipe.add_to(&mut stack, &client)?;
    if cli.command == Command::Plan && !cli.json {
        println!("shipper: {} -> {}:{}", out.glob, recipe.bucket_name(), out.ship_options.key_for("<container_id>"));
        println!("\nenvironment:\n{}", recipe.environment(&shipper));
        println!("rclone.conf:\n{}", recipe.rclone_conf(&shipper)?);
        println!("first boot of a machine that ships its logs (cloud-init):\n");
        println!("{}", recipe.ship_from_vm(CloudConfig::new(), &shipper)?.preview());
    }
    let backend = cli.backend("jamjam-logs.stackup.json").await?;
    let engine = cli.engine(stack, backend)?;
    stackup::cli::run(&cli, &engine).await
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
