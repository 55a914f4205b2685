//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): the server
//! cookie is version 1, three reserved bytes, a 32-bit timestamp (seconds since the
//! epoch) and SipHash-2-4 over client cookie | version | reserved | timestamp | client
//! address, keyed with the server secret. The XDP program and userspace compute it with
//! [`server_cookie_hash`] from the same secret (shared through [`CookieConfig`]), so
//! either path can verify and send the other's cookies, as can any RFC 9018 server of
//! an anycast set sharing the secret.

/// The EDNS option code of COOKIE.
pub const EDNS_OPTION_COOKIE: u16 = 10;
pub const CLIENT_COOKIE_LEN: usize = 8;
/// Our server cookies (RFC 9018): version, reserved, timestamp, hash.
pub const SERVER_COOKIE_LEN: usize = 16;
/// The option data of a response: client cookie and our server cookie.
pub const COOKIE_DATA_LEN: usize = CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN;
/// The whole option of a response, header included.
pub const COOKIE_OPTION_LEN: usize = 4 + COOKIE_DATA_LEN;
/// Server cookies are 8 to 32 bytes (RFC 7873 section 4): option data lengths.
pub const MIN_COOKIE_DATA: usize = CLIENT_COOKIE_LEN;
pub const MAX_COOKIE_DATA: usize = CLIENT_COOKIE_LEN + 32;
pub const SERVER_COOKIE_VERSION: u8 = 1;
/// The XDP program's buffer of a query's option data (a power of two above
/// [`MAX_COOKIE_DATA`], so a masked length bounds the copy).
pub const COOKIE_BUF_LEN: usize = 64;
const _: () = assert!(COOKIE_BUF_LEN.is_power_of_two() && COOKIE_BUF_LEN > MAX_COOKIE_DATA);
/// The buffer of the response's option, header included, zero-padded to whole words.
pub const COOKIE_OUT_LEN: usize = 32;
const _: () = assert!(COOKIE_OUT_LEN >= COOKIE_OPTION_LEN && COOKIE_OUT_LEN.is_multiple_of(8));

/// A server cookie older than this is replaced by a fresh one (RFC 9018 section 4.3).
pub const REFRESH_AFTER_S: u32 = 1800;
/// A server cookie older than this is invalid.
pub const VALID_FOR_S: u32 = 3600;
/// A server cookie dated further ahead than this is invalid.
pub const FUTURE_SKEW_S: u32 = 300;

/// One [`CookieConfig`], index 0.
pub const COOKIE_CONFIG_MAP_NAME: &str = "COOKIE_CONFIG";

/// The secrets and the clock the XDP program needs; written by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CookieConfig {
    /// 0: the program does not answer queries with a COOKIE option (they go up).
    pub enabled: u32,
    /// 1: `previous` still validates cookies (after a rotation).
    pub has_previous: u32,
    /// The current secret, as SipHash's two little-endian key words.
    pub secret: [u64; 2],
    pub previous: [u64; 2],
    /// Unix time minus CLOCK_MONOTONIC, in seconds: the program's clock for timestamps.
    pub unix_minus_monotonic_s: i64,
}

/// A secret (16 bytes) as SipHash key words.
pub const fn key_words(secret: &[u8; 16]) -> [u64; 2] {
    let mut k0 = [0u8; 8];
    let mut k1 = [0u8; 8];
    let mut i = 0;
    while i < 8 {
        k0[i] = secret[i];
        k1[i] = secret[8 + i];
        i += 1;
    }
    [u64::from_le_bytes(k0), u64::from_le_bytes(k1)]
}

#[inline(always)]
const fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of a message given as its whole 8-byte little-endian words and the last
/// block (the 0 to 7 remaining bytes, little-endian, with the message length in the top
/// byte), as the reference implementation splits it.
#[inline(always)]
pub fn siphash24(key: [u64; 2], words: &[u64], last: u64) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    for m in words {
        v[3] ^= *m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= *m;
    }
    v[3] ^= last;
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// A client's address as the hash takes it: IPv4 in the first 4 bytes, or IPv6 (the
/// XDP program keeps it in its scratch memory, so it has a C layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress {
    pub bytes: [u8; 16],
    /// 1: IPv6.
    pub v6: u32,
    pub _pad: u32,
}

impl ClientAddress {
    pub const fn v4(a: [u8; 4]) -> Self {
        Self { bytes: [a[0], a[1], a[2], a[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], v6: 0, _pad: 0 }
    }

    pub const fn v6(bytes: [u8; 16]) -> Self {
        Self { bytes, v6: 1, _pad: 0 }
    }
}

#[inline(always)]
fn le_word(b: &[u8; 16], at: usize) -> u64 {
    u64::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5], b[at + 6], b[at + 7]])
}

