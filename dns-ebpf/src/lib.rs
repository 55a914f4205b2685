//! What the XDP programs of this crate share: bounds-checked packet access and the
//! frame constants they parse by.
#![no_std]

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const IPPROTO_UDP: u8 = 17;

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
