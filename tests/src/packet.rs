//! A small packet builder (katran style) for test fixtures. Its checksum code is the
//! textbook big-endian one, independent of the helpers the program and daemon share.

use std::net::{Ipv4Addr, Ipv6Addr};

use dns_common::frame::{
    ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, ETH_TYPE, IPPROTO_UDP, IPV4_CHECKSUM, IPV4_DEST,
    IPV4_SOURCE, IPV4_TOTAL_LEN, IPV6_DEST, IPV6_HLEN, IPV6_PAYLOAD_LEN, IPV6_SOURCE, UDP_CHECKSUM, UDP_HLEN,
    UDP_LEN, VLAN_HLEN,
};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ips {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// An Ethernet frame carrying UDP, with knobs for malformed variants.
#[derive(Clone, Debug)]
pub struct Frame {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// 802.1Q tags (TPID 0x8100), outermost first.
    pub vlans: Vec<u16>,
    pub ips: Ips,
    pub ttl: u8,
    /// IPv4 identification, copied into replies.
    pub ip_id: u16,
    /// IPv4 flags and fragment offset field (0x4000 = DF).
    pub ip_frag: u16,
    /// IPv4 options (padded to 4 bytes by the caller).
    pub ip_options: Vec<u8>,
    /// IPv6 next header, when not UDP (an extension header type).
    pub ipv6_next_header: Option<u8>,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
    /// Bytes after the IP packet (Ethernet padding).
    pub trailer: Vec<u8>,
    /// Overrides of the length fields, for malformed packets.
    pub ip_len_delta: i32,
    pub udp_len_delta: i32,
    /// IP protocol other than UDP.
    pub protocol: u8,
    /// Send a UDP checksum of zero ("none", which IPv6 forbids).
    pub no_udp_checksum: bool,
}

impl Frame {
    pub fn udp(ips: Ips, sport: u16, dport: u16, payload: Vec<u8>) -> Self {
        Self {
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            vlans: Vec::new(),
            ips,
            ttl: 61,
            ip_id: 0x1234,
            ip_frag: 0x4000,
            ip_options: Vec::new(),
            ipv6_next_header: None,
            sport,
            dport,
            payload,
            trailer: Vec::new(),
            ip_len_delta: 0,
            udp_len_delta: 0,
            protocol: IPPROTO_UDP,
            no_udp_checksum: false,
        }
    }

    pub fn v4(payload: Vec<u8>) -> Self {
        Self::udp(Ips::V4(Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1)), 40000, 53, payload)
    }

    pub fn v6(payload: Vec<u8>) -> Self {
        Self::udp(Ips::V6("fd00:53::2".parse().unwrap(), "fd00:53::1".parse().unwrap()), 40000, 53, payload)
    }

    /// The frame a responder sends back: addresses and ports swapped, TTL 64.
    pub fn reply(&self, payload: Vec<u8>) -> Self {
        let mut r = self.clone();
        r.src_mac = self.dst_mac;
        r.dst_mac = self.src_mac;
        r.ips = match &self.ips {
            Ips::V4(s, d) => Ips::V4(*d, *s),
            Ips::V6(s, d) => Ips::V6(*d, *s),
        };
        r.sport = self.dport;
        r.dport = self.sport;
        r.ttl = 64;
        r.payload = payload;
        r.trailer = Vec::new();
        r
    }

    pub fn build(&self) -> Vec<u8> {
        let mut udp = Vec::new();
        let udp_len = (UDP_HLEN + self.payload.len()) as i32 + self.udp_len_delta;
        udp.extend_from_slice(&self.sport.to_be_bytes());
        udp.extend_from_slice(&self.dport.to_be_bytes());
        udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&self.payload);
        let pseudo = match &self.ips {
            Ips::V4(s, d) => {
                [&s.octets()[..], &d.octets()[..], &[0, self.protocol], &(udp.len() as u16).to_be_bytes()]
                    .concat()
            }
            Ips::V6(s, d) => [
                &s.octets()[..],
                &d.octets()[..],
                &(udp.len() as u32).to_be_bytes(),
                &[0, 0, 0, self.protocol],
            ]
            .concat(),
        };
        let mut csum = internet_checksum(&[pseudo, udp.clone()].concat());
        if csum == 0 {
            csum = 0xffff;
        }
        if self.no_udp_checksum {
            csum = 0;
        }
        udp[UDP_CHECKSUM..UDP_CHECKSUM + 2].copy_from_slice(&csum.to_be_bytes());

        let mut out = Vec::new();
        out.extend_from_slice(&self.dst_mac);
        out.extend_from_slice(&self.src_mac);
        for vlan in &self.vlans {
            out.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
            out.extend_from_slice(&vlan.to_be_bytes());
        }
        match &self.ips {
            Ips::V4(s, d) => {
                out.extend_from_slice(&ETH_P_IPV4.to_be_bytes());
                let ihl = 5 + self.ip_options.len() / 4;
                let total = (ihl * 4 + udp.len()) as i32 + self.ip_len_delta;
                let mut ip = vec![(4 << 4) | ihl as u8, 0];
                ip.extend_from_slice(&(total as u16).to_be_bytes());
                ip.extend_from_slice(&self.ip_id.to_be_bytes());
                ip.extend_from_slice(&self.ip_frag.to_be_bytes());
                ip.extend_from_slice(&[self.ttl, self.protocol, 0, 0]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                ip.extend_from_slice(&self.ip_options);
                let c = internet_checksum(&ip);
                ip[IPV4_CHECKSUM..IPV4_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
                out.extend_from_slice(&ip);
            }
            Ips::V6(s, d) => {
                out.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&((udp.len() as i32 + self.ip_len_delta) as u16).to_be_bytes());
                out.push(self.ipv6_next_header.unwrap_or(self.protocol));
                out.push(self.ttl);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
        }
        out.extend_from_slice(&udp);
        out.extend_from_slice(&self.trailer);
        out
    }
}

/// RFC 1071 checksum over big-endian 16-bit words.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += word as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Verifies the IPv4 header and UDP checksums of a built or captured frame; returns
/// the UDP payload.
pub fn check_checksums(frame: &[u8]) -> Result<Vec<u8>, String> {
    let (l3, ethertype) = l3_of(frame).ok_or("the frame ends inside its Ethernet header")?;
    let (pseudo, l4) = match ethertype {
        ETH_P_IPV4 => {
            let ihl = (frame[l3] & 0xf) as usize * 4;
            if internet_checksum(&frame[l3..l3 + ihl]) != 0 {
                return Err("bad IPv4 header checksum".into());
            }
            let total =
                u16::from_be_bytes([frame[l3 + IPV4_TOTAL_LEN], frame[l3 + IPV4_TOTAL_LEN + 1]]) as usize;
            let udp_len = total - ihl;
            let addresses = &frame[l3 + IPV4_SOURCE..l3 + IPV4_DEST + 4];
            let pseudo = [addresses, &[0, IPPROTO_UDP], &(udp_len as u16).to_be_bytes()[..]].concat();
            (pseudo, l3 + ihl)
        }
        ETH_P_IPV6 => {
            let udp_len =
                u16::from_be_bytes([frame[l3 + IPV6_PAYLOAD_LEN], frame[l3 + IPV6_PAYLOAD_LEN + 1]]) as usize;
            let addresses = &frame[l3 + IPV6_SOURCE..l3 + IPV6_DEST + 16];
            let pseudo = [addresses, &(udp_len as u32).to_be_bytes()[..], &[0, 0, 0, IPPROTO_UDP]].concat();
            (pseudo, l3 + IPV6_HLEN)
        }
        other => return Err(format!("not IP: ethertype {other:#x}")),
    };
    let udp_len = u16::from_be_bytes([frame[l4 + UDP_LEN], frame[l4 + UDP_LEN + 1]]) as usize;
    let udp = frame.get(l4..l4 + udp_len).ok_or("UDP length beyond the frame")?;
    if udp[UDP_CHECKSUM..UDP_CHECKSUM + 2] == [0, 0] {
        return Err("UDP checksum missing".into());
    }
    if internet_checksum(&[pseudo, udp.to_vec()].concat()) != 0 {
        return Err("bad UDP checksum".into());
    }
    Ok(udp[UDP_HLEN..].to_vec())
}

/// Where a frame's IP header starts and its ethertype, past up to any number of VLAN
/// tags; None if the frame ends first.
fn l3_of(frame: &[u8]) -> Option<(usize, u16)> {
    let mut at = ETH_TYPE;
    let mut ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    while ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        at += VLAN_HLEN;
        ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    }
    Some((at + 2, ethertype))
}

