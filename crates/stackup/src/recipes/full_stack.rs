//! Cross-provider recipe: the seed 004 Always Free VM on OCI that joins the seed 002 tailnet
//! and ships its container logs to the seed 001 R2 bucket, all in one stack, outputs flowing
//! across providers. It composes [`FreeTierOnOci`], [`TailnetServer`] and [`LogsToR2`]; it
//! duplicates none of them.
//!
//! In one apply:
//!
//! 1. `tailnet/server_key` (reusable, preauthorized, tagged) and `tailnet/ci_key` are minted;
//!    `logs/bucket` is ensured;
//! 2. `oci/vcn` … `oci/vm` are created; the VM's user data is [`FreeTierOnOci::cloud_init`]
//!    (Docker, Compose, host firewall, compose app) plus [`LogsToR2::ship_from_vm`] (rclone,
//!    `rclone.conf` 0600, the seed's script, hourly cron) plus [`TailnetServer::join_on_boot`]
//!    (`tailscale up --authkey=<tailnet/server_key.key> --hostname=…`, then
//!    `tailscale serve --bg http://127.0.0.1:<port>`);
//! 3. `tailnet/server` waits for the VM to join (it depends on `oci/vm`), then it is authorized,
//!    tagged and its key expiry disabled.
//!
//! **The first boot is create-only.** The server key's secret is returned once, at creation, and
//! the VM's user data embeds it. Without a state key (`STACKUP_STATE_KEY`) a later plan cannot
//! know that secret, and once the key expires (90 days) it is renewed: either would change the
//! user data and replace a running server. So the recipe ignores changes to the VM's user data
//! ([`Stack::ignore_changes`] on `user_data_sha256`); the plan notes them. To run a changed first
//! boot, replace the VM on purpose: `Engine::replace("oci/vm")`, or `--replace oci/vm` in the
//! example. See `docs/recipes/full_stack.md`.

use stackup_core::cloud_init::CloudConfig;
use stackup_core::{Error, Input, OutputRef, Stack};
use stackup_oci::OciClient;
use stackup_r2::R2Client;
use stackup_tailscale::TailscaleClient;

use crate::recipes::free_tier_on_oci::{FreeTierOnOci, FreeTierOnOciOutputs};
use crate::recipes::logs_to_r2::{LogsToR2, LogsToR2Outputs, ShipperCredentials};
use crate::recipes::tailnet_server::{TailnetServer, TailnetServerOutputs};

/// Ninety days: the server key outlives a slow first boot and a capacity hunt by far.
const SERVER_KEY_EXPIRY: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// The instance field that stands for its user data (the first-boot script) in plans.
pub const VM_FIRST_BOOT_FIELD: &str = "user_data_sha256";

/// The clients of the three providers.
#[derive(Debug, Clone)]
pub struct FullStackClients {
    /// Oracle Cloud.
    pub oci: OciClient,
    /// Tailscale.
    pub tailscale: TailscaleClient,
    /// Cloudflare R2 (creates the bucket).
    pub r2: R2Client,
}

/// An OCI VM on a tailnet shipping its logs to R2.
#[derive(Debug, Clone)]
pub struct FullStack {
    oci: FreeTierOnOci,
    tailnet: TailnetServer,
    logs: LogsToR2,
    shipper: ShipperCredentials,
}

/// What [`FullStack::add_to`] added.
#[derive(Debug, Clone)]
pub struct FullStackOutputs {
    /// The OCI side.
    pub oci: FreeTierOnOciOutputs,
    /// The tailnet side.
    pub tailnet: TailnetServerOutputs,
    /// The log bucket.
    pub logs: LogsToR2Outputs,
    /// The VM's public IP.
    pub public_ip: OutputRef,
    /// `https://<hostname>.<tailnet>.ts.net/`: the app through `tailscale serve`.
    pub url: Input<String>,
    /// `TS_AUTHKEY` for CI.
    pub ts_authkey: OutputRef,
}

impl FullStack {
    /// The three recipes with their documents' defaults; the VM boots with `ssh_public_key`
    /// and ships logs with `shipper` (an R2 token limited to the bucket is enough).
    pub fn new(ssh_public_key: impl Into<String>, shipper: ShipperCredentials) -> Self {
        FullStack {
            oci: FreeTierOnOci::new(ssh_public_key),
            tailnet: TailnetServer::new(),
            logs: LogsToR2::new(),
            shipper,
        }
    }

    /// Replaces the OCI recipe.
    pub fn oci(mut self, oci: FreeTierOnOci) -> Self {
        self.oci = oci;
        self
    }

    /// Replaces the tailnet recipe. Its server key is made reusable and long-lived whatever
    /// it says: the VM's user data embeds it (see the module docs).
    pub fn tailnet(mut self, tailnet: TailnetServer) -> Self {
        self.tailnet = tailnet;
        self
    }

    /// Replaces the logs recipe.
    pub fn logs(mut self, logs: LogsToR2) -> Self {
        self.logs = logs;
        self
    }

    fn tailnet_recipe(&self) -> TailnetServer {
        self.tailnet.clone().server_key_reusable(true).server_key_expiry(SERVER_KEY_EXPIRY)
    }

    /// The VM's first boot: the OCI recipe's document, then the log shipper, then the tailnet
    /// join and `tailscale serve`.
    pub fn cloud_init(&self, tailnet: &TailnetServerOutputs) -> Result<CloudConfig, Error> {
        let doc = self.oci.cloud_init();
        let doc = self.logs.ship_from_vm(doc, &self.shipper)?;
        Ok(self.tailnet_recipe().join_on_boot(doc, tailnet))
    }

    /// Checks the three recipes; no call is made.
    pub fn validate(&self) -> Result<(), Error> {
        self.oci.validate()?;
        self.tailnet_recipe().validate()?;
        self.logs.validate()?;
        self.shipper.config()?;
        Ok(())
    }

    /// Adds everything to `stack`: keys and bucket, then the network and VM whose cloud-init
    /// uses them, then the device wait, which depends on the VM.
    pub fn add_to(&self, stack: &mut Stack, clients: &FullStackClients) -> Result<FullStackOutputs, Error> {
        self.validate()?;
        let tailnet_recipe = self.tailnet_recipe();
        let tailnet = tailnet_recipe.add_to(stack, &clients.tailscale)?;
        let logs = self.logs.add_to(stack, &clients.r2)?;
        let doc = self.cloud_init(&tailnet)?;
        let oci = self.oci.add_with_cloud_init(stack, &clients.oci, doc)?;
        // The first boot embeds a one-time key that state may not keep and that is renewed when
        // it expires: neither may replace a running server. Re-run the first boot on purpose
        // with `Engine::replace("oci/vm")` (`--replace oci/vm`).
        stack.ignore_changes(oci.vm.address(), [VM_FIRST_BOOT_FIELD])?;
        // The device can join only once the VM runs; the VM ships to a bucket that must exist.
        stack.depends_on(tailnet.device.address(), oci.vm.address())?;
        stack.depends_on(oci.vm.address(), logs.bucket.address())?;
        Ok(FullStackOutputs {
            public_ip: oci.public_ip.clone(),
            url: tailnet.url.clone(),
            ts_authkey: tailnet.ts_authkey.clone(),
            oci,
            tailnet,
            logs,
        })
    }
}
