//! Seed 000 end to end: the Blossom server on an Azure VM with its data on Azure Files.
//!
//! ```text
//! cargo run -p stackup --features azure --example azure_blossom -- plan
//! cargo run -p stackup --features azure --example azure_blossom -- apply  [--state blossom.stackup.json]
//! cargo run -p stackup --features azure --example azure_blossom -- output [--json] [--show-secrets]
//! cargo run -p stackup --features azure --example azure_blossom -- rotate-key     # section 9.2
//! cargo run -p stackup --features azure --example azure_blossom -- snapshot       # section 9.3
//! cargo run -p stackup --features azure --example azure_blossom -- destroy
//! ```
//!
//! `plan` needs no credentials: without `AZURE_SUBSCRIPTION_ID` (or with `--offline`) it plans
//! against an empty in-memory state, makes no network call, and prints every resource and the
//! rendered cloud-init. `apply` and the day-2 commands need `AZURE_SUBSCRIPTION_ID` and a
//! credential (`AZURE_TENANT_ID`/`AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`, workload or managed
//! identity, or `az login`).
//!
//! Options: `--ssh-public-key <file>` (default `~/.ssh/id_ed25519.pub`, then `~/.ssh/id_rsa.pub`),
//! `--location`, `--resource-group`, `--storage-suffix` (the account's 5 digits; default derived
//! from the stack name), `--vm-size`, `--ssh-source <cidr>`, `--exec-start <command>`,
//! `--mount-as-admin true`, `--stack <name>` (default `blossom`).

use std::path::PathBuf;
use std::process::ExitCode;

use stackup::azure::{ArmClient, StaticTokenCredential};
use stackup::cli::{Cli, Command};
use stackup::prelude::*;
use stackup::recipes::blossom_on_azure::{BlossomOnAzure, BlossomOnAzureOutputs};

/// A syntactically valid Ed25519 public key (all-zero key material) used only by offline plans
/// on machines without an SSH key; `apply` refuses it.
const PLACEHOLDER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA stackup-offline-placeholder";

/// The subscription id of an offline plan (never sent anywhere).
const OFFLINE_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";

enum Day2 {
    RotateKey,
    Snapshot,
    ListSnapshots,
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

fn ssh_key(cli: &Cli, offline: bool) -> Result<(String, bool), Error> {
    let candidates: Vec<PathBuf> = match cli.option("ssh-public-key") {
        Some(p) => vec![PathBuf::from(p)],
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            vec![home.join(".ssh/id_ed25519.pub"), home.join(".ssh/id_rsa.pub")]
        }
    };
    for path in &candidates {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok((text.trim().to_owned(), false));
        }
    }
    if offline && cli.option("ssh-public-key").is_none() {
        return Ok((PLACEHOLDER_KEY.to_owned(), true));
    }
    Err(Error::Config(format!(
        "no SSH public key at {}: create one with `ssh-keygen -t ed25519` or pass --ssh-public-key <file>",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")
    )))
}

fn recipe(cli: &Cli, key: String) -> Result<BlossomOnAzure, Error> {
    let mut r = BlossomOnAzure::new(key);
    if let Some(v) = cli.option("location") {
        r = r.location(v);
    }
    if let Some(v) = cli.option("resource-group") {
        r = r.resource_group(v);
    }
    if let Some(v) = cli.option("storage-suffix") {
        r = r.storage_account_suffix(v);
    }
    if let Some(v) = cli.option("vm-size") {
        r = r.vm_size(v);
    }
    if let Some(v) = cli.option("ssh-source") {
        r = r.ssh_source(v);
    }
    if let Some(v) = cli.option("exec-start") {
        r = r.exec_start(v);
    }
    if let Some(v) = cli.option("mount-as-admin") {
        r = r.mount_as_admin(v == "true");
    }
    Ok(r)
}

