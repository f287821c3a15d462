//! A [`Stack`]: named resources, each a provisioner plus a spec, forming a dependency graph
//! through the references in their specs.
//!
//! ```
//! # #[cfg(feature = "test-util")] {
//! use stackup_core::{Stack, Input};
//! use stackup_core::testing::{FakeCloud, FakeProvisioner, FakeSpec};
//!
//! let cloud = FakeCloud::new();
//! let mut stack = Stack::new("demo");
//! let net = stack.add("net", FakeProvisioner::new(&cloud), FakeSpec::new("10.0.0.0/16")).unwrap();
//! let vm = stack.add("vm", FakeProvisioner::new(&cloud), FakeSpec::new(net.output("value").input())).unwrap();
//! assert_eq!(stack.dependencies("vm").unwrap(), ["net"]);
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::diff::Diff;
use crate::error::Error;
use crate::input::{OutputRef, collect_refs};
use crate::provisioner::{CreateError, Created, Ctx, Provisioner, ResourceKind};

/// A typed handle to a resource in a stack, used to reference its outputs.
#[derive(Debug)]
pub struct Handle<P> {
    address: String,
    _p: PhantomData<fn() -> P>,
}

impl<P> Clone for Handle<P> {
    fn clone(&self) -> Self {
        Handle { address: self.address.clone(), _p: PhantomData }
    }
}

impl<P> Handle<P> {
    /// The resource's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A reference to one of its outputs (a field of `P::Outputs`, or a dotted path into it).
    pub fn output(&self, field: &str) -> OutputRef {
        OutputRef::new(self.address.clone(), field)
    }

    /// A reference to its provider id.
    pub fn id(&self) -> OutputRef {
        self.output("id")
    }
}

/// A provisioner with its types erased to JSON, so one engine can drive every kind.
#[async_trait]
pub trait DynProvisioner: Send + Sync {
    /// The kind.
    fn kind(&self) -> ResourceKind;
    /// Validates a JSON spec (unresolved references allowed).
    fn validate(&self, spec: &Value) -> Result<(), Error>;
    /// Diffs a JSON spec against JSON outputs.
    fn diff(&self, spec: &Value, observed: &Value) -> Result<Diff, Error>;
    /// Reads by id.
    async fn read(&self, ctx: &Ctx, id: &str, prior: Option<&Value>) -> Result<Option<Value>, Error>;
    /// Server-side check during plan; returns warnings.
    async fn plan_check(&self, ctx: &Ctx, spec: &Value) -> Result<Vec<String>, Error>;
    /// Finds an object an interrupted create may have made.
    async fn lookup(&self, ctx: &Ctx, spec: &Value) -> Result<Option<(String, Value)>, Error>;
    /// Creates.
    async fn create(&self, ctx: &Ctx, spec: &Value) -> Result<(String, Value), CreateError>;
    /// Updates.
    async fn update(&self, ctx: &Ctx, id: &str, spec: &Value, observed: &Value) -> Result<Value, Error>;
    /// Deletes.
    async fn delete(&self, ctx: &Ctx, id: &str, observed: &Value) -> Result<(), Error>;
}

struct Erased<P>(P);

fn de<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> Result<T, Error> {
    serde_json::from_value(v.clone()).map_err(|e| Error::State(format!("{what} does not match its type: {e}")))
}

fn ser<T: serde::Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::other("encoding outputs", e))
}

/// Outputs with the id folded in, so `handle.id()` resolves for every kind.
fn with_id(id: &str, mut outputs: Value) -> Value {
    if let Value::Object(m) = &mut outputs {
        m.entry("id").or_insert_with(|| Value::String(id.to_owned()));
    }
    outputs
}

