//! DNS and checksum wire helpers that the XDP program and userspace both apply, so the
//! two build byte-identical responses.
//!
//! Checksums follow the kernel's convention: 16-bit words summed in native byte order
//! (RFC 1071 section 2 (B): the sum is byte-order independent), folded, and stored back
//! in native order.

use crate::limits::PLAIN_UDP_PAYLOAD;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
/// Zone transfers (RFC 1995, RFC 5936): never answered by the fast path.
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const CLASS_IN: u16 = 1;

/// Header flag bits, first flags byte.
pub const FLAG1_QR: u8 = 0x80;
pub const FLAG1_OPCODE_MASK: u8 = 0x78;
pub const FLAG1_AA: u8 = 0x04;
pub const FLAG1_TC: u8 = 0x02;
pub const FLAG1_RD: u8 = 0x01;
/// Header flag bits, second flags byte.
pub const FLAG2_RA: u8 = 0x80;
pub const FLAG2_Z: u8 = 0x40;
pub const FLAG2_AD: u8 = 0x20;
pub const FLAG2_CD: u8 = 0x10;
pub const FLAG2_RCODE_MASK: u8 = 0x0f;

/// DNS RCODEs (RFC 1035 section 4.1.1; RFC 2136 section 2.2 for UPDATE; RFC 6891 for
/// BADVERS, whose upper bits travel in the OPT record). Values above 15 need EDNS.
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const YXRRSET: u16 = 7;
    pub const NXRRSET: u16 = 8;
    pub const NOTAUTH: u16 = 9;
    pub const NOTZONE: u16 = 10;
    pub const BADVERS: u16 = 16;

    /// The mnemonic of an RCODE, as dig prints it (metrics labels, `instadns query`).
    pub const fn name(rcode: u16) -> &'static str {
        match rcode {
            NOERROR => "NOERROR",
            FORMERR => "FORMERR",
            SERVFAIL => "SERVFAIL",
            NXDOMAIN => "NXDOMAIN",
            NOTIMP => "NOTIMP",
            REFUSED => "REFUSED",
            YXDOMAIN => "YXDOMAIN",
            YXRRSET => "YXRRSET",
            NXRRSET => "NXRRSET",
            NOTAUTH => "NOTAUTH",
            NOTZONE => "NOTZONE",
            BADVERS => "BADVERS",
            _ => "OTHER",
        }
    }
}

/// Source ports never answered, on either path: 0 cannot be answered, and a reply to
/// echo, daytime, quote, chargen or time could start a loop between two servers
/// (CVE-2024-2169). Port 53 stays legitimate.
pub const LOOP_PRONE_PORTS: [u16; 6] = [0, 7, 13, 17, 19, 37];

pub const fn is_loop_prone_port(port: u16) -> bool {
    let mut i = 0;
    while i < LOOP_PRONE_PORTS.len() {
        if LOOP_PRONE_PORTS[i] == port {
            return true;
        }
        i += 1;
    }
    false
}

/// EDNS(0) DO bit in the OPT record's flags (RFC 3225).
pub const EDNS_FLAG_DO: u16 = 0x8000;
/// EDNS Client Subnet option code (RFC 7871 section 6).
pub const EDNS_OPTION_ECS: u16 = 8;

/// The two flags bytes of a response to a query with flags `query`.
///
/// QR set; opcode echoed; AA as given; RD and CD copied (RFC 1035 section 4.1.1,
/// RFC 4035 section 3.1.6); TC, RA, Z and AD clear; the low four RCODE bits.
pub const fn response_flags(query: [u8; 2], aa: bool, rcode: u8) -> [u8; 2] {
    let aa_bit = if aa { FLAG1_AA } else { 0 };
    [
        FLAG1_QR | (query[0] & FLAG1_OPCODE_MASK) | aa_bit | (query[0] & FLAG1_RD),
        (query[1] & FLAG2_CD) | (rcode & FLAG2_RCODE_MASK),
    ]
}

/// The OPT record of a response (RFC 6891 section 6.1): root owner, our UDP payload
/// size, the upper eight bits of the RCODE, version 0, the DO bit copied from the
/// query (RFC 3225 section 3), every other flag clear and no options (unknown options
/// are not echoed, RFC 6891 section 6.1.2).
pub const fn opt_record(payload: u16, ext_rcode: u8, dnssec_ok: bool) -> [u8; 11] {
    let p = payload.to_be_bytes();
    let flags = if dnssec_ok { EDNS_FLAG_DO } else { 0 }.to_be_bytes();
    let t = TYPE_OPT.to_be_bytes();
    [0, t[0], t[1], p[0], p[1], ext_rcode, 0, flags[0], flags[1], 0, 0]
}

