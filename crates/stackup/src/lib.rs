//! # stackup
//!
//! Provision real cloud infrastructure from Rust. Describe a [`Stack`](core::Stack) of typed
//! resources, then `plan`, `apply` and `destroy` it from your own program, with state, locking,
//! retries and an event stream, and no external binary.
//!
//! This facade re-exports [`stackup_core`] as [`core`] and, behind features, one crate per
//! provider.

pub use stackup_core as core;

/// The names most programs need.
pub mod prelude {
    pub use stackup_core::{
        Action, ApplyReport, Ctx, Engine, Error, EventKind, Input, LocalBackend, MemoryBackend, OutputRef, Plan,
        Provisioner, Secret, Stack, StateBackend, TemplatePart,
    };
}
