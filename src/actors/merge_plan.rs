//! Planning and running one merge for `IdentityService::link`: who owns each identity,
//! which user survives (the smallest id), taking the absorbed users (held here, or given
//! up by their nodes), claiming new identities (here, or on the node that resolves them),
//! then asking the survivor to merge and settling what other nodes gave.

use tracing::warn;

use super::identity::{IdentityService, Owner};
use super::merge::{MergeLog, Refusal, RefusedLink};
use super::merge_step::{AbsorbedUser, Claim, MergePlan};
use super::messages::Merge;
use super::overlay::load_record;
use super::peers::Surrender;
use super::record::{Identity, UserRecord};
use super::registry::Hold;
use super::storage;
use super::ActorError;

impl IdentityService {
    /// Plans one merge of the owners of `identities` (the first is the event's own when
    /// `has_primary`; with `primary_only` nothing is linked). A user is created for the
    /// event's identity, or, when no identity has an owner, for the first. The absorbed
    /// users of this node are held out of memory until the merge is done; those of other
    /// nodes are given up by their nodes, and identities other nodes resolve are claimed
    /// there first.
    pub(super) async fn plan(
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
            let record = load_record(&self.store, user)
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
    pub(super) async fn merge_into(
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
pub(super) struct Planned {
    /// The user that absorbs the others (none when nobody owns any identity).
    pub(super) survivor: Option<u64>,
    /// What the survivor is asked to do.
    pub(super) plan: MergePlan,
    /// This node's absorbed users, kept out of memory.
    pub(super) holds: Vec<Hold>,
    /// What other nodes gave, to settle after the merge.
    pub(super) remote: Transfers,
    /// Users or identities taken by someone else meanwhile: plan again.
    pub(super) conflicts: usize,
}

/// What other nodes gave for a merge, to settle after it.
#[derive(Default)]
pub(super) struct Transfers {
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
    pub(super) refused: Vec<RefusedLink>,
    /// Claims lost to a concurrent new user.
    pub(super) conflicts: usize,
}
