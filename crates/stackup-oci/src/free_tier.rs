//! The Always Free guard: before launching or resizing an instance, read the tenancy's A1 limits
//! and usage and the free block-storage allowance from the Limits API, and refuse a request that
//! would be billed, saying what would be billed. Nothing is hard-coded: the allowance has changed
//! before. On a Pay-As-You-Go tenancy the A1 *limits* exceed the free allowance, so the caller
//! may cap them with [`FreeTierAllowance`]. `VM.Standard.E2.1.Micro` is checked against its
//! instance-count limit; every other shape has no free allowance and is refused outright.

use serde::Deserialize;
use stackup_core::{Ctx, Error};

use crate::client::{LIMITS_API, OciClient, Service};
use crate::error::OciError;

/// The A1 shape the A1 allowance applies to.
pub const A1_FLEX: &str = "VM.Standard.A1.Flex";
/// The AMD micro shape, the other Always Free compute shape (a number of instances).
pub const E2_MICRO: &str = "VM.Standard.E2.1.Micro";
/// The compute limit that counts E2.1.Micro instances.
const E2_MICRO_LIMIT: &str = "vm-standard-e2-1-micro-count";

/// Optional caps on the Always Free allowance, applied on top of the tenancy's limits (set them
/// on a Pay-As-You-Go tenancy, whose limits are higher than what is free).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FreeTierAllowance {
    /// Free A1 OCPUs in the region.
    pub a1_ocpus: Option<f64>,
    /// Free A1 memory in GB in the region.
    pub a1_memory_gbs: Option<f64>,
}

/// What the guard is asked to allow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreeTierRequest<'a> {
    /// Shape.
    pub shape: &'a str,
    /// Additional instances (1 for a launch, 0 for an update).
    pub instances: u32,
    /// Additional OCPUs.
    pub ocpus: f64,
    /// Additional memory (GB).
    pub memory_gbs: f64,
    /// Additional block storage (GB): the boot volume of a new instance.
    pub storage_gbs: f64,
}

