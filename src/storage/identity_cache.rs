//! A bounded in-memory copy of the hottest part of the identity index (identity key →
//! user), so resolving an event's identity does not walk sled's tree every time.
//!
//! Every write of the index goes through `Store`, which tells this cache after writing.
//! A lookup that missed reads storage and then fills the cache, unless a write of the
//! index happened in between (the generation moved): what it read may be stale then.
//!
//! Bounded in two generations: when the current map is full it becomes the previous one
//! and the one before is dropped; a hit in the previous map moves the entry back. So the
//! identities used since the last turnover stay, at most twice `capacity` entries.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::sync::locked;

/// Identity keys (as stored) and their users.
type Entries = HashMap<Box<[u8]>, u64>;

/// The cache.
#[derive(Debug)]
pub struct IdentityCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Moves at every write of the index.
    generation: u64,
    current: Entries,
    previous: Entries,
}

/// What a lookup saw of the index when it missed; pass it to `fill`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(u64);

impl IdentityCache {
    /// Returns an empty cache keeping up to `capacity` entries per generation.
    pub fn new(capacity: usize) -> IdentityCache {
        IdentityCache {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// Returns the cached user of `key`, or, on a miss, the generation to `fill` with.
    pub fn get(&self, key: &[u8]) -> Result<u64, Generation> {
        let mut inner = locked(&self.inner);
        if let Some(user) = inner.current.get(key) {
            return Ok(*user);
        }
        match inner.previous.remove_entry(key) {
            Some((key, user)) => {
                self.insert(&mut inner, key, user);
                Ok(user)
            }
            None => Err(Generation(inner.generation)),
        }
    }

    /// Caches `user` as the owner of `key`, read from storage after a miss that saw
    /// `seen`; dropped if the index was written since.
    pub fn fill(&self, key: &[u8], user: u64, seen: Generation) {
        let mut inner = locked(&self.inner);
        if inner.generation == seen.0 {
            self.insert(&mut inner, key.into(), user);
        }
    }

    /// Forgets `key`, written in storage just now.
    pub fn forget(&self, key: &[u8]) {
        let mut inner = locked(&self.inner);
        inner.generation += 1;
        inner.current.remove(key);
        inner.previous.remove(key);
    }

    /// Forgets everything (many keys of the index were written at once).
    pub fn forget_all(&self) {
        let mut inner = locked(&self.inner);
        inner.generation += 1;
        inner.current = Entries::new();
        inner.previous = Entries::new();
    }

    fn insert(&self, inner: &mut Inner, key: Box<[u8]>, user: u64) {
        if inner.current.len() >= self.capacity {
            inner.previous = std::mem::take(&mut inner.current);
        }
        inner.current.insert(key, user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_key_is_served_until_it_is_forgotten() {
        let cache = IdentityCache::new(10);
        let seen = cache.get(b"a").unwrap_err();
        cache.fill(b"a", 7, seen);
        assert_eq!(cache.get(b"a"), Ok(7));
        cache.forget(b"a");
        assert!(cache.get(b"a").is_err());
    }

    #[test]
    fn a_write_between_the_miss_and_the_fill_keeps_the_stale_read_out() {
        let cache = IdentityCache::new(10);
        let seen = cache.get(b"a").unwrap_err();
        cache.forget(b"a");
        cache.fill(b"a", 7, seen);
        assert!(cache.get(b"a").is_err());
        let seen = cache.get(b"b").unwrap_err();
        cache.forget_all();
        cache.fill(b"b", 8, seen);
        assert!(cache.get(b"b").is_err());
    }

    #[test]
    fn it_holds_at_most_two_generations_and_keeps_what_is_used() {
        let cache = IdentityCache::new(2);
        for (key, user) in [(b"a", 1), (b"b", 2), (b"c", 3)] {
            let seen = cache.get(key).unwrap_err();
            cache.fill(key, user, seen);
        }
        // "a" and "b" turned over when "c" came; a hit on "a" brings it back.
        assert_eq!(cache.get(b"a"), Ok(1));
        for (key, user) in [(b"d", 4), (b"e", 5)] {
            let seen = cache.get(key).unwrap_err();
            cache.fill(key, user, seen);
        }
        let inner = locked(&cache.inner);
        assert!(inner.current.len() <= 2 && inner.previous.len() <= 2);
        drop(inner);
        assert!(cache.get(b"b").is_err(), "unused for two turnovers");
        assert_eq!(cache.get(b"e"), Ok(5));
    }
}
