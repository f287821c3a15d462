//! `SecurityList`: stateful firewall rules for subnets (`/20160918/securityLists`), created or
//! the VCN's default list adopted (`adopt_id`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, decode, find_tagged, wait_for_state, wait_gone};
use crate::client::{CORE_API, OciClient, Service};
use crate::validate;

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum RuleProtocol {
    /// Every protocol.
    All,
    /// TCP to destination ports `port_min..=port_max`.
    Tcp {
        /// First port.
        port_min: u16,
        /// Last port.
        port_max: u16,
    },
    /// UDP to destination ports `port_min..=port_max`.
    Udp {
        /// First port.
        port_min: u16,
        /// Last port.
        port_max: u16,
    },
    /// ICMP of one type (and optionally code).
    Icmp {
        /// ICMP type (3 = destination unreachable).
        icmp_type: u8,
        /// ICMP code (4 = fragmentation needed: path-MTU discovery).
        #[serde(default)]
        icmp_code: Option<u8>,
    },
    /// Any other IANA protocol number, all traffic of it.
    Number {
        /// The number as OCI spells it (`"58"` for ICMPv6).
        number: String,
    },
}

/// An ingress rule: traffic from `source` matching `protocol`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IngressRule {
    /// Source CIDR.
    pub source: String,
    /// What it matches.
    #[serde(flatten)]
    pub protocol: RuleProtocol,
    /// Stateless rule (default false: replies are allowed automatically).
    #[serde(default)]
    pub stateless: bool,
}

/// An egress rule: traffic to `destination` matching `protocol`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EgressRule {
    /// Destination CIDR.
    pub destination: String,
    /// What it matches.
    #[serde(flatten)]
    pub protocol: RuleProtocol,
    /// Stateless rule.
    #[serde(default)]
    pub stateless: bool,
}

/// The desired security list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityListSpec {
    /// Compartment OCID.
    pub compartment_id: String,
    /// The VCN.
    pub vcn_id: Input<String>,
    /// Display name.
    pub display_name: String,
    /// Ingress rules (order does not matter).
    pub ingress: Vec<IngressRule>,
    /// Egress rules (order does not matter).
    pub egress: Vec<EgressRule>,
    /// Manage this existing list (the VCN's `default_security_list_id`) instead of creating one.
    #[serde(default)]
    pub adopt_id: Option<Input<String>>,
    /// Freeform tags.
    #[serde(default)]
    pub freeform_tags: BTreeMap<String, String>,
}

impl SecurityListSpec {
    /// A list for a public server: TCP `ports` from anywhere, ICMP 3/4 (path-MTU discovery) from
    /// anywhere, and all egress.
    pub fn public_ports(
        compartment_id: impl Into<String>,
        vcn_id: Input<String>,
        display_name: impl Into<String>,
        ports: &[u16],
    ) -> Self {
        let mut ingress: Vec<IngressRule> = ports
            .iter()
            .map(|p| IngressRule {
                source: "0.0.0.0/0".into(),
                protocol: RuleProtocol::Tcp { port_min: *p, port_max: *p },
                stateless: false,
            })
            .collect();
        ingress.push(IngressRule {
            source: "0.0.0.0/0".into(),
            protocol: RuleProtocol::Icmp { icmp_type: 3, icmp_code: Some(4) },
            stateless: false,
        });
        SecurityListSpec {
            compartment_id: compartment_id.into(),
            vcn_id,
            display_name: display_name.into(),
            ingress,
            egress: vec![EgressRule { destination: "0.0.0.0/0".into(), protocol: RuleProtocol::All, stateless: false }],
            adopt_id: None,
            freeform_tags: BTreeMap::new(),
        }
    }
}

