//! Recipe `logs_to_r2` (seed 001). Against moto (the local S3 server at
//! `STACKUP_TEST_S3_ENDPOINT`): the bucket and its lifecycle applied, re-planned as unchanged,
//! destroyed; container logs shipped with the recipe's options land under
//! `{YYYYmmdd_HHMMSS}/{container_id}.log.gz`. Against a recording S3 fake (wiremock): re-apply
//! makes zero mutating calls, throttling and 5xx are retried, an apply killed after the create
//! was sent converges with one bucket. Plus the environment, the `rclone.conf` section and the
//! VM's first-boot files against the golden file.

#[path = "recipe_support/fake_s3.rs"]
mod fake_s3;
#[path = "recipe_support/golden.rs"]
mod golden;
#[path = "../crates/stackup-r2/tests/common/mod.rs"]
mod r2_common;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use fake_s3::fake_s3;
use stackup::prelude::*;
use stackup::r2::shipper::Shipper;
use stackup::r2::{R2Client, R2Config};
use stackup::recipes::logs_to_r2::{EnvValue, LogsToR2, ShipperCredentials};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn credentials() -> ShipperCredentials {
    ShipperCredentials::new(ACCOUNT, "AKIDSHIPPER", Secret::new("shipper-secret-key-0123456789"))
}

fn stack(client: &R2Client, recipe: &LogsToR2) -> Stack {
    let mut stack = Stack::new("jamjam");
    recipe.add_to(&mut stack, client).unwrap();
    stack
}

async fn apply(engine: &Engine) {
    let plan = engine.plan().await.unwrap();
    engine.apply(&plan).await.unwrap().into_result().unwrap();
}

// ---------------------------------------------------------------- moto

#[tokio::test]
async fn bucket_lifecycle_and_shipping_against_the_local_s3_server() {
    let client = r2_common::moto_client();
    let bucket = r2_common::unique("jamjam-logs");
    let recipe = LogsToR2::new().bucket(bucket.clone()).retention_days(400);
    let backend = Arc::new(MemoryBackend::new());
    let mut s = Stack::new("jamjam");
    let out = recipe.add_to(&mut s, &client).unwrap();
    assert_eq!(out.glob, "/var/lib/docker/containers/*/*-json.log");
    let engine = Engine::new(s, backend.clone());
    apply(&engine).await;
    let outputs = engine.outputs().await.unwrap();
    assert_eq!(outputs["logs/bucket"]["name"], bucket.as_str());
    let rules = client.s3().unwrap().get_bucket_lifecycle_configuration().bucket(&bucket).send().await.unwrap();
    assert_eq!(rules.rules()[0].expiration().and_then(|e| e.days()), Some(400));

    // Unchanged on a new engine over the same state.
    let plan = Engine::new(stack(&client, &recipe), backend.clone()).plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());

    // Ship two container logs laid out as Docker does, with the recipe's options.
    let dir = tempfile::tempdir().unwrap();
    let mut ids = BTreeSet::new();
    for (i, id) in ["4f1c0a9e", "b7d2e3f4"].iter().enumerate() {
        let id = format!("{id}{}", "0".repeat(56));
        std::fs::create_dir_all(dir.path().join(&id)).unwrap();
        std::fs::write(dir.path().join(&id).join(format!("{id}-json.log")), r2_common::docker_log(50_000, i as u64))
            .unwrap();
        ids.insert(id);
    }
    let recipe_here = recipe.clone().log_dir(dir.path().to_str().unwrap());
    let mut opts = recipe_here.add_to(&mut Stack::new("scratch"), &client).unwrap().ship_options;
    opts.timestamp = "20261125_170000".into();
    let shipper = Shipper::new(client.clone(), opts).unwrap();
    let items = shipper.plan(&recipe_here.glob()).unwrap();
    let report = shipper.ship(&items).await;
    assert_eq!(report.uploaded(), 2, "{:?}", report.files);
    let listed = client.s3().unwrap().list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: BTreeSet<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    let want: BTreeSet<String> = ids.iter().map(|id| format!("20261125_170000/{id}.log.gz")).collect();
    assert_eq!(keys, want);
    let first = want.iter().next().unwrap();
    let body = client.s3().unwrap().get_object().bucket(&bucket).key(first).send().await.unwrap();
    let gz = body.body.collect().await.unwrap().into_bytes();
    let mut plain = vec![];
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(plain.len(), 50_000, "a gzip of the whole log");

    // The bucket keeps the logs (the seed keeps them forever): destroy refuses a non-empty
    // bucket and nothing is lost; emptied, it goes.
    let engine = Engine::new(stack(&client, &recipe), backend.clone());
    let report = engine.destroy().await.unwrap();
    assert!(!report.is_success(), "a bucket with logs is not deleted");
    assert_eq!(client.s3().unwrap().list_objects_v2().bucket(&bucket).send().await.unwrap().contents().len(), 2);
    for k in &want {
        client.s3().unwrap().delete_object().bucket(&bucket).key(k).send().await.unwrap();
    }
    engine.destroy().await.unwrap().into_result().unwrap();
    assert!(client.s3().unwrap().head_bucket().bucket(&bucket).send().await.is_err(), "bucket deleted");
}

