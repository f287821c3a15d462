//! Recipe `free_tier_on_oci` (seed 004, Resonant Dashboard on OCI Always Free): one Arm VM
//! that runs Docker Compose, reachable on 22/80/443.
//!
//! What [`FreeTierOnOci::add_to`] adds (addresses under the prefix, `oci/` by default):
//!
//! | address | resource | seed 004 |
//! |---|---|---|
//! | `oci/vcn` | VCN `10.0.0.0/16` | §2.1 `vcn: 1個` |
//! | `oci/internet_gateway` | internet gateway | public IP access (§3) |
//! | `oci/routes` | the VCN's default route table: `0.0.0.0/0` → gateway | |
//! | `oci/firewall` | security list: TCP 22/80/443 and ICMP 3/4 in, everything out | §5.1 ports |
//! | `oci/subnet` | public subnet `10.0.0.0/24` | |
//! | `oci/vm` | `VM.Standard.A1.Flex`, 4 OCPU / 24 GB / 200 GB boot volume, Ubuntu aarch64 | §2.1, §8 step 1 |
//!
//! The VM's cloud-init ([`FreeTierOnOci::cloud_init`]) installs Docker and the Compose plugin
//! (§8 step 2), opens 80/443 in the image's iptables *before* its REJECT rule and saves the rules
//! to `/etc/iptables/rules.v4` (§5.1, §8 step 7), and optionally delivers a compose file and its
//! env file and starts them (§4.1, §8 steps 4 and 6). The instance provisioner's free-tier guard
//! refuses a launch the tenancy's Always Free allowance would not cover (unless
//! [`FreeTierOnOci::allow_billing`]), and it hunts A1 capacity across availability domains.

use std::collections::BTreeMap;

use stackup_core::cloud_init::{CloudConfig, OCI_USER_DATA_MAX_BYTES, Text};
use stackup_core::{Error, Handle, Input, OutputRef, Secret, Stack, TemplatePart};
use stackup_oci::{
    CapacityHunt, FreeTierAllowance, ImageSource, InstanceSpec, Instances, InternetGatewaySpec, InternetGateways,
    OciClient, RouteRuleSpec, RouteTableSpec, RouteTables, SecurityListSpec, SecurityLists, SubnetSpec, Subnets,
    VcnSpec, Vcns,
};

/// The Always Free Arm shape.
pub const A1_FLEX: &str = "VM.Standard.A1.Flex";

/// A compose application delivered to the VM and started on first boot.
#[derive(Clone, Debug)]
pub struct ComposeApp {
    dir: String,
    file_name: String,
    compose: String,
    env_file_name: String,
    env: Option<Secret>,
}

impl ComposeApp {
    /// `compose` (YAML) written to `/opt/resonant/docker-compose.prod.yml`, the seed's layout.
    pub fn new(compose: impl Into<String>) -> Self {
        ComposeApp {
            dir: "/opt/resonant".into(),
            file_name: "docker-compose.prod.yml".into(),
            compose: compose.into(),
            env_file_name: ".env.prod".into(),
            env: None,
        }
    }

