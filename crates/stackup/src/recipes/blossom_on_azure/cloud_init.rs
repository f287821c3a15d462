//! The first-boot document of the Blossom VM: sections 5 (Azure Files mount) and 8 (systemd
//! service) of seed 000, as a [`CloudConfig`].
//!
//! | document step | cloud-init |
//! |---|---|
//! | 5.1 `apt update && apt upgrade -y`, `apt install -y cifs-utils` | `package_update`, `package_upgrade`, `packages` |
//! | 5.2 `/etc/smbcredentials/blossomdata.cred` (`username=`, `password=`), `chmod 600` | `write_files` (`root:root`, `0600`) |
//! | 5.3 `mkdir -p /mnt/blossom/data`, `chown -R $USER:$USER /mnt/blossom` | `runcmd` |
//! | 5.4 fstab line, `mount -a`, `df -h` | `mounts` + `runcmd` |
//! | 8.1 `/etc/systemd/system/blossom.service` | `write_files` (`0644`) |
//! | 8.2 `daemon-reload`, `enable`, `start` | `runcmd` (`systemctl enable --now`) |

use stackup_core::Error;
use stackup_core::cloud_init::{CloudConfig, SystemdUnit, Text};

/// The document's fstab options (section 5.4), with the credentials file substituted.
pub fn document_mount_options(credentials_file: &str) -> String {
    format!(
        "_netdev,nofail,credentials={credentials_file},dir_mode=0755,file_mode=0644,serverino,nosharesock,actimeo=30,mfsymlinks"
    )
}

/// The document's `ExecStart` command (section 8.1) for this admin user and port.
pub fn document_exec_start(admin: &str, port: u16) -> String {
    let dir = format!("/home/{admin}/ocaml-nostr-blossom");
    format!(
        "/bin/bash -lc \"eval $(opam env) && dune exec bin/main.exe -- --port {port} --cert {dir}/cert.pem --key {dir}/key.pem\""
    )
}

/// The systemd unit name of the mount at `path` (`systemd-escape --path --suffix=mount`):
/// `/mnt/blossom/data` is `mnt-blossom-data.mount`.
pub fn mount_unit_name(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return "-.mount".to_owned();
    }
    let mut out = String::new();
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        for (j, b) in seg.bytes().enumerate() {
            let c = b as char;
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' || (c == '.' && j > 0) {
                out.push(c);
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push_str(".mount");
    out
}

/// Checks a path written into fstab, a unit file or a shell line: absolute, made of letters,
/// digits, `_`, `.`, `-` and single `/`, without `..`.
pub fn validate_plain_path(field: &str, path: &str) -> Result<(), Error> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path.contains("//")
        && !path.split('/').any(|s| s == "..")
        && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("`{path}` must be an absolute path of letters, digits, '_', '.', '-' and '/' (no spaces, no `..`)"),
        ))
    }
}

/// Everything the document's first boot needs, resolved from the recipe's settings.
#[derive(Debug, Clone)]
pub struct BootSettings<'a> {
    /// The admin user (`azureuser`): owner of the mount point, `User=` of the service.
    pub admin: &'a str,
    /// `/mnt/blossom/data`.
    pub mount_point: &'a str,
    /// `/etc/smbcredentials/blossomdata.cred`.
    pub credentials_file: &'a str,
    /// The fstab options.
    pub mount_options: &'a str,
    /// `blossom.service`.
    pub service_name: &'a str,
    /// The `ExecStart=` command line.
    pub exec_start: &'a str,
    /// `WorkingDirectory=`.
    pub working_directory: &'a str,
    /// `OPAMSWITCH=` (none: the line is left out).
    pub opam_switch: Option<&'a str>,
    /// `Documentation=` (none: the line is left out).
    pub documentation_url: Option<&'a str>,
    /// `apt upgrade -y` on first boot.
    pub upgrade_packages: bool,
}

/// The directory `chown -R` is run on before the mount (section 5.3 chowns `/mnt/blossom`, the
/// mount point's parent); the mount point itself when its parent is a top-level directory.
pub fn chown_root(mount_point: &str) -> &str {
    match mount_point.rsplit_once('/') {
        Some((parent, _)) if parent.matches('/').count() >= 2 => parent,
        _ => mount_point,
    }
}

