//! Key Vault secrets through `azure_security_keyvault_secrets` (data plane, REST api-version
//! `2025-07-01`, the crate's default): set (`PUT {vault}/secrets/{name}`), read (`GET
//! {vault}/secrets/{name}`), update properties (`PATCH {vault}/secrets/{name}/{version}`) and
//! delete (`DELETE {vault}/secrets/{name}`, optionally followed by a purge, `DELETE
//! {vault}/deletedsecrets/{name}`). The vault itself is given by URL
//! (`https://dursor-vault.vault.azure.net/`).
//!
//! A new value is a new version of the same secret (an update, not a replacement). The value is
//! a [`Secret`] in the outputs, re-read on every refresh, and never shown in plans.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, HttpClient as SdkHttpClient, Transport};
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use stackup_core::retry::RetryPolicy;
use stackup_core::{CreateError, Created, Ctx, Diff, Error, FieldChange, Input, Provisioner, ResourceKind, Secret};

use super::{PROVIDER, is_ours, not_ours};
use crate::cloud::AzureCloud;
use crate::credentials::CredentialChain;
use crate::error::AzureError;
use crate::lro::{self, LroOptions, Step};

/// A secret in a Key Vault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyVaultSecretSpec {
    /// The vault URL (`https://dursor-vault.vault.azure.net/`), often another resource's output.
    pub vault_url: Input<String>,
    /// Name: 1–127 letters, digits and `-`.
    pub name: String,
    /// The value (pass a [`Secret`] or another resource's secret output). Always serialised as
    /// sensitive, so plans never show it even when given as a plain value.
    #[serde(serialize_with = "always_sensitive")]
    pub value: Input<String>,
    /// Content type (`text/plain`, `application/x-pem-file`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Purge the secret after deleting it, so the name can be reused at once (default: keep it
    /// recoverable in the vault's soft-delete bin).
    #[serde(default)]
    pub purge_on_delete: bool,
}

/// An observed secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyVaultSecretOutputs {
    /// The secret's id without version (`https://{vault}/secrets/{name}`).
    pub id: String,
    /// The vault URL.
    pub vault_url: String,
    /// Name.
    pub name: String,
    /// The current version.
    pub version: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Whether the secret is enabled.
    pub enabled: bool,
    /// All tags.
    pub tags: BTreeMap<String, String>,
    /// The value (re-read on refresh).
    #[serde(default)]
    pub value: Option<Secret>,
    /// Whether deleting purges (from the spec; carried forward by `read`).
    #[serde(default)]
    pub purge_on_delete: bool,
}

fn always_sensitive<S: serde::Serializer>(v: &Input<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Input::Value(x) => Input::Sensitive(x.clone()).serialize(s),
        other => other.serialize(s),
    }
}

/// Manages Key Vault secrets.
pub struct KeyVaultSecrets {
    credential: Arc<dyn TokenCredential>,
    retry: RetryPolicy,
    poll: LroOptions,
    transport: Option<Arc<dyn SdkHttpClient>>,
    clients: Mutex<HashMap<String, Arc<SecretClient>>>,
}

impl std::fmt::Debug for KeyVaultSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVaultSecrets").finish_non_exhaustive()
    }
}

impl KeyVaultSecrets {
    /// A provisioner authenticating with `credential`.
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        KeyVaultSecrets {
            credential,
            retry: RetryPolicy::default(),
            poll: LroOptions { interval: Duration::from_secs(1), ..LroOptions::default() },
            transport: None,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A provisioner with the environment's credential chain.
    pub fn from_env() -> Result<Self, Error> {
        Ok(Self::new(CredentialChain::from_env(&AzureCloud::from_env()?)?))
    }

    /// The retry policy for 408/429/5xx (the SDK pipeline's exponential retry).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How the purge after a delete is polled.
    pub fn poll_options(mut self, options: LroOptions) -> Self {
        self.poll = options;
        self
    }

    /// Sends requests through this HTTP client (a proxy, a test double).
    pub fn transport(mut self, client: Arc<dyn SdkHttpClient>) -> Self {
        self.transport = Some(client);
        self
    }

    fn client(&self, vault_url: &str) -> Result<Arc<SecretClient>, Error> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(vault_url) {
            return Ok(c.clone());
        }
        let retry = crate::client::sdk_retry_options(&self.retry);
        let options = SecretClientOptions {
            client_options: ClientOptions {
                retry,
                transport: self.transport.clone().map(Transport::new),
                ..Default::default()
            },
            ..Default::default()
        };
        let client = SecretClient::new(vault_url, self.credential.clone(), Some(options))
            .map_err(|e| Error::from(AzureError::from_core(&e)))?;
        let client = Arc::new(client);
        clients.insert(vault_url.to_owned(), client.clone());
        Ok(client)
    }

