//! A stateful fake of Azure Resource Manager on wiremock, answering with bodies and headers
//! shaped like the official `x-ms-examples` (azure-rest-api-specs): resource groups (sync PUT,
//! 202 + `Location` DELETE), storage accounts (202 + `Location` + `Retry-After` PUT, listKeys,
//! regenerateKey, checkNameAvailability), file shares and snapshots, blob containers,
//! management policies, and network/compute resources (201 + `Azure-AsyncOperation`).
//! Faults can be queued: throttling, 5xx, and long-running operations that fail.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const SUB: &str = "00000000-0000-0000-0000-000000000001";

/// A queued fault for the next request matching `method` and a path substring.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<&'static str>,
    pub path_contains: String,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

#[derive(Debug, Clone)]
struct Operation {
    /// Polls that still answer "in progress".
    remaining: u32,
    /// Terminal status once done.
    outcome: Result<(), (String, String)>,
    /// Resource to finalize (provisioningState Succeeded) or delete when done.
    resource: String,
    delete: bool,
    canceled: bool,
}

#[derive(Debug, Default)]
pub struct State {
    pub resources: BTreeMap<String, Value>,
    pub snapshots: BTreeMap<String, Vec<String>>,
    ops: BTreeMap<String, Operation>,
    pub log: Vec<(String, String)>,
    faults: VecDeque<Fault>,
    /// Failures to inject into the next long-running operation whose resource path contains the key.
    op_failures: Vec<(String, String, String, bool)>,
    pub taken_names: Vec<String>,
    next: u64,
    /// How many polls an operation stays in progress.
    pub op_polls: u32,
    pub keys: BTreeMap<String, (String, String)>,
    pub base: String,
}

#[derive(Clone)]
pub struct FakeArm {
    pub server: Arc<MockServer>,
    pub state: Arc<Mutex<State>>,
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        st.handle(req)
    }
}

impl FakeArm {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State { op_polls: 1, base: server.uri(), ..Default::default() }));
        Mock::given(wiremock::matchers::any()).respond_with(Responder(state.clone())).mount(&server).await;
        FakeArm { server: Arc::new(server), state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn fault(
        &self,
        method: Option<&'static str>,
        path_contains: &str,
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    ) {
        self.state.lock().unwrap().faults.push_back(Fault {
            method,
            path_contains: path_contains.to_owned(),
            status,
            headers,
            body,
        });
    }

    /// The next long-running operation on a resource whose path contains `path_contains` ends
    /// `Failed` (or `Canceled`) with this ARM error.
    pub fn fail_next_operation(&self, path_contains: &str, code: &str, message: &str, canceled: bool) {
        self.state.lock().unwrap().op_failures.push((
            path_contains.to_owned(),
            code.to_owned(),
            message.to_owned(),
            canceled,
        ));
    }

    pub fn log(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// PUT, PATCH, DELETE and regenerateKey calls recorded.
    pub fn mutating_calls(&self) -> Vec<(String, String)> {
        self.log()
            .into_iter()
            .filter(|(m, p)| matches!(m.as_str(), "PUT" | "PATCH" | "DELETE") || p.ends_with("/regeneratekey"))
            .collect()
    }

    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        let suffix = path_suffix.to_ascii_lowercase();
        self.log().iter().filter(|(m, p)| m == method && p.ends_with(&suffix)).count()
    }

    pub fn resource(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().resources.get(&path.to_ascii_lowercase()).cloned()
    }

    pub fn resource_count(&self) -> usize {
        self.state.lock().unwrap().resources.len()
    }

    pub fn set_resource(&self, path: &str, body: Value) {
        self.state.lock().unwrap().resources.insert(path.to_ascii_lowercase(), body);
    }

    pub fn rg_path(rg: &str) -> String {
        format!("/subscriptions/{SUB}/resourceGroups/{rg}")
    }

    pub fn account_path(rg: &str, acct: &str) -> String {
        format!("{}/providers/Microsoft.Storage/storageAccounts/{acct}", Self::rg_path(rg))
    }
}

fn arm_error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"error": {"code": code, "message": message}}))
}

/// Resource kinds the fake distinguishes, by the path after `/providers/`.
#[derive(Debug, PartialEq)]
enum Kind {
    ResourceGroup,
    StorageAccount,
    Share,
    ShareList,
    Container,
    ManagementPolicy,
    Network,
    Compute,
    Other,
}

