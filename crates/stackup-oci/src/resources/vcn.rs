//! `Vcn`: a virtual cloud network (`POST/GET/PUT/DELETE /20160918/vcns`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Provisioner, ResourceKind};

use super::{PROVIDER, decode, find_tagged, same_name, wait_for_state, wait_gone};
use crate::client::{CORE_API, OciClient, Service};
use crate::validate;

/// The desired VCN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VcnSpec {
    /// Compartment OCID (the tenancy OCID for the root compartment).
    pub compartment_id: String,
    /// Display name.
    pub display_name: String,
    /// IPv4 CIDR blocks, /16 to /30 (changing them replaces the VCN).
    pub cidr_blocks: Vec<String>,
    /// DNS label (1-15 letters and digits), enabling `*.<label>.oraclevcn.com` names.
    #[serde(default)]
    pub dns_label: Option<String>,
    /// Freeform tags (stackup adds `managed-by`, `stackup-stack`, `stackup-address`).
    #[serde(default)]
    pub freeform_tags: BTreeMap<String, String>,
}

/// The observed VCN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VcnOutputs {
    /// OCID.
    pub id: String,
    /// Compartment OCID.
    pub compartment_id: String,
    /// Display name.
    pub display_name: String,
    /// CIDR blocks.
    pub cidr_blocks: Vec<String>,
    /// DNS label.
    pub dns_label: Option<String>,
    /// The route table every VCN comes with.
    pub default_route_table_id: String,
    /// The security list every VCN comes with.
    pub default_security_list_id: String,
    /// The DHCP options every VCN comes with.
    pub default_dhcp_options_id: String,
    /// Lifecycle state.
    pub lifecycle_state: String,
    /// All freeform tags, stackup's included.
    pub freeform_tags: BTreeMap<String, String>,
}

/// The Core API's `Vcn`, as spelled on the wire.
#[derive(Debug, Deserialize)]
struct VcnWire {
    #[serde(rename = "id")]
    id: String,
    #[serde(rename = "compartmentId")]
    compartment_id: String,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(rename = "cidrBlocks", default)]
    cidr_blocks: Vec<String>,
    #[serde(rename = "cidrBlock", default)]
    cidr_block: Option<String>,
    #[serde(rename = "dnsLabel", default)]
    dns_label: Option<String>,
    #[serde(rename = "defaultRouteTableId", default)]
    default_route_table_id: Option<String>,
    #[serde(rename = "defaultSecurityListId", default)]
    default_security_list_id: Option<String>,
    #[serde(rename = "defaultDhcpOptionsId", default)]
    default_dhcp_options_id: Option<String>,
    #[serde(rename = "lifecycleState")]
    lifecycle_state: String,
    #[serde(rename = "freeformTags", default)]
    freeform_tags: BTreeMap<String, String>,
}

impl From<VcnWire> for VcnOutputs {
    fn from(w: VcnWire) -> Self {
        let cidr_blocks = if w.cidr_blocks.is_empty() { w.cidr_block.into_iter().collect() } else { w.cidr_blocks };
        VcnOutputs {
            id: w.id,
            compartment_id: w.compartment_id,
            display_name: w.display_name.unwrap_or_default(),
            cidr_blocks,
            dns_label: w.dns_label,
            default_route_table_id: w.default_route_table_id.unwrap_or_default(),
            default_security_list_id: w.default_security_list_id.unwrap_or_default(),
            default_dhcp_options_id: w.default_dhcp_options_id.unwrap_or_default(),
            lifecycle_state: w.lifecycle_state,
            freeform_tags: w.freeform_tags,
        }
    }
}