/// The UDP payload of an Ethernet frame (VLAN tags, IPv4 with options or IPv6 without
/// extension headers), as its UDP length says: what the kernel would deliver to a
/// socket. None if the frame does not hold a well-formed datagram.
pub fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let (l3, ethertype) = l3_of(frame)?;
    let (l4, ip_end) = match ethertype {
        ETH_P_IPV4 => {
            let ihl = (*frame.get(l3)? & 0xf) as usize * 4;
            let total = u16::from_be_bytes(frame.get(l3 + 2..l3 + 4)?.try_into().ok()?) as usize;
            (l3 + ihl, l3 + total)
        }
        ETH_P_IPV6 => {
            let payload = u16::from_be_bytes(frame.get(l3 + 4..l3 + 6)?.try_into().ok()?) as usize;
            (l3 + IPV6_HLEN, l3 + IPV6_HLEN + payload)
        }
        _ => return None,
    };
    let udp_len = u16::from_be_bytes(frame.get(l4 + UDP_LEN..l4 + UDP_LEN + 2)?.try_into().ok()?) as usize;
    if udp_len < UDP_HLEN || l4 + udp_len > ip_end.min(frame.len()) {
        return None;
    }
    frame.get(l4 + UDP_HLEN..l4 + udp_len)
}

/// The IP source address of an Ethernet frame (past VLAN tags).
pub fn source_address(frame: &[u8]) -> Option<std::net::IpAddr> {
    let (l3, ethertype) = l3_of(frame)?;
    match ethertype {
        ETH_P_IPV4 => {
            let a: [u8; 4] = frame.get(l3 + IPV4_SOURCE..l3 + IPV4_SOURCE + 4)?.try_into().ok()?;
            Some(Ipv4Addr::from(a).into())
        }
        ETH_P_IPV6 => {
            let a: [u8; 16] = frame.get(l3 + IPV6_SOURCE..l3 + IPV6_SOURCE + 16)?.try_into().ok()?;
            Some(Ipv6Addr::from(a).into())
        }
        _ => None,
    }
}

/// Whether `reply` is addressed back to the sender of `frame`: MACs swapped.
pub fn addressed_back(frame: &[u8], reply: &[u8]) -> bool {
    frame.len() >= 12 && reply.len() >= 12 && reply[..6] == frame[6..12] && reply[6..12] == frame[..6]
}
