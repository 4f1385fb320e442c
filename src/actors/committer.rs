//! Group commit: many writes share one sled flush; notifications are pushed and callers
//! acknowledged only after the flush that covers them, in submission order (so one
//! user's messages keep their order).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::metrics::Metrics;
use crate::storage::Store;

use super::hub::{Hub, Notification};
use super::ActorError;

/// Whether the last write to storage worked; `/readyz` reports not ready while it did not.
#[derive(Debug)]
pub struct StorageHealth(AtomicBool);

impl Default for StorageHealth {
    fn default() -> Self {
        StorageHealth(AtomicBool::new(true))
    }
}

impl StorageHealth {
    /// Records the outcome of a write.
    pub fn record(&self, ok: bool) {
        self.0.store(ok, Ordering::SeqCst);
    }

    /// Returns whether storage works.
    pub fn is_ok(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Most commits covered by one flush.
const MAX_GROUP: usize = 4096;

struct Commit {
    notifications: Vec<Notification>,
    done: oneshot::Sender<Result<(), ActorError>>,
}

/// A handle to the committer task.
#[derive(Clone)]
pub struct Committer {
    sender: mpsc::UnboundedSender<Commit>,
}

/// Resolves once the writes submitted before it are durable and their changes pushed.
pub type Receipt = oneshot::Receiver<Result<(), ActorError>>;

impl Committer {
    /// Starts the committer task on the current runtime.
    pub fn start(
        store: Store,
        hub: Hub,
        metrics: Metrics,
        health: Arc<StorageHealth>,
    ) -> Committer {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(receiver, store, hub, metrics, health));
        Committer { sender }
    }

    /// Queues the notifications of writes already made; the receipt resolves once durable.
    pub fn submit(&self, notifications: Vec<Notification>) -> Receipt {
        let (done, receipt) = oneshot::channel();
        let commit = Commit {
            notifications,
            done,
        };
        if let Err(refused) = self.sender.send(commit) {
            let _caller_gone = refused.0.done.send(Err(ActorError::ShuttingDown));
        }
        receipt
    }
}

/// Returns a receipt for a step that wrote nothing: already resolved.
pub fn nothing_to_do() -> Receipt {
    let (done, receipt) = oneshot::channel();
    let _receipt_kept = done.send(Ok(()));
    receipt
}

async fn run(
    mut receiver: mpsc::UnboundedReceiver<Commit>,
    store: Store,
    hub: Hub,
    metrics: Metrics,
    health: Arc<StorageHealth>,
) {
    let mut group = Vec::with_capacity(64);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let timer = metrics.journal_flush_duration.start_timer();
        let flushed = store.flush().await;
        timer.observe_duration();
        metrics.journal_flush_batch_size.observe(group.len() as f64);
        health.record(flushed.is_ok());
        match flushed {
            Ok(_) => {
                for commit in group.drain(..) {
                    for notification in commit.notifications {
                        metrics.membership_changes.inc_by(
                            (notification.in_segments.len() + notification.out_segments.len())
                                as u64,
                        );
                        hub.publish(notification);
                    }
                    let _caller_gone = commit.done.send(Ok(()));
                }
            }
            Err(e) => {
                error!(error = %e, "flush failed; writes not acknowledged");
                for commit in group.drain(..) {
                    let _caller_gone = commit.done.send(Err(ActorError::Storage(e.to_string())));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
