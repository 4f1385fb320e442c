//! Which shards change hands for one node when the node list changes: those it owns on
//! the new ring and did not on the old one come in from their old owner; those it owned
//! and no longer does go out to their new owner.

use std::collections::BTreeMap;

use crate::cluster::ring::{Ring, SHARDS};

/// The shards that change hands for one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moves {
    /// Shard → position (in the new list) of the node that holds its data.
    pub incoming: BTreeMap<u16, usize>,
    /// Shard → position of the node that owns it now.
    pub outgoing: BTreeMap<u16, usize>,
}

/// Returns what changes hands for node `me` when the ring of the node ids `old` becomes
/// the ring of `new` (the configured list, which holds `me`). An empty `old` is no ring
/// (a new cluster): nothing moves; nor does anything between two lists of one node (a
/// lone node owns everything, whatever its id). Fails when a node of `old` is not in
/// `new`: removing nodes is not supported.
pub fn moves(old: &[String], new: &[String], me: &str) -> Result<Moves, String> {
    let mut moves = Moves::default();
    if old.is_empty() || old == new || (old.len() == 1 && new.len() == 1) {
        return Ok(moves);
    }
    let positions = old
        .iter()
        .map(|id| {
            new.iter()
                .position(|other| other == id)
                .ok_or_else(|| format!("node {id} left the cluster's node list, and removing nodes is not supported; add nodes at the end of the list"))
        })
        .collect::<Result<Vec<usize>, String>>()?;
    let Some(me_new) = new.iter().position(|id| id == me) else {
        return Err(format!("node {me} is not in the cluster's node list"));
    };
    let me_old = old.iter().position(|id| id == me);
    let old_ring = Ring::of(old);
    let new_ring = Ring::of(new);
    for shard in 0..SHARDS {
        let was = old_ring.owner(shard);
        let is = new_ring.owner(shard);
        let mine_before = Some(was) == me_old;
        let mine_now = is == me_new;
        if mine_now && !mine_before {
            moves.incoming.insert(shard, positions[was]);
        } else if mine_before && !mine_now {
            moves.outgoing.insert(shard, is);
        }
    }
    Ok(moves)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn a_fourth_node_takes_exactly_the_shards_that_move_each_from_its_old_owner() {
        let old = list(&["n1", "n2", "n3"]);
        let new = list(&["n1", "n2", "n3", "n4"]);
        let three = Ring::new(&["n1", "n2", "n3"]);
        let four = Ring::new(&["n1", "n2", "n3", "n4"]);
        let newcomer = moves(&old, &new, "n4").unwrap();
        assert!(newcomer.outgoing.is_empty());
        let moved: Vec<u16> = (0..SHARDS)
            .filter(|shard| three.owner(*shard) != four.owner(*shard))
            .collect();
        assert_eq!(newcomer.incoming.keys().copied().collect::<Vec<_>>(), moved);
        for (shard, from) in &newcomer.incoming {
            assert_eq!(four.owner(*shard), 3);
            assert_eq!(*from, three.owner(*shard));
        }
        let mut handed_over = BTreeMap::new();
        for (position, id) in old.iter().enumerate() {
            let node = moves(&old, &new, id).unwrap();
            assert!(node.incoming.is_empty(), "{id} receives nothing");
            for (shard, to) in node.outgoing {
                assert_eq!(to, 3, "{id} hands shard {shard} to n4 only");
                assert_eq!(three.owner(shard), position);
                assert!(handed_over.insert(shard, position).is_none());
            }
        }
        assert_eq!(handed_over, newcomer.incoming);
    }

    #[test]
    fn nothing_moves_in_a_new_cluster_or_an_unchanged_one() {
        let nodes = list(&["n1", "n2"]);
        assert_eq!(moves(&[], &nodes, "n1").unwrap(), Moves::default());
        assert_eq!(moves(&nodes, &nodes, "n2").unwrap(), Moves::default());
        assert_eq!(
            moves(&list(&["solo"]), &list(&["renamed"]), "renamed").unwrap(),
            Moves::default()
        );
    }

    #[test]
    fn a_node_may_not_leave_the_list() {
        let error = moves(&list(&["n1", "n2"]), &list(&["n1"]), "n1").unwrap_err();
        assert!(error.contains("n2 left"), "{error}");
    }
}