    fn outputs(
        vault_url: &str,
        name: &str,
        s: azure_security_keyvault_secrets::models::Secret,
    ) -> KeyVaultSecretOutputs {
        let version = s.id.as_deref().and_then(|id| id.rsplit('/').next()).unwrap_or_default().to_owned();
        KeyVaultSecretOutputs {
            id: format!("{}/secrets/{name}", vault_url.trim_end_matches('/')),
            vault_url: vault_url.to_owned(),
            name: name.to_owned(),
            version,
            content_type: s.content_type,
            enabled: s.attributes.and_then(|a| a.enabled).unwrap_or(true),
            tags: s.tags.unwrap_or_default().into_iter().collect(),
            value: s.value.map(Secret::new),
            purge_on_delete: false,
        }
    }

    fn split_id(id: &str) -> Result<(String, String), Error> {
        let (vault, name) = id
            .rsplit_once("/secrets/")
            .ok_or_else(|| Error::invalid("id", "a secret id is `{vault url}/secrets/{name}`"))?;
        Ok((format!("{vault}/"), name.to_owned()))
    }

    async fn get(&self, vault_url: &str, name: &str) -> Result<Option<KeyVaultSecretOutputs>, Error> {
        match self.client(vault_url)?.get_secret(name, None).await {
            Ok(resp) => {
                let s = resp.into_model().map_err(|e| Error::from(AzureError::from_core(&e)))?;
                Ok(Some(Self::outputs(vault_url, name, s)))
            }
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(None),
            Err(e) => Err(AzureError::from_core(&e).into()),
        }
    }

    async fn set(&self, ctx: &Ctx, spec: &KeyVaultSecretSpec) -> Result<KeyVaultSecretOutputs, Error> {
        let vault = spec.vault_url.get("vault_url")?;
        let mut tags: HashMap<String, String> = spec.tags.clone().into_iter().collect();
        tags.extend(ctx.tags());
        let params = SetSecretParameters {
            value: Some(spec.value.get("value")?.clone()),
            content_type: spec.content_type.clone(),
            tags: Some(tags),
            secret_attributes: Some(SecretAttributes { enabled: Some(true), ..Default::default() }),
        };
        let body = params.try_into().map_err(|e: azure_core::Error| Error::from(AzureError::from_core(&e)))?;
        let resp = self.client(vault)?.set_secret(&spec.name, body, None).await.map_err(|e| {
            let err = Error::from(AzureError::from_core(&e));
            if err.to_string().contains("deleted but recoverable") {
                Error::Conflict(stackup_core::ApiErrorDetails {
                    code: err.code().map(str::to_owned),
                    message: format!(
                        "secret `{}` is deleted but recoverable in the vault; purge or recover it (az keyvault secret purge) before creating it again",
                        spec.name
                    ),
                    request_id: err.request_id().map(str::to_owned),
                    status: Some(409),
                })
            } else {
                err
            }
        })?;
        let s = resp.into_model().map_err(|e| Error::from(AzureError::from_core(&e)))?;
        Ok(KeyVaultSecretOutputs { purge_on_delete: spec.purge_on_delete, ..Self::outputs(vault, &spec.name, s) })
    }

    async fn purge(&self, vault_url: &str, name: &str) -> Result<(), Error> {
        let client = self.client(vault_url)?;
        lro::poll(&self.poll, &format!("purge of deleted secret {name}"), None, || {
            let client = client.clone();
            async move {
                match client.purge_deleted_secret(name, None).await {
                    Ok(_) => Ok(Step::Done(())),
                    // Deletion is still in progress.
                    Err(e) if e.http_status().map(u16::from) == Some(409) => Ok(Step::Pending(None)),
                    // Not in the bin yet (or already purged): try again shortly, then give up quietly.
                    Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(Step::Done(())),
                    Err(e) => Err(AzureError::from_core(&e).into()),
                }
            }
        })
        .await
    }
}

