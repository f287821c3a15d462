//! `Instance`: a compute instance, built for `VM.Standard.A1.Flex` (OCPUs and memory, boot
//! volume size, the newest image for an OS and version, SSH keys, cloud-init user data), with
//! capacity hunting across availability domains, an Always Free guard, and public/private IPs
//! read from the primary VNIC.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stackup_core::diff::FieldChange;
use stackup_core::http::HttpRequest;
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

mod validation;
mod wire;

use validation::{is_flex, metadata, sha256_hex, validate_spec};
use wire::*;

use super::{PROVIDER, decode, find_tagged, lifecycle, same_name, wait_for_state, wait_gone};
use crate::capacity::{CapacityHunt, is_out_of_capacity, is_shape_unavailable_in_ad, send_launch, sleep_cancellable};
use crate::client::{CORE_API, IDENTITY_API, OciClient, Service, retry_token};
use crate::error::OciError;
use crate::free_tier::{self, FreeTierAllowance, FreeTierRequest};
use crate::image;
use crate::validate;

/// OCI's limit on `metadata` + `extendedMetadata`, in bytes.
pub const METADATA_LIMIT_BYTES: usize = 32_000;
/// The smallest boot volume OCI accepts, in GB.
pub const MIN_BOOT_VOLUME_GBS: u32 = 50;

/// Which image to boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// A specific image OCID.
    Id {
        /// The image OCID.
        image_id: String,
    },
    /// The newest AVAILABLE platform image for this OS and version that supports the shape.
    /// A newer image appearing later does not replace the instance.
    Latest {
        /// `Canonical Ubuntu`, `Oracle Linux`, …
        operating_system: String,
        /// `24.04`, `9`, …
        operating_system_version: String,
    },
}

fn default_true() -> bool {
    true
}

fn default_shape() -> String {
    free_tier::A1_FLEX.to_owned()
}

/// The desired instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// Compartment OCID.
    pub compartment_id: String,
    /// Display name (also how an interrupted launch is found again, with the tags).
    pub display_name: String,
    /// Availability domains to try, in order; empty = every AD of the region.
    #[serde(default)]
    pub availability_domains: Vec<String>,
    /// Fault domains to try within each AD (`FAULT-DOMAIN-1`…); empty = let OCI choose.
    #[serde(default)]
    pub fault_domains: Vec<String>,
    /// Shape (default `VM.Standard.A1.Flex`).
    #[serde(default = "default_shape")]
    pub shape: String,
    /// OCPUs (Flex shapes).
    #[serde(default)]
    pub ocpus: Option<f64>,
    /// Memory in GB (Flex shapes).
    #[serde(default)]
    pub memory_in_gbs: Option<f64>,
    /// Image.
    pub image: ImageSource,
    /// Boot volume size in GB (at least 50); `None` = the image's default.
    #[serde(default)]
    pub boot_volume_size_in_gbs: Option<u32>,
    /// Subnet.
    pub subnet_id: Input<String>,
    /// Give the primary VNIC a public IP (default true).
    #[serde(default = "default_true")]
    pub assign_public_ip: bool,
    /// SSH public keys for the default user (`ubuntu`, `opc`).
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    /// Rendered cloud-init (`#cloud-config …`), sent base64-encoded as `metadata.user_data`.
    #[serde(default)]
    pub user_data: Option<Input<String>>,
    /// Freeform tags.
    #[serde(default)]
    pub freeform_tags: BTreeMap<String, String>,
    /// Accept a launch or resize that would leave the Always Free allowance (default false: the
    /// free-tier guard refuses it, saying what would be billed).
    #[serde(default)]
    pub allow_billing: bool,
}

/// The observed instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceOutputs {
    /// OCID.
    pub id: String,
    /// Compartment OCID.
    pub compartment_id: String,
    /// Display name.
    pub display_name: String,
    /// Availability domain it landed in.
    pub availability_domain: String,
    /// Fault domain it landed in.
    pub fault_domain: Option<String>,
    /// Shape.
    pub shape: String,
    /// OCPUs.
    pub ocpus: Option<f64>,
    /// Memory in GB.
    pub memory_in_gbs: Option<f64>,
    /// Image OCID.
    pub image_id: String,
    /// The image's operating system.
    pub operating_system: Option<String>,
    /// The image's OS version.
    pub operating_system_version: Option<String>,
    /// Boot volume size in GB, when set at launch.
    pub boot_volume_size_in_gbs: Option<u32>,
    /// Subnet of the primary VNIC.
    pub subnet_id: String,
    /// Public IP of the primary VNIC.
    pub public_ip: Option<String>,
    /// Private IP of the primary VNIC.
    pub private_ip: Option<String>,
    /// SSH keys in the metadata.
    pub ssh_authorized_keys: Vec<String>,
    /// SHA-256 (hex) of the user data, so changes are seen without storing it.
    pub user_data_sha256: Option<String>,
    /// Lifecycle state.
    pub lifecycle_state: String,
    /// All freeform tags.
    pub freeform_tags: BTreeMap<String, String>,
}

