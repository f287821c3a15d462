//! Seed 003 (storage part) end to end: the Azure crate's stateful fake ARM for the account,
//! containers, lifecycle policy and VNet, and a fake Key Vault behind the official SDK client
//! (its auth challenge included) for the connection-string secrets. Apply, re-apply with zero
//! mutating calls, destroy leaving nothing; the same with injected 429s and 5xx; a run killed
//! mid-apply converging without duplicates.

#[path = "../crates/stackup-azure/tests/common/fake_arm.rs"]
mod fake_arm;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::http::{AsyncRawResponse, HttpClient, Request as SdkRequest};
use fake_arm::{FakeArm, SUB};
use serde_json::{Value, json};
use stackup::azure::{ArmClient, KeyVaultSecrets, LroOptions, StaticTokenCredential};
use stackup::core::retry::RetryPolicy;
use stackup::prelude::*;
use stackup::recipes::app_storage_on_azure::{AppStorageOnAzure, AppStorageOnAzureOutputs, NetworkLayout, sensitive};
use stackup::recipes::blossom_on_azure::default_account_suffix;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const VAULT: &str = "https://dursor-vault.vault.azure.net/";
const PG: &str = "postgresql://dursor:pg-secret-0001@dursor-pg.postgres.database.azure.com:5432/dursor?sslmode=require";

fn arm_client(arm: &FakeArm) -> ArmClient {
    ArmClient::builder()
        .credential(StaticTokenCredential::new("arm-token"))
        .subscription_id(SUB)
        .arm_endpoint(arm.uri())
        .retry_policy(RetryPolicy::fast())
        .lro_options(LroOptions::fast())
        .build()
        .unwrap()
}

/// Sends the vault's `https://…vault.azure.net` requests to the local fake (the SDK only
/// authorizes https URLs).
#[derive(Debug)]
struct Redirect {
    inner: Arc<dyn HttpClient>,
    to: url::Url,
}

#[async_trait]
impl HttpClient for Redirect {
    async fn execute_request(&self, request: &SdkRequest) -> azure_core::Result<AsyncRawResponse> {
        let mut r = request.clone();
        let u = r.url_mut();
        u.set_scheme("http").unwrap();
        u.set_host(self.to.host_str()).unwrap();
        u.set_port(self.to.port()).unwrap();
        self.inner.execute_request(&r).await
    }
}

