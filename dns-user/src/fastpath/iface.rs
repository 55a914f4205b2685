//! What an interface offers the fast path: its receive queues. A driver runs the XDP
//! program on the queues that exist when it is attached; queues added later (`ethtool
//! -L`) run without it, so the daemon reads the count before attaching and re-attaches
//! when it changes.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolChannels,
    _pad: [u8; 16],
}

/// The receive queues (combined channels plus receive-only ones) of `iface` in the
/// calling thread's network namespace; 1 when the driver has no channel settings (lo),
/// None when the interface does not exist.
pub fn rx_queues(iface: &str) -> Option<u32> {
    if iface.len() >= libc::IFNAMSIZ || iface.contains('\0') {
        return None;
    }
    // SAFETY: a plain datagram socket, owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut channels = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], data: &mut channels, _pad: [0; 16] };
    for (dst, src) in req.name.iter_mut().zip(iface.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCETHTOOL with an ifreq whose data points at a live ethtool_channels.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL, &mut req as *mut IfReq) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Some(1),
            _ => None,
        };
    }
    Some((channels.combined_count + channels.rx_count).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_one_queue_and_unknown_interfaces_none() {
        assert_eq!(rx_queues("lo"), Some(1));
        assert_eq!(rx_queues("no-such-if0"), None);
        assert_eq!(rx_queues("a-name-far-too-long-for-linux"), None);
    }
}
