//! The typed event stream: every plan and run reports what it does as [`Event`]s with a
//! monotonic sequence number, for progress bars, UIs and audit logs. Events never carry secrets.

use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::diff::Action;

/// Counts of planned or performed actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    /// Resources to create.
    pub create: usize,
    /// Resources to update in place.
    pub update: usize,
    /// Resources to replace.
    pub replace: usize,
    /// Resources to delete.
    pub delete: usize,
    /// Resources unchanged.
    pub unchanged: usize,
}

impl ChangeSummary {
    /// Counts one action.
    pub fn add(&mut self, action: Action) {
        match action {
            Action::NoOp => self.unchanged += 1,
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Replace => self.replace += 1,
            Action::Delete => self.delete += 1,
        }
    }

    /// The counts in the past tense, for a finished run: `3 created, 1 updated, …`.
    pub fn done_text(&self) -> String {
        format!(
            "{} created, {} updated, {} replaced, {} deleted, {} unchanged",
            self.create, self.update, self.replace, self.delete, self.unchanged
        )
    }

    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.create + self.update + self.replace + self.delete == 0
    }
}

impl std::fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to replace, {} to delete, {} unchanged",
            self.create, self.update, self.replace, self.delete, self.unchanged
        )
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A plan was computed.
    PlanComputed {
        /// What the plan would do.
        summary: ChangeSummary,
    },
    /// Refreshing (reading) a resource found it changed or gone outside stackup.
    DriftDetected {
        /// Resource address.
        address: String,
        /// What changed, in words.
        detail: String,
    },
    /// Work on a resource started.
    ResourceStarted {
        /// Resource address.
        address: String,
        /// What is being done.
        action: Action,
    },
    /// A provider reported progress (a poll, a retry, a capacity attempt).
    ResourceProgress {
        /// Resource address.
        address: String,
        /// What is happening.
        message: String,
    },
    /// Work on a resource finished.
    ResourceFinished {
        /// Resource address.
        address: String,
        /// What was done.
        action: Action,
        /// How long it took.
        elapsed_ms: u64,
    },
    /// Work on a resource failed.
    ResourceFailed {
        /// Resource address.
        address: String,
        /// What was attempted.
        action: Action,
        /// Why it failed.
        error: String,
    },
    /// A resource was not touched because something it depends on failed.
    ResourceSkipped {
        /// Resource address.
        address: String,
        /// The failed dependency.
        because: String,
    },
    /// A run ended.
    Summary {
        /// What was done.
        done: ChangeSummary,
        /// Resources that failed (root causes only).
        failed: usize,
        /// Resources skipped because a dependency failed.
        skipped: usize,
        /// Wall time.
        elapsed_ms: u64,
    },
    /// The run was cancelled; in-flight work was allowed to finish and state was saved.
    Cancelled,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic sequence number, starting at 1 per bus.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Fans events out to every subscriber.
#[derive(Debug, Default)]
pub struct EventBus {
    seq: AtomicU64,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        EventBus::default()
    }

    /// A stream of every event emitted from now on.
    pub fn subscribe(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        EventStream(rx)
    }

    /// Emits an event to all live subscribers and to `tracing`.
    pub fn emit(&self, kind: EventKind) {
        let event = Event { seq: self.seq.fetch_add(1, Ordering::SeqCst) + 1, at: OffsetDateTime::now_utc(), kind };
        tracing::debug!(seq = event.seq, event = ?event.kind, "event");
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| s.send(event.clone()).is_ok());
    }
}

/// A stream of [`Event`]s; also usable with `recv().await`.
#[derive(Debug)]
pub struct EventStream(mpsc::UnboundedReceiver<Event>);

impl EventStream {
    /// The next event, or `None` when the bus is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// Every event already emitted, without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = vec![];
        while let Ok(e) = self.0.try_recv() {
            out.push(e);
        }
        out
    }
}

impl futures::Stream for EventStream {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_monotonic_and_fanned_out() {
        let bus = EventBus::new();
        let mut a = bus.subscribe();
        bus.emit(EventKind::Cancelled);
        let mut b = bus.subscribe();
        bus.emit(EventKind::PlanComputed { summary: ChangeSummary::default() });
        let ea = a.drain();
        let eb = b.drain();
        assert_eq!(ea.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(eb.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
        let json = serde_json::to_value(&ea[1]).unwrap();
        assert_eq!(json["type"], "plan_computed");
    }
}
