//! Resource group, storage account, file share and share snapshot provisioners against the fake
//! ARM: create, re-apply with zero mutating calls, update, replacement, delete, key rotation,
//! validation before any call, and secrets kept out of logs.

mod common;

use std::collections::BTreeMap;

use stackup_azure::resources::file_share::FileShares;
use stackup_azure::{
    FileShareSpec, KeyName, ResourceGroupSpec, ResourceGroups, ShareAccessTier, ShareSnapshotSpec, ShareSnapshots,
    StorageAccountSpec, StorageAccounts, StorageSku,
};
use stackup_core::{Action, Ctx, Error, Input, OutputRef, Provisioner};

use common::{FakeArm, client};

fn rg_spec() -> ResourceGroupSpec {
    ResourceGroupSpec {
        name: "blossom-rg".into(),
        location: "Japan East".into(),
        tags: BTreeMap::from([("env".into(), "prod".into())]),
    }
}

fn acct_spec() -> StorageAccountSpec {
    StorageAccountSpec::new("blossomdata12345", "blossom-rg", "japaneast")
}

#[tokio::test]
async fn resource_group_lifecycle() {
    let arm = FakeArm::start().await;
    let rgs = ResourceGroups::new(client(&arm));
    let ctx = Ctx::detached("rg");
    let created = rgs.create(&ctx, &rg_spec()).await.unwrap();
    assert_eq!(created.id, FakeArm::rg_path("blossom-rg"));
    assert_eq!(created.outputs.location, "japaneast");
    assert_eq!(created.outputs.tags.get("managed-by").map(String::as_str), Some("stackup"));
    assert_eq!(created.outputs.tags.get("stackup-address").map(String::as_str), Some("rg"));

    // Re-apply: read + diff is a no-op with zero mutating calls.
    arm.clear_log();
    let observed = rgs.read(&ctx, &created.id, Some(&created.outputs)).await.unwrap().unwrap();
    assert_eq!(rgs.diff(&rg_spec(), &observed).action(), Action::NoOp, "{:?}", rgs.diff(&rg_spec(), &observed));
    assert!(arm.mutating_calls().is_empty());

    // Tags update in place; location replaces.
    let mut spec = rg_spec();
    spec.tags.insert("team".into(), "nostr".into());
    assert_eq!(rgs.diff(&spec, &observed).action(), Action::Update);
    let updated = rgs.update(&ctx, &created.id, &spec, &observed).await.unwrap();
    assert_eq!(updated.tags.get("team").map(String::as_str), Some("nostr"));
    assert_eq!(rgs.diff(&spec, &updated).action(), Action::NoOp);
    spec.location = "westus".into();
    assert_eq!(rgs.diff(&spec, &updated).action(), Action::Replace);

    // lookup finds what this address created; another address does not adopt it.
    assert!(rgs.lookup(&ctx, &rg_spec()).await.unwrap().is_some());
    assert!(rgs.lookup(&Ctx::detached("other"), &rg_spec()).await.unwrap().is_none());

    rgs.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(rgs.read(&ctx, &created.id, None).await.unwrap().is_none());
    rgs.delete(&ctx, &created.id, &updated).await.unwrap();
}

#[tokio::test]
async fn a_group_holding_foreign_resources_is_not_deleted() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let ctx = Ctx::detached("rg");
    let rgs = ResourceGroups::new(c.clone());
    let created = rgs.create(&ctx, &rg_spec()).await.unwrap();
    // Someone put a storage account into the group by hand.
    let foreign = FakeArm::account_path("blossom-rg", "handmade1");
    arm.set_resource(&foreign, serde_json::json!({"id": foreign, "name": "handmade1", "type": "Microsoft.Storage/storageAccounts", "location": "japaneast", "tags": {}}));
    let err = rgs.delete(&ctx, &created.id, &created.outputs).await.unwrap_err();
    assert_eq!(err.code(), Some("ResourceGroupNotEmpty"));
    assert!(err.to_string().contains("handmade1"), "{err}");
    assert_eq!(arm.count("DELETE", "/resourcegroups/blossom-rg"), 0);
    // This stack's own leftovers do not block, and the opt-in deletes everything.
    ResourceGroups::new(c.clone())
        .delete_with_contents(true)
        .delete(&ctx, &created.id, &created.outputs)
        .await
        .unwrap();
    assert_eq!(arm.resource_count(), 0);
}

