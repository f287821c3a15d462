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

/// `azblob://<account>/<container>/<blob>`: an Azure Blob in the cloud named by
/// `AZURE_CLOUD` (public by default), authorized with `AZURE_STORAGE_KEY` when set, otherwise
/// with the Azure credential chain (Entra ID; needs a Storage Blob Data role).
#[cfg(feature = "azure")]
pub(crate) async fn azure_blob(account: &str, container: &str, blob: &str) -> Result<Arc<dyn StateBackend>, Error> {
    let cloud = stackup_azure::AzureCloud::from_env()?;
    let url = format!("https://{account}.blob.{}/{container}", cloud.storage_suffix);
    let mut b = stackup_azure::blob_backend::AzureBlobBackend::builder(url, blob);
    match std::env::var("AZURE_STORAGE_KEY") {
        Ok(key) if !key.is_empty() => b = b.account_key(account, stackup_core::Secret::new(key)),
        _ => b = b.credential(stackup_azure::CredentialChain::from_env(&cloud)?),
    }
    Ok(Arc::new(b.build()?))
}
