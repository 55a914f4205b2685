//! What the engine counts, for metrics.

use std::sync::atomic::AtomicU64;

/// Userspace query counters, for metrics.
#[derive(Default)]
pub struct QueryStats {
    pub udp: AtomicU64,
    pub tcp: AtomicU64,
    pub cache_hits: AtomicU64,
    pub truncated: AtomicU64,
    /// Stale answers served while the database was unreachable.
    pub stale: AtomicU64,
    /// Misses over their zone's database lookup budget.
    pub over_budget: AtomicU64,
    /// Responses by RCODE (index = RCODE, BADVERS = 16).
    pub rcodes: [AtomicU64; 17],
    /// Queries by type, see [`QTYPE_LABELS`].
    pub by_type: [AtomicU64; QTYPE_LABELS.len()],
    /// Signed requests by [`TsigOutcome`].
    pub tsig: [AtomicU64; TsigOutcome::ALL.len()],
    /// RFC 2136 updates by response RCODE (index = RCODE).
    pub updates: [AtomicU64; 16],
    /// NOTIFY messages received (acknowledged and ignored: we are a primary).
    pub notifies: AtomicU64,
    /// Zone transfers sent whole (AXFR, IXFR), and refused (not allowed, not ours).
    pub transfers: AtomicU64,
    pub transfers_refused: AtomicU64,
    /// Queries with a DNS cookie, by what their server cookie was worth
    /// (`dns_common::cookie::CookieCheck` order: fresh, valid, invalid or none).
    pub cookies: [AtomicU64; 3],
}

/// What became of a TSIG-signed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigOutcome {
    Verified = 0,
    /// A good signature from a key not allowed to do that there: REFUSED.
    OutOfScope,
    BadKey,
    BadSig,
    BadTime,
    /// A MAC of an impossible length: FORMERR.
    Malformed,
}

impl TsigOutcome {
    pub const ALL: [TsigOutcome; 6] =
        [Self::Verified, Self::OutOfScope, Self::BadKey, Self::BadSig, Self::BadTime, Self::Malformed];

    /// The metrics label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::OutOfScope => "out_of_scope",
            Self::BadKey => "badkey",
            Self::BadSig => "badsig",
            Self::BadTime => "badtime",
            Self::Malformed => "malformed",
        }
    }
}

/// The query types counted separately; everything else is "other".
pub const QTYPE_LABELS: [(&str, u16); 10] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("HTTPS", 65),
    ("ANY", 255),
    ("other", 0),
];
