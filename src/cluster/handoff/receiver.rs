//! The new owner's side: write each chunk of an incoming shard as one batch, and serve
//! the shards its old owner says it sent whole.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, info, warn};

use crate::cluster::ring::user_shard;
use crate::storage::key_owner;

use super::wire::{Blob, Message};
use super::{
    key_shard, position, Handoff, HandoffError, Inbound, Services, ShardState, INBOUND_KEY,
};

impl Handoff {
    /// Takes one message of a handoff from node `from` (its id).
    pub async fn receive(
        &self,
        services: &Services,
        from: &str,
        message: Message,
    ) -> Result<(), HandoffError> {
        position(&self.nodes, from)?;
        let mut inbound = self.inbound.lock().await;
        match message {
            Message::Chunk(pairs) => {
                let mut taken = Vec::with_capacity(pairs.len());
                for (Blob(key), Blob(value)) in pairs {
                    let Some(shard) = key_shard(key_owner(&key)) else {
                        return Err(HandoffError::Refused(
                            "a node's own key was sent with its shards".into(),
                        ));
                    };
                    if self.expects(&inbound, shard, from)? {
                        taken.push((key, value));
                    }
                }
                self.store.import(&taken).await?;
                services
                    .metrics
                    .handoff_keys
                    .with_label_values(&["in"])
                    .inc_by(taken.len() as u64);
            }
            Message::Done(shards) => {
                let mut complete = BTreeMap::new();
                for (shard, keys) in shards {
                    if self.expects(&inbound, shard, from)? {
                        complete.insert(shard, keys);
                    }
                }
                if complete.is_empty() {
                    return Ok(());
                }
                for shard in complete.keys() {
                    if let Some(entry) = inbound.get_mut(shard) {
                        entry.done = true;
                    }
                }
                self.store.set_meta(INBOUND_KEY, &*inbound)?;
                self.store.flush().await?;
                self.take_over(services, &complete, from).await?;
            }
        }
        Ok(())
    }

    /// Returns whether pairs of `shard` sent by `from` are to be written: yes while it
    /// comes from that node, no once it has come whole (a repeat). Refused otherwise.
    fn expects(
        &self,
        inbound: &BTreeMap<u16, Inbound>,
        shard: u16,
        from: &str,
    ) -> Result<bool, HandoffError> {
        match inbound.get(&shard) {
            Some(entry) if entry.done => Ok(false),
            Some(entry) if entry.from == from => Ok(true),
            _ => Err(HandoffError::Refused(format!(
                "shard {shard} is not coming to node {} from node {from}",
                self.nodes[self.me]
            ))),
        }
    }

    /// Serves the shards of `complete` (with their key counts): their users join the
    /// totals and the timer gauge before any change can reach them, then due timers fire.
    async fn take_over(
        &self,
        services: &Services,
        complete: &BTreeMap<u16, u64>,
        from: &str,
    ) -> Result<(), HandoffError> {
        let shards: BTreeSet<u16> = complete.keys().copied().collect();
        let of_shards = |user: u64| shards.contains(&user_shard(user));
        let now = services.clock.now();
        let users = services.totals.add_stored(&self.store, of_shards, now)?;
        let timers = self.store.timers_where(of_shards)?;
        services.metrics.timers_pending.add(timers as i64);
        for shard in &shards {
            self.ownership.set(*shard, ShardState::Serving);
        }
        services
            .metrics
            .handoff_shards
            .with_label_values(&["in"])
            .inc_by(shards.len() as u64);
        for (shard, keys) in complete {
            debug!(shard, node = %from, keys, "shard taken over");
        }
        let keys: u64 = complete.values().sum();
        info!(node = %from, shards = shards.len(), users, keys, "shards taken over");
        if let Err(e) = services.timers.fire_due(now).await {
            warn!(error = %e, "some timers of the shards taken over did not fire; they fire on the next pass");
        }
        Ok(())
    }
}
