//! A small HTTP and WebSocket client for the black-box tests.

use std::net::SocketAddr;
use std::time::Duration;

use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

/// A node the tests address: its HTTP and WebSocket URLs come from its address.
pub trait Endpoint {
    /// Returns the node's address.
    fn addr(&self) -> SocketAddr;

    /// Returns the URL of `path` on this node.
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// Returns the WebSocket URL of `path` on this node.
    fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr(), path)
    }
}

/// An answer: status, `Allow`/`Retry-After`/`Location` headers, JSON body (or `Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub allow: Option<String>,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    pub body: Value,
}

/// Sends `method url` with an optional raw body; panics if no answer comes.
pub async fn call_for_test(method: &str, url: &str, body: Option<&str>) -> Answer {
    try_call_for_test(method, url, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Sends `method url` with an optional raw body; an error if no answer comes (the
/// node is not listening yet, or it died).
pub async fn try_call_for_test(
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<Answer, String> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .disable_redirects()
        .finish();
    let request = client
        .request(method.parse().expect("method"), url)
        .insert_header(("content-type", "application/json"));
    let mut response = match body {
        Some(body) => request.send_body(body.to_owned()).await,
        None => request.send().await,
    }
    .map_err(|e| e.to_string())?;
    let bytes = response
        .body()
        .limit(64 << 20)
        .await
        .map_err(|e| e.to_string())?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    let (allow, retry_after, location) =
        (header("allow"), header("retry-after"), header("location"));
    Ok(Answer {
        status: response.status().as_u16(),
        allow,
        retry_after,
        location,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// Returns the Prometheus text of `url` (a node's `/metrics`).
pub async fn text_for_test(url: &str) -> String {
    let mut response = awc::Client::new()
        .get(url)
        .send()
        .await
        .expect("metrics answer");
    let body = response.body().await.expect("metrics body");
    String::from_utf8_lossy(&body).into_owned()
}

/// A connected WebSocket.
pub struct Socket {
    inner: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
}

impl Socket {
    /// Connects to `url`.
    pub async fn connect_for_test(url: &str) -> Socket {
        let (_, inner) = awc::Client::new()
            .ws(url)
            .max_frame_size(16 << 20)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Socket { inner }
    }

    /// Sends a text message.
    pub async fn send_for_test(&mut self, text: &str) {
        self.inner
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// Returns the next text message as JSON, or `None` after `wait` of silence or a close.
    pub async fn next_json_for_test(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(wait, self.inner.next()).await.ok()??;
            match frame.ok()? {
                Frame::Text(bytes) => return serde_json::from_slice(&bytes).ok(),
                Frame::Ping(bytes) => {
                    let _ = self.inner.send(Message::Pong(bytes)).await;
                }
                Frame::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads messages until one about `user` arrives (others are passed over); panics
    /// after `wait` of silence.
    pub async fn next_about_for_test(&mut self, user: u64, wait: Duration) -> Value {
        loop {
            let message = self
                .next_json_for_test(wait)
                .await
                .unwrap_or_else(|| panic!("a notification about user {user}"));
            if message["user_id"] == user {
                return message;
            }
        }
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn wait_until_for_test<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Opens a notification WebSocket that never reads, with a tiny receive buffer.
pub fn stalled_subscriber_for_test(addr: std::net::SocketAddr, path: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("recv buffer");
    socket.connect(&addr.into()).expect("connect");
    let mut stream: std::net::TcpStream = socket.into();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("handshake");
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("handshake answer");
        seen.push(byte[0]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    stream
}

/// Returns the value of the sample `name` (with its labels, if any, as written) in the
/// Prometheus text `metrics`, if it has one.
pub fn sample_for_test(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Waits until the Prometheus text at `url` holds the line `needle` (or 5 s pass).
pub async fn wait_for_metric_for_test(url: &str, needle: &str) -> bool {
    wait_until_for_test(Duration::from_secs(5), || async {
        text_for_test(url).await.contains(needle)
    })
    .await
}
