//! Applying a plan: a dependency-ordered, concurrent walk with intents recorded before every
//! mutating call and results after it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::planner::ctx;
use super::state_store::StateStore;
use super::{ApplyReport, Engine, ResourceFailure};
use crate::diff::Action;
use crate::error::Error;
use crate::events::{EventBus, EventKind};
use crate::input::{collect_refs, lookup_path, resolve_refs};
use crate::lock::random_id;
use crate::plan::{Plan, PlanInternal, spec_hash};
use crate::provisioner::Ctx;
use crate::stack::DynProvisioner;
use crate::state::{PendingKind, PendingOp, ResourceState, ResourceStatus};

type Outputs = Arc<Mutex<BTreeMap<String, Value>>>;

/// Everything one node's task needs, owned.
struct Job {
    address: String,
    /// Fields whose changes are ignored ([`crate::Stack::ignore_changes`]).
    ignore_changes: Vec<String>,
    action: Action,
    provisioner: Option<Arc<dyn DynProvisioner>>,
    spec: Value,
    dependencies: Vec<String>,
    internal: PlanInternal,
}

struct Shared {
    store: Arc<StateStore>,
    outputs: Outputs,
    events: Arc<EventBus>,
    state_failed: AtomicBool,
}

pub(crate) async fn apply(engine: &Engine, plan: &Plan) -> Result<ApplyReport, Error> {
    let lock = engine.lock(if plan.destroy { "destroy" } else { "apply" }).await?;
    let result = run(engine, plan).await;
    lock.release().await;
    result
}

async fn check_fresh(engine: &Engine, plan: &Plan, store: &StateStore) -> Result<(), Error> {
    let doc = store.snapshot();
    let is_new = store.is_new().await;
    if plan.stack != engine.stack.name() {
        return Err(Error::StalePlan(format!("plan is for stack `{}`, not `{}`", plan.stack, engine.stack.name())));
    }
    let same_state = match &plan.lineage {
        None => is_new,
        Some(l) => !is_new && *l == doc.lineage && plan.serial == doc.serial,
    };
    if !same_state {
        return Err(Error::StalePlan(format!(
            "state changed since the plan was made (plan at serial {}, state now at serial {}); plan again",
            plan.serial, doc.serial
        )));
    }
    if plan.destroy {
        return Ok(());
    }
    for node in engine.stack.nodes() {
        match plan.resource(&node.address) {
            Some(r) if r.action != Action::Delete && r.internal.spec_hash == spec_hash(&node.spec) => {}
            Some(_) => return Err(Error::StalePlan(format!("`{}` changed since the plan was made", node.address))),
            None => return Err(Error::StalePlan(format!("`{}` was added after the plan was made", node.address))),
        }
    }
    Ok(())
}

