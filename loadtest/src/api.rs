//! The node's HTTP API as the load generator uses it: one awc client per connection,
//! events, users by identity, segments, the dev clock and `/metrics`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use awc::error::SendRequestError;
use awc::http::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::target::Target;

/// How long one request may take before it counts as a `timeout` error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer body read (answers are small; segments lists can grow).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// One HTTP connection to the node (an awc client whose pool holds one connection).
#[derive(Clone)]
pub struct Api {
    client: awc::Client,
    target: Target,
}

/// A segment as the node lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Segment {
    /// The node's id.
    pub id: u64,
    /// The unique name.
    pub name: String,
}

impl Api {
    /// Returns a client of `target` with one connection, sending `key` as a bearer
    /// token when given.
    pub fn new(target: &Target, key: Option<&str>) -> Api {
        Api::with_connections(target, key, 1)
    }

    /// Returns a client of `target` that opens up to `connections` connections, so that
    /// that many requests can be in flight at once.
    pub fn with_connections(target: &Target, key: Option<&str>, connections: usize) -> Api {
        let mut builder = awc::Client::builder()
            .connector(awc::Connector::new().limit(connections))
            .timeout(REQUEST_TIMEOUT)
            .disable_redirects();
        if let Some(key) = key {
            builder = builder.bearer_auth(key);
        }
        Api {
            client: builder.finish(),
            target: target.clone(),
        }
    }

    /// Posts a body of `events` events; `Ok` on `202 {"accepted": events}`, else the
    /// error's label (`http 503`, `timeout`, `connect`, …) for the errors table.
    pub async fn post_events(&self, body: String, events: usize) -> Result<(), String> {
        let sent = self
            .client
            .post(self.target.url("/api/v1/events"))
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await;
        let mut response = sent.map_err(|e| send_error_label(&e))?;
        // Reading the body frees the connection for the next request.
        let read = response.body().limit(MAX_ANSWER_BYTES).await;
        match (response.status().as_u16(), read) {
            (202, Ok(answer)) => check_count(&answer, CountField::Accepted, events),
            (202, Err(_)) => Err("body read".into()),
            (status, _) => Err(format!("http {status}")),
        }
    }

    /// Sends `method path` with an optional JSON body; returns the status and JSON answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = self.target.url(path);
        let request = self.client.request(method.clone(), &url);
        let sent = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| anyhow!("{method} {url}: {e}"))?;
        let bytes = response
            .body()
            .limit(MAX_ANSWER_BYTES)
            .await
            .with_context(|| format!("{method} {url}: reading the answer"))?;
        let status = response.status().as_u16();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, json))
    }

    /// Returns the node's dev clock in Unix milliseconds, or `None` when the node runs on
    /// the system clock (the route is then 404) or this key may not read it.
    pub async fn dev_clock_ms(&self) -> anyhow::Result<Option<i64>> {
        let (status, answer) = self.call(Method::GET, "/api/v1/admin/clock", None).await?;
        if status != 200 {
            return Ok(None);
        }
        let now = answer
            .get("now")
            .and_then(Value::as_str)
            .context("GET /api/v1/admin/clock answered without \"now\"")?;
        let at = chrono::DateTime::parse_from_rfc3339(now)
            .with_context(|| format!("the dev clock {now:?} is not RFC 3339"))?;
        Ok(Some(at.timestamp_millis()))
    }

    /// Returns every segment of the node.
    pub async fn segments(&self) -> anyhow::Result<Vec<Segment>> {
        let (status, answer) = self.call(Method::GET, "/api/v1/segments", None).await?;
        if status != 200 {
            bail!("GET /api/v1/segments answered {status}: {answer}");
        }
        let list = answer.get("segments").cloned().unwrap_or(Value::Null);
        serde_json::from_value(list).context("GET /api/v1/segments: unexpected answer")
    }

    /// Creates a segment and returns it.
    pub async fn create_segment(&self, segment: &Value) -> anyhow::Result<Segment> {
        let (status, answer) = self
            .call(Method::POST, "/api/v1/segments", Some(segment))
            .await?;
        if status != 201 {
            bail!("POST /api/v1/segments {segment} answered {status}: {answer}");
        }
        serde_json::from_value(answer).context("POST /api/v1/segments: unexpected answer")
    }

    /// Returns the `user_id` that owns the cookie `cookie` (letters, digits and `-`
    /// only: it goes in the query string as it is).
    pub async fn user_of_cookie(&self, cookie: &str) -> anyhow::Result<u64> {
        let path = format!("/api/v1/users?clientRefId={cookie}&idType=cookie");
        let (status, answer) = self.call(Method::GET, &path, None).await?;
        match answer.get("user_id").and_then(Value::as_u64) {
            Some(user) if status == 200 => Ok(user),
            _ => bail!("GET {path} answered {status}: {answer}"),
        }
    }

    /// Returns `uss_resident_users` from `/metrics`, if the node exposes it.
    pub async fn resident_users(&self) -> anyhow::Result<Option<u64>> {
        let url = self.target.url("/metrics");
        let mut response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| anyhow!("GET {url}: {e}"))?;
        let bytes = response.body().limit(MAX_ANSWER_BYTES).await?;
        Ok(metric(
            &String::from_utf8_lossy(&bytes),
            "uss_resident_users",
        ))
    }
}