#[tokio::test]
async fn an_existing_group_not_created_by_this_stack_is_not_taken_over() {
    let arm = FakeArm::start().await;
    let rgs = ResourceGroups::new(client(&arm));
    arm.set_resource(&FakeArm::rg_path("blossom-rg"), serde_json::json!({"id": FakeArm::rg_path("blossom-rg"), "name": "blossom-rg", "location": "japaneast", "tags": {"owner": "someone"}}));
    let err = rgs.create(&Ctx::detached("rg"), &rg_spec()).await.unwrap_err();
    assert!(matches!(err.error, Error::Conflict(_)), "{:?}", err.error);
    assert_eq!(arm.count("PUT", "/resourcegroups/blossom-rg"), 0);
}

#[tokio::test]
async fn storage_account_lifecycle_with_keys_as_secrets() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let ctx = Ctx::detached("acct");
    ResourceGroups::new(c.clone()).create(&Ctx::detached("rg"), &rg_spec()).await.unwrap();
    let accts = StorageAccounts::new(c.clone());
    let (logs, _guard) = common::capture_logs();
    let created = accts.create(&ctx, &acct_spec()).await.unwrap();
    let out = &created.outputs;
    assert_eq!(out.sku, "Standard_LRS");
    assert_eq!(out.kind, "StorageV2");
    assert!(out.https_only && out.allow_shared_key_access && !out.allow_blob_public_access);
    assert_eq!(out.min_tls_version, "TLS1_2");
    assert_eq!(out.file_host, "blossomdata12345.file.core.windows.net");
    assert_eq!(out.primary_endpoints.blob, "https://blossomdata12345.blob.core.windows.net/");
    let key1 = out.key1.clone().unwrap();
    assert!(key1.expose().starts_with("key1-"));

    // The PUT body is the secure default the issue asks for.
    let put = arm.resource(&created.id).unwrap();
    assert_eq!(put["properties"]["supportsHttpsTrafficOnly"], true);
    assert_eq!(put["properties"]["minimumTlsVersion"], "TLS1_2");
    assert_eq!(put["properties"]["allowBlobPublicAccess"], false);
    assert_eq!(put["kind"], "StorageV2");
    assert_eq!(arm.count("POST", "/checknameavailability"), 1);
    // POSTs without a body still say `Content-Length: 0` (ARM answers 411 otherwise).
    let list_keys = arm
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/listKeys"))
        .unwrap();
    assert_eq!(list_keys.headers.get("content-length").map(|v| v.to_str().unwrap().to_owned()).as_deref(), Some("0"));

    // Secrets never show: not in Debug, not in any log line (ours or the SDK's), and they
    // serialise only as secret markers the engine encrypts or drops.
    assert!(!format!("{out:?}").contains(key1.expose()));
    assert!(logs.text().contains("performing request"), "the SDK's request logs were captured");
    assert!(!logs.text().contains(key1.expose()), "key leaked into logs");
    assert!(!logs.text().contains(common::TOKEN), "bearer token leaked into logs");
    let json = serde_json::to_value(out).unwrap();
    assert!(stackup_core::secret::is_secret_value(&json["key1"]));

    // No-op re-apply.
    arm.clear_log();
    let observed = accts.read(&ctx, &created.id, None).await.unwrap().unwrap();
    assert_eq!(accts.diff(&acct_spec(), &observed).action(), Action::NoOp, "{:?}", accts.diff(&acct_spec(), &observed));
    assert!(arm.mutating_calls().is_empty(), "{:?}", arm.mutating_calls());

    // Update in place (LRS -> GRS, TLS, tags) with PATCH.
    let mut spec = acct_spec();
    spec.sku = StorageSku::StandardGrs;
    spec.tags.insert("app".into(), "blossom".into());
    assert_eq!(accts.diff(&spec, &observed).action(), Action::Update);
    let updated = accts.update(&ctx, &created.id, &spec, &observed).await.unwrap();
    assert_eq!(updated.sku, "Standard_GRS");
    assert_eq!(arm.count("PATCH", "/storageaccounts/blossomdata12345"), 1);
    assert_eq!(accts.diff(&spec, &updated).action(), Action::NoOp);
    // LRS -> Premium cannot change in place.
    spec.sku = StorageSku::PremiumLrs;
    assert_eq!(accts.diff(&spec, &updated).action(), Action::Replace);

    // Key rotation (seed 9.2): regenerate key2, key1 unchanged.
    let before = accts.list_keys(&created.id).await.unwrap();
    let after = accts.regenerate_key(&created.id, KeyName::Key2).await.unwrap();
    assert_eq!(after.key1, before.key1);
    assert_ne!(after.key2, before.key2);
    assert!(!format!("{after:?}").contains(after.key2.expose()));

    accts.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(accts.read(&ctx, &created.id, None).await.unwrap().is_none());
}