// ---------------------------------------------------------------- recording S3 fake

#[tokio::test]
async fn reapply_is_silent_and_faults_are_retried() {
    let (_server, fake, client) = fake_s3().await;
    fake.fault("HEAD", 500, 1);
    fake.fault("PUT", 503, 2);
    let recipe = LogsToR2::new();
    let backend = Arc::new(MemoryBackend::new());
    apply(&Engine::new(stack(&client, &recipe), backend.clone())).await;
    assert!(fake.0.lock().unwrap().buckets.contains("jamjam-logs"));

    fake.fault("HEAD", 503, 1);
    let before = fake.mutating();
    let engine = Engine::new(stack(&client, &recipe), backend.clone());
    let plan = engine.plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    engine.apply(&plan).await.unwrap().into_result().unwrap();
    assert_eq!(fake.mutating(), before, "re-apply made mutating calls");

    fake.fault("DELETE", 500, 1);
    engine.destroy().await.unwrap().into_result().unwrap();
    assert!(fake.0.lock().unwrap().buckets.is_empty());
}

#[tokio::test]
async fn an_apply_killed_after_the_create_was_sent_converges_with_one_bucket() {
    let (_server, fake, client) = fake_s3().await;
    fake.0.lock().unwrap().create_delay = Some(Duration::from_secs(5));
    let recipe = LogsToR2::new();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(stack(&client, &recipe), backend.clone());
    let plan = engine.plan().await.unwrap();
    {
        let run = engine.apply(&plan);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => panic!("finished before it was killed: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => if fake.count("PUT") > 0 { break },
            }
        }
    }
    drop(engine);
    apply(&Engine::new(stack(&client, &recipe), backend.clone())).await;
    assert_eq!(fake.count("PUT"), 1, "the restart adopted the bucket instead of creating it again");
    assert_eq!(fake.0.lock().unwrap().buckets.len(), 1);
    let plan = Engine::new(stack(&client, &recipe), backend).plan().await.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
}

// ---------------------------------------------------------------- offline pieces

#[test]
fn environment_and_rclone_section_follow_the_seed_without_leaking_the_secret() {
    let recipe = LogsToR2::new();
    let env = recipe.environment(&credentials());
    let names: Vec<&str> = env.vars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_ACCOUNT_ID", "R2_BUCKET_NAME"]);
    assert_eq!(env.get("R2_BUCKET_NAME"), Some(&EnvValue::Plain("jamjam-logs".into())));
    let shown = format!("{env}{env:?}");
    assert!(shown.contains("R2_SECRET_ACCESS_KEY=(sensitive)"), "{shown}");
    assert!(!shown.contains("shipper-secret-key"), "{shown}");
    assert!(env.to_env_file().expose().contains("R2_SECRET_ACCESS_KEY=shipper-secret-key-0123456789\n"));
    assert!(!format!("{:?}", credentials()).contains("shipper-secret-key"));

    let conf = recipe.rclone_conf(&credentials()).unwrap();
    assert_eq!(
        conf,
        format!(
            "[r2]\ntype = s3\nprovider = Cloudflare\naccess_key_id = AKIDSHIPPER\nsecret_access_key = <R2_SECRET_ACCESS_KEY>\n\
             endpoint = https://{ACCOUNT}.r2.cloudflarestorage.com\nacl = private\n"
        )
    );
    let mut s = Stack::new("x");
    let client = R2Client::new(R2Config::new(ACCOUNT, "AKID", "secret").unwrap()).unwrap();
    let out = recipe.add_to(&mut s, &client).unwrap();
    assert_eq!(out.ship_options.bucket, "jamjam-logs");
    assert!(out.ship_options.prefix.is_empty());
    assert_eq!(out.ship_options.key_for("abc"), format!("{}/abc.log.gz", out.ship_options.timestamp));
}

