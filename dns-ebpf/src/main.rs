//! instadns fast path: answers hot DNS queries from BPF maps with XDP_TX.
//!
//! Ethernet (+ up to two VLAN tags) -> IPv4 or IPv6 -> UDP to the DNS port -> a standard
//! query with one question (and at most an EDNS(0) OPT record) ([`parse`]). The
//! lower-cased QNAME and QTYPE are looked up in the name map of the name's length bucket
//! ([`key`]); on a hit the answer slot is chosen ([`steer`]) and the packet rewritten in
//! place into the response userspace prepared and sent back ([`respond`]); on a miss, a
//! name proven not to exist gets its zone's NXDOMAIN ([`negative`]). Anything else,
//! or anything we are not sure to answer exactly as userspace would, goes up with
//! XDP_PASS, untouched. The program never drops.
//!
//! Verifier notes: variable offsets are stored to the per-CPU scratch map and read back
//! ([`launder`]) at the points where parsing paths join, so the verifier merges the paths
//! instead of verifying the rest of the program once per header layout and name length.
#![no_std]
#![no_main]

mod cookie;
mod key;
mod negative;
mod parse;
mod respond;
mod rrl;
mod steer;

use parse::{Frame, Query};

use core::ptr::{read_unaligned, read_volatile, write_volatile};

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS, XDP_TX},
    helpers::generated::bpf_ktime_get_coarse_ns,
    macros::{map, xdp},
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray},
    programs::XdpContext,
};
use dns_common::{
    cookie::CookieConfig,
    limits::DEFAULT_EDNS_PAYLOAD,
    maps::{
        AnswerSlot, INTERFACES, LOCAL_ADDRESSES, NameEntry, NameKey0, NameKey1, NameKey2, NameKey3, Scratch,
        TERRITORY_PREFIXES, TerritoryV4, TerritoryV6, select, wildcard_key_check,
    },
    negative::{KnownName, MAX_WILDCARD_ANSWERS, MAX_ZONES, NegativeConfig, WildcardKey, ZoneFacts},
    rrl::{RRL_EXEMPT_PREFIXES, RrlBucket, RrlConfig, RrlKey, token_kind},
    stats::{OUTCOME_SLOTS, Outcome},
};

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
/// The addresses this host serves: only frames to one of them are answered.
#[map]
static LOCAL_V4: HashMap<[u8; 4], u32> = HashMap::with_max_entries(LOCAL_ADDRESSES, 0);
#[map]
static LOCAL_V6: HashMap<[u8; 16], u32> = HashMap::with_max_entries(LOCAL_ADDRESSES, 0);
/// The MAC of each interface the program is attached to, by ifindex.
#[map]
static IFACE_MACS: HashMap<u32, [u8; 8]> = HashMap::with_max_entries(INTERFACES, 0);
/// The names that exist, by hash (see `dns_common::negative`); grown on demand.
#[map]
static KNOWN_NAMES: HashMap<u64, KnownName> = HashMap::with_max_entries(1024, BPF_F_NO_PREALLOC);
#[map]
static ZONE_FACTS: HashMap<u32, ZoneFacts> = HashMap::with_max_entries(MAX_ZONES, 0);
#[map]
static NEGATIVE_CONFIG: Array<NegativeConfig> = Array::with_max_entries(1, 0);
#[map]
static WILDCARD_ANSWERS: LruHashMap<WildcardKey, NameEntry> =
    LruHashMap::with_max_entries(MAX_WILDCARD_ANSWERS, 0);

/// Response rate limiting (see `dns_common::rrl`): shared by every CPU and by userspace.
#[map]
static RRL_BUCKETS: LruHashMap<RrlKey, RrlBucket> = LruHashMap::with_max_entries(1024, 0);
#[map]
static RRL_CONFIG: Array<RrlConfig> = Array::with_max_entries(1, 0);
#[map]
static RRL_EXEMPT_V4: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(RRL_EXEMPT_PREFIXES, 0);
#[map]
static RRL_EXEMPT_V6: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(RRL_EXEMPT_PREFIXES, 0);

/// DNS cookies' secrets and clock (see `dns_common::cookie`), written by userspace.
#[map]
static COOKIE_CONFIG: Array<CookieConfig> = Array::with_max_entries(1, 0);

/// Hash map entries allocated as they are inserted (the kernel's flag).
const BPF_F_NO_PREALLOC: u32 = 1;

