//! The `rclone.conf` section of the seed's cron job, for users who keep rclone.

use crate::config::{Jurisdiction, R2Config};

/// Whether the section carries the real secret access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretInConfig {
    /// Write `<R2_SECRET_ACCESS_KEY>` in its place (safe to print).
    Placeholder,
    /// Write the real secret (only into a file readable by its owner).
    Include,
}

/// The section:
///
/// ```ini
/// [r2]
/// type = s3
/// provider = Cloudflare
/// access_key_id = …
/// secret_access_key = …
/// endpoint = https://<account>.r2.cloudflarestorage.com
/// acl = private
/// ```
///
/// With an endpoint override (a local S3 server) it says `provider = Other` and adds
/// `force_path_style = true`.
pub fn rclone_section(remote: &str, config: &R2Config, jurisdiction: Jurisdiction, secret: SecretInConfig) -> String {
    let endpoint =
        config.s3_endpoint(jurisdiction).unwrap_or_else(|_| "https://<R2_ACCOUNT_ID>.r2.cloudflarestorage.com".into());
    let secret_value = match secret {
        SecretInConfig::Placeholder => "<R2_SECRET_ACCESS_KEY>",
        SecretInConfig::Include => config.secret_access_key.expose(),
    };
    let mut s = format!("[{remote}]\ntype = s3\n");
    if config.endpoint.is_some() {
        s.push_str("provider = Other\n");
    } else {
        s.push_str("provider = Cloudflare\n");
    }
    s.push_str(&format!("access_key_id = {}\n", config.access_key_id()));
    s.push_str(&format!("secret_access_key = {secret_value}\n"));
    s.push_str(&format!("endpoint = {endpoint}\n"));
    if config.endpoint.is_some() {
        s.push_str(&format!("region = {}\nforce_path_style = true\n", config.region()));
    }
    s.push_str("acl = private\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_section_without_leaking_the_secret() {
        let c = R2Config::new("0123456789abcdef0123456789abcdef", "AKID", "s3cr3t").unwrap();
        let s = rclone_section("r2", &c, Jurisdiction::Default, SecretInConfig::Placeholder);
        assert_eq!(
            s,
            "[r2]\ntype = s3\nprovider = Cloudflare\naccess_key_id = AKID\nsecret_access_key = <R2_SECRET_ACCESS_KEY>\n\
             endpoint = https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com\nacl = private\n"
        );
        assert!(rclone_section("r2", &c, Jurisdiction::Default, SecretInConfig::Include).contains("= s3cr3t\n"));
    }
}
