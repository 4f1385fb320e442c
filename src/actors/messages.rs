//! The messages a user actor handles. Each carries a one-shot reply channel, because
//! callers send with `try_send` (a full mailbox becomes `503`, never unbounded memory)
//! and `try_send` returns no answer of its own.

use actix::Message;
use tokio::sync::{oneshot, watch};

use super::committer::Receipt;
use super::record::Incoming;
use super::view::UserView;
use super::ActorError;

/// Where an actor sends its answer.
pub type Reply<T> = oneshot::Sender<Result<T, ActorError>>;

/// Apply events (all for this user) seen at the node's current time.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ingest {
    /// The events, in arrival order.
    pub events: Vec<Incoming>,
    /// Answers with a receipt that resolves once the events are durable.
    pub reply: Reply<Receipt>,
}

/// Evaluate every segment at each instant due up to now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Tick {
    /// Answers with a receipt for the changes.
    pub reply: Reply<Receipt>,
}

/// Evaluate one new or changed segment.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reevaluate {
    /// The segment.
    pub segment: u64,
    /// Answers with a receipt for the change.
    pub reply: Reply<Receipt>,
}

/// Leave a deleted segment.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forget {
    /// The segment.
    pub segment: u64,
    /// Answers with a receipt for the change.
    pub reply: Reply<Receipt>,
}

/// Describe the user as of now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetView {
    /// Answers with the view.
    pub reply: Reply<UserView>,
}

/// Leave memory: the record is already saved; `done` turns true once the actor stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate {
    /// Told when the actor has stopped.
    pub done: watch::Sender<bool>,
}
