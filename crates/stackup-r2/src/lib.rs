//! # stackup-r2
//!
//! Cloudflare R2 for [stackup](https://github.com/stackup-rs/stackup):
//!
//! * [`R2Client`]: `aws-sdk-s3` configured for R2 (static credentials, path style, region
//!   `auto`, checksums only when required, no ACL or `Content-MD5`), plus the Cloudflare v4
//!   REST API for bucket settings ([`cloudflare::CloudflareApi`]);
//! * provisioners: [`Buckets`], [`BucketLifecycles`], [`BucketCors`];
//! * [`shipper`]: a streaming, parallel gzip log shipper (multipart uploads with equal-size
//!   parts, bounded memory, abort on failure, idempotent reruns), a drop-in for
//!   `gzip -c | rclone rcat`;
//! * [`R2StateBackend`]: remote state on R2/S3 with conditional-write locks.
//!
//! Environment variables are listed in [`config`].

pub mod client;
pub mod cloudflare;
pub mod config;
pub mod error;
pub mod names;
pub mod resources;

pub use client::R2Client;
pub use config::{Jurisdiction, R2Config};
pub use error::R2Error;
pub use resources::{
    BucketCors, BucketLifecycles, BucketOutputs, BucketSpec, Buckets, CorsRule, CorsSpec, LifecycleRule, LifecycleSpec,
    LocationHint, StorageClass,
};
pub mod shipper;
pub mod state_backend;

pub use state_backend::{R2StateBackend, StaleLockPolicy};
