//! Response rate limiting (see `dns_common::rrl`): the bucket of the client's network
//! and the response's token, in the map userspace accounts in too.

use core::ptr::read_unaligned;

use aya_ebpf::{
    helpers::generated::bpf_ktime_get_coarse_ns, maps::lpm_trie::Key as LpmKey, programs::XdpContext,
};
use dns_common::{
    frame::{IPV4_SOURCE, IPV6_SOURCE},
    rrl::{RrlKey, Verdict, account, new_bucket},
    stats::Outcome,
};
use dns_ebpf::ptr_at;

use crate::{RRL_BUCKETS, RRL_CONFIG, RRL_EXEMPT_V4, RRL_EXEMPT_V6, parse::Frame};

/// What a response is counted against (one of `dns_common::rrl::token_kind`, and its
/// value).
pub struct Token {
    pub kind: u8,
    pub value: u32,
}

/// Bucket map flags: insert or replace.
const BPF_ANY: u64 = 0;

/// Accounts a response to this packet's source; exempt networks are always sent.
#[inline(always)]
pub fn verdict(ctx: &XdpContext, f: &Frame, token: &Token) -> Result<Verdict, Outcome> {
    let Some(config) = RRL_CONFIG.get(0) else { return Ok(Verdict::Send) };
    let config = *config;
    if config.rate == 0 {
        return Ok(Verdict::Send);
    }
    let key = if f.ipv6 {
        let src = ptr_at::<[u8; 16]>(ctx, f.l3 + IPV6_SOURCE).ok_or(Outcome::Error)?;
        // SAFETY: ptr_at checked the bounds.
        RrlKey::v6(unsafe { read_unaligned(src) }, token.kind, token.value)
    } else {
        let src = ptr_at::<[u8; 4]>(ctx, f.l3 + IPV4_SOURCE).ok_or(Outcome::Error)?;
        // SAFETY: ptr_at checked the bounds.
        RrlKey::v4(unsafe { read_unaligned(src) }, token.kind, token.value)
    };
    // SAFETY: helper without arguments.
    let now_s = (unsafe { bpf_ktime_get_coarse_ns() } / 1_000_000_000) as u32;
    // Read, accounted and written back without a lock: CPUs racing on one bucket may
    // lose an update, so the limit is approximate under contention (as BIND's is).
    let verdict = match RRL_BUCKETS.get_ptr_mut(&key) {
        Some(found) => {
            // SAFETY: a valid map value pointer for this run.
            let mut bucket = unsafe { read_unaligned(found) };
            let verdict = account(&mut bucket, now_s, &config);
            // SAFETY: as above.
            unsafe { *found = bucket };
            verdict
        }
        None => {
            let mut bucket = new_bucket(now_s, &config);
            let verdict = account(&mut bucket, now_s, &config);
            // A full map evicts the least recently used bucket; a failed insert answers.
            let _ = RRL_BUCKETS.insert(&key, &bucket, BPF_ANY);
            verdict
        }
    };
    if verdict != Verdict::Send && exempt(ctx, f) {
        return Ok(Verdict::Send);
    }
    Ok(verdict)
}

/// Whether the source is in an exempt network.
#[inline(always)]
fn exempt(ctx: &XdpContext, f: &Frame) -> bool {
    if f.ipv6 {
        let Some(src) = ptr_at::<[u8; 16]>(ctx, f.l3 + IPV6_SOURCE) else { return false };
        // SAFETY: ptr_at checked the bounds.
        RRL_EXEMPT_V6.get(&LpmKey::new(128, unsafe { read_unaligned(src) })).is_some()
    } else {
        let Some(src) = ptr_at::<[u8; 4]>(ctx, f.l3 + IPV4_SOURCE) else { return false };
        // SAFETY: ptr_at checked the bounds.
        RRL_EXEMPT_V4.get(&LpmKey::new(32, unsafe { read_unaligned(src) })).is_some()
    }
}
