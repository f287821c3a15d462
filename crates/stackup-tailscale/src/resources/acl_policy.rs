//! `tailscale:acl_policy`: the tailnet policy file (ACLs, grants, tagOwners, SSH, tests).
//!
//! * The HuJSON text is sent **as written** (`Content-Type: application/hujson`), comments and
//!   formatting kept, and read back the same way.
//! * Every write carries `If-Match` with the `ETag` stackup read: if anyone edited the policy in
//!   between (admin console, GitOps, another tool), Tailscale answers `412` and stackup fails
//!   with [`Error::PreconditionFailed`] instead of overwriting their change. (Other tools send an
//!   empty `If-Match`, a blind overwrite.)
//! * On first apply ([`AclAdoption`]) stackup replaces only Tailscale's untouched default policy
//!   (`If-Match: "ts-default"`) unless told to take over an edited one.
//! * [`AclPolicies::validate_with_api`] runs the API's validate endpoint (syntax and the
//!   policy's own `tests`) without saving; call it while planning.
//! * The policy is one document per tailnet, so there is one resource per tailnet; destroying it
//!   leaves the policy in place (a tailnet always has one, and resetting it could cut access).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{ApiErrorDetails, CreateError, Created, Ctx, Diff, Error, Input, Provisioner, ResourceKind};

use crate::client::{IfMatch, PolicyFile, PolicyValidation, TailscaleClient};
use crate::hujson;

/// How the first apply treats a policy stackup has not written before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclAdoption {
    /// Replace the policy only if it is still Tailscale's untouched default; otherwise fail
    /// with a precondition error.
    #[default]
    OnlyDefault,
    /// Replace whatever policy is there now (the version just read, still guarded by its ETag).
    Overwrite,
}

/// The desired policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclPolicySpec {
    /// The policy, HuJSON text exactly as it should be stored.
    pub policy: Input<String>,
    /// First-apply behaviour.
    #[serde(default)]
    pub adopt: AclAdoption,
}

impl AclPolicySpec {
    /// A policy from HuJSON text, replacing only the default policy on first apply.
    pub fn new(policy: impl Into<Input<String>>) -> Self {
        AclPolicySpec { policy: policy.into(), adopt: AclAdoption::OnlyDefault }
    }

    /// Sets the first-apply behaviour.
    pub fn adopt(mut self, adopt: AclAdoption) -> Self {
        self.adopt = adopt;
        self
    }
}

/// The stored policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclPolicyOutputs {
    /// The tailnet (`-` for the credential's default); also the resource id.
    pub tailnet: String,
    /// The HuJSON text as stored.
    pub policy: String,
    /// The version stackup last read or wrote (the next write's `If-Match`).
    pub etag: String,
}

/// Manages the policy file.
#[derive(Debug, Clone)]
pub struct AclPolicies {
    client: TailscaleClient,
}

const NO_ETAG: &str =
    "the policy file was read without an ETag, so it cannot be updated safely; refresh and plan again";

fn same_text(a: &str, b: &str) -> bool {
    hujson::normalize_text(a) == hujson::normalize_text(b)
}

impl AclPolicies {
    /// A provisioner using `client`.
    pub fn new(client: TailscaleClient) -> Self {
        AclPolicies { client }
    }

    /// Validates `policy` with `POST /tailnet/{tailnet}/acl/validate` (parse errors, and the
    /// failures of the policy's own `tests`), without saving it. Returns the warnings.
    pub async fn validate_with_api(&self, policy: &str) -> Result<PolicyValidation, Error> {
        hujson::parse(policy)?;
        self.client.validate_policy(policy).await
    }

    fn outputs(&self, file: PolicyFile) -> AclPolicyOutputs {
        AclPolicyOutputs { tailnet: self.client.tailnet().to_owned(), policy: file.hujson, etag: file.etag }
    }

