//! Per-CPU outcome counters of the XDP program, indexed by [`Outcome`].

/// What happened to one packet. New outcomes are appended; indices never change.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Answered from the map with XDP_TX.
    Hit = 0,
    /// A query we could answer in the kernel, but the name is not in the map: passed up.
    Miss = 1,
    /// Not a DNS query for our port (other protocols, other ports): passed up.
    PassNotDns = 2,
    /// A DNS packet the fast path does not answer (malformed, responses, other opcodes,
    /// classes, EDNS versions, IP options, fragments...): passed up for userspace.
    PassUnsupported = 3,
    /// An internal failure (helper error, inconsistent map data): passed up.
    Error = 4,
    /// The name is in the map but its entry expired: passed up to be refreshed.
    Expired = 5,
    /// The answer would not fit the client's UDP payload size: passed up (userspace sets TC).
    PassTooBig = 6,
    /// The frame could not be grown to the response's size (no tailroom): passed up.
    PassNoRoom = 7,
    /// A query with an EDNS Client Subnet option whose answer is directional: passed up,
    /// userspace answers it from the subnet with the scope of its answer (RFC 7871).
    /// Other answers echo the option with scope 0 from XDP.
    PassEcs = 8,
    /// Answered with XDP_TX with a directional answer chosen by the client's territory
    /// (also counted as a hit).
    HitDirectional = 9,
    /// Answered with XDP_TX with a weighted pick (also counted as a hit).
    HitWeighted = 10,
    /// Answered with XDP_TX with a stale answer while the database was unreachable
    /// (RFC 8767; also counted as a hit).
    HitStale = 11,
    /// Not for us: another host's MAC or IP address, a source we never answer (multicast,
    /// broadcast, loopback, a loop-prone port), an IPv6 UDP checksum of zero: passed up
    /// untouched (the kernel drops or forwards it; userspace never answers it).
    PassNotForUs = 12,
    /// Answered with XDP_TX with the zone's NXDOMAIN: the name is not among the names
    /// that exist (also counted as a hit).
    HitNxdomain = 13,
    /// Answered with XDP_TX with an answer synthesized from a wildcard (RFC 4592) for a
    /// name that does not exist (also counted as a hit).
    HitWildcard = 14,
    /// Over the response rate limit: answered truncated (TC set, no records) so the
    /// client retries over TCP (also counted as a hit; see `crate::rrl`).
    RrlSlipped = 15,
    /// Over the response rate limit: dropped (XDP_DROP, the one drop of the program).
    RrlDropped = 16,
}

impl Outcome {
    pub const ALL: [Outcome; 17] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::PassNotDns,
        Outcome::PassUnsupported,
        Outcome::Error,
        Outcome::Expired,
        Outcome::PassTooBig,
        Outcome::PassNoRoom,
        Outcome::PassEcs,
        Outcome::HitDirectional,
        Outcome::HitWeighted,
        Outcome::HitStale,
        Outcome::PassNotForUs,
        Outcome::HitNxdomain,
        Outcome::HitWildcard,
        Outcome::RrlSlipped,
        Outcome::RrlDropped,
    ];

    /// Whether this outcome says how a hit was made (or that it was slipped): counted
    /// beside [`Outcome::Hit`], so a packet counts once among the others.
    pub const fn is_refinement(self) -> bool {
        matches!(
            self,
            Outcome::HitDirectional
                | Outcome::HitWeighted
                | Outcome::HitStale
                | Outcome::HitNxdomain
                | Outcome::HitWildcard
                | Outcome::RrlSlipped
        )
    }

    /// Whether the packet was a DNS query for us (answered or passed up).
    pub const fn is_query(self) -> bool {
        !matches!(self, Outcome::PassNotDns | Outcome::PassNotForUs)
    }

    /// Stable name used in logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::PassNotDns => "passed_not_dns",
            Outcome::PassUnsupported => "passed_unsupported",
            Outcome::Error => "error",
            Outcome::Expired => "expired",
            Outcome::PassTooBig => "passed_too_big",
            Outcome::PassNoRoom => "passed_no_room",
            Outcome::PassEcs => "passed_ecs",
            Outcome::HitDirectional => "hit_directional",
            Outcome::HitWeighted => "hit_weighted",
            Outcome::HitStale => "hit_stale",
            Outcome::PassNotForUs => "passed_not_for_us",
            Outcome::HitNxdomain => "hit_nxdomain",
            Outcome::HitWildcard => "hit_wildcard",
            Outcome::RrlSlipped => "rrl_slipped",
            Outcome::RrlDropped => "rrl_dropped",
        }
    }
}

/// Slots in the counter array: more than [`Outcome::ALL`] so outcomes can be added
/// without changing the map layout.
pub const OUTCOME_SLOTS: u32 = 32;
