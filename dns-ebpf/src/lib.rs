//! What the XDP programs of this crate share: bounds-checked packet access and the
//! cheapest answer there is (swap the MACs, send the frame back). Every frame constant
//! comes from `dns_common::frame`.
#![no_std]

use core::{mem::size_of, ptr::read_unaligned};

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use dns_common::frame::{ETH_ALEN, ETH_DEST, ETH_SOURCE};

// The actions userspace reads from test runs are the ones the programs return.
const _: () = assert!(
    xdp_action::XDP_PASS == dns_common::xdp::XDP_PASS
        && xdp_action::XDP_TX == dns_common::xdp::XDP_TX
        && xdp_action::XDP_DROP == dns_common::xdp::XDP_DROP
        && xdp_action::XDP_ABORTED == dns_common::xdp::XDP_ABORTED
        && xdp_action::XDP_REDIRECT == dns_common::xdp::XDP_REDIRECT
);

/// Bounds-checked pointer to a `T` at `offset` from the start of the frame.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Bounds-checked pointer to `N` 16-bit words at an even `offset`. Frames start 2-byte
/// aligned: the verifier's own alignment model assumes it (`check_pkt_ptr_alignment`
/// offsets packet data by NET_IP_ALIGN), and enforces these accesses against it on
/// architectures without efficient unaligned access.
#[inline(always)]
pub fn words_at<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<*mut [u16; N]> {
    ptr_at::<[u16; N]>(ctx, offset)
}

/// Unfolded one's complement sum of 16-bit words (native order).
#[inline(always)]
pub fn words_sum<const N: usize>(words: &[u16; N]) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < N {
        sum += words[i] as u64;
        i += 1;
    }
    sum
}

/// The big-endian 16-bit field at `offset`.
#[inline(always)]
pub fn read_be16(ctx: &XdpContext, offset: usize) -> Option<u16> {
    let p = ptr_at::<[u8; 2]>(ctx, offset)?;
    // SAFETY: ptr_at checked the bounds.
    Some(u16::from_be_bytes(unsafe { read_unaligned(p) }))
}

#[inline(always)]
pub fn read_u8(ctx: &XdpContext, offset: usize) -> Option<u8> {
    let p = ptr_at::<u8>(ctx, offset)?;
    // SAFETY: ptr_at checked the bounds.
    Some(unsafe { *p })
}

/// Sends the frame back where it came from: swaps the destination and source MACs.
#[inline(always)]
pub fn swap_macs(ctx: &XdpContext) -> Option<()> {
    const WORDS: usize = ETH_ALEN / 2;
    const _: () = assert!(ETH_DEST == 0 && ETH_SOURCE == ETH_ALEN);
    let eth = words_at::<{ 2 * WORDS }>(ctx, ETH_DEST)?;
    // SAFETY: words_at checked the bounds; offset 0 is aligned (see words_at).
    unsafe {
        let e = &mut *eth;
        for i in 0..WORDS {
            e.swap(i, i + WORDS);
        }
    }
    Some(())
}

/// The one panic handler of every program of this crate. Unreachable in a verified
/// program: the verifier rejects any reachable loop.
#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
