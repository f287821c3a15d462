//! Three providers in one stack (recipe `full_stack`): seed 004's Always Free VM on Oracle
//! Cloud joins seed 002's tailnet with an auth key minted in the same apply (`tailscale up
//! --authkey=… --hostname=egograph-prod`, then `tailscale serve --bg http://127.0.0.1:8000`),
//! the device wait follows the VM, and the VM ships its container logs hourly to seed 001's R2
//! bucket with the R2 credentials it is given.
//!
//! ```text
//! cargo run -p stackup --features oci,r2,tailscale --example full_stack -- plan
//! STACKUP_STATE_KEY=… cargo run -p stackup --features oci,r2,tailscale --example full_stack -- apply \
//!     --state r2://stackup-state/egograph.json
//! ```
//!
//! `plan` needs no credentials: without `~/.oci/config`, `TAILSCALE_API_KEY` and the `R2_*`
//! variables it plans offline against an empty state and says so. `apply` needs all three;
//! `STACKUP_STATE_KEY` is recommended (state then keeps the CI key, encrypted, for `output`).
//! The VM's first boot is create-only: `--replace oci/vm` runs a changed one.

use std::process::ExitCode;
use std::time::Duration;

use stackup::cli::{Cli, Command};
use stackup::oci::OciClient;
use stackup::prelude::*;
use stackup::r2::{R2Client, R2Config};
use stackup::recipes::free_tier_on_oci::FreeTierOnOci;
use stackup::recipes::full_stack::{FullStack, FullStackClients};
use stackup::recipes::logs_to_r2::ShipperCredentials;
use stackup::recipes::tailnet_server::TailnetServer;
use stackup::tailscale::TailscaleClient;

const OFFLINE_TENANCY: &str = "ocid1.tenancy.oc1..offlineplaceholder";
const OFFLINE_ACCOUNT: &str = "00000000000000000000000000000000";
const OFFLINE_SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfflinePlanPlaceholderKey offline@stackup";

async fn run() -> Result<ExitCode, Error> {
    let mut cli = Cli::from_env()?;
    let oci = OciClient::from_env();
    let tailscale = TailscaleClient::builder().from_env().build_offline_ok()?;
    let r2 = R2Client::from_env().map_err(Error::from);
    let shipper = ShipperCredentials::from_env();
    let ssh_key = std::env::var("STACKUP_OCI_SSH_PUBLIC_KEY").ok().or_else(|| {
        let home = std::env::var_os("HOME")?;
        std::fs::read_to_string(std::path::Path::new(&home).join(".ssh/id_ed25519.pub")).ok()
    });
    let missing: Vec<String> = [
        oci.as_ref().err().map(|e| format!("OCI ({e})")),
        (!tailscale.has_credentials()).then(|| "Tailscale (TAILSCALE_API_KEY)".to_owned()),
        r2.as_ref().err().map(|e| format!("R2 ({e})")),
        shipper.as_ref().err().map(|e| format!("shipper ({e})")),
        ssh_key.is_none().then(|| "an SSH public key (STACKUP_OCI_SSH_PUBLIC_KEY or ~/.ssh/id_ed25519.pub)".into()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        if cli.command != Command::Plan {
            return Err(Error::Config(format!("missing: {}; `plan` works without them", missing.join(", "))));
        }
        cli.offline = true;
    }
    if cli.command == Command::Apply && std::env::var_os("STACKUP_STATE_KEY").is_none() {
        eprintln!(
            "note: STACKUP_STATE_KEY is not set, so state keeps no secrets: the CI key (TS_AUTHKEY) is shown \
             once, now, and `--replace oci/vm` later needs `--replace tailnet/server_key` too (the VM's first \
             boot embeds that key)\n"
        );
    }
    let clients = FullStackClients {
        oci: match oci {
            Ok(c) => c,
            Err(_) => OciClient::builder().offline(OFFLINE_TENANCY).region("us-ashburn-1").build()?,
        },
        tailscale,
        r2: match r2 {
            Ok(c) => c,
            Err(_) => R2Client::new(R2Config::new(OFFLINE_ACCOUNT, "offline", "offline")?)?,
        },
    };
    let shipper = shipper
        .unwrap_or_else(|_| ShipperCredentials::new(OFFLINE_ACCOUNT, "<R2_ACCESS_KEY_ID>", Secret::new("offline")));
    let ssh_key = ssh_key.unwrap_or_else(|| OFFLINE_SSH_KEY.into());
    let compartment = std::env::var("OCI_COMPARTMENT_ID").unwrap_or_else(|_| clients.oci.tenancy().to_owned());
    let mut tailnet = TailnetServer::new().magic_dns(true).join_timeout(Duration::from_secs(20 * 60));
    if let Some(h) = cli.option("hostname") {
        tailnet = tailnet.hostname(h);
    }
    if let Some(p) = cli.option("serve-port") {
        tailnet = tailnet.serve_port(p.parse().map_err(|_| Error::invalid("--serve-port", "a port number"))?);
    }
    let recipe = FullStack::new(ssh_key.trim(), shipper)
        .oci(FreeTierOnOci::new(ssh_key.trim()).compartment_id(compartment).name("egograph"))
        .tailnet(tailnet);
    let mut stack = Stack::new("egograph-oci");
    let out = recipe.add_to(&mut stack, &clients)?;
    if cli.command == Command::Plan && !cli.json {
        println!("first boot of the VM (cloud-init; `${{…}}` is filled in at apply time):\n");
        println!("{}", recipe.cloud_init(&out.tailnet)?.preview());
        println!("app once applied: {:?}   (TS_AUTHKEY for CI: `output --show-secrets`)\n", out.url);
    }
    let backend = cli.backend("egograph-oci.stackup.json").await?;
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
