//! An in-memory "cloud" and a provisioner for it, with configurable latency and failures
//! (feature `test-util`). Provider crates and users use it to test stacks and engines; the
//! engine's own tests and benchmark use it too.
//!
//! [`FakeCloud`] records every call and tracks how many calls are in flight (overall and per
//! provider), so tests can assert concurrency limits, zero mutating calls on re-apply, and no
//! duplicate objects after crashes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::diff::Diff;
use crate::error::{ApiErrorDetails, Error};
use crate::input::Input;
use crate::provisioner::{CreateError, Created, Ctx, Provisioner, ResourceKind};
use crate::secret::Secret;

/// A fault to inject into the next calls for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with a 500 before doing anything.
    ServerError,
    /// The call fails with a 429 (retry after 1 s) before doing anything.
    Throttled,
    /// Create makes the object, then fails: the error carries the id (a partial create).
    FailAfterCreate,
    /// Create makes the object, then the connection drops: outcome unknown, no id returned.
    LostResponse,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `read`, `lookup`, `create`, `update` or `delete`.
    pub op: &'static str,
    /// The resource address.
    pub address: String,
}

/// An object in the fake cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeObject {
    /// The mutable value.
    pub value: String,
    /// The value that can only be set at creation.
    pub immutable: String,
    /// A secret the object holds.
    pub secret: Option<String>,
    /// The stack address that created it (its "tag").
    pub address: String,
}

#[derive(Debug, Default)]
struct Inner {
    objects: BTreeMap<String, FakeObject>,
    next_id: u64,
    calls: Vec<Call>,
    in_flight: BTreeMap<&'static str, usize>,
    max_in_flight: BTreeMap<&'static str, usize>,
    total_in_flight: usize,
    max_total_in_flight: usize,
    faults: BTreeMap<String, Vec<Fault>>,
    latency: (Duration, Duration),
    latency_by_address: BTreeMap<String, Duration>,
    latency_taken: BTreeMap<String, Duration>,
}

/// The in-memory cloud. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct FakeCloud(Arc<Mutex<Inner>>);

impl FakeCloud {
    /// An empty cloud with no latency.
    pub fn new() -> Self {
        FakeCloud::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every mutating call waits a random time in `[min, max]`.
    pub fn set_latency(&self, min: Duration, max: Duration) {
        self.inner().latency = (min, max.max(min));
    }

    /// Mutating calls for one address wait exactly `latency` (overrides the range).
    pub fn set_latency_for(&self, address: &str, latency: Duration) {
        self.inner().latency_by_address.insert(address.to_owned(), latency);
    }

    /// How long the last mutating call on `address` really waited (a timer sleeps a little
    /// longer than asked: tokio's rounds up to the next millisecond), `None` before any wait.
    /// Benchmarks compute the critical path from these.
    pub fn latency_taken(&self, address: &str) -> Option<Duration> {
        self.inner().latency_taken.get(address).copied()
    }

    /// Queues faults for the next mutating calls on `address` (one fault per call).
    pub fn inject(&self, address: &str, faults: &[Fault]) {
        self.inner().faults.entry(address.to_owned()).or_default().extend_from_slice(faults);
    }

    /// The objects that exist, by id.
    pub fn objects(&self) -> BTreeMap<String, FakeObject> {
        self.inner().objects.clone()
    }

    /// Objects created for `address`.
    pub fn objects_for(&self, address: &str) -> Vec<FakeObject> {
        self.inner().objects.values().filter(|o| o.address == address).cloned().collect()
    }

    /// Changes an object behind stackup's back (drift).
    pub fn tamper(&self, id: &str, value: &str) {
        if let Some(o) = self.inner().objects.get_mut(id) {
            o.value = value.to_owned();
        }
    }

    /// Deletes an object behind stackup's back.
    pub fn remove(&self, id: &str) {
        self.inner().objects.remove(id);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner().calls.clone()
    }

    /// Calls to create, update and delete so far.
    pub fn mutating_calls(&self) -> usize {
        self.inner().calls.iter().filter(|c| matches!(c.op, "create" | "update" | "delete")).count()
    }

    /// Forgets the recorded calls and concurrency peaks.
    pub fn reset_calls(&self) {
        let mut i = self.inner();
        i.calls.clear();
        i.max_in_flight.clear();
        i.max_total_in_flight = 0;
    }

    /// The most mutating calls in flight at once, across providers.
    pub fn max_in_flight(&self) -> usize {
        self.inner().max_total_in_flight
    }

    /// The most mutating calls in flight at once for one provider.
    pub fn max_in_flight_for(&self, provider: &str) -> usize {
        self.inner().max_in_flight.get(provider).copied().unwrap_or(0)
    }

    fn record(&self, op: &'static str, address: &str) {
        self.inner().calls.push(Call { op, address: address.to_owned() });
    }

    fn take_fault(&self, address: &str) -> Option<Fault> {
        let mut i = self.inner();
        let q = i.faults.get_mut(address)?;
        if q.is_empty() { None } else { Some(q.remove(0)) }
    }

    fn latency(&self, address: &str) -> Duration {
        let i = self.inner();
        if let Some(l) = i.latency_by_address.get(address) {
            return *l;
        }
        let (lo, hi) = i.latency;
        if hi.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(lo.as_nanos() as u64..=hi.as_nanos() as u64))
    }

