//! Serial number arithmetic (RFC 1982), for SOA serials.

/// Whether serial `a` is newer than `b` (RFC 1982 section 3.2: undefined when they are
/// exactly 2^31 apart; treated as not newer).
pub const fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

/// The serial after `s` (RFC 1982 section 3.1: addition of 1).
pub const fn next(s: u32) -> u32 {
    s.wrapping_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1982_comparison_wraps() {
        assert!(is_newer(2, 1));
        assert!(!is_newer(1, 2));
        assert!(!is_newer(7, 7));
        assert!(is_newer(0, u32::MAX), "0 follows 4294967295");
        assert!(is_newer(5, u32::MAX - 5));
        assert!(!is_newer(1 << 31, 0), "2^31 apart: undefined, not newer");
        assert_eq!(next(u32::MAX), 0);
    }
}
