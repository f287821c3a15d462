//! `RouteTable`: a VCN route table (`/20160918/routeTables`), either created or the VCN's
//! default one adopted (`adopt_id`: create sets its rules, delete empties them, since a
//! default table lives and dies with its VCN).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::diff::FieldChange;
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::{PROVIDER, decode, find_tagged, wait_for_state, wait_gone};
use crate::client::{CORE_API, OciClient, Service};
use crate::validate;

/// One route: traffic to `destination` goes to `network_entity_id` (an internet gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRuleSpec {
    /// Destination CIDR (`0.0.0.0/0` for the default route).
    pub destination: String,
    /// Target OCID (usually `igw.id().input()`).
    pub network_entity_id: Input<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

/// The desired route table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTableSpec {
    /// Compartment OCID.
    pub compartment_id: String,
    /// The VCN.
    pub vcn_id: Input<String>,
    /// Display name.
    pub display_name: String,
    /// The rules (the whole set: OCI replaces all rules on update).
    pub route_rules: Vec<RouteRuleSpec>,
    /// Manage this existing table (the VCN's `default_route_table_id`) instead of creating one.
    #[serde(default)]
    pub adopt_id: Option<Input<String>>,
    /// Freeform tags.
    #[serde(default)]
    pub freeform_tags: BTreeMap<String, String>,
}

/// One observed route rule, normalised.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteRule {
    /// Destination CIDR.
    pub destination: String,
    /// Target OCID.
    pub network_entity_id: String,
    /// Description.
    pub description: Option<String>,
}

/// The observed route table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTableOutputs {
    /// OCID.
    pub id: String,
    /// Compartment OCID.
    pub compartment_id: String,
    /// VCN OCID.
    pub vcn_id: String,
    /// Display name.
    pub display_name: String,
    /// Rules, sorted.
    pub route_rules: Vec<RouteRule>,
    /// True when the table was adopted (the VCN's default), not created.
    pub adopted: bool,
    /// Lifecycle state.
    pub lifecycle_state: String,
    /// All freeform tags.
    pub freeform_tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RouteRuleWire {
    #[serde(rename = "destination", default)]
    destination: Option<String>,
    #[serde(rename = "destinationType", default)]
    destination_type: Option<String>,
    #[serde(rename = "networkEntityId")]
    network_entity_id: String,
    #[serde(rename = "description", default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RouteTableWire {
    #[serde(rename = "id")]
    id: String,
    #[serde(rename = "compartmentId")]
    compartment_id: String,
    #[serde(rename = "vcnId")]
    vcn_id: String,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(rename = "routeRules", default)]
    route_rules: Vec<RouteRuleWire>,
    #[serde(rename = "lifecycleState")]
    lifecycle_state: String,
    #[serde(rename = "freeformTags", default)]
    freeform_tags: BTreeMap<String, String>,
}

impl RouteTableWire {
    fn into_outputs(self, adopted: bool) -> RouteTableOutputs {
        let mut rules: Vec<RouteRule> = self
            .route_rules
            .into_iter()
            .map(|r| RouteRule {
                destination: r.destination.unwrap_or_default(),
                network_entity_id: r.network_entity_id,
                description: r.description.filter(|d| !d.is_empty()),
            })
            .collect();
        rules.sort();
        RouteTableOutputs {
            id: self.id,
            compartment_id: self.compartment_id,
            vcn_id: self.vcn_id,
            display_name: self.display_name.unwrap_or_default(),
            route_rules: rules,
            adopted,
            lifecycle_state: self.lifecycle_state,
            freeform_tags: self.freeform_tags,
        }
    }
}

#[derive(Serialize)]
struct CreateRouteTableDetails<'a> {
    #[serde(rename = "compartmentId")]
    compartment_id: &'a str,
    #[serde(rename = "vcnId")]
    vcn_id: &'a str,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "routeRules")]
    route_rules: Vec<RouteRuleWire>,
    #[serde(rename = "freeformTags")]
    freeform_tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UpdateRouteTableDetails<'a> {
    #[serde(rename = "displayName", skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(rename = "routeRules")]
    route_rules: Vec<RouteRuleWire>,
    #[serde(rename = "freeformTags", skip_serializing_if = "Option::is_none")]
    freeform_tags: Option<BTreeMap<String, String>>,
}

fn wire_rules(spec: &RouteTableSpec) -> Result<Vec<RouteRuleWire>, Error> {
    spec.route_rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(RouteRuleWire {
                destination: Some(r.destination.clone()),
                destination_type: Some("CIDR_BLOCK".into()),
                network_entity_id: r.network_entity_id.get(&format!("route_rules[{i}].network_entity_id"))?.clone(),
                description: r.description.clone(),
            })
        })
        .collect()
}

/// Manages route tables.
#[derive(Debug, Clone)]
pub struct RouteTables {
    client: OciClient,
}

impl RouteTables {
    /// A provisioner using `client`.
    pub fn new(client: OciClient) -> Self {
        RouteTables { client }
    }

    async fn wait_available(&self, ctx: &Ctx, id: &str, adopted: bool) -> Result<RouteTableOutputs, Error> {
        let w: RouteTableWire = wait_for_state(
            &self.client,
            ctx,
            "route table",
            &format!("{CORE_API}/routeTables/{id}"),
            &["AVAILABLE"],
            &["TERMINATING", "TERMINATED"],
            self.client.timing().network_timeout,
        )
        .await?;
        Ok(w.into_outputs(adopted))
    }

