//! Recipe `free_tier_on_oci` (seed 004) end to end against the OCI crate's signature-checking
//! fake: apply, re-apply with zero mutating calls, destroy leaving nothing; the same with 429s,
//! 5xx and no A1 capacity in the first availability domain; an apply killed after the launch
//! and restarted (one instance, adopted); the free-tier guard; validation before any call; the
//! first-boot document against the golden file.

#[path = "../crates/stackup-oci/tests/common/mod.rs"]
mod common;
#[path = "recipe_support/golden.rs"]
mod golden;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{ADS, COMPARTMENT, FakeOci, Fault, SSH_KEY};
use stackup::oci::{CapacityHunt, OciClient};
use stackup::prelude::*;
use stackup::recipes::free_tier_on_oci::{ComposeApp, FreeTierOnOci};

/// The launch call (`POST /20160918/instances/`).
fn is_launch(l: &common::Logged) -> bool {
    l.method == "POST" && l.path.trim_end_matches('/').ends_with("/instances")
}

const COMPOSE: &str = "services:\n  nginx:\n    image: nginx:alpine\n    restart: always\n    ports:\n      - \"80:80\"\n      - \"443:443\"\n";
const ENV: &str = "POSTGRES_USER=resonant\nPOSTGRES_PASSWORD=hunter2-db\nPOSTGRES_DB=resonant_dashboard\n";

fn recipe() -> FreeTierOnOci {
    FreeTierOnOci::new(SSH_KEY)
        .compartment_id(COMPARTMENT)
        .capacity_hunt(CapacityHunt::fast(Duration::from_secs(5)))
        .compose(ComposeApp::new(COMPOSE).env(Secret::new(ENV)))
}

fn stack(client: &OciClient, recipe: &FreeTierOnOci) -> Stack {
    let mut stack = Stack::new("resonant");
    recipe.add_to(&mut stack, client).unwrap();
    stack
}

fn fault(status: u16, code: &'static str) -> Fault {
    Fault::Status { status, code, message: "injected", retry_after: (status == 429).then_some("0") }
}

async fn apply(engine: &Engine) -> ApplyReport {
    let plan = engine.plan().await.unwrap();
    engine.apply(&plan).await.unwrap().into_result().unwrap()
}

async fn assert_reapply_is_silent(
    fake: &FakeOci,
    client: &OciClient,
    recipe: &FreeTierOnOci,
    backend: Arc<MemoryBackend>,
) {
    let before = fake.mutating().len();
    let engine = Engine::new(stack(client, recipe), backend);
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    assert_eq!(fake.mutating().len(), before, "re-apply made mutating calls");
}

fn assert_nothing_left(fake: &FakeOci) {
    for coll in ["instances", "subnets", "securityLists", "internetGateways", "vcns"] {
        let left: Vec<_> = fake.live(coll).into_iter().filter(|o| o["isDefault"] != true).collect();
        assert!(left.is_empty(), "{coll} left behind: {left:?}");
    }
}

