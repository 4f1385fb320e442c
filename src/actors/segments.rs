//! Segment lifecycle: create, change, delete, and backfill a rule over every user.
//!
//! Writes are serialised by one lock so names stay unique. A new or changed rule is
//! marked not ready, evaluated over every stored user in the background (users not in
//! memory are loaded), then marked ready. A backfill cut short by a crash runs again at
//! start-up.

use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::{error, info};

use crate::clock::Clock;
use crate::rules::{compile, Limits, RuleError};
use crate::storage::{StorageError, Store};

use super::catalog::{Catalog, Segment, SegmentDef};
use super::record::UserOp;
use super::registry::{Registry, Sweep};
use super::ActorError;

/// Why a segment operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The rule does not compile.
    #[error("invalid rule: {0}")]
    InvalidRule(RuleError),
    /// Another segment has this name.
    #[error("a segment named `{0}` already exists")]
    NameTaken(String),
    /// No segment has this id.
    #[error("segment {0} not found")]
    NotFound(u64),
    /// A name is empty or too long.
    #[error("{0}")]
    InvalidName(String),
    /// The actors or storage failed.
    #[error(transparent)]
    Actor(#[from] ActorError),
}

/// A change to a segment; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct SegmentPatch {
    /// New name.
    pub name: Option<String>,
    /// New rule text.
    pub rule: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
}

/// Creates, changes and deletes segments.
pub struct SegmentService {
    store: Store,
    catalog: Arc<Catalog>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    writes: Mutex<()>,
}

fn storage(e: StorageError) -> SegmentError {
    SegmentError::Actor(super::storage(e))
}

fn check_name(name: &str) -> Result<(), SegmentError> {
    if name.trim().is_empty() || name.chars().count() > 256 {
        return Err(SegmentError::InvalidName(
            "name must be 1 to 256 characters".into(),
        ));
    }
    Ok(())
}

