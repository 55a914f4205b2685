//! Network namespaces joined by a veth pair, created by the test and removed by a Drop
//! guard. Addresses come from 198.18.0.0/15 and fd00::/8 only, inside the namespaces.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd as _,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use aya::{
    Ebpf,
    programs::{Xdp, XdpMode},
};

pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x53, 0, 0, 0, 0, 0, 1);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x53, 0, 0, 0, 0, 0, 2);

/// Prefix of every namespace our tests create: `idt<pid>-<n>-s|c`.
const PREFIX: &str = "idt";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs a command, panicking with its output if it fails.
pub fn sh(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    if !out.status.success() {
        panic!(
            "{program} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs a command inside namespace `ns` (output returned whatever the exit status).
pub fn ns_exec(ns: &str, program: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip netns exec {ns} {program}: {e}"))
}

/// Runs `f` on a thread that has entered namespace `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
            // SAFETY: setns on this thread only, with a valid namespace fd.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {ns}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// Deletes namespaces left by test runs whose process is gone.
fn clear_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) =
            name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only probes for the process.
        if unsafe { libc::kill(pid, 0) } != 0 {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A server namespace and a client namespace joined by a veth pair.
pub struct VethRig {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    /// The pass program on the client's veth (native XDP_TX on veth needs it).
    _client_xdp: Option<Ebpf>,
}

impl VethRig {
    pub fn new() -> Self {
        crate::require_root();
        clear_leftovers();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let base = format!("{PREFIX}{pid}-{n}");
        let rig = Self {
            server_ns: format!("{base}-s"),
            client_ns: format!("{base}-c"),
            server_if: format!("vs{}x{n}", pid % 100_000),
            client_if: format!("vc{}x{n}", pid % 100_000),
            _client_xdp: None,
        };
        sh("ip", &["netns", "add", &rig.server_ns]);
        sh("ip", &["netns", "add", &rig.client_ns]);
        sh("ip", &["link", "add", &rig.server_if, "type", "veth", "peer", "name", &rig.client_if]);
        sh("ip", &["link", "set", &rig.server_if, "netns", &rig.server_ns]);
        sh("ip", &["link", "set", &rig.client_if, "netns", &rig.client_ns]);
        for (ns, ifname, v4, v6) in [
            (&rig.server_ns, &rig.server_if, SERVER_V4, SERVER_V6),
            (&rig.client_ns, &rig.client_if, CLIENT_V4, CLIENT_V6),
        ] {
            sh("ip", &["-n", ns, "link", "set", "lo", "up"]);
            sh("ip", &["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", ifname]);
            sh("ip", &["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", ifname, "nodad"]);
            sh("ip", &["-n", ns, "link", "set", ifname, "up"]);
        }
        rig
    }

    /// Attaches the pass program to the client's veth, so native XDP_TX on the server's
    /// veth delivers (../shared/ebpf-facts.md).
    pub fn with_client_pass_program(mut self) -> Self {
        let ifname = self.client_if.clone();
        let ebpf = in_netns(&self.client_ns, move || {
            let mut ebpf = Ebpf::load(instadns::fastpath::loader::XDP_OBJECT).expect("object");
            let prog: &mut Xdp =
                ebpf.program_mut("instadns_pass").expect("pass program").try_into().expect("xdp");
            prog.load().expect("load pass program");
            prog.attach(&ifname, XdpMode::Driver).expect("attach pass program to the client veth");
            ebpf
        });
        self._client_xdp = Some(ebpf);
        self
    }
}

impl Default for VethRig {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for VethRig {
    fn drop(&mut self) {
        self._client_xdp.take();
        // Deleting a namespace removes its end of the veth, and with it the pair.
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
