//! The notification hub: every membership change, fanned out to WebSocket subscribers.
//!
//! A broadcast channel with a bounded buffer per subscriber: publishing never waits, so a
//! slow subscriber never slows ingestion; one that falls behind the buffer is told so
//! (`Lagged`) and its session disconnects it.

use tokio::sync::broadcast;

use crate::domain::Timestamp;

/// One user's membership change, as pushed to subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The user.
    pub user_id: u64,
    /// Segments just entered.
    pub in_segments: Vec<u64>,
    /// Segments just left.
    pub out_segments: Vec<u64>,
    /// When the change took effect.
    pub at: Timestamp,
    /// The survivor, when this user was absorbed by a merge.
    pub merged_into: Option<u64>,
    /// True when another node computed it (its user lives there) and sent it here.
    pub relayed: bool,
}

/// The fan-out point.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<std::sync::Arc<Notification>>,
}

impl Hub {
    /// Creates a hub whose subscribers each buffer `capacity` messages.
    pub fn new(capacity: usize) -> Hub {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Hub { sender }
    }

    /// Pushes a notification to every subscriber (none is fine).
    pub fn publish(&self, notification: Notification) {
        let _no_subscribers_is_fine = self.sender.send(std::sync::Arc::new(notification));
    }

    /// Returns a new subscription that sees every notification published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<std::sync::Arc<Notification>> {
        self.sender.subscribe()
    }
}
