//! Which Azure cloud to talk to: the ARM endpoint, the Entra ID authority, the token audiences
//! and the DNS suffixes of storage and Key Vault, with presets for the public cloud, Azure China
//! and Azure US Government.
//!
//! Environment overrides (read by [`AzureCloud::from_env`]):
//! - `STACKUP_AZURE_ARM_ENDPOINT`: the ARM base URL (`https://`, or `http://` to loopback only).
//! - `AZURE_AUTHORITY_HOST`: the Entra ID authority (`https://login.microsoftonline.com`).
//! - `STACKUP_AZURE_CLOUD`: `public` (default), `china` or `usgov`.

use stackup_core::Error;
use stackup_core::http::{endpoint_from_env, validate_endpoint};
use url::Url;

/// Environment variable overriding the ARM endpoint.
pub const ENV_ARM_ENDPOINT: &str = "STACKUP_AZURE_ARM_ENDPOINT";
/// Environment variable overriding the Entra ID authority host (shared with the Azure SDKs).
pub const ENV_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// Environment variable selecting a cloud preset: `public`, `china` or `usgov`.
pub const ENV_CLOUD: &str = "STACKUP_AZURE_CLOUD";

/// One Azure cloud's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureCloud {
    /// Preset name (`public`, `china`, `usgov`, or `custom`).
    pub name: &'static str,
    /// ARM base URL, for example `https://management.azure.com`.
    pub arm_endpoint: Url,
    /// Entra ID authority host, for example `https://login.microsoftonline.com`.
    pub authority_host: Url,
    /// The token scope for ARM, for example `https://management.azure.com/.default`.
    pub arm_scope: String,
    /// DNS suffix of storage endpoints (`core.windows.net`).
    pub storage_suffix: String,
    /// DNS suffix of Key Vault (`vault.azure.net`).
    pub key_vault_suffix: String,
}

fn url(s: &str) -> Url {
    // The presets are constant, valid URLs.
    Url::parse(s).unwrap_or_else(|_| unreachable!("preset URL {s} is valid"))
}

impl AzureCloud {
    /// The global Azure cloud.
    pub fn public() -> Self {
        AzureCloud {
            name: "public",
            arm_endpoint: url("https://management.azure.com"),
            authority_host: url("https://login.microsoftonline.com"),
            arm_scope: "https://management.azure.com/.default".into(),
            storage_suffix: "core.windows.net".into(),
            key_vault_suffix: "vault.azure.net".into(),
        }
    }

    /// Azure operated by 21Vianet in China.
    pub fn china() -> Self {
        AzureCloud {
            name: "china",
            arm_endpoint: url("https://management.chinacloudapi.cn"),
            authority_host: url("https://login.chinacloudapi.cn"),
            arm_scope: "https://management.chinacloudapi.cn/.default".into(),
            storage_suffix: "core.chinacloudapi.cn".into(),
            key_vault_suffix: "vault.azure.cn".into(),
        }
    }

    /// Azure US Government.
    pub fn us_government() -> Self {
        AzureCloud {
            name: "usgov",
            arm_endpoint: url("https://management.usgovcloudapi.net"),
            authority_host: url("https://login.microsoftonline.us"),
            arm_scope: "https://management.usgovcloudapi.net/.default".into(),
            storage_suffix: "core.usgovcloudapi.net".into(),
            key_vault_suffix: "vault.usgovcloudapi.net".into(),
        }
    }

    /// A preset by name: `public` (or `azurecloud`), `china` (`azurechinacloud`), `usgov`
    /// (`azureusgovernment`).
    pub fn by_name(name: &str) -> Result<Self, Error> {
        match name.trim().to_ascii_lowercase().as_str() {
            "public" | "azurecloud" | "azurepubliccloud" => Ok(Self::public()),
            "china" | "azurechinacloud" => Ok(Self::china()),
            "usgov" | "usgovernment" | "azureusgovernment" => Ok(Self::us_government()),
            other => {
                Err(Error::invalid(ENV_CLOUD, format!("unknown Azure cloud `{other}`; use public, china or usgov")))
            }
        }
    }

