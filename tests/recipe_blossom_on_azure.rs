//! Seed 000 end to end against the Azure crate's stateful fake ARM: plan offline, apply, re-apply
//! with zero mutating calls, destroy leaving nothing; the same with injected 429s and 5xx; a run
//! killed mid-apply converging without duplicates; the cloud-init golden file; and the day-2
//! operations (key rotation through VM Run Command, share snapshot).

#[path = "../crates/stackup-azure/tests/common/fake_arm.rs"]
mod fake_arm;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use fake_arm::{FakeArm, SUB};
use serde_json::{Value, json};
use stackup::azure::{ArmClient, LroOptions, StaticTokenCredential};
use stackup::core::retry::RetryPolicy;
use stackup::prelude::*;
use stackup::recipes::blossom_on_azure::operations::{KEY_PARAMETER, ROTATION_OK_MARKER};
use stackup::recipes::blossom_on_azure::{BlossomOnAzure, BlossomOnAzureOutputs, default_account_suffix};
use wiremock::matchers::{method, path_regex, query_param};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA blossom@test";
const GOLDEN: &str = "../../tests/golden/blossom_on_azure.cloud-init.yaml";

fn client(arm: &FakeArm) -> ArmClient {
    ArmClient::builder()
        .credential(StaticTokenCredential::new("test-token"))
        .subscription_id(SUB)
        .arm_endpoint(arm.uri())
        .retry_policy(RetryPolicy::fast())
        .lro_options(LroOptions::fast())
        .build()
        .unwrap()
}

fn stack(arm: &FakeArm) -> (Stack, BlossomOnAzureOutputs) {
    let mut stack = Stack::new("blossom");
    let out = BlossomOnAzure::new(KEY).add_to(&mut stack, &client(arm)).unwrap();
    (stack, out)
}

fn account() -> String {
    format!("blossomdata{}", default_account_suffix("blossom"))
}

fn rg_path() -> String {
    FakeArm::rg_path("blossom-rg")
}

async fn apply(engine: &Engine) -> ApplyReport {
    let plan = engine.plan().await.unwrap();
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{:?}", report.failed);
    report
}

/// Request bodies the fake received for `PUT`s whose path contains `fragment`.
async fn put_bodies(arm: &FakeArm, fragment: &str) -> Vec<Value> {
    let fragment = fragment.to_ascii_lowercase();
    arm.server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT" && r.url.path().to_ascii_lowercase().contains(&fragment))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn cloud_init_matches_the_golden_file_and_the_document() {
    let arm = FakeArm::start().await;
    let (_, out) = stack(&arm);
    let preview = out.cloud_init.preview();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &preview).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("tests/golden/blossom_on_azure.cloud-init.yaml");
    assert_eq!(preview, golden, "rendered cloud-init differs from the golden file (UPDATE_GOLDEN=1 rewrites it)");

    // Section 5.1: apt update && apt upgrade -y; apt install -y cifs-utils.
    assert!(preview.contains("package_update: true\npackage_upgrade: true\npackages:\n  - \"cifs-utils\"\n"));
    // Section 5.2: the credentials file, root only (chmod 600).
    assert!(preview.contains(
        "  - path: \"/etc/smbcredentials/blossomdata.cred\"\n    owner: \"root:root\"\n    permissions: \"0600\"\n    content: |\n      username=${blossom/storage.name}\n      password=${blossom/storage.key1}\n"
    ));
    // Section 5.4: the fstab line with exactly the document's options.
    assert!(preview.contains(
        "  - [\"${blossom/share.smb_path}\", \"/mnt/blossom/data\", \"cifs\", \"_netdev,nofail,credentials=/etc/smbcredentials/blossomdata.cred,dir_mode=0755,file_mode=0644,serverino,nosharesock,actimeo=30,mfsymlinks\", \"0\", \"0\"]\n"
    ));
    // Section 5.3: mount point owned by the admin user (before the share is mounted).
    assert!(preview.contains("  - [\"mkdir\", \"-p\", \"/mnt/blossom/data\"]\n"));
    assert!(preview.contains("chown -R azureuser:azureuser /mnt/blossom"));
    assert!(preview.contains("mountpoint -q /mnt/blossom/data || mount /mnt/blossom/data"));
    // Section 8: the unit, enabled and started.
    for line in [
        "      Requires=mnt-blossom-data.mount\n",
        "      After=network-online.target mnt-blossom-data.mount\n",
        "      User=azureuser\n",
        "      Group=azureuser\n",
        "      WorkingDirectory=/home/azureuser/ocaml-nostr-blossom\n",
        "      Environment=\"OPAMSWITCH=5.1.1\"\n",
        "      ExecStart=/bin/bash -lc \"eval $(opam env) && dune exec bin/main.exe -- --port 8082 --cert /home/azureuser/ocaml-nostr-blossom/cert.pem --key /home/azureuser/ocaml-nostr-blossom/key.pem\"\n",
        "      Restart=on-failure\n",
        "      RestartSec=10\n",
        "      LimitNOFILE=65536\n",
        "      NoNewPrivileges=true\n",
        "      ProtectSystem=strict\n",
        "      ProtectHome=read-only\n",
        "      ReadWritePaths=/mnt/blossom/data\n",
        "      WantedBy=multi-user.target\n",
    ] {
        assert!(preview.contains(line), "missing {line:?}");
    }
    assert!(preview.contains(
        "  - path: \"/etc/systemd/system/blossom.service\"\n    owner: \"root:root\"\n    permissions: \"0644\"\n"
    ));
    assert!(preview.ends_with(
        "  - [\"systemctl\", \"daemon-reload\"]\n  - [\"systemctl\", \"enable\", \"--now\", \"blossom.service\"]\n"
    ));
}

