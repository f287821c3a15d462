//! `AclPolicies` against a stateful fake of `/tailnet/{tailnet}/acl` that implements `ETag` /
//! `If-Match` (`ts-default` included) the way Tailscale documents it.

use std::sync::{Arc, Mutex};

use serde_json::json;
use stackup_core::{Action, Ctx, Error, Provisioner};
use stackup_tailscale::{AclAdoption, AclPolicies, AclPolicySpec};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common;

const ACL: &str = "/api/v2/tailnet/-/acl";

const DEFAULT_POLICY: &str = "// Example/default ACLs for unrestricted connections.\n{\n  \"acls\": [\n    \
                              {\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:*\"]},\n  ],\n}\n";

const OURS: &str = r#"// Managed by stackup: CI may SSH to the backend host, nothing else.
{
  "tagOwners": {
    "tag:ci":     ["autogroup:admin"],
    "tag:server": ["autogroup:admin"],
  },
  "acls": [
    // GitHub Actions → egograph-prod:22
    {"action": "accept", "src": ["tag:ci"], "dst": ["tag:server:22"]},
  ],
}
"#;

#[derive(Debug)]
struct Policy {
    text: String,
    version: u32,
    is_default: bool,
    /// Apply the next write, then answer 502 (the write landed, the reply was lost).
    lose_next_reply: bool,
}

impl Policy {
    fn etag(&self) -> String {
        format!("\"e0b2816b{:03}\"", self.version)
    }
}

#[derive(Clone)]
struct FakeAcl(Arc<Mutex<Policy>>);

impl FakeAcl {
    fn new() -> Self {
        FakeAcl(Arc::new(Mutex::new(Policy {
            text: DEFAULT_POLICY.into(),
            version: 1,
            is_default: true,
            lose_next_reply: false,
        })))
    }

    /// Someone edits the policy in the admin console.
    fn edit_by_someone_else(&self, text: &str) {
        let mut p = self.0.lock().unwrap();
        p.text = text.into();
        p.version += 1;
        p.is_default = false;
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().text.clone()
    }
}

impl Respond for FakeAcl {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut p = self.0.lock().unwrap();
        match req.method.as_str() {
            "GET" => {
                assert_eq!(req.headers.get("accept").unwrap(), "application/hujson");
                ResponseTemplate::new(200).insert_header("etag", p.etag().as_str()).set_body_string(p.text.clone())
            }
            "POST" => {
                assert_eq!(req.headers.get("content-type").unwrap(), "application/hujson");
                let if_match = req.headers.get("if-match").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                let ok = if_match == p.etag() || (if_match == "\"ts-default\"" && p.is_default);
                if !ok {
                    return ResponseTemplate::new(412)
                        .set_body_json(json!({"message": "precondition failed, invalid old hash"}));
                }
                p.text = String::from_utf8(req.body.clone()).unwrap();
                p.version += 1;
                p.is_default = false;
                if std::mem::take(&mut p.lose_next_reply) {
                    return ResponseTemplate::new(502);
                }
                ResponseTemplate::new(200).insert_header("etag", p.etag().as_str()).set_body_string(p.text.clone())
            }
            other => panic!("unexpected {other}"),
        }
    }
}

async fn setup() -> (MockServer, FakeAcl, AclPolicies) {
    let server = MockServer::start().await;
    let fake = FakeAcl::new();
    Mock::given(path(ACL)).respond_with(fake.clone()).mount(&server).await;
    let p = AclPolicies::new(common::client(&server));
    (server, fake, p)
}

