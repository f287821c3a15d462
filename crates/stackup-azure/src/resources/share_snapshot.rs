//! A file share snapshot as a stack resource (the seed's backup step): created with
//! `PUT {share}?$expand=snapshots`, read and deleted with the `x-ms-snapshot` header. A snapshot
//! cannot change: a different share replaces it. Its id is `{share id}@{snapshot time}`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use super::PROVIDER;
use super::file_share::FileShares;
use crate::client::ArmClient;
use crate::validate;

/// A snapshot of a share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareSnapshotSpec {
    /// The share's ARM id (its `id` output).
    pub share_id: Input<String>,
}

/// An observed snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareSnapshotOutputs {
    /// `{share id}@{snapshot time}`.
    pub id: String,
    /// The share's ARM id.
    pub share_id: String,
    /// The snapshot time stamp (pass it as `x-ms-snapshot`, or mount `…/share?sharesnapshot=`).
    pub snapshot_time: String,
}

/// Manages share snapshots.
#[derive(Debug, Clone)]
pub struct ShareSnapshots {
    shares: FileShares,
}

impl ShareSnapshots {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        ShareSnapshots { shares: FileShares::new(client) }
    }

    fn split(id: &str) -> Result<(&str, &str), Error> {
        id.rsplit_once('@').ok_or_else(|| Error::invalid("id", "a share snapshot id is `{share id}@{snapshot time}`"))
    }
}

#[async_trait]
impl Provisioner for ShareSnapshots {
    type Spec = ShareSnapshotSpec;
    type Outputs = ShareSnapshotOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "share_snapshot")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::known(&spec.share_id, |id| {
            validate::arm_id("share_id", id, "Microsoft.Storage/storageAccounts/fileServices/shares")
        })
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        let (share_id, time) = Self::split(id)?;
        Ok(self.shares.get_snapshot(share_id, time).await?.map(|_| ShareSnapshotOutputs {
            id: id.to_owned(),
            share_id: share_id.to_owned(),
            snapshot_time: time.to_owned(),
        }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        super::diff_ci(&mut d, "share_id", &desired.share_id, &observed.share_id, true);
        d
    }

    async fn create(&self, _ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let share_id = spec.share_id.get("share_id")?;
        let snap = self.shares.create_snapshot(share_id).await?;
        let id = format!("{}@{}", snap.share_id, snap.snapshot_time);
        Ok(Created {
            id: id.clone(),
            outputs: ShareSnapshotOutputs { id, share_id: snap.share_id, snapshot_time: snap.snapshot_time },
        })
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        _id: &str,
        _spec: &Self::Spec,
        observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error> {
        // Nothing in a snapshot can change in place; `diff` plans a replacement instead.
        Ok(observed.clone())
    }

    async fn delete(&self, _ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        let (share_id, time) = Self::split(id)?;
        self.shares.delete_snapshot(share_id, time).await
    }
}
