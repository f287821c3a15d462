//! Seed 000: the `ocaml-nostr-blossom` server on an Ubuntu 22.04 Azure VM whose data lives on an
//! Azure Files share mounted over SMB.
//!
//! [`BlossomOnAzure`] adds, in order: resource group `blossom-rg` (`japaneast`) → storage account
//! `blossomdata` + 5 digits (`Standard_LRS`, `StorageV2`, https only, TLS 1.2) → file share
//! `blossom-data` (100 GiB) → VNet/subnet → NSG (inbound 22 at priority 1001, 8082 at 1002) →
//! Standard static public IP → NIC → `Standard_B2s` VM (`azureuser`, SSH key only) whose
//! cloud-init mounts the share at `/mnt/blossom/data` and runs `blossom.service` (sections 5 and
//! 8 of the document, see [`cloud_init`]). Its outputs are the public IP, the SSH command and the
//! share path. The day-2 operations of section 9 (key rotation that also rewrites the VM's
//! credentials file, share snapshot) are in [`operations`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use stackup::azure::ArmClient;
//! use stackup::prelude::*;
//! use stackup::recipes::blossom_on_azure::BlossomOnAzure;
//!
//! let client = ArmClient::from_env()?;
//! let mut stack = Stack::new("blossom");
//! let blossom = BlossomOnAzure::new(std::fs::read_to_string("/home/me/.ssh/id_ed25519.pub")?)
//!     .location("japaneast")
//!     .add_to(&mut stack, &client)?;
//! println!("{}", blossom.cloud_init.preview());
//! let engine = Engine::new(stack, Arc::new(LocalBackend::new("blossom.stackup.json")));
//! let plan = engine.plan().await?;
//! engine.apply(&plan).await?.into_result()?;
//! let endpoints = blossom.endpoints(&engine.outputs().await?);
//! # let _ = endpoints; Ok(()) }
//! ```

pub mod cloud_init;
pub mod operations;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use stackup_azure::resources::file_share::{FileShareSpec, FileShares};
use stackup_azure::resources::network_interface::{NetworkInterfaceSpec, NetworkInterfaces};
use stackup_azure::resources::network_security_group::{NetworkSecurityGroupSpec, NetworkSecurityGroups, SecurityRule};
use stackup_azure::resources::public_ip_address::{PublicIpAddressSpec, PublicIpAddresses};
use stackup_azure::resources::resource_group::{ResourceGroupSpec, ResourceGroups};
use stackup_azure::resources::storage_account::{StorageAccountSpec, StorageAccounts, StorageKind, StorageSku};
use stackup_azure::resources::subnet::{SubnetSpec, Subnets};
use stackup_azure::resources::virtual_machine::{ImageReference, VirtualMachineSpec, VirtualMachines};
use stackup_azure::resources::virtual_network::{VirtualNetworkSpec, VirtualNetworks, validate_cidr};
use stackup_azure::{ArmClient, validate};
use stackup_core::cloud_init::{AZURE_CUSTOM_DATA_MAX_BYTES, CloudConfig, Text};
use stackup_core::input::lookup_path;
use stackup_core::{Error, Handle, Input, OutputRef, Secret, Stack, TemplatePart};

use self::cloud_init::{BootSettings, document_exec_start, document_mount_options, validate_plain_path};
use self::operations::BlossomOperations;

/// The storage account name's prefix in the document (`blossomdata$(date +%s | tail -c 6)`).
pub const ACCOUNT_PREFIX: &str = "blossomdata";

/// A deterministic 5-digit suffix for a stack: the document uses the last 5 digits of the Unix
/// time, which would change on every run; this derives them from the stack name instead
/// (FNV-1a), so re-running the same stack finds the same account.
pub fn default_account_suffix(stack_name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stack_name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:05}", h % 100_000)
}

