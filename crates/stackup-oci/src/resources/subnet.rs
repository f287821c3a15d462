//! `Subnet`: a regional (or AD-specific) subnet of a VCN (`/20160918/subnets`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::diff::FieldChange;
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, decode, find_tagged, same_name, wait_for_state, wait_gone};
use crate::client::{CORE_API, OciClient, Service};
use crate::validate;

/// The desired subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetSpec {
    /// Compartment OCID.
    pub compartment_id: String,
    /// The VCN.
    pub vcn_id: Input<String>,
    /// Display name.
    pub display_name: String,
    /// IPv4 CIDR block inside the VCN's.
    pub cidr_block: String,
    /// DNS label (1-15 letters and digits).
    #[serde(default)]
    pub dns_label: Option<String>,
    /// Availability domain for an AD-specific subnet; `None` = regional (recommended).
    #[serde(default)]
    pub availability_domain: Option<String>,
    /// Route table (default: the VCN's default table).
    #[serde(default)]
    pub route_table_id: Option<Input<String>>,
    /// Security lists (default: the VCN's default list).
    #[serde(default)]
    pub security_list_ids: Vec<Input<String>>,
    /// Forbid public IPs on VNICs in this subnet (a private subnet).
    #[serde(default)]
    pub prohibit_public_ip_on_vnic: bool,
    /// Freeform tags.
    #[serde(default)]
    pub freeform_tags: BTreeMap<String, String>,
}

/// The observed subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetOutputs {
    /// OCID.
    pub id: String,
    /// Compartment OCID.
    pub compartment_id: String,
    /// VCN OCID.
    pub vcn_id: String,
    /// Display name.
    pub display_name: String,
    /// CIDR block.
    pub cidr_block: String,
    /// DNS label.
    pub dns_label: Option<String>,
    /// Availability domain (None = regional).
    pub availability_domain: Option<String>,
    /// Route table OCID.
    pub route_table_id: String,
    /// Security list OCIDs, sorted.
    pub security_list_ids: Vec<String>,
    /// Public IPs forbidden.
    pub prohibit_public_ip_on_vnic: bool,
    /// Lifecycle state.
    pub lifecycle_state: String,
    /// All freeform tags.
    pub freeform_tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct SubnetWire {
    #[serde(rename = "id")]
    id: String,
    #[serde(rename = "compartmentId")]
    compartment_id: String,
    #[serde(rename = "vcnId")]
    vcn_id: String,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(rename = "cidrBlock")]
    cidr_block: String,
    #[serde(rename = "dnsLabel", default)]
    dns_label: Option<String>,
    #[serde(rename = "availabilityDomain", default)]
    availability_domain: Option<String>,
    #[serde(rename = "routeTableId", default)]
    route_table_id: Option<String>,
    #[serde(rename = "securityListIds", default)]
    security_list_ids: Vec<String>,
    #[serde(rename = "prohibitPublicIpOnVnic", default)]
    prohibit_public_ip_on_vnic: Option<bool>,
    #[serde(rename = "lifecycleState")]
    lifecycle_state: String,
    #[serde(rename = "freeformTags", default)]
    freeform_tags: BTreeMap<String, String>,
}

impl From<SubnetWire> for SubnetOutputs {
    fn from(w: SubnetWire) -> Self {
        let mut security_list_ids = w.security_list_ids;
        security_list_ids.sort();
        SubnetOutputs {
            id: w.id,
            compartment_id: w.compartment_id,
            vcn_id: w.vcn_id,
            display_name: w.display_name.unwrap_or_default(),
            cidr_block: w.cidr_block,
            dns_label: w.dns_label,
            availability_domain: w.availability_domain.filter(|a| !a.is_empty()),
            route_table_id: w.route_table_id.unwrap_or_default(),
            security_list_ids,
            prohibit_public_ip_on_vnic: w.prohibit_public_ip_on_vnic.unwrap_or(false),
            lifecycle_state: w.lifecycle_state,
            freeform_tags: w.freeform_tags,
        }
    }
}

