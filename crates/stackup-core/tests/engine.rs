//! Engine behaviour against the in-memory test provisioner.

use std::sync::Arc;
use std::time::Duration;

use stackup_core::testing::{FakeCloud, FakeProvisioner, FakeSpec, Fault};
use stackup_core::{
    Action, Engine, Error, EventKind, Input, LocalBackend, MemoryBackend, Stack, StateBackend, StateKey, TemplatePart,
};

/// net -> subnet -> {vm1, vm2}; dns independent.
fn demo_stack(cloud: &FakeCloud) -> Stack {
    let mut s = Stack::new("demo");
    let net = s.add("net", FakeProvisioner::new(cloud), FakeSpec::new("10.0.0.0/16")).unwrap();
    let subnet = s
        .add(
            "subnet",
            FakeProvisioner::new(cloud),
            FakeSpec::new(Input::template([TemplatePart::Ref(net.output("value")), "/sub".into()])),
        )
        .unwrap();
    for vm in ["vm1", "vm2"] {
        s.add(vm, FakeProvisioner::new(cloud), FakeSpec::new(subnet.id().input()).immutable("ubuntu-22.04")).unwrap();
    }
    s.add("dns", FakeProvisioner::new(cloud), FakeSpec::new("example.org")).unwrap();
    s
}

async fn apply_all(engine: &Engine) -> stackup_core::ApplyReport {
    let plan = engine.plan().await.unwrap();
    engine.apply(&plan).await.unwrap()
}

#[tokio::test]
async fn apply_then_reapply_makes_zero_mutating_calls() {
    let cloud = FakeCloud::new();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.summary.create, 5);
    assert!(plan.render().contains("(known after apply: net.value)") || plan.render().contains("known after apply"));
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.summary.create, 5);
    assert_eq!(cloud.objects().len(), 5);
    let subnet = &cloud.objects_for("subnet")[0];
    assert_eq!(subnet.value, "10.0.0.0/16/sub", "template resolved from the dependency's output");

    cloud.reset_calls();
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    let report = engine.apply(&plan).await.unwrap();
    assert_eq!(report.summary.unchanged, 5);
    assert_eq!(cloud.mutating_calls(), 0, "{:?}", cloud.calls());
}

#[tokio::test]
async fn updates_in_place_and_replaces_immutable_changes() {
    let cloud = FakeCloud::new();
    let backend = Arc::new(MemoryBackend::new());
    apply_all(&Engine::new(demo_stack(&cloud), backend.clone())).await;
    let vm1_before = cloud.objects_for("vm1")[0].clone();

    let mut s = Stack::new("demo");
    let net = s.add("net", FakeProvisioner::new(&cloud), FakeSpec::new("10.0.0.0/16")).unwrap();
    let subnet = s
        .add(
            "subnet",
            FakeProvisioner::new(&cloud),
            FakeSpec::new(Input::template([TemplatePart::Ref(net.output("value")), "/sub".into()])),
        )
        .unwrap();
    s.add("vm1", FakeProvisioner::new(&cloud), FakeSpec::new(subnet.id().input()).immutable("ubuntu-24.04")).unwrap();
    s.add("vm2", FakeProvisioner::new(&cloud), FakeSpec::new(subnet.id().input()).immutable("ubuntu-22.04")).unwrap();
    s.add("dns", FakeProvisioner::new(&cloud), FakeSpec::new("example.net")).unwrap();
    let engine = Engine::new(s, backend.clone());
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.resource("vm1").unwrap().action, Action::Replace);
    assert_eq!(plan.resource("dns").unwrap().action, Action::Update);
    assert_eq!(plan.resource("vm2").unwrap().action, Action::NoOp);
    let text = plan.render();
    assert!(text.contains("-/+ vm1") && text.contains("forces replacement"), "{text}");
    assert!(text.contains("~ dns") && text.contains("\"example.org\" -> \"example.net\""), "{text}");
    let json = plan.to_json();
    assert_eq!(json["resources"].as_array().unwrap().len(), 5);

    cloud.reset_calls();
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success());
    assert_eq!((report.summary.replace, report.summary.update, report.summary.unchanged), (1, 1, 3));
    let vm1_after = cloud.objects_for("vm1");
    assert_eq!(vm1_after.len(), 1, "the old vm1 is gone");
    assert_eq!(vm1_after[0].immutable, "ubuntu-24.04");
    assert_ne!(vm1_after[0], vm1_before);
    assert_eq!(cloud.mutating_calls(), 3, "delete+create vm1, update dns: {:?}", cloud.calls());
}

