//! A cloud-init `#cloud-config` document builder, shared by every VM provider (Azure custom
//! data, OCI user data).
//!
//! Values may reference other resources' outputs (a storage key, an auth key): the document
//! renders to an [`Input<String>`] template that the engine completes at apply time, and that
//! stays sensitive when a secret flows into it. Plans show it with `${resource.output}`
//! placeholders.
//!
//! ```
//! use stackup_core::cloud_init::{CloudConfig, SystemdUnit};
//! let doc = CloudConfig::new()
//!     .package("cifs-utils")
//!     .file("/etc/smbcredentials/acct.cred", "username=acct\n", "root:root", "0600")
//!     .mount("//acct.file.core.windows.net/share", "/mnt/data", "cifs", "_netdev,nofail")
//!     .command(["mkdir", "-p", "/mnt/data"])
//!     .unit(SystemdUnit::new("app.service", "[Unit]\nDescription=app\n"));
//! doc.validate().unwrap();
//! assert!(doc.preview().starts_with("#cloud-config\n"));
//! ```

use crate::error::Error;
use crate::input::{Input, OutputRef, TemplatePart};

/// A piece of text: literal, sensitive, or taken from another resource's outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Text(Vec<Part>);

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Secret(String),
    Ref(OutputRef),
}

impl Text {
    /// Text made of parts: `Text::concat(["username=", acct.output("name")])`.
    pub fn concat<I, P>(parts: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Text>,
    {
        Text(parts.into_iter().flat_map(|p| p.into().0).collect())
    }

    fn is_single_line_literal(&self) -> bool {
        self.0.iter().all(|p| matches!(p, Part::Lit(s) if !s.contains('\n')))
    }

    fn literal_len(&self) -> usize {
        self.0.iter().map(|p| if let Part::Lit(s) | Part::Secret(s) = p { s.len() } else { 44 }).sum()
    }

    fn lits(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| if let Part::Lit(s) = p { Some(s.as_str()) } else { None })
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(vec![Part::Lit(s.to_owned())])
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(vec![Part::Lit(s)])
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Text(vec![Part::Lit(s.clone())])
    }
}

impl From<OutputRef> for Text {
    fn from(r: OutputRef) -> Self {
        Text(vec![Part::Ref(r)])
    }
}

impl From<crate::Secret> for Text {
    fn from(s: crate::Secret) -> Self {
        Text(vec![Part::Secret(s.expose().to_owned())])
    }
}

impl From<Input<String>> for Text {
    fn from(i: Input<String>) -> Self {
        match i {
            Input::Value(v) => Text(vec![Part::Lit(v)]),
            Input::Sensitive(v) => Text(vec![Part::Secret(v)]),
            Input::Ref(r) => Text(vec![Part::Ref(r)]),
            Input::Template(parts) => Text(
                parts
                    .into_iter()
                    .map(|p| match p {
                        TemplatePart::Text(t) => Part::Lit(t),
                        TemplatePart::Ref(r) => Part::Ref(r),
                        TemplatePart::Sensitive(t) => Part::Secret(t),
                    })
                    .collect(),
            ),
        }
    }
}

/// A file written on first boot.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteFile {
    /// Absolute path.
    pub path: String,
    /// Content.
    pub content: Text,
    /// `user:group`.
    pub owner: String,
    /// Octal mode, four digits (`0600` for credentials).
    pub permissions: String,
    /// Write after packages are installed and users created (so `owner` exists).
    pub defer: bool,
}

/// A systemd unit installed, enabled and started on first boot.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemdUnit {
    /// Unit file name (`blossom.service`).
    pub name: String,
    /// Unit file content.
    pub content: Text,
    /// Start it now (`systemctl enable --now`) rather than only enable it.
    pub start: bool,
}

impl SystemdUnit {
    /// A unit that is enabled and started.
    pub fn new(name: impl Into<String>, content: impl Into<Text>) -> Self {
        SystemdUnit { name: name.into(), content: content.into(), start: true }
    }
}

