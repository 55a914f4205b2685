//! Turning the query frame into the response, in place: the frame is resized, the
//! answer slot's sections are copied after the question (rotated for round robin), our
//! OPT record follows, then the DNS, UDP, IP and Ethernet headers are rewritten, the
//! UDP checksum computed from the sums gathered on the way.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_load_bytes, bpf_xdp_store_bytes},
    programs::XdpContext,
};
use dns_common::{
    cookie::{COOKIE_OPTION_LEN, COOKIE_OUT_LEN},
    frame::{
        DNS_ANCOUNT, DNS_ARCOUNT, DNS_FLAGS, DNS_NSCOUNT, IPPROTO_UDP, IPV4_CHECKSUM, IPV4_DEST, IPV4_HLEN,
        IPV4_PROTOCOL, IPV4_SOURCE, IPV4_TOTAL_LEN, IPV4_TTL, IPV6_ADDR_LEN, IPV6_DEST, IPV6_HLEN,
        IPV6_HOP_LIMIT, IPV6_NEXT_HEADER, IPV6_PAYLOAD_LEN, IPV6_SOURCE, RESPONSE_TTL, UDP_CHECKSUM,
        UDP_DEST, UDP_HLEN, UDP_LEN, UDP_SOURCE,
    },
    limits::{ANSWER_MAX_LEN, DNS_HEADER_LEN, ECS_OPTION_MASK, ECS_OPTION_MAX_LEN, OPT_RR_LEN},
    maps::{
        AnswerSlot, ROTATE_MAX_END, SCRATCH_BLOCK_LEN, Scratch,
        answer_flags::{NOT_AUTHORITATIVE, RCODE_MASK, STALE},
    },
    rrl::Verdict,
    stats::Outcome,
    wire::{
        FLAG1_TC, csum_add_bytes, csum_at_parity, csum_finish, csum_fold, opt_record, response_flags,
        udp_response_limit,
    },
};
use dns_ebpf::{ptr_at, swap_macs, words_at, words_sum};

use crate::{
    ANSWERS, config_edns_payload,
    cookie::Cookie,
    launder,
    parse::{Frame, Query, SPILL_ECS_LEN},
    rrl::{self, Token},
};

/// How the query was answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Answer,
    /// Over the rate limit: truncated (TC set, no records but OPT), as userspace slips.
    Slipped,
}

/// Mask bounding rotation offsets and lengths (see `rotate`).
const ROTATE_MASK: usize = ROTATE_MAX_END - 1;
// The Client Subnet option follows the OPT record at the other parity (see `write_opt`).
const _: () = assert!(OPT_RR_LEN % 2 == 1);
const _: () = assert!(ROTATE_MAX_END.is_power_of_two() && 2 * ROTATE_MAX_END <= ANSWER_MAX_LEN + 2);

/// 16-bit words of the headers rewritten, and the fields among them (the byte offsets
/// of `dns_common::frame`, halved: every field rewritten here starts at an even offset).
const DNS_WORDS: usize = DNS_HEADER_LEN / 2;
const DNS_FLAGS_WORD: usize = DNS_FLAGS / 2;
const DNS_ANCOUNT_WORD: usize = DNS_ANCOUNT / 2;
const DNS_NSCOUNT_WORD: usize = DNS_NSCOUNT / 2;
const DNS_ARCOUNT_WORD: usize = DNS_ARCOUNT / 2;
const UDP_WORDS: usize = UDP_HLEN / 2;
const UDP_SOURCE_WORD: usize = UDP_SOURCE / 2;
const UDP_DEST_WORD: usize = UDP_DEST / 2;
const UDP_LEN_WORD: usize = UDP_LEN / 2;
const UDP_CHECKSUM_WORD: usize = UDP_CHECKSUM / 2;
const IPV4_WORDS: usize = IPV4_HLEN / 2;
const IPV4_TOTAL_LEN_WORD: usize = IPV4_TOTAL_LEN / 2;
/// TTL and protocol share a word.
const IPV4_TTL_PROTOCOL_WORD: usize = IPV4_TTL / 2;
const IPV4_CHECKSUM_WORD: usize = IPV4_CHECKSUM / 2;
const IPV4_SOURCE_WORD: usize = IPV4_SOURCE / 2;
const IPV4_DEST_WORD: usize = IPV4_DEST / 2;
const IPV4_ADDR_WORDS: usize = 2;
const IPV6_WORDS: usize = IPV6_HLEN / 2;
const IPV6_PAYLOAD_LEN_WORD: usize = IPV6_PAYLOAD_LEN / 2;
/// Next header and hop limit share a word.
const IPV6_NEXT_HOP_WORD: usize = IPV6_NEXT_HEADER / 2;
const IPV6_SOURCE_WORD: usize = IPV6_SOURCE / 2;
const IPV6_DEST_WORD: usize = IPV6_DEST / 2;
const IPV6_ADDR_WORDS: usize = IPV6_ADDR_LEN / 2;
const _: () = assert!(IPV4_PROTOCOL == IPV4_TTL + 1 && IPV6_HOP_LIMIT == IPV6_NEXT_HEADER + 1);

