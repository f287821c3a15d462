//! The seed's VM network and VM against the fake ARM: NSG (22 and 8082), VNet, subnet, Standard
//! static public IP, NIC, and an Ubuntu 22.04 VM with cloud-init custom data; no-op re-apply,
//! in-place updates, replacements for write-only fields, failures, and validation.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use stackup_azure::resources::virtual_machine::{CUSTOM_DATA_MAX_BYTES, custom_data_hash};
use stackup_azure::*;
use stackup_core::{Action, Ctx, Error, Input, OutputRef, Provisioner};

use common::{FakeArm, client};

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl azureuser@blossom";
const CLOUD_INIT: &str = "#cloud-config\npackages:\n  - cifs-utils\nruncmd:\n  - mount -a\n";

struct Net {
    nsg: String,
    subnet: String,
    nic: String,
    pip: String,
}

fn nsg_spec() -> NetworkSecurityGroupSpec {
    NetworkSecurityGroupSpec {
        name: "blossom-nsg".into(),
        resource_group: "blossom-rg".into(),
        location: "japaneast".into(),
        rules: vec![SecurityRule::allow_tcp_in("blossom", 8082, 1002), SecurityRule::allow_tcp_in("ssh", 22, 1001)],
        tags: BTreeMap::new(),
    }
}

async fn resource_group(c: &ArmClient) {
    ResourceGroups::new(c.clone())
        .create(
            &Ctx::detached("rg"),
            &ResourceGroupSpec { name: "blossom-rg".into(), location: "japaneast".into(), tags: BTreeMap::new() },
        )
        .await
        .unwrap();
}

fn vnet_spec() -> VirtualNetworkSpec {
    VirtualNetworkSpec {
        name: "blossom-vnet".into(),
        resource_group: "blossom-rg".into(),
        location: "japaneast".into(),
        address_prefixes: vec!["10.0.0.0/16".into()],
        tags: BTreeMap::new(),
    }
}

