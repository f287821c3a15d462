//! Waiting for something to become true: lifecycle states, long-running operations, a device
//! joining a network. A probe returns [`Poll::Done`], [`Poll::Failed`] or [`Poll::Pending`]
//! (optionally with the delay the server asked for); [`wait_until`] repeats it until a deadline.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// The outcome of one probe.
#[derive(Debug)]
pub enum Poll<T> {
    /// The wait is over, with its result.
    Done(T),
    /// The wait is over and failed (a terminal `Failed`/`Canceled` state, for example).
    Failed(Error),
    /// Not yet; probe again after the given delay, or the waiter's interval when `None`.
    Pending(Option<Duration>),
}

/// How to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiter {
    /// What we are waiting for, used in the timeout error.
    pub what: String,
    /// First delay between probes.
    pub interval: Duration,
    /// Probes back off up to this delay (×1.5 each time).
    pub max_interval: Duration,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Waiter {
    /// A waiter with sensible cloud defaults: 2 s growing to 15 s, for `timeout`.
    pub fn new(what: impl Into<String>, timeout: Duration) -> Self {
        Waiter { what: what.into(), interval: Duration::from_secs(2), max_interval: Duration::from_secs(15), timeout }
    }

    /// Sets the probe interval (and makes it the maximum too, for fixed-rate polling).
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self.max_interval = interval.max(self.max_interval.min(interval * 8));
        self
    }

    /// Probes until done, failed, or timed out. Errors returned by the probe itself end the wait
    /// unless they are transient (throttling, 5xx, transport), which are treated as pending.
    pub async fn wait<T, F, Fut>(&self, probe: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, Error>>,
    {
        self.wait_inner(None, probe).await
    }

    /// Like [`Waiter::wait`], but stops with [`Error::Cancelled`] as soon as `token` fires,
    /// even mid-sleep: pass the run's token from [`crate::Ctx::cancellation`].
    pub async fn wait_or_cancel<T, F, Fut>(&self, token: &CancellationToken, probe: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, Error>>,
    {
        self.wait_inner(Some(token), probe).await
    }

    async fn wait_inner<T, F, Fut>(&self, cancel: Option<&CancellationToken>, mut probe: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, Error>>,
    {
        let start = tokio::time::Instant::now();
        let mut interval = self.interval;
        loop {
            let next = match probe().await {
                Ok(Poll::Done(v)) => return Ok(v),
                Ok(Poll::Failed(e)) => return Err(e),
                Ok(Poll::Pending(asked)) => asked.unwrap_or(interval),
                Err(e) if e.is_transient() => e.retry_after().unwrap_or(interval),
                Err(e) => return Err(e),
            };
            let elapsed = start.elapsed();
            if elapsed >= self.timeout {
                return Err(Error::Timeout { what: self.what.clone(), after: elapsed });
            }
            let sleep = next.min(self.timeout - elapsed);
            match cancel {
                Some(token) => tokio::select! {
                    _ = tokio::time::sleep(sleep) => {}
                    _ = token.cancelled() => return Err(Error::Cancelled),
                },
                None => tokio::time::sleep(sleep).await,
            }
            interval = interval.mul_f64(1.5).min(self.max_interval);
        }
    }
}

/// Shorthand for `Waiter::new(what, timeout).every(interval).wait(probe)`.
pub async fn wait_until<T, F, Fut>(what: &str, interval: Duration, timeout: Duration, probe: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, Error>>,
{
    Waiter::new(what, timeout).every(interval).wait(probe).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn done_after_pending() {
        let n = AtomicU32::new(0);
        let v = wait_until("x", Duration::from_secs(1), Duration::from_secs(60), || async {
            Ok(if n.fetch_add(1, Ordering::SeqCst) < 3 { Poll::Pending(None) } else { Poll::Done(7) })
        })
        .await
        .unwrap();
        assert_eq!(v, 7);
        assert_eq!(n.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_naming_what() {
        let r: Result<(), _> = wait_until("vm RUNNING", Duration::from_secs(5), Duration::from_secs(20), || async {
            Ok(Poll::Pending(None))
        })
        .await;
        match r {
            Err(Error::Timeout { what, after }) => {
                assert_eq!(what, "vm RUNNING");
                assert!(after >= Duration::from_secs(20));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_interrupts_a_sleep() {
        let token = CancellationToken::new();
        let t2 = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            t2.cancel();
        });
        let start = tokio::time::Instant::now();
        let r: Result<(), _> = Waiter::new("device", Duration::from_secs(600))
            .every(Duration::from_secs(60))
            .wait_or_cancel(&token, || async { Ok(Poll::Pending(None)) })
            .await;
        assert!(matches!(r, Err(Error::Cancelled)));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_ends_the_wait_and_transient_errors_do_not() {
        let n = AtomicU32::new(0);
        let r: Result<(), _> = wait_until("lro", Duration::from_secs(1), Duration::from_secs(60), || async {
            match n.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Error::Transport("reset".into())),
                _ => Ok(Poll::Failed(Error::invalid("op", "Failed"))),
            }
        })
        .await;
        assert!(matches!(r, Err(Error::InvalidInput { .. })));
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }
}
