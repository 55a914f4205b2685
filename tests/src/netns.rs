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
    /// More clients, each in its own namespace on its own veth pair and subnet.
    pub clients: Vec<ClientLink>,
}

/// A further client namespace joined to the server namespace by its own veth pair, on
/// subnet 198.18.K.0/24 and fd00:53:0:K::/64 (K = 1, 2, ...).
pub struct ClientLink {
    pub ns: String,
    pub server_if: String,
    pub client_if: String,
    pub server_v4: Ipv4Addr,
    pub client_v4: Ipv4Addr,
    pub server_v6: Ipv6Addr,
    pub client_v6: Ipv6Addr,
    _xdp: Ebpf,
}

impl VethRig {
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A rig whose veth ends have `queues` receive and transmit queues each.
    pub fn with_queues(queues: u32) -> Self {
        Self::build(Some(queues))
    }

    fn build(queues: Option<u32>) -> Self {
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
            clients: Vec::new(),
        };
        sh("ip", &["netns", "add", &rig.server_ns]);
        sh("ip", &["netns", "add", &rig.client_ns]);
        let queue_args: Vec<String> = queues
            .map(|q| {
                ["numtxqueues".to_owned(), q.to_string(), "numrxqueues".to_owned(), q.to_string()].to_vec()
            })
            .unwrap_or_default();
        let q: Vec<&str> = queue_args.iter().map(String::as_str).collect();
        sh(
            "ip",
            &[
                &["link", "add", &rig.server_if][..],
                &q,
                &["type", "veth", "peer", "name", &rig.client_if],
                &q,
            ]
            .concat(),
        );
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
        self._client_xdp = Some(attach_pass_program(&self.client_ns, &self.client_if));
        self
    }

    /// Adds a client namespace on a new veth pair and subnet (with the pass program on
    /// its veth); the server side of the pair is `clients[k - 1].server_if`.
    pub fn add_client(&mut self) -> &ClientLink {
        let k = self.clients.len() as u8 + 1;
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let ns = format!("{}-c{k}", self.server_ns.trim_end_matches("-s"));
        let server_if = format!("vs{}x{n}", pid % 100_000);
        let client_if = format!("vc{}x{n}", pid % 100_000);
        let (server_v4, client_v4) = (Ipv4Addr::new(198, 18, k, 1), Ipv4Addr::new(198, 18, k, 2));
        let server_v6 = Ipv6Addr::new(0xfd00, 0x53, 0, k.into(), 0, 0, 0, 1);
        let client_v6 = Ipv6Addr::new(0xfd00, 0x53, 0, k.into(), 0, 0, 0, 2);
        sh("ip", &["netns", "add", &ns]);
        sh("ip", &["link", "add", &server_if, "type", "veth", "peer", "name", &client_if]);
        sh("ip", &["link", "set", &server_if, "netns", &self.server_ns]);
        sh("ip", &["link", "set", &client_if, "netns", &ns]);
        for (ns, ifname, v4, v6) in
            [(&self.server_ns, &server_if, server_v4, server_v6), (&ns, &client_if, client_v4, client_v6)]
        {
            sh("ip", &["-n", ns, "link", "set", "lo", "up"]);
            sh("ip", &["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", ifname]);
            sh("ip", &["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", ifname, "nodad"]);
            sh("ip", &["-n", ns, "link", "set", ifname, "up"]);
        }
        let xdp = attach_pass_program(&ns, &client_if);
        self.clients.push(ClientLink {
            ns,
            server_if,
            client_if,
            server_v4,
            client_v4,
            server_v6,
            client_v6,
            _xdp: xdp,
        });
        self.clients.last().expect("just added")
    }
}

/// Loads the pass program and attaches it in native mode to `ifname` in namespace `ns`.
fn attach_pass_program(ns: &str, ifname: &str) -> Ebpf {
    let ifname = ifname.to_owned();
    in_netns(ns, move || {
        let mut ebpf = Ebpf::load(instadns::fastpath::loader::BENCH_XDP_OBJECT).expect("object");
        let prog: &mut Xdp =
            ebpf.program_mut(crate::testrun::BENCH_PASS).expect("pass program").try_into().expect("xdp");
        prog.load().expect("load pass program");
        prog.attach(&ifname, XdpMode::Driver).expect("attach the pass program to a client veth");
        ebpf
    })
}

impl Default for VethRig {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for VethRig {
    fn drop(&mut self) {
        self._client_xdp.take();
        let extra: Vec<String> = self.clients.drain(..).map(|c| c.ns).collect();
        // Deleting a namespace removes its end of the veth, and with it the pair.
        for ns in [&self.server_ns, &self.client_ns].into_iter().chain(&extra) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Makes `cmd`'s process die with the test thread that starts it (SIGKILL on the
/// parent's death), so no server outlives a failed test.
pub fn die_with_parent(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: prctl in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// A daemon run in a namespace for one test (a secondary, a resolver): killed on drop,
/// its log printed if the test failed.
pub struct Background {
    child: std::process::Child,
    name: String,
    log: std::path::PathBuf,
}

impl Background {
    /// Runs `program args` in namespace `ns`, stdout and stderr to `log`.
    pub fn start(ns: &str, program: &str, args: &[&str], log: &std::path::Path) -> Self {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args).stdout(out).stderr(err);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {program}: {e}"));
        Self { child, name: program.to_owned(), log: log.to_owned() }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log_text());
        }
    }
}