    fn enter(&self, provider: &'static str) -> InFlight {
        let mut i = self.inner();
        let n = i.in_flight.entry(provider).or_default();
        *n += 1;
        let n = *n;
        let m = i.max_in_flight.entry(provider).or_default();
        *m = (*m).max(n);
        i.total_in_flight += 1;
        i.max_total_in_flight = i.max_total_in_flight.max(i.total_in_flight);
        InFlight { cloud: self.clone(), provider }
    }
}

struct InFlight {
    cloud: FakeCloud,
    provider: &'static str,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut i = self.cloud.inner();
        if let Some(n) = i.in_flight.get_mut(self.provider) {
            *n -= 1;
        }
        i.total_in_flight -= 1;
    }
}

fn fault_error(f: Fault) -> Error {
    match f {
        Fault::Throttled => Error::Throttled {
            retry_after: Some(Duration::from_secs(1)),
            details: ApiErrorDetails { status: Some(429), message: "slow down".into(), ..Default::default() },
        },
        _ => Error::Provider(ApiErrorDetails {
            status: Some(500),
            code: Some("InternalError".into()),
            message: "injected failure".into(),
            request_id: Some("req-fake".into()),
        }),
    }
}

/// The desired state of a fake object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FakeSpec {
    /// Changes in place.
    pub value: Input<String>,
    /// Changing it replaces the object.
    #[serde(default = "default_immutable")]
    pub immutable: Input<String>,
    /// A secret the object is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Input<String>>,
}

fn default_immutable() -> Input<String> {
    Input::Value(String::new())
}

impl FakeSpec {
    /// A spec with `value` and no immutable field or secret.
    pub fn new(value: impl Into<Input<String>>) -> Self {
        FakeSpec { value: value.into(), immutable: default_immutable(), secret: None }
    }

    /// Sets the field whose change forces replacement.
    pub fn immutable(mut self, v: impl Into<Input<String>>) -> Self {
        self.immutable = v.into();
        self
    }

    /// Sets the secret.
    pub fn secret(mut self, v: impl Into<Input<String>>) -> Self {
        self.secret = Some(v.into());
        self
    }
}

/// What a fake object looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FakeOutputs {
    /// The value.
    pub value: String,
    /// The immutable value.
    pub immutable: String,
    /// A secret output (re-readable from the cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

/// A provisioner for fake objects. `provider` names its per-provider concurrency bucket.
#[derive(Debug, Clone)]
pub struct FakeProvisioner {
    cloud: FakeCloud,
    provider: &'static str,
}

impl FakeProvisioner {
    /// A provisioner in provider `test`.
    pub fn new(cloud: &FakeCloud) -> Self {
        FakeProvisioner { cloud: cloud.clone(), provider: "test" }
    }

    /// The same, in another provider bucket.
    pub fn with_provider(cloud: &FakeCloud, provider: &'static str) -> Self {
        FakeProvisioner { cloud: cloud.clone(), provider }
    }

    fn outputs(o: &FakeObject) -> FakeOutputs {
        FakeOutputs {
            value: o.value.clone(),
            immutable: o.immutable.clone(),
            secret: o.secret.as_deref().map(Secret::new),
        }
    }

