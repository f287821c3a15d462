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
pub mod client;
pub mod timing;

pub use client::{OciClient, OciClientBuilder, Service};
pub use timing::Timing;
pub mod resources;
pub mod validate;

pub use resources::internet_gateway::{InternetGatewayOutputs, InternetGatewaySpec, InternetGateways};
pub use resources::route_table::{RouteRule, RouteRuleSpec, RouteTableOutputs, RouteTableSpec, RouteTables};
pub use resources::security_list::{
    EgressRule, IngressRule, RuleProtocol, SecurityListOutputs, SecurityListSpec, SecurityLists,
};
pub use resources::subnet::{SubnetOutputs, SubnetSpec, Subnets};
pub use resources::vcn::{VcnOutputs, VcnSpec, Vcns};
pub mod capacity;
pub mod free_tier;
pub mod image;

pub use capacity::CapacityHunt;
pub use free_tier::FreeTierAllowance;
pub use resources::instance::{ImageSource, InstanceOutputs, InstanceSpec, Instances};