#[tokio::test]
async fn a_taken_account_name_is_reported_before_any_put() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    ResourceGroups::new(c.clone()).create(&Ctx::detached("rg"), &rg_spec()).await.unwrap();
    arm.state.lock().unwrap().taken_names.push("blossomdata12345".into());
    let err = StorageAccounts::new(c).create(&Ctx::detached("acct"), &acct_spec()).await.unwrap_err();
    assert!(matches!(err.error, Error::Conflict(_)));
    assert_eq!(err.error.code(), Some("AlreadyExists"));
    assert!(err.partial_id.is_none());
    assert_eq!(arm.count("PUT", "/storageaccounts/blossomdata12345"), 0);
}

#[tokio::test]
async fn a_failed_account_creation_reports_the_partial_object() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    ResourceGroups::new(c.clone()).create(&Ctx::detached("rg"), &rg_spec()).await.unwrap();
    arm.fail_next_operation("storageaccounts/blossomdata12345", "InternalError", "provisioning failed", false);
    let err = StorageAccounts::new(c).create(&Ctx::detached("acct"), &acct_spec()).await.unwrap_err();
    assert_eq!(err.error.code(), Some("InternalError"));
    assert_eq!(err.partial_id.as_deref(), Some(FakeArm::account_path("blossom-rg", "blossomdata12345").as_str()));
}

#[tokio::test]
async fn throttling_and_dropped_connections_mid_apply_end_in_one_correct_account() {
    let arm = FakeArm::start().await;
    let c = stackup_azure::ArmClient::builder()
        .credential(stackup_azure::StaticTokenCredential::new(common::TOKEN))
        .subscription_id(common::SUB)
        .arm_endpoint(arm.uri())
        .retry_policy(stackup_core::retry::RetryPolicy::fast())
        .lro_options(stackup_azure::LroOptions::fast())
        // Requests: 1 GET group, 2 PUT group, 3 GET account, 4 name check, 5 PUT account.
        .transport(common::DroppingTransport::new(vec![5]))
        .build()
        .unwrap();
    ResourceGroups::new(c.clone()).create(&Ctx::detached("rg"), &rg_spec()).await.unwrap();
    arm.fault(
        Some("POST"),
        "/listkeys",
        429,
        vec![("retry-after", "0".into())],
        serde_json::json!({"error": {"code": "TooManyRequests", "message": "throttled"}}),
    );
    arm.fault(
        Some("GET"),
        "/asyncoperations/",
        500,
        vec![],
        serde_json::json!({"error": {"code": "InternalServerError", "message": "oops"}}),
    );
    let created = StorageAccounts::new(c.clone()).create(&Ctx::detached("acct"), &acct_spec()).await.unwrap();
    assert_eq!(arm.count("PUT", "/storageaccounts/blossomdata12345"), 2, "the dropped PUT was sent again");
    assert_eq!(arm.resource_count(), 2, "one group, one account");
    assert!(created.outputs.key1.is_some());
}