#[tokio::test]
async fn the_retention_rule_covers_exactly_the_key_prefix() {
    let (_server, s3, client) = fake_s3().await;
    let rule_prefix = |recipe: LogsToR2| {
        let mut s = Stack::new("jamjam");
        let out = recipe.add_to(&mut s, &client).unwrap();
        assert!(out.lifecycle.is_some());
        let node = s.node("logs/lifecycle").unwrap();
        let spec = node.spec.clone();
        assert_eq!(spec["rules"].as_array().unwrap().len(), 1, "{spec}");
        spec["rules"][0]["prefix"].as_str().unwrap().to_owned()
    };
    // Keys are `prod/{ts}/{id}.log.gz`: the rule must not reach `production/…` or `prod-eu/…`.
    assert_eq!(rule_prefix(LogsToR2::new().key_prefix("prod").retention_days(30)), "prod/");
    assert_eq!(rule_prefix(LogsToR2::new().retention_days(30)), "", "no prefix: the whole bucket");
    assert_eq!(s3.mutating(), 0);
}

#[test]
fn bad_input_is_rejected_before_any_call() {
    let client = R2Client::new(R2Config::new(ACCOUNT, "AKID", "secret").unwrap()).unwrap();
    let cases = [
        (LogsToR2::new().bucket("Jamjam_Logs"), "bucket"),
        (LogsToR2::new().key_prefix("/logs"), "prefix"),
        (LogsToR2::new().schedule("hourly"), "schedule"),
        (LogsToR2::new().log_dir("var/lib/docker"), "log_dir"),
        (LogsToR2::new().script_path("/opt/x y.sh"), "script_path"),
        (LogsToR2::new().remote("r2:bad"), "remote"),
        (LogsToR2::new().retention_days(0), "retention_days"),
    ];
    for (recipe, field) in cases {
        let mut s = Stack::new("bad");
        match recipe.add_to(&mut s, &client) {
            Err(Error::InvalidInput { field: f, .. }) => assert!(f.contains(field), "{f} should name {field}"),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
        assert!(s.is_empty());
    }
    let bad_account = ShipperCredentials::new("not-an-account", "AKID", Secret::new("s"));
    assert!(matches!(LogsToR2::new().ship_from_vm(CloudConfig::new(), &bad_account), Err(Error::InvalidInput { .. })));
}

#[test]
fn the_vm_side_matches_seed_001() {
    let doc = LogsToR2::new().ship_from_vm(CloudConfig::new(), &credentials()).unwrap();
    doc.validate().unwrap();
    let preview = doc.preview();
    golden::check("logs_to_r2.cloud-init.yaml", &preview);
    for exact in [
        "  - path: \"/root/.config/rclone/rclone.conf\"\n    owner: \"root:root\"\n    permissions: \"0600\"\n",
        "  - path: \"/opt/jamjam/scripts/upload-logs-to-r2.sh\"\n    owner: \"root:root\"\n    permissions: \"0755\"\n",
        "      TIMESTAMP=$(date +%Y%m%d_%H%M%S)\n      LOG_DIR=/var/lib/docker/containers\n",
        "      for container_dir in $LOG_DIR/*/; do\n",
        "        log_file=\"${container_dir}${container_id}-json.log\"\n",
        "          gzip -c \"$log_file\" | rclone rcat r2:jamjam-logs/${TIMESTAMP}/${container_id}.log.gz\n",
        "      0 * * * * root /opt/jamjam/scripts/upload-logs-to-r2.sh\n",
        "\"max-size\": \"100m\"",
        "\"max-file\": \"5\"",
    ] {
        assert!(preview.contains(exact), "missing `{exact}` in\n{preview}");
    }
    assert!(!preview.contains("shipper-secret-key"), "redacted in previews");
    let rendered = doc.render();
    assert!(rendered.is_sensitive());
    let text = rendered.known().unwrap();
    assert!(text.contains("      secret_access_key = shipper-secret-key-0123456789\n"), "the VM gets the real secret");
    assert!(text.contains(&format!("      endpoint = https://{ACCOUNT}.r2.cloudflarestorage.com\n")));
}