/// Answers the query in `f`/`q` with answer slot `slot_index`, within the rate limit of
/// `token` unless `cookie` proved the client (over it: truncated, or
/// `Err(RrlDropped)`), with our COOKIE option if `cookie` says so. `question_sum` is the
/// unfolded one's complement sum of the question as received.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn respond(
    ctx: &XdpContext,
    scratch: *mut Scratch,
    f: &Frame,
    q: &Query,
    slot_index: u32,
    question_sum: u64,
    token: &Token,
    cookie: Cookie,
) -> Result<Sent, Outcome> {
    let slot = ANSWERS.get_ptr(slot_index).ok_or(Outcome::Error)?;
    // SAFETY: a valid map value pointer; we read its small header fields.
    let (mut data_len, slot_flags, mut counts, mut data_sum) = unsafe {
        (
            (*slot).len as usize,
            (*slot).flags,
            [(*slot).ancount, (*slot).nscount, (*slot).arcount],
            (*slot).csum,
        )
    };
    if data_len > ANSWER_MAX_LEN {
        return Err(Outcome::Error);
    }

    let question_end = DNS_HEADER_LEN + q.name_len + 4;
    let ecs_len = if q.client_subnet { q.ecs_len } else { 0 };
    if ecs_len > ECS_OPTION_MAX_LEN {
        return Err(Outcome::Error);
    }
    let cookie_len = if cookie.answered { COOKIE_OPTION_LEN } else { 0 };
    let opt_len = if q.edns_payload.is_some() { OPT_RR_LEN + ecs_len + cookie_len } else { 0 };
    let msg_len = question_end + data_len + opt_len;
    if msg_len > udp_response_limit(q.edns_payload, config_edns_payload()) as usize {
        return Err(Outcome::PassTooBig);
    }
    // Accounted once the answer is sure to be sent from here (a query passed up is
    // accounted by userspace).
    let verdict = if cookie.proven { Verdict::Send } else { rrl::verdict(ctx, f, token)? };
    let sent = match verdict {
        Verdict::Send => Sent::Answer,
        Verdict::Drop => return Err(Outcome::RrlDropped),
        Verdict::Slip => {
            (data_len, counts, data_sum) = (0, [0; 3], 0);
            Sent::Slipped
        }
    };
    let msg_len = question_end + data_len + opt_len;

    resize(ctx, scratch, f.dns + question_end, f.dns + msg_len)?;
    copy_sections(ctx, slot, f.dns + question_end, data_len)?;
    if sent == Sent::Answer {
        rotate(ctx, scratch, slot, f.dns + question_end)?;
    }
    let mut sum = question_sum + csum_at_parity(data_sum, q.name_len & 1 == 1) as u64;
    let mut arcount = counts[2];
    if q.edns_payload.is_some() {
        let at = f.dns + question_end + data_len;
        sum += write_opt(ctx, scratch, at, q, ecs_len, cookie.answered, (q.name_len + data_len) & 1 == 1)?;
        arcount += 1;
    }
    let rcode = (slot_flags & RCODE_MASK) as u8;
    let authoritative = slot_flags & NOT_AUTHORITATIVE == 0;
    let truncated = sent == Sent::Slipped;
    sum += rewrite_dns_header(ctx, f, q, authoritative, truncated, rcode, [counts[0], counts[1], arcount])?;
    let udp_len = (UDP_HLEN + msg_len) as u16;
    let udp = words_at::<UDP_WORDS>(ctx, f.l4).ok_or(Outcome::Error)?;
    sum += rewrite_udp(udp, udp_len);
    // Pseudo-header length and protocol (for IPv6 the length is 32 bits, same sum).
    sum += udp_len.to_be() as u64 + (IPPROTO_UDP as u16).to_be() as u64;
    sum += if f.ipv6 { rewrite_ipv6(ctx, f, udp_len)? } else { rewrite_ipv4(ctx, f, udp_len)? };
    // The UDP checksum is mandatory on IPv6 and we always send one.
    // SAFETY: words_at checked it, and the frame has not changed size since.
    unsafe { (*udp)[UDP_CHECKSUM_WORD] = csum_finish(sum) };
    swap_macs(ctx).ok_or(Outcome::Error)?;
    if slot_flags & STALE != 0 && !truncated {
        crate::count(Outcome::HitStale);
    }
    Ok(sent)
}

