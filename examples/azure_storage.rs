//! A storage account with an Azure Files share and a share snapshot (seed 000's storage and
//! backup steps), planned and applied with the stackup engine.
//!
//! ```text
//! cargo run -p stackup-azure --example azure_storage              # plan only
//! cargo run -p stackup-azure --example azure_storage -- apply      # create / converge
//! cargo run -p stackup-azure --example azure_storage -- rotate-key2
//! cargo run -p stackup-azure --example azure_storage -- destroy
//! ```
//!
//! Without `AZURE_SUBSCRIPTION_ID` it plans **offline**: against an empty in-memory state, with
//! no credentials and no network call, and says so. With `AZURE_SUBSCRIPTION_ID` and a credential
//! (`AZURE_TENANT_ID`/`AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`, workload or managed identity, or
//! `az login`) it keeps state in `azure_storage.stackup.json` (or in Azure Blob when
//! `STACKUP_AZURE_STATE_URL` is set) and `apply` creates the resources for real.
//!
//! Settings: `STACKUP_EXAMPLE_LOCATION` (default `japaneast`), `STACKUP_EXAMPLE_RESOURCE_GROUP`
//! (default `stackup-storage-demo`), `STACKUP_EXAMPLE_STORAGE_ACCOUNT` (default
//! `stackupdemo` + 8 hex digits derived from the subscription, stable across runs).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use stackup_azure::{
    ArmClient, AzureBlobBackend, FileShareSpec, FileShares, KeyName, ResourceGroupSpec, ResourceGroups,
    ShareSnapshotSpec, ShareSnapshots, StaticTokenCredential, StorageAccountSpec, StorageAccounts,
};
use stackup_core::{Engine, Error, LocalBackend, MemoryBackend, Stack, StateBackend};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

fn stack(client: &ArmClient, subscription: &str) -> Result<Stack, Error> {
    let location = env_or("STACKUP_EXAMPLE_LOCATION", "japaneast");
    let digest: String = Sha256::digest(subscription.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let account = env_or("STACKUP_EXAMPLE_STORAGE_ACCOUNT", &format!("stackupdemo{digest}"));
    let mut s = Stack::new("azure-storage-demo");
    let rg = s.add(
        "rg",
        ResourceGroups::new(client.clone()),
        ResourceGroupSpec {
            name: env_or("STACKUP_EXAMPLE_RESOURCE_GROUP", "stackup-storage-demo"),
            location: location.clone(),
            tags: BTreeMap::from([("purpose".into(), "stackup-example".into())]),
        },
    )?;
    let acct = s.add(
        "account",
        StorageAccounts::new(client.clone()),
        StorageAccountSpec::new(account, rg.output("name").input(), location),
    )?;
    let share = s.add(
        "share",
        FileShares::new(client.clone()),
        FileShareSpec {
            name: "blossom-data".into(),
            storage_account_id: acct.id().input(),
            quota_gib: 100,
            access_tier: None,
            metadata: BTreeMap::new(),
        },
    )?;
    s.add("snapshot", ShareSnapshots::new(client.clone()), ShareSnapshotSpec { share_id: share.id().input() })?;
    Ok(s)
}

async fn run() -> Result<(), Error> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "plan".into());
    let subscription = std::env::var("AZURE_SUBSCRIPTION_ID").ok().filter(|s| !s.trim().is_empty());
    let Some(subscription) = subscription else {
        if command != "plan" {
            return Err(Error::Config(format!("`{command}` needs AZURE_SUBSCRIPTION_ID and Azure credentials")));
        }
        println!("offline plan: AZURE_SUBSCRIPTION_ID is not set, so no credentials are used and no API call is made;");
        println!("planning against an empty in-memory state.\n");
        // A client that is never called: a placeholder subscription and a token that is never sent.
        let client = ArmClient::builder()
            .subscription_id("00000000-0000-0000-0000-000000000000")
            .credential(StaticTokenCredential::new("offline-plan-never-sent"))
            .build()?;
        let engine = Engine::new(stack(&client, "offline")?, Arc::new(MemoryBackend::new()));
        let plan = engine.plan().await?;
        println!("{}", plan.render());
        return Ok(());
    };

    let client = ArmClient::from_env()?;
    let backend: Arc<dyn StateBackend> = if std::env::var("STACKUP_AZURE_STATE_URL").is_ok() {
        Arc::new(AzureBlobBackend::from_env()?)
    } else {
        Arc::new(LocalBackend::new("azure_storage.stackup.json"))
    };
    println!("state: {}", backend.location());
    let engine = Engine::new(stack(&client, &subscription)?, backend);
    match command.as_str() {
        "plan" => println!("{}", engine.plan().await?.render()),
        "apply" => {
            let plan = engine.plan().await?;
            println!("{}", plan.render());
            let started = std::time::Instant::now();
            let report = engine.apply(&plan).await?.into_result()?;
            println!("applied in {:.1?}: {:?}", started.elapsed(), report.summary);
            let outputs = engine.outputs().await?;
            let redacted = stackup_core::secret::redact_json(&serde_json::to_value(&outputs).unwrap_or_default());
            println!("smb path: {}", redacted["share"]["smb_path"]);
            println!("snapshot: {}", redacted["snapshot"]["snapshot_time"]);
            if let Some(share_id) = outputs.get("share").and_then(|s| s["id"].as_str()) {
                let snaps = FileShares::new(client.clone()).list_snapshots(share_id).await?;
                println!("the share has {} snapshot(s)", snaps.len());
            }
        }
        "rotate-key2" => {
            let outputs = engine.outputs().await?;
            let id = outputs
                .get("account")
                .and_then(|a| a["id"].as_str())
                .ok_or_else(|| Error::Config("apply first: no storage account in state".into()))?;
            let keys = StorageAccounts::new(client.clone()).regenerate_key(id, KeyName::Key2).await?;
            println!("key2 regenerated ({}); switch clients to it, then rotate key1", keys.key2);
        }
        "destroy" => {
            let report = engine.destroy().await?.into_result()?;
            println!("destroyed: {:?}", report.summary);
        }
        other => return Err(Error::Config(format!("unknown command `{other}` (plan, apply, rotate-key2, destroy)"))),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
