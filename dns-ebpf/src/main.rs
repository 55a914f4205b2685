//! instadns fast path: answers hot DNS queries from BPF maps with XDP_TX.
//!
//! Ethernet (+ up to two VLAN tags) -> IPv4 or IPv6 -> UDP to the DNS port -> a standard
//! query with one question (and at most an EDNS(0) OPT record). The lower-cased QNAME and
//! QTYPE are looked up in the name map of the name's length bucket; on a hit the packet is
//! rewritten in place into the response userspace prepared and sent back. Anything else,
//! or anything we are not sure to answer exactly as userspace would, goes up with
//! XDP_PASS, untouched. The program never drops.
//!
//! Verifier notes: variable offsets are stored to the per-CPU scratch map and read back
//! ([`launder`]) at the points where parsing paths join, so the verifier merges the paths
//! instead of verifying the rest of the program once per header layout and name length.
#![no_std]
#![no_main]

use core::{
    ffi::c_void,
    ptr::{read_unaligned, read_volatile, write_volatile},
};

use aya_ebpf::{
    bindings::xdp_action::{XDP_PASS, XDP_TX},
    helpers::generated::{
        bpf_ktime_get_coarse_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_load_bytes,
        bpf_xdp_store_bytes,
    },
    macros::{map, xdp},
    maps::{Array, LpmTrie, LruHashMap, PerCpuArray, lpm_trie::Key as LpmKey},
    programs::XdpContext,
};
use dns_common::{
    limits::{
        ANSWER_MAX_LEN, DEFAULT_EDNS_PAYLOAD, DNS_HEADER_LEN, MAX_LABEL_LEN, MAX_LABELS, MAX_NAME_LEN,
        NAME_BUCKETS, OPT_RR_LEN,
    },
    maps::{
        AnswerSlot, MAX_WEIGHTED_VARIANTS, NameEntry, NameKey0, NameKey1, NameKey2, NameKey3, ROTATE_MAX_END,
        SCRATCH_BLOCK_LEN, SCRATCH_WORDS, Scratch, TERRITORY_PREFIXES, TerritoryV4, TerritoryV6,
        answer_flags::RCODE_MASK, pick_draw, select,
    },
    stats::{OUTCOME_SLOTS, Outcome},
    wire::{
        CLASS_IN, EDNS_FLAG_DO, EDNS_OPTION_ECS, FLAG1_OPCODE_MASK, FLAG1_QR, FLAG1_TC, TYPE_OPT,
        csum_add_bytes, csum_at_parity, csum_finish, csum_fold, low_bytes_mask, lower_word, opt_record,
        response_flags, udp_response_limit,
    },
};
use dns_ebpf::{ETH_HLEN, ETH_P_IPV4, IPPROTO_UDP, ptr_at};

// Load-time configuration, set by the loader with `EbpfLoader::set_global`.
/// UDP port we answer on, host byte order.
#[unsafe(no_mangle)]
static DNS_PORT: u16 = 53;
/// UDP payload size we advertise in EDNS(0) responses.
#[unsafe(no_mangle)]
static EDNS_PAYLOAD: u16 = DEFAULT_EDNS_PAYLOAD;

// Sizes are placeholders: the loader sets them from the configuration.
#[map]
static NAMES_0: LruHashMap<NameKey0, NameEntry> = LruHashMap::with_max_entries(1024, 0);
#[map]
static NAMES_1: LruHashMap<NameKey1, NameEntry> = LruHashMap::with_max_entries(1024, 0);
#[map]
static NAMES_2: LruHashMap<NameKey2, NameEntry> = LruHashMap::with_max_entries(1024, 0);
#[map]
static NAMES_3: LruHashMap<NameKey3, NameEntry> = LruHashMap::with_max_entries(1024, 0);
#[map]
static ANSWERS: Array<AnswerSlot> = Array::with_max_entries(1024, 0);
#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(OUTCOME_SLOTS, 0);
/// Client prefixes to territory indices (1..=MAX_TERRITORIES), for directional answers.
#[map]
static TERRITORIES_V4: LpmTrie<TerritoryV4, u32> = LpmTrie::with_max_entries(TERRITORY_PREFIXES, 0);
#[map]
static TERRITORIES_V6: LpmTrie<TerritoryV6, u32> = LpmTrie::with_max_entries(TERRITORY_PREFIXES, 0);

