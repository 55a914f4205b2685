//! Parsing, header by header: Ethernet (and up to [`MAX_VLAN_TAGS`] VLAN tags), IPv4
//! or IPv6, UDP to our port, then the DNS header, the question and an optional EDNS(0)
//! OPT record. Anything the fast path does not answer exactly as userspace would is an
//! `Err` naming the outcome, and the frame goes up untouched.

use core::ptr::read_unaligned;

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};
use dns_common::{
    cookie::{CLIENT_COOKIE_LEN, COOKIE_BUF_LEN, EDNS_OPTION_COOKIE, MAX_COOKIE_DATA},
    frame::{
        DNS_ANCOUNT, DNS_ARCOUNT, DNS_FLAGS, DNS_NSCOUNT, DNS_QDCOUNT, ETH_ALEN, ETH_DEST, ETH_GROUP_BIT,
        ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, ETH_SOURCE, ETH_TYPE, IPPROTO_UDP,
        IPV4_DEST, IPV4_FRAG, IPV4_FRAG_MASK, IPV4_HLEN, IPV4_PROTOCOL, IPV4_SOURCE, IPV4_TOTAL_LEN,
        IPV4_VERSION_IHL, IPV6_ADDR_LEN, IPV6_DEST, IPV6_HLEN, IPV6_NEXT_HEADER, IPV6_PAYLOAD_LEN,
        IPV6_SOURCE, MAX_DNS_OFFSET, MAX_VLAN_TAGS, OPT_FLAGS, OPT_OWNER, OPT_PAYLOAD, OPT_RDLEN, OPT_TYPE,
        OPT_VERSION, OPTION_HLEN, UDP_CHECKSUM, UDP_DEST, UDP_HLEN, UDP_LEN, UDP_SOURCE, VLAN_HLEN,
        VLAN_TYPE, is_ipv6_extension,
    },
    limits::{
        DNS_HEADER_LEN, ECS_OPTION_MASK, ECS_OPTION_MAX_LEN, ECS_OPTION_MIN_LEN, MAX_LABEL_LEN, MAX_LABELS,
        MAX_NAME_LEN, OPT_RR_LEN,
    },
    maps::Scratch,
    stats::Outcome,
    wire::{
        CLASS_IN, EDNS_FLAG_DO, EDNS_OPTION_ECS, FLAG1_OPCODE_MASK, FLAG1_QR, FLAG1_TC, TYPE_OPT, csum_fold,
        is_loop_prone_port,
    },
};
use dns_ebpf::{ptr_at, read_be16, read_u8, words_sum};

use crate::{IFACE_MACS, LOCAL_V4, LOCAL_V6, config_port, launder};

/// The spill slot of the Client Subnet option's length (see `save_client_subnet`).
pub const SPILL_ECS_LEN: usize = 6;
/// The spill slot of the COOKIE option's length (see `save_cookie`).
const SPILL_COOKIE_LEN: usize = 7;
/// Most EDNS options we walk in a query before leaving it to userspace.
const MAX_EDNS_OPTIONS: usize = 8;
/// Longest query we parse; longer ones (a question plus large EDNS options, which
/// cannot even arrive unfragmented on a 1500-byte MTU) go up. Keeps every offset well
/// inside the verifier's 64 KiB packet-offset range.
const MAX_QUERY_LEN: usize = 2048;

/// Where the parsed headers are, all offsets from the start of the frame.
pub struct Frame {
    pub l3: usize,
    pub ipv6: bool,
    pub l4: usize,
    pub dns: usize,
    /// Length of the DNS message (UDP payload), which may end before the frame does
    /// (Ethernet padding).
    pub msg_len: usize,
}

/// What the question and EDNS parse found.
pub struct Query {
    pub name_len: usize,
    pub flags: [u8; 2],
    /// The client's EDNS UDP payload size, if it sent an OPT record.
    pub edns_payload: Option<u16>,
    pub dnssec_ok: bool,
    /// The query carries an EDNS Client Subnet option (well formed, saved in
    /// `Scratch::ecs`).
    pub client_subnet: bool,
    /// The option's length, header included ([`ECS_OPTION_MIN_LEN`]..=[`ECS_OPTION_MAX_LEN`]).
    pub ecs_len: usize,
    /// The COOKIE option's data length (0: none), the data saved in `Scratch::cookie_in`.
    pub cookie_len: usize,
}

fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

pub fn parse_frame(ctx: &XdpContext, scratch: *mut Scratch) -> Result<Frame, Outcome> {
    let not_dns = Outcome::PassNotDns;
    let mut ethertype = read_be16(ctx, ETH_TYPE).ok_or(not_dns)?;
    let mut l3 = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan(ethertype) {
            break;
        }
        ethertype = read_be16(ctx, l3 + VLAN_TYPE).ok_or(not_dns)?;
        l3 += VLAN_HLEN;
    }
    if is_vlan(ethertype) {
        return Err(Outcome::PassUnsupported);
    }
    let frame_len = ctx.data_end() - ctx.data();
    let (ipv6, l4, ip_payload_len) = match ethertype {
        ETH_P_IPV4 => {
            let ip = ptr_at::<[u8; IPV4_HLEN]>(ctx, l3).ok_or(not_dns)?;
            // SAFETY: ptr_at checked the bounds.
            let ip = unsafe { read_unaligned(ip) };
            if ip[IPV4_PROTOCOL] != IPPROTO_UDP {
                return Err(not_dns);
            }
            // Version 4 without options, not a fragment (MF clear, offset zero).
            let frag = u16::from_be_bytes([ip[IPV4_FRAG], ip[IPV4_FRAG + 1]]);
            if ip[0] != IPV4_VERSION_IHL || frag & IPV4_FRAG_MASK != 0 {
                return Err(Outcome::PassUnsupported);
            }
            // The kernel drops a header whose checksum fails (ip_rcv): never answered.
            // SAFETY: twenty bytes read as ten 16-bit words, by value.
            let words: [u16; IPV4_HLEN / 2] = unsafe { core::mem::transmute(ip) };
            if csum_fold(words_sum(&words)) != 0xffff {
                return Err(Outcome::PassUnsupported);
            }
            let total = u16::from_be_bytes([ip[IPV4_TOTAL_LEN], ip[IPV4_TOTAL_LEN + 1]]) as usize;
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
            let next = ip[IPV6_NEXT_HEADER];
            if next != IPPROTO_UDP {
                // Extension headers (which may lead to UDP) are userspace's business.
                return Err(if is_ipv6_extension(next) { Outcome::PassUnsupported } else { not_dns });
            }
            let payload = u16::from_be_bytes([ip[IPV6_PAYLOAD_LEN], ip[IPV6_PAYLOAD_LEN + 1]]) as usize;
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
    if u16::from_be_bytes([udp[UDP_DEST], udp[UDP_DEST + 1]]) != config_port() {
        return Err(not_dns);
    }
    let udp_len = u16::from_be_bytes([udp[UDP_LEN], udp[UDP_LEN + 1]]) as usize;
    if udp_len != ip_payload_len || udp_len < UDP_HLEN + DNS_HEADER_LEN {
        return Err(Outcome::PassUnsupported);
    }
    // A source port of zero cannot be answered.
    if udp[UDP_SOURCE] == 0 && udp[UDP_SOURCE + 1] == 0 {
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

/// Whether the frame is ours to answer: to the MAC of the interface it came in on and
/// to one of the addresses we serve, from a source we may answer (not multicast,
/// broadcast, loopback or unspecified, not a loop-prone port), and, over IPv6, with a
/// UDP checksum (zero is invalid there, RFC 8200 section 8.1: the kernel drops it).
pub fn addressed_to_us(ctx: &XdpContext, f: &Frame) -> Result<(), Outcome> {
    let not_ours = Outcome::PassNotForUs;
    let ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: a map value read by copy.
    let mac = unsafe { IFACE_MACS.get(&ifindex) }.copied().ok_or(not_ours)?;
    let dest = ptr_at::<[u8; ETH_ALEN]>(ctx, ETH_DEST).ok_or(not_ours)?;
    // SAFETY: ptr_at checked the bounds.
    if unsafe { read_unaligned(dest) } != [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]] {
        return Err(not_ours);
    }
    // A source with the group bit set is no station (IEEE 802): the answer would go to
    // every host of the segment.
    if read_u8(ctx, ETH_SOURCE).ok_or(not_ours)? & ETH_GROUP_BIT != 0 {
        return Err(not_ours);
    }
    let source_port = read_be16(ctx, f.l4 + UDP_SOURCE).ok_or(not_ours)?;
    if is_loop_prone_port(source_port) {
        return Err(not_ours);
    }
    if f.ipv6 {
        let ip = ptr_at::<[u8; IPV6_HLEN]>(ctx, f.l3).ok_or(not_ours)?;
        // SAFETY: ptr_at checked the bounds.
        let ip = unsafe { read_unaligned(ip) };
        let mut dest = [0u8; IPV6_ADDR_LEN];
        dest.copy_from_slice(&ip[IPV6_DEST..IPV6_DEST + IPV6_ADDR_LEN]);
        // SAFETY: a map lookup by value.
        if unsafe { LOCAL_V6.get(&dest) }.is_none() {
            return Err(not_ours);
        }
        let source = &ip[IPV6_SOURCE..IPV6_SOURCE + IPV6_ADDR_LEN];
        let unspecified_or_loopback = source[..15].iter().all(|b| *b == 0) && source[15] <= 1;
        if source[0] == 0xff || unspecified_or_loopback {
            return Err(not_ours);
        }
        if read_be16(ctx, f.l4 + UDP_CHECKSUM).ok_or(not_ours)? == 0 {
            return Err(not_ours);
        }
    } else {
        let ip = ptr_at::<[u8; IPV4_HLEN]>(ctx, f.l3).ok_or(not_ours)?;
        // SAFETY: ptr_at checked the bounds.
        let ip = unsafe { read_unaligned(ip) };
        let dest = [ip[IPV4_DEST], ip[IPV4_DEST + 1], ip[IPV4_DEST + 2], ip[IPV4_DEST + 3]];
        // SAFETY: a map lookup by value.
        if unsafe { LOCAL_V4.get(&dest) }.is_none() {
            return Err(not_ours);
        }
        let first = ip[IPV4_SOURCE];
        // 0/8, loopback 127/8, multicast 224/4 and above (broadcast included).
        if first == 0 || first == 127 || first >= 224 {
            return Err(not_ours);
        }
    }
    Ok(())
}

pub fn parse_query(ctx: &XdpContext, scratch: *mut Scratch, f: &Frame) -> Result<Query, Outcome> {
    let bad = Outcome::PassUnsupported;
    let hdr = ptr_at::<[u8; DNS_HEADER_LEN]>(ctx, f.dns).ok_or(bad)?;
    // SAFETY: ptr_at checked the bounds.
    let hdr = unsafe { read_unaligned(hdr) };
    let flags = [hdr[DNS_FLAGS], hdr[DNS_FLAGS + 1]];
    // A query (QR clear), opcode QUERY, not truncated.
    if flags[0] & (FLAG1_QR | FLAG1_OPCODE_MASK | FLAG1_TC) != 0 {
        return Err(bad);
    }
    let count = |at: usize| u16::from_be_bytes([hdr[at], hdr[at + 1]]);
    let arcount = count(DNS_ARCOUNT);
    if count(DNS_QDCOUNT) != 1 || count(DNS_ANCOUNT) != 0 || count(DNS_NSCOUNT) != 0 || arcount > 1 {
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

    let mut query = Query {
        name_len,
        flags,
        edns_payload: None,
        dnssec_ok: false,
        client_subnet: false,
        ecs_len: 0,
        cookie_len: 0,
    };
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
    let field = |at: usize| u16::from_be_bytes([rr[at], rr[at + 1]]);
    let rdlen = field(OPT_RDLEN) as usize;
    if rr[OPT_OWNER] != 0
        || field(OPT_TYPE) != TYPE_OPT
        || rr[OPT_VERSION] != 0
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
        let len = read_be16(ctx, option + 2).ok_or(bad)? as usize;
        let code = read_be16(ctx, option).ok_or(bad)?;
        if code == EDNS_OPTION_COOKIE {
            // A second one, or a malformed one, gets FORMERR from userspace.
            if query.cookie_len != 0 {
                return Err(bad);
            }
            query.cookie_len = save_cookie(ctx, scratch, option + OPTION_HLEN, len).ok_or(bad)?;
        }
        if code == EDNS_OPTION_ECS {
            // A second one, or a malformed one, gets FORMERR from userspace.
            if query.client_subnet {
                return Err(bad);
            }
            query.ecs_len = save_client_subnet(ctx, scratch, option, OPTION_HLEN + len).ok_or(bad)?;
            query.client_subnet = true;
        }
        option += OPTION_HLEN + len;
        if option > options_end {
            return Err(bad);
        }
    }
    if !walked && option != options_end {
        return Err(bad);
    }
    query.edns_payload = Some(field(OPT_PAYLOAD));
    query.dnssec_ok = field(OPT_FLAGS) & EDNS_FLAG_DO != 0;
    Ok(query)
}

/// Copies the COOKIE option's data at `data` (`len` bytes) into `Scratch::cookie_in`,
/// zero-padded, if its length is one userspace accepts (RFC 7873 section 4: a client
/// cookie of 8 bytes, and a server cookie of 8 to 32). Returns the length.
#[inline(always)]
fn save_cookie(ctx: &XdpContext, scratch: *mut Scratch, data: usize, len: usize) -> Option<usize> {
    if len != CLIENT_COOKIE_LEN && !(CLIENT_COOKIE_LEN + 8..=MAX_COOKIE_DATA).contains(&len) {
        return None;
    }
    // As in `save_client_subnet`: a masked, laundered, non-zero length bounds the copy.
    let len = launder(scratch, SPILL_COOKIE_LEN, len) & (COOKIE_BUF_LEN - 1);
    if len == 0 {
        return None;
    }
    // SAFETY: scratch points at this CPU's scratch value.
    let buf = unsafe { &mut (*scratch).cookie_in };
    *buf = [0; COOKIE_BUF_LEN];
    // SAFETY: `len` bytes fit `buf`; the helper checks the packet bounds.
    let rc = unsafe {
        bpf_xdp_load_bytes(ctx.ctx, data as u32, buf.as_mut_ptr() as *mut core::ffi::c_void, len as u32)
    };
    (rc == 0).then_some(len)
}

/// Copies the Client Subnet option at `option` (`total` bytes, header included) into
/// `Scratch::ecs`, zero-padded, if it is one userspace accepts (RFC 7871 section 6: a
/// known family, a source prefix within it, SCOPE 0, exactly the address bytes the
/// prefix needs, no bits set past it). Returns its length.
#[inline(always)]
fn save_client_subnet(ctx: &XdpContext, scratch: *mut Scratch, option: usize, total: usize) -> Option<usize> {
    if !(ECS_OPTION_MIN_LEN..=ECS_OPTION_MAX_LEN).contains(&total) {
        return None;
    }
    // Laundered, masked and checked for zero as one value the compiler cannot fold
    // into the range check above: the verifier then knows the copy fits the buffer
    // (whose size is the mask's) and is not empty.
    let total = launder(scratch, SPILL_ECS_LEN, total) & ECS_OPTION_MASK;
    if total == 0 {
        return None;
    }
    // SAFETY: scratch points at this CPU's scratch value.
    let ecs = unsafe { &mut (*scratch).ecs };
    *ecs = [0; ECS_OPTION_MASK + 1];
    // SAFETY: `total` bytes fit `ecs`; the helper checks the packet bounds.
    let rc = unsafe {
        bpf_xdp_load_bytes(ctx.ctx, option as u32, ecs.as_mut_ptr() as *mut core::ffi::c_void, total as u32)
    };
    if rc != 0 {
        return None;
    }
    let family = u16::from_be_bytes([ecs[4], ecs[5]]);
    let (source, scope) = (ecs[6] as usize, ecs[7]);
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    let address_len = total - ECS_OPTION_MIN_LEN;
    if source > max || scope != 0 || address_len != source.div_ceil(8) {
        return None;
    }
    if source % 8 != 0 {
        let last = ecs[(total - 1) & ECS_OPTION_MASK];
        if last & (0xffu8 >> (source % 8)) != 0 {
            return None;
        }
    }
    Some(total)
}
