//! # stackup-core
//!
//! The engine of [stackup](https://github.com/stackup-rs/stackup): the [`Provisioner`] contract
//! every provider implements, the [`Stack`] graph, the [`Engine`] that plans, applies and
//! destroys it, [`state`] with crash-safe intents, [`backend`]s with locks, typed [`events`],
//! and the plumbing every provider shares ([`http`], [`retry`], [`wait`], [`Secret`],
//! [`cloud_init`]).
//!
//! See `docs/architecture.md` in the repository for the picture.

pub mod backend;
pub mod cloud_init;
pub mod diff;
pub mod engine;
pub mod error;
pub mod events;
pub mod http;
pub mod input;
pub mod lock;
pub mod plan;
pub mod provisioner;
pub mod retry;
pub mod secret;
pub mod stack;
pub mod state;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod wait;

pub use backend::{LocalBackend, MemoryBackend, StateBackend};
pub use diff::{Action, Diff, FieldChange};
pub use engine::{ApplyReport, Engine, EngineOptions, ResourceFailure};
pub use error::{ApiErrorDetails, Error, Result};
pub use events::{ChangeSummary, Event, EventBus, EventKind, EventStream};
pub use input::{Input, OutputRef, TemplatePart};
pub use plan::{Plan, PlannedResource};
pub use provisioner::{CreateError, Created, Ctx, Provisioner, ResourceKind};
pub use secret::Secret;
pub use stack::{Handle, Stack};
pub use state::{StateDoc, StateKey};