const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const UDP_HLEN: usize = 8;
/// Hop limit of our responses.
const RESPONSE_TTL: u8 = 64;
/// Most EDNS options we walk in a query before leaving it to userspace.
const MAX_EDNS_OPTIONS: usize = 8;
/// Longest query we parse; longer ones (a question plus large EDNS options, which
/// cannot even arrive unfragmented on a 1500-byte MTU) go up. Keeps every offset well
/// inside the verifier's 64 KiB packet-offset range.
const MAX_QUERY_LEN: usize = 2048;
/// Highest offset of the DNS header in a frame we parse (Ethernet, two VLAN tags, IPv6, UDP).
const MAX_DNS_OFFSET: usize = ETH_HLEN + 8 + IPV6_HLEN + UDP_HLEN;
/// 8-byte words of the question the key loop reads per bucket: the bucket's name
/// capacity plus QTYPE and QCLASS, rounded up.
const BUCKET_WORDS: [usize; 4] = [
    (NAME_BUCKETS[0] + 4).div_ceil(8),
    (NAME_BUCKETS[1] + 4).div_ceil(8),
    (NAME_BUCKETS[2] + 4).div_ceil(8),
    (NAME_BUCKETS[3] + 4).div_ceil(8),
];
const MAX_WORDS: usize = BUCKET_WORDS[3];
/// Mask bounding rotation offsets and lengths (see `rotate`).
const ROTATE_MASK: usize = ROTATE_MAX_END - 1;
const _: () = assert!(ROTATE_MAX_END.is_power_of_two() && 2 * ROTATE_MAX_END <= ANSWER_MAX_LEN + 2);
const _: () = assert!(MAX_WORDS == SCRATCH_WORDS, "scratch arrays sized for the longest bucket");

/// Where the parsed headers are, all offsets from the start of the frame.
struct Frame {
    l3: usize,
    ipv6: bool,
    l4: usize,
    dns: usize,
    /// Length of the DNS message (UDP payload), which may end before the frame does
    /// (Ethernet padding).
    msg_len: usize,
}

/// What the question and EDNS parse found.
struct Query {
    name_len: usize,
    flags: [u8; 2],
    /// The client's EDNS UDP payload size, if it sent an OPT record.
    edns_payload: Option<u16>,
    dnssec_ok: bool,
    /// The query carries an EDNS Client Subnet option.
    client_subnet: bool,
}

#[xdp]
pub fn instadns(ctx: XdpContext) -> u32 {
    let (action, outcome) = match try_instadns(&ctx) {
        Ok(steered) => {
            if let Some(steered) = steered {
                count(steered);
            }
            (XDP_TX, Outcome::Hit)
        }
        Err(outcome) => (XDP_PASS, outcome),
    };
    count(outcome);
    action
}

#[inline(always)]
fn count(outcome: Outcome) {
    if let Some(counter) = STATS.get_ptr_mut(outcome as u32) {
        // SAFETY: per-CPU slot, no concurrent writer.
        unsafe { *counter += 1 };
    }
}

/// Answers, or says why not; a steered answer also names how it was chosen.
fn try_instadns(ctx: &XdpContext) -> Result<Option<Outcome>, Outcome> {
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(Outcome::Error)?;
    let frame = parse_frame(ctx, scratch)?;
    let query = parse_query(ctx, scratch, &frame)?;
    answer(ctx, scratch, &frame, &query)
}

/// Passes every packet. Attached to the peer of a veth we answer on: native XDP_TX on
/// veth drops frames unless the peer has an XDP program (see ../shared/ebpf-facts.md).
#[xdp]
pub fn instadns_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// The benchmark floor: swaps the MAC addresses and sends the frame back. The cost of
/// the cheapest possible XDP_TX, against which the fast path's cost is reported.
#[xdp]
pub fn instadns_floor(ctx: XdpContext) -> u32 {
    match swap_macs(&ctx) {
        Some(()) => XDP_TX,
        None => XDP_PASS,
    }
}