fn kind_of(path: &str) -> Kind {
    let p = path.to_ascii_lowercase();
    let segs: Vec<&str> = p.trim_matches('/').split('/').collect();
    if segs.len() == 4 && segs[2] == "resourcegroups" {
        return Kind::ResourceGroup;
    }
    if p.contains("/providers/microsoft.storage/storageaccounts/") {
        if p.ends_with("/fileservices/default/shares") {
            return Kind::ShareList;
        }
        if p.contains("/fileservices/default/shares/") {
            return Kind::Share;
        }
        if p.contains("/blobservices/default/containers/") {
            return Kind::Container;
        }
        if p.ends_with("/managementpolicies/default") {
            return Kind::ManagementPolicy;
        }
        if segs.len() == 8 {
            return Kind::StorageAccount;
        }
    }
    if p.contains("/providers/microsoft.network/") {
        return Kind::Network;
    }
    if p.contains("/providers/microsoft.compute/") {
        return Kind::Compute;
    }
    Kind::Other
}

fn parent_of(path: &str) -> Option<String> {
    // The resource group, or for nested resources the enclosing top-level resource.
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segs.len() <= 4 {
        return None;
    }
    if segs.len() <= 8 {
        return Some(format!("/{}", segs[..4].join("/")));
    }
    Some(format!("/{}", segs[..8].join("/")))
}

impl State {
    fn id(&mut self) -> String {
        self.next += 1;
        format!("{:08x}-0000-4000-8000-{:012x}", self.next, self.next)
    }

    fn respond(&mut self, status: u16, body: Option<Value>, headers: Vec<(&str, String)>) -> ResponseTemplate {
        let rid = self.id();
        let mut t = ResponseTemplate::new(status)
            .insert_header("x-ms-request-id", rid.as_str())
            .insert_header("x-ms-correlation-request-id", format!("corr-{rid}").as_str());
        for (k, v) in headers {
            t = t.insert_header(k, v.as_str());
        }
        match body {
            Some(b) => t.set_body_raw(b.to_string().into_bytes(), "application/json; charset=utf-8"),
            None => t,
        }
    }

    fn error(&mut self, (status, body): (u16, Value)) -> ResponseTemplate {
        let code = body.pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_owned();
        self.respond(status, Some(body), vec![("x-ms-error-code", code)])
    }

