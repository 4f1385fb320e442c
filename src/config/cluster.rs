//! `[cluster]`: the nodes that form one logical server, and gossip tuning.

use std::collections::HashSet;
use std::net::SocketAddr;

use serde::Deserialize;

/// Most nodes in a cluster: a node's position in the list is the top bits of the user ids
/// it assigns (see `cluster::ids`).
pub const MAX_NODES: usize = 1024;

/// One configured node.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddr {
    /// The node's id (its `--node-id`).
    pub id: String,
    /// Its HTTP address; nodes talk to each other there (and gossip over UDP on the same
    /// ip:port).
    pub addr: String,
}

/// `[cluster]`: without nodes, the node is a cluster of one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Every node of the cluster, this one included. New nodes are appended: a node's
    /// position must never change, since user ids carry it.
    pub nodes: Vec<NodeAddr>,
    /// How often a node gossips with its peers, in milliseconds.
    pub gossip_interval_ms: u64,
    /// How long a silent node takes to be reported `down`, in milliseconds.
    pub down_after_ms: u64,
    /// How long a request forwarded to another node may take, in milliseconds.
    pub forward_timeout_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            nodes: Vec::new(),
            gossip_interval_ms: 250,
            down_after_ms: 3_000,
            forward_timeout_ms: 10_000,
        }
    }
}

impl ClusterSection {
    /// Returns what is wrong with the section for the node `node_id`.
    pub fn problems(&self, node_id: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.nodes.is_empty() {
            return problems;
        }
        if self.nodes.len() > MAX_NODES {
            problems.push(format!("cluster.nodes lists more than {MAX_NODES} nodes"));
        }
        let mut ids = HashSet::new();
        let mut addrs = HashSet::new();
        for node in &self.nodes {
            if node.id.is_empty() || !ids.insert(node.id.as_str()) {
                problems.push(format!(
                    "cluster.nodes: node id `{}` is empty or listed twice",
                    node.id
                ));
            }
            match node.addr.parse::<SocketAddr>() {
                Ok(addr) if addrs.insert(addr) => {}
                Ok(_) => problems.push(format!(
                    "cluster.nodes: addr `{}` is listed twice",
                    node.addr
                )),
                Err(_) => problems.push(format!(
                    "cluster.nodes: addr `{}` of node `{}` is not an address like 127.0.0.1:7001",
                    node.addr, node.id
                )),
            }
        }
        if !ids.contains(node_id) {
            problems.push(format!(
                "server.node_id `{node_id}` is not one of cluster.nodes"
            ));
        }
        if self.gossip_interval_ms == 0 || self.down_after_ms <= self.gossip_interval_ms {
            problems
                .push("cluster.gossip_interval_ms must be above 0 and below down_after_ms".into());
        }
        if self.forward_timeout_ms == 0 {
            problems.push("cluster.forward_timeout_ms must be above 0".into());
        }
        problems
    }

    /// Returns this node's position in the list (0 for a cluster of one).
    pub fn ordinal(&self, node_id: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.id == node_id)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ClusterSection {
        let nodes = (1..=3)
            .map(|i| NodeAddr {
                id: format!("n{i}"),
                addr: format!("127.0.0.1:700{i}"),
            })
            .collect();
        ClusterSection {
            nodes,
            ..ClusterSection::default()
        }
    }

    #[test]
    fn a_cluster_of_one_needs_nothing() {
        assert!(ClusterSection::default().problems("n1").is_empty());
        assert_eq!(ClusterSection::default().ordinal("x"), 0);
    }

    #[test]
    fn the_node_must_be_listed_once_with_a_real_address() {
        let cluster = three();
        assert!(cluster.problems("n2").is_empty());
        assert_eq!(cluster.ordinal("n3"), 2);
        assert_eq!(cluster.problems("n9").len(), 1);
        let mut twice = three();
        twice.nodes[2].id = "n1".into();
        twice.nodes[1].addr = "nowhere".into();
        assert_eq!(twice.problems("n1").len(), 2);
    }
}
