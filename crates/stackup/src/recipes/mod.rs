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
