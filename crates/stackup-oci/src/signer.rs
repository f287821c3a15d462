//! OCI request signing ("Signature Version 1": draft-cavage HTTP signatures, RSASSA-PKCS1-v1_5
//! with SHA-256) and the [`OciAuthorizer`] that signs every attempt the HTTP layer sends.
//!
//! Signed headers: `date (request-target) host` for every request, plus `content-length
//! content-type x-content-sha256` for POST, PUT and PATCH (even with an empty body). The
//! `(request-target)` is the lowercase method and the path and query *exactly as sent*.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};
use rsa::signature::SignatureEncoding as _;
use rsa::signature::Signer as _;
use sha2::Digest as _;
use stackup_core::Secret;
use stackup_core::http::Authorizer;
use url::Url;

use crate::error::OciError;
use crate::key::ApiKey;

/// The identity a signature claims (`keyId`).
#[derive(Clone, Debug)]
pub enum KeyId {
    /// API-key auth: `<tenancy>/<user>/<fingerprint>`.
    ApiKey {
        /// Tenancy OCID.
        tenancy: String,
        /// User OCID.
        user: String,
        /// Key fingerprint.
        fingerprint: String,
    },
    /// Session token auth (`oci session authenticate`): `ST$<token>`, re-read from the file on
    /// every request so `oci session refresh` takes effect without a restart.
    SecurityTokenFile(PathBuf),
    /// A session token given directly: `ST$<token>`.
    SecurityToken(Secret),
}

impl KeyId {
    /// The `keyId` value (reads the token file for session auth).
    pub fn resolve(&self) -> Result<Secret, OciError> {
        match self {
            KeyId::ApiKey { tenancy, user, fingerprint } => Ok(Secret::new(format!("{tenancy}/{user}/{fingerprint}"))),
            KeyId::SecurityToken(t) => Ok(Secret::new(format!("ST${}", t.expose()))),
            KeyId::SecurityTokenFile(path) => {
                let token = std::fs::read_to_string(path).map_err(|e| OciError::Key {
                    source_name: path.display().to_string(),
                    message: format!("cannot read security_token_file: {e}"),
                })?;
                let token = token.trim();
                if token.is_empty() {
                    return Err(OciError::Key {
                        source_name: path.display().to_string(),
                        message: "security_token_file is empty (run `oci session refresh` or authenticate again)"
                            .into(),
                    });
                }
                Ok(Secret::new(format!("ST${token}")))
            }
        }
    }
}

/// The headers a signature covers and the `Authorization` value, for one request. `Debug`
/// leaves the `Authorization` value out: with session auth its `keyId` is `ST$<session token>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `date` value.
    pub date: String,
    /// `host` value (with `:port` when not the scheme's default).
    pub host: String,
    /// `content-length`, `content-type`, `x-content-sha256` for body methods.
    pub body: Option<(String, String, String)>,
    /// The signing string (for diagnostics and tests; holds no secret).
    pub signing_string: String,
    /// The full `Authorization` header value.
    pub authorization: String,
}

impl std::fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("date", &self.date)
            .field("host", &self.host)
            .field("body", &self.body)
            .field("signing_string", &self.signing_string)
            .field("authorization", &"(sensitive)")
            .finish()
    }
}

/// What a signature covers for one request.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    /// HTTP method (any case).
    pub method: &'a str,
    /// `host` header value.
    pub host: &'a str,
    /// Path and query exactly as sent (already percent-encoded).
    pub path_and_query: &'a str,
    /// `date` header value.
    pub date: &'a str,
    /// Content type (signed for POST/PUT/PATCH).
    pub content_type: &'a str,
    /// Body bytes (signed for POST/PUT/PATCH).
    pub body: &'a [u8],
}

/// Signs requests with one API key.
#[derive(Clone)]
pub struct RequestSigner {
    key: ApiKey,
    signing_key: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSigner").field("fingerprint", &self.key.fingerprint()).finish_non_exhaustive()
    }
}

