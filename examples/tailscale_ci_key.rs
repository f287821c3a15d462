//! Mints the Tailscale auth key a CI pipeline joins the tailnet with (`TS_AUTHKEY`), the way
//! the EgoGraph deploy document sets it up by hand in the admin console: a **reusable**,
//! **ephemeral** (runners vanish from the tailnet when the job ends), **preauthorized**,
//! **tagged** key with an expiry, renewed by the first run inside the renewal margin instead of
//! after it has already expired.
//!
//! ```sh
//! # plan only (no credentials needed):
//! cargo run -p stackup-tailscale --example tailscale_ci_key
//! # apply (an API access token, or an OAuth client with the auth_keys scope and tag:ci):
//! TAILSCALE_API_KEY=tskey-api-… cargo run -p stackup-tailscale --example tailscale_ci_key -- --tag tag:ci
//! gh secret set TS_AUTHKEY < .stackup/TS_AUTHKEY
//! ```
//!
//! State is kept in `.stackup/tailscale_ci_key.state.json`, so a second run changes nothing
//! until the key enters its renewal margin. The key itself is written (mode 0600) to
//! `--key-file` only by the run that creates it; state keeps it only encrypted, when
//! `STACKUP_STATE_KEY` is set. Exit codes: 0 done, 1 apply failed, 2 bad input or configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackup_core::{Engine, LocalBackend, MemoryBackend, Secret, Stack};
use stackup_tailscale::{AuthKeySpec, AuthKeys, TailscaleClient};

const HELP: &str = "\
tailscale_ci_key: mint the tagged, ephemeral auth key CI joins the tailnet with (TS_AUTHKEY)

USAGE: tailscale_ci_key [OPTIONS]

OPTIONS:
  --tag TAG               tag for CI runners, repeatable [default: tag:ci]
  --expiry-days N         key lifetime, 1..=90 [default: 30]
  --renew-before-days N   replace the key when it expires within N days [default: 7]
  --description TEXT      key description, <= 50 letters, digits, hyphens, spaces [default: github actions ci]
  --single-use            not reusable (one runner only)
  --state PATH            state file [default: .stackup/tailscale_ci_key.state.json]
  --key-file PATH         where a newly created key is written, mode 0600 [default: .stackup/TS_AUTHKEY]
  --plan-only             plan, change nothing
  --destroy               revoke the key and forget it
  -h, --help              this help

ENVIRONMENT:
  TAILSCALE_API_KEY, or TAILSCALE_OAUTH_CLIENT_ID + TAILSCALE_OAUTH_CLIENT_SECRET [+ TAILSCALE_OAUTH_SCOPES]
  TAILSCALE_TAILNET [default: -], TAILSCALE_BASE_URL [default: https://api.tailscale.com]
  STACKUP_STATE_KEY (base64, 32 bytes): keep the key encrypted in state
";

struct Args {
    tags: Vec<String>,
    expiry_days: u64,
    renew_before_days: u64,
    description: String,
    reusable: bool,
    state: PathBuf,
    key_file: PathBuf,
    plan_only: bool,
    destroy: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        tags: vec![],
        expiry_days: 30,
        renew_before_days: 7,
        description: "github actions ci".into(),
        reusable: true,
        state: ".stackup/tailscale_ci_key.state.json".into(),
        key_file: ".stackup/TS_AUTHKEY".into(),
        plan_only: false,
        destroy: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let days = |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: `{v}` is not a number"));
        match arg.as_str() {
            "--tag" => a.tags.push(value("--tag")?),
            "--expiry-days" => a.expiry_days = days("--expiry-days", value("--expiry-days")?)?,
            "--renew-before-days" => a.renew_before_days = days("--renew-before-days", value("--renew-before-days")?)?,
            "--description" => a.description = value("--description")?,
            "--single-use" => a.reusable = false,
            "--state" => a.state = value("--state")?.into(),
            "--key-file" => a.key_file = value("--key-file")?.into(),
            "--plan-only" => a.plan_only = true,
            "--destroy" => a.destroy = true,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    if a.tags.is_empty() {
        a.tags.push("tag:ci".into());
    }
    Ok(a)
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn write_private(path: &PathBuf, secret: &Secret) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(path)?, secret.expose().as_bytes())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return usage_error(e),
    };
    let client = match TailscaleClient::builder().from_env().build_offline_ok() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let online = client.has_credentials() && !args.plan_only;

    let spec = AuthKeySpec::new()
        .reusable(args.reusable)
        .ephemeral(true)
        .preauthorized(true)
        .tags(args.tags.clone())
        .expiry(Duration::from_secs(args.expiry_days.saturating_mul(86_400)))
        .renew_before(Duration::from_secs(args.renew_before_days.saturating_mul(86_400)))
        .description(args.description.clone());

    // The new key, handed over at the one moment it exists in memory.
    let minted: Arc<Mutex<Option<(Secret, String)>>> = Arc::default();
    let slot = minted.clone();
    let keys = AuthKeys::new(client.clone()).on_create(move |_address, out| {
        if let Some(k) = &out.key {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((k.clone(), out.expires.clone()));
        }
    });
    let mut stack = Stack::new("tailscale-ci");
    if let Err(e) = stack.add("ci_key", keys, spec) {
        return usage_error(e);
    }

    if !online {
        let why = if args.plan_only {
            "--plan-only"
        } else {
            "no Tailscale credentials (TAILSCALE_API_KEY, or TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET)"
        };
        println!("{why}: planning offline against an empty state; nothing will be created");
        let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
        return match engine.plan().await {
            Ok(plan) => {
                println!("{}", plan.render());
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(e),
        };
    }

    let engine = match Engine::from_env(stack, Arc::new(LocalBackend::new(&args.state))) {
        Ok(e) => e,
        Err(e) => return usage_error(e),
    };
    if args.destroy {
        return match engine.destroy().await.and_then(|r| r.into_result()) {
            Ok(r) => {
                println!("destroyed: {}", r.summary);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    let plan = match engine.plan().await {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    println!("{}", plan.render());
    if let Err(e) = engine.apply(&plan).await.and_then(|r| r.into_result()) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }

    let taken = minted.lock().unwrap_or_else(|p| p.into_inner()).take();
    match taken {
        Some((key, expires)) => {
            if let Err(e) = write_private(&args.key_file, &key) {
                eprintln!("error: writing {}: {e}", args.key_file.display());
                return ExitCode::from(1);
            }
            let file = args.key_file.display();
            println!("\nnew auth key written to {file} (mode 0600); it expires {expires}.");
            println!("store it as the GitHub Actions secret TS_AUTHKEY, then delete the file:");
            println!("  gh secret set TS_AUTHKEY < {file} && rm {file}");
            println!("and join the tailnet in the workflow with:");
            println!("  - uses: tailscale/github-action@v3");
            println!("    with:");
            println!("      authkey: ${{{{ secrets.TS_AUTHKEY }}}}");
            println!("      tags: {}", args.tags.join(","));
        }
        None => {
            let expires = engine
                .outputs()
                .await
                .ok()
                .and_then(|o| o.get("ci_key").and_then(|v| v["expires"].as_str().map(str::to_owned)))
                .unwrap_or_else(|| "?".into());
            println!(
                "\nthe key from an earlier run is still valid (expires {expires}); it is renewed by the first run \
                 within {} days of that. TS_AUTHKEY needs no change.",
                args.renew_before_days
            );
        }
    }
    ExitCode::SUCCESS
}
