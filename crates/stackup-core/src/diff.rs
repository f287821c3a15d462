//! Field-level differences between a desired spec and the observed object, and the action they
//! imply. Providers build a [`Diff`] in their pure `diff` method with [`Diff::field`] and friends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::Input;
use crate::secret::contains_secret;

/// What the engine will do to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to do.
    NoOp,
    /// Create a new object.
    Create,
    /// Change the object in place.
    Update,
    /// Delete the object and create it again (a field cannot change in place).
    Replace,
    /// Delete the object.
    Delete,
}

impl Action {
    /// The plan symbol: `+`, `~`, `-/+`, `-`, or a space for no-op.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    /// True when the action calls a mutating API.
    pub fn is_mutating(self) -> bool {
        !matches!(self, Action::NoOp)
    }
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field path (`tags.env`, `properties.quota`).
    pub path: String,
    /// Value now (`None` when absent).
    pub before: Option<Value>,
    /// Desired value (`None` when absent or not known until apply; see `unknown`).
    pub after: Option<Value>,
    /// The desired value depends on another resource and is known only at apply time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
    /// Changing this field replaces the object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
    /// Either side is a secret: shown as `(sensitive)`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// The differences for one resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// The changed fields, in the order the provider compared them.
    pub changes: Vec<FieldChange>,
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> Option<Value> {
    match serde_json::to_value(v) {
        Ok(Value::Null) | Err(_) => None,
        Ok(v) => Some(v),
    }
}

impl Diff {
    /// No changes yet.
    pub fn new() -> Self {
        Diff::default()
    }

    /// The action these changes imply: no-op, update in place, or replace.
    pub fn action(&self) -> Action {
        if self.changes.is_empty() {
            Action::NoOp
        } else if self.changes.iter().any(|c| c.forces_replacement) {
            Action::Replace
        } else {
            Action::Update
        }
    }

    /// Removes the changes to `fields` and to anything under them (`tags` covers `tags.env`,
    /// `metadata` covers `metadata[0]`), returning the paths removed.
    pub fn drop_fields(&mut self, fields: &[String]) -> Vec<String> {
        let covered = |path: &str| {
            fields.iter().any(|f| {
                path.strip_prefix(f.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            })
        };
        let mut dropped = vec![];
        self.changes.retain(|c| {
            let keep = !covered(&c.path);
            if !keep {
                dropped.push(c.path.clone());
            }
            keep
        });
        dropped
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Records a change with explicit values.
    pub fn push(&mut self, change: FieldChange) -> &mut Self {
        self.changes.push(change);
        self
    }

    fn compare(&mut self, path: &str, desired: Option<Value>, actual: Option<Value>, unknown: bool, replace: bool) {
        if !unknown && desired == actual {
            return;
        }
        let sensitive = desired.as_ref().is_some_and(contains_secret) || actual.as_ref().is_some_and(contains_secret);
        self.changes.push(FieldChange {
            path: path.to_owned(),
            before: actual,
            after: if unknown { None } else { desired },
            unknown,
            forces_replacement: replace,
            sensitive,
        });
    }

    /// Compares a field that can change in place.
    pub fn field<T: Serialize + ?Sized>(&mut self, path: &str, desired: &T, actual: &T) -> &mut Self {
        self.compare(path, to_json(desired), to_json(actual), false, false);
        self
    }

    /// Compares a field whose change replaces the object.
    pub fn field_replace<T: Serialize + ?Sized>(&mut self, path: &str, desired: &T, actual: &T) -> &mut Self {
        self.compare(path, to_json(desired), to_json(actual), false, true);
        self
    }

    /// Compares an [`Input`] (which may not be known until apply) with the observed value.
    pub fn input<T: Serialize + PartialEq>(&mut self, path: &str, desired: &Input<T>, actual: &T) -> &mut Self {
        self.input_impl(path, desired, actual, false)
    }

    /// Like [`Diff::input`] for a field whose change replaces the object.
    pub fn input_replace<T: Serialize + PartialEq>(&mut self, path: &str, desired: &Input<T>, actual: &T) -> &mut Self {
        self.input_impl(path, desired, actual, true)
    }

    fn input_impl<T: Serialize + PartialEq>(
        &mut self,
        path: &str,
        desired: &Input<T>,
        actual: &T,
        replace: bool,
    ) -> &mut Self {
        match desired {
            Input::Value(v) => self.compare(path, to_json(v), to_json(actual), false, replace),
            Input::Sensitive(v) => {
                if v != actual {
                    self.changes.push(FieldChange {
                        path: path.to_owned(),
                        before: to_json(actual).map(|_| serde_json::json!({"$secret": ""})),
                        after: Some(serde_json::json!({"$secret": ""})),
                        unknown: false,
                        forces_replacement: replace,
                        sensitive: true,
                    });
                }
            }
            Input::Ref(_) | Input::Template(_) => self.compare(path, None, to_json(actual), true, replace),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::OutputRef;

    #[test]
    fn actions_follow_changes() {
        let mut d = Diff::new();
        d.field("quota", &100, &100);
        assert_eq!(d.action(), Action::NoOp);
        d.field("quota", &200, &100);
        assert_eq!(d.action(), Action::Update);
        d.field_replace("location", "japaneast", "westus");
        assert_eq!(d.action(), Action::Replace);
        assert_eq!(d.changes[1].before, Some(serde_json::json!("westus")));
    }

    #[test]
    fn unknown_inputs_are_changes_known_after_apply() {
        let mut d = Diff::new();
        d.input("subnet_id", &Input::<String>::Ref(OutputRef::new("s", "id")), &"old".to_owned());
        assert_eq!(d.action(), Action::Update);
        assert!(d.changes[0].unknown && d.changes[0].after.is_none());
        let mut d = Diff::new();
        d.input("k", &Input::Sensitive("a".to_owned()), &"b".to_owned());
        assert!(d.changes[0].sensitive);
        assert!(!serde_json::to_string(&d).unwrap().contains("\"a\""));
    }
}
