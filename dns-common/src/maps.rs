//! Layouts of the BPF maps. The XDP program reads them; only userspace writes them.
//!
//! Lookup is two-level: a name map (one per length bucket, LRU hash keyed by lower-cased
//! QNAME + QTYPE) gives a [`NameEntry`] that points at an [`AnswerSlot`] in the answer
//! array. Many names share one answer (every instance on a cluster answers the same CNAME
//! or addresses), so the per-name cost is a small key and a 16-byte value.

use crate::limits::{ANSWER_MAX_LEN, NAME_BUCKETS};

/// Map names, as the loader and the pinning code refer to them.
pub const NAME_MAP_NAMES: [&str; 4] = ["NAMES_0", "NAMES_1", "NAMES_2", "NAMES_3"];
pub const ANSWER_MAP_NAME: &str = "ANSWERS";
pub const STATS_MAP_NAME: &str = "STATS";
pub const SCRATCH_MAP_NAME: &str = "SCRATCH";
pub const TERRITORY_V4_MAP_NAME: &str = "TERRITORIES_V4";
pub const TERRITORY_V6_MAP_NAME: &str = "TERRITORIES_V6";

/// The addresses this host serves, by family (keys: the address; values unused). The
/// program answers only frames addressed to one of them.
pub const LOCAL_V4_MAP_NAME: &str = "LOCAL_V4";
pub const LOCAL_V6_MAP_NAME: &str = "LOCAL_V6";
/// The MAC address of each interface the program is attached to, by ifindex (the six
/// bytes, then two zero bytes).
pub const IFACE_MACS_MAP_NAME: &str = "IFACE_MACS";
/// Entries of the local-address maps, per family, and of the interface map.
pub const LOCAL_ADDRESSES: u32 = 1024;
pub const INTERFACES: u32 = 256;

/// The maps pinned under the pin directory, so they outlive the daemon (the per-CPU
/// scratch map is private to each loaded program). The known names too: a restarted
/// daemon keeps answering NXDOMAIN from them (within their lease) until it has rebuilt
/// them.
pub const PINNED_MAPS: [&str; 15] = [
    NAME_MAP_NAMES[0],
    NAME_MAP_NAMES[1],
    NAME_MAP_NAMES[2],
    NAME_MAP_NAMES[3],
    ANSWER_MAP_NAME,
    STATS_MAP_NAME,
    TERRITORY_V4_MAP_NAME,
    TERRITORY_V6_MAP_NAME,
    LOCAL_V4_MAP_NAME,
    LOCAL_V6_MAP_NAME,
    IFACE_MACS_MAP_NAME,
    crate::negative::KNOWN_NAMES_MAP_NAME,
    crate::negative::ZONE_FACTS_MAP_NAME,
    crate::negative::NEGATIVE_CONFIG_MAP_NAME,
    crate::negative::WILDCARD_ANSWERS_MAP_NAME,
];

/// Key of the name maps: the wire-format QNAME lower-cased (ASCII only, RFC 4343) and
/// zero-padded to the bucket size, then QTYPE in network byte order. The name comes
/// first so the XDP program builds it with aligned 8-byte stores.
///
/// No length field is needed: a wire name ends at its first zero label, so two distinct
/// names never share a zero-padded form.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NameKey<const N: usize> {
    pub name: [u8; N],
    pub qtype: [u8; 2],
}

pub type NameKey0 = NameKey<{ NAME_BUCKETS[0] }>;
pub type NameKey1 = NameKey<{ NAME_BUCKETS[1] }>;
pub type NameKey2 = NameKey<{ NAME_BUCKETS[2] }>;
pub type NameKey3 = NameKey<{ NAME_BUCKETS[3] }>;

impl<const N: usize> NameKey<N> {
    /// Builds a key from an already lower-cased wire name; `None` if it does not fit.
    pub fn new(lower_wire_name: &[u8], qtype: u16) -> Option<Self> {
        if lower_wire_name.len() > N {
            return None;
        }
        let mut name = [0u8; N];
        name[..lower_wire_name.len()].copy_from_slice(lower_wire_name);
        Some(Self { qtype: qtype.to_be_bytes(), name })
    }
}

/// How the XDP program picks among the `variants` answer slots of a name.
pub mod select {
    /// Always the first slot.
    pub const FIXED: u16 = 0;
    /// Weighted: per packet the program draws a number below [`super::PICK_SCALE`] and
    /// answers the first slot whose [`super::AnswerSlot::pick_below`] exceeds it (the last
    /// slot takes the rest). At most [`super::MAX_WEIGHTED_VARIANTS`] slots.
    pub const WEIGHTED: u16 = 1;
    /// Directional: the client's territory (the value of the longest prefix matching its
    /// source address in the territory maps) indexes the slots; 0, no match, or an index
    /// past the last slot answers the first slot, the default.
    pub const DIRECTIONAL: u16 = 2;
}

