//! `GET`/`POST /api/v1/admin/clock`: the dev clock (404 without `--dev-clock`).

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::clock::{ManualClock, DEV_CLOCK_KEY};
use crate::cluster::Outgoing;
use crate::domain::Timestamp;

use super::super::body::json_body;
use super::super::dto::time;
use super::super::error::ApiError;
use super::super::peers::{broadcast, is_forwarded};
use super::super::state::AppState;

fn dev_clock(state: &AppState) -> Result<&Arc<ManualClock>, ApiError> {
    state
        .dev_clock
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no such route (start the node with --dev-clock)".into()))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// `GET /api/v1/admin/clock`
pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let clock = dev_clock(&state)?;
    Ok(HttpResponse::Ok().json(json!({"now": time(crate::clock::Clock::now(clock.as_ref()))})))
}

/// `POST /api/v1/admin/clock {"now": …}`: answers after the flips it causes are pushed,
/// on every node of the cluster that is up (one that is down takes the clock when it
/// starts).
pub async fn set(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    dev_clock(&state)?;
    let body = json_body(payload, 4096).await?;
    let text = match body.get("now") {
        Some(Value::String(text)) => text.clone(),
        _ => {
            return Err(ApiError::invalid_request(
                "now is required, like \"2026-11-10T00:00:00Z\"",
                Some("now"),
            ))
        }
    };
    let now = Timestamp::parse(&text)
        .map_err(|e| ApiError::invalid_request(e.to_string(), Some("now")))?;
    move_clock(&state, now).await?;
    if !state.cluster.is_single() && !is_forwarded(&req) {
        let body = Some(body.to_string().into());
        if let Some(refused) = broadcast(&state, Method::POST, "/api/v1/admin/clock", body).await? {
            return Ok(refused);
        }
    }
    Ok(HttpResponse::Ok().json(json!({"now": time(now)})))
}

/// Sets this node's dev clock, persisted, and fires the timers due by then.
async fn move_clock(state: &AppState, now: Timestamp) -> Result<(), ApiError> {
    let clock = dev_clock(state)?;
    let _one_move_at_a_time = state.clock_moves.lock().await;
    let current = crate::clock::Clock::now(clock.as_ref());
    if now < current && !state.store.has_no_users().map_err(unavailable)? {
        return Err(ApiError::ClockBackwards(format!(
            "the clock cannot move back from {} while users exist",
            time(current)
        )));
    }
    state
        .store
        .set_meta(DEV_CLOCK_KEY, &now)
        .map_err(unavailable)?;
    state.store.flush().await.map_err(unavailable)?;
    clock.set(now);
    let fired = state.timers.fire_due(now).await?;
    info!(now = %now, fired, "dev clock set");
    Ok(())
}

/// Takes the dev clock of the first other node that answers, when this node has a dev
/// clock and is part of a cluster.
pub async fn catch_up(state: &AppState) -> Result<(), ApiError> {
    if state.dev_clock.is_none() {
        return Ok(());
    }
    for position in state.cluster.others() {
        let request = Outgoing::get("/api/v1/admin/clock");
        let Ok(answer) = state.cluster.ask(position, request).await else {
            continue;
        };
        let theirs: Option<Timestamp> = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|body| body["now"].as_str().and_then(|t| Timestamp::parse(t).ok()));
        if let Some(now) = theirs.filter(|_| answer.status.is_success()) {
            let node = &state.cluster.node(position).id;
            return match move_clock(state, now).await {
                Err(ApiError::ClockBackwards(why)) => {
                    warn!(node = %node, now = %now, why, "kept this node's dev clock: the running node's is behind it");
                    Ok(())
                }
                moved => {
                    info!(node = %node, now = %now, "dev clock taken from a running node");
                    moved
                }
            };
        }
    }
    Ok(())
}
