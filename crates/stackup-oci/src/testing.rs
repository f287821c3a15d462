//! Oracle's published signing test material (private key, identity, date) and a server-side
//! signature verifier. Used by this crate's tests and useful to anyone testing OCI code against a
//! mock server. The key is public and for tests only: OCI refuses keys shorter than 2048 bits.

use base64::Engine as _;
use rsa::signature::Verifier as _;
use sha2::Digest as _;

/// Oracle's published 1024-bit test key, PKCS#1 (`BEGIN RSA PRIVATE KEY`).
pub const TEST_KEY_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
";

/// The same key in PKCS#8 form (`BEGIN PRIVATE KEY`).
pub const TEST_KEY_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBAMIUQ0bDffIaKHL3
akONlCGXQLfqs8mP4K99ILz6rbyHEDXrVAU1R3XfC4JNRyrRB3aqwF7/aEXJzYMI
kmDSHUvvz7pnhQxHsQ5yl91QT0d/eb+Gz4VRHjm4El4MrUdIUcPxscoPqS/wU8Z8
lOi1z7bGMnChiL7WGqnV8h6RrGzJAgMBAAECgYEAlHxmQJS/HmTO/6612XtPkyei
t1PVO+hdckZcrtln5S68w1QJ03ZA9ziwGIBBa8vDVxIq3kOwpnxQROlg/Lyk9iec
MTPZ0NiJp7D37ESm5vJ5bagfhnHvXCoG04qSrCtdr+nN2mK5xFGOTq8TphjsQEGz
+Du5qdWkaJs5UASyofUCQQDsOSNUfbxYNSB/Weq9+fYqPoJPuchwTeMYmxlnvOVm
YGYcUM40wtStdH9mbelHmbS0KYGprlEr3m7jXaO3V08jAkEA0lPe/ymeS2HjxtCj
98p6Xq4RjJuhG0Dn+4e4eRnoVAXs5SQaiByZImW451zm3qEjVWwufRBkSNBkwQ5a
v7ApIwJBAILiRckSwcC97vug/oe0b8iISfuSnJRdE28WwMTRzOkkkG8v9pEVQnG5
Er3WOGMLrywDs2wowaDk5dvkjkmPfrECQQCAhPtoU5gEXAaBABCRY0ou/JKApsBl
FN4sFpykcy5B2XUN92e28DKqkBnSVjREqZYbpoUpqpB85coLJahSJWSdAkBeuWDJ
IVyL/a54qUgTVCoiItJnxXw6WkUtGdvWnMjtTXJBedMAQVgznrTImXNSk5vVXhxJ
wZ3frm2JIy/Es69M
-----END PRIVATE KEY-----
";

/// The tenancy OCID of Oracle's test vector.
pub const TEST_TENANCY: &str = "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq";
/// The user OCID of Oracle's test vector.
pub const TEST_USER: &str = "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq";
/// The fingerprint the Go SDK's test vector puts in the keyId (not the key's real one, which is
/// `73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7`; the fingerprint is not signed).
pub const TEST_VECTOR_FINGERPRINT: &str = "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34";
/// The test key's real fingerprint.
pub const TEST_KEY_FINGERPRINT: &str = "73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7";
/// The date of Oracle's test vector.
pub const TEST_DATE: &str = "Thu, 05 Jan 2014 21:31:40 GMT";

/// The RSA public key type [`verify_request`] takes.
pub type PublicKey = rsa::PublicKey;

/// Why a request's signature was refused by [`verify_request`].
pub type VerifyError = String;

/// Verifies an OCI-signed request the way the OCI front door does: parses the `Authorization:
/// Signature …` header, rebuilds the signing string from the request's own method, target,
/// headers and body (checking `x-content-sha256` and `content-length` against the body), and
/// verifies the RSA-SHA256 signature with `public_key`. Returns the `keyId` on success.
pub fn verify_request(
    public_key: &rsa::PublicKey,
    method: &str,
    path_and_query: &str,
    headers: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<String, VerifyError> {
    let auth = headers("authorization").ok_or("missing Authorization header")?;
    let params = auth.strip_prefix("Signature ").ok_or("Authorization is not `Signature …`")?;
    let mut fields = std::collections::HashMap::new();
    for part in split_params(params) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("malformed parameter `{part}`"))?;
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).ok_or("parameter not quoted")?;
        fields.insert(k.trim().to_owned(), v.to_owned());
    }
    if fields.get("version").map(String::as_str) != Some("1") {
        return Err("version must be \"1\"".into());
    }
    if fields.get("algorithm").map(String::as_str) != Some("rsa-sha256") {
        return Err("algorithm must be rsa-sha256".into());
    }
    let key_id = fields.get("keyId").ok_or("missing keyId")?.clone();
    let signed: Vec<&str> = fields.get("headers").ok_or("missing headers")?.split(' ').collect();
    let method_lc = method.to_ascii_lowercase();
    let mut required = vec!["date", "(request-target)", "host"];
    if matches!(method_lc.as_str(), "post" | "put" | "patch") {
        required.extend(["content-length", "content-type", "x-content-sha256"]);
        let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
        if headers("x-content-sha256").as_deref() != Some(sha.as_str()) {
            return Err(format!("x-content-sha256 does not match the body (expected {sha})"));
        }
        if headers("content-length").as_deref() != Some(body.len().to_string().as_str()) {
            return Err(format!("content-length does not match the body ({} bytes)", body.len()));
        }
    }
    for r in &required {
        if !signed.contains(r) {
            return Err(format!("header `{r}` is required but not signed"));
        }
    }
    let mut lines = vec![];
    for name in &signed {
        let value = if *name == "(request-target)" {
            format!("{method_lc} {path_and_query}")
        } else {
            headers(name).ok_or_else(|| format!("signed header `{name}` is missing from the request"))?
        };
        lines.push(format!("{name}: {value}"));
    }
    let sig_bytes = base64::engine::general_purpose::STANDARD
        .decode(fields.get("signature").ok_or("missing signature")?)
        .map_err(|e| format!("signature is not base64: {e}"))?;
    let sig = rsa::pkcs1v15::Signature::try_from(sig_bytes.as_slice()).map_err(|e| e.to_string())?;
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public_key.clone());
    verifier.verify(lines.join("\n").as_bytes(), &sig).map_err(|_| "signature does not verify".to_owned())?;
    Ok(key_id)
}

/// Splits `a="x",b="y,z"` on commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The public half of the test key.
pub fn test_public_key() -> rsa::PublicKey {
    crate::key::ApiKey::from_pem(TEST_KEY_PKCS1, "test key").map(|k| k.rsa().to_public_key()).unwrap_or_else(|e| {
        // The constant is checked by the unit tests; reaching this is a build defect.
        panic!("built-in test key is invalid: {e}")
    })
}
