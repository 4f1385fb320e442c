//! Finds or starts a user's actor. Users map to a fixed number of shards by a fixed,
//! documented hash (SplitMix64's finaliser of the user id, modulo the shard count); shards
//! map to arbiters (one thread each) round-robin, so actors spread over the cores. Where a
//! new actor runs is `placement.rs`: the HTTP worker that first reached the user, or the
//! arbiter of its shard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::SendError;
use actix::{Actor, Addr, ArbiterHandle, Handler, Message};
use futures_util::stream::{self, StreamExt};
use tokio::sync::{oneshot, watch};

use crate::clock::uptime_ms;
use crate::cluster::handoff::Ownership;
use crate::sync::locked;

use super::committer::{nothing_to_do, Durability, Receipt};
use super::messages::{GetView, Passivate, Reply, Save, Update};
use super::placement;
use super::record::{UserOp, UserRecord};
use super::replay::load_user;
use super::step::{step, Persist, Saved};
use super::user::{UserActor, UserContext};
use super::view::UserView;
use super::ActorError;

mod sweep;

pub use sweep::Sweep;

/// SplitMix64's finaliser: a fixed, well-mixed 64-bit hash (never `DefaultHasher`).
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A user's place in its shard (8 bytes smaller than with `Leaving` inline: a shard map
/// holds one per resident user, and few are leaving at any time).
enum Slot {
    /// In memory; `last_used` is `uptime_ms` at its latest message.
    Active {
        addr: Addr<UserActor>,
        last_used: u64,
    },
    /// Stopping: its record is saved; a new actor may start once `done` says `true`.
    Leaving(Box<Leaving>),
}

/// A user leaving memory.
struct Leaving {
    done: watch::Receiver<bool>,
    /// The stopping actor's address, only held (never used) until the slot is
    /// replaced. Actix stops an actor that has no address left, and it looks for
    /// addresses after it last looked at its mailbox: a message queued in between
    /// (`Passivate`, and whatever was sent just before it) would be dropped
    /// unhandled, its caller told `ShuttingDown`. Held, the actor stops only by
    /// handling its `Passivate`.
    _actor: Option<Addr<UserActor>>,
}

impl Slot {
    fn leaving(done: watch::Receiver<bool>, actor: Option<Addr<UserActor>>) -> Slot {
        Slot::Leaving(Box::new(Leaving {
            done,
            _actor: actor,
        }))
    }
}

/// The user actors of this node.
///
/// Every message is sent while the shard lock is held, and passivation sends its
/// `Passivate` the same way as it marks the user `Leaving`: whatever reached the old
/// actor is ahead of `Passivate` in its mailbox, and whatever comes later waits for the
/// old actor to stop before a new one loads the record. The registry keeps an address of
/// the old actor until then, so that actix never stops it for want of one with messages
/// still queued. Nothing is lost in between.
///
/// Only users of cluster shards this node serves are reached: a message for another is
/// refused (`NotServed`) and a change without an event skipped, so that nothing is
/// applied to a shard in transit (see `cluster::handoff`).
pub struct Registry {
    shards: Vec<Mutex<HashMap<u64, Slot>>>,
    arbiters: Vec<ArbiterHandle>,
    mailbox_capacity: usize,
    shared: Arc<UserContext>,
    ownership: Arc<Ownership>,
}

impl Registry {
    /// Creates a registry over `shards` shards placed on `arbiters`, for the users of the
    /// cluster shards `ownership` says this node serves.
    pub fn new(
        shards: u32,
        arbiters: Vec<ArbiterHandle>,
        mailbox_capacity: usize,
        shared: Arc<UserContext>,
        ownership: Arc<Ownership>,
    ) -> Registry {
        Registry {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            arbiters,
            mailbox_capacity,
            shared,
            ownership,
        }
    }

    /// What every user actor shares.
    pub fn context(&self) -> &UserContext {
        &self.shared
    }

