//! ARM long-running operations.
//!
//! ARM answers a slow PUT, DELETE or POST with 201/202 and one of two polling patterns
//! (learn.microsoft.com/azure/azure-resource-manager/management/async-operations):
//!
//! - **`Azure-AsyncOperation`** (preferred when present): GET that URL until its `status` is
//!   `Succeeded`, `Failed` or `Canceled`; the body of a failed operation carries
//!   `error.code`/`error.message`. Then the resource is read again.
//! - **`Location`**: GET that URL; 202 means still running, 200/204 means done, any 4xx/5xx
//!   means the operation failed.
//!
//! A synchronous 200/201 whose `properties.provisioningState` is not terminal (`Creating`,
//! `Updating`, `Accepted`, …) is polled by reading the resource until it is `Succeeded`.
//!
//! Every wait honours `Retry-After` (capped by [`LroOptions::max_retry_after`]), backs off
//! otherwise, stops at [`LroOptions::timeout`], stops when the run is cancelled, and turns a
//! terminal `Failed`/`Canceled` into an error with ARM's code and message and the
//! `x-ms-request-id` of the request that started the operation.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use stackup_core::{ApiErrorDetails, Ctx, Error};

use crate::client::{ArmClient, ArmMethod, ArmRequest, ArmResponse};
use crate::error::AzureError;

/// How long-running operations are polled.
#[derive(Debug, Clone, PartialEq)]
pub struct LroOptions {
    /// First delay between polls when the server gives no `Retry-After`.
    pub interval: Duration,
    /// Largest delay between polls without `Retry-After` (the delay grows ×1.5 per poll).
    pub max_interval: Duration,
    /// Largest `Retry-After` honoured (a longer one is shortened to this).
    pub max_retry_after: Duration,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Default for LroOptions {
    /// ARM's guidance: poll every 5 s growing to 15 s without `Retry-After`; give up after an hour
    /// (a VM with extensions can take tens of minutes).
    fn default() -> Self {
        LroOptions {
            interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(60),
            timeout: Duration::from_secs(3600),
        }
    }
}

impl LroOptions {
    /// Millisecond polling for tests.
    pub fn fast() -> Self {
        LroOptions {
            interval: Duration::from_millis(5),
            max_interval: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(20),
            timeout: Duration::from_secs(20),
        }
    }

    /// The delay before the next poll: the server's `Retry-After` (capped) or the current
    /// interval.
    pub fn next_delay(&self, retry_after: Option<Duration>, interval: Duration) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => interval,
        }
    }
}

/// The outcome of one poll.
pub enum Step<T> {
    /// Finished.
    Done(T),
    /// Still running; poll again after the server's delay (if it gave one).
    Pending(Option<Duration>),
}

/// Terminal provisioning/operation states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Finished well (also: no state at all).
    Succeeded,
    /// Finished badly.
    Failed,
    /// Cancelled.
    Canceled,
    /// Anything else (`InProgress`, `Creating`, `Updating`, `Accepted`, `Deleting`, …).
    Running,
}

impl Status {
    /// Parses a `status`/`provisioningState` value, case-insensitively; absent means succeeded.
    pub fn parse(s: Option<&str>) -> Status {
        match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("succeeded") => Status::Succeeded,
            Some("failed") => Status::Failed,
            Some("canceled") | Some("cancelled") => Status::Canceled,
            Some(_) => Status::Running,
        }
    }
}

/// The `properties.provisioningState` of a resource body.
pub fn provisioning_state(body: &Value) -> Option<&str> {
    body.pointer("/properties/provisioningState").and_then(Value::as_str)
}

/// Repeats `probe` until done, honouring delays, the deadline and cancellation.
pub async fn poll<T, F, Fut>(opts: &LroOptions, what: &str, ctx: Option<&Ctx>, mut probe: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Step<T>, Error>>,
{
    let start = tokio::time::Instant::now();
    let mut interval = opts.interval;
    let mut polls = 0u32;
    loop {
        let asked = match probe().await? {
            Step::Done(v) => return Ok(v),
            Step::Pending(asked) => asked,
        };
        polls += 1;
        let elapsed = start.elapsed();
        if elapsed >= opts.timeout {
            return Err(AzureError::OperationTimeout { operation: what.to_owned(), after: elapsed }.into());
        }
        let delay = opts.next_delay(asked, interval).min(opts.timeout - elapsed);
        if let Some(ctx) = ctx
            && polls % 6 == 1
        {
            ctx.progress(format!("waiting for {what} ({}s)", elapsed.as_secs()));
        }
        match ctx {
            Some(ctx) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = ctx.cancellation().cancelled() => return Err(AzureError::Cancelled.into()),
                }
            }
            None => tokio::time::sleep(delay).await,
        }
        interval = interval.mul_f64(1.5).min(opts.max_interval);
    }
}

