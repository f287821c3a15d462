//! # stackup-tailscale
//!
//! The Tailscale provider for [stackup](https://github.com/stackup-rs/stackup), on Tailscale API
//! v2 (`https://api.tailscale.com/api/v2`):
//!
//! * [`AuthKeys`]: auth keys (reusable, ephemeral, preauthorized, tagged, expiring), the
//!   secret shown once, replaced *before* they expire;
//! * [`Devices`]: waiting for a machine to join (`tailscale up`), with suffixed MagicDNS names
//!   (`egograph-prod-1`) handled deliberately; [`DeviceAuthorizations`], [`DeviceTags`] and
//!   [`DeviceKeyExpiries`] for its approval, tags and key expiry;
//! * [`AclPolicies`]: the policy file, HuJSON kept as written, every write guarded by
//!   `If-Match` so a concurrent edit is never overwritten, validated by the API while planning;
//! * [`DnsSettings`]: nameservers, search paths and MagicDNS.
//!
//! Credentials come from an API access token or an OAuth client (tokens cached and refreshed);
//! see [`config`] for the environment variables.

pub mod auth;
pub mod client;
pub mod config;
pub mod device_match;
pub mod error;
pub mod hujson;
pub mod resources;
pub mod validate;
pub mod wire;

pub use client::{IfMatch, ListedKey, PolicyFile, PolicyValidation, TailscaleClient};
pub use config::{Credentials, TailscaleClientBuilder};
pub use error::TailscaleError;
pub use resources::acl_policy::{AclAdoption, AclPolicies, AclPolicyOutputs, AclPolicySpec};
pub use resources::auth_key::{AuthKeyOutputs, AuthKeySpec, AuthKeys};
pub use resources::device::{DeviceOutputs, DeviceSpec, Devices, NameConflict};
pub use resources::device_authorization::{DeviceAuthorizationOutputs, DeviceAuthorizationSpec, DeviceAuthorizations};
pub use resources::device_key_expiry::{DeviceKeyExpiries, DeviceKeyExpiryOutputs, DeviceKeyExpirySpec};
pub use resources::device_tags::{DeviceTags, DeviceTagsOutputs, DeviceTagsSpec};
pub use resources::dns::{DnsManaged, DnsOutputs, DnsSettings, DnsSpec};
