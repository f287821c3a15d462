//! `Microsoft.Network/publicIPAddresses` (api-version [`crate::api_versions::NETWORK`]): always
//! SKU `Standard`, tier `Regional`, `Static`, IPv4 (a Standard address must be static; a VM needs
//! the Regional tier).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{
    PROVIDER, create_tagged, id_of, lookup_tagged, opt_str_at, rg_of, str_at, tags_of, user_tags, with_managed_tags,
};
use crate::api_versions::NETWORK;
use crate::client::ArmClient;
use crate::validate;

fn idle_default() -> u8 {
    4
}

/// A static Standard public IPv4 address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicIpAddressSpec {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: Input<String>,
    /// Region.
    pub location: String,
    /// Availability zones (`["1"]`); empty for no zone.
    #[serde(default)]
    pub zones: Vec<String>,
    /// TCP idle timeout, 4–30 minutes (default 4).
    #[serde(default = "idle_default")]
    pub idle_timeout_minutes: u8,
    /// DNS label: `{label}.{region}.cloudapp.azure.com`.
    #[serde(default)]
    pub dns_label: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An observed public IP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicIpAddressOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// The address, once allocated.
    pub ip_address: Option<String>,
    /// Fully qualified DNS name, when a label is set.
    pub fqdn: Option<String>,
    /// Zones.
    pub zones: Vec<String>,
    /// Idle timeout.
    pub idle_timeout_minutes: u8,
    /// DNS label.
    pub dns_label: Option<String>,
    /// All tags.
    pub tags: BTreeMap<String, String>,
}

/// Manages public IP addresses.
#[derive(Debug, Clone)]
pub struct PublicIpAddresses {
    client: ArmClient,
}

impl PublicIpAddresses {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        PublicIpAddresses { client }
    }

    fn path(&self, rg: &str, name: &str) -> Result<String, Error> {
        Ok(format!("{}/providers/Microsoft.Network/publicIPAddresses/{name}", self.client.resource_group_path(rg)?))
    }

    fn outputs(body: &Value, fallback: &str) -> PublicIpAddressOutputs {
        let id = id_of(body, fallback);
        let mut zones: Vec<String> = body
            .get("zones")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        zones.sort();
        PublicIpAddressOutputs {
            resource_group: rg_of(&id),
            id,
            name: str_at(body, "/name"),
            location: validate::normalize_location(&str_at(body, "/location")),
            ip_address: opt_str_at(body, "/properties/ipAddress"),
            fqdn: opt_str_at(body, "/properties/dnsSettings/fqdn"),
            zones,
            idle_timeout_minutes: body.pointer("/properties/idleTimeoutInMinutes").and_then(Value::as_u64).unwrap_or(4)
                as u8,
            dns_label: opt_str_at(body, "/properties/dnsSettings/domainNameLabel"),
            tags: tags_of(body),
        }
    }

    fn body(ctx: &Ctx, spec: &PublicIpAddressSpec) -> Value {
        let mut props = json!({
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4",
            "idleTimeoutInMinutes": spec.idle_timeout_minutes,
        });
        if let Some(label) = &spec.dns_label {
            props["dnsSettings"] = json!({"domainNameLabel": label});
        }
        let mut body = json!({
            "location": spec.location,
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": props,
            "tags": with_managed_tags(ctx, &spec.tags),
        });
        if !spec.zones.is_empty() {
            body["zones"] = json!(spec.zones);
        }
        body
    }
}

#[async_trait]
impl Provisioner for PublicIpAddresses {
    type Spec = PublicIpAddressSpec;
    type Outputs = PublicIpAddressOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "public_ip_address")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::network_name("name", &spec.name)?;
        validate::known(&spec.resource_group, |rg| validate::resource_group_name("resource_group", rg))?;
        validate::location("location", &spec.location)?;
        if !(4..=30).contains(&spec.idle_timeout_minutes) {
            return Err(Error::invalid("idle_timeout_minutes", "the idle timeout is 4-30 minutes"));
        }
        for z in &spec.zones {
            if !matches!(z.as_str(), "1" | "2" | "3") {
                return Err(Error::invalid("zones", format!("zone `{z}` is not 1, 2 or 3")));
            }
        }
        if let Some(l) = &spec.dns_label {
            let ok = (3..=63).contains(&l.len())
                && l.starts_with(|c: char| c.is_ascii_lowercase())
                && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.ends_with('-');
            if !ok {
                return Err(Error::invalid(
                    "dns_label",
                    "3-63 lowercase letters, digits and '-', starting with a letter",
                ));
            }
        }
        validate::tags("tags", &spec.tags)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        Ok(self.client.get(id, NETWORK).await?.map(|b| Self::outputs(&b, id)))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let Some(rg) = spec.resource_group.known() else { return Ok(None) };
        let path = self.path(rg, &spec.name)?;
        Ok(lookup_tagged(&self.client, ctx, &path, NETWORK).await?.map(|b| {
            let out = Self::outputs(&b, &path);
            Created { id: out.id.clone(), outputs: out }
        }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name, &observed.name);
        super::diff_ci(&mut d, "resource_group", &desired.resource_group, &observed.resource_group, true);
        d.field_replace("location", &validate::normalize_location(&desired.location), &observed.location);
        let mut zones = desired.zones.clone();
        zones.sort();
        d.field_replace("zones", &zones, &observed.zones);
        d.field("idle_timeout_minutes", &desired.idle_timeout_minutes, &observed.idle_timeout_minutes);
        d.field("dns_label", &desired.dns_label, &observed.dns_label);
        d.field("tags", &desired.tags, &user_tags(&observed.tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = self.path(spec.resource_group.get("resource_group")?, &spec.name)?;
        let body =
            create_tagged(&self.client, ctx, "public IP address", &path, NETWORK, &Self::body(ctx, spec)).await?;
        let out = Self::outputs(&body, &path);
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
        let mut body = Self::body(ctx, spec);
        body["tags"] = json!(super::update_tags(ctx, &spec.tags, &observed.tags));
        let body = self.client.put(Some(ctx), id, NETWORK, &body).await?;
        Ok(Self::outputs(&body, id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, NETWORK).await
    }
}