/// Weighted picks draw from `0..PICK_SCALE`.
pub const PICK_SCALE: u32 = 1 << 16;
/// The draw of a weighted pick from a per-CPU counter: a Weyl sequence (the step is odd,
/// near 2^16 divided by the golden ratio), so any run of consecutive draws spreads
/// evenly over `0..PICK_SCALE` and the answered shares match the weights closely even
/// over a few hundred queries, with no random-number cost per packet.
pub const fn pick_draw(counter: u32) -> u32 {
    counter.wrapping_mul(PICK_STEP) & (PICK_SCALE - 1)
}
const PICK_STEP: u32 = 40503;

/// Most slots of a weighted answer (the program's loop bound).
pub const MAX_WEIGHTED_VARIANTS: usize = 16;
/// Most territories: territory indices run from 1 to this; 0 is the default answer.
pub const MAX_TERRITORIES: usize = 63;
/// Prefixes the territory maps hold, per address family.
pub const TERRITORY_PREFIXES: u32 = 65536;

/// The data of the territory maps' keys (after the prefix length): the client's address.
pub type TerritoryV4 = [u8; 4];
pub type TerritoryV6 = [u8; 16];

/// Value of the name maps.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct NameEntry {
    /// CLOCK_MONOTONIC (bpf_ktime_get_ns) time after which the entry must not be served.
    pub expires_ns: u64,
    /// Index of the first answer slot in the answer array.
    pub answer: u32,
    /// Number of consecutive slots the program chooses from (at least 1).
    pub variants: u16,
    /// One of [`select`].
    pub select: u16,
    /// [`key_check`] of the key this entry was written for. The kernel recycles an LRU
    /// element for another key at once, even while a program still reads it: the
    /// program answers only if the entry's check is its question's.
    pub check: u32,
    pub _pad: u32,
}

const KEY_CHECK_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// One step of [`key_check`]: mixes in the next 8-byte word of the lower-cased name.
#[inline(always)]
pub fn key_check_step(h: u64, word: u64) -> u64 {
    let h = (h ^ word).wrapping_mul(KEY_CHECK_MULTIPLIER);
    h ^ (h >> 29)
}

/// The last step of [`key_check`]: mixes in the name's length and QTYPE (as sent).
#[inline(always)]
pub fn key_check_finish(h: u64, name_len: usize, qtype: [u8; 2]) -> u32 {
    let tail = name_len as u64 | (u16::from_le_bytes(qtype) as u64) << 16;
    (key_check_step(h, tail) >> 32) as u32
}

/// Where [`key_check`] starts.
pub const KEY_CHECK_SEED: u64 = 0x6a09_e667_f3bc_c909;

/// The check of a name map key: over the lower-cased wire name as little-endian 8-byte
/// words (the last one zero-padded; a name of a multiple of 8 bytes ends with a zero
/// word), then its length and QTYPE. The XDP program computes the same while it builds
/// the key, a word at a time.
pub fn key_check(lower_name: &[u8], qtype: [u8; 2]) -> u32 {
    let mut h = KEY_CHECK_SEED;
    for i in 0..=lower_name.len() / 8 {
        let mut word = [0u8; 8];
        let chunk = lower_name.get(i * 8..).unwrap_or(&[]);
        let n = chunk.len().min(8);
        word[..n].copy_from_slice(&chunk[..n]);
        h = key_check_step(h, u64::from_le_bytes(word));
    }
    key_check_finish(h, lower_name.len(), qtype)
}

/// The check of a wildcard answer key: its encloser hash and QTYPE.
#[inline(always)]
pub fn wildcard_key_check(encloser: u64, qtype: [u8; 2]) -> u32 {
    key_check_finish(key_check_step(KEY_CHECK_SEED, encloser), 0, qtype)
}

/// Answer flags, in the low bits of [`AnswerSlot::flags`].
pub mod answer_flags {
    /// Mask of the RCODE (0..=15; extended RCODEs are never cached).
    pub const RCODE_MASK: u16 = 0x000f;
    /// A stale answer served again while the database is unreachable (RFC 8767):
    /// counted as [`crate::stats::Outcome::HitStale`] too.
    pub const STALE: u16 = 0x0010;
    /// Answered with AA clear: a referral to a delegated child zone (RFC 1034 4.3.2).
    pub const NOT_AUTHORITATIVE: u16 = 0x0020;
}

