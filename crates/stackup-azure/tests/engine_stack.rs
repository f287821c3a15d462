//! Seed 000's whole stack (resource group, storage account, share, snapshot, NSG, VNet, subnet,
//! public IP, NIC, VM whose cloud-init mounts the share with the account key) driven by the
//! engine against the fake ARM: apply, re-apply with zero mutating calls, a secret flowing into
//! custom data without reaching state, a fault-ridden apply converging without duplicates, and
//! destroy leaving nothing.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use stackup_azure::*;
use stackup_core::cloud_init::{CloudConfig, Text};
use stackup_core::{Engine, MemoryBackend, Stack};

use common::{FakeArm, client};

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl azureuser@blossom";

fn blossom(c: &ArmClient) -> Stack {
    let mut s = Stack::new("blossom");
    let rg = s
        .add(
            "rg",
            ResourceGroups::new(c.clone()),
            ResourceGroupSpec { name: "blossom-rg".into(), location: "japaneast".into(), tags: BTreeMap::new() },
        )
        .unwrap();
    let acct = s
        .add(
            "acct",
            StorageAccounts::new(c.clone()),
            StorageAccountSpec::new("blossomdata12345", rg.output("name").input(), "japaneast"),
        )
        .unwrap();
    let share = s
        .add(
            "share",
            FileShares::new(c.clone()),
            FileShareSpec {
                name: "blossom-data".into(),
                storage_account_id: acct.id().input(),
                quota_gib: 100,
                access_tier: None,
                metadata: BTreeMap::new(),
            },
        )
        .unwrap();
    s.add("snapshot", ShareSnapshots::new(c.clone()), ShareSnapshotSpec { share_id: share.id().input() }).unwrap();
    let nsg = s
        .add(
            "nsg",
            NetworkSecurityGroups::new(c.clone()),
            NetworkSecurityGroupSpec {
                name: "blossom-nsg".into(),
                resource_group: rg.output("name").input(),
                location: "japaneast".into(),
                rules: vec![
                    SecurityRule::allow_tcp_in("ssh", 22, 1001),
                    SecurityRule::allow_tcp_in("blossom", 8082, 1002),
                ],
                tags: BTreeMap::new(),
            },
        )
        .unwrap();
    let vnet = s
        .add(
            "vnet",
            VirtualNetworks::new(c.clone()),
            VirtualNetworkSpec {
                name: "blossom-vnet".into(),
                resource_group: rg.output("name").input(),
                location: "japaneast".into(),
                address_prefixes: vec!["10.0.0.0/16".into()],
                tags: BTreeMap::new(),
            },
        )
        .unwrap();
    let subnet = s
        .add(
            "subnet",
            Subnets::new(c.clone()),
            SubnetSpec {
                name: "default".into(),
                virtual_network_id: vnet.id().input(),
                address_prefix: "10.0.0.0/24".into(),
                network_security_group_id: Some(nsg.id().input()),
            },
        )
        .unwrap();
    let pip = s
        .add(
            "pip",
            PublicIpAddresses::new(c.clone()),
            PublicIpAddressSpec {
                name: "blossom-ip".into(),
                resource_group: rg.output("name").input(),
                location: "japaneast".into(),
                zones: vec![],
                idle_timeout_minutes: 4,
                dns_label: None,
                tags: BTreeMap::new(),
            },
        )
        .unwrap();
    let nic = s
        .add(
            "nic",
            NetworkInterfaces::new(c.clone()),
            NetworkInterfaceSpec {
                name: "blossom-nic".into(),
                resource_group: rg.output("name").input(),
                location: "japaneast".into(),
                subnet_id: subnet.id().input(),
                public_ip_address_id: Some(pip.id().input()),
                network_security_group_id: None,
                private_ip_address: None,
                tags: BTreeMap::new(),
            },
        )
        .unwrap();
    let cloud_init = CloudConfig::new()
        .package("cifs-utils")
        .file(
            "/etc/smbcredentials/blossomdata.cred",
            Text::concat([Text::from("username=blossomdata12345\npassword="), Text::from(acct.output("key1")), Text::from("\n")]),
            "root:root",
            "0600",
        )
        .mount(
            Text::from(share.output("smb_path")),
            "/mnt/blossom/data",
            "cifs",
            "_netdev,nofail,credentials=/etc/smbcredentials/blossomdata.cred,dir_mode=0755,file_mode=0644,serverino,nosharesock,actimeo=30,mfsymlinks",
        );
    s.add(
        "vm",
        VirtualMachines::new(c.clone()),
        VirtualMachineSpec {
            name: "blossom-vm".into(),
            resource_group: rg.output("name").input(),
            location: "japaneast".into(),
            size: "Standard_B2s".into(),
            admin_username: "azureuser".into(),
            ssh_public_key: SSH_KEY.into(),
            network_interface_id: nic.id().input(),
            image: ImageReference::ubuntu_2204(),
            os_disk_type: "Standard_LRS".into(),
            os_disk_size_gb: None,
            custom_data: Some(cloud_init.render()),
            tags: BTreeMap::new(),
        },
    )
    .unwrap();
    s
}

