//! Loading the embedded XDP program and attaching it to interfaces, with errors that
//! tell the operator what to do.

use std::path::Path;

use aya::{
    Ebpf, EbpfLoader,
    programs::{ProgramError, Xdp, XdpMode, xdp::XdpLinkId},
};
use dns_common::{
    limits::NAME_BUCKET_COUNT,
    maps::{ANSWER_MAP_NAME, NAME_MAP_NAMES, PINNED_MAPS},
    negative::KNOWN_NAMES_MAP_NAME,
    rrl::{DEFAULT_RRL_BUCKETS, RRL_BUCKETS_MAP_NAME},
};
use thiserror::Error;

/// The XDP object built from crate dns-ebpf by our build script.
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/instadns-xdp"));

/// The benchmark's traffic generator and answer sink (`cargo xtask bench`); the daemon
/// never loads it.
pub static BENCH_XDP_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/instadns-bench-xdp"));

/// Name of the XDP program in the object.
pub const PROGRAM_NAME: &str = "instadns";

/// Sizes and settings fixed when the program is loaded.
#[derive(Clone, Copy, Debug)]
pub struct XdpConfig {
    pub dns_port: u16,
    pub edns_payload: u16,
    /// Capacity of each name map bucket (short names first).
    pub name_entries: [u32; NAME_BUCKET_COUNT],
    pub answer_slots: u32,
    /// Names the existence map holds (see `dns_common::negative`).
    pub known_names: u32,
    /// Rate-limit buckets (see `dns_common::rrl`).
    pub rrl_buckets: u32,
}

/// Default capacity of the existence map: entries are allocated as names are added.
pub const DEFAULT_KNOWN_NAMES: u32 = 4 << 20;

impl XdpConfig {
    /// Splits a total name capacity over the buckets: platform names are short, so
    /// the short-name buckets get most of it.
    pub fn with_capacity(dns_port: u16, edns_payload: u16, names: u32, answer_slots: u32) -> Self {
        let share = |div: u32, min: u32| (names / div).max(min);
        Self {
            dns_port,
            edns_payload,
            name_entries: [share(1, 1024), share(4, 1024), share(16, 256), share(64, 256)],
            answer_slots: answer_slots.max(16),
            known_names: DEFAULT_KNOWN_NAMES,
            rrl_buckets: DEFAULT_RRL_BUCKETS,
        }
    }

    /// The same with `buckets` rate-limit buckets.
    pub fn with_rrl_buckets(mut self, buckets: u32) -> Self {
        self.rrl_buckets = buckets.max(1024);
        self
    }

    /// The same with room for `known_names` existing names.
    pub fn with_known_names(mut self, known_names: u32) -> Self {
        self.known_names = known_names.max(1024);
        self
    }
}

/// How the program ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Skb,
}

impl AttachedMode {
    pub fn label(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Skb => "skb",
        }
    }
}

impl std::fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Skb => "skb (generic)",
        })
    }
}