/// Manages compute instances.
#[derive(Debug, Clone)]
pub struct Instances {
    client: OciClient,
    hunt: CapacityHunt,
    allowance: FreeTierAllowance,
}

impl Instances {
    /// A provisioner using `client`, the default capacity hunt (one hour) and no allowance cap
    /// beyond the tenancy's limits.
    pub fn new(client: OciClient) -> Self {
        Instances { client, hunt: CapacityHunt::default(), allowance: FreeTierAllowance::default() }
    }

    /// Sets how long and how patiently to hunt for capacity.
    pub fn capacity_hunt(mut self, hunt: CapacityHunt) -> Self {
        self.hunt = hunt;
        self
    }

    /// Caps the Always Free allowance below the tenancy's limits (Pay-As-You-Go tenancies).
    pub fn free_tier_allowance(mut self, allowance: FreeTierAllowance) -> Self {
        self.allowance = allowance;
        self
    }

    async fn availability_domains(&self, spec: &InstanceSpec) -> Result<Vec<String>, Error> {
        if !spec.availability_domains.is_empty() {
            return Ok(spec.availability_domains.clone());
        }
        let ads: Vec<AvailabilityDomainWire> = self
            .client
            .get(
                Service::Identity,
                &format!("{IDENTITY_API}/availabilityDomains"),
                &[("compartmentId", self.client.tenancy())],
            )
            .await?;
        let mut names: Vec<String> = ads.into_iter().map(|a| a.name).collect();
        names.sort();
        if names.is_empty() {
            return Err(Error::Config("the Identity API listed no availability domains for this tenancy".into()));
        }
        Ok(names)
    }

    /// Reads the primary VNIC's IPs and subnet.
    async fn primary_vnic(&self, compartment_id: &str, instance_id: &str) -> Result<Option<VnicWire>, Error> {
        let q = [("compartmentId", compartment_id), ("instanceId", instance_id)];
        let atts: Vec<VnicAttachmentWire> =
            self.client.list(Service::Iaas, &format!("{CORE_API}/vnicAttachments/"), &q).await?;
        let mut first = None;
        for a in atts.iter().filter(|a| a.lifecycle_state == "ATTACHED") {
            let Some(vnic_id) = &a.vnic_id else { continue };
            let Some(v) =
                self.client.get_opt::<VnicWire>(Service::Iaas, &format!("{CORE_API}/vnics/{vnic_id}")).await?
            else {
                continue;
            };
            if v.is_primary.unwrap_or(false) {
                return Ok(Some(v));
            }
            first.get_or_insert(v);
        }
        Ok(first)
    }

