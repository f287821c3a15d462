//! `tailscale:device_tags`: the ACL tags of a device (`POST /device/{deviceId}/tags`, which
//! replaces the whole list; every tag must be in the policy's `tagOwners`, or the API answers
//! 400). Compared as a set.
//!
//! Destroying the resource leaves the tags on the device: a tagged device stripped of its tags
//! changes owner, and a device resource with `remove_on_destroy` removes the device anyway.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use crate::client::TailscaleClient;
use crate::resources::{device_gone, known_device_id, sorted};
use crate::validate;

/// The desired tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceTagsSpec {
    /// The device (`nodeId`).
    pub device_id: Input<String>,
    /// Tags (`tag:server`); order does not matter.
    pub tags: Vec<String>,
}

impl DeviceTagsSpec {
    /// Sets `tags` on `device_id`.
    pub fn new<I, S>(device_id: impl Into<Input<String>>, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DeviceTagsSpec { device_id: device_id.into(), tags: tags.into_iter().map(Into::into).collect() }
    }
}

/// The observed tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceTagsOutputs {
    /// The device.
    pub device_id: String,
    /// Tags, sorted.
    pub tags: Vec<String>,
}

/// Manages device tags.
#[derive(Debug, Clone)]
pub struct DeviceTags {
    client: TailscaleClient,
}

impl DeviceTags {
    /// A provisioner using `client`.
    pub fn new(client: TailscaleClient) -> Self {
        DeviceTags { client }
    }

    async fn ensure(&self, ctx: &Ctx, id: &str, tags: &[String]) -> Result<DeviceTagsOutputs, Error> {
        let want = sorted(tags.to_vec());
        let device = self.client.get_device(id).await?.ok_or_else(|| device_gone(id))?;
        if sorted(device.tags) != want {
            ctx.progress(format!("setting tags of device {id} to {}", want.join(", ")));
            self.client.set_device_tags(id, &want).await?;
        }
        Ok(DeviceTagsOutputs { device_id: id.to_owned(), tags: want })
    }
}

#[async_trait]
impl Provisioner for DeviceTags {
    type Spec = DeviceTagsSpec;
    type Outputs = DeviceTagsOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("tailscale", "device_tags")
    }

    fn validate(&self, spec: &DeviceTagsSpec) -> Result<(), Error> {
        known_device_id(&spec.device_id)?;
        validate::tags("tags", &spec.tags)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        _prior: Option<&DeviceTagsOutputs>,
    ) -> Result<Option<DeviceTagsOutputs>, Error> {
        Ok(self
            .client
            .get_device(id)
            .await?
            .map(|d| DeviceTagsOutputs { device_id: id.to_owned(), tags: sorted(d.tags) }))
    }

    fn diff(&self, desired: &DeviceTagsSpec, observed: &DeviceTagsOutputs) -> Diff {
        let mut d = Diff::new();
        d.input_replace("device_id", &desired.device_id, &observed.device_id).field(
            "tags",
            &sorted(desired.tags.clone()),
            &observed.tags,
        );
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &DeviceTagsSpec) -> Result<Created<DeviceTagsOutputs>, CreateError> {
        self.validate(spec)?;
        let id = spec.device_id.get("device_id")?.clone();
        let outputs = self.ensure(ctx, &id, &spec.tags).await?;
        Ok(Created { id, outputs })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &DeviceTagsSpec,
        _observed: &DeviceTagsOutputs,
    ) -> Result<DeviceTagsOutputs, Error> {
        self.validate(spec)?;
        self.ensure(ctx, id, &spec.tags).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &DeviceTagsOutputs) -> Result<(), Error> {
        ctx.progress(format!("leaving the tags of device {id} as they are"));
        Ok(())
    }
}
