//! Protocol and implementation limits, shared so that both sides use the same bounds.

/// Longest wire-format domain name, root label included (RFC 1035 section 3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Most labels a 255-byte name can hold, the root label included (127 one-byte labels + root).
pub const MAX_LABELS: usize = 128;
/// Longest label (RFC 1035 section 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// The name maps are split by wire name length so that short names (the common case on a
/// platform) use short keys: less kernel memory per entry and a cheaper hash.
/// Each value is the longest wire name (root label included) a bucket holds; each is
/// 2 less than a multiple of 8, so that name + QTYPE fill whole 8-byte words.
pub const NAME_BUCKETS: [usize; 4] = [38, 62, 126, 262];
pub const NAME_BUCKET_COUNT: usize = NAME_BUCKETS.len();

/// Bytes of answer data (the sections after the question) one answer slot holds.
pub const ANSWER_MAX_LEN: usize = 1024;

/// The UDP payload size we advertise in EDNS(0) responses (the DNS Flag Day 2020 value).
pub const DEFAULT_EDNS_PAYLOAD: u16 = 1232;
/// Payload a client without EDNS may receive (RFC 1035 section 4.2.1).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;

pub const DNS_HEADER_LEN: usize = 12;
/// An OPT record with the root owner name and no options (RFC 6891 section 6.1.2).
pub const OPT_RR_LEN: usize = 11;
/// The longest EDNS Client Subnet option (RFC 7871): code, length, family, source and
/// scope prefix lengths, an IPv6 address of 16 bytes.
pub const ECS_OPTION_MAX_LEN: usize = 24;
/// The shortest: no address bytes (a /0 prefix).
pub const ECS_OPTION_MIN_LEN: usize = 8;
/// Masks lengths and indices of the option's buffer for the verifier (a power of two
/// minus one, at least the longest option).
pub const ECS_OPTION_MASK: usize = 31;
const _: () = assert!(ECS_OPTION_MASK + 1 >= ECS_OPTION_MAX_LEN && (ECS_OPTION_MASK + 1).is_power_of_two());

/// Index of the bucket holding names of `wire_len` bytes, if any.
pub const fn bucket_for(wire_len: usize) -> Option<usize> {
    let mut i = 0;
    while i < NAME_BUCKET_COUNT {
        if wire_len <= NAME_BUCKETS[i] {
            return Some(i);
        }
        i += 1;
    }
    None
}
