//! The small command-line runner every example shares: `plan`, `apply`, `destroy`, `output`,
//! `--state <location>`, `--json`, and a progress display driven by the event stream.
//!
//! ```text
//! cargo run -p stackup --features azure --example azure_blossom -- plan
//! cargo run -p stackup --features azure --example azure_blossom -- apply --state blossom.stackup.json
//! cargo run -p stackup --features azure --example azure_blossom -- output --json
//! ```
//!
//! State locations: a file path (default `<stack>.stackup.json`), `azblob://<account>/<container>/<blob>`
//! (feature `azure`), `r2://<bucket>/<key>` (feature `r2`). `plan --offline` (or `plan` with no
//! credentials, decided by the example) plans against an empty in-memory state and says so.
//! No argument parser dependency: the grammar is small and fixed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use stackup_core::backend::{LocalBackend, MemoryBackend, StateBackend};
use stackup_core::{Engine, Error, EventKind, Plan};

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Show what apply would do.
    Plan,
    /// Plan, then apply.
    Apply,
    /// Delete everything in state.
    Destroy,
    /// Print the outputs recorded in state.
    Output,
}

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A local file.
    File(PathBuf),
    /// An Azure Blob: `azblob://<account>/<container>/<blob>`.
    AzureBlob {
        /// Storage account name.
        account: String,
        /// Container name.
        container: String,
        /// Blob name (may contain `/`).
        blob: String,
    },
    /// An R2 (or S3) object: `r2://<bucket>/<key>`.
    R2 {
        /// Bucket.
        bucket: String,
        /// Object key (may contain `/`).
        key: String,
    },
    /// No persistent state: an empty in-memory state (offline plans).
    Memory,
}

impl StateLocation {
    /// Parses `--state`: `azblob://a/c/b`, `r2://bucket/key`, `memory://`, or a file path.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let split3 = |rest: &str, what: &str| -> Result<Vec<String>, Error> {
            let parts: Vec<&str> = rest.splitn(3, '/').collect();
            if parts.len() < 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(Error::invalid("--state", format!("expected {what}")));
            }
            Ok(parts.into_iter().map(str::to_owned).collect())
        };
        if let Some(rest) = raw.strip_prefix("azblob://") {
            let p = split3(rest, "azblob://<account>/<container>/<blob>")?;
            return Ok(StateLocation::AzureBlob { account: p[0].clone(), container: p[1].clone(), blob: p[2].clone() });
        }
        if let Some(rest) = raw.strip_prefix("r2://") {
            let (bucket, key) = rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .ok_or_else(|| Error::invalid("--state", "expected r2://<bucket>/<key>"))?;
            return Ok(StateLocation::R2 { bucket: bucket.to_owned(), key: key.to_owned() });
        }
        if raw == "memory://" {
            return Ok(StateLocation::Memory);
        }
        if raw.contains("://") {
            return Err(Error::invalid(
                "--state",
                format!("`{raw}`: use a file path, azblob://<account>/<container>/<blob> or r2://<bucket>/<key>"),
            ));
        }
        Ok(StateLocation::File(PathBuf::from(raw)))
    }
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// The subcommand.
    pub command: Command,
    /// `--state`; `None` means the example's default file.
    pub state: Option<StateLocation>,
    /// `--json`: machine-readable output (plan JSON, events as JSON lines, outputs JSON).
    pub json: bool,
    /// `--offline`: plan against an empty in-memory state with no credentials.
    pub offline: bool,
    /// `--show-secrets` (with `output`): print secret outputs in clear.
    pub show_secrets: bool,
    /// `--replace <address>` (repeatable): plan these resources for replacement even if
    /// nothing changed (see [`Engine::replace`]).
    pub replace: Vec<String>,
    /// Anything else (`--key value` pairs the example interprets).
    pub extra: Vec<(String, String)>,
}

/// The usage text.
pub fn usage(example: &str) -> String {
    format!(
        "usage: {example} <plan|apply|destroy|output> [--state <file|azblob://account/container/blob|r2://bucket/key>] \
         [--json] [--offline] [--show-secrets] [--replace <address>]... [--<option> <value>]"
    )
}

