//! Recipe `tailnet_server` (seed 002, EgoGraph backend reached over Tailscale): a server that
//! joins the tailnet and serves its app through `tailscale serve`, and the CI key that deploys
//! to it.
//!
//! What [`TailnetServer::add_to`] adds (addresses under the prefix, `tailnet/` by default):
//!
//! | address | resource | seed 002 |
//! |---|---|---|
//! | `tailnet/server_key` | preauthorized, tagged auth key for the server | `tailscale up` (§2.1) |
//! | `tailnet/ci_key` | reusable, ephemeral, tagged key for CI | GitHub secret `TS_AUTHKEY` (§6.2) |
//! | `tailnet/server` | waits for `egograph-prod` to join | `tailscale up --hostname=egograph-prod` |
//! | `tailnet/server_authorization` | authorizes it | admin console approval |
//! | `tailnet/server_tags` | tags it (`tag:server`) | |
//! | `tailnet/server_key_expiry` | disables its node key expiry | |
//! | `tailnet/dns` | MagicDNS on (left on by destroy) | `<hostname>.<tailnet>.ts.net` names |
//! | `tailnet/acl` (optional) | CI tag may reach the server on port 22 | `SSH_HOST` deploys |
//!
//! Tailscale refuses a key (or device tags) naming a tag the policy's `tagOwners` lacks, so when
//! the recipe manages the policy file both keys wait for it; when it does not, the tailnet's
//! policy must already own the server and CI tags.
//!
//! The machine itself (the seed's Proxmox LXC) is not provisioned here; run
//! [`TailnetServer::join_on_boot`] in its cloud-init, or compose with a VM recipe
//! ([`crate::recipes::full_stack`]) so the device wait follows the VM.

use std::time::Duration;

use stackup_core::cloud_init::{CloudConfig, Text};
use stackup_core::{Error, Handle, Input, OutputRef, Stack, TemplatePart};
use stackup_tailscale::{
    AclPolicies, AclPolicySpec, AuthKeySpec, AuthKeys, DeviceAuthorizationSpec, DeviceAuthorizations,
    DeviceKeyExpiries, DeviceKeyExpirySpec, DeviceSpec, DeviceTags, DeviceTagsSpec, Devices, DnsSettings, DnsSpec,
    NameConflict, TailscaleClient, validate,
};

/// Ninety days, Tailscale's longest key lifetime.
const NINETY_DAYS: Duration = Duration::from_secs(90 * 86_400);

/// The seed's server on a tailnet, and its CI key. Defaults come from seed 002.
#[derive(Debug, Clone)]
pub struct TailnetServer {
    prefix: String,
    hostname: String,
    server_tags: Vec<String>,
    server_key_expiry: Duration,
    server_key_reusable: bool,
    ci_tags: Vec<String>,
    ci_key_expiry: Duration,
    ci_key_description: Option<String>,
    join_timeout: Duration,
    poll_interval: Duration,
    authorize: bool,
    tag_device: bool,
    disable_key_expiry: bool,
    name_conflict: NameConflict,
    remove_on_destroy: bool,
    magic_dns: bool,
    reset_magic_dns_on_destroy: bool,
    ci_ssh_acl: bool,
    acl_policy: Option<String>,
    ssh_port: u16,
    serve_port: u16,
}

impl Default for TailnetServer {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`TailnetServer::add_to`] added: handles and the outputs other resources use.
#[derive(Debug, Clone)]
pub struct TailnetServerOutputs {
    /// The server's auth key (`key` is the secret `tskey-auth-…`).
    pub server_key: Handle<AuthKeys>,
    /// The CI key.
    pub ci_key: Handle<AuthKeys>,
    /// The joined device (`node_id`, `magic_dns_name`, `ipv4`, …).
    pub device: Handle<Devices>,
    /// Its authorization, when managed.
    pub authorization: Option<Handle<DeviceAuthorizations>>,
    /// Its tags, when managed.
    pub tags: Option<Handle<DeviceTags>>,
    /// Its key expiry setting, when managed.
    pub key_expiry: Option<Handle<DeviceKeyExpiries>>,
    /// MagicDNS, when managed.
    pub dns: Option<Handle<DnsSettings>>,
    /// The policy file, when managed.
    pub acl: Option<Handle<AclPolicies>>,
    /// The server's auth key secret (for `tailscale up --authkey=…`).
    pub server_authkey: OutputRef,
    /// `TS_AUTHKEY` for CI (secret).
    pub ts_authkey: OutputRef,
    /// `SSH_HOST` for CI: the MagicDNS name `<hostname>.<tailnet>.ts.net`.
    pub ssh_host: OutputRef,
    /// `https://<hostname>.<tailnet>.ts.net/`, served by `tailscale serve`.
    pub url: Input<String>,
}

