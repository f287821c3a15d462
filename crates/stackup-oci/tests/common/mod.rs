//! A stateful fake of the OCI Core, Identity and Limits APIs for wiremock. It verifies the
//! signature of **every** request with the test public key (a bad one gets `401
//! NotAuthenticated` and is recorded), requires `opc-retry-token` on creates and honours it,
//! walks objects through their lifecycle states, answers 409 for deletes OCI would refuse, pages
//! lists, and injects faults (429, 5xx, lost responses, out of host capacity).

#![allow(dead_code, clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use stackup_core::retry::RetryPolicy;
use stackup_oci::testing::{
    TEST_KEY_FINGERPRINT, TEST_KEY_PKCS1, TEST_TENANCY, TEST_USER, test_public_key, verify_request,
};
use stackup_oci::{ApiKey, Credentials, KeyId, OciClient, Timing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub mod dropping_proxy;

pub const COMPARTMENT: &str = "ocid1.compartment.oc1..aaaaaaaatestcompartment";
pub const ADS: [&str; 3] = ["Uocm:PHX-AD-1", "Uocm:PHX-AD-2", "Uocm:PHX-AD-3"];
pub const IMAGE_NEW: &str = "ocid1.image.oc1.phx.ubuntu2404new";
pub const IMAGE_OLD: &str = "ocid1.image.oc1.phx.ubuntu2404old";
pub const IMAGE_MINIMAL: &str = "ocid1.image.oc1.phx.ubuntu2404minimal";
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test@stackup";

/// A fault injected into matching requests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and OCI error body.
    Status { status: u16, code: &'static str, message: &'static str, retry_after: Option<&'static str> },
    /// Process the request, then delay the response past the client's timeout (a lost response).
    Lost(Duration),
}

#[derive(Debug, Clone)]
struct FaultRule {
    method: &'static str,
    path_contains: &'static str,
    fault: Fault,
    remaining: u32,
}

#[derive(Debug, Clone)]
struct Obj {
    coll: String,
    value: Value,
    polls_left: u32,
}

/// One received request, after signature verification.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub retry_token: Option<String>,
    pub body: Value,
    pub status: u16,
}

#[derive(Default)]
pub struct State {
    objects: BTreeMap<String, Obj>,
    next: u64,
    tokens: HashMap<String, (String, Value)>,
    faults: Vec<FaultRule>,
    /// Launch failures left per AD (u32::MAX = never any capacity).
    pub capacity_failures: HashMap<String, u32>,
    /// ADs where an accepted launch terminates while provisioning (capacity failing late).
    pub terminate_after_launch: HashSet<String>,
    /// ADs that do not offer the shape at all.
    pub no_shape: HashSet<String>,
    /// Signature failures (must stay empty).
    pub sig_failures: Vec<String>,
    /// Every request.
    pub log: Vec<Logged>,
    /// List page size (forces pagination).
    pub page_size: usize,
    /// Limit values by name.
    pub limits: BTreeMap<String, f64>,
    /// Extra usage by limit name (beyond what live instances use).
    pub extra_used: BTreeMap<String, f64>,
    /// Polls before a created object is ready.
    pub ready_after: u32,
    /// Apply instance shape-config updates asynchronously, as OCI does (a work request that
    /// reboots the VM): the next GETs show the old config RUNNING, then STOPPING, STOPPED,
    /// STARTING, and only then RUNNING with the new config.
    pub async_resize: bool,
    /// Leave `sourceDetails.bootVolumeSizeInGBs` out of GetInstance answers (the service may).
    pub omit_boot_volume_size: bool,
}

#[derive(Clone)]
pub struct FakeOci(pub Arc<Mutex<State>>, Arc<stackup_oci::testing::PublicKey>);

fn err(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("opc-request-id", "fake-req-id")
        .set_body_json(json!({"code": code, "message": message}))
}