fn failure(op: &ArmRequest, started: &ArmResponse, status: Status, error: Option<&Value>, extra: &str) -> Error {
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_str).map(str::to_owned);
    let mut message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or(extra).to_owned();
    if let Some(corr) = started.header("x-ms-correlation-request-id") {
        message.push_str(&format!(" (correlation id {corr})"));
    }
    AzureError::OperationFailed {
        operation: op.describe(),
        status: if status == Status::Canceled { "Canceled".into() } else { "Failed".into() },
        details: ApiErrorDetails { status: None, code, message, request_id: started.request_id() },
    }
    .into()
}

/// Polls an `Azure-AsyncOperation` URL to a terminal status.
async fn await_async_operation(
    client: &ArmClient,
    ctx: Option<&Ctx>,
    op: &ArmRequest,
    started: &ArmResponse,
    url: &str,
) -> Result<(), Error> {
    let url = client.check_poll_url(url)?;
    let what = op.describe();
    let first = started.retry_after();
    let mut first_delay = Some(first);
    poll(client.lro_options(), &what, ctx, || {
        let url = url.clone();
        let pending_first = first_delay.take();
        async move {
            if let Some(d) = pending_first {
                // The initial response is itself "still running"; wait before the first poll.
                return Ok(Step::Pending(d));
            }
            let resp = client.send(&ArmRequest::new(ArmMethod::Get, url)).await?;
            let body = resp.json_value()?;
            match Status::parse(body.get("status").and_then(Value::as_str)) {
                Status::Succeeded => Ok(Step::Done(())),
                Status::Running => Ok(Step::Pending(resp.retry_after())),
                s => Err(failure(op, started, s, body.get("error"), "the operation failed without details")),
            }
        }
    })
    .await
}

/// Polls a `Location` URL until it answers 200/204; returns the final body (may be `null`).
async fn await_location(
    client: &ArmClient,
    ctx: Option<&Ctx>,
    op: &ArmRequest,
    started: &ArmResponse,
    url: &str,
) -> Result<Value, Error> {
    let url = client.check_poll_url(url)?;
    let what = op.describe();
    let mut first_delay = Some(started.retry_after());
    poll(client.lro_options(), &what, ctx, || {
        let url = url.clone();
        let pending_first = first_delay.take();
        async move {
            if let Some(d) = pending_first {
                return Ok(Step::Pending(d));
            }
            let resp = client.send_raw(&ArmRequest::new(ArmMethod::Get, url)).await?;
            match resp.status {
                202 => Ok(Step::Pending(resp.retry_after())),
                200..=299 => Ok(Step::Done(resp.json_value()?)),
                // A DELETE whose Location now says 404 is gone.
                404 if op.method == ArmMethod::Delete => Ok(Step::Done(Value::Null)),
                _ => {
                    let d = resp.error_details();
                    let err = serde_json::json!({"code": d.code, "message": d.message});
                    Err(failure(op, started, Status::Failed, Some(&err), ""))
                }
            }
        }
    })
    .await
}

/// Reads the resource until its `provisioningState` is terminal.
async fn await_provisioning(
    client: &ArmClient,
    ctx: Option<&Ctx>,
    op: &ArmRequest,
    started: &ArmResponse,
    path: &str,
    api_version: &str,
) -> Result<Value, Error> {
    let what = op.describe();
    poll(client.lro_options(), &what, ctx, || async {
        let Some(body) = client.get(path, api_version).await? else {
            // Just created and not yet visible (ARM caches can lag a second): keep polling.
            return Ok(Step::Pending(None));
        };
        match Status::parse(provisioning_state(&body)) {
            Status::Succeeded => Ok(Step::Done(body)),
            Status::Running => Ok(Step::Pending(None)),
            s => Err(failure(
                op,
                started,
                s,
                None,
                &format!("provisioningState is {}", provisioning_state(&body).unwrap_or("?")),
            )),
        }
    })
    .await
}

