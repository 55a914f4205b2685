//! The benchmark's traffic programs (the `instadns-bench-xdp` object, never loaded by
//! the daemon): a query generator run with BPF_PROG_TEST_RUN in live-frames mode on the
//! client's veth, and a sink on the same veth that counts the answers.

use crate::frame::{ETH_HLEN, IPV4_HLEN, UDP_HLEN, UDP_SOURCE};

/// Longest query frame a template holds (Ethernet to the end of the DNS message).
pub const TEMPLATE_MAX: usize = 128;
/// Longest run of random characters the generator writes into a name.
pub const RANDOM_MAX: usize = 16;

/// One query frame to send: Ethernet, IPv4, UDP (checksum 0, which IPv4 allows) and the
/// DNS query. The generator rewrites the source port and the DNS ID per packet.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Template {
    pub len: u16,
    pub _pad: [u8; 6],
    pub bytes: [u8; TEMPLATE_MAX],
}

/// What the generator sends: a random one of the first `slots` templates, with
/// `random_len` random letters written at `random_offset` of the frame when non-zero
/// (a random-subdomain flood).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct GenConfig {
    pub slots: u32,
    pub random_offset: u16,
    pub random_len: u16,
}

/// Frame offsets of the fields the generator rewrites (IPv4 without options).
pub const UDP_SOURCE_PORT_OFFSET: usize = ETH_HLEN + IPV4_HLEN + UDP_SOURCE;
pub const DNS_ID_OFFSET: usize = ETH_HLEN + IPV4_HLEN + UDP_HLEN;

/// Per-CPU counters of the sink, by slot.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkSlot {
    /// DNS responses from port 53.
    Responses = 0,
    NoError = 1,
    NxDomain = 2,
    ServFail = 3,
    Refused = 4,
    OtherRcode = 5,
    /// Responses with TC set.
    Truncated = 6,
    /// Frames the generator sent (counted by the generator).
    Sent = 7,
}

pub const SINK_SLOTS: u32 = 8;

/// The sink's mode, in its one-entry config array: count and drop the answers (the
/// generator's runs) or count and pass them up (dnsperf's).
pub const SINK_DROP: u32 = 1;
pub const SINK_PASS: u32 = 0;