/// Copies the slot's sections to `at`.
#[inline(always)]
fn copy_sections(
    ctx: &XdpContext,
    slot: *const AnswerSlot,
    at: usize,
    data_len: usize,
) -> Result<(), Outcome> {
    if data_len == 0 {
        return Ok(());
    }
    // SAFETY: data_len <= ANSWER_MAX_LEN, the size of the slot's data.
    let rc = unsafe {
        bpf_xdp_store_bytes(ctx.ctx, at as u32, (*slot).data.as_ptr() as *mut c_void, data_len as u32)
    };
    if rc != 0 { Err(Outcome::Error) } else { Ok(()) }
}

/// Writes our OPT record at `at`, with the query's Client Subnet option (`ecs_len`
/// bytes of `Scratch::ecs`, none if 0) and, if `cookie`, our COOKIE option
/// (`Scratch::cookie_out`) as its data; returns its checksum contribution (`odd`: it
/// starts at an odd offset of the DNS message).
#[inline(always)]
fn write_opt(
    ctx: &XdpContext,
    scratch: *mut Scratch,
    at: usize,
    q: &Query,
    ecs_len: usize,
    cookie: bool,
    odd: bool,
) -> Result<u64, Outcome> {
    let cookie_len = if cookie { COOKIE_OPTION_LEN } else { 0 };
    let mut opt = opt_record(config_edns_payload(), 0, q.dnssec_ok);
    opt[OPT_RR_LEN - 2..].copy_from_slice(&((ecs_len + cookie_len) as u16).to_be_bytes());
    let p = ptr_at::<[u8; OPT_RR_LEN]>(ctx, at).ok_or(Outcome::Error)?;
    // SAFETY: ptr_at checked the bounds.
    unsafe { *p = opt };
    let mut sum = csum_at_parity(csum_fold(csum_add_bytes(0, &opt)), odd) as u64;
    // As in `parse::save_client_subnet`: laundered, masked, checked for zero.
    let ecs_len = launder(scratch, SPILL_ECS_LEN, ecs_len) & ECS_OPTION_MASK;
    if ecs_len != 0 {
        // SAFETY: scratch points at this CPU's scratch value; ecs_len bytes fit `ecs`.
        let ecs = unsafe { &raw mut (*scratch).ecs };
        let rc = unsafe {
            bpf_xdp_store_bytes(ctx.ctx, (at + OPT_RR_LEN) as u32, ecs as *mut c_void, ecs_len as u32)
        };
        if rc != 0 {
            return Err(Outcome::Error);
        }
        // The buffer is zero past the option: summing all of it adds only the option.
        // SAFETY: as above.
        let ecs_sum = csum_fold(csum_add_bytes(0, unsafe { &*ecs }));
        // OPT_RR_LEN is odd: the option starts at the other parity.
        sum += csum_at_parity(ecs_sum, !odd) as u64;
    }
    if cookie {
        // SAFETY: scratch points at this CPU's scratch value; the first
        // COOKIE_OPTION_LEN bytes of its COOKIE_OUT_LEN are the option.
        let out = unsafe { &raw mut (*scratch).cookie_out };
        let rc = unsafe {
            bpf_xdp_store_bytes(
                ctx.ctx,
                (at + OPT_RR_LEN + ecs_len) as u32,
                out as *mut c_void,
                COOKIE_OPTION_LEN as u32,
            )
        };
        if rc != 0 {
            return Err(Outcome::Error);
        }
        // Zero past the option: summing the whole buffer adds only the option.
        // SAFETY: as above.
        let cookie_sum = csum_fold(csum_add_bytes(0, unsafe { &*(out as *const [u8; COOKIE_OUT_LEN]) }));
        let cookie_odd = odd ^ ((OPT_RR_LEN + ecs_len) & 1 == 1);
        sum += csum_at_parity(cookie_sum, cookie_odd) as u64;
    }
    Ok(sum)
}

