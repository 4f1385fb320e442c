//! `[identity]`: the guardrails on linking identities and merging users.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[identity]`: limits that keep junk identities from gluing strangers together.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// Most identities of one type a user may hold, by type; a link past it is refused.
    pub max_per_type: BTreeMap<String, usize>,
    /// The limit for a type `max_per_type` does not name.
    pub default_max_per_type: usize,
    /// Values that never link (compared trimmed and case-insensitively).
    pub blocklist: Vec<String>,
    /// Most users one identify call or event may merge together.
    pub max_users_per_merge: usize,
    /// Refused links remembered per user in its merge log (the newest are kept).
    pub max_logged_refusals: usize,
}

impl Default for IdentitySection {
    fn default() -> Self {
        IdentitySection {
            max_per_type: [
                ("user_id", 1),
                ("email", 5),
                ("facebook", 2),
                ("device_id", 20),
                ("cookie", 100),
            ]
            .into_iter()
            .map(|(t, n)| (t.to_owned(), n))
            .collect(),
            default_max_per_type: 100,
            blocklist: [
                "",
                "null",
                "nil",
                "none",
                "undefined",
                "0",
                "-1",
                "anonymous",
                "guest",
                "unknown",
                "n/a",
                "na",
                "test",
                "[object object]",
            ]
            .map(String::from)
            .to_vec(),
            max_users_per_merge: 50,
            max_logged_refusals: 100,
        }
    }
}

impl IdentitySection {
    /// Returns the most identities of `id_type` one user may hold.
    pub fn limit(&self, id_type: &str) -> usize {
        self.max_per_type
            .get(id_type)
            .copied()
            .unwrap_or(self.default_max_per_type)
    }

    /// Returns whether `id` is a junk value that never links.
    pub fn is_blocked(&self, id: &str) -> bool {
        let id = id.trim();
        self.blocklist
            .iter()
            .any(|junk| junk.trim().eq_ignore_ascii_case(id))
    }

    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_users_per_merge < 2 {
            problems.push("identity.max_users_per_merge must be at least 2".into());
        }
        if self.default_max_per_type == 0 || self.max_per_type.values().any(|n| *n == 0) {
            problems.push("identity limits per type must be above 0".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_values_are_blocked_whatever_their_case_and_spaces() {
        let identity = IdentitySection::default();
        for junk in ["null", " NULL ", "Undefined", "", "anonymous", "0"] {
            assert!(identity.is_blocked(junk), "{junk:?}");
        }
        assert!(!identity.is_blocked("a@b.com"));
        assert_eq!(identity.limit("user_id"), 1);
        assert_eq!(identity.limit("pager"), 100);
    }
}