/// A command: argv (exec'd without a shell) or a shell line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run without a shell.
    Argv(Vec<Text>),
    /// Run with `sh -c`.
    Shell(Text),
}

/// A `#cloud-config` document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudConfig {
    package_update: bool,
    package_upgrade: bool,
    packages: Vec<String>,
    files: Vec<WriteFile>,
    mounts: Vec<[Text; 6]>,
    commands: Vec<Command>,
    units: Vec<SystemdUnit>,
}

/// The largest custom data Azure accepts: 64 KiB before base64.
pub const AZURE_CUSTOM_DATA_MAX_BYTES: usize = 65_535;
/// OCI limits all instance metadata together to 32,000 bytes; user data is base64 inside it.
pub const OCI_USER_DATA_MAX_BYTES: usize = 24_000;

impl CloudConfig {
    /// An empty document that updates the package index before installing packages.
    pub fn new() -> Self {
        CloudConfig { package_update: true, ..Default::default() }
    }

    /// Also upgrade installed packages on first boot.
    pub fn upgrade_packages(mut self, yes: bool) -> Self {
        self.package_upgrade = yes;
        self
    }

    /// Installs a package.
    pub fn package(mut self, name: &str) -> Self {
        if !self.packages.iter().any(|p| p == name) {
            self.packages.push(name.to_owned());
        }
        self
    }

    /// Writes a file (`owner` as `user:group`, `permissions` as four octal digits).
    pub fn file(mut self, path: &str, content: impl Into<Text>, owner: &str, permissions: &str) -> Self {
        self.files.push(WriteFile {
            path: path.to_owned(),
            content: content.into(),
            owner: owner.to_owned(),
            permissions: permissions.to_owned(),
            defer: owner.split(':').next() != Some("root"),
        });
        self
    }

    /// Adds an fstab entry with dump 0 and pass 0 (cloud-init creates the mount point and mounts it).
    pub fn mount(mut self, spec: impl Into<Text>, mount_point: &str, fs_type: &str, options: impl Into<Text>) -> Self {
        self.mounts.push([spec.into(), mount_point.into(), fs_type.into(), options.into(), "0".into(), "0".into()]);
        self
    }

    /// Runs a command (argv, no shell) at the end of first boot, in order.
    pub fn command<I, P>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Text>,
    {
        self.commands.push(Command::Argv(argv.into_iter().map(Into::into).collect()));
        self
    }

    /// Runs a shell line at the end of first boot, in order.
    pub fn shell(mut self, line: impl Into<Text>) -> Self {
        self.commands.push(Command::Shell(line.into()));
        self
    }

    /// Installs a systemd unit; it is enabled (and started) after every command has run.
    pub fn unit(mut self, unit: SystemdUnit) -> Self {
        self.units.push(unit);
        self
    }