/// Returns the value of the unlabelled metric `name` in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

/// What the generator reads of an ingest answer: the count (`accepted` over HTTP, `ack`
/// over WebSocket) or the error's code; the rest is skipped unparsed. Parsing every
/// answer into a `Value` took ~6% of the generator's CPU in a single-event run.
#[derive(Deserialize)]
struct Counted {
    accepted: Option<u64>,
    ack: Option<u64>,
    error: Option<Refusal>,
}

#[derive(Deserialize)]
struct Refusal {
    code: Option<String>,
}

/// Where an ingest answer counts its events.
#[derive(Clone, Copy, Debug)]
pub enum CountField {
    /// `accepted`, in an HTTP answer.
    Accepted,
    /// `ack`, in an events WebSocket's answer.
    Ack,
}

impl std::fmt::Display for CountField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CountField::Accepted => "accepted",
            CountField::Ack => "ack",
        })
    }
}

/// Checks that the JSON `answer` counts `events` under `field`; an error answer is
/// labelled by its code.
pub fn check_count(answer: &[u8], field: CountField, events: usize) -> Result<(), String> {
    let answer: Counted =
        serde_json::from_slice(answer).map_err(|_| "answer not JSON".to_owned())?;
    if let Some(code) = answer.error.and_then(|error| error.code) {
        return Err(code);
    }
    let count = match field {
        CountField::Accepted => answer.accepted,
        CountField::Ack => answer.ack,
    };
    match count {
        Some(n) if n == events as u64 => Ok(()),
        Some(_) => Err(format!("{field} count mismatch")),
        None => Err(format!("answer without {field}")),
    }
}

/// Returns a short, low-cardinality label for a failed send.
fn send_error_label(error: &SendRequestError) -> String {
    match error {
        SendRequestError::Timeout => "timeout".into(),
        SendRequestError::Connect(_) => crate::load::CONNECT.into(),
        SendRequestError::Send(_) => "send".into(),
        SendRequestError::Response(_) => "response".into(),
        _ => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_unlabelled_metric() {
        let text = "# HELP uss_resident_users users in memory\n\
                    # TYPE uss_resident_users gauge\n\
                    uss_resident_users_total 9\n\
                    uss_resident_users 1234\n";
        assert_eq!(metric(text, "uss_resident_users"), Some(1234));
        assert_eq!(metric(text, "uss_timers_pending"), None);
    }

    #[test]
    fn counts_are_checked_and_errors_labelled_by_code() {
        assert_eq!(check_count(br#"{"ack": 3}"#, CountField::Ack, 3), Ok(()));
        assert_eq!(
            check_count(br#"{"accepted": 2}"#, CountField::Accepted, 3),
            Err("accepted count mismatch".into())
        );
        assert_eq!(
            check_count(
                br#"{"error": {"code": "rate_limited", "message": "slow down"}}"#,
                CountField::Ack,
                1
            ),
            Err("rate_limited".into())
        );
        assert_eq!(
            check_count(b"nope", CountField::Ack, 1),
            Err("answer not JSON".into())
        );
        assert_eq!(
            check_count(
                br#"{"accepted": 1, "ack": 2, "more": [1]}"#,
                CountField::Ack,
                2
            ),
            Ok(()),
            "the named field counts; others are skipped"
        );
        assert_eq!(
            check_count(br#"{"ack": 1}"#, CountField::Accepted, 1),
            Err("answer without accepted".into())
        );
    }
}
