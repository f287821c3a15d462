//! API signing keys: PEM parsing (PKCS#1 `RSA PRIVATE KEY` and PKCS#8 `PRIVATE KEY`), clear
//! refusal of encrypted keys, and the OCI key fingerprint (MD5 of the public key's DER
//! SubjectPublicKeyInfo, lowercase hex, colon-separated).

use std::fmt;

use base64::Engine as _;
use md5::Digest as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};

use stackup_core::Secret;

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
    /// Parses an unencrypted PEM private key. `source_name` (a path, or "inline key") is used in
    /// errors.
    pub fn from_pem(pem: &str, source_name: &str) -> Result<Self, OciError> {
        Self::from_pem_with_passphrase(pem, source_name, None)
    }

    /// Parses a PEM private key: PKCS#1 (`RSA PRIVATE KEY`, also encrypted the way `oci setup
    /// config` and `openssl … -traditional` write it: `Proc-Type: 4,ENCRYPTED` with AES-CBC, which
    /// needs `passphrase`) or PKCS#8 (`PRIVATE KEY`). Encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`)
    /// is refused with instructions to convert it.
    pub fn from_pem_with_passphrase(
        pem: &str,
        source_name: &str,
        passphrase: Option<&Secret>,
    ) -> Result<Self, OciError> {
        let err = |message: String| OciError::Key { source_name: source_name.to_owned(), message };
        let (label, headers, der) = parse_pem(pem).map_err(err)?;
        if label == "ENCRYPTED PRIVATE KEY" {
            return Err(err("encrypted PKCS#8 keys are not supported: convert it with `openssl pkey -in <key.pem> \
                 -aes256 -traditional -out <key-rsa.pem>` (keeping a pass_phrase) or write a decrypted copy with \
                 `openssl pkey -in <key.pem> -out <plain.pem>` (keep it 0600)"
                .to_owned()));
        }
        let encrypted = headers.iter().any(|h| h.starts_with("Proc-Type:") && h.contains("ENCRYPTED"));
        let der = if encrypted {
            let dek = headers
                .iter()
                .find_map(|h| h.strip_prefix("DEK-Info:"))
                .ok_or_else(|| err("encrypted key without a DEK-Info header".into()))?;
            let pass = passphrase.ok_or_else(|| {
                err("the key is encrypted: set `pass_phrase` in the config profile (or decrypt it with \
                     `openssl pkey -in <key.pem> -out <plain.pem>`)"
                    .into())
            })?;
            decrypt_legacy(&der, dek.trim(), pass.expose().as_bytes()).map_err(err)?
        } else {
            der
        };
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_der(&der).map_err(|e| {
                err(if encrypted {
                    format!("wrong pass_phrase (the decrypted key is not valid PKCS#1: {e})")
                } else {
                    format!("not a valid PKCS#1 RSA private key: {e}")
                })
            })?,
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

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration (the legacy PEM encryption KDF).
fn evp_bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = vec![];
    while out.len() < len {
        let mut h = md5::Md5::new();
        h.update(&prev);
        h.update(pass);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

/// Decrypts a legacy encrypted PEM body (`DEK-Info: AES-{128,192,256}-CBC,<iv hex>`).
fn decrypt_legacy(der: &[u8], dek_info: &str, pass: &[u8]) -> Result<Vec<u8>, String> {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockModeDecrypt, KeyIvInit};
    let (alg, iv_hex) = dek_info.split_once(',').ok_or_else(|| format!("malformed DEK-Info `{dek_info}`"))?;
    let key_len = match alg.trim() {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        other => {
            return Err(format!(
                "keys encrypted with {other} are not supported (AES-128/192/256-CBC are): re-encrypt with \
                 `openssl rsa -in <key.pem> -aes256 -traditional -out <new.pem>`"
            ));
        }
    };
    let iv_hex = iv_hex.trim();
    if iv_hex.len() != 32 || !iv_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("malformed DEK-Info IV `{iv_hex}`"));
    }
    let iv: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&iv_hex[2 * i..2 * i + 2], 16).unwrap_or(0)).collect();
    let key = evp_bytes_to_key(pass, &iv[..8], key_len);
    let mut buf = der.to_vec();
    let wrong = |_| "wrong pass_phrase (the key does not decrypt)".to_owned();
    let len = match key_len {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(|e| e.to_string())?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(wrong)?
            .len(),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(|e| e.to_string())?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(wrong)?
            .len(),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(|e| e.to_string())?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(wrong)?
            .len(),
    };
    buf.truncate(len);
    Ok(buf)
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
    use stackup_core::Secret;

    #[test]
    fn fingerprint_matches_oracle_docs() {
        let k = ApiKey::from_pem(TEST_KEY_PKCS1, "test").unwrap();
        assert_eq!(k.fingerprint(), "73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7");
        assert!(is_fingerprint(k.fingerprint()));
        let k8 = ApiKey::from_pem(TEST_KEY_PKCS8, "test").unwrap();
        assert_eq!(k8.fingerprint(), k.fingerprint());
        assert!(!format!("{k:?}").contains("MIIC"));
    }

    const ENC_AES256: &str = "-----BEGIN RSA PRIVATE KEY-----
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
    const ENC_AES128: &str = "-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,C44D31347C6D6198FBDFC4882C3D0B32