    async fn pause(&self, address: &str) {
        let l = self.cloud.latency(address);
        if !l.is_zero() {
            let started = tokio::time::Instant::now();
            tokio::time::sleep(l).await;
            self.cloud.inner().latency_taken.insert(address.to_owned(), started.elapsed());
        }
    }
}

#[async_trait]
impl Provisioner for FakeProvisioner {
    type Spec = FakeSpec;
    type Outputs = FakeOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(self.provider, "object")
    }

    fn validate(&self, spec: &FakeSpec) -> Result<(), Error> {
        if let Some(v) = spec.value.known() {
            if v.is_empty() {
                return Err(Error::invalid("value", "must not be empty"));
            }
            if v.len() > 256 {
                return Err(Error::invalid("value", "must be at most 256 characters"));
            }
        }
        Ok(())
    }

    async fn read(&self, ctx: &Ctx, id: &str, _prior: Option<&FakeOutputs>) -> Result<Option<FakeOutputs>, Error> {
        self.cloud.record("read", ctx.address());
        Ok(self.cloud.inner().objects.get(id).map(Self::outputs))
    }

    async fn lookup(&self, ctx: &Ctx, _spec: &FakeSpec) -> Result<Option<Created<FakeOutputs>>, Error> {
        self.cloud.record("lookup", ctx.address());
        let i = self.cloud.inner();
        Ok(i.objects
            .iter()
            .find(|(_, o)| o.address == ctx.address())
            .map(|(id, o)| Created { id: id.clone(), outputs: Self::outputs(o) }))
    }

    fn diff(&self, desired: &FakeSpec, observed: &FakeOutputs) -> Diff {
        let mut d = Diff::new();
        d.input("value", &desired.value, &observed.value);
        d.input_replace("immutable", &desired.immutable, &observed.immutable);
        if let Some(s) = &desired.secret {
            let actual = observed.secret.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default();
            d.input("secret", s, &actual);
        }
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &FakeSpec) -> Result<Created<FakeOutputs>, CreateError> {
        self.cloud.record("create", ctx.address());
        let _f = self.cloud.enter(self.provider);
        let fault = self.cloud.take_fault(ctx.address());
        if let Some(f @ (Fault::ServerError | Fault::Throttled)) = fault {
            self.pause(ctx.address()).await;
            return Err(fault_error(f).into());
        }
        let obj = FakeObject {
            value: spec.value.get("value")?.clone(),
            immutable: spec.immutable.get("immutable")?.clone(),
            secret: match &spec.secret {
                Some(s) => Some(s.get("secret")?.clone()),
                None => None,
            },
            address: ctx.address().to_owned(),
        };
        let id = {
            let mut i = self.cloud.inner();
            i.next_id += 1;
            let id = format!("fake-{}", i.next_id);
            i.objects.insert(id.clone(), obj.clone());
            id
        };
        // The object exists from here on; the rest is "waiting for it to become ready".
        self.pause(ctx.address()).await;
        match fault {
            Some(Fault::FailAfterCreate) => Err(CreateError::partial(fault_error(Fault::ServerError), id)),
            Some(Fault::LostResponse) => Err(Error::MaybeSent("connection reset after request was sent".into()).into()),
            _ => Ok(Created { id, outputs: Self::outputs(&obj) }),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &FakeSpec,
        _observed: &FakeOutputs,
    ) -> Result<FakeOutputs, Error> {
        self.cloud.record("update", ctx.address());
        let _f = self.cloud.enter(self.provider);
        if let Some(f) = self.cloud.take_fault(ctx.address()) {
            return Err(fault_error(f));
        }
        self.pause(ctx.address()).await;
        let mut i = self.cloud.inner();
        let o = i.objects.get_mut(id).ok_or_else(|| {
            Error::NotFound(ApiErrorDetails {
                status: Some(404),
                message: format!("{id} not found"),
                ..Default::default()
            })
        })?;
        o.value = spec.value.get("value")?.clone();
        if let Some(s) = &spec.secret {
            o.secret = Some(s.get("secret")?.clone());
        }
        Ok(Self::outputs(o))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &FakeOutputs) -> Result<(), Error> {
        self.cloud.record("delete", ctx.address());
        let _f = self.cloud.enter(self.provider);
        if let Some(f) = self.cloud.take_fault(ctx.address()) {
            return Err(fault_error(f));
        }
        self.pause(ctx.address()).await;
        self.cloud.inner().objects.remove(id);
        Ok(())
    }
}