#[tokio::test]
async fn apply_reapply_and_destroy() {
    let (server, fake) = FakeOci::start().await;
    let client = common::client(&server);
    let recipe = recipe();
    let backend = Arc::new(MemoryBackend::new());
    let mut s = Stack::new("resonant");
    let out = recipe.add_to(&mut s, &client).unwrap();
    assert_eq!(out.public_ip.to_string(), "oci/vm.public_ip");
    assert_eq!(format!("{:?}", out.ssh_command), "ssh ubuntu@${oci/vm.public_ip}");
    let engine = Engine::new(s, backend.clone());
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.summary.create, 6, "{}", plan.render());
    assert!(!plan.render().contains("hunter2-db"), "the env file's secret stays out of the plan");
    apply(&engine).await;

    let outputs = engine.outputs().await.unwrap();
    assert_eq!(outputs["oci/vm"]["public_ip"], "203.0.113.7");
    let launch = fake.log().into_iter().find(is_launch).unwrap();
    assert_eq!(launch.body["shape"], "VM.Standard.A1.Flex");
    assert_eq!(launch.body["shapeConfig"]["ocpus"], 4.0);
    assert_eq!(launch.body["shapeConfig"]["memoryInGBs"], 24.0);
    assert_eq!(launch.body["sourceDetails"]["bootVolumeSizeInGBs"], 200);
    assert_eq!(launch.body["sourceDetails"]["imageId"], common::IMAGE_NEW, "newest full Ubuntu aarch64 image");
    let user_data = base64::engine::general_purpose::STANDARD
        .decode(launch.body["metadata"]["user_data"].as_str().unwrap())
        .unwrap();
    let user_data = String::from_utf8(user_data).unwrap();
    assert_eq!(user_data, recipe.cloud_init().render().known().unwrap().as_str());
    assert!(user_data.contains("      POSTGRES_PASSWORD=hunter2-db\n"), "the env file reaches the VM");
    let sl = fake.log().into_iter().find(|l| l.method == "POST" && l.path.ends_with("/securityLists")).unwrap();
    let ports: Vec<u64> = sl.body["ingressSecurityRules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["tcpOptions"]["destinationPortRange"]["min"].as_u64())
        .collect();
    assert_eq!(ports, [22, 80, 443]);
    assert!(
        sl.body["ingressSecurityRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["protocol"] == "1" && r["icmpOptions"]["type"] == 3 && r["icmpOptions"]["code"] == 4)
    );
    let rt = fake.log().into_iter().find(|l| l.method == "PUT" && l.path.contains("/routeTables/")).unwrap();
    assert_eq!(rt.body["routeRules"][0]["destination"], "0.0.0.0/0");

    assert_reapply_is_silent(&fake, &client, &recipe, backend.clone()).await;
    Engine::new(stack(&client, &recipe), backend).destroy().await.unwrap().into_result().unwrap();
    assert_nothing_left(&fake);
    fake.assert_all_signed();
}

#[tokio::test]
async fn converges_through_429s_5xx_and_a_full_availability_domain() {
    let (server, fake) = FakeOci::start().await;
    fake.state().capacity_failures.insert(ADS[0].into(), 1);
    fake.fault("POST", "/vcns", fault(429, "TooManyRequests"), 2);
    fake.fault("POST", "/securityLists", fault(503, "ServiceUnavailable"), 1);
    fake.fault("GET", "/instances/", fault(500, "InternalServerError"), 2);
    fake.fault("POST", "/instances", fault(429, "TooManyRequests"), 1);
    let client = common::client(&server);
    let recipe = recipe();
    let backend = Arc::new(MemoryBackend::new());
    apply(&Engine::new(stack(&client, &recipe), backend.clone())).await;
    assert_eq!(fake.live("instances").len(), 1, "exactly one instance");
    assert_eq!(fake.live("vcns").len(), 1, "exactly one VCN");

    fake.fault("GET", "/vcns/", fault(429, "TooManyRequests"), 2);
    assert_reapply_is_silent(&fake, &client, &recipe, backend.clone()).await;

    fake.fault("DELETE", "/subnets/", fault(503, "ServiceUnavailable"), 1);
    fake.fault("DELETE", "/instances/", fault(429, "TooManyRequests"), 1);
    Engine::new(stack(&client, &recipe), backend).destroy().await.unwrap().into_result().unwrap();
    assert_nothing_left(&fake);
    fake.assert_all_signed();
}

#[tokio::test]
async fn an_apply_killed_after_the_launch_resumes_with_one_instance() {
    let (server, fake) = FakeOci::start().await;
    let client = common::client(&server);
    let recipe = recipe();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(stack(&client, &recipe), backend.clone());
    let plan = engine.plan().await.unwrap();
    {
        let run = engine.apply(&plan);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => panic!("the apply finished before it was killed: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(1)) => {
                    let log = fake.log();
                    if log.iter().any(|l| l.method == "POST" && l.path.ends_with("/subnets")) {
                        // The instance (created next) stays PROVISIONING for a while.
                        fake.state().ready_after = 40;
                    }
                    if log.iter().any(is_launch) { break; }
                }
            }
        }
        // Dropping the future kills the run mid-wait (as a crashed process would).
    }
    drop(engine);
    fake.state().ready_after = 1;
    apply(&Engine::new(stack(&client, &recipe), backend.clone())).await;
    assert_eq!(fake.live("instances").len(), 1, "no second instance");
    let launches = fake.log().iter().filter(|l| is_launch(l)).count();
    assert_eq!(launches, 1, "the restart adopted the instance instead of launching again");
    for coll in ["vcns", "subnets", "securityLists", "internetGateways"] {
        let ours = fake.live(coll).into_iter().filter(|o| o["isDefault"] != true).count();
        assert_eq!(ours, 1, "{coll}");
    }
    assert_reapply_is_silent(&fake, &client, &recipe, backend.clone()).await;
    Engine::new(stack(&client, &recipe), backend).destroy().await.unwrap().into_result().unwrap();
    assert_nothing_left(&fake);
}

#[tokio::test]
async fn the_free_tier_guard_refuses_a_billed_launch() {
    let (server, fake) = FakeOci::start().await;
    let client = common::client(&server);
    let recipe = recipe().size(6.0, 36.0);
    let engine = Engine::new(stack(&client, &recipe), Arc::new(MemoryBackend::new()));
    let plan = engine.plan().await.unwrap();
    let report = engine.apply(&plan).await.unwrap();
    assert!(!report.is_success());
    let failed = report.failed.iter().find(|f| f.address == "oci/vm").expect("the VM failed");
    assert!(failed.error.to_string().to_lowercase().contains("free"), "{}", failed.error);
    assert!(fake.live("instances").is_empty());
    assert!(!fake.log().iter().any(is_launch));
}

