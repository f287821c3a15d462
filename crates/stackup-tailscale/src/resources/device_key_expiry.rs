//! `tailscale:device_key_expiry`: whether a device's node key expires
//! (`POST /device/{deviceId}/key {"keyExpiryDisabled": …}`). Servers usually disable it, so
//! they never drop off the tailnet for re-authentication.
//!
//! Destroying the resource leaves the setting as it is (re-enabling expiry could expire the key
//! at once, taking a server offline).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use crate::client::TailscaleClient;
use crate::resources::{device_gone, known_device_id};

/// The desired key expiry setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceKeyExpirySpec {
    /// The device (`nodeId`).
    pub device_id: Input<String>,
    /// Disable key expiry (default `true`).
    #[serde(default = "yes")]
    pub key_expiry_disabled: bool,
}

fn yes() -> bool {
    true
}

impl DeviceKeyExpirySpec {
    /// Disables key expiry on `device_id`.
    pub fn disabled(device_id: impl Into<Input<String>>) -> Self {
        DeviceKeyExpirySpec { device_id: device_id.into(), key_expiry_disabled: true }
    }
}

/// The observed setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceKeyExpiryOutputs {
    /// The device.
    pub device_id: String,
    /// Key expiry disabled.
    pub key_expiry_disabled: bool,
}

/// Manages device key expiry.
#[derive(Debug, Clone)]
pub struct DeviceKeyExpiries {
    client: TailscaleClient,
}

impl DeviceKeyExpiries {
    /// A provisioner using `client`.
    pub fn new(client: TailscaleClient) -> Self {
        DeviceKeyExpiries { client }
    }

    async fn ensure(&self, ctx: &Ctx, id: &str, disabled: bool) -> Result<DeviceKeyExpiryOutputs, Error> {
        let device = self.client.get_device(id).await?.ok_or_else(|| device_gone(id))?;
        if device.key_expiry_disabled != disabled {
            ctx.progress(format!("{} key expiry of device {id}", if disabled { "disabling" } else { "enabling" }));
            self.client.set_device_key_expiry_disabled(id, disabled).await?;
        }
        Ok(DeviceKeyExpiryOutputs { device_id: id.to_owned(), key_expiry_disabled: disabled })
    }
}

#[async_trait]
impl Provisioner for DeviceKeyExpiries {
    type Spec = DeviceKeyExpirySpec;
    type Outputs = DeviceKeyExpiryOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("tailscale", "device_key_expiry")
    }

    fn validate(&self, spec: &DeviceKeyExpirySpec) -> Result<(), Error> {
        known_device_id(&spec.device_id)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        _prior: Option<&DeviceKeyExpiryOutputs>,
    ) -> Result<Option<DeviceKeyExpiryOutputs>, Error> {
        Ok(self
            .client
            .get_device(id)
            .await?
            .map(|d| DeviceKeyExpiryOutputs { device_id: id.to_owned(), key_expiry_disabled: d.key_expiry_disabled }))
    }

    fn diff(&self, desired: &DeviceKeyExpirySpec, observed: &DeviceKeyExpiryOutputs) -> Diff {
        let mut d = Diff::new();
        d.input_replace("device_id", &desired.device_id, &observed.device_id).field(
            "key_expiry_disabled",
            &desired.key_expiry_disabled,
            &observed.key_expiry_disabled,
        );
        d
    }

    async fn create(
        &self,
        ctx: &Ctx,
        spec: &DeviceKeyExpirySpec,
    ) -> Result<Created<DeviceKeyExpiryOutputs>, CreateError> {
        self.validate(spec)?;
        let id = spec.device_id.get("device_id")?.clone();
        let outputs = self.ensure(ctx, &id, spec.key_expiry_disabled).await?;
        Ok(Created { id, outputs })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &DeviceKeyExpirySpec,
        _observed: &DeviceKeyExpiryOutputs,
    ) -> Result<DeviceKeyExpiryOutputs, Error> {
        self.ensure(ctx, id, spec.key_expiry_disabled).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &DeviceKeyExpiryOutputs) -> Result<(), Error> {
        ctx.progress(format!("leaving the key expiry setting of device {id} as it is"));
        Ok(())
    }
}
