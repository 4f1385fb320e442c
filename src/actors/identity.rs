//! Identity linking: decides which users a list of identities merges, applies the
//! guardrails that need no user state (blocklist, users per merge), takes the absorbed
//! users out of memory, and asks the survivor (the smallest `user_id`) to do the merge.
//!
//! Merges run one at a time on a node (they are rare, and this keeps concurrent calls
//! that touch the same users free of deadlocks and order-independent). Linking that
//! changes nothing — every identity already belongs to the event's user — takes no lock.

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::cluster::UserIds;
use crate::config::IdentitySection;
use crate::storage::{StorageError, Store};

use super::merge::{MergeLog, Refusal, RefusedLink};
use super::merge_step::{AbsorbedUser, Claim, MergePlan};
use super::messages::Merge;
use super::record::{Identity, UserRecord};
use super::registry::{Hold, Registry};
use super::ActorError;

/// How often a merge is planned again after losing a claim to a concurrent new user.
const MAX_ATTEMPTS: usize = 4;

/// What linking did, once it is durable and pushed.
#[derive(Debug)]
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
struct Owner {
    indexed: u64,
    current: u64,
}

/// Links identities and merges their users.
pub struct IdentityService {
    store: Store,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    config: IdentitySection,
    ids: UserIds,
    merges: Mutex<()>,
}

fn storage(e: StorageError) -> ActorError {
    ActorError::Storage(e.to_string())
}

