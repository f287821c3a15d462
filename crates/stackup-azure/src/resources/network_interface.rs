//! `Microsoft.Network/networkInterfaces` (api-version [`crate::api_versions::NETWORK`]): one IP
//! configuration `ipconfig1` in a subnet, with an optional public IP and NSG.

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

/// A network interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterfaceSpec {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: Input<String>,
    /// Region.
    pub location: String,
    /// The subnet's ARM id.
    pub subnet_id: Input<String>,
    /// A public IP's ARM id.
    #[serde(default)]
    pub public_ip_address_id: Option<Input<String>>,
    /// An NSG's ARM id for the NIC.
    #[serde(default)]
    pub network_security_group_id: Option<Input<String>>,
    /// A static private address; dynamic when `None`.
    #[serde(default)]
    pub private_ip_address: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An observed network interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterfaceOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// Subnet id.
    pub subnet_id: String,
    /// Public IP id.
    pub public_ip_address_id: Option<String>,
    /// NSG id.
    pub network_security_group_id: Option<String>,
    /// The private address.
    pub private_ip_address: Option<String>,
    /// `Static` or `Dynamic`.
    pub private_ip_allocation: String,
    /// All tags.
    pub tags: BTreeMap<String, String>,
}

/// Manages network interfaces.
#[derive(Debug, Clone)]
pub struct NetworkInterfaces {
    client: ArmClient,
}

fn opt_input(i: &Option<Input<String>>, field: &str) -> Result<Option<String>, Error> {
    i.as_ref().map(|v| v.get(field).cloned()).transpose()
}

impl NetworkInterfaces {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        NetworkInterfaces { client }
    }

    fn path(&self, rg: &str, name: &str) -> Result<String, Error> {
        Ok(format!("{}/providers/Microsoft.Network/networkInterfaces/{name}", self.client.resource_group_path(rg)?))
    }

    fn outputs(body: &Value, fallback: &str) -> NetworkInterfaceOutputs {
        let id = id_of(body, fallback);
        let cfg = body.pointer("/properties/ipConfigurations/0").cloned().unwrap_or(Value::Null);
        NetworkInterfaceOutputs {
            resource_group: rg_of(&id),
            id,
            name: str_at(body, "/name"),
            location: validate::normalize_location(&str_at(body, "/location")),
            subnet_id: str_at(&cfg, "/properties/subnet/id"),
            public_ip_address_id: opt_str_at(&cfg, "/properties/publicIPAddress/id"),
            network_security_group_id: opt_str_at(body, "/properties/networkSecurityGroup/id"),
            private_ip_address: opt_str_at(&cfg, "/properties/privateIPAddress"),
            private_ip_allocation: opt_str_at(&cfg, "/properties/privateIPAllocationMethod")
                .unwrap_or_else(|| "Dynamic".into()),
            tags: tags_of(body),
        }
    }

    fn body(ctx: &Ctx, spec: &NetworkInterfaceSpec) -> Result<Value, Error> {
        let mut cfg = json!({"subnet": {"id": spec.subnet_id.get("subnet_id")?}});
        match &spec.private_ip_address {
            Some(ip) => {
                cfg["privateIPAllocationMethod"] = json!("Static");
                cfg["privateIPAddress"] = json!(ip);
            }
            None => cfg["privateIPAllocationMethod"] = json!("Dynamic"),
        }
        if let Some(pip) = opt_input(&spec.public_ip_address_id, "public_ip_address_id")? {
            cfg["publicIPAddress"] = json!({"id": pip});
        }
        let mut props = json!({"ipConfigurations": [{"name": "ipconfig1", "properties": cfg}]});
        if let Some(nsg) = opt_input(&spec.network_security_group_id, "network_security_group_id")? {
            props["networkSecurityGroup"] = json!({"id": nsg});
        }
        Ok(json!({"location": spec.location, "tags": with_managed_tags(ctx, &spec.tags), "properties": props}))
    }
}

fn diff_opt_id(d: &mut Diff, path: &str, want: &Option<Input<String>>, have: &Option<String>, replace: bool) {
    match (want, have) {
        (Some(Input::Value(w)), Some(h)) if super::same_id(w, h) => {}
        (Some(w), h) => {
            let h = h.clone().unwrap_or_default();
            if replace {
                d.input_replace(path, w, &h);
            } else {
                d.input(path, w, &h);
            }
        }
        (None, Some(h)) => {
            d.field(path, &None::<String>, &Some(h.clone()));
        }
        (None, None) => {}
    }
}

#[async_trait]
impl Provisioner for NetworkInterfaces {
    type Spec = NetworkInterfaceSpec;
    type Outputs = NetworkInterfaceOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "network_interface")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::network_name("name", &spec.name)?;
        validate::known(&spec.resource_group, |rg| validate::resource_group_name("resource_group", rg))?;
        validate::location("location", &spec.location)?;
        validate::known(&spec.subnet_id, |id| {
            validate::arm_id("subnet_id", id, "Microsoft.Network/virtualNetworks/subnets")
        })?;
        if let Some(p) = &spec.public_ip_address_id {
            validate::known(p, |id| {
                validate::arm_id("public_ip_address_id", id, "Microsoft.Network/publicIPAddresses")
            })?;
        }
        if let Some(n) = &spec.network_security_group_id {
            validate::known(n, |id| {
                validate::arm_id("network_security_group_id", id, "Microsoft.Network/networkSecurityGroups")
            })?;
        }
        if let Some(ip) = &spec.private_ip_address
            && ip.parse::<std::net::Ipv4Addr>().is_err()
        {
            return Err(Error::invalid("private_ip_address", format!("`{ip}` is not an IPv4 address")));
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
        diff_opt_id(&mut d, "subnet_id", &Some(desired.subnet_id.clone()), &Some(observed.subnet_id.clone()), false);
        diff_opt_id(
            &mut d,
            "public_ip_address_id",
            &desired.public_ip_address_id,
            &observed.public_ip_address_id,
            false,
        );
        diff_opt_id(
            &mut d,
            "network_security_group_id",
            &desired.network_security_group_id,
            &observed.network_security_group_id,
            false,
        );
        if let Some(ip) = &desired.private_ip_address {
            d.field("private_ip_address", &Some(ip.clone()), &observed.private_ip_address);
        } else {
            d.field("private_ip_allocation", "Dynamic", &observed.private_ip_allocation);
        }
        d.field("tags", &desired.tags, &user_tags(&observed.tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = self.path(spec.resource_group.get("resource_group")?, &spec.name)?;
        let body =
            create_tagged(&self.client, ctx, "network interface", &path, NETWORK, &Self::body(ctx, spec)?).await?;
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
        let mut body = Self::body(ctx, spec)?;
        body["tags"] = json!(super::update_tags(ctx, &spec.tags, &observed.tags));
        let body = self.client.put(Some(ctx), id, NETWORK, &body).await?;
        Ok(Self::outputs(&body, id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, NETWORK).await
    }
}
