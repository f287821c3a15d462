//! A secret string that never shows itself.
//!
//! [`Secret`] wraps [`secrecy::SecretString`]: `Debug` and `Display` print `(sensitive)`, and the
//! memory is zeroed on drop. It serialises as a tagged object `{"$secret": "…"}` so the engine can
//! find every secret in outputs and specs: state writes encrypt or drop them (see
//! [`crate::state`]), plan rendering prints `(sensitive)`, and events never carry them.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The JSON key that marks a secret value.
pub const SECRET_MARKER: &str = "$secret";

/// A secret string (key, token, password, connection string).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value as a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The plaintext. Call it only where the value must leave the process (a request body, a
    /// file on the target machine) and never log what it returns.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<String> for Secret {
    fn from(v: String) -> Self {
        Secret::new(v)
    }
}

impl From<&str> for Secret {
    fn from(v: &str) -> Self {
        Secret::new(v)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret((sensitive))")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(SECRET_MARKER, self.expose())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or {\"$secret\": string}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
                let mut value = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == SECRET_MARKER {
                        value = Some(map.next_value::<String>()?);
                    } else {
                        return Err(de::Error::custom(format!(
                            "unexpected key `{key}` in a secret (was it dropped from state? \
                             refresh or set STACKUP_STATE_KEY)"
                        )));
                    }
                }
                value.map(Secret::new).ok_or_else(|| de::Error::missing_field(SECRET_MARKER))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// True when a JSON value is a secret marker object.
pub fn is_secret_value(v: &serde_json::Value) -> bool {
    matches!(v, serde_json::Value::Object(m) if m.len() == 1 && m.contains_key(SECRET_MARKER))
}

/// Replaces every secret in a JSON tree with the string `(sensitive)`: for plans, events and logs.
pub fn redact_json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    if is_secret_value(v) {
        return Value::String("(sensitive)".into());
    }
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), redact_json(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(redact_json).collect()),
        other => other.clone(),
    }
}

/// True when a JSON tree contains a secret anywhere.
pub fn contains_secret(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    if is_secret_value(v) {
        return true;
    }
    match v {
        Value::Object(m) => m.values().any(contains_secret),
        Value::Array(a) => a.iter().any(contains_secret),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_itself() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn serializes_tagged_and_reads_both_forms() {
        let s = Secret::new("k");
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j, serde_json::json!({"$secret": "k"}));
        assert!(is_secret_value(&j));
        let back: Secret = serde_json::from_value(j).unwrap();
        assert_eq!(back, s);
        let plain: Secret = serde_json::from_value(serde_json::json!("k")).unwrap();
        assert_eq!(plain, s);
        let red = redact_json(&serde_json::json!({"a": {"$secret": "x"}, "b": [1]}));
        assert_eq!(red, serde_json::json!({"a": "(sensitive)", "b": [1]}));
    }
}
