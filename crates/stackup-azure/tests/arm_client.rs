//! The ARM client and long-running operations against the fake ARM: retries with
//! `Retry-After`, 5xx, dropped connections, ARM error details, both LRO patterns, failed and
//! canceled operations, deadlines, and where tokens may go.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use stackup_azure::api_versions::{NETWORK, RESOURCES, STORAGE};
use stackup_azure::{ArmClient, LroOptions, StaticTokenCredential};
use stackup_core::Error;
use stackup_core::retry::RetryPolicy;

use common::{FakeArm, SUB, TOKEN, client};

fn rg_body() -> serde_json::Value {
    json!({"location": "japaneast", "tags": {"managed-by": "stackup"}})
}

#[tokio::test]
async fn throttling_is_retried_honouring_retry_after_ms() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    arm.fault(
        Some("PUT"),
        "/resourcegroups/rg1",
        429,
        vec![("x-ms-retry-after-ms", "150".into())],
        json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
    );
    arm.fault(
        Some("PUT"),
        "/resourcegroups/rg1",
        429,
        vec![("retry-after", "0".into())],
        json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
    );
    let start = Instant::now();
    let body = c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150), "the 150 ms the server asked for was honoured");
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(arm.count("PUT", "/resourcegroups/rg1"), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    for _ in 0..2 {
        arm.fault(
            Some("PUT"),
            "/resourcegroups/rg1",
            500,
            vec![],
            json!({"error": {"code": "InternalServerError", "message": "oops"}}),
        );
    }
    arm.fault(
        Some("PUT"),
        "/resourcegroups/rg1",
        503,
        vec![("retry-after", "0".into())],
        json!({"error": {"code": "ServiceUnavailable", "message": "busy"}}),
    );
    c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    assert_eq!(arm.count("PUT", "/resourcegroups/rg1"), 4);
}

#[tokio::test]
async fn persistent_server_errors_give_up_with_the_arm_details() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    for _ in 0..10 {
        arm.fault(
            Some("GET"),
            "/resourcegroups/rg1",
            500,
            vec![],
            json!({"error": {"code": "InternalServerError", "message": "the server broke"}}),
        );
    }
    let err = c.get(&FakeArm::rg_path("rg1"), RESOURCES).await.unwrap_err();
    assert!(matches!(err, Error::Provider(_)), "{err:?}");
    assert_eq!(err.code(), Some("InternalServerError"));
    assert!(err.request_id().is_some(), "x-ms-request-id is kept");
    assert_eq!(arm.count("GET", "/resourcegroups/rg1"), RetryPolicy::fast().max_attempts as usize);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_keep_code_message_request_id() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    arm.fault(Some("PUT"), "/resourcegroups/rg1", 409, vec![("x-ms-request-id", "req-409".into())], json!({"error": {"code": "ResourceGroupBeingDeleted", "message": "The resource group 'rg1' is in deprovisioning state."}}));
    let err = c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(err.code(), Some("ResourceGroupBeingDeleted"));
    assert_eq!(err.request_id(), Some("req-409"));
    assert!(err.to_string().contains("deprovisioning"), "{err}");
    assert_eq!(arm.count("PUT", "/resourcegroups/rg1"), 1);
}

#[tokio::test]
async fn a_dropped_connection_after_the_put_is_retried_without_duplicates() {
    let arm = FakeArm::start().await;
    let c = ArmClient::builder()
        .credential(StaticTokenCredential::new(TOKEN))
        .subscription_id(SUB)
        .arm_endpoint(arm.uri())
        .retry_policy(RetryPolicy::fast())
        .lro_options(LroOptions::fast())
        .transport(common::DroppingTransport::new(vec![1]))
        .build()
        .unwrap();
    let body = c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    assert_eq!(body["name"], "rg1");
    assert_eq!(arm.count("PUT", "/resourcegroups/rg1"), 2, "the PUT reached the server twice");
    assert_eq!(arm.resource_count(), 1, "PUT by name is idempotent: one group exists");
}

#[tokio::test]
async fn location_pattern_is_followed_to_the_end() {
    let arm = FakeArm::start().await;
    arm.state.lock().unwrap().op_polls = 3;
    let c = client(&arm);
    c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    let acct = FakeArm::account_path("rg1", "acct1");
    let body = json!({"location": "japaneast", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}});
    let out = c.put(None, &acct, STORAGE, &body).await.unwrap();
    assert_eq!(out["properties"]["provisioningState"], "Succeeded");
    assert_eq!(out["properties"]["primaryEndpoints"]["file"], "https://acct1.file.core.windows.net/");
    let polls = arm.log().iter().filter(|(m, p)| m == "GET" && p.contains("/asyncoperations/")).count();
    assert_eq!(polls, 4, "three 202s then the 200");
}

#[tokio::test]
async fn async_operation_pattern_is_followed_to_the_end() {
    let arm = FakeArm::start().await;
    arm.state.lock().unwrap().op_polls = 2;
    let c = client(&arm);
    c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    let path = format!("{}/providers/Microsoft.Network/virtualNetworks/vnet1", FakeArm::rg_path("rg1"));
    let out = c
        .put(
            None,
            &path,
            NETWORK,
            &json!({"location": "japaneast", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}),
        )
        .await
        .unwrap();
    assert_eq!(out["properties"]["provisioningState"], "Succeeded");
    let polls = arm.log().iter().filter(|(m, p)| m == "GET" && p.contains("/operations/")).count();
    assert_eq!(polls, 3);
}