    /// The directory (default `/opt/resonant`).
    pub fn dir(mut self, dir: impl Into<String>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The compose file's name (default `docker-compose.prod.yml`).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }

    /// The env file (`POSTGRES_PASSWORD=…`, `ANTHROPIC_API_KEY=…`): written with mode 0600 as
    /// `.env.prod` and passed with `--env-file`. It is a secret: the user data becomes sensitive.
    pub fn env(mut self, env: impl Into<Secret>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// The env file's name (default `.env.prod`).
    pub fn env_file_name(mut self, name: impl Into<String>) -> Self {
        self.env_file_name = name.into();
        self
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.trim_end_matches('/'))
    }
}

/// The seed's Always Free VM. Defaults come from seed 004.
#[derive(Clone, Debug)]
pub struct FreeTierOnOci {
    prefix: String,
    name: String,
    compartment_id: Option<String>,
    vcn_cidr: String,
    subnet_cidr: String,
    dns_label: String,
    tcp_ports: Vec<u16>,
    host_firewall_ports: Vec<u16>,
    ocpus: f64,
    memory_gbs: f64,
    boot_volume_gbs: u32,
    image: ImageSource,
    availability_domains: Vec<String>,
    ssh_public_keys: Vec<String>,
    admin_user: String,
    compose: Option<ComposeApp>,
    allow_billing: bool,
    allowance: FreeTierAllowance,
    hunt: CapacityHunt,
    tags: BTreeMap<String, String>,
}

/// What [`FreeTierOnOci::add_to`] added.
#[derive(Debug, Clone)]
pub struct FreeTierOnOciOutputs {
    /// The VCN.
    pub vcn: Handle<Vcns>,
    /// The internet gateway.
    pub internet_gateway: Handle<InternetGateways>,
    /// The default route table with the route to the gateway.
    pub routes: Handle<RouteTables>,
    /// The security list.
    pub firewall: Handle<SecurityLists>,
    /// The subnet.
    pub subnet: Handle<Subnets>,
    /// The instance (`public_ip`, `private_ip`, `availability_domain`, …).
    pub vm: Handle<Instances>,
    /// The VM's public IP.
    pub public_ip: OutputRef,
    /// `ssh ubuntu@<public ip>`.
    pub ssh_command: Input<String>,
}

impl FreeTierOnOci {
    /// Seed 004's VM for `ssh_public_key` (user `ubuntu`): `VM.Standard.A1.Flex` with 4 OCPU,
    /// 24 GB and a 200 GB boot volume, the newest Canonical Ubuntu 24.04 image for the shape
    /// (aarch64), VCN `10.0.0.0/16`, subnet `10.0.0.0/24`, TCP 22/80/443 open, no compose app,
    /// the free-tier guard on, the compartment defaulting to the tenancy's root.
    pub fn new(ssh_public_key: impl Into<String>) -> Self {
        FreeTierOnOci {
            prefix: "oci".into(),
            name: "resonant".into(),
            compartment_id: None,
            vcn_cidr: "10.0.0.0/16".into(),
            subnet_cidr: "10.0.0.0/24".into(),
            dns_label: "resonant".into(),
            tcp_ports: vec![22, 80, 443],
            host_firewall_ports: vec![80, 443],
            ocpus: 4.0,
            memory_gbs: 24.0,
            boot_volume_gbs: 200,
            image: ImageSource::Latest {
                operating_system: "Canonical Ubuntu".into(),
                operating_system_version: "24.04".into(),
            },
            availability_domains: vec![],
            ssh_public_keys: vec![ssh_public_key.into()],
            admin_user: "ubuntu".into(),
            compose: None,
            allow_billing: false,
            allowance: FreeTierAllowance::default(),
            hunt: CapacityHunt::default(),
            tags: BTreeMap::from([("app".to_owned(), "resonant-dashboard".to_owned())]),
        }
    }

    /// Address prefix (default `oci`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Base of every display name (default `resonant`: `resonant-vcn`, `resonant-vm`, …).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The compartment (default: the tenancy's root compartment).
    pub fn compartment_id(mut self, id: impl Into<String>) -> Self {
        self.compartment_id = Some(id.into());
        self
    }

    /// VCN and subnet CIDR blocks.
    pub fn cidrs(mut self, vcn: impl Into<String>, subnet: impl Into<String>) -> Self {
        self.vcn_cidr = vcn.into();
        self.subnet_cidr = subnet.into();
        self
    }

    /// DNS label of the VCN and subnet (letters and digits, at most 15, starting with a letter).
    pub fn dns_label(mut self, label: impl Into<String>) -> Self {
        self.dns_label = label.into();
        self
    }

