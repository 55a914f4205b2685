//! Negative answers for names that do not exist, made in the kernel (RFC 8020 style,
//! for random-subdomain floods): userspace publishes which names exist, as hashes of
//! their lower-cased wire form, with what the program must know about each; the program
//! answers a query whose name is not among them, and whose closest existing ancestor
//! says the zone's NXDOMAIN may be used, with that zone's NXDOMAIN answer slot.
//!
//! The hash of a name is the 64-bit FNV-1a of its wire bytes taken from the last (the
//! root label) to the first, started from a per-load random seed: taken backwards, the
//! hash of every suffix is a step of the same pass, so the program hashes a name and
//! all its ancestors in one loop over its bytes.

/// The map of existing names: hash -> [`KnownName`].
pub const KNOWN_NAMES_MAP_NAME: &str = "KNOWN_NAMES";
/// The zones' facts: zone id -> [`ZoneFacts`].
pub const ZONE_FACTS_MAP_NAME: &str = "ZONE_FACTS";
/// One [`NegativeConfig`], index 0.
pub const NEGATIVE_CONFIG_MAP_NAME: &str = "NEGATIVE_CONFIG";

/// Answers synthesized from wildcards: [`WildcardKey`] -> `maps::NameEntry`.
pub const WILDCARD_ANSWERS_MAP_NAME: &str = "WILDCARD_ANSWERS";

/// Entries of the zone facts map.
pub const MAX_ZONES: u32 = 65536;
/// Entries of the wildcard answer map (least recently used go first).
pub const MAX_WILDCARD_ANSWERS: u32 = 65536;

/// Key of the wildcard answers: the closest encloser's hash (the parent of the `*`
/// name, RFC 4592) and QTYPE. The answer is one whose bytes do not depend on the
/// question (its owner is a pointer to the question): userspace installs it only then.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WildcardKey {
    pub encloser: u64,
    pub qtype: [u8; 2],
    pub _pad: [u8; 6],
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// One step of the name hash.
#[inline(always)]
pub const fn hash_step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(FNV_PRIME)
}

/// The hash of a lower-cased, uncompressed wire name.
pub fn name_hash(seed: u64, lower_wire: &[u8]) -> u64 {
    lower_wire.iter().rev().fold(seed, |h, b| hash_step(h, *b))
}

/// What the program knows of an existing name.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownName {
    /// The zone holding it (the key of [`ZONE_FACTS_MAP_NAME`]).
    pub zone: u32,
    /// See [`known_flags`].
    pub flags: u16,
    /// Its wire length: a hash whose length differs is another name.
    pub wire_len: u16,
}

pub mod known_flags {
    /// A delegation (NS below the apex): names below it get referrals.
    pub const CUT: u16 = 1;
    /// Has a `*` child: names below it that do not exist are synthesized (RFC 4592),
    /// from the wildcard answers.
    pub const WILDCARD: u16 = 2;
}

/// What the program knows of a zone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneFacts {
    /// The answer slot of the zone's NXDOMAIN (its SOA, uncompressed: the same bytes
    /// after every question).
    pub nxdomain_slot: u32,
    /// See [`zone_flags`].
    pub flags: u32,
}

pub mod zone_flags {
    /// Every name of the zone is known (its instances are in our database): absent names
    /// may be answered NXDOMAIN.
    pub const ENUMERABLE: u32 = 1;
}

/// Whether and how the program makes negative answers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NegativeConfig {
    /// CLOCK_MONOTONIC time until which the published names may be trusted: userspace
    /// renews it while it follows the database; a daemon that is gone stops the
    /// negative answers within this lease.
    pub valid_until_ns: u64,
    /// The hash seed.
    pub seed: u64,
}

/// Query types whose NXDOMAIN userspace answers like any other (AXFR and IXFR are
/// refused, MAILA and MAILB not implemented, OPT is malformed as a question).
pub const fn nxdomain_applies(qtype: u16) -> bool {
    !matches!(qtype, 41 | 251 | 252 | 253 | 254)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_hashes_are_steps_of_one_backward_pass() {
        let name = b"\x03www\x07example\x03org\x00";
        let mut h = 7u64;
        let mut at = [0u64; 17];
        for p in (0..name.len()).rev() {
            h = hash_step(h, name[p]);
            at[p] = h;
        }
        assert_eq!(at[0], name_hash(7, name));
        assert_eq!(at[4], name_hash(7, b"\x07example\x03org\x00"));
        assert_ne!(name_hash(7, name), name_hash(8, name));
    }
}
