//! Recipe `logs_to_r2` (seed 001, jamjam production logs shipped to Cloudflare R2): the private
//! log bucket and the shipper configuration that replaces the hourly cron script
//! `upload-logs-to-r2.sh`.
//!
//! [`LogsToR2::add_to`] adds the bucket (`jamjam-logs`; `logs/bucket`, plus `logs/lifecycle`
//! when a retention is set; the seed keeps logs forever) and returns:
//!
//! * [`LogsToR2Outputs::ship_options`]: the [`ShipOptions`] for [`stackup_r2::shipper::Shipper`]
//!   with the seed's glob `/var/lib/docker/containers/*/*-json.log` and keys
//!   `{YYYYmmdd_HHMMSS}/{container_id}.log.gz`;
//! * [`ShipperEnvironment`]: `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY` (a [`Secret`], redacted
//!   when shown), `R2_ACCOUNT_ID`, `R2_BUCKET_NAME`, the seed's variable names;
//! * the `rclone.conf` section from the R2 crate's generator
//!   ([`stackup_r2::shipper::rclone::rclone_section`]), the secret replaced by a placeholder.
//!
//! [`LogsToR2::ship_from_vm`] adds the seed's machine side to a VM's cloud-init: rclone, the
//! `rclone.conf` with the secret (mode 0600), the seed's script, its hourly cron line and
//! Docker's `json-file` rotation (`max-size` 100m, `max-file` 5). The VPS, its containers and
//! the Cloudflare Tunnel are out of scope.

use std::fmt;

use stackup_core::cloud_init::{CloudConfig, Text};
use stackup_core::{Error, Handle, OutputRef, Secret, Stack};
use stackup_r2::names::validate_bucket_name;
use stackup_r2::shipper::ShipOptions;
use stackup_r2::shipper::rclone::{SecretInConfig, rclone_section};
use stackup_r2::{
    BucketLifecycles, BucketSpec, Buckets, Jurisdiction, LifecycleRule, LifecycleSpec, LocationHint, R2Client, R2Config,
};

/// Where the seed's script lives on the VPS.
pub const SEED_SCRIPT_PATH: &str = "/opt/jamjam/scripts/upload-logs-to-r2.sh";

/// The private log bucket and its shipper. Defaults come from seed 001.
#[derive(Debug, Clone)]
pub struct LogsToR2 {
    prefix: String,
    bucket: String,
    jurisdiction: Jurisdiction,
    location_hint: Option<LocationHint>,
    retention_days: Option<u32>,
    key_prefix: String,
    log_dir: String,
    remote: String,
    schedule: String,
    script_path: String,
    rclone_conf_path: String,
    docker_log_rotation: bool,
}

impl Default for LogsToR2 {
    fn default() -> Self {
        Self::new()
    }
}

/// The S3 credentials the shipper uses (the seed's `R2_*` variables). They may be a narrower
/// R2 API token than the one that creates the bucket: "Object Read & Write" on this bucket.
#[derive(Clone)]
pub struct ShipperCredentials {
    account_id: String,
    access_key_id: String,
    secret_access_key: Secret,
    endpoint: Option<String>,
}

impl fmt::Debug for ShipperCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipperCredentials")
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl ShipperCredentials {
    /// Credentials of an R2 API token in `account_id`.
    pub fn new(
        account_id: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
    ) -> Self {
        ShipperCredentials {
            account_id: account_id.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            endpoint: None,
        }
    }

    /// From `R2_ACCOUNT_ID`, `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY` (and `R2_ENDPOINT`).
    pub fn from_env() -> Result<Self, Error> {
        let var = |n: &str| std::env::var(n).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let need = |n: &str| var(n).ok_or_else(|| Error::Config(format!("{n} is not set")));
        let mut c = ShipperCredentials::new(
            var("R2_ACCOUNT_ID").unwrap_or_default(),
            need("R2_ACCESS_KEY_ID")?,
            Secret::new(need("R2_SECRET_ACCESS_KEY")?),
        );
        c.endpoint = var("R2_ENDPOINT");
        c.config()?;
        Ok(c)
    }

    /// Sends to another S3-compatible endpoint (a local server in tests).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The account id.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The R2 configuration these credentials make (validated).
    pub fn config(&self) -> Result<R2Config, Error> {
        let c = match &self.endpoint {
            Some(e) => R2Config::for_endpoint(e, self.access_key_id.clone(), self.secret_access_key.clone())?,
            None => R2Config::new(self.account_id.clone(), self.access_key_id.clone(), self.secret_access_key.clone())?,
        };
        Ok(c)
    }
}

