//! A backfill: one segment evaluated over every stored user. Records are read in key
//! order, a batch at a time (`Store::read_users`), and each user out of memory is
//! evaluated from what was read, under its shard lock. A user in memory or leaving it,
//! with journaled events, or whose record may have changed since the read goes through
//! `Registry::update` instead, one by one. A batch's writes reach the committer as one
//! commit, and its users count as leaving memory until that commit is in storage, so
//! that a load meanwhile waits for it. One part per arbiter, side by side, each taking
//! the next window of ids from a shared counter and reading it on its own; an empty
//! window makes every part skip to the next stored id (ids need not be dense: a
//! cluster's have the node's position in their top bits).
//!
//! Reading in key order is what makes it fast: one `get` per user pulled sled pages
//! from its log again and again (most of a backfill's time after a restart). A user
//! whose timer moved gets it as an overlay, not a rewritten record (`Persist::Overlay`).
//! Figures: BENCHMARKS.md, "Backfill in key order" (session 8).

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use tokio::sync::watch;

use crate::storage::{ReadMark, StoredUser, WriteSet};
use crate::sync::locked;

use super::super::committer::Receipt;
use super::super::journal::JournalStep;
use super::super::overlay::stored_record;
use super::super::record::UserOp;
use super::super::step::{stage, Persist, Saved, Staged};
use super::super::ActorError;
use super::{finished, Registry, Slot, FAN_OUT};

/// Users read per batch.
const BATCH: usize = 512;

/// Batches of a part whose writes may be on their way at once; beyond it, a part waits
/// until the oldest is durable.
const PIPELINED: usize = 8;

/// Ids per window: a window holds at most a batch.
const WINDOW: u64 = BATCH as u64;

/// The windows of ids the parts take one at a time: window `w` is the ids from
/// `w * WINDOW` to `w * WINDOW + WINDOW - 1`.
#[derive(Default)]
struct Windows {
    next: AtomicU64,
}

impl Windows {
    /// The last window.
    const LAST: u64 = u64::MAX / WINDOW;

    /// Takes the next window's ids; `None` once every window was taken.
    fn take(&self) -> Option<RangeInclusive<u64>> {
        let window = self.next.fetch_add(1, Ordering::SeqCst);
        (window <= Self::LAST).then(|| window * WINDOW..=window * WINDOW + (WINDOW - 1))
    }

    /// Skips every window before the one of `id`.
    fn skip_to(&self, id: u64) {
        self.next.fetch_max(id / WINDOW, Ordering::SeqCst);
    }

    /// Skips every window left.
    fn finish(&self) {
        self.next.fetch_max(Self::LAST + 1, Ordering::SeqCst);
    }
}

fn storage(e: crate::storage::StorageError) -> ActorError {
    ActorError::Storage(e.to_string())
}

impl Registry {
    /// Evaluates segment `segment` over every stored user this node serves and waits
    /// until every change is durable and pushed; returns how many users were read.
    pub async fn reevaluate_all(self: &Arc<Self>, segment: u64) -> Result<usize, ActorError> {
        let op = UserOp::Reevaluate(segment);
        let windows = Arc::new(Windows::default());
        if self.arbiters.len() < 2 {
            return self.reevaluate_from(&windows, op).await;
        }
        let parts = self.arbiters.iter().map(|_| {
            let registry = Arc::clone(self);
            let windows = Arc::clone(&windows);
            async move { registry.reevaluate_from(&windows, op).await }
        });
        Ok(self.side_by_side(parts).await?.into_iter().sum())
    }

    /// One part of `reevaluate_all`: takes windows until none is left.
    async fn reevaluate_from(&self, windows: &Windows, op: UserOp) -> Result<usize, ActorError> {
        let mut pending: VecDeque<Vec<Receipt>> = VecDeque::new();
        let mut read = 0;
        while let Some((mark, users)) = self.next_batch(windows)? {
            read += users.len();
            let mut one_by_one = Vec::new();
            let mut receipts = self.reevaluate_batch(mark, &users, op, &mut one_by_one)?;
            receipts.extend(self.updates(one_by_one, op).await?);
            pending.push_back(receipts);
            if pending.len() > PIPELINED {
                durable(pending.pop_front()).await?;
            }
            // Resident users on this arbiter get their turn between batches.
            tokio::task::yield_now().await;
        }
        while !pending.is_empty() {
            durable(pending.pop_front()).await?;
        }
        Ok(read)
    }

