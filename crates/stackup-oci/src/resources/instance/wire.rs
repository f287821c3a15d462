//! The Core API's instance-related JSON, spelled as on the wire (`memoryInGBs`,
//! `bootVolumeSizeInGBs`: explicit renames, never `rename_all`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub(crate) struct ShapeConfigWire {
    #[serde(rename = "ocpus", default)]
    pub(crate) ocpus: Option<f64>,
    #[serde(rename = "memoryInGBs", default)]
    pub(crate) memory_in_gbs: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SourceDetailsWire {
    #[serde(rename = "imageId", default)]
    pub(crate) image_id: Option<String>,
    #[serde(rename = "bootVolumeSizeInGBs", default)]
    pub(crate) boot_volume_size_in_gbs: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InstanceWire {
    #[serde(rename = "id")]
    pub(crate) id: String,
    #[serde(rename = "compartmentId")]
    pub(crate) compartment_id: String,
    #[serde(rename = "displayName", default)]
    pub(crate) display_name: Option<String>,
    #[serde(rename = "availabilityDomain")]
    pub(crate) availability_domain: String,
    #[serde(rename = "faultDomain", default)]
    pub(crate) fault_domain: Option<String>,
    #[serde(rename = "shape")]
    pub(crate) shape: String,
    #[serde(rename = "shapeConfig", default)]
    pub(crate) shape_config: Option<ShapeConfigWire>,
    #[serde(rename = "imageId", default)]
    pub(crate) image_id: Option<String>,
    #[serde(rename = "sourceDetails", default)]
    pub(crate) source_details: Option<SourceDetailsWire>,
    #[serde(rename = "metadata", default)]
    pub(crate) metadata: BTreeMap<String, String>,
    #[serde(rename = "lifecycleState")]
    pub(crate) lifecycle_state: String,
    #[serde(rename = "freeformTags", default)]
    pub(crate) freeform_tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VnicAttachmentWire {
    #[serde(rename = "vnicId", default)]
    pub(crate) vnic_id: Option<String>,
    #[serde(rename = "lifecycleState")]
    pub(crate) lifecycle_state: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VnicWire {
    #[serde(rename = "isPrimary", default)]
    pub(crate) is_primary: Option<bool>,
    #[serde(rename = "publicIp", default)]
    pub(crate) public_ip: Option<String>,
    #[serde(rename = "privateIp", default)]
    pub(crate) private_ip: Option<String>,
    #[serde(rename = "subnetId", default)]
    pub(crate) subnet_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AvailabilityDomainWire {
    #[serde(rename = "name")]
    pub(crate) name: String,
}

#[derive(Serialize)]
pub(crate) struct LaunchShapeConfig {
    #[serde(rename = "ocpus")]
    pub(crate) ocpus: f64,
    #[serde(rename = "memoryInGBs")]
    pub(crate) memory_in_gbs: f64,
}

#[derive(Serialize)]
pub(crate) struct LaunchSourceDetails<'a> {
    #[serde(rename = "sourceType")]
    pub(crate) source_type: &'static str,
    #[serde(rename = "imageId")]
    pub(crate) image_id: &'a str,
    #[serde(rename = "bootVolumeSizeInGBs", skip_serializing_if = "Option::is_none")]
    pub(crate) boot_volume_size_in_gbs: Option<u32>,
}

#[derive(Serialize)]
pub(crate) struct CreateVnicDetails<'a> {
    #[serde(rename = "subnetId")]
    pub(crate) subnet_id: &'a str,
    #[serde(rename = "assignPublicIp")]
    pub(crate) assign_public_ip: bool,
}

#[derive(Serialize)]
pub(crate) struct InstanceOptions {
    #[serde(rename = "areLegacyImdsEndpointsDisabled")]
    pub(crate) are_legacy_imds_endpoints_disabled: bool,
}

#[derive(Serialize)]
pub(crate) struct LaunchInstanceDetails<'a> {
    #[serde(rename = "availabilityDomain")]
    pub(crate) availability_domain: &'a str,
    #[serde(rename = "compartmentId")]
    pub(crate) compartment_id: &'a str,
    #[serde(rename = "displayName")]
    pub(crate) display_name: &'a str,
    #[serde(rename = "faultDomain", skip_serializing_if = "Option::is_none")]
    pub(crate) fault_domain: Option<&'a str>,
    #[serde(rename = "shape")]
    pub(crate) shape: &'a str,
    #[serde(rename = "shapeConfig", skip_serializing_if = "Option::is_none")]
    pub(crate) shape_config: Option<LaunchShapeConfig>,
    #[serde(rename = "sourceDetails")]
    pub(crate) source_details: LaunchSourceDetails<'a>,
    #[serde(rename = "createVnicDetails")]
    pub(crate) create_vnic_details: CreateVnicDetails<'a>,
    #[serde(rename = "metadata")]
    pub(crate) metadata: &'a BTreeMap<String, String>,
    #[serde(rename = "freeformTags")]
    pub(crate) freeform_tags: &'a BTreeMap<String, String>,
    #[serde(rename = "instanceOptions")]
    pub(crate) instance_options: InstanceOptions,
}

#[derive(Serialize)]
pub(crate) struct UpdateInstanceDetails<'a> {
    #[serde(rename = "displayName")]
    pub(crate) display_name: &'a str,
    #[serde(rename = "freeformTags")]
    pub(crate) freeform_tags: BTreeMap<String, String>,
    #[serde(rename = "shapeConfig", skip_serializing_if = "Option::is_none")]
    pub(crate) shape_config: Option<LaunchShapeConfig>,
}