/// A Key Vault data plane: secrets with versions, the bearer challenge, soft delete, faults.
#[derive(Default)]
struct VaultState {
    secrets: BTreeMap<String, Vec<Value>>,
    log: Vec<(String, String)>,
    faults: VecDeque<(&'static str, u16)>,
    next: u64,
}

#[derive(Clone, Default)]
struct FakeVault(Arc<Mutex<VaultState>>);

impl FakeVault {
    fn mutating(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().log.iter().filter(|(m, _)| m != "GET").cloned().collect()
    }
    fn value(&self, name: &str) -> Option<String> {
        let st = self.0.lock().unwrap();
        st.secrets.get(name).and_then(|v| v.last()).and_then(|s| s["value"].as_str()).map(str::to_owned)
    }
    fn secret(&self, name: &str) -> Option<Value> {
        self.0.lock().unwrap().secrets.get(name).and_then(|v| v.last()).cloned()
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().secrets.len()
    }
    fn fault(&self, method: &'static str, status: u16) {
        self.0.lock().unwrap().faults.push_back((method, status));
    }
}

fn kv_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-ms-request-id", "kv-request-1")
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

impl Respond for FakeVault {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let path = req.url.path().trim_end_matches('/').to_owned();
        if req.headers.get("authorization").is_none() {
            return ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                r#"Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-0000000000aa", resource="https://vault.azure.net""#,
            );
        }
        st.log.push((req.method.to_string(), path.clone()));
        if let Some(i) = st.faults.iter().position(|(m, _)| *m == req.method.as_str()) {
            let (_, status) = st.faults.remove(i).unwrap();
            return kv_error(status, "Throttled", "injected").insert_header("retry-after", "0");
        }
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let name = segs.get(1).map(|s| s.to_string()).unwrap_or_default();
        match (req.method.as_str(), segs.first().copied()) {
            ("PUT", Some("secrets")) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                st.next += 1;
                let mut s = json!({
                    "value": body["value"],
                    "id": format!("{VAULT}secrets/{name}/{:032x}", st.next),
                    "attributes": {"enabled": true, "created": 1_764_000_000, "updated": 1_764_000_000, "recoveryLevel": "Recoverable+Purgeable"},
                    "tags": body["tags"],
                });
                if let Some(ct) = body.get("contentType") {
                    s["contentType"] = ct.clone();
                }
                st.secrets.entry(name).or_default().push(s.clone());
                ResponseTemplate::new(200).set_body_json(s)
            }
            ("GET", Some("secrets")) => match st.secrets.get(&name).and_then(|v| v.last()) {
                Some(s) => ResponseTemplate::new(200).set_body_json(s.clone()),
                None => kv_error(
                    404,
                    "SecretNotFound",
                    &format!("A secret with (name/id) {name} was not found in this key vault."),
                ),
            },
            ("PATCH", Some("secrets")) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let Some(s) = st.secrets.get_mut(&name).and_then(|v| v.last_mut()) else {
                    return kv_error(404, "SecretNotFound", "not found");
                };
                if let Some(t) = body.get("tags") {
                    s["tags"] = t.clone();
                }
                if let Some(ct) = body.get("contentType") {
                    s["contentType"] = ct.clone();
                }
                let mut out = s.clone();
                out.as_object_mut().unwrap().remove("value");
                ResponseTemplate::new(200).set_body_json(out)
            }
            ("DELETE", Some("secrets")) => match st.secrets.remove(&name) {
                Some(v) => {
                    let mut d = v.last().unwrap().clone();
                    d.as_object_mut().unwrap().remove("value");
                    d["recoveryId"] = json!(format!("{VAULT}deletedsecrets/{name}"));
                    ResponseTemplate::new(200).set_body_json(d)
                }
                None => kv_error(404, "SecretNotFound", "not found"),
            },
            _ => kv_error(400, "BadRequest", "unsupported by the fake vault"),
        }
    }
}

struct World {
    arm: FakeArm,
    vault: FakeVault,
    redirect: Arc<Redirect>,
}

async fn world() -> World {
    let arm = FakeArm::start().await;
    let server = MockServer::start().await;
    let vault = FakeVault::default();
    Mock::given(wiremock::matchers::any()).respond_with(vault.clone()).mount(&server).await;
    let redirect = Arc::new(Redirect {
        inner: azure_core::http::new_http_client(None),
        to: url::Url::parse(&server.uri()).unwrap(),
    });
    // Keep the vault server alive as long as the test.
    std::mem::forget(server);
    World { arm, vault, redirect }
}

fn recipe() -> AppStorageOnAzure {
    AppStorageOnAzure::new()
        .secret("postgresql-connection-string", sensitive(PG))
        .with_network(NetworkLayout::default())
}

fn stack(w: &World, r: &AppStorageOnAzure) -> (Stack, AppStorageOnAzureOutputs) {
    let mut stack = Stack::new("dursor");
    let redirect = w.redirect.clone();
    let factory = move || {
        KeyVaultSecrets::new(StaticTokenCredential::new("kv-token"))
            .retry_policy(RetryPolicy::fast())
            .poll_options(LroOptions::fast())
            .transport(redirect.clone())
    };
    let out = r.add_to(&mut stack, &arm_client(&w.arm), Some(&factory)).unwrap();
    (stack, out)
}

fn account() -> String {
    format!("dursorstorage{}", default_account_suffix("dursor"))
}

fn account_path() -> String {
    FakeArm::account_path("dursor-rg", &account())
}

async fn apply(engine: &Engine) {
    let plan = engine.plan().await.unwrap();
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{:?}", report.failed);
}