    /// Returns whether `user` has a record: stored, or so far only in the journal (a
    /// new user before its first snapshot).
    pub fn has_record(&self, user: u64) -> Result<bool, ActorError> {
        let stored = self.shared.store.has_user(user).map_err(super::storage)?;
        Ok(stored || self.shared.committer.journal().is_dirty(user))
    }

    /// Refuses a user whose cluster shard this node does not serve now.
    fn served(&self, user: u64) -> Result<(), ActorError> {
        if self.ownership.serves_user(user) {
            Ok(())
        } else {
            Err(ActorError::NotServed(format!(
                "this node does not serve user {user} now; retry shortly"
            )))
        }
    }

    /// Returns the shard of a user.
    pub fn shard_of(&self, user: u64) -> usize {
        (mix(user) % self.shards.len() as u64) as usize
    }

    /// Loads a user (replaying its journal parts if it left memory with some unsaved);
    /// a user with no record may have been absorbed by a merge.
    #[allow(clippy::type_complexity)]
    fn load(&self, user: u64) -> Result<Result<Option<(UserRecord, Saved)>, u64>, ActorError> {
        match load_user(&self.shared, user)? {
            Some(loaded) => Ok(Ok(Some(loaded))),
            None => Ok(self
                .shared
                .store
                .merged_into(user)
                .map_err(super::storage)?
                .map_or(Ok(None), Err)),
        }
    }

    fn start(&self, user: u64, shard: usize) -> Result<Addr<UserActor>, ActorError> {
        let shared = Arc::clone(&self.shared);
        let actor = match self.load(user)? {
            Ok(loaded) => {
                let (record, saved) = loaded.unwrap_or_default();
                UserActor::new(user, record, saved, shared)
            }
            Err(survivor) => UserActor::absorbed(user, survivor, shared),
        };
        Ok(placement::start(
            &self.arbiters,
            shard,
            self.mailbox_capacity,
            actor,
        ))
    }

    /// Sends `message` to the user's actor, starting it from storage if needed and
    /// waiting for a passivating one to stop first.
    async fn send<M>(&self, user: u64, message: M) -> Result<(), ActorError>
    where
        M: Message<Result = ()> + Send + 'static,
        UserActor: Handler<M>,
        <UserActor as Actor>::Context: ToEnvelope<UserActor, M>,
    {
        self.served(user)?;
        let shard = self.shard_of(user);
        loop {
            let mut leaving = {
                let mut actors = locked(&self.shards[shard]);
                match actors.get_mut(&user) {
                    Some(Slot::Leaving(leaving)) if !finished(&leaving.done) => {
                        leaving.done.clone()
                    }
                    Some(Slot::Active { addr, last_used }) if addr.connected() => {
                        *last_used = uptime_ms();
                        return addr.try_send(message).map_err(mailbox_error);
                    }
                    _ => {
                        let addr = self.start(user, shard)?;
                        let sent = addr.try_send(message);
                        actors.insert(
                            user,
                            Slot::Active {
                                addr,
                                last_used: uptime_ms(),
                            },
                        );
                        return sent.map_err(|_| ActorError::MailboxFull);
                    }
                }
            };
            // The old actor is stopping; wait until its last write is done.
            let _stopped = leaving.wait_for(|done| *done).await;
        }
    }

    /// Sends a message built around a reply channel to a user's actor and awaits the
    /// answer; a full mailbox is `MailboxFull`, never a wait.
    pub async fn ask<T, M>(
        &self,
        user: u64,
        message: impl FnOnce(Reply<T>) -> M,
    ) -> Result<T, ActorError>
    where
        M: Message<Result = ()> + Send + 'static,
        UserActor: Handler<M>,
        <UserActor as Actor>::Context: ToEnvelope<UserActor, M>,
    {
        let (reply, answer) = oneshot::channel();
        self.send(user, message(reply)).await?;
        answer.await.map_err(|_| ActorError::ShuttingDown)?
    }

