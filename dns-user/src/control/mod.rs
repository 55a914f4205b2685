//! The control loops that keep answers current: the change-log follower (database
//! changes to re-resolved answers and rewritten map entries), the health prober, and
//! TTL moves, NOTIFY to secondaries.
//!
//! May import: `engine`, `resolution`, `store`, `model`, `protocol`. Never the daemon.

pub mod cursor;
pub mod follower;
pub mod health;
pub mod notify;
pub mod ttl;

pub use cursor::ChangeCursor;
pub use follower::{Follower, FollowerStats};
