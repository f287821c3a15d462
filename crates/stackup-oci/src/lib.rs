//! # stackup-oci
//!
//! Oracle Cloud Infrastructure for [stackup](https://github.com/stackup-rs/stackup): a request
//! signer of its own (RustCrypto RSA, reproducing Oracle's published test vectors), the
//! `~/.oci/config` file, and provisioners for a VCN, internet gateway, route table, security
//! list, subnet and `VM.Standard.A1.Flex` instance, with capacity hunting across availability
//! domains and an Always Free guard that reads the tenancy's limits.

pub mod config;
pub mod error;
pub mod key;
pub mod signer;
pub mod testing;

pub use config::{Credentials, OciConfig};
pub use error::OciError;
pub use key::ApiKey;
pub use signer::{KeyId, OciAuthorizer, RequestSigner};