/// One precomputed answer: the bytes that follow the question in the response.
///
/// The data is the answer, authority and additional sections (without OPT), exactly as
/// userspace would send them. Compression pointers in it refer only to offsets that do
/// not depend on the query's letter case, so one slot serves every query whose
/// lower-cased question is the same.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AnswerSlot {
    /// Bytes used in `data`.
    pub len: u16,
    /// RCODE and flags, see [`answer_flags`].
    pub flags: u16,
    /// Section counts, host byte order.
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// One's complement sum of `data[..len]` as 16-bit words in native byte order,
    /// starting at an even offset (see [`crate::wire::csum_add_bytes`]).
    pub csum: u16,
    /// Round robin: `rotate_count` records of `rotate_size` bytes from
    /// `rotate_offset` are rotated per response (count < 2: no rotation). Sizes are even
    /// and the run ends within [`ROTATE_MAX_END`], so it never changes the checksum.
    pub rotate_offset: u16,
    pub rotate_count: u8,
    pub rotate_size: u8,
    /// Weighted answers: this slot answers draws below this value (see [`select::WEIGHTED`]).
    pub pick_below: u32,
    /// How many of the last additional records are optional (userspace drops them from
    /// a response too large for the client; the program passes such queries up).
    pub optional_records: u16,
    pub _reserved: u16,
    pub data: [u8; ANSWER_MAX_LEN],
}

/// Rotated records end within this many bytes of an answer's data: the XDP program
/// masks offsets and lengths into it so the verifier can bound its copies.
pub const ROTATE_MAX_END: usize = 512;

impl AnswerSlot {
    pub const fn zeroed() -> Self {
        Self {
            len: 0,
            flags: 0,
            ancount: 0,
            nscount: 0,
            arcount: 0,
            csum: 0,
            rotate_offset: 0,
            rotate_count: 0,
            rotate_size: 0,
            pick_below: 0,
            optional_records: 0,
            _reserved: 0,
            data: [0; ANSWER_MAX_LEN],
        }
    }
}

/// Per-CPU scratch space of the XDP program (the BPF stack is only 512 bytes).
/// 8-byte aligned, with every array at a multiple of 8, so the program reads and writes
/// them with aligned 8-byte accesses (the BPF backend splits unaligned ones into bytes).
#[repr(C, align(8))]
pub struct Scratch {
    /// Values written and read back so the verifier forgets per-path constants and
    /// merges paths (it does not track what is stored in map memory).
    pub spill: [u32; 8],
    /// Round-robin counter of this CPU.
    pub rotation: u32,
    /// Weighted-pick counter of this CPU (see [`select::WEIGHTED`]).
    pub picks: u32,
    /// The name entry being answered from, written and read back so the paths that
    /// found it (the name maps, the zone's NXDOMAIN, a wildcard) merge for the verifier.
    pub entry: NameEntry,
    /// The query's Client Subnet option as received, zero-padded: echoed in the response
    /// (RFC 7871 section 7.2.1, SCOPE 0; the query's SCOPE is 0 too).
    pub ecs: [u8; crate::limits::ECS_OPTION_MASK + 1],
    /// The query's COOKIE option data as received, zero-padded.
    pub cookie_in: [u8; crate::cookie::COOKIE_BUF_LEN],
    /// The response's COOKIE option, header included, zero-padded.
    pub cookie_out: [u8; crate::cookie::COOKIE_OUT_LEN],
    /// The client's address, as the cookie hash takes it.
    pub cookie_client: crate::cookie::ClientAddress,
    /// The question as received: QNAME, QTYPE, QCLASS, padded for 8-byte reads.
    pub raw: [u8; SCRATCH_RAW_LEN],
    /// The lookup key being built: QTYPE then the lower-cased name, padded.
    pub key: [u8; SCRATCH_KEY_LEN],
    /// The hash of the suffix of the name starting at each byte (see
    /// [`crate::negative`]): the name's at 0, each ancestor's at its label.
    pub suffix_hashes: [u64; SUFFIX_HASHES],
    /// Headers and question, saved while the frame is grown at its head.
    pub block: [u8; SCRATCH_BLOCK_LEN],
}

/// Entries of [`Scratch::suffix_hashes`]: one per byte of the longest name.
pub const SUFFIX_HASHES: usize = 256;

