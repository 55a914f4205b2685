//! Pinning the fast path under bpffs, so it outlives the daemon: a restart or an upgrade
//! adopts the pinned maps and swaps its program into the pinned links atomically
//! (`bpf_link_update`), and hits never stop.
//!
//! Layout of the pin directory (default `/sys/fs/bpf/instadns`):
//! - `layout-<hash>/<MAP>`: the maps, in a directory named after their layout (key and
//!   value sizes, capacities). A daemon with the same layout adopts them; a daemon with
//!   another layout warms new maps from the old ones' keys, then swaps, then removes them.
//! - `link-<iface>-<mode>`: the XDP link of each interface.

use std::{
    hash::{Hash as _, Hasher as _},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    programs::{
        Xdp,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use dns_common::{
    limits::{ANSWER_MAX_LEN, NAME_BUCKETS},
    maps::PINNED_MAPS,
    stats::OUTCOME_SLOTS,
};
use thiserror::Error;

use super::loader::{AttachedMode, XdpConfig, XdpModeArg};

/// Bumped whenever a map's key or value layout changes.
pub const LAYOUT_VERSION: u32 = 4;

#[derive(Debug, Error)]
pub enum PinError {
    #[error("{path}: {message}\n  hint: {hint}")]
    Path { path: PathBuf, message: String, hint: &'static str },
    #[error("pinning the link of {iface}: {message}")]
    Link { iface: String, message: String },
}

fn path_error(path: &Path, e: impl std::fmt::Display, hint: &'static str) -> PinError {
    PinError::Path { path: path.to_owned(), message: e.to_string(), hint }
}

/// The layout of the maps for `config`, as a directory name.
pub fn layout_dir_name(config: &XdpConfig) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (LAYOUT_VERSION, NAME_BUCKETS, ANSWER_MAX_LEN, OUTCOME_SLOTS, config.name_entries, config.answer_slots)
        .hash(&mut h);
    format!("layout-{:016x}", h.finish())
}

/// The bpffs mount `path` lies on (the deepest, if mounts nest), from /proc/self/mounts.
fn bpf_mount_of(path: &Path) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            l.split_whitespace().collect::<Vec<_>>().get(1..3).map(|f| (f[0].to_owned(), f[1] == "bpf"))
        })
        .filter(|(m, bpf)| *bpf && path.starts_with(m))
        .map(|(m, _)| PathBuf::from(m))
        .max_by_key(|m| m.as_os_str().len())
}

/// Makes sure `pin_dir` is on a bpffs (mounting /sys/fs/bpf if nothing is there) and
/// exists.
pub fn prepare(pin_dir: &Path) -> Result<(), PinError> {
    if bpf_mount_of(pin_dir).is_none() {
        let default = Path::new("/sys/fs/bpf");
        if !pin_dir.starts_with(default) {
            return Err(path_error(
                pin_dir,
                "not on a bpf filesystem",
                "mount one (mount -t bpf bpf DIR) or use a pin_dir under /sys/fs/bpf",
            ));
        }
        std::fs::create_dir_all(default).map_err(|e| path_error(default, e, "create /sys/fs/bpf"))?;
        let (src, target, fstype) = (c"bpf", c"/sys/fs/bpf", c"bpf");
        // SAFETY: plain mount(2) with NUL-terminated strings.
        let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            return Err(path_error(
                default,
                std::io::Error::last_os_error(),
                "mount the BPF filesystem (mount -t bpf bpf /sys/fs/bpf) or run with CAP_SYS_ADMIN once",
            ));
        }
        tracing::info!("mounted the BPF filesystem on /sys/fs/bpf");
    }
    std::fs::create_dir_all(pin_dir)
        .map_err(|e| path_error(pin_dir, e, "check the permissions of the bpffs mount"))
}