impl SegmentService {
    /// Creates the service.
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(SegmentService {
            store,
            catalog,
            registry,
            clock,
            limits,
            writes: Mutex::new(()),
        })
    }

    /// Checks a rule without saving anything.
    pub fn validate(&self, rule: &str) -> Result<(), SegmentError> {
        compile(rule, &self.limits)
            .map(|_| ())
            .map_err(SegmentError::InvalidRule)
    }

    /// Loads every stored segment into the catalog and resumes unfinished backfills.
    pub fn load(self: &Arc<Self>) -> Result<(), SegmentError> {
        for (_, def) in self.store.segments::<SegmentDef>().map_err(storage)? {
            match compile(&def.rule, &self.limits) {
                Ok(rule) => {
                    let resume = !def.ready;
                    let id = def.id;
                    self.catalog.put(Segment { def, rule });
                    if resume {
                        self.spawn_backfill(id);
                    }
                }
                Err(e) => {
                    error!(segment = def.id, error = %e, "stored rule no longer compiles; segment skipped")
                }
            }
        }
        Ok(())
    }

    /// Creates a segment and starts its backfill.
    pub async fn create(
        self: &Arc<Self>,
        name: String,
        rule: String,
        description: Option<String>,
    ) -> Result<SegmentDef, SegmentError> {
        check_name(&name)?;
        let compiled = compile(&rule, &self.limits).map_err(SegmentError::InvalidRule)?;
        let _write = self.writes.lock().await;
        self.ensure_free(&name, None)?;
        let now = self.clock.now();
        let def = SegmentDef {
            id: self.store.next_segment_id().map_err(storage)?,
            name,
            rule,
            description,
            created_at: now,
            updated_at: now,
            ready: false,
        };
        self.store.save_segment(def.id, &def).map_err(storage)?;
        self.store.flush().await.map_err(storage)?;
        self.catalog.put(Segment {
            def: def.clone(),
            rule: compiled,
        });
        self.spawn_backfill(def.id);
        Ok(def)
    }

    /// Changes a segment; a new rule is backfilled.
    pub async fn update(
        self: &Arc<Self>,
        id: u64,
        patch: SegmentPatch,
    ) -> Result<SegmentDef, SegmentError> {
        let _write = self.writes.lock().await;
        let current = self
            .catalog
            .snapshot()
            .get(&id)
            .cloned()
            .ok_or(SegmentError::NotFound(id))?;
        let mut def = current.def.clone();
        if let Some(name) = patch.name {
            check_name(&name)?;
            self.ensure_free(&name, Some(id))?;
            def.name = name;
        }
        if let Some(description) = patch.description {
            def.description = description;
        }
        let new_rule = match patch.rule {
            Some(rule) if rule != def.rule => {
                let compiled = compile(&rule, &self.limits).map_err(SegmentError::InvalidRule)?;
                def.rule = rule;
                def.ready = false;
                Some(compiled)
            }
            _ => None,
        };
        def.updated_at = self.clock.now();
        self.store.save_segment(id, &def).map_err(storage)?;
        self.store.flush().await.map_err(storage)?;
        let backfill = new_rule.is_some();
        let rule = new_rule.unwrap_or_else(|| current.rule.clone());
        self.catalog.put(Segment {
            def: def.clone(),
            rule,
        });
        if backfill {
            self.spawn_backfill(id);
        }
        Ok(def)
    }

    /// Deletes a segment; its members leave it (and are told).
    pub async fn delete(&self, id: u64) -> Result<(), SegmentError> {
        let _write = self.writes.lock().await;
        if !self.catalog.snapshot().contains_key(&id) {
            return Err(SegmentError::NotFound(id));
        }
        self.catalog.remove(id);
        self.store.delete_segment(id).map_err(storage)?;
        loop {
            let members = self.store.members(id, None, 1024);
            if members.is_empty() {
                break;
            }
            self.registry
                .update_each(members, UserOp::Forget(id))
                .await?;
        }
        self.store.flush().await.map_err(storage)?;
        Ok(())
    }

    /// Takes a segment as another node (the catalog's keeper) defined it: the same id,
    /// name, rule and times. A new or changed rule is backfilled over this node's users.
    pub async fn adopt(self: &Arc<Self>, mut def: SegmentDef) -> Result<(), SegmentError> {
        let compiled = compile(&def.rule, &self.limits).map_err(SegmentError::InvalidRule)?;
        let _write = self.writes.lock().await;
        let current = self.catalog.snapshot().get(&def.id).cloned();
        let backfill = current.as_ref().is_none_or(|c| c.def.rule != def.rule);
        def.ready = !backfill && current.is_some_and(|c| c.def.ready);
        self.store.save_segment(def.id, &def).map_err(storage)?;
        self.store.flush().await.map_err(storage)?;
        let id = def.id;
        self.catalog.put(Segment {
            def,
            rule: compiled,
        });
        if backfill {
            self.spawn_backfill(id);
        }
        Ok(())
    }

    /// Keeps exactly the segments `defs` (the keeper's catalog): adopts each, deletes the
    /// others. Used when a node starts and may have missed changes.
    pub async fn reconcile(self: &Arc<Self>, defs: Vec<SegmentDef>) -> Result<(), SegmentError> {
        let kept: Vec<u64> = defs.iter().map(|def| def.id).collect();
        let stale: Vec<u64> = self
            .catalog
            .snapshot()
            .keys()
            .filter(|id| !kept.contains(id))
            .copied()
            .collect();
        for id in stale {
            self.delete(id).await?;
        }
        for def in defs {
            self.adopt(def).await?;
        }
        Ok(())
    }

    fn ensure_free(&self, name: &str, except: Option<u64>) -> Result<(), SegmentError> {
        let taken = self
            .catalog
            .snapshot()
            .values()
            .any(|s| s.def.name == name && Some(s.def.id) != except);
        if taken {
            return Err(SegmentError::NameTaken(name.to_owned()));
        }
        Ok(())
    }

    fn spawn_backfill(self: &Arc<Self>, id: u64) {
        let service = Arc::clone(self);
        actix_rt::spawn(async move {
            match service.backfill(id).await {
                Ok(users) => info!(segment = id, users, "backfill done"),
                Err(e) => {
                    error!(segment = id, error = %e, "backfill failed; it resumes at the next start")
                }
            }
        });
    }

    /// Evaluates segment `id` over every stored user, then marks it ready. Users with
    /// journaled events are saved first, so that every user has a record to list.
    async fn backfill(&self, id: u64) -> Result<usize, SegmentError> {
        let Some(rule_text) = self.catalog.snapshot().get(&id).map(|s| s.def.rule.clone()) else {
            return Ok(0);
        };
        self.registry.save_dirty().await?;
        let count = self
            .registry
            .sweep(Sweep::Everyone, UserOp::Reevaluate(id))
            .await?;
        let _write = self.writes.lock().await;
        let current = self.catalog.snapshot().get(&id).cloned();
        // A rule changed while this backfill ran has a backfill of its own: only the
        // backfill of the current rule marks it ready.
        if let Some(segment) = current.filter(|s| !s.def.ready && s.def.rule == rule_text) {
            if let Some(def) = self.catalog.mark_ready(segment.def.id) {
                self.store.save_segment(id, &def).map_err(storage)?;
                self.store.flush().await.map_err(storage)?;
            }
        }
        Ok(count)
    }
}
