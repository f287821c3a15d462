//! The whole Always Free recipe through the engine against the fake OCI: VCN → internet gateway
//! → default route table → security list → subnet → A1 instance; a second apply makes zero
//! mutating calls; destroy removes everything in the order OCI requires.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{COMPARTMENT, FakeOci, SSH_KEY, client};
use stackup_core::{Engine, MemoryBackend, Provisioner, Stack};
use stackup_oci::*;

fn stack(c: &OciClient) -> Stack {
    let mut stack = Stack::new("oci-free");
    let vcn = stack
        .add(
            "vcn",
            Vcns::new(c.clone()),
            VcnSpec {
                compartment_id: COMPARTMENT.into(),
                display_name: "af-vcn".into(),
                cidr_blocks: vec!["10.0.0.0/16".into()],
                dns_label: Some("afvcn".into()),
                freeform_tags: BTreeMap::new(),
            },
        )
        .unwrap();
    let igw = stack
        .add(
            "igw",
            InternetGateways::new(c.clone()),
            InternetGatewaySpec {
                compartment_id: COMPARTMENT.into(),
                vcn_id: vcn.id().input(),
                display_name: "af-igw".into(),
                enabled: true,
                freeform_tags: BTreeMap::new(),
            },
        )
        .unwrap();
    let rt = stack
        .add(
            "routes",
            RouteTables::new(c.clone()),
            RouteTableSpec {
                compartment_id: COMPARTMENT.into(),
                vcn_id: vcn.id().input(),
                display_name: "af-rt".into(),
                route_rules: vec![RouteRuleSpec {
                    destination: "0.0.0.0/0".into(),
                    network_entity_id: igw.id().input(),
                    description: None,
                }],
                adopt_id: Some(vcn.output("default_route_table_id").input()),
                freeform_tags: BTreeMap::new(),
            },
        )
        .unwrap();
    let sl = stack
        .add(
            "firewall",
            SecurityLists::new(c.clone()),
            SecurityListSpec::public_ports(COMPARTMENT, vcn.id().input(), "af-sl", &[22, 80, 443]),
        )
        .unwrap();
    let subnet = stack
        .add(
            "subnet",
            Subnets::new(c.clone()),
            SubnetSpec {
                compartment_id: COMPARTMENT.into(),
                vcn_id: vcn.id().input(),
                display_name: "af-subnet".into(),
                cidr_block: "10.0.0.0/24".into(),
                dns_label: Some("afsub".into()),
                availability_domain: None,
                route_table_id: Some(rt.id().input()),
                security_list_ids: vec![sl.id().input()],
                prohibit_public_ip_on_vnic: false,
                freeform_tags: BTreeMap::new(),
            },
        )
        .unwrap();
    stack
        .add(
            "vm",
            Instances::new(c.clone()).capacity_hunt(CapacityHunt::fast(Duration::from_secs(5))),
            InstanceSpec {
                compartment_id: COMPARTMENT.into(),
                display_name: "resonant".into(),
                availability_domains: vec![],
                fault_domains: vec![],
                shape: "VM.Standard.A1.Flex".into(),
                ocpus: Some(4.0),
                memory_in_gbs: Some(24.0),
                image: ImageSource::Latest {
                    operating_system: "Canonical Ubuntu".into(),
                    operating_system_version: "24.04".into(),
                },
                boot_volume_size_in_gbs: Some(200),
                subnet_id: subnet.id().input(),
                assign_public_ip: true,
                ssh_authorized_keys: vec![SSH_KEY.into()],
                user_data: Some("#cloud-config\npackages: [docker.io]\n".to_owned().into()),
                freeform_tags: BTreeMap::new(),
                allow_billing: false,
            },
        )
        .unwrap();
    stack
}

