//! The other nodes of a cluster, as identity linking and ingestion need them: who owns a
//! user or resolves an identity, and the few things asked of another node when users and
//! identities live on different nodes. `cluster` implements it over HTTP; a node alone
//! uses `Alone`, which owns everything.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use super::identity::Linked;
use super::merge::MergeLog;
use super::record::{Identity, Incoming, UserRecord};
use super::ActorError;

/// A user given up by its node to a survivor on another node: everything the survivor
/// takes in, also kept by the giver until the survivor has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parcel {
    /// The user that absorbs it.
    pub survivor: u64,
    /// Its record.
    pub record: UserRecord,
    /// Its merge log.
    pub log: MergeLog,
}

/// What a node answers when asked to give a user up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Surrender {
    /// Here it is (it now redirects to the survivor).
    Given(Box<Parcel>),
    /// It was merged into this user already.
    MergedInto(u64),
    /// No such user.
    Unknown,
}

/// Another node's part in linking and ingestion.
pub trait Peers: Send + Sync {
    /// Returns whether this node owns `user`.
    fn owns_user(&self, user: u64) -> bool;

    /// Returns whether this node resolves `identity`.
    fn resolves(&self, identity: &Identity) -> bool;

    /// Returns the user the identity's node indexes for it.
    fn indexed(&self, identity: &Identity) -> LocalBoxFuture<'_, Result<Option<u64>, ActorError>>;

    /// Returns the user that `user` is now, after merges (asked of its node).
    fn current(&self, user: u64) -> LocalBoxFuture<'_, Result<u64, ActorError>>;

    /// Gives an identity nobody owns to `user` at its node; returns whether `user` owns
    /// it now. With `release`, gives it back (only if `user` owns it).
    fn claim(
        &self,
        identity: &Identity,
        user: u64,
        release: bool,
    ) -> LocalBoxFuture<'_, Result<bool, ActorError>>;

    /// Asks the node of `user` to give it up to `survivor`.
    fn surrender(
        &self,
        user: u64,
        survivor: u64,
    ) -> LocalBoxFuture<'_, Result<Surrender, ActorError>>;

    /// Tells the node that gave `user` up whether the survivor took it (`absorbed`), or
    /// refused it (the user is put back).
    fn settle(&self, user: u64, absorbed: bool) -> LocalBoxFuture<'_, Result<(), ActorError>>;

    /// Asks the node of `survivor` to take in a parcel whose transfer was cut short;
    /// returns whether the survivor has the user.
    fn absorb(&self, user: u64, parcel: &Parcel) -> LocalBoxFuture<'_, Result<bool, ActorError>>;

    /// Asks the node of `survivor` to link the identities (it coordinates merges into
    /// its users).
    fn link_at(
        &self,
        survivor: u64,
        primary: Option<&Identity>,
        listed: &[Identity],
    ) -> LocalBoxFuture<'_, Result<Linked, ActorError>>;

    /// Hands events to a user that lives on another node; resolves once durable there.
    fn deliver(
        &self,
        user: u64,
        events: Arc<Vec<Incoming>>,
    ) -> LocalBoxFuture<'_, Result<(), ActorError>>;
}

/// A node alone: it owns every user and resolves every identity, so nothing is asked of
/// another node.
pub struct Alone;

fn nobody<T>() -> LocalBoxFuture<'static, Result<T, ActorError>> {
    Box::pin(async {
        Err(ActorError::Storage(
            "a node alone has no other node to ask".into(),
        ))
    })
}

impl Peers for Alone {
    fn owns_user(&self, _user: u64) -> bool {
        true
    }

    fn resolves(&self, _identity: &Identity) -> bool {
        true
    }

    fn indexed(&self, _: &Identity) -> LocalBoxFuture<'_, Result<Option<u64>, ActorError>> {
        nobody()
    }

    fn current(&self, _: u64) -> LocalBoxFuture<'_, Result<u64, ActorError>> {
        nobody()
    }

    fn claim(&self, _: &Identity, _: u64, _: bool) -> LocalBoxFuture<'_, Result<bool, ActorError>> {
        nobody()
    }

    fn surrender(&self, _: u64, _: u64) -> LocalBoxFuture<'_, Result<Surrender, ActorError>> {
        nobody()
    }

    fn settle(&self, _: u64, _: bool) -> LocalBoxFuture<'_, Result<(), ActorError>> {
        nobody()
    }

    fn absorb(&self, _: u64, _: &Parcel) -> LocalBoxFuture<'_, Result<bool, ActorError>> {
        nobody()
    }

    fn link_at(
        &self,
        _: u64,
        _: Option<&Identity>,
        _: &[Identity],
    ) -> LocalBoxFuture<'_, Result<Linked, ActorError>> {
        nobody()
    }

    fn deliver(&self, _: u64, _: Arc<Vec<Incoming>>) -> LocalBoxFuture<'_, Result<(), ActorError>> {
        nobody()
    }
}