/// Words the key loop handles for the longest bucket: its name and QTYPE plus QCLASS.
pub const SCRATCH_WORDS: usize = (crate::limits::NAME_BUCKETS[3] + 4).div_ceil(8);
/// Room for the question (QNAME + QTYPE + QCLASS) as whole 8-byte words.
pub const SCRATCH_RAW_LEN: usize = SCRATCH_WORDS * 8;
/// Room for the key as whole 8-byte words (the loop writes as many words as it reads).
pub const SCRATCH_KEY_LEN: usize = SCRATCH_WORDS * 8;
/// Room for Ethernet + 2 VLAN tags + IPv6 + UDP + DNS header + the longest question.
pub const SCRATCH_BLOCK_LEN: usize =
    (crate::frame::MAX_DNS_OFFSET + crate::limits::DNS_HEADER_LEN + crate::limits::MAX_NAME_LEN + 4)
        .next_multiple_of(8);

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;
    use crate::wire::{low_bytes_mask, lower_word, lowercase_name_into};

    /// Wire names of 1 to 8 labels of 1 to 30 bytes of any non-zero value, in any case.
    fn wire_name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..=30), 1..=8).prop_map(|labels| {
            let mut out = Vec::new();
            for label in labels {
                out.push(label.len() as u8);
                out.extend(label);
            }
            out.push(0);
            out
        })
    }

    fn lowercase(name: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0u8; name.len()];
        lowercase_name_into(name, &mut out);
        out
    }

    /// The key the XDP program builds (dns-ebpf/src/key.rs) from the name as it arrives,
    /// followed by whatever the packet holds: whole words lower-cased, the word where the
    /// name ends masked to the name, then lower-cased; and the check over those words.
    fn program_key(packet: &[u8], name_len: usize, qtype: [u8; 2]) -> (Vec<u8>, u32) {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            let chunk = packet.get(i * 8..).unwrap_or(&[]);
            let n = chunk.len().min(8);
            w[..n].copy_from_slice(&chunk[..n]);
            u64::from_le_bytes(w)
        };
        let (mut key, mut h) = (Vec::new(), KEY_CHECK_SEED);
        for i in 0..name_len / 8 {
            let lower = lower_word(word(i));
            key.extend(lower.to_le_bytes());
            h = key_check_step(h, lower);
        }
        let lower = lower_word(word(name_len / 8) & low_bytes_mask((name_len % 8) as u64));
        key.extend(lower.to_le_bytes());
        h = key_check_step(h, lower);
        (key, key_check_finish(h, name_len, qtype))
    }

    proptest! {
        /// Userspace (`NameKey::new` and `key_check` over the lower-cased name) and the
        /// program's word-at-a-time build agree for every name in every case, whatever
        /// bytes follow the name in the packet.
        #[test]
        fn keys_and_checks_agree_between_userspace_and_the_program(
            name in wire_name(),
            trailer in proptest::collection::vec(any::<u8>(), 0..12),
            qtype in any::<u16>(),
        ) {
            let qtype_bytes = qtype.to_be_bytes();
            let lower = lowercase(&name);
            let ours = NameKey3::new(&lower, qtype).expect("fits the largest bucket");
            let packet: Vec<u8> = name.iter().chain(&trailer).copied().collect();
            let (words, check) = program_key(&packet, name.len(), qtype_bytes);
            let mut padded = words.clone();
            padded.resize(NAME_BUCKETS[3], 0);
            prop_assert_eq!(&padded[..], &ours.name[..]);
            prop_assert_eq!(check, key_check(&lower, qtype_bytes));
        }

        /// Names that differ after lower-casing never share a key; names that differ only
        /// in case always do.
        #[test]
        fn keys_are_equal_exactly_when_the_lower_cased_names_are(a in wire_name(), b in wire_name(), qtype in any::<u16>()) {
            let (la, lb) = (lowercase(&a), lowercase(&b));
            let (ka, kb) = (NameKey3::new(&la, qtype).expect("fits"), NameKey3::new(&lb, qtype).expect("fits"));
            prop_assert_eq!(ka == kb, la == lb);
            let upper: Vec<u8> = a.iter().map(u8::to_ascii_uppercase).collect();
            prop_assert_eq!(NameKey3::new(&lowercase(&upper), qtype), Some(ka));
        }

        /// The program's eight-bytes-at-once lower-casing is ASCII lower-casing of each
        /// byte (RFC 4343), for any word.
        #[test]
        fn lower_word_is_bytewise_ascii_lowercase(w in any::<u64>()) {
            let expect: [u8; 8] = core::array::from_fn(|i| w.to_le_bytes()[i].to_ascii_lowercase());
            prop_assert_eq!(lower_word(w).to_le_bytes(), expect);
        }
    }
}
