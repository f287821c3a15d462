//! `tailscale:dns`: the tailnet's global nameservers, search paths and MagicDNS preference
//! (`/tailnet/{tailnet}/dns/nameservers`, `…/searchpaths`, `…/preferences`).
//!
//! Each part is managed only when set in the spec (`None` leaves it alone). Writes happen only
//! for parts that differ, in the order the API needs: nameservers first (MagicDNS needs at least
//! one, and removing them all turns MagicDNS off), then search paths, then MagicDNS.
//! Destroying the resource resets the managed parts (MagicDNS off, no nameservers, no search
//! paths), unless `keep_on_destroy` is set.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackup_core::{CreateError, Created, Ctx, Diff, Error, Provisioner, ResourceKind};

use crate::client::TailscaleClient;
use crate::validate;
use crate::wire::DnsPreferences;

/// The desired DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsSpec {
    /// Global nameservers (IP addresses or `https://` DoH URLs), in order; `None` = unmanaged.
    #[serde(default)]
    pub nameservers: Option<Vec<String>>,
    /// Search domains, in order; `None` = unmanaged.
    #[serde(default)]
    pub search_paths: Option<Vec<String>>,
    /// MagicDNS (`<host>.<tailnet>.ts.net` names); `None` = unmanaged.
    #[serde(default)]
    pub magic_dns: Option<bool>,
    /// Leave the settings as they are on destroy (default: reset the managed parts).
    #[serde(default)]
    pub keep_on_destroy: bool,
}

impl DnsSpec {
    /// Manages nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Manages the nameservers.
    pub fn nameservers<I, S>(mut self, ns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.nameservers = Some(ns.into_iter().map(Into::into).collect());
        self
    }

    /// Manages the search paths.
    pub fn search_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.search_paths = Some(paths.into_iter().map(Into::into).collect());
        self
    }

    /// Manages MagicDNS.
    pub fn magic_dns(mut self, on: bool) -> Self {
        self.magic_dns = Some(on);
        self
    }

    /// Sets `keep_on_destroy`.
    pub fn keep_on_destroy(mut self, keep: bool) -> Self {
        self.keep_on_destroy = keep;
        self
    }

    fn managed(&self) -> DnsManaged {
        DnsManaged {
            nameservers: self.nameservers.is_some(),
            search_paths: self.search_paths.is_some(),
            magic_dns: self.magic_dns.is_some(),
            keep_on_destroy: self.keep_on_destroy,
        }
    }
}

/// Which parts stackup manages (recorded so destroy resets exactly those).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsManaged {
    /// Nameservers are managed.
    pub nameservers: bool,
    /// Search paths are managed.
    pub search_paths: bool,
    /// MagicDNS is managed.
    pub magic_dns: bool,
    /// Destroy leaves everything as it is.
    pub keep_on_destroy: bool,
}

/// The observed DNS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsOutputs {
    /// The tailnet; also the resource id.
    pub tailnet: String,
    /// Global nameservers.
    pub nameservers: Vec<String>,
    /// Search paths.
    pub search_paths: Vec<String>,
    /// MagicDNS on.
    pub magic_dns: bool,
    /// What stackup manages.
    #[serde(default)]
    pub managed: DnsManaged,
}

/// Manages tailnet DNS settings.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    client: TailscaleClient,
}

impl DnsSettings {
    /// A provisioner using `client`.
    pub fn new(client: TailscaleClient) -> Self {
        DnsSettings { client }
    }

    async fn current(&self, managed: DnsManaged) -> Result<DnsOutputs, Error> {
        Ok(DnsOutputs {
            tailnet: self.client.tailnet().to_owned(),
            nameservers: self.client.get_nameservers().await?,
            search_paths: self.client.get_search_paths().await?,
            magic_dns: self.client.get_dns_preferences().await?.magic_dns,
            managed,
        })
    }