fn client(offline: bool) -> Result<ArmClient, Error> {
    if offline {
        // Plans against an empty state make no call: this client is never used to send anything.
        return ArmClient::builder()
            .credential(StaticTokenCredential::new("offline-plan"))
            .subscription_id(OFFLINE_SUBSCRIPTION)
            .build();
    }
    if std::env::var("AZURE_SUBSCRIPTION_ID").map(|s| s.trim().is_empty()).unwrap_or(true) {
        return Err(Error::Config(
            "AZURE_SUBSCRIPTION_ID is not set: export it (and a credential, or run `az login`), \
             or run `plan` to plan offline"
                .into(),
        ));
    }
    ArmClient::from_env()
}

fn print_endpoints(outputs: &BlossomOnAzureOutputs, values: &std::collections::BTreeMap<String, serde_json::Value>) {
    match outputs.endpoints(values) {
        Some(e) => {
            println!("\npublic IP:  {}", e.public_ip);
            println!("SSH:        {}", e.ssh_command);
            println!("share path: {}", e.share_path);
            println!("server:     {}", e.url);
        }
        None => println!("\n(no outputs yet: run `apply` first)"),
    }
}

async fn run() -> Result<ExitCode, Error> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let day2 = match args.first().map(String::as_str) {
        Some("rotate-key") => Some(Day2::RotateKey),
        Some("snapshot") => Some(Day2::Snapshot),
        Some("snapshots") => Some(Day2::ListSnapshots),
        _ => None,
    };
    if day2.is_some() {
        args.remove(0);
    }
    let mut cli = Cli::parse(&args).inspect_err(|_| {
        eprintln!("{}", stackup::cli::usage("azure_blossom"));
        eprintln!("       azure_blossom <rotate-key|snapshot|snapshots> [options]");
    })?;
    let stack_name = cli.option("stack").unwrap_or("blossom").to_owned();
    let no_subscription = std::env::var("AZURE_SUBSCRIPTION_ID").map(|s| s.trim().is_empty()).unwrap_or(true);
    if day2.is_none() && cli.command == Command::Plan && no_subscription {
        cli.offline = true;
    }
    let (key, placeholder) = ssh_key(&cli, cli.offline)?;
    let recipe = recipe(&cli, key)?;
    let client = client(cli.offline)?;

    if let Some(op) = day2 {
        let ops = recipe.operations(client, &stack_name);
        match op {
            Day2::RotateKey => {
                let t = ops.target().clone();
                eprintln!("regenerating key2 of {} and switching {} to it…", t.account, t.vm);
                let r = ops.rotate_storage_key().await?;
                println!(
                    "{} regenerated; {} on {} rewritten and the share remounted",
                    r.key_name, t.credentials_file, t.vm
                );
                println!("{}", r.vm_output.trim());
            }
            Day2::Snapshot => {
                let s = ops.snapshot_share().await?;
                println!("snapshot {} of {}", s.snapshot_time, ops.target().share);
            }
            Day2::ListSnapshots => {
                for s in ops.list_share_snapshots().await? {
                    println!("{}", s.snapshot_time);
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mut stack = Stack::new(stack_name);
    let blossom = recipe.add_to(&mut stack, &client)?;
    if placeholder && !cli.json {
        println!("note: no SSH public key found; the offline plan uses a placeholder (apply needs a real key)\n");
    }
    let backend = cli.backend("blossom.stackup.json").await?;
    let engine = cli.engine(stack, backend)?;
    let code = stackup::cli::run(&cli, &engine).await?;
    match cli.command {
        Command::Plan if !cli.json => {
            println!(
                "cloud-init for {} (customData; ${{…}} is filled in at apply time):\n",
                blossom.virtual_machine.address()
            );
            println!("{}", blossom.cloud_init.preview());
            println!(
                "storage account: {} (suffix from the stack name; override with --storage-suffix)",
                blossom.storage_account_name
            );
        }
        Command::Apply | Command::Output if !cli.json => print_endpoints(&blossom, &engine.outputs().await?),
        _ => {}
    }
    Ok(code)
}
