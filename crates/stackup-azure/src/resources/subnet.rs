//! `Microsoft.Network/virtualNetworks/subnets` (api-version [`crate::api_versions::NETWORK`]):
//! `PUT {vnet}/subnets/{subnet}` with `addressPrefix` and an optional `networkSecurityGroup`.
//! Subnets carry no tags; one that already exists in the VNet (an interrupted run's) is adopted.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::virtual_network::validate_cidr;
use super::{PROVIDER, id_of, id_ref, opt_str_at, str_at};
use crate::api_versions::NETWORK;
use crate::client::ArmClient;
use crate::validate;

/// A subnet of a virtual network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetSpec {
    /// Name.
    pub name: String,
    /// The VNet's ARM id.
    pub virtual_network_id: Input<String>,
    /// CIDR block inside the VNet's address space.
    pub address_prefix: String,
    /// An NSG to attach (its ARM id).
    #[serde(default)]
    pub network_security_group_id: Option<Input<String>>,
}

/// An observed subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The VNet's ARM id.
    pub virtual_network_id: String,
    /// CIDR block.
    pub address_prefix: String,
    /// The attached NSG's id.
    pub network_security_group_id: Option<String>,
}

/// Manages subnets.
#[derive(Debug, Clone)]
pub struct Subnets {
    client: ArmClient,
}

impl Subnets {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        Subnets { client }
    }

    fn outputs(body: &Value, fallback: &str) -> SubnetOutputs {
        let id = id_of(body, fallback);
        let virtual_network_id = id.rsplit_once("/subnets/").map(|(v, _)| v.to_owned()).unwrap_or_default();
        SubnetOutputs {
            virtual_network_id,
            id,
            name: str_at(body, "/name"),
            address_prefix: opt_str_at(body, "/properties/addressPrefix")
                .or_else(|| opt_str_at(body, "/properties/addressPrefixes/0"))
                .unwrap_or_default(),
            network_security_group_id: opt_str_at(body, "/properties/networkSecurityGroup/id"),
        }
    }

    fn body(spec: &SubnetSpec) -> Result<Value, Error> {
        let mut props = json!({"addressPrefix": spec.address_prefix});
        if let Some(nsg) = &spec.network_security_group_id {
            props["networkSecurityGroup"] = id_ref(Some(nsg.get("network_security_group_id")?)).unwrap_or(Value::Null);
        }
        Ok(json!({ "properties": props }))
    }
}

#[async_trait]
impl Provisioner for Subnets {
    type Spec = SubnetSpec;
    type Outputs = SubnetOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "subnet")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::network_name("name", &spec.name)?;
        validate::known(&spec.virtual_network_id, |id| {
            validate::arm_id("virtual_network_id", id, "Microsoft.Network/virtualNetworks")
        })?;
        validate_cidr("address_prefix", &spec.address_prefix)?;
        if let Some(nsg) = &spec.network_security_group_id {
            validate::known(nsg, |id| {
                validate::arm_id("network_security_group_id", id, "Microsoft.Network/networkSecurityGroups")
            })?;
        }
        Ok(())
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        Ok(self.client.get(id, NETWORK).await?.map(|b| Self::outputs(&b, id)))
    }

    async fn lookup(&self, _ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let Some(vnet) = spec.virtual_network_id.known() else { return Ok(None) };
        let path = format!("{vnet}/subnets/{}", spec.name);
        Ok(self.client.get(&path, NETWORK).await?.map(|b| {
            let out = Self::outputs(&b, &path);
            Created { id: out.id.clone(), outputs: out }
        }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name, &observed.name);
        super::diff_ci(&mut d, "virtual_network_id", &desired.virtual_network_id, &observed.virtual_network_id, true);
        d.field("address_prefix", &desired.address_prefix, &observed.address_prefix);
        match (&desired.network_security_group_id, &observed.network_security_group_id) {
            (Some(Input::Value(want)), Some(have)) if super::same_id(want, have) => {}
            (Some(want), have) => {
                d.input("network_security_group_id", want, &have.clone().unwrap_or_default());
            }
            (None, Some(have)) => {
                d.field("network_security_group_id", &None::<String>, &Some(have.clone()));
            }
            (None, None) => {}
        }
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = format!("{}/subnets/{}", spec.virtual_network_id.get("virtual_network_id")?, spec.name);
        let body = match self.client.put(Some(ctx), &path, NETWORK, &Self::body(spec)?).await {
            Ok(b) => b,
            Err(e) if self.client.exists(&path, NETWORK).await => return Err(CreateError::partial(e, path)),
            Err(e) => return Err(e.into()),
        };
        let out = Self::outputs(&body, &path);
        Ok(Created { id: out.id.clone(), outputs: out })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &Self::Spec,
        _observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error> {
        self.validate(spec)?;
        let body = self.client.put(Some(ctx), id, NETWORK, &Self::body(spec)?).await?;
        Ok(Self::outputs(&body, id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        self.client.delete(Some(ctx), id, NETWORK).await
    }
}
