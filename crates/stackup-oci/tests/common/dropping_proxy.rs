//! A loopback HTTP/1.1 proxy that forwards requests to the fake OCI and, for the first `n`
//! requests whose request line starts with a given prefix, **drops the client connection after
//! the server has processed the request** (the response is read from upstream and discarded):
//! a real "connection reset, outcome unknown" rather than a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct DroppingProxy {
    pub url: String,
    pub dropped: Arc<AtomicU32>,
}

/// Reads one HTTP message (headers + content-length body) from `s`; `None` at EOF.
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 8192];
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let msg: Vec<u8> = buf.drain(..total).collect();
            return Some(msg);
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl DroppingProxy {
    pub async fn start(upstream: String, prefix: &'static str, n: u32) -> DroppingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let remaining = Arc::new(AtomicU32::new(n));
        let dropped = Arc::new(AtomicU32::new(0));
        let d = dropped.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let remaining = remaining.clone();
                let dropped = d.clone();
                tokio::spawn(async move {
                    let mut cbuf = vec![];
                    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                    let mut sbuf = vec![];
                    while let Some(req) = read_message(&mut client, &mut cbuf).await {
                        if server.write_all(&req).await.is_err() {
                            return;
                        }
                        let Some(resp) = read_message(&mut server, &mut sbuf).await else { return };
                        if req.starts_with(prefix.as_bytes())
                            && remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1)).is_ok()
                        {
                            dropped.fetch_add(1, Ordering::SeqCst);
                            return; // drop the client connection: the response is lost
                        }
                        if client.write_all(&resp).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        DroppingProxy { url, dropped }
    }
}
