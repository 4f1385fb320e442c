//! HTTP ingestion: `POST /api/v1/events`, one request in flight per keep-alive
//! connection, written to and read from the socket directly.
//!
//! The load generator shares two cores with the node it measures, so what it spends per
//! request is taken from the node. Through awc a single-event request cost ~27 µs of the
//! generator's CPU (a self-wake through its eventfd and an extra poll per request); this
//! costs about what `wrk` does. awc still serves the setup, the probes and `/metrics`.

use std::io::Write as _;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::api::{check_count, CountField};
use crate::clock::instant_now;
use crate::load::{Transport, CONNECT};
use crate::target::Target;

/// How long one request may take before it counts as a `timeout` error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of an answer's head (status line and headers).
const MAX_HEAD_BYTES: usize = 16 << 10;
/// Most bytes of an answer's body (ingestion answers are a few dozen bytes).
const MAX_BODY_BYTES: usize = 1 << 20;
/// Most headers an answer may carry.
const MAX_HEADERS: usize = 32;
/// A connection idle this long is checked before it is used again: the node closes idle
/// keep-alive connections (`[server] keep_alive_secs`), and a request written to a
/// closed one would fail although the node never saw it.
const CHECK_IDLE_AFTER: Duration = Duration::from_millis(500);

/// One keep-alive HTTP/1.1 connection, opened on first use and again after a failure.
pub struct HttpTransport {
    target: Target,
    /// The request head up to and including `content-length: `.
    head: String,
    stream: Option<TcpStream>,
    /// When the connection last finished an exchange.
    last_used: Option<Instant>,
    /// How long the connection may sit idle before it is checked.
    check_idle_after: Duration,
    /// What was read of the current answer.
    buffer: Vec<u8>,
    /// The request being written (kept to reuse its allocation).
    request: Vec<u8>,
}

/// An answer read off the connection.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    /// Whether the node closes the connection after it.
    closes: bool,
}

impl HttpTransport {
    /// Returns a transport to `target` that sends `key` as a bearer token when given;
    /// it connects on its first request.
    pub fn new(target: &Target, key: Option<&str>) -> HttpTransport {
        let host = if target.host.contains(':') {
            format!("[{}]:{}", target.host, target.port)
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let auth = key.map_or(String::new(), |key| {
            format!("authorization: Bearer {key}\r\n")
        });
        HttpTransport {
            target: target.clone(),
            head: format!(
                "POST /api/v1/events HTTP/1.1\r\nhost: {host}\r\n{auth}\
                 content-type: application/json\r\ncontent-length: "
            ),
            stream: None,
            last_used: None,
            check_idle_after: CHECK_IDLE_AFTER,
            buffer: Vec::with_capacity(4096),
            request: Vec::with_capacity(4096),
        }
    }

    /// Sends the request and reads its answer; `Err` is the errors table's label.
    async fn exchange(&mut self, body: &str) -> Result<Answer, String> {
        let idle = self
            .last_used
            .is_some_and(|at| instant_now().duration_since(at) >= self.check_idle_after);
        if idle && !self.stream.as_ref().is_some_and(still_open) {
            self.stream = None;
        }
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect((self.target.host.as_str(), self.target.port))
                    .await
                    .map_err(|_| CONNECT.to_owned())?;
                // Small requests must not wait for Nagle's algorithm.
                stream.set_nodelay(true).map_err(|_| CONNECT.to_owned())?;
                self.stream.insert(stream)
            }
        };
        self.request.clear();
        self.request.extend_from_slice(self.head.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(self.request, "{}\r\n\r\n", body.len());
        self.request.extend_from_slice(body.as_bytes());
        stream
            .write_all(&self.request)
            .await
            .map_err(|_| "send".to_owned())?;
        read_answer(stream, &mut self.buffer).await
    }
}

impl Transport for HttpTransport {
    async fn send(&mut self, body: String, events: usize) -> Result<(), String> {
        let exchanged = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(&body)).await;
        self.last_used = Some(instant_now());
        let answer = match exchanged {
            Ok(Ok(answer)) => answer,
            Ok(Err(label)) => {
                self.stream = None;
                return Err(label);
            }
            Err(_elapsed) => {
                self.stream = None;
                return Err("timeout".into());
            }
        };
        if answer.closes {
            self.stream = None;
        }
        match answer.status {
            202 => check_count(&answer.body, CountField::Accepted, events),
            status => Err(format!("http {status}")),
        }
    }
}

/// Returns whether the node has not closed `stream`: nothing to read, and no end of
/// stream (the socket is non-blocking, so the peek never waits).
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit()];
    matches!(
        socket2::SockRef::from(stream).peek(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    )
}

