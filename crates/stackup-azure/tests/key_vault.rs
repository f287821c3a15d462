//! Key Vault secrets through the official SDK client against a fake vault (no emulator
//! exists): the SDK's authentication challenge, set/read/update/delete/purge, versions, no-op
//! re-apply, soft-delete conflicts, and the value kept out of plans and logs.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::http::{AsyncRawResponse, HttpClient, Request};
use serde_json::{Value, json};
use stackup_azure::{KeyVaultSecretSpec, KeyVaultSecrets, LroOptions, StaticTokenCredential};
use stackup_core::retry::RetryPolicy;
use stackup_core::{Action, Ctx, Error, Input, Provisioner, Secret};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

const VAULT: &str = "https://dursor-vault.vault.azure.net/";

/// Sends `https://dursor-vault.vault.azure.net/...` to the local fake (the SDK's bearer policy
/// only authorizes https URLs).
#[derive(Debug)]
struct Redirect {
    inner: Arc<dyn HttpClient>,
    to: url::Url,
}

#[async_trait]
impl HttpClient for Redirect {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut r = request.clone();
        let url = r.url_mut();
        url.set_scheme("http").unwrap();
        url.set_host(self.to.host_str()).unwrap();
        url.set_port(self.to.port()).unwrap();
        self.inner.execute_request(&r).await
    }
}

#[derive(Default)]
struct Vault {
    versions: BTreeMap<String, Vec<Value>>,
    deleted: BTreeMap<String, u32>,
    log: Vec<(String, String)>,
    next: u64,
}

struct FakeVault(Arc<Mutex<Vault>>);

fn kv_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-ms-request-id", "kv-req-1")
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

impl Respond for FakeVault {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let mut v = self.0.lock().unwrap();
        let path = req.url.path().trim_end_matches('/').to_owned();
        v.log.push((req.method.to_string(), path.clone()));
        if req.headers.get("authorization").is_none() {
            return ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#,
            );
        }
        assert_eq!(req.url.query_pairs().find(|(k, _)| k == "api-version").unwrap().1, "2025-07-01");
        let segs: Vec<String> = path.trim_start_matches('/').split('/').map(str::to_owned).collect();
        match (req.method.as_str(), segs.first().map(String::as_str), segs.get(1).cloned()) {
            ("PUT", Some("secrets"), Some(name)) => {
                if v.deleted.contains_key(&name) {
                    return kv_error(
                        409,
                        "Conflict",
                        &format!(
                            "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
                        ),
                    );
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                v.next += 1;
                let version = format!("{:032x}", v.next);
                let mut s = json!({
                    "value": body["value"],
                    "id": format!("{}secrets/{name}/{version}", VAULT),
                    "attributes": {"enabled": true, "created": 1_764_000_000, "updated": 1_764_000_000, "recoveryLevel": "Recoverable+Purgeable"},
                    "tags": body["tags"],
                });
                if let Some(ct) = body.get("contentType") {
                    s["contentType"] = ct.clone();
                }
                v.versions.entry(name).or_default().push(s.clone());
                ResponseTemplate::new(200).set_body_json(s)
            }
            ("GET", Some("secrets"), Some(name)) => match v.versions.get(&name).and_then(|vs| vs.last()) {
                Some(s) => ResponseTemplate::new(200).set_body_json(s.clone()),
                None => kv_error(
                    404,
                    "SecretNotFound",
                    &format!("A secret with (name/id) {name} was not found in this key vault."),
                ),
            },
            ("PATCH", Some("secrets"), Some(name)) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let Some(s) = v.versions.get_mut(&name).and_then(|vs| vs.last_mut()) else {
                    return kv_error(404, "SecretNotFound", "not found");
                };
                assert_eq!(segs.get(2).map(String::as_str), s["id"].as_str().unwrap().rsplit('/').next());
                s["tags"] = body["tags"].clone();
                if let Some(ct) = body.get("contentType") {
                    s["contentType"] = ct.clone();
                }
                let mut out = s.clone();
                out.as_object_mut().unwrap().remove("value");
                ResponseTemplate::new(200).set_body_json(out)
            }
            ("DELETE", Some("secrets"), Some(name)) => match v.versions.remove(&name) {
                Some(vs) => {
                    v.deleted.insert(name.clone(), 1);
                    let mut d = vs.last().unwrap().clone();
                    d.as_object_mut().unwrap().remove("value");
                    d["recoveryId"] = json!(format!("{VAULT}deletedsecrets/{name}"));
                    d["deletedDate"] = json!(1_764_000_100);
                    d["scheduledPurgeDate"] = json!(1_771_776_100);
                    ResponseTemplate::new(200).set_body_json(d)
                }
                None => kv_error(404, "SecretNotFound", "not found"),
            },
            ("DELETE", Some("deletedsecrets"), Some(name)) => match v.deleted.get(&name).copied() {
                // The first purge arrives while the delete is still being processed.
                Some(n) if n > 0 => {
                    v.deleted.insert(name, n - 1);
                    kv_error(409, "ObjectIsBeingDeleted", "The object is currently being deleted.")
                }
                Some(_) => {
                    v.deleted.remove(&name);
                    ResponseTemplate::new(204)
                }
                None => kv_error(404, "SecretNotFound", "not found"),
            },
            _ => kv_error(400, "BadParameter", "unsupported"),
        }
    }
}

