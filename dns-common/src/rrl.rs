//! Response rate limiting (RRL, with BIND's and Knot's semantics): responses per second
//! per client network (/24 for IPv4, /56 for IPv6) and per answer token. Over the rate,
//! every `slip`-th response goes out truncated (TC set, no records) so a real resolver
//! retries over TCP, which cannot be spoofed; the others are dropped. A spoofed source
//! therefore gets at most the rate of answers, plus a slip of small ones.
//!
//! The XDP program and userspace account in the same kernel map with [`account`], so a
//! client is limited once, whichever path answers it. The token of a response is the
//! same on both paths:
//! - an answer for a name (positive, NODATA, a referral, a wildcard's answer, an
//!   NXDOMAIN of a zone whose names cannot be enumerated): the name map key's check
//!   ([`crate::maps::key_check`] of the lower-cased QNAME and QTYPE);
//! - an NXDOMAIN of an enumerable zone (the answer of a random-subdomain flood): the
//!   zone, so a flood of fresh names shares one bucket per client network;
//! - an error (REFUSED, SERVFAIL, FORMERR, NOTIMP; userspace only): the zone if there is
//!   one, else one shared token.

/// Buckets: [`RrlKey`] -> [`RrlBucket`], least recently used evicted (an evicted
/// bucket starts full again).
pub const RRL_BUCKETS_MAP_NAME: &str = "RRL_BUCKETS";
/// One [`RrlConfig`], index 0.
pub const RRL_CONFIG_MAP_NAME: &str = "RRL_CONFIG";
/// Networks never limited (LPM tries by family, values unused).
pub const RRL_EXEMPT_V4_MAP_NAME: &str = "RRL_EXEMPT_V4";
pub const RRL_EXEMPT_V6_MAP_NAME: &str = "RRL_EXEMPT_V6";

/// Exempt prefixes per address family.
pub const RRL_EXEMPT_PREFIXES: u32 = 1024;
/// Default number of buckets.
pub const DEFAULT_RRL_BUCKETS: u32 = 1 << 17;
/// Bytes of the client address that name its network: /24 and /56.
pub const IPV4_NETWORK_BYTES: usize = 3;
pub const IPV6_NETWORK_BYTES: usize = 7;

/// What a response's token stands for (see the module documentation).
pub mod token_kind {
    pub const NAME: u8 = 1;
    pub const ZONE_NXDOMAIN: u8 = 2;
    pub const ERROR: u8 = 3;
}

/// Key of the bucket map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RrlKey {
    /// The client's network: its first 3 (IPv4) or 7 (IPv6) address bytes, zero padded.
    pub network: [u8; 8],
    pub token: u32,
    /// One of [`token_kind`].
    pub kind: u8,
    /// 4 or 6.
    pub family: u8,
    pub _pad: [u8; 2],
}

impl RrlKey {
    pub const fn v4(address: [u8; 4], kind: u8, token: u32) -> Self {
        Self { network: network_of(&address, IPV4_NETWORK_BYTES), token, kind, family: 4, _pad: [0; 2] }
    }

    pub const fn v6(address: [u8; 16], kind: u8, token: u32) -> Self {
        Self { network: network_of(&address, IPV6_NETWORK_BYTES), token, kind, family: 6, _pad: [0; 2] }
    }
}

/// The first `bytes` bytes of `address`, zero padded to 8.
const fn network_of<const N: usize>(address: &[u8; N], bytes: usize) -> [u8; 8] {
    let mut network = [0u8; 8];
    let mut i = 0;
    while i < bytes && i < N && i < 8 {
        network[i] = address[i];
        i += 1;
    }
    network
}

/// A bucket: a token balance credited `rate` per second up to `rate`, spent one per
/// response, and owed down to `-rate * window` (so a client that floods is limited for
/// up to `window` seconds after it stops, as in BIND).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RrlBucket {
    /// The second (CLOCK_MONOTONIC) of the last credit.
    pub second: u32,
    pub balance: i32,
    /// Responses over the rate so far: every `slip`-th of them is slipped.
    pub over: u32,
    pub _pad: u32,
}

/// The limits; `rate` 0 turns limiting off.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per bucket.
    pub rate: u32,
    /// Every `slip`-th response over the rate is sent truncated; 0: none (all dropped),
    /// 1: all.
    pub slip: u32,
    /// Seconds of debt a bucket can run up.
    pub window: u32,
    pub _pad: u32,
}

/// What becomes of one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Sent truncated: TC set, no records but OPT.
    Slip,
    Drop,
}

/// A bucket seen for the first time at `now_s`: full.
pub const fn new_bucket(now_s: u32, config: &RrlConfig) -> RrlBucket {
    RrlBucket { second: now_s, balance: clamp_rate(config.rate), over: 0, _pad: 0 }
}

const fn clamp_rate(rate: u32) -> i32 {
    if rate > i32::MAX as u32 / 2 { i32::MAX / 2 } else { rate as i32 }
}