/// The recipe: every value of the document as a default, every value overridable.
#[derive(Debug, Clone)]
pub struct BlossomOnAzure {
    address_prefix: String,
    ssh_public_key: String,
    resource_group: String,
    location: String,
    account_prefix: String,
    account_suffix: Option<String>,
    account_name: Option<String>,
    storage_sku: StorageSku,
    storage_kind: StorageKind,
    share_name: String,
    share_quota_gib: u32,
    vm_name: String,
    vm_size: String,
    admin_username: String,
    image: ImageReference,
    os_disk_type: String,
    vnet_name: String,
    address_space: String,
    subnet_name: String,
    subnet_prefix: String,
    nsg_name: String,
    public_ip_name: String,
    nic_name: String,
    ssh_port: u16,
    ssh_priority: u16,
    app_port: u16,
    app_priority: u16,
    ssh_source: String,
    mount_point: String,
    credentials_file: String,
    mount_options: Option<String>,
    mount_as_admin: bool,
    service_name: String,
    exec_start: Option<String>,
    working_directory: Option<String>,
    opam_switch: Option<String>,
    documentation_url: Option<String>,
    upgrade_packages: bool,
    tags: BTreeMap<String, String>,
}

/// What [`BlossomOnAzure::add_to`] added: a typed handle per resource and the outputs the
/// document prints (public IP, SSH command, SMB path).
#[derive(Debug, Clone)]
pub struct BlossomOnAzureOutputs {
    /// `blossom-rg`.
    pub resource_group: Handle<ResourceGroups>,
    /// The storage account.
    pub storage_account: Handle<StorageAccounts>,
    /// The `blossom-data` share.
    pub share: Handle<FileShares>,
    /// The VNet.
    pub virtual_network: Handle<VirtualNetworks>,
    /// The subnet.
    pub subnet: Handle<Subnets>,
    /// The NSG with the document's two inbound rules.
    pub network_security_group: Handle<NetworkSecurityGroups>,
    /// The Standard static public IP.
    pub public_ip: Handle<PublicIpAddresses>,
    /// The NIC.
    pub network_interface: Handle<NetworkInterfaces>,
    /// The VM.
    pub virtual_machine: Handle<VirtualMachines>,
    /// The storage account name (known before apply).
    pub storage_account_name: String,
    /// The admin user.
    pub admin_username: String,
    /// The server's port.
    pub app_port: u16,
    /// The public IP address (`PUBLIC_IP` in section 3.4).
    pub public_ip_address: OutputRef,
    /// `ssh azureuser@<public ip>` (section 5).
    pub ssh_command: Input<String>,
    /// `//<account>.file.core.windows.net/blossom-data` (section 4.1).
    pub share_path: OutputRef,
    /// The first-boot document given to the VM (print it with [`CloudConfig::preview`]).
    pub cloud_init: CloudConfig,
}

/// The outputs of an applied stack, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlossomEndpoints {
    /// The VM's public IP.
    pub public_ip: String,
    /// `ssh azureuser@<ip>`.
    pub ssh_command: String,
    /// The SMB path of the share.
    pub share_path: String,
    /// `https://<ip>:8082/`.
    pub url: String,
}

impl BlossomOnAzureOutputs {
    /// Resolves the public IP, SSH command and share path from an engine's outputs
    /// ([`stackup_core::Engine::outputs`]); `None` until the stack is applied.
    pub fn endpoints(&self, outputs: &BTreeMap<String, Value>) -> Option<BlossomEndpoints> {
        let get = |r: &OutputRef| {
            outputs.get(&r.resource).and_then(|o| lookup_path(o, &r.output)).and_then(Value::as_str).map(str::to_owned)
        };
        let ip = get(&self.public_ip_address)?;
        Some(BlossomEndpoints {
            ssh_command: format!("ssh {}@{ip}", self.admin_username),
            share_path: get(&self.share_path)?,
            url: format!("https://{ip}:{}/", self.app_port),
            public_ip: ip,
        })
    }
}

