//! Spec values that may come from other resources' outputs.
//!
//! An [`Input<T>`] is a literal value, a reference to another resource's output
//! ([`OutputRef`]), or a string template mixing both. References make the dependency graph: the
//! engine reads them out of each spec, orders the work, and replaces each reference with the real
//! output just before the resource is created or updated. A value that came from a secret output
//! stays marked [`Input::Sensitive`], so it is redacted in plans and events.
//!
//! On the wire (plans, the engine's internal JSON) a reference is `{"$ref": {"resource": "rg",
//! "output": "name"}}` and a template is `{"$template": ["//", {"$ref": …}, "/share"]}`.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Error;
use crate::secret::{SECRET_MARKER, Secret, is_secret_value};

/// JSON key of a reference.
pub const REF_MARKER: &str = "$ref";
/// JSON key of a template.
pub const TEMPLATE_MARKER: &str = "$template";

/// A reference to one output of one resource: `resource.output`, where `output` is a field
/// name, or a dotted path into nested outputs (`keys.0.value`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutputRef {
    /// The address of the resource in the stack.
    pub resource: String,
    /// The output field (dotted path for nested values; `id` is the resource's id).
    pub output: String,
}

impl OutputRef {
    /// A reference to `output` of `resource`.
    pub fn new(resource: impl Into<String>, output: impl Into<String>) -> Self {
        OutputRef { resource: resource.into(), output: output.into() }
    }
}

impl OutputRef {
    /// This reference as an [`Input`] of any type.
    pub fn input<T>(self) -> Input<T> {
        Input::Ref(self)
    }
}

impl fmt::Display for OutputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.resource, self.output)
    }
}

/// One part of a string template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// The string form of another resource's output.
    Ref(OutputRef),
    /// Secret text: the resolved string is sensitive, and plans show `(sensitive)` here.
    Sensitive(String),
}

/// A spec value: known now, or known once another resource exists.
#[derive(Clone, PartialEq)]
pub enum Input<T> {
    /// A plain value.
    Value(T),
    /// A value that came from a secret; redacted wherever it is shown.
    Sensitive(T),
    /// Another resource's output, resolved at apply time.
    Ref(OutputRef),
    /// A string built from text and outputs, resolved at apply time.
    Template(Vec<TemplatePart>),
}

impl<T: fmt::Debug> fmt::Debug for Input<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Value(v) => v.fmt(f),
            Input::Sensitive(_) => f.write_str("(sensitive)"),
            Input::Ref(r) => write!(f, "${{{r}}}"),
            Input::Template(parts) => {
                for p in parts {
                    match p {
                        TemplatePart::Text(t) => f.write_str(t)?,
                        TemplatePart::Ref(r) => write!(f, "${{{r}}}")?,
                        TemplatePart::Sensitive(_) => f.write_str("(sensitive)")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl<T> From<T> for Input<T> {
    fn from(v: T) -> Self {
        Input::Value(v)
    }
}

impl From<&str> for Input<String> {
    fn from(v: &str) -> Self {
        Input::Value(v.to_owned())
    }
}

impl From<Secret> for Input<String> {
    fn from(v: Secret) -> Self {
        Input::Sensitive(v.expose().to_owned())
    }
}

impl<T> Input<T> {
    /// The value if known now (plain or sensitive).
    pub fn known(&self) -> Option<&T> {
        match self {
            Input::Value(v) | Input::Sensitive(v) => Some(v),
            _ => None,
        }
    }

    /// The value, or an error naming `field` if it is still an unresolved reference (a bug in
    /// the caller: the engine resolves every reference before create/update).
    pub fn get(&self, field: &str) -> Result<&T, Error> {
        self.known()
            .ok_or_else(|| Error::invalid(field, "value is not known yet (unresolved reference to another resource)"))
    }

    /// True when the value came from a secret.
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Input::Sensitive(_))
    }

    /// True when the value is not known until apply.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Input::Ref(_) | Input::Template(_))
    }
}

