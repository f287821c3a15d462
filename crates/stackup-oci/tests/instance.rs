//! The Instance provisioner against the fake OCI: launch with the right wire body, capacity
//! hunting across ADs (success and deadline), ADs without the shape, 429/5xx/lost responses with
//! no duplicate instance, the free-tier guard, validation, update and terminate.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use common::{ADS, COMPARTMENT, FakeOci, Fault, IMAGE_NEW, SSH_KEY, client};
use stackup_core::{Action, Ctx, Error, EventKind, Input, Provisioner};
use stackup_oci::*;
use wiremock::MockServer;

async fn subnet(server: &MockServer) -> String {
    let c = client(server);
    let vcn = Vcns::new(c.clone())
        .create(
            &Ctx::detached("vcn"),
            &VcnSpec {
                compartment_id: COMPARTMENT.into(),
                display_name: "v".into(),
                cidr_blocks: vec!["10.0.0.0/16".into()],
                dns_label: None,
                freeform_tags: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    Subnets::new(c)
        .create(
            &Ctx::detached("subnet"),
            &SubnetSpec {
                compartment_id: COMPARTMENT.into(),
                vcn_id: Input::Value(vcn.id),
                display_name: "s".into(),
                cidr_block: "10.0.0.0/24".into(),
                dns_label: None,
                availability_domain: None,
                route_table_id: None,
                security_list_ids: vec![],
                prohibit_public_ip_on_vnic: false,
                freeform_tags: BTreeMap::new(),
            },
        )
        .await
        .unwrap()
        .id
}

fn spec(subnet_id: &str) -> InstanceSpec {
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
        subnet_id: Input::Value(subnet_id.into()),
        assign_public_ip: true,
        ssh_authorized_keys: vec![SSH_KEY.into()],
        user_data: Some(Input::Value("#cloud-config\npackages: [docker.io]\n".into())),
        freeform_tags: BTreeMap::from([("app".to_owned(), "resonant".to_owned())]),
        allow_billing: false,
    }
}

fn instances(server: &MockServer) -> Instances {
    Instances::new(client(server)).capacity_hunt(CapacityHunt::fast(Duration::from_secs(5)))
}

fn launches(fake: &FakeOci) -> Vec<common::Logged> {
    fake.log().into_iter().filter(|l| l.method == "POST" && l.path.contains("/instances")).collect()
}

#[tokio::test]
async fn launches_reads_back_and_terminates() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    let p = instances(&server);
    let s = spec(&sub);
    p.validate(&s).unwrap();
    let ctx = Ctx::detached("vm");
    let created = p.create(&ctx, &s).await.unwrap();
    let o = &created.outputs;
    assert_eq!(o.lifecycle_state, "RUNNING");
    assert_eq!(o.public_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(o.private_ip.as_deref(), Some("10.0.0.17"));
    assert_eq!(o.image_id, IMAGE_NEW, "newest non-Minimal image");
    assert_eq!(o.availability_domain, ADS[0]);
    assert_eq!((o.ocpus, o.memory_in_gbs, o.boot_volume_size_in_gbs), (Some(4.0), Some(24.0), Some(200)));

    let l = &launches(&fake)[0];
    assert_eq!(l.path, "/20160918/instances/");
    assert_eq!(l.body["shapeConfig"]["memoryInGBs"], 24.0);
    assert_eq!(l.body["sourceDetails"]["bootVolumeSizeInGBs"], 200);
    assert_eq!(l.body["createVnicDetails"]["assignPublicIp"], true);
    assert_eq!(l.body["metadata"]["ssh_authorized_keys"], SSH_KEY);
    let ud =
        base64::engine::general_purpose::STANDARD.decode(l.body["metadata"]["user_data"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(ud).unwrap(), "#cloud-config\npackages: [docker.io]\n");
    assert_eq!(l.body["freeformTags"]["stackup-address"], "vm");
    assert_eq!(l.body["freeformTags"]["app"], "resonant");
    assert!(l.retry_token.is_some());
    let img = fake.log().into_iter().find(|l| l.path.ends_with("/images")).unwrap();
    assert!(img.query.contains("operatingSystem=Canonical%20Ubuntu"), "{}", img.query);
    assert!(img.query.contains("shape=VM.Standard.A1.Flex") && img.query.contains("sortOrder=DESC"));

    // Read back: no difference, no mutating call.
    let before = fake.mutating().len();
    let read = p.read(&ctx, &created.id, Some(o)).await.unwrap().unwrap();
    assert_eq!(p.diff(&s, &read).action(), Action::NoOp, "{:?}", p.diff(&s, &read));
    assert_eq!(fake.mutating().len(), before);

    // Changing the user data replaces; resizing updates in place.
    let mut s2 = s.clone();
    s2.user_data = Some(Input::Value("#cloud-config\n".into()));
    assert_eq!(p.diff(&s2, &read).action(), Action::Replace);
    let mut s3 = s.clone();
    s3.ocpus = Some(2.0);
    s3.memory_in_gbs = Some(12.0);
    assert_eq!(p.diff(&s3, &read).action(), Action::Update);
    let updated = p.update(&ctx, &created.id, &s3, &read).await.unwrap();
    assert_eq!((updated.ocpus, updated.memory_in_gbs), (Some(2.0), Some(12.0)));
    let put = fake.log().into_iter().find(|l| l.method == "PUT").unwrap();
    assert_eq!(put.body["shapeConfig"], serde_json::json!({"ocpus": 2.0, "memoryInGBs": 12.0}));

    p.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(fake.live("instances").is_empty());
    let del = fake.log().into_iter().find(|l| l.method == "DELETE").unwrap();
    assert_eq!(del.query, "preserveBootVolume=false");
    assert!(p.read(&ctx, &created.id, None).await.unwrap().is_none());
    fake.assert_all_signed();
}

#[tokio::test]
async fn a_resize_waits_until_oci_has_applied_it() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    let p = instances(&server);
    let s = spec(&sub);
    let ctx = Ctx::detached("vm");
    let created = p.create(&ctx, &s).await.unwrap();
    // OCI applies a shape-config change through a work request that reboots the VM: the GET
    // right after the PUT still shows the old config, RUNNING.
    fake.state().async_resize = true;
    let mut smaller = s.clone();
    smaller.ocpus = Some(2.0);
    smaller.memory_in_gbs = Some(12.0);
    let updated = p.update(&ctx, &created.id, &smaller, &created.outputs).await.unwrap();
    assert_eq!((updated.ocpus, updated.memory_in_gbs), (Some(2.0), Some(12.0)));
    assert_eq!(updated.lifecycle_state, "RUNNING");
    // What update returned is what a refresh sees: nothing left to do.
    let read = p.read(&ctx, &created.id, Some(&updated)).await.unwrap().unwrap();
    assert_eq!(p.diff(&smaller, &read).action(), Action::NoOp, "{:?}", p.diff(&smaller, &read));
    assert_eq!(fake.log().iter().filter(|l| l.method == "PUT").count(), 1);
    fake.assert_all_signed();
}

#[tokio::test]
async fn a_boot_volume_size_the_service_leaves_out_does_not_replace_the_instance() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    fake.state().omit_boot_volume_size = true;
    let p = instances(&server);
    let s = spec(&sub);
    let ctx = Ctx::detached("vm");
    let created = p.create(&ctx, &s).await.unwrap();
    assert_eq!(created.outputs.boot_volume_size_in_gbs, Some(200));
    let read = p.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    assert_eq!(p.diff(&s, &read).action(), Action::NoOp, "{:?}", p.diff(&s, &read));
    let mut bigger = s.clone();
    bigger.boot_volume_size_in_gbs = Some(150);
    assert_eq!(p.diff(&bigger, &read).action(), Action::Replace);
}