    /// Writes the managed parts that differ from `now`, returning the settings afterwards.
    async fn apply(&self, ctx: &Ctx, spec: &DnsSpec, mut now: DnsOutputs) -> Result<DnsOutputs, Error> {
        if let Some(ns) = &spec.nameservers
            && *ns != now.nameservers
        {
            ctx.progress(format!("setting DNS nameservers to [{}]", ns.join(", ")));
            let reply = self.client.set_nameservers(ns).await?;
            now.nameservers = ns.clone();
            if let Some(m) = reply.magic_dns {
                now.magic_dns = m;
            } else if ns.is_empty() {
                now.magic_dns = false;
            }
        }
        if let Some(paths) = &spec.search_paths
            && *paths != now.search_paths
        {
            ctx.progress(format!("setting DNS search paths to [{}]", paths.join(", ")));
            self.client.set_search_paths(paths).await?;
            now.search_paths = paths.clone();
        }
        if let Some(m) = spec.magic_dns
            && m != now.magic_dns
        {
            ctx.progress(format!("turning MagicDNS {}", if m { "on" } else { "off" }));
            self.client.set_dns_preferences(DnsPreferences { magic_dns: m }).await?;
            now.magic_dns = m;
        }
        now.managed = spec.managed();
        Ok(now)
    }
}

#[async_trait]
impl Provisioner for DnsSettings {
    type Spec = DnsSpec;
    type Outputs = DnsOutputs;

    fn kind(&self) -> ResourceKind {
        ResourceKind::new("tailscale", "dns")
    }

    fn validate(&self, spec: &DnsSpec) -> Result<(), Error> {
        if spec.nameservers.is_none() && spec.search_paths.is_none() && spec.magic_dns.is_none() {
            return Err(Error::invalid("dns", "manages nothing: set nameservers, search_paths or magic_dns"));
        }
        for (i, ns) in spec.nameservers.iter().flatten().enumerate() {
            validate::nameserver(&format!("nameservers[{i}]"), ns)?;
        }
        for (i, p) in spec.search_paths.iter().flatten().enumerate() {
            validate::domain(&format!("search_paths[{i}]"), p)?;
        }
        if spec.magic_dns == Some(true) && spec.nameservers.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid(
                "magic_dns",
                "MagicDNS needs at least one global nameserver, and `nameservers` is empty",
            ));
        }
        Ok(())
    }

    async fn read(&self, _ctx: &Ctx, _id: &str, prior: Option<&DnsOutputs>) -> Result<Option<DnsOutputs>, Error> {
        self.current(prior.map(|p| p.managed).unwrap_or_default()).await.map(Some)
    }

    fn diff(&self, desired: &DnsSpec, observed: &DnsOutputs) -> Diff {
        let mut d = Diff::new();
        if let Some(ns) = &desired.nameservers {
            d.field("nameservers", ns, &observed.nameservers);
        }
        if let Some(p) = &desired.search_paths {
            d.field("search_paths", p, &observed.search_paths);
        }
        if let Some(m) = &desired.magic_dns {
            d.field("magic_dns", m, &observed.magic_dns);
        }
        d.field("managed", &desired.managed(), &observed.managed);
        d
    }

    async fn create(&self, ctx: &Ctx, spec: &DnsSpec) -> Result<Created<DnsOutputs>, CreateError> {
        self.validate(spec)?;
        let now = self.current(spec.managed()).await?;
        let outputs = self.apply(ctx, spec, now).await?;
        Ok(Created { id: outputs.tailnet.clone(), outputs })
    }

    async fn update(&self, ctx: &Ctx, _id: &str, spec: &DnsSpec, observed: &DnsOutputs) -> Result<DnsOutputs, Error> {
        self.validate(spec)?;
        self.apply(ctx, spec, observed.clone()).await
    }

    async fn delete(&self, ctx: &Ctx, _id: &str, observed: &DnsOutputs) -> Result<(), Error> {
        let m = observed.managed;
        if m.keep_on_destroy {
            ctx.progress("keeping the tailnet DNS settings (keep_on_destroy)");
            return Ok(());
        }
        let now = self.current(m).await?;
        let reset = DnsSpec {
            // MagicDNS goes first: it cannot stay on once the nameservers are gone.
            magic_dns: m.magic_dns.then_some(false),
            nameservers: m.nameservers.then(Vec::new),
            search_paths: m.search_paths.then(Vec::new),
            keep_on_destroy: false,
        };
        if reset.magic_dns == Some(false) && now.magic_dns {
            ctx.progress("turning MagicDNS off");
            self.client.set_dns_preferences(DnsPreferences { magic_dns: false }).await?;
        }
        if reset.nameservers.is_some() && !now.nameservers.is_empty() {
            ctx.progress("removing the DNS nameservers");
            self.client.set_nameservers(&[]).await?;
        }
        if reset.search_paths.is_some() && !now.search_paths.is_empty() {
            ctx.progress("removing the DNS search paths");
            self.client.set_search_paths(&[]).await?;
        }
        Ok(())
    }
}
