//! # stackup-tailscale
//!
//! The Tailscale provider for [stackup](https://github.com/stackup-rs/stackup), on Tailscale API
//! v2 (`https://api.tailscale.com/api/v2`):
//!
//! * [`AuthKeys`]: auth keys (reusable, ephemeral, preauthorized, tagged, expiring), the
//!   secret shown once, replaced *before* they expire;
//!
//! Credentials come from an API access token or an OAuth client (tokens cached and refreshed);
//! see [`config`] for the environment variables.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod hujson;
pub mod resources;
pub mod validate;
pub mod wire;

pub use client::{IfMatch, PolicyFile, PolicyValidation, TailscaleClient};
pub use config::{Credentials, TailscaleClientBuilder};
pub use error::TailscaleError;
pub use resources::auth_key::{AuthKeyOutputs, AuthKeySpec, AuthKeys};