#[tokio::test]
async fn the_free_tier_guard_refuses_shapes_without_an_allowance() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    let p = instances(&server);
    let ctx = Ctx::detached("vm");
    // An AMD Flex shape has no Always Free allowance at all: refused before any launch.
    let mut amd = spec(&sub);
    amd.shape = "VM.Standard.E4.Flex".into();
    amd.ocpus = Some(1.0);
    amd.memory_in_gbs = Some(16.0);
    p.validate(&amd).unwrap();
    match p.create(&ctx, &amd).await.unwrap_err().error {
        Error::InvalidInput { field, rule } => {
            assert_eq!(field, "shape");
            assert!(
                rule.contains("VM.Standard.E4.Flex has no Always Free allowance")
                    && rule.contains("would be billed")
                    && rule.contains("allow_billing"),
                "{rule}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(launches(&fake).is_empty());

    // E2.1.Micro is free up to its instance-count limit, read from the Limits API.
    let mut micro = spec(&sub);
    micro.shape = "VM.Standard.E2.1.Micro".into();
    micro.ocpus = None;
    micro.memory_in_gbs = None;
    micro.boot_volume_size_in_gbs = Some(50);
    p.validate(&micro).unwrap();
    {
        let mut st = fake.state();
        st.limits.insert("vm-standard-e2-1-micro-count".into(), 2.0);
        st.extra_used.insert("vm-standard-e2-1-micro-count".into(), 6.0);
    }
    let e = p.create(&ctx, &micro).await.unwrap_err().error.to_string();
    assert!(e.contains("6 VM.Standard.E2.1.Micro instances running + 1 requested = 7 > allowance 6"), "{e}");
    assert!(launches(&fake).is_empty());
    fake.state().extra_used.clear();
    p.create(&ctx, &micro).await.unwrap();
    assert_eq!(launches(&fake).len(), 1);

    // Opting out launches the billed shape.
    amd.allow_billing = true;
    p.create(&Ctx::detached("vm2"), &amd).await.unwrap();
    assert_eq!(launches(&fake).len(), 2);
    fake.assert_all_signed();
}

#[tokio::test]
async fn capacity_hunt_rotates_ads_backs_off_and_succeeds() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    {
        let mut st = fake.state();
        st.capacity_failures.insert(ADS[0].into(), u32::MAX);
        st.capacity_failures.insert(ADS[1].into(), u32::MAX);
        st.capacity_failures.insert(ADS[2].into(), 2);
    }
    let ctx = Ctx::detached("vm");
    let mut events = ctx.events().subscribe();
    let created = instances(&server).create(&ctx, &spec(&sub)).await.unwrap();
    assert_eq!(created.outputs.availability_domain, ADS[2]);
    let ads: Vec<String> =
        launches(&fake).iter().map(|l| l.body["availabilityDomain"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ads, [ADS[0], ADS[1], ADS[2], ADS[0], ADS[1], ADS[2], ADS[0], ADS[1], ADS[2]]);
    let attempts = events
        .drain()
        .into_iter()
        .filter(
            |e| matches!(&e.kind, EventKind::ResourceProgress { message, .. } if message.starts_with("launch attempt")),
        )
        .count();
    assert_eq!(attempts, 9, "one event per attempt");
    // Each round used its own retry token; the instance exists once.
    let tokens: std::collections::BTreeSet<_> = launches(&fake).iter().map(|l| l.retry_token.clone()).collect();
    assert_eq!(tokens.len(), 9);
    assert_eq!(fake.live("instances").len(), 1);
    // Before each relaunch the hunt looked for an instance from an earlier attempt.
    let checks = fake.log().into_iter().filter(|l| l.method == "GET" && l.path.ends_with("/instances/")).count();
    assert_eq!(checks, 8);
    fake.assert_all_signed();
}

#[tokio::test]
async fn capacity_hunt_gives_up_at_the_deadline_with_no_instance() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    for ad in ADS {
        fake.state().capacity_failures.insert(ad.into(), u32::MAX);
    }
    let p = Instances::new(client(&server)).capacity_hunt(CapacityHunt::fast(Duration::from_millis(150)));
    let e = p.create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap_err();
    assert!(e.partial_id.is_none());
    match &e.error {
        Error::Timeout { what, .. } => {
            assert!(
                what.contains("no host capacity for VM.Standard.A1.Flex") && what.contains("Out of host capacity"),
                "{what}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(launches(&fake).len() >= 3);
    assert!(fake.live("instances").is_empty());
    fake.assert_all_signed();
}

#[tokio::test]
async fn ads_without_the_shape_are_skipped_and_fault_domains_tried() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    fake.state().no_shape.insert(ADS[0].into());
    fake.state().capacity_failures.insert(ADS[1].into(), 2);
    let mut s = spec(&sub);
    s.availability_domains = vec![ADS[0].into(), ADS[1].into()];
    s.fault_domains = vec!["FAULT-DOMAIN-1".into(), "FAULT-DOMAIN-2".into()];
    let created = instances(&server).create(&Ctx::detached("vm"), &s).await.unwrap();
    assert_eq!(created.outputs.availability_domain, ADS[1]);
    let tried: Vec<(String, String)> = launches(&fake)
        .iter()
        .map(|l| {
            (l.body["availabilityDomain"].as_str().unwrap().into(), l.body["faultDomain"].as_str().unwrap().into())
        })
        .collect();
    // AD-1 answers "shape not found" once and is never tried again.
    assert_eq!(tried.iter().filter(|(ad, _)| ad == ADS[0]).count(), 1);
    assert_eq!(
        &tried[1..],
        &[
            (ADS[1].to_owned(), "FAULT-DOMAIN-1".to_owned()),
            (ADS[1].to_owned(), "FAULT-DOMAIN-2".to_owned()),
            (ADS[1].to_owned(), "FAULT-DOMAIN-1".to_owned()),
        ]
    );
    fake.assert_all_signed();
}

#[tokio::test]
async fn throttling_5xx_and_a_lost_launch_response_make_one_instance() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    fake.fault(
        "POST",
        "/instances",
        Fault::Status {
            status: 429,
            code: "TooManyRequests",
            message: "Too many requests for the user",
            retry_after: Some("0"),
        },
        1,
    );
    fake.fault(
        "POST",
        "/instances",
        Fault::Status { status: 502, code: "BadGateway", message: "bad gateway", retry_after: None },
        1,
    );
    fake.fault("POST", "/instances", Fault::Lost(Duration::from_millis(1200)), 1);
    let created = instances(&server).create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap();
    let l = launches(&fake);
    assert_eq!(l.len(), 4, "429, 502, lost, then the token returns the instance");
    assert!(l.iter().all(|x| x.retry_token == l[0].retry_token), "retransmits share one token");
    assert_eq!(fake.live("instances").len(), 1);
    assert_eq!(fake.live("instances")[0]["id"], created.id.as_str());
    fake.assert_all_signed();
}

#[tokio::test]
async fn throttling_that_outlasts_the_transport_retries_backs_off_and_keeps_hunting() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    // More 429s than one attempt's transport retries (6 with the fast policy).
    fake.fault(
        "POST",
        "/instances",
        Fault::Status {
            status: 429,
            code: "TooManyRequests",
            message: "Too many requests for the user",
            retry_after: Some("0"),
        },
        8,
    );
    let ctx = Ctx::detached("vm");
    let mut events = ctx.events().subscribe();
    let created = instances(&server).create(&ctx, &spec(&sub)).await.unwrap();
    assert_eq!(fake.live("instances").len(), 1);
    assert_eq!(fake.live("instances")[0]["id"], created.id.as_str());
    let l = launches(&fake);
    assert_eq!(l.len(), 9, "8 throttled, then the launch");
    // The throttled round stopped at the first AD and backed off before the next round.
    assert!(
        l.iter().all(|x| x.body["availabilityDomain"] == ADS[0]),
        "{:?}",
        l.iter().map(|x| &x.body["availabilityDomain"]).collect::<Vec<_>>()
    );
    let backoffs = events
        .drain()
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::ResourceProgress { message, .. } if message.contains("backing off")))
        .count();
    assert!(backoffs >= 1);
    fake.assert_all_signed();
}