#[derive(Serialize)]
struct CreateSubnetDetails<'a> {
    #[serde(rename = "compartmentId")]
    compartment_id: &'a str,
    #[serde(rename = "vcnId")]
    vcn_id: &'a str,
    #[serde(rename = "cidrBlock")]
    cidr_block: &'a str,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "dnsLabel", skip_serializing_if = "Option::is_none")]
    dns_label: Option<&'a str>,
    #[serde(rename = "availabilityDomain", skip_serializing_if = "Option::is_none")]
    availability_domain: Option<&'a str>,
    #[serde(rename = "routeTableId", skip_serializing_if = "Option::is_none")]
    route_table_id: Option<&'a str>,
    #[serde(rename = "securityListIds", skip_serializing_if = "Option::is_none")]
    security_list_ids: Option<Vec<String>>,
    #[serde(rename = "prohibitPublicIpOnVnic")]
    prohibit_public_ip_on_vnic: bool,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UpdateSubnetDetails<'a> {
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "routeTableId", skip_serializing_if = "Option::is_none")]
    route_table_id: Option<&'a str>,
    #[serde(rename = "securityListIds", skip_serializing_if = "Option::is_none")]
    security_list_ids: Option<Vec<String>>,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

fn security_lists(spec: &SubnetSpec) -> Result<Option<Vec<String>>, Error> {
    if spec.security_list_ids.is_empty() {
        return Ok(None);
    }
    spec.security_list_ids
        .iter()
        .enumerate()
        .map(|(i, s)| s.get(&format!("security_list_ids[{i}]")).cloned())
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Manages subnets.
#[derive(Debug, Clone)]
pub struct Subnets {
    client: OciClient,
}

impl Subnets {
    /// A provisioner using `client`.
    pub fn new(client: OciClient) -> Self {
        Subnets { client }
    }

    async fn wait_available(&self, ctx: &Ctx, id: &str) -> Result<SubnetOutputs, Error> {
        let w: SubnetWire = wait_for_state(
            &self.client,
            ctx,
            "subnet",
            &format!("{CORE_API}/subnets/{id}"),
            &["AVAILABLE"],
            &["TERMINATING", "TERMINATED"],
            self.client.timing().network_timeout,
        )
        .await?;
        Ok(w.into())
    }
}

#[async_trait]
impl Provisioner for Subnets {
    type Spec = SubnetSpec;
    type Outputs = SubnetOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "subnet")
    }

    fn validate(&self, spec: &SubnetSpec) -> Result<(), Error> {
        validate::ocid("compartment_id", &spec.compartment_id, &["compartment", "tenancy"])?;
        validate::ocid_input("vcn_id", &spec.vcn_id, &["vcn"])?;
        validate::display_name("display_name", &spec.display_name)?;
        validate::network_cidr("cidr_block", &spec.cidr_block)?;
        if let Some(l) = &spec.dns_label {
            validate::dns_label("dns_label", l)?;
        }
        if let Some(ad) = &spec.availability_domain
            && (ad.trim().is_empty() || !ad.contains("-AD-"))
        {
            return Err(Error::invalid(
                "availability_domain",
                format!("`{ad}` is not an availability domain name like `Uocm:PHX-AD-1`"),
            ));
        }
        if let Some(rt) = &spec.route_table_id {
            validate::ocid_input("route_table_id", rt, &["routetable"])?;
        }
        if spec.security_list_ids.len() > 5 {
            return Err(Error::invalid("security_list_ids", "a subnet takes at most 5 security lists"));
        }
        for (i, s) in spec.security_list_ids.iter().enumerate() {
            validate::ocid_input(&format!("security_list_ids[{i}]"), s, &["securitylist"])?;
        }
        validate::freeform_tags("freeform_tags", &spec.freeform_tags)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&SubnetOutputs>) -> Result<Option<SubnetOutputs>, Error> {
        let w: Option<SubnetWire> = self.client.get_opt(Service::Iaas, &format!("{CORE_API}/subnets/{id}")).await?;
        Ok(w.filter(|w| w.lifecycle_state != "TERMINATED").map(Into::into))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &SubnetSpec) -> Result<Option<Created<SubnetOutputs>>, Error> {
        let Some(vcn) = spec.vcn_id.known() else { return Ok(None) };
        let q = [("compartmentId", spec.compartment_id.as_str()), ("vcnId", vcn.as_str())];
        let Some(v) = find_tagged(&self.client, ctx, &format!("{CORE_API}/subnets"), &q).await? else {
            return Ok(None);
        };
        let w: SubnetWire = decode("subnet", v)?;
        let out = self.wait_available(ctx, &w.id).await?;
        Ok(Some(Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &SubnetSpec, observed: &SubnetOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("compartment_id", &desired.compartment_id, &observed.compartment_id);
        d.input_replace("vcn_id", &desired.vcn_id, &observed.vcn_id);
        d.field_replace("cidr_block", &desired.cidr_block, &observed.cidr_block);
        if !same_name(desired.dns_label.as_deref(), observed.dns_label.as_deref()) {
            d.field_replace("dns_label", &desired.dns_label, &observed.dns_label);
        }
        if !same_name(desired.availability_domain.as_deref(), observed.availability_domain.as_deref()) {
            d.field_replace("availability_domain", &desired.availability_domain, &observed.availability_domain);
        }
        d.field_replace(
            "prohibit_public_ip_on_vnic",
            &desired.prohibit_public_ip_on_vnic,
            &observed.prohibit_public_ip_on_vnic,
        );
        d.field("display_name", &desired.display_name, &observed.display_name);
        // Unset route table / lists mean "the VCN defaults": whatever OCI chose is accepted.
        if let Some(rt) = &desired.route_table_id {
            d.input("route_table_id", rt, &observed.route_table_id);
        }
        if !desired.security_list_ids.is_empty() {
            let known: Option<Vec<String>> = desired.security_list_ids.iter().map(|s| s.known().cloned()).collect();
            match known {
                Some(mut ids) => {
                    ids.sort();
                    d.field("security_list_ids", &ids, &observed.security_list_ids);
                }
                None => {
                    d.push(FieldChange {
                        path: "security_list_ids".into(),
                        before: serde_json::to_value(&observed.security_list_ids).ok(),
                        after: None,
                        unknown: true,
                        forces_replacement: false,
                        sensitive: false,
                    });
                }
            }
        }
        d.field("freeform_tags", &desired.freeform_tags, &validate::user_tags(&observed.freeform_tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &SubnetSpec) -> Result<Created<SubnetOutputs>, CreateError> {
        let route_table_id = match &spec.route_table_id {
            Some(rt) => Some(rt.get("route_table_id")?.as_str()),
            None => None,
        };
        let body = CreateSubnetDetails {
            compartment_id: &spec.compartment_id,
            vcn_id: spec.vcn_id.get("vcn_id")?,
            cidr_block: &spec.cidr_block,
            display_name: &spec.display_name,
            dns_label: spec.dns_label.as_deref(),
            availability_domain: spec.availability_domain.as_deref(),
            route_table_id,
            security_list_ids: security_lists(spec)?,
            prohibit_public_ip_on_vnic: spec.prohibit_public_ip_on_vnic,
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let w: SubnetWire = self.client.create(&format!("{CORE_API}/subnets"), &body, ctx.idempotency_token()).await?;
        let id = w.id.clone();
        match self.wait_available(ctx, &id).await {
            Ok(out) => Ok(Created { id, outputs: out }),
            Err(e) => Err(CreateError::partial(e, id)),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &SubnetSpec,
        _observed: &SubnetOutputs,
    ) -> Result<SubnetOutputs, Error> {
        let route_table_id = match &spec.route_table_id {
            Some(rt) => Some(rt.get("route_table_id")?.as_str()),
            None => None,
        };
        let body = UpdateSubnetDetails {
            display_name: &spec.display_name,
            route_table_id,
            security_list_ids: security_lists(spec)?,
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let _: serde_json::Value = self.client.put(&format!("{CORE_API}/subnets/{id}"), &body).await?;
        self.wait_available(ctx, id).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &SubnetOutputs) -> Result<(), Error> {
        // 409 while a terminating instance's VNIC still holds the subnet: `delete` retries it.
        let path = format!("{CORE_API}/subnets/{id}");
        self.client.delete(&path, &[]).await?;
        wait_gone(&self.client, ctx, "subnet", &path, self.client.timing().network_timeout).await
    }
}
