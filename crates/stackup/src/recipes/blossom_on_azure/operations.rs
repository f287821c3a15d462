//! Day-2 operations of seed 000, section 9.
//!
//! - **Key rotation** (9.2): regenerate `key2` (`POST {account}/regenerateKey`, through
//!   [`StorageAccounts::regenerate_key`]), then rewrite the VM's credentials file with the new key
//!   and remount the share, through ARM's VM Run Command action (`POST
//!   {vm}/runCommand?api-version=2025-04-01` with `RunShellScript`). The new key travels only in
//!   the request body, as a run-command parameter (never in the script text, a URL, a log line or
//!   an error), and the script never prints it. The share's mount unit is restarted, which
//!   restarts `blossom.service` with it (`Requires=`).
//! - **Snapshot** (9.3, `az storage share snapshot`): `PUT {share}?$expand=snapshots` through
//!   [`FileShares::create_snapshot`]; list and delete them too.
//!
//! The VM's cloud-init keeps `key1`, the key the document mounts with first; rotating `key2` and
//! switching the VM to it (as the document does) never changes the VM's custom data, so the next
//! plan stays empty.

use serde_json::{Value, json};
use stackup_azure::api_versions::COMPUTE;
use stackup_azure::resources::file_share::FileShares;
use stackup_azure::resources::storage_account::{KeyName, StorageAccounts};
use stackup_azure::{ArmClient, ShareSnapshot};
use stackup_core::{ApiErrorDetails, Error, Secret};

/// The name of the run-command parameter carrying the new key.
pub const KEY_PARAMETER: &str = "STACKUP_STORAGE_KEY";

/// Printed by the rotation script as its last line when everything worked.
pub const ROTATION_OK_MARKER: &str = "stackup: storage key rotated and share remounted";

/// What the operations act on (names as the recipe derives them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Resource group.
    pub resource_group: String,
    /// Storage account name.
    pub account: String,
    /// File share name.
    pub share: String,
    /// VM name.
    pub vm: String,
    /// The credentials file on the VM.
    pub credentials_file: String,
    /// The mount point on the VM.
    pub mount_point: String,
}

/// The result of a key rotation.
#[derive(Debug, Clone)]
pub struct KeyRotation {
    /// The key that was regenerated (`key2`).
    pub key_name: &'static str,
    /// Its new value.
    pub new_key: Secret,
    /// What the script printed on the VM (stdout and stderr, the new key never among them).
    pub vm_output: String,
}

/// Section 9 of the document for one deployment.
#[derive(Debug, Clone)]
pub struct BlossomOperations {
    client: ArmClient,
    target: Target,
}

impl BlossomOperations {
    /// Operations on `target` through `client`.
    pub fn new(client: ArmClient, target: Target) -> Self {
        BlossomOperations { client, target }
    }

