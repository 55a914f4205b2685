//! The engine: the sans-IO query core ([`Handler`]: bytes in, response bytes out; RFC
//! 2136 updates, NOTIFY and zone transfers too) and the userspace answer cache it answers from and
//! installs into the fast path.
//!
//! May import: `resolution`, `fastpath`, `store` (the `Store` trait), `protocol`,
//! `model`, `dns_common`. Never the front ends, the control loops or the daemon.

pub mod budget;
pub mod cache;
pub mod handler;
pub mod stats;
pub mod transfer;
pub mod update;

pub use cache::{AnswerCache, CachePolicy, DEFAULT_CACHE_ENTRIES};
pub use handler::{Handler, Transport};
pub use stats::{QTYPE_LABELS, QueryStats};
pub use transfer::{TransferPolicy, is_transfer};
