//! Seed 004's Always Free VM on Oracle Cloud (recipe `free_tier_on_oci`): VCN → internet
//! gateway → route 0.0.0.0/0 → security list (22/80/443, ICMP 3/4) → subnet →
//! `VM.Standard.A1.Flex` (4 OCPU / 24 GB / 200 GB, Ubuntu aarch64) whose cloud-init installs
//! Docker and the Compose plugin, opens 80/443 before the image's REJECT rule, saves the rules
//! to `/etc/iptables/rules.v4`, and optionally starts a compose file.
//!
//! ```text
//! cargo run -p stackup --features oci --example oci_free_tier -- plan
//! cargo run -p stackup --features oci --example oci_free_tier -- apply \
//!     --compose-file docker-compose.prod.yml --env-file .env.prod --ssh-key ~/.ssh/id_ed25519.pub
//! ```
//!
//! Without a usable `~/.oci/config` (`OCI_CONFIG_FILE`, `OCI_CLI_PROFILE`) `plan` runs offline
//! against an empty state and says so. `OCI_COMPARTMENT_ID` picks the compartment (default the
//! tenancy's root); `--ocpus`/`--memory-gbs` shrink the VM for tenancies whose A1 allowance is
//! 2 OCPU / 12 GB; the free-tier guard refuses anything that would be billed.

use std::process::ExitCode;

use stackup::cli::{Cli, Command};
use stackup::oci::OciClient;
use stackup::prelude::*;
use stackup::recipes::free_tier_on_oci::{ComposeApp, FreeTierOnOci};

const OFFLINE_TENANCY: &str = "ocid1.tenancy.oc1..offlineplaceholder";
const OFFLINE_SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfflinePlanPlaceholderKey offline@stackup";

fn read(path: &str, what: &str) -> Result<String, Error> {
    let path = match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
        _ => path.into(),
    };
    std::fs::read_to_string(&path).map_err(|e| Error::invalid(what, format!("{}: {e}", path.display())))
}

fn ssh_key(cli: &Cli, offline: bool) -> Result<String, Error> {
    if let Some(p) = cli.option("ssh-key") {
        return read(p, "--ssh-key");
    }
    if let Ok(k) = std::env::var("STACKUP_OCI_SSH_PUBLIC_KEY") {
        return Ok(k);
    }
    match read("~/.ssh/id_ed25519.pub", "--ssh-key") {
        Ok(k) => Ok(k),
        Err(_) if offline => Ok(OFFLINE_SSH_KEY.into()),
        Err(e) => Err(e),
    }
}

fn recipe(cli: &Cli, offline: bool, client: &OciClient) -> Result<FreeTierOnOci, Error> {
    let mut r = FreeTierOnOci::new(ssh_key(cli, offline)?);
    let compartment = std::env::var("OCI_COMPARTMENT_ID").unwrap_or_else(|_| client.tenancy().to_owned());
    r = r.compartment_id(compartment);
    let num = |k: &str| -> Result<Option<f64>, Error> {
        cli.option(k).map(|v| v.parse().map_err(|_| Error::invalid(format!("--{k}"), "a number"))).transpose()
    };
    if let (Some(o), Some(m)) = (num("ocpus")?, num("memory-gbs")?) {
        r = r.size(o, m);
    }
    if let Some(f) = cli.option("compose-file") {
        let mut app = ComposeApp::new(read(f, "--compose-file")?);
        if let Some(e) = cli.option("env-file") {
            app = app.env(Secret::new(read(e, "--env-file")?));
        }
        r = r.compose(app);
    }
    Ok(r)
}

async fn run() -> Result<ExitCode, Error> {
    let mut cli = Cli::from_env()?;
    let client = match OciClient::from_env() {
        Ok(c) => c,
        Err(e) => {
            if cli.command != Command::Plan {
                return Err(Error::Config(format!("no usable OCI credentials ({e}); `plan` works without them")));
            }
            cli.offline = true;
            let region = std::env::var("OCI_REGION").unwrap_or_else(|_| "us-ashburn-1".into());
            OciClient::builder().offline(OFFLINE_TENANCY).region(region).build()?
        }
    };
    let recipe = recipe(&cli, cli.offline, &client)?;
    let mut stack = Stack::new("resonant-oci");
    let out = recipe.add_to(&mut stack, &client)?;
    if cli.command == Command::Plan && !cli.json {
        println!("first boot of the VM (cloud-init):\n\n{}", recipe.cloud_init().preview());
        println!("login once applied: {:?}\n", out.ssh_command);
    }
    let backend = cli.backend("resonant-oci.stackup.json").await?;
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