#[tokio::test]
async fn destroy_goes_in_reverse_order_and_leaves_empty_state() {
    let cloud = FakeCloud::new();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    apply_all(&engine).await;
    cloud.reset_calls();
    let report = engine.destroy().await.unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.summary.delete, 5);
    assert!(cloud.objects().is_empty());
    let deletes: Vec<String> = cloud.calls().into_iter().filter(|c| c.op == "delete").map(|c| c.address).collect();
    let pos = |a: &str| deletes.iter().position(|d| d == a).unwrap();
    assert!(pos("vm1") < pos("subnet") && pos("vm2") < pos("subnet") && pos("subnet") < pos("net"), "{deletes:?}");
    assert!(engine.state().await.unwrap().unwrap().resources.is_empty());
}

#[tokio::test]
async fn removed_resources_are_deleted_after_their_dependents() {
    let cloud = FakeCloud::new();
    let backend = Arc::new(MemoryBackend::new());
    apply_all(&Engine::new(demo_stack(&cloud), backend.clone())).await;
    let mut s = Stack::new("demo");
    s.add("dns", FakeProvisioner::new(&cloud), FakeSpec::new("example.org")).unwrap();
    let engine = Engine::new(s, backend);
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.summary.delete, 4);
    assert!(engine.apply(&plan).await.unwrap().is_success());
    assert_eq!(cloud.objects().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_honours_global_and_provider_limits() {
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(20), Duration::from_millis(30));
    let mut s = Stack::new("wide");
    for i in 0..12 {
        s.add(&format!("a{i}"), FakeProvisioner::with_provider(&cloud, "alpha"), FakeSpec::new("x")).unwrap();
        s.add(&format!("b{i}"), FakeProvisioner::with_provider(&cloud, "beta"), FakeSpec::new("y")).unwrap();
    }
    let engine = Engine::new(s, Arc::new(MemoryBackend::new())).parallelism(6).provider_limit("alpha", 2);
    let report = apply_all(&engine).await;
    assert!(report.is_success());
    assert_eq!(cloud.objects().len(), 24);
    assert!(cloud.max_in_flight() <= 6, "global limit: {}", cloud.max_in_flight());
    assert!(cloud.max_in_flight() >= 3, "work ran concurrently: {}", cloud.max_in_flight());
    assert!(cloud.max_in_flight_for("alpha") <= 2, "provider limit: {}", cloud.max_in_flight_for("alpha"));
    assert_eq!(cloud.max_in_flight_for("alpha"), 2);
}

#[tokio::test]
async fn a_failure_skips_only_dependents_and_keeps_what_was_created() {
    let cloud = FakeCloud::new();
    cloud.inject("subnet", &[Fault::ServerError]);
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    let mut events = engine.events();
    let report = apply_all(&engine).await;
    assert_eq!(report.failed.len(), 1, "root cause only: {report:?}");
    assert_eq!(report.failed[0].address, "subnet");
    assert_eq!(report.failed[0].error.request_id(), Some("req-fake"));
    let mut skipped = report.skipped.clone();
    skipped.sort();
    assert_eq!(skipped, ["vm1", "vm2"]);
    let state = engine.state().await.unwrap().unwrap();
    assert!(state.resources.contains_key("net") && state.resources.contains_key("dns"));
    assert!(!state.resources.contains_key("subnet"), "a clean failure leaves nothing behind");
    assert!(report.into_result().unwrap_err().to_string().contains("subnet"));
    let evs = events.drain();
    assert!(evs.iter().any(|e| matches!(&e.kind, EventKind::ResourceSkipped { address, because } if address == "vm1" && because == "subnet")));
    assert!(evs.windows(2).all(|w| w[0].seq < w[1].seq));

    // The next run finishes the job without touching what exists.
    cloud.reset_calls();
    let report = apply_all(&Engine::new(demo_stack(&cloud), backend)).await;
    assert!(report.is_success());
    assert_eq!(report.summary.create, 3);
    assert_eq!(cloud.objects().len(), 5);
}