/// One variable of the shipper's environment.
#[derive(Clone)]
pub enum EnvValue {
    /// Shown as it is.
    Plain(String),
    /// Redacted wherever shown.
    Secret(Secret),
}

impl PartialEq for EnvValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (EnvValue::Plain(a), EnvValue::Plain(b)) => a == b,
            (EnvValue::Secret(a), EnvValue::Secret(b)) => a.expose() == b.expose(),
            _ => false,
        }
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvValue::Plain(v) => fmt::Debug::fmt(v, f),
            EnvValue::Secret(_) => f.write_str("(sensitive)"),
        }
    }
}

/// The seed's `R2_*` environment: `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY`, `R2_ACCOUNT_ID`,
/// `R2_BUCKET_NAME` (plus `R2_ENDPOINT` when overridden). [`fmt::Display`] prints it as an env
/// file with the secret redacted; [`ShipperEnvironment::to_env_file`] includes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipperEnvironment {
    /// The variables, in the seed's order.
    pub vars: Vec<(String, EnvValue)>,
}

impl ShipperEnvironment {
    /// The value of `name`, if set (secrets included, as [`EnvValue::Secret`]).
    pub fn get(&self, name: &str) -> Option<&EnvValue> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// `NAME=value` lines with the real secret, for a file readable only by its owner.
    pub fn to_env_file(&self) -> Secret {
        let s: String = self
            .vars
            .iter()
            .map(|(n, v)| match v {
                EnvValue::Plain(v) => format!("{n}={v}\n"),
                EnvValue::Secret(s) => format!("{n}={}\n", s.expose()),
            })
            .collect();
        Secret::new(s)
    }
}

impl fmt::Display for ShipperEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.vars {
            match v {
                EnvValue::Plain(v) => writeln!(f, "{n}={v}")?,
                EnvValue::Secret(_) => writeln!(f, "{n}=(sensitive)")?,
            }
        }
        Ok(())
    }
}

/// What [`LogsToR2::add_to`] added.
#[derive(Debug, Clone)]
pub struct LogsToR2Outputs {
    /// The bucket (`name`, `s3_endpoint`, …).
    pub bucket: Handle<Buckets>,
    /// Its lifecycle rules, when a retention is set.
    pub lifecycle: Option<Handle<BucketLifecycles>>,
    /// The bucket's name output.
    pub bucket_name: OutputRef,
    /// The bucket's S3 endpoint output.
    pub s3_endpoint: OutputRef,
    /// The files the shipper sends.
    pub glob: String,
    /// Options for [`stackup_r2::shipper::Shipper`] (timestamped when the recipe was added:
    /// take a fresh [`stackup_r2::shipper::timestamp_now`] for each run).
    pub ship_options: ShipOptions,
}

impl LogsToR2 {
    /// Seed 001's values: bucket `jamjam-logs` (private: R2 buckets have no public access
    /// unless enabled), kept forever, keys `{YYYYmmdd_HHMMSS}/{container_id}.log.gz` from
    /// `/var/lib/docker/containers`, rclone remote `r2`, hourly at minute 0, the script at
    /// `/opt/jamjam/scripts/upload-logs-to-r2.sh`, root's `~/.config/rclone/rclone.conf`.
    pub fn new() -> Self {
        LogsToR2 {
            prefix: "logs".into(),
            bucket: "jamjam-logs".into(),
            jurisdiction: Jurisdiction::Default,
            location_hint: None,
            retention_days: None,
            key_prefix: String::new(),
            log_dir: "/var/lib/docker/containers".into(),
            remote: "r2".into(),
            schedule: "0 * * * *".into(),
            script_path: SEED_SCRIPT_PATH.into(),
            rclone_conf_path: "/root/.config/rclone/rclone.conf".into(),
            docker_log_rotation: true,
        }
    }