impl BlossomOnAzure {
    /// The document's deployment with this admin SSH public key (`ssh-ed25519 …` or `ssh-rsa …`,
    /// the content of `~/.ssh/id_*.pub`; the document's `--generate-ssh-keys` is left to you).
    pub fn new(ssh_public_key: impl Into<String>) -> Self {
        BlossomOnAzure {
            address_prefix: "blossom".into(),
            ssh_public_key: ssh_public_key.into().trim().to_owned(),
            resource_group: "blossom-rg".into(),
            location: "japaneast".into(),
            account_prefix: ACCOUNT_PREFIX.into(),
            account_suffix: None,
            account_name: None,
            storage_sku: StorageSku::StandardLrs,
            storage_kind: StorageKind::StorageV2,
            share_name: "blossom-data".into(),
            share_quota_gib: 100,
            vm_name: "blossom-vm".into(),
            vm_size: "Standard_B2s".into(),
            admin_username: "azureuser".into(),
            image: ImageReference::ubuntu_2204(),
            os_disk_type: "Standard_LRS".into(),
            // `az vm create` names what it creates after the VM: {vm}VNET, {vm}Subnet, …
            vnet_name: "blossom-vmVNET".into(),
            address_space: "10.0.0.0/16".into(),
            subnet_name: "blossom-vmSubnet".into(),
            subnet_prefix: "10.0.0.0/24".into(),
            nsg_name: "blossom-vmNSG".into(),
            public_ip_name: "blossom-vmPublicIP".into(),
            nic_name: "blossom-vmVMNic".into(),
            ssh_port: 22,
            ssh_priority: 1001,
            app_port: 8082,
            app_priority: 1002,
            ssh_source: "*".into(),
            mount_point: "/mnt/blossom/data".into(),
            credentials_file: "/etc/smbcredentials/blossomdata.cred".into(),
            mount_options: None,
            mount_as_admin: false,
            service_name: "blossom.service".into(),
            exec_start: None,
            working_directory: None,
            opam_switch: Some("5.1.1".into()),
            documentation_url: Some("https://github.com/<your-repo>/ocaml-nostr-blossom".into()),
            upgrade_packages: true,
            tags: BTreeMap::new(),
        }
    }