/// The text of the service unit (section 8.1), with the mount unit it requires.
pub fn service_unit_text(s: &BootSettings<'_>) -> String {
    let mount_unit = mount_unit_name(s.mount_point);
    let mut u = String::new();
    u.push_str("[Unit]\nDescription=OCaml Blossom Server - Nostr File Storage\n");
    if let Some(url) = s.documentation_url {
        u.push_str(&format!("Documentation={url}\n"));
    }
    u.push_str(&format!(
        "After=network-online.target {mount_unit}\nWants=network-online.target\nRequires={mount_unit}\n"
    ));
    u.push_str(&format!(
        "\n[Service]\nType=simple\nUser={admin}\nGroup={admin}\nWorkingDirectory={wd}\nEnvironment=\"HOME=/home/{admin}\"\n",
        admin = s.admin,
        wd = s.working_directory
    ));
    if let Some(switch) = s.opam_switch {
        u.push_str(&format!("Environment=\"OPAMSWITCH={switch}\"\n"));
    }
    u.push_str(&format!("\n# Load the opam environment and start the server\nExecStart={}\n", s.exec_start));
    u.push_str("\n# Restart policy\nRestart=on-failure\nRestartSec=10\n");
    u.push_str("\n# Resource limits\nLimitNOFILE=65536\n");
    u.push_str(&format!(
        "\n# Security\nNoNewPrivileges=true\nProtectSystem=strict\nProtectHome=read-only\nReadWritePaths={}\n",
        s.mount_point
    ));
    u.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    u
}

/// The cloud-init document. `account` and `key` are the storage account name and the key the
/// mount uses (outputs of the storage account, or literal values in tests); `share_path` is the
/// SMB path (`//{account}.file.core.windows.net/blossom-data`).
pub fn cloud_config(s: &BootSettings<'_>, account: Text, key: Text, share_path: Text) -> CloudConfig {
    let mp = s.mount_point;
    CloudConfig::new()
        .upgrade_packages(s.upgrade_packages)
        .package("cifs-utils")
        .file(
            s.credentials_file,
            Text::concat([Text::from("username="), account, Text::from("\npassword="), key, Text::from("\n")]),
            "root:root",
            "0600",
        )
        .mount(share_path, mp, "cifs", s.mount_options)
        .command(["mkdir", "-p", mp])
        // Before the share is mounted, as in section 5.3 (a CIFS mount cannot be chowned).
        .shell(format!("mountpoint -q {mp} || chown -R {a}:{a} {root}", a = s.admin, root = chown_root(mp)))
        // cloud-init's own `mount -a` runs before cifs-utils is installed: mount now.
        .command(["systemctl", "daemon-reload"])
        .shell(format!("mountpoint -q {mp} || mount {mp}"))
        .command(["df", "-h", mp])
        .unit(SystemdUnit::new(s.service_name, service_unit_text(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_units_are_named_as_systemd_escapes_paths() {
        assert_eq!(mount_unit_name("/mnt/blossom/data"), "mnt-blossom-data.mount");
        assert_eq!(mount_unit_name("/srv/my-data"), "srv-my\\x2ddata.mount");
        assert_eq!(mount_unit_name("/mnt/.hidden"), "mnt-\\x2ehidden.mount");
        assert_eq!(mount_unit_name("/"), "-.mount");
    }

    #[test]
    fn chown_targets_the_parent_like_the_document() {
        assert_eq!(chown_root("/mnt/blossom/data"), "/mnt/blossom");
        assert_eq!(chown_root("/data"), "/data");
        assert_eq!(chown_root("/mnt/data"), "/mnt/data");
    }

    #[test]
    fn plain_paths_only() {
        assert!(validate_plain_path("p", "/mnt/blossom/data").is_ok());
        for bad in ["mnt/x", "/mnt/a b", "/mnt/../etc", "/mnt/x/", "/", "/mnt//x", "/mnt/$(x)"] {
            assert!(validate_plain_path("p", bad).is_err(), "{bad}");
        }
    }
}
