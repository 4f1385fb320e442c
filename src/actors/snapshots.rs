//! Background snapshots: in slices through each interval, each user whose journal parts
//! have waited a whole interval is saved whole, and a checkpoint then lets the committer
//! delete the journal files behind it. A user busy with events is saved about once per
//! interval instead of once per event; one that leaves memory is saved as it leaves.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::journal::Journal;
use super::registry::Registry;

/// Snapshots a pass has in flight at most. Each is a whole record written in some group
/// commit, and every event acknowledged by that group waits for it: with 256 at once, the
/// groups that held a burst of them took milliseconds, and event → push p99 at 20k
/// events/s was 13–26 ms; with 16, 5–12 ms, and no less throughput (BENCHMARKS.md,
/// session 11).
const SAVES_AT_ONCE: usize = 16;

/// Saves users with old journal parts.
pub struct Snapshots {
    registry: Arc<Registry>,
}

impl Snapshots {
    /// Creates the service.
    pub fn new(registry: Arc<Registry>) -> Snapshots {
        Snapshots { registry }
    }

    fn journal(&self) -> &Journal {
        self.registry.context().committer.journal()
    }

    /// Saves every user dirty since before journal entry `seq`; returns how many.
    pub async fn save_before(&self, seq: u64) -> usize {
        let users = self.journal().dirty_before(seq);
        let count = users.len();
        if let Err(e) = self.registry.save_each(users, SAVES_AT_ONCE).await {
            warn!(error = %e, "some snapshots failed; retrying on the next pass");
        }
        count
    }

    /// Saves, in eight slices per `interval`, the users dirty for at least `interval`,
    /// until dropped: spread out, snapshots never make one big burst of writes. Every
    /// eighth slice (once per `interval`) ends with a checkpoint: sled is flushed and the
    /// journal files the saved users no longer need are deleted. A checkpoint after
    /// every slice made eight flushes of sled a second beside the committer's own writes:
    /// event → push p99 at 20k events/s was 2.9–15.3 ms and the group commits' p999 up
    /// to 10 ms, against 3.6–6.6 ms and 5 ms with one (BENCHMARKS.md, session 11).
    pub async fn run(self, interval: Duration) {
        const SLICES: usize = 8;
        let next_seq = || self.journal().next_seq();
        let mut marks: VecDeque<u64> = std::iter::repeat_n(next_seq(), SLICES).collect();
        for slice in (1..=SLICES).cycle() {
            tokio::time::sleep(interval / SLICES as u32).await;
            marks.push_back(next_seq());
            if let Some(until) = marks.pop_front() {
                self.save_before(until).await;
            }
            if slice < SLICES {
                continue;
            }
            let checkpoint = self.registry.context().committer.checkpoint();
            if let Err(e) = checkpoint.await {
                warn!(error = %e, "checkpoint failed; retrying on the next pass");
            }
        }
    }
}
