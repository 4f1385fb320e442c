//! What this node does with each shard now, and the one routing decision built on it:
//! serve a request here, forward it to one node, or answer `503`.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::cluster::ring::{user_shard, Ring, SHARDS};

/// What this node does with one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardState {
    /// This node owns it and applies its changes.
    Serving,
    /// The node at this position owns it.
    Elsewhere(usize),
    /// This node owns it, but its data is still on the node at this position (its
    /// previous owner), which serves it until it has handed it over.
    Incoming(usize),
    /// The node at this position owns it now; this node still holds its data, hands it
    /// over, and applies nothing to it meanwhile.
    Outgoing(usize),
    /// This node owns it but does not know yet where its data is (it is starting).
    Pending,
}

/// Where a request about one shard is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Here.
    Local,
    /// By the node at this position.
    Forward(usize),
    /// Nowhere now (a shard in transit); says why.
    Unavailable(String),
}

const SERVING: u32 = 0;
const ELSEWHERE: u32 = 1;
const INCOMING: u32 = 2;
const OUTGOING: u32 = 3;
const PENDING: u32 = 4;

fn encode(state: ShardState) -> u32 {
    let (tag, position) = match state {
        ShardState::Serving => (SERVING, 0),
        ShardState::Elsewhere(p) => (ELSEWHERE, p),
        ShardState::Incoming(p) => (INCOMING, p),
        ShardState::Outgoing(p) => (OUTGOING, p),
        ShardState::Pending => (PENDING, 0),
    };
    // Positions stay below `config::MAX_NODES` (1,024).
    tag << 16 | (position as u32 & 0xffff)
}

fn decode(word: u32) -> ShardState {
    let position = (word & 0xffff) as usize;
    match word >> 16 {
        SERVING => ShardState::Serving,
        ELSEWHERE => ShardState::Elsewhere(position),
        INCOMING => ShardState::Incoming(position),
        OUTGOING => ShardState::Outgoing(position),
        _ => ShardState::Pending,
    }
}

/// The state of every shard, as this node sees it; read without locks on every request
/// and every user message.
#[derive(Debug)]
pub struct Ownership {
    nodes: Vec<String>,
    me: usize,
    states: Vec<AtomicU32>,
}

impl Ownership {
    /// Node `me` (a position in `nodes`, the configured ids) serving what it owns on
    /// `ring`.
    pub fn new(nodes: Vec<String>, me: usize, ring: &Ring) -> Ownership {
        let states = (0..SHARDS)
            .map(|shard| {
                let owner = ring.owner(shard);
                let state = if owner == me {
                    ShardState::Serving
                } else {
                    ShardState::Elsewhere(owner)
                };
                AtomicU32::new(encode(state))
            })
            .collect();
        Ownership { nodes, me, states }
    }

    /// Returns the state of `shard`.
    pub fn state(&self, shard: u16) -> ShardState {
        self.states
            .get(usize::from(shard))
            .map_or(ShardState::Pending, |word| {
                decode(word.load(Ordering::SeqCst))
            })
    }

    /// Sets the state of `shard`.
    pub fn set(&self, shard: u16, state: ShardState) {
        if let Some(word) = self.states.get(usize::from(shard)) {
            word.store(encode(state), Ordering::SeqCst);
        }
    }

    /// Returns every shard in `state`.
    pub fn shards_in(&self, state: ShardState) -> Vec<u16> {
        (0..SHARDS)
            .filter(|shard| self.state(*shard) == state)
            .collect()
    }

    /// Returns whether this node applies changes to `shard` now.
    pub fn serves(&self, shard: u16) -> bool {
        self.state(shard) == ShardState::Serving
    }

    /// Returns whether this node applies changes to `user` now.
    pub fn serves_user(&self, user: u64) -> bool {
        self.serves(user_shard(user))
    }

    /// Returns whether this node holds the whole data of `user`'s shard (it serves it,
    /// or hands it over).
    pub fn holds_user(&self, user: u64) -> bool {
        matches!(
            self.state(user_shard(user)),
            ShardState::Serving | ShardState::Outgoing(_)
        )
    }

    /// Decides where a request about `shard` is served. One from a client goes to the
    /// node that serves the shard now; one that another node `forwarded` is served here
    /// or refused, never forwarded again (so two nodes never bounce a request).
    pub fn route(&self, shard: u16, forwarded: bool) -> Route {
        let me = &self.nodes[self.me];
        let node = |position: usize| self.nodes.get(position).map_or("?", String::as_str);
        match (self.state(shard), forwarded) {
            (ShardState::Serving, _) => Route::Local,
            (ShardState::Elsewhere(owner), false) => Route::Forward(owner),
            (ShardState::Incoming(from), false) => Route::Forward(from),
            (ShardState::Outgoing(to), false) => Route::Forward(to),
            (ShardState::Elsewhere(owner), true) => Route::Unavailable(format!(
                "node {me} was asked about shard {shard}, which node {} owns (the nodes disagree on the cluster's node list; a change of it is under way?)",
                node(owner)
            )),
            (ShardState::Incoming(from), true) => Route::Unavailable(format!(
                "shard {shard} is being handed over from node {} to node {me}; retry shortly",
                node(from)
            )),
            (ShardState::Outgoing(to), true) => Route::Unavailable(format!(
                "shard {shard} is being handed over from node {me} to node {}; retry shortly",
                node(to)
            )),
            (ShardState::Pending, _) => Route::Unavailable(format!(
                "node {me} is starting and does not serve shard {shard} yet; retry shortly"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> (Ring, Ownership) {
        let ids = ["n1", "n2", "n3"];
        let ring = Ring::new(&ids);
        let ownership = Ownership::new(ids.map(String::from).to_vec(), 1, &ring);
        (ring, ownership)
    }

    #[test]
    fn states_read_back() {
        let (_, ownership) = three();
        for state in [
            ShardState::Serving,
            ShardState::Elsewhere(1023),
            ShardState::Incoming(2),
            ShardState::Outgoing(0),
            ShardState::Pending,
        ] {
            ownership.set(7, state);
            assert_eq!(ownership.state(7), state);
        }
    }

    #[test]
    fn a_node_serves_what_it_owns_and_forwards_the_rest_once() {
        let (ring, ownership) = three();
        for shard in 0..SHARDS {
            let owner = ring.owner(shard);
            if owner == 1 {
                assert_eq!(ownership.route(shard, false), Route::Local);
                assert_eq!(ownership.route(shard, true), Route::Local);
            } else {
                assert_eq!(ownership.route(shard, false), Route::Forward(owner));
                assert!(matches!(
                    ownership.route(shard, true),
                    Route::Unavailable(_)
                ));
            }
        }
    }

    #[test]
    fn a_shard_in_transit_goes_to_the_node_that_holds_it_and_is_never_bounced() {
        let (_, ownership) = three();
        ownership.set(1, ShardState::Incoming(0));
        ownership.set(2, ShardState::Outgoing(2));
        ownership.set(3, ShardState::Pending);
        assert_eq!(ownership.route(1, false), Route::Forward(0));
        assert_eq!(ownership.route(2, false), Route::Forward(2));
        for shard in 1..=3 {
            assert!(matches!(
                ownership.route(shard, true),
                Route::Unavailable(_)
            ));
            assert!(!ownership.serves(shard));
        }
        assert!(matches!(ownership.route(3, false), Route::Unavailable(_)));
    }
}