/// The observed security list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityListOutputs {
    /// OCID.
    pub id: String,
    /// Compartment OCID.
    pub compartment_id: String,
    /// VCN OCID.
    pub vcn_id: String,
    /// Display name.
    pub display_name: String,
    /// Ingress rules, sorted.
    pub ingress: Vec<IngressRule>,
    /// Egress rules, sorted.
    pub egress: Vec<EgressRule>,
    /// True when adopted rather than created.
    pub adopted: bool,
    /// Lifecycle state.
    pub lifecycle_state: String,
    /// All freeform tags.
    pub freeform_tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PortRange {
    #[serde(rename = "min")]
    min: u16,
    #[serde(rename = "max")]
    max: u16,
}

#[derive(Debug, Serialize, Deserialize)]
struct PortOptions {
    #[serde(rename = "destinationPortRange", default, skip_serializing_if = "Option::is_none")]
    destination_port_range: Option<PortRange>,
}

#[derive(Debug, Serialize, Deserialize)]
struct IcmpOptions {
    #[serde(rename = "type")]
    icmp_type: u8,
    #[serde(rename = "code", default, skip_serializing_if = "Option::is_none")]
    code: Option<u8>,
}

/// `IngressSecurityRule` and `EgressSecurityRule` on the wire (one struct: `source*` or
/// `destination*` is set).
#[derive(Debug, Default, Serialize, Deserialize)]
struct RuleWire {
    #[serde(rename = "protocol")]
    protocol: String,
    #[serde(rename = "source", default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(rename = "sourceType", default, skip_serializing_if = "Option::is_none")]
    source_type: Option<String>,
    #[serde(rename = "destination", default, skip_serializing_if = "Option::is_none")]
    destination: Option<String>,
    #[serde(rename = "destinationType", default, skip_serializing_if = "Option::is_none")]
    destination_type: Option<String>,
    #[serde(rename = "isStateless", default)]
    is_stateless: Option<bool>,
    #[serde(rename = "tcpOptions", default, skip_serializing_if = "Option::is_none")]
    tcp_options: Option<PortOptions>,
    #[serde(rename = "udpOptions", default, skip_serializing_if = "Option::is_none")]
    udp_options: Option<PortOptions>,
    #[serde(rename = "icmpOptions", default, skip_serializing_if = "Option::is_none")]
    icmp_options: Option<IcmpOptions>,
}

fn protocol_to_wire(p: &RuleProtocol, w: &mut RuleWire) {
    match p {
        RuleProtocol::All => w.protocol = "all".into(),
        RuleProtocol::Tcp { port_min, port_max } => {
            w.protocol = "6".into();
            w.tcp_options =
                Some(PortOptions { destination_port_range: Some(PortRange { min: *port_min, max: *port_max }) });
        }
        RuleProtocol::Udp { port_min, port_max } => {
            w.protocol = "17".into();
            w.udp_options =
                Some(PortOptions { destination_port_range: Some(PortRange { min: *port_min, max: *port_max }) });
        }
        RuleProtocol::Icmp { icmp_type, icmp_code } => {
            w.protocol = "1".into();
            w.icmp_options = Some(IcmpOptions { icmp_type: *icmp_type, code: *icmp_code });
        }
        RuleProtocol::Number { number } => w.protocol = number.clone(),
    }
}

fn protocol_from_wire(w: &RuleWire) -> RuleProtocol {
    let range = |o: &Option<PortOptions>| {
        o.as_ref().and_then(|o| o.destination_port_range.as_ref()).map(|r| (r.min, r.max)).unwrap_or((1, 65535))
    };
    match w.protocol.as_str() {
        "all" => RuleProtocol::All,
        "6" => {
            let (port_min, port_max) = range(&w.tcp_options);
            RuleProtocol::Tcp { port_min, port_max }
        }
        "17" => {
            let (port_min, port_max) = range(&w.udp_options);
            RuleProtocol::Udp { port_min, port_max }
        }
        "1" => match &w.icmp_options {
            Some(o) => RuleProtocol::Icmp { icmp_type: o.icmp_type, icmp_code: o.code },
            None => RuleProtocol::Number { number: "1".into() },
        },
        other => RuleProtocol::Number { number: other.to_owned() },
    }
}