#[tokio::test]
async fn a_partial_create_is_recorded_tainted_and_replaced() {
    let cloud = FakeCloud::new();
    cloud.inject("dns", &[Fault::FailAfterCreate]);
    let backend = Arc::new(MemoryBackend::new());
    let report = apply_all(&Engine::new(demo_stack(&cloud), backend.clone())).await;
    assert_eq!(report.failed.len(), 1);
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    let state = engine.state().await.unwrap().unwrap();
    let dns = &state.resources["dns"];
    assert!(dns.id.is_some(), "the id of what exists is kept");
    assert_eq!(dns.status, stackup_core::state::ResourceStatus::Tainted);
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.resource("dns").unwrap().action, Action::Replace);
    assert!(engine.apply(&plan).await.unwrap().is_success());
    assert_eq!(cloud.objects_for("dns").len(), 1, "no orphan, no duplicate");
}

#[tokio::test]
async fn a_crash_between_intent_and_result_is_reconciled_by_reading() {
    let cloud = FakeCloud::new();
    cloud.inject("net", &[Fault::LostResponse]);
    let backend = Arc::new(MemoryBackend::new());
    let report = apply_all(&Engine::new(demo_stack(&cloud), backend.clone())).await;
    assert_eq!(report.failed.len(), 1);
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    let state = engine.state().await.unwrap().unwrap();
    let net = &state.resources["net"];
    assert!(net.id.is_none() && net.pending.is_some(), "intent kept: {net:?}");
    let plan = engine.plan().await.unwrap();
    let p = plan.resource("net").unwrap();
    assert_eq!(p.action, Action::NoOp, "adopted, not created again");
    assert!(p.notes.iter().any(|n| n.contains("adopted")));
    cloud.reset_calls();
    assert!(engine.apply(&plan).await.unwrap().is_success());
    assert_eq!(cloud.objects_for("net").len(), 1);
    assert_eq!(cloud.objects().len(), 5);
    assert!(!cloud.calls().iter().any(|c| c.op == "create" && c.address == "net"));
    let state = engine.state().await.unwrap().unwrap();
    assert!(state.resources.values().all(|r| r.pending.is_none() && r.id.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_apply_converges_without_duplicates() {
    let cloud = FakeCloud::new();
    let mut s = Stack::new("chain");
    let mut prev: Option<stackup_core::Handle<FakeProvisioner>> = None;
    for i in 0..6 {
        let spec = match &prev {
            Some(p) => FakeSpec::new(p.id().input()),
            None => FakeSpec::new("root"),
        };
        prev = Some(s.add(&format!("r{i}"), FakeProvisioner::new(&cloud), spec).unwrap());
        cloud.set_latency_for(&format!("r{i}"), Duration::from_millis(40));
    }
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(s.clone(), backend.clone());
    let plan = engine.plan().await.unwrap();
    // Drop the apply future part-way (as a killed process would stop).
    let r = tokio::time::timeout(Duration::from_millis(110), engine.apply(&plan)).await;
    assert!(r.is_err(), "interrupted");
    let created_so_far = cloud.objects().len();
    assert!((1..6).contains(&created_so_far), "{created_so_far}");
    // The lock of the dropped run is released in the background.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(backend.lock_holder().await.unwrap().is_none());

    let engine = Engine::new(s, backend.clone());
    let report = apply_all(&engine).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(cloud.objects().len(), 6, "{:?}", cloud.objects());
    for i in 0..6 {
        assert_eq!(cloud.objects_for(&format!("r{i}")).len(), 1);
    }
    assert!(engine.plan().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_new_work_and_keeps_state_consistent() {
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(30), Duration::from_millis(30));
    let engine = Engine::new(demo_stack(&cloud), Arc::new(MemoryBackend::new()));
    let plan = engine.plan().await.unwrap();
    let token = engine.cancel_token();
    let (report, _) = tokio::join!(engine.apply(&plan), async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        token.cancel();
    });
    let report = report.unwrap();
    assert!(report.cancelled);
    assert!(!report.skipped.is_empty());
    let state = engine.state().await.unwrap().unwrap();
    // Everything that exists is recorded with its id.
    for (id, obj) in cloud.objects() {
        let r = &state.resources[&obj.address];
        assert_eq!(r.id.as_deref(), Some(id.as_str()));
    }
}

#[tokio::test]
async fn a_stale_plan_is_refused() {
    let cloud = FakeCloud::new();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    let plan = engine.plan().await.unwrap();
    let plan2 = engine.plan().await.unwrap();
    engine.apply(&plan).await.unwrap();
    assert!(matches!(engine.apply(&plan2).await, Err(Error::StalePlan(_))));

    let mut changed = demo_stack(&cloud);
    changed.add("extra", FakeProvisioner::new(&cloud), FakeSpec::new("x")).unwrap();
    let plan3 = engine.plan().await.unwrap();
    let other = Engine::new(changed, backend);
    assert!(matches!(other.apply(&plan3).await, Err(Error::StalePlan(_))));
}

#[tokio::test]
async fn drift_is_reported_and_corrected() {
    let cloud = FakeCloud::new();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    apply_all(&engine).await;
    let state = engine.state().await.unwrap().unwrap();
    let dns_id = state.resources["dns"].id.clone().unwrap();
    let vm1_id = state.resources["vm1"].id.clone().unwrap();
    cloud.tamper(&dns_id, "hacked.example");
    cloud.remove(&vm1_id);
    let mut events = engine.events();
    let plan = engine.plan().await.unwrap();
    let dns = plan.resource("dns").unwrap();
    assert_eq!(dns.action, Action::Update);
    assert!(dns.drift.iter().any(|d| d.contains("hacked.example")), "{:?}", dns.drift);
    assert_eq!(plan.resource("vm1").unwrap().action, Action::Create);
    assert!(plan.resource("vm1").unwrap().drift.iter().any(|d| d.contains("deleted outside")));
    assert_eq!(events.drain().iter().filter(|e| matches!(e.kind, EventKind::DriftDetected { .. })).count(), 2);
    assert!(engine.apply(&plan).await.unwrap().is_success());
    assert!(engine.plan().await.unwrap().is_empty());
}

#[tokio::test]
async fn secrets_are_never_stored_in_plaintext_and_flow_to_dependents() {
    let cloud = FakeCloud::new();
    let mut s = Stack::new("sec");
    let acct = s
        .add(
            "acct",
            FakeProvisioner::new(&cloud),
            FakeSpec::new("acct").secret(stackup_core::Secret::new("p@ssw0rd-XYZ")),
        )
        .unwrap();
    s.add(
        "vm",
        FakeProvisioner::new(&cloud),
        FakeSpec::new(Input::template(["password=".into(), TemplatePart::Ref(acct.output("secret"))])),
    )
    .unwrap();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(s.clone(), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert!(!plan.render().contains("p@ssw0rd-XYZ") && !plan.to_json().to_string().contains("p@ssw0rd-XYZ"));
    assert!(engine.apply(&plan).await.unwrap().is_success());
    assert_eq!(cloud.objects_for("vm")[0].value, "password=p@ssw0rd-XYZ", "the secret reached its consumer");
    let bytes = String::from_utf8(backend.bytes().unwrap()).unwrap();
    assert!(!bytes.contains("p@ssw0rd-XYZ"), "state holds no plaintext secret");
    assert!(bytes.contains("$secret_dropped"));
    // Refresh re-reads it, so the next plan is a no-op.
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    let rendered = format!("{:?}", engine.outputs().await.unwrap());
    assert!(!rendered.contains("p@ssw0rd-XYZ"));

    // With a state key the secret is stored encrypted and read back.
    let backend = Arc::new(MemoryBackend::new());
    let key = StateKey::from_bytes([3; 32]);
    let cloud2 = FakeCloud::new();
    let mut s2 = Stack::new("sec2");
    s2.add("acct", FakeProvisioner::new(&cloud2), FakeSpec::new("a").secret(stackup_core::Secret::new("k-123456")))
        .unwrap();
    let engine = Engine::new(s2, backend.clone()).state_key(key);
    apply_all(&engine).await;
    let bytes = String::from_utf8(backend.bytes().unwrap()).unwrap();
    assert!(bytes.contains("$secret_enc") && !bytes.contains("k-123456"));
    let outs = engine.outputs().await.unwrap();
    assert_eq!(outs["acct"]["secret"]["$secret"], "k-123456");
}

#[tokio::test]
async fn cycles_dangling_refs_and_bad_input_fail_before_any_call() {
    let cloud = FakeCloud::new();
    let mut s = Stack::new("bad");
    s.add("a", FakeProvisioner::new(&cloud), FakeSpec::new(stackup_core::OutputRef::new("b", "id").input())).unwrap();
    s.add("b", FakeProvisioner::new(&cloud), FakeSpec::new(stackup_core::OutputRef::new("a", "id").input())).unwrap();
    let e = Engine::new(s, Arc::new(MemoryBackend::new())).plan().await.unwrap_err();
    assert!(e.to_string().contains("cycle") && e.to_string().contains("a, b"), "{e}");

    let mut s = Stack::new("bad");
    s.add("a", FakeProvisioner::new(&cloud), FakeSpec::new(stackup_core::OutputRef::new("ghost", "id").input()))
        .unwrap();
    let e = Engine::new(s, Arc::new(MemoryBackend::new())).plan().await.unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");

    let mut s = Stack::new("bad");
    s.add("a", FakeProvisioner::new(&cloud), FakeSpec::new("")).unwrap();
    match Engine::new(s, Arc::new(MemoryBackend::new())).plan().await.unwrap_err() {
        Error::InvalidInput { field, rule } => {
            assert_eq!(field, "a.value");
            assert!(rule.contains("empty"));
        }
        other => panic!("{other}"),
    }
    assert!(Stack::new("x").add("bad address!", FakeProvisioner::new(&cloud), FakeSpec::new("v")).is_err());
    assert!(cloud.calls().is_empty(), "no call was made");
}

#[tokio::test]
async fn corrupt_or_newer_state_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let cloud = FakeCloud::new();
    for bad in [
        &b"{\"version\": 1, \"lineage\": "[..],
        &br#"{"version": 7, "lineage": "x", "serial": 3, "stack": "demo", "resources": {}}"#[..],
    ] {
        std::fs::write(&path, bad).unwrap();
        let engine = Engine::new(demo_stack(&cloud), Arc::new(LocalBackend::new(&path)));
        let e = engine.plan().await.unwrap_err();
        assert!(matches!(e, Error::State(_)), "{e}");
        assert!(e.to_string().contains("untouched"), "{e}");
        assert!(engine.destroy().await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bad, "not overwritten");
    }
    assert!(cloud.calls().is_empty());
}

#[tokio::test]
async fn local_state_end_to_end_with_lock_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.stackup.json");
    let cloud = FakeCloud::new();
    let backend = Arc::new(LocalBackend::new(&path));
    let engine = Engine::new(demo_stack(&cloud), backend.clone());
    assert!(apply_all(&engine).await.is_success());
    assert!(backend.lock_holder().await.unwrap().is_none());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["resources"]["vm1"]["dependencies"], serde_json::json!(["subnet"]));
    assert_eq!(doc["resources"]["vm1"]["kind"], "object");
    // Held lock: apply refuses with the holder's details.
    let info = stackup_core::lock::LockInfo::for_operation("apply");
    backend.lock(&info).await.unwrap();
    let plan = engine.plan().await.unwrap();
    match engine.apply(&plan).await {
        Err(Error::Locked(h)) => assert_eq!(h.id, info.id),
        other => panic!("{other:?}"),
    }
    assert_eq!(engine.force_unlock().await.unwrap().unwrap().id, info.id);
    assert!(engine.apply(&plan).await.is_ok());
}

#[tokio::test]
async fn ignored_fields_plan_nothing_and_replace_is_on_request() {
    let cloud = FakeCloud::new();
    let backend = Arc::new(MemoryBackend::new());
    apply_all(&Engine::new(demo_stack(&cloud), backend.clone())).await;
    let vm1_before = cloud.objects_for("vm1")[0].clone();

    // vm1's immutable field changes, and so does `net` (so vm1's value is known only after apply).
    let changed = |ignore: bool| {
        let mut s = Stack::new("demo");
        let net = s.add("net", FakeProvisioner::new(&cloud), FakeSpec::new("10.1.0.0/16")).unwrap();
        let subnet = s
            .add(
                "subnet",
                FakeProvisioner::new(&cloud),
                FakeSpec::new(Input::template([TemplatePart::Ref(net.output("value")), "/sub".into()])),
            )
            .unwrap();
        let vm = FakeSpec::new(Input::template([TemplatePart::Ref(net.output("value")), "/vm".into()]))
            .immutable("ubuntu-24.04");
        s.add("vm1", FakeProvisioner::new(&cloud), vm).unwrap();
        s.add("vm2", FakeProvisioner::new(&cloud), FakeSpec::new(subnet.id().input()).immutable("ubuntu-22.04"))
            .unwrap();
        s.add("dns", FakeProvisioner::new(&cloud), FakeSpec::new("example.org")).unwrap();
        if ignore {
            s.ignore_changes("vm1", ["immutable", "value"]).unwrap();
        }
        s
    };
    let plan = Engine::new(changed(false), backend.clone()).plan().await.unwrap();
    assert_eq!(plan.resource("vm1").unwrap().action, Action::Replace, "{}", plan.render());

    let engine = Engine::new(changed(true), backend.clone());
    let plan = engine.plan().await.unwrap();
    let vm1 = plan.resource("vm1").unwrap();
    assert_eq!(vm1.action, Action::NoOp, "{}", plan.render());
    assert!(vm1.notes.iter().any(|n| n.contains("ignore_changes") && n.contains("immutable")), "{:?}", vm1.notes);
    cloud.reset_calls();
    let report = engine.apply(&plan).await.unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(cloud.objects_for("vm1"), vec![vm1_before.clone()], "vm1 untouched");
    assert!(cloud.calls().iter().all(|c| c.address != "vm1" || c.op == "read"), "{:?}", cloud.calls());

    // An explicit replacement, even with nothing to change.
    let engine = Engine::new(demo_stack(&cloud), backend.clone()).replace("dns");
    let plan = engine.plan().await.unwrap();
    let dns = plan.resource("dns").unwrap();
    assert_eq!(dns.action, Action::Replace, "{}", plan.render());
    assert!(dns.notes.iter().any(|n| n == "replacement requested"), "{:?}", dns.notes);
    let dns_before = cloud.objects_for("dns")[0].clone();
    cloud.reset_calls();
    assert!(engine.apply(&plan).await.unwrap().is_success());
    let ops: Vec<&str> = cloud.calls().iter().filter(|c| c.address == "dns").map(|c| c.op).collect();
    assert_eq!(ops, ["delete", "create"], "{:?}", cloud.calls());
    assert_eq!(cloud.objects_for("dns").len(), 1);
    assert_eq!(cloud.objects_for("dns")[0].value, dns_before.value);

    // Unknown addresses fail before any call.
    cloud.reset_calls();
    let e = Engine::new(demo_stack(&cloud), backend.clone()).replace("nope").plan().await.unwrap_err();
    assert!(matches!(&e, Error::InvalidInput { field, .. } if field == "replace"), "{e}");
    assert!(cloud.calls().is_empty(), "{:?}", cloud.calls());
    let mut s = demo_stack(&cloud);
    assert!(s.ignore_changes("nope", ["value"]).is_err());
    assert!(s.ignore_changes("vm1", [""]).is_err());
}
