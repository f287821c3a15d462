//! The ARM api-versions this crate speaks, one per resource provider. Every request carries
//! one of these as `?api-version=`.

/// `Microsoft.Resources` (resource groups).
pub const RESOURCES: &str = "2024-03-01";
/// `Microsoft.Storage` (accounts, keys, file shares and snapshots, containers, lifecycle
/// policies).
pub const STORAGE: &str = "2025-06-01";
/// `Microsoft.Network` (virtual networks, subnets, NSGs, public IPs, NICs).
pub const NETWORK: &str = "2025-05-01";
/// `Microsoft.Compute` (virtual machines).
pub const COMPUTE: &str = "2025-04-01";