/// Completes a PUT: follows whichever pattern the initial response uses and returns the final
/// resource body.
pub async fn finish_put(
    client: &ArmClient,
    ctx: Option<&Ctx>,
    op: &ArmRequest,
    initial: ArmResponse,
    path: &str,
    api_version: &str,
) -> Result<Value, Error> {
    if let Some(url) = initial.header("azure-asyncoperation").map(str::to_owned) {
        await_async_operation(client, ctx, op, &initial, &url).await?;
        return await_provisioning(client, ctx, op, &initial, path, api_version).await;
    }
    if initial.status == 202 {
        if let Some(url) = initial.header("location").map(str::to_owned) {
            await_location(client, ctx, op, &initial, &url).await?;
        }
        return await_provisioning(client, ctx, op, &initial, path, api_version).await;
    }
    let body = initial.json_value()?;
    match Status::parse(provisioning_state(&body)) {
        Status::Succeeded if !body.is_null() => Ok(body),
        Status::Succeeded | Status::Running => await_provisioning(client, ctx, op, &initial, path, api_version).await,
        s => Err(failure(op, &initial, s, None, "provisioningState is Failed")),
    }
}

/// Completes a DELETE that answered 2xx.
pub async fn finish_delete(
    client: &ArmClient,
    ctx: Option<&Ctx>,
    op: &ArmRequest,
    initial: ArmResponse,
) -> Result<(), Error> {
    if let Some(url) = initial.header("azure-asyncoperation").map(str::to_owned) {
        return await_async_operation(client, ctx, op, &initial, &url).await;
    }
    if initial.status == 202
        && let Some(url) = initial.header("location").map(str::to_owned)
    {
        await_location(client, ctx, op, &initial, &url).await?;
    }
    Ok(())
}

/// Completes a POST action: a 202 is followed to its result.
pub async fn finish_post(
    client: &ArmClient,
    ctx: Option<&Ctx>,
    op: &ArmRequest,
    initial: ArmResponse,
) -> Result<Value, Error> {
    if let Some(url) = initial.header("azure-asyncoperation").map(str::to_owned) {
        await_async_operation(client, ctx, op, &initial, &url).await?;
        if let Some(loc) = initial.header("location").map(str::to_owned) {
            let url = client.check_poll_url(&loc)?;
            return client.send(&ArmRequest::new(ArmMethod::Get, url)).await?.json_value();
        }
        return Ok(Value::Null);
    }
    if initial.status == 202
        && let Some(url) = initial.header("location").map(str::to_owned)
    {
        return await_location(client, ctx, op, &initial, &url).await;
    }
    initial.json_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_case_insensitively() {
        assert_eq!(Status::parse(None), Status::Succeeded);
        assert_eq!(Status::parse(Some("SUCCEEDED")), Status::Succeeded);
        assert_eq!(Status::parse(Some("Cancelled")), Status::Canceled);
        assert_eq!(Status::parse(Some("Failed")), Status::Failed);
        assert_eq!(Status::parse(Some("Creating")), Status::Running);
        assert_eq!(Status::parse(Some("InProgress")), Status::Running);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let o = LroOptions::default();
        assert_eq!(o.next_delay(Some(Duration::from_secs(7)), Duration::from_secs(5)), Duration::from_secs(7));
        assert_eq!(o.next_delay(Some(Duration::from_secs(600)), Duration::from_secs(5)), Duration::from_secs(60));
        assert_eq!(o.next_delay(None, Duration::from_secs(5)), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn poll_times_out_with_the_operation_name() {
        let opts = LroOptions { timeout: Duration::from_secs(30), ..LroOptions::default() };
        let r: Result<(), Error> =
            poll(&opts, "PUT /vm", None, || async { Ok(Step::Pending(Some(Duration::from_secs(10)))) }).await;
        match r {
            Err(Error::Timeout { what, after }) => {
                assert_eq!(what, "PUT /vm");
                assert!(after >= Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn poll_stops_when_cancelled() {
        let ctx = Ctx::detached("vm");
        ctx.cancellation().cancel();
        let r: Result<(), Error> =
            poll(&LroOptions::default(), "PUT /vm", Some(&ctx), || async { Ok(Step::Pending(None)) }).await;
        assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    }
}
