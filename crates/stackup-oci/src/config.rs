//! `~/.oci/config`: the INI file the OCI CLI and SDKs share.
//!
//! Semantics follow the CLI (Python `configparser`): every profile inherits the keys of
//! `[DEFAULT]`, `#` and `;` start comments, `key = value` or `key: value`, and `~` in paths is
//! expanded. The file comes from `OCI_CONFIG_FILE` (default `~/.oci/config`) and the profile from
//! `OCI_CLI_PROFILE` (default `DEFAULT`) unless the builder names them. Errors name the file, the
//! profile and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stackup_core::Secret;

use crate::error::OciError;
use crate::key::{ApiKey, is_fingerprint};
use crate::signer::KeyId;

/// Environment variable naming the config file.
pub const ENV_CONFIG_FILE: &str = "OCI_CONFIG_FILE";
/// Environment variable naming the profile.
pub const ENV_PROFILE: &str = "OCI_CLI_PROFILE";
/// The default profile.
pub const DEFAULT_PROFILE: &str = "DEFAULT";

/// One profile of an OCI config file, with `[DEFAULT]` inherited and paths expanded.
#[derive(Debug, Clone)]
pub struct OciConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// The profile.
    pub profile: String,
    /// User OCID (API-key auth).
    pub user: Option<String>,
    /// Key fingerprint (`xx:xx:…`).
    pub fingerprint: Option<String>,
    /// Private key path.
    pub key_file: Option<PathBuf>,
    /// Tenancy OCID.
    pub tenancy: String,
    /// Region (`us-ashburn-1`).
    pub region: Option<String>,
    /// Passphrase of an encrypted `key_file` (`pass_phrase`, or `passphrase` as the Go SDK reads).
    pub pass_phrase: Option<Secret>,
    /// Session token file (`oci session authenticate`).
    pub security_token_file: Option<PathBuf>,
}

/// A key and the identity it signs for, ready for the signer.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The private key.
    pub key: ApiKey,
    /// The `keyId` source.
    pub key_id: KeyId,
    /// Tenancy OCID.
    pub tenancy: String,
    /// Region, if known.
    pub region: Option<String>,
}

/// Expands a leading `~` to `$HOME`.
pub fn expand_tilde(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/").or_else(|| if p == "~" { Some("") } else { None })
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    PathBuf::from(p)
}

/// The config file to read: `OCI_CONFIG_FILE`, else `~/.oci/config`.
pub fn default_config_path() -> PathBuf {
    match std::env::var(ENV_CONFIG_FILE) {
        Ok(v) if !v.trim().is_empty() => expand_tilde(v.trim()),
        _ => expand_tilde("~/.oci/config"),
    }
}

/// The profile to use: `OCI_CLI_PROFILE`, else `DEFAULT`.
pub fn default_profile() -> String {
    match std::env::var(ENV_PROFILE) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => DEFAULT_PROFILE.to_owned(),
    }
}

/// Parses INI text into sections of key/value pairs (keys lowercased, as configparser does).
fn parse_ini(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, (usize, String)> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or((i + 1, format!("unterminated section header `{line}`")))?;
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        // The offending text is not echoed: a line without `=` is as likely a pasted key or pass
        // phrase as a typo, and errors end up in logs.
        let pos = line.find(['=', ':']).ok_or((
            i + 1,
            "expected `key = value` (multi-line values such as a pasted PEM key are not supported: point \
             key_file at the key instead)"
                .to_owned(),
        ))?;
        let (k, v) = (line[..pos].trim().to_ascii_lowercase(), line[pos + 1..].trim().to_owned());
        if k.is_empty() {
            return Err((i + 1, "empty key".to_owned()));
        }
        let section = current.clone().ok_or((i + 1, format!("`{k}` appears before any [section] header")))?;
        sections.entry(section).or_default().insert(k, v);
    }
    Ok(sections)
}

impl OciConfig {
    /// Reads `profile` (default: `OCI_CLI_PROFILE` or `DEFAULT`) from `path` (default:
    /// `OCI_CONFIG_FILE` or `~/.oci/config`).
    pub fn load(path: Option<&Path>, profile: Option<&str>) -> Result<Self, OciError> {
        let file = path.map(|p| expand_tilde(&p.to_string_lossy())).unwrap_or_else(default_config_path);
        let profile = profile.map(str::to_owned).unwrap_or_else(default_profile);
        let text = std::fs::read_to_string(&file).map_err(|e| OciError::Config {
            file: file.clone(),
            profile: profile.clone(),
            message: format!("cannot read the file: {e} (create it with `oci setup config`, or set {ENV_CONFIG_FILE})"),
        })?;
        Self::parse(&text, &file, &profile)
    }

