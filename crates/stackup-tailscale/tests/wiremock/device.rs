//! `Devices` (wait for join, suffixed names, removal) and the device settings resources.

use std::time::Duration;

use serde_json::{Value, json};
use stackup_core::{Action, Ctx, Error, Provisioner};
use stackup_tailscale::{
    DeviceAuthorizationSpec, DeviceAuthorizations, DeviceKeyExpiries, DeviceKeyExpirySpec, DeviceSpec, DeviceTags,
    DeviceTagsSpec, Devices, NameConflict,
};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common;

const DEVICES: &str = "/api/v2/tailnet/-/devices";

/// A device as the API lists it (default fields).
fn device(node_id: &str, hostname: &str, label: &str, created: &str, online: bool) -> Value {
    let mut d = json!({
        "addresses": ["100.101.102.103", "fd7a:115c:a1e0:ab12:4843:cd96:6265:6667"],
        "id": "50052",
        "nodeId": node_id,
        "user": "tagged-devices",
        "name": format!("{label}.tail1234.ts.net"),
        "hostname": hostname,
        "clientVersion": "1.90.6-t1234",
        "updateAvailable": false,
        "os": "linux",
        "created": created,
        "connectedToControl": online,
        "keyExpiryDisabled": false,
        "expires": "2027-05-24T10:01:00Z",
        "authorized": false,
        "isExternal": false,
        "machineKey": "mkey:30dc3c061ac8b33fdc6d88a4a67b053b01b56930d78cae0cf7a164411d424c0d",
        "nodeKey": "nodekey:30dc3c061ac8b33fdc6d88a4a67b053b01b56930d78cae0cf7a164411d424c0d",
        "blocksIncomingConnections": false,
        "tags": ["tag:server"],
        "isEphemeral": false
    });
    if !online {
        d["lastSeen"] = json!("2026-11-20T08:00:00Z");
    }
    d
}

fn new_device() -> Value {
    device("nNEW1CNTRL", "egograph-prod", "egograph-prod", "2026-11-25T10:01:00Z", true)
}

fn devices(list: Vec<Value>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "devices": list }))
}

fn provisioner(server: &MockServer) -> Devices {
    Devices::new(common::client(server)).poll_interval(Duration::from_millis(10))
}

fn spec() -> DeviceSpec {
    DeviceSpec::new("egograph-prod")
        .required_tags(["tag:server"])
        .joined_after("2026-11-25T10:00:00Z")
        .wait_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn waits_for_a_device_that_joins_late() {
    let server = MockServer::start().await;
    // Not there yet (empty list, then a transient 404 and a 502), then joined.
    Mock::given(method("GET"))
        .and(path(DEVICES))
        .and(query_param("hostname", "egograph-prod"))
        .respond_with(devices(vec![]))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(DEVICES))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(DEVICES))
        .and(query_param("hostname", "egograph-prod"))
        .respond_with(devices(vec![new_device()]))
        .mount(&server)
        .await;
    let p = provisioner(&server);
    let ctx = Ctx::detached("host");
    let mut events = ctx.events().subscribe();
    let created = p.create(&ctx, &spec()).await.unwrap();
    assert_eq!(created.id, "nNEW1CNTRL");
    let o = &created.outputs;
    assert_eq!(o.magic_dns_name, "egograph-prod.tail1234.ts.net");
    assert_eq!(o.tailnet_domain, "tail1234.ts.net");
    assert_eq!(o.ipv4.as_deref(), Some("100.101.102.103"));
    assert_eq!(o.ipv6.as_deref(), Some("fd7a:115c:a1e0:ab12:4843:cd96:6265:6667"));
    assert_eq!(common::requests(&server, "GET", DEVICES).await.len(), 4);
    assert_eq!(common::mutating(&server).await, 0);
    let progress: Vec<String> = events.drain().into_iter().map(|e| format!("{:?}", e.kind)).collect();
    assert!(progress.iter().any(|m| m.contains("has not joined yet")), "{progress:?}");
}

