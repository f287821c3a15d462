//! Tests against a wiremock server speaking Tailscale API v2 (bodies shaped like its OpenAPI
//! spec), with faults: 429 with `Retry-After`, 5xx, dropped connections, 412 on the policy file.

mod acl_policy;
mod auth_key;
mod client_auth;
mod common;
mod device;
mod dns;
mod engine;
