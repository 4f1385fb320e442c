//! The load generator's only access to wall time and the monotonic clock.
//!
//! The workspace's `clippy.toml` forbids `Instant::now` and `SystemTime::now` so that the
//! server reads time through its injected `Clock`. A load generator measures real
//! elapsed time and stamps events with real dates, so this module alone calls them.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Returns the monotonic instant now, for scheduling and latencies.
#[allow(clippy::disallowed_methods)] // a load generator measures real elapsed time
pub fn instant_now() -> Instant {
    Instant::now()
}

/// Returns the wall-clock time now in milliseconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // events are stamped with real dates
pub fn unix_millis_now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// What "now" is for `created_at`: the node's dev clock, which stands still between
/// settings, or the system clock it otherwise shares with us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBase {
    /// The node runs the dev clock, read once at the start (Unix milliseconds).
    Fixed(i64),
    /// The node runs the system clock.
    System,
}

impl TimeBase {
    /// Returns the node's "now" in Unix milliseconds.
    pub fn now_ms(self) -> i64 {
        match self {
            TimeBase::Fixed(ms) => ms,
            TimeBase::System => unix_millis_now(),
        }
    }
}
