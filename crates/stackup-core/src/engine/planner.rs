//! Planning: refresh what state records, reconcile interrupted runs, diff each spec.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;

use super::Engine;
use crate::diff::{Action, FieldChange};
use crate::error::Error;
use crate::events::{ChangeSummary, EventKind};
use crate::input::{lookup_path, resolve_refs};
use crate::plan::{Plan, PlanInternal, PlannedResource, display_spec, spec_hash};
use crate::provisioner::Ctx;
use crate::stack::DynProvisioner;
use crate::state::{PendingKind, ResourceStatus, StateDoc};

/// What a refresh found.
pub(crate) struct Refreshed {
    /// Per recorded address: the object now (`None`: gone).
    pub observed: BTreeMap<String, Option<Value>>,
    /// Objects found by `lookup` for creates interrupted before their id was recorded.
    pub adopted: BTreeMap<String, (String, Value)>,
    /// What changed outside stackup, per address.
    pub drift: BTreeMap<String, Vec<String>>,
}

pub(crate) fn provisioner_for(
    engine: &Engine,
    address: &str,
    r: &crate::state::ResourceState,
) -> Result<Arc<dyn DynProvisioner>, Error> {
    let kind = format!("{}:{}", r.provider, r.kind);
    engine.stack.provisioner_for(&kind).cloned().ok_or_else(|| {
        Error::Stack(format!(
            "state records `{address}` of kind {kind}, but no provisioner for that kind is registered: \
             keep the resource in the stack or call Stack::register so it can be deleted"
        ))
    })
}

pub(crate) fn ctx(engine: &Engine, address: &str, token: &str) -> Ctx {
    Ctx::new(engine.stack.name(), address, token, engine.events.clone(), engine.cancel.clone())
}

fn describe_drift(prior: &Value, now: &Value) -> Vec<String> {
    let (Some(p), Some(n)) = (prior.as_object(), now.as_object()) else { return vec![] };
    let mut out = vec![];
    for (k, pv) in p {
        match n.get(k) {
            None => out.push(format!("`{k}` is gone")),
            Some(nv) if nv != pv => {
                if crate::secret::contains_secret(pv) || crate::secret::contains_secret(nv) {
                    out.push(format!("`{k}` changed (sensitive)"));
                } else {
                    out.push(format!("`{k}` changed from {} to {}", pv, nv));
                }
            }
            _ => {}
        }
    }
    out
}

/// Reads every object state records (and looks up interrupted creates), concurrently.
pub(crate) async fn refresh(engine: &Engine, doc: &StateDoc) -> Result<Refreshed, Error> {
    let mut jobs = vec![];
    for (addr, r) in &doc.resources {
        let prov = provisioner_for(engine, addr, r)?;
        let token = r.pending.as_ref().map(|p| p.token.clone()).unwrap_or_default();
        let c = ctx(engine, addr, &token);
        let addr = addr.clone();
        let r = r.clone();
        let spec = engine.stack.node(&addr).map(|n| {
            // Resolve what we can from state so lookup sees real names and ids.
            resolve_refs(&n.spec, &|rf| {
                doc.resources.get(&rf.resource).and_then(|d| lookup_path(&d.outputs, &rf.output).cloned())
            })
        });
        jobs.push(async move {
            match (&r.id, &r.pending) {
                (Some(id), _) => {
                    let prior = (!r.outputs.is_null()).then_some(&r.outputs);
                    let now = prov.read(&c, id, prior).await.map_err(|e| with_address(&addr, e))?;
                    Ok::<_, Error>((addr, now, None))
                }
                (None, Some(p)) if p.op == PendingKind::Create => {
                    let found = match spec {
                        Some(spec) => prov.lookup(&c, &spec?).await.map_err(|e| with_address(&addr, e))?,
                        None => None,
                    };
                    Ok((addr, None, found))
                }
                (None, _) => Ok((addr, None, None)),
            }
        });
    }
    let results: Vec<Result<_, Error>> =
        futures::stream::iter(jobs).buffer_unordered(engine.options.parallelism.max(1)).collect().await;
    let mut out = Refreshed { observed: BTreeMap::new(), adopted: BTreeMap::new(), drift: BTreeMap::new() };
    for res in results {
        let (addr, now, found) = res?;
        let r = &doc.resources[&addr];
        if r.id.is_some() {
            match &now {
                None => {
                    out.drift.insert(addr.clone(), vec!["deleted outside stackup".into()]);
                }
                Some(v) => {
                    let d = describe_drift(&r.outputs, v);
                    if !d.is_empty() {
                        out.drift.insert(addr.clone(), d);
                    }
                }
            }
        }
        if let Some(f) = found {
            out.adopted.insert(addr.clone(), f);
        }
        out.observed.insert(addr, now);
    }
    for (addr, d) in &out.drift {
        engine.events.emit(EventKind::DriftDetected { address: addr.clone(), detail: d.join("; ") });
    }
    Ok(out)
}