impl Input<String> {
    /// A string template: `Input::template(["//", acct.output("name"), ".file.core.windows.net"])`.
    pub fn template<I, P>(parts: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<TemplatePart>,
    {
        Input::Template(parts.into_iter().map(Into::into).collect())
    }
}

impl From<&str> for TemplatePart {
    fn from(s: &str) -> Self {
        TemplatePart::Text(s.to_owned())
    }
}

impl From<String> for TemplatePart {
    fn from(s: String) -> Self {
        TemplatePart::Text(s)
    }
}

impl From<OutputRef> for TemplatePart {
    fn from(r: OutputRef) -> Self {
        TemplatePart::Ref(r)
    }
}

fn ref_json(r: &OutputRef) -> Value {
    serde_json::json!({ REF_MARKER: { "resource": r.resource, "output": r.output } })
}

impl<T: Serialize> Serialize for Input<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Value(v) => v.serialize(s),
            Input::Sensitive(v) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(SECRET_MARKER, v)?;
                m.end()
            }
            Input::Ref(r) => ref_json(r).serialize(s),
            Input::Template(parts) => {
                let arr: Vec<Value> = parts
                    .iter()
                    .map(|p| match p {
                        TemplatePart::Text(t) => Value::String(t.clone()),
                        TemplatePart::Ref(r) => ref_json(r),
                        TemplatePart::Sensitive(t) => serde_json::json!({ SECRET_MARKER: t }),
                    })
                    .collect();
                serde_json::json!({ TEMPLATE_MARKER: arr }).serialize(s)
            }
        }
    }
}

/// Reads a `{"$ref": …}` object, if `v` is one.
pub fn as_ref_marker(v: &Value) -> Option<OutputRef> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    serde_json::from_value(m.get(REF_MARKER)?.clone()).ok()
}

/// Reads a `{"$template": […]}` object, if `v` is one.
pub fn as_template_marker(v: &Value) -> Option<Vec<TemplatePart>> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let arr = m.get(TEMPLATE_MARKER)?.as_array()?;
    arr.iter()
        .map(|p| match p {
            Value::String(s) => Some(TemplatePart::Text(s.clone())),
            other if is_secret_value(other) => {
                other[SECRET_MARKER].as_str().map(|s| TemplatePart::Sensitive(s.to_owned()))
            }
            other => as_ref_marker(other).map(TemplatePart::Ref),
        })
        .collect()
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if let Some(r) = as_ref_marker(&v) {
            return Ok(Input::Ref(r));
        }
        if let Some(t) = as_template_marker(&v) {
            return Ok(Input::Template(t));
        }
        if is_secret_value(&v) {
            let inner = v.get(SECRET_MARKER).cloned().unwrap_or(Value::Null);
            return T::deserialize(inner).map(Input::Sensitive).map_err(serde::de::Error::custom);
        }
        T::deserialize(v).map(Input::Value).map_err(serde::de::Error::custom)
    }
}