    async fn outputs(&self, w: InstanceWire, prior: Option<&InstanceOutputs>) -> Result<InstanceOutputs, Error> {
        let vnic = self.primary_vnic(&w.compartment_id, &w.id).await?;
        let image_id =
            w.source_details.as_ref().and_then(|s| s.image_id.clone()).or(w.image_id.clone()).unwrap_or_default();
        let (os, os_version) = match prior.filter(|p| p.image_id == image_id) {
            Some(p) => (p.operating_system.clone(), p.operating_system_version.clone()),
            None => match image::get_image(&self.client, &image_id).await? {
                Some(i) => (i.operating_system, i.operating_system_version),
                None => (None, None),
            },
        };
        let boot = w
            .source_details
            .as_ref()
            .and_then(|s| s.boot_volume_size_in_gbs)
            .or(prior.and_then(|p| p.boot_volume_size_in_gbs));
        let ssh_authorized_keys = w
            .metadata
            .get("ssh_authorized_keys")
            .map(|k| k.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let user_data_sha256 = w
            .metadata
            .get("user_data")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|bytes| sha256_hex(&String::from_utf8_lossy(&bytes)));
        let (ocpus, memory_in_gbs) = w.shape_config.map(|c| (c.ocpus, c.memory_in_gbs)).unwrap_or((None, None));
        Ok(InstanceOutputs {
            id: w.id,
            compartment_id: w.compartment_id,
            display_name: w.display_name.unwrap_or_default(),
            availability_domain: w.availability_domain,
            fault_domain: w.fault_domain,
            shape: w.shape,
            ocpus,
            memory_in_gbs,
            image_id,
            operating_system: os,
            operating_system_version: os_version,
            boot_volume_size_in_gbs: boot,
            subnet_id: vnic
                .as_ref()
                .and_then(|v| v.subnet_id.clone())
                .or(prior.map(|p| p.subnet_id.clone()))
                .unwrap_or_default(),
            public_ip: vnic.as_ref().and_then(|v| v.public_ip.clone()),
            private_ip: vnic.as_ref().and_then(|v| v.private_ip.clone()),
            ssh_authorized_keys,
            user_data_sha256,
            lifecycle_state: w.lifecycle_state,
            freeform_tags: w.freeform_tags,
        })
    }

    async fn wait_running(&self, ctx: &Ctx, id: &str) -> Result<InstanceWire, Error> {
        wait_for_state(
            &self.client,
            ctx,
            "instance",
            &format!("{CORE_API}/instances/{id}"),
            &["RUNNING"],
            &["TERMINATING", "TERMINATED", "STOPPED"],
            self.client.timing().instance_timeout,
        )
        .await
    }

    /// Waits until an UpdateInstance that changed the shape config has taken effect: OCI applies
    /// it asynchronously (a work request that reboots the VM), so right after the PUT the
    /// instance is still RUNNING with the old OCPUs and memory, then goes through STOPPING,
    /// STOPPED and STARTING. Done only when it is RUNNING with the requested values.
    async fn wait_resized(&self, ctx: &Ctx, id: &str, ocpus: f64, memory_in_gbs: f64) -> Result<InstanceWire, Error> {
        let t = self.client.timing();
        let waiter = stackup_core::wait::Waiter {
            what: format!("instance {id} to run with {ocpus} OCPUs and {memory_in_gbs} GB"),
            interval: t.poll_interval,
            max_interval: t.max_poll_interval,
            timeout: t.instance_timeout,
        };
        let path = format!("{CORE_API}/instances/{id}");
        let v: Value = waiter
            .wait_or_cancel(ctx.cancellation(), || async {
                let v: Value = self.client.get(Service::Iaas, &path, &[]).await?;
                let state = lifecycle(&v).to_owned();
                let now = (
                    v.pointer("/shapeConfig/ocpus").and_then(Value::as_f64),
                    v.pointer("/shapeConfig/memoryInGBs").and_then(Value::as_f64),
                );
                match state.as_str() {
                    "RUNNING" if now == (Some(ocpus), Some(memory_in_gbs)) => Ok(stackup_core::wait::Poll::Done(v)),
                    "TERMINATING" | "TERMINATED" => {
                        Ok(stackup_core::wait::Poll::Failed(Error::Provider(stackup_core::ApiErrorDetails {
                            code: Some(format!("lifecycleState {state}")),
                            message: format!("instance {id} went to {state} while being resized"),
                            ..Default::default()
                        })))
                    }
                    _ => {
                        ctx.progress(format!("resizing instance {id}: {state}"));
                        Ok(stackup_core::wait::Poll::Pending(None))
                    }
                }
            })
            .await?;
        decode("instance", v)
    }

    /// Waits for RUNNING and a public IP (when one was asked for), then reads the outputs.
    async fn finish(&self, ctx: &Ctx, id: &str, spec: &InstanceSpec) -> Result<InstanceOutputs, Error> {
        let w = self.wait_running(ctx, id).await?;
        let mut out = self.outputs(w, None).await?;
        if spec.assign_public_ip && out.public_ip.is_none() {
            let t = self.client.timing();
            let waiter = stackup_core::wait::Waiter {
                what: "the instance's public IP".into(),
                interval: t.poll_interval,
                max_interval: t.max_poll_interval,
                timeout: t.instance_timeout,
            };
            out = waiter
                .wait(|| async {
                    let w: InstanceWire =
                        self.client.get(Service::Iaas, &format!("{CORE_API}/instances/{id}"), &[]).await?;
                    let o = self.outputs(w, None).await?;
                    Ok(if o.public_ip.is_some() {
                        stackup_core::wait::Poll::Done(o)
                    } else {
                        stackup_core::wait::Poll::Pending(None)
                    })
                })
                .await?;
        }
        // GetInstance may omit `sourceDetails.bootVolumeSizeInGBs` (the Terraform provider works
        // around the same omission): the instance was launched from this spec, so record the size
        // it was launched with instead of `None`, which the next diff would read as a change that
        // replaces the instance. `read` carries it forward from state.
        if out.boot_volume_size_in_gbs.is_none() {
            out.boot_volume_size_in_gbs = spec.boot_volume_size_in_gbs;
        }
        Ok(out)
    }

