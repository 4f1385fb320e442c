//! The segment catalog across nodes. The first node of the list keeps it; after each
//! change it hands the segment to every other node (`PUT`/`DELETE
//! /internal/v1/segments/{id}`), and a node that starts takes the keeper's whole catalog
//! (`GET /internal/v1/segments`), since it may have missed changes while it was down.
//! These routes serve other nodes only (they need `x-uss-forwarded-by` and the admin
//! key) and are not part of API.md.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use tracing::{info, warn};

use crate::actors::SegmentDef;
use crate::cluster::Outgoing;

use super::super::body::json_body;
use super::super::error::ApiError;
use super::super::peers::{broadcast, is_forwarded};
use super::super::state::AppState;
use super::path_id;

/// Largest catalog body accepted from another node.
const MAX_CATALOG_BYTES: usize = 16 * 1024 * 1024;

/// Refuses a request that no node sent: internal routes look absent to clients.
pub(super) fn from_a_node(req: &HttpRequest) -> Result<(), ApiError> {
    if is_forwarded(req) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no route {} {}",
            req.method(),
            req.path()
        )))
    }
}

fn encode(value: &impl serde::Serialize) -> Option<web::Bytes> {
    serde_json::to_vec(value).ok().map(Into::into)
}

/// Hands a created or changed segment to every other node. A node that is down or
/// refuses is logged; it takes the catalog again when it starts.
pub async fn share(state: &AppState, def: &SegmentDef) {
    let path = format!("/internal/v1/segments/{}", def.id);
    report(
        broadcast(state, Method::PUT, &path, encode(def)).await,
        def.id,
    );
}

/// Tells every other node that a segment was deleted.
pub async fn share_removal(state: &AppState, id: u64) {
    let path = format!("/internal/v1/segments/{id}");
    report(broadcast(state, Method::DELETE, &path, None).await, id);
}

fn report(outcome: Result<Option<HttpResponse>, ApiError>, segment: u64) {
    match outcome {
        Ok(None) => {}
        Ok(Some(refused)) => {
            warn!(segment, status = %refused.status(), "a node refused a catalog change; it catches up when it restarts")
        }
        Err(e) => {
            warn!(segment, error = %e, "a node missed a catalog change; it catches up when it starts")
        }
    }
}

/// `PUT /internal/v1/segments/{id}`: a segment as the keeper defined it.
pub async fn put(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    from_a_node(&req)?;
    let id = path_id(&req, "id")?;
    let def: SegmentDef = serde_json::from_value(json_body(payload, MAX_CATALOG_BYTES).await?)
        .map_err(|e| ApiError::invalid_request(e.to_string(), None))?;
    if def.id != id {
        return Err(ApiError::invalid_request(
            "the segment's id is not the path's",
            None,
        ));
    }
    state.segments.adopt(def).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /internal/v1/segments/{id}`
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    from_a_node(&req)?;
    match state.segments.delete(path_id(&req, "id")?).await {
        Ok(()) | Err(crate::actors::SegmentError::NotFound(_)) => {
            Ok(HttpResponse::NoContent().finish())
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /internal/v1/segments`: the whole catalog, as stored.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    from_a_node(&req)?;
    let defs: Vec<SegmentDef> = state
        .catalog
        .snapshot()
        .values()
        .map(|segment| segment.def.clone())
        .collect();
    Ok(HttpResponse::Ok().json(defs))
}

/// Takes the keeper's catalog, when this node is not the keeper (when the keeper is
/// down, this node keeps the catalog it has).
pub async fn catch_up(state: &AppState) -> Result<(), ApiError> {
    if state.cluster.me() == 0 {
        return Ok(());
    }
    let request = Outgoing::get("/internal/v1/segments");
    let answer = match state.cluster.ask(0, request).await {
        Ok(answer) if answer.status.is_success() => answer,
        Ok(answer) => return Err(ApiError::Relayed(Box::new(answer))),
        Err(e) => {
            warn!(error = %e, "the catalog's keeper is unavailable; keeping this node's catalog");
            return Ok(());
        }
    };
    let defs: Vec<SegmentDef> = serde_json::from_slice(&answer.body)
        .map_err(|e| ApiError::Unavailable(format!("the keeper sent an invalid catalog: {e}")))?;
    info!(segments = defs.len(), "catalog taken from its keeper");
    state.segments.reconcile(defs).await?;
    Ok(())
}