#[derive(Serialize)]
struct CreateVcnDetails<'a> {
    #[serde(rename = "compartmentId")]
    compartment_id: &'a str,
    #[serde(rename = "cidrBlocks")]
    cidr_blocks: &'a [String],
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "dnsLabel", skip_serializing_if = "Option::is_none")]
    dns_label: Option<&'a str>,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UpdateVcnDetails<'a> {
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

/// Manages VCNs.
#[derive(Debug, Clone)]
pub struct Vcns {
    client: OciClient,
}

impl Vcns {
    /// A provisioner using `client`.
    pub fn new(client: OciClient) -> Self {
        Vcns { client }
    }

    async fn wait_available(&self, ctx: &Ctx, id: &str) -> Result<VcnOutputs, Error> {
        let path = format!("{CORE_API}/vcns/{id}");
        let w: VcnWire = wait_for_state(
            &self.client,
            ctx,
            "VCN",
            &path,
            &["AVAILABLE"],
            &["TERMINATING", "TERMINATED"],
            self.client.timing().network_timeout,
        )
        .await?;
        Ok(w.into())
    }
}

#[async_trait]
impl Provisioner for Vcns {
    type Spec = VcnSpec;
    type Outputs = VcnOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "vcn")
    }

    fn validate(&self, spec: &VcnSpec) -> Result<(), Error> {
        validate::ocid("compartment_id", &spec.compartment_id, &["compartment", "tenancy"])?;
        validate::display_name("display_name", &spec.display_name)?;
        if spec.cidr_blocks.is_empty() || spec.cidr_blocks.len() > 5 {
            return Err(Error::invalid("cidr_blocks", "give 1 to 5 CIDR blocks"));
        }
        let blocks = spec
            .cidr_blocks
            .iter()
            .enumerate()
            .map(|(i, c)| validate::network_cidr(&format!("cidr_blocks[{i}]"), c))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in blocks.iter().enumerate() {
            for b in &blocks[i + 1..] {
                if a.contains(b) || b.contains(a) {
                    return Err(Error::invalid(format!("cidr_blocks[{i}]"), "CIDR blocks of a VCN must not overlap"));
                }
            }
        }
        if let Some(l) = &spec.dns_label {
            validate::dns_label("dns_label", l)?;
        }
        validate::freeform_tags("freeform_tags", &spec.freeform_tags)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&VcnOutputs>) -> Result<Option<VcnOutputs>, Error> {
        let w: Option<VcnWire> = self.client.get_opt(Service::Iaas, &format!("{CORE_API}/vcns/{id}")).await?;
        Ok(w.filter(|w| w.lifecycle_state != "TERMINATED").map(Into::into))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &VcnSpec) -> Result<Option<Created<VcnOutputs>>, Error> {
        let q = [("compartmentId", spec.compartment_id.as_str()), ("displayName", spec.display_name.as_str())];
        let Some(v) = find_tagged(&self.client, ctx, &format!("{CORE_API}/vcns"), &q).await? else { return Ok(None) };
        let w: VcnWire = decode("VCN", v)?;
        let out = self.wait_available(ctx, &w.id).await?;
        Ok(Some(Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &VcnSpec, observed: &VcnOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("compartment_id", &desired.compartment_id, &observed.compartment_id);
        d.field_replace("cidr_blocks", &desired.cidr_blocks, &observed.cidr_blocks);
        if !same_name(desired.dns_label.as_deref(), observed.dns_label.as_deref()) {
            d.field_replace("dns_label", &desired.dns_label, &observed.dns_label);
        }
        d.field("display_name", &desired.display_name, &observed.display_name);
        d.field("freeform_tags", &desired.freeform_tags, &validate::user_tags(&observed.freeform_tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &VcnSpec) -> Result<Created<VcnOutputs>, CreateError> {
        let body = CreateVcnDetails {
            compartment_id: &spec.compartment_id,
            cidr_blocks: &spec.cidr_blocks,
            display_name: &spec.display_name,
            dns_label: spec.dns_label.as_deref(),
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let w: VcnWire = self.client.create(&format!("{CORE_API}/vcns"), &body, ctx.idempotency_token()).await?;
        ctx.progress(format!("created VCN {}", w.id));
        let id = w.id.clone();
        match self.wait_available(ctx, &id).await {
            Ok(out) => Ok(Created { id, outputs: out }),
            Err(e) => Err(CreateError::partial(e, id)),
        }
    }

    async fn update(&self, ctx: &Ctx, id: &str, spec: &VcnSpec, _observed: &VcnOutputs) -> Result<VcnOutputs, Error> {
        let body = UpdateVcnDetails {
            display_name: &spec.display_name,
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let _: serde_json::Value = self.client.put(&format!("{CORE_API}/vcns/{id}"), &body).await?;
        self.wait_available(ctx, id).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &VcnOutputs) -> Result<(), Error> {
        let path = format!("{CORE_API}/vcns/{id}");
        self.client.delete(&path, &[]).await?;
        wait_gone(&self.client, ctx, "VCN", &path, self.client.timing().network_timeout).await
    }
}
