//! What an interface offers the fast path: its receive queues (a driver runs the XDP
//! program on the queues that exist when it is attached; queues added later, `ethtool
//! -L`, run without it, so the daemon reads the count before attaching and re-attaches
//! when it changes), its MAC and index, and the host's addresses (the program answers
//! only frames to them). Everything is read in the calling thread's network namespace.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

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
    let (socket, name) = (ioctl_socket()?, ifreq_name(iface)?);
    let mut channels = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    let mut req = IfReq { name, data: &mut channels, _pad: [0; 16] };
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

/// A socket to issue interface ioctls on.
fn ioctl_socket() -> Option<OwnedFd> {
    // SAFETY: a plain datagram socket, owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    // SAFETY: raw is a fresh descriptor nobody else owns.
    (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) })
}

/// An interface name as an ifreq holds it.
fn ifreq_name(iface: &str) -> Option<[libc::c_char; libc::IFNAMSIZ]> {
    if iface.len() >= libc::IFNAMSIZ || iface.contains('\0') {
        return None;
    }
    let mut name = [0; libc::IFNAMSIZ];
    for (dst, src) in name.iter_mut().zip(iface.bytes()) {
        *dst = src as libc::c_char;
    }
    Some(name)
}

const SIOCGIFHWADDR: libc::c_ulong = 0x8927;

#[repr(C)]
struct IfReqHwAddr {
    name: [libc::c_char; libc::IFNAMSIZ],
    family: u16,
    data: [u8; 14],
    _pad: [u8; 8],
}

/// The index and MAC address of `iface` (None when it does not exist).
pub fn hardware_address(iface: &str) -> Option<(u32, [u8; 6])> {
    let (socket, name) = (ioctl_socket()?, ifreq_name(iface)?);
    let mut req = IfReqHwAddr { name, family: 0, data: [0; 14], _pad: [0; 8] };
    // SAFETY: SIOCGIFHWADDR with an ifreq of the kernel's size.
    if unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGIFHWADDR, &mut req as *mut IfReqHwAddr) } != 0 {
        return None;
    }
    let c_name = std::ffi::CString::new(iface).ok()?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&req.data[..6]);
    (index != 0).then_some((index, mac))
}

/// Every address of every interface of the namespace.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut at = list;
    while !at.is_null() {
        // SAFETY: a node of the list getifaddrs returned.
        let entry = unsafe { &*at };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points at a sockaddr of the family it names.
            unsafe {
                match (*entry.ifa_addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(entry.ifa_addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(entry.ifa_addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
        }
        at = entry.ifa_next;
    }
    // SAFETY: the list getifaddrs allocated.
    unsafe { libc::freeifaddrs(list) };
    out.sort();
    out.dedup();
    out
}

/// The addresses the fast path answers for: the listen addresses, where an unspecified
/// one (`0.0.0.0`, `::`) stands for every address of its family on the host.
pub fn served_addresses(listen: &[IpAddr]) -> Vec<IpAddr> {
    let any_v4 = listen.iter().any(|a| a.is_ipv4() && a.is_unspecified());
    let any_v6 = listen.iter().any(|a| a.is_ipv6() && a.is_unspecified());
    let mut out: Vec<IpAddr> = listen.iter().copied().filter(|a| !a.is_unspecified()).collect();
    if any_v4 || any_v6 {
        out.extend(
            local_addresses().into_iter().filter(|a| (a.is_ipv4() && any_v4) || (a.is_ipv6() && any_v6)),
        );
    }
    out.sort();
    out.dedup();
    out
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

    #[test]
    fn loopback_has_an_index_and_addresses() {
        let (index, _) = hardware_address("lo").expect("lo");
        assert!(index > 0);
        assert_eq!(hardware_address("no-such-if0"), None);
        assert!(local_addresses().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let served = served_addresses(&["0.0.0.0".parse().unwrap(), "fd00::1".parse().unwrap()]);
        assert!(
            served.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)) && served.contains(&"fd00::1".parse().unwrap())
        );
        assert!(!served.iter().any(|a| a.is_unspecified()));
    }
}
