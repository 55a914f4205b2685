//! Replies from the address asked. A socket bound to a wildcard address (`0.0.0.0`,
//! `::`) on a host with several addresses (a VIP, anycast) would otherwise send from
//! whatever address the route picks, and resolvers drop replies from an address they did
//! not ask. With `IP_PKTINFO` / `IPV6_RECVPKTINFO` every datagram says which address it
//! was sent to, and the reply names that address as its source.

use std::{
    io,
    mem::{size_of, zeroed},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    os::fd::AsRawFd as _,
};

use tokio::{io::Interest, net::UdpSocket};

/// The address (and interface) a datagram was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    pub addr: IpAddr,
    pub ifindex: u32,
}

/// Room for one `in6_pktinfo` control message (the larger of the two), aligned.
#[repr(C, align(8))]
struct ControlBuffer([u8; 64]);

/// Asks the kernel to report each datagram's destination address.
pub fn enable(socket: &UdpSocket, ipv6: bool) -> io::Result<()> {
    let one: libc::c_int = 1;
    let (level, option) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    // SAFETY: a valid socket and an int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Receives one datagram: its length, its source and its destination (None if the
/// kernel gave none).
pub async fn recv(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<Destination>)> {
    socket.async_io(Interest::READABLE, || recv_now(socket, buf)).await
}

/// Sends `data` to `peer` from `from`'s address.
pub async fn send(socket: &UdpSocket, data: &[u8], peer: SocketAddr, from: Destination) -> io::Result<usize> {
    socket.async_io(Interest::WRITABLE, || send_now(socket, data, peer, from)).await
}

fn recv_now(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<Destination>)> {
    // SAFETY: all-zero is a valid value of these C structs.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control = ControlBuffer([0; 64]);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len();
    // SAFETY: every pointer in msg is valid for the lengths given, for this call.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    let peer = socket_addr(&name).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "datagram from an unknown address family")
    })?;
    Ok((len as usize, peer, destination(&msg)))
}

fn send_now(socket: &UdpSocket, data: &[u8], peer: SocketAddr, from: Destination) -> io::Result<usize> {
    let mut control = ControlBuffer([0; 64]);
    let (mut name, name_len) = sockaddr(peer);
    let mut iov = libc::iovec { iov_base: data.as_ptr().cast_mut().cast(), iov_len: data.len() };
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = name_len;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: the control buffer has room for one pktinfo message of either family
    // (CMSG_SPACE of in6_pktinfo is 40 bytes); the header pointers come from the macros.
    unsafe {
        let (level, kind, payload_len) = match from.addr {
            IpAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_PKTINFO, size_of::<libc::in_pktinfo>()),
            IpAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, size_of::<libc::in6_pktinfo>()),
        };
        msg.msg_controllen = libc::CMSG_SPACE(payload_len as u32) as usize;
        let header = libc::CMSG_FIRSTHDR(&raw const msg);
        (*header).cmsg_level = level;
        (*header).cmsg_type = kind;
        (*header).cmsg_len = libc::CMSG_LEN(payload_len as u32) as usize;
        let payload = libc::CMSG_DATA(header);
        match from.addr {
            IpAddr::V4(v4) => {
                let info = libc::in_pktinfo {
                    // The source address alone; the route picks the interface.
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(payload.cast(), info);
            }
            IpAddr::V6(v6) => {
                // The interface too: a link-local source needs it.
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: v6.octets() },
                    ipi6_ifindex: from.ifindex,
                };
                std::ptr::write_unaligned(payload.cast(), info);
            }
        }
        let sent = libc::sendmsg(socket.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT);
        if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(sent as usize) }
    }
}

/// The destination address in the control messages of a received datagram.
fn destination(msg: &libc::msghdr) -> Option<Destination> {
    // SAFETY: the kernel filled the control buffer; the macros walk it within
    // msg_controllen, and each payload is read unaligned with its type's size.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(msg);
        while !header.is_null() {
            let (level, kind) = ((*header).cmsg_level, (*header).cmsg_type);
            if level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO {
                let info: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
                return Some(Destination {
                    addr: IpAddr::V4(Ipv4Addr::from(info.ipi_addr.s_addr.to_ne_bytes())),
                    ifindex: info.ipi_ifindex as u32,
                });
            }
            if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
                return Some(Destination {
                    addr: IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)),
                    ifindex: info.ipi6_ifindex,
                });
            }
            header = libc::CMSG_NXTHDR(msg, header);
        }
    }
    None
}

fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    // SAFETY: the family says which struct the kernel wrote; both fit the storage.
    unsafe {
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                let sin: libc::sockaddr_in = std::ptr::read_unaligned((&raw const *storage).cast());
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let sin6: libc::sockaddr_in6 = std::ptr::read_unaligned((&raw const *storage).cast());
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage; the struct written fits in it.
    unsafe {
        let mut storage: libc::sockaddr_storage = zeroed();
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                };
                std::ptr::write_unaligned((&raw mut storage).cast(), sin);
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                };
                std::ptr::write_unaligned((&raw mut storage).cast(), sin6);
                size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }
}
