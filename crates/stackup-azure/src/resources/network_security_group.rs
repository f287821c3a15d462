//! `Microsoft.Network/networkSecurityGroups` with inline `securityRules` (api-version
//! [`crate::api_versions::NETWORK`]). The seed's `az vm open-port --port 8082 --priority 1002`
//! is a rule `Inbound`/`Allow`/`Tcp`/port 8082/priority 1002.
//!
//! ARM adds six `defaultSecurityRules` to every NSG; they are not the user's and are ignored.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, create_tagged, id_of, lookup_tagged, rg_of, str_at, tags_of, user_tags, with_managed_tags};
use crate::api_versions::NETWORK;
use crate::client::ArmClient;
use crate::validate;

/// Traffic direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub enum Direction {
    /// Into the network.
    #[default]
    Inbound,
    /// Out of the network.
    Outbound,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Access {
    /// Allow matching traffic.
    #[default]
    Allow,
    /// Deny matching traffic.
    Deny,
}

/// IP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// ICMP.
    Icmp,
    /// Any protocol (`*`).
    #[serde(rename = "*")]
    Any,
}

fn star() -> String {
    "*".into()
}

/// One security rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityRule {
    /// Rule name.
    pub name: String,
    /// 100–4096; lower runs first; unique per direction.
    pub priority: u16,
    /// Direction (default inbound).
    #[serde(default)]
    pub direction: Direction,
    /// Allow or deny (default allow).
    #[serde(default)]
    pub access: Access,
    /// Protocol (default TCP).
    #[serde(default)]
    pub protocol: Protocol,
    /// Source CIDR, IP, service tag (`Internet`) or `*` (default).
    #[serde(default = "star")]
    pub source_address_prefix: String,
    /// Source ports (default `*`).
    #[serde(default = "star")]
    pub source_port_range: String,
    /// Destination CIDR, IP, service tag or `*` (default).
    #[serde(default = "star")]
    pub destination_address_prefix: String,
    /// Destination port, range (`8000-8100`) or `*`.
    pub destination_port_range: String,
}

impl SecurityRule {
    /// An inbound TCP allow rule for one port from anywhere.
    pub fn allow_tcp_in(name: impl Into<String>, port: u16, priority: u16) -> Self {
        SecurityRule {
            name: name.into(),
            priority,
            direction: Direction::Inbound,
            access: Access::Allow,
            protocol: Protocol::Tcp,
            source_address_prefix: star(),
            source_port_range: star(),
            destination_address_prefix: star(),
            destination_port_range: port.to_string(),
        }
    }

    fn to_arm(&self) -> Value {
        json!({"name": self.name, "properties": {
            "priority": self.priority, "direction": self.direction, "access": self.access, "protocol": self.protocol,
            "sourceAddressPrefix": self.source_address_prefix, "sourcePortRange": self.source_port_range,
            "destinationAddressPrefix": self.destination_address_prefix, "destinationPortRange": self.destination_port_range,
        }})
    }

    fn from_arm(v: &Value) -> Option<Self> {
        let p = v.get("properties")?;
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("*").to_owned();
        Some(SecurityRule {
            name: v.get("name")?.as_str()?.to_owned(),
            priority: p.get("priority")?.as_u64()? as u16,
            direction: serde_json::from_value(p.get("direction")?.clone()).ok()?,
            access: serde_json::from_value(p.get("access")?.clone()).ok()?,
            protocol: serde_json::from_value(p.get("protocol")?.clone()).ok()?,
            source_address_prefix: s("sourceAddressPrefix"),
            source_port_range: s("sourcePortRange"),
            destination_address_prefix: s("destinationAddressPrefix"),
            destination_port_range: s("destinationPortRange"),
        })
    }
}

fn validate_ports(field: &str, s: &str) -> Result<(), Error> {
    if s == "*" {
        return Ok(());
    }
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p >= 1);
    let ok = match s.split_once('-') {
        Some((a, b)) => matches!((port(a), port(b)), (Some(a), Some(b)) if a <= b),
        None => port(s).is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("`{s}` is not a port (1-65535), a range like 8000-8100, or *")))
    }
}