/// Sends the frame back where it came from.
#[inline(always)]
fn swap_macs(ctx: &XdpContext) -> Option<()> {
    let eth = words_at::<6>(ctx, 0)?;
    // SAFETY: words_at checked the bounds; offset 0 is aligned (see words_at).
    unsafe {
        let e = &mut *eth;
        e.swap(0, 3);
        e.swap(1, 4);
        e.swap(2, 5);
    }
    Some(())
}

/// Bounds-checked pointer to `N` 16-bit words at an even `offset`. Frames start 2-byte
/// aligned: the verifier's own alignment model assumes it (`check_pkt_ptr_alignment`
/// offsets packet data by NET_IP_ALIGN), and enforces these accesses against it on
/// architectures without efficient unaligned access.
#[inline(always)]
fn words_at<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<*mut [u16; N]> {
    ptr_at::<[u16; N]>(ctx, offset)
}

#[inline(always)]
fn read_be16(ctx: &XdpContext, offset: usize) -> Option<u16> {
    let p = ptr_at::<[u8; 2]>(ctx, offset)?;
    // SAFETY: ptr_at checked the bounds.
    Some(u16::from_be_bytes(unsafe { read_unaligned(p) }))
}

#[inline(always)]
fn read_u8(ctx: &XdpContext, offset: usize) -> Option<u8> {
    let p = ptr_at::<u8>(ctx, offset)?;
    // SAFETY: ptr_at checked the bounds.
    Some(unsafe { *p })
}

/// Stores `value` in scratch memory and reads it back: the verifier does not track
/// values in map memory, so the result is an unknown scalar on every path and the
/// states of different paths can be merged. Callers re-check the bounds they need.
#[inline(always)]
fn launder(scratch: *mut Scratch, slot: usize, value: usize) -> usize {
    // SAFETY: scratch points at this CPU's scratch value; `slot` is a constant < 8.
    unsafe {
        let p = (*scratch).spill.as_mut_ptr().add(slot);
        write_volatile(p, value as u32);
        read_volatile(p) as usize
    }
}

fn parse_frame(ctx: &XdpContext, scratch: *mut Scratch) -> Result<Frame, Outcome> {
    let not_dns = Outcome::PassNotDns;
    let mut ethertype = read_be16(ctx, 12).ok_or(not_dns)?;
    let mut l3 = ETH_HLEN;
    // Up to MAX_VLAN_TAGS (2) tags, unrolled.
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        ethertype = read_be16(ctx, l3 + 2).ok_or(not_dns)?;
        l3 += 4;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            ethertype = read_be16(ctx, l3 + 2).ok_or(not_dns)?;
            l3 += 4;
            if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
                return Err(Outcome::PassUnsupported);
            }
        }
    }
    let frame_len = ctx.data_end() - ctx.data();
    let (ipv6, l4, ip_payload_len) = match ethertype {
        ETH_P_IPV4 => {
            let ip = ptr_at::<[u8; IPV4_HLEN]>(ctx, l3).ok_or(not_dns)?;
            // SAFETY: ptr_at checked the bounds.
            let ip = unsafe { read_unaligned(ip) };
            if ip[9] != IPPROTO_UDP {
                return Err(not_dns);
            }
            // Version 4 without options, not a fragment (MF clear, offset zero).
            if ip[0] != 0x45 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                return Err(Outcome::PassUnsupported);
            }
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            if total < IPV4_HLEN || l3 + total > frame_len {
                return Err(Outcome::PassUnsupported);
            }
            (false, l3 + IPV4_HLEN, total - IPV4_HLEN)
        }
        ETH_P_IPV6 => {
            let ip = ptr_at::<[u8; IPV6_HLEN]>(ctx, l3).ok_or(not_dns)?;
            // SAFETY: ptr_at checked the bounds.
            let ip = unsafe { read_unaligned(ip) };
            if ip[0] >> 4 != 6 {
                return Err(Outcome::PassUnsupported);
            }
            if ip[6] != IPPROTO_UDP {
                // Extension headers (which may lead to UDP) are userspace's business.
                return Err(if is_ipv6_extension(ip[6]) { Outcome::PassUnsupported } else { not_dns });
            }
            let payload = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            if l3 + IPV6_HLEN + payload > frame_len {
                return Err(Outcome::PassUnsupported);
            }
            (true, l3 + IPV6_HLEN, payload)
        }
        _ => return Err(not_dns),
    };
    let udp = ptr_at::<[u8; UDP_HLEN]>(ctx, l4).ok_or(not_dns)?;
    // SAFETY: ptr_at checked the bounds.
    let udp = unsafe { read_unaligned(udp) };
    if u16::from_be_bytes([udp[2], udp[3]]) != config_port() {
        return Err(not_dns);
    }
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if udp_len != ip_payload_len || udp_len < UDP_HLEN + DNS_HEADER_LEN {
        return Err(Outcome::PassUnsupported);
    }
    // A source port of zero cannot be answered.
    if udp[0] == 0 && udp[1] == 0 {
        return Err(Outcome::PassUnsupported);
    }
    // Join the VLAN and IP version paths (see `launder`).
    let l3 = launder(scratch, 0, l3);
    let l4 = launder(scratch, 1, l4);
    if udp_len - UDP_HLEN > MAX_QUERY_LEN {
        return Err(Outcome::PassUnsupported);
    }
    let msg_len = launder(scratch, 2, udp_len - UDP_HLEN);
    if l4 + UDP_HLEN > MAX_DNS_OFFSET || l3 > l4 || msg_len > MAX_QUERY_LEN {
        return Err(Outcome::Error);
    }
    Ok(Frame { l3, ipv6, l4, dns: l4 + UDP_HLEN, msg_len })
}

