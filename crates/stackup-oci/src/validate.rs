//! Pure input checks shared by the provisioners: CIDRs, DNS labels, display names, OCIDs and
//! freeform tags. Every failure is an [`Error::InvalidInput`] naming the field and the rule.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use stackup_core::{Error, Input};

/// An IPv4 CIDR block, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// True when `other` lies entirely inside `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && mask(u32::from(other.addr), self.prefix) == u32::from(self.addr)
    }
}

fn mask(a: u32, prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { a & (u32::MAX << (32 - u32::from(prefix))) }
}

/// Parses `a.b.c.d/n`, requiring the host bits to be zero.
pub fn parse_cidr(field: &str, s: &str) -> Result<Cidr, Error> {
    let (a, p) =
        s.split_once('/').ok_or_else(|| Error::invalid(field, format!("`{s}` is not a CIDR block (a.b.c.d/n)")))?;
    let addr: Ipv4Addr = a.parse().map_err(|_| Error::invalid(field, format!("`{a}` is not an IPv4 address")))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| Error::invalid(field, format!("`/{p}` is not a prefix length 0-32")))?;
    if mask(u32::from(addr), prefix) != u32::from(addr) {
        return Err(Error::invalid(
            field,
            format!(
                "`{s}` has host bits set; did you mean {}/{prefix}?",
                Ipv4Addr::from(mask(u32::from(addr), prefix))
            ),
        ));
    }
    Ok(Cidr { addr, prefix })
}

/// A VCN or subnet CIDR: /16 to /30 (OCI's allowed range).
pub fn network_cidr(field: &str, s: &str) -> Result<Cidr, Error> {
    let c = parse_cidr(field, s)?;
    if !(16..=30).contains(&c.prefix) {
        return Err(Error::invalid(field, format!("`{s}`: OCI allows /16 to /30 for VCN and subnet blocks")));
    }
    Ok(c)
}

/// A DNS label: 1-15 letters and digits, starting with a letter.
pub fn dns_label(field: &str, s: &str) -> Result<(), Error> {
    let ok = (1..=15).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("`{s}`: use 1-15 letters and digits, starting with a letter")))
    }
}

/// A display name: 1-255 characters, no control characters.
pub fn display_name(field: &str, s: &str) -> Result<(), Error> {
    if s.trim().is_empty() || s.chars().count() > 255 || s.chars().any(char::is_control) {
        return Err(Error::invalid(field, "use 1-255 characters without control characters"));
    }
    Ok(())
}

/// An OCID of one of the given kinds (`compartment`, `tenancy`, `vcn`, …).
pub fn ocid(field: &str, s: &str, kinds: &[&str]) -> Result<(), Error> {
    let kind = s.strip_prefix("ocid1.").and_then(|r| r.split('.').next());
    match kind {
        Some(k) if kinds.contains(&k) && s.split('.').count() >= 4 => Ok(()),
        _ => Err(Error::invalid(field, format!("`{s}` is not an OCID of kind {}", kinds.join(" or ")))),
    }
}

/// Checks an [`Input`] OCID when it is known.
pub fn ocid_input(field: &str, v: &Input<String>, kinds: &[&str]) -> Result<(), Error> {
    match v.known() {
        Some(s) => ocid(field, s, kinds),
        None => Ok(()),
    }
}

/// Keys stackup sets on every object; they are not the user's to set and are ignored by diffs.
pub const MANAGED_TAG_KEYS: [&str; 3] = ["managed-by", "stackup-stack", "stackup-address"];

/// Freeform tags: keys 1-100 characters without spaces or dots-only, values up to 256
/// characters, and none of stackup's own keys.
pub fn freeform_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<(), Error> {
    if tags.len() > 64 {
        return Err(Error::invalid(field, "at most 64 freeform tags (stackup adds 3 of its own)"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 100 || k.chars().any(|c| c.is_whitespace() || c == '.' || c.is_control())
        {
            return Err(Error::invalid(format!("{field}.{k}"), "tag keys are 1-100 characters, no spaces or dots"));
        }
        if MANAGED_TAG_KEYS.contains(&k.as_str()) {
            return Err(Error::invalid(format!("{field}.{k}"), "this key is set by stackup itself"));
        }
        if v.chars().count() > 256 {
            return Err(Error::invalid(format!("{field}.{k}"), "tag values are at most 256 characters"));
        }
    }
    Ok(())
}

/// The user's tags plus stackup's, as sent on create and update.
pub fn with_managed_tags(
    user: &BTreeMap<String, String>,
    managed: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = user.clone();
    all.extend(managed);
    all
}

/// Observed tags without stackup's own keys (what diffs compare).
pub fn user_tags(observed: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    observed
        .iter()
        .filter(|(k, _)| !MANAGED_TAG_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert!(network_cidr("c", "10.0.0.0/16").is_ok());
        for bad in ["10.0.0.0", "10.0.0.1/16", "10.0.0.0/8", "10.0.0.0/31", "300.0.0.0/16", "10.0.0.0/x"] {
            let e = network_cidr("vcn.cidr_blocks[0]", bad).unwrap_err();
            assert!(e.to_string().contains("vcn.cidr_blocks[0]"), "{bad}: {e}");
        }
        let v = parse_cidr("a", "10.0.0.0/16").unwrap();
        assert!(v.contains(&parse_cidr("b", "10.0.3.0/24").unwrap()));
        assert!(!v.contains(&parse_cidr("b", "10.1.0.0/24").unwrap()));
        assert!(parse_cidr("x", "0.0.0.0/0").is_ok());
    }

    #[test]
    fn labels_names_ocids_tags() {
        assert!(dns_label("d", "afvcn1").is_ok());
        assert!(
            dns_label("d", "1vcn").is_err()
                && dns_label("d", "a-b").is_err()
                && dns_label("d", "abcdefghijklmnop").is_err()
        );
        assert!(
            display_name("n", "web").is_ok() && display_name("n", " ").is_err() && display_name("n", "a\nb").is_err()
        );
        assert!(ocid("c", "ocid1.compartment.oc1..aaaa", &["compartment", "tenancy"]).is_ok());
        assert!(ocid("c", "ocid1.vcn.oc1.phx.aaaa", &["compartment"]).is_err());
        assert!(ocid("c", "compartment", &["compartment"]).is_err());
        let mut t = BTreeMap::new();
        t.insert("env".to_owned(), "prod".to_owned());
        assert!(freeform_tags("tags", &t).is_ok());
        t.insert("managed-by".to_owned(), "me".to_owned());
        assert!(freeform_tags("tags", &t).unwrap_err().to_string().contains("tags.managed-by"));
        let mut t = BTreeMap::new();
        t.insert("has space".to_owned(), "x".to_owned());
        assert!(freeform_tags("tags", &t).is_err());
    }
}
