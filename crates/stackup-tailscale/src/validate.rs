//! Input rules checked before any API call: tags, hostnames, key descriptions, expiries, DNS
//! names and nameservers. Every error names the field and the rule.

use std::net::IpAddr;

use stackup_core::Error;

/// The longest auth key expiry Tailscale accepts: 90 days.
pub const MAX_KEY_EXPIRY_SECONDS: u64 = 90 * 24 * 3600;

/// A tag is `tag:` followed by a name that starts with a letter and has only ASCII letters,
/// digits and hyphens (Tailscale's `CheckTag`). Duplicates are rejected too.
pub fn tags(field: &str, tags: &[String]) -> Result<(), Error> {
    for (i, t) in tags.iter().enumerate() {
        tag(&format!("{field}[{i}]"), t)?;
        if tags[..i].contains(t) {
            return Err(Error::invalid(format!("{field}[{i}]"), format!("`{t}` is listed twice")));
        }
    }
    Ok(())
}

/// One tag; see [`tags`].
pub fn tag(field: &str, t: &str) -> Result<(), Error> {
    let Some(name) = t.strip_prefix("tag:") else {
        return Err(Error::invalid(field, format!("`{t}` must start with `tag:` (for example `tag:ci`)")));
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(Error::invalid(field, format!("`{t}` has an empty name after `tag:`"))),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(Error::invalid(field, format!("`{t}`: the tag name must start with a letter")));
        }
        _ => {}
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
        return Err(Error::invalid(
            field,
            format!("`{t}` contains `{bad}`; tag names may contain only letters, digits and hyphens"),
        ));
    }
    Ok(())
}

/// A device hostname as `tailscale up --hostname` sets it and MagicDNS uses it: one DNS label,
/// 1–63 ASCII letters, digits or hyphens, not starting or ending with a hyphen.
pub fn hostname(field: &str, h: &str) -> Result<(), Error> {
    if h.is_empty() || h.len() > 63 {
        return Err(Error::invalid(field, format!("`{h}` must be 1 to 63 characters long (one DNS label)")));
    }
    if let Some(bad) = h.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
        return Err(Error::invalid(
            field,
            format!("`{h}` contains `{bad}`; use letters, digits and hyphens only (one DNS label, no dots)"),
        ));
    }
    if h.starts_with('-') || h.ends_with('-') {
        return Err(Error::invalid(field, format!("`{h}` must not start or end with a hyphen")));
    }
    Ok(())
}

/// An auth key description: at most 50 characters, ASCII letters, digits, hyphens and spaces.
pub fn key_description(field: &str, d: &str) -> Result<(), Error> {
    if d.chars().count() > 50 {
        return Err(Error::invalid(field, format!("is {} characters long; the limit is 50", d.chars().count())));
    }
    if let Some(bad) = d.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == ' ')) {
        return Err(Error::invalid(field, format!("contains `{bad}`; only letters, digits, hyphens and spaces")));
    }
    Ok(())
}

/// An auth key expiry: 1 second to 90 days.
pub fn key_expiry(field: &str, seconds: u64) -> Result<(), Error> {
    if seconds == 0 || seconds > MAX_KEY_EXPIRY_SECONDS {
        return Err(Error::invalid(
            field,
            format!("{seconds} s is out of range; auth keys expire after 1 s to 90 days ({MAX_KEY_EXPIRY_SECONDS} s)"),
        ));
    }
    Ok(())
}

/// A global nameserver: an IPv4 or IPv6 address, or a DNS-over-HTTPS `https://` URL.
pub fn nameserver(field: &str, ns: &str) -> Result<(), Error> {
    if ns.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some(rest) = ns.strip_prefix("https://")
        && !rest.is_empty()
        && url::Url::parse(ns).is_ok()
    {
        return Ok(());
    }
    Err(Error::invalid(field, format!("`{ns}` is neither an IP address nor an https:// DNS-over-HTTPS URL")))
}

/// A DNS domain (search path): dot-separated labels of letters, digits and hyphens, at most 253
/// characters, no empty label (a single trailing dot is allowed).
pub fn domain(field: &str, d: &str) -> Result<(), Error> {
    let trimmed = d.strip_suffix('.').unwrap_or(d);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(Error::invalid(field, format!("`{d}` must be 1 to 253 characters long")));
    }
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(Error::invalid(field, format!("`{d}` has an empty or over-long (>63) label")));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Error::invalid(field, format!("`{d}`: label `{label}` starts or ends with a hyphen")));
        }
        if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(Error::invalid(field, format!("`{d}` contains `{bad}`; use letters, digits and hyphens")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(e: Error) -> (String, String) {
        match e {
            Error::InvalidInput { field, rule } => (field, rule),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tag_rules() {
        assert!(tags("tags", &["tag:ci".into(), "tag:prod-db2".into()]).is_ok());
        let (f, r) = rule(tags("tags", &["ci".into()]).unwrap_err());
        assert_eq!(f, "tags[0]");
        assert!(r.contains("tag:"), "{r}");
        assert!(rule(tag("t", "tag:").unwrap_err()).1.contains("empty"));
        assert!(rule(tag("t", "tag:1ci").unwrap_err()).1.contains("letter"));
        assert!(rule(tag("t", "tag:c_i").unwrap_err()).1.contains("`_`"));
        let (f, r) = rule(tags("tags", &["tag:a".into(), "tag:a".into()]).unwrap_err());
        assert_eq!((f.as_str(), r.contains("twice")), ("tags[1]", true));
    }

    #[test]
    fn hostname_rules() {
        assert!(hostname("h", "egograph-prod").is_ok());
        assert!(hostname("h", "a").is_ok());
        assert!(rule(hostname("h", "").unwrap_err()).1.contains("1 to 63"));
        assert!(rule(hostname("h", &"a".repeat(64)).unwrap_err()).1.contains("1 to 63"));
        assert!(rule(hostname("h", "ego.prod").unwrap_err()).1.contains("`.`"));
        assert!(rule(hostname("h", "-x").unwrap_err()).1.contains("hyphen"));
    }

    #[test]
    fn description_and_expiry_rules() {
        assert!(key_description("d", "ci run 123").is_ok());
        assert!(rule(key_description("d", &"x".repeat(51)).unwrap_err()).1.contains("50"));
        assert!(rule(key_description("d", "ci/run").unwrap_err()).1.contains("`/`"));
        assert!(key_expiry("e", 3600).is_ok());
        assert!(key_expiry("e", MAX_KEY_EXPIRY_SECONDS).is_ok());
        assert!(key_expiry("e", 0).is_err());
        assert!(rule(key_expiry("e", MAX_KEY_EXPIRY_SECONDS + 1).unwrap_err()).1.contains("90 days"));
    }

    #[test]
    fn dns_rules() {
        assert!(nameserver("n", "8.8.8.8").is_ok());
        assert!(nameserver("n", "2606:4700:4700::1111").is_ok());
        assert!(nameserver("n", "https://dns.nextdns.io/abc").is_ok());
        assert!(nameserver("n", "dns.google").is_err());
        assert!(nameserver("n", "https://").is_err());
        assert!(domain("s", "corp.example.com").is_ok());
        assert!(domain("s", "example.com.").is_ok());
        assert!(domain("s", "bad..example").is_err());
        assert!(domain("s", "bad domain").is_err());
    }
}