    /// Checks the document: absolute paths, `user:group` owners, four-digit octal modes, unit
    /// names, package names. The error names the item and the rule.
    pub fn validate(&self) -> Result<(), Error> {
        for p in &self.packages {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || "+-.:=_~".contains(c)) {
                return Err(Error::invalid(format!("cloud_init.packages[{p}]"), "not a valid package name"));
            }
        }
        for f in &self.files {
            let field = format!("cloud_init.write_files[{}]", f.path);
            if !f.path.starts_with('/') || f.path.contains("..") || f.path.contains('\n') {
                return Err(Error::invalid(field, "path must be absolute, without `..` or newlines"));
            }
            let mode_ok = f.permissions.len() == 4
                && f.permissions.starts_with('0')
                && f.permissions.chars().all(|c| ('0'..='7').contains(&c));
            if !mode_ok {
                return Err(Error::invalid(field, "permissions must be four octal digits, such as 0600"));
            }
            let owner_ok = f.owner.split(':').count() == 2
                && f.owner
                    .split(':')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
            if !owner_ok {
                return Err(Error::invalid(field, "owner must be `user:group`"));
            }
        }
        for m in &self.mounts {
            let point = m[1].lits().collect::<String>();
            if !point.starts_with('/') {
                return Err(Error::invalid(
                    format!("cloud_init.mounts[{point}]"),
                    "mount point must be an absolute path",
                ));
            }
            if m.iter().any(|t| t.lits().any(|s| s.chars().any(char::is_whitespace))) {
                return Err(Error::invalid(
                    format!("cloud_init.mounts[{point}]"),
                    "fstab fields cannot contain spaces",
                ));
            }
        }
        for u in &self.units {
            let ok =
                [".service", ".mount", ".timer", ".socket", ".path", ".target"].iter().any(|s| u.name.ends_with(s))
                    && u.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
            if !ok {
                return Err(Error::invalid(format!("cloud_init.units[{}]", u.name), "not a valid systemd unit name"));
            }
        }
        Ok(())
    }

    /// Validates and checks the rendered size against `max_bytes` (referenced values counted
    /// at 44 bytes, the length of a base64 storage key).
    pub fn validate_size(&self, max_bytes: usize, field: &str) -> Result<(), Error> {
        self.validate()?;
        let size: usize = self.parts().iter().map(Text::literal_len).sum();
        if size > max_bytes {
            return Err(Error::invalid(
                field,
                format!("cloud-init document is {size} bytes; the limit is {max_bytes}"),
            ));
        }
        Ok(())
    }

    /// The document as an [`Input`]: a plain value when nothing references another resource,
    /// otherwise a template the engine completes at apply time.
    pub fn render(&self) -> Input<String> {
        let parts: Vec<Part> = self.parts().into_iter().flat_map(|t| t.0).collect();
        let sensitive = parts.iter().any(|p| matches!(p, Part::Secret(_)));
        let has_refs = parts.iter().any(|p| matches!(p, Part::Ref(_)));
        if !has_refs {
            let s: String = parts
                .into_iter()
                .map(|p| match p {
                    Part::Lit(s) | Part::Secret(s) => s,
                    Part::Ref(_) => unreachable!("no refs"),
                })
                .collect();
            return if sensitive { Input::Sensitive(s) } else { Input::Value(s) };
        }
        let mut out: Vec<TemplatePart> = vec![];
        for p in parts {
            match p {
                Part::Lit(s) => match out.last_mut() {
                    Some(TemplatePart::Text(t)) => t.push_str(&s),
                    _ => out.push(TemplatePart::Text(s)),
                },
                Part::Secret(s) => out.push(TemplatePart::Sensitive(s)),
                Part::Ref(r) => out.push(TemplatePart::Ref(r)),
            }
        }
        Input::Template(out)
    }

    /// The document as text, with `${resource.output}` where a value is known only at apply
    /// time and `(sensitive)` for literal secrets: for plans and reviews.
    pub fn preview(&self) -> String {
        self.parts()
            .into_iter()
            .flat_map(|t| t.0)
            .map(|p| match p {
                Part::Lit(s) => s,
                Part::Secret(s) => redact_keeping_lines(&s),
                Part::Ref(r) => format!("${{{r}}}"),
            })
            .collect()
    }

    /// The document as a sequence of text pieces.
    fn parts(&self) -> Vec<Text> {
        let mut out: Vec<Text> = vec!["#cloud-config\n".into()];
        let mut lit = |s: String| out.push(Text::from(s));
        if self.package_update {
            lit("package_update: true\n".into());
        }
        if self.package_upgrade {
            lit("package_upgrade: true\n".into());
        }
        if !self.packages.is_empty() {
            lit("packages:\n".into());
            for p in &self.packages {
                lit(format!("  - {}\n", quote(p)));
            }
        }
        let mut files = self.files.clone();
        for u in &self.units {
            files.push(WriteFile {
                path: format!("/etc/systemd/system/{}", u.name),
                content: u.content.clone(),
                owner: "root:root".into(),
                permissions: "0644".into(),
                defer: false,
            });
        }
        if !files.is_empty() {
            out.push("write_files:\n".into());
            for f in &files {
                out.push(
                    format!(
                        "  - path: {}\n    owner: {}\n    permissions: {}\n",
                        quote(&f.path),
                        quote(&f.owner),
                        quote(&f.permissions)
                    )
                    .into(),
                );
                if f.defer {
                    out.push("    defer: true\n".into());
                }
                out.push("    content: |\n".into());
                out.extend(indent_block(&f.content, "      "));
            }
        }
        if !self.mounts.is_empty() {
            out.push("mounts:\n".into());
            for m in &self.mounts {
                out.push("  - [".into());
                for (i, t) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(", ".into());
                    }
                    out.extend(quoted_text(t));
                }
                out.push("]\n".into());
            }
        }
        let mut commands = self.commands.clone();
        if !self.units.is_empty() {
            commands.push(Command::Argv(vec!["systemctl".into(), "daemon-reload".into()]));
            for u in &self.units {
                let mut argv: Vec<Text> = vec!["systemctl".into(), "enable".into()];
                if u.start {
                    argv.push("--now".into());
                }
                argv.push(u.name.as_str().into());
                commands.push(Command::Argv(argv));
            }
        }
        if !commands.is_empty() {
            out.push("runcmd:\n".into());
            for c in &commands {
                match c {
                    Command::Argv(argv) => {
                        out.push("  - [".into());
                        for (i, a) in argv.iter().enumerate() {
                            if i > 0 {
                                out.push(", ".into());
                            }
                            out.extend(quoted_text(a));
                        }
                        out.push("]\n".into());
                    }
                    Command::Shell(line) => {
                        out.push("  - ".into());
                        out.extend(quoted_text(line));
                        out.push("\n".into());
                    }
                }
            }
        }
        out
    }
}

