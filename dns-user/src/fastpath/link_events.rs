//! Address and link changes, as the kernel announces them (the rtnetlink multicast
//! groups of links and IPv4 and IPv6 addresses), so the daemon follows what is ours (the
//! addresses XDP answers for, the interfaces it is attached to) as soon as they change,
//! not at its next poll. Read in the calling thread's network namespace.

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use tokio::io::{Interest, unix::AsyncFd};

/// The multicast groups (RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR).
const GROUPS: u32 = 0x1 | 0x10 | 0x100;
/// Most messages read per wake: a burst (an interface with many addresses going away)
/// is one change; the rest waits for the next wake.
const MAX_MESSAGES_PER_WAKE: usize = 4096;

pub struct LinkEvents {
    socket: AsyncFd<OwnedFd>,
}

impl LinkEvents {
    /// Subscribes to the change announcements (no privilege needed).
    pub fn open() -> io::Result<Self> {
        // SAFETY: a plain socket call; the descriptor is owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: zeroed sockaddr_nl is valid; we set the family and the groups.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = GROUPS;
        // SAFETY: binds our socket to a valid sockaddr_nl of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the OwnedFd moved in keeps the descriptor open, the same one, for as
        // long as the AsyncFd holding it lives.
        let socket = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self { socket })
    }

    /// Waits for the next change; every announcement queued by then counts as one.
    pub async fn changed(&self) -> io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let mut ready = self.socket.readable().await?;
            let mut seen = false;
            for _ in 0..MAX_MESSAGES_PER_WAKE {
                // SAFETY: receives into our buffer, at most its length.
                let n = unsafe {
                    libc::recv(
                        self.socket.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n > 0 {
                    seen = true;
                    continue;
                }
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN) => {
                        ready.clear_ready();
                        break;
                    }
                    Some(libc::EINTR) => continue,
                    // The kernel dropped announcements we were too slow for: something changed.
                    Some(libc::ENOBUFS) => seen = true,
                    _ if n == 0 => break,
                    _ => return Err(err),
                }
            }
            if seen {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address added in a fresh network namespace is announced.
    #[test]
    fn an_address_added_is_announced() {
        if unsafe { libc::geteuid() } != 0 {
            panic!("needs root (a network namespace of its own)");
        }
        std::thread::spawn(|| {
            // SAFETY: a new network namespace for this thread only.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let events = LinkEvents::open().expect("subscribed");
                let added = std::process::Command::new("ip")
                    .args(["addr", "add", "198.18.250.1/32", "dev", "lo"])
                    .status()
                    .unwrap();
                assert!(added.success(), "ip addr add");
                tokio::time::timeout(std::time::Duration::from_secs(10), events.changed())
                    .await
                    .expect("announced within the deadline")
                    .expect("read");
            });
        })
        .join()
        .expect("the namespace thread");
    }
}
