//! The pure data model shared by every layer: instants and the facts an event carries.
//!
//! Leaf module: it must not depend on actix, sled, tokio or any other USS module.

mod event;
mod fnv;
mod time;

pub use event::{Event, TraitValue};
pub use fnv::fnv1a;
pub use time::{Timestamp, TimestampError, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, WEEK_MS};
