//! `cluster` owns the ring, which node owns a user, forwarding, fan-out, handoff;
//! membership comes from chitchat.

pub mod membership;
pub mod ring;