fn with_address(address: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput { field, rule } => Error::InvalidInput { field: format!("{address}.{field}"), rule },
        other => Error::other(format!("refreshing `{address}`"), other),
    }
}

/// Orders addresses so that each comes after everything that depends on it (delete order).
pub(crate) fn delete_order(doc: &StateDoc, addrs: &[String]) -> Vec<String> {
    let set: std::collections::BTreeSet<&String> = addrs.iter().collect();
    let mut out: Vec<String> = vec![];
    let mut done = std::collections::BTreeSet::new();
    fn visit(
        a: &String,
        doc: &StateDoc,
        set: &std::collections::BTreeSet<&String>,
        done: &mut std::collections::BTreeSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if done.contains(a) || depth > 10_000 {
            return;
        }
        done.insert(a.clone());
        // Dependents first.
        for (b, r) in &doc.resources {
            if set.contains(b) && r.dependencies.contains(a) {
                visit(b, doc, set, done, out, depth + 1);
            }
        }
        out.push(a.clone());
    }
    for a in addrs {
        visit(a, doc, &set, &mut done, &mut out, 0);
    }
    out
}

fn planned_delete(engine: &Engine, doc: &StateDoc, refreshed: &Refreshed, addr: &str) -> PlannedResource {
    let r = &doc.resources[addr];
    let observed = refreshed.observed.get(addr).cloned().flatten();
    let adopted = refreshed.adopted.get(addr).cloned();
    let (id, observed) = match adopted {
        Some((id, v)) => (Some(id), Some(v)),
        None => (r.id.clone(), observed),
    };
    let gone = observed.is_none();
    let mut notes = vec![];
    if gone {
        notes.push("already gone: only removed from state".into());
    }
    let _ = engine;
    PlannedResource {
        address: addr.to_owned(),
        kind: format!("{}:{}", r.provider, r.kind),
        action: Action::Delete,
        changes: vec![],
        drift: refreshed.drift.get(addr).cloned().unwrap_or_default(),
        dependencies: r.dependencies.clone(),
        spec: Value::Null,
        notes,
        internal: PlanInternal { id, observed, gone, state_deps: r.dependencies.clone(), ..Default::default() },
    }
}

