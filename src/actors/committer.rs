//! Group commit: the one writer of user state. Actors hand it their writes; it applies
//! every write of a group to sled in submission order (one atomic batch, or op by op
//! when every commit of the group is `Durability::Journaled`), appends the group's
//! journal entry to the journal file and syncs it, and flushes sled when a commit of the
//! group needs it. Notifications are pushed and callers acknowledged only after that, in
//! submission order (so one user's messages keep their order; background commits, below,
//! keep their order among themselves).
//!
//! An event step needs no flush of sled: the journal file holds its events, and its
//! other writes are what replaying them re-derives. So a group of event steps costs one
//! `write` and one `fdatasync` on this thread. sled is flushed for every other commit
//! and at checkpoints (`Committer::checkpoint`, once per snapshot interval), which
//! also delete the journal files the flushed snapshots made redundant.
//!
//! Background commits (a sweep's: a backfill, a burst of due timers) wait behind every
//! other commit and go one per group, so that a sweep over a million users slows
//! ingestion by a few milliseconds at most instead of queueing it behind the sweep.
//!
//! The committer also keeps the journal's books (`journal::Journal`): the parts of a
//! group's event steps become one journal entry.
//!
//! Writing from one thread matters: sled's batch writers stall behind a flush running on
//! another thread (measured: 5x fewer writes/s), while one batch per flush grows with the
//! load. The committer has an OS thread of its own and flushes in it, blocking. A
//! checkpoint's flush runs beside it: by then its writes are mostly op by op, which the
//! flush does not hold up (event → push p99 at 20k events/s fell from 10.9 to 8.6–10.1
//! ms when checkpoints left the committer's thread; BENCHMARKS.md, session 9).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, warn};

use crate::clock::Stopwatch;
use crate::metrics::Metrics;
use crate::storage::{JournalFile, Store, WriteSet};

use super::hub::{Hub, Notification};
use super::journal::{Journal, JournalStep};
use super::storage;
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

/// Background commits (a sweep's) covered by one flush with other commits, at most:
/// the rest wait, so that a sweep over a million users holds up ingestion by one of
/// them at most.
const BACKGROUND_PER_GROUP: usize = 1;

/// Background commits covered by one flush when no other commit waits, nor was in the
/// group before (ingestion is idle).
const BACKGROUND_ALONE: usize = 4;

/// When a commit's writes must be in sled's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Before it is acknowledged: its group flushes sled.
    Flushed,
    /// By the next checkpoint: the journal file holds its events, and its other writes
    /// say only what replaying them re-derives (membership, timers) or save a record the
    /// journal covers until then.
    Journaled,
}

/// What a commit asks of the journal's files.
enum Files {
    /// Tell where a checkpoint starting now may delete files up to (the floor, once
    /// every write before it is applied to sled), and note that entries before the
    /// next one are wholly applied.
    Mark(oneshot::Sender<u64>),
    /// Delete the files every entry of which is before this floor (sled is flushed).
    RemoveBefore(u64),
}

struct Commit {
    /// Whether it is background work, written after every waiting foreground commit.
    background: bool,
    durability: Durability,
    files: Option<Files>,
    writes: WriteSet,
    journal: Option<JournalStep>,
    notifications: Vec<Notification>,
    /// Who waits for it, if anyone.
    done: Option<Waiter>,
    /// Told once every write submitted before it is in storage (readable), whatever
    /// the outcome.
    applied: Option<watch::Sender<bool>>,
}

/// A caller waiting for its commit, and since when.
struct Waiter {
    reply: oneshot::Sender<Result<(), ActorError>>,
    submitted: Stopwatch,
}

impl Waiter {
    /// A waiter from now on, and the receipt it will answer.
    fn start() -> (Waiter, Receipt) {
        let (reply, receipt) = oneshot::channel();
        let submitted = Stopwatch::start();
        (Waiter { reply, submitted }, receipt)
    }
}