#[tokio::test]
async fn an_interrupted_launch_is_found_by_lookup_not_duplicated() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    let p = instances(&server);
    let ctx = Ctx::detached("vm");
    let first = p.create(&ctx, &spec(&sub)).await.unwrap();
    // A restarted run that never recorded the id finds the instance by tags and name.
    let found = p.lookup(&ctx, &spec(&sub)).await.unwrap().unwrap();
    assert_eq!(found.id, first.id);
    assert!(p.lookup(&Ctx::detached("other"), &spec(&sub)).await.unwrap().is_none());
    assert_eq!(launches(&fake).len(), 1);
}

#[tokio::test]
async fn free_tier_guard_refuses_what_would_be_billed() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    let p = instances(&server);
    // 2 OCPU / 12 GB already used elsewhere: asking for 4 / 24 leaves the allowance.
    fake.state().extra_used.insert("standard-a1-core-regional-count".into(), 2.0);
    let e = p.create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap_err();
    match &e.error {
        Error::InvalidInput { field, rule } => {
            assert_eq!(field, "ocpus");
            assert!(
                rule.contains("2 OCPU of A1 in use + 4 requested = 6 > allowance 4")
                    && rule.contains("2 OCPU would be billed"),
                "{rule}"
            );
            assert!(rule.contains("allow_billing"), "{rule}");
        }
        other => panic!("{other:?}"),
    }
    assert!(launches(&fake).is_empty(), "refused before any launch");
    let limit_calls = fake.log().into_iter().filter(|l| l.path.starts_with("/20190729/")).count();
    assert!(limit_calls >= 2);

    // Block storage: 150 GB used of 200, a 100 GB boot volume would be billed.
    fake.state().extra_used.clear();
    fake.state().extra_used.insert("total-free-storage-gb-regional".into(), 150.0);
    let mut s = spec(&sub);
    s.boot_volume_size_in_gbs = Some(100);
    let e = p.create(&Ctx::detached("vm"), &s).await.unwrap_err();
    assert!(e.error.to_string().contains("50 GB would be billed"), "{}", e.error);

    // A lower allowance configured for a Pay-As-You-Go tenancy wins over a higher limit.
    fake.state().extra_used.clear();
    let capped = instances(&server).free_tier_allowance(FreeTierAllowance { a1_ocpus: Some(2.0), a1_memory_gbs: None });
    let e = capped.create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap_err();
    assert!(e.error.to_string().contains("allowance 2"), "{}", e.error);

    // Opting out launches anyway.
    fake.state().extra_used.insert("standard-a1-core-regional-count".into(), 2.0);
    let mut paid = spec(&sub);
    paid.allow_billing = true;
    p.create(&Ctx::detached("vm"), &paid).await.unwrap();
    assert_eq!(launches(&fake).len(), 1);
    fake.assert_all_signed();
}

