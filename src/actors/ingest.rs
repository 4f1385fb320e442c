//! The ingestion pipeline: link each event's listed identities, resolve its identity to
//! a user, hand each user its events in order (on the user's node, in a cluster), and
//! wait until every change is durable and pushed.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use super::identity::IdentityService;
use super::messages::Ingest;
use super::peers::Peers;
use super::record::Incoming;
use super::registry::Registry;
use super::ActorError;

/// How many merges an event may follow to its user before the call gives up (merges of
/// one user happen one at a time, so more than a few in a row means the user keeps
/// merging).
const MAX_REDIRECTS: usize = 8;

/// Routes events to user actors.
pub struct Ingestor {
    registry: Arc<Registry>,
    identities: Arc<IdentityService>,
    peers: Arc<dyn Peers>,
}

impl Ingestor {
    /// Creates the pipeline.
    pub fn new(
        registry: Arc<Registry>,
        identities: Arc<IdentityService>,
        peers: Arc<dyn Peers>,
    ) -> Ingestor {
        Ingestor {
            registry,
            identities,
            peers,
        }
    }

    /// Applies already-validated events; returns once all of them are durable.
    pub async fn ingest(&self, events: Vec<Incoming>) -> Result<usize, ActorError> {
        let count = events.len();
        for incoming in events.iter().filter(|e| !e.links.is_empty()) {
            self.identities
                .link(Some(&incoming.identity), &incoming.links, false)
                .await?;
        }
        let mut per_user: BTreeMap<u64, Vec<Incoming>> = BTreeMap::new();
        for incoming in events {
            let user = self.identities.resolve(&incoming.identity)?;
            per_user.entry(user).or_default().push(incoming);
        }
        let sends = per_user
            .into_iter()
            .map(|(user, events)| self.deliver(user, Arc::new(events)));
        for result in join_all(sends).await {
            result?;
        }
        Ok(count)
    }

    /// Hands one user its events, following merges that happened since it was resolved
    /// (an absorbed user's actor applies nothing and names its survivor); a user of
    /// another node gets them there.
    pub async fn deliver(
        &self,
        mut user: u64,
        events: Arc<Vec<Incoming>>,
    ) -> Result<(), ActorError> {
        for _ in 0..MAX_REDIRECTS {
            if !self.peers.owns_user(user) {
                return self.peers.deliver(user, events).await;
            }
            let events = Arc::clone(&events);
            let receipt = self
                .registry
                .ask(user, |reply| Ingest { events, reply })
                .await;
            match receipt {
                Err(ActorError::Moved(survivor)) => user = survivor,
                receipt => {
                    let written = receipt?.await.map_err(|_| ActorError::ShuttingDown)?;
                    if written.is_err() {
                        // Applied in memory, not in storage: start again from storage.
                        self.registry.evict(user);
                    }
                    return written;
                }
            }
        }
        Err(ActorError::Moved(user))
    }
}
