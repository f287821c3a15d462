//! Credentials from a real config file on disk, end to end: API-key and session-token profiles
//! sign requests the fake OCI verifies; a fingerprint mismatch fails before any call; endpoint
//! overrides from the environment (checked in a child process, since tests must not mutate the
//! environment of the whole test binary).

mod common;

use std::path::Path;

use common::FakeOci;
use stackup_core::{Ctx, Provisioner};
use stackup_oci::testing::{TEST_KEY_FINGERPRINT, TEST_KEY_PKCS8, TEST_TENANCY, TEST_USER};
use stackup_oci::{OciClient, Service, Timing, Vcns};

fn write_config(dir: &Path, profile_body: &str) -> std::path::PathBuf {
    let key = dir.join("oci_api_key.pem");
    std::fs::write(&key, TEST_KEY_PKCS8).unwrap();
    let cfg = dir.join("config");
    let text =
        format!("[DEFAULT]\ntenancy={TEST_TENANCY}\nregion=us-phoenix-1\nkey_file={}\n\n{profile_body}", key.display());
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[tokio::test]
async fn api_key_and_session_profiles_sign_verifiable_requests() {
    let (server, fake) = FakeOci::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOi.session.token\n").unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[APIKEY]\nuser={TEST_USER}\nfingerprint={TEST_KEY_FINGERPRINT}\n\n[SESSION]\nfingerprint={TEST_KEY_FINGERPRINT}\n\
             security_token_file={}\n",
            token.display()
        ),
    );
    for profile in ["APIKEY", "SESSION"] {
        let client = OciClient::builder()
            .config_file(&cfg)
            .profile(profile)
            .all_endpoints(server.uri())
            .timing(Timing::fast())
            .build()
            .unwrap();
        assert_eq!(client.region(), "us-phoenix-1");
        assert_eq!(client.tenancy(), TEST_TENANCY);
        let ads: Vec<serde_json::Value> = client
            .get(Service::Identity, "/20160918/availabilityDomains", &[("compartmentId", client.tenancy())])
            .await
            .unwrap();
        assert_eq!(ads.len(), 3);
        assert!(Vcns::new(client).read(&Ctx::detached("v"), "ocid1.vcn.oc1.phx.none", None).await.unwrap().is_none());
    }
    fake.assert_all_signed();
    assert_eq!(fake.log().len(), 4);
}

#[test]
fn fingerprint_mismatch_fails_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("[X]\nuser={TEST_USER}\nfingerprint=20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34\n"),
    );
    let e = OciClient::builder().config_file(&cfg).profile("X").build().unwrap_err().to_string();
    assert!(e.contains("401") && e.contains(TEST_KEY_FINGERPRINT), "{e}");
    let e = OciClient::builder().config_file(&cfg).profile("MISSING").build().unwrap_err().to_string();
    assert!(e.contains("[MISSING]") && e.contains(&cfg.display().to_string()), "{e}");
}

/// Runs only inside the child process started by `endpoint_env_overrides_apply`.
#[test]
fn endpoint_env_child() {
    let Ok(mode) = std::env::var("STACKUP_OCI_TEST_CHILD") else { return };
    let built = OciClient::builder().offline(TEST_TENANCY).region("us-phoenix-1").build();
    if mode == "bad" {
        let e = built.unwrap_err().to_string();
        assert!(e.contains("STACKUP_OCI_IAAS_ENDPOINT") && e.contains("loopback"), "{e}");
    } else {
        let c = built.unwrap();
        assert_eq!(c.endpoint(Service::Iaas).as_str(), "http://127.0.0.1:1/iaas");
        assert_eq!(c.endpoint(Service::Identity).as_str(), "http://127.0.0.2:2/identity");
        assert_eq!(c.endpoint(Service::Limits).as_str(), "http://localhost:3/");
        // The builder beats the environment.
        let b = OciClient::builder()
            .offline(TEST_TENANCY)
            .region("us-phoenix-1")
            .iaas_endpoint("https://x.example")
            .build()
            .unwrap();
        assert_eq!(b.endpoint(Service::Iaas).as_str(), "https://x.example/");
    }
    println!("CHILD-OK-{mode}");
}

#[test]
fn endpoint_env_overrides_apply() {
    let exe = std::env::current_exe().unwrap();
    for (mode, iaas) in [("good", "http://127.0.0.1:1/iaas"), ("bad", "http://10.0.0.1/iaas")] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "endpoint_env_child", "--nocapture", "--test-threads=1"])
            .env("STACKUP_OCI_TEST_CHILD", mode)
            .env("STACKUP_OCI_IAAS_ENDPOINT", iaas)
            .env("STACKUP_OCI_IDENTITY_ENDPOINT", "http://127.0.0.2:2/identity")
            .env("STACKUP_OCI_LIMITS_ENDPOINT", "http://localhost:3")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains(&format!("CHILD-OK-{mode}")), "{mode}: {text}");
    }
}
