//! Operations: health, readiness, metrics, and node-wide activity totals.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::super::dto::time;
use super::super::error::ApiError;
use super::super::state::AppState;
use super::query;

/// `GET /healthz`
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.ready.load(Ordering::SeqCst) {
        HttpResponse::ServiceUnavailable().json(json!({"status": "not_serving"}))
    } else if !state.health.is_ok() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "storage_failing"}))
    } else {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    }
}

/// `GET /metrics`
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// `GET /api/v1/cluster[?user_id=N]`: without a `[cluster]` section the node is a
/// cluster of one, and owns every user.
pub async fn cluster(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = query(&req)?;
    let node_id = &state.config.server.node_id;
    let mut body = json!({
        "node_id": node_id,
        "nodes": [{"id": node_id, "addr": state.config.server.bind, "state": "up"}],
    });
    if let Some(raw) = params.get("user_id") {
        raw.parse::<u64>().map_err(|_| {
            ApiError::invalid_request("user_id must be a positive integer", Some("user_id"))
        })?;
        body["owner"] = json!(node_id);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/activities`
pub async fn activities(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let activities: Vec<_> = state
        .totals
        .snapshot()
        .into_iter()
        .map(|(name, s)| json!({"activity_type": name, "count": s.count, "last_at": s.last_at.map(time)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"activities": activities})))
}
