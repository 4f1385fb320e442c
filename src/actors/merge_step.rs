//! The survivor's side of a merge, run by its actor: check the per-type limits, take in
//! the absorbed users and the newly linked identities, re-evaluate every segment, and
//! persist it all in one atomic batch before the notifications are queued.

use std::collections::BTreeMap;

use crate::storage::{Absorbed, Store, UserWrite};

use super::committer::{nothing_to_do, Durability, Receipt};
use super::hub::Notification;
use super::journal::JournalStep;
use super::merge::{within_limits, MergeEntry, MergeLog, Refusal, RefusedLink};
use super::record::{Identity, UserRecord};
use super::step::{saved_whole, Saved};
use super::storage;
use super::user::UserContext;
use super::view::{activity_summaries, ActivitySummary};
use super::ActorError;

/// A user to absorb, taken out of memory by the coordinator.
#[derive(Debug)]
pub struct AbsorbedUser {
    /// Its id.
    pub user: u64,
    /// Its record (its known identities included).
    pub record: UserRecord,
    /// Its merge log.
    pub log: MergeLog,
    /// The listed identity it owned.
    pub cause: Identity,
    /// Given up by another node: its storage, totals and timers are that node's.
    pub remote: bool,
    /// Its identities this node resolves: their index entries now name the survivor
    /// (other nodes' entries keep naming it, and follow its redirect).
    pub repoint: Vec<Identity>,
}

/// An identity to link to the survivor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The identity.
    pub identity: Identity,
    /// Who the index says owns it now: nobody, the survivor, or an absorbed user.
    pub owner: Option<u64>,
    /// Resolved by another node, where it was claimed for the survivor already.
    pub remote: bool,
}

/// What the coordinator asks the survivor to do.
#[derive(Debug, Default)]
pub struct MergePlan {
    /// Users to absorb, ascending.
    pub absorbed: Vec<AbsorbedUser>,
    /// Identities to link.
    pub claims: Vec<Claim>,
    /// Links already refused (blocklist, too many users), to log.
    pub refused: Vec<RefusedLink>,
}

/// What a merge did.
#[derive(Debug)]
pub struct MergeOutcome {
    /// Users absorbed.
    pub merged: Vec<u64>,
    /// Links refused, including the plan's.
    pub refused: Vec<RefusedLink>,
    /// Claims lost to a concurrent new user: the coordinator plans again.
    pub conflicts: usize,
    /// Resolves once the merge is durable and pushed.
    pub receipt: Receipt,
}

/// Per-activity totals of several users together.
fn combined(
    parts: impl IntoIterator<Item = BTreeMap<String, ActivitySummary>>,
) -> BTreeMap<String, ActivitySummary> {
    let mut all: BTreeMap<String, ActivitySummary> = BTreeMap::new();
    for part in parts {
        for (name, summary) in part {
            let total = all.entry(name).or_insert(ActivitySummary {
                count: 0,
                last_at: None,
            });
            total.count += summary.count;
            total.last_at = total.last_at.max(summary.last_at);
        }
    }
    all
}