/// Rules in a canonical order (direction, priority), so diffs do not depend on order.
fn sorted(rules: &[SecurityRule]) -> Vec<SecurityRule> {
    let mut r = rules.to_vec();
    r.sort_by_key(|a| (a.direction, a.priority));
    r
}

/// A network security group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSecurityGroupSpec {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: Input<String>,
    /// Region.
    pub location: String,
    /// Rules.
    #[serde(default)]
    pub rules: Vec<SecurityRule>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An observed NSG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSecurityGroupOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// The user's rules, sorted by direction and priority.
    pub rules: Vec<SecurityRule>,
    /// All tags.
    pub tags: BTreeMap<String, String>,
}

/// Manages NSGs.
#[derive(Debug, Clone)]
pub struct NetworkSecurityGroups {
    client: ArmClient,
}

impl NetworkSecurityGroups {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        NetworkSecurityGroups { client }
    }

    fn path(&self, rg: &str, name: &str) -> Result<String, Error> {
        Ok(format!("{}/providers/Microsoft.Network/networkSecurityGroups/{name}", self.client.resource_group_path(rg)?))
    }

    fn outputs(body: &Value, fallback: &str) -> NetworkSecurityGroupOutputs {
        let id = id_of(body, fallback);
        let rules: Vec<SecurityRule> = body
            .pointer("/properties/securityRules")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(SecurityRule::from_arm).collect())
            .unwrap_or_default();
        NetworkSecurityGroupOutputs {
            resource_group: rg_of(&id),
            id,
            name: str_at(body, "/name"),
            location: validate::normalize_location(&str_at(body, "/location")),
            rules: sorted(&rules),
            tags: tags_of(body),
        }
    }

    fn body(ctx: &Ctx, spec: &NetworkSecurityGroupSpec) -> Value {
        let rules: Vec<Value> = spec.rules.iter().map(SecurityRule::to_arm).collect();
        json!({"location": spec.location, "tags": with_managed_tags(ctx, &spec.tags), "properties": {"securityRules": rules}})
    }
}

#[async_trait]
impl Provisioner for NetworkSecurityGroups {
    type Spec = NetworkSecurityGroupSpec;
    type Outputs = NetworkSecurityGroupOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "network_security_group")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::network_name("name", &spec.name)?;
        validate::known(&spec.resource_group, |rg| validate::resource_group_name("resource_group", rg))?;
        validate::location("location", &spec.location)?;
        let mut seen = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in spec.rules.iter().enumerate() {
            let f = |k: &str| format!("rules[{i}].{k}");
            validate::network_name(&f("name"), &r.name)?;
            if !(100..=4096).contains(&r.priority) {
                return Err(Error::invalid(f("priority"), "priority must be 100-4096"));
            }
            if !seen.insert((r.direction, r.priority)) {
                return Err(Error::invalid(
                    f("priority"),
                    format!("priority {} is used twice for {:?} rules", r.priority, r.direction),
                ));
            }
            if !names.insert(r.name.to_ascii_lowercase()) {
                return Err(Error::invalid(f("name"), "rule names must be unique"));
            }
            validate_ports(&f("destination_port_range"), &r.destination_port_range)?;
            validate_ports(&f("source_port_range"), &r.source_port_range)?;
            for (k, v) in [
                ("source_address_prefix", &r.source_address_prefix),
                ("destination_address_prefix", &r.destination_address_prefix),
            ] {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(Error::invalid(
                        f(k),
                        "use a CIDR, an IP, a service tag (Internet, VirtualNetwork) or *",
                    ));
                }
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
        d.field("rules", &sorted(&desired.rules), &observed.rules);
        d.field("tags", &desired.tags, &user_tags(&observed.tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = self.path(spec.resource_group.get("resource_group")?, &spec.name)?;
        let body =
            create_tagged(&self.client, ctx, "network security group", &path, NETWORK, &Self::body(ctx, spec)).await?;
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