#[inline(always)]
fn config_port() -> u16 {
    // SAFETY: a read-only global the loader may patch before loading.
    unsafe { read_volatile(&DNS_PORT) }
}

#[inline(always)]
fn config_edns_payload() -> u16 {
    // SAFETY: a read-only global the loader may patch before loading.
    unsafe { read_volatile(&EDNS_PAYLOAD) }
}

#[inline(always)]
fn is_ipv6_extension(next: u8) -> bool {
    matches!(next, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254)
}

fn parse_query(ctx: &XdpContext, scratch: *mut Scratch, f: &Frame) -> Result<Query, Outcome> {
    let bad = Outcome::PassUnsupported;
    let hdr = ptr_at::<[u8; DNS_HEADER_LEN]>(ctx, f.dns).ok_or(bad)?;
    // SAFETY: ptr_at checked the bounds.
    let hdr = unsafe { read_unaligned(hdr) };
    let flags = [hdr[2], hdr[3]];
    // A query (QR clear), opcode QUERY, not truncated.
    if flags[0] & (FLAG1_QR | FLAG1_OPCODE_MASK | FLAG1_TC) != 0 {
        return Err(bad);
    }
    let qdcount = u16::from_be_bytes([hdr[4], hdr[5]]);
    let ancount = u16::from_be_bytes([hdr[6], hdr[7]]);
    let nscount = u16::from_be_bytes([hdr[8], hdr[9]]);
    let arcount = u16::from_be_bytes([hdr[10], hdr[11]]);
    if qdcount != 1 || ancount != 0 || nscount != 0 || arcount > 1 {
        return Err(bad);
    }

    // Walk the labels of QNAME for its length; compression pointers and extended
    // label types are not legal here for us (userspace answers FORMERR).
    let qname = f.dns + DNS_HEADER_LEN;
    let mut pos = 0usize;
    let mut ended = false;
    for _ in 0..MAX_LABELS {
        if DNS_HEADER_LEN + pos >= f.msg_len {
            return Err(bad);
        }
        let label = read_u8(ctx, qname + pos).ok_or(bad)? as usize;
        pos += 1;
        if label == 0 {
            ended = true;
            break;
        }
        if label > MAX_LABEL_LEN {
            return Err(bad);
        }
        pos += label;
        if pos >= MAX_NAME_LEN {
            return Err(bad);
        }
    }
    if !ended {
        return Err(bad);
    }
    let name_len = launder(scratch, 3, pos);
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err(Outcome::Error);
    }
    let question_end = DNS_HEADER_LEN + name_len + 4;
    if question_end > f.msg_len {
        return Err(bad);
    }
    let qclass = read_be16(ctx, qname + name_len + 2).ok_or(bad)?;
    if qclass != CLASS_IN {
        return Err(bad);
    }

    let mut query = Query { name_len, flags, edns_payload: None, dnssec_ok: false, client_subnet: false };
    if arcount == 0 {
        // Nothing may follow the question.
        return if question_end == f.msg_len { Ok(query) } else { Err(bad) };
    }
    // The one additional record must be an EDNS(0) OPT record with the root owner
    // name that ends the message, with well-formed options.
    let opt = f.dns + question_end;
    let rr = ptr_at::<[u8; OPT_RR_LEN]>(ctx, opt).ok_or(bad)?;
    // SAFETY: ptr_at checked the bounds.
    let rr = unsafe { read_unaligned(rr) };
    let rdlen = u16::from_be_bytes([rr[9], rr[10]]) as usize;
    if rr[0] != 0
        || u16::from_be_bytes([rr[1], rr[2]]) != TYPE_OPT
        || rr[6] != 0
        || question_end + OPT_RR_LEN + rdlen != f.msg_len
    {
        // Unknown EDNS versions get BADVERS from userspace.
        return Err(bad);
    }
    let mut option = opt + OPT_RR_LEN;
    // Equal to option + rdlen (checked above), in a form the verifier can bound.
    let options_end = f.dns + f.msg_len;
    let mut walked = false;
    for _ in 0..MAX_EDNS_OPTIONS {
        if option == options_end {
            walked = true;
            break;
        }
        if read_be16(ctx, option).ok_or(bad)? == EDNS_OPTION_ECS {
            query.client_subnet = true;
        }
        let len = read_be16(ctx, option + 2).ok_or(bad)? as usize;
        option += 4 + len;
        if option > options_end {
            return Err(bad);
        }
    }
    if !walked && option != options_end {
        return Err(bad);
    }
    query.edns_payload = Some(u16::from_be_bytes([rr[3], rr[4]]));
    query.dnssec_ok = u16::from_be_bytes([rr[7], rr[8]]) & EDNS_FLAG_DO != 0;
    Ok(query)
}

