//! Name rules, checked before any API call.

use crate::error::R2Error;

/// Checks an R2 bucket name: 3 to 63 characters, lowercase letters `a-z`, digits and hyphens,
/// starting and ending with a letter or digit.
pub fn validate_bucket_name(field: &str, name: &str) -> Result<(), R2Error> {
    let rule = |r: &str| Err(R2Error::invalid(field, format!("bucket name `{name}`: {r}")));
    if name.len() < 3 || name.len() > 63 {
        return rule("must be 3 to 63 characters long");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return rule(&format!("may contain only lowercase letters a-z, digits 0-9 and hyphens, not `{c}`"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return rule("must start and end with a letter or digit");
    }
    Ok(())
}

/// Checks an object key: 1 to 1024 bytes of UTF-8 without control characters.
pub fn validate_object_key(field: &str, key: &str) -> Result<(), R2Error> {
    if key.is_empty() || key.len() > 1024 {
        return Err(R2Error::invalid(field, format!("object key must be 1 to 1024 bytes, got {}", key.len())));
    }
    if key.chars().any(char::is_control) {
        return Err(R2Error::invalid(field, "object key must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["jamjam-logs", "abc", "a1-b2", &"a".repeat(63)] {
            validate_bucket_name("name", ok).unwrap();
        }
        for (bad, why) in [
            ("ab", "3 to 63"),
            (&"a".repeat(64) as &str, "3 to 63"),
            ("Jamjam", "lowercase"),
            ("jam_jam", "`_`"),
            ("jam.jam", "`.`"),
            ("-jam", "start and end"),
            ("jam-", "start and end"),
        ] {
            let e = validate_bucket_name("spec.name", bad).unwrap_err().to_string();
            assert!(e.contains("spec.name") && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn object_keys() {
        validate_object_key("key", "20260101_000000/abc.log.gz").unwrap();
        assert!(validate_object_key("key", "").is_err());
        assert!(validate_object_key("key", &"k".repeat(1025)).is_err());
        assert!(validate_object_key("key", "a\nb").is_err());
    }
}
