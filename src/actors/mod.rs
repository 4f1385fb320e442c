//! User actors and the services around them: the registry that finds or starts a user's
//! actor, the segment catalog, group commit and the journal, snapshots, the notification
//! hub, timers.
//!
//! Must not parse HTTP or touch sled directly (storage goes through `storage::Store`).
//!
//! # Supervision
//!
//! | actor / task | on error | restart |
//! | --- | --- | --- |
//! | `UserActor` | a failed write drops the user from memory (unsaved, `Passivate { save: false }`) and answers `Storage` (503); the event is not acknowledged | not supervised: a stopped actor is started again by the registry on its next message, from its snapshot plus the journal parts it left unsaved |
//! | snapshot loop | logs a warning; the users stay dirty and are saved on the next pass | runs for the node's life |
//! | passivation | an idle or least recently used actor leaves memory (`Passivate`); messages for it wait until it stopped, then a fresh actor loads it | on the next message, timer, read or backfill |
//! | committer thread | a failed flush answers every waiting caller `Storage` (503) and retries on the next group | runs for the node's life |
//! | timer loop | logs a warning and retries on its next pass; overdue timers fire late, never skipped | runs for the node's life |

use crate::storage::StorageError;

mod activity_totals;
mod catalog;
mod committer;
mod due_soon;
mod event_ids;
mod hub;
mod identity;
mod ingest;
mod journal;
mod merge;
mod merge_locks;
mod merge_plan;
mod merge_step;
mod messages;
mod overlay;
mod peers;
mod placement;
mod record;
mod registry;
mod replay;
mod segment_set;
mod segments;
mod snapshots;
mod step;
mod timers;
mod transfer;
mod user;
mod view;

pub use activity_totals::ActivityTotals;
pub use catalog::{Catalog, Segment, SegmentDef, Segments};
pub use committer::{Committer, Durability, Receipt, StorageHealth};
pub use due_soon::DueSoon;
pub use event_ids::{EventIds, REMEMBERED_EVENT_IDS};
pub use hub::{Hub, Notification};
pub use identity::{IdentityParts, IdentityService, Linked};
pub use ingest::Ingestor;
pub use journal::Journal;
pub use merge::{MergeEntry, MergeLog, Refusal, RefusedLink};
pub use merge_step::{AbsorbedUser, Claim, MergeOutcome, MergePlan};
pub use messages::{GetView, Ingest, Merge, Passivate, Reply, Save, Update};
pub use peers::{Alone, Parcel, Peers, Surrender};
pub use placement::host_users_on_this_thread;
pub use record::{Change, Identity, Incoming, UserOp, UserRecord};
pub use registry::{mix, Registry};
pub use replay::replay_journal;
pub use segment_set::SegmentSet;
pub use segments::{SegmentError, SegmentPatch, SegmentService};
pub use snapshots::Snapshots;
pub use step::{step, Persist, Saved};
pub use timers::Timers;
pub use user::{UserActor, UserContext};
pub use view::{activity_summaries, ActivitySummary, UserView};

/// Turns a storage failure into the actors' error (answered `503`).
pub(crate) fn storage(e: StorageError) -> ActorError {
    ActorError::Storage(e.to_string())
}

/// Why a user actor could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    /// The actor's mailbox is full: the node is overloaded.
    #[error("user mailbox is full")]
    MailboxFull,
    /// The node is stopping.
    #[error("node is shutting down")]
    ShuttingDown,
    /// Storage failed; nothing was acknowledged.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The user was absorbed by a merge into this survivor.
    #[error("user was merged into user {0}")]
    Moved(u64),
    /// Another node that had to do its part could not be reached.
    #[error("{0}")]
    OwnerUnavailable(String),
    /// This node does not serve the user now (another node does, or its shard is being
    /// handed over); says why.
    #[error("{0}")]
    NotServed(String),
}