    /// Passivates users idle for `idle`, then the least recently used ones until at most
    /// `max_resident` stay in memory. Returns how many were asked to leave.
    pub fn passivate(&self, idle: Duration, max_resident: usize) -> usize {
        let now = uptime_ms();
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let mut asked = 0;
        let mut remaining: Vec<(u64, u64)> = Vec::new();
        for shard in &self.shards {
            let mut actors = locked(shard);
            actors.retain(
                |_, slot| !matches!(slot, Slot::Leaving(leaving) if finished(&leaving.done)),
            );
            let idle_users: Vec<u64> = actors
                .iter()
                .filter_map(|(user, slot)| match slot {
                    Slot::Active { last_used, .. } if now.saturating_sub(*last_used) >= idle_ms => {
                        Some(*user)
                    }
                    _ => None,
                })
                .collect();
            for user in idle_users {
                asked += usize::from(leave(&mut actors, user, true));
            }
            remaining.extend(actors.iter().filter_map(|(user, slot)| match slot {
                Slot::Active { last_used, .. } => Some((*last_used, *user)),
                Slot::Leaving(_) => None,
            }));
        }
        if remaining.len() > max_resident {
            remaining.sort_unstable();
            let excess = remaining.len() - max_resident;
            for (_, user) in remaining.into_iter().take(excess) {
                let shard = &self.shards[self.shard_of(user)];
                asked += usize::from(leave(&mut locked(shard), user, true));
            }
        }
        asked
    }
}

impl Registry {
    /// Hands writes about a user held out of memory to the committer; the receipt
    /// resolves once they are durable.
    pub fn submit(&self, writes: crate::storage::WriteSet) -> Receipt {
        self.shared
            .committer
            .submit(writes, None, Vec::new(), Durability::Flushed)
    }

    /// Drops a user's in-memory state after its writes failed, so that its next message
    /// loads what storage holds (the last state that was written).
    pub fn evict(&self, user: u64) {
        leave(&mut locked(&self.shards[self.shard_of(user)]), user, false);
    }
}

/// Returns whether a leaving actor has stopped (or died).
fn finished(done: &watch::Receiver<bool>) -> bool {
    *done.borrow() || done.has_changed().is_err()
}

/// Asks one active user to passivate, saving it first when `save` is set; false when its
/// mailbox is full (it stays).
fn leave(actors: &mut HashMap<u64, Slot>, user: u64, save: bool) -> bool {
    let Some(Slot::Active { addr, .. }) = actors.get(&user) else {
        return false;
    };
    let (done, stopped) = watch::channel(false);
    if addr.try_send(Passivate { done, save }).is_err() {
        return false;
    }
    let actor = Some(addr.clone());
    actors.insert(user, Slot::leaving(stopped, actor));
    true
}

/// Keeps a user out of memory while a merge absorbs it: messages for it wait until the
/// hold is dropped, then a fresh actor loads what the merge left (a redirect).
pub struct Hold {
    released: watch::Sender<bool>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _nobody_waits = self.released.send(true);
    }
}

impl Registry {
    /// Stops the user's actor (after the messages already in its mailbox) and holds
    /// every later message until the returned `Hold` is dropped. Its record is then
    /// complete in storage.
    pub async fn hold(&self, user: u64) -> Result<Hold, ActorError> {
        self.served(user)?;
        let shard = self.shard_of(user);
        loop {
            let (released, held) = watch::channel(false);
            let hold = Hold { released };
            let (addr, mut leaving) = {
                let mut actors = locked(&self.shards[shard]);
                match actors.get(&user) {
                    Some(Slot::Leaving(leaving)) if !finished(&leaving.done) => {
                        (None, leaving.done.clone())
                    }
                    Some(Slot::Active { addr, .. }) if addr.connected() => {
                        let addr = addr.clone();
                        actors.insert(user, Slot::leaving(held, Some(addr.clone())));
                        (Some(addr), watch::channel(true).1)
                    }
                    _ => {
                        actors.insert(user, Slot::leaving(held, None));
                        return self.saved(user).map(|()| hold);
                    }
                }
            };
            let Some(addr) = addr else {
                let _stopped = leaving.wait_for(|done| *done).await;
                continue;
            };
            let (done, mut stopped) = watch::channel(false);
            let save = true;
            if addr.send(Passivate { done, save }).await.is_ok() {
                let _stopped = stopped.wait_for(|done| *done).await;
            }
            return self.saved(user).map(|()| hold);
        }
    }
}