#[tokio::test]
async fn the_server_command_and_mount_are_configurable() {
    let arm = FakeArm::start().await;
    let mut stack = Stack::new("blossom");
    let out = BlossomOnAzure::new(KEY)
        .exec_start("/home/azureuser/ocaml-nostr-blossom/_build/default/bin/main.exe --port 9000")
        .app_port(9000, 1010)
        .mount_point("/srv/blobs")
        .mount_as_admin(true)
        .add_to(&mut stack, &client(&arm))
        .unwrap();
    let p = out.cloud_init.preview();
    assert!(p.contains("ExecStart=/home/azureuser/ocaml-nostr-blossom/_build/default/bin/main.exe --port 9000\n"));
    assert!(p.contains("Requires=srv-blobs.mount\n"));
    assert!(p.contains("ReadWritePaths=/srv/blobs\n"));
    assert!(p.contains(",mfsymlinks,uid=azureuser,gid=azureuser\""));
    assert_eq!(out.app_port, 9000);
    // systemd's prefixes before the program path are accepted (`-`: a failing exit is not fatal).
    let mut other = Stack::new("blossom");
    let prefixed = BlossomOnAzure::new(KEY).exec_start("-/usr/local/bin/blossom --port 8082");
    let p = prefixed.add_to(&mut other, &client(&arm)).unwrap().cloud_init.preview();
    assert!(p.contains("ExecStart=-/usr/local/bin/blossom --port 8082\n"), "{p}");
}

#[tokio::test]
async fn bad_values_are_refused_before_anything_is_added() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let cases: Vec<(BlossomOnAzure, &str)> = vec![
        (BlossomOnAzure::new("not a key"), "blossom_on_azure.ssh_public_key"),
        (BlossomOnAzure::new(KEY).storage_account_suffix("12-45"), "blossom_on_azure.storage_account_suffix"),
        (
            BlossomOnAzure::new(KEY).storage_account_suffix("1234567890123456"),
            "blossom_on_azure.storage_account_suffix",
        ),
        (BlossomOnAzure::new(KEY).storage_account_name("Blossom"), "blossom_on_azure.storage_account_name"),
        (BlossomOnAzure::new(KEY).share_quota_gib(0), "blossom_on_azure.share_quota_gib"),
        (BlossomOnAzure::new(KEY).admin_username("root"), "blossom_on_azure.admin_username"),
        (BlossomOnAzure::new(KEY).app_port(22, 1002), "blossom_on_azure.app_port"),
        (BlossomOnAzure::new(KEY).app_port(8082, 1001), "blossom_on_azure.app_port"),
        (BlossomOnAzure::new(KEY).ssh_port(22, 50), "blossom_on_azure.ssh_port"),
        (BlossomOnAzure::new(KEY).subnet("s", "10.9.0.0/24"), "blossom_on_azure.subnet_prefix"),
        (BlossomOnAzure::new(KEY).mount_point("/mnt/my data"), "blossom_on_azure.mount_point"),
        (BlossomOnAzure::new(KEY).mount_options("_netdev,nofail"), "blossom_on_azure.mount_options"),
        (BlossomOnAzure::new(KEY).exec_start("dune exec\nrm -rf /"), "blossom_on_azure.exec_start"),
        (BlossomOnAzure::new(KEY).exec_start("/usr/bin/true\r"), "blossom_on_azure.exec_start"),
        (BlossomOnAzure::new(KEY).exec_start("-main.exe --port 8082"), "blossom_on_azure.exec_start"),
        (BlossomOnAzure::new(KEY).service_name("blossom"), "blossom_on_azure.service_name"),
        (BlossomOnAzure::new(KEY).location(""), "blossom_on_azure.location"),
        (BlossomOnAzure::new(KEY).vm_name("-vm"), "blossom_on_azure.vm_name"),
    ];
    for (recipe, field) in cases {
        let mut stack = Stack::new("blossom");
        match recipe.add_to(&mut stack, &c) {
            Err(Error::InvalidInput { field: f, rule }) => {
                assert_eq!(f, field, "{rule}");
                assert!(!rule.is_empty());
            }
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
        assert!(stack.is_empty(), "{field}: nothing may be added");
    }
    assert!(arm.log().is_empty(), "validation made a call: {:?}", arm.log());
}

