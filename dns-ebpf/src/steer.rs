//! Steered answers: which of a name's answer slots this packet gets (see
//! `dns_common::maps::select`): a weighted pick from a per-CPU sequence, or the slot of
//! the client's territory by longest prefix match of its source address.

use core::ptr::read_unaligned;

use aya_ebpf::{maps::lpm_trie::Key as LpmKey, programs::XdpContext};
use dns_common::{
    frame::{IPV4_SOURCE, IPV6_SOURCE},
    maps::{MAX_WEIGHTED_VARIANTS, NameEntry, Scratch, TerritoryV4, TerritoryV6, pick_draw, select},
    stats::Outcome,
};
use dns_ebpf::ptr_at;

use crate::{ANSWERS, TERRITORIES_V4, TERRITORIES_V6, parse::Frame};

/// The answer slot of `entry` for this packet (see `dns_common::maps::select`).
#[inline(always)]
pub fn choose_slot(
    ctx: &XdpContext,
    scratch: *mut Scratch,
    f: &Frame,
    entry: &NameEntry,
) -> Result<(u32, Option<Outcome>), Outcome> {
    let variants = entry.variants as u32;
    match entry.select {
        select::WEIGHTED => {
            // SAFETY: this CPU's scratch value.
            let draw = unsafe {
                let counter = &mut (*scratch).picks;
                *counter = counter.wrapping_add(1);
                pick_draw(*counter)
            };
            let last = variants.clamp(1, MAX_WEIGHTED_VARIANTS as u32) - 1;
            let mut chosen = last;
            for i in 0..MAX_WEIGHTED_VARIANTS as u32 {
                if i >= last {
                    break;
                }
                let slot = ANSWERS.get_ptr(entry.answer + i).ok_or(Outcome::Error)?;
                // SAFETY: a valid map value pointer.
                if draw < unsafe { (*slot).pick_below } {
                    chosen = i;
                    break;
                }
            }
            Ok((entry.answer + chosen, Some(Outcome::HitWeighted)))
        }
        select::DIRECTIONAL => {
            let territory = territory_of(ctx, f).unwrap_or(0);
            let index = if territory < variants { territory } else { 0 };
            Ok((entry.answer + index, Some(Outcome::HitDirectional)))
        }
        _ => Ok((entry.answer, None)),
    }
}

/// The territory of the packet's source address (0: none).
#[inline(always)]
fn territory_of(ctx: &XdpContext, f: &Frame) -> Option<u32> {
    if f.ipv6 {
        let src = ptr_at::<TerritoryV6>(ctx, f.l3 + IPV6_SOURCE)?;
        // SAFETY: ptr_at checked the bounds.
        let key = LpmKey::new(128, unsafe { read_unaligned(src) });
        TERRITORIES_V6.get(&key).copied()
    } else {
        let src = ptr_at::<TerritoryV4>(ctx, f.l3 + IPV4_SOURCE)?;
        // SAFETY: ptr_at checked the bounds.
        let key = LpmKey::new(32, unsafe { read_unaligned(src) });
        TERRITORIES_V4.get(&key).copied()
    }
}