const ARM_RESOURCES: usize = 1 + 1 + 3 + 1 + 1 + 2; // rg, account, containers, policy, vnet, subnets

fn assert_design(w: &World) {
    let sa = w.arm.resource(&account_path()).unwrap();
    assert_eq!(sa["sku"]["name"], "Standard_GRS");
    assert_eq!(sa["kind"], "StorageV2");
    assert_eq!(sa["properties"]["supportsHttpsTrafficOnly"], true);
    assert_eq!(sa["properties"]["minimumTlsVersion"], "TLS1_2");
    assert_eq!(sa["properties"]["allowBlobPublicAccess"], false);
    for c in ["workspaces", "artifacts", "temp"] {
        let body = w.arm.resource(&format!("{}/blobServices/default/containers/{c}", account_path())).unwrap();
        assert_eq!(body["properties"]["publicAccess"], "None", "{c}");
    }
    let policy = w.arm.resource(&format!("{}/managementPolicies/default", account_path())).unwrap();
    let rules = policy["properties"]["policy"]["rules"].as_array().unwrap();
    let by_name: BTreeMap<&str, &Value> = rules.iter().map(|r| (r["name"].as_str().unwrap(), r)).collect();
    let tiering = by_name["tiering"];
    assert_eq!(tiering["type"], "Lifecycle");
    assert_eq!(tiering["enabled"], true);
    assert_eq!(tiering["definition"]["filters"]["prefixMatch"], json!(["workspaces/", "artifacts/"]));
    assert_eq!(tiering["definition"]["filters"]["blobTypes"], json!(["blockBlob"]));
    let base = &tiering["definition"]["actions"]["baseBlob"];
    assert_eq!(base["tierToCool"]["daysAfterModificationGreaterThan"], 30);
    assert_eq!(base["tierToArchive"]["daysAfterModificationGreaterThan"], 90);
    assert_eq!(base["delete"]["daysAfterModificationGreaterThan"], 365);
    let temp = by_name["tempcleanup"];
    assert_eq!(temp["definition"]["filters"]["prefixMatch"], json!(["temp/"]));
    assert_eq!(temp["definition"]["actions"]["baseBlob"], json!({"delete": {"daysAfterModificationGreaterThan": 7}}));
    let net = format!("{}/providers/Microsoft.Network/virtualNetworks/dursor-vnet", FakeArm::rg_path("dursor-rg"));
    assert_eq!(w.arm.resource(&net).unwrap()["properties"]["addressSpace"]["addressPrefixes"], json!(["10.0.0.0/16"]));
    for (s, p) in [("app", "10.0.1.0/24"), ("data", "10.0.2.0/24")] {
        assert_eq!(w.arm.resource(&format!("{net}/subnets/{s}")).unwrap()["properties"]["addressPrefix"], p);
    }
    let acct = account();
    assert_eq!(
        w.vault.value("storage-connection-string").as_deref(),
        Some(format!("DefaultEndpointsProtocol=https;AccountName={acct};AccountKey=key1-{acct}-secretvalue==;EndpointSuffix=core.windows.net").as_str())
    );
    assert_eq!(w.vault.secret("storage-connection-string").unwrap()["contentType"], "text/plain");
    assert_eq!(w.vault.value("postgresql-connection-string").as_deref(), Some(PG));
    assert_eq!(w.vault.secret("postgresql-connection-string").unwrap()["tags"]["managed-by"], "stackup");
}