fn ok(v: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("opc-request-id", "fake-req-id")
        .insert_header("etag", "e1")
        .set_body_json(v)
}

fn q(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

impl FakeOci {
    pub fn new() -> Self {
        let mut s = State { page_size: 100, ready_after: 1, ..Default::default() };
        for (name, v) in [
            ("standard-a1-core-regional-count", 4.0),
            ("standard-a1-memory-regional-count", 24.0),
            ("total-free-storage-gb-regional", 200.0),
        ] {
            s.limits.insert(name.into(), v);
        }
        let images = [
            (IMAGE_MINIMAL, "Canonical-Ubuntu-24.04-Minimal-aarch64-2026.10.01-0", "2026-10-01T00:00:00Z"),
            (IMAGE_NEW, "Canonical-Ubuntu-24.04-aarch64-2026.09.18-0", "2026-09-18T00:00:00Z"),
            (IMAGE_OLD, "Canonical-Ubuntu-24.04-aarch64-2026.06.01-0", "2026-06-01T00:00:00Z"),
        ];
        for (id, name, created) in images {
            s.objects.insert(
                id.into(),
                Obj {
                    coll: "images".into(),
                    value: json!({"id": id, "displayName": name, "operatingSystem": "Canonical Ubuntu",
                        "operatingSystemVersion": "24.04", "lifecycleState": "AVAILABLE", "timeCreated": created,
                        "compartmentId": null}),
                    polls_left: 0,
                },
            );
        }
        FakeOci(Arc::new(Mutex::new(s)), Arc::new(test_public_key()))
    }

    pub async fn start() -> (MockServer, FakeOci) {
        let server = MockServer::start().await;
        let fake = FakeOci::new();
        Mock::given(wiremock::matchers::any()).respond_with(fake.clone()).mount(&server).await;
        (server, fake)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    pub fn fault(&self, method: &'static str, path_contains: &'static str, fault: Fault, times: u32) {
        self.state().faults.push(FaultRule { method, path_contains, fault, remaining: times });
    }

    /// Live (not terminated) objects of a collection.
    pub fn live(&self, coll: &str) -> Vec<Value> {
        self.state()
            .objects
            .values()
            .filter(|o| o.coll == coll && !matches!(o.value["lifecycleState"].as_str(), Some("TERMINATED")))
            .map(|o| o.value.clone())
            .collect()
    }

    /// Requests whose method mutates (POST except read-only queries, PUT, DELETE).
    pub fn mutating(&self) -> Vec<Logged> {
        self.state().log.iter().filter(|l| matches!(l.method.as_str(), "POST" | "PUT" | "DELETE")).cloned().collect()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    pub fn assert_all_signed(&self) {
        let s = self.state();
        assert!(s.sig_failures.is_empty(), "signature failures: {:?}", s.sig_failures);
        assert!(!s.log.is_empty());
    }
}

fn id_prefix(coll: &str) -> &'static str {
    match coll {
        "vcns" => "vcn",
        "internetGateways" => "internetgateway",
        "routeTables" => "routetable",
        "securityLists" => "securitylist",
        "subnets" => "subnet",
        "instances" => "instance",
        "vnicAttachments" => "vnicattachment",
        "vnics" => "vnic",
        _ => "thing",
    }
}

fn ready_state(coll: &str) -> &'static str {
    if coll == "instances" { "RUNNING" } else { "AVAILABLE" }
}

fn required(coll: &str, b: &Value) -> Result<(), String> {
    let need: &[&str] = match coll {
        "vcns" => &["/compartmentId", "/cidrBlocks"],
        "internetGateways" => &["/compartmentId", "/vcnId", "/isEnabled"],
        "routeTables" => &["/compartmentId", "/vcnId", "/routeRules"],
        "securityLists" => &["/compartmentId", "/vcnId", "/ingressSecurityRules", "/egressSecurityRules"],
        "subnets" => &["/compartmentId", "/vcnId", "/cidrBlock"],
        "instances" => &[
            "/availabilityDomain",
            "/compartmentId",
            "/shape",
            "/sourceDetails/sourceType",
            "/sourceDetails/imageId",
            "/createVnicDetails/subnetId",
        ],
        _ => &[],
    };
    for p in need {
        if b.pointer(p).is_none() {
            return Err(format!("{p} is required"));
        }
    }
    if coll == "instances"
        && b["shape"].as_str().is_some_and(|s| s.ends_with(".Flex"))
        && (b.pointer("/shapeConfig/ocpus").is_none() || b.pointer("/shapeConfig/memoryInGBs").is_none())
    {
        return Err("shapeConfig.ocpus and shapeConfig.memoryInGBs are required for Flex shapes".into());
    }
    Ok(())
}

impl State {
    fn new_id(&mut self, coll: &str) -> String {
        self.next += 1;
        format!("ocid1.{}.oc1.phx.fake{:04}", id_prefix(coll), self.next)
    }

    fn insert(&mut self, coll: &str, value: Value, polls: u32) -> Value {
        let id = value["id"].as_str().unwrap().to_owned();
        self.objects.insert(id, Obj { coll: coll.into(), value: value.clone(), polls_left: polls });
        value
    }

    fn live_in(&self, coll: &str) -> impl Iterator<Item = &Value> {
        self.objects
            .values()
            .filter(move |o| {
                o.coll == coll && !matches!(o.value["lifecycleState"].as_str(), Some("TERMINATED" | "TERMINATING"))
            })
            .map(|o| &o.value)
    }

    fn create(&mut self, coll: &str, body: &Value) -> Result<Value, ResponseTemplate> {
        required(coll, body).map_err(|m| err(400, "InvalidParameter", &m))?;
        let id = self.new_id(coll);
        let mut v = body.clone();
        v["id"] = json!(id);
        v["lifecycleState"] = json!("PROVISIONING");
        v["timeCreated"] = json!("2026-11-25T17:00:00Z");
        if v.get("freeformTags").is_none() {
            v["freeformTags"] = json!({});
        }
        match coll {
            "vcns" => {
                let rt = self.new_id("routeTables");
                let sl = self.new_id("securityLists");
                v["defaultRouteTableId"] = json!(rt);
                v["defaultSecurityListId"] = json!(sl);
                v["defaultDhcpOptionsId"] = json!(format!("ocid1.dhcpoptions.oc1.phx.fake{}", self.next));
                let cid = v["compartmentId"].clone();
                self.insert(
                    "routeTables",
                    json!({"id": rt, "compartmentId": cid, "vcnId": id, "displayName": "Default Route Table",
                        "routeRules": [], "lifecycleState": "AVAILABLE", "freeformTags": {}, "isDefault": true}),
                    0,
                );
                self.insert(
                    "securityLists",
                    json!({"id": sl, "compartmentId": cid, "vcnId": id, "displayName": "Default Security List",
                        "ingressSecurityRules": [{"protocol": "6", "source": "0.0.0.0/0", "sourceType": "CIDR_BLOCK",
                            "isStateless": false, "tcpOptions": {"destinationPortRange": {"min": 22, "max": 22}}}],
                        "egressSecurityRules": [{"protocol": "all", "destination": "0.0.0.0/0",
                            "destinationType": "CIDR_BLOCK", "isStateless": false}],
                        "lifecycleState": "AVAILABLE", "freeformTags": {}, "isDefault": true}),
                    0,
                );
            }
            "subnets" => {
                let vcn = self.objects.get(v["vcnId"].as_str().unwrap_or_default()).map(|o| o.value.clone());
                let Some(vcn) = vcn else { return Err(err(404, "NotAuthorizedOrNotFound", "VCN not found")) };
                if v.get("routeTableId").is_none() {
                    v["routeTableId"] = vcn["defaultRouteTableId"].clone();
                }
                if v.get("securityListIds").is_none() {
                    v["securityListIds"] = json!([vcn["defaultSecurityListId"]]);
                }
                v["virtualRouterIp"] = json!("10.0.0.1");
            }
            "internetGateways" => {
                v["isEnabled"] = body["isEnabled"].clone();
            }
            "instances" => {
                let ad = v["availabilityDomain"].as_str().unwrap_or_default().to_owned();
                if self.no_shape.contains(&ad) {
                    return Err(err(404, "NotAuthorizedOrNotFound", "Shape VM.Standard.A1.Flex not found"));
                }
                if let Some(n) = self.capacity_failures.get_mut(&ad)
                    && *n > 0
                {
                    *n = n.saturating_sub(if *n == u32::MAX { 0 } else { 1 });
                    return Err(err(500, "InternalError", "Out of host capacity."));
                }
                let subnet = v["createVnicDetails"]["subnetId"].as_str().unwrap_or_default().to_owned();
                if !self.objects.contains_key(&subnet) {
                    return Err(err(404, "NotAuthorizedOrNotFound", "subnet not found"));
                }
                v["imageId"] = v["sourceDetails"]["imageId"].clone();
                if self.terminate_after_launch.remove(&ad) {
                    v["_doomed"] = json!(true);
                }
                if v.get("faultDomain").is_none() {
                    v["faultDomain"] = json!("FAULT-DOMAIN-2");
                }
                v["region"] = json!("phx");
                let vnic = self.new_id("vnics");
                let att = self.new_id("vnicAttachments");
                let public = v["createVnicDetails"]["assignPublicIp"].as_bool().unwrap_or(true);
                self.insert(
                    "vnics",
                    json!({"id": vnic, "isPrimary": true, "privateIp": "10.0.0.17", "subnetId": subnet,
                        "publicIp": if public { json!("203.0.113.7") } else { Value::Null },
                        "lifecycleState": "AVAILABLE"}),
                    0,
                );
                self.insert(
                    "vnicAttachments",
                    json!({"id": att, "instanceId": id, "vnicId": vnic, "subnetId": subnet,
                        "compartmentId": v["compartmentId"], "availabilityDomain": ad, "lifecycleState": "ATTACHED"}),
                    0,
                );
                v.as_object_mut().unwrap().remove("createVnicDetails");
            }
            _ => {}
        }
        let polls = self.ready_after;
        Ok(self.insert(coll, v, polls))
    }

    fn get(&mut self, id: &str) -> Option<Value> {
        let o = self.objects.get_mut(id)?;
        if let Some(step) = o.value.get("_resizeStep").and_then(Value::as_u64) {
            let state = ["RUNNING", "STOPPING", "STOPPED", "STARTING"].get(step as usize).copied();
            match state {
                Some(st) => {
                    o.value["lifecycleState"] = json!(st);
                    o.value["_resizeStep"] = json!(step + 1);
                }
                None => {
                    let obj = o.value.as_object_mut().unwrap();
                    obj.remove("_resizeStep");
                    let cfg = obj.remove("_resizeTo").unwrap_or(Value::Null);
                    obj.insert("shapeConfig".into(), cfg);
                    obj.insert("lifecycleState".into(), json!("RUNNING"));
                }
            }
            return Some(o.value.clone());
        }
        let state = o.value["lifecycleState"].as_str().unwrap_or_default().to_owned();
        let out = o.value.clone();
        match state.as_str() {
            "PROVISIONING" => {
                if o.value["_doomed"] == json!(true) {
                    o.value["lifecycleState"] = json!("TERMINATED");
                    return Some(o.value.clone());
                }
                if o.polls_left == 0 {
                    o.value["lifecycleState"] = json!(ready_state(&o.coll));
                    return Some(o.value.clone());
                }
                o.polls_left -= 1;
            }
            "TERMINATING" => o.value["lifecycleState"] = json!("TERMINATED"),
            "TERMINATED" => {
                self.objects.remove(id);
            }
            _ => {}
        }
        Some(out)
    }

    fn refuse_delete(&self, coll: &str, id: &str) -> Option<String> {
        let refs = |c: &str, f: &dyn Fn(&Value) -> bool| self.live_in(c).any(f);
        match coll {
            "subnets" => refs("instances", &|v| {
                self.live_in("vnicAttachments").any(|a| a["instanceId"] == v["id"] && a["subnetId"] == json!(id))
            })
            .then(|| "The Subnet has VNICs attached".into()),
            "internetGateways" => refs("routeTables", &|v| {
                v["routeRules"].as_array().is_some_and(|r| r.iter().any(|r| r["networkEntityId"] == json!(id)))
            })
            .then(|| "The Internet Gateway is referenced by a route rule".into()),
            "routeTables" | "securityLists" => {
                if self.objects.get(id).is_some_and(|o| o.value["isDefault"] == json!(true)) {
                    return Some("a VCN's default object cannot be deleted".into());
                }
                refs("subnets", &|v| {
                    v["routeTableId"] == json!(id)
                        || v["securityListIds"].as_array().is_some_and(|a| a.contains(&json!(id)))
                })
                .then(|| "in use by a subnet".into())
            }
            "vcns" => {
                let busy = ["subnets", "internetGateways"].iter().any(|c| refs(c, &|v| v["vcnId"] == json!(id)))
                    || ["routeTables", "securityLists"]
                        .iter()
                        .any(|c| refs(c, &|v| v["vcnId"] == json!(id) && v["isDefault"] != json!(true)));
                busy.then(|| "The VCN has dependent resources".into())
            }
            _ => None,
        }
    }

    fn delete(&mut self, coll: &str, id: &str) -> ResponseTemplate {
        if !self.objects.contains_key(id) {
            return err(404, "NotAuthorizedOrNotFound", "not found");
        }
        if let Some(m) = self.refuse_delete(coll, id) {
            return err(409, "Conflict", &m);
        }
        let o = self.objects.get_mut(id).unwrap();
        if o.value["lifecycleState"] != json!("TERMINATED") {
            o.value["lifecycleState"] = json!("TERMINATING");
        }
        if coll == "instances" {
            let atts: Vec<String> = self
                .live_in("vnicAttachments")
                .filter(|a| a["instanceId"] == json!(id))
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect();
            for a in atts {
                if let Some(att) = self.objects.remove(&a) {
                    self.objects.remove(att.value["vnicId"].as_str().unwrap_or_default());
                }
            }
        }
        ResponseTemplate::new(204).insert_header("opc-request-id", "fake-req-id")
    }

    fn list(&self, coll: &str, query: &HashMap<String, String>) -> ResponseTemplate {
        let filters =
            ["compartmentId", "vcnId", "displayName", "instanceId", "operatingSystem", "operatingSystemVersion"];
        let mut items: Vec<Value> = self
            .objects
            .values()
            .filter(|o| o.coll == coll)
            .map(|o| o.value.clone())
            .filter(|v| {
                filters.iter().all(|f| match query.get(*f) {
                    Some(want) if !(coll == "images" && *f == "compartmentId") => v[*f].as_str() == Some(want),
                    _ => true,
                })
            })
            .collect();
        if coll == "images" {
            items.sort_by(|a, b| b["timeCreated"].as_str().cmp(&a["timeCreated"].as_str()));
        }
        let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100).min(self.page_size);
        let start: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
        let mut r = ok(&Value::Array(page));
        if start + limit < items.len() {
            r = r.insert_header("opc-next-page", (start + limit).to_string().as_str());
        }
        r
    }

    fn limits(&self, path: &[&str], query: &HashMap<String, String>) -> ResponseTemplate {
        match path {
            ["limitValues"] => {
                let name = query.get("name").cloned().unwrap_or_default();
                let v: Vec<Value> = self
                    .limits
                    .iter()
                    .filter(|(n, _)| n.as_str() == name)
                    .flat_map(|(n, v)| {
                        if n.contains("regional") || n.starts_with("total-") {
                            vec![json!({"name": n, "scopeType": "REGION", "value": v})]
                        } else {
                            // Per-AD limits: one value per availability domain.
                            ADS.iter()
                                .map(|ad| json!({"name": n, "scopeType": "AD", "availabilityDomain": ad, "value": v}))
                                .collect()
                        }
                    })
                    .collect();
                ok(&Value::Array(v))
            }
            ["services", _svc, "limits", name, "resourceAvailability"] => {
                let Some(limit) = self.limits.get(*name) else {
                    return err(404, "NotAuthorizedOrNotFound", "no such limit");
                };
                let per_ad = !(name.contains("regional") || name.starts_with("total-"));
                let ad = query.get("availabilityDomain").cloned();
                if per_ad != ad.is_some() {
                    return err(400, "InvalidParameter", "availabilityDomain is required exactly for AD-scoped limits");
                }
                let a1 = self.live_in("instances").filter(|i| {
                    i["shape"] == json!("VM.Standard.A1.Flex")
                        && ad.as_deref().is_none_or(|a| i["availabilityDomain"].as_str() == Some(a))
                });
                let extra = if ad.as_deref().is_none_or(|a| a == ADS[0]) {
                    self.extra_used.get(*name).copied().unwrap_or(0.0)
                } else {
                    0.0
                };
                let live_use: f64 = match *name {
                    "standard-a1-core-count" => a1.map(|i| i["shapeConfig"]["ocpus"].as_f64().unwrap_or(0.0)).sum(),
                    "standard-a1-memory-count" => {
                        a1.map(|i| i["shapeConfig"]["memoryInGBs"].as_f64().unwrap_or(0.0)).sum()
                    }
                    "standard-a1-core-regional-count" => {
                        a1.map(|i| i["shapeConfig"]["ocpus"].as_f64().unwrap_or(0.0)).sum()
                    }
                    "standard-a1-memory-regional-count" => {
                        a1.map(|i| i["shapeConfig"]["memoryInGBs"].as_f64().unwrap_or(0.0)).sum()
                    }
                    "total-free-storage-gb-regional" => self
                        .live_in("instances")
                        .map(|i| i["sourceDetails"]["bootVolumeSizeInGBs"].as_f64().unwrap_or(47.0))
                        .sum(),
                    _ => 0.0,
                };
                let used = live_use + extra;
                ok(&json!({"used": used, "available": (limit - used).max(0.0)}))
            }
            _ => err(404, "NotFound", "unknown limits path"),
        }
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
        body: &Value,
        token: Option<&str>,
    ) -> ResponseTemplate {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segs.as_slice() {
            ["20190729", rest @ ..] if method == "GET" => self.limits(rest, query),
            ["20160918", "availabilityDomains"] => {
                ok(&Value::Array(ADS.iter().map(|a| json!({"name": a, "compartmentId": TEST_TENANCY})).collect()))
            }
            ["20160918", coll] if method == "POST" => {
                let Some(token) = token else {
                    return err(400, "MissingRetryToken", "creates must carry opc-retry-token in these tests");
                };
                let body_key = body.to_string();
                if let Some((b, resp)) = self.tokens.get(token) {
                    return if *b == body_key {
                        ok(resp)
                    } else {
                        err(409, "Conflict", "retry token reused with a different request")
                    };
                }
                match self.create(coll, body) {
                    Ok(v) => {
                        self.tokens.insert(token.to_owned(), (body_key, v.clone()));
                        ok(&v)
                    }
                    Err(r) => r,
                }
            }
            ["20160918", coll] if method == "GET" => self.list(coll, query),
            ["20160918", coll, id] if method == "GET" => match self.get(id) {
                Some(mut v) => {
                    if *coll == "instances"
                        && self.omit_boot_volume_size
                        && let Some(sd) = v.get_mut("sourceDetails").and_then(Value::as_object_mut)
                    {
                        sd.remove("bootVolumeSizeInGBs");
                    }
                    ok(&v)
                }
                None => err(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found."),
            },
            ["20160918", coll, id] if method == "PUT" => {
                let async_resize = self.async_resize;
                let Some(o) = self.objects.get_mut(*id) else {
                    return err(404, "NotAuthorizedOrNotFound", "not found");
                };
                let mut body = body.clone();
                if *coll == "instances"
                    && async_resize
                    && let Some(cfg) = body.as_object_mut().unwrap().remove("shapeConfig")
                {
                    o.value["_resizeTo"] = cfg;
                    o.value["_resizeStep"] = json!(0);
                }
                for (k, v) in body.as_object().unwrap() {
                    o.value[k] = v.clone();
                }
                ok(&o.value.clone())
            }
            ["20160918", coll, id] if method == "DELETE" => {
                if *coll == "instances" && query.get("preserveBootVolume").map(String::as_str) != Some("false") {
                    return err(400, "InvalidParameter", "these tests expect preserveBootVolume=false");
                }
                self.delete(coll, id)
            }
            _ => err(404, "NotFound", &format!("fake has no route for {method} {path}")),
        }
    }
}

impl Respond for FakeOci {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let method = req.method.as_str().to_owned();
        let path = req.url.path().to_owned();
        let query = req.url.query().unwrap_or_default().to_owned();
        let target = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        let headers = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut s = self.0.lock().unwrap();
        if let Err(e) = verify_request(&self.1, &method, &target, &headers, &req.body) {
            s.sig_failures.push(format!("{method} {target}: {e}"));
            return err(
                401,
                "NotAuthenticated",
                "The required information to complete authentication was not provided or was incorrect.",
            );
        }
        let body: Value =
            if req.body.is_empty() { Value::Null } else { serde_json::from_slice(&req.body).unwrap_or(Value::Null) };
        let token = headers("opc-retry-token");
        let mut logged = Logged {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            retry_token: token.clone(),
            body: body.clone(),
            status: 0,
        };
        let mut fault = None;
        if let Some(f) =
            s.faults.iter_mut().find(|f| f.remaining > 0 && f.method == method && path.contains(f.path_contains))
        {
            f.remaining -= 1;
            fault = Some(f.fault.clone());
        }
        let resp = match fault {
            Some(Fault::Status { status, code, message, retry_after }) => {
                logged.status = status;
                s.log.push(logged);
                let mut r = err(status, code, message);
                if let Some(ra) = retry_after {
                    r = r.insert_header("retry-after", ra);
                }
                return r;
            }
            Some(Fault::Lost(d)) => s.route(&method, &path, &q(&query), &body, token.as_deref()).set_delay(d),
            None => s.route(&method, &path, &q(&query), &body, token.as_deref()),
        };
        logged.status = 0;
        s.log.push(logged);
        resp
    }
}

/// Credentials for the test key.
pub fn credentials() -> Credentials {
    Credentials {
        key: ApiKey::from_pem(TEST_KEY_PKCS1, "test key").unwrap(),
        key_id: KeyId::ApiKey {
            tenancy: TEST_TENANCY.into(),
            user: TEST_USER.into(),
            fingerprint: TEST_KEY_FINGERPRINT.into(),
        },
        tenancy: TEST_TENANCY.into(),
        region: Some("us-phoenix-1".into()),
    }
}

/// A client pointed at the fake, with fast retries and polls.
pub fn client(server: &MockServer) -> OciClient {
    OciClient::builder()
        .credentials(credentials())
        .all_endpoints(server.uri())
        .retry_policy(RetryPolicy::fast())
        .timing(Timing::fast())
        .request_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}
