//! Which device is "the one that joined as `<hostname>`": pure matching rules for waiting.
//!
//! Tailscale keeps a device's OS `hostname` (or `tailscale up --hostname`) as given, but its
//! MagicDNS name must be unique: when `egograph-prod` is already taken (typically by the stale
//! device of a machine that was rebuilt), the new device becomes `egograph-prod-1`, then `-2`…
//! So a device is matched on its `hostname` field (plus optional tags and a join time), and its
//! MagicDNS label is then classified as [`NameState::Exact`], [`NameState::Suffixed`] or
//! [`NameState::Renamed`], which the [`crate::resources::device`] provisioner handles as the spec
//! says rather than by accident.

use time::OffsetDateTime;

use crate::wire::Device;

/// How a device's MagicDNS label relates to the hostname we waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// The label is the hostname (`egograph-prod`).
    Exact,
    /// Tailscale added `-N` because the name was taken (`egograph-prod-1` → `Suffixed(1)`).
    Suffixed(u32),
    /// Someone gave the device another name (admin console or API): left alone.
    Renamed,
}

/// Classifies `label` (the first label of the MagicDNS name) against `hostname`, ignoring
/// ASCII case (MagicDNS names are lower case).
pub fn classify(hostname: &str, label: &str) -> NameState {
    let h = hostname.to_ascii_lowercase();
    let l = label.to_ascii_lowercase();
    if l == h {
        return NameState::Exact;
    }
    match l.strip_prefix(&h).and_then(|r| r.strip_prefix('-')) {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse().map(NameState::Suffixed).unwrap_or(NameState::Renamed)
        }
        _ => NameState::Renamed,
    }
}

/// What a joined device must look like.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    /// The `hostname` field (case-insensitive).
    pub hostname: String,
    /// Tags the device must carry (all of them).
    pub required_tags: Vec<String>,
    /// Only devices that joined at or after this time (for example the auth key's creation), so
    /// a stale device with the same hostname is never mistaken for the new one.
    pub joined_after: Option<OffsetDateTime>,
}

impl Criteria {
    /// Whether `d` satisfies the criteria. Devices shared in from other tailnets never match.
    pub fn matches(&self, d: &Device) -> bool {
        if d.is_external || !d.hostname.eq_ignore_ascii_case(&self.hostname) {
            return false;
        }
        if !self.required_tags.iter().all(|t| d.tags.contains(t)) {
            return false;
        }
        match self.joined_after {
            None => true,
            Some(after) => d.created_at().is_some_and(|c| c >= after),
        }
    }

    /// The matching device that joined last (a device without a join time counts as oldest).
    pub fn pick<'a>(&self, devices: &'a [Device]) -> Option<&'a Device> {
        devices.iter().filter(|d| self.matches(d)).max_by_key(|d| d.created_at())
    }
}

/// The devices, other than `chosen`, whose MagicDNS label is exactly `hostname` in `chosen`'s
/// tailnet domain: the ones that pushed `chosen` to a suffixed name. Devices shared in from other
/// tailnets (`isExternal`, named in their own tailnet's domain) hold no name here, and cannot be
/// deleted from this tailnet anyway (the API answers 501).
pub fn name_holders<'a>(devices: &'a [Device], hostname: &str, chosen: &Device) -> Vec<&'a Device> {
    let domain = |d: &Device| d.fqdn().split_once('.').map(|(_, rest)| rest.to_ascii_lowercase());
    let ours = domain(chosen);
    devices
        .iter()
        .filter(|d| {
            d.api_id() != chosen.api_id()
                && !d.is_external
                && domain(d) == ours
                && classify(hostname, d.dns_label()) == NameState::Exact
        })
        .collect()
}

/// `name (nodeId, online|offline)`, for error messages.
pub fn describe(d: &Device) -> String {
    format!("{} ({}, {})", d.fqdn(), d.api_id(), if d.connected_to_control { "online" } else { "offline" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn dev(node: &str, hostname: &str, name: &str, created: &str) -> Device {
        Device {
            node_id: node.into(),
            hostname: hostname.into(),
            name: format!("{name}.tail1234.ts.net"),
            created: created.into(),
            ..Default::default()
        }
    }

    #[test]
    fn classifies_suffixes_deliberately() {
        assert_eq!(classify("egograph-prod", "egograph-prod"), NameState::Exact);
        assert_eq!(classify("EgoGraph-Prod", "egograph-prod"), NameState::Exact);
        assert_eq!(classify("egograph-prod", "egograph-prod-1"), NameState::Suffixed(1));
        assert_eq!(classify("egograph-prod", "egograph-prod-12"), NameState::Suffixed(12));
        // A hostname that itself ends in a number is not confused with a suffix.
        assert_eq!(classify("egograph-prod-1", "egograph-prod-1"), NameState::Exact);
        assert_eq!(classify("egograph-prod", "egograph-prod-x"), NameState::Renamed);
        assert_eq!(classify("egograph-prod", "egograph-prod-"), NameState::Renamed);
        assert_eq!(classify("egograph-prod", "backend"), NameState::Renamed);
    }

    #[test]
    fn picks_the_newest_matching_device_after_the_join_time() {
        let old = dev("n1", "egograph-prod", "egograph-prod", "2026-11-01T00:00:00Z");
        let mut new = dev("n2", "egograph-prod", "egograph-prod-1", "2026-11-25T10:01:00Z");
        new.tags = vec!["tag:server".into()];
        let other = dev("n3", "other", "other", "2026-11-25T10:02:00Z");
        let devices = vec![old.clone(), new.clone(), other];
        let c = Criteria { hostname: "egograph-prod".into(), ..Default::default() };
        assert_eq!(c.pick(&devices).unwrap().node_id, "n2");
        let c = Criteria {
            hostname: "egograph-prod".into(),
            joined_after: Some(datetime!(2026-11-25 10:00 UTC)),
            ..Default::default()
        };
        assert_eq!(c.pick(&devices[..1]), None, "the stale device joined before the key existed");
        let c = Criteria {
            hostname: "egograph-prod".into(),
            required_tags: vec!["tag:server".into()],
            ..Default::default()
        };
        assert_eq!(c.pick(std::slice::from_ref(&old)), None);
        assert_eq!(c.pick(&devices).unwrap().node_id, "n2");
        let holders = name_holders(&devices, "egograph-prod", &new);
        assert_eq!(holders.iter().map(|d| d.node_id.as_str()).collect::<Vec<_>>(), ["n1"]);
        assert_eq!(describe(holders[0]), "egograph-prod.tail1234.ts.net (n1, offline)");
    }
}