#[tokio::test]
async fn plan_offline_makes_no_call_and_keeps_secrets_out_of_the_plan() {
    let w = world().await;
    let (stack, _) = stack(&w, &recipe());
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    let plan = engine.plan().await.unwrap();
    assert!(w.arm.log().is_empty(), "{:?}", w.arm.log());
    assert!(w.vault.0.lock().unwrap().log.is_empty());
    for addr in [
        "dursor/rg",
        "dursor/storage",
        "dursor/container/workspaces",
        "dursor/container/artifacts",
        "dursor/container/temp",
        "dursor/lifecycle",
        "dursor/secret/storage-connection-string",
        "dursor/secret/postgresql-connection-string",
        "dursor/vnet",
        "dursor/subnet/app",
        "dursor/subnet/data",
    ] {
        assert_eq!(plan.resource(addr).map(|r| r.action), Some(Action::Create), "{addr}");
    }
    let text = plan.render();
    assert!(!text.contains("pg-secret-0001"), "{text}");
    assert!(!plan.to_json().to_string().contains("pg-secret-0001"));
}

#[tokio::test]
async fn apply_reapply_destroy() {
    let w = world().await;
    let (stack, out) = stack(&w, &recipe());
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    assert_eq!(w.arm.resource_count(), ARM_RESOURCES);
    assert_eq!(w.vault.count(), 2);
    assert_design(&w);
    let outputs = engine.outputs().await.unwrap();
    assert_eq!(
        stackup::core::input::lookup_path(&outputs[&out.blob_endpoint.resource], &out.blob_endpoint.output),
        Some(&json!(format!("https://{}.blob.core.windows.net/", account())))
    );
    let state = serde_json::to_string(&engine.state().await.unwrap().unwrap()).unwrap();
    assert!(!state.contains("pg-secret-0001") && !state.contains("secretvalue=="), "secret in plaintext state");

    w.arm.clear_log();
    w.vault.0.lock().unwrap().log.clear();
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    assert!(w.arm.mutating_calls().is_empty(), "{:?}", w.arm.mutating_calls());
    assert!(w.vault.mutating().is_empty(), "{:?}", w.vault.mutating());

    engine.destroy().await.unwrap().into_result().unwrap();
    assert_eq!(
        w.arm.resource_count(),
        0,
        "{:?}\n{:#?}",
        w.arm.state.lock().unwrap().resources.keys().collect::<Vec<_>>(),
        w.arm.log()
    );
    assert_eq!(w.vault.count(), 0);
}

