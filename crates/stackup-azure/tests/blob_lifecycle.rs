//! Seed 003's blob container and lifecycle policy against the fake ARM.

mod common;

use std::collections::BTreeMap;

use stackup_azure::*;
use stackup_core::{Action, Ctx, Error, Input, Provisioner};

use common::{FakeArm, client};

async fn account(c: &ArmClient) -> String {
    ResourceGroups::new(c.clone())
        .create(
            &Ctx::detached("rg"),
            &ResourceGroupSpec { name: "dursor-rg".into(), location: "japaneast".into(), tags: BTreeMap::new() },
        )
        .await
        .unwrap();
    StorageAccounts::new(c.clone())
        .create(&Ctx::detached("acct"), &StorageAccountSpec::new("dursorstorage1", "dursor-rg", "japaneast"))
        .await
        .unwrap()
        .id
}

fn seed_rules() -> Vec<LifecycleRule> {
    vec![
        LifecycleRule::new("temp", ["dursor-storage/temp/"]).delete_after(7),
        LifecycleRule::new("tiering", ["dursor-storage/workspaces/", "dursor-storage/artifacts/"])
            .cool_after(30)
            .archive_after(90)
            .delete_after(365),
    ]
}

#[tokio::test]
async fn container_lifecycle() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let acct = account(&c).await;
    let containers = BlobContainers::new(c.clone());
    let ctx = Ctx::detached("container");
    let spec = BlobContainerSpec {
        name: "dursor-storage".into(),
        storage_account_id: Input::Value(acct.clone()),
        public_access: PublicAccess::None,
        metadata: BTreeMap::new(),
    };
    let created = containers.create(&ctx, &spec).await.unwrap();
    assert_eq!(created.outputs.url, "https://dursorstorage1.blob.core.windows.net/dursor-storage");
    assert_eq!(arm.resource(&created.id).unwrap()["properties"]["publicAccess"], "None");

    arm.clear_log();
    let observed = containers.read(&ctx, &created.id, None).await.unwrap().unwrap();
    assert_eq!(containers.diff(&spec, &observed).action(), Action::NoOp, "{:?}", containers.diff(&spec, &observed));
    assert!(arm.mutating_calls().is_empty());

    let mut labelled = spec.clone();
    labelled.metadata.insert("purpose".into(), "workspaces".into());
    assert_eq!(containers.diff(&labelled, &observed).action(), Action::Update);
    let updated = containers.update(&ctx, &created.id, &labelled, &observed).await.unwrap();
    assert_eq!(containers.diff(&labelled, &updated).action(), Action::NoOp);
    let mut renamed = labelled.clone();
    renamed.name = "dursor-storage2".into();
    assert_eq!(containers.diff(&renamed, &updated).action(), Action::Replace);

    containers.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(containers.read(&ctx, &created.id, None).await.unwrap().is_none());
}