/// Every reference in a JSON tree (inside `$ref` and `$template` markers).
pub fn collect_refs(v: &Value, out: &mut Vec<OutputRef>) {
    if let Some(r) = as_ref_marker(v) {
        out.push(r);
        return;
    }
    if let Some(parts) = as_template_marker(v) {
        out.extend(parts.into_iter().filter_map(|p| match p {
            TemplatePart::Ref(r) => Some(r),
            TemplatePart::Text(_) | TemplatePart::Sensitive(_) => None,
        }));
        return;
    }
    match v {
        Value::Object(m) => m.values().for_each(|c| collect_refs(c, out)),
        Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

/// Looks up a dotted path (`a.b.0`) in a JSON value.
pub fn lookup_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, seg| match cur {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Replaces every reference and template in `v` using `lookup`, which returns the referenced
/// output (or `None` when it is not known yet, leaving the reference in place; a template whose
/// reference resolves to `null` is left in place too). A secret output stays a secret marker; a
/// template that includes one becomes a secret.
pub fn resolve_refs(v: &Value, lookup: &dyn Fn(&OutputRef) -> Option<Value>) -> Result<Value, Error> {
    if let Some(r) = as_ref_marker(v) {
        return Ok(lookup(&r).unwrap_or_else(|| v.clone()));
    }
    if let Some(parts) = as_template_marker(v) {
        let mut out = String::new();
        let mut secret = false;
        for p in &parts {
            match p {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Sensitive(t) => {
                    secret = true;
                    out.push_str(t);
                }
                TemplatePart::Ref(r) => {
                    let Some(mut val) = lookup(r) else { return Ok(v.clone()) };
                    if is_secret_value(&val) {
                        secret = true;
                        val = val[SECRET_MARKER].clone();
                    }
                    match val {
                        Value::String(s) => out.push_str(&s),
                        Value::Number(n) => out.push_str(&n.to_string()),
                        Value::Bool(b) => out.push_str(&b.to_string()),
                        // No value to render (a secret that state does not keep, an optional
                        // output still empty): the template stays for apply time to resolve.
                        Value::Null => return Ok(v.clone()),
                        other => {
                            return Err(Error::Stack(format!(
                                "template references {r}, which is not a string or number but {}",
                                crate::secret::redact_json(&other)
                            )));
                        }
                    }
                }
            }
        }
        return Ok(if secret { serde_json::json!({ SECRET_MARKER: out }) } else { Value::String(out) });
    }
    Ok(match v {
        Value::Object(m) => Value::Object(
            m.iter().map(|(k, c)| Ok((k.clone(), resolve_refs(c, lookup)?))).collect::<Result<_, Error>>()?,
        ),
        Value::Array(a) => Value::Array(a.iter().map(|c| resolve_refs(c, lookup)).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Spec {
        name: Input<String>,
        size: Input<u32>,
        path: Input<String>,
    }

    #[test]
    fn round_trips_and_resolves() {
        let spec = Spec {
            name: Input::Ref(OutputRef::new("acct", "name")),
            size: 3.into(),
            path: Input::template(["//"][..].iter().copied().map(TemplatePart::from).chain([
                TemplatePart::Ref(OutputRef::new("acct", "name")),
                TemplatePart::from(".file.core.windows.net"),
            ])),
        };
        let v = serde_json::to_value(&spec).unwrap();
        let mut refs = vec![];
        collect_refs(&v, &mut refs);
        assert_eq!(refs.len(), 2);
        let back: Spec = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, spec);

        let outputs = json!({"name": "blossomdata12345"});
        let resolved = resolve_refs(&v, &|r| lookup_path(&outputs, &r.output).cloned()).unwrap();
        let s: Spec = serde_json::from_value(resolved).unwrap();
        assert_eq!(s.name.known().unwrap(), "blossomdata12345");
        assert_eq!(s.path.known().unwrap(), "//blossomdata12345.file.core.windows.net");
        assert!(!s.path.is_sensitive());
    }

    #[test]
    fn secrets_stay_sensitive_through_templates() {
        let v = serde_json::to_value(Input::<String>::template([
            TemplatePart::from("password="),
            TemplatePart::Ref(OutputRef::new("acct", "key")),
        ]))
        .unwrap();
        let outputs = json!({"key": {"$secret": "s3cr3t"}});
        let resolved = resolve_refs(&v, &|r| lookup_path(&outputs, &r.output).cloned()).unwrap();
        let i: Input<String> = serde_json::from_value(resolved).unwrap();
        assert!(i.is_sensitive());
        assert_eq!(i.known().unwrap(), "password=s3cr3t");
        assert_eq!(format!("{i:?}"), "(sensitive)");
    }

    #[test]
    fn unknown_refs_stay_in_place_and_get_errors() {
        let i: Input<String> = OutputRef::new("vcn", "id").input();
        let v = serde_json::to_value(&i).unwrap();
        let same = resolve_refs(&v, &|_| None).unwrap();
        assert_eq!(same, v);
        assert!(i.get("vcn_id").unwrap_err().to_string().contains("vcn_id"));
        assert_eq!(lookup_path(&json!({"a": [{"b": 1}]}), "a.0.b"), Some(&json!(1)));
    }

    #[test]
    fn a_template_over_a_null_output_waits_for_apply_and_an_object_is_an_error() {
        let v = serde_json::to_value(Input::<String>::template([
            TemplatePart::from("--authkey="),
            TemplatePart::Ref(OutputRef::new("key", "key")),
        ]))
        .unwrap();
        // A secret that state did not keep reads back as null: the template stays unresolved.
        let dropped = json!({"key": null});
        assert_eq!(resolve_refs(&v, &|r| lookup_path(&dropped, &r.output).cloned()).unwrap(), v);
        let object = json!({"key": {"a": 1}});
        let e = resolve_refs(&v, &|r| lookup_path(&object, &r.output).cloned()).unwrap_err();
        assert!(e.to_string().contains("not a string or number"), "{e}");
    }
}
