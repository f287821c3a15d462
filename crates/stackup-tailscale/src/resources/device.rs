//! `tailscale:device`: a machine that joins the tailnet by itself (`tailscale up
//! --auth-key … --hostname=egograph-prod`). There is no API to pre-create a device, so
//! "creating" one means **waiting for it to join**: the provisioner polls
//! `GET /tailnet/{tailnet}/devices?hostname=<hostname>` (every fifth poll without the filter, which
//! matches case-sensitively, while stackup matches case-insensitively) until a matching device
//! appears or the deadline passes, then outputs its id, addresses and MagicDNS name.
//!
//! Matching and suffixed names are deliberate (see [`crate::device_match`]):
//!
//! * `joined_after` (for example the auth key's `created` output) keeps a stale device with the
//!   same hostname from being taken for the new one; `required_tags` narrows further;
//! * when Tailscale had to give the new device a suffixed MagicDNS name (`egograph-prod-1`)
//!   because a stale device still holds `egograph-prod`, [`NameConflict`] decides: fail with the
//!   holders named (default), accept the suffixed name (outputs carry the real name), or reclaim
//!   the name by removing the *offline* holders and renaming the new device.
//!
//! Destroying it forgets the device, or removes it from the tailnet with `remove_on_destroy`.
//! Authorization, tags and key expiry are separate resources that take this one's `node_id`.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::wait::{Poll, Waiter};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use crate::client::TailscaleClient;
use crate::device_match::{Criteria, NameState, classify, describe, name_holders};
use crate::error::TailscaleError;
use crate::resources::sorted;
use crate::validate;
use crate::wire::{Device, parse_time};

/// What to do when the device joined under a suffixed MagicDNS name (`egograph-prod-1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameConflict {
    /// Fail, naming the devices that hold the name (so `<hostname>.<tailnet>.ts.net` never
    /// silently points at a stale machine).
    #[default]
    Fail,
    /// Accept the suffixed name; the outputs carry it.
    AcceptSuffix,
    /// Remove the **offline** devices holding the name and rename the new device to it.
    /// Fails without removing anything if a holder is online.
    ReclaimName,
}

/// The device to wait for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// The hostname it joins with (`tailscale up --hostname=…`): one DNS label.
    pub hostname: String,
    /// Tags the device must carry (for example the auth key's tags).
    #[serde(default)]
    pub required_tags: Vec<String>,
    /// Only a device that joined at or after this RFC 3339 time matches (use the auth key's
    /// `created` output).
    #[serde(default)]
    pub joined_after: Option<Input<String>>,
    /// How long to wait for it to join, in milliseconds (default 600 000: 10 minutes).
    #[serde(default = "default_wait")]
    pub wait_timeout_ms: u64,
    /// What to do about a suffixed MagicDNS name.
    #[serde(default)]
    pub on_name_conflict: NameConflict,
    /// Remove the device from the tailnet when the resource is destroyed (default: forget it).
    #[serde(default)]
    pub remove_on_destroy: bool,
}

fn default_wait() -> u64 {
    600_000
}

impl DeviceSpec {
    /// Wait up to 10 minutes for `hostname`, failing on a suffixed name, never removing it.
    pub fn new(hostname: impl Into<String>) -> Self {
        DeviceSpec {
            hostname: hostname.into(),
            required_tags: vec![],
            joined_after: None,
            wait_timeout_ms: default_wait(),
            on_name_conflict: NameConflict::Fail,
            remove_on_destroy: false,
        }
    }

    /// Sets the tags the device must carry.
    pub fn required_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Only devices that joined at or after this time.
    pub fn joined_after(mut self, t: impl Into<Input<String>>) -> Self {
        self.joined_after = Some(t.into());
        self
    }

    /// Sets the wait deadline (whole milliseconds).
    pub fn wait_timeout(mut self, d: Duration) -> Self {
        self.wait_timeout_ms = d.as_millis().min(u64::MAX as u128) as u64;
        self
    }

    /// Sets the suffixed-name policy.
    pub fn on_name_conflict(mut self, c: NameConflict) -> Self {
        self.on_name_conflict = c;
        self
    }

    /// Sets `remove_on_destroy`.
    pub fn remove_on_destroy(mut self, v: bool) -> Self {
        self.remove_on_destroy = v;
        self
    }
}