impl Cli {
    /// Parses `std::env::args()`.
    pub fn from_env() -> Result<Cli, Error> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Cli::parse(&args)
    }

    /// Parses arguments (without the program name). The subcommand defaults to `plan`.
    pub fn parse(args: &[String]) -> Result<Cli, Error> {
        let mut cli = Cli {
            command: Command::Plan,
            state: None,
            json: false,
            offline: false,
            show_secrets: false,
            replace: vec![],
            extra: vec![],
        };
        let mut it = args.iter().peekable();
        let mut saw_command = false;
        while let Some(a) = it.next() {
            match a.as_str() {
                "plan" | "apply" | "destroy" | "output" if !saw_command => {
                    saw_command = true;
                    cli.command = match a.as_str() {
                        "plan" => Command::Plan,
                        "apply" => Command::Apply,
                        "destroy" => Command::Destroy,
                        _ => Command::Output,
                    };
                }
                "--json" => cli.json = true,
                "--offline" => cli.offline = true,
                "--show-secrets" => cli.show_secrets = true,
                "--replace" => {
                    let v = it.next().ok_or_else(|| Error::invalid("--replace", "needs a resource address"))?;
                    cli.replace.push(v.clone());
                }
                "--state" => {
                    let v = it.next().ok_or_else(|| Error::invalid("--state", "needs a value"))?;
                    cli.state = Some(StateLocation::parse(v)?);
                }
                opt if opt.starts_with("--") => {
                    let key = opt.trim_start_matches("--");
                    let (k, v) = match key.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => {
                            (key.to_owned(), it.next().cloned().ok_or_else(|| Error::invalid(opt, "needs a value"))?)
                        }
                    };
                    cli.extra.push((k, v));
                }
                other => return Err(Error::invalid("arguments", format!("unexpected `{other}`"))),
            }
        }
        if cli.offline && cli.command != Command::Plan {
            return Err(Error::invalid("--offline", "only `plan` runs offline"));
        }
        Ok(cli)
    }

    /// The value of `--<key>`, if given.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.extra.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The engine for `stack`: offline plans read no environment; otherwise the state key comes
    /// from `STACKUP_STATE_KEY` ([`Engine::from_env`]). `--replace` addresses are applied.
    pub fn engine(&self, stack: stackup_core::Stack, backend: Arc<dyn StateBackend>) -> Result<Engine, Error> {
        let mut engine = if self.offline { Engine::new(stack, backend) } else { Engine::from_env(stack, backend)? };
        for address in &self.replace {
            engine = engine.replace(address.clone());
        }
        Ok(engine)
    }

    /// The state backend for `--state` (default: `default_file`). Offline plans use memory.
    pub async fn backend(&self, default_file: &str) -> Result<Arc<dyn StateBackend>, Error> {
        if self.offline {
            return Ok(Arc::new(MemoryBackend::new()));
        }
        let loc = self.state.clone().unwrap_or_else(|| StateLocation::File(PathBuf::from(default_file)));
        match loc {
            StateLocation::File(p) => Ok(Arc::new(LocalBackend::new(p))),
            StateLocation::Memory => Ok(Arc::new(MemoryBackend::new())),
            StateLocation::AzureBlob { account, container, blob } => azure_backend(&account, &container, &blob).await,
            StateLocation::R2 { bucket, key } => r2_backend(&bucket, &key).await,
        }
    }
}

#[cfg(feature = "azure")]
async fn azure_backend(account: &str, container: &str, blob: &str) -> Result<Arc<dyn StateBackend>, Error> {
    crate::state_backends::azure_blob(account, container, blob).await
}

#[cfg(not(feature = "azure"))]
async fn azure_backend(_: &str, _: &str, _: &str) -> Result<Arc<dyn StateBackend>, Error> {
    Err(Error::Config("azblob:// state needs the `azure` feature of stackup".into()))
}

#[cfg(feature = "r2")]
async fn r2_backend(bucket: &str, key: &str) -> Result<Arc<dyn StateBackend>, Error> {
    crate::state_backends::r2(bucket, key).await
}

#[cfg(not(feature = "r2"))]
async fn r2_backend(_: &str, _: &str) -> Result<Arc<dyn StateBackend>, Error> {
    Err(Error::Config("r2:// state needs the `r2` feature of stackup".into()))
}

/// Prints events as they happen (human lines, or JSON lines with `--json`) until the returned
/// handle is dropped or aborted.
pub fn progress(engine: &Engine, json: bool) -> tokio::task::JoinHandle<()> {
    let mut events = engine.events();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if json {
                if let Ok(line) = serde_json::to_string(&e) {
                    eprintln!("{line}");
                }
                continue;
            }
            match &e.kind {
                EventKind::ResourceStarted { address, action } => eprintln!("{} {address}: started", action.symbol()),
                EventKind::ResourceProgress { address, message } => eprintln!("  {address}: {message}"),
                EventKind::ResourceFinished { address, action, elapsed_ms } => {
                    eprintln!("{} {address}: done in {:.1} s", action.symbol(), *elapsed_ms as f64 / 1000.0)
                }
                EventKind::ResourceFailed { address, error, .. } => eprintln!("! {address}: {error}"),
                EventKind::ResourceSkipped { address, because } => eprintln!("  {address}: skipped ({because} failed)"),
                EventKind::DriftDetected { address, detail } => eprintln!("  {address}: drift: {detail}"),
                EventKind::Summary { done, failed, skipped, elapsed_ms } => eprintln!(
                    "{}; {failed} failed, {skipped} skipped ({:.1} s)",
                    done.done_text(),
                    *elapsed_ms as f64 / 1000.0
                ),
                EventKind::Cancelled => eprintln!("cancelled; state saved"),
                _ => {}
            }
        }
    })
}