fn ingress_to_wire(r: &IngressRule) -> RuleWire {
    let mut w = RuleWire {
        source: Some(r.source.clone()),
        source_type: Some("CIDR_BLOCK".into()),
        is_stateless: Some(r.stateless),
        ..Default::default()
    };
    protocol_to_wire(&r.protocol, &mut w);
    w
}

fn egress_to_wire(r: &EgressRule) -> RuleWire {
    let mut w = RuleWire {
        destination: Some(r.destination.clone()),
        destination_type: Some("CIDR_BLOCK".into()),
        is_stateless: Some(r.stateless),
        ..Default::default()
    };
    protocol_to_wire(&r.protocol, &mut w);
    w
}

#[derive(Debug, Deserialize)]
struct SecurityListWire {
    #[serde(rename = "id")]
    id: String,
    #[serde(rename = "compartmentId")]
    compartment_id: String,
    #[serde(rename = "vcnId")]
    vcn_id: String,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(rename = "ingressSecurityRules", default)]
    ingress_security_rules: Vec<RuleWire>,
    #[serde(rename = "egressSecurityRules", default)]
    egress_security_rules: Vec<RuleWire>,
    #[serde(rename = "lifecycleState")]
    lifecycle_state: String,
    #[serde(rename = "freeformTags", default)]
    freeform_tags: BTreeMap<String, String>,
}

impl SecurityListWire {
    fn into_outputs(self, adopted: bool) -> SecurityListOutputs {
        let mut ingress: Vec<IngressRule> = self
            .ingress_security_rules
            .iter()
            .map(|w| IngressRule {
                source: w.source.clone().unwrap_or_default(),
                protocol: protocol_from_wire(w),
                stateless: w.is_stateless.unwrap_or(false),
            })
            .collect();
        let mut egress: Vec<EgressRule> = self
            .egress_security_rules
            .iter()
            .map(|w| EgressRule {
                destination: w.destination.clone().unwrap_or_default(),
                protocol: protocol_from_wire(w),
                stateless: w.is_stateless.unwrap_or(false),
            })
            .collect();
        ingress.sort();
        egress.sort();
        SecurityListOutputs {
            id: self.id,
            compartment_id: self.compartment_id,
            vcn_id: self.vcn_id,
            display_name: self.display_name.unwrap_or_default(),
            ingress,
            egress,
            adopted,
            lifecycle_state: self.lifecycle_state,
            freeform_tags: self.freeform_tags,
        }
    }
}

#[derive(Serialize)]
struct CreateSecurityListDetails<'a> {
    #[serde(rename = "compartmentId")]
    compartment_id: &'a str,
    #[serde(rename = "vcnId")]
    vcn_id: &'a str,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "ingressSecurityRules")]
    ingress_security_rules: Vec<RuleWire>,
    #[serde(rename = "egressSecurityRules")]
    egress_security_rules: Vec<RuleWire>,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UpdateSecurityListDetails<'a> {
    #[serde(rename = "displayName", skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(rename = "ingressSecurityRules")]
    ingress_security_rules: Vec<RuleWire>,
    #[serde(rename = "egressSecurityRules")]
    egress_security_rules: Vec<RuleWire>,
    #[serde(rename = "freeformTags", skip_serializing_if = "Option::is_none")]
    freeform_tags: Option<BTreeMap<String, String>>,
}

fn check_protocol(field: &str, p: &RuleProtocol) -> Result<(), Error> {
    match p {
        RuleProtocol::Tcp { port_min, port_max } | RuleProtocol::Udp { port_min, port_max }
            if *port_min == 0 || port_min > port_max =>
        {
            Err(Error::invalid(field, format!("port range {port_min}-{port_max}: use 1-65535 with min <= max")))
        }
        RuleProtocol::Number { number } if number.parse::<u8>().is_err() => {
            Err(Error::invalid(field, format!("`{number}` is not a protocol number 0-255")))
        }
        RuleProtocol::Icmp { icmp_code: Some(c), .. } if *c > 15 => Err(Error::invalid(field, "ICMP codes are 0-15")),
        _ => Ok(()),
    }
}