impl Registry {
    /// Saves every user with journaled events whole.
    pub async fn save_dirty(&self) -> Result<(), ActorError> {
        let journal = self.shared.committer.journal();
        self.save_each(journal.dirty_before(u64::MAX), FAN_OUT)
            .await
    }

    /// Saves each user whole (starting those not in memory, from storage and the
    /// journal), at most `at_once` at a time, and waits until the snapshots are durable.
    pub async fn save_each(
        &self,
        users: impl IntoIterator<Item = u64>,
        at_once: usize,
    ) -> Result<(), ActorError> {
        for_each_user(users, at_once, |user| async move {
            match self.ask(user, |reply| Save { reply }).await {
                Err(ActorError::NotServed(_)) => Ok(nothing_to_do()),
                receipt => receipt,
            }
        })
        .await
    }
}

/// Runs `start` for each user, at most `at_once` at a time, and waits for every receipt;
/// the first error wins.
async fn for_each_user<F, Fut>(
    users: impl IntoIterator<Item = u64>,
    at_once: usize,
    start: F,
) -> Result<(), ActorError>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Receipt, ActorError>>,
{
    let results: Vec<Result<(), ActorError>> = stream::iter(users)
        .map(|user| {
            let started = start(user);
            async move { started.await?.await.map_err(|_| ActorError::ShuttingDown)? }
        })
        .buffer_unordered(at_once.max(1))
        .collect()
        .await;
    results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
}

impl Registry {
    /// Refuses to hold a user whose journal parts no snapshot covers (its save failed):
    /// a merge reads held users from storage. The snapshot loop saves it shortly.
    fn saved(&self, user: u64) -> Result<(), ActorError> {
        if self.shared.committer.journal().is_dirty(user) {
            return Err(ActorError::Storage(format!(
                "user {user} could not be saved before it was held; retry shortly"
            )));
        }
        Ok(())
    }
}

/// Users saved or updated at once by `save_dirty` and `update_each`, and by a sweep's part
/// for its users one by one.
const FAN_OUT: usize = 256;

fn mailbox_error<M>(e: SendError<M>) -> ActorError {
    match e {
        SendError::Full(_) => ActorError::MailboxFull,
        SendError::Closed(_) => ActorError::ShuttingDown,
    }
}

impl Registry {
    /// Applies `op` to a user: through its actor when it is in memory, else directly on
    /// its stored record under the shard lock (no actor is started, so a million due
    /// timers or a backfill do not fill memory). A user with no record, or one this node
    /// does not serve now, is left alone.
    pub async fn update(&self, user: u64, op: UserOp) -> Result<Receipt, ActorError> {
        if self.served(user).is_err() {
            return Ok(nothing_to_do());
        }
        let shard = self.shard_of(user);
        loop {
            let (answer, mut leaving) = {
                let mut actors = locked(&self.shards[shard]);
                match actors.get_mut(&user) {
                    Some(Slot::Leaving(leaving)) if !finished(&leaving.done) => {
                        (None, leaving.done.clone())
                    }
                    Some(Slot::Active { addr, last_used }) if addr.connected() => {
                        *last_used = uptime_ms();
                        let (reply, answer) = oneshot::channel();
                        addr.try_send(Update { op, reply }).map_err(mailbox_error)?;
                        (Some(answer), watch::channel(true).1)
                    }
                    _ => {
                        actors.remove(&user);
                        let Ok(Some((mut record, mut saved))) = self.load(user)? else {
                            return Ok(nothing_to_do());
                        };
                        let segments = self.shared.catalog.snapshot();
                        let wrote = step(
                            &self.shared,
                            user,
                            &mut record,
                            &mut saved,
                            Persist::Snapshot,
                            |record, shared| {
                                op.run(record, &segments, shared.clock.now(), shared.retention_ms)
                            },
                        )?;
                        let Some(staged) = wrote else {
                            return Ok(nothing_to_do());
                        };
                        let receipt = staged.submit(&self.shared.committer);
                        // Later messages for this user load it from storage: they wait
                        // until the write just queued is there.
                        let (applied, written) = watch::channel(false);
                        self.shared.committer.signal_applied(applied);
                        actors.insert(user, Slot::leaving(written, None));
                        return Ok(receipt);
                    }
                }
            };
            if let Some(answer) = answer {
                return answer.await.map_err(|_| ActorError::ShuttingDown)?;
            }
            let _stopped = leaving.wait_for(|done| *done).await;
        }
    }

