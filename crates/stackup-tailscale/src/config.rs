//! Building a [`TailscaleClient`]: credentials, tailnet, base URL, retries. Everything can be set
//! on the builder or read from the environment variables Tailscale's Terraform provider uses.
//!
//! | Variable | Meaning | Default |
//! |---|---|---|
//! | `TAILSCALE_API_KEY` | API access token (`tskey-api-…`), sent as a Bearer token | none |
//! | `TAILSCALE_OAUTH_CLIENT_ID` | OAuth client id (use with the secret instead of an API key) | none |
//! | `TAILSCALE_OAUTH_CLIENT_SECRET` | OAuth client secret (`tskey-client-…`) | none |
//! | `TAILSCALE_OAUTH_SCOPES` | scopes to request, separated by commas or spaces | the client's own scopes |
//! | `TAILSCALE_TAILNET` | tailnet id, or `-` for the credential's default tailnet | `-` |
//! | `TAILSCALE_BASE_URL` | API host; `/api/v2` is appended | `https://api.tailscale.com` |

use std::sync::Arc;
use std::time::Duration;

use stackup_core::http::{Authorizer, HttpClient, HttpClientConfig, NoAuth, validate_endpoint};
use stackup_core::retry::RetryPolicy;
use stackup_core::{Error, Secret};
use url::Url;

use crate::auth::{ApiKeyAuth, MissingCredentials, OAuthAuth};
use crate::client::TailscaleClient;
use crate::error::parse_error;

/// API access token.
pub const ENV_API_KEY: &str = "TAILSCALE_API_KEY";
/// OAuth client id.
pub const ENV_OAUTH_CLIENT_ID: &str = "TAILSCALE_OAUTH_CLIENT_ID";
/// OAuth client secret.
pub const ENV_OAUTH_CLIENT_SECRET: &str = "TAILSCALE_OAUTH_CLIENT_SECRET";
/// OAuth scopes, comma or space separated.
pub const ENV_OAUTH_SCOPES: &str = "TAILSCALE_OAUTH_SCOPES";
/// Tailnet id, or `-`.
pub const ENV_TAILNET: &str = "TAILSCALE_TAILNET";
/// API base URL (host; `/api/v2` is appended).
pub const ENV_BASE_URL: &str = "TAILSCALE_BASE_URL";
/// The public API host.
pub const DEFAULT_BASE_URL: &str = "https://api.tailscale.com";
/// The credential's default tailnet.
pub const DEFAULT_TAILNET: &str = "-";

pub(crate) const MISSING_CREDENTIALS: &str = "no Tailscale credentials: set TAILSCALE_API_KEY, or \
     TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET";

/// How the client authenticates.
#[derive(Clone)]
pub enum Credentials {
    /// An API access token (`tskey-api-…`).
    ApiKey(Secret),
    /// An OAuth client (`tskey-client-…`), exchanged for 1-hour access tokens.
    OAuth {
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: Secret,
        /// Scopes to request; empty asks for all of the client's scopes.
        scopes: Vec<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ApiKey(_) => f.write_str("ApiKey((sensitive))"),
            Credentials::OAuth { client_id, scopes, .. } => f
                .debug_struct("OAuth")
                .field("client_id", client_id)
                .field("client_secret", &"(sensitive)")
                .field("scopes", scopes)
                .finish(),
        }
    }
}

/// Where environment variables are read from.
pub type EnvSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds a [`TailscaleClient`]. Values set here win over the environment.
#[derive(Clone)]
pub struct TailscaleClientBuilder {
    credentials: Option<Credentials>,
    /// OAuth scopes set on the builder: they apply to the OAuth client wherever it comes from
    /// (the builder or the environment), and win over `TAILSCALE_OAUTH_SCOPES`.
    scopes: Option<Vec<String>>,
    tailnet: Option<String>,
    base_url: Option<String>,
    retry: RetryPolicy,
    timeout: Duration,
    token_refresh_margin: Duration,
    env: Option<EnvSource>,
}