#[tokio::test]
async fn plan_offline_makes_no_call_and_shows_every_resource() {
    let arm = FakeArm::start().await;
    let (stack, _) = stack(&arm);
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    let plan = engine.plan().await.unwrap();
    assert!(arm.log().is_empty(), "{:?}", arm.log());
    let text = plan.render();
    for addr in [
        "blossom/rg",
        "blossom/storage",
        "blossom/share",
        "blossom/vnet",
        "blossom/subnet",
        "blossom/nsg",
        "blossom/public-ip",
        "blossom/nic",
        "blossom/vm",
    ] {
        assert_eq!(plan.resource(addr).unwrap().action, Action::Create, "{addr}");
        assert!(text.contains(addr), "{addr}");
    }
    assert_eq!(plan.summary.to_string().split_whitespace().next(), Some("9"), "{}", plan.summary);
}

fn assert_document_values(arm: &FakeArm) {
    let acct = account();
    let rg = arm.resource(&rg_path()).unwrap();
    assert_eq!(rg["location"], "japaneast");
    let sa = arm.resource(&FakeArm::account_path("blossom-rg", &acct)).unwrap();
    assert_eq!(sa["sku"]["name"], "Standard_LRS");
    assert_eq!(sa["kind"], "StorageV2");
    assert_eq!(sa["properties"]["supportsHttpsTrafficOnly"], true);
    assert_eq!(sa["properties"]["minimumTlsVersion"], "TLS1_2");
    assert_eq!(sa["properties"]["allowSharedKeyAccess"], true);
    let share = arm
        .resource(&format!("{}/fileServices/default/shares/blossom-data", FakeArm::account_path("blossom-rg", &acct)))
        .unwrap();
    assert_eq!(share["properties"]["shareQuota"], 100);
    let net = format!("{}/providers/Microsoft.Network", rg_path());
    let nsg = arm.resource(&format!("{net}/networkSecurityGroups/blossom-vmNSG")).unwrap();
    let rules: Vec<(String, u64)> = nsg["properties"]["securityRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["properties"]["direction"], "Inbound");
            assert_eq!(r["properties"]["access"], "Allow");
            assert_eq!(r["properties"]["protocol"], "Tcp");
            (
                r["properties"]["destinationPortRange"].as_str().unwrap().to_owned(),
                r["properties"]["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rules, vec![("22".to_owned(), 1001), ("8082".to_owned(), 1002)]);
    let pip = arm.resource(&format!("{net}/publicIPAddresses/blossom-vmPublicIP")).unwrap();
    assert_eq!(pip["sku"]["name"], "Standard");
    assert_eq!(pip["properties"]["publicIPAllocationMethod"], "Static");
    let vm = arm.resource(&format!("{}/providers/Microsoft.Compute/virtualMachines/blossom-vm", rg_path())).unwrap();
    let p = &vm["properties"];
    assert_eq!(p["hardwareProfile"]["vmSize"], "Standard_B2s");
    assert_eq!(p["osProfile"]["adminUsername"], "azureuser");
    assert_eq!(p["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"], true);
    assert_eq!(p["storageProfile"]["imageReference"]["offer"], "0001-com-ubuntu-server-jammy");
    assert_eq!(p["storageProfile"]["imageReference"]["sku"], "22_04-lts-gen2");
}

#[tokio::test]
async fn apply_reapply_destroy() {
    let arm = FakeArm::start().await;
    let (stack, out) = stack(&arm);
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    assert_eq!(arm.resource_count(), 9, "{:?}", arm.state.lock().unwrap().resources.keys().collect::<Vec<_>>());
    assert_document_values(&arm);

    // The VM got the rendered document with the real account, key and share path.
    let vm_puts = put_bodies(&arm, "/virtualMachines/blossom-vm").await;
    assert_eq!(vm_puts.len(), 1);
    let custom = vm_puts[0]["properties"]["osProfile"]["customData"].as_str().unwrap();
    let doc = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(custom).unwrap()).unwrap();
    let acct = account();
    assert!(doc.starts_with("#cloud-config\n"));
    assert!(doc.contains(&format!("      username={acct}\n      password=key1-{acct}-secretvalue==\n")));
    assert!(
        doc.contains(&format!("  - [\"//{acct}.file.core.windows.net/blossom-data\", \"/mnt/blossom/data\", \"cifs\""))
    );
    assert!(!doc.contains("${"), "unresolved reference in {doc}");

    // Outputs: public IP, SSH command, share path.
    let e = out.endpoints(&engine.outputs().await.unwrap()).expect("outputs after apply");
    assert_eq!(e.public_ip, "20.48.1.23");
    assert_eq!(e.ssh_command, "ssh azureuser@20.48.1.23");
    assert_eq!(e.share_path, format!("//{acct}.file.core.windows.net/blossom-data"));
    assert_eq!(e.url, "https://20.48.1.23:8082/");
    // The state never holds the storage key in clear.
    let state = serde_json::to_string(&engine.state().await.unwrap().unwrap()).unwrap();
    assert!(!state.contains(&format!("key1-{acct}-secretvalue==")), "storage key in plaintext state");

    // Re-apply: nothing to do, no mutating call.
    arm.clear_log();
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    assert!(arm.mutating_calls().is_empty(), "{:?}", arm.mutating_calls());

    engine.destroy().await.unwrap().into_result().unwrap();
    assert_eq!(arm.resource_count(), 0, "{:?}", arm.state.lock().unwrap().resources.keys().collect::<Vec<_>>());
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let arm = FakeArm::start().await;
    let throttled = || json!({"error": {"code": "TooManyRequests", "message": "The request is being throttled."}});
    let busy = || json!({"error": {"code": "InternalServerError", "message": "Encountered internal server error."}});
    for fragment in
        ["/resourcegroups/", "/storageaccounts/", "/shares/", "/networksecuritygroups/", "/virtualmachines/"]
    {
        arm.fault(Some("PUT"), fragment, 429, vec![("retry-after", "0.01".into())], throttled());
    }
    for fragment in ["/virtualnetworks/", "/publicipaddresses/", "/networkinterfaces/"] {
        arm.fault(Some("PUT"), fragment, 503, vec![], busy());
        arm.fault(None, fragment, 500, vec![], busy());
    }
    arm.fault(Some("POST"), "/listkeys", 502, vec![], busy());
    let (stack, out) = stack(&arm);
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    assert_eq!(arm.resource_count(), 9);
    assert_document_values(&arm);
    assert!(out.endpoints(&engine.outputs().await.unwrap()).is_some());

    // Re-apply through throttled reads: still zero mutating calls.
    arm.fault(Some("GET"), "/virtualmachines/", 429, vec![("retry-after", "0.01".into())], throttled());
    arm.fault(Some("GET"), "/storageaccounts/", 500, vec![], busy());
    arm.clear_log();
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    assert!(arm.mutating_calls().is_empty(), "{:?}", arm.mutating_calls());

    for fragment in ["/virtualmachines/", "/networkinterfaces/", "/storageaccounts/", "/resourcegroups/"] {
        arm.fault(Some("DELETE"), fragment, 429, vec![("retry-after", "0.01".into())], throttled());
        arm.fault(Some("DELETE"), fragment, 503, vec![], busy());
    }
    engine.destroy().await.unwrap().into_result().unwrap();
    assert_eq!(arm.resource_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_apply_converges_without_duplicates() {
    let arm = FakeArm::start().await;
    // Network operations stay in progress for a while, so the run is killed inside one.
    arm.state.lock().unwrap().op_polls = 40;
    let backend = Arc::new(MemoryBackend::new());
    let (stack1, _) = stack(&arm);
    let engine = Engine::new(stack1, backend.clone());
    let plan = engine.plan().await.unwrap();
    let killed = tokio::time::timeout(Duration::from_secs(10), async {
        let apply = engine.apply(&plan);
        tokio::pin!(apply);
        loop {
            tokio::select! {
                r = &mut apply => panic!("apply finished before it was killed: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    if arm.count("PUT", "/networkinterfaces/blossom-vmvmnic") > 0 {
                        break; // dropping `apply` here is the kill
                    }
                }
            }
        }
    })
    .await;
    assert!(killed.is_ok(), "the NIC was never started");
    drop(engine);
    assert!(arm.count("PUT", "/virtualmachines/blossom-vm") == 0, "killed before the VM");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(backend.lock_holder().await.unwrap().is_none(), "the killed run's lock is released");

    arm.state.lock().unwrap().op_polls = 1;
    let (stack2, out) = stack(&arm);
    let engine = Engine::new(stack2, backend.clone());
    apply(&engine).await;
    assert_eq!(arm.resource_count(), 9);
    for (m, suffix) in [("PUT", "/resourcegroups/blossom-rg"), ("PUT", "/virtualmachines/blossom-vm")] {
        assert_eq!(arm.count(m, suffix), 1, "{m} {suffix}");
    }
    let state = engine.state().await.unwrap().unwrap();
    assert_eq!(state.resources.len(), 9);
    assert!(state.resources.values().all(|r| r.id.is_some() && r.pending.is_none()));
    assert!(out.endpoints(&engine.outputs().await.unwrap()).is_some());
    assert!(engine.plan().await.unwrap().is_empty());
}

/// Answers `POST …/runCommand` like ARM (202 + `Azure-AsyncOperation` + `Location`), records the
/// bodies, and replies to the polls with `output` as the script's result.
struct RunCommand {
    base: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Respond for RunCommand {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        assert!(req.headers.get("authorization").is_some());
        self.bodies.lock().unwrap().push(serde_json::from_slice(&req.body).unwrap());
        let op = format!(
            "{}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/japaneast/operations/rc-1",
            self.base
        );
        ResponseTemplate::new(202)
            .insert_header("azure-asyncoperation", format!("{op}?api-version=2025-04-01").as_str())
            .insert_header("location", format!("{op}?monitor=true&api-version=2025-04-01").as_str())
            .insert_header("retry-after", "0")
    }
}

/// The run command's result: `output`, plus the key it was given when `echo_key` (a script that
/// misbehaves).
struct RunCommandResult {
    bodies: Arc<Mutex<Vec<Value>>>,
    output: String,
    echo_key: bool,
}

impl Respond for RunCommandResult {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut out = self.output.clone();
        if self.echo_key {
            let bodies = self.bodies.lock().unwrap();
            out.push_str(&format!("\nkey was {}", bodies.last().unwrap()["parameters"][0]["value"].as_str().unwrap()));
        }
        ResponseTemplate::new(200).set_body_json(json!({"value": [{
            "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
            "message": format!("Enable succeeded: \n[stdout]\n{out}\n[stderr]\n"),
        }]}))
    }
}

async fn mount_run_command(arm: &FakeArm, output: &str, echo_key: bool) -> Arc<Mutex<Vec<Value>>> {
    let bodies = Arc::new(Mutex::new(vec![]));
    Mock::given(method("POST"))
        .and(path_regex("/virtualMachines/blossom-vm/runCommand$"))
        .respond_with(RunCommand { base: arm.uri(), bodies: bodies.clone() })
        .with_priority(1)
        .mount(&arm.server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("/operations/rc-1$"))
        .and(query_param("monitor", "true"))
        .respond_with(RunCommandResult { bodies: bodies.clone(), output: output.to_owned(), echo_key })
        .with_priority(1)
        .mount(&arm.server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("/operations/rc-1$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "name": "rc-1", "status": "Succeeded", "startTime": "2026-11-25T10:00:00Z", "endTime": "2026-11-25T10:00:21Z"
        })))
        .with_priority(2)
        .mount(&arm.server)
        .await;
    bodies
}

