//! `Microsoft.Network/virtualNetworks` (api-version [`crate::api_versions::NETWORK`]):
//! `PUT {rg}/providers/Microsoft.Network/virtualNetworks/{vnet}`, answered 201 +
//! `Azure-AsyncOperation`.
//!
//! Subnets are separate resources ([`super::subnet`]). Because a VNet PUT without `subnets`
//! would delete them, updates re-read the VNet and send its current subnets back unchanged.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, create_tagged_from, id_of, lookup_tagged, rg_of, str_at, tags_of, user_tags, with_managed_tags};
use crate::api_versions::NETWORK;
use crate::client::ArmClient;
use crate::validate;

/// A virtual network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualNetworkSpec {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: Input<String>,
    /// Region.
    pub location: String,
    /// Address space, CIDR blocks (`10.0.0.0/16`).
    pub address_prefixes: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An observed virtual network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualNetworkOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// Address space.
    pub address_prefixes: Vec<String>,
    /// All tags.
    pub tags: BTreeMap<String, String>,
}

/// Checks an IPv4 CIDR block (`10.0.0.0/16`).
pub fn validate_cidr(field: &str, s: &str) -> Result<(), Error> {
    let bad = || Error::invalid(field, format!("`{s}` is not an IPv4 CIDR block like 10.0.0.0/16"));
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if u32::from(ip) & !mask != 0 {
        return Err(Error::invalid(
            field,
            format!(
                "`{s}` has host bits set; the network address is {}/{len}",
                std::net::Ipv4Addr::from(u32::from(ip) & mask)
            ),
        ));
    }
    if len > 29 {
        return Err(Error::invalid(field, format!("`{s}` is too small: Azure needs at least a /29")));
    }
    Ok(())
}

/// Manages virtual networks.
#[derive(Debug, Clone)]
pub struct VirtualNetworks {
    client: ArmClient,
}

impl VirtualNetworks {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        VirtualNetworks { client }
    }

    fn path(&self, rg: &str, name: &str) -> Result<String, Error> {
        Ok(format!("{}/providers/Microsoft.Network/virtualNetworks/{name}", self.client.resource_group_path(rg)?))
    }

    fn outputs(body: &Value, fallback: &str) -> VirtualNetworkOutputs {
        let id = id_of(body, fallback);
        VirtualNetworkOutputs {
            resource_group: rg_of(&id),
            id,
            name: str_at(body, "/name"),
            location: validate::normalize_location(&str_at(body, "/location")),
            address_prefixes: body
                .pointer("/properties/addressSpace/addressPrefixes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            tags: tags_of(body),
        }
    }

    fn body(ctx: &Ctx, spec: &VirtualNetworkSpec, subnets: Option<Value>) -> Value {
        let mut props = json!({"addressSpace": {"addressPrefixes": spec.address_prefixes}});
        if let Some(s) = subnets {
            props["subnets"] = s;
        }
        json!({"location": spec.location, "tags": with_managed_tags(ctx, &spec.tags), "properties": props})
    }
}

#[async_trait]
impl Provisioner for VirtualNetworks {
    type Spec = VirtualNetworkSpec;
    type Outputs = VirtualNetworkOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "virtual_network")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::network_name("name", &spec.name)?;
        validate::known(&spec.resource_group, |rg| validate::resource_group_name("resource_group", rg))?;
        validate::location("location", &spec.location)?;
        if spec.address_prefixes.is_empty() {
            return Err(Error::invalid("address_prefixes", "at least one address prefix (10.0.0.0/16) is required"));
        }
        for (i, p) in spec.address_prefixes.iter().enumerate() {
            validate_cidr(&format!("address_prefixes[{i}]"), p)?;
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
        d.field("address_prefixes", &desired.address_prefixes, &observed.address_prefixes);
        d.field("tags", &desired.tags, &user_tags(&observed.tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = self.path(spec.resource_group.get("resource_group")?, &spec.name)?;
        // A VNet this address made before an interrupted run recorded it may hold subnets by now:
        // a PUT without them would delete them.
        let body = create_tagged_from(&self.client, ctx, "virtual network", &path, NETWORK, |existing| {
            Self::body(ctx, spec, existing.and_then(|e| e.pointer("/properties/subnets")).cloned())
        })
        .await?;
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
        let current = self.client.get(id, NETWORK).await?.unwrap_or(Value::Null);
        let subnets = current.pointer("/properties/subnets").cloned().unwrap_or_else(|| json!([]));
        let mut body = Self::body(ctx, spec, Some(subnets));
        body["tags"] = json!(super::update_tags(ctx, &spec.tags, &observed.tags));
        let body = self.client.put(Some(ctx), id, NETWORK, &body).await?;
        Ok(Self::outputs(&body, id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, NETWORK).await
    }
}
