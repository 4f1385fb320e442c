//! The old owner's side: send the keys of outgoing shards to their new owner in one pass
//! over the tree, and delete them once it has acknowledged them whole.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cluster::forward::MSGPACK;
use actix_web::http::Method;
use tracing::{debug, info, warn};

use crate::clock::Stopwatch;
use crate::cluster::ring::user_shard;
use crate::cluster::{Cluster, Outgoing};
use crate::storage::{key_owner, KeyOwner};
use crate::sync::locked;

use super::wire::{Blob, Message, PATH};
use super::{key_shard, Handoff, HandoffError, Services, ShardState};

/// Most pairs in one chunk.
const MAX_CHUNK_PAIRS: usize = 10_000;

/// About the most bytes of keys and values in one chunk.
const MAX_CHUNK_BYTES: usize = 4 << 20;

/// The pause before the first new attempt after a failed one; it doubles up to
/// `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(10);

impl Handoff {
    /// Hands every outgoing shard over to its new owner, one node at a time; returns
    /// whether none is left (the node then follows the configured ring). A failure is
    /// logged: those shards stay unavailable until a later attempt succeeds.
    pub async fn hand_over(&self, services: &Services) -> bool {
        let mut by_node: BTreeMap<usize, BTreeSet<u16>> = BTreeMap::new();
        for (shard, to) in locked(&self.outbound).iter() {
            by_node.entry(*to).or_default().insert(*shard);
        }
        for (to, shards) in by_node {
            if let Err(e) = self.hand_over_to(services, to, &shards).await {
                warn!(
                    node = %self.nodes[to],
                    shards = shards.len(),
                    error = %e,
                    "could not hand shards over; their users are unavailable until a later attempt succeeds"
                );
            }
        }
        if !locked(&self.outbound).is_empty() {
            return false;
        }
        if let Err(e) = self.adopt_configured_ring(&services.cluster).await {
            warn!(error = %e, "could not persist the new ring; the next start hands over again");
            return false;
        }
        true
    }

    /// Tries again, with a growing pause, until every outgoing shard is handed over.
    pub async fn keep_handing_over(&self, services: Services) {
        let mut pause = FIRST_PAUSE;
        loop {
            tokio::time::sleep(pause).await;
            if self.hand_over(&services).await {
                return;
            }
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Sends `shards` to the node at `to`, then deletes them here.
    async fn hand_over_to(
        &self,
        services: &Services,
        to: usize,
        shards: &BTreeSet<u16>,
    ) -> Result<(), HandoffError> {
        let took = Stopwatch::start();
        let picked = |owner: KeyOwner<'_>| key_shard(owner).is_some_and(|s| shards.contains(&s));
        let mut counts: BTreeMap<u16, u64> = shards.iter().map(|shard| (*shard, 0)).collect();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let step = self.store.export_step(
                after.as_deref(),
                picked,
                MAX_CHUNK_PAIRS,
                MAX_CHUNK_BYTES,
            )?;
            for (key, _) in &step.pairs {
                if let Some(shard) = key_shard(key_owner(key)) {
                    *counts.entry(shard).or_default() += 1;
                }
            }
            if !step.pairs.is_empty() {
                let pairs = step
                    .pairs
                    .into_iter()
                    .map(|(key, value)| (Blob(key), Blob(value)))
                    .collect();
                post(&services.cluster, to, &Message::Chunk(pairs)).await?;
            }
            match step.resume {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        let done = counts.iter().map(|(shard, keys)| (*shard, *keys)).collect();
        post(&services.cluster, to, &Message::Done(done)).await?;

        // The new owner has every key and serves the shards: this node's copy goes.
        let of_shards = |user: u64| shards.contains(&user_shard(user));
        let users = self.store.users_where(of_shards)?;
        let timers = self.store.timers_where(of_shards)?;
        services
            .totals
            .remove_stored(&self.store, of_shards, services.clock.now())?;
        let removed = self.store.remove_where(picked).await?;
        for user in &users {
            services.registry.evict(*user);
        }
        services.metrics.timers_pending.sub(timers as i64);
        {
            let mut outbound = locked(&self.outbound);
            for shard in shards {
                self.ownership.set(*shard, ShardState::Elsewhere(to));
                outbound.remove(shard);
            }
        }
        let sent: u64 = counts.values().sum();
        if removed != sent {
            warn!(
                sent,
                removed, "the shards handed over changed while they were sent"
            );
        }
        let metrics = &services.metrics;
        metrics
            .handoff_shards
            .with_label_values(&["out"])
            .inc_by(shards.len() as u64);
        metrics
            .handoff_keys
            .with_label_values(&["out"])
            .inc_by(sent);
        let ms = (took.elapsed_secs() * 1000.0).round() as u64;
        let node = &self.nodes[to];
        for (shard, keys) in &counts {
            debug!(shard, node = %node, keys, ms, "shard handed over");
        }
        info!(node = %node, shards = shards.len(), users = users.len(), keys = sent, ms, "shards handed over");
        Ok(())
    }
}

/// Sends one message to the node at `to`; anything but a success is an error.
async fn post(cluster: &Cluster, to: usize, message: &Message) -> Result<(), HandoffError> {
    let body = message.encode().map_err(HandoffError::Refused)?;
    let request = Outgoing {
        method: Method::POST,
        path: PATH,
        body: Some((MSGPACK, body.into())),
    };
    let answer = cluster
        .ask(to, request)
        .await
        .map_err(|e| HandoffError::Unavailable(e.to_string()))?;
    if answer.status.is_success() {
        return Ok(());
    }
    let why = format!(
        "node {} answered {}: {}",
        cluster.node(to).id,
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    Err(if answer.status.is_server_error() {
        HandoffError::Unavailable(why)
    } else {
        HandoffError::Refused(why)
    })
}
