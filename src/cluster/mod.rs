//! `cluster` owns the ring, which node owns a user, forwarding, fan-out, handoff;
//! membership comes from chitchat.
//!
//! `Cluster` is this node's view: the configured nodes, the ring over them, which of them
//! gossip says are up, and how to ask one of them. A node without a `[cluster]` section
//! is a cluster of one that owns everything and never forwards.

pub mod fanout;
pub mod forward;
pub mod handoff;
pub mod ids;
pub mod membership;
pub mod remote;
pub mod ring;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;

use crate::clock::Stopwatch;
use crate::config::ClusterSection;
use crate::metrics::Metrics;

pub use forward::{Answer, Outgoing, FORWARDED_BY};
pub use handoff::{Handoff, Route};
pub use ids::UserIds;
pub use membership::{Membership, NodeState};
pub use ring::{identity_shard, user_shard, Ring};

/// A configured node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its id.
    pub id: String,
    /// Its HTTP address.
    pub addr: String,
}

/// Why another node could not serve a request.
#[derive(Debug, thiserror::Error)]
#[error("node {node} owns this and is unavailable: {reason}")]
pub struct OwnerUnavailable {
    /// The node's id.
    pub node: String,
    /// Why.
    pub reason: String,
}

/// This node's view of the cluster.
pub struct Cluster {
    me: usize,
    nodes: Vec<Node>,
    ring: Ring,
    membership: Option<Membership>,
    credentials: Option<HeaderValue>,
    forward_timeout: Duration,
    metrics: Metrics,
    handoff: Arc<Handoff>,
}

impl Cluster {
    /// A cluster of one: this node, at its bind address.
    pub fn single(node_id: &str, bind: &str, handoff: Arc<Handoff>, metrics: Metrics) -> Cluster {
        Cluster {
            me: 0,
            nodes: vec![Node {
                id: node_id.to_owned(),
                addr: bind.to_owned(),
            }],
            ring: Ring::new(&[node_id]),
            membership: None,
            credentials: None,
            forward_timeout: Duration::from_secs(10),
            metrics,
            handoff,
        }
    }

    /// The configured cluster, as node `node_id` sees it through `membership`; requests
    /// to other nodes carry `admin_key` when keys are configured; `handoff` knows which
    /// shards it serves.
    pub fn new(
        section: &ClusterSection,
        node_id: &str,
        membership: Membership,
        admin_key: Option<&str>,
        metrics: Metrics,
        handoff: Arc<Handoff>,
    ) -> Cluster {
        let ids: Vec<&str> = section.nodes.iter().map(|node| node.id.as_str()).collect();
        Cluster {
            me: section.ordinal(node_id),
            nodes: section
                .nodes
                .iter()
                .map(|node| Node {
                    id: node.id.clone(),
                    addr: node.addr.clone(),
                })
                .collect(),
            ring: Ring::new(&ids),
            membership: Some(membership),
            credentials: admin_key
                .and_then(|key| HeaderValue::from_str(&format!("Bearer {key}")).ok()),
            forward_timeout: Duration::from_millis(section.forward_timeout_ms),
            metrics,
            handoff,
        }
    }

    /// Returns whether this node is the whole cluster.
    pub fn is_single(&self) -> bool {
        self.nodes.len() == 1
    }

    /// Returns this node's position in the node list.
    pub fn me(&self) -> usize {
        self.me
    }

    /// Returns the node at `position`.
    pub fn node(&self, position: usize) -> &Node {
        &self.nodes[position.min(self.nodes.len() - 1)]
    }