/// The requested attach mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeArg {
    /// Native (driver) mode, falling back to generic (SKB) mode.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode: works on every interface, slower.
    Skb,
}

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(
        "loading the XDP program failed: {0}\n  hint: run as root (or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON) on a kernel with BPF and BTF"
    )]
    Load(#[from] aya::EbpfError),
    #[error("loading the XDP program failed: {0}")]
    Program(#[from] ProgramError),
    #[error("the XDP object has no program named {PROGRAM_NAME}")]
    MissingProgram,
}

#[derive(Debug, Error)]
#[error("attaching XDP to {iface} in {mode} mode failed: {source}\n  hint: {hint}")]
pub struct AttachError {
    pub iface: String,
    pub mode: &'static str,
    pub hint: String,
    /// The interface does not exist (no fallback mode can help).
    pub no_such_interface: bool,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Loads the program with its configuration into the kernel (not attached yet).
pub fn load(config: &XdpConfig) -> Result<Ebpf, LoadError> {
    load_with_pins(config, None)
}

/// Loads the program; with `layout_dir`, its maps are pinned there (and maps already
/// pinned there are reused, content and all).
pub fn load_with_pins(config: &XdpConfig, layout_dir: Option<&Path>) -> Result<Ebpf, LoadError> {
    raise_memlock_limit();
    let mut loader = EbpfLoader::new();
    if let Some(dir) = layout_dir {
        for name in PINNED_MAPS {
            loader.map_pin_path(name, dir.join(name));
        }
    }
    loader
        .override_global("DNS_PORT", &config.dns_port, true)
        .override_global("EDNS_PAYLOAD", &config.edns_payload, true)
        .map_max_entries(ANSWER_MAP_NAME, config.answer_slots)
        .map_max_entries(KNOWN_NAMES_MAP_NAME, config.known_names)
        .map_max_entries(RRL_BUCKETS_MAP_NAME, config.rrl_buckets);
    for (name, entries) in NAME_MAP_NAMES.iter().zip(config.name_entries) {
        loader.map_max_entries(name, entries);
    }
    let mut ebpf = loader.load(XDP_OBJECT)?;
    program(&mut ebpf)?.load()?;
    Ok(ebpf)
}

pub fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, LoadError> {
    Ok(ebpf.program_mut(PROGRAM_NAME).ok_or(LoadError::MissingProgram)?.try_into()?)
}

/// Attaches the loaded program to `iface`. In auto mode a failed native attach falls
/// back to generic mode, with a log line saying so.
pub fn attach(
    ebpf: &mut Ebpf,
    iface: &str,
    mode: XdpModeArg,
) -> Result<(AttachedMode, XdpLinkId), AttachError> {
    let prog = program(ebpf).map_err(|e| AttachError {
        iface: iface.into(),
        mode: "any",
        hint: "the embedded object is broken; rebuild instadns".into(),
        no_such_interface: false,
        source: Box::new(e),
    })?;
    let try_attach = |prog: &mut Xdp, mode: AttachedMode| {
        let flags = match mode {
            AttachedMode::Native => XdpMode::Driver,
            AttachedMode::Skb => XdpMode::Skb,
        };
        prog.attach(iface, flags).map(|id| (mode, id)).map_err(|source| AttachError {
            iface: iface.into(),
            mode: if mode == AttachedMode::Native { "native" } else { "skb" },
            hint: attach_hint(iface, mode, &source),
            no_such_interface: matches!(source, ProgramError::UnknownInterface { .. }),
            source: Box::new(source),
        })
    };
    match mode {
        XdpModeArg::Native => try_attach(prog, AttachedMode::Native),
        XdpModeArg::Skb => try_attach(prog, AttachedMode::Skb),
        XdpModeArg::Auto => match try_attach(prog, AttachedMode::Native) {
            Ok(m) => Ok(m),
            Err(native) if !native.no_such_interface => {
                tracing::warn!(
                    iface,
                    error = %native.source,
                    "native XDP unavailable, falling back to generic (SKB) mode: slower, but answers the same"
                );
                try_attach(prog, AttachedMode::Skb)
            }
            Err(e) => Err(e),
        },
    }
}

fn attach_hint(iface: &str, mode: AttachedMode, err: &ProgramError) -> String {
    if let ProgramError::UnknownInterface { .. } = err {
        return format!("there is no interface {iface:?}; list them with `ip link show`");
    }
    let os_error = std::error::Error::source(err)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
        .or_else(|| match err {
            ProgramError::SyscallError(e) => e.io_error.raw_os_error(),
            _ => None,
        });
    match os_error {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON".into()
        }
        Some(libc::EBUSY) | Some(libc::EEXIST) => format!(
            "another XDP program is attached to {iface}; remove it with `ip link set dev {iface} xdp off` (or `instadns` owns it already)"
        ),
        // veth refuses native XDP with fewer receive queues than its peer transmits on.
        Some(libc::ENOSPC) => format!(
            "{iface} has fewer receive queues than its peer has transmit queues (veth needs at least as many): compare `ethtool -l` on both ends and raise them with `ethtool -L {iface} rx N`"
        ),
        _ if mode == AttachedMode::Native => {
            format!("the driver of {iface} may lack native XDP: try --xdp-mode skb (or auto)")
        }
        _ => format!("check `ip link show {iface}` and the kernel log (`dmesg`)"),
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!("could not raise RLIMIT_MEMLOCK (fine on kernels >= 5.11)");
    }
}