impl IdentityService {
    /// Creates the service.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        config: IdentitySection,
        ids: UserIds,
    ) -> IdentityService {
        IdentityService {
            store,
            registry,
            clock,
            config,
            ids,
            merges: Mutex::new(()),
        }
    }

    fn owner(&self, (id_type, id): &Identity) -> Result<Option<Owner>, ActorError> {
        let Some(indexed) = self.store.user_for_identity(id_type, id).map_err(storage)? else {
            return Ok(None);
        };
        let current = self
            .store
            .merged_into(indexed)
            .map_err(storage)?
            .unwrap_or(indexed);
        Ok(Some(Owner { indexed, current }))
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
    fn already_linked(&self, identities: &[Identity]) -> Result<Option<u64>, ActorError> {
        let mut user = None;
        for identity in identities {
            match self.owner(identity)? {
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

    /// Says that `listed` (with `primary`, an event's own identity) are one person:
    /// links the new ones and merges their users into the smallest `user_id`.
    pub async fn link(
        &self,
        primary: Option<&Identity>,
        listed: &[Identity],
    ) -> Result<Linked, ActorError> {
        let primary_blocked = primary.is_some_and(|(_, id)| self.config.is_blocked(id));
        let mut identities: Vec<Identity> = primary.into_iter().cloned().collect();
        let (blocked, linkable): (Vec<Identity>, Vec<Identity>) = listed
            .iter()
            .filter(|identity| Some(*identity) != primary)
            .cloned()
            .partition(|(_, id)| self.config.is_blocked(id));
        let (linkable, remote): (Vec<Identity>, Vec<Identity>) = linkable
            .into_iter()
            .partition(|(id_type, id)| self.ids.resolves(id_type, id));
        for identity in linkable {
            if !identities.contains(&identity) {
                identities.push(identity);
            }
        }
        if blocked.is_empty() && remote.is_empty() && !primary_blocked {
            if let Some(user) = self.already_linked(&identities)? {
                return Ok(Linked {
                    user: Some(user),
                    merged: Vec::new(),
                    refused: Vec::new(),
                });
            }
        }
        let now = self.clock.now();
        let refusal = |reason: Refusal| {
            move |identity: Identity| RefusedLink {
                at: now,
                identity,
                reason,
                owner: None,
            }
        };
        let mut refused: Vec<RefusedLink> = if primary_blocked {
            identities.truncate(1);
            identities
                .iter()
                .cloned()
                .map(refusal(Refusal::Blocklisted))
                .collect()
        } else {
            blocked
                .into_iter()
                .map(refusal(Refusal::Blocklisted))
                .collect()
        };
        refused.extend(remote.into_iter().map(refusal(Refusal::OtherNode)));
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
            let (user, plan, holds) = self
                .plan(
                    &identities,
                    primary.is_some(),
                    primary_blocked,
                    plan_refused,
                )
                .await?;
            let Some(user) = user else {
                linked.refused = refused;
                break;
            };
            let outcome = self
                .registry
                .ask(user, |reply| Merge { plan, reply })
                .await?;
            // The absorbed users stay held until the merge is in storage: a message for
            // one of them then loads its redirect, never its old record.
            outcome
                .receipt
                .await
                .map_err(|_| ActorError::ShuttingDown)??;
            drop(holds);
            linked.user = Some(user);
            linked.merged.extend(outcome.merged);
            linked.refused.extend(outcome.refused);
            if outcome.conflicts == 0 {
                break;
            }
        }
        Ok(linked)
    }

    /// Plans one merge of the owners of `identities` (the first is the event's own when
    /// `has_primary`; with `primary_only` nothing is linked). A user is created for the
    /// event's identity, or, when no identity has an owner, for the first. Returns the
    /// survivor, the plan, and the holds that keep the absorbed users out of memory
    /// until it is done.
    async fn plan(
        &self,
        identities: &[Identity],
        has_primary: bool,
        primary_only: bool,
        refused: Vec<RefusedLink>,
    ) -> Result<(Option<u64>, MergePlan, Vec<Hold>), ActorError> {
        let mut plan = MergePlan {
            refused,
            ..MergePlan::default()
        };
        if primary_only {
            let mut user = None;
            if let Some(primary) = identities.first() {
                self.resolve(primary)?;
                user = self.owner(primary)?.map(|owner| owner.current);
            }
            return Ok((user, plan, Vec::new()));
        }
        let mut owners: Vec<(Identity, Option<Owner>)> = Vec::new();
        let mut users: Vec<u64> = Vec::new();
        let mut found = identities
            .iter()
            .map(|identity| self.owner(identity))
            .collect::<Result<Vec<_>, _>>()?;
        let anybody_owns = found.iter().any(Option::is_some);
        if let (Some(first), Some(slot)) = (identities.first(), found.first_mut()) {
            if slot.is_none() && (has_primary || !anybody_owns) {
                self.resolve(first)?;
                *slot = self.owner(first)?;
            }
        }
        for (identity, owner) in identities.iter().zip(found) {
            if let Some(owner) = owner.filter(|o| !users.contains(&o.current)) {
                if users.len() >= self.config.max_users_per_merge {
                    plan.refused.push(RefusedLink {
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
            return Ok((None, plan, Vec::new()));
        };
        let mut absorbed: Vec<u64> = users.into_iter().filter(|u| *u != survivor).collect();
        absorbed.sort_unstable();
        let mut holds = Vec::with_capacity(absorbed.len());
        for user in &absorbed {
            holds.push(self.registry.hold(*user).await?);
        }
        for user in absorbed {
            let mut record: UserRecord = self
                .store
                .load_user(user)
                .map_err(storage)?
                .unwrap_or_default();
            let log: MergeLog = self
                .store
                .merge_log(user)
                .map_err(storage)?
                .unwrap_or_default();
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
            plan.absorbed.push(AbsorbedUser {
                user,
                record,
                log,
                cause: cause.unwrap_or_default(),
            });
        }
        for (identity, owner) in owners {
            let claim = match owner {
                None => Some(None),
                Some(o) if o.current == survivor || o.indexed != o.current => Some(Some(o.indexed)),
                Some(_) => None,
            };
            if let Some(owner) = claim {
                plan.claims.push(Claim { identity, owner });
            }
        }
        Ok((Some(survivor), plan, holds))
    }
}
