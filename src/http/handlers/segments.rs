//! `/api/v1/segments…`: create, list, read, change, delete, members, count, validate.
//!
//! In a cluster the first node of the list keeps the catalog: segment writes on other
//! nodes are forwarded to it, and it hands each change to every node (`replica.rs`).
//! Counts, members and statuses are gathered from every node.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::actors::{SegmentDef, SegmentPatch};

use super::super::body::json_body;
use super::super::dto::SegmentJson;
use super::super::error::ApiError;
use super::super::peers::{gather, is_forwarded, proxy};
use super::super::state::AppState;
use super::replica;
use super::{path_id, query};

/// Largest segment request body.
const MAX_BODY: usize = 64 * 1024;

fn segment_json(state: &AppState, def: &SegmentDef) -> SegmentJson {
    SegmentJson::new(def, state.store.member_count(def.id))
}

fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid_request(
            "the body must be a JSON object",
            None,
        )),
    }
}

fn string_field(map: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_request(
            format!("{field} must be a string"),
            Some(field),
        )),
    }
}

fn description(map: &Map<String, Value>) -> Result<Option<Option<String>>, ApiError> {
    match map.get("description") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.chars().count() <= 4096 => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::invalid_request(
            "description must be a string of at most 4096 characters or null",
            Some("description"),
        )),
    }
}

fn required(map: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    string_field(map, field)?
        .ok_or_else(|| ApiError::invalid_request(format!("{field} is required"), Some(field)))
}

fn existing(state: &AppState, id: u64) -> Result<SegmentDef, ApiError> {
    state
        .catalog
        .snapshot()
        .get(&id)
        .map(|s| s.def.clone())
        .ok_or_else(|| ApiError::NotFound(format!("segment {id} not found")))
}

/// The node that keeps the catalog, when it is another one and the request came from
/// a client.
fn keeper(state: &AppState, req: &HttpRequest) -> Option<usize> {
    (state.cluster.me() != 0 && !is_forwarded(req)).then_some(0)
}

/// `POST /api/v1/segments`
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(payload, MAX_BODY).await?;
    if let Some(keeper) = keeper(&state, &req) {
        return proxy(&state, &req, keeper, Some(body.to_string().into())).await;
    }
    let map = object(body)?;
    let (name, rule) = (required(&map, "name")?, required(&map, "rule")?);
    let description = description(&map)?.flatten();
    let def = state.segments.create(name, rule, description).await?;
    replica::share(&state, &def).await;
    Ok(HttpResponse::Created().json(segment_json(&state, &def)))
}

/// Adds the other nodes' member counts and statuses to segments described here, asking
/// each for the same route (the list, or one segment).
async fn with_cluster_counts(
    state: &AppState,
    req: &HttpRequest,
    mut segments: Vec<Value>,
) -> Result<Vec<Value>, ApiError> {
    if state.cluster.is_single() || is_forwarded(req) {
        return Ok(segments);
    }
    for part in gather(state, req.path()).await? {
        let theirs = match part.get("segments").and_then(Value::as_array) {
            Some(list) => list.as_slice(),
            None => std::slice::from_ref(&part),
        };
        for segment in &mut segments {
            let Some(other) = theirs.iter().find(|s| s.get("id") == segment.get("id")) else {
                continue;
            };
            let count = segment["member_count"].as_u64().unwrap_or(0)
                + other["member_count"].as_u64().unwrap_or(0);
            segment["member_count"] = json!(count);
            if other["status"] == "backfilling" {
                segment["status"] = json!("backfilling");
            }
        }
    }
    Ok(segments)
}

fn described(state: &AppState, def: &SegmentDef) -> Result<Value, ApiError> {
    serde_json::to_value(segment_json(state, def))
        .map_err(|e| ApiError::Unavailable(format!("failed to describe a segment: {e}")))
}

/// `GET /api/v1/segments`
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let segments = state
        .catalog
        .snapshot()
        .values()
        .map(|s| described(&state, &s.def))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    let segments = with_cluster_counts(&state, &req, segments).await?;
    Ok(HttpResponse::Ok().json(json!({"segments": segments})))
}

/// `GET /api/v1/segments/{id}`
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let def = existing(&state, path_id(&req, "id")?)?;
    let segments = with_cluster_counts(&state, &req, vec![described(&state, &def)?]).await?;
    Ok(HttpResponse::Ok().json(&segments[0]))
}

/// `PUT /api/v1/segments/{id}`
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    let body = json_body(payload, MAX_BODY).await?;
    if let Some(keeper) = keeper(&state, &req) {
        return proxy(&state, &req, keeper, Some(body.to_string().into())).await;
    }
    let map = object(body)?;
    let patch = SegmentPatch {
        name: string_field(&map, "name")?,
        rule: string_field(&map, "rule")?,
        description: description(&map)?,
    };
    let def = state.segments.update(id, patch).await?;
    replica::share(&state, &def).await;
    Ok(HttpResponse::Ok().json(segment_json(&state, &def)))
}

/// `DELETE /api/v1/segments/{id}`
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(keeper) = keeper(&state, &req) {
        return proxy(&state, &req, keeper, None).await;
    }
    let id = path_id(&req, "id")?;
    state.segments.delete(id).await?;
    replica::share_removal(&state, id).await;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/segments/{id}/members?limit=N&cursor=C`
pub async fn members(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    existing(&state, id)?;
    let params = query(&req)?;
    let limit = match params.get("limit") {
        None => 1000,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_request("limit must be an integer from 1 to 10000", Some("limit"))
            })?,
    };
    let cursor = match params.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(raw.parse::<u64>().map_err(|_| {
            ApiError::invalid_request("cursor must be a value of next_cursor", Some("cursor"))
        })?),
    };
    let mut page = state.store.members(id, cursor, limit + 1);
    let mut more_elsewhere = false;
    if !state.cluster.is_single() && !is_forwarded(&req) {
        // Each node answers its own first `limit` members after the cursor; the first
        // `limit` of them all, in order, are the cluster's.
        let after = cursor.map_or(String::new(), |cursor| format!("&cursor={cursor}"));
        let path = format!("/api/v1/segments/{id}/members?limit={limit}{after}");
        for part in gather(&state, &path).await? {
            let theirs = part.get("members").and_then(Value::as_array);
            page.extend(theirs.into_iter().flatten().filter_map(Value::as_u64));
            more_elsewhere |= !part["next_cursor"].is_null();
        }
        page.sort_unstable();
    }
    let next_cursor = if page.len() > limit || more_elsewhere {
        page.truncate(limit);
        page.last().map(u64::to_string)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({"members": page, "next_cursor": next_cursor})))
}

/// `GET /api/v1/segments/{id}/count`
pub async fn count(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let def = existing(&state, path_id(&req, "id")?)?;
    let mut count = state.store.member_count(def.id);
    if !state.cluster.is_single() && !is_forwarded(&req) {
        for part in gather(&state, &format!("/api/v1/segments/{}/count", def.id)).await? {
            count += part.get("count").and_then(Value::as_u64).unwrap_or(0);
        }
    }
    Ok(HttpResponse::Ok().json(json!({"count": count})))
}

/// `POST /api/v1/segments/validate`
pub async fn validate(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let map = object(json_body(payload, MAX_BODY).await?)?;
    state.segments.validate(&required(&map, "rule")?)?;
    Ok(HttpResponse::Ok().json(json!({"valid": true})))
}
