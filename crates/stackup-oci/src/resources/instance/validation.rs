//! Pure checks and encodings for instance specs: shape/OCPU/memory rules, boot volume size,
//! images, SSH keys, ADs and fault domains, and the metadata (SSH keys + base64 user data)
//! within OCI's 32,000-byte limit.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest as _;
use stackup_core::Error;

use super::{ImageSource, InstanceSpec, METADATA_LIMIT_BYTES, MIN_BOOT_VOLUME_GBS};
use crate::free_tier;
use crate::validate;

pub(crate) fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The instance metadata (`ssh_authorized_keys`, base64 `user_data`) for a spec.
pub(crate) fn metadata(spec: &InstanceSpec) -> Result<BTreeMap<String, String>, Error> {
    let mut m = BTreeMap::new();
    if !spec.ssh_authorized_keys.is_empty() {
        m.insert("ssh_authorized_keys".to_owned(), spec.ssh_authorized_keys.join("\n"));
    }
    if let Some(ud) = &spec.user_data {
        let text = ud.get("user_data")?;
        m.insert("user_data".to_owned(), base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
    }
    let size: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > METADATA_LIMIT_BYTES {
        return Err(Error::invalid(
            "user_data",
            format!(
                "instance metadata would be {size} bytes (user data is sent base64-encoded, 4/3 of its size); OCI \
                 allows {METADATA_LIMIT_BYTES}: shrink the cloud-init document or fetch large files from it"
            ),
        ));
    }
    Ok(m)
}

pub(crate) fn is_flex(shape: &str) -> bool {
    shape.ends_with(".Flex")
}

pub(crate) fn validate_spec(spec: &InstanceSpec) -> Result<(), Error> {
    validate::ocid("compartment_id", &spec.compartment_id, &["compartment", "tenancy"])?;
    validate::display_name("display_name", &spec.display_name)?;
    let shape_ok = (spec.shape.starts_with("VM.") || spec.shape.starts_with("BM."))
        && spec.shape.split('.').count() >= 3
        && !spec.shape.contains(char::is_whitespace);
    if !shape_ok {
        return Err(Error::invalid("shape", format!("`{}` is not a shape name like VM.Standard.A1.Flex", spec.shape)));
    }
    if is_flex(&spec.shape) {
        let ocpus =
            spec.ocpus.ok_or_else(|| Error::invalid("ocpus", format!("required for the Flex shape {}", spec.shape)))?;
        let mem = spec
            .memory_in_gbs
            .ok_or_else(|| Error::invalid("memory_in_gbs", format!("required for the Flex shape {}", spec.shape)))?;
        if !(ocpus.is_finite() && (1.0..=80.0).contains(&ocpus)) {
            return Err(Error::invalid("ocpus", format!("{ocpus}: use 1 to 80")));
        }
        if spec.shape == free_tier::A1_FLEX && ocpus.fract() != 0.0 {
            return Err(Error::invalid("ocpus", format!("{ocpus}: A1 takes whole OCPUs")));
        }
        if !(mem.is_finite() && mem >= 1.0 && mem.fract() == 0.0) {
            return Err(Error::invalid("memory_in_gbs", format!("{mem}: use a whole number of GB, at least 1")));
        }
        let ratio = mem / ocpus;
        if !(1.0..=64.0).contains(&ratio) {
            return Err(Error::invalid(
                "memory_in_gbs",
                format!("{mem} GB for {ocpus} OCPUs is {ratio:.2} GB per OCPU; Flex shapes allow 1 to 64 GB per OCPU"),
            ));
        }
        if spec.shape == free_tier::A1_FLEX && mem > 512.0 {
            return Err(Error::invalid("memory_in_gbs", format!("{mem}: A1.Flex allows at most 512 GB")));
        }
    } else if spec.ocpus.is_some() || spec.memory_in_gbs.is_some() {
        return Err(Error::invalid(
            "ocpus",
            format!("{} is a fixed shape: leave ocpus and memory_in_gbs unset", spec.shape),
        ));
    }
    match &spec.image {
        ImageSource::Id { image_id } => validate::ocid("image.image_id", image_id, &["image"])?,
        ImageSource::Latest { operating_system, operating_system_version } => {
            if operating_system.trim().is_empty() {
                return Err(Error::invalid("image.operating_system", "must not be empty (e.g. `Canonical Ubuntu`)"));
            }
            if operating_system_version.trim().is_empty() {
                return Err(Error::invalid("image.operating_system_version", "must not be empty (e.g. `24.04`)"));
            }
        }
    }
    if let Some(b) = spec.boot_volume_size_in_gbs
        && !(MIN_BOOT_VOLUME_GBS..=32_768).contains(&b)
    {
        return Err(Error::invalid("boot_volume_size_in_gbs", format!("{b} GB: OCI boot volumes are 50 to 32768 GB")));
    }
    validate::ocid_input("subnet_id", &spec.subnet_id, &["subnet"])?;
    for (i, k) in spec.ssh_authorized_keys.iter().enumerate() {
        let ok = ["ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com ", "sk-ecdsa-sha2-"]
            .iter()
            .any(|p| k.starts_with(p))
            && !k.contains('\n')
            && k.split_whitespace().count() >= 2;
        if !ok {
            return Err(Error::invalid(
                format!("ssh_authorized_keys[{i}]"),
                "expected one OpenSSH public key line (`ssh-ed25519 AAAA… comment`)",
            ));
        }
    }
    for (i, ad) in spec.availability_domains.iter().enumerate() {
        if !ad.contains("-AD-") {
            return Err(Error::invalid(
                format!("availability_domains[{i}]"),
                format!("`{ad}` is not an AD name like `Uocm:PHX-AD-1`"),
            ));
        }
    }
    for (i, fd) in spec.fault_domains.iter().enumerate() {
        if !matches!(fd.as_str(), "FAULT-DOMAIN-1" | "FAULT-DOMAIN-2" | "FAULT-DOMAIN-3") {
            return Err(Error::invalid(format!("fault_domains[{i}]"), format!("`{fd}`: use FAULT-DOMAIN-1, -2 or -3")));
        }
    }
    validate::freeform_tags("freeform_tags", &spec.freeform_tags)?;
    if spec.user_data.as_ref().is_none_or(|u| u.known().is_some()) {
        metadata(spec)?;
    }
    Ok(())
}
