//! One provisioner per Azure resource kind, one file each.

pub mod blob_container;
pub mod file_share;
pub mod key_vault_secret;
pub mod lifecycle_policy;
pub mod network_interface;
pub mod network_security_group;
pub mod public_ip_address;
pub mod resource_group;
pub mod share_snapshot;
pub mod storage_account;
pub mod subnet;
pub mod virtual_machine;
pub mod virtual_network;

use std::collections::BTreeMap;

use serde_json::Value;
use stackup_core::{ApiErrorDetails, Ctx, Diff, Error, Input};

use crate::validate::{MANAGED_TAGS, is_azure_tag};

/// The provider name in every [`stackup_core::ResourceKind`] of this crate.
pub const PROVIDER: &str = "azure";

/// User tags plus the tags every stackup object carries.
pub fn with_managed_tags(ctx: &Ctx, user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut t = user.clone();
    t.extend(ctx.tags());
    t
}

/// The `tags` object of an ARM body.
pub fn tags_of(body: &Value) -> BTreeMap<String, String> {
    body.get("tags")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// Tags without the ones stackup manages and without the ones Azure itself creates (names
/// starting with `microsoft`, `azure` or `windows`, which users cannot create): what the user
/// wrote in the spec.
pub fn user_tags(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| !MANAGED_TAGS.contains(&k.as_str()) && !is_azure_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The tags to send when updating an object: the user's, stackup's, and the ones Azure created
/// on it (a PUT or PATCH of `tags` replaces them all, and `diff` ignores Azure's, so an update
/// must not strip them).
pub fn update_tags(
    ctx: &Ctx,
    user: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> =
        observed.iter().filter(|(k, _)| is_azure_tag(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    t.extend(with_managed_tags(ctx, user));
    t
}

/// Compares a resource group name or an ARM id with what ARM returned. ARM treats both
/// case-insensitively and does not keep the case it was given (Microsoft.Compute answers with
/// the resource group in upper case), so a known value differing only in case is no change.
pub fn diff_ci(d: &mut Diff, path: &str, desired: &Input<String>, observed: &str, replace: bool) {
    if let Input::Value(v) | Input::Sensitive(v) = desired
        && v.eq_ignore_ascii_case(observed)
    {
        return;
    }
    if replace {
        d.input_replace(path, desired, &observed.to_owned());
    } else {
        d.input(path, desired, &observed.to_owned());
    }
}

/// True when an object's tags say this stack created it at this address.
pub fn is_ours(ctx: &Ctx, tags: &BTreeMap<String, String>) -> bool {
    tags.get("managed-by").map(String::as_str) == Some("stackup")
        && tags.get("stackup-stack").map(String::as_str) == Some(ctx.stack())
        && tags.get("stackup-address").map(String::as_str) == Some(ctx.address())
}

/// The error for a name already taken by an object this stack does not manage.
pub fn not_ours(what: &str, id: &str) -> Error {
    Error::Conflict(ApiErrorDetails {
        status: None,
        code: Some("AlreadyExistsUnmanaged".into()),
        message: format!(
            "{what} `{id}` already exists and was not created by this stack (its stackup tags differ); \
             choose another name or adopt it by tagging it managed-by=stackup, stackup-stack and stackup-address"
        ),
        request_id: None,
    })
}

/// A string at a JSON pointer, or empty.
pub fn str_at(body: &Value, pointer: &str) -> String {
    body.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// An optional string at a JSON pointer.
pub fn opt_str_at(body: &Value, pointer: &str) -> Option<String> {
    body.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

/// A boolean at a JSON pointer, with the server's default when absent.
pub fn bool_at(body: &Value, pointer: &str, default: bool) -> bool {
    body.pointer(pointer).and_then(Value::as_bool).unwrap_or(default)
}

/// The `id` of an ARM body, falling back to the path the object was read at.
pub fn id_of(body: &Value, fallback: &str) -> String {
    opt_str_at(body, "/id").unwrap_or_else(|| fallback.to_owned())
}

/// Creates a tagged top-level resource by name: refuses to take over an object this stack did
/// not create, PUTs the body and waits, and on failure reports the object as partially created
/// when it exists.
pub async fn create_tagged(
    client: &crate::client::ArmClient,
    ctx: &Ctx,
    what: &str,
    path: &str,
    api_version: &str,
    body: &Value,
) -> Result<Value, stackup_core::CreateError> {
    create_tagged_from(client, ctx, what, path, api_version, |_| body.clone()).await
}

/// [`create_tagged`] with the body made from what exists already (ours, left by an interrupted
/// run), so a PUT does not drop what it would replace wholesale: a VNet's subnets.
pub async fn create_tagged_from(
    client: &crate::client::ArmClient,
    ctx: &Ctx,
    what: &str,
    path: &str,
    api_version: &str,
    body: impl FnOnce(Option<&Value>) -> Value,
) -> Result<Value, stackup_core::CreateError> {
    let existing = client.get(path, api_version).await?;
    if let Some(existing) = &existing
        && !is_ours(ctx, &tags_of(existing))
    {
        return Err(not_ours(what, path).into());
    }
    let body = body(existing.as_ref());
    match client.put(Some(ctx), path, api_version, &body).await {
        Ok(b) => Ok(b),
        Err(e) if client.exists(path, api_version).await => Err(stackup_core::CreateError::partial(e, path)),
        Err(e) => Err(e.into()),
    }
}

/// Finds a tagged top-level resource this address created.
pub async fn lookup_tagged(
    client: &crate::client::ArmClient,
    ctx: &Ctx,
    path: &str,
    api_version: &str,
) -> Result<Option<Value>, Error> {
    Ok(client.get(path, api_version).await?.filter(|b| is_ours(ctx, &tags_of(b))))
}

/// `{"id": …}` for a sub-resource reference, or nothing.
pub fn id_ref(id: Option<&str>) -> Option<Value> {
    id.map(|i| serde_json::json!({ "id": i }))
}

/// Compares two ARM ids as ARM does (case-insensitively).
pub fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The resource group segment of an ARM id.
pub fn rg_of(id: &str) -> String {
    crate::ids::ResourceId::parse(id).map(|r| r.resource_group).unwrap_or_default()
}