/// Gives `pin_dir` and everything pinned in it to `uid`:`gid`, for a daemon that runs
/// unprivileged (run as root before it starts), and lets others traverse the bpffs
/// directories above it (systemd mounts /sys/fs/bpf with mode 0700; traversal only, no
/// listing). Returns what it changed.
pub fn hand_over(pin_dir: &Path, uid: u32, gid: u32) -> Result<Vec<String>, PinError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    prepare(pin_dir)?;
    let mut changed = Vec::new();
    let mut pending = vec![pin_dir.to_owned()];
    // Layout directories hold only pins: two levels, bounded by what the daemon makes.
    while let Some(path) = pending.pop() {
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| path_error(&path, e, "check the pin directory"))?;
        if (meta.uid(), meta.gid()) != (uid, gid) {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(|e| path_error(&path, e, "run as root (the unit runs this with ExecStartPre=+)"))?;
            changed.push(format!("{} now owned by {uid}:{gid}", path.display()));
        }
        if meta.is_dir() {
            let entries =
                std::fs::read_dir(&path).map_err(|e| path_error(&path, e, "check the pin directory"))?;
            pending.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    // `prepare` made sure there is a mount.
    let Some(mount) = bpf_mount_of(pin_dir) else { return Ok(changed) };
    for dir in pin_dir.ancestors().skip(1).take_while(|dir| dir.starts_with(&mount)) {
        let meta = std::fs::metadata(dir).map_err(|e| path_error(dir, e, "check the bpffs mount"))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(|e| path_error(dir, e, "run as root (the unit runs this with ExecStartPre=+)"))?;
            changed.push(format!(
                "{} may be traversed by others now (mode {:o})",
                dir.display(),
                mode | 0o001
            ));
        }
    }
    Ok(changed)
}

/// Directories of other layouts left by earlier versions.
pub fn other_layouts(pin_dir: &Path, ours: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(pin_dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("layout-") && name != ours
        })
        .map(|e| e.path())
        .collect()
}

/// Whether `layout_dir` holds a complete set of pinned maps.
pub fn has_maps(layout_dir: &Path) -> bool {
    PINNED_MAPS.iter().all(|m| layout_dir.join(m).exists())
}

fn link_pin(pin_dir: &Path, iface: &str, mode: AttachedMode) -> PathBuf {
    let mode = match mode {
        AttachedMode::Native => "native",
        AttachedMode::Skb => "skb",
    };
    pin_dir.join(format!("link-{iface}-{mode}"))
}

/// The pinned link of `iface`, if any, with its mode.
fn existing_link(pin_dir: &Path, iface: &str) -> Option<(PathBuf, AttachedMode)> {
    [AttachedMode::Native, AttachedMode::Skb]
        .into_iter()
        .map(|m| (link_pin(pin_dir, iface, m), m))
        .find(|(p, _)| p.exists())
}

/// How the program got onto an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// A new link, now pinned.
    New(AttachedMode),
    /// The pinned link of an earlier daemon, now running this program (swapped atomically).
    Adopted(AttachedMode),
}

