//! Requests that other nodes serve: forwarding one to the owner of its user or identity,
//! relaying the answer as it came, and asking every node for its part of a node-wide
//! answer. A request forwarded by a node (`x-uss-forwarded-by`) is served from this
//! node's own state and never forwarded again.

use std::sync::atomic::Ordering;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{Error, HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde_json::Value;

use crate::cluster::forward::JSON;
use crate::cluster::{Answer, Outgoing, OwnerUnavailable, Route, FORWARDED_BY};

use super::error::ApiError;
use super::state::AppState;

impl From<OwnerUnavailable> for ApiError {
    fn from(e: OwnerUnavailable) -> Self {
        ApiError::OwnerUnavailable(e.to_string())
    }
}

/// Middleware: until the node is ready (state recovered, cluster joined) API requests
/// from clients get `503`; other nodes are served, since a node catching up asks them.
pub async fn ready_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, Error> {
    let starting = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| !state.ready.load(Ordering::SeqCst));
    if starting && req.path().starts_with("/api/") && !req.headers().contains_key(FORWARDED_BY) {
        let refused =
            ApiError::Unavailable("the node is starting or stopping; retry shortly".into());
        return Ok(req.error_response(refused).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Returns whether another node sent this request.
pub fn is_forwarded(req: &HttpRequest) -> bool {
    req.headers().contains_key(FORWARDED_BY)
}

/// Returns the node that should serve a request about something in `shard`, when that
/// is not this node; `503 owner_unavailable` when no node may serve it now (a shard being
/// handed over, or a forwarded request this node does not serve).
pub fn elsewhere(
    state: &AppState,
    req: &HttpRequest,
    shard: u16,
) -> Result<Option<usize>, ApiError> {
    serving_node(state, shard, is_forwarded(req))
}

/// Returns the node that serves `shard` now when it is another one (`None`: this one);
/// `503 owner_unavailable` when none may. Asked for a `forwarded` request, it never
/// names another node.
pub fn serving_node(
    state: &AppState,
    shard: u16,
    forwarded: bool,
) -> Result<Option<usize>, ApiError> {
    match state.cluster.route(shard, forwarded) {
        Route::Local => Ok(None),
        Route::Forward(position) => Ok(Some(position)),
        Route::Unavailable(why) => Err(ApiError::OwnerUnavailable(why)),
    }
}

/// Turns another node's answer into this node's.
pub fn relay(answer: Answer) -> HttpResponse {
    let mut response = HttpResponse::build(answer.status);
    for (name, value) in &answer.headers {
        response.insert_header((name.clone(), value.clone()));
    }
    response.body(answer.body)
}

/// Sends the request as it came (method, path, query, body) to the node at `position`
/// and relays its answer.
pub async fn proxy(
    state: &AppState,
    req: &HttpRequest,
    position: usize,
    body: Option<Bytes>,
) -> Result<HttpResponse, ApiError> {
    let path = match req.uri().path_and_query() {
        Some(path) => path.as_str(),
        None => req.path(),
    };
    let answer = state
        .cluster
        .send(
            position,
            Outgoing {
                method: req.method().clone(),
                path,
                body: body.map(|body| (JSON, body)),
            },
        )
        .await?;
    Ok(relay(answer))
}

/// Asks every other node for its own part of a `GET` answer (the same path); an error
/// answer from any of them is this request's answer.
pub async fn gather(state: &AppState, path: &str) -> Result<Vec<Value>, ApiError> {
    let asks = state
        .cluster
        .others()
        .map(|position| state.cluster.send(position, Outgoing::get(path)));
    let mut parts = Vec::new();
    for answer in join_all(asks).await {
        parts.push(json_answer(answer?)?);
    }
    Ok(parts)
}

/// Sends the same request to every other node that is up (one that is down catches up
/// when it starts); returns the first answer that is not a success, if any.
pub async fn broadcast(
    state: &AppState,
    method: actix_web::http::Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<Option<HttpResponse>, ApiError> {
    let up: Vec<usize> = state
        .cluster
        .others()
        .filter(|position| state.cluster.is_up(*position))
        .collect();
    let sends = up.into_iter().map(|position| {
        state.cluster.send(
            position,
            Outgoing {
                method: method.clone(),
                path,
                body: body.clone().map(|body| (JSON, body)),
            },
        )
    });
    for answer in join_all(sends).await {
        let answer = answer?;
        if !answer.status.is_success() {
            return Ok(Some(relay(answer)));
        }
    }
    Ok(None)
}

/// Reads a successful JSON answer; any other is reported as it came.
fn json_answer(answer: Answer) -> Result<Value, ApiError> {
    if answer.status != StatusCode::OK {
        return Err(ApiError::Relayed(Box::new(answer)));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|e| ApiError::Unavailable(format!("a node answered invalid JSON: {e}")))
}
