//! The one retry policy every provider uses: exponential backoff with full jitter, honouring
//! `Retry-After` (seconds or HTTP-date), bounded in attempts and in total time, and retrying
//! a request whose outcome is unknown only when it is idempotent.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::error::Error;

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. `1` disables retries.
    pub max_attempts: u32,
    /// Backoff ceiling before jitter for the first retry.
    pub initial_backoff: Duration,
    /// Largest backoff between two attempts (a longer `Retry-After` is still honoured up to
    /// `max_elapsed`).
    pub max_backoff: Duration,
    /// Total time budget across all attempts and sleeps; no retry starts after it.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Default::default() }
    }

    /// A fast policy for tests: same attempts, millisecond backoffs.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(30),
        }
    }

    /// The jittered backoff before retry number `retry` (1-based): uniform in
    /// `[0, min(max_backoff, initial * 2^(retry-1))]` ("full jitter").
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp =
            self.initial_backoff.saturating_mul(1u32.checked_shl(retry.saturating_sub(1).min(20)).unwrap_or(u32::MAX));
        let cap = exp.min(self.max_backoff);
        let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(nanos / 2..=nanos))
    }

    /// The delay before retry number `retry` given the error: the provider's `Retry-After` when
    /// present, otherwise the jittered backoff.
    pub fn delay_for(&self, retry: u32, err: &Error) -> Duration {
        err.retry_after().unwrap_or_else(|| self.backoff(retry))
    }
}

/// Whether a request may be repeated safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, PUT-by-name, DELETE, or a POST carrying an idempotency/retry token.
    Idempotent,
    /// A request that could create a duplicate if repeated after an unknown outcome.
    NotIdempotent,
}

/// Whether `err` should be retried for a request of the given idempotency.
pub fn should_retry(err: &Error, idempotency: Idempotency) -> bool {
    match err {
        Error::MaybeSent(_) => idempotency == Idempotency::Idempotent,
        e => e.is_transient(),
    }
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or the policy is exhausted.
/// `on_retry` is told about each retry (attempt number, delay, error) for logs and events.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    mut op: F,
    mut on_retry: impl FnMut(u32, Duration, &Error),
) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let start = tokio::time::Instant::now();
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(err) => {
                if attempt >= policy.max_attempts || !should_retry(&err, idempotency) {
                    return Err(err);
                }
                let delay = policy.delay_for(attempt, &err);
                if start.elapsed() + delay > policy.max_elapsed {
                    return Err(err);
                }
                tracing::debug!(attempt, ?delay, error = %err, "retrying");
                on_retry(attempt, delay, &err);
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// Parses a `Retry-After` header value: delta-seconds (`"120"`) or an HTTP-date. Also accepts
/// fractional seconds, which some APIs send. A date in the past gives zero.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiErrorDetails;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&future).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-3"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..Default::default()
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b5 = p.backoff(5);
            assert!(b5 >= Duration::from_millis(200) && b5 <= Duration::from_millis(400));
        }
        assert!(p.backoff(64) <= Duration::from_millis(400));
    }

    fn throttled(secs: u64) -> Error {
        Error::Throttled { retry_after: Some(Duration::from_secs(secs)), details: ApiErrorDetails::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_then_succeeds() {
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let mut delays = vec![];
        let r = retry(
            &RetryPolicy::default(),
            Idempotency::NotIdempotent,
            |_| async { if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(throttled(3)) } else { Ok(42) } },
            |_, d, _| delays.push(d),
        )
        .await;
        assert_eq!(r.unwrap(), 42);
        assert_eq!(delays, vec![Duration::from_secs(3); 2]);
        assert!(start.elapsed() >= Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn maybe_sent_only_retried_when_idempotent() {
        for (idem, expected_calls) in [(Idempotency::NotIdempotent, 1), (Idempotency::Idempotent, 3)] {
            let calls = AtomicU32::new(0);
            let r: Result<(), _> = retry(
                &RetryPolicy { max_attempts: 3, ..RetryPolicy::fast() },
                idem,
                |_| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Error::MaybeSent("reset".into()))
                },
                |_, _, _| {},
            )
            .await;
            assert!(r.is_err());
            assert_eq!(calls.load(Ordering::SeqCst), expected_calls);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn total_time_bounds_retries() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(
            &RetryPolicy { max_attempts: 100, max_elapsed: Duration::from_secs(10), ..Default::default() },
            Idempotency::Idempotent,
            |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(throttled(4))
            },
            |_, _, _| {},
        )
        .await;
        assert!(matches!(r, Err(Error::Throttled { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 3, "4s + 4s fit in 10s, a third sleep does not");
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(
            &RetryPolicy::fast(),
            Idempotency::Idempotent,
            |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::invalid("name", "too long"))
            },
            |_, _, _| {},
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
