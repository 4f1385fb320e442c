//! The other nodes as identity linking and ingestion see them (`actors::Peers`), over the
//! routes of `http/handlers/links.rs`: identities are looked up and claimed on the node
//! that resolves them, users are given up and settled on the node that owns them, links
//! are passed to the survivor's node, and events to the user's node. Records travel as
//! MessagePack, everything else as JSON.

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::actors::{ActorError, Identity, Incoming, Linked, Parcel, Peers, Surrender};

use super::forward::{Outgoing, MSGPACK};
use super::ring::{identity_shard, user_shard};
use super::{Cluster, Route};

/// `actors::Peers` over HTTP.
pub struct RemotePeers {
    cluster: Arc<Cluster>,
}

impl RemotePeers {
    /// The other nodes of `cluster`.
    pub fn new(cluster: Arc<Cluster>) -> RemotePeers {
        RemotePeers { cluster }
    }

    async fn call(
        &self,
        node: usize,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Bytes, ActorError> {
        let answer = self
            .cluster
            .send(node, Outgoing { method, path, body })
            .await
            .map_err(|e| ActorError::OwnerUnavailable(e.to_string()))?;
        if !answer.status.is_success() {
            let node = &self.cluster.node(node).id;
            let said = String::from_utf8_lossy(&answer.body);
            return Err(match answer.status {
                StatusCode::SERVICE_UNAVAILABLE => ActorError::OwnerUnavailable(format!(
                    "node {node} could not do its part: {said}"
                )),
                status => ActorError::Storage(format!("node {node} answered {status}: {said}")),
            });
        }
        Ok(answer.body)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        node: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ActorError> {
        let body = body.map(|body| (super::forward::JSON, Bytes::from(body.to_string())));
        let bytes = self.call(node, method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| invalid(node, e))
    }

    /// Returns the node that serves `shard` now (this one included).
    fn node_for(&self, shard: u16) -> Result<usize, ActorError> {
        match self.cluster.route(shard, false) {
            Route::Local => Ok(self.cluster.me()),
            Route::Forward(node) => Ok(node),
            Route::Unavailable(why) => Err(ActorError::OwnerUnavailable(why)),
        }
    }

    /// Posts `body` to `/internal/v1/identities/{what}` on the node that resolves the
    /// identity and returns its JSON answer.
    fn about_identity(
        &self,
        identity: &Identity,
        what: &'static str,
        body: Value,
    ) -> LocalBoxFuture<'_, Result<Value, ActorError>> {
        let node = self.identity_node(identity);
        Box::pin(async move {
            let path = format!("/internal/v1/identities/{what}");
            self.json(node?, Method::POST, &path, Some(body)).await
        })
    }

    fn user_node(&self, user: u64) -> Result<usize, ActorError> {
        self.node_for(user_shard(user))
    }

    fn identity_node(&self, (id_type, id): &Identity) -> Result<usize, ActorError> {
        self.node_for(identity_shard(id_type, id))
    }
}

fn invalid(node: usize, e: impl std::fmt::Display) -> ActorError {
    ActorError::Storage(format!(
        "node at position {node} answered something unreadable: {e}"
    ))
}

fn packed(value: &impl Serialize) -> Result<Option<(&'static str, Bytes)>, ActorError> {
    rmp_serde::to_vec_named(value)
        .map(|bytes| Some((MSGPACK, Bytes::from(bytes))))
        .map_err(|e| ActorError::Storage(format!("failed to encode for another node: {e}")))
}

fn identity_json((id_type, id): &Identity) -> Value {
    json!({"id_type": id_type, "id": id})
}

impl Peers for RemotePeers {
    fn owns_user(&self, user: u64) -> bool {
        matches!(self.cluster.route(user_shard(user), false), Route::Local)
    }

    fn resolves(&self, (id_type, id): &Identity) -> bool {
        matches!(
            self.cluster.route(identity_shard(id_type, id), false),
            Route::Local
        )
    }

    fn indexed(&self, identity: &Identity) -> LocalBoxFuture<'_, Result<Option<u64>, ActorError>> {
        let asked = self.about_identity(identity, "indexed", identity_json(identity));
        Box::pin(async move { Ok(asked.await?["user"].as_u64()) })
    }

    fn current(&self, user: u64) -> LocalBoxFuture<'_, Result<u64, ActorError>> {
        Box::pin(async move {
            let path = format!("/internal/v1/users/{user}/current");
            let node = self.user_node(user)?;
            let answer: Value = self.json(node, Method::GET, &path, None).await?;
            answer["user"]
                .as_u64()
                .ok_or_else(|| invalid(node, "no user"))
        })
    }

    fn claim(
        &self,
        identity: &Identity,
        user: u64,
        release: bool,
    ) -> LocalBoxFuture<'_, Result<bool, ActorError>> {
        let mut body = identity_json(identity);
        body["user"] = json!(user);
        body["release"] = json!(release);
        let asked = self.about_identity(identity, "claim", body);
        Box::pin(async move { Ok(asked.await?["owned"].as_bool().unwrap_or(false)) })
    }

    fn surrender(
        &self,
        user: u64,
        survivor: u64,
    ) -> LocalBoxFuture<'_, Result<Surrender, ActorError>> {
        Box::pin(async move {
            let node = self.user_node(user)?;
            let path = format!("/internal/v1/users/{user}/surrender");
            let body = Some((
                super::forward::JSON,
                Bytes::from(json!({"survivor": survivor}).to_string()),
            ));
            let bytes = self.call(node, Method::POST, &path, body).await?;
            rmp_serde::from_slice(&bytes).map_err(|e| invalid(node, e))
        })
    }

    fn settle(&self, user: u64, absorbed: bool) -> LocalBoxFuture<'_, Result<(), ActorError>> {
        Box::pin(async move {
            let path = format!("/internal/v1/users/{user}/settle");
            let body = Some((
                super::forward::JSON,
                Bytes::from(json!({"absorbed": absorbed}).to_string()),
            ));
            self.call(self.user_node(user)?, Method::POST, &path, body)
                .await
                .map(|_| ())
        })
    }

    fn absorb(&self, user: u64, parcel: &Parcel) -> LocalBoxFuture<'_, Result<bool, ActorError>> {
        let body = packed(parcel);
        let node = self.user_node(parcel.survivor);
        Box::pin(async move {
            let node = node?;
            let path = format!("/internal/v1/users/{user}/absorb");
            let bytes = self.call(node, Method::POST, &path, body?).await?;
            let answer: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(node, e))?;
            Ok(answer["absorbed"].as_bool().unwrap_or(false))
        })
    }

    fn link_at(
        &self,
        survivor: u64,
        primary: Option<&Identity>,
        listed: &[Identity],
    ) -> LocalBoxFuture<'_, Result<Linked, ActorError>> {
        let body = json!({
            "primary": primary.map(identity_json),
            "listed": listed.iter().map(identity_json).collect::<Vec<_>>(),
        });
        Box::pin(async move {
            self.json(
                self.user_node(survivor)?,
                Method::POST,
                "/internal/v1/link",
                Some(body),
            )
            .await
        })
    }

    fn deliver(
        &self,
        user: u64,
        events: Arc<Vec<Incoming>>,
    ) -> LocalBoxFuture<'_, Result<(), ActorError>> {
        Box::pin(async move {
            let path = format!("/internal/v1/users/{user}/events");
            let body = packed(events.as_ref())?;
            self.call(self.user_node(user)?, Method::POST, &path, body)
                .await
                .map(|_| ())
        })
    }
}
