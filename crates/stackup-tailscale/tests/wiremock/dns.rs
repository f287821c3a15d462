//! `DnsSettings` against a stateful fake of `/tailnet/{tailnet}/dns/*` that enforces the
//! documented coupling: MagicDNS needs a nameserver, and removing them all turns it off.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use stackup_core::{Action, Ctx, Error, Provisioner};
use stackup_tailscale::{DnsSettings, DnsSpec};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common;

#[derive(Debug, Default)]
struct Dns {
    nameservers: Vec<String>,
    search_paths: Vec<String>,
    magic_dns: bool,
}

#[derive(Clone, Default)]
struct FakeDns(Arc<Mutex<Dns>>);

impl Respond for FakeDns {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut d = self.0.lock().unwrap();
        let part = req.url.path().rsplit('/').next().unwrap().to_owned();
        let body: Value = if req.body.is_empty() { Value::Null } else { serde_json::from_slice(&req.body).unwrap() };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
        };
        let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
        match (req.method.as_str(), part.as_str()) {
            ("GET", "nameservers") => ok(json!({"dns": d.nameservers})),
            ("POST", "nameservers") => {
                d.nameservers = strings(&body["dns"]);
                if d.nameservers.is_empty() {
                    d.magic_dns = false;
                }
                ok(json!({"dns": d.nameservers, "magicDNS": d.magic_dns}))
            }
            ("GET", "searchpaths") => ok(json!({"searchPaths": d.search_paths})),
            ("POST", "searchpaths") => {
                d.search_paths = strings(&body["searchPaths"]);
                ok(json!({"searchPaths": d.search_paths}))
            }
            ("GET", "preferences") => ok(json!({"magicDNS": d.magic_dns})),
            ("POST", "preferences") => {
                let on = body["magicDNS"].as_bool().unwrap();
                if on && d.nameservers.is_empty() {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"message": "need at least one nameserver to enable MagicDNS"}));
                }
                d.magic_dns = on;
                ok(json!({"magicDNS": d.magic_dns}))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn setup() -> (MockServer, FakeDns, DnsSettings) {
    let server = MockServer::start().await;
    let fake = FakeDns::default();
    Mock::given(path_regex("^/api/v2/tailnet/-/dns/(nameservers|searchpaths|preferences)$"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let p = DnsSettings::new(common::client(&server));
    (server, fake, p)
}

async fn posts(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| r.url.path().rsplit('/').next().unwrap().to_owned())
        .collect()
}

fn spec() -> DnsSpec {
    DnsSpec::new().nameservers(["1.1.1.1", "8.8.8.8"]).search_paths(["corp.example.com"]).magic_dns(true)
}

#[tokio::test]
async fn create_sets_nameservers_before_magic_dns_then_is_a_no_op() {
    let (server, fake, p) = setup().await;
    let ctx = Ctx::detached("dns");
    let created = p.create(&ctx, &spec()).await.unwrap();
    assert_eq!(posts(&server).await, ["nameservers", "searchpaths", "preferences"]);
    assert!(fake.0.lock().unwrap().magic_dns);
    let read = p.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    assert_eq!(read, created.outputs);
    assert_eq!(p.diff(&spec(), &read).action(), Action::NoOp);
    // Creating again (adopting existing settings) writes nothing.
    p.create(&ctx, &spec()).await.unwrap();
    assert_eq!(posts(&server).await.len(), 3);
}

#[tokio::test]
async fn update_writes_only_what_differs_and_unmanaged_parts_are_left_alone() {
    let (server, fake, p) = setup().await;
    let ctx = Ctx::detached("dns");
    let created = p.create(&ctx, &spec()).await.unwrap();
    let changed = spec().search_paths(["corp.example.com", "lab.example.com"]);
    let d = p.diff(&changed, &created.outputs);
    assert_eq!(d.action(), Action::Update);
    assert_eq!(d.changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["search_paths"]);
    p.update(&ctx, &created.id, &changed, &created.outputs).await.unwrap();
    assert_eq!(posts(&server).await[3..], ["searchpaths"]);
    // Only MagicDNS managed: someone else's nameservers are not compared.
    fake.0.lock().unwrap().nameservers.push("9.9.9.9".into());
    let only_magic = DnsSpec::new().magic_dns(true);
    let read = p.read(&ctx, "-", Some(&created.outputs)).await.unwrap().unwrap();
    let d = p.diff(&only_magic, &read);
    assert!(d.changes.iter().all(|c| c.path == "managed"), "{d:?}");
}

#[tokio::test]
async fn destroy_resets_managed_parts_in_a_valid_order_or_keeps_them() {
    let (server, fake, p) = setup().await;
    let ctx = Ctx::detached("dns");
    let created = p.create(&ctx, &spec()).await.unwrap();
    p.delete(&ctx, &created.id, &created.outputs).await.unwrap();
    assert_eq!(posts(&server).await[3..], ["preferences", "nameservers", "searchpaths"]);
    {
        let d = fake.0.lock().unwrap();
        assert!(d.nameservers.is_empty() && d.search_paths.is_empty() && !d.magic_dns);
    }
    let kept = p.create(&ctx, &spec().keep_on_destroy(true)).await.unwrap();
    let before = posts(&server).await.len();
    p.delete(&ctx, &kept.id, &kept.outputs).await.unwrap();
    assert_eq!(posts(&server).await.len(), before);
    assert!(fake.0.lock().unwrap().magic_dns);
}

#[tokio::test]
async fn invalid_settings_fail_before_any_call() {
    let (server, _fake, p) = setup().await;
    let ctx = Ctx::detached("dns");
    for (s, field) in [
        (DnsSpec::new().nameservers(Vec::<String>::new()).magic_dns(true), "magic_dns"),
        (DnsSpec::new().nameservers(["dns.google"]), "nameservers[0]"),
        (DnsSpec::new().search_paths(["bad domain"]), "search_paths[0]"),
        (DnsSpec::new(), "dns"),
    ] {
        let err = p.create(&ctx, &s).await.unwrap_err();
        assert!(matches!(err.error, Error::InvalidInput { field: ref f, .. } if f == field), "{:?}", err.error);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}
