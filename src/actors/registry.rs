//! Finds or starts a user's actor. Users map to a fixed number of shards by a fixed,
//! documented hash (SplitMix64's finaliser of the user id, modulo the shard count); shards
//! map to arbiters (one thread each) round-robin, so actors spread over the cores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, ArbiterHandle, Handler, Message};
use futures_util::stream::{self, StreamExt};
use tokio::sync::oneshot;

use super::committer::Receipt;

use super::messages::Reply;
use super::record::UserRecord;
use super::user::{UserActor, UserContext};
use super::ActorError;

/// SplitMix64's finaliser: a fixed, well-mixed 64-bit hash (never `DefaultHasher`).
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The user actors of this node.
pub struct Registry {
    shards: Vec<Mutex<HashMap<u64, Addr<UserActor>>>>,
    arbiters: Vec<ArbiterHandle>,
    mailbox_capacity: usize,
    shared: Arc<UserContext>,
}

impl Registry {
    /// Creates a registry over `shards` shards placed on `arbiters`.
    pub fn new(
        shards: u32,
        arbiters: Vec<ArbiterHandle>,
        mailbox_capacity: usize,
        shared: Arc<UserContext>,
    ) -> Registry {
        Registry {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            arbiters,
            mailbox_capacity,
            shared,
        }
    }

    /// Returns the shard of a user.
    pub fn shard_of(&self, user: u64) -> usize {
        (mix(user) % self.shards.len() as u64) as usize
    }

    fn address(&self, user: u64) -> Result<Addr<UserActor>, ActorError> {
        let shard = self.shard_of(user);
        let mut actors = match self.shards[shard].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(addr) = actors.get(&user).filter(|a| a.connected()) {
            return Ok(addr.clone());
        }
        let record: UserRecord = self
            .shared
            .store
            .load_user(user)
            .map_err(|e| ActorError::Storage(e.to_string()))?
            .unwrap_or_default();
        let actor = UserActor::new(user, record, Arc::clone(&self.shared));
        let capacity = self.mailbox_capacity;
        let addr = match self.arbiters.get(shard % self.arbiters.len().max(1)) {
            Some(arbiter) => UserActor::start_in_arbiter(arbiter, move |ctx| {
                ctx.set_mailbox_capacity(capacity);
                actor
            }),
            None => UserActor::create(move |ctx| {
                ctx.set_mailbox_capacity(capacity);
                actor
            }),
        };
        actors.insert(user, addr.clone());
        Ok(addr)
    }

    /// Sends a message built around a reply channel to a user's actor and awaits the
    /// answer; a full mailbox is `MailboxFull`, never a wait.
    pub async fn ask<T, M>(
        &self,
        user: u64,
        message: impl FnOnce(Reply<T>) -> M,
    ) -> Result<T, ActorError>
    where
        M: Message<Result = ()> + Send + 'static,
        UserActor: Handler<M>,
        <UserActor as Actor>::Context: ToEnvelope<UserActor, M>,
    {
        let addr = self.address(user)?;
        let (reply, answer) = oneshot::channel();
        addr.try_send(message(reply)).map_err(|e| match e {
            actix::prelude::SendError::Full(_) => ActorError::MailboxFull,
            actix::prelude::SendError::Closed(_) => ActorError::ShuttingDown,
        })?;
        answer.await.map_err(|_| ActorError::ShuttingDown)?
    }
}

/// Users messaged at once by `commit_each`.
const FAN_OUT: usize = 256;

impl Registry {
    /// Sends a message built by `message` to each user (at most 256 at once) and waits
    /// until every change it caused is durable and pushed; the first error wins.
    pub async fn commit_each<M>(
        &self,
        users: impl IntoIterator<Item = u64>,
        message: impl Fn(Reply<Receipt>) -> M + Copy,
    ) -> Result<(), ActorError>
    where
        M: Message<Result = ()> + Send + 'static,
        UserActor: Handler<M>,
        <UserActor as Actor>::Context: ToEnvelope<UserActor, M>,
    {
        let results: Vec<Result<(), ActorError>> = stream::iter(users)
            .map(|user| async move {
                let receipt = self.ask(user, message).await?;
                receipt.await.map_err(|_| ActorError::ShuttingDown)?
            })
            .buffer_unordered(FAN_OUT)
            .collect()
            .await;
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_hash_is_pinned() {
        // Placement is a compatibility contract (shard keys, handoff): never change these.
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0x5692_161d_100b_05e5);
        let shards: Vec<u64> = (1..=6).map(|u| mix(u) % 1024).collect();
        assert_eq!(shards, [485, 138, 240, 276, 476, 876]);
    }
}
