//! `GET /api/v1/users?clientRefId=…` and `GET /api/v1/users/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::super::dto::user_json;
use super::super::error::ApiError;
use super::super::state::AppState;
use super::{path_id, query};

async fn describe(state: &AppState, user: u64) -> Result<HttpResponse, ApiError> {
    let view = state
        .registry
        .view(user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {user} not found")))?;
    Ok(HttpResponse::Ok().json(user_json(&view)))
}

/// `GET /api/v1/users/{user_id}`
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    describe(&state, path_id(&req, "user_id")?).await
}

/// `GET /api/v1/users?clientRefId=ID[&idType=TYPE]`
pub async fn find(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = query(&req)?;
    let id = params
        .get("clientRefId")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::invalid_request("clientRefId is required", Some("clientRefId")))?;
    let id_type = params.get("idType").map_or("cookie", String::as_str);
    let user = state
        .store
        .user_for_identity(id_type, id)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("no user has identity {id_type}:{id}")))?;
    describe(&state, user).await
}