/// Attaches `ebpf`'s program to `iface` through a pinned link: an existing pinned link
/// gets this program swapped in atomically; otherwise a new link is created and pinned.
pub fn attach(ebpf: &mut Ebpf, pin_dir: &Path, iface: &str, mode: XdpModeArg) -> anyhow::Result<Attachment> {
    use anyhow::Context as _;
    if let Some((path, existing_mode)) = existing_link(pin_dir, iface) {
        let wanted_differs = matches!(
            (mode, existing_mode),
            (XdpModeArg::Native, AttachedMode::Skb) | (XdpModeArg::Skb, AttachedMode::Native)
        );
        match PinnedLink::from_pin(&path)
            .map_err(|e| e.to_string())
            .and_then(|p| XdpLink::try_from(FdLink::from(p)).map_err(|e| e.to_string()))
        {
            Ok(link) if !wanted_differs => {
                let prog: &mut Xdp = super::loader::program(ebpf)?;
                match prog.attach_to_link(link) {
                    Ok(_) => return Ok(Attachment::Adopted(existing_mode)),
                    Err(e) => {
                        tracing::warn!(iface, error = %e, "the pinned link is unusable; attaching anew")
                    }
                }
            }
            Ok(_) => tracing::info!(iface, "the pinned link has another XDP mode; replacing it"),
            Err(e) => tracing::warn!(iface, error = %e, "the pinned link is unusable; attaching anew"),
        }
        std::fs::remove_file(&path).with_context(|| format!("removing the stale pin {}", path.display()))?;
    }
    let (attached, id) = super::loader::attach(ebpf, iface, mode)?;
    let prog: &mut Xdp = super::loader::program(ebpf)?;
    let link = prog.take_link(id).context("taking the new XDP link")?;
    let path = link_pin(pin_dir, iface, attached);
    match FdLink::try_from(link) {
        Ok(fd) => {
            fd.pin(&path).map_err(|e| PinError::Link { iface: iface.into(), message: e.to_string() })?;
        }
        Err(e) => {
            // Netlink-attached (kernels without XDP links): works, but cannot be pinned.
            tracing::warn!(iface, error = %e, "the XDP attachment cannot be pinned: restarts will interrupt the fast path");
        }
    }
    Ok(Attachment::New(attached))
}

/// A pinned link, as `instadns status` and the daemon see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedLinkInfo {
    pub iface: String,
    pub mode: String,
    pub path: PathBuf,
    /// The interface the kernel has the link on; None once the interface is gone (the
    /// kernel detached the link: it stays pinned but answers nothing).
    pub ifindex: Option<u32>,
}

impl PinnedLinkInfo {
    pub fn is_stale(&self) -> bool {
        self.ifindex.is_none()
    }
}

/// Interfaces with a pinned link, with their modes and whether the interface still exists.
pub fn pinned_links(pin_dir: &Path) -> Vec<PinnedLinkInfo> {
    let Ok(entries) = std::fs::read_dir(pin_dir) else { return Vec::new() };
    let mut out: Vec<PinnedLinkInfo> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix("link-")?;
            let (iface, mode) = rest.rsplit_once('-')?;
            let path = e.path();
            // A link that cannot be read is as good as gone.
            let ifindex = link_ifindex(&path).ok().filter(|i| *i != 0);
            Some(PinnedLinkInfo { iface: iface.to_owned(), mode: mode.to_owned(), path, ifindex })
        })
        .collect();
    out.sort_by(|a, b| (&a.iface, &a.mode).cmp(&(&b.iface, &b.mode)));
    out
}

/// Removes the pins of links whose interface is gone (a VLAN removed, a namespace
/// deleted); returns their interfaces. Links of live interfaces, in any namespace, stay.
pub fn remove_stale_links(pin_dir: &Path) -> Vec<String> {
    pinned_links(pin_dir)
        .into_iter()
        .filter(PinnedLinkInfo::is_stale)
        .filter(|l| std::fs::remove_file(&l.path).is_ok())
        .map(|l| l.iface)
        .collect()
}

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_DETACH: libc::c_long = 34;