    /// Prefix of every resource address in the stack (default `blossom`: `blossom/vm`, …), so
    /// the recipe can appear twice in one stack.
    pub fn address_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.address_prefix = prefix.into();
        self
    }

    /// Resource group (default `blossom-rg`).
    pub fn resource_group(mut self, name: impl Into<String>) -> Self {
        self.resource_group = name.into();
        self
    }

    /// Region (default `japaneast`).
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = location.into();
        self
    }

    /// The storage account name's prefix (default `blossomdata`).
    pub fn storage_account_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.account_prefix = prefix.into();
        self
    }

    /// The storage account name's suffix (the document's 5 digits). Default: derived from the
    /// stack name ([`default_account_suffix`]), so every run of one stack uses one account.
    pub fn storage_account_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.account_suffix = Some(suffix.into());
        self
    }

    /// The whole storage account name (wins over prefix and suffix).
    pub fn storage_account_name(mut self, name: impl Into<String>) -> Self {
        self.account_name = Some(name.into());
        self
    }

    /// Storage SKU (default `Standard_LRS`; section 9.4 suggests `Premium_LRS` under heavy load,
    /// which also needs [`StorageKind::FileStorage`]).
    pub fn storage_sku(mut self, sku: StorageSku) -> Self {
        self.storage_sku = sku;
        self
    }

    /// Storage kind (default `StorageV2`).
    pub fn storage_kind(mut self, kind: StorageKind) -> Self {
        self.storage_kind = kind;
        self
    }

    /// File share name (default `blossom-data`).
    pub fn share_name(mut self, name: impl Into<String>) -> Self {
        self.share_name = name.into();
        self
    }

    /// Share quota in GiB (default 100).
    pub fn share_quota_gib(mut self, gib: u32) -> Self {
        self.share_quota_gib = gib;
        self
    }

    /// VM name (default `blossom-vm`).
    pub fn vm_name(mut self, name: impl Into<String>) -> Self {
        self.vm_name = name.into();
        self
    }

    /// VM size (default `Standard_B2s`; section 9.4: `Standard_D2s_v3` or larger under load).
    pub fn vm_size(mut self, size: impl Into<String>) -> Self {
        self.vm_size = size.into();
        self
    }

    /// Admin user (default `azureuser`); also the service's `User=` and the mount point's owner.
    pub fn admin_username(mut self, name: impl Into<String>) -> Self {
        self.admin_username = name.into();
        self
    }

    /// VM image (default Ubuntu 22.04 LTS Gen2, the document's `Ubuntu2204`).
    pub fn image(mut self, image: ImageReference) -> Self {
        self.image = image;
        self
    }

    /// OS disk type (default `Standard_LRS`).
    pub fn os_disk_type(mut self, kind: impl Into<String>) -> Self {
        self.os_disk_type = kind.into();
        self
    }

    /// VNet name and address space (default `blossom-vmVNET`, `10.0.0.0/16`).
    pub fn virtual_network(mut self, name: impl Into<String>, address_space: impl Into<String>) -> Self {
        self.vnet_name = name.into();
        self.address_space = address_space.into();
        self
    }

    /// Subnet name and prefix (default `blossom-vmSubnet`, `10.0.0.0/24`).
    pub fn subnet(mut self, name: impl Into<String>, prefix: impl Into<String>) -> Self {
        self.subnet_name = name.into();
        self.subnet_prefix = prefix.into();
        self
    }

    /// NSG, public IP and NIC names (defaults `blossom-vmNSG`, `blossom-vmPublicIP`,
    /// `blossom-vmVMNic`, as `az vm create` names them).
    pub fn network_names(
        mut self,
        nsg: impl Into<String>,
        public_ip: impl Into<String>,
        nic: impl Into<String>,
    ) -> Self {
        self.nsg_name = nsg.into();
        self.public_ip_name = public_ip.into();
        self.nic_name = nic.into();
        self
    }

    /// SSH port and its NSG priority (default 22 at 1001).
    pub fn ssh_port(mut self, port: u16, priority: u16) -> Self {
        self.ssh_port = port;
        self.ssh_priority = priority;
        self
    }

    /// The server's port and its NSG priority (default 8082 at 1002).
    pub fn app_port(mut self, port: u16, priority: u16) -> Self {
        self.app_port = port;
        self.app_priority = priority;
        self
    }

    /// Where SSH may come from (default `*`, as `az vm open-port`): a CIDR, an IP or a service tag.
    pub fn ssh_source(mut self, prefix: impl Into<String>) -> Self {
        self.ssh_source = prefix.into();
        self
    }

    /// Mount point of the share (default `/mnt/blossom/data`).
    pub fn mount_point(mut self, path: impl Into<String>) -> Self {
        self.mount_point = path.into();
        self
    }

    /// The SMB credentials file (default `/etc/smbcredentials/blossomdata.cred`).
    pub fn credentials_file(mut self, path: impl Into<String>) -> Self {
        self.credentials_file = path.into();
        self
    }

    /// The fstab options (default: exactly the document's, `_netdev,nofail,credentials=…,
    /// dir_mode=0755,file_mode=0644,serverino,nosharesock,actimeo=30,mfsymlinks`). They must
    /// name the credentials file.
    pub fn mount_options(mut self, options: impl Into<String>) -> Self {
        self.mount_options = Some(options.into());
        self
    }

    /// Appends `uid=<admin>,gid=<admin>` to the mount options, so the admin user (the
    /// service's `User=`) owns the files on the share. Off by default to keep the document's
    /// options exactly; without it the share is owned by root with `dir_mode=0755`, and a
    /// service running as `azureuser` can read but not write it.
    pub fn mount_as_admin(mut self, yes: bool) -> Self {
        self.mount_as_admin = yes;
        self
    }

    /// The systemd unit's name (default `blossom.service`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The server command (`ExecStart=`). Default: the document's `bash -lc "eval $(opam env) &&
    /// dune exec bin/main.exe -- --port 8082 --cert … --key …"`.
    pub fn exec_start(mut self, command: impl Into<String>) -> Self {
        self.exec_start = Some(command.into());
        self
    }

    /// `WorkingDirectory=` (default `/home/<admin>/ocaml-nostr-blossom`).
    pub fn working_directory(mut self, path: impl Into<String>) -> Self {
        self.working_directory = Some(path.into());
        self
    }

    /// `OPAMSWITCH=` in the unit (default `5.1.1`; `None` leaves the line out).
    pub fn opam_switch(mut self, switch: Option<String>) -> Self {
        self.opam_switch = switch;
        self
    }

    /// `Documentation=` in the unit (default the document's placeholder URL; `None` leaves it out).
    pub fn documentation_url(mut self, url: Option<String>) -> Self {
        self.documentation_url = url;
        self
    }

    /// Run `apt upgrade -y` on first boot (default true, as section 5.1).
    pub fn upgrade_packages(mut self, yes: bool) -> Self {
        self.upgrade_packages = yes;
        self
    }

    /// A tag on every Azure resource of the recipe.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// The storage account name this recipe uses in the stack named `stack_name`.
    pub fn account_name_for(&self, stack_name: &str) -> String {
        match &self.account_name {
            Some(n) => n.clone(),
            None => {
                let suffix = self.account_suffix.clone().unwrap_or_else(|| default_account_suffix(stack_name));
                format!("{}{suffix}", self.account_prefix)
            }
        }
    }

    /// The fstab options in effect.
    pub fn effective_mount_options(&self) -> String {
        let mut o = self.mount_options.clone().unwrap_or_else(|| document_mount_options(&self.credentials_file));
        if self.mount_as_admin {
            o.push_str(&format!(",uid={0},gid={0}", self.admin_username));
        }
        o
    }

    /// The `ExecStart=` in effect.
    pub fn effective_exec_start(&self) -> String {
        self.exec_start.clone().unwrap_or_else(|| document_exec_start(&self.admin_username, self.app_port))
    }

    fn effective_working_directory(&self) -> String {
        self.working_directory.clone().unwrap_or_else(|| format!("/home/{}/ocaml-nostr-blossom", self.admin_username))
    }

    fn addr(&self, name: &str) -> String {
        format!("{}/{name}", self.address_prefix)
    }

    /// The first-boot document for this account, key and share path.
    pub fn cloud_config(&self, account: Text, key: Text, share_path: Text) -> CloudConfig {
        let mount_options = self.effective_mount_options();
        let exec_start = self.effective_exec_start();
        let wd = self.effective_working_directory();
        let settings = BootSettings {
            admin: &self.admin_username,
            mount_point: &self.mount_point,
            credentials_file: &self.credentials_file,
            mount_options: &mount_options,
            service_name: &self.service_name,
            exec_start: &exec_start,
            working_directory: &wd,
            opam_switch: self.opam_switch.as_deref(),
            documentation_url: self.documentation_url.as_deref(),
            upgrade_packages: self.upgrade_packages,
        };
        cloud_init::cloud_config(&settings, account, key, share_path)
    }

    /// Checks every value before anything is added or called; the error names the setting and
    /// the rule (`Error::InvalidInput`).
    pub fn validate(&self, stack_name: &str) -> Result<(), Error> {
        let f = |name: &str| format!("blossom_on_azure.{name}");
        if let Some(s) = &self.account_suffix
            && self.account_name.is_none()
            && !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(Error::invalid(f("storage_account_suffix"), "use lowercase letters and digits only"));
        }
        let account = self.account_name_for(stack_name);
        let account_field = if self.account_name.is_some() { "storage_account_name" } else { "storage_account_suffix" };
        validate::storage_account_name(&f(account_field), &account)?;
        validate::resource_group_name(&f("resource_group"), &self.resource_group)?;
        validate::location(&f("location"), &self.location)?;
        validate::share_or_container_name(&f("share_name"), "file share", &self.share_name)?;
        if !(1..=102_400).contains(&self.share_quota_gib) {
            return Err(Error::invalid(f("share_quota_gib"), "share quota is 1-5120 GiB (102400 with large shares)"));
        }
        if self.storage_kind == StorageKind::FileStorage
            && !matches!(self.storage_sku, StorageSku::PremiumLrs | StorageSku::PremiumZrs)
        {
            return Err(Error::invalid(f("storage_sku"), "FileStorage accounts need Premium_LRS or Premium_ZRS"));
        }
        validate::vm_name(&f("vm_name"), &self.vm_name)?;
        if self.vm_size.is_empty() || !self.vm_size.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid(f("vm_size"), "a VM size looks like Standard_B2s"));
        }
        validate::admin_username(&f("admin_username"), &self.admin_username)?;
        validate::ssh_public_key(&f("ssh_public_key"), &self.ssh_public_key)?;
        for (field, name) in [
            ("virtual_network", &self.vnet_name),
            ("subnet", &self.subnet_name),
            ("network_security_group", &self.nsg_name),
            ("public_ip", &self.public_ip_name),
            ("network_interface", &self.nic_name),
        ] {
            validate::network_name(&f(field), name)?;
        }
        validate_cidr(&f("address_space"), &self.address_space)?;
        validate_cidr(&f("subnet_prefix"), &self.subnet_prefix)?;
        if !cidr_contains(&self.address_space, &self.subnet_prefix) {
            return Err(Error::invalid(
                f("subnet_prefix"),
                format!("{} is not inside the address space {}", self.subnet_prefix, self.address_space),
            ));
        }
        for (field, port, prio) in
            [("ssh_port", self.ssh_port, self.ssh_priority), ("app_port", self.app_port, self.app_priority)]
        {
            if port == 0 {
                return Err(Error::invalid(f(field), "ports are 1-65535"));
            }
            if !(100..=4096).contains(&prio) {
                return Err(Error::invalid(f(field), "NSG rule priorities are 100-4096"));
            }
        }
        if self.ssh_port == self.app_port {
            return Err(Error::invalid(f("app_port"), "the app port must differ from the SSH port"));
        }
        if self.ssh_priority == self.app_priority {
            return Err(Error::invalid(f("app_port"), "the two inbound rules need different priorities"));
        }
        if self.ssh_source.is_empty() || self.ssh_source.chars().any(char::is_whitespace) {
            return Err(Error::invalid(f("ssh_source"), "a CIDR, IP, service tag or *"));
        }
        validate_plain_path(&f("mount_point"), &self.mount_point)?;
        validate_plain_path(&f("credentials_file"), &self.credentials_file)?;
        let options = self.effective_mount_options();
        if options.is_empty() || options.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
            return Err(Error::invalid(f("mount_options"), "fstab options are one comma-separated word"));
        }
        if !options.split(',').any(|o| o == format!("credentials={}", self.credentials_file)) {
            return Err(Error::invalid(
                f("mount_options"),
                format!("the options must include credentials={}", self.credentials_file),
            ));
        }
        if !self.service_name.ends_with(".service")
            || !self.service_name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(Error::invalid(f("service_name"), "a systemd service name such as blossom.service"));
        }
        let exec = self.effective_exec_start();
        // systemd's special prefixes (`-`, `@`, `+`, `!`, `:`) may precede the program path.
        let program = exec.trim_start_matches(['-', '@', '+', '!', ':']);
        if exec.trim().is_empty() || exec.contains(['\n', '\r']) || !program.starts_with('/') {
            return Err(Error::invalid(
                f("exec_start"),
                "ExecStart is one line starting with an absolute program path",
            ));
        }
        validate_plain_path(&f("working_directory"), &self.effective_working_directory())?;
        for v in [&self.opam_switch, &self.documentation_url].into_iter().flatten() {
            if v.is_empty() || v.contains('\n') {
                return Err(Error::invalid(f("unit"), "unit settings are one non-empty line"));
            }
        }
        validate::tags(&f("tags"), &self.tags)?;
        // The document is checked with references counted at a storage key's length.
        self.cloud_config(
            Text::from(account.as_str()),
            Text::from(Secret::new("x".repeat(88))),
            Text::from(format!("//{account}.file.core.windows.net/{}", self.share_name)),
        )
        .validate_size(AZURE_CUSTOM_DATA_MAX_BYTES, &f("cloud_init"))
    }

    /// Adds the deployment to `stack`, after [`Self::validate`]. Nothing is added when a value
    /// is invalid.
    pub fn add_to(&self, stack: &mut Stack, client: &ArmClient) -> Result<BlossomOnAzureOutputs, Error> {
        self.validate(stack.name())?;
        for name in ["rg", "storage", "share", "vnet", "subnet", "nsg", "public-ip", "nic", "vm"] {
            if stack.node(&self.addr(name)).is_some() {
                return Err(Error::Stack(format!(
                    "`{}` is already in the stack: give this recipe another address_prefix",
                    self.addr(name)
                )));
            }
        }
        let account = self.account_name_for(stack.name());
        let c = client.clone();
        let rg = stack.add(
            &self.addr("rg"),
            ResourceGroups::new(c.clone()),
            ResourceGroupSpec {
                name: self.resource_group.clone(),
                location: self.location.clone(),
                tags: self.tags.clone(),
            },
        )?;
        let rg_name: Input<String> = rg.output("name").input();

        let mut acct_spec = StorageAccountSpec::new(account.clone(), rg_name.clone(), self.location.clone());
        acct_spec.sku = self.storage_sku;
        acct_spec.kind = self.storage_kind;
        acct_spec.https_only = true;
        acct_spec.allow_shared_key_access = true; // SMB mounts authenticate with the account key.
        acct_spec.tags = self.tags.clone();
        let storage = stack.add(&self.addr("storage"), StorageAccounts::new(c.clone()), acct_spec)?;

        let share = stack.add(
            &self.addr("share"),
            FileShares::new(c.clone()),
            FileShareSpec {
                name: self.share_name.clone(),
                storage_account_id: storage.id().input(),
                quota_gib: self.share_quota_gib,
                access_tier: None,
                metadata: BTreeMap::new(),
            },
        )?;

        let vnet = stack.add(
            &self.addr("vnet"),
            VirtualNetworks::new(c.clone()),
            VirtualNetworkSpec {
                name: self.vnet_name.clone(),
                resource_group: rg_name.clone(),
                location: self.location.clone(),
                address_prefixes: vec![self.address_space.clone()],
                tags: self.tags.clone(),
            },
        )?;
        let subnet = stack.add(
            &self.addr("subnet"),
            Subnets::new(c.clone()),
            SubnetSpec {
                name: self.subnet_name.clone(),
                virtual_network_id: vnet.id().input(),
                address_prefix: self.subnet_prefix.clone(),
                network_security_group_id: None,
            },
        )?;
        let mut ssh =
            SecurityRule::allow_tcp_in(format!("open-port-{}", self.ssh_port), self.ssh_port, self.ssh_priority);
        ssh.source_address_prefix = self.ssh_source.clone();
        let app = SecurityRule::allow_tcp_in(format!("open-port-{}", self.app_port), self.app_port, self.app_priority);
        let nsg = stack.add(
            &self.addr("nsg"),
            NetworkSecurityGroups::new(c.clone()),
            NetworkSecurityGroupSpec {
                name: self.nsg_name.clone(),
                resource_group: rg_name.clone(),
                location: self.location.clone(),
                rules: vec![ssh, app],
                tags: self.tags.clone(),
            },
        )?;
        let public_ip = stack.add(
            &self.addr("public-ip"),
            PublicIpAddresses::new(c.clone()),
            PublicIpAddressSpec {
                name: self.public_ip_name.clone(),
                resource_group: rg_name.clone(),
                location: self.location.clone(),
                zones: vec![],
                idle_timeout_minutes: 4,
                dns_label: None,
                tags: self.tags.clone(),
            },
        )?;
        let nic = stack.add(
            &self.addr("nic"),
            NetworkInterfaces::new(c.clone()),
            NetworkInterfaceSpec {
                name: self.nic_name.clone(),
                resource_group: rg_name.clone(),
                location: self.location.clone(),
                subnet_id: subnet.id().input(),
                public_ip_address_id: Some(public_ip.id().input()),
                network_security_group_id: Some(nsg.id().input()),
                private_ip_address: None,
                tags: self.tags.clone(),
            },
        )?;

        let cloud_init = self.cloud_config(
            storage.output("name").into(),
            storage.output("key1").into(),
            share.output("smb_path").into(),
        );
        let vm = stack.add(
            &self.addr("vm"),
            VirtualMachines::new(c),
            VirtualMachineSpec {
                name: self.vm_name.clone(),
                resource_group: rg_name,
                location: self.location.clone(),
                size: self.vm_size.clone(),
                admin_username: self.admin_username.clone(),
                ssh_public_key: self.ssh_public_key.clone(),
                network_interface_id: nic.id().input(),
                image: self.image.clone(),
                os_disk_type: self.os_disk_type.clone(),
                os_disk_size_gb: None,
                custom_data: Some(cloud_init.render()),
                tags: self.tags.clone(),
            },
        )?;
        let public_ip_address = public_ip.output("ip_address");
        Ok(BlossomOnAzureOutputs {
            ssh_command: Input::template([
                TemplatePart::Text(format!("ssh {}@", self.admin_username)),
                TemplatePart::Ref(public_ip_address.clone()),
            ]),
            share_path: share.output("smb_path"),
            public_ip_address,
            resource_group: rg,
            storage_account: storage,
            share,
            virtual_network: vnet,
            subnet,
            network_security_group: nsg,
            public_ip,
            network_interface: nic,
            virtual_machine: vm,
            storage_account_name: account,
            admin_username: self.admin_username.clone(),
            app_port: self.app_port,
            cloud_init,
        })
    }

    /// The day-2 operations of section 9 for this deployment in the stack named `stack_name`
    /// (names are derived exactly as [`Self::add_to`] derives them).
    pub fn operations(&self, client: ArmClient, stack_name: &str) -> BlossomOperations {
        BlossomOperations::new(
            client,
            operations::Target {
                resource_group: self.resource_group.clone(),
                account: self.account_name_for(stack_name),
                share: self.share_name.clone(),
                vm: self.vm_name.clone(),
                credentials_file: self.credentials_file.clone(),
                mount_point: self.mount_point.clone(),
            },
        )
    }
}

