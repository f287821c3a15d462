//! How long and how often the provider waits: lifecycle polls, timeouts, and the capacity
//! hunt's backoff. Everything is injectable so tests run in milliseconds.

use std::time::Duration;

/// Poll intervals and timeouts for lifecycle waits.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// First delay between lifecycle polls.
    pub poll_interval: Duration,
    /// Polls back off up to this delay.
    pub max_poll_interval: Duration,
    /// How long a network object (VCN, gateway, lists, subnet) may take to become AVAILABLE or
    /// to disappear.
    pub network_timeout: Duration,
    /// How long an instance may take to reach RUNNING (after capacity was found) or TERMINATED.
    pub instance_timeout: Duration,
    /// How long a delete keeps retrying `409 Conflict` while a dependent object (a terminating
    /// instance's VNIC, a route rule) is still going away.
    pub conflict_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(15),
            network_timeout: Duration::from_secs(10 * 60),
            instance_timeout: Duration::from_secs(20 * 60),
            conflict_timeout: Duration::from_secs(5 * 60),
        }
    }
}

impl Timing {
    /// Millisecond polls and short timeouts, for tests against a mock server.
    pub fn fast() -> Self {
        Timing {
            poll_interval: Duration::from_millis(2),
            max_poll_interval: Duration::from_millis(10),
            network_timeout: Duration::from_secs(5),
            instance_timeout: Duration::from_secs(5),
            conflict_timeout: Duration::from_millis(500),
        }
    }
}
