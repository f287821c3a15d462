//! # stackup
//!
//! Provision real cloud infrastructure from Rust. Describe a [`Stack`](core::Stack) of typed
//! resources, then `plan`, `apply` and `destroy` it from your own program, with state, locking,
//! retries and an event stream, and no external binary.
//!
//! This facade re-exports [`stackup_core`] as [`core`] and, behind features, one crate per
//! provider, so a program that needs one cloud compiles only that cloud:
//!
//! | feature | module | crate |
//! |---|---|---|
//! | `azure` | [`azure`] | `stackup-azure` |
//! | `oci` | [`oci`] | `stackup-oci` |
//! | `r2` | [`r2`] | `stackup-r2` |
//! | `tailscale` | [`tailscale`] | `stackup-tailscale` |
//!
//! [`recipes`] compose them into the full stacks of real deployment documents, and [`cli`] is
//! the small runner the examples share.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use stackup_core as core;

#[cfg(feature = "azure")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure")))]
pub use stackup_azure as azure;

#[cfg(feature = "oci")]
#[cfg_attr(docsrs, doc(cfg(feature = "oci")))]
pub use stackup_oci as oci;

#[cfg(feature = "r2")]
#[cfg_attr(docsrs, doc(cfg(feature = "r2")))]
pub use stackup_r2 as r2;

#[cfg(feature = "tailscale")]
#[cfg_attr(docsrs, doc(cfg(feature = "tailscale")))]
pub use stackup_tailscale as tailscale;

pub mod cli;
pub mod recipes;
#[cfg(any(feature = "azure", feature = "r2"))]
mod state_backends;

/// The names most programs need.
pub mod prelude {
    pub use stackup_core::cloud_init::{CloudConfig, SystemdUnit, Text};
    pub use stackup_core::{
        Action, ApplyReport, Ctx, Engine, Error, EventKind, Handle, Input, LocalBackend, MemoryBackend, OutputRef,
        Plan, Provisioner, Secret, Stack, StateBackend, TemplatePart,
    };
}
