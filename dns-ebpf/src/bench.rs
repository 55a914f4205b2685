//! The benchmark's traffic programs, in an object of their own (the daemon never loads
//! it): `bench_gen` turns each frame of a BPF_PROG_TEST_RUN live-frames run into a query
//! from a template table and transmits it out of the client's veth; `bench_sink`, attached
//! to the same veth, counts the answers by RCODE and drops them (or passes them up to a
//! client such as dnsperf). It also serves as the XDP program native XDP_TX on a veth
//! needs on the peer. `bench_floor` and `bench_pass` are what the fast path's cost is
//! measured against (BPF_PROG_TEST_RUN): the cheapest XDP_TX and the empty program.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS, XDP_TX},
    helpers::generated::{bpf_get_prandom_u32, bpf_xdp_adjust_tail, bpf_xdp_store_bytes},
    macros::{map, xdp},
    maps::{Array, PerCpuArray},
    programs::XdpContext,
};
use dns_common::bench::{
    DNS_ID_OFFSET, GenConfig, RANDOM_MAX, SINK_DROP, SINK_SLOTS, SinkSlot, TEMPLATE_MAX, Template,
    UDP_SOURCE_PORT_OFFSET,
};
use dns_common::{
    frame::{
        DNS_FLAGS, ETH_HLEN, ETH_P_IPV4, ETH_TYPE, IPPROTO_UDP, IPV4_HLEN, IPV4_PROTOCOL, IPV4_VERSION_IHL,
        UDP_HLEN,
    },
    wire::{FLAG1_QR, FLAG1_TC},
};
use dns_ebpf::{ptr_at, swap_macs};

// Sizes are placeholders: the benchmark sets them when it loads the object.
#[map]
static TEMPLATES: Array<Template> = Array::with_max_entries(1, 0);
#[map]
static GEN_CONFIG: Array<GenConfig> = Array::with_max_entries(1, 0);
#[map]
static SINK_CONFIG: Array<u32> = Array::with_max_entries(1, 0);
#[map]
static COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SINK_SLOTS, 0);

const DNS_PORT: u16 = 53;

#[inline(always)]
fn count(slot: SinkSlot) {
    if let Some(c) = COUNTS.get_ptr_mut(slot as u32) {
        // SAFETY: a per-CPU counter: no other writer while this program runs here.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn random() -> u32 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_get_prandom_u32() }
}

/// Live frames start as the run's input, TEMPLATE_MAX bytes long; each becomes a query.
#[xdp]
pub fn bench_gen(ctx: XdpContext) -> u32 {
    match try_gen(&ctx) {
        Some(()) => {
            count(SinkSlot::Sent);
            XDP_TX
        }
        None => XDP_DROP,
    }
}

fn try_gen(ctx: &XdpContext) -> Option<()> {
    let config = GEN_CONFIG.get(0)?;
    if config.slots == 0 {
        return None;
    }
    let pick = random();
    let template = TEMPLATES.get(pick % config.slots)?;
    // SAFETY: the template is map memory of TEMPLATE_MAX bytes; the helper checks the frame.
    let rc =
        unsafe { bpf_xdp_store_bytes(ctx.ctx, 0, template.bytes.as_ptr() as *mut _, TEMPLATE_MAX as u32) };
    if rc != 0 {
        return None;
    }
    let varied = random();
    let port = ptr_at::<[u8; 2]>(ctx, UDP_SOURCE_PORT_OFFSET)?;
    let id = ptr_at::<[u8; 2]>(ctx, DNS_ID_OFFSET)?;
    // SAFETY: ptr_at checked the bounds.
    unsafe {
        *port = (0x8000 | (varied >> 17) as u16).to_be_bytes();
        *id = (varied as u16).to_be_bytes();
    }
    let random_len = (config.random_len as usize).min(RANDOM_MAX);
    let offset = config.random_offset as usize & (TEMPLATE_MAX - 1);
    // One bounds check for the whole label area keeps the writes below verifiable (a
    // per-byte check at a variable offset is compiled into a form the verifier rejects).
    let label = ptr_at::<[u8; RANDOM_MAX]>(ctx, offset)?;
    let mut bits = 0u32;
    for i in 0..RANDOM_MAX {
        if i >= random_len {
            break;
        }
        if i % 4 == 0 {
            bits = random();
        }
        // SAFETY: ptr_at checked RANDOM_MAX bytes; i < RANDOM_MAX.
        unsafe { (*label)[i] = b'a' + (bits % 26) as u8 };
        bits /= 26;
    }
    let shrink = template.len as i32 - TEMPLATE_MAX as i32;
    if shrink < 0 {
        // SAFETY: shrinking the frame; no packet pointer is used afterwards.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, shrink) } != 0 {
            return None;
        }
    }
    Some(())
}

