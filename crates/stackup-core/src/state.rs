//! The state document: what stackup created, with ids, outputs and dependencies.
//!
//! State is versioned JSON ([`STATE_FORMAT_VERSION`]). Every resource entry carries its
//! provider, kind, id, outputs and dependencies; before each mutating call the engine records a
//! [`PendingOp`] (the *intent*) and persists it, and after the call it records the result. A
//! later run that finds a pending entry reconciles it by reading (adopting or cleaning up), never
//! by blindly creating again.
//!
//! **Secrets** in outputs are never written in plaintext. With a [`StateKey`] (from
//! `STACKUP_STATE_KEY`, 32 bytes in base64) each secret is encrypted with ChaCha20-Poly1305
//! (`{"$secret_enc": "…"}`); without one it is dropped (`{"$secret_dropped": true}`) and the
//! next refresh re-reads it from the provider where the provider can (storage keys can; a
//! Tailscale auth key cannot, so set a state key if you need it back).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::Error;
use crate::secret::{SECRET_MARKER, is_secret_value};

/// The state format this version of stackup reads and writes.
pub const STATE_FORMAT_VERSION: u32 = 1;
/// Marker of an encrypted secret in the state file.
pub const SECRET_ENC_MARKER: &str = "$secret_enc";
/// Marker of a secret that was not stored (no state key).
pub const SECRET_DROPPED_MARKER: &str = "$secret_dropped";
/// The environment variable holding the state encryption key (32 bytes, base64).
pub const STATE_KEY_ENV: &str = "STACKUP_STATE_KEY";

/// A mutating call that was started and whose result is not recorded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    /// A create was started.
    Create,
    /// An update was started.
    Update,
    /// A delete was started.
    Delete,
}

/// The intent recorded before a mutating call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOp {
    /// What was started.
    pub op: PendingKind,
    /// The idempotency token given to the provider (reused if the call is repeated).
    pub token: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
}

/// Whether an object is healthy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    /// Created and recorded.
    #[default]
    Ready,
    /// A create failed part-way: the object exists but is not trusted, and will be replaced.
    Tainted,
}

/// One resource in state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// The provider (`azure`, `oci`, …).
    pub provider: String,
    /// The kind within the provider.
    pub kind: String,
    /// The provider's id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The observed outputs (secrets encrypted or dropped in the file).
    #[serde(default)]
    pub outputs: Value,
    /// Addresses this resource depends on (destroy goes in reverse).
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Health.
    #[serde(default)]
    pub status: ResourceStatus,
    /// An operation started but not finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingOp>,
}

/// The whole state document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateDoc {
    /// Format version.
    pub version: u32,
    /// A random id fixed when the state is first created; a plan applies only to its lineage.
    pub lineage: String,
    /// Incremented on every write.
    pub serial: u64,
    /// The stack's name.
    pub stack: String,
    /// Resources by address.
    pub resources: BTreeMap<String, ResourceState>,
}

impl StateDoc {
    /// An empty state for `stack`.
    pub fn new(stack: &str) -> Self {
        StateDoc {
            version: STATE_FORMAT_VERSION,
            lineage: crate::lock::random_id(),
            serial: 0,
            stack: stack.to_owned(),
            resources: BTreeMap::new(),
        }
    }

    /// The document without its resources.
    pub fn clone_header(&self) -> StateDoc {
        StateDoc {
            version: self.version,
            lineage: self.lineage.clone(),
            serial: self.serial,
            stack: self.stack.clone(),
            resources: BTreeMap::new(),
        }
    }

    /// Parses a state document, refusing corrupt documents and newer formats with a clear error.
    /// `location` names the file in messages.
    pub fn parse(bytes: &[u8], location: &str, key: Option<&StateKey>) -> Result<Self, Error> {
        let raw: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::State(format!(
                "state at {location} is not valid JSON ({e}); it was left untouched: restore it from a backup"
            ))
        })?;
        let version = raw.get("version").and_then(Value::as_u64).ok_or_else(|| {
            Error::State(format!("state at {location} has no format `version`; it was left untouched"))
        })?;
        if version > STATE_FORMAT_VERSION as u64 {
            return Err(Error::State(format!(
                "state at {location} has format version {version}, newer than this stackup understands \
                 ({STATE_FORMAT_VERSION}); upgrade stackup. The file was left untouched"
            )));
        }
        let mut doc: StateDoc = serde_json::from_value(raw)
            .map_err(|e| Error::State(format!("state at {location} is malformed ({e}); it was left untouched")))?;
        for (addr, r) in doc.resources.iter_mut() {
            r.outputs = decode_secrets(&r.outputs, key)
                .map_err(|e| Error::State(format!("state at {location}, resource `{addr}`: {e}")))?;
        }
        Ok(doc)
    }

    /// Serialises the document for storage, encrypting (or dropping) every secret.
    pub fn to_bytes(&self, key: Option<&StateKey>) -> Result<Vec<u8>, Error> {
        self.to_bytes_scrubbed(key, &BTreeSet::new())
    }

    /// Like [`StateDoc::to_bytes`], also treating as secret any output string that contains one
    /// of `known_secrets` (an output derived from a secret input, such as a rendered document
    /// with a password in it, is as secret as the input).
    pub fn to_bytes_scrubbed(
        &self,
        key: Option<&StateKey>,
        known_secrets: &BTreeSet<String>,
    ) -> Result<Vec<u8>, Error> {
        let mut copy = self.clone();
        for r in copy.resources.values_mut() {
            r.outputs = encode_secrets(&mark_derived_secrets(&r.outputs, known_secrets), key)?;
        }
        serde_json::to_vec_pretty(&copy).map_err(|e| Error::other("encoding state", e))
    }
}

