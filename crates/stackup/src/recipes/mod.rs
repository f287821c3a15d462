//! Full-stack recipes taken from real deployment documents (`shared/seeds/` in the project):
//! each is a typed builder with the document's values as defaults, every value overridable,
//! that adds its resources to a [`Stack`](stackup_core::Stack) and returns typed handles to
//! its outputs. `docs/recipes/*.md` maps every step of each document to the code that does it.

#[cfg(feature = "azure")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure")))]
pub mod app_storage_on_azure;

#[cfg(feature = "azure")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure")))]
pub mod blossom_on_azure;

#[cfg(feature = "tailscale")]
#[cfg_attr(docsrs, doc(cfg(feature = "tailscale")))]
pub mod tailnet_server;

#[cfg(feature = "r2")]
#[cfg_attr(docsrs, doc(cfg(feature = "r2")))]
pub mod logs_to_r2;

#[cfg(feature = "oci")]
#[cfg_attr(docsrs, doc(cfg(feature = "oci")))]
pub mod free_tier_on_oci;

#[cfg(all(feature = "oci", feature = "r2", feature = "tailscale"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "oci", feature = "r2", feature = "tailscale"))))]
pub mod full_stack;