#[tokio::test]
async fn a_device_that_never_joins_times_out_naming_it() {
    let server = MockServer::start().await;
    // Only a stale device with that hostname, which joined before the key existed.
    Mock::given(method("GET"))
        .and(path(DEVICES))
        .respond_with(devices(vec![device(
            "nOLD1CNTRL",
            "egograph-prod",
            "egograph-prod",
            "2026-10-01T00:00:00Z",
            false,
        )]))
        .mount(&server)
        .await;
    let err = provisioner(&server)
        .create(&Ctx::detached("host"), &spec().wait_timeout(Duration::from_millis(150)))
        .await
        .unwrap_err();
    assert!(err.partial_id.is_none());
    match err.error {
        Error::Timeout { what, .. } => assert!(what.contains("egograph-prod"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert!(common::requests(&server, "GET", DEVICES).await.len() >= 2, "it polled");
}

async fn mount_suffixed(server: &MockServer, holder_online: bool) {
    let old = device("nOLD1CNTRL", "egograph-prod", "egograph-prod", "2026-10-01T00:00:00Z", holder_online);
    let new = device("nNEW1CNTRL", "egograph-prod", "egograph-prod-1", "2026-11-25T10:01:00Z", true);
    let unrelated = device("nWEB1CNTRL", "web", "web", "2026-10-01T00:00:00Z", true);
    Mock::given(method("GET"))
        .and(path(DEVICES))
        .and(query_param("hostname", "egograph-prod"))
        .respond_with(devices(vec![old.clone(), new.clone()]))
        .mount(server)
        .await;
    Mock::given(method("GET")).and(path(DEVICES)).respond_with(devices(vec![old, new, unrelated])).mount(server).await;
}

#[tokio::test]
async fn a_hostname_in_another_case_is_found_by_the_unfiltered_poll() {
    let server = MockServer::start().await;
    let upper = device("nNEW1CNTRL", "EgoGraph-Prod", "egograph-prod", "2026-11-25T10:01:00Z", true);
    // The exact-match server filter never finds it; the full list does.
    Mock::given(method("GET"))
        .and(path(DEVICES))
        .and(query_param("hostname", "egograph-prod"))
        .respond_with(devices(vec![]))
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path(DEVICES)).respond_with(devices(vec![upper])).mount(&server).await;
    let created = provisioner(&server).create(&Ctx::detached("host"), &spec()).await.unwrap();
    assert_eq!(created.outputs.hostname, "EgoGraph-Prod");
    assert_eq!(common::requests(&server, "GET", DEVICES).await.len(), 5);
}

#[tokio::test]
async fn a_suffixed_name_fails_by_default_naming_the_stale_holder() {
    let server = MockServer::start().await;
    mount_suffixed(&server, false).await;
    let err = provisioner(&server).create(&Ctx::detached("host"), &spec()).await.unwrap_err();
    assert!(matches!(err.error, Error::Conflict(_)), "{:?}", err.error);
    let msg = err.error.to_string();
    assert!(msg.contains("egograph-prod-1") && msg.contains("nOLD1CNTRL") && msg.contains("offline"), "{msg}");
    assert_eq!(common::mutating(&server).await, 0);
}

#[tokio::test]
async fn a_suffixed_name_can_be_accepted() {
    let server = MockServer::start().await;
    mount_suffixed(&server, false).await;
    let created = provisioner(&server)
        .create(&Ctx::detached("host"), &spec().on_name_conflict(NameConflict::AcceptSuffix))
        .await
        .unwrap();
    assert_eq!(created.outputs.magic_dns_name, "egograph-prod-1.tail1234.ts.net");
    assert_eq!(common::mutating(&server).await, 0);
}

#[tokio::test]
async fn the_name_is_reclaimed_from_an_offline_holder() {
    let server = MockServer::start().await;
    mount_suffixed(&server, false).await;
    Mock::given(method("DELETE"))
        .and(path("/api/v2/device/nOLD1CNTRL"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/device/nNEW1CNTRL/name"))
        .and(body_json(json!({"name": "egograph-prod"})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/device/nNEW1CNTRL"))
        .respond_with(ResponseTemplate::new(200).set_body_json(new_device()))
        .mount(&server)
        .await;
    let created = provisioner(&server)
        .create(&Ctx::detached("host"), &spec().on_name_conflict(NameConflict::ReclaimName))
        .await
        .unwrap();
    assert_eq!(created.outputs.magic_dns_name, "egograph-prod.tail1234.ts.net");
}

#[tokio::test]
async fn a_device_shared_in_from_another_tailnet_never_holds_the_name() {
    // A device shared in from another tailnet (`isExternal`) may carry the same label under its
    // own tailnet's domain: it does not hold our name, and it cannot be deleted (501).
    let server = MockServer::start().await;
    let old = device("nOLD1CNTRL", "egograph-prod", "egograph-prod", "2026-10-01T00:00:00Z", false);
    let new = device("nNEW1CNTRL", "egograph-prod", "egograph-prod-1", "2026-11-25T10:01:00Z", true);
    let mut shared = device("nSHARED1CNTRL", "egograph-prod", "egograph-prod", "2026-09-01T00:00:00Z", true);
    shared["name"] = json!("egograph-prod.other5678.ts.net");
    shared["isExternal"] = json!(true);
    shared["tags"] = json!([]);
    Mock::given(method("GET")).and(path(DEVICES)).respond_with(devices(vec![old, new, shared])).mount(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/api/v2/device/nSHARED1CNTRL"))
        .respond_with(ResponseTemplate::new(501).set_body_json(json!({"message": "Device not owned by tailnet"})))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v2/device/nOLD1CNTRL"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/device/nNEW1CNTRL/name"))
        .and(body_json(json!({"name": "egograph-prod"})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/device/nNEW1CNTRL"))
        .respond_with(ResponseTemplate::new(200).set_body_json(new_device()))
        .mount(&server)
        .await;
    let p = provisioner(&server);
    // Fail names only the real holder.
    let err = p.create(&Ctx::detached("host"), &spec()).await.unwrap_err();
    let msg = err.error.to_string();
    assert!(msg.contains("nOLD1CNTRL") && !msg.contains("nSHARED1CNTRL"), "{msg}");
    // ReclaimName removes the offline holder, not the (online) shared device.
    let created = p.create(&Ctx::detached("host"), &spec().on_name_conflict(NameConflict::ReclaimName)).await.unwrap();
    assert_eq!(created.outputs.magic_dns_name, "egograph-prod.tail1234.ts.net");
}

#[tokio::test]
async fn cancelling_the_run_stops_the_wait_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path(DEVICES)).respond_with(devices(vec![])).mount(&server).await;
    let p = Devices::new(common::client(&server)).poll_interval(Duration::from_secs(30));
    let ctx = Ctx::detached("host");
    let token = ctx.cancellation().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
    });
    let start = std::time::Instant::now();
    let err = p.create(&ctx, &spec().wait_timeout(Duration::from_secs(120))).await.unwrap_err();
    assert!(matches!(err.error, Error::Cancelled), "{:?}", err.error);
    assert!(start.elapsed() < Duration::from_secs(5), "stopped mid-sleep, after {:?}", start.elapsed());
}

#[tokio::test]
async fn an_online_holder_is_never_removed() {
    let server = MockServer::start().await;
    mount_suffixed(&server, true).await;
    let err = provisioner(&server)
        .create(&Ctx::detached("host"), &spec().on_name_conflict(NameConflict::ReclaimName))
        .await
        .unwrap_err();
    assert!(err.error.to_string().contains("nOLD1CNTRL holding it is connected"), "{}", err.error);
    assert_eq!(common::mutating(&server).await, 0);
}

#[tokio::test]
async fn read_no_op_and_optional_removal_on_destroy() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path(DEVICES)).respond_with(devices(vec![new_device()])).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/api/v2/device/nNEW1CNTRL"))
        .respond_with(ResponseTemplate::new(200).set_body_json(new_device()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/device/nGONE"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "device not found"})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v2/device/nNEW1CNTRL"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let p = provisioner(&server);
    let ctx = Ctx::detached("host");
    let created = p.create(&ctx, &spec()).await.unwrap();
    let read = p.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    assert_eq!(read, created.outputs);
    assert_eq!(p.diff(&spec(), &read).action(), Action::NoOp);
    assert_eq!(p.diff(&DeviceSpec::new("other-host"), &read).action(), Action::Replace);
    assert!(p.read(&ctx, "nGONE", None).await.unwrap().is_none());
    // Without remove_on_destroy the device is left alone; with it, it is removed.
    p.delete(&ctx, &created.id, &read).await.unwrap();
    assert_eq!(common::mutating(&server).await, 0);
    let d = p.diff(&spec().remove_on_destroy(true), &read);
    assert_eq!(d.action(), Action::Update);
    let updated = p.update(&ctx, &created.id, &spec().remove_on_destroy(true), &read).await.unwrap();
    assert!(updated.remove_on_destroy);
    assert_eq!(common::mutating(&server).await, 0, "the flag lives in stackup, not in Tailscale");
    p.delete(&ctx, &created.id, &updated).await.unwrap();
}

#[tokio::test]
async fn invalid_hostnames_and_tags_fail_before_any_call() {
    let server = MockServer::start().await;
    let p = provisioner(&server);
    for (s, field) in [
        (DeviceSpec::new("egograph.prod"), "hostname"),
        (DeviceSpec::new("egograph-prod").required_tags(["server"]), "required_tags[0]"),
        (DeviceSpec::new("egograph-prod").joined_after("yesterday"), "joined_after"),
    ] {
        let err = p.create(&Ctx::detached("host"), &s).await.unwrap_err();
        assert!(matches!(err.error, Error::InvalidInput { field: ref f, .. } if f == field), "{:?}", err.error);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn authorization_tags_and_key_expiry_are_set_once() {
    let server = MockServer::start().await;
    let dev = "/api/v2/device/nNEW1CNTRL";
    let mut after = new_device();
    after["authorized"] = json!(true);
    after["keyExpiryDisabled"] = json!(true);
    after["tags"] = json!(["tag:server", "tag:prod"]);
    // Before the changes, then after them.
    Mock::given(method("GET"))
        .and(path(dev))
        .respond_with(ResponseTemplate::new(200).set_body_json(new_device()))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(dev))
        .respond_with(ResponseTemplate::new(200).set_body_json(after))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{dev}/authorized")))
        .and(body_json(json!({"authorized": true})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{dev}/tags")))
        .and(body_json(json!({"tags": ["tag:prod", "tag:server"]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{dev}/key")))
        .and(body_json(json!({"keyExpiryDisabled": true})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = common::client(&server);
    let ctx = Ctx::detached("host_settings");
    let auth = DeviceAuthorizations::new(client.clone());
    let tags = DeviceTags::new(client.clone());
    let expiry = DeviceKeyExpiries::new(client);
    let a_spec = DeviceAuthorizationSpec::new("nNEW1CNTRL");
    let t_spec = DeviceTagsSpec::new("nNEW1CNTRL", ["tag:server", "tag:prod"]);
    let e_spec = DeviceKeyExpirySpec::disabled("nNEW1CNTRL");
    let a = auth.create(&ctx, &a_spec).await.unwrap();
    let t = tags.create(&ctx, &t_spec).await.unwrap();
    let e = expiry.create(&ctx, &e_spec).await.unwrap();
    assert_eq!(common::mutating(&server).await, 3);
    // Re-reading gives a no-op plan for each; creating again (adopting) makes no call.
    let a2 = auth.read(&ctx, &a.id, Some(&a.outputs)).await.unwrap().unwrap();
    let t2 = tags.read(&ctx, &t.id, Some(&t.outputs)).await.unwrap().unwrap();
    let e2 = expiry.read(&ctx, &e.id, Some(&e.outputs)).await.unwrap().unwrap();
    assert_eq!(auth.diff(&a_spec, &a2).action(), Action::NoOp);
    assert_eq!(tags.diff(&t_spec, &t2).action(), Action::NoOp);
    assert_eq!(expiry.diff(&e_spec, &e2).action(), Action::NoOp);
    tags.create(&ctx, &t_spec).await.unwrap();
    assert_eq!(common::mutating(&server).await, 3);
    // Destroying the settings leaves the device as it is.
    auth.delete(&ctx, &a.id, &a2).await.unwrap();
    tags.delete(&ctx, &t.id, &t2).await.unwrap();
    expiry.delete(&ctx, &e.id, &e2).await.unwrap();
    assert_eq!(common::mutating(&server).await, 3);
    // A tag missing from tagOwners is the API's 400, with its message.
    Mock::given(method("POST"))
        .and(path("/api/v2/device/nX/tags"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"message": "requested tags [tag:nope] are invalid or not permitted"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/device/nX"))
        .respond_with(ResponseTemplate::new(200).set_body_json(new_device()))
        .mount(&server)
        .await;
    let err = tags.create(&ctx, &DeviceTagsSpec::new("nX", ["tag:nope"])).await.unwrap_err();
    assert!(err.error.to_string().contains("not permitted"), "{}", err.error);
}