fn value_hash(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

#[async_trait]
impl Provisioner for KeyVaultSecrets {
    type Spec = KeyVaultSecretSpec;
    type Outputs = KeyVaultSecretOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "key_vault_secret")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        if spec.name.is_empty()
            || spec.name.len() > 127
            || !spec.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Error::invalid("name", "secret names are 1-127 letters, digits and '-'"));
        }
        crate::validate::known(&spec.vault_url, |u| {
            let url = url::Url::parse(u).map_err(|_| Error::invalid("vault_url", format!("`{u}` is not a URL")))?;
            if url.scheme() != "https" || url.host_str().is_none() {
                return Err(Error::invalid("vault_url", "the vault URL is https://{vault}.vault.azure.net/"));
            }
            Ok(())
        })?;
        crate::validate::known(&spec.value, |v| {
            if v.len() > 25 * 1024 {
                return Err(Error::invalid("value", "Key Vault secrets are at most 25 KiB"));
            }
            Ok(())
        })?;
        if spec.tags.len() > 12 {
            return Err(Error::invalid("tags", "Key Vault allows 15 tags (stackup uses 3 of them): at most 12"));
        }
        crate::validate::data_plane_tags("tags", &spec.tags)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        let (vault, name) = Self::split_id(id)?;
        let purge_on_delete = prior.is_some_and(|p| p.purge_on_delete);
        Ok(self.get(&vault, &name).await?.map(|o| KeyVaultSecretOutputs { purge_on_delete, ..o }))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let Some(vault) = spec.vault_url.known() else { return Ok(None) };
        let found = self.get(vault, &spec.name).await?.filter(|o| is_ours(ctx, &o.tags));
        Ok(found.map(|o| Created { id: o.id.clone(), outputs: o }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name, &observed.name);
        match &desired.vault_url {
            Input::Value(v) | Input::Sensitive(v) => {
                d.field_replace("vault_url", v.trim_end_matches('/'), observed.vault_url.trim_end_matches('/'));
            }
            other => {
                d.input_replace("vault_url", other, &observed.vault_url);
            }
        }
        let changed = match (desired.value.known(), &observed.value) {
            (Some(want), Some(have)) => value_hash(want) != value_hash(have.expose()),
            _ => true,
        };
        if changed {
            d.push(FieldChange {
                path: "value".into(),
                before: observed.value.as_ref().map(|_| json!({"$secret": ""})),
                after: desired.value.known().map(|_| json!({"$secret": ""})),
                unknown: desired.value.is_unknown(),
                forces_replacement: false,
                sensitive: true,
            });
        }
        d.field("content_type", &desired.content_type, &observed.content_type);
        d.field("purge_on_delete", &desired.purge_on_delete, &observed.purge_on_delete);
        let observed_tags: BTreeMap<String, String> = observed
            .tags
            .iter()
            .filter(|(k, _)| !crate::validate::MANAGED_TAGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        d.field("tags", &desired.tags, &observed_tags);
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let vault = spec.vault_url.get("vault_url")?;
        if let Some(existing) = self.get(vault, &spec.name).await?
            && !is_ours(ctx, &existing.tags)
        {
            return Err(not_ours("Key Vault secret", &existing.id).into());
        }
        let out = self.set(ctx, spec).await?;
        Ok(Created { id: out.id.clone(), outputs: out })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _id: &str,
        spec: &Self::Spec,
        observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error> {
        self.validate(spec)?;
        let value_changed = match (spec.value.known(), &observed.value) {
            (Some(want), Some(have)) => value_hash(want) != value_hash(have.expose()),
            _ => true,
        };
        if value_changed {
            return self.set(ctx, spec).await;
        }
        // Same value: change properties of the current version without adding one.
        let vault = spec.vault_url.get("vault_url")?;
        let mut tags: HashMap<String, String> = spec.tags.clone().into_iter().collect();
        tags.extend(ctx.tags());
        let params = UpdateSecretPropertiesParameters {
            content_type: spec.content_type.clone(),
            tags: Some(tags),
            secret_attributes: None,
        };
        let body = params.try_into().map_err(|e: azure_core::Error| Error::from(AzureError::from_core(&e)))?;
        let opts = azure_security_keyvault_secrets::models::SecretClientUpdateSecretPropertiesOptions {
            secret_version: Some(observed.version.clone()),
            ..Default::default()
        };
        self.client(vault)?
            .update_secret_properties(&spec.name, body, Some(opts))
            .await
            .map_err(|e| Error::from(AzureError::from_core(&e)))?;
        let current = self.get(vault, &spec.name).await?.unwrap_or_else(|| observed.clone());
        Ok(KeyVaultSecretOutputs { purge_on_delete: spec.purge_on_delete, ..current })
    }

    async fn delete(&self, _ctx: &Ctx, id: &str, observed: &Self::Outputs) -> Result<(), Error> {
        if observed.purge_on_delete {
            return self.delete_and_purge(id).await;
        }
        let (vault, name) = Self::split_id(id)?;
        match self.client(&vault)?.delete_secret(&name, None).await {
            Ok(_) => {}
            Err(e) if e.http_status().map(u16::from) == Some(404) => return Ok(()),
            Err(e) => return Err(AzureError::from_core(&e).into()),
        }
        Ok(())
    }
}

impl KeyVaultSecrets {
    /// Deletes a secret and purges it (for `purge_on_delete`, or to reuse a name at once).
    pub async fn delete_and_purge(&self, id: &str) -> Result<(), Error> {
        let (vault, name) = Self::split_id(id)?;
        match self.client(&vault)?.delete_secret(&name, None).await {
            Ok(_) => {}
            Err(e) if e.http_status().map(u16::from) == Some(404) => {}
            Err(e) => return Err(AzureError::from_core(&e).into()),
        }
        self.purge(&vault, &name).await
    }
}
