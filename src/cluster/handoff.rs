//! Growing the cluster: the users a new node owns move to it with their state.
//!
//! Every node persists the node list of the ring its data follows (`ring_nodes`) and
//! publishes it in gossip (key `ring`). New nodes are appended to `[cluster] nodes`; the
//! new node starts first, then the others restart one at a time with the new list.
//!
//! - The new node starts with an empty data dir: it takes the ring its peers publish as
//!   the old one, and each shard it owns on the new ring is *incoming* from its old owner
//!   (persisted). Until that node has handed it over, requests about the shard are
//!   forwarded to it, which still serves it on its old ring.
//! - An old node restarted with the new list finds that its persisted ring differs: each
//!   shard it no longer owns is *outgoing*. Before it is ready it sends their keys, in
//!   chunks, to the new owner (`POST /internal/v1/shards`), which writes each chunk as one
//!   batch; a final message marks the shards complete there (persisted), and the new
//!   owner serves them. Only then does the old node delete its copy; once nothing is
//!   left to send, it persists and publishes the new ring. Meanwhile it applies nothing
//!   to those shards: the registry refuses their users and requests are fenced
//!   ([`Ownership::route`]). A new owner that cannot be reached is tried again in the
//!   background; the node serves its other shards meanwhile.
//!
//! Repeats are harmless: chunks are puts of the same values, and pairs for a shard the
//! receiver has completed are skipped. A sender that stops before deleting sends again
//! at its next start (its persisted ring still differs); a receiver that stops mid-shard
//! keeps it incoming, and the sender's next attempt sends it whole again.

mod ownership;
mod plan;
mod receiver;
mod sender;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::actors::{ActivityTotals, Registry, Timers};
use crate::clock::{Clock, Stopwatch};
use crate::metrics::Metrics;
use crate::storage::{KeyOwner, StorageError, Store};
use crate::sync::locked;

use super::ring::{identity_bytes_shard, user_shard, Ring};
use super::Cluster;

pub use ownership::{Ownership, Route, ShardState};
pub use plan::{moves, Moves};

/// The metadata key of the node list whose ring this node's data follows.
const RING_KEY: &str = "ring_nodes";

/// The metadata key of the shards this node takes from others.
const INBOUND_KEY: &str = "handoff_incoming";

/// The gossip key under which a node publishes its `ring_nodes`, joined by commas (empty
/// while it has none yet).
pub const GOSSIP_KEY: &str = "ring";

/// How often a starting node looks at its peers' published rings.
const POLL: Duration = Duration::from_millis(50);

/// A shard this node takes from another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Inbound {
    /// The id of the node that holds it.
    from: String,
    /// Whether it has come whole (this node serves it).
    done: bool,
}

/// Why a step of a handoff failed.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The nodes disagree (a shard not expected from this sender, a node not listed):
    /// trying again does not help until their lists agree.
    #[error("{0}")]
    Refused(String),
    /// The other node could not be reached, or is not ready for it.
    #[error("{0}")]
    Unavailable(String),
}

/// What handing shards over touches besides the store.
#[derive(Clone)]
pub struct Services {
    /// The nodes.
    pub cluster: Arc<Cluster>,
    /// User actors (evicted once their shard is handed over).
    pub registry: Arc<Registry>,
    /// Activity totals (users handed over leave them, users taken join them).
    pub totals: Arc<ActivityTotals>,
    /// Timers (those of users taken fire if due).
    pub timers: Arc<Timers>,
    /// The node's clock.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Metrics,
}

/// This node's part in moving shards: which it serves, takes in, or hands over.
pub struct Handoff {
    store: Store,
    nodes: Vec<String>,
    me: usize,
    ownership: Arc<Ownership>,
    /// The persisted `ring_nodes` (`None` until a new node has settled).
    ring: Mutex<Option<Vec<String>>>,
    /// The persisted shards taken from other nodes.
    inbound: tokio::sync::Mutex<BTreeMap<u16, Inbound>>,
    /// Shards to hand over → the position of their new owner.
    outbound: Mutex<BTreeMap<u16, usize>>,
}

/// Returns the shard of what a key is about; `None` for the node's own keys and for
/// membership chunks, whose bits are placed user by user (`Store::export_step`).
pub fn key_shard(owner: KeyOwner<'_>) -> Option<u16> {
    match owner {
        KeyOwner::User(user) => Some(user_shard(user)),
        KeyOwner::Identity(bytes) => Some(identity_bytes_shard(bytes)),
        KeyOwner::Node | KeyOwner::Members => None,
    }
}

/// Returns the position of node `id` in `nodes`.
fn position(nodes: &[String], id: &str) -> Result<usize, HandoffError> {
    nodes.iter().position(|node| node == id).ok_or_else(|| {
        HandoffError::Refused(format!("node {id} is not in the cluster's node list"))
    })
}

