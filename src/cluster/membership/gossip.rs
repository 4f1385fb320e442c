//! The chitchat side: the gossip server's config, and the task that owns the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chitchat::transport::UdpTransport;
use chitchat::{
    spawn_chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig,
    ProtocolVersion,
};
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use super::view::{LiveNodes, Shared, READY_KEY};
use super::MembershipConfig;

/// Gossip messages carry this id; a node drops those of another cluster.
const CLUSTER_ID: &str = "uss";

/// How long a deleted gossip key is remembered (we never delete keys; chitchat needs one).
const KEY_TOMBSTONE_GRACE_PERIOD: Duration = Duration::from_secs(3_600);

/// What the handles ask of the task that owns the gossip server.
pub(super) enum Command {
    /// Sets one of this node's gossip key/values.
    Publish { key: String, value: String },
    /// Stops gossip.
    Shutdown,
}

/// Binds the gossip socket and starts the server, seeded with the other configured
/// nodes; returns it with its watch of the live nodes.
pub(super) async fn spawn(
    config: &MembershipConfig,
    advertise_addr: SocketAddr,
) -> anyhow::Result<(ChitchatHandle, watch::Receiver<LiveNodes>)> {
    let seed_nodes = config
        .nodes
        .iter()
        .filter(|(id, _)| *id != config.node_id)
        .map(|(_, addr)| addr.to_string())
        .collect();
    let tuning = &config.tuning;
    let chitchat_config = ChitchatConfig {
        chitchat_id: ChitchatId::new(config.node_id.as_str(), config.generation, advertise_addr),
        cluster_id: CLUSTER_ID.to_owned(),
        gossip_interval: tuning.gossip_interval,
        listen_addr: config.listen_addr,
        seed_nodes,
        failure_detector_config: FailureDetectorConfig {
            phi_threshold: tuning.phi_threshold,
            initial_interval: tuning.gossip_interval,
            dead_node_grace_period: tuning.dead_node_grace_period,
            ..FailureDetectorConfig::default()
        },
        marked_for_deletion_grace_period: KEY_TOMBSTONE_GRACE_PERIOD,
        catchup_callback: None,
        extra_liveness_predicate: None,
        // Every node of a cluster runs this build, so all decode the compact digest.
        protocol_version: ProtocolVersion::V1,
    };
    let initial_key_values = vec![(READY_KEY.to_owned(), false.to_string())];
    let handle = spawn_chitchat(chitchat_config, initial_key_values, &UdpTransport)
        .await
        .with_context(|| format!("node {}: cannot start gossip", config.node_id))?;
    let live = handle
        .with_chitchat(|chitchat| chitchat.live_nodes_watcher())
        .await;
    info!(
        node = %config.node_id,
        generation = config.generation,
        addr = %config.listen_addr,
        "gossip started"
    );
    Ok((handle, live))
}

/// Owns the gossip server: applies this node's key/values and follows the live nodes
/// until shut down (or until every handle is gone).
pub(super) async fn run(
    handle: ChitchatHandle,
    mut live: watch::Receiver<LiveNodes>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let terminated = handle.termination_watcher();
    tokio::pin!(terminated);
    let mut gossiping = true;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Publish { key, value }) => {
                    handle
                        .with_chitchat(|chitchat| chitchat.self_node_state().set(&key, &value))
                        .await;
                }
                Some(Command::Shutdown) | None => break,
            },
            changed = live.changed(), if gossiping => match changed {
                Ok(()) => shared.apply_live(&live.borrow_and_update()),
                Err(_) => gossiping = false,
            },
            result = &mut terminated, if gossiping => {
                error!(
                    node = %shared.self_id(),
                    error = ?result.err(),
                    "gossip stopped on its own; peers are now unknown"
                );
                gossiping = false;
                shared.lose_peers();
            }
        }
    }
    if let Err(e) = handle.shutdown().await {
        error!(node = %shared.self_id(), error = %e, "gossip did not stop cleanly");
    }
    info!(node = %shared.self_id(), "gossip stopped");
}
