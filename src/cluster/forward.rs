//! Forwarding to another node over pooled keep-alive HTTP/1.1 (awc, one client per
//! thread). A forwarded request carries `x-uss-forwarded-by`: its receiver serves it
//! from its own state and never forwards it again.

use std::time::Duration;

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;

/// Marks a request sent by another node; its value is the sender's node id.
pub const FORWARDED_BY: &str = "x-uss-forwarded-by";

/// Largest answer read from another node (a members page of 10,000 ids is ~200 KB).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Headers of an answer that are passed back to the client.
const ANSWER_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::RETRY_AFTER,
    header::ALLOW,
];

thread_local! {
    static CLIENT: awc::Client = awc::Client::builder()
        .disable_redirects()
        .connector(awc::Connector::new().limit(256))
        .finish();
}

/// A request to send to another node.
pub struct Outgoing<'a> {
    /// The method.
    pub method: Method,
    /// Path and query, e.g. `/api/v1/users/7`.
    pub path: &'a str,
    /// A body, if any, in `JSON` or `MSGPACK`.
    pub body: Option<(&'static str, Bytes)>,
}

/// The content type of JSON bodies.
pub const JSON: &str = "application/json";

/// The content type of MessagePack bodies (records sent between nodes).
pub const MSGPACK: &str = "application/msgpack";

impl<'a> Outgoing<'a> {
    /// A `GET` of `path`.
    pub fn get(path: &'a str) -> Outgoing<'a> {
        Outgoing {
            method: Method::GET,
            path,
            body: None,
        }
    }

    /// A request with a JSON body.
    pub fn json(method: Method, path: &'a str, body: impl Into<Bytes>) -> Outgoing<'a> {
        Outgoing {
            method,
            path,
            body: Some((JSON, body.into())),
        }
    }
}

/// Another node's answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// The headers in `ANSWER_HEADERS` that it set.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

/// Why a node could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("node {addr} did not answer: {reason}")]
pub struct Unreachable {
    /// Its address.
    pub addr: String,
    /// What went wrong.
    pub reason: String,
}

/// Sends `request` to the node at `addr` on behalf of node `me`, with the cluster's
/// credentials (an admin key of the shared configuration, when keys are configured).
pub async fn send(
    addr: &str,
    me: &str,
    credentials: Option<&HeaderValue>,
    request: Outgoing<'_>,
    timeout: Duration,
) -> Result<Answer, Unreachable> {
    let unreachable = |reason: String| Unreachable {
        addr: addr.to_owned(),
        reason,
    };
    let url = format!("http://{addr}{}", request.path);
    let mut outgoing = CLIENT
        .with(|client| client.request(request.method, url))
        .timeout(timeout)
        .insert_header((FORWARDED_BY, me));
    if let Some(credentials) = credentials {
        outgoing = outgoing.insert_header((header::AUTHORIZATION, credentials.clone()));
    }
    let sent = match request.body {
        Some((content_type, body)) => {
            outgoing
                .insert_header((header::CONTENT_TYPE, content_type))
                .send_body(body)
                .await
        }
        None => outgoing.send().await,
    };
    let mut response = sent.map_err(|e| unreachable(e.to_string()))?;
    let body = response
        .body()
        .limit(MAX_ANSWER_BYTES)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut headers = HeaderMap::new();
    for name in ANSWER_HEADERS {
        if let Some(value) = response.headers().get(&name) {
            headers.insert(name, value.clone());
        }
    }
    Ok(Answer {
        status: response.status(),
        headers,
        body,
    })
}
