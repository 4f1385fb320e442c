//! The client subcommands of the binary: `watch` and `demo`.

mod demo;
mod watch;

pub use demo::demo;
pub use watch::watch;