    /// Parses config text; `file` is used in errors only.
    pub fn parse(text: &str, file: &Path, profile: &str) -> Result<Self, OciError> {
        let err = |message: String| OciError::Config { file: file.to_owned(), profile: profile.to_owned(), message };
        let sections = parse_ini(text).map_err(|(line, m)| err(format!("line {line}: {m}")))?;
        let mut values = sections.get(DEFAULT_PROFILE).cloned().unwrap_or_default();
        match sections.get(profile) {
            Some(s) => values.extend(s.clone()),
            None if profile == DEFAULT_PROFILE && !values.is_empty() => {}
            None => {
                let names: Vec<&str> = sections.keys().map(String::as_str).collect();
                return Err(err(format!("profile not found; the file has [{}]", names.join("], ["))));
            }
        }
        let get = |k: &str| values.get(k).filter(|v| !v.is_empty()).cloned();
        if values.contains_key("key_content") {
            return Err(err("key `key_content` is not allowed in a config file; use key_file".into()));
        }
        let tenancy = get("tenancy").ok_or_else(|| err("key `tenancy` is missing".into()))?;
        if !tenancy.starts_with("ocid1.tenancy.") {
            return Err(err(format!("key `tenancy`: `{tenancy}` is not a tenancy OCID (ocid1.tenancy.…)")));
        }
        let fingerprint = get("fingerprint");
        if let Some(fp) = &fingerprint
            && !is_fingerprint(fp)
        {
            return Err(err(format!(
                "key `fingerprint`: `{fp}` is not 16 lowercase hex bytes separated by colons (xx:xx:…:xx)"
            )));
        }
        let security_token_file = get("security_token_file").map(|p| expand_tilde(&p));
        let user = get("user");
        if security_token_file.is_none() {
            if user.is_none() {
                return Err(err("key `user` is missing (needed for API-key auth without security_token_file)".into()));
            }
            if fingerprint.is_none() {
                return Err(err("key `fingerprint` is missing".into()));
            }
        }
        let key_file = get("key_file").map(|p| expand_tilde(&p));
        if key_file.is_none() {
            return Err(err("key `key_file` is missing".into()));
        }
        Ok(OciConfig {
            file: file.to_owned(),
            profile: profile.to_owned(),
            user,
            fingerprint,
            key_file,
            tenancy,
            region: get("region"),
            pass_phrase: get("pass_phrase").or_else(|| get("passphrase")).map(Secret::new),
            security_token_file,
        })
    }