#[tokio::test]
async fn bad_instance_inputs_are_rejected_with_zero_calls() {
    let (server, fake) = FakeOci::start().await;
    let p = instances(&server);
    let base = spec("ocid1.subnet.oc1.phx.aaaa");
    type Edit = fn(&mut InstanceSpec);
    let cases: Vec<(&str, Edit)> = vec![
        ("ocpus", |s| s.ocpus = None),
        ("memory_in_gbs", |s| s.memory_in_gbs = None),
        ("ocpus", |s| s.ocpus = Some(0.0)),
        ("ocpus", |s| s.ocpus = Some(1.5)),
        ("memory_in_gbs", |s| s.memory_in_gbs = Some(100.0 * 4.0)),
        ("memory_in_gbs", |s| {
            s.ocpus = Some(8.0);
            s.memory_in_gbs = Some(4.0)
        }),
        ("boot_volume_size_in_gbs", |s| s.boot_volume_size_in_gbs = Some(49)),
        ("shape", |s| s.shape = "A1 Flex".into()),
        ("ocpus", |s| s.shape = "VM.Standard2.1".into()),
        ("image.operating_system", |s| {
            s.image = ImageSource::Latest { operating_system: "".into(), operating_system_version: "24.04".into() }
        }),
        ("image.image_id", |s| s.image = ImageSource::Id { image_id: "ubuntu".into() }),
        ("subnet_id", |s| s.subnet_id = Input::Value("ocid1.vcn.oc1.phx.x".into())),
        ("ssh_authorized_keys[0]", |s| s.ssh_authorized_keys = vec!["not a key".into()]),
        ("user_data", |s| s.user_data = Some(Input::Value("#cloud-config\n".to_owned() + &"a".repeat(30_000)))),
        ("availability_domains[0]", |s| s.availability_domains = vec!["PHX".into()]),
        ("fault_domains[0]", |s| s.fault_domains = vec!["FAULT-DOMAIN-4".into()]),
        ("freeform_tags.managed-by", |s| {
            s.freeform_tags.insert("managed-by".into(), "me".into());
        }),
        ("display_name", |s| s.display_name = "".into()),
        ("compartment_id", |s| s.compartment_id = "root".into()),
    ];
    for (field, edit) in cases {
        let mut s = base.clone();
        edit(&mut s);
        match p.validate(&s) {
            Err(Error::InvalidInput { field: f, rule }) => assert_eq!(f, field, "{rule}"),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
    }
    p.validate(&base).unwrap();
    assert!(fake.log().is_empty());
}

#[tokio::test]
async fn a_launch_that_terminates_while_provisioning_moves_on_to_the_next_ad() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    fake.state().terminate_after_launch.insert(ADS[0].into());
    let created = instances(&server).create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap();
    assert_eq!(created.outputs.availability_domain, ADS[1]);
    assert_eq!(launches(&fake).len(), 2);
    assert_eq!(fake.live("instances").len(), 1, "the terminated one is gone, one instance runs");
    fake.assert_all_signed();
}

