//! Account shared access signatures (SAS), signed with an account key, for the blob data plane.
//!
//! `azure_storage_blob` 1.x has no shared-key credential; an account SAS in the URL is how an
//! account key (a [`StorageAccountOutputs`](crate::StorageAccountOutputs) `key1`, or Azurite's
//! well-known key) authorizes requests. String to sign for `sv=2021-08-06`
//! (learn.microsoft.com/rest/api/storageservices/create-account-sas):
//!
//! ```text
//! account\npermissions\nservices\nresource types\nstart\nexpiry\nip\nprotocol\nversion\nencryption scope\n
//! ```
//!
//! signed with HMAC-SHA256 under the base64-decoded key.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use stackup_core::{Error, Secret};
use time::OffsetDateTime;

/// The SAS version signed.
pub const SAS_VERSION: &str = "2021-08-06";

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// An account SAS query string (`sv=…&sig=…`) for the blob service, resource types
/// service/container/object, permissions `rwdlacup`, valid until `expiry`. The result is a
/// secret: it grants access.
pub fn blob_account_sas(account: &str, key: &Secret, expiry: OffsetDateTime) -> Result<Secret, Error> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key.expose().trim())
        .map_err(|_| Error::invalid("account_key", "a storage account key is base64"))?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let se =
        expiry.to_offset(time::UtcOffset::UTC).format(&fmt).map_err(|e| Error::other("formatting SAS expiry", e))?;
    let (sp, ss, srt, spr) = ("rwdlacup", "b", "sco", "https,http");
    let to_sign = format!("{account}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{SAS_VERSION}\n\n");
    let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", SAS_VERSION)
        .append_pair("ss", ss)
        .append_pair("srt", srt)
        .append_pair("sp", sp)
        .append_pair("se", &se)
        .append_pair("spr", spr)
        .append_pair("sig", &sig)
        .finish();
    Ok(Secret::new(query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn hmac_long_key_is_hashed_first_rfc_4231_case_6() {
        let key = [0xaau8; 131];
        let mac = hmac_sha256(&key, b"Test Using Larger Than Block-Size Key - Hash Key First");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn sas_has_the_signed_fields_and_rejects_bad_keys() {
        let expiry = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let sas = blob_account_sas("devstoreaccount1", &Secret::new("a2V5"), expiry).unwrap();
        let q = sas.expose();
        assert!(
            q.starts_with("sv=2021-08-06&ss=b&srt=sco&sp=rwdlacup&se=2027-01-15T08%3A00%3A00Z&spr=https%2Chttp&sig="),
            "{q}"
        );
        assert!(blob_account_sas("a", &Secret::new("not base64!"), expiry).is_err());
    }
}
