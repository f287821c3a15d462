//! A stateful fake of the Tailscale API v2 (bodies shaped like its OpenAPI schemas) for the
//! recipe tests: keys, devices that join once a key carrying the server tag exists (and, in
//! cross-provider tests, once a gate such as "the VM is running" opens), DNS, the policy file
//! with ETags, and injected faults (429 with `Retry-After`, 5xx).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The tailnet's MagicDNS domain.
pub const TAILNET_DOMAIN: &str = "tail1234.ts.net";
/// The default policy of a new tailnet.
pub const DEFAULT_POLICY: &str =
    "// default\n{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:*\"]}]}";

/// A gate the join waits for (for example: the VM exists).
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

struct FaultRule {
    method: &'static str,
    path_contains: &'static str,
    status: u16,
    left: u32,
}

/// The tailnet's state.
#[derive(Default)]
pub struct Tailnet {
    /// Keys by id.
    pub keys: BTreeMap<String, Value>,
    /// Devices by nodeId.
    pub devices: BTreeMap<String, Value>,
    /// Keys ever created.
    pub keys_created: u32,
    /// Device list polls left before the pending server joins, the device, and the key it
    /// joins with (a single-use key turns invalid when it does, as Tailscale's do).
    pending_join: Option<(u32, Value, String)>,
    /// The server's hostname and tag (a key with this tag makes it join).
    pub server: Option<(String, String)>,
    /// Polls between the server key's creation and the join.
    pub join_after_polls: u32,
    gate: Option<Gate>,
    /// Nameservers.
    pub nameservers: Vec<String>,
    /// MagicDNS.
    pub magic_dns: bool,
    /// The policy file.
    pub policy: String,
    /// Its version (ETag `"v<n>"`).
    pub policy_version: u32,
    faults: Vec<FaultRule>,
    /// Refuse keys and device tags whose tags the policy's `tagOwners` lacks, as Tailscale does
    /// (400 "requested tags … are invalid or not permitted").
    pub enforce_tag_owners: bool,
    /// Faults answered so far.
    pub faults_served: u32,
}

/// The fake, shared with the responder.
#[derive(Clone, Default)]
pub struct FakeTailnet(pub Arc<Mutex<Tailnet>>);

fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({"message": "not found"}))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

impl FakeTailnet {
    /// Starts a server whose device `hostname` joins (tagged `tag`) two polls after a key with
    /// `tag` is created.
    pub async fn start(hostname: &str, tag: &str) -> (MockServer, FakeTailnet) {
        let server = MockServer::start().await;
        let fake = FakeTailnet::default();
        {
            let mut t = fake.0.lock().unwrap();
            t.policy = DEFAULT_POLICY.into();
            t.server = Some((hostname.to_owned(), tag.to_owned()));
            t.join_after_polls = 2;
        }
        Mock::given(path_regex("^/api/v2/")).respond_with(fake.clone()).mount(&server).await;
        (server, fake)
    }

    /// The tailnet's state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, Tailnet> {
        self.0.lock().unwrap()
    }

    /// The server joins only once `gate` returns true (and the polls have passed).
    pub fn join_gate(&self, gate: Gate) {
        self.state().gate = Some(gate);
    }

    /// The next `times` requests `method` whose path contains `path_contains` get `status`
    /// (429 with `Retry-After: 0`, or a 5xx).
    pub fn fault(&self, method: &'static str, path_contains: &'static str, status: u16, times: u32) {
        self.state().faults.push(FaultRule { method, path_contains, status, left: times });
    }
}