async fn run(engine: &Engine, plan: &Plan) -> Result<ApplyReport, Error> {
    let start = Instant::now();
    let store = Arc::new(engine.load().await?);
    check_fresh(engine, plan, &store).await?;

    // Outputs known before anything runs, and state updates that need no cloud call:
    // adopted objects and refreshed outputs.
    let mut known = BTreeMap::new();
    for doc_r in store.snapshot().resources.values() {
        store.note_secrets(&doc_r.outputs);
    }
    for r in &plan.resources {
        if let Some(obs) = &r.internal.observed {
            store.note_secrets(obs);
        }
        if let Some(node) = engine.stack.node(&r.address) {
            store.note_secrets(&node.spec);
        }
    }
    store.update(|doc| {
        for r in &plan.resources {
            let (Some(obs), Some(id)) = (&r.internal.observed, &r.internal.id) else { continue };
            known.insert(r.address.clone(), obs.clone());
            if r.action == Action::Delete {
                continue;
            }
            let entry = doc.resources.entry(r.address.clone()).or_insert_with(|| new_entry(engine, &r.address));
            entry.id = Some(id.clone());
            entry.outputs = obs.clone();
            if r.internal.adopted {
                entry.pending = None;
            }
        }
    });
    let shared = Arc::new(Shared {
        store: store.clone(),
        outputs: Arc::new(Mutex::new(known)),
        events: engine.events.clone(),
        state_failed: AtomicBool::new(false),
    });

    // The graph over plan entries.
    let n = plan.resources.len();
    let index: BTreeMap<&str, usize> =
        plan.resources.iter().enumerate().map(|(i, r)| (r.address.as_str(), i)).collect();
    let mut deps: Vec<Vec<usize>> = vec![vec![]; n];
    for (i, r) in plan.resources.iter().enumerate() {
        if r.action == Action::Delete {
            // Delete after everything being deleted that depends on it.
            for (j, other) in plan.resources.iter().enumerate() {
                if other.action == Action::Delete && other.internal.state_deps.contains(&r.address) && i != j {
                    deps[i].push(j);
                }
            }
        } else {
            deps[i] = r.dependencies.iter().filter_map(|d| index.get(d.as_str()).copied()).collect();
        }
    }
    let mut dependents: Vec<Vec<usize>> = vec![vec![]; n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut finished = vec![false; n];

    let global = Arc::new(Semaphore::new(engine.options.parallelism.max(1)));
    let mut per_provider: BTreeMap<String, Arc<Semaphore>> = BTreeMap::new();
    let mut report = ApplyReport::default();
    let mut tasks: JoinSet<(usize, Result<Action, Error>)> = JoinSet::new();

    loop {
        while let Some(i) = ready.pop_front() {
            let r = &plan.resources[i];
            if engine.cancel.is_cancelled() || shared.state_failed.load(Ordering::SeqCst) {
                report.cancelled = true;
                skip_cascade(i, "run cancelled", plan, &dependents, &mut finished, &mut report, &engine.events);
                continue;
            }
            if r.action == Action::NoOp && !r.internal.adopted {
                report.summary.add(Action::NoOp);
                finished[i] = true;
                release(i, &dependents, &mut remaining, &mut ready, &finished);
                continue;
            }
            let node = engine.stack.node(&r.address);
            let provisioner = node.map(|n| n.provisioner.clone()).or_else(|| {
                let kind = r.kind.clone();
                engine.stack.provisioner_for(&kind).cloned()
            });
            let provider = r.kind.split(':').next().unwrap_or_default().to_owned();
            let limit = engine.options.provider_limits.get(&provider).copied();
            let provider_sem = limit
                .map(|l| per_provider.entry(provider.clone()).or_insert_with(|| Arc::new(Semaphore::new(l))).clone());
            let job = Job {
                address: r.address.clone(),
                ignore_changes: node.map(|n| n.ignore_changes.clone()).unwrap_or_default(),
                action: r.action,
                provisioner,
                spec: node.map(|n| n.spec.clone()).unwrap_or(Value::Null),
                dependencies: r.dependencies.clone(),
                internal: r.internal.clone(),
            };
            let token = job.internal.token.clone().unwrap_or_else(|| format!("stackup-{}", random_id()));
            let c = ctx(engine, &r.address, &token);
            let shared = shared.clone();
            let global = global.clone();
            let span = tracing::info_span!("resource", address = %r.address, action = ?r.action);
            tasks.spawn(
                async move {
                    let _p = match &provider_sem {
                        Some(s) => Some(s.clone().acquire_owned().await.expect("semaphore open")),
                        None => None,
                    };
                    let _g = global.acquire_owned().await.expect("semaphore open");
                    (i, execute(job, c, &shared).await)
                }
                .instrument(span),
            );
        }
        let Some(joined) = tasks.join_next().await else { break };
        let (i, result) = match joined {
            Ok(v) => v,
            Err(e) => return Err(Error::other("a resource task panicked", e)),
        };
        finished[i] = true;
        let r = &plan.resources[i];
        match result {
            Ok(done) => {
                report.summary.add(done);
                release(i, &dependents, &mut remaining, &mut ready, &finished);
            }
            Err(error) => {
                shared.events.emit(EventKind::ResourceFailed {
                    address: r.address.clone(),
                    action: r.action,
                    error: error.to_string(),
                });
                for &d in &dependents[i] {
                    skip_cascade(d, &r.address, plan, &dependents, &mut finished, &mut report, &engine.events);
                }
                report.failed.push(ResourceFailure { address: r.address.clone(), action: r.action, error });
            }
        }
    }
    if engine.cancel.is_cancelled() {
        report.cancelled = true;
        engine.events.emit(EventKind::Cancelled);
    }
    // Final write (refreshed outputs of untouched resources, removals).
    if let Err(e) = store.persist().await {
        let copy = store.write_errored_copy();
        return Err(Error::State(format!(
            "could not save state ({e}); a copy was written to {}",
            copy.map(|p| p.display().to_string()).unwrap_or_else(|| "nowhere (write failed too)".into())
        )));
    }
    if shared.state_failed.load(Ordering::SeqCst) {
        return Err(Error::State("state could not be saved during the run; it was saved at the end".into()));
    }
    report.elapsed = start.elapsed();
    engine.events.emit(EventKind::Summary {
        done: report.summary,
        failed: report.failed.len(),
        skipped: report.skipped.len(),
        elapsed_ms: report.elapsed.as_millis() as u64,
    });
    Ok(report)
}

fn release(
    i: usize,
    dependents: &[Vec<usize>],
    remaining: &mut [usize],
    ready: &mut VecDeque<usize>,
    finished: &[bool],
) {
    for &d in &dependents[i] {
        remaining[d] -= 1;
        if remaining[d] == 0 && !finished[d] {
            ready.push_back(d);
        }
    }
}

fn skip_cascade(
    i: usize,
    because: &str,
    plan: &Plan,
    dependents: &[Vec<usize>],
    finished: &mut [bool],
    report: &mut ApplyReport,
    events: &EventBus,
) {
    if finished[i] {
        return;
    }
    finished[i] = true;
    let address = plan.resources[i].address.clone();
    events.emit(EventKind::ResourceSkipped { address: address.clone(), because: because.to_owned() });
    report.skipped.push(address);
    for &d in &dependents[i] {
        skip_cascade(d, because, plan, dependents, finished, report, events);
    }
}

fn new_entry(engine: &Engine, address: &str) -> ResourceState {
    let (provider, kind) = engine
        .stack
        .node(address)
        .map(|n| {
            let k = n.provisioner.kind();
            (k.provider.to_owned(), k.name.to_owned())
        })
        .unwrap_or_default();
    ResourceState {
        provider,
        kind,
        id: None,
        outputs: Value::Null,
        dependencies: engine.stack.dependencies(address).unwrap_or_default().into_iter().map(str::to_owned).collect(),
        status: ResourceStatus::Ready,
        pending: None,
    }
}

/// Errors whose outcome is unknown: the intent stays in state so the next run reconciles it.
fn outcome_unknown(e: &Error) -> bool {
    matches!(e, Error::MaybeSent(_) | Error::Timeout { .. } | Error::Cancelled)
}

async fn persist(shared: &Shared) -> Result<(), Error> {
    shared.store.persist().await.inspect_err(|_| shared.state_failed.store(true, Ordering::SeqCst))
}

fn set_pending(shared: &Shared, job: &Job, c: &Ctx, op: PendingKind) {
    let kind = job.provisioner.as_ref().map(|p| p.kind());
    shared.store.update_resource(&job.address, |doc| {
        let e = doc.resources.entry(job.address.clone()).or_insert_with(|| ResourceState {
            provider: kind.map(|k| k.provider.to_owned()).unwrap_or_default(),
            kind: kind.map(|k| k.name.to_owned()).unwrap_or_default(),
            id: None,
            outputs: Value::Null,
            dependencies: job.dependencies.clone(),
            status: ResourceStatus::Ready,
            pending: None,
        });
        e.pending = Some(PendingOp { op, token: c.idempotency_token().to_owned(), started: OffsetDateTime::now_utc() });
    });
}

async fn execute(job: Job, c: Ctx, shared: &Shared) -> Result<Action, Error> {
    let Some(prov) = job.provisioner.clone() else {
        return Err(Error::Stack(format!("no provisioner registered for `{}`", job.address)));
    };
    let started = Instant::now();
    let mut action = job.action;
    if action == Action::Delete {
        if job.internal.gone {
            shared.store.update_resource(&job.address, |doc| doc.resources.remove(&job.address));
            persist(shared).await?;
            return Ok(Action::NoOp);
        }
        shared.events.emit(EventKind::ResourceStarted { address: job.address.clone(), action });
        delete(&job, &prov, &c, shared).await?;
        shared.store.update_resource(&job.address, |doc| doc.resources.remove(&job.address));
        persist(shared).await?;
        finished(shared, &job.address, action, started);
        return Ok(action);
    }

    // Resolve references now that every dependency is done.
    let spec = {
        let outputs = shared.outputs.lock().unwrap_or_else(|p| p.into_inner());
        resolve_refs(&job.spec, &|r| outputs.get(&r.resource).and_then(|o| lookup_path(o, &r.output)).cloned())?
    };
    let mut unresolved = vec![];
    collect_refs(&spec, &mut unresolved);
    if let Some(r) = unresolved.first() {
        return Err(Error::Stack(format!(
            "`{}`: reference {r} has no value (no such output, or a secret output that state does not keep: \
             set {} so state keeps secrets encrypted, or replace `{}` too)",
            job.address,
            crate::state::STATE_KEY_ENV,
            r.resource
        )));
    }
    prov.validate(&spec)?;
    shared.store.note_secrets(&spec);

    // Re-diff with real values: a change known only after apply may turn out to be none.
    if let (Some(obs), Action::Update | Action::NoOp) = (&job.internal.observed, action) {
        let mut diff = prov.diff(&spec, obs)?;
        diff.drop_fields(&job.ignore_changes);
        action = diff.action();
        if action == Action::NoOp {
            if job.internal.adopted {
                persist(shared).await?;
            }
            return Ok(Action::NoOp);
        }
    }
    shared.events.emit(EventKind::ResourceStarted { address: job.address.clone(), action });
    match action {
        Action::Update => {
            let id = job.internal.id.clone().expect("update has an id");
            let observed = job.internal.observed.clone().unwrap_or(Value::Null);
            set_pending(shared, &job, &c, PendingKind::Update);
            persist(shared).await?;
            let result = prov.update(&c, &id, &spec, &observed).await;
            let outcome = match result {
                Ok(out) => {
                    record_outputs(shared, &job, &id, out);
                    Ok(action)
                }
                Err(e) => {
                    if !outcome_unknown(&e) {
                        shared.store.update_resource(&job.address, |doc| {
                            if let Some(r) = doc.resources.get_mut(&job.address) {
                                r.pending = None;
                            }
                        });
                    }
                    Err(e)
                }
            };
            persist(shared).await?;
            if outcome.is_ok() {
                finished(shared, &job.address, action, started);
            }
            outcome
        }
        Action::Replace | Action::Create => {
            if action == Action::Replace {
                delete(&job, &prov, &c, shared).await?;
                shared.store.update_resource(&job.address, |doc| {
                    if let Some(r) = doc.resources.get_mut(&job.address) {
                        r.id = None;
                        r.outputs = Value::Null;
                        r.status = ResourceStatus::Ready;
                    }
                });
            }
            set_pending(shared, &job, &c, PendingKind::Create);
            persist(shared).await?;
            let outcome = match prov.create(&c, &spec).await {
                Ok((id, out)) => {
                    record_outputs(shared, &job, &id, out);
                    Ok(action)
                }
                Err(ce) => {
                    shared.store.update_resource(&job.address, |doc| {
                        let Some(r) = doc.resources.get_mut(&job.address) else { return };
                        if let Some(id) = &ce.partial_id {
                            r.id = Some(id.clone());
                            r.status = ResourceStatus::Tainted;
                            r.pending = None;
                        } else if !outcome_unknown(&ce.error) {
                            doc.resources.remove(&job.address);
                        }
                    });
                    Err(ce.error)
                }
            };
            persist(shared).await?;
            if outcome.is_ok() {
                finished(shared, &job.address, action, started);
            }
            outcome
        }
        Action::NoOp | Action::Delete => Ok(Action::NoOp),
    }
}

fn record_outputs(shared: &Shared, job: &Job, id: &str, outputs: Value) {
    shared.store.note_secrets(&outputs);
    shared.outputs.lock().unwrap_or_else(|p| p.into_inner()).insert(job.address.clone(), outputs.clone());
    shared.store.update_resource(&job.address, |doc| {
        if let Some(r) = doc.resources.get_mut(&job.address) {
            r.id = Some(id.to_owned());
            r.outputs = outputs;
            r.status = ResourceStatus::Ready;
            r.pending = None;
            r.dependencies = job.dependencies.clone();
        }
    });
}

fn finished(shared: &Shared, address: &str, action: Action, started: Instant) {
    shared.events.emit(EventKind::ResourceFinished {
        address: address.to_owned(),
        action,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
}

async fn delete(job: &Job, prov: &Arc<dyn DynProvisioner>, c: &Ctx, shared: &Shared) -> Result<(), Error> {
    let Some(id) = job.internal.id.clone() else { return Ok(()) };
    let observed = job.internal.observed.clone().unwrap_or(Value::Null);
    set_pending(shared, job, c, PendingKind::Delete);
    persist(shared).await?;
    match prov.delete(c, &id, &observed).await {
        Ok(()) => Ok(()),
        Err(e) => {
            if !outcome_unknown(&e) {
                shared.store.update_resource(&job.address, |doc| {
                    if let Some(r) = doc.resources.get_mut(&job.address) {
                        r.pending = None;
                    }
                });
            }
            persist(shared).await?;
            Err(e)
        }
    }
}