async fn network(c: &ArmClient) -> Net {
    resource_group(c).await;
    let nsg = NetworkSecurityGroups::new(c.clone()).create(&Ctx::detached("nsg"), &nsg_spec()).await.unwrap();
    let vnet = VirtualNetworks::new(c.clone()).create(&Ctx::detached("vnet"), &vnet_spec()).await.unwrap();
    let subnet = Subnets::new(c.clone())
        .create(
            &Ctx::detached("subnet"),
            &SubnetSpec {
                name: "default".into(),
                virtual_network_id: Input::Value(vnet.id.clone()),
                address_prefix: "10.0.0.0/24".into(),
                network_security_group_id: Some(Input::Value(nsg.id.clone())),
            },
        )
        .await
        .unwrap();
    let pip = PublicIpAddresses::new(c.clone())
        .create(
            &Ctx::detached("pip"),
            &PublicIpAddressSpec {
                name: "blossom-ip".into(),
                resource_group: "blossom-rg".into(),
                location: "japaneast".into(),
                zones: vec![],
                idle_timeout_minutes: 4,
                dns_label: None,
                tags: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    let nic =
        NetworkInterfaces::new(c.clone()).create(&Ctx::detached("nic"), &nic_spec(&subnet.id, &pip.id)).await.unwrap();
    Net { nsg: nsg.id, subnet: subnet.id, nic: nic.id, pip: pip.id }
}

fn nic_spec(subnet: &str, pip: &str) -> NetworkInterfaceSpec {
    NetworkInterfaceSpec {
        name: "blossom-nic".into(),
        resource_group: "blossom-rg".into(),
        location: "japaneast".into(),
        subnet_id: Input::Value(subnet.into()),
        public_ip_address_id: Some(Input::Value(pip.into())),
        network_security_group_id: None,
        private_ip_address: None,
        tags: BTreeMap::new(),
    }
}

fn vm_spec(nic: &str) -> VirtualMachineSpec {
    VirtualMachineSpec {
        name: "blossom-vm".into(),
        resource_group: "blossom-rg".into(),
        location: "japaneast".into(),
        size: "Standard_B2s".into(),
        admin_username: "azureuser".into(),
        ssh_public_key: SSH_KEY.into(),
        network_interface_id: Input::Value(nic.into()),
        image: ImageReference::ubuntu_2204(),
        os_disk_type: "Standard_LRS".into(),
        os_disk_size_gb: None,
        custom_data: Some(Input::Value(CLOUD_INIT.into())),
        tags: BTreeMap::new(),
    }
}

#[tokio::test]
async fn network_resources_have_the_published_wire_shape_and_reapply_as_no_ops() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let net = network(&c).await;

    let nsg = arm.resource(&net.nsg).unwrap();
    let rules = nsg["properties"]["securityRules"].as_array().unwrap();
    let ssh = rules.iter().find(|r| r["name"] == "ssh").unwrap();
    assert_eq!(ssh["properties"]["destinationPortRange"], "22");
    assert_eq!(ssh["properties"]["priority"], 1001);
    assert_eq!(ssh["properties"]["direction"], "Inbound");
    assert_eq!(ssh["properties"]["access"], "Allow");
    assert_eq!(ssh["properties"]["protocol"], "Tcp");
    let pip = arm.resource(&net.pip).unwrap();
    assert_eq!(pip["sku"]["name"], "Standard");
    assert_eq!(pip["properties"]["publicIPAllocationMethod"], "Static");
    let subnet = arm.resource(&net.subnet).unwrap();
    assert_eq!(subnet["properties"]["networkSecurityGroup"]["id"], net.nsg.as_str());
    let nic = arm.resource(&net.nic).unwrap();
    assert_eq!(nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"], net.pip.as_str());

    // Re-apply: every read + diff is a no-op, with zero mutating calls (the six default NSG
    // rules, the server-side fields and the rule order do not count as changes).
    arm.clear_log();
    let ctx = Ctx::detached("x");
    let nsgs = NetworkSecurityGroups::new(c.clone());
    let observed = nsgs.read(&ctx, &net.nsg, None).await.unwrap().unwrap();
    assert_eq!(nsgs.diff(&nsg_spec(), &observed).action(), Action::NoOp, "{:?}", nsgs.diff(&nsg_spec(), &observed));
    let nics = NetworkInterfaces::new(c.clone());
    let observed_nic = nics.read(&ctx, &net.nic, None).await.unwrap().unwrap();
    assert_eq!(observed_nic.private_ip_address.as_deref(), Some("10.0.0.4"));
    assert_eq!(nics.diff(&nic_spec(&net.subnet, &net.pip), &observed_nic).action(), Action::NoOp);
    let subnets = Subnets::new(c.clone());
    let observed_subnet = subnets.read(&ctx, &net.subnet, None).await.unwrap().unwrap();
    let subnet_spec = SubnetSpec {
        name: "default".into(),
        virtual_network_id: Input::Value(observed_subnet.virtual_network_id.clone()),
        address_prefix: "10.0.0.0/24".into(),
        network_security_group_id: Some(Input::Value(net.nsg.to_uppercase())),
    };
    assert_eq!(subnets.diff(&subnet_spec, &observed_subnet).action(), Action::NoOp, "ids compare case-insensitively");
    assert!(arm.mutating_calls().is_empty());

    // Opening another port updates the NSG in place.
    let mut more = nsg_spec();
    more.rules.push(SecurityRule::allow_tcp_in("http", 80, 1003));
    assert_eq!(nsgs.diff(&more, &observed).action(), Action::Update);
    let updated = nsgs.update(&ctx, &net.nsg, &more, &observed).await.unwrap();
    assert_eq!(updated.rules.len(), 3);
    assert_eq!(nsgs.diff(&more, &updated).action(), Action::NoOp);
}

#[tokio::test]
async fn vm_lifecycle_with_custom_data() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let net = network(&c).await;
    let vms = VirtualMachines::new(c.clone());
    let ctx = Ctx::detached("vm");
    let created = vms.create(&ctx, &vm_spec(&net.nic)).await.unwrap();

    // What was sent: the published VM shape with base64 cloud-init.
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
    let p = &sent["properties"];
    assert_eq!(p["hardwareProfile"]["vmSize"], "Standard_B2s");
    assert_eq!(p["storageProfile"]["imageReference"]["offer"], "0001-com-ubuntu-server-jammy");
    assert_eq!(p["storageProfile"]["imageReference"]["sku"], "22_04-lts-gen2");
    assert_eq!(p["storageProfile"]["osDisk"]["deleteOption"], "Delete");
    assert_eq!(p["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"], true);
    assert_eq!(
        p["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["path"],
        "/home/azureuser/.ssh/authorized_keys"
    );
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(p["osProfile"]["customData"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, CLOUD_INIT.as_bytes());
    assert_eq!(p["networkProfile"]["networkInterfaces"][0]["properties"]["primary"], true);

    let out = &created.outputs;
    assert_eq!(out.custom_data_sha256.as_deref(), Some(custom_data_hash(CLOUD_INIT).as_str()));
    assert_eq!(out.private_ip_address.as_deref(), Some("10.0.0.4"));
    assert_eq!(out.public_ip_address.as_deref(), Some("20.48.1.23"));

    // Re-apply: ARM returns no customData; the hash is carried from the prior outputs.
    arm.clear_log();
    let observed = vms.read(&ctx, &created.id, Some(out)).await.unwrap().unwrap();
    assert_eq!(observed.custom_data_sha256, out.custom_data_sha256);
    assert_eq!(
        vms.diff(&vm_spec(&net.nic), &observed).action(),
        Action::NoOp,
        "{:?}",
        vms.diff(&vm_spec(&net.nic), &observed)
    );
    assert!(arm.mutating_calls().is_empty());

    // Write-only or immutable fields plan a replacement.
    let mut changed = vm_spec(&net.nic);
    changed.custom_data = Some(Input::Value(format!("{CLOUD_INIT}  - echo hi\n")));
    assert_eq!(vms.diff(&changed, &observed).action(), Action::Replace);
    let mut changed = vm_spec(&net.nic);
    changed.admin_username = "blossom".into();
    assert_eq!(vms.diff(&changed, &observed).action(), Action::Replace);
    let mut changed = vm_spec(&net.nic);
    changed.custom_data = Some(OutputRef::new("acct", "key1").input());
    let d = vms.diff(&changed, &observed);
    assert_eq!(d.action(), Action::Replace);
    assert!(d.changes.iter().any(|c| c.unknown), "known only after apply");

    // Size and tags update in place by PATCH, never resending customData.
    let mut bigger = vm_spec(&net.nic);
    bigger.size = "Standard_D2s_v3".into();
    bigger.tags.insert("tier".into(), "heavy".into());
    assert_eq!(vms.diff(&bigger, &observed).action(), Action::Update);
    let updated = vms.update(&ctx, &created.id, &bigger, &observed).await.unwrap();
    assert_eq!(updated.size, "Standard_D2s_v3");
    assert_eq!(vms.diff(&bigger, &updated).action(), Action::NoOp);
    let patch =
        arm.server.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "PATCH").unwrap();
    assert!(!String::from_utf8_lossy(&patch.body).contains("customData"));

    vms.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(vms.read(&ctx, &created.id, None).await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_vm_provisioning_returns_the_partial_vm() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let net = network(&c).await;
    arm.fail_next_operation(
        "virtualmachines/blossom-vm",
        "OSProvisioningTimedOut",
        "OS Provisioning for VM 'blossom-vm' did not finish in the allotted time.",
        false,
    );
    let err = VirtualMachines::new(c).create(&Ctx::detached("vm"), &vm_spec(&net.nic)).await.unwrap_err();
    assert_eq!(err.error.code(), Some("OSProvisioningTimedOut"));
    assert!(err.partial_id.unwrap().ends_with("/virtualMachines/blossom-vm"));
}

#[tokio::test]
async fn bad_network_and_vm_inputs_are_rejected_before_any_http_call() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let nsgs = NetworkSecurityGroups::new(c.clone());
    let nic = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/blossom-rg/providers/Microsoft.Network/networkInterfaces/nic";
    let mut nsg_cases: Vec<(NetworkSecurityGroupSpec, &str, &str)> = vec![];
    let mut s = nsg_spec();
    s.rules[0].priority = 99;
    nsg_cases.push((s, "rules[0].priority", "100-4096"));
    let mut s = nsg_spec();
    s.rules[0].priority = 4097;
    nsg_cases.push((s, "rules[0].priority", "100-4096"));
    let mut s = nsg_spec();
    s.rules[1].priority = 1002;
    nsg_cases.push((s, "rules[1].priority", "twice"));
    let mut s = nsg_spec();
    s.rules[0].destination_port_range = "70000".into();
    nsg_cases.push((s, "rules[0].destination_port_range", "1-65535"));
    let mut s = nsg_spec();
    s.rules[0].destination_port_range = "90-80".into();
    nsg_cases.push((s, "rules[0].destination_port_range", "range"));
    let mut s = nsg_spec();
    s.rules[0].source_address_prefix = "".into();
    nsg_cases.push((s, "rules[0].source_address_prefix", "CIDR"));
    for (spec, field, rule) in nsg_cases {
        let err = nsgs.validate(&spec).unwrap_err();
        assert!(matches!(&err, Error::InvalidInput { field: f, rule: r } if f == field && r.contains(rule)), "{err:?}");
    }
    let vnets = VirtualNetworks::new(c.clone());
    for (prefix, rule) in
        [("10.0.0.0/33", "CIDR"), ("10.0.0.1/16", "host bits"), ("10.0.0.0/30", "/29"), ("banana", "CIDR")]
    {
        let spec = VirtualNetworkSpec {
            name: "v".into(),
            resource_group: "rg".into(),
            location: "japaneast".into(),
            address_prefixes: vec![prefix.into()],
            tags: BTreeMap::new(),
        };
        let err = vnets.create(&Ctx::detached("v"), &spec).await.unwrap_err().error;
        assert!(
            matches!(&err, Error::InvalidInput { field, rule: r } if field == "address_prefixes[0]" && r.contains(rule)),
            "{err:?}"
        );
    }
    let vms = VirtualMachines::new(c.clone());
    let too_big = format!("#cloud-config\n{}", "x".repeat(CUSTOM_DATA_MAX_BYTES));
    type Mutation = Box<dyn Fn(&mut VirtualMachineSpec)>;
    let vm_cases: Vec<(Mutation, &str, &str)> = vec![
        (Box::new(|s| s.admin_username = "root".into()), "admin_username", "reserved"),
        (Box::new(|s| s.admin_username = "Admin-User".into()), "admin_username", "lowercase"),
        (Box::new(|s| s.ssh_public_key = "ssh-dss AAAAB3NzaC1kc3M=".into()), "ssh_public_key", "not accepted"),
        (Box::new(|s| s.ssh_public_key = "hunter2".into()), "ssh_public_key", "OpenSSH"),
        (Box::new(move |s| s.custom_data = Some(Input::Value(too_big.clone()))), "custom_data", "65535"),
        (Box::new(|s| s.size = "B2s please".into()), "size", "Standard_B2s"),
        (Box::new(|s| s.name = "blossom_vm".into()), "name", "letters"),
        (
            Box::new(|s| s.network_interface_id = Input::Value("/subscriptions/x/resourceGroups/rg".into())),
            "network_interface_id",
            "networkInterfaces",
        ),
        (Box::new(|s| s.os_disk_type = "Ultra".into()), "os_disk_type", "Standard_LRS"),
    ];
    for (mutate, field, rule) in vm_cases {
        let mut spec = vm_spec(nic);
        mutate(&mut spec);
        let err = vms.create(&Ctx::detached("vm"), &spec).await.unwrap_err().error;
        assert!(
            matches!(&err, Error::InvalidInput { field: f, rule: r } if f == field && r.contains(rule)),
            "{field}: {err:?}"
        );
    }
    assert!(arm.log().is_empty(), "no HTTP call: {:?}", arm.log());
}

#[tokio::test]
async fn the_upper_case_resource_group_compute_answers_with_is_no_change() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let net = network(&c).await;
    let vms = VirtualMachines::new(c.clone());
    let ctx = Ctx::detached("vm");
    let created = vms.create(&ctx, &vm_spec(&net.nic)).await.unwrap();
    // Microsoft.Compute does not keep the group's case in the ids it returns.
    assert!(created.id.contains("/resourceGroups/BLOSSOM-RG/"), "{}", created.id);
    assert_eq!(created.outputs.resource_group, "BLOSSOM-RG");

    arm.clear_log();
    let observed = vms.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    let d = vms.diff(&vm_spec(&net.nic), &observed);
    assert_eq!(d.action(), Action::NoOp, "{d:?}");
    // The NIC id the spec names may differ in case from the one ARM returns, too.
    let d = vms.diff(&vm_spec(&net.nic.replace("blossom-rg", "Blossom-RG")), &observed);
    assert_eq!(d.action(), Action::NoOp, "{d:?}");
    assert!(arm.mutating_calls().is_empty());

    // A really different group still replaces the VM.
    let mut moved = vm_spec(&net.nic);
    moved.resource_group = "other-rg".into();
    assert_eq!(vms.diff(&moved, &observed).action(), Action::Replace);
    // And a reference (known after apply) is still reported as unknown.
    moved.resource_group = OutputRef::new("rg", "name").input();
    let d = vms.diff(&moved, &observed);
    assert!(d.changes.iter().any(|c| c.path == "resource_group" && c.unknown), "{d:?}");

    // The other resource kinds compare the group case-insensitively as well.
    let pips = PublicIpAddresses::new(c.clone());
    let pip = pips.read(&ctx, &net.pip, None).await.unwrap().unwrap();
    let spec = PublicIpAddressSpec {
        name: "blossom-ip".into(),
        resource_group: "BLOSSOM-RG".into(),
        location: "Japan East".into(),
        zones: vec![],
        idle_timeout_minutes: 4,
        dns_label: None,
        tags: BTreeMap::new(),
    };
    assert_eq!(pips.diff(&spec, &pip).action(), Action::NoOp, "{:?}", pips.diff(&spec, &pip));
}

#[tokio::test]
async fn tags_azure_creates_are_ignored_by_diff_kept_by_updates_and_refused_in_specs() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let net = network(&c).await;
    let nsgs = NetworkSecurityGroups::new(c.clone());
    let ctx = Ctx::detached("nsg");
    // Azure adds a tag of its own (reserved prefixes: microsoft, azure, windows).
    let mut stored = arm.resource(&net.nsg).unwrap();
    stored["tags"]["azure-resource-mover"] = serde_json::json!("source=x");
    stored["tags"]["MicrosoftDefender"] = serde_json::json!("on");
    arm.set_resource(&net.nsg, stored);

    let observed = nsgs.read(&ctx, &net.nsg, None).await.unwrap().unwrap();
    let d = nsgs.diff(&nsg_spec(), &observed);
    assert_eq!(d.action(), Action::NoOp, "{d:?}");

    // An update caused by something else keeps Azure's tags (a PUT replaces all tags).
    let mut spec = nsg_spec();
    spec.tags.insert("team".into(), "blossom".into());
    assert_eq!(nsgs.diff(&spec, &observed).action(), Action::Update);
    let updated = nsgs.update(&ctx, &net.nsg, &spec, &observed).await.unwrap();
    assert_eq!(updated.tags.get("azure-resource-mover").map(String::as_str), Some("source=x"));
    assert_eq!(updated.tags.get("MicrosoftDefender").map(String::as_str), Some("on"));
    assert_eq!(updated.tags.get("team").map(String::as_str), Some("blossom"));
    assert_eq!(updated.tags.get("managed-by").map(String::as_str), Some("stackup"));
    assert_eq!(nsgs.diff(&spec, &updated).action(), Action::NoOp);

    // Users cannot write such tags: ARM refuses them, so validation does, before any call.
    arm.clear_log();
    for name in ["azure-owner", "Microsoft.Team", "WINDOWS_patch"] {
        let mut bad = nsg_spec();
        bad.tags.insert(name.into(), "x".into());
        let err = nsgs.create(&Ctx::detached("nsg2"), &bad).await.unwrap_err().error;
        let field = format!("tags.{name}");
        assert!(
            matches!(&err, Error::InvalidInput { field: f, rule } if *f == field && rule.contains("reserved for Azure")),
            "{err:?}"
        );
    }
    assert!(arm.log().is_empty(), "no HTTP call: {:?}", arm.log());
}

#[tokio::test]
async fn creating_again_a_vnet_an_interrupted_run_made_keeps_its_subnets() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    resource_group(&c).await;
    let spec = vnet_spec();
    let vnets = VirtualNetworks::new(c.clone());
    let ctx = Ctx::detached("vnet");
    let vnet = vnets.create(&ctx, &spec).await.unwrap();
    // Azure lists a VNet's subnets inside it; one was added since.
    let mut stored = arm.resource(&vnet.id).unwrap();
    let subnet = serde_json::json!({"name": "default", "id": format!("{}/subnets/default", vnet.id),
        "properties": {"addressPrefix": "10.0.0.0/24"}});
    stored["properties"]["subnets"] = serde_json::json!([subnet.clone()]);
    arm.set_resource(&vnet.id, stored);
    // The same address creates it again (its id was never recorded): the PUT keeps the subnet.
    vnets.create(&ctx, &spec).await.unwrap();
    let after = arm.resource(&vnet.id).unwrap();
    assert_eq!(after["properties"]["subnets"], serde_json::json!([subnet]), "{after}");
}
