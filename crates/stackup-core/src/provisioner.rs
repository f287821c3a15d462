//! The contract every provider implements: [`Provisioner`].
//!
//! A provisioner manages one *kind* of resource (an Azure storage account, an OCI VCN, a
//! Tailscale auth key). It has a typed desired [`Provisioner::Spec`] and typed observed
//! [`Provisioner::Outputs`], and five operations:
//!
//! * `read`: refresh the real object by id (`None` when it is gone);
//! * `diff`: a **pure** comparison of spec and observed object, field by field, which says
//!   whether the object can be updated in place or must be replaced;
//! * `create`, `update`, `delete`: the mutating calls. Waits and long-running operations stay
//!   inside them: when they return, the object is ready (or gone).
//!
//! A failed `create` returns a [`CreateError`] carrying the id of anything that now exists, so
//! the engine records it and nothing is orphaned (Terraform's rule). `lookup` lets the engine
//! find an object that an interrupted run may have created before its id was recorded, so a
//! re-run adopts it instead of creating a duplicate.
//!
//! Secret outputs are fields of type [`crate::Secret`] (or `Option<Secret>` when the provider
//! can re-read them in `read`): state never stores them in plaintext.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::diff::Diff;
use crate::error::Error;
use crate::events::{EventBus, EventKind};

/// Identifies a resource kind: the provider it belongs to and its name there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKind {
    /// The provider (`azure`, `oci`, `r2`, `tailscale`, `test`). Also the key of the
    /// per-provider concurrency limit.
    pub provider: &'static str,
    /// The kind within the provider (`storage_account`, `vcn`, `auth_key`).
    pub name: &'static str,
}

impl ResourceKind {
    /// A kind.
    pub const fn new(provider: &'static str, name: &'static str) -> Self {
        ResourceKind { provider, name }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.provider, self.name)
    }
}

/// What a successful create returns: the provider's id and the observed outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<O> {
    /// The id the provider uses for the object (ARM id, OCID, bucket name, key id).
    pub id: String,
    /// The observed outputs.
    pub outputs: O,
}

/// A failed create, with the id of whatever now exists (if anything), so the engine can record
/// it as tainted and clean it up or retry instead of orphaning it.
#[derive(Debug)]
pub struct CreateError {
    /// What went wrong.
    pub error: Error,
    /// The id of an object that exists despite the failure.
    pub partial_id: Option<String>,
}

impl CreateError {
    /// A failure that left an object behind.
    pub fn partial(error: Error, id: impl Into<String>) -> Self {
        CreateError { error, partial_id: Some(id.into()) }
    }
}

impl From<Error> for CreateError {
    fn from(error: Error) -> Self {
        CreateError { error, partial_id: None }
    }
}

/// What a provider call knows about the run it is part of.
#[derive(Clone)]
pub struct Ctx {
    address: String,
    stack: String,
    token: String,
    events: Arc<EventBus>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("address", &self.address).field("stack", &self.stack).finish_non_exhaustive()
    }
}

impl Ctx {
    /// A context for one resource of one run.
    pub fn new(
        stack: impl Into<String>,
        address: impl Into<String>,
        token: impl Into<String>,
        events: Arc<EventBus>,
        cancel: CancellationToken,
    ) -> Self {
        Ctx { address: address.into(), stack: stack.into(), token: token.into(), events, cancel }
    }

    /// A context outside any engine run (tests, one-off provider calls): stack `test`, its
    /// own event bus, never cancelled.
    pub fn detached(address: impl Into<String>) -> Self {
        let address = address.into();
        let token = format!("stackup-{}", address.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
        Ctx::new("test", address, token, Arc::new(EventBus::new()), CancellationToken::new())
    }

    /// The resource's address in the stack.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The stack's name.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// A token that is stable for this resource's pending operation across retries *and*
    /// process restarts (recorded with the intent in state): use it as an idempotency or
    /// retry token (`opc-retry-token`, client request ids).
    pub fn idempotency_token(&self) -> &str {
        &self.token
    }

    /// The tags every created object carries so it can be found again:
    /// `managed-by: stackup`, `stackup-stack: <stack>`, `stackup-address: <address>`.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("managed-by".to_owned(), "stackup".to_owned()),
            ("stackup-stack".to_owned(), self.stack.clone()),
            ("stackup-address".to_owned(), self.address.clone()),
        ])
    }

    /// Reports progress (a poll, a retry, a capacity attempt) on the event stream.
    pub fn progress(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(address = %self.address, "{message}");
        self.events.emit(EventKind::ResourceProgress { address: self.address.clone(), message });
    }

    /// The run's cancellation token: long waits should stop early when it fires.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// True when the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The event bus (to subscribe in tests).
    pub fn events(&self) -> &Arc<EventBus> {
        &self.events
    }
}

/// Manages one kind of resource. See the [module docs](self).
#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// The desired state, as the user writes it. Fields that may come from other resources
    /// are [`crate::Input`]s.
    type Spec: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// The observed object: what `read` returns and what other resources can reference.
    type Outputs: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// The kind this provisioner manages.
    fn kind(&self) -> ResourceKind;

    /// Checks the spec without any API call. Fields that are still unresolved references are
    /// skipped; everything known must be checked, and the error names the field and the rule.
    fn validate(&self, spec: &Self::Spec) -> Result<(), Error>;

    /// Reads the real object. `prior` is what state last recorded (secrets dropped from state
    /// are absent); providers carry forward write-only fields from it.
    async fn read(&self, ctx: &Ctx, id: &str, prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error>;

    /// Finds an object this spec would have created (by deterministic name, tags or
    /// idempotency token) when an interrupted run never recorded its id. The default finds
    /// nothing, which is right only when `create` itself is idempotent.
    async fn lookup(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let _ = (ctx, spec);
        Ok(None)
    }

    /// Asks the provider to check a change while planning, without changing anything (a
    /// server-side validation endpoint). Called for resources planned to be created, updated or
    /// replaced whose spec is fully known. Returns warnings for the plan; an error fails the
    /// plan (missing credentials or no network, as in an offline plan, only skip the check with
    /// a note). The
    /// default checks nothing.
    async fn plan_check(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Vec<String>, Error> {
        let _ = (ctx, spec);
        Ok(vec![])
    }

    /// Compares desired and observed. Pure: no I/O.
    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff;

    /// Creates the object and waits until it is ready.
    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError>;

    /// Updates the object in place and waits until it is ready.
    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &Self::Spec,
        observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error>;

    /// Deletes the object and waits until it is gone. Deleting something already gone is
    /// success.
    async fn delete(&self, ctx: &Ctx, id: &str, observed: &Self::Outputs) -> Result<(), Error>;
}