#[async_trait]
impl<P: Provisioner> DynProvisioner for Erased<P> {
    fn kind(&self) -> ResourceKind {
        self.0.kind()
    }
    fn validate(&self, spec: &Value) -> Result<(), Error> {
        let spec: P::Spec = serde_json::from_value(spec.clone())
            .map_err(|e| Error::invalid("spec", format!("does not match {}: {e}", self.0.kind())))?;
        self.0.validate(&spec)
    }
    fn diff(&self, spec: &Value, observed: &Value) -> Result<Diff, Error> {
        Ok(self.0.diff(&de("spec", spec)?, &de("outputs", observed)?))
    }
    async fn read(&self, ctx: &Ctx, id: &str, prior: Option<&Value>) -> Result<Option<Value>, Error> {
        // Prior outputs that no longer fit the type (a secret dropped from state) are not passed.
        let prior: Option<P::Outputs> = prior.and_then(|p| serde_json::from_value(p.clone()).ok());
        match self.0.read(ctx, id, prior.as_ref()).await? {
            Some(o) => Ok(Some(with_id(id, ser(&o)?))),
            None => Ok(None),
        }
    }
    async fn plan_check(&self, ctx: &Ctx, spec: &Value) -> Result<Vec<String>, Error> {
        self.0.plan_check(ctx, &de("spec", spec)?).await
    }
    async fn lookup(&self, ctx: &Ctx, spec: &Value) -> Result<Option<(String, Value)>, Error> {
        match self.0.lookup(ctx, &de("spec", spec)?).await? {
            Some(Created { id, outputs }) => {
                let v = with_id(&id, ser(&outputs)?);
                Ok(Some((id, v)))
            }
            None => Ok(None),
        }
    }
    async fn create(&self, ctx: &Ctx, spec: &Value) -> Result<(String, Value), CreateError> {
        let spec: P::Spec = de("spec", spec)?;
        let Created { id, outputs } = self.0.create(ctx, &spec).await?;
        let v = with_id(&id, ser(&outputs).map_err(|e| CreateError::partial(e, id.clone()))?);
        Ok((id, v))
    }
    async fn update(&self, ctx: &Ctx, id: &str, spec: &Value, observed: &Value) -> Result<Value, Error> {
        let out = self.0.update(ctx, id, &de("spec", spec)?, &de("outputs", observed)?).await?;
        Ok(with_id(id, ser(&out)?))
    }
    async fn delete(&self, ctx: &Ctx, id: &str, observed: &Value) -> Result<(), Error> {
        // Delete must work from state alone, even if outputs lost a dropped secret.
        match serde_json::from_value::<P::Outputs>(observed.clone()) {
            Ok(o) => self.0.delete(ctx, id, &o).await,
            Err(e) => Err(Error::State(format!(
                "outputs recorded for {id} do not match {} ({e}); refresh first",
                self.0.kind()
            ))),
        }
    }
}

/// One resource in a stack.
#[derive(Clone)]
pub struct Node {
    /// Its address.
    pub address: String,
    /// Its provisioner.
    pub provisioner: Arc<dyn DynProvisioner>,
    /// Its spec as JSON (references as `$ref` markers).
    pub spec: Value,
    /// What it depends on: every referenced resource plus explicit `depends_on`.
    pub dependencies: BTreeSet<String>,
    /// Field paths whose changes plans ignore (see [`Stack::ignore_changes`]).
    pub ignore_changes: Vec<String>,
}

impl Node {
    /// `diff` without the changes to this node's ignored fields, and the paths that were dropped.
    pub fn without_ignored(&self, mut diff: Diff) -> (Diff, Vec<String>) {
        let dropped = diff.drop_fields(&self.ignore_changes);
        (diff, dropped)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("address", &self.address)
            .field("kind", &self.provisioner.kind())
            .field("dependencies", &self.dependencies)
            .finish_non_exhaustive()
    }
}

/// A graph of named resources.
#[derive(Clone, Debug)]
pub struct Stack {
    name: String,
    nodes: BTreeMap<String, Node>,
    order: Vec<String>,
    registry: BTreeMap<String, Arc<dyn DynProvisioner>>,
}

impl std::fmt::Debug for dyn DynProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Provisioner({})", self.kind())
    }
}

