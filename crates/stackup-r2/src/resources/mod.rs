//! The provisioners, one file per resource kind.

pub mod bucket;
pub mod cors;
pub mod lifecycle;

pub use bucket::{BucketOutputs, BucketSpec, Buckets, LocationHint, StorageClass};
pub use cors::{BucketCors, CorsOutputs, CorsRule, CorsSpec};
pub use lifecycle::{BucketLifecycles, LifecycleOutputs, LifecycleRule, LifecycleSpec};