    /// TCP ports open to the internet in the security list (default 22, 80, 443).
    pub fn tcp_ports(mut self, ports: impl Into<Vec<u16>>) -> Self {
        self.tcp_ports = ports.into();
        self
    }

    /// Ports opened in the image's host firewall on first boot (default 80, 443; SSH is open
    /// already).
    pub fn host_firewall_ports(mut self, ports: impl Into<Vec<u16>>) -> Self {
        self.host_firewall_ports = ports.into();
        self
    }

    /// OCPUs and memory (default 4 / 24 GB, the whole Always Free A1 allowance; 2026 reports
    /// say some tenancies now get 2 / 12).
    pub fn size(mut self, ocpus: f64, memory_gbs: f64) -> Self {
        self.ocpus = ocpus;
        self.memory_gbs = memory_gbs;
        self
    }

    /// Boot volume in GB (default 200, the Always Free block storage).
    pub fn boot_volume_gbs(mut self, gbs: u32) -> Self {
        self.boot_volume_gbs = gbs;
        self
    }

    /// The image (default the newest Canonical Ubuntu 24.04 for the shape).
    pub fn image(mut self, image: ImageSource) -> Self {
        self.image = image;
        self
    }

    /// Availability domains to try, in order (default: every one in the region).
    pub fn availability_domains<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ads: I) -> Self {
        self.availability_domains = ads.into_iter().map(Into::into).collect();
        self
    }

    /// Adds another SSH public key.
    pub fn ssh_public_key(mut self, key: impl Into<String>) -> Self {
        self.ssh_public_keys.push(key.into());
        self
    }

    /// The image's login user (default `ubuntu`), added to the `docker` group.
    pub fn admin_user(mut self, user: impl Into<String>) -> Self {
        self.admin_user = user.into();
        self
    }

    /// Delivers a compose application and starts it on first boot.
    pub fn compose(mut self, app: ComposeApp) -> Self {
        self.compose = Some(app);
        self
    }

    /// Accept a launch the Always Free allowance would not cover (default: refuse).
    pub fn allow_billing(mut self, yes: bool) -> Self {
        self.allow_billing = yes;
        self
    }

    /// Caps the free allowance below the tenancy's limits (Pay-As-You-Go tenancies).
    pub fn free_tier_allowance(mut self, allowance: FreeTierAllowance) -> Self {
        self.allowance = allowance;
        self
    }

    /// How long and how to hunt A1 capacity (default: one hour with jittered backoff).
    pub fn capacity_hunt(mut self, hunt: CapacityHunt) -> Self {
        self.hunt = hunt;
        self
    }

