//! `POST /api/v1/identify`: says that several identities are one person.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::actors::Identity;
use crate::cluster::identity_shard;

use super::super::body::json_body;
use super::super::dto::refused_json;
use super::super::error::ApiError;
use super::super::peers::{elsewhere, proxy};
use super::super::state::AppState;

/// Most identities one call may list.
const MAX_IDENTITIES: usize = 100;

/// Reads `{"identities": [{"id_type", "id"}…]}`, naming the first bad field.
fn identities(body: &Value, identity_types: &[String]) -> Result<Vec<Identity>, ApiError> {
    let bad = |field: String, message: String| ApiError::invalid_request(message, Some(&field));
    let Some(list) = body.get("identities").and_then(Value::as_array) else {
        return Err(bad(
            "identities".into(),
            "identities must be an array of {\"id_type\", \"id\"} objects".into(),
        ));
    };
    if list.is_empty() || list.len() > MAX_IDENTITIES {
        return Err(bad(
            "identities".into(),
            format!("identities must list 1 to {MAX_IDENTITIES} identities"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let id_type = match item.get("id_type").and_then(Value::as_str) {
                Some(t) if identity_types.iter().any(|known| known == t) => t,
                _ => {
                    return Err(bad(
                        format!("identities.{i}.id_type"),
                        format!("id_type must be one of: {}", identity_types.join(", ")),
                    ))
                }
            };
            match item.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() && id.chars().count() <= 256 => {
                    Ok((id_type.to_owned(), id.to_owned()))
                }
                _ => Err(bad(
                    format!("identities.{i}.id"),
                    "id must be a string of 1 to 256 characters".into(),
                )),
            }
        })
        .collect()
}

/// `POST /api/v1/identify`: served by the node that resolves the first identity.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(payload, state.config.ingest.max_body_bytes).await?;
    let listed = identities(&body, &state.config.ingest.identity_types)?;
    let (id_type, id) = &listed[0];
    if let Some(owner) = elsewhere(&state, &req, identity_shard(id_type, id))? {
        return proxy(&state, &req, owner, Some(body.to_string().into())).await;
    }
    let linked = state.identities.link(None, &listed, false).await?;
    let Some(user) = linked.user else {
        return Err(ApiError::IdentityRefused(
            "every identity listed is a blocklisted junk value; nothing was linked".into(),
        ));
    };
    let refused: Vec<Value> = linked.refused.iter().map(refused_json).collect();
    Ok(HttpResponse::Ok().json(json!({
        "user_id": user,
        "merged": linked.merged,
        "refused": refused,
    })))
}