/// The joined device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceOutputs {
    /// The preferred device id (`nodeId`); also the resource id.
    pub node_id: String,
    /// The legacy numeric id.
    pub legacy_id: String,
    /// The OS hostname.
    pub hostname: String,
    /// The MagicDNS name, `<label>.<tailnet>.ts.net` (use it as `SSH_HOST`).
    pub magic_dns_name: String,
    /// The tailnet's DNS domain (`tail1234.ts.net`).
    pub tailnet_domain: String,
    /// Tailscale addresses (IPv4 first as the API lists them).
    pub addresses: Vec<String>,
    /// The Tailscale IPv4 address, if any.
    pub ipv4: Option<String>,
    /// The Tailscale IPv6 address, if any.
    pub ipv6: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Authorized.
    pub authorized: bool,
    /// Key expiry disabled.
    pub key_expiry_disabled: bool,
    /// Operating system.
    pub os: String,
    /// When it joined (RFC 3339).
    pub created: String,
    /// Whether destroying the resource removes the device (from the spec, kept for destroy).
    #[serde(default)]
    pub remove_on_destroy: bool,
}

impl DeviceOutputs {
    fn from_device(d: &Device, remove_on_destroy: bool) -> Self {
        let fqdn = d.fqdn().to_owned();
        let tailnet_domain = fqdn.split_once('.').map(|(_, rest)| rest.to_owned()).unwrap_or_default();
        let ip = |v6: bool| {
            d.addresses.iter().find(|a| a.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_ipv6() == v6)).cloned()
        };
        DeviceOutputs {
            node_id: d.api_id().to_owned(),
            legacy_id: d.id.clone(),
            hostname: d.hostname.clone(),
            magic_dns_name: fqdn,
            tailnet_domain,
            addresses: d.addresses.clone(),
            ipv4: ip(false),
            ipv6: ip(true),
            tags: sorted(d.tags.clone()),
            authorized: d.authorized,
            key_expiry_disabled: d.key_expiry_disabled,
            os: d.os.clone(),
            created: d.created.clone(),
            remove_on_destroy,
        }
    }
}

/// Waits for devices to join, and optionally removes them on destroy.
#[derive(Debug, Clone)]
pub struct Devices {
    client: TailscaleClient,
    poll_interval: Duration,
}

impl Devices {
    /// A provisioner polling every 2 s.
    pub fn new(client: TailscaleClient) -> Self {
        Devices { client, poll_interval: Duration::from_secs(2) }
    }

    /// Sets the first poll interval (it backs off up to 8× this, at most 15 s).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    fn criteria(spec: &DeviceSpec) -> Result<Criteria, Error> {
        let joined_after = match &spec.joined_after {
            None => None,
            Some(i) => {
                let raw = i.get("joined_after")?;
                Some(parse_time(raw).ok_or_else(|| {
                    Error::invalid("joined_after", format!("`{raw}` is not an RFC 3339 time (2026-11-25T10:00:00Z)"))
                })?)
            }
        };
        Ok(Criteria { hostname: spec.hostname.clone(), required_tags: spec.required_tags.clone(), joined_after })
    }

    /// Polls until a device matching `spec` has joined (404s and empty lists mean "not yet").
    pub async fn wait_for_join(&self, ctx: &Ctx, spec: &DeviceSpec) -> Result<Device, Error> {
        let criteria = Self::criteria(spec)?;
        let timeout = Duration::from_millis(spec.wait_timeout_ms);
        let waiter =
            Waiter::new(format!("device `{}` to join the tailnet", spec.hostname), timeout).every(self.poll_interval);
        ctx.progress(format!("waiting up to {timeout:?} for device `{}` to join", spec.hostname));
        let mut polls = 0u32;
        waiter
            .wait_or_cancel(ctx.cancellation(), || {
                polls += 1;
                let attempt = polls;
                let criteria = &criteria;
                async move {
                    if ctx.is_cancelled() {
                        return Ok(Poll::Failed(Error::Cancelled));
                    }
                    // The server filter matches exactly; every fifth poll lists everything so a
                    // hostname reported in another letter case is still found.
                    let filter = [("hostname", criteria.hostname.as_str())];
                    let filters: &[(&str, &str)] = if attempt.is_multiple_of(5) { &[] } else { &filter };
                    let devices = match self.client.list_devices(filters).await {
                        Ok(d) => d,
                        Err(Error::NotFound(d)) => {
                            // Treated as "not yet", but a wrong tailnet also answers 404: say so.
                            if attempt % 5 == 1 {
                                ctx.progress(format!(
                                    "listing devices answered 404 ({}); is tailnet `{}` right? still waiting",
                                    d.message,
                                    self.client.tailnet()
                                ));
                            }
                            vec![]
                        }
                        Err(e) => return Err(e),
                    };
                    Ok(match criteria.pick(&devices) {
                        Some(d) => Poll::Done(d.clone()),
                        None => {
                            if attempt % 5 == 1 {
                                ctx.progress(format!("device `{}` has not joined yet", criteria.hostname));
                            }
                            Poll::Pending(None)
                        }
                    })
                }
            })
            .await
    }

    /// Applies the [`NameConflict`] policy to a device that joined with a suffixed name.
    async fn settle_name(&self, ctx: &Ctx, spec: &DeviceSpec, device: Device) -> Result<Device, Error> {
        let NameState::Suffixed(_) = classify(&spec.hostname, device.dns_label()) else { return Ok(device) };
        if spec.on_name_conflict == NameConflict::AcceptSuffix {
            ctx.progress(format!("device `{}` joined as `{}` (suffixed name accepted)", spec.hostname, device.fqdn()));
            return Ok(device);
        }
        // Holders of the bare name may have any hostname, so look through every device.
        let all = self.client.list_devices(&[]).await?;
        let holders = name_holders(&all, &spec.hostname, &device);
        if spec.on_name_conflict == NameConflict::Fail {
            return Err(TailscaleError::NameSuffixed {
                hostname: spec.hostname.clone(),
                node_id: device.api_id().to_owned(),
                got: device.dns_label().to_owned(),
                holders: holders.iter().map(|d| describe(d)).collect(),
            }
            .into());
        }
        if let Some(online) = holders.iter().find(|d| d.connected_to_control) {
            return Err(TailscaleError::NameHeldByOnlineDevice {
                hostname: spec.hostname.clone(),
                node_id: online.api_id().to_owned(),
            }
            .into());
        }
        for h in &holders {
            ctx.progress(format!("removing stale device {} to reclaim the name `{}`", describe(h), spec.hostname));
            self.client.delete_device(h.api_id()).await?;
        }
        let label = spec.hostname.to_ascii_lowercase();
        ctx.progress(format!("renaming device {} to `{label}`", device.api_id()));
        self.client.set_device_name(device.api_id(), &label).await?;
        self.client.get_device(device.api_id()).await?.ok_or_else(|| {
            Error::NotFound(stackup_core::ApiErrorDetails {
                message: format!("device {} disappeared after being renamed", device.api_id()),
                ..Default::default()
            })
        })
    }
}