    /// Freeform tags on every resource (default `app = resonant-dashboard`).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// The address of one of this recipe's resources (`<prefix>/<name>`).
    pub fn address(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The login user.
    pub fn admin_user_name(&self) -> &str {
        &self.admin_user
    }

    /// Checks the recipe's own values (the provisioners check the rest while planning). No
    /// call is made.
    pub fn validate(&self) -> Result<(), Error> {
        let label_ok = !self.dns_label.is_empty()
            && self.dns_label.len() <= 15
            && self.dns_label.starts_with(|c: char| c.is_ascii_alphabetic())
            && self.dns_label.chars().all(|c| c.is_ascii_alphanumeric());
        if !label_ok {
            return Err(Error::invalid(
                "free_tier_on_oci.dns_label",
                "1-15 letters and digits, starting with a letter",
            ));
        }
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::invalid("free_tier_on_oci.name", "letters, digits and `-`"));
        }
        if self.tcp_ports.is_empty() || self.tcp_ports.contains(&0) {
            return Err(Error::invalid("free_tier_on_oci.tcp_ports", "at least one port, each 1-65535"));
        }
        if let Some(p) = self.host_firewall_ports.iter().find(|p| !self.tcp_ports.contains(p)) {
            return Err(Error::invalid(
                "free_tier_on_oci.host_firewall_ports",
                format!("port {p} is not open in the security list (tcp_ports)"),
            ));
        }
        if self.ssh_public_keys.iter().any(|k| k.trim().is_empty()) || self.ssh_public_keys.is_empty() {
            return Err(Error::invalid("free_tier_on_oci.ssh_public_key", "an OpenSSH public key is required"));
        }
        if self.admin_user.is_empty()
            || !self.admin_user.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(Error::invalid("free_tier_on_oci.admin_user", "a lowercase user name"));
        }
        if let Some(app) = &self.compose {
            for (field, v) in [("dir", &app.dir), ("file_name", &app.file_name), ("env_file_name", &app.env_file_name)]
            {
                let ok = !v.is_empty()
                    && !v.contains("..")
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
                    && (field != "dir" || v.starts_with('/'))
                    && (field == "dir" || !v.contains('/'));
                if !ok {
                    return Err(Error::invalid(
                        format!("free_tier_on_oci.compose.{field}"),
                        "letters, digits and `._-` (the directory absolute)",
                    ));
                }
            }
            if app.compose.trim().is_empty() {
                return Err(Error::invalid("free_tier_on_oci.compose", "the compose file is empty"));
            }
        }
        Ok(())
    }

    /// The first-boot document: Docker and the Compose plugin, the host firewall opened for
    /// 80/443 before the image's REJECT rule and saved, and the compose app when given.
    pub fn cloud_init(&self) -> CloudConfig {
        let mut doc =
            CloudConfig::new().package("docker.io").package("docker-compose-v2").package("iptables-persistent");
        for port in &self.host_firewall_ports {
            // Oracle's Ubuntu images end INPUT with `REJECT --reject-with icmp-host-prohibited`:
            // insert at its position (at the top when there is none).
            doc = doc.shell(format!(
                "iptables -I INPUT $(iptables -L INPUT --line-numbers -n | awk '$2 == \"REJECT\" {{print $1; exit}}') \
                 -m state --state NEW -p tcp --dport {port} -j ACCEPT"
            ));
        }
        if !self.host_firewall_ports.is_empty() {
            doc = doc.shell("iptables-save > /etc/iptables/rules.v4");
        }
        doc = doc.command(["systemctl", "enable", "--now", "docker"]).command([
            "usermod",
            "-aG",
            "docker",
            self.admin_user.as_str(),
        ]);
        if let Some(app) = &self.compose {
            let compose_path = app.path(&app.file_name);
            doc = doc.file(&compose_path, app.compose.as_str(), "root:root", "0644");
            let mut argv: Vec<Text> = vec![
                "docker".into(),
                "compose".into(),
                "--project-directory".into(),
                app.dir.as_str().into(),
                "-f".into(),
                compose_path.into(),
            ];
            if let Some(env) = &app.env {
                let env_path = app.path(&app.env_file_name);
                let body = env.expose().strip_suffix('\n').unwrap_or(env.expose()).to_owned();
                let text = Text::concat([Text::from(Secret::new(body)), Text::from("\n")]);
                doc = doc.file(&env_path, text, "root:root", "0600");
                argv.extend(["--env-file".into(), env_path.into()]);
            }
            argv.extend(["up".into(), "-d".into()]);
            doc = doc.command(argv);
        }
        doc
    }

    /// Adds the network and the VM with [`FreeTierOnOci::cloud_init`].
    pub fn add_to(&self, stack: &mut Stack, client: &OciClient) -> Result<FreeTierOnOciOutputs, Error> {
        self.add_with_cloud_init(stack, client, self.cloud_init())
    }

    /// Adds the network and the VM booting `doc` (start from [`FreeTierOnOci::cloud_init`] and
    /// add to it: that is how [`crate::recipes::full_stack`] composes recipes).
    pub fn add_with_cloud_init(
        &self,
        stack: &mut Stack,
        client: &OciClient,
        doc: CloudConfig,
    ) -> Result<FreeTierOnOciOutputs, Error> {
        self.validate()?;
        doc.validate_size(OCI_USER_DATA_MAX_BYTES, "free_tier_on_oci.user_data")?;
        let compartment = self.compartment_id.clone().unwrap_or_else(|| client.tenancy().to_owned());
        let display = |what: &str| format!("{}-{what}", self.name);
        let vcn = stack.add(
            &self.address("vcn"),
            Vcns::new(client.clone()),
            VcnSpec {
                compartment_id: compartment.clone(),
                display_name: display("vcn"),
                cidr_blocks: vec![self.vcn_cidr.clone()],
                dns_label: Some(self.dns_label.clone()),
                freeform_tags: self.tags.clone(),
            },
        )?;
        let internet_gateway = stack.add(
            &self.address("internet_gateway"),
            InternetGateways::new(client.clone()),
            InternetGatewaySpec {
                compartment_id: compartment.clone(),
                vcn_id: vcn.id().input(),
                display_name: display("igw"),
                enabled: true,
                freeform_tags: self.tags.clone(),
            },
        )?;
        let routes = stack.add(
            &self.address("routes"),
            RouteTables::new(client.clone()),
            RouteTableSpec {
                compartment_id: compartment.clone(),
                vcn_id: vcn.id().input(),
                display_name: display("routes"),
                route_rules: vec![RouteRuleSpec {
                    destination: "0.0.0.0/0".into(),
                    network_entity_id: internet_gateway.id().input(),
                    description: Some("default route to the internet".into()),
                }],
                adopt_id: Some(vcn.output("default_route_table_id").input()),
                freeform_tags: self.tags.clone(),
            },
        )?;
        let mut firewall_spec =
            SecurityListSpec::public_ports(compartment.clone(), vcn.id().input(), display("firewall"), &self.tcp_ports);
        firewall_spec.freeform_tags = self.tags.clone();
        let firewall = stack.add(&self.address("firewall"), SecurityLists::new(client.clone()), firewall_spec)?;
        let subnet = stack.add(
            &self.address("subnet"),
            Subnets::new(client.clone()),
            SubnetSpec {
                compartment_id: compartment.clone(),
                vcn_id: vcn.id().input(),
                display_name: display("subnet"),
                cidr_block: self.subnet_cidr.clone(),
                dns_label: Some(self.dns_label.clone()),
                availability_domain: None,
                route_table_id: Some(routes.id().input()),
                security_list_ids: vec![firewall.id().input()],
                prohibit_public_ip_on_vnic: false,
                freeform_tags: self.tags.clone(),
            },
        )?;
        let vm = stack.add(
            &self.address("vm"),
            Instances::new(client.clone()).capacity_hunt(self.hunt.clone()).free_tier_allowance(self.allowance),
            InstanceSpec {
                compartment_id: compartment,
                display_name: display("vm"),
                availability_domains: self.availability_domains.clone(),
                fault_domains: vec![],
                shape: A1_FLEX.into(),
                ocpus: Some(self.ocpus),
                memory_in_gbs: Some(self.memory_gbs),
                image: self.image.clone(),
                boot_volume_size_in_gbs: Some(self.boot_volume_gbs),
                subnet_id: subnet.id().input(),
                assign_public_ip: true,
                ssh_authorized_keys: self.ssh_public_keys.iter().map(|k| k.trim().to_owned()).collect(),
                user_data: Some(doc.render()),
                freeform_tags: self.tags.clone(),
                allow_billing: self.allow_billing,
            },
        )?;
        let public_ip = vm.output("public_ip");
        Ok(FreeTierOnOciOutputs {
            ssh_command: Input::template([
                TemplatePart::Text(format!("ssh {}@", self.admin_user)),
                TemplatePart::Ref(public_ip.clone()),
            ]),
            public_ip,
            vcn,
            internet_gateway,
            routes,
            firewall,
            subnet,
            vm,
        })
    }
}