#[tokio::test]
async fn key_rotation_regenerates_key2_and_rewrites_the_vm_credentials() {
    let arm = FakeArm::start().await;
    let (stack, _) = stack(&arm);
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    let bodies = mount_run_command(&arm, ROTATION_OK_MARKER, false).await;

    let ops = BlossomOnAzure::new(KEY).operations(client(&arm), "blossom");
    let rotation = ops.rotate_storage_key().await.unwrap();
    assert_eq!(rotation.key_name, "key2");
    let acct_path = FakeArm::account_path("blossom-rg", &account()).to_ascii_lowercase();
    let (key1, key2) = arm.state.lock().unwrap().keys[&acct_path].clone();
    assert!(key2.starts_with("key2-rotated-"), "{key2}");
    assert_eq!(key1, format!("key1-{}-secretvalue==", account()), "key1 is untouched");
    assert_eq!(rotation.new_key.expose(), key2);
    assert_eq!(arm.count("POST", "/regeneratekey"), 1);

    let sent = bodies.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let body = &sent[0];
    assert_eq!(body["commandId"], "RunShellScript");
    assert_eq!(body["parameters"], json!([{"name": KEY_PARAMETER, "value": key2}]));
    let script: Vec<&str> = body["script"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let text = script.join("\n");
    assert!(!text.contains(&key2), "the key must travel as a parameter, not in the script");
    assert!(text.contains(&format!(
        "printf 'username=%s\\npassword=%s\\n' '{}' \"$key\" > /etc/smbcredentials/blossomdata.cred.new",
        account()
    )));
    assert!(text.contains("chmod 600 /etc/smbcredentials/blossomdata.cred.new && mv -f"));
    assert!(text.contains("systemctl restart mnt-blossom-data.mount"));
    assert!(text.contains("mountpoint -q /mnt/blossom/data"));
    assert!(!format!("{rotation:?}").contains(&key2), "Debug leaks the key");

    // The VM's custom data keeps key1: the next plan is empty.
    assert!(engine.plan().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rotation_script_that_fails_is_an_error_without_the_key() {
    let arm = FakeArm::start().await;
    let (stack, _) = stack(&arm);
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    let ops = BlossomOnAzure::new(KEY).operations(client(&arm), "blossom");
    // The script fails, and (misbehaving) prints the key it got.
    mount_run_command(&arm, "mount error(13): Permission denied", true).await;
    let err = ops.rotate_storage_key().await.unwrap_err();
    let acct_path = FakeArm::account_path("blossom-rg", &account()).to_ascii_lowercase();
    let key2 = arm.state.lock().unwrap().keys[&acct_path].1.clone();
    assert!(key2.starts_with("key2-rotated-"));
    let msg = err.to_string();
    assert!(msg.contains("did not finish"), "{msg}");
    assert!(msg.contains("Permission denied"), "{msg}");
    assert!(msg.contains("key was (redacted)"), "{msg}");
    assert!(!msg.contains(&key2), "{msg}");
    assert!(!format!("{err:?}").contains(&key2));
}

#[tokio::test]
async fn share_snapshots_are_taken_listed_and_deleted() {
    let arm = FakeArm::start().await;
    let (stack, _) = stack(&arm);
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    apply(&engine).await;
    let ops = BlossomOnAzure::new(KEY).operations(client(&arm), "blossom");
    let first = ops.snapshot_share().await.unwrap();
    let second = ops.snapshot_share().await.unwrap();
    assert!(first.share_id.ends_with("/fileServices/default/shares/blossom-data"));
    let listed: Vec<String> = ops.list_share_snapshots().await.unwrap().into_iter().map(|s| s.snapshot_time).collect();
    // Oldest first, by snapshot time (the fake's clock wraps every 60 snapshots, so its second
    // snapshot may carry the earlier time; Azure's times only grow).
    let mut both = vec![first.snapshot_time.clone(), second.snapshot_time.clone()];
    both.sort();
    assert_ne!(both[0], both[1], "two distinct snapshots");
    assert_eq!(listed, both);
    ops.delete_share_snapshot(&first.snapshot_time).await.unwrap();
    let listed: Vec<String> = ops.list_share_snapshots().await.unwrap().into_iter().map(|s| s.snapshot_time).collect();
    assert_eq!(listed, vec![second.snapshot_time]);
    // Snapshots are not stack resources: the plan stays empty, destroy still removes the share.
    assert!(engine.plan().await.unwrap().is_empty());
    engine.destroy().await.unwrap().into_result().unwrap();
    assert_eq!(arm.resource_count(), 0);
}