    fn handle(&mut self, req: &Request) -> ResponseTemplate {
        let method = req.method.as_str().to_owned();
        let path = req.url.path().to_owned();
        let lpath = path.to_ascii_lowercase();
        self.log.push((method.clone(), lpath.clone()));
        if !req.headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer ")) {
            return self.error(arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            ));
        }
        if let Some(i) = self
            .faults
            .iter()
            .position(|f| f.method.is_none_or(|m| m == method) && lpath.contains(&f.path_contains.to_ascii_lowercase()))
        {
            let f = self.faults.remove(i).unwrap();
            return self.respond(f.status, Some(f.body), f.headers);
        }
        let query: BTreeMap<String, String> =
            req.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if !query.contains_key("api-version") {
            return self.error(arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        }
        if lpath.contains("/operationresults/") || lpath.contains("/asyncoperations/") || lpath.contains("/operations/")
        {
            return self.poll(&lpath, &lpath.contains("/operations/"));
        }
        let body: Value =
            if req.body.is_empty() { Value::Null } else { serde_json::from_slice(&req.body).unwrap_or(Value::Null) };
        let snapshot = req.headers.get("x-ms-snapshot").and_then(|v| v.to_str().ok()).map(str::to_owned);
        match method.as_str() {
            "GET" => self.get(&path, &lpath, &query, snapshot),
            "PUT" => self.put(&path, &lpath, &query, body),
            "PATCH" => self.patch(&lpath, body),
            "DELETE" => self.delete(&lpath, snapshot),
            "POST" => self.post(&path, &lpath, body),
            _ => self.error(arm_error(405, "MethodNotAllowed", "method not allowed")),
        }
    }

    fn not_found(&mut self, lpath: &str) -> ResponseTemplate {
        let code = if kind_of(lpath) == Kind::ResourceGroup { "ResourceGroupNotFound" } else { "ResourceNotFound" };
        self.error(arm_error(404, code, &format!("The Resource '{lpath}' was not found.")))
    }

    fn get(
        &mut self,
        _path: &str,
        lpath: &str,
        query: &BTreeMap<String, String>,
        snapshot: Option<String>,
    ) -> ResponseTemplate {
        // Resources_ListByResourceGroup: the group's top-level resources.
        if let Some(rg) = lpath.strip_suffix("/resources")
            && kind_of(rg) == Kind::ResourceGroup
        {
            if !self.resources.contains_key(rg) {
                return self.not_found(rg);
            }
            let prefix = format!("{rg}/providers/");
            let value: Vec<Value> = self
                .resources
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix) && k.trim_matches('/').split('/').count() == 8)
                .map(|(_, v)| json!({"id": v["id"], "name": v["name"], "type": v["type"], "location": v["location"], "tags": v.get("tags").cloned().unwrap_or(json!({}))}))
                .collect();
            return self.respond(200, Some(json!({ "value": value })), vec![]);
        }
        if kind_of(lpath) == Kind::ShareList {
            let mut value = vec![];
            let prefix = format!("{lpath}/");
            let shares: Vec<(String, Value)> = self
                .resources
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in shares {
                value.push(v.clone());
                if query.get("$expand").map(String::as_str) == Some("snapshots") {
                    for t in self.snapshots.get(&k).cloned().unwrap_or_default() {
                        let mut s = v.clone();
                        s["properties"]["snapshotTime"] = json!(t);
                        value.push(s);
                    }
                }
            }
            return self.respond(200, Some(json!({ "value": value })), vec![]);
        }
        if let Some(t) = snapshot {
            let exists = self.snapshots.get(lpath).is_some_and(|v| v.contains(&t));
            return match (exists, self.resources.get(lpath).cloned()) {
                (true, Some(mut v)) => {
                    v["properties"]["snapshotTime"] = json!(t);
                    self.respond(200, Some(v), vec![])
                }
                _ => self.error(arm_error(404, "ShareNotFound", "The specified share does not exist.")),
            };
        }
        match self.resources.get(lpath).cloned() {
            Some(v) => self.respond(200, Some(v), vec![]),
            None => self.not_found(lpath),
        }
    }

    fn parent_missing(&mut self, lpath: &str) -> Option<ResponseTemplate> {
        let parent = parent_of(lpath)?;
        if self.resources.contains_key(&parent) {
            return None;
        }
        Some(if kind_of(&parent) == Kind::ResourceGroup {
            self.error(arm_error(
                404,
                "ResourceGroupNotFound",
                &format!("Resource group '{parent}' could not be found."),
            ))
        } else {
            self.error(arm_error(
                404,
                "ParentResourceNotFound",
                &format!(
                    "Can not perform requested operation on nested resource. Parent resource '{parent}' not found."
                ),
            ))
        })
    }

    fn start_op(&mut self, resource: &str, delete: bool) -> String {
        let id = self.id();
        let failure = self.op_failures.iter().position(|(p, ..)| resource.contains(&p.to_ascii_lowercase()));
        let (outcome, canceled) = match failure {
            Some(i) => {
                let (_, code, message, canceled) = self.op_failures.remove(i);
                (Err((code, message)), canceled)
            }
            None => (Ok(()), false),
        };
        self.ops.insert(
            id.clone(),
            Operation { remaining: self.op_polls, outcome, resource: resource.to_owned(), delete, canceled },
        );
        id
    }

    fn poll(&mut self, lpath: &str, async_op: &bool) -> ResponseTemplate {
        let id = lpath.rsplit('/').next().unwrap_or_default().to_owned();
        let Some(op) = self.ops.get(&id).cloned() else {
            return self.error(arm_error(404, "OperationNotFound", "operation not found"));
        };
        if op.remaining > 0 {
            self.ops.get_mut(&id).unwrap().remaining -= 1;
            return if *async_op {
                self.respond(
                    200,
                    Some(json!({"id": lpath, "name": id, "status": "InProgress", "startTime": "2026-11-25T10:00:00Z"})),
                    vec![("retry-after", "10".into())],
                )
            } else {
                let loc = format!("{}{}?api-version=x", self.base, lpath);
                self.respond(202, None, vec![("location", loc), ("retry-after", "17".into())])
            };
        }
        match op.outcome {
            Ok(()) => {
                let final_body = if op.delete {
                    let prefix = format!("{}/", op.resource);
                    self.resources.retain(|k, _| k != &op.resource && !k.starts_with(&prefix));
                    None
                } else {
                    let r = self.resources.get_mut(&op.resource);
                    if let Some(r) = r {
                        r["properties"]["provisioningState"] = json!("Succeeded");
                        Some(r.clone())
                    } else {
                        None
                    }
                };
                if *async_op {
                    self.respond(200, Some(json!({"id": lpath, "name": id, "status": "Succeeded", "startTime": "2026-11-25T10:00:00Z", "endTime": "2026-11-25T10:00:30Z"})), vec![])
                } else {
                    match final_body {
                        Some(b) => self.respond(200, Some(b), vec![]),
                        None => self.respond(200, None, vec![]),
                    }
                }
            }
            Err((code, message)) => {
                if let Some(r) = self.resources.get_mut(&op.resource) {
                    r["properties"]["provisioningState"] = json!(if op.canceled { "Canceled" } else { "Failed" });
                }
                if *async_op {
                    let status = if op.canceled { "Canceled" } else { "Failed" };
                    self.respond(200, Some(json!({"id": lpath, "name": id, "status": status, "error": {"code": code, "message": message}})), vec![])
                } else {
                    self.error(arm_error(400, &code, &message))
                }
            }
        }
    }

    fn put(&mut self, path: &str, lpath: &str, query: &BTreeMap<String, String>, body: Value) -> ResponseTemplate {
        if let Some(r) = self.parent_missing(lpath) {
            return r;
        }
        let existed = self.resources.contains_key(lpath);
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        let mut res = body.clone();
        if !res.is_object() {
            res = json!({});
        }
        res["id"] = json!(path);
        res["name"] = json!(name);
        let kind = kind_of(lpath);
        match kind {
            Kind::ResourceGroup => {
                res["type"] = json!("Microsoft.Resources/resourceGroups");
                res["properties"] = json!({"provisioningState": "Succeeded"});
                res["location"] =
                    json!(body["location"].as_str().unwrap_or_default().to_ascii_lowercase().replace(' ', ""));
                self.resources.insert(lpath.to_owned(), res.clone());
                self.respond(if existed { 200 } else { 201 }, Some(res), vec![])
            }
            Kind::StorageAccount => {
                let acct = name.clone();
                res["type"] = json!("Microsoft.Storage/storageAccounts");
                let props = res["properties"].as_object().cloned().unwrap_or_default();
                let mut p = json!({
                    "keyCreationTime": {"key1": "2026-11-25T04:42:22.4322836Z", "key2": "2026-11-25T04:42:22.4322836Z"},
                    "creationTime": "2026-11-25T04:42:22.4322836Z",
                    "primaryEndpoints": {
                        "blob": format!("https://{acct}.blob.core.windows.net/"),
                        "dfs": format!("https://{acct}.dfs.core.windows.net/"),
                        "file": format!("https://{acct}.file.core.windows.net/"),
                        "queue": format!("https://{acct}.queue.core.windows.net/"),
                        "table": format!("https://{acct}.table.core.windows.net/"),
                        "web": format!("https://{acct}.z6.web.core.windows.net/"),
                    },
                    "primaryLocation": body["location"],
                    "provisioningState": "Creating",
                    "statusOfPrimary": "available",
                    "encryption": {"services": {"file": {"keyType": "Account", "enabled": true}, "blob": {"keyType": "Account", "enabled": true}}, "keySource": "Microsoft.Storage"},
                });
                for (k, v) in props {
                    p[k] = v;
                }
                res["properties"] = p;
                let tier = if res["sku"]["name"].as_str().unwrap_or("").starts_with("Premium") {
                    "Premium"
                } else {
                    "Standard"
                };
                res["sku"]["tier"] = json!(tier);
                self.keys
                    .entry(lpath.to_owned())
                    .or_insert_with(|| (format!("key1-{acct}-secretvalue=="), format!("key2-{acct}-secretvalue==")));
                self.resources.insert(lpath.to_owned(), res);
                let op = self.start_op(lpath, false);
                let loc = format!(
                    "{}/subscriptions/{SUB}/providers/Microsoft.Storage/locations/eastus/asyncoperations/{op}?monitor=true&api-version=2025-06-01",
                    self.base
                );
                self.respond(202, None, vec![("location", loc), ("retry-after", "17".into())])
            }
            Kind::Share => {
                if query.get("$expand").map(String::as_str) == Some("snapshots") {
                    let Some(mut share) = self.resources.get(lpath).cloned() else { return self.not_found(lpath) };
                    self.next += 1;
                    // One second per snapshot, so snapshot times only ever increase.
                    let (n, base) = (self.next, 5 * 3600 + 48 * 60);
                    let secs = base + n;
                    let t = format!(
                        "2026-11-25T{:02}:{:02}:{:02}.{:07}Z",
                        secs / 3600 % 24,
                        secs / 60 % 60,
                        secs % 60,
                        n % 10_000_000
                    );
                    self.snapshots.entry(lpath.to_owned()).or_default().push(t.clone());
                    share["properties"]["snapshotTime"] = json!(t);
                    return self.respond(200, Some(share), vec![]);
                }
                res["type"] = json!("Microsoft.Storage/storageAccounts/fileServices/shares");
                res["etag"] = json!("\"0x8D589847D51C7DE\"");
                let mut p = res["properties"].clone();
                if !p.is_object() {
                    p = json!({});
                }
                if p.get("accessTier").is_none() {
                    p["accessTier"] = json!("TransactionOptimized");
                }
                if p.get("shareQuota").is_none() {
                    p["shareQuota"] = json!(102400);
                }
                p["enabledProtocols"] = json!("SMB");
                p["lastModifiedTime"] = json!("2026-11-25T05:47:05.0000000Z");
                res["properties"] = p;
                self.resources.insert(lpath.to_owned(), res.clone());
                self.respond(if existed { 200 } else { 201 }, Some(res), vec![])
            }
            Kind::Container => {
                res["type"] = json!("Microsoft.Storage/storageAccounts/blobServices/containers");
                res["etag"] = json!("\"0x8D589847D51C7DE\"");
                let mut p = res["properties"].clone();
                if !p.is_object() {
                    p = json!({});
                }
                if p.get("publicAccess").is_none() {
                    p["publicAccess"] = json!("None");
                }
                p["hasImmutabilityPolicy"] = json!(false);
                p["hasLegalHold"] = json!(false);
                p["leaseState"] = json!("Available");
                res["properties"] = p;
                self.resources.insert(lpath.to_owned(), res.clone());
                self.respond(if existed { 200 } else { 201 }, Some(res), vec![])
            }
            Kind::ManagementPolicy => {
                res["name"] = json!("DefaultManagementPolicy");
                res["type"] = json!("Microsoft.Storage/storageAccounts/managementPolicies");
                res["properties"]["lastModifiedTime"] = json!("2026-11-25T06:09:55.7878848Z");
                self.resources.insert(lpath.to_owned(), res.clone());
                self.respond(200, Some(res), vec![])
            }
            Kind::Network | Kind::Compute => {
                let provider = if kind == Kind::Network { "Microsoft.Network" } else { "Microsoft.Compute" };
                if kind == Kind::Compute {
                    // Microsoft.Compute answers with the resource group in upper case
                    // (azure-rest-api-specs#10016: "expected behavior for the Microsoft.compute
                    // resource provider").
                    res["id"] = json!(upper_resource_group(path));
                }
                res["etag"] = json!(format!("W/\"{}\"", self.id()));
                let mut p = res["properties"].clone();
                if !p.is_object() {
                    p = json!({});
                }
                p["provisioningState"] = json!(if kind == Kind::Compute { "Creating" } else { "Updating" });
                augment(lpath, &mut p, &mut res);
                res["properties"] = p;
                let loc = res["location"].as_str().unwrap_or("eastus").to_owned();
                self.resources.insert(lpath.to_owned(), res.clone());
                let op = self.start_op(lpath, false);
                let url = format!(
                    "{}/subscriptions/{SUB}/providers/{provider}/locations/{loc}/operations/{op}?api-version=2025-05-01",
                    self.base
                );
                self.respond(
                    if existed { 200 } else { 201 },
                    Some(res),
                    vec![("azure-asyncoperation", url), ("retry-after", "10".into())],
                )
            }
            _ => self.error(arm_error(400, "InvalidResourceType", "unsupported by the fake")),
        }
    }

    fn patch(&mut self, lpath: &str, body: Value) -> ResponseTemplate {
        let Some(mut res) = self.resources.get(lpath).cloned() else { return self.not_found(lpath) };
        merge(&mut res, &body);
        self.resources.insert(lpath.to_owned(), res.clone());
        self.respond(200, Some(res), vec![])
    }

    fn delete(&mut self, lpath: &str, snapshot: Option<String>) -> ResponseTemplate {
        if let Some(t) = snapshot {
            if let Some(v) = self.snapshots.get_mut(lpath) {
                v.retain(|s| s != &t);
            }
            return self.respond(200, None, vec![]);
        }
        if !self.resources.contains_key(lpath) {
            return self.respond(204, None, vec![]);
        }
        match kind_of(lpath) {
            Kind::ResourceGroup => {
                let op = self.start_op(lpath, true);
                let loc = format!("{}/subscriptions/{SUB}/operationresults/{op}?api-version=2024-03-01", self.base);
                self.respond(202, None, vec![("location", loc), ("retry-after", "15".into())])
            }
            Kind::Network | Kind::Compute => {
                let provider = if kind_of(lpath) == Kind::Network { "Microsoft.Network" } else { "Microsoft.Compute" };
                let op = self.start_op(lpath, true);
                let url = format!(
                    "{}/subscriptions/{SUB}/providers/{provider}/locations/eastus/operations/{op}?api-version=2025-05-01",
                    self.base
                );
                self.respond(202, None, vec![("azure-asyncoperation", url), ("retry-after", "10".into())])
            }
            _ => {
                let prefix = format!("{lpath}/");
                self.resources.retain(|k, _| k != lpath && !k.starts_with(&prefix));
                self.snapshots.remove(lpath);
                self.respond(200, None, vec![])
            }
        }
    }

    fn post(&mut self, _path: &str, lpath: &str, body: Value) -> ResponseTemplate {
        if lpath.ends_with("/checknameavailability") {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            let taken = self.taken_names.contains(&name)
                || self
                    .resources
                    .keys()
                    .any(|k| kind_of(k) == Kind::StorageAccount && k.ends_with(&format!("/{name}")));
            let reply = if taken {
                json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("The storage account named {name} is already taken.")})
            } else {
                json!({"nameAvailable": true})
            };
            return self.respond(200, Some(reply), vec![]);
        }
        if let Some(acct) = lpath.strip_suffix("/listkeys").or_else(|| lpath.strip_suffix("/regeneratekey")) {
            let acct = acct.to_owned();
            if !self.resources.contains_key(&acct) {
                return self.not_found(&acct);
            }
            if lpath.ends_with("/regeneratekey") {
                self.next += 1;
                let n = self.next;
                let entry = self.keys.get_mut(&acct).unwrap();
                match body["keyName"].as_str() {
                    Some("key1") => entry.0 = format!("key1-rotated-{n}=="),
                    Some("key2") => entry.1 = format!("key2-rotated-{n}=="),
                    _ => {
                        return self.error(arm_error(
                            400,
                            "InvalidValuesForRequestParameters",
                            "keyName must be key1 or key2",
                        ));
                    }
                }
            }
            let (k1, k2) = self.keys.get(&acct).cloned().unwrap_or_default();
            return self.respond(200, Some(json!({"keys": [
                {"creationTime": "2026-11-25T04:42:22.4322836Z", "keyName": "key1", "permissions": "Full", "value": k1},
                {"creationTime": "2026-11-25T04:42:22.4322836Z", "keyName": "key2", "permissions": "Full", "value": k2},
            ]})), vec![]);
        }
        self.error(arm_error(400, "InvalidAction", "unsupported action"))
    }
}