#[async_trait]
impl Provisioner for Devices {
    type Spec = DeviceSpec;
    type Outputs = DeviceOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("tailscale", "device")
    }

    fn validate(&self, spec: &DeviceSpec) -> Result<(), Error> {
        validate::hostname("hostname", &spec.hostname)?;
        validate::tags("required_tags", &spec.required_tags)?;
        if spec.wait_timeout_ms == 0 || spec.wait_timeout_ms > 24 * 3600 * 1000 {
            return Err(Error::invalid("wait_timeout_ms", "must be 1 ms to 24 h"));
        }
        if let Some(Input::Value(t) | Input::Sensitive(t)) = &spec.joined_after
            && parse_time(t).is_none()
        {
            return Err(Error::invalid(
                "joined_after",
                format!("`{t}` is not an RFC 3339 time (2026-11-25T10:00:00Z)"),
            ));
        }
        Ok(())
    }

    async fn read(&self, _ctx: &Ctx, id: &str, prior: Option<&DeviceOutputs>) -> Result<Option<DeviceOutputs>, Error> {
        let remove = prior.is_some_and(|p| p.remove_on_destroy);
        Ok(self.client.get_device(id).await?.map(|d| DeviceOutputs::from_device(&d, remove)))
    }

    fn diff(&self, desired: &DeviceSpec, observed: &DeviceOutputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("hostname", &desired.hostname.to_ascii_lowercase(), &observed.hostname.to_ascii_lowercase())
            .field("remove_on_destroy", &desired.remove_on_destroy, &observed.remove_on_destroy);
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &DeviceSpec) -> Result<Created<DeviceOutputs>, CreateError> {
        self.validate(spec)?;
        let device = self.wait_for_join(ctx, spec).await?;
        ctx.progress(format!("device `{}` joined as {} ({})", spec.hostname, device.fqdn(), device.api_id()));
        let device = self.settle_name(ctx, spec, device).await?;
        let outputs = DeviceOutputs::from_device(&device, spec.remove_on_destroy);
        Ok(Created { id: outputs.node_id.clone(), outputs })
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        id: &str,
        spec: &DeviceSpec,
        observed: &DeviceOutputs,
    ) -> Result<DeviceOutputs, Error> {
        // Only `remove_on_destroy` changes in place, and it lives in stackup's outputs, not in
        // Tailscale: refresh the device and record the new setting.
        let device = self.client.get_device(id).await?;
        Ok(match device {
            Some(d) => DeviceOutputs::from_device(&d, spec.remove_on_destroy),
            None => DeviceOutputs { remove_on_destroy: spec.remove_on_destroy, ..observed.clone() },
        })
    }

    async fn delete(&self, ctx: &Ctx, id: &str, observed: &DeviceOutputs) -> Result<(), Error> {
        if !observed.remove_on_destroy {
            ctx.progress(format!("leaving device {} ({id}) in the tailnet", observed.magic_dns_name));
            return Ok(());
        }
        ctx.progress(format!("removing device {} ({id}) from the tailnet", observed.magic_dns_name));
        self.client.delete_device(id).await
    }
}