DVXWGKFvDOxGLFesuF2unAHsoybsi8gw01nWUMT/VKuj0ITWkmkHwGkACMuYA6SM
g4u9f3HcwOgoMM+RqV8h0Lf4mILAtqVqaJtssQZdwoIg4/y2/ixi7YrVpFMfZCOy
C01JgZJsNGkhRsG3s/m6eGWpdjD31gCFJrOWeZs7pXjzsOQBnef6C3atA7Xn6fya
J7CsKRSt2PPHTOQT/CKVEouu4ZBTm1imU5qZQta9nE5YVxfUh065cjm9S1t0vtJV
XvtBjxh4D3obtwDWKBK9fIWybViXkV69XapmIlPuqnTo7VwBkhWYpZ5nWiV18pZF
7hg3hnS6/lVUl3UdTa98Y2JplaJ4ll0nC3/IdPLYqViatUqXCKQMKHkl18TQkGZE
xJaoocVzChvQYbczPQu2NeKBScBFNVXcgVaIyZqmP9+dlDMKOWROSlyI2CQ65pUN
ibTLPtYHhRv1qJd+QoqrLEGftylt5H2VmCy7u0f999Nl/bNpod0zu+FWqJxpqXh4
H0ivlWOoptzy1KajYwH7jvjtGMViNhBIaM6qYSF+cG6DCEYDz333YZ5QbEwdroSF
U8RTtf7uatNwdKVMyjRofo7feFEuB/61inNhfuye6O6HF76gbBfO0H4WFZLojMhv
VSktt1qRM2t923aGdKh4weopxAniYvBQ/al0B4vJu3vMl3VcScKElJP/RTq/+0zG
DWwgVKkRoaGOCS2grD1zRjytlXkWMSmBpG6gXpABoyCKWM+3X9E4WtEdnWlxDhQD
HU6iPloETeyBLOJw3fQMS6joi3o6vVnkWNAyjQbGEQWNUR7Ae1Vv8TESllEM3ekE
-----END RSA PRIVATE KEY-----";

    #[test]
    fn decrypts_legacy_encrypted_keys_with_the_pass_phrase() {
        let pass = Secret::new("hunter2");
        for pem in [ENC_AES256, ENC_AES128] {
            let k = ApiKey::from_pem_with_passphrase(pem, "/k.pem", Some(&pass)).unwrap();
            assert_eq!(k.fingerprint(), crate::testing::TEST_KEY_FINGERPRINT);
            let e = ApiKey::from_pem(pem, "/k.pem").unwrap_err().to_string();
            assert!(e.contains("/k.pem") && e.contains("pass_phrase"), "{e}");
            let e =
                ApiKey::from_pem_with_passphrase(pem, "/k.pem", Some(&Secret::new("nope"))).unwrap_err().to_string();
            assert!(e.contains("wrong pass_phrase"), "{e}");
            assert!(!e.contains("nope"));
        }
        let des = ENC_AES256.replace("AES-256-CBC", "DES-EDE3-CBC");
        let e = ApiKey::from_pem_with_passphrase(&des, "k", Some(&pass)).unwrap_err().to_string();
        assert!(e.contains("DES-EDE3-CBC") && e.contains("not supported"), "{e}");
    }

    #[test]
    fn rejects_encrypted_pkcs8_and_garbage_keys_clearly() {
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = ApiKey::from_pem(enc, "/k.pem").unwrap_err().to_string();
        assert!(e.contains("/k.pem") && e.contains("encrypted PKCS#8 keys are not supported"), "{e}");
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