    /// Address prefix (default `logs`): `logs/bucket`, `logs/lifecycle`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bucket name (`R2_BUCKET_NAME`, default `jamjam-logs`).
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.bucket = name.into();
        self
    }

    /// The bucket's jurisdiction (default none).
    pub fn jurisdiction(mut self, j: Jurisdiction) -> Self {
        self.jurisdiction = j;
        self
    }

    /// A location hint for the bucket's creation.
    pub fn location_hint(mut self, hint: LocationHint) -> Self {
        self.location_hint = Some(hint);
        self
    }

    /// Delete logs this many days after upload (the seed keeps them forever: unset). The rule
    /// covers the key prefix's keys only (`{key_prefix}/`), or the whole bucket without one.
    pub fn retention_days(mut self, days: u32) -> Self {
        self.retention_days = Some(days);
        self
    }

    /// A key prefix before the timestamp (default none, as the seed).
    pub fn key_prefix(mut self, p: impl Into<String>) -> Self {
        self.key_prefix = p.into();
        self
    }

    /// Docker's container directory (default `/var/lib/docker/containers`).
    pub fn log_dir(mut self, dir: impl Into<String>) -> Self {
        self.log_dir = dir.into();
        self
    }

    /// The rclone remote name (default `r2`).
    pub fn remote(mut self, name: impl Into<String>) -> Self {
        self.remote = name.into();
        self
    }

    /// The cron schedule (five fields, default `0 * * * *`: hourly).
    pub fn schedule(mut self, cron: impl Into<String>) -> Self {
        self.schedule = cron.into();
        self
    }

    /// Where the script is written on the VM.
    pub fn script_path(mut self, p: impl Into<String>) -> Self {
        self.script_path = p.into();
        self
    }

    /// Where `rclone.conf` is written on the VM (default root's).
    pub fn rclone_conf_path(mut self, p: impl Into<String>) -> Self {
        self.rclone_conf_path = p.into();
        self
    }

    /// Write Docker's `json-file` rotation to `/etc/docker/daemon.json` (default on).
    pub fn docker_log_rotation(mut self, yes: bool) -> Self {
        self.docker_log_rotation = yes;
        self
    }

    /// The bucket name.
    pub fn bucket_name(&self) -> &str {
        &self.bucket
    }

    /// The glob of files shipped: `<log_dir>/*/*-json.log`.
    pub fn glob(&self) -> String {
        format!("{}/*/*-json.log", self.log_dir.trim_end_matches('/'))
    }

    /// Checks every value; the error names the field and the rule. No call is made.
    pub fn validate(&self) -> Result<(), Error> {
        validate_bucket_name("logs_to_r2.bucket", &self.bucket)?;
        let opts = self.ship_options_at("20000101_000000");
        opts.validate().map_err(|e| match Error::from(e) {
            Error::InvalidInput { field, rule } => Error::InvalidInput { field: format!("logs_to_r2.{field}"), rule },
            other => other,
        })?;
        for (field, p) in [
            ("logs_to_r2.log_dir", &self.log_dir),
            ("logs_to_r2.script_path", &self.script_path),
            ("logs_to_r2.rclone_conf_path", &self.rclone_conf_path),
        ] {
            let ok = p.starts_with('/')
                && !p.contains("..")
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
            if !ok {
                return Err(Error::invalid(field, "an absolute path of letters, digits and `/._-`"));
            }
        }
        if self.remote.is_empty() || !self.remote.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
            return Err(Error::invalid("logs_to_r2.remote", "letters, digits, `_` and `-`"));
        }
        let fields: Vec<&str> = self.schedule.split_whitespace().collect();
        if fields.len() != 5 || !fields.iter().all(|f| f.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c))) {
            return Err(Error::invalid("logs_to_r2.schedule", "five cron fields such as `0 * * * *`"));
        }
        if self.retention_days == Some(0) {
            return Err(Error::invalid("logs_to_r2.retention_days", "at least 1 day (unset keeps logs forever)"));
        }
        Ok(())
    }

    fn ship_options_at(&self, timestamp: &str) -> ShipOptions {
        let mut o = ShipOptions::new(self.bucket.clone());
        o.prefix = self.key_prefix.clone();
        o.jurisdiction = self.jurisdiction;
        o.timestamp = timestamp.to_owned();
        o
    }

    /// Adds the bucket (and the lifecycle rule when a retention is set) to `stack`.
    pub fn add_to(&self, stack: &mut Stack, client: &R2Client) -> Result<LogsToR2Outputs, Error> {
        self.validate()?;
        let mut spec = BucketSpec::new(self.bucket.clone());
        spec.jurisdiction = self.jurisdiction;
        spec.location_hint = self.location_hint;
        let bucket = stack.add(&format!("{}/bucket", self.prefix), Buckets::new(client.clone()), spec)?;
        let lifecycle = match self.retention_days {
            Some(days) => {
                // Keys are `{prefix}/{ts}/…`: match the whole first segment, so prefix `prod`
                // never expires `production/…` or `prod-eu/…`.
                let rule_prefix =
                    if self.key_prefix.is_empty() { String::new() } else { format!("{}/", self.key_prefix) };
                let mut rule = LifecycleRule::new("expire-logs", rule_prefix);
                rule.expire_after_days = Some(days);
                rule.abort_multipart_after_days = Some(1);
                Some(stack.add(
                    &format!("{}/lifecycle", self.prefix),
                    BucketLifecycles::new(client.clone()),
                    LifecycleSpec {
                        bucket: bucket.output("name").input(),
                        jurisdiction: self.jurisdiction,
                        rules: vec![rule],
                    },
                )?)
            }
            None => None,
        };
        Ok(LogsToR2Outputs {
            bucket_name: bucket.output("name"),
            s3_endpoint: bucket.output("s3_endpoint"),
            bucket,
            lifecycle,
            glob: self.glob(),
            ship_options: self.ship_options_at(&stackup_r2::shipper::timestamp_now()),
        })
    }

    /// The seed's environment for `credentials` (secret redacted when displayed).
    pub fn environment(&self, credentials: &ShipperCredentials) -> ShipperEnvironment {
        let mut vars = vec![
            ("R2_ACCESS_KEY_ID".to_owned(), EnvValue::Plain(credentials.access_key_id.clone())),
            ("R2_SECRET_ACCESS_KEY".to_owned(), EnvValue::Secret(credentials.secret_access_key.clone())),
            ("R2_ACCOUNT_ID".to_owned(), EnvValue::Plain(credentials.account_id.clone())),
            ("R2_BUCKET_NAME".to_owned(), EnvValue::Plain(self.bucket.clone())),
        ];
        if let Some(e) = &credentials.endpoint {
            vars.push(("R2_ENDPOINT".to_owned(), EnvValue::Plain(e.clone())));
        }
        ShipperEnvironment { vars }
    }

    /// The `rclone.conf` section for `credentials` (the R2 crate's generator), secret replaced
    /// by `<R2_SECRET_ACCESS_KEY>`: safe to print.
    pub fn rclone_conf(&self, credentials: &ShipperCredentials) -> Result<String, Error> {
        Ok(rclone_section(&self.remote, &credentials.config()?, self.jurisdiction, SecretInConfig::Placeholder))
    }

    /// The seed's `upload-logs-to-r2.sh`, with this recipe's directory, remote, bucket and prefix.
    pub fn script(&self) -> String {
        let dest = if self.key_prefix.is_empty() {
            format!("{}:{}", self.remote, self.bucket)
        } else {
            format!("{}:{}/{}", self.remote, self.bucket, self.key_prefix)
        };
        format!(
            "#!/bin/bash\nset -e\n\nTIMESTAMP=$(date +%Y%m%d_%H%M%S)\nLOG_DIR={log_dir}\n\n\
             # Compress each container log and upload it to R2\n\
             for container_dir in $LOG_DIR/*/; do\n  container_id=$(basename $container_dir)\n  \
             log_file=\"${{container_dir}}${{container_id}}-json.log\"\n  if [ -f \"$log_file\" ]; then\n    \
             gzip -c \"$log_file\" | rclone rcat {dest}/${{TIMESTAMP}}/${{container_id}}.log.gz\n  fi\ndone\n",
            log_dir = self.log_dir.trim_end_matches('/'),
        )
    }

    /// The seed's cron line, for `/etc/cron.d` (with the user field).
    pub fn cron_line(&self) -> String {
        format!("{} root {}\n", self.schedule, self.script_path)
    }

    /// Adds the machine side to a VM's first boot: rclone, `rclone.conf` with the secret (0600,
    /// so the document becomes sensitive), the script (0755), the cron entry
    /// `/etc/cron.d/upload-logs-to-r2` and, unless turned off, Docker's log rotation.
    pub fn ship_from_vm(&self, doc: CloudConfig, credentials: &ShipperCredentials) -> Result<CloudConfig, Error> {
        self.validate()?;
        let conf = rclone_section(&self.remote, &credentials.config()?, self.jurisdiction, SecretInConfig::Include);
        let mut doc = doc
            .package("rclone")
            .package("cron")
            .file(&self.rclone_conf_path, secret_block(conf), "root:root", "0600")
            .file(&self.script_path, self.script(), "root:root", "0755")
            .file("/etc/cron.d/upload-logs-to-r2", self.cron_line(), "root:root", "0644");
        if self.docker_log_rotation {
            doc = doc.file(
                "/etc/docker/daemon.json",
                "{\n  \"log-driver\": \"json-file\",\n  \"log-opts\": {\n    \"max-size\": \"100m\",\n    \"max-file\": \"5\"\n  }\n}\n",
                "root:root",
                "0644",
            );
        }
        Ok(doc)
    }
}

/// A secret file body whose final newline stays literal, so previews show `(sensitive)` on a
/// line of its own while the rendered document carries the exact text.
fn secret_block(text: String) -> Text {
    let body = text.strip_suffix('\n').unwrap_or(&text).to_owned();
    Text::concat([Text::from(Secret::new(body)), Text::from("\n")])
}