#[tokio::test]
async fn apply_reapply_noop_and_destroy_in_oci_order() {
    let (server, fake) = FakeOci::start().await;
    fake.state().capacity_failures.insert(common::ADS[0].into(), 1);
    let c = client(&server);
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(stack(&c), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.summary.create, 6);
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{:?}", report.failed);
    let outputs = engine.outputs().await.unwrap();
    assert_eq!(outputs["vm"]["public_ip"], "203.0.113.7");
    let subnet_post = fake.log().into_iter().find(|l| l.method == "POST" && l.path.ends_with("/subnets")).unwrap();
    assert_eq!(subnet_post.body["routeTableId"], outputs["vcn"]["default_route_table_id"]);
    assert_eq!(fake.live("instances").len(), 1);

    // Second run: a fresh engine over the same state plans nothing and mutates nothing.
    let before = fake.mutating().len();
    let engine2 = Engine::new(stack(&c), backend.clone());
    let plan2 = engine2.plan().await.unwrap();
    assert!(plan2.is_empty(), "{}", plan2.render());
    let report2 = engine2.apply(&plan2).await.unwrap();
    assert!(report2.is_success());
    assert_eq!(fake.mutating().len(), before, "re-apply made mutating calls");

    // Destroy: terminate (and wait), subnet, route rules, gateway, list, VCN.
    let mark = fake.log().len();
    let report3 = engine2.destroy().await.unwrap();
    assert!(report3.is_success(), "{:?}", report3.failed);
    let order: Vec<String> = fake.log()[mark..]
        .iter()
        .filter(|l| matches!(l.method.as_str(), "DELETE" | "PUT"))
        .map(|l| format!("{} {}", l.method, l.path.split('/').nth(2).unwrap_or_default()))
        .collect();
    let pos = |s: &str| order.iter().position(|o| o == s).unwrap_or_else(|| panic!("{s} missing from {order:?}"));
    assert!(pos("DELETE instances") < pos("DELETE subnets"), "{order:?}");
    assert!(pos("DELETE subnets") < pos("PUT routeTables"), "{order:?}");
    assert!(pos("PUT routeTables") < pos("DELETE internetGateways"), "{order:?}");
    assert!(pos("DELETE subnets") < pos("DELETE securityLists"), "{order:?}");
    assert!(pos("DELETE internetGateways") < pos("DELETE vcns"), "{order:?}");
    assert!(pos("DELETE securityLists") < pos("DELETE vcns"), "{order:?}");
    for coll in ["instances", "subnets", "internetGateways", "vcns"] {
        assert!(fake.live(coll).is_empty(), "{coll} left behind");
    }
    let conflicts = fake.log()[mark..].iter().filter(|l| l.method == "DELETE").count();
    assert_eq!(conflicts, 5, "no delete had to be retried for a conflict: {order:?}");
    fake.assert_all_signed();
}

#[tokio::test]
async fn an_instance_terminated_outside_stackup_is_planned_again() {
    let (server, fake) = FakeOci::start().await;
    let c = client(&server);
    let engine = Engine::new(stack(&c), Arc::new(MemoryBackend::new()));
    engine.apply(&engine.plan().await.unwrap()).await.unwrap().into_result().unwrap();
    let old = fake.live("instances")[0]["id"].as_str().unwrap().to_owned();
    // Someone terminates the VM in the console.
    Instances::new(c.clone())
        .delete(
            &stackup_core::Ctx::detached("console"),
            &old,
            &serde_json::from_value(instance_outputs_stub(&old)).unwrap(),
        )
        .await
        .unwrap();
    let plan = engine.plan().await.unwrap();
    assert_eq!((plan.summary.create, plan.summary.unchanged), (1, 5), "{}", plan.render());
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    let live = fake.live("instances");
    assert_eq!(live.len(), 1);
    assert_ne!(live[0]["id"].as_str().unwrap(), old);
    fake.assert_all_signed();
}

fn instance_outputs_stub(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "compartment_id": COMPARTMENT, "display_name": "resonant", "availability_domain": "x",
        "fault_domain": null, "shape": "VM.Standard.A1.Flex", "ocpus": 4.0, "memory_in_gbs": 24.0, "image_id": "i",
        "operating_system": null, "operating_system_version": null, "boot_volume_size_in_gbs": 200, "subnet_id": "s",
        "public_ip": null, "private_ip": null, "ssh_authorized_keys": [], "user_data_sha256": null,
        "lifecycle_state": "RUNNING", "freeform_tags": {}
    })
}
