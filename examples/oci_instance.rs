//! An Always Free Arm VM on Oracle Cloud that runs Docker Compose: VCN → internet gateway →
//! default route (0.0.0.0/0) → security list (22/80/443 + ICMP path-MTU) → subnet →
//! `VM.Standard.A1.Flex` (4 OCPU / 24 GB / 200 GB, Ubuntu 24.04 aarch64) whose cloud-init
//! installs Docker and opens 80/443 ahead of the image's iptables REJECT rule.
//!
//! Run: `cargo run -p stackup-oci --example oci_instance [plan|apply|destroy]`
//!
//! * With no `~/.oci/config` it plans **offline** (no credentials, no API call) and says so.
//! * With a valid config (`OCI_CONFIG_FILE`, `OCI_CLI_PROFILE` honoured) `plan` reads the real
//!   state, `apply` creates the stack (hunting A1 capacity across availability domains for up to
//!   `STACKUP_OCI_HUNT_MINUTES`, default 60, and refusing anything the free-tier guard says would
//!   be billed), and `destroy` removes it. State is kept in `oci-instance.state.json`.
//! * `OCI_COMPARTMENT_ID` picks the compartment (default: the tenancy's root compartment);
//!   `STACKUP_OCI_SSH_PUBLIC_KEY` (or `~/.ssh/id_ed25519.pub`) is installed for user `ubuntu`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stackup_core::cloud_init::CloudConfig;
use stackup_core::{Engine, Error, EventKind, LocalBackend, MemoryBackend, Stack, StateBackend};
use stackup_oci::{
    CapacityHunt, ImageSource, InstanceSpec, Instances, InternetGatewaySpec, InternetGateways, OciClient,
    RouteRuleSpec, RouteTableSpec, RouteTables, SecurityListSpec, SecurityLists, SubnetSpec, Subnets, VcnSpec, Vcns,
};

const PLACEHOLDER_TENANCY: &str = "ocid1.tenancy.oc1..offlineplaceholder";

fn cloud_init() -> CloudConfig {
    CloudConfig::new()
        .package("docker.io")
        .package("docker-compose-v2")
        .package("iptables-persistent")
        // Oracle's Ubuntu images end INPUT with a REJECT: insert 80/443 at its position.
        .shell(
            "iptables -I INPUT $(iptables -L INPUT --line-numbers -n | awk '$2 == \"REJECT\" {print $1; exit}') \
             -m state --state NEW -p tcp --dport 80 -j ACCEPT",
        )
        .shell(
            "iptables -I INPUT $(iptables -L INPUT --line-numbers -n | awk '$2 == \"REJECT\" {print $1; exit}') \
             -m state --state NEW -p tcp --dport 443 -j ACCEPT",
        )
        .shell("netfilter-persistent save")
        .command(["systemctl", "enable", "--now", "docker"])
        .command(["usermod", "-aG", "docker", "ubuntu"])
}

fn ssh_key() -> Option<String> {
    if let Ok(k) = std::env::var("STACKUP_OCI_SSH_PUBLIC_KEY") {
        return Some(k.trim().to_owned());
    }
    let home = std::env::var_os("HOME")?;
    std::fs::read_to_string(std::path::Path::new(&home).join(".ssh/id_ed25519.pub")).ok().map(|k| k.trim().to_owned())
}