#[tokio::test]
async fn a_failed_async_operation_carries_arm_code_message_and_request_id() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    arm.fail_next_operation(
        "virtualnetworks/vnet1",
        "InvalidAddressPrefix",
        "Address prefix 10.0.0.0/33 is not valid.",
        false,
    );
    let path = format!("{}/providers/Microsoft.Network/virtualNetworks/vnet1", FakeArm::rg_path("rg1"));
    let err = c.put(None, &path, NETWORK, &json!({"location": "japaneast"})).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAddressPrefix"), "{err}");
    assert!(err.to_string().contains("Address prefix 10.0.0.0/33 is not valid."), "{err}");
    assert!(err.to_string().contains("ended Failed"), "{err}");
    assert!(err.to_string().contains("correlation id corr-"), "{err}");
    assert!(err.request_id().is_some());
}

#[tokio::test]
async fn a_canceled_operation_is_an_error() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    arm.fail_next_operation("virtualnetworks/vnet1", "OperationCanceled", "The operation was canceled.", true);
    let path = format!("{}/providers/Microsoft.Network/virtualNetworks/vnet1", FakeArm::rg_path("rg1"));
    let err = c.put(None, &path, NETWORK, &json!({"location": "japaneast"})).await.unwrap_err();
    assert!(err.to_string().contains("ended Canceled"), "{err}");
}

#[tokio::test]
async fn a_failed_location_operation_is_an_error() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    arm.fail_next_operation(
        "storageaccounts/acct1",
        "StorageAccountOperationFailed",
        "Provisioning failed in region.",
        false,
    );
    let acct = FakeArm::account_path("rg1", "acct1");
    let err = c
        .put(None, &acct, STORAGE, &json!({"location": "japaneast", "sku": {"name": "Standard_LRS"}}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("StorageAccountOperationFailed"));
    assert!(err.to_string().contains("Provisioning failed in region."), "{err}");
}

#[tokio::test]
async fn operations_stop_at_the_deadline() {
    let arm = FakeArm::start().await;
    arm.state.lock().unwrap().op_polls = 10_000;
    let c = ArmClient::builder()
        .credential(StaticTokenCredential::new(TOKEN))
        .subscription_id(SUB)
        .arm_endpoint(arm.uri())
        .retry_policy(RetryPolicy::fast())
        .lro_options(LroOptions { timeout: Duration::from_millis(200), ..LroOptions::fast() })
        .build()
        .unwrap();
    c.put(None, &FakeArm::rg_path("rg1"), RESOURCES, &rg_body()).await.unwrap();
    let path = format!("{}/providers/Microsoft.Network/virtualNetworks/vnet1", FakeArm::rg_path("rg1"));
    let err = c.put(None, &path, NETWORK, &json!({"location": "japaneast"})).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("virtualNetworks/vnet1"), "{err}");
}

#[tokio::test]
async fn delete_waits_for_the_location_operation_and_tolerates_already_gone() {
    let arm = FakeArm::start().await;
    arm.state.lock().unwrap().op_polls = 2;
    let c = client(&arm);
    let rg = FakeArm::rg_path("rg1");
    c.put(None, &rg, RESOURCES, &rg_body()).await.unwrap();
    c.delete(None, &rg, RESOURCES).await.unwrap();
    assert!(arm.resource(&rg).is_none());
    c.delete(None, &rg, RESOURCES).await.unwrap();
    assert_eq!(c.get(&rg, RESOURCES).await.unwrap(), None);
}

#[tokio::test]
async fn the_token_never_goes_to_another_host_or_over_plain_http() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    assert!(c.check_poll_url(&format!("{}/subscriptions/x/operationresults/1", arm.uri())).is_ok());
    assert!(c.check_poll_url("https://evil.example.com/subscriptions/x/operationresults/1").is_err());
    assert!(c.check_poll_url("http://127.0.0.2:1/x").is_err(), "a different port/host is refused");
    let err = ArmClient::builder()
        .credential(StaticTokenCredential::new(TOKEN))
        .subscription_id(SUB)
        .arm_endpoint("http://management.example.com")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    // A poll URL on another host stops the operation before any request reaches it.
    arm.fault(
        Some("PUT"),
        "/resourcegroups/rg2",
        202,
        vec![("location", "https://attacker.example.com/op".into())],
        json!(null),
    );
    let err = c.put(None, &FakeArm::rg_path("rg2"), RESOURCES, &rg_body()).await.unwrap_err();
    assert!(err.to_string().contains("not on the ARM endpoint"), "{err}");
}

#[tokio::test]
async fn requests_carry_the_bearer_token_and_api_version() {
    let arm = FakeArm::start().await;
    let c = client(&arm);
    c.get(&FakeArm::rg_path("rg1"), RESOURCES).await.unwrap();
    let reqs = arm.server.received_requests().await.unwrap();
    let r = &reqs[0];
    assert_eq!(r.headers.get("authorization").unwrap().to_str().unwrap(), format!("Bearer {TOKEN}"));
    assert_eq!(r.url.query(), Some("api-version=2024-03-01"));
    assert!(r.headers.get("x-ms-client-request-id").is_some());
}

#[tokio::test]
async fn missing_subscription_is_a_configuration_error_at_first_use() {
    let c =
        ArmClient::builder().credential(StaticTokenCredential::new(TOKEN)).arm_endpoint("http://127.0.0.1:9").build();
    // AZURE_SUBSCRIPTION_ID may be set on a developer machine; only check when it is not.
    if std::env::var("AZURE_SUBSCRIPTION_ID").is_err() {
        let err = c.unwrap().resource_group_path("rg").unwrap_err();
        assert!(err.to_string().contains("AZURE_SUBSCRIPTION_ID"), "{err}");
    }
}
