//! Which configured nodes are up: membership and failure detection over chitchat gossip.
//!
//! Every node gossips over UDP on the same ip:port as its HTTP address (TCP and UDP
//! ports are separate), seeded with the other configured nodes. Chitchat's phi-accrual
//! failure detector tells which peers are alive; every node publishes in its gossip
//! key/values whether it is ready, plus a few small values of its own
//! ([`Membership::set_key`]). [`Membership::states`] turns that into one [`NodeState`]
//! per configured node.
//!
//! A node's gossip identity is (id, generation, address). A restarted node must come
//! back with a greater generation (its start time in milliseconds does): peers then take
//! it for a new incarnation and see it up within a few heartbeats, instead of ignoring
//! heartbeats lower than the ones its previous run had reached.

mod gossip;
mod view;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::error;

use crate::sync::locked;
use gossip::Command;
use view::{Shared, READY_KEY, USER_KEY_PREFIX};

/// What a configured node is, as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Alive and ready to serve.
    Up,
    /// Alive but not ready yet (starting, recovering).
    Joining,
    /// Declared dead by the failure detector, or never heard from.
    Down,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeState::Up => "up",
            NodeState::Joining => "joining",
            NodeState::Down => "down",
        })
    }
}

/// Gossip and failure-detection timings.
///
/// A peer is declared down once it has been silent for `phi_threshold` times its mean
/// observed heartbeat interval (about half the gossip interval in a small cluster),
/// checked once per gossip round.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// How often this node gossips with its peers.
    pub gossip_interval: Duration,
    /// The phi-accrual threshold above which a silent peer is declared down.
    pub phi_threshold: f64,
    /// How long a dead peer's gossip state is kept before it is forgotten.
    pub dead_node_grace_period: Duration,
}

impl Default for Tuning {
    /// Gossip every 250 ms; a silent peer is down after about 2–2.5 s (measured on
    /// 127.0.0.1 with three nodes), so a hiccup of a second or so does not flap it.
    fn default() -> Tuning {
        Tuning {
            gossip_interval: Duration::from_millis(250),
            phi_threshold: 16.0,
            dead_node_grace_period: Duration::from_secs(3_600),
        }
    }
}

/// What [`Membership::start`] needs.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// This node's id: one of `nodes`.
    pub node_id: String,
    /// The UDP address gossip listens on: the node's HTTP bind address.
    pub listen_addr: SocketAddr,
    /// Every configured node, this one included, in config order: its id and the
    /// address the others reach it at.
    pub nodes: Vec<(String, SocketAddr)>,
    /// Tells this run of the node from its earlier ones: must grow from one start to
    /// the next (the start time in milliseconds does).
    pub generation: u64,
    /// Gossip and failure-detection timings.
    pub tuning: Tuning,
}

/// A handle on this node's membership; clones share it.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

/// What the clones share: the view, and the way to the task that owns the gossip server.
struct Inner {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    observer: Mutex<Option<JoinHandle<()>>>,
}

impl Membership {
    /// Binds the gossip socket and starts gossiping with the other configured nodes.
    ///
    /// This node starts `Joining`; it is `Up` once [`Membership::set_ready`] says so.
    /// Fails if the config does not list this node once, or the socket cannot be bound.
    pub async fn start(config: MembershipConfig) -> anyhow::Result<Membership> {
        let ids: Vec<String> = config.nodes.iter().map(|(id, _)| id.clone()).collect();
        for (index, id) in ids.iter().enumerate() {
            if ids[..index].contains(id) {
                bail!("node id {id} is listed twice in the cluster's nodes");
            }
        }
        let Some((self_index, &(_, advertise_addr))) = config
            .nodes
            .iter()
            .enumerate()
            .find(|(_, (id, _))| *id == config.node_id)
        else {
            bail!("node id {} is not in the cluster's nodes", config.node_id);
        };
        let (handle, live) = gossip::spawn(&config, advertise_addr).await?;
        let shared = Arc::new(Shared::new(ids, self_index));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let observer = tokio::spawn(gossip::run(handle, live, command_rx, Arc::clone(&shared)));
        Ok(Membership {
            inner: Arc::new(Inner {
                shared,
                commands,
                observer: Mutex::new(Some(observer)),
            }),
        })
    }

    /// Returns the state of every configured node, this one included, in config order.
    pub fn states(&self) -> Vec<(String, NodeState)> {
        self.inner.shared.states()
    }

    /// Tells whether `node_id` is a configured node that is `Up`.
    pub fn is_up(&self, node_id: &str) -> bool {
        self.state_of(node_id) == Some(NodeState::Up)
    }

    /// Returns the state of `node_id`, if it is a configured node.
    pub fn state_of(&self, node_id: &str) -> Option<NodeState> {
        self.inner.shared.state_of(node_id)
    }

    /// Returns a receiver that sees every change of [`Membership::states`].
    pub fn subscribe(&self) -> watch::Receiver<Vec<(String, NodeState)>> {
        self.inner.shared.subscribe()
    }

    /// Says whether this node is ready to serve, here and to its peers.
    pub fn set_ready(&self, ready: bool) {
        self.inner.shared.set_ready(ready);
        self.publish(READY_KEY.to_owned(), ready.to_string());
    }

    /// Publishes a small value under `key` in this node's gossip state.
    pub fn set_key(&self, key: &str, value: &str) {
        self.inner.shared.set_own_key(key, value);
        self.publish(format!("{USER_KEY_PREFIX}{key}"), value.to_owned());
    }

    /// Returns the value `node_id` published under `key`: this node's own at once, a
    /// peer's as last gossiped while it is alive (`None` while it is down).
    pub fn key_of(&self, node_id: &str, key: &str) -> Option<String> {
        self.inner.shared.key_of(node_id, key)
    }

    /// Stops gossip and releases the socket, for every clone; the states stay as last seen.
    pub async fn shutdown(self) {
        let observer = locked(&self.inner.observer).take();
        let _ = self.inner.commands.send(Command::Shutdown);
        if let Some(observer) = observer {
            if let Err(e) = observer.await {
                error!(node = %self.inner.shared.self_id(), error = %e, "gossip task failed");
            }
        }
    }

    fn publish(&self, key: String, value: String) {
        // Only fails once shut down, when nothing is gossiped any more.
        let _ = self.inner.commands.send(Command::Publish { key, value });
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("node_id", &self.inner.shared.self_id())
            .field("states", &self.states())
            .finish()
    }
}