async fn setup() -> (MockServer, Arc<Mutex<Vault>>, KeyVaultSecrets) {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(Vault::default()));
    Mock::given(wiremock::matchers::any()).respond_with(FakeVault(state.clone())).mount(&server).await;
    let redirect = Arc::new(Redirect {
        inner: azure_core::http::new_http_client(None),
        to: url::Url::parse(&server.uri()).unwrap(),
    });
    let secrets = KeyVaultSecrets::new(StaticTokenCredential::new(common::TOKEN))
        .retry_policy(RetryPolicy::fast())
        .poll_options(LroOptions::fast())
        .transport(redirect);
    (server, state, secrets)
}

fn spec(value: &str) -> KeyVaultSecretSpec {
    KeyVaultSecretSpec {
        vault_url: Input::Value(VAULT.into()),
        name: "dursor-encryption-key".into(),
        value: Input::from(Secret::new(value)),
        content_type: Some("text/plain".into()),
        tags: BTreeMap::new(),
        purge_on_delete: false,
    }
}

fn mutating(state: &Arc<Mutex<Vault>>) -> usize {
    state.lock().unwrap().log.iter().filter(|(m, _)| m != "GET").count()
}

#[tokio::test]
async fn secret_lifecycle_versions_and_no_op_reapply() {
    let (_server, state, secrets) = setup().await;
    let ctx = Ctx::detached("key");
    let (logs, _guard) = common::capture_logs();
    let created = secrets.create(&ctx, &spec("s3cr3t-value-1")).await.unwrap();
    assert_eq!(created.id, "https://dursor-vault.vault.azure.net/secrets/dursor-encryption-key");
    assert_eq!(created.outputs.value.as_ref().unwrap().expose(), "s3cr3t-value-1");
    assert_eq!(created.outputs.tags.get("managed-by").map(String::as_str), Some("stackup"));
    let v1 = created.outputs.version.clone();
    assert_eq!(v1.len(), 32);

    // No-op re-apply: same value, zero writes.
    let before = mutating(&state);
    let observed = secrets.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    let d = secrets.diff(&spec("s3cr3t-value-1"), &observed);
    assert_eq!(d.action(), Action::NoOp, "{d:?}");
    assert_eq!(mutating(&state), before);

    // A new value is an in-place update that adds a version; the plan never shows it.
    let d = secrets.diff(&spec("s3cr3t-value-2"), &observed);
    assert_eq!(d.action(), Action::Update);
    assert!(d.changes[0].sensitive);
    let rendered = serde_json::to_string(&d).unwrap();
    assert!(!rendered.contains("s3cr3t-value"), "{rendered}");
    let updated = secrets.update(&ctx, &created.id, &spec("s3cr3t-value-2"), &observed).await.unwrap();
    assert_ne!(updated.version, v1);
    assert_eq!(state.lock().unwrap().versions["dursor-encryption-key"].len(), 2);

    // Tags only: properties of the current version change, no new version.
    let mut tagged = spec("s3cr3t-value-2");
    tagged.tags.insert("app".into(), "dursor".into());
    let updated2 = secrets.update(&ctx, &created.id, &tagged, &updated).await.unwrap();
    assert_eq!(updated2.version, updated.version);
    assert_eq!(updated2.tags.get("app").map(String::as_str), Some("dursor"));
    assert_eq!(secrets.diff(&tagged, &updated2).action(), Action::NoOp);

    assert!(!format!("{updated2:?}").contains("s3cr3t-value"));
    // Even a plain value is serialised (into plans and state) as a secret.
    let plain = KeyVaultSecretSpec { value: Input::Value("plain-s3cr3t".into()), ..spec("x") };
    let json = serde_json::to_value(&plain).unwrap();
    assert!(stackup_core::secret::is_secret_value(&json["value"]), "{json}");
    assert!(logs.text().contains("performing request"), "SDK logs captured");
    assert!(!logs.text().contains("s3cr3t-value"), "value leaked into logs");

    // Delete keeps it recoverable, so the name cannot be reused until purged.
    secrets.delete(&ctx, &created.id, &updated2).await.unwrap();
    assert!(secrets.read(&ctx, &created.id, None).await.unwrap().is_none());
    let err = secrets.create(&ctx, &spec("again")).await.unwrap_err().error;
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("purge or recover"), "{err}");
}

