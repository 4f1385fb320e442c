//! Where a new user actor runs. A user first reached on an HTTP worker's thread (a
//! request or an events WebSocket) runs on that thread: its next events from that worker
//! reach it, and its answer goes back, without waking another thread. Any other user (a
//! timer, a backfill, a handoff, a replay) runs on the actor thread of its shard.
//!
//! Single events, 64 connections, 2 cores: 1.19 context switches per event with every
//! actor on the shard's thread, 0.70 with this; ~10% less server CPU per event
//! (BENCHMARKS.md, session 10). HTTP workers are one per core, so users still spread
//! over the cores.
//!
//! An HTTP worker's thread stops with the HTTP server, taking its actors with it: a
//! stopping node drains requests and saves its users before it stops the HTTP server.

use std::cell::Cell;

use actix::{Actor, Addr, ArbiterHandle, Context};

use super::user::UserActor;

thread_local! {
    static HOSTS_USERS: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread (an HTTP worker's) as one that runs the actors of the users
/// it starts.
pub fn host_users_on_this_thread() {
    HOSTS_USERS.with(|hosts| hosts.set(true));
    tracing::debug!(
        thread = std::thread::current().name().unwrap_or("unnamed"),
        "this thread runs the users it reaches"
    );
}

/// Starts `actor` with a mailbox of `capacity` on the calling thread when it hosts
/// users, else on the arbiter of `shard` (or the calling arbiter when there is none).
pub(super) fn start(
    arbiters: &[ArbiterHandle],
    shard: usize,
    capacity: usize,
    actor: UserActor,
) -> Addr<UserActor> {
    let build = move |ctx: &mut Context<UserActor>| {
        ctx.set_mailbox_capacity(capacity);
        actor
    };
    let here = HOSTS_USERS.with(Cell::get);
    match arbiters.get(shard % arbiters.len().max(1)) {
        Some(arbiter) if !here => UserActor::start_in_arbiter(arbiter, build),
        _ => UserActor::create(build),
    }
}
