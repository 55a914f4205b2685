//! What the daemon knows about itself beyond the engine: its attachments and the
//! follower's counters, for metrics and readiness.

use std::sync::Arc;

use instadns::{control::FollowerStats, frontend::connections::Registry, store::Database};

/// One interface the XDP program is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub iface: String,
    /// native or skb.
    pub mode: String,
    /// Receive queues when it was (re-)attached.
    pub rx_queues: u32,
}

/// What the daemon knows about itself beyond the handler.
pub struct DaemonStatus {
    /// The XDP attachments (changed by reloads and queue-count changes).
    pub attached: std::sync::Mutex<Vec<Attached>>,
    /// Whether the fast path is enabled at all.
    pub xdp: bool,
    pub db: Database,
    pub follower: Arc<FollowerStats>,
    /// The DNS TCP connections.
    pub tcp: Arc<Registry>,
    /// NOTIFY messages to secondaries.
    pub notifies: Arc<instadns::control::notify::NotifyStats>,
    /// The last database probe of `/ready`: probes are shared and at most one a second.
    pub readiness: tokio::sync::Mutex<Option<(std::time::Instant, Option<String>)>>,
}