/// Manages security lists.
#[derive(Debug, Clone)]
pub struct SecurityLists {
    client: OciClient,
}

impl SecurityLists {
    /// A provisioner using `client`.
    pub fn new(client: OciClient) -> Self {
        SecurityLists { client }
    }

    async fn wait_available(&self, ctx: &Ctx, id: &str, adopted: bool) -> Result<SecurityListOutputs, Error> {
        let w: SecurityListWire = wait_for_state(
            &self.client,
            ctx,
            "security list",
            &format!("{CORE_API}/securityLists/{id}"),
            &["AVAILABLE"],
            &["TERMINATING", "TERMINATED"],
            self.client.timing().network_timeout,
        )
        .await?;
        Ok(w.into_outputs(adopted))
    }

    async fn put(&self, ctx: &Ctx, id: &str, spec: &SecurityListSpec) -> Result<SecurityListOutputs, Error> {
        let body = UpdateSecurityListDetails {
            display_name: Some(&spec.display_name),
            ingress_security_rules: spec.ingress.iter().map(ingress_to_wire).collect(),
            egress_security_rules: spec.egress.iter().map(egress_to_wire).collect(),
            freeform_tags: Some(validate::with_managed_tags(&spec.freeform_tags, ctx.tags())),
        };
        let _: serde_json::Value = self.client.put(&format!("{CORE_API}/securityLists/{id}"), &body).await?;
        self.wait_available(ctx, id, spec.adopt_id.is_some()).await
    }
}

