//! API signing keys: PEM parsing (PKCS#1 `RSA PRIVATE KEY` and PKCS#8 `PRIVATE KEY`), clear
//! refusal of encrypted keys, and the OCI key fingerprint (MD5 of the public key's DER
//! SubjectPublicKeyInfo, lowercase hex, colon-separated).

use std::fmt;

use base64::Engine as _;
use md5::Digest as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};

use crate::error::OciError;

/// An RSA private key used to sign OCI requests. `Debug` never shows the key material.
#[derive(Clone)]
pub struct ApiKey {
    key: rsa::PrivateKey,
    fingerprint: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl ApiKey {
    /// Parses a PEM private key. `source_name` (a path, or "inline key") is used in errors.
    /// Encrypted keys (`ENCRYPTED PRIVATE KEY`, or PKCS#1 with `Proc-Type: 4,ENCRYPTED`) are
    /// refused with instructions to decrypt them.
    pub fn from_pem(pem: &str, source_name: &str) -> Result<Self, OciError> {
        let err = |message: String| OciError::Key { source_name: source_name.to_owned(), message };
        let (label, headers, der) = parse_pem(pem).map_err(err)?;
        let encrypted_hint = "encrypted keys are not supported: write a decrypted copy with \
             `openssl pkey -in <key.pem> -out <plain.pem>` (keep it 0600) and point key_file at it";
        if label == "ENCRYPTED PRIVATE KEY" || headers.iter().any(|h| h.contains("ENCRYPTED")) {
            return Err(err(encrypted_hint.to_owned()));
        }
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_der(&der)
                .map_err(|e| err(format!("not a valid PKCS#1 RSA private key: {e}")))?,
            "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_der(&der)
                .map_err(|e| err(format!("not a valid PKCS#8 RSA private key: {e}")))?,
            other => {
                return Err(err(format!(
                    "PEM block `{other}` is not a private key (expected `RSA PRIVATE KEY` or `PRIVATE KEY`)"
                )));
            }
        };
        let fingerprint = fingerprint_of(&key).map_err(err)?;
        Ok(ApiKey { key, fingerprint })
    }

    /// The OCI fingerprint of this key's public half (`xx:xx:…`, 16 bytes).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The private key.
    pub fn rsa(&self) -> &rsa::PrivateKey {
        &self.key
    }

    /// The public key as DER SubjectPublicKeyInfo (what the OCI console stores).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.to_public_key().to_public_key_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }
}

/// Computes the OCI fingerprint of a private key's public half.
fn fingerprint_of(key: &rsa::PrivateKey) -> Result<String, String> {
    let spki = key.to_public_key().to_public_key_der().map_err(|e| format!("encoding the public key: {e}"))?;
    let digest = md5::Md5::digest(spki.as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
}

/// True when `s` looks like an OCI fingerprint: 16 lowercase hex bytes separated by colons.
pub fn is_fingerprint(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 16
        && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Splits the first PEM block into (label, header lines, DER bytes).
fn parse_pem(pem: &str) -> Result<(String, Vec<String>, Vec<u8>), String> {
    let mut lines = pem.lines().map(str::trim);
    let label = loop {
        match lines.next() {
            Some(l) if l.starts_with("-----BEGIN ") && l.ends_with("-----") => {
                break l["-----BEGIN ".len()..l.len() - 5].to_owned();
            }
            Some(_) => continue,
            None => return Err("no PEM block found (expected `-----BEGIN … PRIVATE KEY-----`)".to_owned()),
        }
    };
    let end = format!("-----END {label}-----");
    let mut headers = vec![];
    let mut b64 = String::new();
    let mut closed = false;
    for l in lines {
        if l == end {
            closed = true;
            break;
        }
        if l.contains(':') {
            headers.push(l.to_owned());
        } else {
            b64.push_str(l);
        }
    }
    if !closed {
        return Err(format!("PEM block `{label}` is not terminated by `{end}`"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("PEM body is not valid base64: {e}"))?;
    Ok((label, headers, der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TEST_KEY_PKCS1, TEST_KEY_PKCS8};

    #[test]
    fn fingerprint_matches_oracle_docs() {
        let k = ApiKey::from_pem(TEST_KEY_PKCS1, "test").unwrap();
        assert_eq!(k.fingerprint(), "73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7");
        assert!(is_fingerprint(k.fingerprint()));
        let k8 = ApiKey::from_pem(TEST_KEY_PKCS8, "test").unwrap();
        assert_eq!(k8.fingerprint(), k.fingerprint());
        assert!(!format!("{k:?}").contains("MIIC"));
    }

    #[test]
    fn rejects_encrypted_and_garbage_keys_clearly() {
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = ApiKey::from_pem(enc, "/k.pem").unwrap_err().to_string();
        assert!(e.contains("/k.pem") && e.contains("encrypted keys are not supported"), "{e}");
        let legacy = TEST_KEY_PKCS1.replace(
            "-----BEGIN RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n",
        );
        assert!(ApiKey::from_pem(&legacy, "k").unwrap_err().to_string().contains("encrypted"));
        assert!(ApiKey::from_pem("hello", "k").unwrap_err().to_string().contains("no PEM block"));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        assert!(ApiKey::from_pem(cert, "k").unwrap_err().to_string().contains("not a private key"));
        let bad = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(ApiKey::from_pem(bad, "k").unwrap_err().to_string().contains("PKCS#1"));
        let open = "-----BEGIN PRIVATE KEY-----\nAAAA\n";
        assert!(ApiKey::from_pem(open, "k").unwrap_err().to_string().contains("not terminated"));
    }

    #[test]
    fn fingerprint_syntax() {
        assert!(is_fingerprint("20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"));
        assert!(!is_fingerprint("20:3B:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"));
        assert!(!is_fingerprint("20:3b:97"));
        assert!(!is_fingerprint("zz:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"));
    }
}