#[tokio::test]
async fn a_cancelled_run_stops_hunting() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    for ad in ADS {
        fake.state().capacity_failures.insert(ad.into(), u32::MAX);
    }
    let p = Instances::new(client(&server)).capacity_hunt(CapacityHunt {
        deadline: Duration::from_secs(3600),
        initial_backoff: Duration::from_secs(600),
        max_backoff: Duration::from_secs(600),
    });
    let ctx = Ctx::detached("vm");
    let cancel = ctx.cancellation().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let e = tokio::time::timeout(Duration::from_secs(30), p.create(&ctx, &spec(&sub))).await.unwrap().unwrap_err();
    assert!(matches!(e.error, Error::Cancelled), "{:?}", e.error);
    assert_eq!(launches(&fake).len(), 3, "one round, then the cancelled wait");
}

#[tokio::test]
async fn an_unknown_launch_outcome_adopts_the_instance_that_exists() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    // Every response to the launch is lost: the first attempt created the instance, the
    // retransmits (same token) returned it, and the client never heard back.
    fake.fault("POST", "/instances", Fault::Lost(Duration::from_millis(400)), 100);
    let c = OciClient::builder()
        .credentials(common::credentials())
        .all_endpoints(server.uri())
        .retry_policy(stackup_core::retry::RetryPolicy { max_attempts: 3, ..stackup_core::retry::RetryPolicy::fast() })
        .timing(Timing::fast())
        .request_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let p = Instances::new(c).capacity_hunt(CapacityHunt::fast(Duration::from_secs(5)));
    let created = p.create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap();
    let live = fake.live("instances");
    assert_eq!(live.len(), 1, "retransmits with one token made one instance");
    assert_eq!(live[0]["id"].as_str(), Some(created.id.as_str()), "the existing instance was adopted");
    assert_eq!(created.outputs.lifecycle_state, "RUNNING");
    assert_eq!(launches(&fake).len(), 3);
}

