//! ARM resource ids: `/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{child type}/{child name}…]`.

use stackup_core::Error;

/// A parsed ARM resource id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    /// Subscription id.
    pub subscription: String,
    /// Resource group name.
    pub resource_group: String,
    /// Provider namespace (`Microsoft.Storage`); `Microsoft.Resources` for a resource group.
    pub namespace: String,
    /// `(type, name)` pairs from the outermost resource inwards.
    pub segments: Vec<(String, String)>,
}

impl ResourceId {
    /// Parses an id; the case of the fixed words (`subscriptions`, `resourceGroups`,
    /// `providers`) is ignored, as ARM does.
    pub fn parse(id: &str) -> Result<Self, Error> {
        let bad = || Error::invalid("id", format!("`{id}` is not an ARM resource id"));
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        if parts.len() < 4
            || !parts[0].eq_ignore_ascii_case("subscriptions")
            || !parts[2].eq_ignore_ascii_case("resourcegroups")
            || parts.iter().any(|p| p.is_empty())
        {
            return Err(bad());
        }
        let (subscription, resource_group) = (parts[1].to_owned(), parts[3].to_owned());
        if parts.len() == 4 {
            return Ok(ResourceId {
                subscription,
                resource_group,
                namespace: "Microsoft.Resources".into(),
                segments: vec![("resourceGroups".into(), parts[3].to_owned())],
            });
        }
        if parts.len() < 8 || !parts[4].eq_ignore_ascii_case("providers") || !(parts.len() - 6).is_multiple_of(2) {
            return Err(bad());
        }
        let namespace = parts[5].to_owned();
        let segments = parts[6..].chunks(2).map(|c| (c[0].to_owned(), c[1].to_owned())).collect();
        Ok(ResourceId { subscription, resource_group, namespace, segments })
    }

    /// `Namespace/type[/childType…]`.
    pub fn resource_type(&self) -> String {
        let mut t = self.namespace.clone();
        for (ty, _) in &self.segments {
            t.push('/');
            t.push_str(ty);
        }
        t
    }

    /// The innermost name.
    pub fn name(&self) -> &str {
        self.segments.last().map(|(_, n)| n.as_str()).unwrap_or_default()
    }

    /// The name of the outermost resource (the storage account of a share, the VNet of a subnet).
    pub fn root_name(&self) -> &str {
        self.segments.first().map(|(_, n)| n.as_str()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_ids() {
        let id = ResourceId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/fileServices/default/shares/data",
        )
        .unwrap();
        assert_eq!(id.resource_type(), "Microsoft.Storage/storageAccounts/fileServices/shares");
        assert_eq!(id.name(), "data");
        assert_eq!(id.root_name(), "acct");
        assert_eq!(id.resource_group, "rg");
        let rg = ResourceId::parse("/subscriptions/s/resourcegroups/rg").unwrap();
        assert_eq!(rg.resource_type(), "Microsoft.Resources/resourceGroups");
        assert!(ResourceId::parse("/subscriptions/s").is_err());
        assert!(
            ResourceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts")
                .is_err()
        );
    }
}
