//! Network provisioners against the signature-verifying fake OCI: create, read, no-op diff,
//! update, delete in OCI's order, retries with re-signing, lost responses without duplicates,
//! pagination, and error details.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{COMPARTMENT, FakeOci, Fault, client};
use stackup_core::{Action, Ctx, Error, Input, Provisioner};
use stackup_oci::testing::{TEST_TENANCY, TEST_USER};
use stackup_oci::*;

fn vcn_spec() -> VcnSpec {
    VcnSpec {
        compartment_id: COMPARTMENT.into(),
        display_name: "af-vcn".into(),
        cidr_blocks: vec!["10.0.0.0/16".into()],
        dns_label: Some("afvcn".into()),
        freeform_tags: BTreeMap::from([("env".to_owned(), "test".to_owned())]),
    }
}

#[tokio::test]
async fn full_network_create_noop_and_delete_in_order() {
    let (server, fake) = FakeOci::start().await;
    let c = client(&server);
    let (vcns, igws, rts, sls, subnets) = (
        Vcns::new(c.clone()),
        InternetGateways::new(c.clone()),
        RouteTables::new(c.clone()),
        SecurityLists::new(c.clone()),
        Subnets::new(c.clone()),
    );

    let vspec = vcn_spec();
    vcns.validate(&vspec).unwrap();
    let vctx = Ctx::detached("vcn");
    let vcn = vcns.create(&vctx, &vspec).await.unwrap();
    assert_eq!(vcn.outputs.lifecycle_state, "AVAILABLE");
    assert_eq!(vcn.outputs.freeform_tags.get("managed-by").map(String::as_str), Some("stackup"));
    assert!(vcn.outputs.default_route_table_id.starts_with("ocid1.routetable."));

    let gspec = InternetGatewaySpec {
        compartment_id: COMPARTMENT.into(),
        vcn_id: Input::Value(vcn.id.clone()),
        display_name: "af-igw".into(),
        enabled: true,
        freeform_tags: BTreeMap::new(),
    };
    let gctx = Ctx::detached("igw");
    let igw = igws.create(&gctx, &gspec).await.unwrap();

    let rspec = RouteTableSpec {
        compartment_id: COMPARTMENT.into(),
        vcn_id: Input::Value(vcn.id.clone()),
        display_name: "af-rt".into(),
        route_rules: vec![RouteRuleSpec {
            destination: "0.0.0.0/0".into(),
            network_entity_id: Input::Value(igw.id.clone()),
            description: Some("default".into()),
        }],
        adopt_id: Some(Input::Value(vcn.outputs.default_route_table_id.clone())),
        freeform_tags: BTreeMap::new(),
    };
    rts.validate(&rspec).unwrap();
    let rctx = Ctx::detached("rt");
    let rt = rts.create(&rctx, &rspec).await.unwrap();
    assert_eq!(rt.id, vcn.outputs.default_route_table_id, "the default table is adopted, not created");
    assert!(rt.outputs.adopted);
    assert_eq!(rt.outputs.route_rules[0].network_entity_id, igw.id);

    let sspec = SecurityListSpec::public_ports(COMPARTMENT, Input::Value(vcn.id.clone()), "af-sl", &[22, 80, 443]);
    sls.validate(&sspec).unwrap();
    let sctx = Ctx::detached("sl");
    let sl = sls.create(&sctx, &sspec).await.unwrap();
    assert_eq!(sl.outputs.ingress.len(), 4);

    let nspec = SubnetSpec {
        compartment_id: COMPARTMENT.into(),
        vcn_id: Input::Value(vcn.id.clone()),
        display_name: "af-subnet".into(),
        cidr_block: "10.0.0.0/24".into(),
        dns_label: Some("afsub".into()),
        availability_domain: None,
        route_table_id: Some(Input::Value(rt.id.clone())),
        security_list_ids: vec![Input::Value(sl.id.clone())],
        prohibit_public_ip_on_vnic: false,
        freeform_tags: BTreeMap::new(),
    };
    subnets.validate(&nspec).unwrap();
    let nctx = Ctx::detached("subnet");
    let subnet = subnets.create(&nctx, &nspec).await.unwrap();

    // Every create carried a retry token; the wire names are OCI's.
    let posts: Vec<_> = fake.log().into_iter().filter(|l| l.method == "POST").collect();
    assert_eq!(posts.len(), 4);
    assert!(posts.iter().all(|p| p.retry_token.as_deref().is_some_and(|t| t.starts_with("stackup-"))));
    let sl_post = posts.iter().find(|p| p.path.ends_with("/securityLists")).unwrap();
    assert_eq!(sl_post.body["ingressSecurityRules"][0]["tcpOptions"]["destinationPortRange"]["min"], 22);
    assert_eq!(sl_post.body["ingressSecurityRules"][3]["icmpOptions"]["code"], 4);
    let put = fake.log().into_iter().find(|l| l.method == "PUT").unwrap();
    assert_eq!(put.body["routeRules"][0]["destinationType"], "CIDR_BLOCK");

    // Re-reading and diffing changes nothing and makes no mutating call.
    let before = fake.mutating().len();
    let v2 = vcns.read(&vctx, &vcn.id, Some(&vcn.outputs)).await.unwrap().unwrap();
    assert_eq!(vcns.diff(&vspec, &v2).action(), Action::NoOp, "{:?}", vcns.diff(&vspec, &v2));
    let g2 = igws.read(&gctx, &igw.id, None).await.unwrap().unwrap();
    assert_eq!(igws.diff(&gspec, &g2).action(), Action::NoOp);
    let r2 = rts.read(&rctx, &rt.id, Some(&rt.outputs)).await.unwrap().unwrap();
    assert_eq!(rts.diff(&rspec, &r2).action(), Action::NoOp, "{:?}", rts.diff(&rspec, &r2));
    let s2 = sls.read(&sctx, &sl.id, None).await.unwrap().unwrap();
    assert_eq!(sls.diff(&sspec, &s2).action(), Action::NoOp, "{:?}", sls.diff(&sspec, &s2));
    let n2 = subnets.read(&nctx, &subnet.id, None).await.unwrap().unwrap();
    assert_eq!(subnets.diff(&nspec, &n2).action(), Action::NoOp, "{:?}", subnets.diff(&nspec, &n2));
    assert_eq!(fake.mutating().len(), before);

    // An in-place update: a new display name and tag.
    let mut vspec2 = vspec.clone();
    vspec2.display_name = "af-vcn-2".into();
    assert_eq!(vcns.diff(&vspec2, &v2).action(), Action::Update);
    let v3 = vcns.update(&vctx, &vcn.id, &vspec2, &v2).await.unwrap();
    assert_eq!(v3.display_name, "af-vcn-2");
    let mut changed = vspec2.clone();
    changed.cidr_blocks = vec!["10.1.0.0/16".into()];
    assert_eq!(vcns.diff(&changed, &v3).action(), Action::Replace);

    // Deleting the gateway first is refused by OCI while the route rule references it.
    assert!(matches!(igws.delete(&gctx, &igw.id, &g2).await, Err(Error::Timeout { .. }) | Err(Error::Conflict(_))));

    // Destroy in OCI's order: subnet, route rules, gateway, list, VCN.
    subnets.delete(&nctx, &subnet.id, &n2).await.unwrap();
    rts.delete(&rctx, &rt.id, &r2).await.unwrap();
    igws.delete(&gctx, &igw.id, &g2).await.unwrap();
    sls.delete(&sctx, &sl.id, &s2).await.unwrap();
    vcns.delete(&vctx, &vcn.id, &v3).await.unwrap();
    assert!(
        fake.live("vcns").is_empty() && fake.live("subnets").is_empty() && fake.live("internetGateways").is_empty()
    );
    // Deleting again is success (already gone).
    vcns.delete(&vctx, &vcn.id, &v3).await.unwrap();
    assert!(vcns.read(&vctx, &vcn.id, None).await.unwrap().is_none());
    fake.assert_all_signed();
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_re_signed_with_one_retry_token() {
    let (server, fake) = FakeOci::start().await;
    fake.fault(
        "POST",
        "/vcns",
        Fault::Status {
            status: 429,
            code: "TooManyRequests",
            message: "User-rate limit exceeded.",
            retry_after: Some("0"),
        },
        1,
    );
    fake.fault(
        "POST",
        "/vcns",
        Fault::Status { status: 503, code: "ServiceUnavailable", message: "busy", retry_after: None },
        1,
    );
    fake.fault(
        "GET",
        "/vcns/",
        Fault::Status { status: 500, code: "InternalError", message: "oops", retry_after: None },
        1,
    );
    fake.fault(
        "PUT",
        "/vcns/",
        Fault::Status { status: 409, code: "IncorrectState", message: "VCN is UPDATING", retry_after: None },
        2,
    );
    let vcns = Vcns::new(client(&server));
    let created = vcns.create(&Ctx::detached("vcn"), &vcn_spec()).await.unwrap();
    let posts: Vec<_> = fake.log().into_iter().filter(|l| l.method == "POST").collect();
    assert_eq!(posts.len(), 3, "429, 503, then success");
    assert!(posts.iter().all(|p| p.retry_token == posts[0].retry_token));
    assert_eq!(fake.live("vcns").len(), 1);
    assert_eq!(fake.live("vcns")[0]["id"], created.id.as_str());
    // An update meeting 409 IncorrectState waits and tries again.
    let mut spec = vcn_spec();
    spec.display_name = "renamed".into();
    let out = vcns.update(&Ctx::detached("vcn"), &created.id, &spec, &created.outputs).await.unwrap();
    assert_eq!(out.display_name, "renamed");
    assert_eq!(fake.log().iter().filter(|l| l.method == "PUT").count(), 3);
    fake.assert_all_signed();
}

#[tokio::test]
async fn a_lost_create_response_is_retransmitted_without_a_duplicate() {
    let (server, fake) = FakeOci::start().await;
    fake.fault("POST", "/vcns", Fault::Lost(Duration::from_millis(1200)), 1);
    let vcns = Vcns::new(client(&server));
    let created = vcns.create(&Ctx::detached("vcn"), &vcn_spec()).await.unwrap();
    let posts: Vec<_> = fake.log().into_iter().filter(|l| l.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].retry_token, posts[1].retry_token);
    assert_eq!(fake.live("vcns").len(), 1, "the retry token made the retransmit return the same VCN");
    assert_eq!(fake.live("vcns")[0]["id"], created.id.as_str());
    fake.assert_all_signed();
}

