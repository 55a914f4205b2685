//! Network front ends: UDP and TCP sockets. They move bytes; the engine's
//! [`crate::engine::Handler`] decides what to answer.
//!
//! May import: `engine`, `store` (the `Store` trait). Nothing DNS-specific happens here.

pub mod connections;
pub mod pktinfo;
pub mod tcp;
pub mod udp;

use std::net::SocketAddr;

use anyhow::Context as _;
use socket2::{Domain, Protocol, Socket, Type};

/// A UDP socket on `addr`; IPv6 sockets are IPv6-only so `0.0.0.0` and `::` can both
/// be bound on the same port. On a wildcard address it reports each datagram's
/// destination, so replies leave from the address asked.
pub fn bind_udp(addr: SocketAddr) -> anyhow::Result<tokio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_recv_buffer_size(4 << 20).ok();
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into()).with_context(|| bind_hint(addr, "UDP"))?;
    let socket = tokio::net::UdpSocket::from_std(socket.into())?;
    if addr.ip().is_unspecified() {
        pktinfo::enable(&socket, addr.is_ipv6())
            .with_context(|| format!("asking for destination addresses on {addr}"))?;
    }
    Ok(socket)
}

pub fn bind_tcp(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into()).with_context(|| bind_hint(addr, "TCP"))?;
    socket.listen(1024)?;
    Ok(tokio::net::TcpListener::from_std(socket.into())?)
}

fn bind_hint(addr: SocketAddr, proto: &str) -> String {
    format!(
        "binding {proto} {addr} (port 53 needs root or CAP_NET_BIND_SERVICE; is another DNS server running? `ss -lunp 'sport = :{}'`)",
        addr.port()
    )
}