/// Passes every packet. Attached to the peer of a veth the fast path answers on: native
/// XDP_TX on veth drops frames unless the peer has an XDP program (see
/// ../shared/ebpf-facts.md). Also the empty program of the cost measurements.
#[xdp]
pub fn bench_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// The floor of the fast path's cost: swaps the MAC addresses and sends the frame
/// back, the cheapest possible XDP_TX.
#[xdp]
pub fn bench_floor(ctx: XdpContext) -> u32 {
    match swap_macs(&ctx) {
        Some(()) => XDP_TX,
        None => XDP_PASS,
    }
}

/// Counts DNS answers (IPv4, from port 53) by RCODE; drops them when the generator
/// runs, passes them up otherwise. Everything else passes.
#[xdp]
pub fn bench_sink(ctx: XdpContext) -> u32 {
    let Some(flags) = answer_flags(&ctx) else { return XDP_PASS };
    count(SinkSlot::Responses);
    count(match flags[1] & 0x0f {
        0 => SinkSlot::NoError,
        2 => SinkSlot::ServFail,
        3 => SinkSlot::NxDomain,
        5 => SinkSlot::Refused,
        _ => SinkSlot::OtherRcode,
    });
    if flags[0] & FLAG1_TC != 0 {
        count(SinkSlot::Truncated);
    }
    match SINK_CONFIG.get(0) {
        Some(&SINK_DROP) => XDP_DROP,
        _ => XDP_PASS,
    }
}

/// The floor of the benchmark, on the server's veth: turns every IPv4 UDP query to port
/// 53 into the cheapest possible "answer" (the query itself with QR set, addresses and
/// ports swapped) and sends it back. Whatever a server does per answer, it costs more.
#[xdp]
pub fn bench_reflect(ctx: XdpContext) -> u32 {
    match reflect(&ctx) {
        Some(()) => XDP_TX,
        None => XDP_PASS,
    }
}

#[inline(always)]
fn reflect(ctx: &XdpContext) -> Option<()> {
    // Fixed offsets: the generator's frames carry IPv4 without options.
    let eth = ptr_at::<[u8; ETH_HLEN]>(ctx, 0)?;
    let ip = ptr_at::<[u8; IPV4_HLEN]>(ctx, ETH_HLEN)?;
    let udp = ptr_at::<[u8; UDP_HLEN]>(ctx, ETH_HLEN + IPV4_HLEN)?;
    let flags = ptr_at::<u8>(ctx, ETH_HLEN + IPV4_HLEN + UDP_HLEN + DNS_FLAGS)?;
    // SAFETY: ptr_at checked the bounds of every access below; nothing else holds them.
    unsafe {
        let (eth, ip, udp) = (&mut *eth, &mut *ip, &mut *udp);
        if eth[ETH_TYPE..ETH_TYPE + 2] != ETH_P_IPV4.to_be_bytes()
            || ip[0] != IPV4_VERSION_IHL
            || ip[IPV4_PROTOCOL] != IPPROTO_UDP
            || udp[2..4] != DNS_PORT.to_be_bytes()
            || *flags & FLAG1_QR != 0
        {
            return None;
        }
        for i in 0..6 {
            eth.swap(i, i + 6);
        }
        // Swapping addresses and ports leaves the IP checksum and the UDP checksum valid.
        for i in 12..16 {
            ip.swap(i, i + 4);
        }
        udp.swap(0, 2);
        udp.swap(1, 3);
        if udp[6..8] != [0, 0] {
            // Setting QR changes the DNS header: patch a non-zero checksum (RFC 1624).
            let old = u16::from_be_bytes([*flags, 0]);
            let new = u16::from_be_bytes([*flags | FLAG1_QR, 0]);
            let sum = !u16::from_be_bytes([udp[6], udp[7]]) as u32 + !old as u32 + new as u32;
            let sum = (sum & 0xffff) + (sum >> 16);
            let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
            udp[6..8].copy_from_slice(&(if sum == 0 { 0xffff } else { sum }).to_be_bytes());
        }
        *flags |= FLAG1_QR;
    }
    Some(())
}

/// The DNS flags of an IPv4 UDP response from port 53.
#[inline(always)]
fn answer_flags(ctx: &XdpContext) -> Option<[u8; 2]> {
    let ethertype = ptr_at::<[u8; 2]>(ctx, ETH_TYPE)?;
    // SAFETY: ptr_at checked the bounds of every read below.
    unsafe {
        if u16::from_be_bytes(*ethertype) != ETH_P_IPV4 {
            return None;
        }
        let ver_ihl = *ptr_at::<u8>(ctx, ETH_HLEN)?;
        if *ptr_at::<u8>(ctx, ETH_HLEN + IPV4_PROTOCOL)? != IPPROTO_UDP {
            return None;
        }
        let l4 = ETH_HLEN + ((ver_ihl & 0x0f) as usize) * 4;
        if u16::from_be_bytes(*ptr_at::<[u8; 2]>(ctx, l4)?) != DNS_PORT {
            return None;
        }
        let flags = *ptr_at::<[u8; 2]>(ctx, l4 + UDP_HLEN + DNS_FLAGS)?;
        (flags[0] & FLAG1_QR != 0).then_some(flags)
    }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