fn print_plan(plan: &Plan, json: bool, offline: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&plan.to_json()).unwrap_or_default());
    } else {
        if offline {
            println!("offline plan: no credentials used, planned against an empty state (nothing exists yet)\n");
        }
        println!("{}", plan.render());
    }
}

/// Runs the command against `engine`. Exit codes: 0 success, 1 failure, 2 a plan with changes
/// when `plan --detailed-exitcode` is given (Terraform's convention).
pub async fn run(cli: &Cli, engine: &Engine) -> Result<ExitCode, Error> {
    let progress = progress(engine, cli.json);
    let result = run_inner(cli, engine).await;
    // Let the last events print.
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    progress.abort();
    result
}

async fn run_inner(cli: &Cli, engine: &Engine) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Plan => {
            let plan = engine.plan().await?;
            print_plan(&plan, cli.json, cli.offline);
            if cli.option("detailed-exitcode").is_some_and(|v| v == "true") && !plan.is_empty() {
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply => {
            let plan = engine.plan().await?;
            print_plan(&plan, cli.json, false);
            let report = engine.apply(&plan).await?;
            if !report.is_success() {
                for f in &report.failed {
                    eprintln!("error: {}: {}", f.address, f.error);
                }
                return Ok(ExitCode::FAILURE);
            }
            print_outputs(engine, cli.json, false).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Destroy => {
            let plan = engine.plan_destroy().await?;
            print_plan(&plan, cli.json, false);
            let report = engine.apply(&plan).await?;
            Ok(if report.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Output => {
            print_outputs(engine, cli.json, cli.show_secrets).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the outputs in state: secrets as `(sensitive)` unless `show_secrets`.
pub async fn print_outputs(engine: &Engine, json: bool, show_secrets: bool) -> Result<(), Error> {
    let outputs = engine.outputs().await?;
    let shown: serde_json::Map<String, serde_json::Value> = outputs
        .into_iter()
        .map(|(k, v)| (k, if show_secrets { reveal(&v) } else { stackup_core::secret::redact_json(&v) }))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    } else {
        for (addr, v) in &shown {
            println!("{addr} = {}", serde_json::to_string_pretty(v).unwrap_or_default());
        }
    }
    Ok(())
}

fn reveal(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    if stackup_core::secret::is_secret_value(v) {
        return v[stackup_core::secret::SECRET_MARKER].clone();
    }
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, c)| (k.clone(), reveal(c))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(reveal).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_commands_states_and_options() {
        let c =
            Cli::parse(&args("apply --state azblob://acct/tfstate/blossom/state.json --json --vm-size Standard_B2s"))
                .unwrap();
        assert_eq!(c.command, Command::Apply);
        assert!(c.json);
        assert_eq!(
            c.state,
            Some(StateLocation::AzureBlob {
                account: "acct".into(),
                container: "tfstate".into(),
                blob: "blossom/state.json".into()
            })
        );
        assert_eq!(c.option("vm-size"), Some("Standard_B2s"));
        let c = Cli::parse(&args("plan --state r2://bucket/a/b.json --offline")).unwrap();
        assert_eq!(c.state, Some(StateLocation::R2 { bucket: "bucket".into(), key: "a/b.json".into() }));
        assert!(c.offline);
        assert_eq!(Cli::parse(&[]).unwrap().command, Command::Plan);
        let c = Cli::parse(&args("apply --replace oci/vm --replace tailnet/ci_key")).unwrap();
        assert_eq!(c.replace, ["oci/vm", "tailnet/ci_key"]);
        assert!(c.extra.is_empty());
        assert_eq!(
            Cli::parse(&args("--state ./s.json output")).unwrap().state,
            Some(StateLocation::File("./s.json".into()))
        );
        for bad in [
            "apply --offline",
            "plan --state",
            "plan --state azblob://a/b",
            "plan --state s3://x/y",
            "frobnicate",
            "apply --replace",
        ] {
            assert!(Cli::parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
