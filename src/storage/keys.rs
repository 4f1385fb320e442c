//! The key layout of the one sled tree: a prefix byte, then big-endian ids, so that
//! related keys sort together and range scans follow id or time order.
//!
//! | prefix | key after it | value |
//! | --- | --- | --- |
//! | `i` | id_type, 0x00, id | user id (u64 BE) |
//! | `u` | user id | user record (codec) |
//! | `t` | due (ordered i64), user id | empty: the durable timer index |
//! | `m` | segment id, user id | empty: one user's membership, as write sets and handoff speak of it; stored as `b` (left only in data dirs from before chunks, converted at open) |
//! | `b` | segment id, user id / 1024 | bitmap of the segment's members among those 1,024 users (`member_chunks`) |
//! | `s` | segment id | segment definition (codec) |
//! | `c` | name | node metadata (dev clock, counters) |
//! | `a` | absorbed user id | survivor user id (u64 BE): the user it was merged into |
//! | `l` | user id | merge log (codec) |
//! | `o` | user id | a user given up to a survivor on another node, until it has it (codec) |
//! | `j` | sequence number | one journal entry: the events of one group commit (codec) |
//! | `n` | user id | the user's timer when newer than its record (codec) |

use crate::domain::Timestamp;

pub(crate) const IDENTITY: u8 = b'i';
pub(crate) const USER: u8 = b'u';
pub(crate) const TIMER: u8 = b't';
pub(crate) const MEMBER: u8 = b'm';
pub(crate) const MEMBER_CHUNK: u8 = b'b';
pub(crate) const SEGMENT: u8 = b's';
pub(crate) const META: u8 = b'c';
pub(crate) const ABSORBED: u8 = b'a';
pub(crate) const MERGE_LOG: u8 = b'l';
pub(crate) const OUTBOX: u8 = b'o';
pub(crate) const JOURNAL: u8 = b'j';
pub(crate) const OVERLAY: u8 = b'n';

pub(crate) fn identity(id_type: &str, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + id_type.len() + id.len());
    key.push(IDENTITY);
    key.extend_from_slice(id_type.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

pub(crate) fn with_id(prefix: u8, id: u64) -> [u8; 9] {
    let mut key = [prefix; 9];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

pub(crate) fn pair(prefix: u8, first: u64, second: u64) -> [u8; 17] {
    let mut key = [prefix; 17];
    key[1..9].copy_from_slice(&first.to_be_bytes());
    key[9..].copy_from_slice(&second.to_be_bytes());
    key
}

/// Maps an instant to a u64 that sorts the same way (flips the sign bit).
pub(crate) fn ordered_time(at: Timestamp) -> u64 {
    (at.as_millis() as u64) ^ (1 << 63)
}

pub(crate) fn time_of(ordered: u64) -> Timestamp {
    Timestamp::from_millis((ordered ^ (1 << 63)) as i64)
}

pub(crate) fn timer(due: Timestamp, user: u64) -> [u8; 17] {
    pair(TIMER, ordered_time(due), user)
}

pub(crate) fn meta(name: &str) -> Vec<u8> {
    let mut key = vec![META];
    key.extend_from_slice(name.as_bytes());
    key
}

/// Reads the big-endian u64 at `offset` of `bytes`, if there is one.
pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let raw: [u8; 8] = bytes.get(offset..offset + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_sort_by_time_then_user() {
        let early = timer(Timestamp::from_millis(-5), 9);
        let later = timer(Timestamp::from_millis(3), 1);
        let latest = timer(Timestamp::from_millis(3), 2);
        assert!(early < later && later < latest);
        assert_eq!(
            time_of(u64_at(&early, 1).unwrap()),
            Timestamp::from_millis(-5)
        );
    }

    #[test]
    fn identity_keys_separate_type_and_id() {
        assert_ne!(identity("ab", "c"), identity("a", "bc"));
    }
}