    /// What the operations act on.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn account_id(&self) -> Result<String, Error> {
        Ok(format!(
            "{}/providers/Microsoft.Storage/storageAccounts/{}",
            self.client.resource_group_path(&self.target.resource_group)?,
            self.target.account
        ))
    }

    /// The share's ARM id.
    pub fn share_id(&self) -> Result<String, Error> {
        Ok(format!("{}/fileServices/default/shares/{}", self.account_id()?, self.target.share))
    }

    fn vm_id(&self) -> Result<String, Error> {
        Ok(format!(
            "{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.client.resource_group_path(&self.target.resource_group)?,
            self.target.vm
        ))
    }

    /// The shell script that rewrites the credentials file with the key passed as a parameter
    /// and remounts the share (section 9.2). Run-command parameters reach the script as
    /// environment variables or as positional arguments depending on the agent, so both are
    /// read; the key is written with `printf` (a shell builtin: it never appears in a process
    /// list) and never echoed.
    pub fn rotation_script(&self) -> Vec<String> {
        let t = &self.target;
        let unit = super::cloud_init::mount_unit_name(&t.mount_point);
        let dir = t.credentials_file.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty()).unwrap_or("/");
        vec![
            "set -eu".into(),
            "umask 077".into(),
            format!("key=\"${{{KEY_PARAMETER}:-${{1:-}}}}\""),
            format!("key=\"${{key#{KEY_PARAMETER}=}}\""),
            "[ -n \"$key\" ] || { echo 'stackup: no storage key was passed' >&2; exit 2; }".into(),
            format!("mkdir -p {dir}"),
            format!(
                "printf 'username=%s\\npassword=%s\\n' '{acct}' \"$key\" > {cred}.new",
                acct = t.account,
                cred = t.credentials_file
            ),
            format!("chmod 600 {0}.new && mv -f {0}.new {0}", t.credentials_file),
            "unset key".into(),
            // Restarting the mount unit remounts with the new file and restarts every unit that
            // Requires= it (blossom.service); fall back to the document's umount + mount -a.
            format!(
                "systemctl restart {unit} 2>/dev/null || {{ umount {mp} 2>/dev/null || umount -l {mp}; mount -a; }}",
                mp = t.mount_point
            ),
            format!("mountpoint -q {}", t.mount_point),
            format!("echo '{ROTATION_OK_MARKER}'"),
        ]
    }

    /// Regenerates `key2` and switches the VM's mount to it (section 9.2). Fails, naming the
    /// step, when the VM reports the script did not finish; the key is then already rotated
    /// (key1 still works for the current mount until it is remounted).
    pub async fn rotate_storage_key(&self) -> Result<KeyRotation, Error> {
        let keys = StorageAccounts::new(self.client.clone()).regenerate_key(&self.account_id()?, KeyName::Key2).await?;
        let vm_output = self.update_vm_credentials(&keys.key2).await?;
        Ok(KeyRotation { key_name: KeyName::Key2.as_str(), new_key: keys.key2, vm_output })
    }

    /// Rewrites the VM's credentials file with `key` and remounts (the second half of the
    /// rotation, also useful after rotating a key by other means). Returns the script output.
    pub async fn update_vm_credentials(&self, key: &Secret) -> Result<String, Error> {
        let body = json!({
            "commandId": "RunShellScript",
            "script": self.rotation_script(),
            "parameters": [{"name": KEY_PARAMETER, "value": key.expose()}],
        });
        let path = format!("{}/runCommand", self.vm_id()?);
        let result = self.client.post(&path, COMPUTE, Some(&body)).await.map_err(|e| redact_error(e, key))?;
        let output = run_command_output(&result).replace(key.expose(), "(redacted)");
        if !output.contains(ROTATION_OK_MARKER) {
            return Err(Error::Provider(ApiErrorDetails {
                status: None,
                code: Some("RunCommandScriptFailed".into()),
                message: format!(
                    "the storage key was rotated, but updating {} on VM `{}` did not finish; \
                     the VM reported: {}",
                    self.target.credentials_file,
                    self.target.vm,
                    output.trim()
                ),
                request_id: None,
            }));
        }
        Ok(output)
    }

    /// Takes a snapshot of the share (section 9.3, the manual backup).
    pub async fn snapshot_share(&self) -> Result<ShareSnapshot, Error> {
        FileShares::new(self.client.clone()).create_snapshot(&self.share_id()?).await
    }

    /// The share's snapshots, oldest first.
    pub async fn list_share_snapshots(&self) -> Result<Vec<ShareSnapshot>, Error> {
        FileShares::new(self.client.clone()).list_snapshots(&self.share_id()?).await
    }

    /// Deletes one snapshot (already gone is success).
    pub async fn delete_share_snapshot(&self, snapshot_time: &str) -> Result<(), Error> {
        FileShares::new(self.client.clone()).delete_snapshot(&self.share_id()?, snapshot_time).await
    }
}

/// The text of a run-command result: `{"value": [{"code", "message"}, …]}`, messages joined (for
/// Linux, one `ProvisioningState/succeeded` entry whose message holds `[stdout]` and `[stderr]`).
pub fn run_command_output(result: &Value) -> String {
    result
        .get("value")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.get("message").and_then(Value::as_str)).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// An error with every occurrence of the key replaced (a defence in depth: ARM errors quote
/// request values only in rare validation messages).
fn redact_error(e: Error, key: &Secret) -> Error {
    let k = key.expose();
    if k.is_empty() || !e.to_string().contains(k) {
        return e;
    }
    Error::Provider(ApiErrorDetails {
        status: None,
        code: Some("RunCommandFailed".into()),
        message: e.to_string().replace(k, "(redacted)"),
        request_id: None,
    })
}