/// Runs `plan` on the survivor `id` whose record is `record` (of which storage holds
/// `saved`); a merge saves the survivor whole.
pub fn merge_step(
    shared: &UserContext,
    id: u64,
    record: &mut UserRecord,
    saved: &mut Saved,
    plan: MergePlan,
) -> Result<MergeOutcome, ActorError> {
    let now = shared.clock.now();
    let limits = &shared.identity;
    let mut log: MergeLog = shared
        .store
        .merge_log(id)
        .map_err(storage)?
        .unwrap_or_default();
    let mut refused = plan.refused;
    let mut held = record.identities.clone();
    let mut accepted = Vec::new();
    for absorbed in plan.absorbed {
        if within_limits(&held, &absorbed.record.identities, limits) {
            for identity in &absorbed.record.identities {
                if !held.contains(identity) {
                    held.push(identity.clone());
                }
            }
            accepted.push(absorbed);
        } else {
            refused.push(RefusedLink {
                at: now,
                identity: absorbed.cause,
                reason: Refusal::LimitReached,
                owner: Some(absorbed.user),
            });
        }
    }
    let mut claimed = Vec::new();
    let mut conflicts = 0;
    for claim in plan.claims {
        if held.contains(&claim.identity) {
            continue;
        }
        if !within_limits(&held, std::slice::from_ref(&claim.identity), limits) {
            refused.push(RefusedLink {
                at: now,
                identity: claim.identity,
                reason: Refusal::LimitReached,
                owner: claim.owner.filter(|owner| *owner != id),
            });
            continue;
        }
        let (id_type, value) = &claim.identity;
        if claim.remote
            || shared
                .store
                .claim_identity(id_type, value, claim.owner, id)
                .map_err(storage)?
        {
            held.push(claim.identity.clone());
            claimed.push(claim.identity);
        } else {
            conflicts += 1;
        }
    }
    let mut log_changed = false;
    for link in &refused {
        shared
            .metrics
            .identity_links_refused
            .with_label_values(&[link.reason.as_str()])
            .inc();
        log_changed |= log.refuse(link.clone(), limits.max_logged_refusals);
    }
    if accepted.is_empty() && claimed.is_empty() {
        let receipt = if log_changed {
            let writes = Store::merge_log_write(id, &log).map_err(storage)?;
            shared
                .committer
                .submit(writes, None, Vec::new(), Durability::Flushed)
        } else {
            nothing_to_do()
        };
        return Ok(MergeOutcome {
            merged: Vec::new(),
            refused,
            conflicts,
            receipt,
        });
    }

    let before_segments = record.segments.clone();
    let old_due = record.next_due;
    // Users given up by other nodes left those nodes' totals: here they are added.
    let before_totals = combined(
        std::iter::once(activity_summaries(record, now)).chain(
            accepted
                .iter()
                .filter(|a| !a.remote)
                .map(|a| activity_summaries(&a.record, now)),
        ),
    );
    let mut notifications = Vec::new();
    let mut removed = Vec::new();
    let mut entries = Vec::new();
    for absorbed in &accepted {
        entries.push(MergeEntry {
            at: now,
            survivor: id,
            absorbed: absorbed.user,
            identity: absorbed.cause.clone(),
        });
        notifications.push(Notification {
            user_id: absorbed.user,
            in_segments: Vec::new(),
            out_segments: absorbed.record.segments.iter().copied().collect(),
            at: now,
            merged_into: Some(id),
            relayed: false,
        });
        if absorbed.remote {
            // Its node removed and redirected it when it gave it up.
            continue;
        }
        removed.push(Absorbed {
            user: absorbed.user,
            due: absorbed.record.next_due,
            segments: absorbed.record.segments.iter().copied().collect(),
            identities: absorbed.repoint.clone(),
            earlier: absorbed.log.absorbed_users(),
        });
    }
    let merged: Vec<u64> = accepted.iter().map(|a| a.user).collect();
    let segments = shared.catalog.snapshot();
    let keep = limits.max_logged_refusals;
    let effects = record.rebuild(&segments, now, shared.retention_ms, |record| {
        record.identities.extend(claimed);
        for absorbed in accepted {
            log.absorb(absorbed.log, keep);
            record.absorb(absorbed.record, now, shared.retention_ms);
        }
    });
    // After the absorbed users' own histories, so that a chain reads in order.
    log.merges.extend(entries);
    let write = UserWrite::between(
        saved.due,
        record.next_due,
        &before_segments,
        &record.segments,
    );
    let writes = Store::merge_write(id, record, &write, &removed, &log).map_err(storage)?;
    saved_whole(shared, id, record, saved);

    let timers_before =
        i64::from(old_due.is_some()) + removed.iter().filter(|r| r.due.is_some()).count() as i64;
    shared
        .metrics
        .timers_pending
        .add(i64::from(record.next_due.is_some()) - timers_before);
    shared.metrics.rule_evaluations.inc_by(effects.evaluations);
    shared.metrics.identity_merges.inc_by(merged.len() as u64);
    shared
        .totals
        .adjust(&before_totals, &activity_summaries(record, now));
    notifications.extend(
        effects
            .changes
            .into_iter()
            .map(|change| change.notification(id)),
    );
    Ok(MergeOutcome {
        merged,
        refused,
        conflicts,
        receipt: shared.committer.submit(
            writes,
            Some(JournalStep::Saved(id)),
            notifications,
            Durability::Flushed,
        ),
    })
}