impl TailnetServer {
    /// Seed 002's values: hostname `egograph-prod`, server tag `tag:server`, CI tag `tag:ci`,
    /// app on `127.0.0.1:8000`, SSH on 22; the server key lives one day (it is used once, on
    /// first boot), the CI key 90 days; wait up to 10 minutes for the server; authorize it, tag
    /// it, disable its key expiry; MagicDNS on (the document's `https://<host>.<tailnet>.ts.net/`
    /// and `SSH_HOST` need it; destroy leaves it on); the ACL rule off until asked for (it
    /// replaces the policy file).
    pub fn new() -> Self {
        TailnetServer {
            prefix: "tailnet".into(),
            hostname: "egograph-prod".into(),
            server_tags: vec!["tag:server".into()],
            server_key_expiry: Duration::from_secs(86_400),
            server_key_reusable: false,
            ci_tags: vec!["tag:ci".into()],
            ci_key_expiry: NINETY_DAYS,
            ci_key_description: None,
            join_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            authorize: true,
            tag_device: true,
            disable_key_expiry: true,
            name_conflict: NameConflict::Fail,
            remove_on_destroy: true,
            magic_dns: true,
            reset_magic_dns_on_destroy: false,
            ci_ssh_acl: false,
            acl_policy: None,
            ssh_port: 22,
            serve_port: 8000,
        }
    }