#[tokio::test]
async fn file_share_lifecycle_with_snapshots() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    ResourceGroups::new(c.clone()).create(&Ctx::detached("rg"), &rg_spec()).await.unwrap();
    let acct = StorageAccounts::new(c.clone()).create(&Ctx::detached("acct"), &acct_spec()).await.unwrap();
    let shares = FileShares::new(c.clone());
    let ctx = Ctx::detached("share");
    let spec = FileShareSpec {
        name: "blossom-data".into(),
        storage_account_id: Input::Value(acct.id.clone()),
        quota_gib: 100,
        access_tier: None,
        metadata: BTreeMap::new(),
    };
    let created = shares.create(&ctx, &spec).await.unwrap();
    assert_eq!(created.outputs.quota_gib, 100);
    assert_eq!(created.outputs.smb_path, "//blossomdata12345.file.core.windows.net/blossom-data");
    assert_eq!(created.outputs.storage_account_id, acct.id);
    let stored = arm.resource(&created.id).unwrap();
    assert_eq!(stored["properties"]["shareQuota"], 100);

    arm.clear_log();
    let observed = shares.read(&ctx, &created.id, None).await.unwrap().unwrap();
    assert_eq!(shares.diff(&spec, &observed).action(), Action::NoOp, "{:?}", shares.diff(&spec, &observed));
    assert!(arm.mutating_calls().is_empty());

    let mut bigger = spec.clone();
    bigger.quota_gib = 200;
    bigger.access_tier = Some(ShareAccessTier::Hot);
    assert_eq!(shares.diff(&bigger, &observed).action(), Action::Update);
    let updated = shares.update(&ctx, &created.id, &bigger, &observed).await.unwrap();
    assert_eq!((updated.quota_gib, updated.access_tier.as_deref()), (200, Some("Hot")));
    let mut renamed = bigger.clone();
    renamed.name = "blossom-data2".into();
    assert_eq!(shares.diff(&renamed, &updated).action(), Action::Replace);

    // Snapshots: as a resource and through the day-2 API.
    let snaps = ShareSnapshots::new(c.clone());
    let snap = snaps
        .create(&Ctx::detached("snap"), &ShareSnapshotSpec { share_id: Input::Value(created.id.clone()) })
        .await
        .unwrap();
    assert!(snap.id.starts_with(&created.id) && snap.outputs.snapshot_time.ends_with('Z'));
    let second = shares.create_snapshot(&created.id).await.unwrap();
    let listed = shares.list_snapshots(&created.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1], second);
    assert!(snaps.read(&ctx, &snap.id, None).await.unwrap().is_some());
    snaps.delete(&ctx, &snap.id, &snap.outputs).await.unwrap();
    assert!(snaps.read(&ctx, &snap.id, None).await.unwrap().is_none());
    assert_eq!(shares.list_snapshots(&created.id).await.unwrap(), vec![second]);

    shares.delete(&ctx, &created.id, &updated).await.unwrap();
    let del = arm.log().into_iter().find(|(m, p)| m == "DELETE" && p.ends_with("/shares/blossom-data")).unwrap();
    assert!(del.1.contains("blossom-data"));
    assert!(shares.read(&ctx, &created.id, None).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_inputs_are_rejected_before_any_http_call() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let ctx = Ctx::detached("x");
    let rgs = ResourceGroups::new(c.clone());
    let accts = StorageAccounts::new(c.clone());
    let shares = FileShares::new(c.clone());

    let rg_cases: Vec<(ResourceGroupSpec, &str, &str)> = vec![
        (ResourceGroupSpec { name: "".into(), ..rg_spec() }, "name", "1-90"),
        (ResourceGroupSpec { name: "rg.".into(), ..rg_spec() }, "name", "end with '.'"),
        (ResourceGroupSpec { name: "rg/x".into(), ..rg_spec() }, "name", "letters"),
        (ResourceGroupSpec { location: "".into(), ..rg_spec() }, "location", "required"),
        (
            ResourceGroupSpec { tags: BTreeMap::from([("a<b".into(), "v".into())]), ..rg_spec() },
            "tags.a<b",
            "cannot contain",
        ),
        (
            ResourceGroupSpec { tags: BTreeMap::from([("managed-by".into(), "me".into())]), ..rg_spec() },
            "tags.managed-by",
            "set by stackup",
        ),
    ];
    for (spec, field, rule) in rg_cases {
        let err = rgs.create(&ctx, &spec).await.unwrap_err().error;
        match &err {
            Error::InvalidInput { field: f, rule: r } => {
                assert_eq!(f, field);
                assert!(r.contains(rule), "{r} should mention {rule}");
            }
            other => panic!("{other:?}"),
        }
    }
    let acct_cases: Vec<(StorageAccountSpec, &str, &str)> = vec![
        (StorageAccountSpec { name: "Blossom".into(), ..acct_spec() }, "name", "lowercase"),
        (StorageAccountSpec { name: "blossom-data".into(), ..acct_spec() }, "name", "lowercase letters and digits"),
        (StorageAccountSpec { name: "ab".into(), ..acct_spec() }, "name", "3-24"),
        (StorageAccountSpec { name: "a".repeat(25), ..acct_spec() }, "name", "3-24"),
        (
            StorageAccountSpec { resource_group: Input::Value("bad/rg".into()), ..acct_spec() },
            "resource_group",
            "letters",
        ),
        (StorageAccountSpec { kind: stackup_azure::StorageKind::FileStorage, ..acct_spec() }, "sku", "Premium"),
    ];
    for (spec, field, rule) in acct_cases {
        let err = accts.create(&ctx, &spec).await.unwrap_err().error;
        assert!(matches!(&err, Error::InvalidInput { field: f, rule: r } if f == field && r.contains(rule)), "{err:?}");
    }
    let share = FileShareSpec {
        name: "blossom-data".into(),
        storage_account_id: Input::Value(FakeArm::account_path("rg", "acct")),
        quota_gib: 100,
        access_tier: None,
        metadata: BTreeMap::new(),
    };
    let share_cases: Vec<(FileShareSpec, &str, &str)> = vec![
        (FileShareSpec { name: "blossom--data".into(), ..share.clone() }, "name", "'-'"),
        (FileShareSpec { name: "-data".into(), ..share.clone() }, "name", "'-'"),
        (FileShareSpec { name: "Data".into(), ..share.clone() }, "name", "lowercase"),
        (FileShareSpec { quota_gib: 0, ..share.clone() }, "quota_gib", "5120"),
        (FileShareSpec { quota_gib: 200_000, ..share.clone() }, "quota_gib", "102400"),
        (
            FileShareSpec { storage_account_id: Input::Value(FakeArm::rg_path("rg")), ..share.clone() },
            "storage_account_id",
            "Microsoft.Storage/storageAccounts",
        ),
        (
            FileShareSpec { storage_account_id: Input::Value("acct".into()), ..share.clone() },
            "storage_account_id",
            "ARM resource id",
        ),
        (
            FileShareSpec { metadata: BTreeMap::from([("1x".into(), "v".into())]), ..share.clone() },
            "metadata.1x",
            "digit",
        ),
    ];
    for (spec, field, rule) in share_cases {
        let err = shares.create(&ctx, &spec).await.unwrap_err().error;
        assert!(matches!(&err, Error::InvalidInput { field: f, rule: r } if f == field && r.contains(rule)), "{err:?}");
    }
    // Unresolved references are not judged yet.
    let pending = FileShareSpec { storage_account_id: OutputRef::new("acct", "id").input(), ..share };
    assert!(shares.validate(&pending).is_ok());
    assert!(arm.log().is_empty(), "no HTTP call was made: {:?}", arm.log());
}