impl std::fmt::Debug for TailscaleClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailscaleClientBuilder")
            .field("credentials", &self.credentials)
            .field("tailnet", &self.tailnet)
            .field("base_url", &self.base_url)
            .field("reads_env", &self.env.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for TailscaleClientBuilder {
    fn default() -> Self {
        TailscaleClientBuilder {
            credentials: None,
            scopes: None,
            tailnet: None,
            base_url: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            token_refresh_margin: Duration::from_secs(300),
            env: None,
        }
    }
}

impl TailscaleClientBuilder {
    /// A builder that reads nothing from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills whatever is not set explicitly from the `TAILSCALE_*` environment variables.
    pub fn from_env(self) -> Self {
        self.from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`TailscaleClientBuilder::from_env`], reading the variables through `lookup` (a
    /// config file, a secrets manager, tests).
    pub fn from_env_with(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Some(Arc::new(lookup));
        self
    }

    /// Authenticates with an API access token.
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.credentials = Some(Credentials::ApiKey(key.into()));
        self
    }

    /// Authenticates with an OAuth client.
    pub fn oauth_client(mut self, client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        self.credentials = Some(Credentials::OAuth {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: vec![],
        });
        self
    }

    /// Scopes to request with the OAuth client (`auth_keys`, `devices:core`, `policy_file`, `dns`),
    /// whether the client is set on the builder (before or after this call) or read from the
    /// environment; they win over `TAILSCALE_OAUTH_SCOPES`. Ignored with an API key.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The tailnet (`-` for the credential's default, or a tailnet id such as `T1234CNTRL`).
    pub fn tailnet(mut self, tailnet: impl Into<String>) -> Self {
        self.tailnet = Some(tailnet.into());
        self
    }

    /// The API host (`https://api.tailscale.com`); `http://` only to loopback (tests).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The retry policy for 429 and 5xx answers and transport failures.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Per-attempt HTTP timeout (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long before expiry an OAuth access token is refreshed (default 5 minutes).
    pub fn token_refresh_margin(mut self, margin: Duration) -> Self {
        self.token_refresh_margin = margin;
        self
    }

    fn env(&self, name: &str) -> Option<String> {
        let lookup = self.env.as_ref()?;
        lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn resolve_credentials(&self) -> Result<Option<Credentials>, Error> {
        let mut credentials = self.credentials_from_builder_or_env()?;
        if let (Some(Credentials::OAuth { scopes, .. }), Some(set)) = (&mut credentials, &self.scopes) {
            scopes.clone_from(set);
        }
        Ok(credentials)
    }

    fn credentials_from_builder_or_env(&self) -> Result<Option<Credentials>, Error> {
        if let Some(c) = &self.credentials {
            return Ok(Some(c.clone()));
        }
        let key = self.env(ENV_API_KEY);
        let id = self.env(ENV_OAUTH_CLIENT_ID);
        let secret = self.env(ENV_OAUTH_CLIENT_SECRET);
        match (key, id, secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(Error::Config(format!(
                "both {ENV_API_KEY} and {ENV_OAUTH_CLIENT_ID}/{ENV_OAUTH_CLIENT_SECRET} are set; set only one"
            ))),
            (Some(k), None, None) => Ok(Some(Credentials::ApiKey(Secret::new(k)))),
            (None, Some(id), Some(secret)) => {
                let scopes = self
                    .env(ENV_OAUTH_SCOPES)
                    .map(|s| s.split([',', ' ']).filter(|x| !x.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default();
                Ok(Some(Credentials::OAuth { client_id: id, client_secret: Secret::new(secret), scopes }))
            }
            (None, Some(_), None) => {
                Err(Error::Config(format!("{ENV_OAUTH_CLIENT_ID} is set but {ENV_OAUTH_CLIENT_SECRET} is not")))
            }
            (None, None, Some(_)) => {
                Err(Error::Config(format!("{ENV_OAUTH_CLIENT_SECRET} is set but {ENV_OAUTH_CLIENT_ID} is not")))
            }
            (None, None, None) => Ok(None),
        }
    }

    fn resolve_base(&self) -> Result<Url, Error> {
        let (name, raw) = match (&self.base_url, self.env(ENV_BASE_URL)) {
            (Some(u), _) => ("base_url", u.clone()),
            (None, Some(u)) => (ENV_BASE_URL, u),
            (None, None) => ("base_url", DEFAULT_BASE_URL.to_owned()),
        };
        validate_endpoint(name, &raw)
    }

    fn resolve_tailnet(&self) -> Result<String, Error> {
        let t = self.tailnet.clone().or_else(|| self.env(ENV_TAILNET)).unwrap_or_else(|| DEFAULT_TAILNET.to_owned());
        if t.is_empty() || t.contains(['/', '?', '#']) || t.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "tailnet",
                format!("`{t}` is not a tailnet id (use `-` or an id like T1234CNTRL)"),
            ));
        }
        Ok(t)
    }

    fn http_config(&self) -> HttpClientConfig {
        let mut cfg = HttpClientConfig::new("tailscale");
        cfg.retry = self.retry.clone();
        cfg.timeout = self.timeout;
        cfg.error_parser = Arc::new(parse_error);
        cfg.request_id_headers = vec!["x-request-id"];
        cfg
    }

    /// Builds the client; fails with [`Error::Config`] when no credentials are configured.
    pub fn build(self) -> Result<TailscaleClient, Error> {
        if self.resolve_credentials()?.is_none() {
            return Err(Error::Config(MISSING_CREDENTIALS.into()));
        }
        self.build_inner()
    }

    /// Builds the client even without credentials: every API call then fails with a clear
    /// [`Error::Config`]. For planning offline (a new stack needs no reads).
    pub fn build_offline_ok(self) -> Result<TailscaleClient, Error> {
        self.build_inner()
    }

    fn build_inner(self) -> Result<TailscaleClient, Error> {
        let credentials = self.resolve_credentials()?;
        let base = self.resolve_base()?;
        let tailnet = self.resolve_tailnet()?;
        let api_root = crate::client::join(&base, &["api", "v2"]);
        let mut oauth = None;
        let auth: Arc<dyn Authorizer> = match &credentials {
            None => Arc::new(MissingCredentials),
            Some(Credentials::ApiKey(k)) => Arc::new(ApiKeyAuth::new(k.clone())),
            Some(Credentials::OAuth { client_id, client_secret, scopes }) => {
                let token_http = HttpClient::new(self.http_config(), Arc::new(NoAuth))?;
                let a = OAuthAuth::new(
                    client_id.clone(),
                    client_secret.clone(),
                    scopes.clone(),
                    crate::client::join(&api_root, &["oauth", "token"]),
                    token_http,
                    self.token_refresh_margin,
                );
                oauth = Some(a.clone());
                a
            }
        };
        // One connection pool; retries are applied per request by the client (creates are
        // retried more narrowly than reads), so the HTTP layer itself makes single attempts.
        let mut single = self.http_config();
        single.retry = RetryPolicy::none();
        let http = HttpClient::new(single, auth)?;
        Ok(TailscaleClient::from_parts(crate::client::Parts {
            http,
            api_root,
            tailnet,
            oauth,
            has_credentials: credentials.is_some(),
            retry: self.retry,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_settings_and_validation() {
        let c = TailscaleClientBuilder::new().api_key("tskey-api-x").tailnet("T1234CNTRL").build().unwrap();
        assert_eq!(c.tailnet(), "T1234CNTRL");
        assert!(c.has_credentials() && !c.uses_oauth());
        assert_eq!(c.api_root().as_str(), "https://api.tailscale.com/api/v2");
        let err = TailscaleClientBuilder::new().api_key("k").base_url("http://10.0.0.1").build().unwrap_err();
        assert!(err.to_string().contains("loopback"));
        let err = TailscaleClientBuilder::new().api_key("k").tailnet("a/b").build().unwrap_err();
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "tailnet"));
        let err = TailscaleClientBuilder::new().build().unwrap_err();
        assert!(err.to_string().contains("TAILSCALE_API_KEY"));
        let offline = TailscaleClientBuilder::new().build_offline_ok().unwrap();
        assert!(!offline.has_credentials());
        let o =
            TailscaleClientBuilder::new().oauth_client("id", "tskey-client-s").scopes(["auth_keys"]).build().unwrap();
        assert!(o.uses_oauth());
        assert!(!format!("{:?}", Credentials::ApiKey("tskey-api-secret".into())).contains("secret\""));
        let dbg = format!("{:?}", TailscaleClientBuilder::new().oauth_client("id", "tskey-client-SECRET"));
        assert!(!dbg.contains("SECRET"), "{dbg}");
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + Send + Sync {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn reads_the_terraform_variable_names() {
        let c = TailscaleClientBuilder::new()
            .from_env_with(env(&[
                ("TAILSCALE_OAUTH_CLIENT_ID", "cid"),
                ("TAILSCALE_OAUTH_CLIENT_SECRET", "tskey-client-s"),
                ("TAILSCALE_OAUTH_SCOPES", "auth_keys, devices:core"),
                ("TAILSCALE_TAILNET", "T99CNTRL"),
                ("TAILSCALE_BASE_URL", "http://127.0.0.1:4000"),
            ]))
            .build()
            .unwrap();
        assert!(c.uses_oauth());
        assert_eq!(c.tailnet(), "T99CNTRL");
        assert_eq!(c.api_root().as_str(), "http://127.0.0.1:4000/api/v2");
        // Explicit settings win over the environment.
        let c = TailscaleClientBuilder::new()
            .tailnet("-")
            .from_env_with(env(&[("TAILSCALE_API_KEY", "tskey-api-k"), ("TAILSCALE_TAILNET", "T99CNTRL")]))
            .build()
            .unwrap();
        assert_eq!(c.tailnet(), "-");
        assert!(!c.uses_oauth());
        let err = TailscaleClientBuilder::new()
            .from_env_with(env(&[("TAILSCALE_API_KEY", "k"), ("TAILSCALE_OAUTH_CLIENT_ID", "i")]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("set only one"), "{err}");
        let err = TailscaleClientBuilder::new()
            .from_env_with(env(&[("TAILSCALE_OAUTH_CLIENT_ID", "i")]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("TAILSCALE_OAUTH_CLIENT_SECRET is not"), "{err}");
        let err = TailscaleClientBuilder::new()
            .from_env_with(env(&[("TAILSCALE_API_KEY", "k"), ("TAILSCALE_BASE_URL", "http://example.com")]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("TAILSCALE_BASE_URL"), "{err}");
    }

    #[test]
    fn builder_scopes_apply_however_the_oauth_client_is_given() {
        let scopes_of = |b: TailscaleClientBuilder| format!("{:?}", b.build().unwrap().oauth().unwrap());
        // The OAuth client from the environment, the scopes from the builder.
        let b = TailscaleClientBuilder::new()
            .from_env_with(env(&[
                ("TAILSCALE_OAUTH_CLIENT_ID", "cid"),
                ("TAILSCALE_OAUTH_CLIENT_SECRET", "tskey-client-s"),
                ("TAILSCALE_OAUTH_SCOPES", "all"),
            ]))
            .scopes(["auth_keys", "dns"]);
        assert!(scopes_of(b).contains(r#"scopes: ["auth_keys", "dns"]"#));
        // Scopes set before the client.
        let b = TailscaleClientBuilder::new().scopes(["dns"]).oauth_client("id", "tskey-client-s");
        assert!(scopes_of(b).contains(r#"scopes: ["dns"]"#));
        // The environment's scopes when the builder sets none.
        let b = TailscaleClientBuilder::new().from_env_with(env(&[
            ("TAILSCALE_OAUTH_CLIENT_ID", "cid"),
            ("TAILSCALE_OAUTH_CLIENT_SECRET", "tskey-client-s"),
            ("TAILSCALE_OAUTH_SCOPES", "auth_keys devices:core"),
        ]));
        assert!(scopes_of(b).contains(r#"scopes: ["auth_keys", "devices:core"]"#));
    }

    #[test]
    fn base_url_keeps_a_path_prefix() {
        let c = TailscaleClientBuilder::new().api_key("k").base_url("http://127.0.0.1:9/proxy/").build().unwrap();
        assert_eq!(c.api_root().as_str(), "http://127.0.0.1:9/proxy/api/v2");
    }
}