#[tokio::test]
async fn purge_on_delete_frees_the_name() {
    let (_server, state, secrets) = setup().await;
    let ctx = Ctx::detached("key");
    let mut s = spec("v");
    s.purge_on_delete = true;
    let created = secrets.create(&ctx, &s).await.unwrap();
    let observed = secrets.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    assert!(observed.purge_on_delete, "carried forward from the prior outputs");
    secrets.delete(&ctx, &created.id, &observed).await.unwrap();
    let purges =
        state.lock().unwrap().log.iter().filter(|(m, p)| m == "DELETE" && p.starts_with("/deletedsecrets/")).count();
    assert_eq!(purges, 2, "one 409 while deleting, then 204");
    secrets.create(&ctx, &s).await.unwrap();
}

#[tokio::test]
async fn an_unmanaged_secret_is_not_overwritten_and_bad_input_makes_no_call() {
    let (_server, state, secrets) = setup().await;
    state.lock().unwrap().versions.insert(
        "dursor-encryption-key".into(),
        vec![json!({"value": "theirs", "id": format!("{VAULT}secrets/dursor-encryption-key/0001"), "attributes": {"enabled": true}, "tags": {}})],
    );
    let err = secrets.create(&Ctx::detached("key"), &spec("mine")).await.unwrap_err().error;
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(state.lock().unwrap().versions["dursor-encryption-key"].len(), 1);

    let before = state.lock().unwrap().log.len();
    let cases: Vec<(KeyVaultSecretSpec, &str)> = vec![
        (KeyVaultSecretSpec { name: "bad_name".into(), ..spec("v") }, "name"),
        (KeyVaultSecretSpec { name: "x".repeat(128), ..spec("v") }, "name"),
        (
            KeyVaultSecretSpec { vault_url: Input::Value("http://dursor-vault.vault.azure.net".into()), ..spec("v") },
            "vault_url",
        ),
        (KeyVaultSecretSpec { value: Input::from(Secret::new("x".repeat(30_000))), ..spec("v") }, "value"),
    ];
    for (s, field) in cases {
        let err = secrets.create(&Ctx::detached("key"), &s).await.unwrap_err().error;
        assert!(matches!(&err, Error::InvalidInput { field: f, .. } if f == field), "{err:?}");
    }
    assert_eq!(state.lock().unwrap().log.len(), before);
}
