//! Identity linking: decides which users a list of identities merges, applies the
//! guardrails that need no user state (blocklist, users per merge), takes the absorbed
//! users out of memory, and asks the survivor (the smallest `user_id`) to do the merge.
//!
//! Merges run one at a time on a node (they are rare, and this keeps concurrent calls
//! that touch the same users free of deadlocks and order-independent). Linking that
//! changes nothing — every identity already belongs to the event's user — takes no lock.
//!
//! In a cluster the survivor's node runs the merge: another node passes the call on.
//! Identities other nodes resolve are looked up and claimed there, and absorbed users
//! of other nodes are given up by their nodes (`transfer.rs`), then settled.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tracing::warn;

use crate::clock::Clock;
use crate::cluster::UserIds;
use crate::config::IdentitySection;
use crate::metrics::Metrics;
use crate::storage::{StorageError, Store};

use super::activity_totals::ActivityTotals;
use super::merge::{MergeLog, Refusal, RefusedLink};
use super::merge_step::{AbsorbedUser, Claim, MergePlan};
use super::messages::Merge;
use super::peers::{Peers, Surrender};
use super::record::{Identity, UserRecord};
use super::registry::{Hold, Registry};
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
    pub(super) merges: Mutex<()>,
    /// Node-wide activity totals (users given to or taken from other nodes move theirs).
    pub(super) totals: Arc<ActivityTotals>,
    pub(super) metrics: Metrics,
}