/// Accounts one response in `bucket` at second `now_s`.
#[inline(always)]
pub fn account(bucket: &mut RrlBucket, now_s: u32, config: &RrlConfig) -> Verdict {
    if config.rate == 0 {
        return Verdict::Send;
    }
    let rate = clamp_rate(config.rate) as i64;
    if now_s != bucket.second {
        // A clock that went back (another CPU's coarse tick) credits nothing.
        let elapsed = if now_s > bucket.second { (now_s - bucket.second) as i64 } else { 0 };
        // Capped before multiplying: a long-idle bucket is simply full.
        let elapsed = if elapsed > config.window as i64 + 1 { config.window as i64 + 1 } else { elapsed };
        let credited = bucket.balance as i64 + elapsed * rate;
        bucket.balance = if credited > rate { rate as i32 } else { credited as i32 };
        bucket.second = now_s;
    }
    if bucket.balance > 0 {
        bucket.balance -= 1;
        return Verdict::Send;
    }
    let floor = -(rate * config.window as i64);
    let owed = bucket.balance as i64 - 1;
    bucket.balance = if owed < floor { floor as i32 } else { owed as i32 };
    bucket.over = bucket.over.wrapping_add(1);
    if config.slip != 0 && bucket.over.is_multiple_of(config.slip) { Verdict::Slip } else { Verdict::Drop }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    const CONFIG: RrlConfig = RrlConfig { rate: 5, slip: 2, window: 3, _pad: 0 };

    fn run(bucket: &mut RrlBucket, now: u32, n: usize) -> Vec<Verdict> {
        (0..n).map(|_| account(bucket, now, &CONFIG)).collect()
    }

    #[test]
    fn rate_then_every_slipth_response_truncated_the_rest_dropped() {
        let mut b = new_bucket(100, &CONFIG);
        let v = run(&mut b, 100, 10);
        assert_eq!(&v[..5], &[Verdict::Send; 5]);
        assert_eq!(&v[5..], &[Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip, Verdict::Drop]);
    }

    #[test]
    fn debt_is_bounded_by_the_window_and_paid_back_at_the_rate() {
        let mut b = new_bucket(0, &CONFIG);
        run(&mut b, 0, 1000);
        assert_eq!(b.balance, -15, "at most rate * window owed");
        // 3 seconds pay the debt back to 0: still limited.
        assert_ne!(account(&mut b, 3, &CONFIG), Verdict::Send);
        // One more second earns answers again.
        let mut b2 = b;
        b2.balance = 0;
        assert_eq!(account(&mut b2, 4, &CONFIG), Verdict::Send);
    }

    #[test]
    fn an_idle_bucket_is_full_and_never_more() {
        let mut b = new_bucket(0, &CONFIG);
        run(&mut b, 0, 3);
        let v = run(&mut b, u32::MAX, 7);
        assert_eq!(v.iter().filter(|v| **v == Verdict::Send).count(), 5);
        // A clock going back credits nothing and does not panic.
        assert_eq!(account(&mut b, 1, &CONFIG), Verdict::Drop);
    }

    #[test]
    fn rate_zero_is_off_and_slip_zero_drops_everything_over() {
        let mut b = RrlBucket::default();
        let off = RrlConfig { rate: 0, ..CONFIG };
        assert!((0..100).all(|_| account(&mut b, 0, &off) == Verdict::Send));
        let no_slip = RrlConfig { slip: 0, ..CONFIG };
        let mut b = new_bucket(0, &no_slip);
        let v: Vec<_> = (0..20).map(|_| account(&mut b, 0, &no_slip)).collect();
        assert!(v[5..].iter().all(|v| *v == Verdict::Drop));
        let all_slip = RrlConfig { slip: 1, ..CONFIG };
        let mut b = new_bucket(0, &all_slip);
        let v: Vec<_> = (0..20).map(|_| account(&mut b, 0, &all_slip)).collect();
        assert!(v[5..].iter().all(|v| *v == Verdict::Slip));
    }

    #[test]
    fn networks_are_slash_24_and_slash_56() {
        let a = RrlKey::v4([198, 18, 7, 1], token_kind::NAME, 9);
        assert_eq!(a, RrlKey::v4([198, 18, 7, 200], token_kind::NAME, 9));
        assert_ne!(a, RrlKey::v4([198, 18, 8, 1], token_kind::NAME, 9));
        let mut v6 = [0u8; 16];
        v6[..8].copy_from_slice(&[0xfd, 0, 0, 0x53, 0, 0, 0x12, 0x34]);
        let b = RrlKey::v6(v6, token_kind::ZONE_NXDOMAIN, 1);
        let mut other_host = v6;
        other_host[7] = 0xff;
        other_host[15] = 1;
        assert_eq!(b, RrlKey::v6(other_host, token_kind::ZONE_NXDOMAIN, 1), "same /56");
        let mut other_net = v6;
        other_net[6] = 0x13;
        assert_ne!(b, RrlKey::v6(other_net, token_kind::ZONE_NXDOMAIN, 1));
    }
}