    async fn find_existing(&self, ctx: &Ctx, spec: &InstanceSpec) -> Result<Option<Value>, Error> {
        let q = [("compartmentId", spec.compartment_id.as_str()), ("displayName", spec.display_name.as_str())];
        find_tagged(&self.client, ctx, &format!("{CORE_API}/instances/"), &q).await
    }

    async fn resolve_image(&self, spec: &InstanceSpec) -> Result<String, Error> {
        match &spec.image {
            ImageSource::Id { image_id } => Ok(image_id.clone()),
            ImageSource::Latest { operating_system, operating_system_version } => {
                let img = image::newest_image(
                    &self.client,
                    &spec.compartment_id,
                    operating_system,
                    operating_system_version,
                    &spec.shape,
                )
                .await?;
                Ok(img.id)
            }
        }
    }

    /// The capacity hunt: launch in each AD (and FD), back off, repeat until the deadline.
    async fn hunt(&self, ctx: &Ctx, spec: &InstanceSpec) -> Result<Created<InstanceOutputs>, CreateError> {
        let image_id = self.resolve_image(spec).await?;
        let ads = self.availability_domains(spec).await?;
        let fds: Vec<Option<&str>> = if spec.fault_domains.is_empty() {
            vec![None]
        } else {
            spec.fault_domains.iter().map(|f| Some(f.as_str())).collect()
        };
        let meta = metadata(spec)?;
        let tags = validate::with_managed_tags(&spec.freeform_tags, ctx.tags());
        let subnet_id = spec.subnet_id.get("subnet_id")?.clone();
        let shape_config = |s: &InstanceSpec| match (s.ocpus, s.memory_in_gbs) {
            (Some(o), Some(m)) => Some(LaunchShapeConfig { ocpus: o, memory_in_gbs: m }),
            _ => None,
        };
        let start = tokio::time::Instant::now();
        let mut no_shape: BTreeSet<String> = BTreeSet::new();
        let mut attempts = 0u32;
        let mut last = String::from("no attempt made");
        let mut round = 0u32;
        loop {
            'round: for ad in &ads {
                for fd in &fds {
                    if no_shape.contains(ad) {
                        continue;
                    }
                    if attempts > 0
                        && let Some(v) = self.find_existing(ctx, spec).await?
                    {
                        // An earlier attempt's response was lost but the instance exists: adopt it.
                        let id = decode::<InstanceWire>("instance", v)?.id;
                        ctx.progress(format!("found instance {id} from an earlier launch attempt; adopting it"));
                        return match self.finish(ctx, &id, spec).await {
                            Ok(o) => Ok(Created { id, outputs: o }),
                            Err(e) => Err(CreateError::partial(e, id)),
                        };
                    }
                    attempts += 1;
                    let where_ = match fd {
                        Some(f) => format!("{ad} / {f}"),
                        None => ad.clone(),
                    };
                    ctx.progress(format!("launch attempt {attempts}: {} in {where_}", spec.shape));
                    let body = LaunchInstanceDetails {
                        availability_domain: ad,
                        compartment_id: &spec.compartment_id,
                        display_name: &spec.display_name,
                        fault_domain: *fd,
                        shape: &spec.shape,
                        shape_config: shape_config(spec),
                        source_details: LaunchSourceDetails {
                            source_type: "image",
                            image_id: &image_id,
                            boot_volume_size_in_gbs: spec.boot_volume_size_in_gbs,
                        },
                        create_vnic_details: CreateVnicDetails {
                            subnet_id: &subnet_id,
                            assign_public_ip: spec.assign_public_ip,
                        },
                        metadata: &meta,
                        freeform_tags: &tags,
                        instance_options: InstanceOptions { are_legacy_imds_endpoints_disabled: true },
                    };
                    let url = self.client.url(Service::Iaas, &format!("{CORE_API}/instances/"), &[])?;
                    let req = HttpRequest::new(Method::POST, url).json(&body)?;
                    // A new token per round: a capacity failure is never answered from a token cache,
                    // while every retransmit of this exact request shares one.
                    let token = retry_token(
                        ctx.idempotency_token(),
                        &format!("LaunchInstance#{round}"),
                        req.body.as_deref().unwrap_or_default(),
                    );
                    let req = req.header("opc-retry-token", &token)?.idempotent();
                    match send_launch(&self.client, &req).await {
                        Ok(resp) => {
                            let w: InstanceWire = resp.json()?;
                            let id = w.id.clone();
                            ctx.progress(format!("launched instance {id} in {where_}; waiting for RUNNING"));
                            match self.finish(ctx, &id, spec).await {
                                Ok(o) => return Ok(Created { id, outputs: o }),
                                Err(Error::Provider(d))
                                    if d.code
                                        .as_deref()
                                        .is_some_and(|c| c.ends_with("TERMINATED") || c.ends_with("TERMINATING")) =>
                                {
                                    // Capacity can also fail after acceptance: the instance terminates.
                                    last = format!("instance {id} terminated while provisioning in {where_}");
                                    ctx.progress(last.clone());
                                }
                                Err(e) => return Err(CreateError::partial(e, id)),
                            }
                        }
                        Err(e) if is_out_of_capacity(&e) => {
                            last = e.to_string();
                            ctx.progress(format!("no capacity in {where_}: {e}"));
                        }
                        Err(e) if is_shape_unavailable_in_ad(&e) => {
                            last = e.to_string();
                            ctx.progress(format!("{} is not offered in {ad}; skipping it: {e}", spec.shape));
                            no_shape.insert(ad.clone());
                        }
                        Err(e @ Error::Throttled { .. }) => {
                            // Still throttled after the transport retries: OCI did not process the
                            // launch. Hammering the next AD would only prolong it, and giving up
                            // would end an hour-long hunt over a rate limit: wait out this round's
                            // backoff and go on until the deadline.
                            last = e.to_string();
                            ctx.progress(format!("throttled launching in {where_}; backing off: {e}"));
                            break 'round;
                        }
                        Err(e) => {
                            // The launch may still have happened (every response lost): if the
                            // instance exists, adopt it; otherwise report the failure.
                            let found = self
                                .find_existing(ctx, spec)
                                .await
                                .ok()
                                .flatten()
                                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
                            let Some(id) = found else { return Err(e.into()) };
                            ctx.progress(format!(
                                "launch outcome unknown ({e}), but instance {id} exists; adopting it"
                            ));
                            return match self.finish(ctx, &id, spec).await {
                                Ok(o) => Ok(Created { id, outputs: o }),
                                Err(e) => Err(CreateError::partial(e, id)),
                            };
                        }
                    }
                }
            }
            if ads.iter().all(|a| no_shape.contains(a)) {
                return Err(Error::NotFound(stackup_core::ApiErrorDetails {
                    code: Some("ShapeNotAvailable".into()),
                    message: format!("{} is not offered in any of {}: {last}", spec.shape, ads.join(", ")),
                    ..Default::default()
                })
                .into());
            }
            round += 1;
            let wait = self.hunt.backoff(round);
            let elapsed = start.elapsed();
            if elapsed + wait > self.hunt.deadline {
                return Err(Error::from(OciError::OutOfCapacity {
                    shape: spec.shape.clone(),
                    attempts,
                    elapsed,
                    deadline: self.hunt.deadline,
                    last,
                })
                .into());
            }
            ctx.progress(format!("no capacity in any AD after {attempts} attempts; next round in {wait:?}"));
            sleep_cancellable(ctx, wait).await?;
        }
    }
}

