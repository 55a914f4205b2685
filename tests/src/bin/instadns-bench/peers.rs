//! The servers compared, each started in the rig's server namespace on the server CPU
//! from generated configuration: instadns (with and without its XDP fast path) on a
//! SQLite database, and Knot DNS (also in its XDP mode), NSD and PowerDNS (bind backend)
//! from the same data as a zone file. All from Debian's packages, with their defaults
//! except where a setting is needed to run unprivileged in a temporary directory.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use hickory_proto::{op::Message, rr::RecordType};
use tests::{
    dns::QueryBuilder,
    netns::{SERVER_V4, VethRig, in_netns},
    server::{ServerProcess, instadns_bin, test_pin_dir},
};

use crate::platform::ZONE;

/// The CPU the servers run on.
pub const SERVER_CPU: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Instadns,
    InstadnsUserspace,
    Knot,
    KnotXdp,
    Nsd,
    PowerDns,
}

impl ServerKind {
    pub const ALL: [ServerKind; 6] = [
        ServerKind::Instadns,
        ServerKind::InstadnsUserspace,
        ServerKind::Knot,
        ServerKind::KnotXdp,
        ServerKind::Nsd,
        ServerKind::PowerDns,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Instadns => "instadns (XDP)",
            ServerKind::InstadnsUserspace => "instadns (userspace only)",
            ServerKind::Knot => "Knot DNS",
            ServerKind::KnotXdp => "Knot DNS (XDP)",
            ServerKind::Nsd => "NSD",
            ServerKind::PowerDns => "PowerDNS",
        }
    }

    /// The short name `--servers` takes.
    pub fn key(self) -> &'static str {
        match self {
            ServerKind::Instadns => "instadns",
            ServerKind::InstadnsUserspace => "instadns-userspace",
            ServerKind::Knot => "knot",
            ServerKind::KnotXdp => "knot-xdp",
            ServerKind::Nsd => "nsd",
            ServerKind::PowerDns => "pdns",
        }
    }

    /// Parses a comma-separated list of keys.
    pub fn parse_list(list: &str) -> Result<Vec<ServerKind>> {
        list.split(',')
            .map(|key| {
                Self::ALL.iter().copied().find(|k| k.key() == key).with_context(|| {
                    let keys: Vec<&str> = Self::ALL.iter().map(|k| k.key()).collect();
                    format!("unknown server {key:?} (known: {})", keys.join(", "))
                })
            })
            .collect()
    }

    /// A peer: not one of ours.
    pub fn is_peer(self) -> bool {
        !matches!(self, ServerKind::Instadns | ServerKind::InstadnsUserspace)
    }

    /// Whether the server puts its own XDP program on the server's veth.
    pub fn has_own_xdp(self) -> bool {
        matches!(self, ServerKind::Instadns | ServerKind::KnotXdp)
    }

    /// The executable, as its processes' command lines name it.
    pub fn program(self) -> &'static str {
        match self {
            ServerKind::Instadns | ServerKind::InstadnsUserspace => "instadns",
            ServerKind::Knot | ServerKind::KnotXdp => "knotd",
            ServerKind::Nsd => "nsd",
            ServerKind::PowerDns => "pdns_server",
        }
    }

    /// The version string of the installed server.
    pub fn version(self) -> String {
        let (program, arg) = match self {
            ServerKind::Instadns | ServerKind::InstadnsUserspace => {
                return env!("CARGO_PKG_VERSION").to_owned();
            }
            ServerKind::Knot | ServerKind::KnotXdp => ("knotd", "--version"),
            ServerKind::Nsd => ("nsd", "-v"),
            ServerKind::PowerDns => ("pdns_server", "--version"),
        };
        let out = Command::new(program).arg(arg).output();
        let text = out
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
        let text = text.unwrap_or_default();
        text.split_whitespace()
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
            .unwrap_or("?")
            .trim_end_matches(',')
            .to_owned()
    }
}

/// Who may transfer the zone (unsigned): the rig's networks, for `bench transfer`.
pub const TRANSFER_NETWORK: &str = "198.18.0.0/15";

/// The data every server is started from: instadns's database (a SQLite path or a
/// PostgreSQL URL) and the same data as a zone file for the peers.
pub struct Data {
    pub db: String,
    pub zone_file: PathBuf,
}

/// A running server; stopped when dropped.
pub struct Running {
    pub kind: ServerKind,
    instadns: Option<ServerProcess>,
    child: Option<Child>,
    pub startup: Duration,
}

impl Running {
    /// The processes to charge CPU time to.
    pub fn pids(&self) -> Vec<u32> {
        crate::cpu::pids_of(self.kind.program())
    }

    /// If the server has exited: the last line of its log.
    pub fn exited(&mut self, dir: &Path) -> Option<String> {
        let exited = match (&mut self.child, &mut self.instadns) {
            (Some(child), _) => matches!(child.try_wait(), Ok(Some(_))),
            (None, Some(server)) => server.has_exited(),
            (None, None) => false,
        };
        exited.then(|| {
            let log = match &self.instadns {
                Some(server) => server.log_text(),
                None => std::fs::read_to_string(dir.join(format!("{}.log", self.kind.program())))
                    .unwrap_or_default(),
            };
            log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(empty log)").trim().to_owned()
        })
    }

