//! # stackup
//!
//! Provision real cloud infrastructure from Rust. Describe a [`Stack`](core::Stack) of typed
//! resources, then `plan`, `apply` and `destroy` it from your own program, with state, locking,
//! retries and an event stream, and no external binary.
//!
//! This facade re-exports [`stackup_core`] as [`core`] and, behind features, one crate per
//! provider, so a program that needs one cloud compiles only that cloud:
//!
//! | feature | module | crate | cold `cargo build` |
//! |---|---|---|---|
//! | (none) | [`core`] | `stackup-core` | 48 s, 141 crates |
//! | `azure` | [`azure`] | `stackup-azure` | 63 s, 175 crates |
//! | `oci` | [`oci`] | `stackup-oci` | 62 s, 166 crates |
//! | `r2` | [`r2`] | `stackup-r2` | 97 s, 186 crates |
//! | `tailscale` | [`tailscale`] | `stackup-tailscale` | 57 s, 142 crates |
//! | `full` | all four | | 115 s, 235 crates |
//!
//! The build times are a program of one `main.rs` depending on `stackup` with that feature, a
//! debug build with the default `dev` profile from an empty target directory (sources already
//! downloaded), rustc 1.95 on 2 cores. Of the 48 s every feature pays, 22 s are `aws-lc-sys`
//! (rustls' default crypto provider, a C build); `r2` adds the AWS SDK.
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