#[async_trait]
impl Provisioner for Instances {
    type Spec = InstanceSpec;
    type Outputs = InstanceOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "instance")
    }

    fn validate(&self, spec: &InstanceSpec) -> Result<(), Error> {
        validate_spec(spec)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        prior: Option<&InstanceOutputs>,
    ) -> Result<Option<InstanceOutputs>, Error> {
        let Some(v) = self.client.get_opt::<Value>(Service::Iaas, &format!("{CORE_API}/instances/{id}")).await? else {
            return Ok(None);
        };
        if matches!(lifecycle(&v), "TERMINATED" | "TERMINATING") {
            return Ok(None);
        }
        let w: InstanceWire = decode("instance", v)?;
        self.outputs(w, prior).await.map(Some)
    }

    async fn lookup(&self, ctx: &Ctx, spec: &InstanceSpec) -> Result<Option<Created<InstanceOutputs>>, Error> {
        let Some(v) = self.find_existing(ctx, spec).await? else { return Ok(None) };
        let id = decode::<InstanceWire>("instance", v)?.id;
        let out = self.finish(ctx, &id, spec).await?;
        Ok(Some(Created { id, outputs: out }))
    }

    fn diff(&self, desired: &InstanceSpec, observed: &InstanceOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("compartment_id", &desired.compartment_id, &observed.compartment_id);
        d.field_replace("shape", &desired.shape, &observed.shape);
        if !desired.availability_domains.is_empty()
            && !desired.availability_domains.iter().any(|a| same_name(Some(a), Some(&observed.availability_domain)))
        {
            d.field_replace(
                "availability_domains",
                &desired.availability_domains,
                &vec![observed.availability_domain.clone()],
            );
        }
        if let Some(fd) = &observed.fault_domain
            && !desired.fault_domains.is_empty()
            && !desired.fault_domains.iter().any(|f| same_name(Some(f), Some(fd)))
        {
            d.field_replace("fault_domains", &desired.fault_domains, &vec![fd.clone()]);
        }
        match &desired.image {
            ImageSource::Id { image_id } => {
                d.field_replace("image.image_id", image_id, &observed.image_id);
            }
            ImageSource::Latest { operating_system, operating_system_version } => {
                if let Some(os) = &observed.operating_system {
                    d.field_replace("image.operating_system", operating_system, os);
                }
                if let Some(v) = &observed.operating_system_version {
                    d.field_replace("image.operating_system_version", operating_system_version, v);
                }
            }
        }
        if desired.boot_volume_size_in_gbs.is_some() {
            d.field_replace(
                "boot_volume_size_in_gbs",
                &desired.boot_volume_size_in_gbs,
                &observed.boot_volume_size_in_gbs,
            );
        }
        d.input_replace("subnet_id", &desired.subnet_id, &observed.subnet_id);
        d.field_replace("assign_public_ip", &desired.assign_public_ip, &observed.public_ip.is_some());
        d.field_replace("ssh_authorized_keys", &desired.ssh_authorized_keys, &observed.ssh_authorized_keys);
        match &desired.user_data {
            None => {
                d.field_replace("user_data_sha256", &None::<String>, &observed.user_data_sha256);
            }
            Some(u) => match u.known() {
                Some(text) => {
                    d.field_replace("user_data_sha256", &Some(sha256_hex(text)), &observed.user_data_sha256);
                }
                None => {
                    d.push(FieldChange {
                        path: "user_data_sha256".into(),
                        before: serde_json::to_value(&observed.user_data_sha256).ok(),
                        after: None,
                        unknown: true,
                        forces_replacement: true,
                        sensitive: false,
                    });
                }
            },
        }
        if is_flex(&desired.shape) {
            d.field("ocpus", &desired.ocpus, &observed.ocpus);
            d.field("memory_in_gbs", &desired.memory_in_gbs, &observed.memory_in_gbs);
        }
        d.field("display_name", &desired.display_name, &observed.display_name);
        d.field("freeform_tags", &desired.freeform_tags, &validate::user_tags(&observed.freeform_tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &InstanceSpec) -> Result<Created<InstanceOutputs>, CreateError> {
        if !spec.allow_billing {
            let req = FreeTierRequest {
                shape: &spec.shape,
                instances: 1,
                ocpus: spec.ocpus.unwrap_or(0.0),
                memory_gbs: spec.memory_in_gbs.unwrap_or(0.0),
                storage_gbs: f64::from(spec.boot_volume_size_in_gbs.unwrap_or(MIN_BOOT_VOLUME_GBS)),
            };
            free_tier::check(&self.client, ctx, &req, &self.allowance).await?;
        }
        self.hunt(ctx, spec).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &InstanceSpec,
        observed: &InstanceOutputs,
    ) -> Result<InstanceOutputs, Error> {
        if !spec.allow_billing {
            let req = FreeTierRequest {
                shape: &spec.shape,
                instances: 0,
                ocpus: (spec.ocpus.unwrap_or(0.0) - observed.ocpus.unwrap_or(0.0)).max(0.0),
                memory_gbs: (spec.memory_in_gbs.unwrap_or(0.0) - observed.memory_in_gbs.unwrap_or(0.0)).max(0.0),
                storage_gbs: 0.0,
            };
            free_tier::check(&self.client, ctx, &req, &self.allowance).await?;
        }
        let resize =
            is_flex(&spec.shape) && (spec.ocpus != observed.ocpus || spec.memory_in_gbs != observed.memory_in_gbs);
        let target = match (resize, spec.ocpus, spec.memory_in_gbs) {
            (true, Some(o), Some(m)) => Some((o, m)),
            _ => None,
        };
        let body = UpdateInstanceDetails {
            display_name: &spec.display_name,
            freeform_tags: validate::with_managed_tags(&spec.freeform_tags, ctx.tags()),
            shape_config: target.map(|(o, m)| LaunchShapeConfig { ocpus: o, memory_in_gbs: m }),
        };
        let _: Value = self.client.put(&format!("{CORE_API}/instances/{id}"), &body).await?;
        let w = match target {
            Some((o, m)) => self.wait_resized(ctx, id, o, m).await?,
            None => self.wait_running(ctx, id).await?,
        };
        self.outputs(w, Some(observed)).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &InstanceOutputs) -> Result<(), Error> {
        let path = format!("{CORE_API}/instances/{id}");
        self.client.delete(&path, &[("preserveBootVolume", "false")]).await?;
        wait_gone(&self.client, ctx, "instance", &path, self.client.timing().instance_timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> InstanceSpec {
        InstanceSpec {
            compartment_id: "ocid1.tenancy.oc1..aaaa".into(),
            display_name: "web".into(),
            availability_domains: vec![],
            fault_domains: vec![],
            shape: free_tier::A1_FLEX.into(),
            ocpus: Some(2.0),
            memory_in_gbs: Some(12.0),
            image: ImageSource::Latest {
                operating_system: "Canonical Ubuntu".into(),
                operating_system_version: "24.04".into(),
            },
            boot_volume_size_in_gbs: Some(100),
            subnet_id: "ocid1.subnet.oc1.phx.aaaa".into(),
            assign_public_ip: true,
            ssh_authorized_keys: vec!["ssh-ed25519 AAAAC3Nza me@host".into()],
            user_data: Some("#cloud-config\n".to_owned().into()),
            freeform_tags: BTreeMap::new(),
            allow_billing: false,
        }
    }

    #[test]
    fn launch_body_uses_oci_spelling() {
        let s = spec();
        let meta = metadata(&s).unwrap();
        let tags = BTreeMap::new();
        let body = LaunchInstanceDetails {
            availability_domain: "Uocm:PHX-AD-1",
            compartment_id: &s.compartment_id,
            display_name: &s.display_name,
            fault_domain: None,
            shape: &s.shape,
            shape_config: Some(LaunchShapeConfig { ocpus: 2.0, memory_in_gbs: 12.0 }),
            source_details: LaunchSourceDetails {
                source_type: "image",
                image_id: "ocid1.image.x",
                boot_volume_size_in_gbs: Some(100),
            },
            create_vnic_details: CreateVnicDetails { subnet_id: "ocid1.subnet.x", assign_public_ip: true },
            metadata: &meta,
            freeform_tags: &tags,
            instance_options: InstanceOptions { are_legacy_imds_endpoints_disabled: true },
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["shapeConfig"], serde_json::json!({"ocpus": 2.0, "memoryInGBs": 12.0}));
        assert_eq!(v["sourceDetails"]["bootVolumeSizeInGBs"], 100);
        assert_eq!(v["metadata"]["user_data"], "I2Nsb3VkLWNvbmZpZwo=");
        assert!(v.get("faultDomain").is_none());
    }

    #[test]
    fn metadata_limit_counts_base64() {
        let mut s = spec();
        s.user_data = Some("x".repeat(24_500).into());
        let e = validate_spec(&s).unwrap_err().to_string();
        assert!(e.contains("user_data") && e.contains("32000"), "{e}");
        s.user_data = Some("x".repeat(20_000).into());
        validate_spec(&s).unwrap();
    }
}