/// The key that encrypts secrets in state.
#[derive(Clone)]
pub struct StateKey(Key);

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateKey((sensitive))")
    }
}

impl StateKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StateKey(Key::from(bytes))
    }

    /// A key from base64 text (32 bytes once decoded; make one with `openssl rand -base64 32`).
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let raw = B64
            .decode(text.trim())
            .map_err(|_| Error::invalid(STATE_KEY_ENV, "must be base64 (make one with `openssl rand -base64 32`)"))?;
        let arr: [u8; 32] =
            raw.try_into().map_err(|_| Error::invalid(STATE_KEY_ENV, "must decode to exactly 32 bytes"))?;
        Ok(StateKey::from_bytes(arr))
    }

    /// The key from `STACKUP_STATE_KEY`, if set.
    pub fn from_env() -> Result<Option<Self>, Error> {
        match std::env::var(STATE_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => StateKey::from_base64(&v).map(Some),
            _ => Ok(None),
        }
    }

    fn encrypt(&self, plaintext: &str) -> Result<String, Error> {
        let cipher = ChaCha20Poly1305::new(&self.0);
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .map_err(|_| Error::State("encrypting a secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    fn decrypt(&self, text: &str) -> Result<String, Error> {
        let raw = B64.decode(text).map_err(|_| Error::State("an encrypted secret is not base64".into()))?;
        if raw.len() < 12 {
            return Err(Error::State("an encrypted secret is truncated".into()));
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = ChaCha20Poly1305::new(&self.0).decrypt(Nonce::from_slice(nonce), ct).map_err(|_| {
            Error::State(format!("a secret in state does not decrypt with {STATE_KEY_ENV} (wrong key?)"))
        })?;
        String::from_utf8(pt).map_err(|_| Error::State("a decrypted secret is not UTF-8".into()))
    }
}

/// One resource entry as stored: secrets encrypted or dropped, derived secrets included,
/// pretty-printed and indented as it sits inside the document's `resources` object (the engine
/// caches these so a write re-encodes only what changed, and [`assemble`] only copies them).
pub fn encode_resource(
    r: &ResourceState,
    key: Option<&StateKey>,
    known_secrets: &BTreeSet<String>,
) -> Result<Vec<u8>, Error> {
    let mut copy = r.clone();
    copy.outputs = encode_secrets(&mark_derived_secrets(&r.outputs, known_secrets), key)?;
    let pretty = serde_json::to_vec_pretty(&copy).map_err(|e| Error::other("encoding state", e))?;
    let mut out = Vec::with_capacity(pretty.len() + pretty.len() / 8);
    for (i, line) in pretty.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\n    ");
        }
        out.extend_from_slice(line);
    }
    Ok(out)
}

/// Assembles a state document from its header and pre-encoded resource entries (as
/// [`encode_resource`] makes them); the result parses like [`StateDoc::to_bytes`]'s output.
pub fn assemble(doc: &StateDoc, entries: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + entries.values().map(|e| e.len() + 64).sum::<usize>());
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    out.extend_from_slice(
        format!(
            "{{\n  \"version\": {},\n  \"lineage\": {},\n  \"serial\": {},\n  \"stack\": {},\n  \"resources\": {{",
            doc.version,
            q(&doc.lineage),
            doc.serial,
            q(&doc.stack)
        )
        .as_bytes(),
    );
    for (i, (addr, bytes)) in entries.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n    " } else { b",\n    " });
        out.extend_from_slice(q(addr).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(if entries.is_empty() { b"}\n}\n" } else { b"\n  }\n}\n" });
    out
}

/// Minimum length of a secret used to scrub derived outputs (shorter ones would match by chance).
const MIN_SCRUB_LEN: usize = 6;

/// Collects the plaintext of every secret marker in a JSON tree.
pub fn collect_secret_strings(v: &Value, out: &mut BTreeSet<String>) {
    if is_secret_value(v) {
        if let Some(s) = v[SECRET_MARKER].as_str()
            && s.len() >= MIN_SCRUB_LEN
        {
            out.insert(s.to_owned());
        }
        return;
    }
    match v {
        Value::Object(m) => m.values().for_each(|c| collect_secret_strings(c, out)),
        Value::Array(a) => a.iter().for_each(|c| collect_secret_strings(c, out)),
        _ => {}
    }
}