/// `/subscriptions/{sub}/resourceGroups/{RG}/…` with the group's name in upper case.
pub fn upper_resource_group(path: &str) -> String {
    let mut segs: Vec<String> = path.split('/').map(str::to_owned).collect();
    if segs.len() > 4 {
        segs[4] = segs[4].to_ascii_uppercase();
    }
    segs.join("/")
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if k == "tags" || k == "metadata" {
                    t.insert(k.clone(), v.clone());
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Fields ARM adds to network and compute resources.
fn augment(lpath: &str, p: &mut Value, res: &mut Value) {
    if lpath.contains("/virtualnetworks/") && lpath.contains("/subnets/") {
        res["type"] = json!("Microsoft.Network/virtualNetworks/subnets");
        p["privateEndpointNetworkPolicies"] = json!("Disabled");
        p["privateLinkServiceNetworkPolicies"] = json!("Enabled");
    } else if lpath.contains("/virtualnetworks/") {
        res["type"] = json!("Microsoft.Network/virtualNetworks");
        p["resourceGuid"] = json!("ea9b1d59-6cbd-4e66-a96e-6a1d8d5b2ad4");
        if p.get("subnets").is_none() {
            p["subnets"] = json!([]);
        }
        p["enableDdosProtection"] = json!(false);
    } else if lpath.contains("/networksecuritygroups/") {
        res["type"] = json!("Microsoft.Network/networkSecurityGroups");
        p["resourceGuid"] = json!("2e3bd1f4-0eb1-4c22-9e1c-1f3a52d51f6e");
        p["defaultSecurityRules"] = json!([
            {"name": "AllowVnetInBound", "properties": {"priority": 65000, "direction": "Inbound", "access": "Allow", "protocol": "*"}},
            {"name": "AllowAzureLoadBalancerInBound", "properties": {"priority": 65001, "direction": "Inbound", "access": "Allow", "protocol": "*"}},
            {"name": "DenyAllInBound", "properties": {"priority": 65500, "direction": "Inbound", "access": "Deny", "protocol": "*"}},
            {"name": "AllowVnetOutBound", "properties": {"priority": 65000, "direction": "Outbound", "access": "Allow", "protocol": "*"}},
            {"name": "AllowInternetOutBound", "properties": {"priority": 65001, "direction": "Outbound", "access": "Allow", "protocol": "*"}},
            {"name": "DenyAllOutBound", "properties": {"priority": 65500, "direction": "Outbound", "access": "Deny", "protocol": "*"}}
        ]);
        if let Some(rules) = p.get_mut("securityRules").and_then(Value::as_array_mut) {
            for r in rules {
                r["properties"]["provisioningState"] = json!("Succeeded");
                r["type"] = json!("Microsoft.Network/networkSecurityGroups/securityRules");
            }
        }
    } else if lpath.contains("/publicipaddresses/") {
        res["type"] = json!("Microsoft.Network/publicIPAddresses");
        p["ipAddress"] = json!("20.48.1.23");
        p["ipTags"] = json!([]);
        if p.get("idleTimeoutInMinutes").is_none() {
            p["idleTimeoutInMinutes"] = json!(4);
        }
    } else if lpath.contains("/networkinterfaces/") {
        res["type"] = json!("Microsoft.Network/networkInterfaces");
        if let Some(cfgs) = p.get_mut("ipConfigurations").and_then(Value::as_array_mut) {
            for (i, c) in cfgs.iter_mut().enumerate() {
                c["properties"]["privateIPAddress"] = json!(format!("10.0.0.{}", 4 + i));
                c["properties"]["privateIPAddressVersion"] = json!("IPv4");
                c["properties"]["primary"] = json!(i == 0);
            }
        }
        p["enableAcceleratedNetworking"] = json!(false);
        p["macAddress"] = json!("00-0D-3A-1B-C7-21");
    } else if lpath.contains("/virtualmachines/") {
        res["type"] = json!("Microsoft.Compute/virtualMachines");
        p["vmId"] = json!("0f47b100-583c-48e3-a4c0-aefc2c9bbcc1");
        p["timeCreated"] = json!("2026-11-25T10:00:00Z");
        // customData is write-only: ARM never returns it.
        if let Some(os) = p.get_mut("osProfile").and_then(Value::as_object_mut) {
            os.remove("customData");
            os.insert("allowExtensionOperations".into(), json!(true));
            os.insert("requireGuestProvisionSignal".into(), json!(true));
        }
        if let Some(disk) = p.pointer_mut("/storageProfile/osDisk").and_then(Value::as_object_mut) {
            disk.insert("osType".into(), json!("Linux"));
            disk.insert("name".into(), json!("osdisk-1"));
            disk.insert("diskSizeGB".into(), json!(30));
        }
        if let Some(img) = p.pointer_mut("/storageProfile/imageReference").and_then(Value::as_object_mut) {
            img.insert("exactVersion".into(), json!("22.04.202611100"));
        }
    }
}
