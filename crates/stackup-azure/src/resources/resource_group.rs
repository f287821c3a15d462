//! `Microsoft.Resources/resourceGroups` (api-version [`crate::api_versions::RESOURCES`]).
//!
//! Create: `PUT /subscriptions/{sub}/resourcegroups/{rg}` (synchronous). Delete: `DELETE` on the
//! same path, answered 202 + `Location` and awaited until ARM reports the group gone (every
//! resource inside it is deleted too).
//!
//! Because deleting a group deletes everything in it, `delete` first lists the group's
//! resources (`GET {rg}/resources`) and refuses while any remains that this stack did not
//! create (the engine deletes the stack's own resources first), unless the provisioner was built
//! with [`ResourceGroups::delete_with_contents`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Provisioner, ResourceKind};

use super::{PROVIDER, is_ours, not_ours, str_at, tags_of, user_tags, with_managed_tags};
use crate::api_versions::RESOURCES;
use crate::client::ArmClient;
use crate::validate;

/// A resource group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroupSpec {
    /// Name, 1–90 characters.
    pub name: String,
    /// Region (`japaneast`). Changing it replaces the group.
    pub location: String,
    /// Tags (stackup adds `managed-by`, `stackup-stack`, `stackup-address`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An observed resource group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroupOutputs {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Region, normalised (`japaneast`).
    pub location: String,
    /// All tags, stackup's included.
    pub tags: BTreeMap<String, String>,
}

/// Manages resource groups.
#[derive(Debug, Clone)]
pub struct ResourceGroups {
    client: ArmClient,
    delete_with_contents: bool,
}

impl ResourceGroups {
    /// A provisioner using `client`.
    pub fn new(client: ArmClient) -> Self {
        ResourceGroups { client, delete_with_contents: false }
    }

    /// Lets `delete` remove a group that still holds resources this stack did not create (they
    /// are deleted with it). Off by default.
    pub fn delete_with_contents(mut self, yes: bool) -> Self {
        self.delete_with_contents = yes;
        self
    }

    /// Resources in the group not tagged as this stack's.
    async fn foreign_resources(&self, ctx: &Ctx, id: &str) -> Result<Vec<String>, Error> {
        let mut url = self.client.url(&format!("{id}/resources"), RESOURCES, &[])?;
        let mut foreign = Vec::new();
        loop {
            let page = self
                .client
                .send(&crate::client::ArmRequest::new(crate::client::ArmMethod::Get, url))
                .await?
                .json_value()?;
            for r in page.get("value").and_then(serde_json::Value::as_array).into_iter().flatten() {
                let tags = tags_of(r);
                if tags.get("stackup-stack").map(String::as_str) != Some(ctx.stack()) {
                    foreign.push(str_at(r, "/id"));
                }
            }
            match page.get("nextLink").and_then(serde_json::Value::as_str) {
                Some(next) if !next.is_empty() => url = self.client.check_poll_url(next)?,
                _ => break,
            }
        }
        Ok(foreign)
    }

    fn path(&self, name: &str) -> Result<String, Error> {
        self.client.resource_group_path(name)
    }

    fn outputs(body: &serde_json::Value) -> ResourceGroupOutputs {
        ResourceGroupOutputs {
            id: str_at(body, "/id"),
            name: str_at(body, "/name"),
            location: validate::normalize_location(&str_at(body, "/location")),
            tags: tags_of(body),
        }
    }
}

#[async_trait]
impl Provisioner for ResourceGroups {
    type Spec = ResourceGroupSpec;
    type Outputs = ResourceGroupOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new(PROVIDER, "resource_group")
    }

    fn validate(&self, spec: &Self::Spec) -> Result<(), Error> {
        validate::resource_group_name("name", &spec.name)?;
        validate::location("location", &spec.location)?;
        validate::tags("tags", &spec.tags)
    }

    async fn read(&self, _ctx: &Ctx, id: &str, _prior: Option<&Self::Outputs>) -> Result<Option<Self::Outputs>, Error> {
        Ok(self.client.get(id, RESOURCES).await?.map(|b| Self::outputs(&b)))
    }

    async fn lookup(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Option<Created<Self::Outputs>>, Error> {
        let Some(body) = self.client.get(&self.path(&spec.name)?, RESOURCES).await? else { return Ok(None) };
        let out = Self::outputs(&body);
        Ok(is_ours(ctx, &out.tags).then(|| Created { id: out.id.clone(), outputs: out }))
    }

    fn diff(&self, desired: &Self::Spec, observed: &Self::Outputs) -> Diff {
        let mut d = Diff::new();
        d.field_replace("name", &desired.name.to_ascii_lowercase(), &observed.name.to_ascii_lowercase());
        d.field_replace("location", &validate::normalize_location(&desired.location), &observed.location);
        d.field("tags", &desired.tags, &user_tags(&observed.tags));
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &Self::Spec) -> Result<Created<Self::Outputs>, CreateError> {
        self.validate(spec)?;
        let path = self.path(&spec.name)?;
        if let Some(existing) = self.client.get(&path, RESOURCES).await?
            && !is_ours(ctx, &tags_of(&existing))
        {
            return Err(not_ours("resource group", &spec.name).into());
        }
        let body = json!({"location": spec.location, "tags": with_managed_tags(ctx, &spec.tags)});
        let out = Self::outputs(&self.client.put(Some(ctx), &path, RESOURCES, &body).await?);
        Ok(Created { id: out.id.clone(), outputs: out })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        spec: &Self::Spec,
        observed: &Self::Outputs,
    ) -> Result<Self::Outputs, Error> {
        self.validate(spec)?;
        let body = json!({"location": spec.location, "tags": super::update_tags(ctx, &spec.tags, &observed.tags)});
        Ok(Self::outputs(&self.client.put(Some(ctx), id, RESOURCES, &body).await?))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _observed: &Self::Outputs) -> Result<(), Error> {
        if !self.delete_with_contents {
            let foreign = match self.foreign_resources(ctx, id).await {
                Ok(f) => f,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            };
            if !foreign.is_empty() {
                let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
                return Err(Error::Conflict(stackup_core::ApiErrorDetails {
                    status: None,
                    code: Some("ResourceGroupNotEmpty".into()),
                    message: format!(
                        "resource group `{id}` still holds {} resource(s) this stack did not create ({}{}); delete them, \
                         or build the provisioner with ResourceGroups::delete_with_contents(true)",
                        foreign.len(),
                        shown.join(", "),
                        if foreign.len() > 5 { ", …" } else { "" }
                    ),
                    request_id: None,
                }));
            }
        }
        self.client.delete(Some(ctx), id, RESOURCES).await
    }
}