    /// Address prefix of every resource (default `tailnet`): `tailnet/server_key`, ….
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The hostname the server joins with (`tailscale up --hostname=…`).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self
    }

    /// Tags of the server key and device (default `tag:server`).
    pub fn server_tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.server_tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Lifetime of the server key (default 1 day).
    pub fn server_key_expiry(mut self, d: Duration) -> Self {
        self.server_key_expiry = d;
        self
    }

    /// Makes the server key reusable (default single-use). A VM whose user data embeds the key
    /// needs a key that stays valid after its first use: [`crate::recipes::full_stack`] sets it.
    pub fn server_key_reusable(mut self, reusable: bool) -> Self {
        self.server_key_reusable = reusable;
        self
    }

    /// Tags of the CI key (default `tag:ci`).
    pub fn ci_tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.ci_tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Lifetime of the CI key (default 90 days; it is renewed in the last tenth of its life).
    pub fn ci_key_expiry(mut self, d: Duration) -> Self {
        self.ci_key_expiry = d;
        self
    }

    /// Description of the CI key (at most 50 letters, digits, hyphens and spaces). Unset by
    /// default: stackup then describes keys with the run's idempotency token, which lets a run
    /// interrupted mid-create find the orphaned key and revoke it.
    pub fn ci_key_description(mut self, d: impl Into<String>) -> Self {
        self.ci_key_description = Some(d.into());
        self
    }

    /// How long to wait for the server to join (default 10 minutes).
    pub fn join_timeout(mut self, d: Duration) -> Self {
        self.join_timeout = d;
        self
    }

    /// First poll interval of the join wait (default 2 s; tests use milliseconds).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Manage the device's authorization (default on).
    pub fn authorize(mut self, yes: bool) -> Self {
        self.authorize = yes;
        self
    }

    /// Manage the device's tags (default on: the server tags).
    pub fn tag_device(mut self, yes: bool) -> Self {
        self.tag_device = yes;
        self
    }

    /// Disable the device's key expiry (default on).
    pub fn disable_key_expiry(mut self, yes: bool) -> Self {
        self.disable_key_expiry = yes;
        self
    }

    /// What to do when the device joined under a suffixed name (`egograph-prod-1`).
    pub fn on_name_conflict(mut self, c: NameConflict) -> Self {
        self.name_conflict = c;
        self
    }

    /// Remove the device from the tailnet on destroy (default on).
    pub fn remove_on_destroy(mut self, yes: bool) -> Self {
        self.remove_on_destroy = yes;
        self
    }

    /// Ensure MagicDNS is on (default on, as seed 002 needs: the server's URL and `SSH_HOST` are
    /// MagicDNS names). `false` leaves the tailnet's DNS settings unmanaged.
    pub fn magic_dns(mut self, on: bool) -> Self {
        self.magic_dns = on;
        self
    }

    /// Turn MagicDNS off again when the stack is destroyed (default off: MagicDNS is a
    /// tailnet-wide setting other devices rely on, and new tailnets have it on already).
    pub fn reset_magic_dns_on_destroy(mut self, yes: bool) -> Self {
        self.reset_magic_dns_on_destroy = yes;
        self
    }

    /// Manage the policy file with the rules of [`TailnetServer::acl_policy_text`]: CI tags may
    /// reach the server tags on the SSH port, members on 443 (serve) and SSH. It replaces only the
    /// tailnet's default policy on first apply; pass your own with
    /// [`TailnetServer::acl_policy`] to merge.
    pub fn ci_ssh_acl(mut self, on: bool) -> Self {
        self.ci_ssh_acl = on;
        self
    }

    /// Manage the policy file with this HuJSON text instead of the generated one.
    pub fn acl_policy(mut self, hujson: impl Into<String>) -> Self {
        self.acl_policy = Some(hujson.into());
        self.ci_ssh_acl = true;
        self
    }

    /// SSH port CI reaches (default 22).
    pub fn ssh_port(mut self, port: u16) -> Self {
        self.ssh_port = port;
        self
    }

    /// Local port `tailscale serve` proxies to (default 8000, the uvicorn port).
    pub fn serve_port(mut self, port: u16) -> Self {
        self.serve_port = port;
        self
    }

    /// The configured hostname.
    pub fn hostname_value(&self) -> &str {
        &self.hostname
    }

    /// The address of one of this recipe's resources (`<prefix>/<name>`).
    pub fn address(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// Checks every value; the error names the field and the rule. No call is made.
    pub fn validate(&self) -> Result<(), Error> {
        validate::hostname("tailnet_server.hostname", &self.hostname)?;
        if self.server_tags.is_empty() {
            return Err(Error::invalid("tailnet_server.server_tags", "the server key must carry at least one tag"));
        }
        validate::tags("tailnet_server.server_tags", &self.server_tags)?;
        if self.ci_tags.is_empty() {
            return Err(Error::invalid("tailnet_server.ci_tags", "the CI key must carry at least one tag"));
        }
        validate::tags("tailnet_server.ci_tags", &self.ci_tags)?;
        if self.ci_tags.iter().any(|t| self.server_tags.contains(t)) {
            return Err(Error::invalid(
                "tailnet_server.ci_tags",
                "must differ from the server tags, or every CI runner would be treated as the server",
            ));
        }
        validate::key_expiry("tailnet_server.server_key_expiry", self.server_key_expiry.as_secs())?;
        validate::key_expiry("tailnet_server.ci_key_expiry", self.ci_key_expiry.as_secs())?;
        if let Some(d) = &self.ci_key_description {
            validate::key_description("tailnet_server.ci_key_description", d)?;
        }
        if self.join_timeout.is_zero() {
            return Err(Error::invalid("tailnet_server.join_timeout", "must be longer than zero"));
        }
        if self.ssh_port == 0 || self.serve_port == 0 {
            return Err(Error::invalid("tailnet_server.ports", "ports must be 1-65535"));
        }
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
            && self.prefix.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !prefix_ok {
            return Err(Error::invalid("tailnet_server.prefix", "letters, digits, `_-./`, starting with one"));
        }
        Ok(())
    }

    /// The generated policy: tag owners for both tags, CI tags to the server tags on the SSH
    /// port, members to the server tags on 443 (`tailscale serve`) and the SSH port, and members
    /// to their own devices (`autogroup:self`), so replacing a new tailnet's allow-all policy does
    /// not cut people off their own machines. Anything else the tailnet needs goes in your own
    /// policy ([`TailnetServer::acl_policy`]).
    pub fn acl_policy_text(&self) -> String {
        if let Some(p) = &self.acl_policy {
            return p.clone();
        }
        let quoted = |v: &[String]| v.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
        let owners: Vec<String> = self
            .server_tags
            .iter()
            .chain(&self.ci_tags)
            .map(|t| format!("    \"{t}\": [\"autogroup:admin\"],\n"))
            .collect();
        let dst =
            |port: String| self.server_tags.iter().map(|t| format!("\"{t}:{port}\"")).collect::<Vec<_>>().join(", ");
        format!(
            "// stackup tailnet_server: CI reaches {host} over SSH only; members reach it over HTTPS and SSH.\n{{\n  \
             \"tagOwners\": {{\n{owners}  }},\n  \"acls\": [\n    {{\"action\": \"accept\", \"src\": [{ci}], \"dst\": [{ci_dst}]}},\n    \
             {{\"action\": \"accept\", \"src\": [\"autogroup:member\"], \"dst\": [{member_dst}]}},\n    \
             {{\"action\": \"accept\", \"src\": [\"autogroup:member\"], \"dst\": [\"autogroup:self:*\"]}},\n  ],\n}}\n",
            host = self.hostname,
            owners = owners.concat(),
            ci = quoted(&self.ci_tags),
            ci_dst = dst(self.ssh_port.to_string()),
            member_dst = dst(format!("443,{}", self.ssh_port)),
        )
    }

    /// Adds the keys, the device wait and its settings to `stack`.
    pub fn add_to(&self, stack: &mut Stack, client: &TailscaleClient) -> Result<TailnetServerOutputs, Error> {
        self.validate()?;
        let mut server_spec = AuthKeySpec::new()
            .preauthorized(true)
            .reusable(self.server_key_reusable)
            .tags(self.server_tags.clone())
            .expiry(self.server_key_expiry);
        if self.server_key_reusable {
            // Renewing a key a VM's user data embeds would replace the VM: renew only when invalid.
            server_spec = server_spec.renew_before(Duration::ZERO);
        }
        let server_key = stack.add(&self.address("server_key"), AuthKeys::new(client.clone()), server_spec)?;
        let mut ci_spec = AuthKeySpec::new()
            .reusable(true)
            .ephemeral(true)
            .preauthorized(true)
            .tags(self.ci_tags.clone())
            .expiry(self.ci_key_expiry);
        ci_spec.description = self.ci_key_description.clone();
        let ci_key = stack.add(&self.address("ci_key"), AuthKeys::new(client.clone()), ci_spec)?;
        let device = stack.add(
            &self.address("server"),
            Devices::new(client.clone()).poll_interval(self.poll_interval),
            DeviceSpec::new(self.hostname.clone())
                .required_tags(self.server_tags.clone())
                .joined_after(server_key.output("created").input::<String>())
                .wait_timeout(self.join_timeout)
                .on_name_conflict(self.name_conflict)
                .remove_on_destroy(self.remove_on_destroy),
        )?;
        let node_id = || device.output("node_id").input::<String>();
        let authorization = if self.authorize {
            Some(stack.add(
                &self.address("server_authorization"),
                DeviceAuthorizations::new(client.clone()),
                DeviceAuthorizationSpec::new(node_id()),
            )?)
        } else {
            None
        };
        let tags = if self.tag_device {
            Some(stack.add(
                &self.address("server_tags"),
                DeviceTags::new(client.clone()),
                DeviceTagsSpec::new(node_id(), self.server_tags.clone()),
            )?)
        } else {
            None
        };
        let key_expiry = if self.disable_key_expiry {
            Some(stack.add(
                &self.address("server_key_expiry"),
                DeviceKeyExpiries::new(client.clone()),
                DeviceKeyExpirySpec::disabled(node_id()),
            )?)
        } else {
            None
        };
        let dns = if self.magic_dns {
            Some(stack.add(
                &self.address("dns"),
                DnsSettings::new(client.clone()),
                DnsSpec::new().magic_dns(true).keep_on_destroy(!self.reset_magic_dns_on_destroy),
            )?)
        } else {
            None
        };
        let acl = if self.ci_ssh_acl {
            Some(stack.add(
                &self.address("acl"),
                AclPolicies::new(client.clone()),
                AclPolicySpec::new(self.acl_policy_text()),
            )?)
        } else {
            None
        };
        if let Some(acl) = &acl {
            // The policy defines the tags' owners: Tailscale refuses a tagged key before that.
            stack.depends_on(server_key.address(), acl.address())?;
            stack.depends_on(ci_key.address(), acl.address())?;
        }
        let ssh_host = device.output("magic_dns_name");
        Ok(TailnetServerOutputs {
            server_authkey: server_key.output("key"),
            ts_authkey: ci_key.output("key"),
            url: Input::template([
                TemplatePart::Text("https://".into()),
                TemplatePart::Ref(ssh_host.clone()),
                "/".into(),
            ]),
            ssh_host,
            server_key,
            ci_key,
            device,
            authorization,
            tags,
            key_expiry,
            dns,
            acl,
        })
    }

    /// Seed 002 §2.1 on first boot: install Tailscale, start `tailscaled`, join with the server
    /// key under the hostname, and serve the app over HTTPS inside the tailnet:
    ///
    /// ```text
    /// curl -fsSL https://tailscale.com/install.sh | sh
    /// systemctl enable --now tailscaled
    /// tailscale up --authkey=<server key> --hostname=egograph-prod
    /// tailscale serve --bg http://127.0.0.1:8000
    /// ```
    ///
    /// The key flows in from `tailnet/server_key` at apply time, so the rendered document is
    /// sensitive (plans show `${tailnet/server_key.key}`).
    pub fn join_on_boot(&self, doc: CloudConfig, outputs: &TailnetServerOutputs) -> CloudConfig {
        doc.shell("curl -fsSL https://tailscale.com/install.sh | sh")
            .command(["systemctl", "enable", "--now", "tailscaled"])
            .command([
                Text::from("tailscale"),
                "up".into(),
                Text::concat([Text::from("--authkey="), outputs.server_authkey.clone().into()]),
                format!("--hostname={}", self.hostname).into(),
            ])
            .command(["tailscale".to_owned(), "serve".into(), "--bg".into(), self.serve_target()])
    }

    /// What `tailscale serve` proxies to: `http://127.0.0.1:<serve_port>`.
    pub fn serve_target(&self) -> String {
        format!("http://127.0.0.1:{}", self.serve_port)
    }
}