    /// Applies `op` to each user through `update`, many at once (a resident user's step
    /// is a round trip to its actor), and returns the receipts.
    async fn updates(&self, users: Vec<u64>, op: UserOp) -> Result<Vec<Receipt>, ActorError> {
        stream::iter(users)
            .map(|user| self.update(user, op))
            .buffer_unordered(FAN_OUT)
            .try_collect()
            .await
    }

    /// Reads the users of the next window that has any.
    fn next_batch(
        &self,
        windows: &Windows,
    ) -> Result<Option<(ReadMark, Vec<StoredUser>)>, ActorError> {
        let store = &self.shared.store;
        while let Some(ids) = windows.take() {
            let after = ids.end().checked_add(1);
            let (mark, users) = store.read_users(ids, BATCH).map_err(storage)?;
            if !users.is_empty() {
                return Ok(Some((mark, users)));
            }
            let next = match after {
                Some(after) => store.read_users(after..=u64::MAX, 1).map_err(storage)?.1,
                None => Vec::new(),
            };
            match next.first() {
                Some(user) => windows.skip_to(user.id),
                None => windows.finish(),
            }
        }
        Ok(None)
    }

    /// Evaluates the users of a batch that are out of memory and unchanged since it was
    /// read, and submits their writes as one commit (returning its receipts); puts the
    /// others in `one_by_one`.
    fn reevaluate_batch(
        &self,
        mark: ReadMark,
        users: &[StoredUser],
        op: UserOp,
        one_by_one: &mut Vec<u64>,
    ) -> Result<Vec<Receipt>, ActorError> {
        let shared = &self.shared;
        let segments = shared.catalog.snapshot();
        let (applied, written) = watch::channel(false);
        let mut batch = Staged {
            writes: WriteSet::default(),
            journal: None,
            notifications: Vec::new(),
        };
        let mut held = false;
        let mut receipts = Vec::new();
        let mut outcome = Ok(());
        for stored in users {
            let user = stored.id;
            if !self.ownership.serves_user(user) {
                continue;
            }
            let mut actors = locked(&self.shards[self.shard_of(user)]);
            let in_memory = match actors.get(&user) {
                Some(Slot::Active { addr, .. }) => addr.connected(),
                Some(Slot::Leaving(leaving)) => !finished(&leaving.done),
                None => false,
            };
            let fresh = !in_memory
                && !shared.committer.journal().is_dirty(user)
                && shared.store.unchanged_since(user, mark);
            // A record that does not decode is loaded again one by one, which reports it.
            let record = fresh
                .then(|| stored_record(&shared.store, stored).ok())
                .flatten();
            let Some(mut record) = record else {
                one_by_one.push(user);
                continue;
            };
            let mut saved = Saved::loaded(&record);
            let step = stage(
                shared,
                user,
                &mut record,
                &mut saved,
                Persist::Overlay,
                |record, shared| op.run(record, &segments, shared.clock.now(), shared.retention_ms),
            );
            let staged = match step {
                Ok(Some(staged)) => staged,
                Ok(None) => continue,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            // Later messages for this user load it from storage: they wait until the
            // batch's commit is there.
            actors.insert(user, Slot::leaving(written.clone(), None));
            held = true;
            match staged.journal {
                // The user has no journaled part and none can come before the commit
                // (it is held out of memory): saving it whole changes nothing in the
                // journal's books.
                None | Some(JournalStep::Saved(_)) => {
                    batch.writes.append(staged.writes);
                    batch.notifications.extend(staged.notifications);
                }
                Some(JournalStep::Part { .. }) => receipts.push(staged.submit(&shared.committer)),
            }
        }
        if held {
            receipts.push(batch.submit(&shared.committer));
            shared.committer.signal_applied(applied);
        }
        outcome.map(|()| receipts)
    }
}

/// Waits until a batch's writes are durable and pushed.
async fn durable(receipts: Option<Vec<Receipt>>) -> Result<(), ActorError> {
    for receipt in receipts.into_iter().flatten() {
        receipt.await.map_err(|_| ActorError::ShuttingDown)??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{put_viewers, registry};
    use super::*;
    use crate::actors::messages::GetView;
    use crate::actors::replay::load_user;
    use crate::actors::UserRecord;
    use crate::domain::{Event, Timestamp};
    use crate::storage::{Store, UserWrite};

    /// Stores `users`, every third one without events, the others with a page view.
    fn stored(store: &Store, users: impl Iterator<Item = u64>) -> UserRecord {
        let at = Timestamp::from_millis(0);
        let mut viewer = UserRecord::default();
        viewer.state.apply(&Event::new("page_viewed", at), at, 0);
        let writes: Vec<WriteSet> = users
            .map(|user| {
                let record = if user % 3 == 0 {
                    UserRecord::default()
                } else {
                    viewer.clone()
                };
                Store::user_write(user, &record, &UserWrite::default()).unwrap()
            })
            .collect();
        store.apply(writes.iter()).unwrap();
        viewer
    }

    /// Every stored user is evaluated, several batches of them: those out of memory from
    /// what was read, a resident one by its actor. Only membership is written, and a
    /// user loaded afterwards has it.
    #[test]
    fn a_backfill_reaches_every_stored_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        actix_rt::System::new().block_on(async {
            let registry = Arc::new(registry(store.clone()));
            let users = 1..=(BATCH as u64 * 2 + 10);
            let viewer = stored(&store, users.clone());
            put_viewers(&registry, 1);
            registry.ask(7, |reply| GetView { reply }).await.unwrap();

            assert_eq!(
                registry.reevaluate_all(1).await.unwrap(),
                users.clone().count()
            );
            let viewers: Vec<u64> = users.filter(|user| user % 3 != 0).collect();
            assert_eq!(store.members(1, None, usize::MAX), viewers);
            assert_eq!(registry.shared.metrics.snapshots.get(), 0);
            assert_eq!(store.load_user::<UserRecord>(8).unwrap(), Some(viewer));
            let (loaded, _) = load_user(&registry.shared, 8).unwrap().unwrap();
            assert_eq!(&*loaded.segments, &[1]);
        });
    }

    /// Ids far apart (a cluster's, with the node's position in their top bits) are
    /// reached by skipping the empty windows between them.
    #[test]
    fn a_backfill_skips_the_gaps_between_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        actix_rt::System::new().block_on(async {
            let registry = Arc::new(registry(store.clone()));
            let users = [1, 2, (1 << 40) | 7, (3 << 40) | 8, u64::MAX - 1, u64::MAX];
            stored(&store, users.into_iter());
            put_viewers(&registry, 1);
            assert_eq!(registry.reevaluate_all(1).await.unwrap(), users.len());
            let viewers: Vec<u64> = users.into_iter().filter(|user| user % 3 != 0).collect();
            assert_eq!(store.members(1, None, 10), viewers);
        });
    }

    /// A user whose record was written after the batch was read, or who is in memory,
    /// is left to `update`; the others are evaluated from the batch.
    #[test]
    fn a_user_written_since_the_read_goes_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        actix_rt::System::new().block_on(async {
            let registry = Arc::new(registry(store.clone()));
            stored(&store, 1..=2);
            stored(&store, 1_000..=1_001);
            put_viewers(&registry, 1);
            let (mark, users) = store.read_users(0..=u64::MAX, BATCH).unwrap();
            stored(&store, 1..=1);
            registry
                .ask(1_001, |reply| GetView { reply })
                .await
                .unwrap();

            let mut one_by_one = Vec::new();
            let op = UserOp::Reevaluate(1);
            let receipts = registry
                .reevaluate_batch(mark, &users, op, &mut one_by_one)
                .unwrap();
            for receipt in receipts {
                receipt.await.unwrap().unwrap();
            }
            // User 2 shares user 1's block of ids: it may have changed too.
            assert_eq!(one_by_one, [1, 2, 1_001]);
            assert_eq!(store.members(1, None, 10), [1_000]);
        });
    }
}