    /// Loads the key, checks its fingerprint against the configured one, and returns the
    /// credentials.
    pub fn credentials(&self) -> Result<Credentials, OciError> {
        let err =
            |message: String| OciError::Config { file: self.file.clone(), profile: self.profile.clone(), message };
        let key_path = self.key_file.clone().ok_or_else(|| err("key `key_file` is missing".into()))?;
        let pem = std::fs::read_to_string(&key_path)
            .map_err(|e| err(format!("key `key_file`: cannot read {}: {e}", key_path.display())))?;
        let key = ApiKey::from_pem_with_passphrase(&pem, &key_path.display().to_string(), self.pass_phrase.as_ref())?;
        let key_id = match &self.security_token_file {
            Some(p) => KeyId::SecurityTokenFile(p.clone()),
            None => {
                let configured = self.fingerprint.clone().ok_or_else(|| err("key `fingerprint` is missing".into()))?;
                if configured != key.fingerprint() {
                    return Err(OciError::FingerprintMismatch { configured, actual: key.fingerprint().to_owned() });
                }
                KeyId::ApiKey {
                    tenancy: self.tenancy.clone(),
                    user: self.user.clone().ok_or_else(|| err("key `user` is missing".into()))?,
                    fingerprint: configured,
                }
            }
        };
        Ok(Credentials { key, key_id, tenancy: self.tenancy.clone(), region: self.region.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TEST_KEY_FINGERPRINT, TEST_KEY_PKCS1, TEST_TENANCY, TEST_USER};

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn profiles_inherit_default_and_expand_paths() {
        let text = format!(
            "# comment\n[DEFAULT]\nuser={TEST_USER}\nfingerprint = {TEST_KEY_FINGERPRINT}\nkey_file=~/.oci/key.pem\n\
             tenancy={TEST_TENANCY}\nregion=us-ashburn-1\n\n[PHX]\nregion: us-phoenix-1\n; other\n"
        );
        let c = OciConfig::parse(&text, Path::new("/cfg"), "PHX").unwrap();
        assert_eq!(c.region.as_deref(), Some("us-phoenix-1"));
        assert_eq!(c.user.as_deref(), Some(TEST_USER));
        let home = std::env::var("HOME").unwrap();
        assert_eq!(c.key_file.unwrap(), PathBuf::from(home).join(".oci/key.pem"));
        let d = OciConfig::parse(&text, Path::new("/cfg"), "DEFAULT").unwrap();
        assert_eq!(d.region.as_deref(), Some("us-ashburn-1"));
    }

    #[test]
    fn bad_files_name_file_profile_and_key() {
        let base = format!("[DEFAULT]\nuser={TEST_USER}\nkey_file=/k\ntenancy={TEST_TENANCY}\n");
        let cases: Vec<(String, &str, &str)> = vec![
            (format!("{base}fingerprint=AA:BB"), "DEFAULT", "`fingerprint`"),
            (base.clone(), "DEFAULT", "`fingerprint` is missing"),
            (format!("{base}fingerprint={TEST_KEY_FINGERPRINT}"), "NOPE", "profile not found; the file has [DEFAULT]"),
            ("[DEFAULT]\nuser=u\n".into(), "DEFAULT", "`tenancy` is missing"),
            ("[DEFAULT]\ntenancy=ocid1.user.x\n".into(), "DEFAULT", "not a tenancy OCID"),
            ("user=x\n".into(), "DEFAULT", "line 1"),
            ("[DEFAULT\n".into(), "DEFAULT", "unterminated"),
            (format!("{base}fingerprint={TEST_KEY_FINGERPRINT}\nkey_content=abc"), "DEFAULT", "key_content"),
            (
                format!("[DEFAULT]\ntenancy={TEST_TENANCY}\nfingerprint={TEST_KEY_FINGERPRINT}\nkey_file=/k"),
                "DEFAULT",
                "`user`",
            ),
        ];
        for (text, profile, want) in cases {
            let e = OciConfig::parse(&text, Path::new("/home/me/.oci/config"), profile).unwrap_err().to_string();
            assert!(e.contains("/home/me/.oci/config") && e.contains(profile) && e.contains(want), "{e}");
        }
        let e = OciConfig::load(Some(Path::new("/nonexistent/config")), Some("X")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/config") && e.contains("[X]") && e.contains("cannot read"), "{e}");
    }

    #[test]
    fn a_malformed_line_is_reported_without_its_contents() {
        // A PEM key pasted into the profile: the error gives the line, never the key material.
        let text = format!(
            "[DEFAULT]\nuser={TEST_USER}\ntenancy={TEST_TENANCY}\nkey_content=-----BEGIN RSA PRIVATE KEY-----\n\
             MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj\n"
        );
        let e = OciConfig::parse(&text, Path::new("/c"), "DEFAULT").unwrap_err().to_string();
        assert!(e.contains("line 5") && e.contains("key = value"), "{e}");
        assert!(!e.contains("MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj"), "{e}");
    }

    #[test]
    fn credentials_check_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let key = write(dir.path(), "key.pem", TEST_KEY_PKCS1);
        let ok = format!(
            "[DEFAULT]\nuser={TEST_USER}\nfingerprint={TEST_KEY_FINGERPRINT}\nkey_file={}\ntenancy={TEST_TENANCY}\n",
            key.display()
        );
        let cfg = write(dir.path(), "config", &ok);
        let c = OciConfig::load(Some(&cfg), Some("DEFAULT")).unwrap().credentials().unwrap();
        assert_eq!(c.key.fingerprint(), TEST_KEY_FINGERPRINT);
        let wrong = ok.replace(TEST_KEY_FINGERPRINT, "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34");
        let e = OciConfig::parse(&wrong, &cfg, "DEFAULT").unwrap().credentials().unwrap_err().to_string();
        assert!(e.contains("401") && e.contains(TEST_KEY_FINGERPRINT) && e.contains("20:3b:97"), "{e}");
        let missing = ok.replace(&key.display().to_string(), "/nope/key.pem");
        let e = OciConfig::parse(&missing, &cfg, "DEFAULT").unwrap().credentials().unwrap_err().to_string();
        assert!(e.contains("key_file") && e.contains("/nope/key.pem"), "{e}");
    }

    #[test]
    fn encrypted_keys_use_the_profile_pass_phrase() {
        let dir = tempfile::tempdir().unwrap();
        let key = write(dir.path(), "enc.pem", ENC_KEY);
        let base = format!(
            "[DEFAULT]\nuser={TEST_USER}\nfingerprint={TEST_KEY_FINGERPRINT}\nkey_file={}\ntenancy={TEST_TENANCY}\n",
            key.display()
        );
        let with = format!("{base}pass_phrase=hunter2\n");
        let c = OciConfig::parse(&with, Path::new("/c"), "DEFAULT").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.credentials().unwrap().key.fingerprint(), TEST_KEY_FINGERPRINT);
        let e = OciConfig::parse(&base, Path::new("/c"), "DEFAULT").unwrap().credentials().unwrap_err().to_string();
        assert!(e.contains("pass_phrase") && e.contains("enc.pem"), "{e}");
    }

    const ENC_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-256-CBC,C545AD483D9BC6F9FF4A4B00CE180C2B

6yWwObWY1/UrTMAhwhvajhxVfstMI4Djl7fFZdlZFz8Icjgq2ud7BZ6x501nMmIf
VG99SudChuQjAzyFsRYR297hGHgkAv1jL8EWo3HafzZDHZh1k9V92/FWJuVGdgDJ
eQI/AhZ+uMCz6sPjwtK/rj289ls+Uu7mcBC6jJj51P4U+pxWx8vFYTeMWs0WupuF
YUCWmSG1ho/rHBGiFFKlyOD77PUusJdd1LEp9/XbWuz1VJPR5vNvQ0RHkAz3vLcM
lTimAcRjVwRkhK8X80gaoxamOD9D7idRq6UlgNqoZvP8ptd5gVbl2LqDBb6LU34z
JPGGFGJUE3hQioRfVv+zER8u2ez8uInB9h/wiAsv0fUzhST3CPPZ75ZGHXqz13ou
MbgOr0YXxVK4gNdIEbdQmohNQludyHYBqawudK6AwBRduE2TbdO9mEuEhNaYPVbX
cj2w14u8Wm6lnISIK0HM0QMA7eFGnbGyBKQWdNDi7VpY7kLpQ8ZqWQcws6jW46Ke
oM+FmghuOjlhEqPwprZl1WH6ihd+RmPGE5f/Jk+lRYEMM4LjSQszQkRINgXdLwCv
ohXs90eJk65puW4fBwYivDAZj7YxCAHkw9lwhguuqJwUwzJfVXksOzjh6gOvlVN2
C0qCZ8VhZgMxnqytWRsmotsF4UAjixM6yr5CoNWh7vm6FD3xmvqr1okzNLqkEwsf
aReM2iUYkwoctW+U4kAUKWRVi4EwcJWc/YKAVskvQpvtbL7kycGnRGcl8011pJLm
v7U8lYl0royzj8ktignUtrocuAoPlPop/LGobCs788M5KBOVrPi5bwkfCuK/YF1L
-----END RSA PRIVATE KEY-----";

    #[test]
    fn security_token_profiles_need_no_user() {
        let dir = tempfile::tempdir().unwrap();
        let key = write(dir.path(), "key.pem", TEST_KEY_PKCS1);
        let tok = write(dir.path(), "token", "eyJ.tok");
        let text = format!(
            "[DEFAULT]\nregion=eu-frankfurt-1\n[SESSION]\nfingerprint={TEST_KEY_FINGERPRINT}\nkey_file={}\n\
             tenancy={TEST_TENANCY}\nsecurity_token_file={}\n",
            key.display(),
            tok.display()
        );
        let c = OciConfig::parse(&text, Path::new("/c"), "SESSION").unwrap().credentials().unwrap();
        assert_eq!(c.key_id.resolve().unwrap().expose(), "ST$eyJ.tok");
        assert_eq!(c.region.as_deref(), Some("eu-frankfurt-1"));
    }
}
