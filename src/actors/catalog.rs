//! The segment catalog: every segment's definition and compiled rule, shared read-only
//! with user actors through a cheap `Arc` snapshot, plus each segment's backfill status.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;
use crate::rules::Rule;

/// A segment as persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentDef {
    /// Its id.
    pub id: u64,
    /// Its unique name.
    pub name: String,
    /// The rule text.
    pub rule: String,
    /// Free text, if any.
    pub description: Option<String>,
    /// When it was created (node clock).
    pub created_at: Timestamp,
    /// When it last changed (node clock).
    pub updated_at: Timestamp,
    /// False while its rule still has to be evaluated over every user.
    pub ready: bool,
}

/// A segment with its compiled rule.
#[derive(Debug)]
pub struct Segment {
    /// The definition.
    pub def: SegmentDef,
    /// The compiled rule.
    pub rule: Rule,
}

/// An immutable view of every segment, ascending by id.
pub type Segments = Arc<BTreeMap<u64, Arc<Segment>>>;

/// The shared catalog.
#[derive(Default)]
pub struct Catalog {
    segments: RwLock<Segments>,
}

impl Catalog {
    /// Returns the current segments.
    pub fn snapshot(&self) -> Segments {
        match self.segments.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces (or adds) one segment.
    pub fn put(&self, segment: Segment) {
        self.update(|map| {
            map.insert(segment.def.id, Arc::new(segment));
        });
    }

    /// Removes one segment.
    pub fn remove(&self, id: u64) {
        self.update(|map| {
            map.remove(&id);
        });
    }

    /// Marks a segment's backfill done.
    pub fn mark_ready(&self, id: u64) -> Option<SegmentDef> {
        let mut done = None;
        self.update(|map| {
            if let Some(current) = map.get(&id) {
                let mut def = current.def.clone();
                def.ready = true;
                let rule = current.rule.clone();
                done = Some(def.clone());
                map.insert(id, Arc::new(Segment { def, rule }));
            }
        });
        done
    }

    fn update(&self, change: impl FnOnce(&mut BTreeMap<u64, Arc<Segment>>)) {
        let mut guard = match self.segments.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut map = (**guard).clone();
        change(&mut map);
        *guard = Arc::new(map);
    }
}
