//! `GET /api/v1/users?clientRefId=…`, `GET /api/v1/users/{id}` and
//! `GET /api/v1/users/{id}/merges`. An absorbed user's id answers `301` to its survivor.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::actors::{ActorError, MergeLog, UserView};
use crate::cluster::identity_shard;
use crate::cluster::ring::user_shard;
use crate::cluster::Outgoing;

use super::super::dto::{merge_log_json, user_json};
use super::super::error::ApiError;
use super::super::peers::{elsewhere, proxy, relay, serving_node};
use super::super::state::AppState;
use super::{path_id, query};

/// How a user id reads: a user, an absorbed user, or nobody.
enum Found {
    User(Box<UserView>),
    Merged(u64),
}

async fn find_user(state: &AppState, user: u64) -> Result<Found, ApiError> {
    match state.registry.view(user).await {
        Ok(Some(view)) => Ok(Found::User(Box::new(view))),
        Ok(None) => Err(ApiError::NotFound(format!("user {user} not found"))),
        // The redirect names the survivor of its merge; after merges across nodes that
        // user may have been absorbed since: name the final one.
        Err(ActorError::Moved(survivor)) => {
            Ok(Found::Merged(state.identities.current(survivor).await?))
        }
        Err(e) => Err(e.into()),
    }
}

/// `301` with `Location: /api/v1/users/SURVIVOR{suffix}` and the redirect body.
fn moved(user: u64, survivor: u64, suffix: &str) -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/users/{survivor}{suffix}"),
        ))
        .json(json!({"user_id": user, "merged_into": survivor}))
}

/// `GET /api/v1/users/{user_id}`
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let user = path_id(&req, "user_id")?;
    if let Some(owner) = elsewhere(&state, &req, user_shard(user))? {
        return proxy(&state, &req, owner, None).await;
    }
    Ok(match find_user(&state, user).await? {
        Found::User(view) => HttpResponse::Ok().json(user_json(&view)),
        Found::Merged(survivor) => moved(user, survivor, ""),
    })
}

/// `GET /api/v1/users?clientRefId=ID[&idType=TYPE]`: the identity's owner, after merges.
pub async fn find(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = query(&req)?;
    let id = params
        .get("clientRefId")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::invalid_request("clientRefId is required", Some("clientRefId")))?;
    let id_type = params.get("idType").map_or("cookie", String::as_str);
    if let Some(owner) = elsewhere(&state, &req, identity_shard(id_type, id))? {
        return proxy(&state, &req, owner, None).await;
    }
    let mut user = state
        .store
        .user_for_identity(id_type, id)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("no user has identity {id_type}:{id}")))?;
    loop {
        // The index may name a user absorbed since, on any node: follow it to the end.
        user = state.identities.current(user).await?;
        if let Some(owner) = serving_node(&state, user_shard(user), false)? {
            // A user another node serves (merged into one there, or since the cluster
            // grew): that node describes it.
            let path = format!("/api/v1/users/{user}");
            return Ok(relay(
                state.cluster.send(owner, Outgoing::get(&path)).await?,
            ));
        }
        match find_user(&state, user).await? {
            Found::User(view) => return Ok(HttpResponse::Ok().json(user_json(&view))),
            Found::Merged(survivor) => user = survivor,
        }
    }
}

/// `GET /api/v1/users/{user_id}/merges`: the merges that formed the user and the links
/// refused for it.
pub async fn merges(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let user = path_id(&req, "user_id")?;
    if let Some(owner) = elsewhere(&state, &req, user_shard(user))? {
        return proxy(&state, &req, owner, None).await;
    }
    if let Found::Merged(survivor) = find_user(&state, user).await? {
        return Ok(moved(user, survivor, "/merges"));
    }
    let log: MergeLog = state
        .store
        .merge_log(user)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(merge_log_json(user, &log)))
}
