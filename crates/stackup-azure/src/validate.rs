//! Azure's naming and value rules, checked before any API call. Each check names the field and
//! the rule it broke (`Error::InvalidInput`).

use std::collections::BTreeMap;

use stackup_core::Error;

fn invalid(field: &str, rule: impl Into<String>) -> Error {
    Error::invalid(field, rule)
}

/// A subscription id is a GUID.
pub fn subscription_id(s: &str) -> Result<(), Error> {
    guid("subscription_id", s)
}

/// A GUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
pub fn guid(field: &str, s: &str) -> Result<(), Error> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups.iter().zip(lens).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok { Ok(()) } else { Err(invalid(field, "must be a GUID like 00000000-0000-0000-0000-000000000000")) }
}

/// Resource group: 1–90 characters: letters, digits, `_`, `-`, `.`, `(`, `)`; not ending in `.`.
pub fn resource_group_name(field: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() || s.chars().count() > 90 {
        return Err(invalid(field, "resource group names are 1-90 characters"));
    }
    if !s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')')) {
        return Err(invalid(field, "resource group names use letters, digits, '_', '-', '.', '(' and ')' only"));
    }
    if s.ends_with('.') {
        return Err(invalid(field, "resource group names cannot end with '.'"));
    }
    Ok(())
}

/// Storage account: 3–24 lowercase letters and digits (globally unique).
pub fn storage_account_name(field: &str, s: &str) -> Result<(), Error> {
    if !(3..=24).contains(&s.len()) {
        return Err(invalid(field, "storage account names are 3-24 characters"));
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(invalid(field, "storage account names use lowercase letters and digits only (no '-' or '_')"));
    }
    Ok(())
}

/// File share or blob container: 3–63 lowercase letters, digits and `-`; starting with a
/// letter or digit; every `-` between two letters or digits.
pub fn share_or_container_name(field: &str, kind: &str, s: &str) -> Result<(), Error> {
    if !(3..=63).contains(&s.len()) {
        return Err(invalid(field, format!("{kind} names are 3-63 characters")));
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(invalid(field, format!("{kind} names use lowercase letters, digits and '-' only")));
    }
    if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
        return Err(invalid(field, format!("every '-' in a {kind} name must sit between two letters or digits")));
    }
    Ok(())
}