    pub fn instadns(&self) -> Option<&ServerProcess> {
        self.instadns.as_ref()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.instadns.take();
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child; SIGTERM lets it clean up (pid files).
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `taskset -c SERVER_CPU PROGRAM`, the prefix every server runs under.
fn on_server_cpu(program: impl Into<OsString>) -> Vec<OsString> {
    vec!["taskset".into(), "-c".into(), SERVER_CPU.to_string().into(), program.into()]
}

/// Starts `kind` in the rig's server namespace, working in `dir`, and waits until it
/// answers for the zone.
pub fn start(kind: ServerKind, rig: &VethRig, dir: &Path, data: &Data) -> Result<Running> {
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    let mut running = Running { kind, instadns: None, child: None, startup: Duration::ZERO };
    match kind {
        ServerKind::Instadns | ServerKind::InstadnsUserspace => {
            // Response rate limiting off: the peers run without it (their default) and the
            // generator is one client network, which it would limit.
            let mode: &[&str] = if kind == ServerKind::Instadns {
                // Room for every name of the uniform mix without LRU eviction.
                &[
                    "--xdp-mode",
                    "native",
                    "--map-entries",
                    "1048576",
                    "--log",
                    "warn",
                    "--rrl-rate",
                    "0",
                    "--transfer-allow",
                    TRANSFER_NETWORK,
                ]
            } else {
                &["--no-xdp", "--log", "warn", "--rrl-rate", "0", "--transfer-allow", TRANSFER_NETWORK]
            };
            let mut args = ServerProcess::args(rig, &data.db, mode);
            if kind == ServerKind::InstadnsUserspace {
                // No interface: the daemon attaches nothing.
                if let Some(i) = args.iter().position(|a| a == "--iface") {
                    args.drain(i..i + 2);
                }
            }
            running.instadns = Some(ServerProcess::start_wrapped(
                rig,
                &on_server_cpu(instadns_bin()),
                &args,
                &dir.join("instadns.log"),
                &test_pin_dir(),
            ));
        }
        ServerKind::Knot | ServerKind::KnotXdp => {
            let xdp = if kind == ServerKind::KnotXdp {
                format!("xdp:\n    listen: {}\n    udp: on\n", rig.server_if)
            } else {
                String::new()
            };
            let conf = format!(
                "server:\n    rundir: \"{d}\"\n    listen: {SERVER_V4}@53\n{xdp}log:\n  - target: stderr\n    any: warning\ndatabase:\n    storage: \"{d}/db\"\nacl:\n  - id: rig\n    address: {TRANSFER_NETWORK}\n    action: transfer\ntemplate:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    journal-content: none\nzone:\n  - domain: {ZONE}\n    file: \"{z}\"\n    acl: rig\n",
                d = dir.display(),
                z = data.zone_file.display(),
            );
            std::fs::write(dir.join("knot.conf"), conf)?;
            running.child =
                Some(spawn(rig, dir, "knotd", &["-c", &dir.join("knot.conf").display().to_string()])?);
        }
        ServerKind::Nsd => {
            let conf = format!(
                "server:\n  ip-address: {SERVER_V4}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  server-count: 1\n  minimal-responses: yes\n  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n  verbosity: 0\nremote-control:\n  control-enable: no\nzone:\n  name: {ZONE}\n  zonefile: \"{z}\"\n  provide-xfr: {TRANSFER_NETWORK} NOKEY\n",
                d = dir.display(),
                z = data.zone_file.display(),
            );
            std::fs::write(dir.join("nsd.conf"), conf)?;
            running.child =
                Some(spawn(rig, dir, "nsd", &["-d", "-c", &dir.join("nsd.conf").display().to_string()])?);
        }
        ServerKind::PowerDns => {
            std::fs::write(
                dir.join("named.conf"),
                format!("zone \"{ZONE}\" {{ type master; file \"{}\"; }};\n", data.zone_file.display()),
            )?;
            std::fs::write(dir.join("pdns.conf"), "")?;
            let d = dir.display().to_string();
            running.child = Some(spawn(
                rig,
                dir,
                "pdns_server",
                &[
                    &format!("--config-dir={d}"),
                    &format!("--socket-dir={d}"),
                    "--launch=bind",
                    &format!("--bind-config={d}/named.conf"),
                    &format!("--local-address={SERVER_V4}"),
                    "--local-port=53",
                    "--guardian=no",
                    "--daemon=no",
                    "--disable-syslog",
                    "--write-pid=no",
                    "--loglevel=3",
                ],
            )?);
        }
    }
    wait_answering(&mut running, rig, dir)?;
    running.startup = started.elapsed();
    Ok(running)
}

/// Spawns a peer in the server namespace on the server CPU, logging to `dir/PROGRAM.log`.
fn spawn(rig: &VethRig, dir: &Path, program: &str, args: &[&str]) -> Result<Child> {
    let log = std::fs::File::create(dir.join(format!("{program}.log")))?;
    Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{}", rig.server_ns))
        .args(on_server_cpu(program))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {program} (Debian package installed by cargo xtask bench)"))
}

/// Waits until the server answers `ns1.ZONE A` with NOERROR (loading 200,000 records
/// takes a while).
fn wait_answering(running: &mut Running, rig: &VethRig, dir: &Path) -> Result<()> {
    let query = QueryBuilder::new(&format!("ns1.{ZONE}"), RecordType::A).bytes();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Some(child) = running.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let log = std::fs::read_to_string(dir.join(format!("{}.log", running.kind.program())))
                .unwrap_or_default();
            bail!("{} exited ({status}) before answering:\n{log}", running.kind.label());
        }
        let q = query.clone();
        let answered = in_netns(&rig.client_ns, move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
            socket.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
            socket.send_to(&q, (SERVER_V4, 53)).ok()?;
            let mut buf = [0u8; 1500];
            let (n, _) = socket.recv_from(&mut buf).ok()?;
            Message::from_vec(&buf[..n]).ok().map(|m| m.metadata.response_code.low() == 0)
        });
        if answered == Some(true) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{} did not answer within 120 s", running.kind.label())
}
