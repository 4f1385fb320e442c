//! The user actor: one per resolved user, applying its events in order, re-evaluating
//! segments, waking at the rule engine's next-change instant, and persisting every
//! change before it is pushed.

use std::sync::Arc;

use actix::{Actor, ActorContext, Context, Handler};
use tracing::warn;

use crate::clock::Clock;
use crate::domain::Timestamp;
use crate::metrics::Metrics;
use crate::storage::{Store, UserWrite};

use super::activity_totals::ActivityTotals;
use super::catalog::Catalog;
use super::committer::{nothing_to_do, Committer, Receipt};
use super::hub::Notification;
use super::merge_step::merge_step;
use super::messages::{GetView, Ingest, Merge, Passivate, Reply, Update};
use super::record::{Effects, UserRecord};
use super::view::{activity_summaries, UserView};
use super::ActorError;

/// What every user actor shares.
pub struct UserContext {
    /// The node's store.
    pub store: Store,
    /// The segments.
    pub catalog: Arc<Catalog>,
    /// Group commit.
    pub committer: Committer,
    /// The node's clock.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Metrics,
    /// Node-wide activity totals.
    pub totals: Arc<ActivityTotals>,
    /// How long windowed buckets are kept.
    pub retention_ms: i64,
    /// Guardrails on identity links and merges.
    pub identity: crate::config::IdentitySection,
}

/// One user.
pub struct UserActor {
    id: u64,
    record: UserRecord,
    /// Set when this user was absorbed by a merge: everything is answered `Moved`.
    merged_into: Option<u64>,
    shared: Arc<UserContext>,
}

impl UserActor {
    /// Returns the actor for `id` with its stored `record`.
    pub fn new(id: u64, record: UserRecord, shared: Arc<UserContext>) -> UserActor {
        UserActor {
            id,
            record,
            merged_into: None,
            shared,
        }
    }

    /// Returns the actor for `id`, absorbed into `survivor`: it redirects everything.
    pub fn absorbed(id: u64, survivor: u64, shared: Arc<UserContext>) -> UserActor {
        UserActor {
            merged_into: Some(survivor),
            ..UserActor::new(id, UserRecord::default(), shared)
        }
    }

    fn reload(&mut self) {
        warn!(user_id = self.id, "failed to save user; reloading it");
        self.record = self
            .shared
            .store
            .load_user(self.id)
            .ok()
            .flatten()
            .unwrap_or_default();
    }

    /// Runs one step on the actor's record; on a failed save the record is reloaded.
    fn step(
        &mut self,
        applies_events: bool,
        work: impl FnOnce(&mut UserRecord, &UserContext) -> Effects,
    ) -> Result<Receipt, ActorError> {
        let result = step(
            &self.shared,
            self.id,
            &mut self.record,
            applies_events,
            work,
        );
        if result.is_err() {
            self.reload();
        }
        result.map(|wrote| wrote.unwrap_or_else(nothing_to_do))
    }
}

/// Runs one step on a user's record and hands the committer the record with its timer and
/// membership changes (one set of writes) and the notifications for after the flush. Used
/// by the user's actor, and by the registry for users not in memory.
///
/// Returns `None` when nothing changed that a reader could see, so nothing was written.
///
/// Node-wide activity totals can only change when `work` applies events or a pending
/// event becomes due; only then are this user's totals compared before and after, so
/// backfills and timer ticks do not pay for it.
pub fn step(
    shared: &UserContext,
    id: u64,
    record: &mut UserRecord,
    applies_events: bool,
    work: impl FnOnce(&mut UserRecord, &UserContext) -> Effects,
) -> Result<Option<Receipt>, ActorError> {
    let now = shared.clock.now();
    let before_segments = record.segments.clone();
    let has_pending = record.state.next_pending(Timestamp::MIN).is_some();
    let before_totals = (applies_events || has_pending).then(|| activity_summaries(record, now));
    let old_due = record.next_due;
    let effects = work(record, shared);
    if !effects.dirty && effects.changes.is_empty() && old_due == record.next_due {
        // Nothing a reader could see changed (buckets may have been compacted, which
        // never changes an answer): skip the write. This keeps backfills and timer
        // ticks that flip nothing read-only.
        shared.metrics.rule_evaluations.inc_by(effects.evaluations);
        return Ok(None);
    }
    let write = UserWrite::between(old_due, record.next_due, &before_segments, &record.segments);
    let writes =
        Store::user_write(id, record, &write).map_err(|e| ActorError::Storage(e.to_string()))?;
    if old_due != record.next_due {
        let delta = i64::from(record.next_due.is_some()) - i64::from(old_due.is_some());
        shared.metrics.timers_pending.add(delta);
    }
    shared.metrics.rule_evaluations.inc_by(effects.evaluations);
    if let Some(before) = before_totals {
        shared
            .totals
            .adjust(&before, &activity_summaries(record, now));
    }
    let notifications = effects
        .changes
        .into_iter()
        .map(|change| Notification {
            user_id: id,
            in_segments: change.entered,
            out_segments: change.left,
            at: change.at,
            merged_into: None,
            relayed: false,
        })
        .collect();
    Ok(Some(shared.committer.submit(writes, notifications)))
}

fn answer<T>(reply: Reply<T>, result: Result<T, ActorError>) {
    let _caller_gone = reply.send(result);
}

impl Actor for UserActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.shared.metrics.resident_users.inc();
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.shared.metrics.resident_users.dec();
    }
}

impl Handler<Ingest> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Ingest, _ctx: &mut Self::Context) {
        if let Some(survivor) = self.merged_into {
            return answer(msg.reply, Err(ActorError::Moved(survivor)));
        }
        let mut applied = 0;
        let result = self.step(true, |record, shared| {
            let segments = shared.catalog.snapshot();
            let effects = record.apply(
                &msg.events,
                &segments,
                shared.clock.now(),
                shared.retention_ms,
            );
            applied = effects.applied;
            effects
        });
        if result.is_ok() {
            self.shared.metrics.events_ingested.inc_by(applied);
        }
        answer(msg.reply, result);
    }
}

impl Handler<Update> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Update, _ctx: &mut Self::Context) {
        if self.merged_into.is_some() {
            return answer(msg.reply, Ok(nothing_to_do()));
        }
        let result = self.step(false, |record, shared| {
            let segments = shared.catalog.snapshot();
            msg.op
                .run(record, &segments, shared.clock.now(), shared.retention_ms)
        });
        answer(msg.reply, result);
    }
}

impl Handler<GetView> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: GetView, _ctx: &mut Self::Context) {
        if let Some(survivor) = self.merged_into {
            return answer(msg.reply, Err(ActorError::Moved(survivor)));
        }
        let view = UserView::of(self.id, &self.record, self.shared.clock.now());
        answer(msg.reply, Ok(view));
    }
}

impl Handler<Merge> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Merge, _ctx: &mut Self::Context) {
        if let Some(survivor) = self.merged_into {
            return answer(msg.reply, Err(ActorError::Moved(survivor)));
        }
        let result = merge_step(&self.shared, self.id, &mut self.record, msg.plan);
        if result.is_err() {
            self.reload();
        }
        answer(msg.reply, result);
    }
}

impl Handler<Passivate> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Passivate, ctx: &mut Self::Context) {
        // Every step handed its writes to the committer; the actor may stop now, and
        // whoever waits for it is told once those writes are readable in storage.
        self.shared.committer.signal_applied(msg.done);
        ctx.stop();
    }
}