/// Builds the lookup key in scratch (the lower-cased name zero-padded to the bucket
/// size, then QTYPE) and returns the bucket and the one's complement sum of the
/// question exactly as received (letter case included).
fn build_key(
    ctx: &XdpContext,
    scratch: *mut Scratch,
    f: &Frame,
    name_len: usize,
) -> Result<(usize, u64), Outcome> {
    // SAFETY: scratch is this CPU's value, 8-byte aligned with its arrays at multiples
    // of 8. name_len <= 255, so the question (name_len + 4 bytes) fits raw, and the loop
    // touches at most MAX_WORDS words of raw and key, their exact sizes.
    unsafe {
        let raw = (*scratch).raw.as_mut_ptr();
        let key = (*scratch).key.as_mut_ptr();
        let question_len = name_len + 4;
        if bpf_xdp_load_bytes(
            ctx.ctx,
            (f.dns + DNS_HEADER_LEN) as u32,
            raw as *mut c_void,
            question_len as u32,
        ) != 0
        {
            return Err(Outcome::Error);
        }
        let qtype = read_unaligned(raw.add(name_len) as *const [u8; 2]);

        let bucket = if name_len <= NAME_BUCKETS[0] {
            0
        } else if name_len <= NAME_BUCKETS[1] {
            1
        } else if name_len <= NAME_BUCKETS[2] {
            2
        } else {
            3
        };
        let words = BUCKET_WORDS[bucket];
        let raw_words = raw as *const u64;
        let key_words = key as *mut u64;
        let mut sum: u64 = 0;
        // Words wholly inside the name: copied lower-cased, no masks.
        let full = name_len / 8;
        let mut i = 0;
        for _ in 0..MAX_WORDS {
            if i >= full {
                break;
            }
            let w = *raw_words.add(i);
            sum += word_sum(w);
            *key_words.add(i) = lower_word(w);
            i += 1;
        }
        if i >= MAX_WORDS - 1 {
            return Err(Outcome::Error);
        }
        // The word where the name ends: its last name bytes, then QTYPE and QCLASS
        // (which run into the next word when 4 or more name bytes are here).
        let rem = (name_len % 8) as u64;
        let w = *raw_words.add(i);
        *key_words.add(i) = lower_word(w & low_bytes_mask(rem));
        let (question_here, question_next) = if rem >= 4 { (8, rem - 4) } else { (rem + 4, 0) };
        sum += word_sum(w & low_bytes_mask(question_here));
        sum += word_sum(*raw_words.add(i + 1) & low_bytes_mask(question_next));
        // Zero padding up to the bucket's size.
        for _ in 0..MAX_WORDS {
            i += 1;
            if i >= words {
                break;
            }
            *key_words.add(i) = 0;
        }
        // QTYPE right after the bucket's name capacity (an even offset).
        let qtype_at = match bucket {
            0 => NAME_BUCKETS[0],
            1 => NAME_BUCKETS[1],
            2 => NAME_BUCKETS[2],
            _ => NAME_BUCKETS[3],
        };
        *(key.add(qtype_at) as *mut [u8; 2]) = qtype;
        Ok((bucket, sum))
    }
}

