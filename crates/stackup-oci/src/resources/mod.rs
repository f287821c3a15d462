//! The provisioners, one file per OCI resource, and the lifecycle helpers they share.

pub mod instance;
pub mod internet_gateway;
pub mod route_table;
pub mod security_list;
pub mod subnet;
pub mod vcn;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use stackup_core::wait::{Poll, Waiter};
use stackup_core::{Ctx, Error};

use crate::client::{OciClient, Service};

/// The provider name in resource kinds.
pub const PROVIDER: &str = "oci";

/// The `lifecycleState` of a JSON object (unknown or missing → `"UNKNOWN"`).
pub(crate) fn lifecycle(v: &Value) -> &str {
    v.get("lifecycleState").and_then(Value::as_str).unwrap_or("UNKNOWN")
}

fn waiter(client: &OciClient, what: String, timeout: Duration) -> Waiter {
    let t = client.timing();
    Waiter { what, interval: t.poll_interval, max_interval: t.max_poll_interval, timeout }
}

/// Polls `GET path` until its `lifecycleState` is one of `ready` (returning the object), fails
/// on one of `failed`, and stops when the run is cancelled.
pub(crate) async fn wait_for_state<T: DeserializeOwned>(
    client: &OciClient,
    ctx: &Ctx,
    what: &str,
    path: &str,
    ready: &[&str],
    failed: &[&str],
    timeout: Duration,
) -> Result<T, Error> {
    let w = waiter(client, format!("{what} to be {}", ready.join(" or ")), timeout);
    let v: Value = w
        .wait(|| async {
            if ctx.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let v: Value = client.get(Service::Iaas, path, &[]).await?;
            let state = lifecycle(&v).to_owned();
            if ready.contains(&state.as_str()) {
                Ok(Poll::Done(v))
            } else if failed.contains(&state.as_str()) {
                Ok(Poll::Failed(Error::Provider(stackup_core::ApiErrorDetails {
                    code: Some(format!("lifecycleState {state}")),
                    message: format!("{what} went to {state} while waiting for {}", ready.join(" or ")),
                    ..Default::default()
                })))
            } else {
                ctx.progress(format!("{what} is {state}"));
                Ok(Poll::Pending(None))
            }
        })
        .await?;
    serde_json::from_value(v).map_err(|e| Error::other(format!("decoding {what}"), e))
}

/// Polls `GET path` until it answers 404 or a `TERMINATED` state.
pub(crate) async fn wait_gone(
    client: &OciClient,
    ctx: &Ctx,
    what: &str,
    path: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let w = waiter(client, format!("{what} to be deleted"), timeout);
    w.wait(|| async {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled);
        }
        match client.get_opt::<Value>(Service::Iaas, path).await? {
            None => Ok(Poll::Done(())),
            Some(v) if lifecycle(&v) == "TERMINATED" => Ok(Poll::Done(())),
            Some(v) => {
                ctx.progress(format!("{what} is {}", lifecycle(&v)));
                Ok(Poll::Pending(None))
            }
        }
    })
    .await
}

/// True when an object's tags say this stack and address created it.
pub(crate) fn tagged_for(ctx: &Ctx, tags: &BTreeMap<String, String>) -> bool {
    tags.get("stackup-address").map(String::as_str) == Some(ctx.address())
        && tags.get("stackup-stack").map(String::as_str) == Some(ctx.stack())
}

/// Finds, among `GET path?query` results, a live object this stack and address created.
pub(crate) async fn find_tagged(
    client: &OciClient,
    ctx: &Ctx,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Option<Value>, Error> {
    let items: Vec<Value> = client.list(Service::Iaas, path, query).await?;
    Ok(items.into_iter().find(|v| {
        let tags: BTreeMap<String, String> =
            v.get("freeformTags").cloned().and_then(|t| serde_json::from_value(t).ok()).unwrap_or_default();
        !matches!(lifecycle(v), "TERMINATED" | "TERMINATING") && tagged_for(ctx, &tags)
    }))
}

/// Decodes a JSON object into a wire type.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::other(format!("decoding {what}"), e))
}
