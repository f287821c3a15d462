//! The provisioners, one file per OCI resource, and the lifecycle helpers they share.

pub mod instance;
pub mod internet_gateway;
pub mod route_table;
pub mod security_list;
pub mod subnet;
pub mod vcn;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use stackup_core::wait::{Poll, Waiter};
use stackup_core::{Ctx, Error};

use crate::client::{OciClient, Service};

/// The provider name in resource kinds.
pub const PROVIDER: &str = "oci";

/// The `lifecycleState` of a JSON object (unknown or missing → `"UNKNOWN"`).
pub(crate) fn lifecycle(v: &Value) -> &str {
    v.get("lifecycleState").and_then(Value::as_str).unwrap_or("UNKNOWN")
}

fn waiter(client: &OciClient, what: String, timeout: Duration) -> Waiter {
    let t = client.timing();
    Waiter { what, interval: t.poll_interval, max_interval: t.max_poll_interval, timeout }
}

/// Polls `GET path` until its `lifecycleState` is one of `ready` (returning the object), fails
/// on one of `failed`, and stops when the run is cancelled.
pub(crate) async fn wait_for_state<T: DeserializeOwned>(
    client: &OciClient,
    ctx: &Ctx,
    what: &str,
    path: &str,
    ready: &[&str],
    failed: &[&str],
    timeout: Duration,
) -> Result<T, Error> {
    let w = waiter(client, format!("{what} to be {}", ready.join(" or ")), timeout);
    let v: Value = w
        .wait(|| async {
            if ctx.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let v: Value = client.get(Service::Iaas, path, &[]).await?;
            let state = lifecycle(&v).to_owned();
            if ready.contains(&state.as_str()) {
                Ok(Poll::Done(v))
            } else if failed.contains(&state.as_str()) {
                Ok(Poll::Failed(Error::Provider(stackup_core::ApiErrorDetails {
                    code: Some(format!("lifecycleState {state}")),
                    message: format!("{what} went to {state} while waiting for {}", ready.join(" or ")),
                    ..Default::default()
                })))
            } else {
                ctx.progress(format!("{what} is {state}"));
                Ok(Poll::Pending(None))
            }
        })
        .await?;
    serde_json::from_value(v).map_err(|e| Error::other(format!("decoding {what}"), e))
}

/// Polls `GET path` until it answers 404 or a `TERMINATED` state.
pub(crate) async fn wait_gone(
    client: &OciClient,
    ctx: &Ctx,
    what: &str,
    path: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let w = waiter(client, format!("{what} to be deleted"), timeout);
    w.wait(|| async {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled);
        }
        match client.get_opt::<Value>(Service::Iaas, path).await? {
            None => Ok(Poll::Done(())),
            Some(v) if lifecycle(&v) == "TERMINATED" => Ok(Poll::Done(())),
            Some(v) => {
                ctx.progress(format!("{what} is {}", lifecycle(&v)));
                Ok(Poll::Pending(None))
            }
        }
    })
    .await
}

/// True when an object's tags say this stack and address created it.
pub(crate) fn tagged_for(ctx: &Ctx, tags: &BTreeMap<String, String>) -> bool {
    tags.get("stackup-address").map(String::as_str) == Some(ctx.address())
        && tags.get("stackup-stack").map(String::as_str) == Some(ctx.stack())
}