#[inline(always)]
fn lookup(scratch: *mut Scratch, bucket: usize) -> Option<*const NameEntry> {
    // SAFETY: the key types are byte arrays (alignment 1) no longer than scratch.key.
    unsafe {
        let key = (*scratch).key.as_ptr();
        match bucket {
            0 => NAMES_0.get_ptr(&*(key as *const NameKey0)),
            1 => NAMES_1.get_ptr(&*(key as *const NameKey1)),
            2 => NAMES_2.get_ptr(&*(key as *const NameKey2)),
            _ => NAMES_3.get_ptr(&*(key as *const NameKey3)),
        }
    }
}

fn answer(ctx: &XdpContext, scratch: *mut Scratch, f: &Frame, q: &Query) -> Result<Option<Outcome>, Outcome> {
    let (bucket, question_sum) = build_key(ctx, scratch, f, q.name_len)?;
    let entry = lookup(scratch, bucket).ok_or(Outcome::Miss)?;
    // SAFETY: a valid map value pointer for the duration of this program run.
    let entry = unsafe { read_unaligned(entry) };
    // SAFETY: helper without arguments.
    if unsafe { bpf_ktime_get_coarse_ns() } >= entry.expires_ns {
        return Err(Outcome::Expired);
    }
    // Userspace answers Client Subnet queries, with the scope of the answer (RFC 7871).
    if q.client_subnet {
        return Err(Outcome::PassEcs);
    }
    let (slot_index, steered) = choose_slot(ctx, scratch, f, &entry)?;
    let slot = ANSWERS.get_ptr(slot_index).ok_or(Outcome::Error)?;
    // SAFETY: a valid map value pointer; we read its small header fields.
    let (data_len, slot_flags, counts, data_sum) = unsafe {
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
    let opt_len = if q.edns_payload.is_some() { OPT_RR_LEN } else { 0 };
    let msg_len = question_end + data_len + opt_len;
    if msg_len > udp_response_limit(q.edns_payload, config_edns_payload()) as usize {
        return Err(Outcome::PassTooBig);
    }

    resize(ctx, scratch, f.dns + question_end, f.dns + msg_len)?;

    // Answer sections, copied from the slot.
    if data_len > 0 {
        // SAFETY: data_len <= ANSWER_MAX_LEN, the size of the slot's data.
        let rc = unsafe {
            bpf_xdp_store_bytes(
                ctx.ctx,
                (f.dns + question_end) as u32,
                (*slot).data.as_ptr() as *mut c_void,
                data_len as u32,
            )
        };
        if rc != 0 {
            return Err(Outcome::Error);
        }
    }
    rotate(ctx, scratch, slot, f.dns + question_end)?;
    let mut sum = question_sum + csum_at_parity(data_sum, q.name_len & 1 == 1) as u64;

    let rcode = (slot_flags & RCODE_MASK) as u8;
    let mut arcount = counts[2];
    if q.edns_payload.is_some() {
        let opt = opt_record(config_edns_payload(), 0, q.dnssec_ok);
        let at = ptr_at::<[u8; OPT_RR_LEN]>(ctx, f.dns + question_end + data_len).ok_or(Outcome::Error)?;
        // SAFETY: ptr_at checked the bounds.
        unsafe { *at = opt };
        let odd = (q.name_len + data_len) & 1 == 1;
        sum += csum_at_parity(csum_fold(csum_add_bytes(0, &opt)), odd) as u64;
        arcount += 1;
    }

    // DNS header: ID and QDCOUNT stay; flags and counts are the response's.
    let hdr = words_at::<6>(ctx, f.dns).ok_or(Outcome::Error)?;
    // SAFETY: words_at checked the bounds and the alignment.
    unsafe {
        let h = &mut *hdr;
        h[1] = u16::from_ne_bytes(response_flags(q.flags, true, rcode));
        h[3] = counts[0].to_be();
        h[4] = counts[1].to_be();
        h[5] = arcount.to_be();
        sum += words_sum(h);
    }

    // UDP: swap ports, new length; the checksum goes in last.
    let udp_len = (UDP_HLEN + msg_len) as u16;
    let udp = words_at::<4>(ctx, f.l4).ok_or(Outcome::Error)?;
    // SAFETY: words_at checked the bounds and the alignment.
    unsafe {
        let u = &mut *udp;
        u.swap(0, 1);
        u[2] = udp_len.to_be();
        u[3] = 0;
        sum += words_sum(u);
    }
    // Pseudo-header length and protocol (for IPv6 the length is 32 bits, same sum).
    sum += udp_len.to_be() as u64 + (IPPROTO_UDP as u16).to_be() as u64;

    if f.ipv6 {
        let ip = words_at::<{ IPV6_HLEN / 2 }>(ctx, f.l3).ok_or(Outcome::Error)?;
        // SAFETY: words_at checked the bounds and the alignment.
        unsafe {
            let w = &mut *ip;
            for k in 4..12 {
                w.swap(k, k + 8);
            }
            w[2] = udp_len.to_be();
            w[3] = u16::from_ne_bytes([IPPROTO_UDP, RESPONSE_TTL]);
            for k in 4..IPV6_HLEN / 2 {
                sum += w[k] as u64;
            }
        }
    } else {
        let ip = words_at::<{ IPV4_HLEN / 2 }>(ctx, f.l3).ok_or(Outcome::Error)?;
        // SAFETY: words_at checked the bounds and the alignment.
        unsafe {
            let w = &mut *ip;
            w.swap(6, 8);
            w.swap(7, 9);
            w[1] = ((IPV4_HLEN as u16) + udp_len).to_be();
            w[4] = u16::from_ne_bytes([RESPONSE_TTL, IPPROTO_UDP]);
            w[5] = 0;
            w[5] = !csum_fold(words_sum(w));
            sum += w[6] as u64 + w[7] as u64 + w[8] as u64 + w[9] as u64;
        }
    }

    // The UDP checksum is mandatory on IPv6 and we always send one.
    // SAFETY: checked above, and the frame has not changed size since.
    unsafe { (*udp)[3] = csum_finish(sum) };
    swap_macs(ctx).ok_or(Outcome::Error)?;
    Ok(steered)
}

/// The answer slot of `entry` for this packet (see `dns_common::maps::select`).
#[inline(always)]
fn choose_slot(
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
        let src = ptr_at::<TerritoryV6>(ctx, f.l3 + 8)?;
        // SAFETY: ptr_at checked the bounds.
        let key = LpmKey::new(128, unsafe { read_unaligned(src) });
        TERRITORIES_V6.get(&key).copied()
    } else {
        let src = ptr_at::<TerritoryV4>(ctx, f.l3 + 12)?;
        // SAFETY: ptr_at checked the bounds.
        let key = LpmKey::new(32, unsafe { read_unaligned(src) });
        TERRITORIES_V4.get(&key).copied()
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

/// One's complement contribution of an 8-byte word (native order), unfolded.
#[inline(always)]
fn word_sum(w: u64) -> u64 {
    (w & 0xffff_ffff) + (w >> 32)
}

/// Unfolded one's complement sum of 16-bit words (native order).
#[inline(always)]
fn words_sum<const N: usize>(words: &[u16; N]) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < N {
        sum += words[i] as u64;
        i += 1;
    }
    sum
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any reachable loop.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