    async fn put(&self, ctx: &Ctx, id: &str, spec: &RouteTableSpec) -> Result<RouteTableOutputs, Error> {
        let body = UpdateRouteTableDetails {
            display_name: Some(&spec.display_name),
            route_rules: wire_rules(spec)?,
            freeform_tags: Some(validate::with_managed_tags(&spec.freeform_tags, ctx.tags())),
        };
        let _: serde_json::Value = self.client.put(&format!("{CORE_API}/routeTables/{id}"), &body).await?;
        self.wait_available(ctx, id, spec.adopt_id.is_some()).await
    }
}

#[async_trait]
impl Provisioner for RouteTables {
    type Spec = RouteTableSpec;
    type Outputs = RouteTableOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "route_table")
    }

    fn validate(&self, spec: &RouteTableSpec) -> Result<(), Error> {
        validate::ocid("compartment_id", &spec.compartment_id, &["compartment", "tenancy"])?;
        validate::ocid_input("vcn_id", &spec.vcn_id, &["vcn"])?;
        validate::display_name("display_name", &spec.display_name)?;
        if let Some(a) = &spec.adopt_id {
            validate::ocid_input("adopt_id", a, &["routetable"])?;
        }
        for (i, r) in spec.route_rules.iter().enumerate() {
            validate::parse_cidr(&format!("route_rules[{i}].destination"), &r.destination)?;
            validate::ocid_input(
                &format!("route_rules[{i}].network_entity_id"),
                &r.network_entity_id,
                &["internetgateway", "natgateway", "servicegateway", "drg", "localpeeringgateway", "privateip"],
            )?;
        }
        validate::freeform_tags("freeform_tags", &spec.freeform_tags)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        prior: Option<&RouteTableOutputs>,
    ) -> Result<Option<RouteTableOutputs>, Error> {
        let w: Option<RouteTableWire> =
            self.client.get_opt(Service::Iaas, &format!("{CORE_API}/routeTables/{id}")).await?;
        let adopted = prior.is_some_and(|p| p.adopted);
        Ok(w.filter(|w| w.lifecycle_state != "TERMINATED").map(|w| w.into_outputs(adopted)))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &RouteTableSpec) -> Result<Option<Created<RouteTableOutputs>>, Error> {
        if spec.adopt_id.is_some() {
            return Ok(None); // create is an idempotent PUT on the adopted table
        }
        let Some(vcn) = spec.vcn_id.known() else { return Ok(None) };
        let q = [("compartmentId", spec.compartment_id.as_str()), ("vcnId", vcn.as_str())];
        let Some(v) = find_tagged(&self.client, ctx, &format!("{CORE_API}/routeTables"), &q).await? else {
            return Ok(None);
        };
        let w: RouteTableWire = decode("route table", v)?;
        let out = self.wait_available(ctx, &w.id, false).await?;
        Ok(Some(Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &RouteTableSpec, observed: &RouteTableOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("compartment_id", &desired.compartment_id, &observed.compartment_id);
        d.input_replace("vcn_id", &desired.vcn_id, &observed.vcn_id);
        match &desired.adopt_id {
            Some(a) => d.input_replace("adopt_id", a, &observed.id),
            None => d.field_replace("adopted", &false, &observed.adopted),
        };
        d.field("display_name", &desired.display_name, &observed.display_name);
        let known: Option<Vec<RouteRule>> = desired
            .route_rules
            .iter()
            .map(|r| {
                r.network_entity_id.known().map(|n| RouteRule {
                    destination: r.destination.clone(),
                    network_entity_id: n.clone(),
                    description: r.description.clone().filter(|d| !d.is_empty()),
                })
            })
            .collect();
        match known {
            Some(mut rules) => {
                rules.sort();
                d.field("route_rules", &rules, &observed.route_rules);
            }
            None => {
                d.push(FieldChange {
                    path: "route_rules".into(),
                    before: serde_json::to_value(&observed.route_rules).ok(),
                    after: None,
                    unknown: true,
                    forces_replacement: false,
                    sensitive: false,
                });
            }
        }
        d.field("freeform_tags", &desired.freeform_tags, &validate::user_tags(&observed.freeform_tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &RouteTableSpec) -> Result<Created<RouteTableOutputs>, CreateError> {
        if let Some(adopt) = &spec.adopt_id {
            let id = adopt.get("adopt_id")?.clone();
            let out = self.put(ctx, &id, spec).await?;
            return Ok(Created { id, outputs: out });
        }
        let body = CreateRouteTableDetails {
            compartment_id: &spec.compartment_id,
            vcn_id: spec.vcn_id.get("vcn_id")?,
            display_name: &spec.display_name,
            route_rules: wire_rules(spec)?,
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
        };
        let w: RouteTableWire =
            self.client.create(&format!("{CORE_API}/routeTables"), &body, ctx.idempotency_token()).await?;
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
        spec: &RouteTableSpec,
        _observed: &RouteTableOutputs,
    ) -> Result<RouteTableOutputs, Error> {
        self.put(ctx, id, spec).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, observed: &RouteTableOutputs) -> Result<(), Error> {
        let path = format!("{CORE_API}/routeTables/{id}");
        if observed.adopted {
            // A VCN's default table cannot be deleted: empty it so the gateway it pointed at can go.
            let body = UpdateRouteTableDetails { display_name: None, route_rules: vec![], freeform_tags: None };
            return match self.client.put::<serde_json::Value, _>(&path, &body).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e),
            };
        }
        self.client.delete(&path, &[]).await?;
        wait_gone(&self.client, ctx, "route table", &path, self.client.timing().network_timeout).await
    }
}
