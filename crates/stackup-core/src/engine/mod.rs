//! The [`Engine`]: `plan`, `apply`, `destroy` and `refresh` of a [`Stack`] against a
//! [`StateBackend`].
//!
//! * **plan** refreshes every recorded object (`read`), reconciles intents left by an
//!   interrupted run (`lookup` adopts what it created), reports drift, and diffs each spec
//!   against what exists. Pure with respect to the cloud: it makes no mutating call.
//! * **apply** executes a plan under the state lock, refusing a stale one. A resource starts as
//!   soon as its dependencies finish, under a global limit (default 10) and a limit per provider.
//!   A failure skips only its dependents; independent work goes on; root causes are reported.
//!   Every mutating call is preceded by a persisted intent and followed by a persisted result.
//! * **destroy** deletes everything in state in reverse dependency order.
//!
//! Cancelling (the token from [`Engine::cancel_token`], or dropping the future) stops new work;
//! state stays consistent because intents are recorded before every call.

mod executor;
mod planner;
mod state_store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::backend::StateBackend;
use crate::diff::Action;
use crate::error::Error;
use crate::events::{ChangeSummary, EventBus, EventStream};
use crate::lock::LockInfo;
use crate::plan::Plan;
use crate::stack::Stack;
use crate::state::{StateDoc, StateKey};

use state_store::StateStore;

/// Tuning for an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Resources worked on at once, across all providers (default 10).
    pub parallelism: usize,
    /// Resources worked on at once per provider (`azure` → 4); unlimited beyond `parallelism`
    /// when absent.
    pub provider_limits: BTreeMap<String, usize>,
    /// Encrypts secret outputs in state; without it they are not stored.
    pub state_key: Option<StateKey>,
    /// Resources the next plan replaces even if nothing changed (Terraform's `-replace`).
    pub replace: BTreeSet<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { parallelism: 10, provider_limits: BTreeMap::new(), state_key: None, replace: BTreeSet::new() }
    }
}

/// One resource that failed.
#[derive(Debug)]
pub struct ResourceFailure {
    /// Its address.
    pub address: String,
    /// What was attempted.
    pub action: Action,
    /// Why it failed.
    pub error: Error,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Actions performed (no-ops counted as unchanged).
    pub summary: ChangeSummary,
    /// Root-cause failures only.
    pub failed: Vec<ResourceFailure>,
    /// Resources not attempted because a dependency failed (or the run was cancelled).
    pub skipped: Vec<String>,
    /// True when the run was cancelled before finishing.
    pub cancelled: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl ApplyReport {
    /// True when everything planned was done.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && !self.cancelled
    }

    /// The report, or an error summarising the root causes.
    pub fn into_result(self) -> Result<ApplyReport, Error> {
        if self.is_success() {
            return Ok(self);
        }
        if self.cancelled && self.failed.is_empty() {
            return Err(Error::Cancelled);
        }
        let causes: Vec<String> = self.failed.iter().map(|f| format!("{}: {}", f.address, f.error)).collect();
        Err(Error::Stack(format!(
            "{} resource(s) failed ({}); {} skipped",
            self.failed.len(),
            causes.join("; "),
            self.skipped.len()
        )))
    }
}

/// Drives a stack against a state backend.
pub struct Engine {
    stack: Stack,
    backend: Arc<dyn StateBackend>,
    options: EngineOptions,
    events: Arc<EventBus>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stack", &self.stack.name())
            .field("backend", &self.backend.location())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with default options. Reads no environment; see [`Engine::from_env`].
    pub fn new(stack: Stack, backend: Arc<dyn StateBackend>) -> Self {
        Engine::with_options(stack, backend, EngineOptions::default())
    }

    /// An engine whose state key comes from `STACKUP_STATE_KEY` (if set).
    pub fn from_env(stack: Stack, backend: Arc<dyn StateBackend>) -> Result<Self, Error> {
        let options = EngineOptions { state_key: StateKey::from_env()?, ..Default::default() };
        Ok(Engine::with_options(stack, backend, options))
    }

    /// An engine with explicit options.
    pub fn with_options(stack: Stack, backend: Arc<dyn StateBackend>, options: EngineOptions) -> Self {
        Engine { stack, backend, options, events: Arc::new(EventBus::new()), cancel: CancellationToken::new() }
    }

    /// Sets the global concurrency limit (at least 1).
    pub fn parallelism(mut self, n: usize) -> Self {
        self.options.parallelism = n.max(1);
        self
    }

    /// Sets a per-provider concurrency limit.
    pub fn provider_limit(mut self, provider: &str, n: usize) -> Self {
        self.options.provider_limits.insert(provider.to_owned(), n.max(1));
        self
    }

