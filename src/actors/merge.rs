//! Merging users, the pure part: the merge log, why a link is refused, the per-type
//! identity limits, and folding an absorbed user's record into the survivor's.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::config::IdentitySection;
use crate::domain::Timestamp;

use super::record::{Identity, UserRecord};

/// Why a link between identities was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The value is on the blocklist of junk values.
    Blocklisted,
    /// The user would hold more identities of that type than allowed.
    LimitReached,
    /// The call would merge more users than allowed at once.
    TooManyUsers,
}

impl Refusal {
    /// Returns the reason as it appears in the API and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Blocklisted => "blocklisted",
            Refusal::LimitReached => "limit_reached",
            Refusal::TooManyUsers => "too_many_users",
        }
    }
}

/// One user absorbed into another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeEntry {
    /// When the merge happened (node clock).
    pub at: Timestamp,
    /// The user that absorbed it.
    pub survivor: u64,
    /// The user absorbed.
    pub absorbed: u64,
    /// The identity, listed with the survivor's, that the absorbed user owned.
    pub identity: Identity,
}

/// A link that was not made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusedLink {
    /// When it was refused.
    pub at: Timestamp,
    /// The identity that was not linked.
    pub identity: Identity,
    /// Why.
    pub reason: Refusal,
    /// The user that owns the identity, when another one does.
    pub owner: Option<u64>,
}

/// The merges that formed a user, and the links refused for it (newest kept).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeLog {
    /// Every merge, oldest first, including those of users absorbed since.
    pub merges: Vec<MergeEntry>,
    /// Refused links, oldest first.
    pub refused: VecDeque<RefusedLink>,
}

impl MergeLog {
    /// Records a refusal unless the same identity was already refused for the same
    /// reason; keeps the newest `keep`. Returns whether the log changed.
    pub fn refuse(&mut self, link: RefusedLink, keep: usize) -> bool {
        let known = self
            .refused
            .iter()
            .any(|r| r.identity == link.identity && r.reason == link.reason);
        if known || keep == 0 {
            return false;
        }
        if self.refused.len() >= keep {
            self.refused.pop_front();
        }
        self.refused.push_back(link);
        true
    }

    /// Takes in an absorbed user's log, keeping time order.
    pub fn absorb(&mut self, other: MergeLog, keep: usize) {
        self.merges.extend(other.merges);
        self.merges.sort_by_key(|m| m.at);
        for link in other.refused {
            self.refuse(link, keep);
        }
        self.refused.make_contiguous().sort_by_key(|r| r.at);
    }

    /// Returns every user this one has absorbed, directly or through a chain.
    pub fn absorbed_users(&self) -> Vec<u64> {
        self.merges.iter().map(|m| m.absorbed).collect()
    }
}

fn counts(identities: &[Identity]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for (id_type, _) in identities {
        *counts.entry(id_type.as_str()).or_insert(0) += 1;
    }
    counts
}

/// Returns whether a user holding `held` may also take `more` under the per-type limits
/// (identities already held count once).
pub fn within_limits(held: &[Identity], more: &[Identity], limits: &IdentitySection) -> bool {
    let mut all = held.to_vec();
    all.extend(more.iter().filter(|i| !held.contains(i)).cloned());
    let fits = counts(&all)
        .into_iter()
        .all(|(id_type, n)| n <= limits.limit(id_type));
    fits
}

impl UserRecord {
    /// Folds an absorbed user into this one: state by the rule engine's merge,
    /// identities and remembered `event_id`s united. Membership and the next deadline
    /// are left for the caller to re-evaluate.
    pub fn absorb(&mut self, other: UserRecord, now: Timestamp, retention_ms: i64) {
        self.state.absorb(&other.state, now, retention_ms);
        for identity in other.identities {
            if !self.identities.contains(&identity) {
                self.identities.push(identity);
            }
        }
        self.event_ids.absorb(other.event_ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Event, DAY_MS};

    fn id(id_type: &str, id: &str) -> Identity {
        (id_type.into(), id.into())
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn limits_count_each_identity_once() {
        let limits = IdentitySection::default();
        let held = [id("user_id", "1"), id("cookie", "a")];
        assert!(within_limits(&held, &[id("user_id", "1")], &limits));
        assert!(!within_limits(&held, &[id("user_id", "2")], &limits));
        let emails: Vec<Identity> = (0..5).map(|i| id("email", &i.to_string())).collect();
        assert!(within_limits(&held, &emails, &limits));
        assert!(!within_limits(&emails, &[id("email", "x")], &limits));
    }

    #[test]
    fn a_refusal_is_logged_once_and_the_newest_are_kept() {
        let mut log = MergeLog::default();
        let link = |n: &str, at| RefusedLink {
            at: t(at),
            identity: id("email", n),
            reason: Refusal::LimitReached,
            owner: None,
        };
        assert!(log.refuse(link("a", 1), 2));
        assert!(!log.refuse(link("a", 2), 2));
        assert!(log.refuse(link("b", 3), 2));
        assert!(log.refuse(link("c", 4), 2));
        let kept: Vec<&str> = log.refused.iter().map(|r| r.identity.1.as_str()).collect();
        assert_eq!(kept, ["b", "c"]);
    }

    #[test]
    fn logs_of_a_chain_keep_time_order() {
        let entry = |at, survivor, absorbed| MergeEntry {
            at: t(at),
            survivor,
            absorbed,
            identity: id("email", "e"),
        };
        let mut a = MergeLog {
            merges: vec![entry(5, 1, 4)],
            ..MergeLog::default()
        };
        let b = MergeLog {
            merges: vec![entry(3, 2, 3)],
            ..MergeLog::default()
        };
        a.absorb(b, 10);
        assert_eq!(a.absorbed_users(), vec![3, 4]);
    }

    #[test]
    fn absorbing_adds_counts_and_unites_identities_and_event_ids() {
        let now = t(10 * DAY_MS);
        let mut a = UserRecord::default();
        a.identities.push(id("cookie", "a"));
        a.event_ids.insert("e1");
        a.state
            .apply(&Event::new("view", t(DAY_MS)), now, 90 * DAY_MS);
        let mut b = a.clone();
        b.identities.push(id("email", "b"));
        b.event_ids.insert("e2");
        a.absorb(b, now, 90 * DAY_MS);
        assert_eq!(a.state.count("view", None, now), 2);
        assert_eq!(a.identities, vec![id("cookie", "a"), id("email", "b")]);
        assert!(!a.event_ids.insert("e2"), "b's ids are remembered");
    }
}