#[tokio::test]
async fn an_unknown_launch_outcome_with_nothing_created_is_an_error() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    fake.fault(
        "POST",
        "/instances",
        Fault::Status { status: 400, code: "InvalidParameter", message: "bad image", retry_after: None },
        1,
    );
    let e = instances(&server).create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap_err();
    assert!(e.partial_id.is_none());
    assert_eq!(e.error.code(), Some("InvalidParameter"));
    assert_eq!(launches(&fake).len(), 1, "a 400 is neither retried nor a capacity failure");
}

#[tokio::test]
async fn dropped_connections_on_launch_make_one_instance() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    // The first two launches reach OCI (which creates the instance) but the connection drops
    // before the response: a real reset, not a timeout.
    let proxy = common::dropping_proxy::DroppingProxy::start(server.uri(), "POST /20160918/instances/", 2).await;
    let c = OciClient::builder()
        .credentials(common::credentials())
        .all_endpoints(&proxy.url)
        .retry_policy(stackup_core::retry::RetryPolicy::fast())
        .timing(Timing::fast())
        .build()
        .unwrap();
    let created = Instances::new(c)
        .capacity_hunt(CapacityHunt::fast(Duration::from_secs(5)))
        .create(&Ctx::detached("vm"), &spec(&sub))
        .await
        .unwrap();
    assert_eq!(proxy.dropped.load(std::sync::atomic::Ordering::SeqCst), 2);
    let l = launches(&fake);
    assert_eq!(l.len(), 3, "two dropped, the third answered from the retry token");
    assert!(l.iter().all(|x| x.retry_token == l[0].retry_token));
    let live = fake.live("instances");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["id"].as_str(), Some(created.id.as_str()));
    fake.assert_all_signed();
}