    /// Returns the positions of the other nodes.
    pub fn others(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |position| *position != self.me)
    }

    /// Returns the position of the node that owns `user`.
    pub fn user_owner(&self, user: u64) -> usize {
        self.ring.owner(user_shard(user))
    }

    /// Returns the ids this node may give new users.
    pub fn user_ids(&self) -> UserIds {
        if self.is_single() {
            UserIds::single()
        } else {
            UserIds::of(self.me, Arc::clone(self.handoff.ownership()))
        }
    }

    /// Decides where a request about `shard` is served: here, by another node, or (for
    /// a shard in transit) nowhere now. A request another node `forwarded` is never
    /// forwarded again.
    pub fn route(&self, shard: u16, forwarded: bool) -> Route {
        self.handoff.ownership().route(shard, forwarded)
    }

    /// Returns the shards this node serves, takes in, or hands over.
    pub fn handoff(&self) -> &Arc<Handoff> {
        &self.handoff
    }

    /// Publishes a small value in this node's gossip state.
    pub fn publish(&self, key: &str, value: &str) {
        if let Some(membership) = &self.membership {
            membership.set_key(key, value);
        }
    }

    /// Returns the value the node at `position` published under `key`, while it is up.
    pub fn published(&self, position: usize, key: &str) -> Option<String> {
        let membership = self.membership.as_ref()?;
        membership.key_of(&self.node(position).id, key)
    }

    /// Returns every node with its state as this node sees it, in configuration order.
    pub fn states(&self) -> Vec<(&Node, NodeState)> {
        let Some(membership) = &self.membership else {
            return self
                .nodes
                .iter()
                .map(|node| (node, NodeState::Up))
                .collect();
        };
        let states = membership.states();
        self.nodes
            .iter()
            .map(|node| {
                let state = states
                    .iter()
                    .find(|(id, _)| *id == node.id)
                    .map_or(NodeState::Down, |(_, state)| *state);
                (node, state)
            })
            .collect()
    }

    /// Returns whether the node at `position` answers: up, or joining (a node that has
    /// just become ready is seen joining for a gossip round, and one that is catching up
    /// serves other nodes already). This node always answers, to itself.
    pub fn is_up(&self, position: usize) -> bool {
        position == self.me
            || self.membership.as_ref().is_some_and(|membership| {
                membership
                    .state_of(&self.node(position).id)
                    .is_some_and(|state| state != NodeState::Down)
            })
    }

    /// Returns the `Authorization` nodes present to each other, when keys are set.
    pub fn credentials(&self) -> Option<&HeaderValue> {
        self.credentials.as_ref()
    }

    /// Waits until gossip has heard from every other node, or `patience` ran out (some
    /// are down), so that a node that just started does not call its peers down.
    pub async fn await_peers(&self, patience: Duration) {
        let Some(membership) = &self.membership else {
            return;
        };
        let mut changes = membership.subscribe();
        let all_heard = |states: &Vec<(String, NodeState)>| {
            states.iter().all(|(_, state)| *state != NodeState::Down)
        };
        let _some_are_down = tokio::time::timeout(patience, changes.wait_for(all_heard)).await;
    }

    /// Tells the other nodes whether this node serves traffic.
    pub fn set_ready(&self, ready: bool) {
        if let Some(membership) = &self.membership {
            membership.set_ready(ready);
        }
    }

    /// Sends `request` to the node at `position` (which must not be this one), when
    /// gossip says it is up.
    pub async fn send(
        &self,
        position: usize,
        request: Outgoing<'_>,
    ) -> Result<Answer, OwnerUnavailable> {
        if !self.is_up(position) {
            return Err(OwnerUnavailable {
                node: self.node(position).id.clone(),
                reason: "it is down".into(),
            });
        }
        self.ask(position, request).await
    }

    /// Sends `request` to the node at `position` whatever gossip says (a node that has
    /// just started has not heard from its peers yet).
    pub async fn ask(
        &self,
        position: usize,
        request: Outgoing<'_>,
    ) -> Result<Answer, OwnerUnavailable> {
        let node = self.node(position);
        let stopwatch = Stopwatch::start();
        let answer = forward::send(
            &node.addr,
            &self.node(self.me).id,
            self.credentials.as_ref(),
            request,
            self.forward_timeout,
        )
        .await;
        let outcome = if answer.is_ok() {
            "answered"
        } else {
            "unavailable"
        };
        self.metrics
            .cluster_requests
            .with_label_values(&[outcome])
            .inc();
        self.metrics
            .cluster_request_duration
            .observe(stopwatch.elapsed_secs());
        answer.map_err(|e| OwnerUnavailable {
            node: node.id.clone(),
            reason: e.to_string(),
        })
    }

    /// Stops gossip.
    pub async fn shutdown(&self) {
        if let Some(membership) = &self.membership {
            membership.clone().shutdown().await;
        }
    }
}