#[tokio::test]
async fn lifecycle_policy_has_the_published_shape_and_reapplies_as_a_no_op() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let acct = account(&c).await;
    let policies = LifecyclePolicies::new(c.clone());
    let ctx = Ctx::detached("policy");
    let spec = LifecyclePolicySpec { storage_account_id: Input::Value(acct.clone()), rules: seed_rules() };
    let created = policies.create(&ctx, &spec).await.unwrap();
    assert!(created.id.ends_with("/managementPolicies/default"));
    let stored = arm.resource(&created.id).unwrap();
    let rules = stored["properties"]["policy"]["rules"].as_array().unwrap();
    let tiering = rules.iter().find(|r| r["name"] == "tiering").unwrap();
    assert_eq!(tiering["type"], "Lifecycle");
    assert_eq!(tiering["definition"]["filters"]["blobTypes"][0], "blockBlob");
    assert_eq!(tiering["definition"]["actions"]["baseBlob"]["tierToCool"]["daysAfterModificationGreaterThan"], 30);
    assert_eq!(tiering["definition"]["actions"]["baseBlob"]["tierToArchive"]["daysAfterModificationGreaterThan"], 90);
    assert_eq!(tiering["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"], 365);
    let temp = rules.iter().find(|r| r["name"] == "temp").unwrap();
    assert_eq!(temp["definition"]["filters"]["prefixMatch"][0], "dursor-storage/temp/");
    assert!(temp["definition"]["actions"]["baseBlob"].get("tierToCool").is_none());

    arm.clear_log();
    let observed = policies.read(&ctx, &created.id, None).await.unwrap().unwrap();
    let mut reordered = spec.clone();
    reordered.rules.reverse();
    assert_eq!(policies.diff(&reordered, &observed).action(), Action::NoOp, "rule order does not matter");
    assert!(arm.mutating_calls().is_empty());

    let mut longer = spec.clone();
    longer.rules[0] = LifecycleRule::new("temp", ["dursor-storage/temp/"]).delete_after(14);
    assert_eq!(policies.diff(&longer, &observed).action(), Action::Update);
    let updated = policies.update(&ctx, &created.id, &longer, &observed).await.unwrap();
    assert_eq!(updated.rules.iter().find(|r| r.name == "temp").unwrap().delete_after_days, Some(14));
    assert_eq!(policies.lookup(&ctx, &spec).await.unwrap().unwrap().id, created.id);

    policies.delete(&ctx, &created.id, &updated).await.unwrap();
    assert!(policies.read(&ctx, &created.id, None).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_lifecycle_and_container_inputs_are_rejected_before_any_call() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    let acct = FakeArm::account_path("rg", "acct");
    let policies = LifecyclePolicies::new(c.clone());
    let cases: Vec<(Vec<LifecycleRule>, &str, &str)> = vec![
        (vec![], "rules", "1-100"),
        (
            vec![LifecycleRule::new("r", ["temp/"]).cool_after(90).archive_after(30)],
            "rules[0].tier_to_archive_after_days",
            "after cool",
        ),
        (
            vec![LifecycleRule::new("r", ["data1/"]).cool_after(30).delete_after(7)],
            "rules[0].delete_after_days",
            "after the tiering",
        ),
        (vec![LifecycleRule::new("r", ["data1/"])], "rules[0].actions", "at least one action"),
        (vec![LifecycleRule::new("r-1", ["data1/"]).delete_after(7)], "rules[0].name", "letters and digits"),
        (
            vec![
                LifecycleRule::new("r", ["data1/"]).delete_after(7),
                LifecycleRule::new("r", ["data2/"]).delete_after(7),
            ],
            "rules[1].name",
            "unique",
        ),
        (vec![LifecycleRule::new("r", ["Temp/"]).delete_after(7)], "rules[0].prefix_match", "container name"),
    ];
    for (rules, field, rule) in cases {
        let spec = LifecyclePolicySpec { storage_account_id: Input::Value(acct.clone()), rules };
        let err = policies.create(&Ctx::detached("p"), &spec).await.unwrap_err().error;
        assert!(matches!(&err, Error::InvalidInput { field: f, rule: r } if f == field && r.contains(rule)), "{err:?}");
    }
    let containers = BlobContainers::new(c.clone());
    for (name, rule) in
        [("Dursor", "lowercase"), ("du", "3-63"), ("dursor--storage", "'-'"), ("dursor_storage", "lowercase")]
    {
        let spec = BlobContainerSpec {
            name: name.into(),
            storage_account_id: Input::Value(acct.clone()),
            public_access: PublicAccess::None,
            metadata: BTreeMap::new(),
        };
        let err = containers.create(&Ctx::detached("c"), &spec).await.unwrap_err().error;
        assert!(
            matches!(&err, Error::InvalidInput { field, rule: r } if field == "name" && r.contains(rule)),
            "{name}: {err:?}"
        );
    }
    assert!(arm.log().is_empty());
}