fn stack(client: &OciClient, compartment: &str, hunt: CapacityHunt) -> Result<Stack, Error> {
    let mut stack = Stack::new("oci-always-free");
    let vcn = stack.add(
        "vcn",
        Vcns::new(client.clone()),
        VcnSpec {
            compartment_id: compartment.into(),
            display_name: "af-vcn".into(),
            cidr_blocks: vec!["10.0.0.0/16".into()],
            dns_label: Some("afvcn".into()),
            freeform_tags: BTreeMap::new(),
        },
    )?;
    let igw = stack.add(
        "igw",
        InternetGateways::new(client.clone()),
        InternetGatewaySpec {
            compartment_id: compartment.into(),
            vcn_id: vcn.id().input(),
            display_name: "af-igw".into(),
            enabled: true,
            freeform_tags: BTreeMap::new(),
        },
    )?;
    let routes = stack.add(
        "routes",
        RouteTables::new(client.clone()),
        RouteTableSpec {
            compartment_id: compartment.into(),
            vcn_id: vcn.id().input(),
            display_name: "af-routes".into(),
            route_rules: vec![RouteRuleSpec {
                destination: "0.0.0.0/0".into(),
                network_entity_id: igw.id().input(),
                description: Some("default route to the internet".into()),
            }],
            adopt_id: Some(vcn.output("default_route_table_id").input()),
            freeform_tags: BTreeMap::new(),
        },
    )?;
    let firewall = stack.add(
        "firewall",
        SecurityLists::new(client.clone()),
        SecurityListSpec::public_ports(compartment, vcn.id().input(), "af-firewall", &[22, 80, 443]),
    )?;
    let subnet = stack.add(
        "subnet",
        Subnets::new(client.clone()),
        SubnetSpec {
            compartment_id: compartment.into(),
            vcn_id: vcn.id().input(),
            display_name: "af-subnet".into(),
            cidr_block: "10.0.0.0/24".into(),
            dns_label: Some("afsub".into()),
            availability_domain: None,
            route_table_id: Some(routes.id().input()),
            security_list_ids: vec![firewall.id().input()],
            prohibit_public_ip_on_vnic: false,
            freeform_tags: BTreeMap::new(),
        },
    )?;
    let doc = cloud_init();
    doc.validate_size(stackup_core::cloud_init::OCI_USER_DATA_MAX_BYTES, "user_data")?;
    stack.add(
        "vm",
        Instances::new(client.clone()).capacity_hunt(hunt),
        InstanceSpec {
            compartment_id: compartment.into(),
            display_name: "resonant-dashboard".into(),
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
            ssh_authorized_keys: ssh_key().into_iter().collect(),
            user_data: Some(doc.render()),
            freeform_tags: BTreeMap::from([("app".to_owned(), "resonant-dashboard".to_owned())]),
            allow_billing: false,
        },
    )?;
    Ok(stack)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "plan".into());
    if !matches!(command.as_str(), "plan" | "apply" | "destroy") {
        return Err(Error::invalid("command", format!("`{command}`: use plan, apply or destroy")));
    }
    let minutes: u64 = std::env::var("STACKUP_OCI_HUNT_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(60);
    let hunt = CapacityHunt { deadline: Duration::from_secs(minutes * 60), ..CapacityHunt::default() };

    let (client, offline) = match OciClient::from_env() {
        Ok(c) => (c, false),
        Err(e) => {
            println!("OFFLINE: no usable OCI credentials ({e}).");
            println!("OFFLINE: planning without credentials; no API call is made and nothing is created.\n");
            let region = std::env::var("OCI_REGION").unwrap_or_else(|_| "us-ashburn-1".into());
            (OciClient::builder().offline(PLACEHOLDER_TENANCY).region(region).build()?, true)
        }
    };
    let compartment = std::env::var("OCI_COMPARTMENT_ID").unwrap_or_else(|_| client.tenancy().to_owned());
    let backend: Arc<dyn StateBackend> =
        if offline { Arc::new(MemoryBackend::new()) } else { Arc::new(LocalBackend::new("oci-instance.state.json")) };
    let engine = Engine::new(stack(&client, &compartment, hunt)?, backend);
    println!("cloud-init user data:\n{}\n", cloud_init().preview());

    let mut events = engine.events();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            match e.kind {
                EventKind::ResourceProgress { address, message } => println!("  {address}: {message}"),
                EventKind::ResourceFinished { address, action, elapsed_ms } => {
                    println!("  {} {address} done in {:.1} s", action.symbol(), elapsed_ms as f64 / 1000.0)
                }
                EventKind::ResourceFailed { address, error, .. } => println!("  ! {address}: {error}"),
                _ => {}
            }
        }
    });

    let plan = if command == "destroy" { engine.plan_destroy().await? } else { engine.plan().await? };
    println!("{}", plan.render());
    if offline {
        println!("OFFLINE: plan only. Create ~/.oci/config (`oci setup config`) to apply for real.");
        return Ok(());
    }
    match command.as_str() {
        "apply" => {
            let report = engine.apply(&plan).await?.into_result()?;
            println!("applied in {:.1} s: {}", report.elapsed.as_secs_f64(), report.summary.done_text());
            let outputs = engine.outputs().await?;
            if let Some(ip) = outputs.get("vm").and_then(|v| v.get("public_ip")).and_then(|v| v.as_str()) {
                println!("ssh ubuntu@{ip}");
            }
        }
        "destroy" => {
            let report = engine.destroy().await?.into_result()?;
            println!("destroyed in {:.1} s: {}", report.elapsed.as_secs_f64(), report.summary.done_text());
        }
        _ => println!("plan only: run with `apply` to create these resources, `destroy` to remove them."),
    }
    Ok(())
}
