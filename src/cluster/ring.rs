//! Placement: users and identities map to a fixed number of shards by fixed, documented
//! hashes, and shards map to nodes with `hashring` (64 virtual nodes per node). Placement
//! is a compatibility contract — the golden test pins it, so an upgrade never moves users
//! silently.

use std::hash::{Hash, Hasher};

use hashring::HashRing;

use crate::actors::mix;
use crate::domain::fnv1a;

/// Cluster shards: fixed forever (handoff, key prefixes and metrics are per shard).
pub const SHARDS: u16 = 1024;

/// Virtual nodes per node on the ring.
pub const VNODES: u32 = 64;

/// Returns the shard of a user: SplitMix64's finaliser of its id, modulo `SHARDS`.
pub fn user_shard(user: u64) -> u16 {
    (mix(user) % u64::from(SHARDS)) as u16
}

/// Returns the shard of an identity: the finaliser of FNV-1a over `type \0 id`.
pub fn identity_shard(id_type: &str, id: &str) -> u16 {
    let mut bytes = Vec::with_capacity(id_type.len() + 1 + id.len());
    bytes.extend_from_slice(id_type.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(id.as_bytes());
    identity_bytes_shard(&bytes)
}

/// Returns the shard of an identity given as the bytes `type \0 id`.
pub fn identity_bytes_shard(bytes: &[u8]) -> u16 {
    (mix(fnv1a(bytes)) % u64::from(SHARDS)) as u16
}

/// One point of a node on the ring; it hashes as the little-endian FNV-1a of `id#n`, so
/// its place depends on nothing but the node's id.
struct VirtualNode {
    node: usize,
    key: u64,
}

impl Hash for VirtualNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.key.to_le_bytes());
    }
}

/// A shard looked up on the ring; hashes as its little-endian number.
struct ShardKey(u16);

impl Hash for ShardKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&u64::from(self.0).to_le_bytes());
    }
}

/// Which node owns each shard, for one list of node ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    owners: Vec<u16>,
    nodes: usize,
}

impl Ring {
    /// Builds the ring of `nodes` (their ids, in configuration order; at least one).
    pub fn new(nodes: &[&str]) -> Ring {
        let mut ring: HashRing<VirtualNode> = HashRing::new();
        ring.batch_add(
            nodes
                .iter()
                .enumerate()
                .flat_map(|(node, id)| {
                    (0..VNODES).map(move |n| VirtualNode {
                        node,
                        key: fnv1a(format!("{id}#{n}").as_bytes()),
                    })
                })
                .collect(),
        );
        let owners = (0..SHARDS)
            .map(|shard| {
                ring.get(&ShardKey(shard))
                    .map_or(0, |vnode| vnode.node as u16)
            })
            .collect();
        Ring {
            owners,
            nodes: nodes.len().max(1),
        }
    }

    /// Builds the ring of owned node ids (see [`Ring::new`]).
    pub fn of(nodes: &[String]) -> Ring {
        Ring::new(&nodes.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Returns the position (in the node list) of the node that owns `shard`.
    pub fn owner(&self, shard: u16) -> usize {
        self.owners
            .get(usize::from(shard))
            .map_or(0, |owner| usize::from(*owner))
    }

    /// Returns how many nodes the ring spans.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Returns the shards owned by the node at `position`.
    pub fn shards_of(&self, position: usize) -> impl Iterator<Item = u16> + '_ {
        (0..SHARDS).filter(move |shard| self.owner(*shard) == position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_pinned() {
        // A compatibility contract: changing any of these moves users between nodes.
        assert_eq!(user_shard(1), 485);
        assert_eq!(identity_shard("cookie", "c1"), 168);
        let ring = Ring::new(&["n1", "n2", "n3"]);
        let first: Vec<usize> = (0..12).map(|shard| ring.owner(shard)).collect();
        let counts: Vec<usize> = (0..3).map(|node| ring.shards_of(node).count()).collect();
        assert_eq!(first, [1, 2, 2, 1, 2, 2, 1, 0, 0, 0, 0, 2]);
        assert_eq!(counts, [354, 362, 308]);
    }

    #[test]
    fn one_node_owns_everything() {
        let ring = Ring::new(&["solo"]);
        assert!((0..SHARDS).all(|shard| ring.owner(shard) == 0));
    }

    #[test]
    fn adding_a_node_moves_only_shards_to_it() {
        let three = Ring::new(&["n1", "n2", "n3"]);
        let four = Ring::new(&["n1", "n2", "n3", "n4"]);
        let moved: Vec<u16> = (0..SHARDS)
            .filter(|shard| three.owner(*shard) != four.owner(*shard))
            .collect();
        assert!(moved.iter().all(|shard| four.owner(*shard) == 3));
        // Roughly a quarter of the shards move, and every node keeps a fair share.
        assert!((150..=400).contains(&moved.len()), "{}", moved.len());
        for node in 0..4 {
            assert!((130..=400).contains(&four.shards_of(node).count()));
        }
    }

    #[test]
    fn node_addresses_do_not_matter_only_ids() {
        assert_eq!(Ring::new(&["a", "b"]), Ring::new(&["a", "b"]));
        assert_ne!(Ring::new(&["a", "b"]), Ring::new(&["a", "c"]));
    }
}