fn parse_cidr(c: &str) -> Option<(u32, u32)> {
    let (ip, len) = c.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some((u32::from(ip), len))
}

fn mask(len: u32) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

/// True when two IPv4 CIDRs share an address (false when either is not IPv4).
pub(crate) fn cidrs_overlap(a: &str, b: &str) -> bool {
    match (parse_cidr(a), parse_cidr(b)) {
        (Some((x, xl)), Some((y, yl))) => {
            let m = mask(xl.min(yl));
            x & m == y & m
        }
        _ => false,
    }
}

/// True when the IPv4 CIDR `inner` lies inside `outer` (both already validated).
pub(crate) fn cidr_contains(outer: &str, inner: &str) -> bool {
    match (parse_cidr(outer), parse_cidr(inner)) {
        (Some((o, ol)), Some((i, il))) if il >= ol => o & mask(ol) == i & mask(ol),
        // Not IPv4 (validated elsewhere): leave the check to Azure.
        (None, _) | (_, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_five_digits_and_stable() {
        let a = default_account_suffix("blossom");
        assert_eq!(a.len(), 5);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(a, default_account_suffix("blossom"));
        assert_ne!(a, default_account_suffix("blossom-staging"));
    }

    #[test]
    fn cidrs_nest() {
        assert!(cidr_contains("10.0.0.0/16", "10.0.0.0/24"));
        assert!(cidr_contains("10.0.0.0/16", "10.0.2.0/24"));
        assert!(!cidr_contains("10.0.0.0/16", "10.1.0.0/24"));
        assert!(!cidr_contains("10.0.0.0/24", "10.0.0.0/16"));
        assert!(cidrs_overlap("10.0.1.0/24", "10.0.0.0/16"));
        assert!(!cidrs_overlap("10.0.1.0/24", "10.0.2.0/24"));
    }
}
