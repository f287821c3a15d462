//! Shared test helpers: a client on the fake ARM, a transport that drops connections, and a
//! log capture to prove secrets never reach logs.

#![allow(dead_code)]

pub mod fake_arm;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::http::{AsyncRawResponse, HttpClient, Request};
use stackup_azure::{ArmClient, LroOptions, StaticTokenCredential};
use stackup_core::retry::RetryPolicy;

pub use fake_arm::{FakeArm, SUB};

pub const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-bearer-token.sig";

pub fn client(arm: &FakeArm) -> ArmClient {
    ArmClient::builder()
        .credential(StaticTokenCredential::new(TOKEN))
        .subscription_id(SUB)
        .arm_endpoint(arm.uri())
        .retry_policy(RetryPolicy::fast())
        .lro_options(LroOptions::fast())
        .build()
        .unwrap()
}

/// Forwards every request to a real HTTP client, but for the request numbers listed (1-based)
/// throws the response away and reports a dropped connection: the server did the work, the
/// client does not know.
#[derive(Debug)]
pub struct DroppingTransport {
    inner: Arc<dyn HttpClient>,
    drop_on: Vec<usize>,
    seen: AtomicUsize,
}

impl DroppingTransport {
    pub fn new(drop_on: Vec<usize>) -> Arc<Self> {
        Arc::new(DroppingTransport {
            inner: azure_core::http::new_http_client(None),
            drop_on,
            seen: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl HttpClient for DroppingTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let resp = self.inner.execute_request(request).await?;
        if self.drop_on.contains(&n) {
            let _ = resp.into_body().collect().await;
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Io,
                "connection reset by peer (injected)",
            ));
        }
        Ok(resp)
    }
}

/// Captures everything logged at TRACE level (this crate's and the Azure SDK's logs).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures every TRACE-level log line of this test binary (ours and the Azure SDK's, from any
/// thread) into one shared buffer. Tests run in parallel, so the text holds other tests' logs
/// too: a check that a secret is absent is only stronger for it.
pub fn capture_logs() -> (LogCapture, ()) {
    static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
    let cap = CAPTURE
        .get_or_init(|| {
            let cap = LogCapture::default();
            let sub = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(cap.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(sub).expect("no other global subscriber in tests");
            cap
        })
        .clone();
    (cap, ())
}