fn valid_address(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 128
        && a.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && a.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

impl Stack {
    /// An empty stack. The name is recorded in state and tags created objects.
    pub fn new(name: impl Into<String>) -> Self {
        Stack { name: name.into(), nodes: BTreeMap::new(), order: vec![], registry: BTreeMap::new() }
    }

    /// The stack's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a resource. Its dependencies are the resources its spec references. Fails on a
    /// duplicate or malformed address.
    pub fn add<P: Provisioner>(&mut self, address: &str, provisioner: P, spec: P::Spec) -> Result<Handle<P>, Error> {
        if !valid_address(address) {
            return Err(Error::invalid(
                "address",
                format!("`{address}`: use 1-128 letters, digits, `_`, `-`, `.`, `/`, starting with a letter or digit"),
            ));
        }
        if self.nodes.contains_key(address) {
            return Err(Error::Stack(format!("duplicate resource address `{address}`")));
        }
        let spec = serde_json::to_value(&spec).map_err(|e| Error::other(format!("encoding spec of {address}"), e))?;
        let mut refs = vec![];
        collect_refs(&spec, &mut refs);
        let provisioner: Arc<dyn DynProvisioner> = Arc::new(Erased(provisioner));
        self.registry.entry(provisioner.kind().to_string()).or_insert_with(|| provisioner.clone());
        self.nodes.insert(
            address.to_owned(),
            Node {
                address: address.to_owned(),
                provisioner,
                spec,
                dependencies: refs.into_iter().map(|r| r.resource).collect(),
                ignore_changes: vec![],
            },
        );
        self.order.push(address.to_owned());
        Ok(Handle { address: address.to_owned(), _p: PhantomData })
    }

    /// Adds an explicit dependency (ordering without a data reference).
    pub fn depends_on(&mut self, address: &str, on: &str) -> Result<(), Error> {
        let node = self.nodes.get_mut(address).ok_or_else(|| Error::Stack(format!("no resource `{address}`")))?;
        node.dependencies.insert(on.to_owned());
        Ok(())
    }

    /// Ignores changes to these fields of `address` when planning (Terraform's
    /// `lifecycle { ignore_changes }`): the object is created with them, but a later difference
    /// in them, known or only known after apply, plans nothing. Paths are the field paths plans
    /// show (`user_data_sha256`, `tags`); a path covers the fields under it. Use it for values
    /// that matter only at creation, such as a VM's first-boot script embedding a one-time key;
    /// ask for a replacement explicitly with [`crate::Engine::replace`].
    pub fn ignore_changes<I, S>(&mut self, address: &str, fields: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let node = self.nodes.get_mut(address).ok_or_else(|| Error::Stack(format!("no resource `{address}`")))?;
        for f in fields {
            let f = f.into();
            if f.is_empty() {
                return Err(Error::invalid("ignore_changes", format!("`{address}`: a field path must not be empty")));
            }
            if !node.ignore_changes.contains(&f) {
                node.ignore_changes.push(f);
            }
        }
        Ok(())
    }

    /// Registers a provisioner for a kind the stack no longer uses, so resources of that kind
    /// left in state can still be deleted.
    pub fn register<P: Provisioner>(&mut self, provisioner: P) {
        let p: Arc<dyn DynProvisioner> = Arc::new(Erased(provisioner));
        self.registry.entry(p.kind().to_string()).or_insert(p);
    }

    /// The provisioner for a kind (`provider:name`), if registered.
    pub fn provisioner_for(&self, kind: &str) -> Option<&Arc<dyn DynProvisioner>> {
        self.registry.get(kind)
    }

    /// The resources, in the order they were added.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.order.iter().filter_map(|a| self.nodes.get(a))
    }

    /// One resource.
    pub fn node(&self, address: &str) -> Option<&Node> {
        self.nodes.get(address)
    }

    /// How many resources.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The dependencies of a resource.
    pub fn dependencies(&self, address: &str) -> Option<Vec<&str>> {
        self.nodes.get(address).map(|n| n.dependencies.iter().map(String::as_str).collect())
    }

    /// Checks the graph before anything runs: every reference points at a resource of the
    /// stack, there is no cycle, and every spec passes its provisioner's validation. Returns
    /// the addresses in a dependency order.
    pub fn validate(&self) -> Result<Vec<String>, Error> {
        for n in self.nodes.values() {
            for d in &n.dependencies {
                if !self.nodes.contains_key(d) {
                    return Err(Error::Stack(format!("`{}` references `{d}`, which is not in the stack", n.address)));
                }
                if d == &n.address {
                    return Err(Error::Stack(format!("`{d}` references itself")));
                }
            }
        }
        let order = self.topological_order()?;
        let mut problems = vec![];
        for a in &order {
            let n = &self.nodes[a];
            if let Err(e) = n.provisioner.validate(&n.spec) {
                problems.push(match e {
                    Error::InvalidInput { field, rule } => Error::InvalidInput { field: format!("{a}.{field}"), rule },
                    other => other,
                });
            }
        }
        match problems.len() {
            0 => Ok(order),
            1 => Err(problems.remove(0)),
            _ => Err(Error::Stack(format!(
                "{} resources are invalid: {}",
                problems.len(),
                problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ))),
        }
    }

    /// Kahn's algorithm; on a cycle, names the resources in it.
    fn topological_order(&self) -> Result<Vec<String>, Error> {
        let mut indeg: BTreeMap<&str, usize> = self.order.iter().map(|a| (a.as_str(), 0)).collect();
        let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in self.nodes.values() {
            for d in &n.dependencies {
                *indeg.get_mut(n.address.as_str()).expect("node") += 1;
                dependents.entry(d.as_str()).or_default().push(&n.address);
            }
        }
        let mut ready: Vec<&str> = self.order.iter().map(String::as_str).filter(|a| indeg[a] == 0).collect();
        ready.reverse();
        let mut out = vec![];
        while let Some(a) = ready.pop() {
            out.push(a.to_owned());
            for d in dependents.get(a).into_iter().flatten() {
                let e = indeg.get_mut(d).expect("node");
                *e -= 1;
                if *e == 0 {
                    ready.push(d);
                }
            }
        }
        if out.len() != self.nodes.len() {
            let stuck: Vec<&str> = indeg.iter().filter(|(_, d)| **d > 0).map(|(a, _)| *a).collect();
            return Err(Error::Stack(format!("dependency cycle among: {}", stuck.join(", "))));
        }
        Ok(out)
    }
}
