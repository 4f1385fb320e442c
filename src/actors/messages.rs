//! The messages a user actor handles. Each carries a one-shot reply channel, because
//! callers send with `try_send` (a full mailbox becomes `503`, never unbounded memory)
//! and `try_send` returns no answer of its own.

use actix::Message;
use tokio::sync::{oneshot, watch};

use super::committer::Receipt;
use super::merge_step::{MergeOutcome, MergePlan};
use super::record::{Incoming, UserOp};
use super::view::UserView;
use super::ActorError;

/// Where an actor sends its answer.
pub type Reply<T> = oneshot::Sender<Result<T, ActorError>>;

/// Apply events (all for this user) seen at the node's current time.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ingest {
    /// The events, in arrival order (shared, so a redirect after a merge copies nothing).
    pub events: std::sync::Arc<Vec<Incoming>>,
    /// Answers with a receipt that resolves once the events are durable.
    pub reply: Reply<Receipt>,
}

/// Apply a change that comes with no event (timer, segment change).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Update {
    /// What to do.
    pub op: UserOp,
    /// Answers with a receipt for the changes.
    pub reply: Reply<Receipt>,
}

/// Describe the user as of now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetView {
    /// Answers with the view.
    pub reply: Reply<UserView>,
}

/// Leave memory; `done` turns true once the actor stopped and its writes are readable.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate {
    /// Told when the actor has stopped.
    pub done: watch::Sender<bool>,
    /// Save what storage lacks of the user first (false when it is dropped because a
    /// write failed: storage then holds exactly what was acknowledged).
    pub save: bool,
}

/// Save the whole record (a snapshot), so the journal parts before it can go.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Save {
    /// Answers with a receipt for the snapshot.
    pub reply: Reply<Receipt>,
}

/// Absorb users and link identities (this user is the survivor).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Merge {
    /// What to do.
    pub plan: MergePlan,
    /// Answers with what was done and a receipt for it.
    pub reply: Reply<MergeOutcome>,
}