/// Reads one answer (its head, then a body of `content-length` bytes) into `buffer`.
async fn read_answer(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<Answer, String> {
    buffer.clear();
    let (status, head_len, body_len, closes) = loop {
        if let Some(head) = parse_head(buffer)? {
            break head;
        }
        if buffer.len() >= MAX_HEAD_BYTES {
            return Err("response".into());
        }
        read_more(stream, buffer).await?;
    };
    while buffer.len() < head_len + body_len {
        read_more(stream, buffer).await?;
    }
    if buffer.len() > head_len + body_len {
        // Nothing was asked for beyond this answer.
        return Err("response".into());
    }
    Ok(Answer {
        status,
        body: buffer.split_off(head_len),
        closes,
    })
}

/// Appends what the socket has to `buffer`; the node closing the connection is an error.
async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), String> {
    buffer.reserve(4096);
    match stream.read_buf(buffer).await {
        Ok(0) | Err(_) => Err("response".into()),
        Ok(_) => Ok(()),
    }
}

/// Parses an answer's head: `None` until it is complete, then its status, its length,
/// the body's length and whether the node closes the connection. An answer without a
/// `content-length` (chunked, or ended by closing) is not one the node sends here.
fn parse_head(buffer: &[u8]) -> Result<Option<(u16, usize, usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("response".into()),
    };
    let status = response.code.ok_or_else(|| "response".to_owned())?;
    let mut body_len = None;
    let mut closes = response.version == Some(0);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(header.value)
                .ok()
                .and_then(|value| value.trim().parse::<usize>().ok());
        } else if header.name.eq_ignore_ascii_case("connection") {
            closes = header.value.eq_ignore_ascii_case(b"close");
        }
    }
    match body_len {
        Some(len) if len <= MAX_BODY_BYTES => Ok(Some((status, head_len, len, closes))),
        _ => Err("response".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_read_once_complete() {
        let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 14\r\ncontent-type: application/json\r\n\r\n{\"accepted\":1}";
        assert_eq!(parse_head(&answer[..30]), Ok(None));
        let (status, head_len, body_len, closes) =
            parse_head(answer).expect("valid").expect("complete");
        assert_eq!((status, body_len, closes), (202, 14, false));
        assert_eq!(&answer[head_len..], b"{\"accepted\":1}");
    }

    #[test]
    fn a_closing_answer_is_noted() {
        let answer =
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_head(answer), Ok(Some((503, answer.len(), 0, true))));
        let old = b"HTTP/1.0 202 Accepted\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_head(old).expect("valid").map(|h| h.3), Some(true));
    }

    #[test]
    fn answers_without_a_length_or_garbage_are_errors() {
        let chunked = b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked), Err("response".into()));
        assert_eq!(parse_head(b"SMTP ready\r\n\r\n"), Err("response".into()));
        let huge = b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n";
        assert_eq!(parse_head(huge), Err("response".into()));
    }

    /// Answers one request on each connection it accepts, then closes it, as a node
    /// does with an idle keep-alive connection; says on `closed` when it has.
    fn closing_server(closed: std::sync::mpsc::Sender<()>) -> Target {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for connection in listener.incoming().take(2) {
                let mut connection = connection.expect("accept");
                let mut request = [0u8; 4096];
                let _ = connection.read(&mut request).expect("request");
                let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 14\r\n\r\n{\"accepted\":1}";
                connection.write_all(answer).expect("answer");
                drop(connection);
                closed.send(()).expect("test waits");
            }
        });
        Target::parse(&format!("http://127.0.0.1:{port}")).expect("valid")
    }

    #[actix_rt::test]
    async fn a_connection_the_node_closed_is_opened_again() {
        let (closed, was_closed) = std::sync::mpsc::channel();
        let target = closing_server(closed);
        let mut transport = HttpTransport::new(&target, None);
        transport.check_idle_after = Duration::ZERO;
        assert_eq!(transport.send("{}".into(), 1).await, Ok(()));
        was_closed.recv().expect("closed");
        assert_eq!(transport.send("{}".into(), 1).await, Ok(()));
        was_closed.recv().expect("closed");
    }

    #[actix_rt::test]
    async fn without_the_check_a_closed_connection_fails() {
        let (closed, was_closed) = std::sync::mpsc::channel();
        let target = closing_server(closed);
        let mut transport = HttpTransport::new(&target, None);
        assert_eq!(transport.send("{}".into(), 1).await, Ok(()));
        was_closed.recv().expect("closed");
        // Used again at once: not checked, so the request meets the closed connection.
        assert_eq!(transport.send("{}".into(), 1).await, Err("response".into()));
        // The failure dropped it: the next request opens a new one.
        assert_eq!(transport.send("{}".into(), 1).await, Ok(()));
    }

    #[test]
    fn the_head_names_the_host_and_the_key() {
        let target = Target::parse("http://[::1]:9000").expect("valid");
        let transport = HttpTransport::new(&target, Some("k_1"));
        assert!(transport
            .head
            .starts_with("POST /api/v1/events HTTP/1.1\r\n"));
        assert!(transport.head.contains("host: [::1]:9000\r\n"));
        assert!(transport.head.contains("authorization: Bearer k_1\r\n"));
        assert!(transport.head.ends_with("content-length: "));
    }
}