#[tokio::test]
async fn bad_input_is_rejected_before_any_call() {
    let (server, fake) = FakeOci::start().await;
    let client = common::client(&server);
    let cases = [
        (FreeTierOnOci::new(SSH_KEY).dns_label("9lives"), "dns_label"),
        (FreeTierOnOci::new(SSH_KEY).host_firewall_ports([8080]), "host_firewall_ports"),
        (FreeTierOnOci::new(" "), "ssh_public_key"),
        (FreeTierOnOci::new(SSH_KEY).compose(ComposeApp::new(COMPOSE).dir("/opt/../etc")), "compose.dir"),
        (FreeTierOnOci::new(SSH_KEY).compose(ComposeApp::new(" ")), "compose"),
        (FreeTierOnOci::new(SSH_KEY).compose(ComposeApp::new("x".repeat(30_000))), "user_data"),
        (FreeTierOnOci::new(SSH_KEY).name("re sonant"), "name"),
    ];
    for (recipe, field) in cases {
        let mut s = Stack::new("bad");
        match recipe.add_to(&mut s, &client) {
            Err(Error::InvalidInput { field: f, .. }) => assert!(f.contains(field), "{f} should name {field}"),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
        assert!(s.is_empty(), "nothing added on bad input");
    }
    // Values the provisioners check are rejected while planning, still before any call.
    let mut s = Stack::new("bad");
    FreeTierOnOci::new(SSH_KEY).compartment_id(COMPARTMENT).size(4.5, 24.0).add_to(&mut s, &client).unwrap();
    let err = Engine::new(s, Arc::new(MemoryBackend::new())).plan().await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(fake.log().is_empty(), "no request: {:?}", fake.log().iter().map(|l| &l.path).collect::<Vec<_>>());
}

#[test]
fn first_boot_matches_seed_004() {
    let doc = recipe().cloud_init();
    doc.validate().unwrap();
    let preview = doc.preview();
    golden::check("free_tier_on_oci.cloud-init.yaml", &preview);
    for exact in [
        "  - \"docker.io\"\n  - \"docker-compose-v2\"\n  - \"iptables-persistent\"\n",
        "--dport 80 -j ACCEPT",
        "--dport 443 -j ACCEPT",
        "\"iptables-save > /etc/iptables/rules.v4\"",
        "[\"systemctl\", \"enable\", \"--now\", \"docker\"]",
        "[\"usermod\", \"-aG\", \"docker\", \"ubuntu\"]",
        "  - path: \"/opt/resonant/.env.prod\"\n    owner: \"root:root\"\n    permissions: \"0600\"\n",
        "[\"docker\", \"compose\", \"--project-directory\", \"/opt/resonant\", \"-f\", \"/opt/resonant/docker-compose.prod.yml\", \"--env-file\", \"/opt/resonant/.env.prod\", \"up\", \"-d\"]",
    ] {
        assert!(preview.contains(exact), "missing `{exact}` in\n{preview}");
    }
    // 80 and 443 are opened before the image's REJECT rule, then saved.
    let p80 = preview.find("--dport 80").unwrap();
    let p443 = preview.find("--dport 443").unwrap();
    let save = preview.find("iptables-save").unwrap();
    assert!(p80 < p443 && p443 < save);
    assert!(preview.contains("awk '$2 == \\\"REJECT\\\" {print $1; exit}'"), "{preview}");
    assert!(!preview.contains("hunter2-db"), "the env file is redacted in previews");
    assert!(recipe().cloud_init().render().is_sensitive());
}

#[test]
fn the_host_firewall_rule_lands_before_reject_on_the_oracle_image() {
    // The Oracle Ubuntu image's INPUT chain, as `iptables -L INPUT --line-numbers -n` prints it.
    let listing = "Chain INPUT (policy ACCEPT)\nnum  target     prot opt source               destination\n\
                   1    ACCEPT     all  --  0.0.0.0/0            0.0.0.0/0            state RELATED,ESTABLISHED\n\
                   2    ACCEPT     icmp --  0.0.0.0/0            0.0.0.0/0\n\
                   3    ACCEPT     all  --  0.0.0.0/0            0.0.0.0/0\n\
                   4    ACCEPT     udp  --  0.0.0.0/0            0.0.0.0/0            udp spt:123\n\
                   5    ACCEPT     tcp  --  0.0.0.0/0            0.0.0.0/0            state NEW tcp dpt:22\n\
                   6    REJECT     all  --  0.0.0.0/0            0.0.0.0/0            reject-with icmp-host-prohibited\n";
    let out = std::process::Command::new("awk")
        .arg("$2 == \"REJECT\" {print $1; exit}")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(listing.as_bytes())?;
            c.wait_with_output()
        })
        .expect("awk runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
}
