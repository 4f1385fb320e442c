//! WebSocket sessions: live notifications out, events in. Both ping the peer and drop
//! it when it stays silent; a notification subscriber that falls behind its buffer is
//! disconnected with a close reason, so a slow reader never slows ingestion.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::clock::uptime_ms;

use super::dto::notification_json;
use super::error::ApiError;
use super::handlers::events::ingest_json;
use super::handlers::query;
use super::state::AppState;

fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<(HttpResponse, Session, MessageStream), ApiError> {
    actix_ws::handle(req, body)
        .map_err(|e| ApiError::invalid_request(format!("expected a WebSocket upgrade: {e}"), None))
}

fn segment_filter(req: &HttpRequest) -> Result<Option<Vec<u64>>, ApiError> {
    let Some(raw) = query(req)?.remove("segments") else {
        return Ok(None);
    };
    raw.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| part.trim().parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|_| {
            ApiError::invalid_request(
                "segments must be a comma-separated list of segment ids",
                Some("segments"),
            )
        })
}

/// Counts silence on a connection: any frame from the peer resets it.
struct Heartbeat {
    interval: tokio::time::Interval,
    every: Duration,
    silent: Duration,
    timeout: Duration,
}

impl Heartbeat {
    fn new(state: &AppState) -> Heartbeat {
        let every = Duration::from_secs(state.config.notifications.ping_interval_secs);
        Heartbeat {
            interval: tokio::time::interval_at(tokio::time::Instant::now() + every, every),
            every,
            silent: Duration::ZERO,
            timeout: Duration::from_secs(state.config.notifications.peer_timeout_secs),
        }
    }

    /// Waits for the next ping time; returns false when the peer has been silent too long.
    async fn tick(&mut self) -> bool {
        self.interval.tick().await;
        self.silent += self.every;
        self.silent <= self.timeout
    }

    fn heard(&mut self) {
        self.silent = Duration::ZERO;
    }
}

/// Counts messages per wall-clock second on one socket.
struct MessageRate {
    limit: u32,
    second: u64,
    seen: u32,
}

impl MessageRate {
    fn new(limit: u32) -> MessageRate {
        MessageRate {
            limit,
            second: uptime_ms() / 1000,
            seen: 0,
        }
    }

    /// Counts one message; false when this second's budget is spent.
    fn allow(&mut self) -> bool {
        let second = uptime_ms() / 1000;
        if second != self.second {
            self.second = second;
            self.seen = 0;
        }
        self.seen += 1;
        self.seen <= self.limit
    }
}

fn closing(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(description.to_owned()),
    })
}

/// `GET /api/v1/notifications/ws[?segments=1,2]`
pub async fn notifications(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let filter = segment_filter(&req)?;
    // Another node relays this node's own users' changes; it has the rest already.
    let own_only = super::peers::is_forwarded(&req);
    let subscribers = state.metrics.notification_subscribers.get();
    if subscribers >= state.config.notifications.max_subscribers as i64 {
        return Err(ApiError::Overloaded(format!(
            "{subscribers} subscribers already: retry later"
        )));
    }
    let (response, mut session, mut stream) = upgrade(&req, body)?;
    let mut feed = state.hub.subscribe();
    let metrics = state.metrics.clone();
    metrics.notification_subscribers.inc();
    let mut heartbeat = Heartbeat::new(&state);
    let send_timeout = Duration::from_secs(state.config.notifications.send_timeout_secs);
    actix_rt::spawn(async move {
        let reason = loop {
            tokio::select! {
                next = feed.recv() => match next {
                    Ok(notification) if own_only && notification.relayed => {}
                    Ok(notification) => {
                        let Some(text) = notification_json(&notification, filter.as_deref()) else { continue };
                        match tokio::time::timeout(send_timeout, session.text(text)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_closed)) => break None,
                            Err(_slow) => {
                                metrics.notification_dropped_subscribers.inc();
                                break closing(CloseCode::Policy, "subscriber is not reading");
                            }
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        metrics.notification_dropped_subscribers.inc();
                        let why = format!("subscriber fell behind by {missed} messages");
                        break closing(CloseCode::Policy, &why);
                    }
                    Err(RecvError::Closed) => break closing(CloseCode::Away, "node is stopping"),
                },
                incoming = stream.recv() => match incoming {
                    Some(Ok(Message::Ping(bytes))) => {
                        heartbeat.heard();
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                    Some(Ok(_)) => heartbeat.heard(),
                },
                alive = heartbeat.tick() => {
                    if !alive {
                        break closing(CloseCode::Away, "peer stopped answering pings");
                    }
                    if !matches!(tokio::time::timeout(send_timeout, session.ping(b"")).await, Ok(Ok(()))) {
                        break None;
                    }
                }
            }
        };
        metrics.notification_subscribers.dec();
        let _closed_or_stuck = tokio::time::timeout(send_timeout, session.close(reason)).await;
    });
    Ok(response)
}

/// `GET /api/v1/events/ws`: each text message is one event or an array; answered with
/// `{"ack": N}` once durable, or an error (the connection stays open).
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (response, mut session, stream) = upgrade(&req, body)?;
    let limit = state.config.ingest.max_body_bytes;
    let mut stream = stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit);
    let mut heartbeat = Heartbeat::new(&state);
    let mut rate = MessageRate::new(state.config.ingest.ws_max_messages_per_s);
    actix_rt::spawn(async move {
        let reason = loop {
            tokio::select! {
                incoming = stream.recv() => {
                    heartbeat.heard();
                    let answer = match incoming {
                        Some(Ok(actix_ws::AggregatedMessage::Text(_))) if !rate.allow() => {
                            ApiError::RateLimited {
                                message: "too many messages per second on this socket".into(),
                                retry_after_s: 1,
                            }
                            .body_json()
                        }
                        Some(Ok(actix_ws::AggregatedMessage::Text(text))) => {
                            match ingest_json(&state, text.as_bytes(), false).await {
                                Ok(n) => json!({"ack": n}).to_string(),
                                Err(e) => e.body_json(),
                            }
                        }
                        Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                            ApiError::invalid_request("send events as text messages", None).body_json()
                        }
                        Some(Ok(actix_ws::AggregatedMessage::Ping(bytes))) => {
                            if session.pong(&bytes).await.is_err() {
                                break None;
                            }
                            continue;
                        }
                        Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => continue,
                        Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None => break None,
                        Some(Err(e)) => break closing(CloseCode::Protocol, &e.to_string()),
                    };
                    if session.text(answer).await.is_err() {
                        break None;
                    }
                }
                alive = heartbeat.tick() => {
                    if !alive {
                        break closing(CloseCode::Away, "peer stopped answering pings");
                    }
                    if session.ping(b"").await.is_err() {
                        break None;
                    }
                }
            }
        };
        let _already_closed = session.close(reason).await;
    });
    Ok(response)
}