#[tokio::test]
async fn lookup_pages_through_lists_and_finds_only_its_own_object() {
    let (server, fake) = FakeOci::start().await;
    fake.state().page_size = 1;
    let vcns = Vcns::new(client(&server));
    for addr in ["a", "b", "c"] {
        vcns.create(&Ctx::detached(addr), &vcn_spec()).await.unwrap();
    }
    let found = vcns.lookup(&Ctx::detached("c"), &vcn_spec()).await.unwrap().unwrap();
    assert_eq!(found.outputs.freeform_tags["stackup-address"], "c");
    assert!(vcns.lookup(&Ctx::detached("d"), &vcn_spec()).await.unwrap().is_none());
    let pages = fake
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.path.ends_with("/vcns") && l.query.contains("page="))
        .count();
    assert!(pages >= 2, "pagination followed opc-next-page");
    fake.assert_all_signed();
}

#[tokio::test]
async fn errors_keep_code_message_and_request_id() {
    let (server, fake) = FakeOci::start().await;
    fake.fault(
        "POST",
        "/vcns",
        Fault::Status {
            status: 400,
            code: "LimitExceeded",
            message: "The following service limits were exceeded: vcn-count",
            retry_after: None,
        },
        1,
    );
    let vcns = Vcns::new(client(&server));
    let e = vcns.create(&Ctx::detached("vcn"), &vcn_spec()).await.unwrap_err();
    assert!(e.partial_id.is_none());
    assert_eq!(e.error.code(), Some("LimitExceeded"));
    assert_eq!(e.error.request_id(), Some("fake-req-id"));
    assert!(e.error.to_string().contains("vcn-count"));
    assert_eq!(fake.log().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_wrong_key_gets_401_with_a_fingerprint_hint() {
    let (server, fake) = FakeOci::start().await;
    let other = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAMqWmnVDqICAx7F7
ZTYHAOz63Agm3Kg1EBAxGhG/uPlghsM7dyFc/30ggSX8wfPydPZlYzMh5fZnF+3b
PcmSNkVjmRjy39IwAey7/ug/eZL9ksfgAQMMd7vkjEZyHVHzKwOEqnq/l5BIRKNh
WE2pT53kKHjAM0WePyxsT+MckHL3AgMBAAECgYB4GXhP9GA8bhv0d7a0pMpDsyQm
IQPHJE31i2ZtBz/ddv/tVZ92Q++ielaV8pX4zM/SEqEQexQdU1i4RbUHfop04mEE
ztF7ZVMm6HwHS+EqcF2/g+u5Id7zeDmZgK6NRYwbjbS6R9mt2MFW8U7Ys9ufnvtb
FNSOtUF83nFvBBaRgQJBAOaX/jgXmZul7eq6hmdyGOa7A9ocnNhiHJC03xl+QOyS
hZX7RwhkI7XIxyhCqmTgiEwnoao9EuJniSQZd2N5ExECQQDg6LQmxpKD+ahzJ8K0
UC3UeeKIY0xqlslRmBWMEZlC8VvJ8REbF43e5X+xyQGhwohA4CvEjJCM+rRITYaY
txWHAkEA0Kb1tIG+T7W762quFUqLt7O/T4wWbEGSwWm4ehPg4W/Pip/dbX1XRrUP
aKGyFyeIjQhLY4Rx4wV2dYDJo+u5UQJALONE0VhgdaamUBVnbsVx4C5TYBUxczSV
CYvpAQOiKxIw16UdXOLeldYIHluXz8kbmJclJR1I3FpNEQEoE+K2kQJAF61h7VGF
FNKxiVPcps140CV49U3eq7HmK4+mPVfUkldnhqxzEIoGyjA7G8iVwxsRxUDklvQV
8qqe3Fg0ECXj8A==
-----END PRIVATE KEY-----";
    // A key whose fingerprint matches the keyId (so the client builds) but that OCI does not
    // know for this user: the fake verifies with the test key's public half.
    let creds = match ApiKey::from_pem(other, "other") {
        Ok(key) => {
            let fingerprint = key.fingerprint().to_owned();
            Credentials {
                key,
                key_id: KeyId::ApiKey { tenancy: TEST_TENANCY.into(), user: TEST_USER.into(), fingerprint },
                ..common::credentials()
            }
        }
        Err(e) => panic!("{e}"),
    };
    let c = OciClient::builder()
        .credentials(creds)
        .all_endpoints(server.uri())
        .retry_policy(stackup_core::retry::RetryPolicy::fast())
        .timing(Timing::fast())
        .build()
        .unwrap();
    let e = Vcns::new(c).read(&Ctx::detached("v"), "ocid1.vcn.oc1.phx.x", None).await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated(_)), "{e}");
    assert!(e.to_string().contains("fingerprint"), "{e}");
    assert_eq!(fake.state().sig_failures.len(), 1);
}