/// A server cookie's hash for `client` (its 8 bytes as a little-endian word).
#[inline(always)]
pub fn server_cookie_hash(
    key: &[u64; 2],
    client_cookie: &[u8; 8],
    timestamp: u32,
    client: &ClientAddress,
) -> u64 {
    let t = timestamp.to_be_bytes();
    let w0 = u64::from_le_bytes(*client_cookie);
    let w1 = u64::from_le_bytes([SERVER_COOKIE_VERSION, 0, 0, 0, t[0], t[1], t[2], t[3]]);
    if client.v6 != 0 {
        siphash24(*key, &[w0, w1, le_word(&client.bytes, 0), le_word(&client.bytes, 8)], 32 << 56)
    } else {
        let a = &client.bytes;
        siphash24(*key, &[w0, w1], (20 << 56) | u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as u64)
    }
}

/// Writes our server cookie for `client` at `timestamp` into `out`.
#[inline(always)]
pub fn write_server_cookie(
    out: &mut [u8; SERVER_COOKIE_LEN],
    key: &[u64; 2],
    client_cookie: &[u8; 8],
    timestamp: u32,
    client: &ClientAddress,
) {
    let hash = server_cookie_hash(key, client_cookie, timestamp, client).to_le_bytes();
    let t = timestamp.to_be_bytes();
    *out = [
        SERVER_COOKIE_VERSION,
        0,
        0,
        0,
        t[0],
        t[1],
        t[2],
        t[3],
        hash[0],
        hash[1],
        hash[2],
        hash[3],
        hash[4],
        hash[5],
        hash[6],
        hash[7],
    ];
}

/// Our server cookie for `client` at `timestamp` (the tests' shorthand).
#[cfg(test)]
fn server_cookie(
    key: &[u64; 2],
    client_cookie: &[u8; 8],
    timestamp: u32,
    client: &ClientAddress,
) -> [u8; 16] {
    let mut out = [0u8; SERVER_COOKIE_LEN];
    write_server_cookie(&mut out, key, client_cookie, timestamp, client);
    out
}

/// What a query's server cookie is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieCheck {
    /// Ours, made with the current secret and recent: sent back as it is.
    Fresh = 0,
    /// Ours and valid, but old or made with the previous secret: a new one is sent.
    Valid,
    /// None, or not ours, expired, dated ahead, or forged: a new one is sent (RFC 7873
    /// section 5.2.3), and the query is treated as one without a server cookie.
    Invalid,
}

impl CookieCheck {
    pub const ALL: [CookieCheck; 3] = [CookieCheck::Fresh, CookieCheck::Valid, CookieCheck::Invalid];

    /// Stable name used in metrics.
    pub const fn name(self) -> &'static str {
        match self {
            CookieCheck::Fresh => "fresh",
            CookieCheck::Valid => "valid",
            CookieCheck::Invalid => "invalid",
        }
    }

    pub const fn is_valid(self) -> bool {
        !matches!(self, CookieCheck::Invalid)
    }
}

/// Checks a received server cookie (None: none, or not of our 16-byte format) for
/// `client` at `now` (seconds since the epoch, serial arithmetic on 32 bits).
#[inline(always)]
pub fn check_server_cookie(
    config: &CookieConfig,
    client_cookie: &[u8; 8],
    server: Option<&[u8; SERVER_COOKIE_LEN]>,
    client: &ClientAddress,
    now: u32,
) -> CookieCheck {
    let Some(server) = server else { return CookieCheck::Invalid };
    if server[0] != SERVER_COOKIE_VERSION {
        return CookieCheck::Invalid;
    }
    let timestamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
    let age = now.wrapping_sub(timestamp);
    let ahead = timestamp.wrapping_sub(now);
    if age > VALID_FOR_S && ahead > FUTURE_SKEW_S {
        return CookieCheck::Invalid;
    }
    let hash = le_word(server, 8);
    if server_cookie_hash(&config.secret, client_cookie, timestamp, client) == hash {
        // Dated ahead within the skew counts as fresh: it is ours and recent.
        if age <= REFRESH_AFTER_S || ahead <= FUTURE_SKEW_S {
            return CookieCheck::Fresh;
        }
        return CookieCheck::Valid;
    }
    if config.has_previous != 0
        && server_cookie_hash(&config.previous, client_cookie, timestamp, client) == hash
    {
        return CookieCheck::Valid;
    }
    CookieCheck::Invalid
}

