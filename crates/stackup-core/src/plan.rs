//! A [`Plan`]: what `apply` will do, resource by resource, with field-level changes and drift,
//! rendered for people ([`Plan::render`]) and as JSON for machines ([`Plan::to_json`]).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::diff::{Action, FieldChange};
use crate::events::ChangeSummary;
use crate::input::{as_ref_marker, as_template_marker};
use crate::secret::{is_secret_value, redact_json};

/// One resource in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedResource {
    /// Address in the stack (or in state, for deletes of removed resources).
    pub address: String,
    /// `provider:kind`.
    pub kind: String,
    /// What will happen.
    pub action: Action,
    /// Why, field by field (empty for create/delete).
    pub changes: Vec<FieldChange>,
    /// What changed outside stackup since the last run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// Dependencies.
    pub dependencies: Vec<String>,
    /// The desired spec (secrets redacted, unknown references shown as `(known after apply)`).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub spec: Value,
    /// Extra notes (adopted after an interrupted run, tainted, already gone).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub(crate) internal: PlanInternal,
}

/// What apply needs that people do not.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanInternal {
    pub spec_hash: String,
    pub id: Option<String>,
    pub observed: Option<Value>,
    pub adopted: bool,
    pub gone: bool,
    pub token: Option<String>,
    pub state_deps: Vec<String>,
}

/// A plan for one stack against one state.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Stack name.
    pub stack: String,
    /// True for a destroy plan.
    pub destroy: bool,
    /// The state lineage this plan was computed against (`None`: no state existed).
    pub lineage: Option<String>,
    /// The state serial this plan was computed against.
    pub serial: u64,
    /// Totals.
    pub summary: ChangeSummary,
    /// The resources, in execution order.
    pub resources: Vec<PlannedResource>,
}

impl Plan {
    /// True when applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }

    /// The planned resource at `address`.
    pub fn resource(&self, address: &str) -> Option<&PlannedResource> {
        self.resources.iter().find(|r| r.address == address)
    }

    /// The plan as JSON for machines (secrets are redacted).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The plan for people: `+` create, `~` update, `-/+` replace, `-` delete, with field diffs;
    /// secrets shown as `(sensitive)`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "stack `{}`{}", self.stack, if self.destroy { " (destroy)" } else { "" });
        if self.lineage.is_none() {
            let _ = writeln!(out, "(no state yet: planned against an empty state)");
        }
        for r in &self.resources {
            if r.action == Action::NoOp && r.drift.is_empty() && r.notes.is_empty() {
                continue;
            }
            let tail = if r.action == Action::Replace { "  # forces replacement" } else { "" };
            let _ = writeln!(out, "\n{:>3} {} ({}){tail}", r.action.symbol(), r.address, r.kind);
            for n in &r.notes {
                let _ = writeln!(out, "      # {n}");
            }
            for d in &r.drift {
                let _ = writeln!(out, "      # drift: {d}");
            }
            if r.action == Action::Create {
                render_spec(&mut out, "", &r.spec, 6);
            }
            for c in &r.changes {
                let show = |v: &Option<Value>| match v {
                    _ if c.sensitive => "(sensitive)".to_owned(),
                    Some(v) => compact(v),
                    None => "null".to_owned(),
                };
                let after = if c.unknown { "(known after apply)".to_owned() } else { show(&c.after) };
                let mark = if c.forces_replacement { "  # forces replacement" } else { "" };
                let _ = writeln!(out, "      ~ {}: {} -> {}{mark}", c.path, show(&c.before), after);
            }
        }
        let _ = writeln!(out, "\nPlan: {}.", self.summary);
        out
    }
}

fn compact(v: &Value) -> String {
    let s = redact_json(v).to_string();
    if s.len() > 200 { format!("{}…", &s[..s.char_indices().nth(200).map(|(i, _)| i).unwrap_or(s.len())]) } else { s }
}

fn render_spec(out: &mut String, prefix: &str, v: &Value, indent: usize) {
    if let Some(text) = displayed_template(v) {
        if text.contains('\n') {
            let _ = writeln!(out, "{:indent$}+ {prefix}: <<EOT  # ${{…}} known after apply", "");
            for line in text.lines() {
                let _ = writeln!(out, "{:indent$}    {line}", "");
            }
            let _ = writeln!(out, "{:indent$}  EOT", "");
        } else {
            let _ = writeln!(
                out,
                "{:indent$}+ {prefix}: {}  # known after apply",
                "",
                compact(&Value::String(text.into()))
            );
        }
        return;
    }
    match v {
        Value::Object(m) if !is_secret_value(v) && as_ref_marker(v).is_none() => {
            for (k, c) in m {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                render_spec(out, &path, c, indent);
            }
        }
        Value::Null => {}
        Value::String(s) if s.contains('\n') => {
            let _ = writeln!(out, "{:indent$}+ {prefix}: <<EOT", "");
            for line in s.lines() {
                let _ = writeln!(out, "{:indent$}    {line}", "");
            }
            let _ = writeln!(out, "{:indent$}  EOT", "");
        }
        other => {
            let _ = writeln!(out, "{:indent$}+ {prefix}: {}", "", display_value(other));
        }
    }
}

/// The text of a template as [`display_spec`] shows it.
fn displayed_template(v: &Value) -> Option<&str> {
    let m = v.as_object()?;
    if m.len() == 2 && m.get("known_after_apply") == Some(&Value::Bool(true)) {
        return m.get("template")?.as_str();
    }
    None
}

/// A spec value for display: secrets redacted, references as `(known after apply: a.b)`.
pub(crate) fn display_value(v: &Value) -> String {
    if is_secret_value(v) {
        return "(sensitive)".into();
    }
    if let Some(r) = as_ref_marker(v) {
        return format!("(known after apply: {r})");
    }
    if let Some(parts) = as_template_marker(v) {
        return template_preview(&parts);
    }
    compact(v)
}

/// A template as text with `${resource.output}` placeholders and `(sensitive)` secrets.
pub(crate) fn template_preview(parts: &[crate::input::TemplatePart]) -> String {
    use crate::input::TemplatePart;
    parts
        .iter()
        .map(|p| match p {
            TemplatePart::Text(t) => t.clone(),
            TemplatePart::Ref(r) => format!("${{{r}}}"),
            TemplatePart::Sensitive(_) => "(sensitive)".into(),
        })
        .collect()
}

/// A spec for display in plans: secrets redacted, references readable.
pub(crate) fn display_spec(v: &Value) -> Value {
    if is_secret_value(v) {
        return Value::String("(sensitive)".into());
    }
    if as_ref_marker(v).is_some() {
        return Value::String(display_value(v));
    }
    if let Some(parts) = as_template_marker(v) {
        return serde_json::json!({ "template": template_preview(&parts), "known_after_apply": true });
    }
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, c)| (k.clone(), display_spec(c))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(display_spec).collect()),
        other => other.clone(),
    }
}

/// A stable hash of a JSON spec (keys are sorted by serde_json's map).
pub(crate) fn spec_hash(v: &Value) -> String {
    Sha256::digest(v.to_string().as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}
