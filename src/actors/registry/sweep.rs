//! A sweep: one operation applied to many stored users, every one (a backfill) or a
//! given set (a burst of due timers). Records are read in key order, a batch at a time
//! (`Store::read_users`), and each user out of memory is stepped from what was read,
//! under its shard lock. A user in memory or leaving it, with journaled events, whose
//! record may have changed since the read, or (in a set too sparse to read in key
//! order) any user goes through `Registry::update` instead, one by one. A batch's writes
//! reach the committer as background commits of 128 users (written after waiting
//! ingestion, one per group), and its users count as leaving memory until the last is
//! in storage, so that a load meanwhile waits for it. One part per arbiter,
//! side by side, each taking the next batch from a shared counter and reading it on its
//! own. Every user: windows of ids, an empty window making every part skip to the next
//! stored id (ids need not be dense: a cluster's have the node's position in their top
//! bits). A set: its next users in id order.
//!
//! Reading in key order is what makes it fast: one `get` per user pulled sled pages
//! from its log again and again (most of a backfill's time after a restart). A user
//! whose timer moved gets it as an overlay, not a rewritten record (`Persist::Overlay`).
//! Figures: BENCHMARKS.md, "Backfill in key order" (session 8).

use std::collections::VecDeque;
use std::mem::take;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use tokio::sync::watch;

use crate::storage::{ReadMark, StoredUser, WriteSet};
use crate::sync::locked;

use super::super::committer::Receipt;
use super::super::journal::JournalStep;
use super::super::overlay::stored_record;
use super::super::record::UserOp;
use super::super::step::{step, Persist, Saved};
use super::super::storage;
use super::super::ActorError;
use super::{finished, Registry, Slot, FAN_OUT};

/// Users read per batch.
const BATCH: usize = 512;

/// Batches of a part whose writes may be on their way at once; beyond it, a part waits
/// until the oldest is durable.
const PIPELINED: usize = 8;

/// Users whose writes go to the committer as one background commit: the committer
/// writes one such commit per group, so ingestion waits at most for one (a few ms).
const USERS_PER_COMMIT: usize = 128;

/// Ids per window: a window holds at most a batch.
const WINDOW: u64 = BATCH as u64;

/// A set's batch is read in key order when its ids span at most this many times as
/// many ids as it has users; a sparser one goes one by one.
const DENSE: u64 = 4;

/// The users a sweep reaches.
#[derive(Debug)]
pub enum Sweep {
    /// Every stored user this node serves.
    Everyone,
    /// These users (those this node serves), ascending and without repeats.
    These(Vec<u64>),
}

/// Where the parts of a sweep take their batches from.
enum Batches {
    /// Windows of ids: window `w` is the ids from `w * WINDOW` to `w * WINDOW + WINDOW -
    /// 1`; `next` is the next one to take.
    Windows { next: AtomicU64 },
    /// A set of users, ascending; `next` is the index of the next one to take.
    Set { users: Vec<u64>, next: AtomicUsize },
}

/// The last window.
const LAST_WINDOW: u64 = u64::MAX / WINDOW;

/// What a part took: users read in one go (with the mark of the read), and users to
/// go one by one.
#[derive(Default)]
struct Batch {
    read: Option<(ReadMark, Vec<StoredUser>)>,
    one_by_one: Vec<u64>,
}

impl Registry {
    /// Applies `op` to the users `users` names, and waits until every change is durable
    /// and pushed; returns how many users it reached (read, or handed to `update`).
    pub async fn sweep(self: &Arc<Self>, users: Sweep, op: UserOp) -> Result<usize, ActorError> {
        let small = matches!(&users, Sweep::These(users) if users.len() <= BATCH);
        let batches = Arc::new(match users {
            Sweep::Everyone => Batches::Windows {
                next: AtomicU64::new(0),
            },
            Sweep::These(users) => Batches::Set {
                users,
                next: AtomicUsize::new(0),
            },
        });
        if self.arbiters.len() < 2 || small {
            return self.sweep_part(&batches, op).await;
        }
        let parts = self.arbiters.iter().map(|_| {
            let registry = Arc::clone(self);
            let batches = Arc::clone(&batches);
            async move { registry.sweep_part(&batches, op).await }
        });
        Ok(self.side_by_side(parts).await?.into_iter().sum())
    }