/// A handle to the committer task.
#[derive(Clone)]
pub struct Committer {
    sender: mpsc::UnboundedSender<Commit>,
    journal: Arc<Journal>,
    store: Store,
}

/// Resolves once the writes submitted before it are durable and their changes pushed.
pub type Receipt = oneshot::Receiver<Result<(), ActorError>>;

impl Committer {
    /// Starts the committer on a thread of its own, numbering journal entries after the
    /// ones `store` holds; it stops once every handle is dropped.
    pub fn start(
        store: Store,
        hub: Hub,
        metrics: Metrics,
        health: Arc<StorageHealth>,
    ) -> Result<Committer, crate::storage::StorageError> {
        let file = JournalFile::open(&store.journal_dir())?;
        let next_seq = file.next_seq().max(store.sled_journal_end()?);
        let journal = Arc::new(Journal::starting_at(next_seq));
        let (sender, receiver) = mpsc::unbounded_channel();
        let books = Arc::clone(&journal);
        let storage = Storage {
            store: store.clone(),
            file,
            journal: books,
        };
        std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || run(receiver, storage, hub, metrics, health))
            .map_err(crate::storage::StorageError::Thread)?;
        Ok(Committer {
            sender,
            journal,
            store,
        })
    }

    /// The journal's bookkeeping.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Queues writes, what they mean for the journal, and the notifications they cause;
    /// the receipt resolves once they are durable (as `durability` says) and pushed.
    pub fn submit(
        &self,
        writes: WriteSet,
        journal: Option<JournalStep>,
        notifications: Vec<Notification>,
        durability: Durability,
    ) -> Receipt {
        let (done, receipt) = Waiter::start();
        self.send(Commit {
            background: false,
            durability,
            files: None,
            writes,
            journal,
            notifications,
            done: Some(done),
            applied: None,
        });
        receipt
    }

    /// Queues background writes (no journal step), and the notifications they cause,
    /// after every foreground commit waiting now and later (`BACKGROUND_PER_GROUP`);
    /// background commits keep their order. `applied` is told once they are in storage.
    /// The receipt resolves once they are durable and pushed.
    pub fn submit_background(
        &self,
        writes: WriteSet,
        notifications: Vec<Notification>,
        applied: Option<watch::Sender<bool>>,
    ) -> Receipt {
        let (done, receipt) = Waiter::start();
        self.send(Commit {
            background: true,
            durability: Durability::Flushed,
            files: None,
            writes,
            journal: None,
            notifications,
            done: Some(done),
            applied,
        });
        receipt
    }

    /// Tells `applied` once every write submitted so far is in storage, so that a reader
    /// loading from storage sees it.
    pub fn signal_applied(&self, applied: watch::Sender<bool>) {
        self.send(Commit {
            background: false,
            durability: Durability::Journaled,
            files: None,
            writes: WriteSet::default(),
            journal: None,
            notifications: Vec::new(),
            done: None,
            applied: Some(applied),
        });
    }

    /// Flushes sled and deletes the journal files no dirty user needs any more. The
    /// flush runs beside the committer, which goes on writing meanwhile: only where it
    /// starts and what it lets go are the committer's.
    pub async fn checkpoint(&self) -> Result<(), ActorError> {
        let (mark, floor) = oneshot::channel();
        self.send(Commit::files(Files::Mark(mark)));
        let floor = floor.await.map_err(|_| ActorError::ShuttingDown)?;
        self.store.flush().await.map_err(storage)?;
        self.send(Commit::files(Files::RemoveBefore(floor)));
        Ok(())
    }

    fn send(&self, commit: Commit) {
        if let Err(refused) = self.sender.send(commit) {
            let commit = refused.0;
            if let Some(done) = commit.done {
                let _caller_gone = done.reply.send(Err(ActorError::ShuttingDown));
            }
            if let Some(applied) = commit.applied {
                let _nobody_waits = applied.send(true);
            }
        }
    }
}

