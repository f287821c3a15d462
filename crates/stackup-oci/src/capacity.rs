//! Capacity hunting. "Out of host capacity" is the normal state of A1: a launch is tried in each
//! availability domain (and fault domain, when given), then the hunt waits with jittered
//! exponential backoff and tries again until a deadline, emitting an event per attempt. This loop
//! is separate from (and much slower than) transport retries, which it never repeats on a
//! capacity error.

use std::time::Duration;

use rand::Rng;
use stackup_core::http::{HttpRequest, HttpResponse};
use stackup_core::retry::{Idempotency, should_retry};
use stackup_core::{Ctx, Error};

use crate::client::OciClient;

/// How long and how patiently to hunt for capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityHunt {
    /// Give up after this long (the error says how many attempts were made).
    pub deadline: Duration,
    /// Wait after the first full round of availability domains.
    pub initial_backoff: Duration,
    /// Longest wait between rounds (before jitter).
    pub max_backoff: Duration,
}

impl Default for CapacityHunt {
    /// One hour, starting at one minute between rounds and growing to five (polling faster
    /// gets accounts throttled, and users report suspensions after months of tight loops).
    fn default() -> Self {
        CapacityHunt {
            deadline: Duration::from_secs(3600),
            initial_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl CapacityHunt {
    /// Millisecond backoffs for tests.
    pub fn fast(deadline: Duration) -> Self {
        CapacityHunt { deadline, initial_backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) }
    }

    /// The jittered wait before round `round` (1-based): uniform in [½·b, b] with
    /// b = min(max, initial·2^(round-1)).
    pub fn backoff(&self, round: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(1u32 << round.saturating_sub(1).min(16));
        let cap = exp.min(self.max_backoff);
        let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        if nanos < 2 {
            return cap;
        }
        Duration::from_nanos(rand::rng().random_range(nanos / 2..=nanos))
    }
}

/// True when OCI said there is no host capacity for the shape (`500 InternalError "Out of host
/// capacity."`, or a capacity code).
pub fn is_out_of_capacity(e: &Error) -> bool {
    let Some(d) = e.api_details() else { return false };
    let msg = d.message.to_ascii_lowercase();
    let code = d.code.as_deref().unwrap_or_default();
    msg.contains("out of host capacity")
        || msg.contains("out of capacity")
        || code.eq_ignore_ascii_case("OutOfHostCapacity")
        || code.eq_ignore_ascii_case("OutOfCapacity")
}

/// True when the availability domain does not offer the shape at all (`404
/// NotAuthorizedOrNotFound "shape … not found"`), so the hunt should stop trying it.
pub fn is_shape_unavailable_in_ad(e: &Error) -> bool {
    let Some(d) = e.api_details() else { return false };
    let msg = d.message.to_ascii_lowercase();
    matches!(d.status, Some(400) | Some(404)) && msg.contains("shape") && msg.contains("not found")
}

/// Sends a launch exactly as built (same retry token on every retransmit), retrying transport
/// failures, throttling and non-capacity 5xx with the client's policy, and returning capacity
/// errors at once.
pub async fn send_launch(client: &OciClient, request: &HttpRequest) -> Result<HttpResponse, Error> {
    let policy = client.retry_policy().clone();
    let start = tokio::time::Instant::now();
    let mut attempt = 1;
    loop {
        match client.send_once(request.clone()).await {
            Ok(r) => return Ok(r),
            Err(e) if is_out_of_capacity(&e) => return Err(e),
            Err(e) => {
                if attempt >= policy.max_attempts || !should_retry(&e, Idempotency::Idempotent) {
                    return Err(e);
                }
                let delay = policy.delay_for(attempt, &e);
                if start.elapsed() + delay > policy.max_elapsed {
                    return Err(e);
                }
                tracing::info!(attempt, ?delay, error = %e, "retrying LaunchInstance with the same retry token");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// Sleeps `d`, or returns `Error::Cancelled` if the run is cancelled first.
pub async fn sleep_cancellable(ctx: &Ctx, d: Duration) -> Result<(), Error> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = ctx.cancellation().cancelled() => Err(Error::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackup_core::ApiErrorDetails;

    fn err(status: u16, code: &str, message: &str) -> Error {
        Error::from_status(
            status,
            ApiErrorDetails { code: Some(code.into()), message: message.into(), ..Default::default() },
            None,
        )
    }

    #[test]
    fn classifies_capacity_and_missing_shape() {
        assert!(is_out_of_capacity(&err(500, "InternalError", "Out of host capacity.")));
        assert!(!is_out_of_capacity(&err(500, "InternalError", "Something else")));
        assert!(is_shape_unavailable_in_ad(&err(
            404,
            "NotAuthorizedOrNotFound",
            "Shape VM.Standard.A1.Flex not found"
        )));
        assert!(!is_shape_unavailable_in_ad(&err(404, "NotAuthorizedOrNotFound", "Authorization failed")));
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let h = CapacityHunt {
            deadline: Duration::from_secs(1),
            initial_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(300),
        };
        for _ in 0..20 {
            let b1 = h.backoff(1);
            assert!(b1 >= Duration::from_secs(30) && b1 <= Duration::from_secs(60));
            assert!(h.backoff(10) <= Duration::from_secs(300) && h.backoff(10) >= Duration::from_secs(150));
        }
    }
}
