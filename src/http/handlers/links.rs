//! What nodes ask each other when identities and users live on different nodes (see
//! `cluster/remote.rs`): look up and claim identities, give users up and settle them,
//! take in a user whose transfer was cut short, coordinate a link, apply events to a
//! user. These routes serve other nodes only (they need `x-uss-forwarded-by` and the
//! admin key) and are not part of API.md.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::actors::{Identity, Incoming, Parcel};
use crate::cluster::forward::MSGPACK;
use crate::cluster::{identity_shard, user_shard};

use super::super::body::{json_body, read_limited};
use super::super::error::ApiError;
use super::super::peers::serving_node;
use super::super::state::AppState;
use super::path_id;
use super::replica::from_a_node;

/// Largest body one node sends another here (a batch of events, a user's record).
const MAX_BODY: usize = 64 * 1024 * 1024;

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a Value, ApiError> {
    body.get(name)
        .ok_or_else(|| ApiError::invalid_request(format!("{name} is required"), Some(name)))
}

fn identity(body: &Value) -> Result<Identity, ApiError> {
    let text = |name: &str| {
        field(body, name)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::invalid_request(format!("{name} must be a string"), Some(name))
            })
    };
    Ok((text("id_type")?, text("id")?))
}

fn number(body: &Value, name: &str) -> Result<u64, ApiError> {
    field(body, name)?
        .as_u64()
        .ok_or_else(|| ApiError::invalid_request(format!("{name} must be an integer"), Some(name)))
}

async fn request(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Value, ApiError> {
    from_a_node(req)?;
    json_body(payload, state.config.ingest.max_body_bytes).await
}

async fn unpack<T: for<'de> Deserialize<'de>>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    from_a_node(req)?;
    let bytes = read_limited(payload, MAX_BODY).await?;
    rmp_serde::from_slice(&bytes)
        .map_err(|e| ApiError::invalid_request(format!("unreadable body: {e}"), None))
}

/// Refuses (`503`) a request about a shard this node does not serve now (another node
/// does, or it is being handed over): its data here would be missing or stale.
fn serving(state: &AppState, shard: u16) -> Result<(), ApiError> {
    match serving_node(state, shard, true)? {
        None => Ok(()),
        Some(_) => Err(ApiError::OwnerUnavailable(format!(
            "node {} does not serve shard {shard} now; retry shortly",
            state.cluster.node(state.cluster.me()).id
        ))),
    }
}

fn user_served(state: &AppState, user: u64) -> Result<u64, ApiError> {
    serving(state, user_shard(user)).map(|()| user)
}

fn identity_served(state: &AppState, identity: Identity) -> Result<Identity, ApiError> {
    serving(state, identity_shard(&identity.0, &identity.1)).map(|()| identity)
}

fn storage(e: crate::storage::StorageError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// `POST /internal/v1/identities/indexed {"id_type","id"}` → `{"user"}`
pub async fn indexed(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id_type, id) = identity(&request(&req, &state, payload).await?)?;
    let user = state
        .store
        .user_for_identity(&id_type, &id)
        .map_err(storage)?;
    Ok(HttpResponse::Ok().json(json!({"user": user})))
}

/// `GET /internal/v1/users/{id}/current` → `{"user"}`: the user it is after merges.
pub async fn current(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    from_a_node(&req)?;
    let user = user_served(&state, path_id(&req, "id")?)?;
    let user = state.identities.current(user).await?;
    Ok(HttpResponse::Ok().json(json!({"user": user})))
}

/// `POST /internal/v1/identities/claim {"id_type","id","user","release"}` → `{"owned"}`:
/// gives an identity nobody owns to the user, or (`release`) gives it back.
pub async fn claim(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = request(&req, &state, payload).await?;
    let (id_type, id) = identity_served(&state, identity(&body)?)?;
    let user = number(&body, "user")?;
    let owned = if body["release"].as_bool().unwrap_or(false) {
        !state
            .store
            .release_identity(&id_type, &id, user)
            .map_err(storage)?
    } else {
        state
            .store
            .claim_identity(&id_type, &id, None, user)
            .map_err(storage)?
    };
    state.store.flush().await.map_err(storage)?;
    Ok(HttpResponse::Ok().json(json!({"owned": owned})))
}

fn packed(value: &impl serde::Serialize) -> Result<HttpResponse, ApiError> {
    let bytes = rmp_serde::to_vec_named(value)
        .map_err(|e| ApiError::Unavailable(format!("failed to encode an answer: {e}")))?;
    Ok(HttpResponse::Ok().content_type(MSGPACK).body(bytes))
}

/// `POST /internal/v1/users/{id}/surrender {"survivor"}` → a MessagePack `Surrender`.
pub async fn surrender(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let survivor = number(&request(&req, &state, payload).await?, "survivor")?;
    let user = user_served(&state, path_id(&req, "id")?)?;
    let given = state.identities.surrender(user, survivor).await?;
    packed(&given)
}

/// `POST /internal/v1/users/{id}/settle {"absorbed"}`
pub async fn settle(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = request(&req, &state, payload).await?;
    let absorbed = field(&body, "absorbed")?.as_bool().unwrap_or(false);
    let user = user_served(&state, path_id(&req, "id")?)?;
    state.identities.settle(user, absorbed).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /internal/v1/users/{id}/absorb` with a MessagePack `Parcel` → `{"absorbed"}`.
pub async fn absorb(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let parcel: Parcel = unpack(&req, payload).await?;
    user_served(&state, parcel.survivor)?;
    let absorbed = state
        .identities
        .absorb_parcel(path_id(&req, "id")?, parcel)
        .await?;
    Ok(HttpResponse::Ok().json(json!({"absorbed": absorbed})))
}

/// `POST /internal/v1/link {"primary", "listed"}` → the `Linked` outcome: this node owns
/// the survivor and coordinates the merge.
pub async fn link(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = request(&req, &state, payload).await?;
    let primary = match body.get("primary") {
        None | Some(Value::Null) => None,
        Some(primary) => Some(identity(primary)?),
    };
    let listed = field(&body, "listed")?
        .as_array()
        .ok_or_else(|| ApiError::invalid_request("listed must be an array", Some("listed")))?
        .iter()
        .map(identity)
        .collect::<Result<Vec<_>, _>>()?;
    let linked = state
        .identities
        .link(primary.as_ref(), &listed, true)
        .await?;
    Ok(HttpResponse::Ok().json(linked))
}

/// `POST /internal/v1/users/{id}/events` with MessagePack events: applies them to the
/// user (following its merges), once durable.
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let events: Vec<Incoming> = unpack(&req, payload).await?;
    let user = user_served(&state, path_id(&req, "id")?)?;
    state.ingestor.deliver(user, Arc::new(events)).await?;
    Ok(HttpResponse::NoContent().finish())
}
