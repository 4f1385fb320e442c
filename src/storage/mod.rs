//! Everything the node persists, behind a typed facade over one sled tree, and the
//! journal's files beside it.
//!
//! When we flush: writes land in sled's memory at once and become durable at the next
//! `Store::flush` (sled never flushes on its own timer). Events reach storage as journal
//! entries (`journal`, `journal_file`): the committer (`actors::committer`) appends one
//! per group of event steps and syncs it before acknowledging them, and applies their
//! other writes to sled op by op (`Store::apply_each`) without a flush. Users reach
//! storage as snapshots (`user_write`: the record, its timer move and its membership
//! changes). Every other group of writes is one atomic batch, flushed before it is
//! acknowledged; checkpoints flush sled and delete the journal files it then covers.
//!
//! Must not know about HTTP or actors.

mod codec;
mod identities;
mod identity_cache;
mod journal;
mod journal_file;
mod keys;
mod member_chunks;
mod membership;
mod shards;
mod store;
mod transfers;
mod user_scan;
mod write_set;

pub use identities::Absorbed;
pub use journal::{journal_entry, journal_part};
pub use journal_file::JournalFile;
pub use shards::{key_owner, ExportStep, KeyOwner, Pairs};
pub use store::{Store, UserWrite};
pub use user_scan::{ReadMark, StoredUser};
pub use write_set::WriteSet;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// sled failed (I/O, corruption).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A value could not be encoded.
    #[error("failed to encode a value: {0}")]
    Encode(String),
    /// A stored value could not be decoded.
    #[error("failed to decode a stored value: {0}")]
    Decode(String),
    /// The node's sequence of user ids ran out.
    #[error("this node has assigned every user id of its range")]
    IdsExhausted,
    /// The journal's files could not be read or written.
    #[error("journal failed: {0}")]
    Journal(String),
    /// The thread that writes storage could not be started.
    #[error("could not start the storage writer thread: {0}")]
    Thread(std::io::Error),
}