    /// Sets the key that encrypts secrets in state.
    pub fn state_key(mut self, key: StateKey) -> Self {
        self.options.state_key = Some(key);
        self
    }

    /// Plans a replacement of `address` (delete, then create) even if its spec and the object
    /// agree: to re-run a VM's first boot, or to renew a credential early. An address the stack
    /// does not have fails the plan before any call.
    pub fn replace(mut self, address: impl Into<String>) -> Self {
        self.options.replace.insert(address.into());
        self
    }

    /// The stack.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// A stream of every event from now on.
    pub fn events(&self) -> EventStream {
        self.events.subscribe()
    }

    /// The bus events are emitted on.
    pub fn event_bus(&self) -> &Arc<EventBus> {
        &self.events
    }

    /// Cancelling this token stops a running apply from starting new work; in-flight calls
    /// finish and are recorded.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Computes what `apply` would do. Makes no mutating call.
    pub async fn plan(&self) -> Result<Plan, Error> {
        planner::plan(self, false).await
    }

    /// Computes a plan that deletes everything in state.
    pub async fn plan_destroy(&self) -> Result<Plan, Error> {
        planner::plan(self, true).await
    }

    /// Executes a plan. Resource failures are in the report; an `Err` means the run could not
    /// start or lost its state (stale plan, lock held, state write failed).
    pub async fn apply(&self, plan: &Plan) -> Result<ApplyReport, Error> {
        executor::apply(self, plan).await
    }

    /// Plans and executes a destroy.
    pub async fn destroy(&self) -> Result<ApplyReport, Error> {
        let plan = self.plan_destroy().await?;
        self.apply(&plan).await
    }

    /// Reads every recorded object and saves what it finds (outputs, objects deleted outside
    /// stackup) without changing anything in the cloud.
    pub async fn refresh(&self) -> Result<StateDoc, Error> {
        let lock = self.lock("refresh").await?;
        let result = async {
            let store = self.load().await?;
            let refreshed = planner::refresh(self, &store.snapshot()).await?;
            for r in store.snapshot().resources.values() {
                store.note_secrets(&r.outputs);
            }
            for v in refreshed.observed.values().flatten() {
                store.note_secrets(v);
            }
            for n in self.stack.nodes() {
                store.note_secrets(&n.spec);
            }
            store.update(|doc| {
                for (addr, observed) in refreshed.observed {
                    match observed {
                        Some(v) => {
                            if let Some(r) = doc.resources.get_mut(&addr) {
                                r.outputs = v;
                            }
                        }
                        None => {
                            doc.resources.remove(&addr);
                        }
                    }
                }
            });
            store.persist().await?;
            Ok(store.snapshot())
        }
        .await;
        lock.release().await;
        result
    }

    /// The current state, if any.
    pub async fn state(&self) -> Result<Option<StateDoc>, Error> {
        match self.backend.read().await? {
            Some(s) => StateDoc::parse(&s.bytes, &self.backend.location(), self.options.state_key.as_ref()).map(Some),
            None => Ok(None),
        }
    }

    /// The outputs of every resource in state, by address (secrets as `{"$secret": …}`).
    pub async fn outputs(&self) -> Result<BTreeMap<String, Value>, Error> {
        Ok(self
            .state()
            .await?
            .map(|d| d.resources.into_iter().map(|(a, r)| (a, r.outputs)).collect())
            .unwrap_or_default())
    }

    /// Breaks the state lock whoever holds it; returns who held it.
    pub async fn force_unlock(&self) -> Result<Option<LockInfo>, Error> {
        self.backend.force_unlock().await
    }

    async fn load(&self) -> Result<StateStore, Error> {
        StateStore::load(self.backend.clone(), self.options.state_key.clone(), self.stack.name()).await
    }

    async fn lock(&self, operation: &str) -> Result<LockGuard, Error> {
        let info = LockInfo::for_operation(operation);
        self.backend.lock(&info).await?;
        Ok(LockGuard { backend: self.backend.clone(), info: Some(info) })
    }
}

/// Releases the state lock; if the run's future is dropped, releases it in the background.
struct LockGuard {
    backend: Arc<dyn StateBackend>,
    info: Option<LockInfo>,
}

impl LockGuard {
    async fn release(mut self) {
        if let Some(info) = self.info.take()
            && let Err(e) = self.backend.unlock(&info).await
        {
            tracing::warn!(error = %e, "could not release state lock");
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(info) = self.info.take() {
            let backend = self.backend.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = backend.unlock(&info).await;
                });
            }
        }
    }
}