    /// The preset named by `STACKUP_AZURE_CLOUD` (public when unset), with
    /// `STACKUP_AZURE_ARM_ENDPOINT` and `AZURE_AUTHORITY_HOST` applied on top.
    pub fn from_env() -> Result<Self, Error> {
        let mut cloud = match std::env::var(ENV_CLOUD) {
            Ok(v) if !v.trim().is_empty() => Self::by_name(&v)?,
            _ => Self::public(),
        };
        if let Some(arm) = endpoint_from_env(ENV_ARM_ENDPOINT)? {
            cloud.arm_endpoint = arm;
        }
        if let Ok(v) = std::env::var(ENV_AUTHORITY_HOST)
            && !v.trim().is_empty()
        {
            cloud = cloud.with_authority_host(v.trim())?;
        }
        Ok(cloud)
    }

    /// Overrides the ARM endpoint (validated: `https://`, or `http://` to loopback only). The
    /// token scope stays the cloud's ARM audience.
    pub fn with_arm_endpoint(mut self, endpoint: &str) -> Result<Self, Error> {
        self.arm_endpoint = validate_endpoint("arm_endpoint", endpoint)?;
        Ok(self)
    }

    /// Overrides the authority host. Entra ID is always `https://`.
    pub fn with_authority_host(mut self, host: &str) -> Result<Self, Error> {
        let u =
            Url::parse(host).map_err(|e| Error::invalid(ENV_AUTHORITY_HOST, format!("`{host}` is not a URL: {e}")))?;
        if u.scheme() != "https" {
            return Err(Error::invalid(ENV_AUTHORITY_HOST, "the authority host must use https://"));
        }
        self.authority_host = u;
        Ok(self)
    }

    /// The SDK's cloud configuration for credentials: a preset when the authority is a known
    /// one, a custom configuration otherwise.
    pub fn sdk_cloud(&self) -> azure_core::cloud::CloudConfiguration {
        use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
        let host = self.authority_host.as_str().trim_end_matches('/');
        match host {
            "https://login.microsoftonline.com" => CloudConfiguration::AzurePublic,
            "https://login.chinacloudapi.cn" => CloudConfiguration::AzureChina,
            "https://login.microsoftonline.us" => CloudConfiguration::AzureGovernment,
            _ => {
                let mut custom = CustomConfiguration::default();
                custom.authority_host = host.to_owned();
                custom.into()
            }
        }
    }

    /// The SMB host of an account's file service (`acct.file.core.windows.net`).
    pub fn file_host(&self, account: &str) -> String {
        format!("{account}.file.{}", self.storage_suffix)
    }
}

impl Default for AzureCloud {
    fn default() -> Self {
        Self::public()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_overrides() {
        assert_eq!(AzureCloud::by_name("China").unwrap().arm_endpoint.as_str(), "https://management.chinacloudapi.cn/");
        assert_eq!(AzureCloud::by_name("usgov").unwrap().authority_host.as_str(), "https://login.microsoftonline.us/");
        assert!(AzureCloud::by_name("mars").is_err());
        let c = AzureCloud::public().with_arm_endpoint("http://127.0.0.1:9999").unwrap();
        assert_eq!(c.arm_endpoint.as_str(), "http://127.0.0.1:9999/");
        let e = AzureCloud::public().with_arm_endpoint("http://arm.example.com").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(AzureCloud::public().with_authority_host("http://login.example").is_err());
        assert_eq!(AzureCloud::public().file_host("blossomdata12345"), "blossomdata12345.file.core.windows.net");
        assert!(matches!(AzureCloud::china().sdk_cloud(), azure_core::cloud::CloudConfiguration::AzureChina));
    }
}
