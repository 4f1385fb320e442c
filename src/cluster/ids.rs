//! Cluster-unique user ids with no coordination per event: a node's position in the node
//! list is the id's top bits (bits 40–49, so ids stay below 2^53 and exact in JSON), a
//! per-node sequence the rest. A node only hands out ids of shards it serves, so a new
//! user lives where its first identity is resolved, and only identities this node
//! resolves are given to its users. A cluster of one (position 0) numbers
//! users 1, 2, 3… as before.

use std::sync::Arc;

use super::handoff::Ownership;
use super::ring::{identity_shard, user_shard};

/// Bits of the per-node sequence.
pub const SEQUENCE_BITS: u32 = 40;

/// Most candidate sequence numbers tried for one new id (with n nodes about n are needed).
const MAX_TRIES: usize = 1 << 16;

/// The ids this node may assign.
#[derive(Clone, Debug)]
pub struct UserIds {
    position: usize,
    ownership: Option<Arc<Ownership>>,
}

impl UserIds {
    /// Every id, for a cluster of one.
    pub fn single() -> UserIds {
        UserIds {
            position: 0,
            ownership: None,
        }
    }

    /// The ids of the node at `position`, in the shards `ownership` says it serves.
    pub fn of(position: usize, ownership: Arc<Ownership>) -> UserIds {
        UserIds {
            position,
            ownership: Some(ownership),
        }
    }

    /// Returns whether this node resolves the identity (and so may create its user).
    pub fn resolves(&self, id_type: &str, id: &str) -> bool {
        self.serves(identity_shard(id_type, id))
    }

    fn serves(&self, shard: u16) -> bool {
        self.ownership
            .as_ref()
            .is_none_or(|ownership| ownership.serves(shard))
    }

    /// Returns a fresh id from `next_sequence` (a persistent, increasing counter), or
    /// `None` when the counter ran out of this node's range.
    pub fn assign<E>(
        &self,
        mut next_sequence: impl FnMut() -> Result<u64, E>,
    ) -> Result<Option<u64>, E> {
        let prefix = (self.position as u64) << SEQUENCE_BITS;
        for _ in 0..MAX_TRIES {
            let sequence = next_sequence()?;
            if sequence >= 1 << SEQUENCE_BITS {
                return Ok(None);
            }
            let id = prefix | sequence;
            if self.serves(user_shard(id)) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ring::Ring;

    fn counter() -> impl FnMut() -> Result<u64, ()> {
        let mut next = 0;
        move || {
            next += 1;
            Ok(next)
        }
    }

    #[test]
    fn a_single_node_numbers_from_one() {
        let ids = UserIds::single();
        let mut sequence = counter();
        let got: Vec<u64> = (0..3)
            .map(|_| ids.assign(&mut sequence).unwrap().unwrap())
            .collect();
        assert_eq!(got, [1, 2, 3]);
    }

    #[test]
    fn each_node_assigns_distinct_ids_of_its_own_shards() {
        let nodes = ["n1", "n2", "n3"];
        let ring = Ring::new(&nodes);
        let mut seen = std::collections::HashSet::new();
        for position in 0..3 {
            let ownership = Ownership::new(nodes.map(String::from).to_vec(), position, &ring);
            let ids = UserIds::of(position, Arc::new(ownership));
            let mut sequence = counter();
            for _ in 0..200 {
                let id = ids.assign(&mut sequence).unwrap().unwrap();
                assert_eq!(ring.owner(user_shard(id)), position);
                assert_eq!(id >> SEQUENCE_BITS, position as u64);
                assert!(seen.insert(id));
                assert!(id < 1 << 53);
            }
        }
    }

    #[test]
    fn no_id_is_given_in_a_shard_that_is_still_coming_in() {
        use crate::cluster::handoff::ShardState;
        let nodes = ["n1", "n2"];
        let ring = Ring::new(&nodes);
        let ownership = Arc::new(Ownership::new(nodes.map(String::from).to_vec(), 1, &ring));
        let incoming: Vec<u16> = ring.shards_of(1).step_by(2).collect();
        for shard in &incoming {
            ownership.set(*shard, ShardState::Incoming(0));
        }
        let ids = UserIds::of(1, Arc::clone(&ownership));
        let mut sequence = counter();
        for _ in 0..200 {
            let id = ids.assign(&mut sequence).unwrap().unwrap();
            assert!(ownership.serves(user_shard(id)));
            assert!(!incoming.contains(&user_shard(id)));
        }
    }

    #[test]
    fn an_exhausted_range_is_reported() {
        let ids = UserIds::single();
        assert_eq!(ids.assign(|| Ok::<_, ()>(1 << SEQUENCE_BITS)), Ok(None));
    }
}