#[tokio::test]
async fn free_tier_guard_sums_per_ad_limits_when_there_is_no_regional_one() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    {
        let mut st = fake.state();
        st.limits.remove("standard-a1-core-regional-count");
        st.limits.remove("standard-a1-memory-regional-count");
        // 2 OCPU / 12 GB per AD, 3 ADs: 6 / 36 in all, 3 OCPU already used in AD-1.
        st.limits.insert("standard-a1-core-count".into(), 2.0);
        st.limits.insert("standard-a1-memory-count".into(), 12.0);
        st.extra_used.insert("standard-a1-core-count".into(), 3.0);
    }
    let e = instances(&server).create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap_err();
    assert!(e.error.to_string().contains("3 OCPU of A1 in use + 4 requested = 7 > allowance 6"), "{}", e.error);
    let per_ad_calls = fake
        .log()
        .into_iter()
        .filter(|l| {
            l.path.contains("standard-a1-core-count/resourceAvailability") && l.query.contains("availabilityDomain=")
        })
        .count();
    assert_eq!(per_ad_calls, 3, "usage read per availability domain");
    fake.state().extra_used.clear();
    let mut s = spec(&sub);
    s.ocpus = Some(2.0);
    s.memory_in_gbs = Some(12.0);
    instances(&server).create(&Ctx::detached("vm"), &s).await.unwrap();
    fake.assert_all_signed();
}

#[tokio::test]
async fn an_unreadable_limits_api_explains_how_to_proceed() {
    let (server, fake) = FakeOci::start().await;
    let sub = subnet(&server).await;
    fake.fault(
        "GET",
        "/20190729/limitValues",
        Fault::Status {
            status: 404,
            code: "NotAuthorizedOrNotFound",
            message: "Authorization failed or requested resource not found.",
            retry_after: None,
        },
        1,
    );
    let e = instances(&server).create(&Ctx::detached("vm"), &spec(&sub)).await.unwrap_err();
    assert!(matches!(e.error, Error::PermissionDenied(_)), "{:?}", e.error);
    let msg = e.error.to_string();
    assert!(msg.contains("free-tier guard") && msg.contains("allow_billing") && msg.contains("policy"), "{msg}");
    assert!(launches(&fake).is_empty());
}
