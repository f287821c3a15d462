//! `Microsoft.Compute/virtualMachines` (api-version [`crate::api_versions::COMPUTE`]): a Linux VM
//! with SSH-key-only login, an image reference (Ubuntu 22.04 by default), a managed OS disk
//! deleted with the VM (`deleteOption: Delete`), one NIC, and cloud-init as `customData`.
//!
//! `customData` is base64 of the rendered cloud-init document, at most 65535 bytes, and ARM
//! never returns it: the outputs keep the SHA-256 of what was applied (carried forward by
//! `read` from the prior outputs), and a different document plans a replacement, as does a
//! different admin user, SSH key, image or OS disk (Azure cannot change them in place). Size and
//! tags update in place (`PATCH`). The outputs include the private and public IP, read through the NIC.

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{
    PROVIDER, create_tagged, id_of, lookup_tagged, opt_str_at, rg_of, str_at, tags_of, user_tags, with_managed_tags,
};
use crate::api_versions::{COMPUTE, NETWORK};
use crate::client::ArmClient;
use crate::validate;

/// Azure's limit on `customData`: 65535 bytes before base64.
pub const CUSTOM_DATA_MAX_BYTES: usize = 65_535;

/// A marketplace image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReference {
    /// `Canonical`.
    pub publisher: String,
    /// `0001-com-ubuntu-server-jammy`.
    pub offer: String,
    /// `22_04-lts-gen2`.
    pub sku: String,
    /// `latest` or a version.
    pub version: String,
}

impl ImageReference {
    /// Ubuntu Server 22.04 LTS, Gen2 (`az vm create --image Ubuntu2204`).
    pub fn ubuntu_2204() -> Self {
        ImageReference {
            publisher: "Canonical".into(),
            offer: "0001-com-ubuntu-server-jammy".into(),
            sku: "22_04-lts-gen2".into(),
            version: "latest".into(),
        }
    }
}

impl Default for ImageReference {
    fn default() -> Self {
        Self::ubuntu_2204()
    }
}

fn std_lrs() -> String {
    "Standard_LRS".into()
}

/// A Linux virtual machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualMachineSpec {
    /// Name (also the host name).
    pub name: String,
    /// Resource group.
    pub resource_group: Input<String>,
    /// Region.
    pub location: String,
    /// Size (`Standard_B2s`).
    pub size: String,
    /// Admin user (`azureuser`).
    pub admin_username: String,
    /// The admin's OpenSSH public key; password login is disabled.
    pub ssh_public_key: String,
    /// The NIC's ARM id.
    pub network_interface_id: Input<String>,
    /// Image (Ubuntu 22.04 LTS Gen2 by default).
    #[serde(default)]
    pub image: ImageReference,
    /// OS disk type (`Standard_LRS`, `StandardSSD_LRS`, `Premium_LRS`).
    #[serde(default = "std_lrs")]
    pub os_disk_type: String,
    /// OS disk size in GiB (the image's size when `None`).
    #[serde(default)]
    pub os_disk_size_gb: Option<u32>,
    /// The rendered cloud-init document (`#cloud-config …`), sent as `customData`.
    #[serde(default)]
    pub custom_data: Option<Input<String>>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An observed VM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualMachineOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// Size.
    pub size: String,
    /// Admin user.
    pub admin_username: String,
    /// Authorized SSH public keys.
    pub ssh_public_keys: Vec<String>,
    /// Image.
    pub image: ImageReference,
    /// OS disk type.
    pub os_disk_type: String,
    /// OS disk size, when reported.
    pub os_disk_size_gb: Option<u32>,
    /// The NIC's ARM id.
    pub network_interface_id: String,
    /// SHA-256 (hex) of the custom data applied; ARM never returns custom data, so this is
    /// carried forward from the previous outputs.
    #[serde(default)]
    pub custom_data_sha256: Option<String>,
    /// Private IP (from the NIC).
    pub private_ip_address: Option<String>,
    /// Public IP (from the NIC's public IP), when it has one.
    pub public_ip_address: Option<String>,
    /// Azure's VM id.
    pub vm_id: Option<String>,
    /// All tags.
    pub tags: BTreeMap<String, String>,
}

/// SHA-256 of custom data, hex.
pub fn custom_data_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the custom data against Azure's limit.
pub fn validate_custom_data(field: &str, text: &str) -> Result<(), Error> {
    if text.len() > CUSTOM_DATA_MAX_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "custom data is {} bytes; Azure accepts at most {CUSTOM_DATA_MAX_BYTES} bytes (before base64)",
                text.len()
            ),
        ));
    }
    if text.trim().is_empty() {
        return Err(Error::invalid(field, "custom data is empty; leave it unset instead"));
    }
    Ok(())
}

/// Manages Linux virtual machines.
#[derive(Debug, Clone)]
pub struct VirtualMachines {
    client: ArmClient,
}