/// A file descriptor for the BPF object pinned at `path`.
fn obj_get(path: &Path) -> Result<std::os::fd::OwnedFd, PinError> {
    use std::os::{fd::FromRawFd as _, unix::ffi::OsStrExt as _};
    #[repr(C)]
    struct ObjGet {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        // Explicit, so the kernel's check that unused attribute bytes are zero holds.
        _pad: u32,
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| path_error(path, e, "use a path without NUL bytes"))?;
    let get = ObjGet { pathname: c_path.as_ptr() as u64, bpf_fd: 0, file_flags: 0, path_fd: 0, _pad: 0 };
    // SAFETY: bpf(2) with a properly sized, initialised attribute struct.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, &get as *const ObjGet, std::mem::size_of::<ObjGet>())
    };
    if fd < 0 {
        return Err(path_error(path, std::io::Error::last_os_error(), "is this a pinned BPF link?"));
    }
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// The interface index of the XDP link pinned at `path` (0 once its interface is gone).
pub fn link_ifindex(path: &Path) -> Result<u32, PinError> {
    use std::os::fd::AsRawFd as _;
    /// struct bpf_link_info up to the XDP member of its union (8-byte aligned, offset 16).
    #[repr(C)]
    #[derive(Default)]
    struct XdpLinkInfo {
        link_type: u32,
        id: u32,
        prog_id: u32,
        _pad: u32,
        ifindex: u32,
        _rest: [u32; 7],
    }
    #[repr(C)]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    const BPF_LINK_TYPE_XDP: u32 = 6;
    let fd = obj_get(path)?;
    let mut info = XdpLinkInfo::default();
    let attr = InfoByFd {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<XdpLinkInfo>() as u32,
        info: &mut info as *mut XdpLinkInfo as u64,
    };
    // SAFETY: the kernel writes at most info_len bytes into `info`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &attr as *const InfoByFd,
            std::mem::size_of::<InfoByFd>(),
        )
    };
    if rc != 0 {
        return Err(path_error(path, std::io::Error::last_os_error(), "is this a pinned BPF link?"));
    }
    if info.link_type != BPF_LINK_TYPE_XDP {
        return Err(path_error(path, format!("link type {} is not XDP", info.link_type), "remove the pin"));
    }
    Ok(info.ifindex)
}

/// Detaches the pinned XDP link at `path` at once (BPF_LINK_DETACH: even while a running
/// daemon still holds it) and removes the pin.
pub fn detach_link(path: &Path) -> Result<(), PinError> {
    use std::os::fd::AsRawFd as _;
    #[repr(C)]
    struct LinkDetach {
        link_fd: u32,
    }
    let fd = obj_get(path)?;
    let detach = LinkDetach { link_fd: fd.as_raw_fd() as u32 };
    // SAFETY: as above; the fd is ours and closed when dropped.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_DETACH,
            &detach as *const LinkDetach,
            std::mem::size_of::<LinkDetach>(),
        )
    };
    let err = std::io::Error::last_os_error();
    drop(fd);
    // A link whose interface is gone is detached already.
    if rc != 0 && link_ifindex(path).is_ok_and(|i| i != 0) {
        return Err(path_error(path, err, "the kernel refused to detach the link"));
    }
    std::fs::remove_file(path).map_err(|e| path_error(path, e, "remove it by hand"))
}

/// Detaches and unpins the link of `iface`, if one is pinned.
pub fn detach_iface(pin_dir: &Path, iface: &str) -> Result<bool, PinError> {
    match existing_link(pin_dir, iface) {
        Some((path, _)) => detach_link(&path).map(|()| true),
        None => Ok(false),
    }
}

/// Removes a layout directory and the maps pinned in it (their programs keep them while
/// attached; pins of a replaced layout go once the new one is attached).
pub fn remove_layout(dir: &Path) {
    for m in std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok()) {
        let _ = std::fs::remove_file(m.path());
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes the links (detaching XDP from every interface) and the maps under `pin_dir`.
pub fn detach_all(pin_dir: &Path) -> Result<Vec<String>, PinError> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(pin_dir) else { return Ok(removed) };
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("link-") {
            detach_link(&path)?;
        } else if path.is_dir() {
            for m in std::fs::read_dir(&path).into_iter().flatten().filter_map(|m| m.ok()) {
                std::fs::remove_file(m.path())
                    .map_err(|err| path_error(&m.path(), err, "remove it by hand"))?;
            }
            std::fs::remove_dir(&path).map_err(|err| path_error(&path, err, "remove it by hand"))?;
        } else {
            std::fs::remove_file(&path).map_err(|err| path_error(&path, err, "remove it by hand"))?;
        }
        removed.push(name);
    }
    let _ = std::fs::remove_dir(pin_dir);
    Ok(removed)
}
