//! Platform image lookup: the newest `AVAILABLE` image for an operating system, version and
//! shape (`GET /20160918/images`, sorted by creation time, newest first), skipping `Minimal`
//! variants unless asked for.

use serde::Deserialize;
use stackup_core::Error;

use crate::client::{CORE_API, OciClient, Service};

/// An image as the Core API returns it (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct ImageWire {
    /// OCID.
    #[serde(rename = "id")]
    pub id: String,
    /// Display name (`Canonical-Ubuntu-24.04-aarch64-2026.09.18-0`).
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    /// Operating system (`Canonical Ubuntu`, `Oracle Linux`).
    #[serde(rename = "operatingSystem", default)]
    pub operating_system: Option<String>,
    /// Version (`24.04`).
    #[serde(rename = "operatingSystemVersion", default)]
    pub operating_system_version: Option<String>,
    /// Lifecycle state.
    #[serde(rename = "lifecycleState", default)]
    pub lifecycle_state: Option<String>,
}

/// Finds the newest image matching `os`, `version` and `shape` in `compartment_id` (platform
/// images are listed in every compartment). `Minimal` images are skipped unless `os_version`
/// names one.
pub async fn newest_image(
    client: &OciClient,
    compartment_id: &str,
    os: &str,
    version: &str,
    shape: &str,
) -> Result<ImageWire, Error> {
    let q = [
        ("compartmentId", compartment_id),
        ("operatingSystem", os),
        ("operatingSystemVersion", version),
        ("shape", shape),
        ("lifecycleState", "AVAILABLE"),
        ("sortBy", "TIMECREATED"),
        ("sortOrder", "DESC"),
        ("limit", "50"),
    ];
    let images: Vec<ImageWire> = client.get(Service::Iaas, &format!("{CORE_API}/images"), &q).await?;
    let want_minimal = version.contains("Minimal");
    images
        .into_iter()
        .find(|i| want_minimal || !i.display_name.as_deref().unwrap_or_default().contains("Minimal"))
        .ok_or_else(|| {
            Error::NotFound(stackup_core::ApiErrorDetails {
                code: Some("ImageNotFound".into()),
                message: format!("no AVAILABLE image for `{os}` `{version}` compatible with shape {shape}"),
                ..Default::default()
            })
        })
}

/// Reads one image; `None` when it is gone (old platform images are deleted over time).
pub async fn get_image(client: &OciClient, id: &str) -> Result<Option<ImageWire>, Error> {
    client.get_opt(Service::Iaas, &format!("{CORE_API}/images/{id}")).await
}
