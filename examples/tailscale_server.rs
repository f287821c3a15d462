//! Seed 002's server on a tailnet (recipe `tailnet_server`): a tagged, preauthorized key for the
//! server, an ephemeral reusable key for CI (`TS_AUTHKEY`), the wait for `egograph-prod` to join,
//! its authorization, tags and key expiry, MagicDNS on (`--magic-dns false` leaves DNS alone) and
//! optionally the CI-to-SSH ACL rule.
//!
//! ```text
//! cargo run -p stackup --features tailscale --example tailscale_server -- plan
//! TAILSCALE_API_KEY=tskey-api-… cargo run -p stackup --features tailscale --example tailscale_server -- apply \
//!     --hostname egograph-prod --ci-ssh-acl true
//! ```
//!
//! Without `TAILSCALE_API_KEY` (or `TAILSCALE_OAUTH_CLIENT_ID`/`_SECRET`) `plan` runs offline
//! against an empty state and says so. `apply` waits (10 minutes by default) for the server to
//! run the printed first-boot commands. Set `STACKUP_STATE_KEY` to keep the keys' secrets
//! (encrypted) in state; `output --show-secrets` then prints `TS_AUTHKEY`.

use std::process::ExitCode;
use std::time::Duration;

use stackup::cli::{Cli, Command};
use stackup::prelude::*;
use stackup::recipes::tailnet_server::TailnetServer;
use stackup::tailscale::TailscaleClient;

fn recipe(cli: &Cli) -> Result<TailnetServer, Error> {
    let flag = |k: &str| cli.option(k).is_some_and(|v| v == "true");
    let magic_dns = cli.option("magic-dns").is_none_or(|v| v != "false");
    let mut r = TailnetServer::new().magic_dns(magic_dns).ci_ssh_acl(flag("ci-ssh-acl"));
    if let Some(h) = cli.option("hostname") {
        r = r.hostname(h);
    }
    if let Some(p) = cli.option("serve-port") {
        r = r.serve_port(p.parse().map_err(|_| Error::invalid("--serve-port", "a port number"))?);
    }
    if let Some(m) = cli.option("join-timeout-minutes") {
        let m: u64 = m.parse().map_err(|_| Error::invalid("--join-timeout-minutes", "whole minutes"))?;
        r = r.join_timeout(Duration::from_secs(m * 60));
    }
    Ok(r)
}

async fn run() -> Result<ExitCode, Error> {
    let mut cli = Cli::from_env()?;
    let client = TailscaleClient::builder().from_env().build_offline_ok()?;
    if !client.has_credentials() {
        if cli.command != Command::Plan {
            return Err(Error::Config(
                "no Tailscale credentials: set TAILSCALE_API_KEY (or TAILSCALE_OAUTH_CLIENT_ID and \
                 TAILSCALE_OAUTH_CLIENT_SECRET); `plan` works without them"
                    .into(),
            ));
        }
        cli.offline = true;
    }
    let recipe = recipe(&cli)?;
    let mut stack = Stack::new("egograph-tailnet");
    let out = recipe.add_to(&mut stack, &client)?;
    if cli.command == Command::Plan && !cli.json {
        println!("first boot of the server (cloud-init; `${{…}}` is filled in at apply time):\n");
        println!("{}", recipe.join_on_boot(CloudConfig::new(), &out).preview());
        println!("URL once it has joined: {:?}\n", out.url);
    }
    let backend = cli.backend("egograph-tailnet.stackup.json").await?;
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