/// Computes a plan (or a destroy plan).
pub(crate) async fn plan(engine: &Engine, destroy: bool) -> Result<Plan, Error> {
    let order = if destroy { vec![] } else { engine.stack.validate()? };
    if let Some(a) = engine.options.replace.iter().find(|a| engine.stack.node(a).is_none()) {
        return Err(Error::invalid("replace", format!("the stack has no resource `{a}`")));
    }
    let store = engine.load().await?;
    let is_new = store.is_new().await;
    let doc = store.snapshot();
    let refreshed = refresh(engine, &doc).await?;
    let mut resources = vec![];
    let mut actions: BTreeMap<String, Action> = BTreeMap::new();

    if !destroy {
        for addr in &order {
            let node = engine.stack.node(addr).expect("validated");
            let entry = doc.resources.get(addr);
            let adopted = refreshed.adopted.get(addr).cloned();
            let (id, observed) = match (&adopted, entry) {
                (Some((id, v)), _) => (Some(id.clone()), Some(v.clone())),
                (None, Some(e)) => (e.id.clone(), refreshed.observed.get(addr).cloned().flatten()),
                (None, None) => (None, None),
            };
            // Outputs of dependencies are known only if they will not change.
            let known = |rf: &crate::input::OutputRef| -> Option<Value> {
                if actions.get(&rf.resource) != Some(&Action::NoOp) {
                    return None;
                }
                let v = refreshed
                    .adopted
                    .get(&rf.resource)
                    .map(|(_, v)| v)
                    .or_else(|| refreshed.observed.get(&rf.resource).and_then(Option::as_ref))?;
                lookup_path(v, &rf.output).cloned()
            };
            let resolved = resolve_refs(&node.spec, &known)?;
            let mut notes = vec![];
            if adopted.is_some() {
                notes.push("adopted: found the object an interrupted run created".into());
            }
            let tainted = entry.is_some_and(|e| e.status == ResourceStatus::Tainted);
            let (action, changes) = match &observed {
                Some(obs) => {
                    let diff = node.provisioner.diff(&resolved, obs).map_err(|e| with_address(addr, e))?;
                    let (diff, ignored) = node.without_ignored(diff);
                    if !ignored.is_empty() {
                        notes.push(format!("changes ignored (ignore_changes): {}", ignored.join(", ")));
                    }
                    if tainted {
                        notes.push("tainted: a previous create failed part-way".into());
                        (Action::Replace, diff.changes)
                    } else if engine.options.replace.contains(addr) {
                        notes.push("replacement requested".into());
                        (Action::Replace, diff.changes)
                    } else {
                        (diff.action(), diff.changes)
                    }
                }
                None => (Action::Create, Vec::<FieldChange>::new()),
            };
            // Server-side checks of changes whose spec is fully known.
            if matches!(action, Action::Create | Action::Update | Action::Replace) {
                let mut unresolved = vec![];
                crate::input::collect_refs(&resolved, &mut unresolved);
                if unresolved.is_empty() {
                    match node.provisioner.plan_check(&ctx(engine, addr, ""), &resolved).await {
                        Ok(warnings) => notes.extend(warnings.into_iter().map(|w| format!("warning: {w}"))),
                        Err(e @ (Error::Config(_) | Error::Unauthenticated(_) | Error::Transport(_))) => {
                            notes.push(format!("server-side check skipped: {e}"))
                        }
                        Err(e) => return Err(with_address(addr, e)),
                    }
                }
            }
            let token = entry
                .and_then(|e| e.pending.as_ref())
                .filter(|p| p.op == PendingKind::Create && adopted.is_none())
                .map(|p| p.token.clone());
            actions.insert(addr.clone(), action);
            resources.push(PlannedResource {
                address: addr.clone(),
                kind: node.provisioner.kind().to_string(),
                action,
                changes,
                drift: refreshed.drift.get(addr).cloned().unwrap_or_default(),
                dependencies: node.dependencies.iter().cloned().collect(),
                spec: display_spec(&resolved),
                notes,
                internal: PlanInternal {
                    spec_hash: spec_hash(&node.spec),
                    id,
                    observed,
                    adopted: adopted.is_some(),
                    gone: false,
                    token,
                    state_deps: vec![],
                },
            });
        }
    }

    // Everything in state that the stack no longer has (or everything, for destroy) is deleted.
    let removed: Vec<String> =
        doc.resources.keys().filter(|a| destroy || engine.stack.node(a).is_none()).cloned().collect();
    for addr in delete_order(&doc, &removed) {
        let r = &doc.resources[&addr];
        if r.id.is_none() && !refreshed.adopted.contains_key(&addr) {
            // An interrupted create that left nothing behind: nothing to delete, only forget.
            let mut p = planned_delete(engine, &doc, &refreshed, &addr);
            p.notes = vec!["interrupted create left nothing: only removed from state".into()];
            p.internal.gone = true;
            resources.push(p);
            continue;
        }
        resources.push(planned_delete(engine, &doc, &refreshed, &addr));
    }

    let mut summary = ChangeSummary::default();
    for r in &resources {
        if r.internal.gone && r.action == Action::Delete {
            continue;
        }
        summary.add(r.action);
    }
    engine.events.emit(EventKind::PlanComputed { summary });
    Ok(Plan {
        stack: engine.stack.name().to_owned(),
        destroy,
        lineage: (!is_new).then(|| doc.lineage.clone()),
        serial: doc.serial,
        summary,
        resources,
    })
}