/// True for methods whose body is signed.
fn signs_body(method: &str) -> bool {
    matches!(method.to_ascii_lowercase().as_str(), "post" | "put" | "patch")
}

/// The `host` value OCI signs: the URL's host, plus `:port` when it is not the default.
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// base64(SHA-256(body)), the `x-content-sha256` value.
pub fn content_sha256(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
}

impl RequestSigner {
    /// A signer for `key`.
    pub fn new(key: ApiKey) -> Self {
        let signing_key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.rsa().clone());
        RequestSigner { key, signing_key }
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> &str {
        self.key.fingerprint()
    }

    /// Signs a request described by `req` with `key_id`.
    pub fn sign(&self, key_id: &str, req: &SigningInput<'_>) -> Result<SignedHeaders, OciError> {
        let SigningInput { method, host, path_and_query, date, content_type, body } = *req;
        let mut names = vec!["date", "(request-target)", "host"];
        let mut lines = vec![
            format!("date: {date}"),
            format!("(request-target): {} {path_and_query}", method.to_ascii_lowercase()),
            format!("host: {host}"),
        ];
        let body_headers = if signs_body(method) {
            let len = body.len().to_string();
            let sha = content_sha256(body);
            names.extend(["content-length", "content-type", "x-content-sha256"]);
            lines.push(format!("content-length: {len}"));
            lines.push(format!("content-type: {content_type}"));
            lines.push(format!("x-content-sha256: {sha}"));
            Some((len, content_type.to_owned(), sha))
        } else {
            None
        };
        let signing_string = lines.join("\n");
        let sig = self.signing_key.try_sign(signing_string.as_bytes()).map_err(|e| OciError::Signing(e.to_string()))?;
        let signature = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
        let authorization = format!(
            "Signature version=\"1\",headers=\"{}\",keyId=\"{key_id}\",algorithm=\"rsa-sha256\",signature=\"{signature}\"",
            names.join(" ")
        );
        Ok(SignedHeaders {
            date: date.to_owned(),
            host: host.to_owned(),
            body: body_headers,
            signing_string,
            authorization,
        })
    }
}

/// Signs every attempt the shared HTTP layer sends, over the exact bytes of that attempt, with a
/// fresh `date`.
pub struct OciAuthorizer {
    signer: RequestSigner,
    key_id: KeyId,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl std::fmt::Debug for OciAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciAuthorizer").field("fingerprint", &self.signer.fingerprint()).finish_non_exhaustive()
    }
}