/// The DNS header: ID and QDCOUNT stay; flags and counts are the response's. Returns
/// the header's checksum contribution.
#[inline(always)]
fn rewrite_dns_header(
    ctx: &XdpContext,
    f: &Frame,
    q: &Query,
    authoritative: bool,
    truncated: bool,
    rcode: u8,
    counts: [u16; 3],
) -> Result<u64, Outcome> {
    let hdr = words_at::<DNS_WORDS>(ctx, f.dns).ok_or(Outcome::Error)?;
    let mut flags = response_flags(q.flags, authoritative, rcode);
    if truncated {
        flags[0] |= FLAG1_TC;
    }
    // SAFETY: words_at checked the bounds and the alignment.
    unsafe {
        let h = &mut *hdr;
        h[DNS_FLAGS_WORD] = u16::from_ne_bytes(flags);
        h[DNS_ANCOUNT_WORD] = counts[0].to_be();
        h[DNS_NSCOUNT_WORD] = counts[1].to_be();
        h[DNS_ARCOUNT_WORD] = counts[2].to_be();
        Ok(words_sum(h))
    }
}

/// UDP: ports swapped, the new length, the checksum zero until the end. Returns the
/// header's checksum contribution.
#[inline(always)]
fn rewrite_udp(udp: *mut [u16; UDP_WORDS], udp_len: u16) -> u64 {
    // SAFETY: the caller's words_at checked the bounds and the alignment.
    unsafe {
        let u = &mut *udp;
        u.swap(UDP_SOURCE_WORD, UDP_DEST_WORD);
        u[UDP_LEN_WORD] = udp_len.to_be();
        u[UDP_CHECKSUM_WORD] = 0;
        words_sum(u)
    }
}

/// IPv6: addresses swapped, the payload length, our hop limit. Returns the pseudo
/// header's addresses' checksum contribution.
#[inline(always)]
fn rewrite_ipv6(ctx: &XdpContext, f: &Frame, udp_len: u16) -> Result<u64, Outcome> {
    let ip = words_at::<IPV6_WORDS>(ctx, f.l3).ok_or(Outcome::Error)?;
    // SAFETY: words_at checked the bounds and the alignment.
    unsafe {
        let w = &mut *ip;
        w[IPV6_PAYLOAD_LEN_WORD] = udp_len.to_be();
        w[IPV6_NEXT_HOP_WORD] = u16::from_ne_bytes([IPPROTO_UDP, RESPONSE_TTL]);
        Ok(swap_addresses::<IPV6_WORDS, IPV6_ADDR_WORDS>(w, IPV6_SOURCE_WORD, IPV6_DEST_WORD))
    }
}

/// IPv4: addresses swapped, the total length, our TTL, a new header checksum. Returns
/// the pseudo header's addresses' checksum contribution.
#[inline(always)]
fn rewrite_ipv4(ctx: &XdpContext, f: &Frame, udp_len: u16) -> Result<u64, Outcome> {
    let ip = words_at::<IPV4_WORDS>(ctx, f.l3).ok_or(Outcome::Error)?;
    // SAFETY: words_at checked the bounds and the alignment.
    unsafe {
        let w = &mut *ip;
        let addresses = swap_addresses::<IPV4_WORDS, IPV4_ADDR_WORDS>(w, IPV4_SOURCE_WORD, IPV4_DEST_WORD);
        w[IPV4_TOTAL_LEN_WORD] = ((IPV4_HLEN as u16) + udp_len).to_be();
        w[IPV4_TTL_PROTOCOL_WORD] = u16::from_ne_bytes([RESPONSE_TTL, IPPROTO_UDP]);
        w[IPV4_CHECKSUM_WORD] = 0;
        w[IPV4_CHECKSUM_WORD] = !csum_fold(words_sum(w));
        Ok(addresses)
    }
}

