//! What this node knows of every configured node, kept current from gossip.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chitchat::ChitchatId;
use tokio::sync::watch;
use tracing::{debug, info};

use super::NodeState;
use crate::sync::locked;

/// The gossip key under which a node says whether it is ready ("true" or "false").
pub(super) const READY_KEY: &str = "ready";

/// Prefixes the keys of [`super::Membership::set_key`] in gossip, apart from `ready`.
pub(super) const USER_KEY_PREFIX: &str = "key:";

/// The nodes chitchat's failure detector holds alive, with their gossiped state.
pub(super) type LiveNodes = BTreeMap<ChitchatId, chitchat::NodeState>;

/// The view shared by the handles and the gossip task.
pub(super) struct Shared {
    ids: Vec<String>,
    self_index: usize,
    known: Mutex<Vec<Known>>,
    states: watch::Sender<Vec<(String, NodeState)>>,
}

/// One configured node as last seen.
#[derive(Clone)]
struct Known {
    state: NodeState,
    keys: HashMap<String, String>,
}

impl Shared {
    /// Every peer starts `Down` (never heard from), this node `Joining`.
    pub(super) fn new(ids: Vec<String>, self_index: usize) -> Shared {
        let mut known = vec![down(); ids.len()];
        known[self_index].state = NodeState::Joining;
        let (states, _) = watch::channel(states_of(&ids, &known));
        Shared {
            ids,
            self_index,
            known: Mutex::new(known),
            states,
        }
    }

    /// Returns this node's id.
    pub(super) fn self_id(&self) -> &str {
        &self.ids[self.self_index]
    }

    pub(super) fn states(&self) -> Vec<(String, NodeState)> {
        self.states.borrow().clone()
    }

    pub(super) fn state_of(&self, node_id: &str) -> Option<NodeState> {
        let states = self.states.borrow();
        states
            .iter()
            .find(|(id, _)| id == node_id)
            .map(|&(_, state)| state)
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Vec<(String, NodeState)>> {
        self.states.subscribe()
    }

    pub(super) fn set_ready(&self, ready: bool) {
        let mut known = locked(&self.known);
        known[self.self_index].state = if ready {
            NodeState::Up
        } else {
            NodeState::Joining
        };
        self.publish(&known);
    }

    pub(super) fn set_own_key(&self, key: &str, value: &str) {
        locked(&self.known)[self.self_index]
            .keys
            .insert(key.to_owned(), value.to_owned());
    }

    pub(super) fn key_of(&self, node_id: &str, key: &str) -> Option<String> {
        let index = self.ids.iter().position(|id| id == node_id)?;
        locked(&self.known)[index].keys.get(key).cloned()
    }

    /// Takes every peer's state from the live nodes: its newest live generation, `Up`
    /// if it published ready, `Down` if none is alive.
    pub(super) fn apply_live(&self, live: &LiveNodes) {
        let mut newest: HashMap<&str, &chitchat::NodeState> = HashMap::new();
        for (chitchat_id, node_state) in live {
            let id = &*chitchat_id.node_id;
            if !self.ids.iter().any(|known| known == id) {
                debug!(node = id, "gossip from a node that is not configured");
                continue;
            }
            let newer = newest
                .get(id)
                .is_none_or(|seen| seen.chitchat_id().generation_id < chitchat_id.generation_id);
            if newer {
                newest.insert(id, node_state);
            }
        }
        let mut known = locked(&self.known);
        for (index, id) in self.ids.iter().enumerate() {
            if index != self.self_index {
                known[index] = newest.get(id.as_str()).map_or_else(down, |node| peer(node));
            }
        }
        self.publish(&known);
    }

    /// Marks every peer `Down`: gossip stopped, nothing is known of them any more.
    pub(super) fn lose_peers(&self) {
        let mut known = locked(&self.known);
        for (index, node) in known.iter_mut().enumerate() {
            if index != self.self_index {
                *node = down();
            }
        }
        self.publish(&known);
    }

    /// Sends the states to the subscribers if they changed, logging each change.
    fn publish(&self, known: &[Known]) {
        let next = states_of(&self.ids, known);
        self.states.send_if_modified(|states| {
            if *states == next {
                return false;
            }
            for ((id, was), (_, now)) in states.iter().zip(&next) {
                if was != now {
                    info!(node = %id, was = %was, now = %now, "cluster node is {now}");
                }
            }
            *states = next;
            true
        });
    }
}

fn states_of(ids: &[String], known: &[Known]) -> Vec<(String, NodeState)> {
    ids.iter()
        .zip(known)
        .map(|(id, node)| (id.clone(), node.state))
        .collect()
}

fn down() -> Known {
    Known {
        state: NodeState::Down,
        keys: HashMap::new(),
    }
}

/// A live peer: `Up` once it published ready, `Joining` before.
fn peer(node: &chitchat::NodeState) -> Known {
    let ready = node.get(READY_KEY) == Some("true");
    Known {
        state: if ready {
            NodeState::Up
        } else {
            NodeState::Joining
        },
        keys: node
            .key_values()
            .filter_map(|(key, value)| {
                let key = key.strip_prefix(USER_KEY_PREFIX)?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect(),
    }
}
