//! Frame layout constants: header lengths, EtherTypes, protocol numbers and the field
//! offsets inside each header that the XDP programs read and rewrite. One place, so
//! the fast path, the benchmark programs and the tests' packet builder agree.

/// Ethernet header: destination MAC, source MAC, EtherType.
pub const ETH_HLEN: usize = 14;
pub const ETH_DEST: usize = 0;
pub const ETH_SOURCE: usize = 6;
pub const ETH_TYPE: usize = 12;
pub const ETH_ALEN: usize = 6;
/// The individual/group bit of a MAC address's first byte: set on multicast and
/// broadcast addresses, never on a station's own.
pub const ETH_GROUP_BIT: u8 = 0x01;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
/// 802.1Q VLAN tag and 802.1ad service tag (QinQ).
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

/// One VLAN tag: TCI, then the EtherType of what follows.
pub const VLAN_HLEN: usize = 4;
pub const VLAN_TYPE: usize = 2;
/// Longest 802.1Q/802.1ad tag stack we parse (QinQ).
pub const MAX_VLAN_TAGS: usize = 2;

/// IPv4 header without options.
pub const IPV4_HLEN: usize = 20;
/// Version 4 and IHL 5 (no options) in the first byte.
pub const IPV4_VERSION_IHL: u8 = 0x45;
pub const IPV4_TOTAL_LEN: usize = 2;
pub const IPV4_FRAG: usize = 6;
/// The fragment offset and the MF flag (a fragment has one of them set).
pub const IPV4_FRAG_MASK: u16 = 0x3fff;
pub const IPV4_TTL: usize = 8;
pub const IPV4_PROTOCOL: usize = 9;
pub const IPV4_CHECKSUM: usize = 10;
pub const IPV4_SOURCE: usize = 12;
pub const IPV4_DEST: usize = 16;

/// IPv6 fixed header.
pub const IPV6_HLEN: usize = 40;
pub const IPV6_PAYLOAD_LEN: usize = 4;
pub const IPV6_NEXT_HEADER: usize = 6;
pub const IPV6_HOP_LIMIT: usize = 7;
pub const IPV6_SOURCE: usize = 8;
pub const IPV6_DEST: usize = 24;
pub const IPV6_ADDR_LEN: usize = 16;

pub const IPPROTO_UDP: u8 = 17;

/// UDP header.
pub const UDP_HLEN: usize = 8;
pub const UDP_SOURCE: usize = 0;
pub const UDP_DEST: usize = 2;
pub const UDP_LEN: usize = 4;
pub const UDP_CHECKSUM: usize = 6;

/// Hop limit (IPv4 TTL) of the responses the fast path sends.
pub const RESPONSE_TTL: u8 = 64;

/// Highest offset of the DNS header in a frame the fast path parses: Ethernet, two
/// VLAN tags, IPv6, UDP.
pub const MAX_DNS_OFFSET: usize = ETH_HLEN + MAX_VLAN_TAGS * VLAN_HLEN + IPV6_HLEN + UDP_HLEN;

/// IPv6 next-header values of extension headers (RFC 8200 section 4, RFC 7045): UDP
/// behind them is left to the kernel and userspace.
pub const fn is_ipv6_extension(next: u8) -> bool {
    matches!(next, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254)
}

/// DNS header fields (RFC 1035 section 4.1.1), offsets from the start of the message.
pub const DNS_ID: usize = 0;
pub const DNS_FLAGS: usize = 2;
pub const DNS_QDCOUNT: usize = 4;
pub const DNS_ANCOUNT: usize = 6;
pub const DNS_NSCOUNT: usize = 8;
pub const DNS_ARCOUNT: usize = 10;

/// Fields of an OPT record with the root owner (RFC 6891 section 6.1.2), offsets from
/// its first byte.
pub const OPT_OWNER: usize = 0;
pub const OPT_TYPE: usize = 1;
pub const OPT_PAYLOAD: usize = 3;
pub const OPT_EXT_RCODE: usize = 5;
pub const OPT_VERSION: usize = 6;
pub const OPT_FLAGS: usize = 7;
pub const OPT_RDLEN: usize = 9;
/// An EDNS option: code, length, then the data.
pub const OPTION_HLEN: usize = 4;