#[tokio::test]
async fn a_changed_connection_string_is_a_new_secret_version_not_a_replacement() {
    let w = world().await;
    let (stack1, _) = stack(&w, &recipe());
    let backend = Arc::new(MemoryBackend::new());
    apply(&Engine::new(stack1, backend.clone())).await;
    let other = "postgresql://dursor:pg-secret-0002@dursor-pg.postgres.database.azure.com:5432/dursor";
    let changed = AppStorageOnAzure::new()
        .secret("postgresql-connection-string", sensitive(other))
        .with_network(NetworkLayout::default());
    let (stack2, _) = stack(&w, &changed);
    let engine = Engine::new(stack2, backend);
    let plan = engine.plan().await.unwrap();
    let r = plan.resource("dursor/secret/postgresql-connection-string").unwrap();
    assert_eq!(r.action, Action::Update);
    assert!(!plan.render().contains("pg-secret-000"));
    assert_eq!(
        plan.summary.to_string(),
        "0 to create, 1 to update, 0 to replace, 0 to delete, 10 unchanged",
        "{}",
        plan.render()
    );
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    assert_eq!(w.vault.value("postgresql-connection-string").as_deref(), Some(other));
    assert_eq!(w.vault.0.lock().unwrap().secrets["postgresql-connection-string"].len(), 2);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let w = world().await;
    let throttled = || json!({"error": {"code": "TooManyRequests", "message": "The request is being throttled."}});
    let busy = || json!({"error": {"code": "ServerBusy", "message": "The server is busy."}});
    for f in ["/storageaccounts/", "/containers/workspaces", "/managementpolicies/", "/subnets/app"] {
        w.arm.fault(Some("PUT"), f, 429, vec![("retry-after", "0.01".into())], throttled());
    }
    for f in ["/resourcegroups/", "/containers/temp", "/virtualnetworks/dursor-vnet"] {
        w.arm.fault(Some("PUT"), f, 503, vec![], busy());
    }
    w.arm.fault(Some("POST"), "/listkeys", 500, vec![], busy());
    w.vault.fault("PUT", 429);
    w.vault.fault("PUT", 503);
    w.vault.fault("GET", 500);
    let (stack, _) = stack(&w, &recipe());
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    assert_design(&w);

    w.arm.clear_log();
    w.vault.0.lock().unwrap().log.clear();
    w.arm.fault(Some("GET"), "/managementpolicies/", 429, vec![("retry-after", "0.01".into())], throttled());
    w.vault.fault("GET", 429);
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    assert!(w.arm.mutating_calls().is_empty(), "{:?}", w.arm.mutating_calls());
    assert!(w.vault.mutating().iter().all(|(m, _)| m == "GET"));

    w.arm.fault(Some("DELETE"), "/resourcegroups/", 429, vec![("retry-after", "0.01".into())], throttled());
    w.arm.fault(Some("DELETE"), "/storageaccounts/", 503, vec![], busy());
    w.vault.fault("DELETE", 503);
    engine.destroy().await.unwrap().into_result().unwrap();
    assert_eq!(w.arm.resource_count(), 0, "{:?}", w.arm.state.lock().unwrap().resources.keys().collect::<Vec<_>>());
    assert_eq!(w.vault.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_apply_converges_without_duplicates() {
    let w = world().await;
    // The storage account's creation (202 + Location) stays in progress for a while.
    w.arm.state.lock().unwrap().op_polls = 40;
    let backend = Arc::new(MemoryBackend::new());
    let (s1, _) = stack(&w, &recipe());
    let engine = Engine::new(s1, backend.clone());
    let plan = engine.plan().await.unwrap();
    let killed = tokio::time::timeout(Duration::from_secs(10), async {
        let apply = engine.apply(&plan);
        tokio::pin!(apply);
        loop {
            tokio::select! {
                r = &mut apply => panic!("apply finished before it was killed: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    if w.arm.count("PUT", &format!("/storageaccounts/{}", account())) > 0 {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(killed.is_ok(), "the account was never started");
    drop(engine);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(backend.lock_holder().await.unwrap().is_none());

    w.arm.state.lock().unwrap().op_polls = 1;
    let (s2, _) = stack(&w, &recipe());
    let engine = Engine::new(s2, backend);
    apply(&engine).await;
    assert_eq!(w.arm.resource_count(), ARM_RESOURCES);
    assert_eq!(w.vault.count(), 2);
    assert_eq!(w.vault.0.lock().unwrap().secrets["storage-connection-string"].len(), 1, "one version");
    for c in ["workspaces", "artifacts", "temp"] {
        assert_eq!(w.arm.count("PUT", &format!("/containers/{c}")), 1, "{c}");
    }
    assert_design(&w);
    assert!(engine.plan().await.unwrap().is_empty());
}

#[tokio::test]
async fn dursor_storage_as_one_container_with_the_areas_as_folders() {
    let w = world().await;
    let r = AppStorageOnAzure::new().vault_url(None).single_container("dursor-storage");
    let (stack, out) = stack(&w, &r);
    assert_eq!(out.containers.keys().collect::<Vec<_>>(), ["dursor-storage"]);
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    let containers = format!("{}/blobServices/default/containers", account_path());
    assert_eq!(w.arm.resource(&format!("{containers}/dursor-storage")).unwrap()["properties"]["publicAccess"], "None");
    for area in ["workspaces", "artifacts", "temp"] {
        assert!(w.arm.resource(&format!("{containers}/{area}")).is_none(), "{area} is a folder, not a container");
    }
    let policy = w.arm.resource(&format!("{}/managementPolicies/default", account_path())).unwrap();
    let rules = policy["properties"]["policy"]["rules"].as_array().unwrap();
    let by_name: BTreeMap<&str, &Value> = rules.iter().map(|r| (r["name"].as_str().unwrap(), r)).collect();
    assert_eq!(
        by_name["tiering"]["definition"]["filters"]["prefixMatch"],
        json!(["dursor-storage/workspaces/", "dursor-storage/artifacts/"])
    );
    let base = &by_name["tiering"]["definition"]["actions"]["baseBlob"];
    assert_eq!(base["tierToCool"]["daysAfterModificationGreaterThan"], 30);
    assert_eq!(base["tierToArchive"]["daysAfterModificationGreaterThan"], 90);
    assert_eq!(base["delete"]["daysAfterModificationGreaterThan"], 365);
    assert_eq!(by_name["tempcleanup"]["definition"]["filters"]["prefixMatch"], json!(["dursor-storage/temp/"]));
    assert_eq!(
        by_name["tempcleanup"]["definition"]["actions"]["baseBlob"],
        json!({"delete": {"daysAfterModificationGreaterThan": 7}})
    );
    assert!(engine.plan().await.unwrap().is_empty());
    engine.destroy().await.unwrap().into_result().unwrap();
    assert_eq!(w.arm.resource_count(), 0);
}

#[tokio::test]
async fn bad_values_are_refused_before_anything_is_added() {
    let w = world().await;
    let c = arm_client(&w.arm);
    let factory = || KeyVaultSecrets::new(StaticTokenCredential::new("kv"));
    let cases: Vec<(AppStorageOnAzure, &str)> = vec![
        (AppStorageOnAzure::new().storage_account_suffix("-1"), "app_storage_on_azure.storage_account_suffix"),
        (AppStorageOnAzure::new().storage_account_name("dursor-storage"), "app_storage_on_azure.storage_account_name"),
        (AppStorageOnAzure::new().containers(["Workspaces"]), "app_storage_on_azure.containers"),
        (AppStorageOnAzure::new().containers(["a1", "a1"]), "app_storage_on_azure.containers"),
        (AppStorageOnAzure::new().single_container("Dursor_Storage"), "app_storage_on_azure.single_container"),
        (AppStorageOnAzure::new().tiering(Some(90), Some(30), None), "app_storage_on_azure.lifecycle"),
        (AppStorageOnAzure::new().tiered_containers(["nope"]), "app_storage_on_azure.lifecycle"),
        (AppStorageOnAzure::new().temp_container(Some("temp".into()), 0), "app_storage_on_azure.temp_container"),
        (AppStorageOnAzure::new().vault_url(Some("http://vault".into())), "app_storage_on_azure.vault_url"),
        (AppStorageOnAzure::new().secret("bad name", sensitive("x")), "app_storage_on_azure.secrets"),
        (
            AppStorageOnAzure::new().vault_url(None).connection_string_secret(None).secret("a", sensitive("x")),
            "app_storage_on_azure.vault_url",
        ),
        (
            AppStorageOnAzure::new().with_network(NetworkLayout {
                subnets: vec![("app".into(), "10.0.1.0/24".into()), ("data".into(), "10.0.1.0/25".into())],
                ..NetworkLayout::default()
            }),
            "app_storage_on_azure.network.subnets",
        ),
        (
            AppStorageOnAzure::new().with_network(NetworkLayout {
                subnets: vec![("app".into(), "10.9.1.0/24".into())],
                ..NetworkLayout::default()
            }),
            "app_storage_on_azure.network.subnets",
        ),
    ];
    for (r, field) in cases {
        let mut stack = Stack::new("dursor");
        match r.add_to(&mut stack, &c, Some(&factory)) {
            Err(Error::InvalidInput { field: f, rule }) => assert_eq!(f, field, "{rule}"),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
        assert!(stack.is_empty());
    }
    // Secrets without a Key Vault client are refused too; without a vault URL none are needed.
    let mut stack = Stack::new("dursor");
    assert!(matches!(AppStorageOnAzure::new().add_to(&mut stack, &c, None), Err(Error::InvalidInput { .. })));
    let out = AppStorageOnAzure::new().vault_url(None).add_to(&mut stack, &c, None).unwrap();
    assert!(out.secrets.is_empty());
    assert!(w.arm.log().is_empty());
}