/// Largest DNS message we may send over UDP to a client: 512 without EDNS, otherwise
/// the client's advertised size (at least 512, RFC 6891 section 6.2.5) capped by ours.
pub const fn udp_response_limit(client_edns_payload: Option<u16>, our_payload: u16) -> u16 {
    match client_edns_payload {
        None => PLAIN_UDP_PAYLOAD,
        Some(client) => {
            let client = if client < PLAIN_UDP_PAYLOAD { PLAIN_UDP_PAYLOAD } else { client };
            if client < our_payload { client } else { our_payload }
        }
    }
}

/// Lower-cases the ASCII letters of eight bytes at once, leaving every other byte
/// (label lengths, digits, bytes >= 0x80) untouched (RFC 4343: DNS case folding is
/// ASCII only). Branch-free so the verifier sees one path.
#[inline(always)]
pub const fn lower_word(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    // High bit of each byte set where low7 >= 'A', and where low7 > 'Z'.
    let ge_a = low7.wrapping_add(ONES * (0x80 - b'A' as u64));
    let gt_z = low7.wrapping_add(ONES * (0x7f - b'Z' as u64));
    // Upper case: an ASCII byte (high bit clear) in 'A'..='Z'.
    let upper = (ge_a ^ gt_z) & !w & HIGH;
    w | (upper >> 2)
}

/// Mask keeping the first `n` bytes (0..=8) of a native-endian little-endian word.
#[inline(always)]
pub const fn low_bytes_mask(n: u64) -> u64 {
    if n >= 8 { u64::MAX } else { (1u64 << (n * 8)) - 1 }
}

/// Lower-cases a wire-format name (ASCII letters only).
pub fn lowercase_name_into(name: &[u8], out: &mut [u8]) {
    for (o, b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
}

/// One's complement sum of `data` as native-order 16-bit words, starting at an even
/// offset, added to `sum` (unfolded).
pub fn csum_add_bytes(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_ne_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += u16::from_ne_bytes([*last, 0]) as u64;
    }
    sum
}

/// Folds a 64-bit one's complement accumulator to 16 bits.
#[inline(always)]
pub const fn csum_fold(sum: u64) -> u16 {
    let s = (sum & 0xffff_ffff) + (sum >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The sum of data that starts at an odd offset is the byte-swapped sum of the same
/// data at an even offset (RFC 1071 section 2 (B)).
#[inline(always)]
pub const fn csum_at_parity(even_sum: u16, odd_offset: bool) -> u16 {
    if odd_offset { even_sum.swap_bytes() } else { even_sum }
}

/// The value to store in a UDP checksum field: the complement of the folded sum, with
/// 0 sent as 0xffff (RFC 768; zero means "no checksum" on IPv4 and is invalid on IPv6).
#[inline(always)]
pub const fn csum_finish(sum: u64) -> u16 {
    let c = !csum_fold(sum);
    if c == 0 { 0xffff } else { c }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn lower_word_matches_ascii_lowercase_for_every_byte() {
        for b in 0u8..=255 {
            let w = u64::from_le_bytes([b, b'Z', b, 0x80 | b'A', b'@', b'[', b'a', b]);
            let expect: [u8; 8] = core::array::from_fn(|i| w.to_le_bytes()[i].to_ascii_lowercase());
            assert_eq!(lower_word(w).to_le_bytes(), expect, "byte {b:#x}");
        }
    }

    #[test]
    fn csum_matches_rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (big-endian words).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let s = csum_fold(csum_add_bytes(0, &data));
        assert_eq!(u16::from_be_bytes(s.to_ne_bytes()), 0xddf2);
    }

    #[test]
    fn odd_offset_sum_is_byte_swapped() {
        let data = [0x12, 0x34, 0x56, 0x78, 0x9a];
        let mut shifted = std::vec![0u8];
        shifted.extend_from_slice(&data);
        let even = csum_fold(csum_add_bytes(0, &data));
        let odd = csum_fold(csum_add_bytes(0, &shifted));
        assert_eq!(csum_at_parity(even, true), odd);
    }

    #[test]
    fn response_flags_copy_rd_cd_and_clear_the_rest() {
        // Query with RD, TC, CD, AD, Z and RA set: only RD and CD survive.
        let q = [FLAG1_RD | FLAG1_TC | FLAG1_AA, FLAG2_RA | FLAG2_Z | FLAG2_AD | FLAG2_CD | 0x5];
        assert_eq!(response_flags(q, true, 3), [FLAG1_QR | FLAG1_AA | FLAG1_RD, FLAG2_CD | 3]);
    }

    #[test]
    fn udp_limit_follows_rfc6891() {
        assert_eq!(udp_response_limit(None, 1232), 512);
        assert_eq!(udp_response_limit(Some(100), 1232), 512);
        assert_eq!(udp_response_limit(Some(4096), 1232), 1232);
        assert_eq!(udp_response_limit(Some(800), 1232), 800);
    }
}