    /// Writes `desired` over the version `if_match`. A 412 is checked against the policy now
    /// stored: if it already is `desired` (an earlier attempt landed) that is success;
    /// otherwise someone else changed it, and the error says so.
    async fn write(&self, ctx: &Ctx, desired: &str, if_match: IfMatch) -> Result<AclPolicyOutputs, Error> {
        ctx.progress(format!("writing the policy file (If-Match: {})", if_match.header_value()));
        match self.client.set_policy(desired, &if_match).await {
            Ok(file) => Ok(self.outputs(file)),
            Err(Error::PreconditionFailed(d)) => {
                let now = self.client.get_policy().await?;
                if same_text(&now.hujson, desired) {
                    return Ok(self.outputs(now));
                }
                let message = match if_match {
                    IfMatch::TsDefault => format!(
                        "{}: the tailnet's policy file is not Tailscale's default any more, and stackup does not \
                         overwrite an edited policy on first apply; review it, then set `adopt` to `Overwrite`",
                        d.message
                    ),
                    IfMatch::ETag(e) => format!(
                        "{}: the policy file was changed by someone else after stackup read it (ETag {e}, now {}); \
                         nothing was overwritten; plan again to see their change",
                        d.message, now.etag
                    ),
                };
                Err(Error::PreconditionFailed(ApiErrorDetails { message, ..d }))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Provisioner for AclPolicies {
    type Spec = AclPolicySpec;
    type Outputs = AclPolicyOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("tailscale", "acl_policy")
    }

    fn validate(&self, spec: &AclPolicySpec) -> Result<(), Error> {
        if let Some(p) = spec.policy.known() {
            if p.len() > 1024 * 1024 {
                return Err(Error::invalid("policy", "is larger than 1 MiB"));
            }
            hujson::parse(p)?;
        }
        Ok(())
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        id: &str,
        _prior: Option<&AclPolicyOutputs>,
    ) -> Result<Option<AclPolicyOutputs>, Error> {
        if id != self.client.tailnet() {
            return Err(Error::Config(format!(
                "this policy resource belongs to tailnet `{id}` but the client is for `{}`",
                self.client.tailnet()
            )));
        }
        Ok(Some(self.outputs(self.client.get_policy().await?)))
    }

    /// Runs the API's validate endpoint on the policy while planning; its warnings go into the plan.
    async fn plan_check(&self, _ctx: &Ctx, spec: &AclPolicySpec) -> Result<Vec<String>, Error> {
        match spec.policy.known() {
            Some(policy) => Ok(self.validate_with_api(policy).await?.warnings),
            None => Ok(vec![]),
        }
    }

    fn diff(&self, desired: &AclPolicySpec, observed: &AclPolicyOutputs) -> Diff {
        let mut d = Diff::new();
        match desired.policy.known() {
            Some(p) if same_text(p, &observed.policy) => {}
            Some(p) => {
                d.field("policy", p, &observed.policy);
            }
            None => {
                d.input("policy", &desired.policy, &observed.policy);
            }
        }
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &AclPolicySpec) -> Result<Created<AclPolicyOutputs>, CreateError> {
        self.validate(spec)?;
        let desired = spec.policy.get("policy")?;
        let current = self.client.get_policy().await?;
        let outputs = if same_text(&current.hujson, desired) {
            ctx.progress("the policy file already has the desired text");
            self.outputs(current)
        } else {
            let if_match = match spec.adopt {
                AclAdoption::OnlyDefault => IfMatch::TsDefault,
                AclAdoption::Overwrite if current.etag.trim().is_empty() => {
                    return Err(Error::Config(NO_ETAG.into()).into());
                }
                AclAdoption::Overwrite => IfMatch::ETag(current.etag),
            };
            self.write(ctx, desired, if_match).await?
        };
        Ok(Created { id: outputs.tailnet.clone(), outputs })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _id: &str,
        spec: &AclPolicySpec,
        observed: &AclPolicyOutputs,
    ) -> Result<AclPolicyOutputs, Error> {
        self.validate(spec)?;
        let desired = spec.policy.get("policy")?;
        if observed.etag.trim().is_empty() {
            return Err(Error::Config(NO_ETAG.into()));
        }
        self.write(ctx, desired, IfMatch::ETag(observed.etag.clone())).await
    }

    async fn delete(&self, ctx: &Ctx, _id: &str, _observed: &AclPolicyOutputs) -> Result<(), Error> {
        ctx.progress("leaving the tailnet policy file in place (a tailnet always has one)");
        Ok(())
    }
}
