//! Remote state backends for `--state azblob://…` and `--state r2://…`.

use std::sync::Arc;

use stackup_core::Error;
use stackup_core::backend::StateBackend;

/// `r2://<bucket>/<key>`: R2 (or any S3 endpoint via `R2_ENDPOINT`) with credentials from the
/// `R2_*` environment variables.
#[cfg(feature = "r2")]
pub(crate) async fn r2(bucket: &str, key: &str) -> Result<Arc<dyn StateBackend>, Error> {
    let client = stackup_r2::R2Client::from_env().map_err(Error::from)?;
    Ok(Arc::new(stackup_r2::R2StateBackend::new(client, bucket, key).map_err(Error::from)?))
}
