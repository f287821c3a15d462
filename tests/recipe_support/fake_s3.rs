//! A recording S3 fake for bucket-level calls (HEAD/PUT/GET list/DELETE on `/{bucket}`, path
//! style) with injected faults (503 `SlowDown`, 500) and a delayable create, for the R2 recipe
//! tests that count mutating calls.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackup::r2::{R2Client, R2Config};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
pub struct S3State {
    pub buckets: BTreeSet<String>,
    pub log: Vec<(String, String)>,
    pub faults: Vec<(&'static str, u16, u32)>,
    pub create_delay: Option<Duration>,
}

#[derive(Clone, Default)]
pub struct FakeS3(pub Arc<Mutex<S3State>>);

impl FakeS3 {
    pub fn mutating(&self) -> usize {
        self.0.lock().unwrap().log.iter().filter(|(m, _)| m != "GET" && m != "HEAD").count()
    }
    pub fn count(&self, method: &str) -> usize {
        self.0.lock().unwrap().log.iter().filter(|(m, _)| m == method).count()
    }
    pub fn fault(&self, method: &'static str, status: u16, times: u32) {
        self.0.lock().unwrap().faults.push((method, status, times));
    }
}

fn s3_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("content-type", "application/xml").set_body_string(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    ))
}

impl Respond for FakeS3 {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let method = req.method.as_str().to_owned();
        s.log.push((method.clone(), req.url.to_string()));
        if let Some(f) = s.faults.iter_mut().find(|f| f.0 == method && f.2 > 0) {
            f.2 -= 1;
            let code = if f.1 == 503 { "SlowDown" } else { "InternalError" };
            return s3_error(f.1, code);
        }
        let bucket = req.url.path().trim_start_matches('/').split('/').next().unwrap_or_default().to_owned();
        let exists = s.buckets.contains(&bucket);
        match method.as_str() {
            "HEAD" if exists => ResponseTemplate::new(200),
            "HEAD" => ResponseTemplate::new(404),
            "PUT" => {
                s.buckets.insert(bucket.clone());
                let r = ResponseTemplate::new(200).insert_header("location", format!("/{bucket}").as_str());
                match s.create_delay.take() {
                    Some(d) => r.set_delay(d),
                    None => r,
                }
            }
            "GET" if exists => {
                ResponseTemplate::new(200).insert_header("content-type", "application/xml").set_body_string(format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>{bucket}</Name><Prefix></Prefix>\
                     <KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"
                ))
            }
            "DELETE" if exists => {
                s.buckets.remove(&bucket);
                ResponseTemplate::new(204)
            }
            _ => s3_error(404, "NoSuchBucket"),
        }
    }
}

pub async fn fake_s3() -> (MockServer, FakeS3, R2Client) {
    let server = MockServer::start().await;
    let fake = FakeS3::default();
    Mock::given(wiremock::matchers::any()).respond_with(fake.clone()).mount(&server).await;
    let config = R2Config::for_endpoint(&server.uri(), "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG")
        .unwrap()
        .with_s3_retry(4, Duration::from_millis(1));
    (server, fake, R2Client::new(config).unwrap())
}
