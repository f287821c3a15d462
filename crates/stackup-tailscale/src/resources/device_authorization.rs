//! `tailscale:device_authorization`: approves (or de-approves) a device in tailnets where
//! device approval is on (`POST /device/{deviceId}/authorized`).
//!
//! Destroying the resource leaves the device as it is: de-authorizing a server on `destroy`
//! would cut it off, which is never what removing this setting from a stack means.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use crate::client::TailscaleClient;
use crate::resources::{device_gone, known_device_id};

/// The desired authorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceAuthorizationSpec {
    /// The device (`nodeId`), usually a device resource's `node_id` output.
    pub device_id: Input<String>,
    /// Authorized (default `true`).
    #[serde(default = "yes")]
    pub authorized: bool,
}

fn yes() -> bool {
    true
}

impl DeviceAuthorizationSpec {
    /// Authorizes `device_id`.
    pub fn new(device_id: impl Into<Input<String>>) -> Self {
        DeviceAuthorizationSpec { device_id: device_id.into(), authorized: true }
    }
}

/// The observed authorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceAuthorizationOutputs {
    /// The device.
    pub device_id: String,
    /// Authorized.
    pub authorized: bool,
}

/// Manages device authorization.
#[derive(Debug, Clone)]
pub struct DeviceAuthorizations {
    client: TailscaleClient,
}

impl DeviceAuthorizations {
    /// A provisioner using `client`.
    pub fn new(client: TailscaleClient) -> Self {
        DeviceAuthorizations { client }
    }

    async fn ensure(&self, ctx: &Ctx, id: &str, want: bool) -> Result<DeviceAuthorizationOutputs, Error> {
        let device = self.client.get_device(id).await?.ok_or_else(|| device_gone(id))?;
        if device.authorized != want {
            ctx.progress(format!("{} device {id}", if want { "authorizing" } else { "de-authorizing" }));
            self.client.set_device_authorized(id, want).await?;
        }
        Ok(DeviceAuthorizationOutputs { device_id: id.to_owned(), authorized: want })
    }
}

#[async_trait]
impl Provisioner for DeviceAuthorizations {
    type Spec = DeviceAuthorizationSpec;
    type Outputs = DeviceAuthorizationOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("tailscale", "device_authorization")
    }

    fn validate(&self, spec: &DeviceAuthorizationSpec) -> Result<(), Error> {
        known_device_id(&spec.device_id)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        _prior: Option<&DeviceAuthorizationOutputs>,
    ) -> Result<Option<DeviceAuthorizationOutputs>, Error> {
        Ok(self
            .client
            .get_device(id)
            .await?
            .map(|d| DeviceAuthorizationOutputs { device_id: id.to_owned(), authorized: d.authorized }))
    }

    fn diff(&self, desired: &DeviceAuthorizationSpec, observed: &DeviceAuthorizationOutputs) -> Diff {
        let mut d = Diff::new();
        d.input_replace("device_id", &desired.device_id, &observed.device_id).field(
            "authorized",
            &desired.authorized,
            &observed.authorized,
        );
        d
    }

    async fn create(
        &self,
        ctx: &Ctx,
        spec: &DeviceAuthorizationSpec,
    ) -> Result<Created<DeviceAuthorizationOutputs>, CreateError> {
        self.validate(spec)?;
        let id = spec.device_id.get("device_id")?.clone();
        let outputs = self.ensure(ctx, &id, spec.authorized).await?;
        Ok(Created { id, outputs })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &DeviceAuthorizationSpec,
        _observed: &DeviceAuthorizationOutputs,
    ) -> Result<DeviceAuthorizationOutputs, Error> {
        self.ensure(ctx, id, spec.authorized).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &DeviceAuthorizationOutputs) -> Result<(), Error> {
        ctx.progress(format!("leaving the authorization of device {id} as it is"));
        Ok(())
    }
}