/// Finds, among `GET path?query` results, a live object this stack and address created.
pub(crate) async fn find_tagged(
    client: &OciClient,
    ctx: &Ctx,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Option<Value>, Error> {
    let items: Vec<Value> = client.list(Service::Iaas, path, query).await?;
    Ok(items.into_iter().find(|v| {
        let tags: BTreeMap<String, String> =
            v.get("freeformTags").cloned().and_then(|t| serde_json::from_value(t).ok()).unwrap_or_default();
        !matches!(lifecycle(v), "TERMINATED" | "TERMINATING") && tagged_for(ctx, &tags)
    }))
}

/// True when two optional names are equal ignoring ASCII case. OCI treats availability domain,
/// fault domain and DNS label names case-insensitively and may answer them in another case than
/// was sent (`Uocm:PHX-AD-1` for `uocm:PHX-AD-1`), so comparing them exactly would replace the
/// object on every plan (the Terraform provider suppresses these diffs with
/// `EqualIgnoreCaseSuppressDiff` for the same reason).
pub(crate) fn same_name(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

/// Decodes a JSON object into a wire type.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::other(format!("decoding {what}"), e))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stackup_core::{Action, Input, Provisioner};

    use super::instance::{ImageSource, InstanceOutputs, InstanceSpec, Instances};
    use super::subnet::{SubnetOutputs, SubnetSpec, Subnets};
    use super::vcn::{VcnOutputs, VcnSpec, Vcns};
    use crate::client::OciClient;

    fn client() -> OciClient {
        OciClient::builder().offline("ocid1.tenancy.oc1..aaaa").region("us-phoenix-1").build().unwrap()
    }

    #[test]
    fn names_oci_answers_in_its_own_case_do_not_replace_anything() {
        // The spec says `afVcn` / `uocm:PHX-AD-1`; OCI answers `afvcn` / `Uocm:PHX-AD-1`.
        let vcn = VcnSpec {
            compartment_id: "ocid1.tenancy.oc1..aaaa".into(),
            display_name: "v".into(),
            cidr_blocks: vec!["10.0.0.0/16".into()],
            dns_label: Some("afVcn".into()),
            freeform_tags: BTreeMap::new(),
        };
        let observed = VcnOutputs {
            id: "ocid1.vcn.oc1.phx.a".into(),
            compartment_id: vcn.compartment_id.clone(),
            display_name: "v".into(),
            cidr_blocks: vcn.cidr_blocks.clone(),
            dns_label: Some("afvcn".into()),
            default_route_table_id: "rt".into(),
            default_security_list_id: "sl".into(),
            default_dhcp_options_id: "dhcp".into(),
            lifecycle_state: "AVAILABLE".into(),
            freeform_tags: BTreeMap::new(),
        };
        let vcns = Vcns::new(client());
        assert_eq!(vcns.diff(&vcn, &observed).action(), Action::NoOp, "{:?}", vcns.diff(&vcn, &observed));
        let mut other = vcn.clone();
        other.dns_label = Some("other".into());
        assert_eq!(vcns.diff(&other, &observed).action(), Action::Replace);

        let subnet = SubnetSpec {
            compartment_id: "ocid1.tenancy.oc1..aaaa".into(),
            vcn_id: Input::Value("ocid1.vcn.oc1.phx.a".into()),
            display_name: "s".into(),
            cidr_block: "10.0.0.0/24".into(),
            dns_label: Some("Web".into()),
            availability_domain: Some("uocm:PHX-AD-1".into()),
            route_table_id: None,
            security_list_ids: vec![],
            prohibit_public_ip_on_vnic: false,
            freeform_tags: BTreeMap::new(),
        };
        let observed = SubnetOutputs {
            id: "ocid1.subnet.oc1.phx.a".into(),
            compartment_id: subnet.compartment_id.clone(),
            vcn_id: "ocid1.vcn.oc1.phx.a".into(),
            display_name: "s".into(),
            cidr_block: "10.0.0.0/24".into(),
            dns_label: Some("web".into()),
            availability_domain: Some("Uocm:PHX-AD-1".into()),
            route_table_id: "rt".into(),
            security_list_ids: vec!["sl".into()],
            prohibit_public_ip_on_vnic: false,
            lifecycle_state: "AVAILABLE".into(),
            freeform_tags: BTreeMap::new(),
        };
        let subnets = Subnets::new(client());
        assert_eq!(subnets.diff(&subnet, &observed).action(), Action::NoOp, "{:?}", subnets.diff(&subnet, &observed));
        let mut other = subnet.clone();
        other.availability_domain = Some("Uocm:PHX-AD-2".into());
        assert_eq!(subnets.diff(&other, &observed).action(), Action::Replace);

        let instance = InstanceSpec {
            compartment_id: "ocid1.tenancy.oc1..aaaa".into(),
            display_name: "vm".into(),
            availability_domains: vec!["uocm:PHX-AD-1".into()],
            fault_domains: vec!["FAULT-DOMAIN-1".into()],
            shape: "VM.Standard.A1.Flex".into(),
            ocpus: Some(1.0),
            memory_in_gbs: Some(6.0),
            image: ImageSource::Id { image_id: "ocid1.image.oc1.phx.a".into() },
            boot_volume_size_in_gbs: None,
            subnet_id: Input::Value("ocid1.subnet.oc1.phx.a".into()),
            assign_public_ip: true,
            ssh_authorized_keys: vec![],
            user_data: None,
            freeform_tags: BTreeMap::new(),
            allow_billing: false,
        };
        let observed = InstanceOutputs {
            id: "ocid1.instance.oc1.phx.a".into(),
            compartment_id: instance.compartment_id.clone(),
            display_name: "vm".into(),
            availability_domain: "Uocm:PHX-AD-1".into(),
            fault_domain: Some("FAULT-DOMAIN-1".into()),
            shape: "VM.Standard.A1.Flex".into(),
            ocpus: Some(1.0),
            memory_in_gbs: Some(6.0),
            image_id: "ocid1.image.oc1.phx.a".into(),
            operating_system: None,
            operating_system_version: None,
            boot_volume_size_in_gbs: None,
            subnet_id: "ocid1.subnet.oc1.phx.a".into(),
            public_ip: Some("203.0.113.7".into()),
            private_ip: Some("10.0.0.2".into()),
            ssh_authorized_keys: vec![],
            user_data_sha256: None,
            lifecycle_state: "RUNNING".into(),
            freeform_tags: BTreeMap::new(),
        };
        let instances = Instances::new(client());
        assert_eq!(
            instances.diff(&instance, &observed).action(),
            Action::NoOp,
            "{:?}",
            instances.diff(&instance, &observed)
        );
        let mut other = instance.clone();
        other.availability_domains = vec!["Uocm:PHX-AD-2".into()];
        assert_eq!(instances.diff(&other, &observed).action(), Action::Replace);
    }
}