#[xdp]
pub fn instadns(ctx: XdpContext) -> u32 {
    let (action, outcome) = match try_instadns(&ctx) {
        Ok(steered) => {
            if let Some(steered) = steered {
                count(steered);
            }
            (XDP_TX, Outcome::Hit)
        }
        Err(Outcome::RrlDropped) => (XDP_DROP, Outcome::RrlDropped),
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
    let frame = parse::parse_frame(ctx, scratch)?;
    parse::addressed_to_us(ctx, &frame)?;
    let query = parse::parse_query(ctx, scratch, &frame)?;
    answer(ctx, scratch, &frame, &query)
}

/// Looks the question up and, on a fresh hit, rewrites the frame into the response;
/// a name proven not to exist gets its zone's NXDOMAIN or its wildcard's answer. One
/// call site of the response code, so the verifier walks it once.
fn answer(ctx: &XdpContext, scratch: *mut Scratch, f: &Frame, q: &Query) -> Result<Option<Outcome>, Outcome> {
    let built = key::build_key(ctx, scratch, f, q.name_len)?;
    let question_sum = built.question_sum;
    // The rate limit's token (see `dns_common::rrl`): the question, unless the zone's
    // NXDOMAIN answers.
    let mut token = (token_kind::NAME, built.check);
    let (entry, how) = match key::lookup(scratch, built.bucket) {
        Some(found) => {
            let entry = still_ours(found, built.check)?;
            fresh(&entry)?;
            (entry, None)
        }
        None => match negative::absent_name(scratch, q.name_len)? {
            negative::Absent::Nxdomain(slot, zone) => {
                token = (token_kind::ZONE_NXDOMAIN, zone);
                (
                    NameEntry {
                        expires_ns: u64::MAX,
                        answer: slot,
                        variants: 1,
                        select: select::FIXED,
                        check: 0,
                        _pad: 0,
                    },
                    Some(Outcome::HitNxdomain),
                )
            }
            negative::Absent::Wildcard(encloser, qtype) => {
                let key = WildcardKey { encloser, qtype, _pad: [0; 6] };
                let found = WILDCARD_ANSWERS.get_ptr(&key).ok_or(Outcome::Miss)?;
                let entry = still_ours(found, wildcard_key_check(encloser, qtype))?;
                fresh(&entry)?;
                (entry, Some(Outcome::HitWildcard))
            }
        },
    };
    // A directional answer depends on the subnet: userspace answers it, with its scope
    // (RFC 7871). Any other echoes the option with SCOPE 0 (section 7.2.1).
    if q.client_subnet && entry.select == select::DIRECTIONAL {
        return Err(Outcome::PassEcs);
    }
    // Laundered: the three paths join here as one state, so the verifier walks the
    // response code once.
    let entry = launder_entry(scratch, entry);
    let how = launder(scratch, SPILL_HOW, how.map_or(0, |o| o as usize));
    let token = rrl::Token {
        kind: launder(scratch, SPILL_TOKEN_KIND, token.0 as usize) as u8,
        value: launder(scratch, SPILL_TOKEN, token.1 as usize) as u32,
    };
    let cookie = cookie::answer_cookie(ctx, scratch, f, q)?;
    let (slot, steered) = steer::choose_slot(ctx, scratch, f, &entry)?;
    if respond::respond(ctx, scratch, f, q, slot, question_sum, &token, cookie)? == respond::Sent::Slipped {
        return Ok(Some(Outcome::RrlSlipped));
    }
    Ok(match how {
        h if h == Outcome::HitNxdomain as usize => Some(Outcome::HitNxdomain),
        h if h == Outcome::HitWildcard as usize => Some(Outcome::HitWildcard),
        _ => steered,
    })
}

/// The spill slot of how an answer was found (see `answer`).
const SPILL_HOW: usize = 5;
/// The spill slots of the rate limit's token (see `answer`).
const SPILL_TOKEN_KIND: usize = 0;
const SPILL_TOKEN: usize = 1;

/// Stores the entry in scratch memory and reads it back (see [`launder`]).
#[inline(always)]
fn launder_entry(scratch: *mut Scratch, entry: NameEntry) -> NameEntry {
    // SAFETY: scratch points at this CPU's scratch value.
    unsafe {
        let p = &raw mut (*scratch).entry;
        write_volatile(p, entry);
        read_volatile(p)
    }
}

/// A copy of the LRU entry at `found` if it still belongs to the question: the kernel
/// recycles an element for another key at once, even while this program reads it, so
/// the check is compared on the copy and again after it (a recycled element has another
/// key's check).
#[inline(always)]
fn still_ours(found: *const NameEntry, check: u32) -> Result<NameEntry, Outcome> {
    // SAFETY: a valid map value pointer for the duration of this program run.
    let entry = unsafe { read_unaligned(found) };
    // SAFETY: as above.
    let after = unsafe { read_volatile(&raw const (*found).check) };
    if entry.check != check || after != check {
        return Err(Outcome::Miss);
    }
    Ok(entry)
}

/// An entry past its expiry goes up to be refreshed.
#[inline(always)]
fn fresh(entry: &NameEntry) -> Result<(), Outcome> {
    // SAFETY: helper without arguments.
    if unsafe { bpf_ktime_get_coarse_ns() } >= entry.expires_ns {
        return Err(Outcome::Expired);
    }
    Ok(())
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

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