/// The server cookie a response carries, written to `out`: the received one if it is
/// fresh (sent back as it is), else a new one for `now`; returns what the received one
/// was worth. The one rule both paths apply, so their responses are the same bytes.
#[inline(always)]
pub fn answer_server_cookie(
    out: &mut [u8; SERVER_COOKIE_LEN],
    config: &CookieConfig,
    client_cookie: &[u8; 8],
    received: Option<&[u8; SERVER_COOKIE_LEN]>,
    client: &ClientAddress,
    now: u32,
) -> CookieCheck {
    let check = check_server_cookie(config, client_cookie, received, client, now);
    match (check, received) {
        (CookieCheck::Fresh, Some(received)) => *out = *received,
        _ => write_server_cookie(out, &config.secret, client_cookie, now, client),
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference SipHash-2-4 vectors (the paper's appendix): key 00..0f, messages
    /// 00, 00 01, ... of every length.
    #[test]
    fn siphash24_matches_the_reference_vectors() {
        let key = key_words(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        let message = |len: usize| -> ([u64; 4], usize, u64) {
            let bytes: [u8; 32] = core::array::from_fn(|i| i as u8);
            let mut words = [0u64; 4];
            for (w, chunk) in words.iter_mut().zip(bytes[..len].chunks_exact(8)) {
                *w = u64::from_le_bytes(chunk.try_into().unwrap());
            }
            let whole = len / 8;
            let mut last = (len as u64) << 56;
            for (i, b) in bytes[whole * 8..len].iter().enumerate() {
                last |= (*b as u64) << (8 * i);
            }
            (words, whole, last)
        };
        // From the SipHash paper / reference implementation's vectors.h.
        for (len, expected) in [
            (0, 0x726f_db47_dd0e_0e31u64),
            (1, 0x74f8_39c5_93dc_67fd),
            (8, 0x93f5_f579_9a93_2462),
            (15, 0xa129_ca61_49be_45e5),
        ] {
            let (words, whole, last) = message(len);
            assert_eq!(siphash24(key, &words[..whole], last), expected, "length {len}");
        }
    }

    const SECRET: [u8; 16] = *b"0123456789abcdef";

    fn config() -> CookieConfig {
        CookieConfig { enabled: 1, secret: key_words(&SECRET), ..CookieConfig::default() }
    }

    #[test]
    fn our_cookie_is_fresh_then_valid_then_expired_and_others_are_invalid() {
        let c = config();
        let client = ClientAddress::v4([198, 18, 0, 2]);
        let cc = *b"clientck";
        let made = server_cookie(&c.secret, &cc, 1_000_000, &client);
        let check = |cookie: &[u8; 16], from: &ClientAddress, now| {
            check_server_cookie(&c, &cc, Some(cookie), from, now)
        };
        assert_eq!(check(&made, &client, 1_000_000 + 10), CookieCheck::Fresh);
        assert_eq!(check(&made, &client, 1_000_000 + 2000), CookieCheck::Valid);
        assert_eq!(check(&made, &client, 1_000_000 + 4000), CookieCheck::Invalid);
        assert_eq!(check(&made, &client, 1_000_000 - 200), CookieCheck::Fresh);
        assert_eq!(check(&made, &client, 1_000_000 - 400), CookieCheck::Invalid);
        assert_eq!(check(&made, &ClientAddress::v4([198, 18, 0, 3]), 1_000_010), CookieCheck::Invalid);
        assert_eq!(
            check_server_cookie(&c, b"otherclt", Some(&made), &client, 1_000_010),
            CookieCheck::Invalid
        );
        let mut forged = made;
        forged[15] ^= 1;
        assert_eq!(check(&forged, &client, 1_000_010), CookieCheck::Invalid);
        assert_eq!(check_server_cookie(&c, &cc, None, &client, 1_000_010), CookieCheck::Invalid);
        // Across the 32-bit wrap (serial arithmetic).
        let late = server_cookie(&c.secret, &cc, u32::MAX - 5, &client);
        assert_eq!(check(&late, &client, 10), CookieCheck::Fresh);
    }

    #[test]
    fn the_previous_secret_still_validates_after_a_rotation() {
        let old = config();
        let v6 = ClientAddress::v6([0xfd, 0, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let made = server_cookie(&old.secret, b"clientck", 5000, &v6);
        let rotated = CookieConfig {
            secret: key_words(b"fedcba9876543210"),
            previous: old.secret,
            has_previous: 1,
            ..old
        };
        assert_eq!(check_server_cookie(&rotated, b"clientck", Some(&made), &v6, 5010), CookieCheck::Valid);
        let forgotten = CookieConfig { has_previous: 0, ..rotated };
        assert_eq!(
            check_server_cookie(&forgotten, b"clientck", Some(&made), &v6, 5010),
            CookieCheck::Invalid
        );
    }
}
