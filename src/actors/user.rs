//! The user actor: one per resolved user, applying its events in order, re-evaluating
//! segments, waking at the rule engine's next-change instant, and persisting every
//! change (a journal part or a snapshot, see `step`) before it is pushed.

use std::sync::Arc;

use actix::{Actor, ActorContext, Context, Handler};
use tracing::warn;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::storage::Store;

use super::activity_totals::ActivityTotals;
use super::catalog::Catalog;
use super::committer::{nothing_to_do, Committer, Durability, Receipt};
use super::due_soon::DueSoon;
use super::merge_step::merge_step;
use super::messages::{GetView, Ingest, Merge, Passivate, Reply, Save, Update};
use super::record::{Effects, UserRecord};
use super::replay::load_user;
use super::step::{step, Persist, Saved, Staged};
use super::view::UserView;
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
    /// Dues not in storage yet.
    pub due_soon: Arc<DueSoon>,
}

/// One user.
pub struct UserActor {
    id: u64,
    record: UserRecord,
    /// What storage holds of it.
    saved: Saved,
    /// Set when this user was absorbed by a merge: everything is answered `Moved`.
    merged_into: Option<u64>,
    shared: Arc<UserContext>,
}

impl UserActor {
    /// Returns the actor for `id` with its loaded `record`, of which storage holds `saved`.
    pub fn new(id: u64, record: UserRecord, saved: Saved, shared: Arc<UserContext>) -> UserActor {
        UserActor {
            id,
            record,
            saved,
            merged_into: None,
            shared,
        }
    }

    /// Returns the actor for `id`, absorbed into `survivor`: it redirects everything.
    pub fn absorbed(id: u64, survivor: u64, shared: Arc<UserContext>) -> UserActor {
        UserActor {
            merged_into: Some(survivor),
            ..UserActor::new(id, UserRecord::default(), Saved::default(), shared)
        }
    }

    fn reload(&mut self) {
        warn!(user_id = self.id, "failed to save user; reloading it");
        (self.record, self.saved) = match load_user(&self.shared, self.id) {
            Ok(Some(loaded)) => loaded,
            _ => (UserRecord::default(), Saved::default()),
        };
    }

    /// Runs one step on the actor's record; on a failed save the record is reloaded.
    fn step(
        &mut self,
        persist: Persist<'_>,
        work: impl FnOnce(&mut UserRecord, &UserContext) -> Effects,
    ) -> Result<Receipt, ActorError> {
        let result = step(
            &self.shared,
            self.id,
            &mut self.record,
            &mut self.saved,
            persist,
            work,
        );
        self.submit(result)
    }

    /// Hands a step's writes to the committer; on a failed step the record is reloaded.
    fn submit(
        &mut self,
        result: Result<Option<Staged>, ActorError>,
    ) -> Result<Receipt, ActorError> {
        if result.is_err() {
            self.reload();
        }
        let committer = &self.shared.committer;
        result.map(|staged| staged.map_or_else(nothing_to_do, |staged| staged.submit(committer)))
    }
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
        let events = std::sync::Arc::clone(&msg.events);
        let result = self.step(Persist::Journal(&events), |record, shared| {
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
        let result = self.step(Persist::Overlay, |record, shared| {
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
        let result = merge_step(
            &self.shared,
            self.id,
            &mut self.record,
            &mut self.saved,
            msg.plan,
        );
        if result.is_err() {
            self.reload();
        }
        answer(msg.reply, result);
    }
}

impl Handler<Save> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Save, _ctx: &mut Self::Context) {
        // Saved even when the actor believes storage is up to date: the journal asks
        // only for users it counts as dirty (a failed batch leaves them so).
        self.saved.unsaved_steps = self.saved.unsaved_steps.max(1);
        let result = self.save();
        answer(msg.reply, result);
    }
}

impl UserActor {
    /// Saves the record whole if storage lacks any of it. The save needs no flush of
    /// its own: it changes no answer, and the journal holds every event it covers until
    /// the next checkpoint flushes it.
    fn save(&mut self) -> Result<Receipt, ActorError> {
        if self.merged_into.is_some() {
            return Ok(nothing_to_do());
        }
        let staged = step(
            &self.shared,
            self.id,
            &mut self.record,
            &mut self.saved,
            Persist::Snapshot,
            |_, _| Effects::default(),
        );
        self.submit(staged.map(|staged| {
            staged.map(|staged| Staged {
                durability: Durability::Journaled,
                ..staged
            })
        }))
    }
}

impl Handler<Passivate> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Passivate, ctx: &mut Self::Context) {
        // A leaving user saves what storage lacks of it, unless it is dropped because
        // a write failed (storage then holds all that was acknowledged). Every step
        // handed its writes to the committer; whoever waits is told once those writes
        // are readable in storage.
        if msg.save {
            if let Err(e) = self.save() {
                warn!(user_id = self.id, error = %e, "failed to save a leaving user");
            }
        }
        self.shared.committer.signal_applied(msg.done);
        ctx.stop();
    }
}