#[tokio::test]
async fn seed_000_applies_reapplies_as_a_no_op_and_destroys_cleanly() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(blossom(&c), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.summary.create, 10, "{}", plan.render());
    assert!(arm.log().is_empty(), "planning an empty state makes no call: {:?}", arm.log());
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(arm.resource_count(), 9, "rg, account, share, NSG, VNet, subnet, IP, NIC, VM");
    assert_eq!(arm.state.lock().unwrap().snapshots.values().map(Vec::len).sum::<usize>(), 1, "one share snapshot");

    // The account key reached the VM's cloud-init but not the state.
    let vm = arm
        .resource(&format!("{}/providers/Microsoft.Compute/virtualMachines/blossom-vm", FakeArm::rg_path("blossom-rg")))
        .unwrap();
    assert!(vm["properties"].get("osProfile").is_some());
    let sent = arm
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "PUT" && r.url.path().ends_with("/virtualMachines/blossom-vm"))
        .unwrap()
        .body_json::<serde_json::Value>()
        .unwrap();
    use base64::Engine as _;
    let custom = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(sent["properties"]["osProfile"]["customData"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(custom.contains("password=key1-blossomdata12345-secretvalue=="), "{custom}");
    assert!(custom.contains("//blossomdata12345.file.core.windows.net/blossom-data"), "{custom}");
    let state = String::from_utf8(backend.bytes().unwrap()).unwrap();
    assert!(!state.contains("key1-blossomdata12345-secretvalue"), "no plaintext key in state");

    // Re-apply: a fresh engine plans nothing and makes zero mutating calls.
    arm.clear_log();
    let engine = Engine::new(blossom(&c), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success());
    assert!(arm.mutating_calls().is_empty(), "{:?}", arm.mutating_calls());
    assert!(!plan.render().contains("secretvalue"));

    // Destroy leaves nothing behind.
    arm.clear_log();
    let report = engine.destroy().await.unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(arm.resource_count(), 0, "{:?}", arm.state.lock().unwrap().resources.keys().collect::<Vec<_>>());
}

#[tokio::test]
async fn an_apply_through_throttling_and_failures_converges_without_duplicates() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    arm.fault(
        Some("PUT"),
        "/storageaccounts/",
        429,
        vec![("retry-after", "0".into())],
        serde_json::json!({"error": {"code": "TooManyRequests", "message": "throttled"}}),
    );
    arm.fault(
        Some("GET"),
        "/operations/",
        503,
        vec![("retry-after", "0".into())],
        serde_json::json!({"error": {"code": "ServiceUnavailable", "message": "busy"}}),
    );
    arm.fail_next_operation(
        "virtualmachines/blossom-vm",
        "OSProvisioningTimedOut",
        "OS Provisioning did not finish in the allotted time.",
        false,
    );
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(blossom(&c), backend.clone());
    let plan = engine.plan().await.unwrap();
    let report = engine.apply(&plan).await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].address, "vm");
    assert_eq!(report.failed[0].error.code(), Some("OSProvisioningTimedOut"));

    // The next run replaces the failed VM (recorded as partially created) and converges.
    let engine = Engine::new(blossom(&c), backend.clone());
    let plan = engine.plan().await.unwrap();
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{report:?} {}", plan.render());
    assert_eq!(arm.resource_count(), 9, "no duplicates");
    let engine = Engine::new(blossom(&c), backend.clone());
    assert!(engine.plan().await.unwrap().is_empty());
}