    /// One part of a sweep: takes batches until none is left.
    async fn sweep_part(&self, batches: &Batches, op: UserOp) -> Result<usize, ActorError> {
        let mut pending: VecDeque<Vec<Receipt>> = VecDeque::new();
        let mut reached = 0;
        while let Some(batch) = self.next_batch(batches)? {
            let mut one_by_one = batch.one_by_one;
            let mut receipts = Vec::new();
            reached += one_by_one.len();
            if let Some((mark, users)) = batch.read {
                reached += users.len();
                receipts = self.step_batch(mark, &users, op, &mut one_by_one)?;
            }
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
        Ok(reached)
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

    /// Takes the next batch; `None` once there is none left.
    fn next_batch(&self, batches: &Batches) -> Result<Option<Batch>, ActorError> {
        match batches {
            Batches::Windows { next } => self.next_window(next),
            Batches::Set { users, next } => {
                let first = next.fetch_add(BATCH, Ordering::SeqCst);
                let taken = users.get(first..).unwrap_or_default();
                let taken = &taken[..taken.len().min(BATCH)];
                if taken.is_empty() {
                    return Ok(None);
                }
                self.read_set(taken).map(Some)
            }
        }
    }

    /// Reads the users of the next window that has any.
    fn next_window(&self, next: &AtomicU64) -> Result<Option<Batch>, ActorError> {
        let store = &self.shared.store;
        loop {
            let window = next.fetch_add(1, Ordering::SeqCst);
            if window > LAST_WINDOW {
                return Ok(None);
            }
            let ids: RangeInclusive<u64> = window * WINDOW..=window * WINDOW + (WINDOW - 1);
            let after = ids.end().checked_add(1);
            let (mark, users) = store.read_users(ids, BATCH).map_err(storage)?;
            if !users.is_empty() {
                return Ok(Some(Batch {
                    read: Some((mark, users)),
                    one_by_one: Vec::new(),
                }));
            }
            // Every part skips to the window of the next stored id, if there is one.
            let following = match after {
                Some(after) => store.read_users(after..=u64::MAX, 1).map_err(storage)?.1,
                None => Vec::new(),
            };
            let skip_to = following
                .first()
                .map_or(LAST_WINDOW + 1, |user| user.id / WINDOW);
            next.fetch_max(skip_to, Ordering::SeqCst);
        }
    }

    /// Reads the users `taken` (ascending) in key order when they are dense enough; the
    /// others, and those with no record, go one by one.
    fn read_set(&self, taken: &[u64]) -> Result<Batch, ActorError> {
        let (Some(first), Some(last)) = (taken.first(), taken.last()) else {
            return Ok(Batch::default());
        };
        if last - first >= DENSE * taken.len() as u64 {
            return Ok(Batch {
                read: None,
                one_by_one: taken.to_vec(),
            });
        }
        let (mark, stored) = self
            .shared
            .store
            .read_users(*first..=*last, usize::MAX)
            .map_err(storage)?;
        let mut stored = stored.into_iter().peekable();
        let mut read = Vec::with_capacity(taken.len());
        let mut one_by_one = Vec::new();
        for user in taken {
            while stored.next_if(|stored| stored.id < *user).is_some() {}
            match stored.next_if(|stored| stored.id == *user) {
                Some(found) => read.push(found),
                // Perhaps so far only in the journal: `update` replays it.
                None => one_by_one.push(*user),
            }
        }
        Ok(Batch {
            read: Some((mark, read)),
            one_by_one,
        })
    }

    /// Steps the users of a batch that are out of memory and unchanged since it was
    /// read, and submits their writes as one commit (returning its receipts); puts the
    /// others in `one_by_one`.
    fn step_batch(
        &self,
        mark: ReadMark,
        users: &[StoredUser],
        op: UserOp,
        one_by_one: &mut Vec<u64>,
    ) -> Result<Vec<Receipt>, ActorError> {
        let shared = &self.shared;
        let segments = shared.catalog.snapshot();
        let (applied, written) = watch::channel(false);
        let mut writes = WriteSet::default();
        let mut notifications = Vec::new();
        let mut held = 0;
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
            let stepped = step(
                shared,
                user,
                &mut record,
                &mut saved,
                Persist::Overlay,
                |record, shared| op.run(record, &segments, shared.clock.now(), shared.retention_ms),
            );
            let staged = match stepped {
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
            held += 1;
            match staged.journal {
                // The user has no journaled part and none can come before the commit
                // (it is held out of memory): saving it whole changes nothing in the
                // journal's books.
                None | Some(JournalStep::Saved(_)) => {
                    writes.append(staged.writes);
                    notifications.extend(staged.notifications);
                }
                Some(JournalStep::Part { .. } | JournalStep::SavedWithPart { .. }) => {
                    receipts.push(staged.submit(&shared.committer))
                }
            }
            if held % USERS_PER_COMMIT == 0 {
                let (writes, notifications) = (take(&mut writes), take(&mut notifications));
                let committer = &shared.committer;
                receipts.push(committer.submit_background(writes, notifications, None));
            }
        }
        if held > 0 {
            // Background commits keep their order: the users are released once the
            // last one is in storage.
            let committer = &shared.committer;
            receipts.push(committer.submit_background(writes, notifications, Some(applied)));
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

    /// Runs `test` on a registry over a fresh store, with segment 1 (users with a page
    /// view) in its catalog.
    fn with_viewers<Test, Done>(test: Test)
    where
        Test: FnOnce(Arc<Registry>, Store) -> Done,
        Done: std::future::Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        actix_rt::System::new().block_on(async {
            let registry = Arc::new(registry(store.clone()));
            put_viewers(&registry, 1);
            test(registry, store).await;
        });
    }

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
        with_viewers(|registry, store| async move {
            let users = 1..=(BATCH as u64 * 2 + 10);
            let viewer = stored(&store, users.clone());
            registry.ask(7, |reply| GetView { reply }).await.unwrap();

            assert_eq!(
                registry
                    .sweep(Sweep::Everyone, UserOp::Reevaluate(1))
                    .await
                    .unwrap(),
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
        with_viewers(|registry, store| async move {
            let users = [1, 2, (1 << 40) | 7, (3 << 40) | 8, u64::MAX - 1, u64::MAX];
            stored(&store, users.into_iter());
            assert_eq!(
                registry
                    .sweep(Sweep::Everyone, UserOp::Reevaluate(1))
                    .await
                    .unwrap(),
                users.len()
            );
            let viewers: Vec<u64> = users.into_iter().filter(|user| user % 3 != 0).collect();
            assert_eq!(store.members(1, None, 10), viewers);
        });
    }

    /// A set of users is reached whether it is read in key order (dense) or one by one
    /// (sparse), and a user of it with no record is left alone; users outside the set
    /// are not touched.
    #[test]
    fn a_sweep_of_a_set_reaches_its_users_only() {
        with_viewers(|registry, store| async move {
            stored(&store, 1..=BATCH as u64 * 3);
            let dense: Vec<u64> = (1..=BATCH as u64 + 20)
                .filter(|user| user % 2 == 1)
                .collect();
            let sparse = vec![BATCH as u64 * 2 + 1, BATCH as u64 * 3 - 1, 1 << 40];
            let set: Vec<u64> = dense.iter().chain(&sparse).copied().collect();
            let op = UserOp::Reevaluate(1);
            assert_eq!(
                registry.sweep(Sweep::These(set.clone()), op).await.unwrap(),
                set.len()
            );
            let viewers: Vec<u64> = set
                .into_iter()
                .filter(|user| user % 3 != 0 && *user != 1 << 40)
                .collect();
            assert_eq!(store.members(1, None, usize::MAX), viewers);
        });
    }

    /// A user whose record was written after the batch was read, or who is in memory,
    /// is left to `update`; the others are evaluated from the batch.
    #[test]
    fn a_user_written_since_the_read_goes_one_by_one() {
        with_viewers(|registry, store| async move {
            stored(&store, 1..=2);
            stored(&store, 1_000..=1_001);
            let (mark, users) = store.read_users(0..=u64::MAX, BATCH).unwrap();
            stored(&store, 1..=1);
            registry
                .ask(1_001, |reply| GetView { reply })
                .await
                .unwrap();

            let mut one_by_one = Vec::new();
            let op = UserOp::Reevaluate(1);
            let receipts = registry
                .step_batch(mark, &users, op, &mut one_by_one)
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