#[tokio::test]
async fn bad_network_inputs_are_rejected_before_any_call() {
    let (server, fake) = FakeOci::start().await;
    let c = client(&server);
    let vcns = Vcns::new(c.clone());
    let subnets = Subnets::new(c.clone());
    let sls = SecurityLists::new(c);
    let mut cases: Vec<(VcnSpec, &str)> = vec![];
    let mut s = vcn_spec();
    s.cidr_blocks = vec!["10.0.0.0/8".into()];
    cases.push((s, "cidr_blocks[0]"));
    let mut s = vcn_spec();
    s.cidr_blocks = vec!["10.0.0.5/16".into()];
    cases.push((s, "cidr_blocks[0]"));
    let mut s = vcn_spec();
    s.cidr_blocks = vec!["10.0.0.0/16".into(), "10.0.1.0/24".into()];
    cases.push((s, "cidr_blocks[0]"));
    let mut s = vcn_spec();
    s.dns_label = Some("has-dash".into());
    cases.push((s, "dns_label"));
    let mut s = vcn_spec();
    s.compartment_id = "ocid1.vcn.oc1..x".into();
    cases.push((s, "compartment_id"));
    let mut s = vcn_spec();
    s.freeform_tags.insert("stackup-address".into(), "x".into());
    cases.push((s, "freeform_tags.stackup-address"));
    let mut s = vcn_spec();
    s.freeform_tags.insert("bad key".into(), "x".into());
    cases.push((s, "freeform_tags.bad key"));
    for (spec, field) in cases {
        match vcns.validate(&spec) {
            Err(Error::InvalidInput { field: f, rule }) => assert_eq!(f, field, "{rule}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut n = SubnetSpec {
        compartment_id: COMPARTMENT.into(),
        vcn_id: Input::Value("ocid1.vcn.oc1.phx.x".into()),
        display_name: "s".into(),
        cidr_block: "10.0.0.0/33".into(),
        dns_label: None,
        availability_domain: None,
        route_table_id: None,
        security_list_ids: vec![],
        prohibit_public_ip_on_vnic: false,
        freeform_tags: BTreeMap::new(),
    };
    assert!(matches!(subnets.validate(&n), Err(Error::InvalidInput { field, .. }) if field == "cidr_block"));
    n.cidr_block = "10.0.0.0/24".into();
    n.vcn_id = Input::Value("ocid1.subnet.oc1.phx.x".into());
    assert!(matches!(subnets.validate(&n), Err(Error::InvalidInput { field, .. }) if field == "vcn_id"));
    let mut sl = SecurityListSpec::public_ports(COMPARTMENT, Input::Value("ocid1.vcn.oc1.phx.x".into()), "sl", &[22]);
    sl.ingress[0].protocol = RuleProtocol::Tcp { port_min: 443, port_max: 80 };
    assert!(matches!(sls.validate(&sl), Err(Error::InvalidInput { field, .. }) if field == "ingress[0]"));
    assert!(fake.log().is_empty(), "validation makes no call");
}
