//! Identity linking: decides which users a list of identities merges, applies the
//! guardrails that need no user state (blocklist, users per merge), takes the absorbed
//! users out of memory, and asks the survivor (the smallest `user_id`) to do the merge.
//!
//! Merges that share an identity or a user run one at a time, so that concurrent calls
//! that touch the same users stay free of deadlocks and order-independent; others run
//! side by side (`merge_locks.rs`), and one flush of sled covers all of them. Run one at
//! a time on the node, each behind a group commit that flushes sled, 50 identifies a
//! second next to saturating batches queued for 1 to over 5 s (BENCHMARKS.md, session
//! 14). Linking that changes nothing — every identity already belongs to the event's
//! user — takes no lock.
//!
//! In a cluster the survivor's node runs the merge: another node passes the call on.
//! Identities other nodes resolve are looked up and claimed there, and absorbed users
//! of other nodes are given up by their nodes (`transfer.rs`), then settled. Planning and
//! running one merge is `merge_plan.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, Stopwatch};
use crate::cluster::UserIds;
use crate::config::IdentitySection;
use crate::metrics::Metrics;
use crate::storage::{StorageError, Store};

use super::activity_totals::ActivityTotals;
use super::merge::{Refusal, RefusedLink};
use super::merge_locks::{Held, LockKey, MergeLocks};
use super::peers::Peers;
use super::record::Identity;
use super::registry::Registry;
use super::storage;
use super::ActorError;

/// How often a merge is planned again after losing a claim to a concurrent new user.
const MAX_ATTEMPTS: usize = 4;

/// Most redirects followed from a user to its final survivor (each leads to a smaller
/// id, so a chain ends; this bounds the work on a corrupt one).
const MAX_REDIRECTS: usize = 16;

/// What linking did, once it is durable and pushed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Linked {
    /// The user the identities now belong to (none when every one was refused).
    pub user: Option<u64>,
    /// Users absorbed.
    pub merged: Vec<u64>,
    /// Links refused.
    pub refused: Vec<RefusedLink>,
}

/// Who the index says owns an identity, and the user that is after merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) indexed: u64,
    pub(super) current: u64,
}

/// Links identities and merges their users.
pub struct IdentityService {
    pub(super) store: Store,
    pub(super) registry: Arc<Registry>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: IdentitySection,
    ids: UserIds,
    pub(super) peers: Arc<dyn Peers>,
    pub(super) locks: MergeLocks,
    /// Node-wide activity totals (users given to or taken from other nodes move theirs).
    pub(super) totals: Arc<ActivityTotals>,
    pub(super) metrics: Metrics,
}

/// What a link needs of the node: its store and actors, and the other nodes.
pub struct IdentityParts {
    /// Storage.
    pub store: Store,
    /// User actors.
    pub registry: Arc<Registry>,
    /// The node's clock.
    pub clock: Arc<dyn Clock>,
    /// Guardrails.
    pub config: IdentitySection,
    /// The ids this node gives new users.
    pub ids: UserIds,
    /// The other nodes.
    pub peers: Arc<dyn Peers>,
    /// Node-wide activity totals.
    pub totals: Arc<ActivityTotals>,
    /// Metrics.
    pub metrics: Metrics,
}

impl IdentityService {
    /// Creates the service.
    pub fn new(parts: IdentityParts) -> IdentityService {
        IdentityService {
            store: parts.store,
            registry: parts.registry,
            clock: parts.clock,
            config: parts.config,
            ids: parts.ids,
            peers: parts.peers,
            locks: MergeLocks::default(),
            totals: parts.totals,
            metrics: parts.metrics,
        }
    }

    /// Returns the users this node's index gives the identity: the indexed one and, after
    /// merges, the current one (asked of its node when another node owns it).
    pub(super) async fn owner(&self, identity: &Identity) -> Result<Option<Owner>, ActorError> {
        let indexed = if self.peers.resolves(identity) {
            let (id_type, id) = identity;
            self.store.user_for_identity(id_type, id).map_err(storage)?
        } else {
            self.peers.indexed(identity).await?
        };
        let Some(indexed) = indexed else {
            return Ok(None);
        };
        let current = self.current(indexed).await?;
        Ok(Some(Owner { indexed, current }))
    }

    /// Returns the user that `user` is now, after merges: the end of its chain of
    /// redirects, which a merge across nodes may spread over several nodes.
    pub async fn current(&self, mut user: u64) -> Result<u64, ActorError> {
        for _ in 0..MAX_REDIRECTS {
            let next = if self.peers.owns_user(user) {
                self.store
                    .merged_into(user)
                    .map_err(storage)?
                    .unwrap_or(user)
            } else {
                self.peers.current(user).await?
            };
            if next == user {
                return Ok(user);
            }
            user = next;
        }
        Ok(user)
    }

    /// Returns the user the index gives `identity`, creating one if nobody owns it. It may
    /// be a user absorbed since (a claim cut short by a crash): its actor then names the
    /// survivor, so callers that send to it follow that.
    pub fn resolve(&self, identity: &Identity) -> Result<u64, ActorError> {
        let (user, _created) = self
            .store
            .resolve_identity(&identity.0, &identity.1, || {
                self.ids
                    .assign(|| self.store.next_sequence())?
                    .ok_or(StorageError::IdsExhausted)
            })
            .map_err(storage)?;
        Ok(user)
    }

