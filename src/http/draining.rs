//! Letting a stopping node finish what it accepted. HTTP workers run the actors of the
//! users they reach (`actors::placement`), and those actors stop with the HTTP server: a
//! stopping node stops taking requests, waits for the ones in flight and for events
//! being ingested over WebSockets, saves its users, and only then stops the HTTP server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, SemaphorePermit};

use super::state::AppState;

/// The HTTP requests being served.
#[derive(Debug, Default)]
pub struct Requests {
    count: AtomicUsize,
    none_left: Notify,
}

/// One request being served; dropping it (answered or abandoned) counts it out.
pub struct Serving(Arc<Requests>);

impl Requests {
    /// Counts a request in until the returned guard is dropped.
    pub fn serve(self: &Arc<Self>) -> Serving {
        self.count.fetch_add(1, Ordering::SeqCst);
        Serving(Arc::clone(self))
    }

    /// Returns how many requests are being served.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no request is being served.
    async fn none_left(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

/// Waits up to `patience` for the requests in flight (`ready` must be false already, so
/// that no new one is taken) and then takes every ingestion permit, so that no WebSocket
/// ingests events any more. Returns the permits (held until the node exits), or `None`
/// when time ran out first.
pub async fn drain(state: &AppState, patience: Duration) -> Option<SemaphorePermit<'_>> {
    let permits = u32::try_from(state.config.ingest.max_in_flight_events).unwrap_or(u32::MAX);
    let drained = async {
        state.requests.none_left().await;
        state.in_flight.acquire_many(permits).await.ok()
    };
    tokio::time::timeout(patience, drained).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn waits_for_the_last_request() {
        let requests = Arc::new(Requests::default());
        requests.none_left().await;
        let first = requests.serve();
        let second = requests.serve();
        assert_eq!(requests.count(), 2);
        let waiting = {
            let requests = Arc::clone(&requests);
            actix_rt::spawn(async move { requests.none_left().await })
        };
        drop(first);
        actix_rt::task::yield_now().await;
        assert!(!waiting.is_finished(), "one request is still in flight");
        drop(second);
        waiting.await.expect("the waiter ends once none is left");
        assert_eq!(requests.count(), 0);
    }
}