impl Commit {
    /// A commit that writes nothing and asks `files` of the journal's files.
    fn files(files: Files) -> Commit {
        Commit {
            background: false,
            durability: Durability::Journaled,
            files: Some(files),
            writes: WriteSet::default(),
            journal: None,
            notifications: Vec::new(),
            done: None,
            applied: None,
        }
    }
}

/// Returns a receipt for a step that wrote nothing: already resolved.
pub fn nothing_to_do() -> Receipt {
    let (done, receipt) = oneshot::channel();
    let _receipt_kept = done.send(Ok(()));
    receipt
}

/// What the committer writes to.
struct Storage {
    store: Store,
    file: JournalFile,
    journal: Arc<Journal>,
}

fn run(
    mut receiver: mpsc::UnboundedReceiver<Commit>,
    mut storage: Storage,
    hub: Hub,
    metrics: Metrics,
    health: Arc<StorageHealth>,
) {
    let mut waiting = Waiting::default();
    let mut group: Vec<Commit> = Vec::with_capacity(64);
    while waiting.fill(&mut receiver) {
        waiting.group(&mut group);
        let timer = metrics.journal_flush_duration.start_timer();
        let journal = Arc::clone(&storage.journal);
        let (recorded, entry) = journal.record(group.iter().filter_map(|c| c.journal.as_ref()));
        let outcome = storage.write(&group, entry.as_ref());
        if outcome.is_err() {
            journal.undo(recorded);
        }
        metrics
            .journal_dirty_users
            .set(journal.dirty_count() as i64);
        metrics.journal_entries.set(journal.entries() as i64);
        timer.observe_duration();
        metrics.journal_flush_batch_size.observe(group.len() as f64);
        health.record(outcome.is_ok());
        if let Err(e) = &outcome {
            error!(error = %e, "write or flush failed; writes not acknowledged");
        }
        for commit in group.drain(..) {
            match commit.files {
                Some(Files::Mark(mark)) => {
                    if let Ok(floor) = storage.mark() {
                        let _nobody_waits = mark.send(floor);
                    }
                }
                Some(Files::RemoveBefore(floor)) => storage.remove_before(floor),
                None => {}
            }
            if let Some(applied) = commit.applied {
                let _nobody_waits = applied.send(true);
            }
            let Some(done) = commit.done else { continue };
            if outcome.is_ok() {
                for notification in commit.notifications {
                    metrics.membership_changes.inc_by(
                        (notification.in_segments.len() + notification.out_segments.len()) as u64,
                    );
                    hub.publish(notification);
                }
            }
            metrics.commit_wait.observe(done.submitted.elapsed_secs());
            let _caller_gone = done.reply.send(outcome.clone());
        }
        if outcome.is_err() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Commits received and not yet written: foreground ones first, in order, then
/// background ones, in order.
#[derive(Default)]
struct Waiting {
    foreground: VecDeque<Commit>,
    background: VecDeque<Commit>,
    closed: bool,
    /// Whether the last group had foreground commits.
    busy: bool,
}

impl Waiting {
    fn push(&mut self, commit: Commit) {
        if commit.background {
            self.background.push_back(commit);
        } else {
            self.foreground.push_back(commit);
        }
    }

    /// Takes every commit received so far, waiting for one when none waits; false once
    /// every handle is dropped and nothing is left.
    fn fill(&mut self, receiver: &mut mpsc::UnboundedReceiver<Commit>) -> bool {
        if self.foreground.is_empty() && self.background.is_empty() && !self.closed {
            match receiver.blocking_recv() {
                Some(commit) => self.push(commit),
                None => self.closed = true,
            }
        }
        loop {
            match receiver.try_recv() {
                Ok(commit) => self.push(commit),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.closed = true;
                    break;
                }
            }
        }
        !(self.foreground.is_empty() && self.background.is_empty())
    }

    /// Moves the next group into `group`: waiting foreground commits, then at most
    /// `BACKGROUND_PER_GROUP` background ones (`BACKGROUND_ALONE` when neither this
    /// group nor the last has a foreground one).
    fn group(&mut self, group: &mut Vec<Commit>) {
        let foreground = self.foreground.len().min(MAX_GROUP);
        group.extend(self.foreground.drain(..foreground));
        let idle = foreground == 0 && !self.busy;
        self.busy = foreground > 0;
        let most = if idle {
            BACKGROUND_ALONE
        } else {
            BACKGROUND_PER_GROUP
        };
        let background = self.background.len().min(most);
        group.extend(self.background.drain(..background));
    }
}

impl Storage {
    /// Applies a group's writes as one batch, appends and syncs its journal entry, and
    /// flushes sled if a commit needs it, deleting the journal files the flush made
    /// redundant.
    fn write(
        &mut self,
        group: &[Commit],
        entry: Option<&(u64, Vec<u8>)>,
    ) -> Result<(), ActorError> {
        let flushed = group.iter().any(|c| c.durability == Durability::Flushed);
        if group.iter().any(|commit| !commit.writes.is_empty()) {
            let sets = group.iter().map(|commit| &commit.writes);
            if flushed {
                self.store.apply(sets).map_err(storage)?;
            } else {
                self.store.apply_each(sets).map_err(storage)?;
            }
        }
        if let Some((seq, bytes)) = entry {
            self.file.append(*seq, bytes).map_err(storage)?;
        }
        if flushed {
            let floor = self.mark().map_err(storage)?;
            self.store.flush_blocking().map_err(storage)?;
            self.remove_before(floor);
        }
        Ok(())
    }

    /// Notes in sled that every entry before the next one is wholly applied to it (a
    /// flush that starts now covers them), and returns the floor.
    fn mark(&mut self) -> Result<u64, crate::storage::StorageError> {
        self.store.set_journal_applied(self.journal.next_seq())?;
        Ok(self.journal.floor())
    }

    /// Deletes the journal files every entry of which is before `floor`.
    fn remove_before(&mut self, floor: u64) {
        if let Err(e) = self.file.remove_before(floor) {
            // The files are kept: the next start replays more, and loses nothing.
            warn!(error = %e, "could not delete journal files sled now covers");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit told apart by its journal step.
    fn commit(background: bool, tag: u64) -> Commit {
        Commit {
            background,
            durability: Durability::Flushed,
            files: None,
            writes: WriteSet::default(),
            journal: Some(JournalStep::Saved(tag)),
            notifications: Vec::new(),
            done: None,
            applied: None,
        }
    }

    fn tags(group: &[Commit]) -> Vec<u64> {
        group
            .iter()
            .filter_map(|commit| match commit.journal {
                Some(JournalStep::Saved(tag)) => Some(tag),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn background_commits_go_after_the_others_one_per_group() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        for (background, tag) in [(true, 1), (false, 2), (true, 3), (false, 4)] {
            sender.send(commit(background, tag)).unwrap();
        }
        let mut waiting = Waiting::default();
        let mut group = Vec::new();
        assert!(waiting.fill(&mut receiver));
        waiting.group(&mut group);
        assert_eq!(tags(&group), [2, 4, 1]);
        group.clear();
        sender.send(commit(false, 5)).unwrap();
        for tag in 6..=11 {
            sender.send(commit(true, tag)).unwrap();
        }
        drop(sender);
        assert!(waiting.fill(&mut receiver));
        waiting.group(&mut group);
        assert_eq!(tags(&group), [5, 3]);
        group.clear();
        assert!(waiting.fill(&mut receiver));
        waiting.group(&mut group);
        assert_eq!(tags(&group), [6], "the last group was busy");
        group.clear();
        assert!(waiting.fill(&mut receiver));
        waiting.group(&mut group);
        assert_eq!(tags(&group), [7, 8, 9, 10], "more at once when idle");
        group.clear();
        assert!(waiting.fill(&mut receiver));
        waiting.group(&mut group);
        assert_eq!(tags(&group), [11]);
        group.clear();
        assert!(!waiting.fill(&mut receiver), "closed and nothing left");
    }
}
