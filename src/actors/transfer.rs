//! Merges across nodes, the parts away from the coordinating (survivor's) node: giving a
//! user up to a survivor on another node, settling it once the survivor took it or
//! refused it, and finishing transfers cut short by a crash. The giving node keeps the
//! user in its outbox (`storage::transfers`) from the moment it gives it up until it is
//! settled, so a user is never lost and never lives on both nodes.

use std::collections::BTreeSet;

use tracing::{info, warn};

use crate::storage::{Absorbed, Store, WriteSet};

use super::identity::IdentityService;
use super::merge::MergeLog;
use super::merge_locks::LockKey;
use super::merge_step::{AbsorbedUser, MergePlan};
use super::overlay::load_record;
use super::peers::{Parcel, Surrender};
use super::record::UserRecord;
use super::storage;
use super::view::activity_summaries;
use super::ActorError;

impl IdentityService {
    /// What giving `user` up removes here: its record, timer, membership, the identities
    /// this node resolves, and the redirects of users it had absorbed.
    fn given(&self, user: u64, record: &UserRecord, log: &MergeLog) -> Absorbed {
        Absorbed {
            user,
            due: record.next_due,
            segments: record.segments.iter().copied().collect(),
            identities: record
                .identities
                .iter()
                .filter(|identity| self.peers.resolves(identity))
                .cloned()
                .collect(),
            earlier: log.absorbed_users(),
        }
    }

    async fn write(&self, writes: WriteSet) -> Result<(), ActorError> {
        self.registry
            .submit(writes)
            .await
            .map_err(|_| ActorError::ShuttingDown)?
    }

    /// Moves a user's activity totals and timer out of this node's gauges (`leaving`) or
    /// back in.
    fn account(&self, record: &UserRecord, leaving: bool) {
        let now = self.clock.now();
        let summaries = activity_summaries(record, now);
        let due = i64::from(record.next_due.is_some());
        if leaving {
            self.totals.adjust(&summaries, &Default::default());
            self.metrics.timers_pending.sub(due);
        } else {
            self.totals.adjust(&Default::default(), &summaries);
            self.metrics.timers_pending.add(due);
        }
    }

    /// Gives `user` up to `survivor`, which lives on another node (asked by that node):
    /// in one batch it is removed, redirected to the survivor, and kept in the outbox.
    /// Asking again for the same survivor answers the same parcel.
    pub async fn surrender(&self, user: u64, survivor: u64) -> Result<Surrender, ActorError> {
        let _held = self.registry.hold(user).await?;
        if let Some(parcel) = self.store.parcel::<Parcel>(user).map_err(storage)? {
            return Ok(if parcel.survivor == survivor {
                Surrender::Given(Box::new(parcel))
            } else {
                Surrender::MergedInto(parcel.survivor)
            });
        }
        if let Some(target) = self.store.merged_into(user).map_err(storage)? {
            return Ok(Surrender::MergedInto(target));
        }
        let Some(record) = load_record(&self.store, user).map_err(storage)? else {
            return Ok(Surrender::Unknown);
        };
        let log: MergeLog = self
            .store
            .merge_log(user)
            .map_err(storage)?
            .unwrap_or_default();
        let gone = self.given(user, &record, &log);
        let parcel = Parcel {
            survivor,
            record,
            log,
        };
        self.write(Store::surrender_write(survivor, &gone, &parcel).map_err(storage)?)
            .await?;
        self.account(&parcel.record, true);
        Ok(Surrender::Given(Box::new(parcel)))
    }

    /// Finishes giving `user` up: forgets the parcel when the survivor took it
    /// (`absorbed`), or puts the user back as it was. Settling twice does nothing.
    pub async fn settle(&self, user: u64, absorbed: bool) -> Result<(), ActorError> {
        let _held = self.registry.hold(user).await?;
        let Some(parcel) = self.store.parcel::<Parcel>(user).map_err(storage)? else {
            return Ok(());
        };
        if absorbed {
            return self.write(Store::confirm_write(user)).await;
        }
        let gone = self.given(user, &parcel.record, &parcel.log);
        self.write(Store::restore_write(&gone, &parcel.record, &parcel.log).map_err(storage)?)
            .await?;
        self.account(&parcel.record, false);
        info!(
            user,
            survivor = parcel.survivor,
            "user given back: its survivor refused it"
        );
        Ok(())
    }

    /// At the survivor's node: takes in a user whose transfer was cut short; returns
    /// whether the survivor has it (now or from before).
    pub async fn absorb_parcel(&self, user: u64, parcel: Parcel) -> Result<bool, ActorError> {
        let survivor = parcel.survivor;
        let users = [survivor, user].map(LockKey::User);
        let _locked = self.locks.lock(users.into_iter().collect()).await;
        let log: MergeLog = self
            .store
            .merge_log(survivor)
            .map_err(storage)?
            .unwrap_or_default();
        if log.absorbed_users().contains(&user) {
            return Ok(true);
        }
        if !self.registry.has_record(survivor)? {
            return Ok(false);
        }
        let cause = parcel
            .record
            .identities
            .first()
            .cloned()
            .unwrap_or_default();
        let plan = MergePlan {
            absorbed: vec![AbsorbedUser {
                user,
                record: parcel.record,
                log: parcel.log,
                cause,
                remote: true,
                repoint: Vec::new(),
            }],
            ..MergePlan::default()
        };
        let outcome = self.merge_durably(survivor, plan).await?;
        Ok(outcome.merged.contains(&user))
    }

    /// Finishes the transfers that were already waiting at the previous pass (`seen`):
    /// asks each survivor's node whether it has the user, and settles. Returns how many
    /// were finished.
    pub async fn finish_transfers(&self, seen: &mut BTreeSet<u64>) -> Result<usize, ActorError> {
        let waiting: BTreeSet<u64> = self.store.parcels().map_err(storage)?.into_iter().collect();
        let mut finished = 0;
        for &user in waiting.intersection(seen) {
            let Some(parcel) = self.store.parcel::<Parcel>(user).map_err(storage)? else {
                continue;
            };
            match self.peers.absorb(user, &parcel).await {
                Ok(absorbed) => {
                    self.settle(user, absorbed).await?;
                    finished += 1;
                }
                Err(e) => {
                    warn!(user, survivor = parcel.survivor, error = %e, "a user given to another node is not settled yet; retrying later")
                }
            }
        }
        *seen = waiting;
        Ok(finished)
    }
}