    /// Describes a user as of now, from its actor or, when not in memory, its record.
    pub async fn view(&self, user: u64) -> Result<Option<UserView>, ActorError> {
        let shard = self.shard_of(user);
        {
            let actors = locked(&self.shards[shard]);
            if !matches!(
                actors.get(&user),
                Some(Slot::Active { .. }) | Some(Slot::Leaving(_))
            ) {
                let now = self.shared.clock.now();
                return match self.load(user)? {
                    Ok(stored) => Ok(stored.map(|(record, _)| UserView::of(user, &record, now))),
                    Err(survivor) => Err(ActorError::Moved(survivor)),
                };
            }
        }
        self.ask(user, |reply| GetView { reply }).await.map(Some)
    }

    /// Runs each part on an arbiter of its own (at most one part per arbiter), side by
    /// side, and waits for all of them; the first error wins.
    async fn side_by_side<T, Part>(
        &self,
        parts: impl IntoIterator<Item = Part>,
    ) -> Result<Vec<T>, ActorError>
    where
        Part: std::future::Future<Output = Result<T, ActorError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut running = Vec::with_capacity(self.arbiters.len());
        for (arbiter, part) in self.arbiters.iter().zip(parts) {
            let (done, finished) = oneshot::channel();
            let spawned = arbiter.spawn(async move {
                let _caller_gone = done.send(part.await);
            });
            if !spawned {
                return Err(ActorError::ShuttingDown);
            }
            running.push(finished);
        }
        let mut outcome = Ok(Vec::with_capacity(running.len()));
        for finished in running {
            let result = finished.await.unwrap_or(Err(ActorError::ShuttingDown));
            outcome = match (outcome, result) {
                (Ok(mut results), Ok(result)) => {
                    results.push(result);
                    Ok(results)
                }
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            };
        }
        outcome
    }

    /// Applies `op` to each user (at most 256 at once) and waits until every change it
    /// caused is durable and pushed; the first error wins.
    pub async fn update_each(
        &self,
        users: impl IntoIterator<Item = u64>,
        op: UserOp,
    ) -> Result<(), ActorError> {
        for_each_user(users, FAN_OUT, |user| self.update(user, op)).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use crate::actors::{ActivityTotals, Catalog, Committer, Hub, StorageHealth};
    use crate::clock::ManualClock;
    use crate::domain::Timestamp;
    use crate::metrics::Metrics;
    use crate::storage::Store;

    /// A registry on `store` whose actors run on the current thread.
    pub(crate) fn registry(store: Store) -> Registry {
        let metrics = Metrics::new();
        let health = Arc::new(StorageHealth::default());
        let committer =
            Committer::start(store.clone(), Hub::new(16), metrics.clone(), health).unwrap();
        let shared = Arc::new(UserContext {
            store,
            catalog: Arc::new(Catalog::default()),
            committer,
            clock: Arc::new(ManualClock::new(Timestamp::from_millis(0))),
            metrics,
            totals: Arc::new(ActivityTotals::default()),
            retention_ms: 0,
            identity: crate::config::IdentitySection::default(),
            due_soon: Default::default(),
        });
        let ring = crate::cluster::Ring::new(&["n1"]);
        let ownership = Arc::new(crate::cluster::handoff::Ownership::new(
            vec!["n1".into()],
            0,
            &ring,
        ));
        Registry::new(1, Vec::new(), 16, shared, ownership)
    }

    /// Puts segment `id` in the catalog: users with a `page_viewed` event.
    pub(super) fn put_viewers(registry: &Registry, id: u64) {
        put_segment(registry, id, "count(page_viewed) >= 1");
    }

    /// Puts segment `id` with `rule` in the catalog.
    pub(crate) fn put_segment(registry: &Registry, id: u64, rule: &str) {
        use crate::actors::{Segment, SegmentDef};
        let at = Timestamp::from_millis(0);
        registry.shared.catalog.put(Segment {
            def: SegmentDef {
                id,
                name: "viewers".into(),
                rule: rule.into(),
                description: None,
                created_at: at,
                updated_at: at,
                ready: false,
            },
            rule: crate::rules::compile(rule, &crate::rules::Limits::default()).unwrap(),
        });
    }

    /// Answers whether any address of the actor that handles it is still alive.
    struct Addressed {
        reply: Reply<bool>,
    }

    impl Message for Addressed {
        type Result = ();
    }

    impl Handler<Addressed> for UserActor {
        type Result = ();

        fn handle(&mut self, msg: Addressed, ctx: &mut Self::Context) {
            let _caller_gone = msg.reply.send(Ok(ctx.connected()));
        }
    }

    #[test]
    fn a_passivating_actor_keeps_an_address_until_it_has_stopped() {
        // Actix stops an actor that has no address left as soon as it finds its mailbox
        // empty, but it looks for addresses after it last looked at its mailbox: a
        // message queued in between is dropped unanswered (seen as `ShuttingDown`). So a
        // passivating actor must keep an address until its `Passivate` is handled. On one
        // thread, the actor handles `Addressed` only after `passivate` has returned.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        actix_rt::System::new().block_on(async {
            let registry = registry(store);
            let user = 7;
            registry.ask(user, |reply| GetView { reply }).await.unwrap();
            let (reply, addressed) = oneshot::channel();
            registry.send(user, Addressed { reply }).await.unwrap();
            assert_eq!(registry.passivate(Duration::ZERO, usize::MAX), 1);
            assert_eq!(addressed.await.unwrap(), Ok(true));
        });
    }

    /// A backfill that only changes membership writes just that, for a resident user and
    /// for one loaded for the step alike: no record is rewritten, and loading either
    /// gives the new membership.
    #[test]
    fn a_backfill_writes_membership_alone() {
        use crate::actors::UserRecord;
        use crate::storage::UserWrite;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        actix_rt::System::new().block_on(async {
            let registry = registry(store.clone());
            let at = Timestamp::from_millis(0);
            let mut record = UserRecord::default();
            let event = crate::domain::Event::new("page_viewed", at);
            record.state.apply(&event, at, 0);
            for user in [7, 8] {
                let stored = Store::user_write(user, &record, &UserWrite::default()).unwrap();
                store.apply([&stored]).unwrap();
            }
            put_viewers(&registry, 1);
            registry.ask(7, |reply| GetView { reply }).await.unwrap();
            for user in [7, 8] {
                let receipt = registry.update(user, UserOp::Reevaluate(1)).await.unwrap();
                receipt.await.unwrap().unwrap();
                assert!(store.is_member(1, user));
                let (loaded, _) = load_user(&registry.shared, user).unwrap().unwrap();
                assert_eq!(&*loaded.segments, &[1]);
            }
            for user in [7, 8] {
                let stored = store.load_user::<UserRecord>(user).unwrap();
                assert_eq!(
                    stored.as_ref(),
                    Some(&record),
                    "record {user} not rewritten"
                );
            }
            assert_eq!(registry.shared.metrics.overlays.get(), 0);
            assert_eq!(registry.shared.metrics.snapshots.get(), 0);
        });
    }

    #[test]
    fn the_shard_hash_is_pinned() {
        // Placement is a compatibility contract (shard keys, handoff): never change these.
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0x5692_161d_100b_05e5);
        let shards: Vec<u64> = (1..=6).map(|u| mix(u) % 1024).collect();
        assert_eq!(shards, [485, 138, 240, 276, 476, 876]);
    }
}