impl Handoff {
    /// Reads what the store says for node `me` (a position in `nodes`, the configured
    /// ids), before anything else touches it: shards in or out, or — for a node with no
    /// data and no ring yet — every shard it owns pending until [`Handoff::settle`].
    /// Data from before rings were persisted follows the configured list.
    pub fn open(store: Store, nodes: Vec<String>, me: usize) -> Result<Handoff, HandoffError> {
        let ownership = Ownership::new(nodes.clone(), me, &Ring::of(&nodes));
        let mut inbound: BTreeMap<u16, Inbound> = store.meta(INBOUND_KEY)?.unwrap_or_default();
        let mut ring: Option<Vec<String>> = store.meta(RING_KEY)?;
        if ring.is_none() && !store.has_no_users()? {
            store.set_meta(RING_KEY, &nodes)?;
            ring = Some(nodes.clone());
        }
        let mut outbound = BTreeMap::new();
        match &ring {
            None => {
                for shard in ownership.shards_in(ShardState::Serving) {
                    ownership.set(shard, ShardState::Pending);
                }
            }
            Some(old) => {
                let moves = plan::moves(old, &nodes, &nodes[me]).map_err(HandoffError::Refused)?;
                let before = inbound.len();
                for (shard, from) in moves.incoming {
                    inbound.entry(shard).or_insert_with(|| Inbound {
                        from: nodes[from].clone(),
                        done: false,
                    });
                }
                if inbound.len() != before {
                    store.set_meta(INBOUND_KEY, &inbound)?;
                }
                for (shard, to) in &moves.outgoing {
                    ownership.set(*shard, ShardState::Outgoing(*to));
                }
                outbound = moves.outgoing;
            }
        }
        for (shard, entry) in inbound.iter().filter(|(_, entry)| !entry.done) {
            ownership.set(*shard, ShardState::Incoming(position(&nodes, &entry.from)?));
        }
        Ok(Handoff {
            store,
            nodes,
            me,
            ownership: Arc::new(ownership),
            ring: Mutex::new(ring),
            inbound: tokio::sync::Mutex::new(inbound),
            outbound: Mutex::new(outbound),
        })
    }