pub(super) fn storage(e: StorageError) -> ActorError {
    ActorError::Storage(e.to_string())
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
            merges: Mutex::new(()),
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

    /// Returns the user every identity already belongs to, directly, if there is one.
    async fn already_linked(&self, identities: &[Identity]) -> Result<Option<u64>, ActorError> {
        let mut user = None;
        for identity in identities {
            match self.owner(identity).await? {
                Some(owner)
                    if owner.indexed == owner.current
                        && user.unwrap_or(owner.current) == owner.current =>
                {
                    user = Some(owner.current);
                }
                _ => return Ok(None),
            }
        }
        Ok(user)
    }

    /// Returns the smallest user the identities belong to now, if another node owns it
    /// (that node coordinates the merge).
    async fn survivor_elsewhere(&self, identities: &[Identity]) -> Result<Option<u64>, ActorError> {
        let mut smallest: Option<u64> = None;
        for identity in identities {
            if let Some(owner) = self.owner(identity).await? {
                smallest = Some(smallest.map_or(owner.current, |s| s.min(owner.current)));
            }
        }
        Ok(smallest.filter(|user| !self.peers.owns_user(*user)))
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
        if blocked.is_empty() && !primary_blocked {
            if let Some(user) = self.already_linked(&identities).await? {
                return Ok(Linked {
                    user: Some(user),
                    merged: Vec::new(),
                    refused: Vec::new(),
                });
            }
        }
        if !primary_blocked {
            if let Some(survivor) = self.survivor_elsewhere(&identities).await? {
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
        let _one_merge_at_a_time = self.merges.lock().await;
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

    /// Plans one merge of the owners of `identities` (the first is the event's own when
    /// `has_primary`; with `primary_only` nothing is linked). A user is created for the
    /// event's identity, or, when no identity has an owner, for the first. The absorbed
    /// users of this node are held out of memory until the merge is done; those of other
    /// nodes are given up by their nodes, and identities other nodes resolve are claimed
    /// there first.
    async fn plan(
        &self,
        identities: &[Identity],
        has_primary: bool,
        primary_only: bool,
        refused: Vec<RefusedLink>,
    ) -> Result<Planned, ActorError> {
        let mut planned = Planned {
            survivor: None,
            plan: MergePlan {
                refused,
                ..MergePlan::default()
            },
            holds: Vec::new(),
            remote: Transfers::default(),
            conflicts: 0,
        };
        if primary_only {
            if let Some(primary) = identities.first() {
                self.resolve(primary)?;
                planned.survivor = self.owner(primary).await?.map(|owner| owner.current);
            }
            return Ok(planned);
        }
        let mut owners: Vec<(Identity, Option<Owner>)> = Vec::new();
        let mut users: Vec<u64> = Vec::new();
        let mut found = Vec::with_capacity(identities.len());
        for identity in identities {
            found.push(self.owner(identity).await?);
        }
        let anybody_owns = found.iter().any(Option::is_some);
        if let (Some(first), Some(slot)) = (identities.first(), found.first_mut()) {
            if slot.is_none() && (has_primary || !anybody_owns) && self.peers.resolves(first) {
                self.resolve(first)?;
                *slot = self.owner(first).await?;
            }
        }
        for (identity, owner) in identities.iter().zip(found) {
            if let Some(owner) = owner.filter(|o| !users.contains(&o.current)) {
                if users.len() >= self.config.max_users_per_merge {
                    planned.plan.refused.push(RefusedLink {
                        at: self.clock.now(),
                        identity: identity.clone(),
                        reason: Refusal::TooManyUsers,
                        owner: Some(owner.current),
                    });
                    continue;
                }
                users.push(owner.current);
            }
            owners.push((identity.clone(), owner));
        }
        let Some(&survivor) = users.iter().min() else {
            return Ok(planned);
        };
        if !self.peers.owns_user(survivor) {
            // Merged elsewhere since the call started: the caller retries.
            return Err(ActorError::Moved(survivor));
        }
        planned.survivor = Some(survivor);
        let mut absorbed: Vec<u64> = users.into_iter().filter(|u| *u != survivor).collect();
        absorbed.sort_unstable();
        for user in absorbed.iter().filter(|u| self.peers.owns_user(**u)) {
            planned.holds.push(self.registry.hold(*user).await?);
        }
        for user in absorbed {
            let Some((mut record, log, remote)) = self.take(user, survivor).await? else {
                planned.conflicts += 1;
                continue;
            };
            if remote {
                planned.remote.surrendered.push(user);
            }
            let mut cause = None;
            for (identity, owner) in &owners {
                if owner.is_some_and(|o| o.current == user) {
                    cause.get_or_insert_with(|| identity.clone());
                    if owner.is_some_and(|o| o.indexed == user)
                        && !record.identities.contains(identity)
                    {
                        record.identities.push(identity.clone());
                    }
                }
            }
            let repoint = record
                .identities
                .iter()
                .filter(|identity| self.peers.resolves(identity))
                .cloned()
                .collect();
            planned.plan.absorbed.push(AbsorbedUser {
                user,
                record,
                log,
                cause: cause.unwrap_or_default(),
                remote,
                repoint,
            });
        }
        for (identity, owner) in owners {
            let local = self.peers.resolves(&identity);
            let claim = match owner {
                None if local => Some(Claim {
                    identity,
                    owner: None,
                    remote: false,
                }),
                None => {
                    if self.peers.claim(&identity, survivor, false).await? {
                        planned.remote.claimed.push(identity.clone());
                        Some(Claim {
                            identity,
                            owner: Some(survivor),
                            remote: true,
                        })
                    } else {
                        planned.conflicts += 1;
                        None
                    }
                }
                Some(o) if local && (o.current == survivor || o.indexed != o.current) => {
                    Some(Claim {
                        identity,
                        owner: Some(o.indexed),
                        remote: false,
                    })
                }
                Some(_) => None,
            };
            planned.plan.claims.extend(claim);
        }
        Ok(planned)
    }

    /// Takes an absorbed user's record and log: from storage when this node owns it (it
    /// is held), else given up by its node. `None` when it is gone meanwhile.
    async fn take(
        &self,
        user: u64,
        survivor: u64,
    ) -> Result<Option<(UserRecord, MergeLog, bool)>, ActorError> {
        if self.peers.owns_user(user) {
            let record: UserRecord = self
                .store
                .load_user(user)
                .map_err(storage)?
                .unwrap_or_default();
            let log: MergeLog = self
                .store
                .merge_log(user)
                .map_err(storage)?
                .unwrap_or_default();
            return Ok(Some((record, log, false)));
        }
        Ok(match self.peers.surrender(user, survivor).await? {
            Surrender::Given(parcel) => Some((parcel.record, parcel.log, true)),
            Surrender::MergedInto(_) | Surrender::Unknown => None,
        })
    }

    /// Asks the survivor's actor to run `plan` and waits until the merge is durable.
    pub(super) async fn merge_durably(
        &self,
        survivor: u64,
        plan: MergePlan,
    ) -> Result<Merged, ActorError> {
        let outcome = self
            .registry
            .ask(survivor, |reply| Merge { plan, reply })
            .await?;
        outcome
            .receipt
            .await
            .map_err(|_| ActorError::ShuttingDown)??;
        Ok(Merged {
            merged: outcome.merged,
            refused: outcome.refused,
            conflicts: outcome.conflicts,
        })
    }

    /// Asks the survivor to run `plan`, waits until it is durable, then lets the held
    /// users go and settles what other nodes gave: users the survivor refused go back,
    /// identities claimed for links it refused are given back.
    async fn merge_into(
        &self,
        survivor: u64,
        plan: MergePlan,
        holds: Vec<Hold>,
        remote: &Transfers,
    ) -> Result<Merged, ActorError> {
        // The absorbed users stay held until the merge is in storage: a message for one
        // of them then loads its redirect, never its old record.
        let merged = self.merge_durably(survivor, plan).await;
        drop(holds);
        let absorbed = merged.as_ref().map_or(&[][..], |m| m.merged.as_slice());
        for user in &remote.surrendered {
            // A failure here is finished later by the giving node (`transfer.rs`).
            if let Err(e) = self.peers.settle(*user, absorbed.contains(user)).await {
                warn!(user, error = %e, "could not settle a user given by another node; it is settled later");
            }
        }
        for identity in &remote.claimed {
            let kept = merged
                .as_ref()
                .is_ok_and(|m| !m.refused.iter().any(|r| r.identity == *identity));
            if !kept {
                self.peers.claim(identity, survivor, true).await?;
            }
        }
        merged
    }
}

/// One planned merge.
struct Planned {
    /// The user that absorbs the others (none when nobody owns any identity).
    survivor: Option<u64>,
    plan: MergePlan,
    /// This node's absorbed users, kept out of memory.
    holds: Vec<Hold>,
    remote: Transfers,
    /// Users or identities taken by someone else meanwhile: plan again.
    conflicts: usize,
}

/// What other nodes gave for a merge, to settle after it.
#[derive(Default)]
struct Transfers {
    /// Users given up by their nodes.
    surrendered: Vec<u64>,
    /// Identities claimed at their nodes.
    claimed: Vec<Identity>,
}

/// What a merge did, once durable.
pub(super) struct Merged {
    /// Users absorbed.
    pub(super) merged: Vec<u64>,
    /// Links refused.
    refused: Vec<RefusedLink>,
    /// Claims lost to a concurrent new user.
    conflicts: usize,
}
