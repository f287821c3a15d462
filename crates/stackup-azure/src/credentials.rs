//! Where Azure tokens come from: a credential chain in the order users expect, built on
//! `azure_identity` 1.0 (which has no `DefaultAzureCredential`).
//!
//! [`CredentialChain::from_env`] tries, in order:
//! 1. a service principal secret: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`;
//! 2. workload identity (Kubernetes): `AZURE_FEDERATED_TOKEN_FILE` with `AZURE_TENANT_ID` and
//!    `AZURE_CLIENT_ID`;
//! 3. managed identity: App Service / Container Apps (`IDENTITY_ENDPOINT`), or the VM instance
//!    metadata service when it answers (a user-assigned identity is chosen by `AZURE_CLIENT_ID`);
//! 4. developer tools: the Azure CLI (`az login`), then the Azure Developer CLI (`azd`).
//!
//! The first source that returns a token is used for every later request. Any other
//! [`TokenCredential`] can be passed to the client builder instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret as SdkSecret, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientOptions;
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use crate::cloud::AzureCloud;
use crate::error::AzureError;

/// Tenant of the service principal (client secret and workload identity).
pub const ENV_TENANT_ID: &str = "AZURE_TENANT_ID";
/// Application (client) id of the service principal, or of a user-assigned managed identity.
pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// Secret of the service principal.
pub const ENV_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// Path of the federated token file (workload identity).
pub const ENV_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// Set by App Service, Functions and Container Apps for their managed identity endpoint.
pub const ENV_IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";

const IMDS_ADDR: &str = "169.254.169.254:80";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

struct Source {
    name: &'static str,
    credential: Arc<dyn TokenCredential>,
    /// Only the VM metadata service is probed first (a closed port fails in milliseconds, but
    /// an unroutable link-local address could otherwise hang for the connect timeout).
    probe_imds: bool,
}

/// Tries several credentials in order and sticks with the first that works.
pub struct CredentialChain {
    sources: Vec<Source>,
    chosen: AtomicUsize,
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.sources.iter().map(|s| s.name).collect();
        f.debug_struct("CredentialChain").field("sources", &names).finish()
    }
}

impl CredentialChain {
    /// The chain described in the [module docs](self), configured from the environment, with
    /// the authority of `cloud`.
    pub fn from_env(cloud: &AzureCloud) -> Result<Arc<Self>, stackup_core::Error> {
        let client_options = || ClientOptions { cloud: Some(Arc::new(cloud.sdk_cloud())), ..Default::default() };
        let cred_err = |what: &str, e: azure_core::Error| {
            stackup_core::Error::from(AzureError::Credential(format!("{what}: {e}")))
        };
        let mut sources = Vec::new();
        let (tenant, client, secret) = (env(ENV_TENANT_ID), env(ENV_CLIENT_ID), env(ENV_CLIENT_SECRET));
        if let (Some(tenant), Some(client), Some(secret)) = (&tenant, &client, &secret) {
            let options = ClientSecretCredentialOptions { client_options: client_options() };
            let c = ClientSecretCredential::new(tenant, client.clone(), SdkSecret::from(secret.clone()), Some(options))
                .map_err(|e| cred_err("client secret credential from AZURE_* variables", e))?;
            sources.push(Source { name: "ClientSecretCredential", credential: c, probe_imds: false });
        }
        if env(ENV_FEDERATED_TOKEN_FILE).is_some() && tenant.is_some() && client.is_some() {
            let options = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options: client_options() },
                ..Default::default()
            };
            let c = WorkloadIdentityCredential::new(Some(options))
                .map_err(|e| cred_err("workload identity credential", e))?;
            sources.push(Source { name: "WorkloadIdentityCredential", credential: c, probe_imds: false });
        }
        let user_assigned_id = if secret.is_none() { client.clone().map(UserAssignedId::ClientId) } else { None };
        // Few, quick retries: on a machine where something answers on the metadata address
        // without being IMDS, the chain must move on to the next source promptly.
        let mi_retry = stackup_core::retry::RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(300),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        };
        let mi = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id,
            client_options: ClientOptions { retry: crate::client::sdk_retry_options(&mi_retry), ..client_options() },
        }));
        // Unsupported managed identity environments (Service Fabric, Arc) are skipped.
        if let Ok(c) = mi {
            let probe_imds = env(ENV_IDENTITY_ENDPOINT).is_none();
            sources.push(Source { name: "ManagedIdentityCredential", credential: c, probe_imds });
        }
        let dev = DeveloperToolsCredential::new(None).map_err(|e| cred_err("developer tools credential", e))?;
        sources.push(Source { name: "DeveloperToolsCredential", credential: dev, probe_imds: false });
        Ok(Arc::new(CredentialChain { sources, chosen: AtomicUsize::new(usize::MAX) }))
    }

    /// The names of the sources in the order they are tried.
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.name).collect()
    }
}

async fn imds_reachable() -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(800), tokio::net::TcpStream::connect(IMDS_ADDR)).await,
        Ok(Ok(_))
    )
}

#[async_trait]
impl TokenCredential for CredentialChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Relaxed);
        if let Some(source) = self.sources.get(chosen) {
            return source.credential.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, source) in self.sources.iter().enumerate() {
            if source.probe_imds && !imds_reachable().await {
                failures.push(format!("{}: the VM instance metadata service is not reachable", source.name));
                continue;
            }
            match source.credential.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    tracing::debug!(source = source.name, "Azure credential chain picked a source");
                    self.chosen.store(i, Ordering::Relaxed);
                    return Ok(token);
                }
                Err(e) => failures.push(format!("{}: {e}", source.name)),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no Azure credential worked (set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, \
                 use a managed identity, or run `az login`); tried: {}",
                failures.join("; ")
            ),
        ))
    }
}

/// A fixed token, for tests and for callers that obtain tokens themselves.
#[derive(Clone)]
pub struct StaticTokenCredential {
    token: SdkSecret,
}

impl std::fmt::Debug for StaticTokenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticTokenCredential((sensitive))")
    }
}

impl StaticTokenCredential {
    /// A credential that always returns `token` (valid for an hour from each request).
    pub fn new(token: impl Into<String>) -> Arc<Self> {
        Arc::new(StaticTokenCredential { token: SdkSecret::from(token.into()) })
    }
}

#[async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.token.secret().to_owned(),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unset(name: &str) -> bool {
        env(name).is_none()
    }

    #[tokio::test]
    async fn the_chain_is_ordered_and_explains_every_failure() {
        let chain = CredentialChain::from_env(&AzureCloud::public()).unwrap();
        let names = chain.source_names();
        assert_eq!(names.last(), Some(&"DeveloperToolsCredential"), "{names:?}");
        assert!(!format!("{chain:?}").contains("secret"));
        // The rest depends on the machine: only judge a bare environment without `az`.
        let bare = [ENV_CLIENT_SECRET, ENV_FEDERATED_TOKEN_FILE, ENV_IDENTITY_ENDPOINT].iter().all(|v| unset(v));
        if !bare {
            return;
        }
        assert_eq!(names, ["ManagedIdentityCredential", "DeveloperToolsCredential"]);
        let az_on_path = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("az").exists() || d.join("azd").exists()));
        if az_on_path || imds_reachable().await {
            return;
        }
        let err = chain.get_token(&["https://management.azure.com/.default"], None).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("az login"), "{msg}");
        assert!(msg.contains("ManagedIdentityCredential: the VM instance metadata service is not reachable"), "{msg}");
        assert!(msg.contains("DeveloperToolsCredential"), "{msg}");
    }
}
