//! Operations: health, readiness, metrics, the cluster's nodes, and activity totals.

use std::sync::atomic::Ordering;

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::super::dto::time;
use super::super::error::ApiError;
use super::super::peers::{gather, is_forwarded};
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

/// `GET /api/v1/cluster[?user_id=N]`: the nodes as this node sees them; without a
/// `[cluster]` section the node is a cluster of one, and owns every user.
pub async fn cluster(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = query(&req)?;
    let cluster = &state.cluster;
    let nodes: Vec<Value> = cluster
        .states()
        .into_iter()
        .map(|(node, node_state)| json!({"id": node.id, "addr": node.addr, "state": node_state}))
        .collect();
    let mut body = json!({"node_id": cluster.node(cluster.me()).id, "nodes": nodes});
    if let Some(raw) = params.get("user_id") {
        let user = raw.parse::<u64>().map_err(|_| {
            ApiError::invalid_request("user_id must be a positive integer", Some("user_id"))
        })?;
        body["owner"] = json!(cluster.node(cluster.user_owner(user)).id);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/activities`: this node's totals, plus every other node's in a cluster.
pub async fn activities(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut totals: BTreeMap<String, (u64, Option<String>)> = state
        .totals
        .snapshot()
        .into_iter()
        .map(|(name, s)| (name, (s.count, s.last_at.map(time))))
        .collect();
    if !state.cluster.is_single() && !is_forwarded(&req) {
        for part in gather(&state, "/api/v1/activities").await? {
            let theirs = part["activities"].as_array().cloned().unwrap_or_default();
            for activity in theirs {
                let Some(name) = activity["activity_type"].as_str() else {
                    continue;
                };
                let entry = totals.entry(name.to_owned()).or_default();
                entry.0 += activity["count"].as_u64().unwrap_or(0);
                // RFC 3339 UTC with milliseconds: text order is time order.
                let last_at = activity["last_at"].as_str().map(str::to_owned);
                entry.1 = entry.1.take().max(last_at);
            }
        }
    }
    let activities: Vec<Value> = totals
        .into_iter()
        .map(|(name, (count, last_at))| json!({"activity_type": name, "count": count, "last_at": last_at}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"activities": activities})))
}