#[derive(Debug, Deserialize)]
struct LimitValueSummary {
    #[serde(rename = "name", default)]
    name: Option<String>,
    #[serde(rename = "scopeType", default)]
    scope_type: Option<String>,
    #[serde(rename = "availabilityDomain", default)]
    availability_domain: Option<String>,
    #[serde(rename = "value", default)]
    value: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct ResourceAvailability {
    #[serde(rename = "used", default)]
    used: Option<f64>,
    #[serde(rename = "available", default)]
    available: Option<f64>,
}

/// A limit's value and usage, summed over its scope.
#[derive(Debug, Clone, PartialEq)]
struct LimitUse {
    name: String,
    limit: f64,
    used: f64,
}

async fn availability(
    client: &OciClient,
    service: &str,
    name: &str,
    ad: Option<&str>,
) -> Result<Option<ResourceAvailability>, Error> {
    let mut q = vec![("compartmentId", client.tenancy())];
    if let Some(ad) = ad {
        q.push(("availabilityDomain", ad));
    }
    let path = format!("{LIMITS_API}/services/{service}/limits/{name}/resourceAvailability");
    match client.get(Service::Limits, &path, &q).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a compute limit, preferring the first name that exists (the regional form,
/// `…-regional-count`, before the per-AD form), a per-AD one summed over availability domains.
async fn compute_limit(client: &OciClient, names: &[&str]) -> Result<Option<LimitUse>, Error> {
    for &name in names {
        let q = [("compartmentId", client.tenancy()), ("serviceName", "compute"), ("name", name)];
        let values: Vec<LimitValueSummary> =
            client.list(Service::Limits, &format!("{LIMITS_API}/limitValues"), &q).await?;
        let values: Vec<_> = values.into_iter().filter(|v| v.name.as_deref().is_none_or(|n| n == name)).collect();
        if values.is_empty() {
            continue;
        }
        let mut limit = 0.0;
        let mut used = 0.0;
        for v in &values {
            limit += v.value.unwrap_or(0.0);
            let ad = if v.scope_type.as_deref() == Some("AD") { v.availability_domain.as_deref() } else { None };
            if let Some(a) = availability(client, "compute", name, ad).await? {
                used += a.used.unwrap_or(0.0);
            }
        }
        return Ok(Some(LimitUse { name: name.to_owned(), limit, used }));
    }
    Ok(None)
}

/// Explains a Limits API refusal: the guard cannot decide, so it says how to let it (a policy)
/// or how to skip it.
fn limits_unreadable(e: Error) -> Error {
    match e {
        Error::NotFound(mut d) | Error::PermissionDenied(mut d) => {
            d.message = format!(
                "the free-tier guard cannot read the tenancy's limits ({}): allow it with a policy such as \
                 `Allow group <group> to inspect resource-availability in tenancy`, or set `allow_billing: true` to \
                 launch without the check",
                d.message
            );
            Error::PermissionDenied(d)
        }
        other => other,
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v}") }
}

/// Checks `req` against the tenancy's Always Free allowance; `Ok` when it fits. Emits a progress
/// event with what it read.
pub async fn check(
    client: &OciClient,
    ctx: &Ctx,
    req: &FreeTierRequest<'_>,
    cap: &FreeTierAllowance,
) -> Result<(), Error> {
    if req.shape == A1_FLEX {
        let dims = [
            ("ocpus", "OCPU", req.ocpus, "standard-a1-core-regional-count", "standard-a1-core-count", cap.a1_ocpus),
            (
                "memory_in_gbs",
                "GB of memory",
                req.memory_gbs,
                "standard-a1-memory-regional-count",
                "standard-a1-memory-count",
                cap.a1_memory_gbs,
            ),
        ];
        for (field, unit, wanted, regional, per_ad, cap) in dims {
            if wanted <= 0.0 {
                continue;
            }
            let Some(l) = compute_limit(client, &[regional, per_ad]).await.map_err(limits_unreadable)? else {
                return Err(OciError::FreeTier {
                    field: field.into(),
                    message: format!(
                        "the Limits API has no `{regional}` or `{per_ad}` for this tenancy, so the free A1 \
                         allowance cannot be checked"
                    ),
                }
                .into());
            };
            let allowance = cap.map_or(l.limit, |c| c.min(l.limit));
            ctx.progress(format!(
                "free-tier guard: {} {unit} of A1 in use, allowance {} ({} = {}{})",
                fmt_num(l.used),
                fmt_num(allowance),
                l.name,
                fmt_num(l.limit),
                if cap.is_some() { ", capped by the configured allowance" } else { "" }
            ));
            let total = l.used + wanted;
            if total > allowance {
                return Err(OciError::FreeTier {
                    field: field.into(),
                    message: format!(
                        "{} {unit} of A1 in use + {} requested = {} > allowance {}: {} {unit} would be billed",
                        fmt_num(l.used),
                        fmt_num(wanted),
                        fmt_num(total),
                        fmt_num(allowance),
                        fmt_num(total - allowance)
                    ),
                }
                .into());
            }
        }
    } else if req.shape == E2_MICRO {
        if req.instances > 0 {
            let Some(l) = compute_limit(client, &[E2_MICRO_LIMIT]).await.map_err(limits_unreadable)? else {
                return Err(OciError::FreeTier {
                    field: "shape".into(),
                    message: format!(
                        "the Limits API has no `{E2_MICRO_LIMIT}` for this tenancy, so the free {E2_MICRO} \
                         allowance cannot be checked"
                    ),
                }
                .into());
            };
            ctx.progress(format!(
                "free-tier guard: {} {E2_MICRO} instances running, allowance {} ({E2_MICRO_LIMIT})",
                fmt_num(l.used),
                fmt_num(l.limit)
            ));
            let total = l.used + f64::from(req.instances);
            if total > l.limit {
                return Err(OciError::FreeTier {
                    field: "shape".into(),
                    message: format!(
                        "{} {E2_MICRO} instances running + {} requested = {} > allowance {}: the new instance \
                         would be billed",
                        fmt_num(l.used),
                        req.instances,
                        fmt_num(total),
                        fmt_num(l.limit)
                    ),
                }
                .into());
            }
        }
    } else if req.instances > 0 || req.ocpus > 0.0 || req.memory_gbs > 0.0 {
        // Only A1.Flex and E2.1.Micro have an Always Free allowance: any other shape is billed in full.
        let what = if req.instances > 0 {
            "the whole instance (every OCPU and GB of memory) would be billed".to_owned()
        } else {
            format!(
                "{} more OCPU and {} more GB of memory would be billed",
                fmt_num(req.ocpus),
                fmt_num(req.memory_gbs)
            )
        };
        return Err(OciError::FreeTier {
            field: "shape".into(),
            message: format!("{} has no Always Free allowance (only {A1_FLEX} and {E2_MICRO} do): {what}", req.shape),
        }
        .into());
    }
    if req.storage_gbs > 0.0 {
        match availability(client, "block-storage", "total-free-storage-gb-regional", None).await? {
            Some(a) => {
                let available = a.available.unwrap_or(0.0);
                ctx.progress(format!(
                    "free-tier guard: {} GB of free block storage used, {} GB left",
                    fmt_num(a.used.unwrap_or(0.0)),
                    fmt_num(available)
                ));
                if req.storage_gbs > available {
                    return Err(OciError::FreeTier {
                        field: "boot_volume_size_in_gbs".into(),
                        message: format!(
                            "a {} GB boot volume with {} GB of free block storage left \
                             (total-free-storage-gb-regional, {} GB used): {} GB would be billed",
                            fmt_num(req.storage_gbs),
                            fmt_num(available),
                            fmt_num(a.used.unwrap_or(0.0)),
                            fmt_num(req.storage_gbs - available)
                        ),
                    }
                    .into());
                }
            }
            None => ctx.progress(
                "free-tier guard: the Limits API has no total-free-storage-gb-regional here; block storage not checked",
            ),
        }
    }
    Ok(())
}