    /// Returns who owns each identity now (looked up once before a link decides).
    async fn owners(&self, identities: &[Identity]) -> Result<Vec<Option<Owner>>, ActorError> {
        let mut owners = Vec::with_capacity(identities.len());
        for identity in identities {
            owners.push(self.owner(identity).await?);
        }
        Ok(owners)
    }

    /// Locks a merge of `identities`: the identities, then the users that own them now,
    /// again as long as waiting for those let another merge move the identities to
    /// other users (the set only grows; a merge that still finds an owner it did not
    /// lock after `MAX_REDIRECTS` tries goes on, and its plan meets the change as it
    /// meets one made on another node).
    async fn lock_merge(&self, identities: &[Identity]) -> Result<Vec<Held>, ActorError> {
        let waited = Stopwatch::start();
        let keys = identities.iter().cloned().map(LockKey::Identity).collect();
        let mut held = self.locks.lock(keys).await;
        let mut users = BTreeSet::new();
        let mut users_held = Vec::new();
        for _ in 0..MAX_REDIRECTS {
            let owners: BTreeSet<u64> = self
                .owners(identities)
                .await?
                .into_iter()
                .flatten()
                .map(|owner| owner.current)
                .collect();
            if owners.is_subset(&users) {
                break;
            }
            // Released before a larger set is taken, so keys are still taken in order.
            users_held.clear();
            users.extend(owners);
            users_held = self
                .locks
                .lock(users.iter().map(|user| LockKey::User(*user)).collect())
                .await;
        }
        held.extend(users_held);
        self.metrics
            .identity_merge_lock_wait
            .observe(waited.elapsed_secs());
        Ok(held)
    }

    /// Says that `listed` (with `primary`, an event's own identity) are one person:
    /// links the new ones and merges their users into the smallest `user_id`. When that
    /// user lives on another node, that node does it (`delegated` says this node was
    /// asked by another, and does not pass it on again).
    pub async fn link(
        &self,
        primary: Option<&Identity>,
        listed: &[Identity],
        delegated: bool,
    ) -> Result<Linked, ActorError> {
        let primary_blocked = primary.is_some_and(|(_, id)| self.config.is_blocked(id));
        let mut identities: Vec<Identity> = primary.into_iter().cloned().collect();
        let (blocked, linkable): (Vec<Identity>, Vec<Identity>) = listed
            .iter()
            .filter(|identity| Some(*identity) != primary)
            .cloned()
            .partition(|(_, id)| self.config.is_blocked(id));
        for identity in linkable {
            if !identities.contains(&identity) {
                identities.push(identity);
            }
        }
        if !primary_blocked {
            let owners = self.owners(&identities).await?;
            if let Some(user) = already_linked(&owners).filter(|_| blocked.is_empty()) {
                return Ok(Linked {
                    user: Some(user),
                    merged: Vec::new(),
                    refused: Vec::new(),
                });
            }
            let smallest = owners.iter().flatten().map(|owner| owner.current).min();
            if let Some(survivor) = smallest.filter(|user| !self.peers.owns_user(*user)) {
                if delegated {
                    // The users moved while the call was passed on: the caller retries.
                    return Err(ActorError::Moved(survivor));
                }
                return self.peers.link_at(survivor, primary, listed).await;
            }
        }
        let now = self.clock.now();
        let refusal = |identity: Identity| RefusedLink {
            at: now,
            identity,
            reason: Refusal::Blocklisted,
            owner: None,
        };
        let refused: Vec<RefusedLink> = if primary_blocked {
            identities.truncate(1);
            identities.iter().cloned().map(refusal).collect()
        } else {
            blocked.into_iter().map(refusal).collect()
        };
        let _locked = self.lock_merge(&identities).await?;
        let mut linked = Linked {
            user: None,
            merged: Vec::new(),
            refused: Vec::new(),
        };
        for attempt in 0..MAX_ATTEMPTS {
            let plan_refused = if attempt == 0 {
                refused.clone()
            } else {
                Vec::new()
            };
            let planned = self
                .plan(
                    &identities,
                    primary.is_some(),
                    primary_blocked,
                    plan_refused,
                )
                .await?;
            let Some(user) = planned.survivor else {
                linked.refused = refused;
                break;
            };
            let outcome = self
                .merge_into(user, planned.plan, planned.holds, &planned.remote)
                .await?;
            linked.user = Some(user);
            linked.merged.extend(outcome.merged);
            linked.refused.extend(outcome.refused);
            if outcome.conflicts + planned.conflicts == 0 {
                break;
            }
        }
        Ok(linked)
    }
}

/// Returns the user every identity already belongs to, directly, if there is one.
fn already_linked(owners: &[Option<Owner>]) -> Option<u64> {
    let mut user = None;
    for owner in owners {
        match owner {
            Some(owner)
                if owner.indexed == owner.current
                    && user.unwrap_or(owner.current) == owner.current =>
            {
                user = Some(owner.current);
            }
            _ => return None,
        }
    }
    user
}