impl OciAuthorizer {
    /// An authorizer using the system clock.
    pub fn new(signer: RequestSigner, key_id: KeyId) -> Self {
        OciAuthorizer { signer, key_id, clock: Arc::new(SystemTime::now) }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> SystemTime + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    /// Signs `request` in place: sets `date`, the body headers for POST/PUT/PATCH, and
    /// `authorization`.
    pub fn sign_request(&self, request: &mut reqwest::Request) -> Result<(), OciError> {
        let date = httpdate::fmt_http_date((self.clock)());
        let url = request.url().clone();
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let body: Vec<u8> = match request.body() {
            Some(b) => {
                b.as_bytes().ok_or_else(|| OciError::Signing("streaming bodies cannot be signed".into()))?.to_vec()
            }
            None => vec![],
        };
        let content_type = request
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let key_id = self.key_id.resolve()?;
        let host = host_header(&url);
        let input = SigningInput {
            method: request.method().as_str(),
            host: &host,
            path_and_query: &path_and_query,
            date: &date,
            content_type: &content_type,
            body: &body,
        };
        let signed = self.signer.sign(key_id.expose(), &input)?;
        let h = request.headers_mut();
        let val = |v: &str| HeaderValue::from_str(v).map_err(|_| OciError::Signing("invalid header value".into()));
        h.insert(reqwest::header::DATE, val(&signed.date)?);
        if let Some((len, ct, sha)) = &signed.body {
            h.insert(reqwest::header::CONTENT_LENGTH, val(len)?);
            h.insert(reqwest::header::CONTENT_TYPE, val(ct)?);
            h.insert(HeaderName::from_static("x-content-sha256"), val(sha)?);
        }
        let mut auth = val(&signed.authorization)?;
        auth.set_sensitive(true);
        h.insert(reqwest::header::AUTHORIZATION, auth);
        Ok(())
    }
}

#[async_trait]
impl Authorizer for OciAuthorizer {
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), stackup_core::Error> {
        self.sign_request(request).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const GET_TARGET: &str = "/20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&compartmentId=ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q";
    const POST_BODY: &str = "{\n    \"compartmentId\": \"ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa\",\n    \"instanceId\": \"ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a\",\n    \"volumeId\": \"ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\"\n}";
    const HOST: &str = "iaas.us-phoenix-1.oraclecloud.com";

    fn key_id() -> String {
        format!("{TEST_TENANCY}/{TEST_USER}/{TEST_VECTOR_FINGERPRINT}")
    }

    #[test]
    fn reproduces_oracle_get_vector() {
        for pem in [TEST_KEY_PKCS1, TEST_KEY_PKCS8] {
            let s = RequestSigner::new(ApiKey::from_pem(pem, "t").unwrap());
            let h = s
                .sign(
                    &key_id(),
                    &SigningInput {
                        method: "GET",
                        host: HOST,
                        path_and_query: GET_TARGET,
                        date: TEST_DATE,
                        content_type: "application/json",
                        body: b"",
                    },
                )
                .unwrap();
            assert_eq!(
                h.signing_string,
                format!("date: {TEST_DATE}\n(request-target): get {GET_TARGET}\nhost: {HOST}")
            );
            assert_eq!(
                h.authorization,
                format!(
                    "Signature version=\"1\",headers=\"date (request-target) host\",keyId=\"{}\",algorithm=\"rsa-sha256\",signature=\"GBas7grhyrhSKHP6AVIj/h5/Vp8bd/peM79H9Wv8kjoaCivujVXlpbKLjMPeDUhxkFIWtTtLBj3sUzaFj34XE6YZAHc9r2DmE4pMwOAy/kiITcZxa1oHPOeRheC0jP2dqbTll8fmTZVwKZOKHYPtrLJIJQHJjNvxFWeHQjMaR7M=\"",
                    key_id()
                )
            );
            assert!(h.body.is_none());
        }
    }

    #[test]
    fn reproduces_oracle_post_vector() {
        assert_eq!(POST_BODY.len(), 316);
        let s = RequestSigner::new(ApiKey::from_pem(TEST_KEY_PKCS1, "t").unwrap());
        let h = s
            .sign(
                &key_id(),
                &SigningInput {
                    method: "POST",
                    host: HOST,
                    path_and_query: "/20160918/volumeAttachments",
                    date: TEST_DATE,
                    content_type: "application/json",
                    body: POST_BODY.as_bytes(),
                },
            )
            .unwrap();
        assert_eq!(
            h.signing_string,
            format!(
                "date: {TEST_DATE}\n(request-target): post /20160918/volumeAttachments\nhost: {HOST}\ncontent-length: 316\ncontent-type: application/json\nx-content-sha256: V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0="
            )
        );
        assert_eq!(
            h.authorization,
            format!(
                "Signature version=\"1\",headers=\"date (request-target) host content-length content-type x-content-sha256\",keyId=\"{}\",algorithm=\"rsa-sha256\",signature=\"Mje8vIDPlwIHmD/cTDwRxE7HaAvBg16JnVcsuqaNRim23fFPgQfLoOOxae6WqKb1uPjYEl0qIdazWaBy/Ml8DRhqlocMwoSXv0fbukP8J5N80LCmzT/FFBvIvTB91XuXI3hYfP9Zt1l7S6ieVadHUfqBedWH0itrtPJBgKmrWso=\"",
                key_id()
            )
        );
    }

    #[test]
    fn empty_body_post_is_signed_with_the_empty_hash() {
        let s = RequestSigner::new(ApiKey::from_pem(TEST_KEY_PKCS1, "t").unwrap());
        let h = s
            .sign(
                "k",
                &SigningInput {
                    method: "PUT",
                    host: HOST,
                    path_and_query: "/x",
                    date: TEST_DATE,
                    content_type: "application/json",
                    body: b"",
                },
            )
            .unwrap();
        let (len, _, sha) = h.body.unwrap();
        assert_eq!(len, "0");
        assert_eq!(sha, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn authorizer_signs_what_it_sends_and_the_verifier_agrees() {
        let auth = OciAuthorizer::new(
            RequestSigner::new(ApiKey::from_pem(TEST_KEY_PKCS1, "t").unwrap()),
            KeyId::ApiKey { tenancy: "t".into(), user: "u".into(), fingerprint: TEST_KEY_FINGERPRINT.into() },
        )
        .with_clock(Arc::new(|| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_389_000_000)));
        let url = Url::parse("http://127.0.0.1:8080/20160918/vcns?compartmentId=a%20b").unwrap();
        let mut req = reqwest::Request::new(reqwest::Method::POST, url);
        *req.body_mut() = Some(reqwest::Body::from(b"{\"a\":1}".to_vec()));
        auth.sign_request(&mut req).unwrap();
        let hv = |n: &str| match n {
            "host" => Some("127.0.0.1:8080".to_owned()),
            n => req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned),
        };
        assert_eq!(hv("date").unwrap(), "Mon, 06 Jan 2014 09:20:00 GMT");
        assert_eq!(hv("content-type").unwrap(), "application/json");
        let kid = verify_request(&test_public_key(), "POST", "/20160918/vcns?compartmentId=a%20b", &hv, b"{\"a\":1}")
            .unwrap();
        assert_eq!(kid, format!("t/u/{TEST_KEY_FINGERPRINT}"));
        // A tampered body or target fails verification.
        assert!(verify_request(&test_public_key(), "POST", "/20160918/vcns", &hv, b"{\"a\":1}").is_err());
        assert!(verify_request(&test_public_key(), "POST", "/20160918/vcns?compartmentId=a%20b", &hv, b"{}").is_err());
        assert!(format!("{:?}", req.headers().get("authorization").unwrap()).contains("Sensitive"));
    }

    #[test]
    fn signed_headers_debug_hides_the_session_token() {
        let s = RequestSigner::new(ApiKey::from_pem(TEST_KEY_PKCS1, "t").unwrap());
        let key_id = KeyId::SecurityToken(Secret::new("eyJhbGciOi.session-secret.sig")).resolve().unwrap();
        let h = s
            .sign(
                key_id.expose(),
                &SigningInput {
                    method: "GET",
                    host: HOST,
                    path_and_query: "/20160918/vcns",
                    date: TEST_DATE,
                    content_type: "application/json",
                    body: b"",
                },
            )
            .unwrap();
        assert!(h.authorization.contains("keyId=\"ST$eyJhbGciOi.session-secret.sig\""));
        let d = format!("{h:?}");
        assert!(!d.contains("session-secret"), "{d}");
        assert!(d.contains(HOST) && d.contains("(request-target): get /20160918/vcns"), "{d}");
    }

    #[test]
    fn session_tokens_are_read_from_the_file_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "tok1\n").unwrap();
        let k = KeyId::SecurityTokenFile(p.clone());
        assert_eq!(k.resolve().unwrap().expose(), "ST$tok1");
        std::fs::write(&p, "tok2").unwrap();
        assert_eq!(k.resolve().unwrap().expose(), "ST$tok2");
        std::fs::write(&p, "").unwrap();
        assert!(k.resolve().unwrap_err().to_string().contains("empty"));
    }
}