/// Round robin: rewrites the slot's run of equal-sized records (already copied to
/// `answer_at` in slot order) starting at the next record of this CPU's counter. The
/// records have one even size, so the checksum of the data does not change.
#[inline(always)]
fn rotate(
    ctx: &XdpContext,
    scratch: *mut Scratch,
    slot: *const AnswerSlot,
    answer_at: usize,
) -> Result<(), Outcome> {
    // SAFETY: slot and scratch are valid map values; offsets and lengths are masked into
    // the first ROTATE_MAX_END bytes of the slot's data (userspace only marks runs that
    // end there), so every copy stays inside the slot.
    unsafe {
        let count = (*slot).rotate_count as usize;
        if count < 2 {
            return Ok(());
        }
        let size = (*slot).rotate_size as usize;
        let start = (*slot).rotate_offset as usize & ROTATE_MASK;
        let counter = &mut (*scratch).rotation;
        *counter = counter.wrapping_add(1);
        let k = *counter as usize % count;
        if k == 0 {
            return Ok(());
        }
        let split = (start + k * size) & ROTATE_MASK;
        let tail_len = ((count - k) * size) & ROTATE_MASK;
        let head_len = (k * size) & ROTATE_MASK;
        if tail_len == 0 || head_len == 0 {
            return Err(Outcome::Error);
        }
        let data = (*slot).data.as_ptr();
        let out = answer_at + start;
        if bpf_xdp_store_bytes(ctx.ctx, out as u32, data.add(split) as *mut c_void, tail_len as u32) != 0
            || bpf_xdp_store_bytes(
                ctx.ctx,
                (out + tail_len) as u32,
                data.add(start) as *mut c_void,
                head_len as u32,
            ) != 0
        {
            return Err(Outcome::Error);
        }
    }
    Ok(())
}

/// Resizes the frame to `new_len` bytes, keeping its first `keep` bytes (headers and
/// question) in place; what follows them is rewritten by the caller. Grows at the tail
/// when there is tailroom, else at the head: veth and generic XDP hand small packets
/// over in tightly sized buffers, but XDP always leaves 256 bytes of headroom.
/// On failure the frame is as it was.
#[inline(always)]
fn resize(ctx: &XdpContext, scratch: *mut Scratch, keep: usize, new_len: usize) -> Result<(), Outcome> {
    let delta = new_len as i64 - (ctx.data_end() - ctx.data()) as i64;
    if delta == 0 {
        return Ok(());
    }
    // SAFETY: helper calls; every packet pointer is re-derived and re-checked after.
    unsafe {
        if bpf_xdp_adjust_tail(ctx.ctx, delta as i32) == 0 {
            return Ok(());
        }
        if delta < 0 || keep == 0 || keep > SCRATCH_BLOCK_LEN {
            return Err(Outcome::Error);
        }
        let block = (*scratch).block.as_mut_ptr() as *mut c_void;
        if bpf_xdp_load_bytes(ctx.ctx, 0, block, keep as u32) != 0 {
            return Err(Outcome::Error);
        }
        if bpf_xdp_adjust_head(ctx.ctx, -(delta as i32)) != 0 {
            return Err(Outcome::PassNoRoom);
        }
        if bpf_xdp_store_bytes(ctx.ctx, 0, block, keep as u32) != 0 {
            // Put the start back: the original bytes are still there.
            bpf_xdp_adjust_head(ctx.ctx, delta as i32);
            return Err(Outcome::Error);
        }
    }
    Ok(())
}

/// Swaps the `A`-word source and destination addresses of an IP header of `N` words;
/// returns their (unfolded) checksum contribution, which the swap does not change.
#[inline(always)]
fn swap_addresses<const N: usize, const A: usize>(w: &mut [u16; N], source: usize, dest: usize) -> u64 {
    let mut sum = 0u64;
    for k in 0..A {
        w.swap(source + k, dest + k);
        sum += w[source + k] as u64 + w[dest + k] as u64;
    }
    sum
}
