//! Members gossiping for real over UDP on 127.0.0.1, with shrunk timings.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use tokio::time::{sleep, timeout};

use super::NodeState::{Down, Joining, Up};
use super::{Membership, MembershipConfig, NodeState, Tuning};

/// How long any expected view may take to show up.
const DEADLINE: Duration = Duration::from_secs(5);

fn fast() -> Tuning {
    Tuning {
        gossip_interval: Duration::from_millis(50),
        phi_threshold: 8.0,
        dead_node_grace_period: Duration::from_secs(60),
    }
}

/// Configured nodes n1, n2, … on free UDP ports of 127.0.0.1.
fn nodes(count: usize) -> Vec<(String, SocketAddr)> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .enumerate()
        .map(|(i, socket)| (format!("n{}", i + 1), socket.local_addr().unwrap()))
        .collect()
}

async fn start(nodes: &[(String, SocketAddr)], index: usize, generation: u64) -> Membership {
    let (node_id, listen_addr) = nodes[index].clone();
    Membership::start(MembershipConfig {
        node_id,
        listen_addr,
        nodes: nodes.to_vec(),
        generation,
        tuning: fast(),
    })
    .await
    .unwrap()
}

/// Starts every configured node, ready or not.
async fn start_all(nodes: &[(String, SocketAddr)], ready: &[bool]) -> Vec<Membership> {
    let mut members = Vec::new();
    for (index, &ready) in ready.iter().enumerate() {
        let member = start(nodes, index, 1).await;
        member.set_ready(ready);
        members.push(member);
    }
    members
}

async fn shutdown_all(members: Vec<Membership>) {
    for member in members {
        member.shutdown().await;
    }
}

/// Waits, through `subscribe`, until `member` sees the configured nodes in `expected`.
async fn wait_states(member: &Membership, expected: &[NodeState]) {
    let mut states = member.subscribe();
    let seen = timeout(
        DEADLINE,
        states.wait_for(|states| states.iter().map(|(_, s)| s).eq(expected)),
    )
    .await
    .is_ok();
    assert!(seen, "{member:?}, expected {expected:?}");
}

/// Polls `condition` until it holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let held = timeout(DEADLINE, async {
        while !condition() {
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok();
    assert!(held, "not seen within {DEADLINE:?}: {what}");
}

#[tokio::test]
async fn three_ready_members_see_each_other_up() {
    let nodes = nodes(3);
    let members = start_all(&nodes, &[true, true, true]).await;
    for member in &members {
        wait_states(member, &[Up, Up, Up]).await;
    }
    assert!(members[0].is_up("n3"));
    assert!(!members[0].is_up("n4"));
    shutdown_all(members).await;
}

#[tokio::test]
async fn a_member_not_ready_is_joining_until_it_says_so() {
    let nodes = nodes(3);
    let members = start_all(&nodes, &[true, true, false]).await;
    for member in &members {
        wait_states(member, &[Up, Up, Joining]).await;
    }
    assert!(!members[0].is_up("n3"));
    members[2].set_ready(true);
    for member in &members {
        wait_states(member, &[Up, Up, Up]).await;
    }
    shutdown_all(members).await;
}

#[tokio::test]
async fn a_member_shut_down_is_down_and_up_again_once_restarted() {
    let nodes = nodes(3);
    let mut members = start_all(&nodes, &[true, true, true]).await;
    for member in &members {
        wait_states(member, &[Up, Up, Up]).await;
    }

    let stopped = members.pop().unwrap();
    stopped.shutdown().await;
    for member in &members {
        wait_states(member, &[Up, Up, Down]).await;
    }

    // Same address, next generation.
    let restarted = start(&nodes, 2, 2).await;
    restarted.set_ready(true);
    members.push(restarted);
    for member in &members {
        wait_states(member, &[Up, Up, Up]).await;
    }
    shutdown_all(members).await;
}

#[tokio::test]
async fn published_keys_are_read_by_the_others() {
    let nodes = nodes(3);
    let members = start_all(&nodes, &[true, true, true]).await;
    members[0].set_key("catalog_version", "7");
    assert_eq!(
        members[0].key_of("n1", "catalog_version").as_deref(),
        Some("7")
    );
    for member in &members[1..] {
        eventually("n1's catalog_version 7", || {
            member.key_of("n1", "catalog_version").as_deref() == Some("7")
        })
        .await;
    }

    members[0].set_key("catalog_version", "8");
    for member in &members[1..] {
        eventually("n1's catalog_version 8", || {
            member.key_of("n1", "catalog_version").as_deref() == Some("8")
        })
        .await;
    }
    assert_eq!(members[1].key_of("n1", "other"), None);
    assert_eq!(members[1].key_of("n9", "catalog_version"), None);
    // The readiness flag is not one of the published keys.
    assert_eq!(members[1].key_of("n1", "ready"), None);
    shutdown_all(members).await;
}

#[tokio::test]
async fn peers_never_started_are_down() {
    let nodes = nodes(3);
    let alone = start(&nodes, 0, 1).await;
    let mut states = alone.subscribe();
    assert_eq!(
        alone.states(),
        vec![
            ("n1".to_owned(), Joining),
            ("n2".to_owned(), Down),
            ("n3".to_owned(), Down),
        ]
    );

    alone.set_ready(true);
    assert!(states.has_changed().unwrap());
    assert_eq!(*states.borrow_and_update(), alone.states());
    assert!(alone.is_up("n1"));
    // Several gossip rounds towards the silent seeds change nothing.
    let changed = timeout(fast().gossip_interval * 6, states.changed()).await;
    assert!(changed.is_err(), "{alone:?}");
    assert_eq!(
        alone.states().iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Up, Down, Down]
    );
    assert!(!alone.is_up("n2"));
    alone.shutdown().await;
}

#[tokio::test]
async fn start_fails_when_the_port_is_taken() {
    let nodes = nodes(2);
    let _taken = UdpSocket::bind(nodes[0].1).unwrap();
    let error = Membership::start(MembershipConfig {
        node_id: "n1".to_owned(),
        listen_addr: nodes[0].1,
        nodes: nodes.clone(),
        generation: 1,
        tuning: fast(),
    })
    .await
    .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains(&nodes[0].1.to_string()), "{message}");
}

#[tokio::test]
async fn start_fails_when_the_node_is_not_configured() {
    let nodes = nodes(2);
    let error = Membership::start(MembershipConfig {
        node_id: "n7".to_owned(),
        listen_addr: nodes[0].1,
        nodes,
        generation: 1,
        tuning: fast(),
    })
    .await
    .unwrap_err();
    assert!(error.to_string().contains("n7"), "{error}");
}

#[test]
fn states_serialize_lowercase() {
    assert_eq!(
        serde_json::to_string(&[Up, Joining, Down]).unwrap(),
        r#"["up","joining","down"]"#
    );
}
