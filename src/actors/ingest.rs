//! The ingestion pipeline: resolve each event's identity to a user, hand each user its
//! events in order, and wait until every change is durable and pushed.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use crate::storage::Store;

use super::messages::Ingest;
use super::record::Incoming;
use super::registry::Registry;
use super::ActorError;

/// Routes events to user actors.
pub struct Ingestor {
    store: Store,
    registry: Arc<Registry>,
}

impl Ingestor {
    /// Creates the pipeline.
    pub fn new(store: Store, registry: Arc<Registry>) -> Ingestor {
        Ingestor { store, registry }
    }

    /// Applies already-validated events; returns once all of them are durable.
    pub async fn ingest(&self, events: Vec<Incoming>) -> Result<usize, ActorError> {
        let count = events.len();
        let mut per_user: BTreeMap<u64, Vec<Incoming>> = BTreeMap::new();
        for incoming in events {
            let (id_type, id) = &incoming.identity;
            let (user, _created) = self
                .store
                .resolve_identity(id_type, id)
                .map_err(|e| ActorError::Storage(e.to_string()))?;
            per_user.entry(user).or_default().push(incoming);
        }
        let sends = per_user.into_iter().map(|(user, events)| async move {
            let receipt = self
                .registry
                .ask(user, |reply| Ingest { events, reply })
                .await?;
            receipt.await.map_err(|_| ActorError::ShuttingDown)?
        });
        for result in join_all(sends).await {
            result?;
        }
        Ok(count)
    }
}