#[async_trait]
impl Provisioner for SecurityLists {
    type Spec = SecurityListSpec;
    type Outputs = SecurityListOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "security_list")
    }

    fn validate(&self, spec: &SecurityListSpec) -> Result<(), Error> {
        validate::ocid("compartment_id", &spec.compartment_id, &["compartment", "tenancy"])?;
        validate::ocid_input("vcn_id", &spec.vcn_id, &["vcn"])?;
        validate::display_name("display_name", &spec.display_name)?;
        if let Some(a) = &spec.adopt_id {
            validate::ocid_input("adopt_id", a, &["securitylist"])?;
        }
        for (i, r) in spec.ingress.iter().enumerate() {
            validate::parse_cidr(&format!("ingress[{i}].source"), &r.source)?;
            check_protocol(&format!("ingress[{i}]"), &r.protocol)?;
        }
        for (i, r) in spec.egress.iter().enumerate() {
            validate::parse_cidr(&format!("egress[{i}].destination"), &r.destination)?;
            check_protocol(&format!("egress[{i}]"), &r.protocol)?;
        }
        validate::freeform_tags("freeform_tags", &spec.freeform_tags)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        prior: Option<&SecurityListOutputs>,
    ) -> Result<Option<SecurityListOutputs>, Error> {
        let w: Option<SecurityListWire> =
            self.client.get_opt(Service::Iaas, &format!("{CORE_API}/securityLists/{id}")).await?;
        let adopted = prior.is_some_and(|p| p.adopted);
        Ok(w.filter(|w| w.lifecycle_state != "TERMINATED").map(|w| w.into_outputs(adopted)))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &SecurityListSpec) -> Result<Option<Created<SecurityListOutputs>>, Error> {
        if spec.adopt_id.is_some() {
            return Ok(None);
        }
        let Some(vcn) = spec.vcn_id.known() else { return Ok(None) };
        let q = [("compartmentId", spec.compartment_id.as_str()), ("vcnId", vcn.as_str())];
        let Some(v) = find_tagged(&self.client, ctx, &format!("{CORE_API}/securityLists"), &q).await? else {
            return Ok(None);
        };
        let w: SecurityListWire = decode("security list", v)?;
        let out = self.wait_available(ctx, &w.id, false).await?;
        Ok(Some(Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &SecurityListSpec, observed: &SecurityListOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("compartment_id", &desired.compartment_id, &observed.compartment_id);
        d.input_replace("vcn_id", &desired.vcn_id, &observed.vcn_id);
        match &desired.adopt_id {
            Some(a) => d.input_replace("adopt_id", a, &observed.id),
            None => d.field_replace("adopted", &false, &observed.adopted),
        };
        d.field("display_name", &desired.display_name, &observed.display_name);
        let mut ingress = desired.ingress.clone();
        ingress.sort();
        let mut egress = desired.egress.clone();
        egress.sort();
        d.field("ingress", &ingress, &observed.ingress);
        d.field("egress", &egress, &observed.egress);
        d.field("freeform_tags", &desired.freeform_tags, &validate::user_tags(&observed.freeform_tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &SecurityListSpec) -> Result<Created<SecurityListOutputs>, CreateError> {
        if let Some(adopt) = &spec.adopt_id {
            let id = adopt.get("adopt_id")?.clone();
            let out = self.put(ctx, &id, spec).await?;
            return Ok(Created { id, outputs: out });
        }
        let body = CreateSecurityListDetails {
            compartment_id: &spec.compartment_id,
            vcn_id: spec.vcn_id.get("vcn_id")?,
            display_name: &spec.display_name,
            ingress_security_rules: spec.ingress.iter().map(ingress_to_wire).collect(),
            egress_security_rules: spec.egress.iter().map(egress_to_wire).collect(),
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let w: SecurityListWire =
            self.client.create(&format!("{CORE_API}/securityLists"), &body, ctx.idempotency_token()).await?;
        let id = w.id.clone();
        match self.wait_available(ctx, &id, false).await {
            Ok(out) => Ok(Created { id, outputs: out }),
            Err(e) => Err(CreateError::partial(e, id)),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &SecurityListSpec,
        _observed: &SecurityListOutputs,
    ) -> Result<SecurityListOutputs, Error> {
        self.put(ctx, id, spec).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, observed: &SecurityListOutputs) -> Result<(), Error> {
        let path = format!("{CORE_API}/securityLists/{id}");
        if observed.adopted {
            // The default list goes with its VCN; close it rather than leave ports open.
            let body = UpdateSecurityListDetails {
                display_name: None,
                ingress_security_rules: vec![],
                egress_security_rules: vec![],
                freeform_tags: None,
            };
            return match self.client.put::<serde_json::Value, _>(&path, &body).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e),
            };
        }
        self.client.delete(&path, &[]).await?;
        wait_gone(&self.client, ctx, "security list", &path, self.client.timing().network_timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_the_wire_shape() {
        let spec = SecurityListSpec::public_ports("ocid1.tenancy.oc1..x", "ocid1.vcn.oc1.x.y".into(), "sl", &[22, 443]);
        let wire: Vec<RuleWire> = spec.ingress.iter().map(ingress_to_wire).collect();
        let json = serde_json::to_value(&wire).unwrap();
        assert_eq!(
            json[0],
            serde_json::json!({"protocol":"6","source":"0.0.0.0/0","sourceType":"CIDR_BLOCK","isStateless":false,
                "tcpOptions":{"destinationPortRange":{"min":22,"max":22}}})
        );
        assert_eq!(json[2]["icmpOptions"], serde_json::json!({"type":3,"code":4}));
        let egress = serde_json::to_value(egress_to_wire(&spec.egress[0])).unwrap();
        assert_eq!(
            egress,
            serde_json::json!({"protocol":"all","destination":"0.0.0.0/0","destinationType":"CIDR_BLOCK","isStateless":false})
        );
        let back: Vec<RuleProtocol> = wire.iter().map(protocol_from_wire).collect();
        assert_eq!(back, spec.ingress.iter().map(|r| r.protocol.clone()).collect::<Vec<_>>());
    }
}