async fn if_matches(server: &MockServer) -> Vec<String> {
    common::requests(server, "POST", ACL)
        .await
        .iter()
        .map(|r| r.headers.get("if-match").unwrap().to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn replaces_the_default_policy_as_written_then_is_a_no_op() {
    let (server, fake, p) = setup().await;
    let ctx = Ctx::detached("acl");
    let spec = AclPolicySpec::new(OURS);
    p.validate(&spec).unwrap();
    let created = p.create(&ctx, &spec).await.unwrap();
    assert_eq!(created.id, "-");
    assert_eq!(if_matches(&server).await, ["\"ts-default\""]);
    // Stored byte for byte, comments included.
    assert_eq!(fake.text(), OURS);
    assert_eq!(created.outputs.etag, "\"e0b2816b002\"");
    let read = p.read(&ctx, "-", Some(&created.outputs)).await.unwrap().unwrap();
    assert_eq!(read, created.outputs);
    assert_eq!(p.diff(&spec, &read).action(), Action::NoOp);
    // Trailing whitespace or CRLF alone is not a change.
    assert_eq!(p.diff(&AclPolicySpec::new(OURS.replace('\n', "\r\n")), &read).action(), Action::NoOp);
    // A comment-only change is a change: the text is kept as written.
    assert_eq!(p.diff(&AclPolicySpec::new(OURS.replace("nothing else", "only")), &read).action(), Action::Update);
    assert_eq!(common::mutating(&server).await, 1);
}

#[tokio::test]
async fn updates_carry_the_etag_that_was_read() {
    let (server, fake, p) = setup().await;
    let ctx = Ctx::detached("acl");
    let created = p.create(&ctx, &AclPolicySpec::new(OURS)).await.unwrap();
    let read = p.read(&ctx, "-", Some(&created.outputs)).await.unwrap().unwrap();
    let changed = OURS.replace("tag:server:22", "tag:server:22,443");
    let updated = p.update(&ctx, "-", &AclPolicySpec::new(changed.as_str()), &read).await.unwrap();
    assert_eq!(if_matches(&server).await, ["\"ts-default\"", "\"e0b2816b002\""]);
    assert_eq!(fake.text(), changed);
    assert_eq!(updated.etag, "\"e0b2816b003\"");
}

#[tokio::test]
async fn a_concurrent_edit_is_never_overwritten() {
    let (_server, fake, p) = setup().await;
    let ctx = Ctx::detached("acl");
    let created = p.create(&ctx, &AclPolicySpec::new(OURS)).await.unwrap();
    let read = p.read(&ctx, "-", Some(&created.outputs)).await.unwrap().unwrap();
    let theirs = OURS.replace("tag:server:22", "tag:server:*");
    fake.edit_by_someone_else(&theirs);
    let err = p.update(&ctx, "-", &AclPolicySpec::new(OURS.replace("22", "2222")), &read).await.unwrap_err();
    assert!(matches!(err, Error::PreconditionFailed(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("invalid old hash") && msg.contains("changed by someone else"), "{msg}");
    assert_eq!(fake.text(), theirs, "their edit is kept");
}

#[tokio::test]
async fn an_edited_policy_is_taken_over_only_when_asked() {
    let (_server, fake, p) = setup().await;
    let ctx = Ctx::detached("acl");
    fake.edit_by_someone_else("{\"acls\": []}");
    let err = p.create(&ctx, &AclPolicySpec::new(OURS)).await.unwrap_err();
    assert!(matches!(err.error, Error::PreconditionFailed(_)));
    assert!(err.error.to_string().contains("Overwrite"), "{}", err.error);
    assert_eq!(fake.text(), "{\"acls\": []}");
    let created = p.create(&ctx, &AclPolicySpec::new(OURS).adopt(AclAdoption::Overwrite)).await.unwrap();
    assert_eq!(fake.text(), OURS);
    assert_eq!(created.outputs.policy, OURS);
}

#[tokio::test]
async fn an_edited_policy_read_without_an_etag_is_never_overwritten_blindly() {
    // `adopt: Overwrite` guards the write with the ETag just read; without one there is nothing
    // to guard it with (an empty `If-Match` is the blind overwrite other tools do).
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ACL))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"acls\": []}"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(ACL))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"e1\"").set_body_string(OURS))
        .mount(&server)
        .await;
    let p = AclPolicies::new(common::client(&server));
    let err =
        p.create(&Ctx::detached("acl"), &AclPolicySpec::new(OURS).adopt(AclAdoption::Overwrite)).await.unwrap_err();
    assert!(err.error.to_string().contains("ETag"), "{}", err.error);
    assert_eq!(common::mutating(&server).await, 0);
}

#[tokio::test]
async fn a_lost_reply_to_a_write_that_landed_is_success() {
    let (server, fake, p) = setup().await;
    let ctx = Ctx::detached("acl");
    let created = p.create(&ctx, &AclPolicySpec::new(OURS)).await.unwrap();
    fake.0.lock().unwrap().lose_next_reply = true;
    let changed = OURS.replace("22", "2222");
    // The write lands, the reply is a 502, the retry gets 412: stackup checks and sees its text.
    let updated = p.update(&ctx, "-", &AclPolicySpec::new(changed.as_str()), &created.outputs).await.unwrap();
    assert_eq!(updated.policy, changed);
    assert_eq!(if_matches(&server).await.len(), 3);
}

#[tokio::test]
async fn the_validate_endpoint_reports_test_failures_and_warnings() {
    let server = MockServer::start().await;
    let validate = "/api/v2/tailnet/-/acl/validate";
    Mock::given(method("POST"))
        .and(path(validate))
        .and(wiremock::matchers::body_string_contains("FAILING"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message": "test(s) failed", "data": [
            {"user": "user1@example.com", "errors": ["address \"2.2.2.2:22\": want: Drop, got: Accept"]}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(validate))
        .and(wiremock::matchers::body_string_contains("SCIM"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message": "warning(s) found", "data": [
            {"user": "group:unknown@example.com", "warnings": ["group is not syncing from SCIM"]}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(validate))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let p = AclPolicies::new(common::client(&server));
    assert!(p.validate_with_api(OURS).await.unwrap().warnings.is_empty());
    let w = p.validate_with_api(&OURS.replace("Managed", "SCIM")).await.unwrap();
    assert_eq!(w.warnings, ["group:unknown@example.com: group is not syncing from SCIM"]);
    let err = p.validate_with_api(&OURS.replace("Managed", "FAILING")).await.unwrap_err();
    match err {
        Error::InvalidInput { field, rule } => {
            assert_eq!(field, "policy");
            assert!(rule.contains("test(s) failed") && rule.contains("want: Drop, got: Accept"), "{rule}");
        }
        other => panic!("{other:?}"),
    }
    let sent = common::requests(&server, "POST", validate).await;
    assert_eq!(sent[0].headers.get("content-type").unwrap(), "application/hujson");
    assert_eq!(sent[0].body, OURS.as_bytes());
    // Broken HuJSON is rejected before any call.
    let before = server.received_requests().await.unwrap().len();
    let err = p.validate_with_api("{\"acls\": [}").await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    assert!(p.validate(&AclPolicySpec::new("{\"acls\": [}")).is_err());
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}