impl Respond for FakeTailnet {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut t = self.0.lock().unwrap();
        let path = req.url.path().to_owned();
        if let Some(f) = t
            .faults
            .iter_mut()
            .find(|f| f.left > 0 && f.method == req.method.as_str() && path.contains(f.path_contains))
        {
            f.left -= 1;
            let status = f.status;
            t.faults_served += 1;
            let r = ResponseTemplate::new(status).set_body_json(json!({"message": "injected fault"}));
            return if status == 429 { r.insert_header("retry-after", "0") } else { r };
        }
        let segs: Vec<String> = path.trim_start_matches("/api/v2/").split('/').map(str::to_owned).collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        if t.enforce_tag_owners {
            let tags = match (req.method.as_str(), segs.as_slice()) {
                ("POST", ["tailnet", "-", "keys"]) => body["capabilities"]["devices"]["create"]["tags"].clone(),
                ("POST", ["device", _, "tags"]) => body["tags"].clone(),
                _ => Value::Null,
            };
            let unowned: Vec<&str> = tags
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|tag| !owns_tag(&t.policy, tag))
                .collect();
            if !unowned.is_empty() {
                return ResponseTemplate::new(400).set_body_json(
                    json!({"message": format!("requested tags {unowned:?} are invalid or not permitted")}),
                );
            }
        }
        match (req.method.as_str(), segs.as_slice()) {
            ("POST", ["tailnet", "-", "keys"]) => {
                t.keys_created += 1;
                let id = format!("k{}CNTRL", t.keys_created);
                let create = body["capabilities"]["devices"]["create"].clone();
                let expiry = body["expirySeconds"].as_i64().unwrap_or(7_776_000);
                let key = json!({
                    "id": id, "keyType": "auth", "created": rfc3339(now),
                    "expires": rfc3339(now + time::Duration::seconds(expiry)),
                    "invalid": false, "expirySeconds": expiry, "description": body["description"],
                    "capabilities": {"devices": {"create": create}}, "userId": "u1"
                });
                t.keys.insert(id.clone(), key.clone());
                if let Some((host, tag)) = t.server.clone()
                    && create["tags"].as_array().is_some_and(|a| a.contains(&json!(tag)))
                {
                    let n = t.devices.len() + 1;
                    let device = json!({
                        "addresses": ["100.101.102.103", "fd7a:115c:a1e0::1"], "id": format!("5005{n}"),
                        "nodeId": format!("nHOST{n}CNTRL"), "name": format!("{host}.{TAILNET_DOMAIN}"),
                        "hostname": host, "os": "linux", "created": rfc3339(now + time::Duration::seconds(1)),
                        "connectedToControl": true, "keyExpiryDisabled": false, "expires": "2027-05-24T10:01:00Z",
                        "authorized": create["preauthorized"], "isExternal": false, "tags": create["tags"],
                        "isEphemeral": create["ephemeral"]
                    });
                    t.pending_join = Some((t.join_after_polls, device, id.clone()));
                }
                let mut reply = key;
                reply["key"] = json!(format!("tskey-auth-{id}-SECRETSECRET"));
                ok(reply)
            }
            ("GET", ["tailnet", "-", "keys"]) => {
                ok(json!({"keys": t.keys.keys().map(|id| json!({"id": id})).collect::<Vec<_>>()}))
            }
            ("GET", ["tailnet", "-", "keys", id]) => t.keys.get(*id).cloned().map(ok).unwrap_or_else(not_found),
            ("DELETE", ["tailnet", "-", "keys", id]) => {
                if t.keys.remove(*id).is_some() {
                    ResponseTemplate::new(200)
                } else {
                    not_found()
                }
            }
            ("GET", ["tailnet", "-", "devices"]) => {
                let open = t.gate.as_ref().is_none_or(|g| g());
                if open && let Some((left, device, key_id)) = t.pending_join.take() {
                    if left == 0 {
                        let id = device["nodeId"].as_str().unwrap().to_owned();
                        t.devices.insert(id, device);
                        if let Some(k) = t.keys.get_mut(&key_id)
                            && k["capabilities"]["devices"]["create"]["reusable"] != true
                        {
                            k["invalid"] = json!(true);
                        }
                    } else {
                        t.pending_join = Some((left - 1, device, key_id));
                    }
                }
                let host = req.url.query_pairs().find(|(k, _)| k == "hostname").map(|(_, v)| v.into_owned());
                let list: Vec<Value> = t
                    .devices
                    .values()
                    .filter(|d| host.as_deref().is_none_or(|h| d["hostname"] == h))
                    .cloned()
                    .collect();
                ok(json!({ "devices": list }))
            }
            ("GET", ["device", id]) => t.devices.get(*id).cloned().map(ok).unwrap_or_else(not_found),
            ("DELETE", ["device", id]) => {
                if t.devices.remove(*id).is_some() {
                    ResponseTemplate::new(200)
                } else {
                    not_found()
                }
            }
            ("POST", ["device", id, field]) => {
                let Some(d) = t.devices.get_mut(*id) else { return not_found() };
                match *field {
                    "key" => d["keyExpiryDisabled"] = body["keyExpiryDisabled"].clone(),
                    "authorized" => d["authorized"] = body["authorized"].clone(),
                    "tags" => d["tags"] = body["tags"].clone(),
                    other => return ResponseTemplate::new(400).set_body_json(json!({"message": other})),
                }
                ResponseTemplate::new(200)
            }
            ("GET", ["tailnet", "-", "dns", "nameservers"]) => ok(json!({"dns": t.nameservers})),
            ("POST", ["tailnet", "-", "dns", "nameservers"]) => {
                t.nameservers = serde_json::from_value(body["dns"].clone()).unwrap_or_default();
                ok(json!({"dns": t.nameservers, "magicDNS": t.magic_dns}))
            }
            ("GET", ["tailnet", "-", "dns", "searchpaths"]) => ok(json!({"searchPaths": []})),
            ("GET", ["tailnet", "-", "dns", "preferences"]) => ok(json!({"magicDNS": t.magic_dns})),
            ("POST", ["tailnet", "-", "dns", "preferences"]) => {
                t.magic_dns = body["magicDNS"].as_bool().unwrap_or(false);
                ok(json!({"magicDNS": t.magic_dns}))
            }
            ("GET", ["tailnet", "-", "acl"]) => ResponseTemplate::new(200)
                .insert_header("etag", format!("\"v{}\"", t.policy_version).as_str())
                .set_body_string(t.policy.clone()),
            ("POST", ["tailnet", "-", "acl", "validate"]) => ok(json!({})),
            ("POST", ["tailnet", "-", "acl"]) => {
                let if_match = req.headers.get("if-match").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let current = format!("\"v{}\"", t.policy_version);
                if if_match != current && !(if_match == "\"ts-default\"" && t.policy_version == 0) {
                    return ResponseTemplate::new(412)
                        .set_body_json(json!({"message": "precondition failed, invalid old hash"}));
                }
                t.policy = String::from_utf8(req.body.clone()).unwrap();
                t.policy_version += 1;
                ResponseTemplate::new(200)
                    .insert_header("etag", format!("\"v{}\"", t.policy_version).as_str())
                    .set_body_string(t.policy.clone())
            }
            _ => {
                ResponseTemplate::new(404).set_body_json(json!({"message": format!("no route {} {path}", req.method)}))
            }
        }
    }
}

/// True when `policy`'s `tagOwners` names `tag` (a textual check, enough for the policies the
/// tests write: `"tagOwners": { "tag:x": [...], ... }`).
fn owns_tag(policy: &str, tag: &str) -> bool {
    let Some(start) = policy.find("\"tagOwners\"") else { return false };
    let rest = &policy[start..];
    let end = rest.find('}').unwrap_or(rest.len());
    rest[..end].contains(&format!("\"{tag}\":"))
}
