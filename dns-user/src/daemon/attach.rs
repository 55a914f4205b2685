//! Attaching the fast path to interfaces, and following their receive-queue counts.

use std::{net::IpAddr, path::Path, time::Duration};

use anyhow::{Context as _, Result};
use instadns::{
    engine::AnswerCache,
    fastpath::{iface, pin},
};

use super::{
    config::Interface,
    status::{Attached, DaemonStatus},
};

/// How often the receive queue counts are compared with those at attach time.
pub const QUEUE_WATCH: Duration = Duration::from_secs(2);

/// Attaches (or adopts) the fast path on `iface`, reading its receive queues first.
pub fn attach_iface(ebpf: &mut aya::Ebpf, pin_dir: &Path, iface: &Interface) -> Result<Attached> {
    let rx_queues = iface::rx_queues(&iface.name).with_context(|| {
        format!("interface {}: no such interface in this network namespace (see `ip link`)", iface.name)
    })?;
    let (mode, how) = match pin::attach(ebpf, pin_dir, &iface.name, iface.xdp_mode)? {
        pin::Attachment::New(m) => (m, "attached"),
        pin::Attachment::Adopted(m) => (m, "took over the pinned link (program swapped atomically)"),
    };
    tracing::info!(iface = iface.name, %mode, rx_queues, "XDP fast path {how}");
    Ok(Attached { iface: iface.name.clone(), mode: mode.label().to_owned(), rx_queues })
}

/// Re-attaches interfaces whose receive queue count changed (queues added after the
/// attach would run without the program). Meanwhile userspace answers what XDP would.
pub fn follow_queue_counts(
    ebpf: &mut aya::Ebpf,
    pin_dir: &Path,
    interfaces: &[Interface],
    status: &DaemonStatus,
) {
    let Ok(mut list) = status.attached.lock() else { return };
    for entry in list.iter_mut() {
        let Some(now) = iface::rx_queues(&entry.iface) else { continue };
        if now == entry.rx_queues {
            continue;
        }
        let Some(iface) = interfaces.iter().find(|i| i.name == entry.iface) else { continue };
        tracing::warn!(
            iface = entry.iface,
            before = entry.rx_queues,
            now,
            "the receive queue count changed: re-attaching so every queue runs the program"
        );
        let result = pin::detach_iface(pin_dir, &entry.iface)
            .map_err(anyhow::Error::from)
            .and_then(|_| attach_iface(ebpf, pin_dir, iface));
        match result {
            Ok(a) => *entry = a,
            Err(e) => tracing::error!(iface = entry.iface, error = format!("{e:#}"), "re-attaching failed"),
        }
    }
}

/// Removes the pins of links whose interface is gone (the kernel detached them when the
/// interface went: a VLAN removed, a namespace deleted), so the pin directory never
/// fills with dead links and `instadns status` lists only what answers; attaches again
/// to a configured interface that is back.
pub fn follow_links(ebpf: &mut aya::Ebpf, pin_dir: &Path, interfaces: &[Interface], status: &DaemonStatus) {
    let removed = pin::remove_stale_links(pin_dir);
    for iface in &removed {
        tracing::warn!(iface, "removed the pinned link of an interface that is gone");
    }
    let Ok(mut list) = status.attached.lock() else { return };
    list.retain(|a| !removed.contains(&a.iface));
    for iface in interfaces {
        if list.iter().any(|a| a.iface == iface.name) || iface::rx_queues(&iface.name).is_none() {
            continue;
        }
        match attach_iface(ebpf, pin_dir, iface) {
            Ok(a) => {
                tracing::info!(iface = iface.name, "the interface is back: attached again");
                list.push(a);
            }
            Err(e) => tracing::warn!(iface = iface.name, error = format!("{e:#}"), "attaching again failed"),
        }
    }
}

/// Tells the fast path what is ours: the addresses it answers for (the listen addresses,
/// every address of the host for an unspecified one, read again on every call so
/// address changes are followed) and the MAC of each interface it is attached to.
pub fn mark_ours(cache: &AnswerCache, interfaces: &[Interface], listen: &[IpAddr]) {
    cache.set_local_addresses(&iface::served_addresses(listen));
    for i in interfaces {
        if let Some((index, mac)) = iface::hardware_address(&i.name) {
            cache.set_interface_mac(index, mac);
        }
    }
}