#[tokio::test]
async fn a_dropped_connection_while_taking_a_snapshot_does_not_make_a_second_one() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    ResourceGroups::new(c.clone()).create(&Ctx::detached("rg"), &rg_spec()).await.unwrap();
    let acct = StorageAccounts::new(c.clone()).create(&Ctx::detached("acct"), &acct_spec()).await.unwrap();
    let spec = FileShareSpec {
        name: "blossom-data".into(),
        storage_account_id: Input::Value(acct.id.clone()),
        quota_gib: 100,
        access_tier: None,
        metadata: BTreeMap::new(),
    };
    let share = FileShares::new(c.clone()).create(&Ctx::detached("share"), &spec).await.unwrap();

    // The snapshot PUT reaches Azure, which makes the snapshot; its answer is lost.
    let dropping = stackup_azure::ArmClient::builder()
        .credential(stackup_azure::StaticTokenCredential::new(common::TOKEN))
        .subscription_id(common::SUB)
        .arm_endpoint(arm.uri())
        .retry_policy(stackup_core::retry::RetryPolicy::fast())
        .lro_options(stackup_azure::LroOptions::fast())
        .transport(common::DroppingTransport::new(vec![2]))
        .build()
        .unwrap();
    arm.clear_log();
    let snaps = ShareSnapshots::new(dropping);
    let snap = snaps
        .create(&Ctx::detached("snap"), &ShareSnapshotSpec { share_id: Input::Value(share.id.clone()) })
        .await
        .unwrap();
    let listed = FileShares::new(c.clone()).list_snapshots(&share.id).await.unwrap();
    assert_eq!(listed.len(), 1, "exactly one snapshot exists: {listed:?}");
    assert_eq!(snap.outputs.snapshot_time, listed[0].snapshot_time, "the one Azure made is the one recorded");
    assert_eq!(arm.count("PUT", "/shares/blossom-data"), 1, "the snapshot PUT was not blindly repeated");

    // When the lost request never arrived, the snapshot is requested again.
    let shares = FileShares::new(
        stackup_azure::ArmClient::builder()
            .credential(stackup_azure::StaticTokenCredential::new(common::TOKEN))
            .subscription_id(common::SUB)
            .arm_endpoint(arm.uri())
            .retry_policy(stackup_core::retry::RetryPolicy::fast())
            .lro_options(stackup_azure::LroOptions::fast())
            .transport(common::DroppingTransport::new(vec![2]))
            .build()
            .unwrap(),
    );
    // Request 1 lists; request 2, the PUT, is refused by the server (nothing made) and that
    // answer is lost too; the listing shows nothing new, so the PUT is sent again.
    arm.fault(Some("PUT"), "/shares/blossom-data", 500, vec![], serde_json::json!({}));
    let second = shares.create_snapshot(&share.id).await.unwrap();
    let listed = FileShares::new(c).list_snapshots(&share.id).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[1], second);
}