impl VirtualMachines {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        VirtualMachines { client }
    }

    fn path(&self, rg: &str, name: &str) -> Result<String, Error> {
        Ok(format!("{}/providers/Microsoft.Compute/virtualMachines/{name}", self.client.resource_group_path(rg)?))
    }

    fn body(ctx: &Ctx, spec: &VirtualMachineSpec) -> Result<Value, Error> {
        let mut os_disk = json!({
            "createOption": "FromImage",
            "caching": "ReadWrite",
            "managedDisk": {"storageAccountType": spec.os_disk_type},
            "deleteOption": "Delete",
        });
        if let Some(gb) = spec.os_disk_size_gb {
            os_disk["diskSizeGB"] = json!(gb);
        }
        let mut os_profile = json!({
            "computerName": spec.name,
            "adminUsername": spec.admin_username,
            "linuxConfiguration": {
                "disablePasswordAuthentication": true,
                "ssh": {"publicKeys": [{
                    "path": format!("/home/{}/.ssh/authorized_keys", spec.admin_username),
                    "keyData": spec.ssh_public_key,
                }]},
            },
        });
        if let Some(cd) = &spec.custom_data {
            let text = cd.get("custom_data")?;
            validate_custom_data("custom_data", text)?;
            os_profile["customData"] = json!(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
        }
        Ok(json!({
            "location": spec.location,
            "tags": with_managed_tags(ctx, &spec.tags),
            "properties": {
                "hardwareProfile": {"vmSize": spec.size},
                "storageProfile": {"imageReference": spec.image, "osDisk": os_disk},
                "osProfile": os_profile,
                "networkProfile": {"networkInterfaces": [{
                    "id": spec.network_interface_id.get("network_interface_id")?,
                    "properties": {"primary": true},
                }]},
            },
        }))
    }

    fn outputs(body: &Value, fallback: &str, custom_data_sha256: Option<String>) -> VirtualMachineOutputs {
        let id = id_of(body, fallback);
        let p = body.get("properties").cloned().unwrap_or(Value::Null);
        let image = ImageReference {
            publisher: str_at(&p, "/storageProfile/imageReference/publisher"),
            offer: str_at(&p, "/storageProfile/imageReference/offer"),
            sku: str_at(&p, "/storageProfile/imageReference/sku"),
            version: str_at(&p, "/storageProfile/imageReference/version"),
        };
        VirtualMachineOutputs {
            resource_group: rg_of(&id),
            id,
            name: str_at(body, "/name"),
            location: validate::normalize_location(&str_at(body, "/location")),
            size: str_at(&p, "/hardwareProfile/vmSize"),
            admin_username: str_at(&p, "/osProfile/adminUsername"),
            ssh_public_keys: p
                .pointer("/osProfile/linuxConfiguration/ssh/publicKeys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.get("keyData").and_then(Value::as_str))
                        .map(|s| s.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            image,
            os_disk_type: opt_str_at(&p, "/storageProfile/osDisk/managedDisk/storageAccountType")
                .unwrap_or_else(std_lrs),
            os_disk_size_gb: p.pointer("/storageProfile/osDisk/diskSizeGB").and_then(Value::as_u64).map(|v| v as u32),
            network_interface_id: str_at(&p, "/networkProfile/networkInterfaces/0/id"),
            custom_data_sha256,
            private_ip_address: None,
            public_ip_address: None,
            vm_id: opt_str_at(&p, "/vmId"),
            tags: tags_of(body),
        }
    }

    /// Fills in the IPs from the NIC (and its public IP).
    async fn with_ips(&self, mut out: VirtualMachineOutputs) -> Result<VirtualMachineOutputs, Error> {
        if out.network_interface_id.is_empty() {
            return Ok(out);
        }
        let Some(nic) = self.client.get(&out.network_interface_id, NETWORK).await? else { return Ok(out) };
        out.private_ip_address = opt_str_at(&nic, "/properties/ipConfigurations/0/properties/privateIPAddress");
        if let Some(pip_id) = opt_str_at(&nic, "/properties/ipConfigurations/0/properties/publicIPAddress/id")
            && let Some(pip) = self.client.get(&pip_id, NETWORK).await?
        {
            out.public_ip_address = opt_str_at(&pip, "/properties/ipAddress");
        }
        Ok(out)
    }

    fn desired_hash(spec: &VirtualMachineSpec) -> Option<Input<String>> {
        spec.custom_data.as_ref().map(|cd| match cd {
            Input::Value(v) | Input::Sensitive(v) => Input::Value(custom_data_hash(v)),
            other => other.clone(),
        })
    }
}

#[async_trait]
impl Provisioner for VirtualMachines {
    type Spec = VirtualMachineSpec;
    type Outputs = VirtualMachineOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "virtual_machine")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::vm_name("name", &spec.name)?;
        validate::known(&spec.resource_group, |rg| validate::resource_group_name("resource_group", rg))?;
        validate::location("location", &spec.location)?;
        if !spec.size.starts_with(|c: char| c.is_ascii_alphabetic())
            || !spec.size.contains('_')
            || !spec.size.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::invalid("size", format!("`{}` is not a VM size like Standard_B2s", spec.size)));
        }
        validate::admin_username("admin_username", &spec.admin_username)?;
        validate::ssh_public_key("ssh_public_key", &spec.ssh_public_key)?;
        validate::known(&spec.network_interface_id, |id| {
            validate::arm_id("network_interface_id", id, "Microsoft.Network/networkInterfaces")
        })?;
        if !matches!(
            spec.os_disk_type.as_str(),
            "Standard_LRS" | "StandardSSD_LRS" | "Premium_LRS" | "StandardSSD_ZRS" | "Premium_ZRS"
        ) {
            return Err(Error::invalid(
                "os_disk_type",
                "use Standard_LRS, StandardSSD_LRS, Premium_LRS, StandardSSD_ZRS or Premium_ZRS",
            ));
        }
        if let Some(gb) = spec.os_disk_size_gb
            && !(30..=4095).contains(&gb)
        {
            return Err(Error::invalid("os_disk_size_gb", "OS disks are 30-4095 GiB"));
        }
        if let Some(cd) = &spec.custom_data {
            validate::known(cd, |text| validate_custom_data("custom_data", text))?;
        }
        validate::tags("tags", &spec.tags)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        let Some(body) = self.client.get(id, COMPUTE).await? else { return Ok(None) };
        let hash = prior.and_then(|p| p.custom_data_sha256.clone());
        Ok(Some(self.with_ips(Self::outputs(&body, id, hash)).await?))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let Some(rg) = spec.resource_group.known() else { return Ok(None) };
        let path = self.path(rg, &spec.name)?;
        let Some(body) = lookup_tagged(&self.client, ctx, &path, COMPUTE).await? else { return Ok(None) };
        // The interrupted run created it from this spec.
        let hash = spec.custom_data.as_ref().and_then(|c| c.known()).map(|t| custom_data_hash(t));
        let out = self.with_ips(Self::outputs(&body, &path, hash)).await?;
        Ok(Some(Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name.to_ascii_lowercase(), &observed.name.to_ascii_lowercase());
        super::diff_ci(&mut d, "resource_group", &desired.resource_group, &observed.resource_group, true);
        d.field_replace("location", &validate::normalize_location(&desired.location), &observed.location);
        d.field("size", &desired.size.to_ascii_lowercase(), &observed.size.to_ascii_lowercase());
        d.field_replace("admin_username", &desired.admin_username, &observed.admin_username);
        d.field_replace("ssh_public_keys", &vec![desired.ssh_public_key.trim().to_owned()], &observed.ssh_public_keys);
        let mut image = desired.image.clone();
        let mut seen = observed.image.clone();
        for i in [&mut image, &mut seen] {
            i.publisher = i.publisher.to_ascii_lowercase();
            i.offer = i.offer.to_ascii_lowercase();
            i.sku = i.sku.to_ascii_lowercase();
        }
        d.field_replace("image", &image, &seen);
        d.field_replace("os_disk_type", &desired.os_disk_type, &observed.os_disk_type);
        if let Some(gb) = desired.os_disk_size_gb {
            // Resizing an OS disk needs the VM deallocated: plan a new VM instead.
            d.field_replace("os_disk_size_gb", &Some(gb), &observed.os_disk_size_gb);
        }
        match (Self::desired_hash(desired), &observed.custom_data_sha256) {
            (Some(Input::Value(h)), Some(o)) if &h == o => {}
            (Some(h), o) => {
                d.input_replace("custom_data_sha256", &h, &o.clone().unwrap_or_default());
            }
            (None, Some(o)) => {
                d.field_replace("custom_data_sha256", &None::<String>, &Some(o.clone()));
            }
            (None, None) => {}
        }
        super::diff_ci(
            &mut d,
            "network_interface_id",
            &desired.network_interface_id,
            &observed.network_interface_id,
            true,
        );
        d.field("tags", &desired.tags, &user_tags(&observed.tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = self.path(spec.resource_group.get("resource_group")?, &spec.name)?;
        let hash = match &spec.custom_data {
            Some(cd) => Some(custom_data_hash(cd.get("custom_data")?)),
            None => None,
        };
        let body = create_tagged(&self.client, ctx, "virtual machine", &path, COMPUTE, &Self::body(ctx, spec)?).await?;
        let out = self
            .with_ips(Self::outputs(&body, &path, hash))
            .await
            .map_err(|e| CreateError::partial(e, path.clone()))?;
        Ok(Created { id: out.id.clone(), outputs: out })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &Self::Spec,
        observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error> {
        self.validate(spec)?;
        // Only the size and tags change in place (everything else plans a replacement); PATCH
        // them so write-only fields (customData) are never resent.
        let mut props = json!({});
        if !spec.size.eq_ignore_ascii_case(&observed.size) {
            props["hardwareProfile"] = json!({"vmSize": spec.size});
        }
        let body = json!({"tags": super::update_tags(ctx, &spec.tags, &observed.tags), "properties": props});
        let updated = self.client.patch(Some(ctx), id, COMPUTE, &body).await?;
        self.with_ips(Self::outputs(&updated, id, observed.custom_data_sha256.clone())).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, COMPUTE).await
    }
}