fn mark_derived_secrets(v: &Value, known: &BTreeSet<String>) -> Value {
    if known.is_empty() || is_secret_value(v) {
        return v.clone();
    }
    match v {
        Value::String(s) if known.iter().any(|k| s.contains(k.as_str())) => serde_json::json!({ SECRET_MARKER: s }),
        Value::Object(m) => Value::Object(m.iter().map(|(k, c)| (k.clone(), mark_derived_secrets(c, known))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(|c| mark_derived_secrets(c, known)).collect()),
        other => other.clone(),
    }
}

fn encode_secrets(v: &Value, key: Option<&StateKey>) -> Result<Value, Error> {
    if is_secret_value(v) {
        let plain = match &v[SECRET_MARKER] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Ok(match key {
            Some(k) => serde_json::json!({ SECRET_ENC_MARKER: k.encrypt(&plain)? }),
            None => serde_json::json!({ SECRET_DROPPED_MARKER: true }),
        });
    }
    Ok(match v {
        Value::Object(m) => Value::Object(
            m.iter().map(|(k, c)| Ok((k.clone(), encode_secrets(c, key)?))).collect::<Result<_, Error>>()?,
        ),
        Value::Array(a) => Value::Array(a.iter().map(|c| encode_secrets(c, key)).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

fn single_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().filter(|m| m.len() == 1).and_then(|m| m.get(key))
}

/// Decodes secrets read from state: encrypted ones are decrypted (an error without the key);
/// dropped ones are removed from objects (and become `null` in arrays).
fn decode_secrets(v: &Value, key: Option<&StateKey>) -> Result<Value, Error> {
    if let Some(enc) = single_key(v, SECRET_ENC_MARKER) {
        let k = key.ok_or_else(|| {
            Error::State(format!("state holds encrypted secrets: set {STATE_KEY_ENV} to the key used to write it"))
        })?;
        let text = enc.as_str().ok_or_else(|| Error::State("an encrypted secret is not a string".into()))?;
        return Ok(serde_json::json!({ SECRET_MARKER: k.decrypt(text)? }));
    }
    Ok(match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, c)| single_key(c, SECRET_DROPPED_MARKER).is_none())
                .map(|(k, c)| Ok((k.clone(), decode_secrets(c, key)?)))
                .collect::<Result<_, Error>>()?,
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|c| {
                    if single_key(c, SECRET_DROPPED_MARKER).is_some() {
                        Ok(Value::Null)
                    } else {
                        decode_secrets(c, key)
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc_with_secret() -> StateDoc {
        let mut d = StateDoc::new("s");
        d.resources.insert(
            "acct".into(),
            ResourceState {
                provider: "azure".into(),
                kind: "storage_account".into(),
                id: Some("/subscriptions/x".into()),
                outputs: json!({"name": "a", "key1": {"$secret": "TOPSECRET"}, "keys": [{"$secret": "K2"}]}),
                dependencies: vec![],
                status: ResourceStatus::Ready,
                pending: None,
            },
        );
        d
    }

    #[test]
    fn secrets_are_dropped_without_a_key() {
        let d = doc_with_secret();
        let bytes = d.to_bytes(None).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("TOPSECRET") && !text.contains("K2"));
        let back = StateDoc::parse(&bytes, "t", None).unwrap();
        assert_eq!(back.resources["acct"].outputs, json!({"name": "a", "keys": [null]}));
    }

    #[test]
    fn secrets_round_trip_encrypted_with_a_key() {
        let key = StateKey::from_bytes([7; 32]);
        let d = doc_with_secret();
        let bytes = d.to_bytes(Some(&key)).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("TOPSECRET"));
        let back = StateDoc::parse(&bytes, "t", Some(&key)).unwrap();
        assert_eq!(back, d);
        let err = StateDoc::parse(&bytes, "t", None).unwrap_err().to_string();
        assert!(err.contains(STATE_KEY_ENV), "{err}");
        let wrong = StateKey::from_bytes([8; 32]);
        assert!(StateDoc::parse(&bytes, "t", Some(&wrong)).unwrap_err().to_string().contains("wrong key"));
    }

    #[test]
    fn assembled_documents_parse_like_whole_ones() {
        let d = doc_with_secret();
        let known = BTreeSet::new();
        let entries: BTreeMap<String, Vec<u8>> =
            d.resources.iter().map(|(a, r)| (a.clone(), encode_resource(r, None, &known).unwrap())).collect();
        let bytes = assemble(&d, &entries);
        let parsed = StateDoc::parse(&bytes, "t", None).unwrap();
        assert_eq!(parsed, StateDoc::parse(&d.to_bytes(None).unwrap(), "t", None).unwrap());
        let empty = StateDoc::new("e");
        assert_eq!(StateDoc::parse(&assemble(&empty, &BTreeMap::new()), "t", None).unwrap(), empty);
    }

    #[test]
    fn corrupt_and_newer_states_are_refused() {
        let e = StateDoc::parse(b"{not json", "file:///x", None).unwrap_err().to_string();
        assert!(e.contains("not valid JSON") && e.contains("untouched"), "{e}");
        let e = StateDoc::parse(
            br#"{"version": 99, "lineage": "l", "serial": 1, "stack": "s", "resources": {}}"#,
            "f",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("newer") && e.contains("99"), "{e}");
        assert!(StateKey::from_base64("short").is_err());
    }
}