    /// Returns the state of every shard, shared with the registry.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
    }

    /// Publishes this node's ring and, for a new node, first decides where the data of
    /// its shards is: on the ring most of its peers publish, when that ring leaves this
    /// node out (the cluster grows); nowhere when every peer published none or one with
    /// this node in it (a new cluster), or when no peer published within `patience`.
    pub async fn settle(&self, cluster: &Cluster, patience: Duration) -> Result<(), HandoffError> {
        let known = locked(&self.ring).clone();
        if let Some(ring) = known {
            cluster.publish(GOSSIP_KEY, &ring.join(","));
            return Ok(());
        }
        cluster.publish(GOSSIP_KEY, "");
        let old = self.peers_ring(cluster, patience).await;
        let moves =
            plan::moves(&old, &self.nodes, &self.nodes[self.me]).map_err(HandoffError::Refused)?;
        let mut inbound = self.inbound.lock().await;
        for (shard, from) in &moves.incoming {
            let entry = Inbound {
                from: self.nodes[*from].clone(),
                done: false,
            };
            inbound.insert(*shard, entry);
        }
        self.store.set_meta(INBOUND_KEY, &*inbound)?;
        self.store.set_meta(RING_KEY, &self.nodes)?;
        self.store.flush().await?;
        for shard in self.ownership.shards_in(ShardState::Pending) {
            let state = match moves.incoming.get(&shard) {
                Some(from) => ShardState::Incoming(*from),
                None => ShardState::Serving,
            };
            self.ownership.set(shard, state);
        }
        *locked(&self.ring) = Some(self.nodes.clone());
        cluster.publish(GOSSIP_KEY, &self.nodes.join(","));
        info!(
            incoming = moves.incoming.len(),
            old_ring = %old.join(","),
            "settled the shards this node serves"
        );
        Ok(())
    }

    /// Waits for the ring this node's shards come from (see [`Handoff::settle`]).
    async fn peers_ring(&self, cluster: &Cluster, patience: Duration) -> Vec<String> {
        let me = &self.nodes[self.me];
        let waited = Stopwatch::start();
        loop {
            let heard: Vec<Option<String>> = cluster
                .others()
                .map(|position| cluster.published(position, GOSSIP_KEY))
                .collect();
            let mut rings: BTreeMap<Vec<String>, usize> = BTreeMap::new();
            for ring in heard.iter().flatten().filter(|ring| !ring.is_empty()) {
                let ids: Vec<String> = ring.split(',').map(str::to_owned).collect();
                if !ids.contains(me) {
                    *rings.entry(ids).or_default() += 1;
                }
            }
            if let Some((ring, _)) = rings.into_iter().max_by_key(|(_, count)| *count) {
                return ring;
            }
            if heard.iter().all(Option::is_some) {
                return Vec::new();
            }
            if waited.elapsed_secs() >= patience.as_secs_f64() {
                warn!("no other node published its ring in time: taking this for a new cluster");
                return Vec::new();
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Persists and publishes the configured list as this node's ring once it has no
    /// shard left to hand over.
    async fn adopt_configured_ring(&self, cluster: &Cluster) -> Result<(), HandoffError> {
        if locked(&self.ring).as_ref() == Some(&self.nodes) {
            return Ok(());
        }
        self.store.set_meta(RING_KEY, &self.nodes)?;
        self.store.flush().await?;
        *locked(&self.ring) = Some(self.nodes.clone());
        cluster.publish(GOSSIP_KEY, &self.nodes.join(","));
        info!(ring = %self.nodes.join(","), "every shard is handed over: this node follows the new ring");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ring::SHARDS;

    fn list(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        (dir, store)
    }

    #[test]
    fn a_new_node_serves_nothing_until_it_knows_where_its_shards_are() {
        let (_dir, store) = store();
        let nodes = list(&["n1", "n2"]);
        let ring = Ring::of(&nodes);
        let handoff = Handoff::open(store, nodes, 1).unwrap();
        for shard in 0..SHARDS {
            let state = handoff.ownership().state(shard);
            if ring.owner(shard) == 1 {
                assert_eq!(state, ShardState::Pending);
                assert!(matches!(
                    handoff.ownership().route(shard, false),
                    Route::Unavailable(_)
                ));
            } else {
                assert_eq!(state, ShardState::Elsewhere(0));
            }
        }
    }

    #[test]
    fn an_old_node_restarted_with_a_longer_list_fences_what_it_hands_over() {
        let (_dir, store) = store();
        let old = list(&["n1", "n2", "n3"]);
        let new = list(&["n1", "n2", "n3", "n4"]);
        store.set_meta(RING_KEY, &old).unwrap();
        let moves = plan::moves(&old, &new, "n2").unwrap();
        let handoff = Handoff::open(store, new.clone(), 1).unwrap();
        let ring = Ring::of(&new);
        assert!(!moves.outgoing.is_empty());
        for shard in 0..SHARDS {
            let state = handoff.ownership().state(shard);
            match moves.outgoing.get(&shard) {
                Some(to) => {
                    assert_eq!(state, ShardState::Outgoing(*to));
                    assert_eq!(handoff.ownership().route(shard, false), Route::Forward(3));
                    assert!(matches!(
                        handoff.ownership().route(shard, true),
                        Route::Unavailable(_)
                    ));
                }
                None if ring.owner(shard) == 1 => assert_eq!(state, ShardState::Serving),
                None => assert_eq!(state, ShardState::Elsewhere(ring.owner(shard))),
            }
        }
        assert_eq!(locked(&handoff.outbound).len(), moves.outgoing.len());
    }

    #[test]
    fn a_new_node_restarted_mid_handoff_still_waits_for_what_has_not_come() {
        let (_dir, store) = store();
        let new = list(&["n1", "n2", "n3", "n4"]);
        let moves = plan::moves(&list(&["n1", "n2", "n3"]), &new, "n4").unwrap();
        let mut shards = moves.incoming.iter();
        let (&waiting, &from) = shards.next().unwrap();
        let (&arrived, _) = shards.next().unwrap();
        let inbound = BTreeMap::from([
            (
                waiting,
                Inbound {
                    from: new[from].clone(),
                    done: false,
                },
            ),
            (
                arrived,
                Inbound {
                    from: "n1".into(),
                    done: true,
                },
            ),
        ]);
        store.set_meta(RING_KEY, &new).unwrap();
        store.set_meta(INBOUND_KEY, &inbound).unwrap();
        let handoff = Handoff::open(store, new, 3).unwrap();
        let ownership = handoff.ownership();
        assert_eq!(ownership.state(waiting), ShardState::Incoming(from));
        assert_eq!(ownership.route(waiting, false), Route::Forward(from));
        assert_eq!(ownership.state(arrived), ShardState::Serving);
        assert!(locked(&handoff.outbound).is_empty());
    }

    #[test]
    fn data_from_before_rings_were_persisted_follows_the_configured_list() {
        let (_dir, store) = store();
        let write = crate::storage::UserWrite::default();
        store
            .apply([&Store::user_write(1, &"record", &write).unwrap()])
            .unwrap();
        let nodes = list(&["n1", "n2"]);
        let handoff = Handoff::open(store.clone(), nodes.clone(), 0).unwrap();
        assert_eq!(store.meta::<Vec<String>>(RING_KEY).unwrap(), Some(nodes));
        assert!(handoff
            .ownership()
            .shards_in(ShardState::Pending)
            .is_empty());
        assert!(locked(&handoff.outbound).is_empty());
    }

    #[test]
    fn keys_follow_their_user_or_identity() {
        assert_eq!(key_shard(KeyOwner::User(1)), Some(user_shard(1)));
        assert_eq!(
            key_shard(KeyOwner::Identity(b"cookie\0c1")),
            Some(crate::cluster::identity_shard("cookie", "c1"))
        );
        assert_eq!(key_shard(KeyOwner::Node), None);
    }
}