/// Secret text for previews: one `(sensitive)` in place of the whole secret, keeping its leading
/// indentation and a final line break so the document around it still reads right. The number
/// of lines a secret has is not shown.
fn redact_keeping_lines(s: &str) -> String {
    let body = s.trim_start_matches([' ', '\t']);
    let indent = &s[..s.len() - body.len()];
    let end = if s.ends_with('\n') { "\n" } else { "" };
    if body.trim().is_empty() { s.to_owned() } else { format!("{indent}(sensitive){end}") }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A double-quoted scalar around text with references: literal parts escaped; referenced
/// values (names, ids, keys: single-line, no quotes) inserted as they are.
fn quoted_text(t: &Text) -> Vec<Text> {
    if t.is_single_line_literal() {
        return vec![Text::from(quote(&t.lits().collect::<String>()))];
    }
    let mut out = vec![Text::from("\"")];
    for p in &t.0 {
        match p {
            Part::Lit(s) => {
                let q = quote(s);
                out.push(Text::from(q[1..q.len() - 1].to_owned()));
            }
            other => out.push(Text(vec![other.clone()])),
        }
    }
    out.push("\"".into());
    out
}

/// Content as a YAML literal block, each line indented.
fn indent_block(t: &Text, indent: &str) -> Vec<Text> {
    let mut out = vec![Text::from(indent)];
    let mut at_line_start = false;
    for p in &t.0 {
        match p {
            Part::Lit(s) | Part::Secret(s) => {
                let secret = matches!(p, Part::Secret(_));
                let mut buf = String::new();
                for ch in s.chars() {
                    if at_line_start {
                        buf.push_str(indent);
                        at_line_start = false;
                    }
                    buf.push(ch);
                    if ch == '\n' {
                        at_line_start = true;
                    }
                }
                out.push(Text(vec![if secret { Part::Secret(buf) } else { Part::Lit(buf) }]));
            }
            Part::Ref(r) => {
                if at_line_start {
                    out.push(indent.into());
                    at_line_start = false;
                }
                out.push(Text(vec![Part::Ref(r.clone())]));
            }
        }
    }
    if !at_line_start {
        out.push("\n".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CloudConfig {
        CloudConfig::new()
            .package("cifs-utils")
            .file(
                "/etc/smbcredentials/acct.cred",
                Text::concat([
                    Text::from("username=acct\npassword="),
                    OutputRef::new("acct", "key1").into(),
                    "\n".into(),
                ]),
                "root:root",
                "0600",
            )
            .mount(
                Text::concat([Text::from("//"), OutputRef::new("acct", "name").into(), "/share".into()]),
                "/mnt/data",
                "cifs",
                "_netdev,nofail,dir_mode=0755",
            )
            .command(["mkdir", "-p", "/mnt/data"])
            .shell("echo 'hi \"there\"' > /tmp/x")
            .unit(SystemdUnit::new("app.service", "[Unit]\nRequires=mnt-data.mount\n"))
    }

    #[test]
    fn renders_yaml_with_references_as_template() {
        let doc = sample();
        doc.validate().unwrap();
        let preview = doc.preview();
        let expected = "#cloud-config
package_update: true
packages:
  - \"cifs-utils\"
write_files:
  - path: \"/etc/smbcredentials/acct.cred\"
    owner: \"root:root\"
    permissions: \"0600\"
    content: |
      username=acct
      password=${acct.key1}
  - path: \"/etc/systemd/system/app.service\"
    owner: \"root:root\"
    permissions: \"0644\"
    content: |
      [Unit]
      Requires=mnt-data.mount
mounts:
  - [\"//${acct.name}/share\", \"/mnt/data\", \"cifs\", \"_netdev,nofail,dir_mode=0755\", \"0\", \"0\"]
runcmd:
  - [\"mkdir\", \"-p\", \"/mnt/data\"]
  - \"echo 'hi \\\"there\\\"' > /tmp/x\"
  - [\"systemctl\", \"daemon-reload\"]
  - [\"systemctl\", \"enable\", \"--now\", \"app.service\"]
";
        assert_eq!(preview, expected);
        match doc.render() {
            Input::Template(parts) => {
                assert_eq!(parts.iter().filter(|p| matches!(p, TemplatePart::Ref(_))).count(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn literal_secrets_make_the_document_sensitive() {
        let doc = CloudConfig::new().file("/etc/k", crate::Secret::new("hunter22"), "root:root", "0600");
        let r = doc.render();
        assert!(r.is_sensitive());
        assert!(r.known().unwrap().contains("      hunter22\n"));
        assert!(!doc.preview().contains("hunter22"));
        let two = CloudConfig::new()
            .file("/etc/k", Text::concat([Text::from(crate::Secret::new("hunter22\n"))]), "root:root", "0600")
            .file("/etc/j", "plain\n", "root:root", "0644");
        let p = two.preview();
        assert!(p.contains("      (sensitive)\n  - path: \"/etc/j\""), "{p}");
    }

    #[test]
    fn validation_names_the_rule() {
        let bad = [
            CloudConfig::new().file("etc/x", "", "root:root", "0600"),
            CloudConfig::new().file("/etc/x", "", "root", "0600"),
            CloudConfig::new().file("/etc/x", "", "root:root", "600"),
            CloudConfig::new().file("/etc/x", "", "root:root", "0800"),
            CloudConfig::new().mount("//a/b", "mnt", "cifs", "x"),
            CloudConfig::new().mount("//a/b", "/mnt", "cifs", "a b"),
            CloudConfig::new().unit(SystemdUnit::new("bad name", "")),
            CloudConfig::new().package("rm -rf"),
        ];
        for doc in bad {
            assert!(matches!(doc.validate(), Err(Error::InvalidInput { .. })), "{doc:?}");
        }
        let big = CloudConfig::new().file("/x", "a".repeat(70_000), "root:root", "0644");
        let e = big.validate_size(AZURE_CUSTOM_DATA_MAX_BYTES, "custom_data").unwrap_err();
        assert!(e.to_string().contains("65535"), "{e}");
    }
}