/// Network resources (VNet, subnet, NSG, public IP, NIC, NSG rule): 1–80 characters of
/// letters, digits, `_`, `.`, `-`; starting with a letter or digit; ending with a letter, digit
/// or `_`.
pub fn network_name(field: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() || s.len() > 80 {
        return Err(invalid(field, "network resource names are 1-80 characters"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(invalid(field, "network resource names use letters, digits, '_', '.' and '-' only"));
    }
    let first = s.chars().next().unwrap_or('-');
    let last = s.chars().last().unwrap_or('-');
    if !first.is_ascii_alphanumeric() {
        return Err(invalid(field, "network resource names start with a letter or digit"));
    }
    if !(last.is_ascii_alphanumeric() || last == '_') {
        return Err(invalid(field, "network resource names end with a letter, digit or '_'"));
    }
    Ok(())
}

/// Linux VM name (also its computer name): 1–64 characters of letters, digits, `-` and `.`,
/// not starting with `-`/`.` and not ending with `.` or `-`.
pub fn vm_name(field: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() || s.len() > 64 {
        return Err(invalid(field, "Linux VM names are 1-64 characters"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')) {
        return Err(invalid(field, "VM names use letters, digits, '-' and '.' only"));
    }
    if s.starts_with(['-', '.']) || s.ends_with(['-', '.']) {
        return Err(invalid(field, "VM names cannot start or end with '-' or '.'"));
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(field, "VM names cannot be only digits"));
    }
    Ok(())
}

/// Names Azure refuses as a Linux admin user.
const RESERVED_USERS: &[&str] = &[
    "administrator",
    "admin",
    "user",
    "user1",
    "test",
    "user2",
    "test1",
    "user3",
    "admin1",
    "1",
    "123",
    "a",
    "actuser",
    "adm",
    "admin2",
    "aspnet",
    "backup",
    "console",
    "david",
    "guest",
    "john",
    "owner",
    "root",
    "server",
    "sql",
    "support",
    "support_388945a0",
    "sys",
    "test2",
    "test3",
    "user4",
    "user5",
];

/// Linux admin user: 1–32 characters, lowercase letters, digits, `_`, `-`, starting with a
/// letter or `_`, and not one of Azure's reserved names (`root`, `admin`, …).
pub fn admin_username(field: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() || s.len() > 32 {
        return Err(invalid(field, "Linux user names are 1-32 characters"));
    }
    let first = s.chars().next().unwrap_or('-');
    if !(first.is_ascii_lowercase() || first == '_')
        || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
    {
        return Err(invalid(field, "use lowercase letters, digits, '_' and '-', starting with a letter or '_'"));
    }
    if RESERVED_USERS.contains(&s) {
        return Err(invalid(field, format!("`{s}` is reserved by Azure; choose another admin user name")));
    }
    Ok(())
}

/// An OpenSSH public key line of a type Azure accepts (RSA ≥ 2048 bits or Ed25519).
pub fn ssh_public_key(field: &str, s: &str) -> Result<(), Error> {
    let mut parts = s.split_whitespace();
    let (Some(kind), Some(data)) = (parts.next(), parts.next()) else {
        return Err(invalid(field, "must be an OpenSSH public key line (`ssh-ed25519 AAAA… comment`)"));
    };
    if !matches!(kind, "ssh-rsa" | "ssh-ed25519") {
        return Err(invalid(field, format!("key type `{kind}` is not accepted by Azure; use ssh-rsa or ssh-ed25519")));
    }
    use base64::Engine as _;
    let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(data) else {
        return Err(invalid(field, "the key data is not base64"));
    };
    if !blob.starts_with(&[0, 0, 0, kind.len() as u8]) || blob.get(4..4 + kind.len()) != Some(kind.as_bytes()) {
        return Err(invalid(field, "the key data does not match its type"));
    }
    if kind == "ssh-rsa" && blob.len() < 260 {
        return Err(invalid(field, "RSA keys must be at least 2048 bits"));
    }
    if s.contains("PRIVATE KEY") {
        return Err(invalid(field, "this is a private key; pass the public key"));
    }
    Ok(())
}

/// An Azure region name: letters and digits (spaces allowed, as in `Japan East`).
pub fn location(field: &str, s: &str) -> Result<(), Error> {
    if s.trim().is_empty() {
        return Err(invalid(field, "a location (region) is required, for example `japaneast`"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
        return Err(invalid(field, "locations are region names such as `japaneast` (letters and digits)"));
    }
    Ok(())
}

/// The normal form ARM returns for a location: lowercase, no spaces.
pub fn normalize_location(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

/// Tag keys the provider sets itself; user tags must not use them.
pub const MANAGED_TAGS: &[&str] = &["managed-by", "stackup-stack", "stackup-address"];

/// Tag-name prefixes Azure reserves for the tags it creates itself (ARM `Tags_CreateOrUpdate`:
/// "Tag names cannot have the following prefixes which are reserved for Azure use:
/// 'microsoft', 'azure', 'windows'"; tag names are case-insensitive).
pub const AZURE_TAG_PREFIXES: &[&str] = &["microsoft", "azure", "windows"];

/// True for a tag Azure created (a reserved prefix): users cannot set it, diffs ignore it.
pub fn is_azure_tag(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    AZURE_TAG_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// Tags: at most 50, names 1–512 characters without `< > % & \ ? /` and not starting with a
/// prefix Azure reserves (`microsoft`, `azure`, `windows`), values up to 256.
pub fn tags(field: &str, tags: &BTreeMap<String, String>) -> Result<(), Error> {
    tag_rules(field, tags, true)
}

/// Tags of a data-plane object (a Key Vault secret): the same rules without ARM's reserved
/// prefixes.
pub fn data_plane_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<(), Error> {
    tag_rules(field, tags, false)
}

fn tag_rules(field: &str, tags: &BTreeMap<String, String>, arm: bool) -> Result<(), Error> {
    if tags.len() + MANAGED_TAGS.len() > 50 {
        return Err(invalid(field, "at most 47 tags (Azure allows 50; stackup adds 3)"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 512 {
            return Err(invalid(&format!("{field}.{k}"), "tag names are 1-512 characters"));
        }
        if k.contains(['<', '>', '%', '&', '\\', '?', '/']) {
            return Err(invalid(&format!("{field}.{k}"), "tag names cannot contain < > % & \\ ? /"));
        }
        if v.len() > 256 {
            return Err(invalid(&format!("{field}.{k}"), "tag values are at most 256 characters"));
        }
        if MANAGED_TAGS.contains(&k.as_str()) {
            return Err(invalid(&format!("{field}.{k}"), "this tag is set by stackup itself"));
        }
        if arm && is_azure_tag(k) {
            return Err(invalid(
                &format!("{field}.{k}"),
                "tag names starting with microsoft, azure or windows are reserved for Azure",
            ));
        }
    }
    Ok(())
}

/// A full ARM resource id of the given type (`Microsoft.Network/virtualNetworks/subnets`).
pub fn arm_id(field: &str, s: &str, type_suffix: &str) -> Result<(), Error> {
    let id = crate::ids::ResourceId::parse(s).map_err(|_| {
        invalid(field, format!("must be an ARM resource id (/subscriptions/…/providers/{type_suffix}/…)"))
    })?;
    if !id.resource_type().eq_ignore_ascii_case(type_suffix) {
        return Err(invalid(field, format!("must be the id of a {type_suffix}, not a {}", id.resource_type())));
    }
    Ok(())
}

/// Runs a check only when the input is known (references are checked after they resolve).
pub fn known<T>(input: &stackup_core::Input<T>, check: impl FnOnce(&T) -> Result<(), Error>) -> Result<(), Error> {
    match input.known() {
        Some(v) => check(v),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(storage_account_name("n", "blossomdata12345").is_ok());
        for bad in ["ab", "Blossom", "blossom-data", "a234567890123456789012345"] {
            assert!(storage_account_name("n", bad).is_err(), "{bad}");
        }
        assert!(share_or_container_name("n", "share", "blossom-data").is_ok());
        for bad in ["-abc", "abc-", "a--b", "ab", "Abc", "a_b"] {
            assert!(share_or_container_name("n", "share", bad).is_err(), "{bad}");
        }
        assert!(resource_group_name("rg", "blossom-rg").is_ok());
        assert!(resource_group_name("rg", "rg.").is_err());
        assert!(network_name("n", "blossom-vnet").is_ok());
        assert!(network_name("n", "-x").is_err());
        assert!(vm_name("n", "blossom-vm").is_ok());
        assert!(vm_name("n", "1234").is_err());
        assert!(admin_username("u", "azureuser").is_ok());
        assert!(admin_username("u", "root").is_err());
        assert!(admin_username("u", "Azure").is_err());
        assert!(subscription_id("00000000-0000-0000-0000-000000000000").is_ok());
        assert!(subscription_id("sub").is_err());
    }

    #[test]
    fn ssh_keys() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host";
        assert!(ssh_public_key("k", ed).is_ok());
        assert!(ssh_public_key("k", "ssh-dss AAAA").is_err());
        assert!(ssh_public_key("k", "ssh-ed25519 notbase64!").is_err());
        assert!(ssh_public_key("k", "-----BEGIN OPENSSH PRIVATE KEY-----").is_err());
    }
}
