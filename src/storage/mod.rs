//! Everything the node persists, behind a typed facade over one sled tree.
//!
//! When we flush: writes land in sled's memory at once and become durable at the next
//! `Store::flush`. The committer (`actors::committer`) calls it once for a whole group
//! of writes (group commit) and only then acknowledges them. Events reach storage as
//! journal entries (`journal`), users as snapshots (`user_write`: the record, its timer
//! move and its membership changes, atomic together with the removal of the journal
//! entries they make redundant).
//!
//! Must not know about HTTP or actors.

mod codec;
mod identities;
mod identity_cache;
mod journal;
mod keys;
mod member_chunks;
mod membership;
mod shards;
mod store;
mod transfers;
mod user_scan;
mod write_set;

pub use identities::Absorbed;
pub use journal::journal_part;
pub use shards::{key_owner, ExportStep, KeyOwner, Pairs};
pub use store::{Store, UserWrite};
pub use user_scan::{ReadMark, StoredUser};
pub use write_set::WriteSet;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// sled failed (I/O, corruption).
    #[error("storage failed: {0}")]
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
    /// The thread that writes storage could not be started.
    #[error("could not start the storage writer thread: {0}")]
    Thread(std::io::Error),
}
