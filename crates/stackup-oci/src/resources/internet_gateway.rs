//! `InternetGateway`: a VCN's route to the internet (`/20160918/internetGateways`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, decode, find_tagged, wait_for_state, wait_gone};
use crate::client::{CORE_API, OciClient, Service};
use crate::validate;

fn enabled_default() -> bool {
    true
}

/// The desired internet gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InternetGatewaySpec {
    /// Compartment OCID.
    pub compartment_id: String,
    /// The VCN (usually `vcn.id().input()`).
    pub vcn_id: Input<String>,
    /// Display name.
    pub display_name: String,
    /// Whether traffic flows (default true).
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// Freeform tags.
    #[serde(default)]
    pub freeform_tags: BTreeMap<String, String>,
}

/// The observed internet gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InternetGatewayOutputs {
    /// OCID.
    pub id: String,
    /// Compartment OCID.
    pub compartment_id: String,
    /// VCN OCID.
    pub vcn_id: String,
    /// Display name.
    pub display_name: String,
    /// Enabled.
    pub enabled: bool,
    /// Lifecycle state.
    pub lifecycle_state: String,
    /// All freeform tags.
    pub freeform_tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct InternetGatewayWire {
    #[serde(rename = "id")]
    id: String,
    #[serde(rename = "compartmentId")]
    compartment_id: String,
    #[serde(rename = "vcnId")]
    vcn_id: String,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(rename = "isEnabled", default)]
    is_enabled: Option<bool>,
    #[serde(rename = "lifecycleState")]
    lifecycle_state: String,
    #[serde(rename = "freeformTags", default)]
    freeform_tags: BTreeMap<String, String>,
}

impl From<InternetGatewayWire> for InternetGatewayOutputs {
    fn from(w: InternetGatewayWire) -> Self {
        InternetGatewayOutputs {
            id: w.id,
            compartment_id: w.compartment_id,
            vcn_id: w.vcn_id,
            display_name: w.display_name.unwrap_or_default(),
            enabled: w.is_enabled.unwrap_or(true),
            lifecycle_state: w.lifecycle_state,
            freeform_tags: w.freeform_tags,
        }
    }
}

#[derive(Serialize)]
struct CreateInternetGatewayDetails<'a> {
    #[serde(rename = "compartmentId")]
    compartment_id: &'a str,
    #[serde(rename = "vcnId")]
    vcn_id: &'a str,
    #[serde(rename = "isEnabled")]
    is_enabled: bool,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UpdateInternetGatewayDetails<'a> {
    #[serde(rename = "isEnabled")]
    is_enabled: bool,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

/// Manages internet gateways.
#[derive(Debug, Clone)]
pub struct InternetGateways {
    client: OciClient,
}

impl InternetGateways {
    /// A provisioner using `client`.
    pub fn new(client: OciClient) -> Self {
        InternetGateways { client }
    }

    async fn wait_available(&self, ctx: &Ctx, id: &str) -> Result<InternetGatewayOutputs, Error> {
        let w: InternetGatewayWire = wait_for_state(
            &self.client,
            ctx,
            "internet gateway",
            &format!("{CORE_API}/internetGateways/{id}"),
            &["AVAILABLE"],
            &["TERMINATING", "TERMINATED"],
            self.client.timing().network_timeout,
        )
        .await?;
        Ok(w.into())
    }
}

#[async_trait]
impl Provisioner for InternetGateways {
    type Spec = InternetGatewaySpec;
    type Outputs = InternetGatewayOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "internet_gateway")
    }

    fn validate(&self, spec: &InternetGatewaySpec) -> Result<(), Error> {
        validate::ocid("compartment_id", &spec.compartment_id, &["compartment", "tenancy"])?;
        validate::ocid_input("vcn_id", &spec.vcn_id, &["vcn"])?;
        validate::display_name("display_name", &spec.display_name)?;
        validate::freeform_tags("freeform_tags", &spec.freeform_tags)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        _prior: Option<&InternetGatewayOutputs>,
    ) -> Result<Option<InternetGatewayOutputs>, Error> {
        let w: Option<InternetGatewayWire> =
            self.client.get_opt(Service::Iaas, &format!("{CORE_API}/internetGateways/{id}")).await?;
        Ok(w.filter(|w| w.lifecycle_state != "TERMINATED").map(Into::into))
    }

    async fn lookup(
        &self,
        ctx: &Ctx,
        spec: &InternetGatewaySpec,
    ) -> Result<Option<Created<InternetGatewayOutputs>>, Error> {
        let Some(vcn) = spec.vcn_id.known() else { return Ok(None) };
        let q = [("compartmentId", spec.compartment_id.as_str()), ("vcnId", vcn.as_str())];
        let Some(v) = find_tagged(&self.client, ctx, &format!("{CORE_API}/internetGateways"), &q).await? else {
            return Ok(None);
        };
        let w: InternetGatewayWire = decode("internet gateway", v)?;
        let out = self.wait_available(ctx, &w.id).await?;
        Ok(Some(Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &InternetGatewaySpec, observed: &InternetGatewayOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("compartment_id", &desired.compartment_id, &observed.compartment_id);
        d.input_replace("vcn_id", &desired.vcn_id, &observed.vcn_id);
        d.field("display_name", &desired.display_name, &observed.display_name);
        d.field("enabled", &desired.enabled, &observed.enabled);
        d.field("freeform_tags", &desired.freeform_tags, &validate::user_tags(&observed.freeform_tags));
        d
    }

    async fn create(
        &self,
        ctx: &Ctx,
        spec: &InternetGatewaySpec,
    ) -> Result<Created<InternetGatewayOutputs>, CreateError> {
        let body = CreateInternetGatewayDetails {
            compartment_id: &spec.compartment_id,
            vcn_id: spec.vcn_id.get("vcn_id")?,
            is_enabled: spec.enabled,
            display_name: &spec.display_name,
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let w: InternetGatewayWire =
            self.client.create(&format!("{CORE_API}/internetGateways"), &body, ctx.idempotency_token()).await?;
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
        spec: &InternetGatewaySpec,
        _observed: &InternetGatewayOutputs,
    ) -> Result<InternetGatewayOutputs, Error> {
        let body = UpdateInternetGatewayDetails {
            is_enabled: spec.enabled,
            display_name: &spec.display_name,
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let _: serde_json::Value = self.client.put(&format!("{CORE_API}/internetGateways/{id}"), &body).await?;
        self.wait_available(ctx, id).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &InternetGatewayOutputs) -> Result<(), Error> {
        let path = format!("{CORE_API}/internetGateways/{id}");
        self.client.delete(&path, &[]).await?;
        wait_gone(&self.client, ctx, "internet gateway", &path, self.client.timing().network_timeout).await
    }
}
