//! The real `instadns serve` in the server namespace of a [`VethRig`], and clients.

use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::netns::{SERVER_V4, SERVER_V6, VethRig, in_netns, ns_exec};

/// Where the metrics endpoint listens inside the server namespace.
pub const METRICS_ADDR: &str = "127.0.0.1:9153";

/// The instadns binary under test: $INSTADNS_BIN, or the workspace's debug build
/// (`cargo xtask test` builds it first).
pub fn instadns_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("INSTADNS_BIN") {
        return bin.into();
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/instadns");
    assert!(bin.exists(), "{} is missing: run the tests with `cargo xtask test`", bin.display());
    bin
}

pub struct ServerProcess {
    child: Child,
    pub ns: String,
    log: PathBuf,
    /// This server's pin directory on bpffs.
    pub pin_dir: PathBuf,
}

/// Where test servers pin their maps and links: one directory per server, named after
/// the test process so leftovers of killed runs can be recognised.
const TEST_PIN_ROOT: &str = "/sys/fs/bpf/instadns-test";

static NEXT_PIN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A fresh pin directory for a test server (pins of dead test runs are removed first).
pub fn test_pin_dir() -> PathBuf {
    if let Ok(entries) = std::fs::read_dir(TEST_PIN_ROOT) {
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid: Option<i32> = name.split('-').next().and_then(|p| p.parse().ok());
            // SAFETY: signal 0 only probes for the process.
            if pid.is_some_and(|p| unsafe { libc::kill(p, 0) } != 0) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let n = NEXT_PIN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Path::new(TEST_PIN_ROOT).join(format!("{}-{n}", std::process::id()))
}

impl ServerProcess {
    /// Starts `instadns serve` attached to the rig's server veth, on database `db` (a
    /// path or URL), logging to `log`, and waits until it answers /health.
    pub fn start(rig: &VethRig, db: &str, log: &Path, extra: &[&str]) -> Self {
        Self::start_pinned(rig, db, log, &test_pin_dir(), extra)
    }

    /// The same, with the pins in `pin_dir` (a restarted server reuses its predecessor's).
    pub fn start_pinned(rig: &VethRig, db: &str, log: &Path, pin_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(rig, &Self::args(rig, db, extra), log, pin_dir)
    }

    /// The flags `start` gives the daemon: the rig's server veth and addresses, database
    /// `db`, the metrics address, then `extra`.
    pub fn args(rig: &VethRig, db: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["--iface", &rig.server_if, "--db", db].map(String::from).to_vec();
        args.extend(
            ["--listen", &SERVER_V4.to_string(), "--listen", &SERVER_V6.to_string()].map(String::from),
        );
        args.extend(["--metrics", METRICS_ADDR].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Starts `instadns serve ARGS --pin-dir PIN_DIR` in the rig's server namespace and
    /// waits until it answers /health on [`METRICS_ADDR`] (ARGS or its config must set it).
    pub fn start_with(rig: &VethRig, args: &[String], log: &Path, pin_dir: &Path) -> Self {
        Self::start_wrapped(rig, &[instadns_bin().into()], args, log, pin_dir)
    }

    /// The same with `command` (a wrapper such as setpriv, then the binary) instead of the
    /// binary under test.
    pub fn start_wrapped(
        rig: &VethRig,
        command: &[std::ffi::OsString],
        args: &[String],
        log: &Path,
        pin_dir: &Path,
    ) -> Self {
        let log_file = std::fs::File::create(log).expect("server log");
        let child = spawn(rig, command, args, log_file, pin_dir);
        let mut server =
            Self { child, ns: rig.server_ns.clone(), log: log.to_owned(), pin_dir: pin_dir.to_owned() };
        server.wait_ready();
        server
    }

    /// Starts a successor with `args` on the same pins and log (stopping this one first if
    /// the caller has not), and waits until it answers /health.
    pub fn restart(&mut self, rig: &VethRig, args: &[String]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log_file = std::fs::OpenOptions::new().append(true).open(&self.log).expect("server log");
        self.child = spawn(rig, &[instadns_bin().into()], args, log_file, &self.pin_dir);
        self.wait_ready();
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.signal(libc::SIGTERM);
        self.child.wait().is_ok_and(|s| s.success())
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("instadns exited ({status}) before it was ready:\n{}", self.log_text());
            }
            if self.http_get("/health").is_some_and(|b| b.starts_with("ok")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("instadns was not ready within 30 s:\n{}", self.log_text());
    }

    /// Whether the daemon has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` from the metrics endpoint inside the server namespace (a few tries:
    /// a new connection on loopback can meet the previous one's TIME_WAIT and be reset).
    pub fn http_get(&self, path: &str) -> Option<String> {
        (0..5).find_map(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.http_get_once(path)
        })
    }

    fn http_get_once(&self, path: &str) -> Option<String> {
        let path = path.to_owned();
        in_netns(&self.ns, move || {
            let stream =
                TcpStream::connect_timeout(&METRICS_ADDR.parse().ok()?, Duration::from_secs(2)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            (&stream).write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).ok()?;
            // Read the head, then exactly Content-Length bytes, and close first (the
            // server keeps the connection open): the closing side keeps the TIME_WAIT.
            let mut reader = std::io::BufReader::new(&stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut reader, &mut line).ok()?;
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().ok()?;
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).ok()?;
            String::from_utf8(body).ok()
        })
    }

    /// Metric samples by their full name with labels.
    pub fn metrics(&self) -> HashMap<String, f64> {
        let body = self.http_get("/metrics").expect("metrics");
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
            .collect()
    }

    /// One metric sample by its full name with labels (0 while it has no sample).
    pub fn sample(&self, name: &str) -> f64 {
        self.metrics().get(name).copied().unwrap_or(0.0)
    }

    /// An XDP outcome counter (hit, miss, ...).
    pub fn xdp(&self, outcome: &str) -> u64 {
        self.sample(&format!("instadns_xdp_packets_total{{outcome=\"{outcome}\"}}")) as u64
    }
}

/// Spawns `COMMAND serve ARGS --pin-dir PIN_DIR` in the rig's server namespace.
fn spawn(
    rig: &VethRig,
    command: &[std::ffi::OsString],
    args: &[String],
    log: std::fs::File,
    pin_dir: &Path,
) -> Child {
    // nsenter, not `ip netns exec`: the latter gives the child a private mount namespace
    // with a fresh /sys, and pins made there would die with the process.
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/var/run/netns/{}", rig.server_ns))
        .args(command)
        .args(["--log", "info,instadns=debug", "serve"])
        .args(args)
        .arg("--pin-dir")
        .arg(pin_dir)
        .stdout(Stdio::null())
        .stderr(log);
    crate::netns::die_with_parent(&mut cmd);
    cmd.spawn().expect("starting instadns")
}

impl ServerProcess {
    /// The daemon's resident memory (nsenter execs it: the child's pid is the daemon's).
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("daemon status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib * 1024
    }

    /// SIGKILL: the daemon dies at once, its pinned fast path stays.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        if std::thread::panicking() {
            eprintln!("--- instadns log ---\n{}", self.log_text());
        }
    }
}

/// Runs dig in the client namespace; returns its stdout (dig's exit status checked).
pub fn dig(rig: &VethRig, args: &[&str]) -> String {
    let out = ns_exec(&rig.client_ns, "dig", &[&["+time=2", "+tries=1"], args].concat());
    assert!(out.status.success(), "dig {args:?} failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kdig in the client namespace; returns its stdout.
pub fn kdig(rig: &VethRig, args: &[&str]) -> String {
    let out = ns_exec(&rig.client_ns, "kdig", &[&["+time=2", "+retry=0"], args].concat());
    assert!(out.status.success(), "kdig {args:?} failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends raw query bytes over UDP from the client namespace; returns the raw response.
pub fn udp_exchange(rig: &VethRig, server: SocketAddr, query: &[u8]) -> Vec<u8> {
    let query = query.to_vec();
    in_netns(&rig.client_ns, move || {
        let bind: SocketAddr =
            if server.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
        let socket = UdpSocket::bind(bind).expect("client socket");
        socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        socket.send_to(&query, server).expect("send");
        let mut buf = vec![0u8; 65535];
        let (n, _) = socket.recv_from(&mut buf).expect("a response within 2 s");
        buf.truncate(n);
        buf
    })
}

/// The DNS address of the server in a [`VethRig`] (IPv4, port 53).
pub fn server_v4() -> SocketAddr {
    SocketAddr::new(SERVER_V4.into(), 53)
}

/// A new SQLite database `dir/demo.sqlite` holding the demo data (`instadns db demo`);
/// returns its path.
pub fn demo_db(dir: &Path) -> String {
    let db = dir.join("demo.sqlite");
    let db = db.to_str().expect("UTF-8 path").to_owned();
    cli(&db, &["db", "demo"]);
    db
}

/// A server running on a fresh demo database in a [`VethRig`]. Fields drop in order:
/// the server (printing its log if the test failed), then the namespaces, then the
/// directory holding the database and the log.
pub struct Deployment {
    pub server: ServerProcess,
    pub rig: VethRig,
    pub dir: tempfile::TempDir,
}

impl Deployment {
    /// Native XDP on the server veth, a pass program on the client veth, a new SQLite
    /// demo database (`dir/demo.sqlite`).
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = demo_db(dir.path());
        Self::start_on(&db, dir, extra)
    }

    /// The SQLite demo database of a deployment made by [`Deployment::start`].
    pub fn db(&self) -> String {
        self.dir.path().join("demo.sqlite").to_str().expect("UTF-8 path").to_owned()
    }

    /// The same on database `db` (a path or URL).
    pub fn start_on(db: &str, dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let rig = VethRig::new().with_client_pass_program();
        let server = ServerProcess::start(&rig, db, &dir.path().join("instadns.log"), extra);
        Self { server, rig, dir }
    }
}

/// What a CLI run printed and how it exited.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for CliRun {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs the instadns CLI on database `db`, whatever its outcome.
pub fn cli_run(db: &str, args: &[&str]) -> CliRun {
    Command::new(instadns_bin()).args(args).args(["--db", db]).output().expect("instadns CLI").into()
}

/// The base64 secret of a `key` clause (`instadns key add` and `key show` print one).
pub fn key_secret(clause: &str) -> String {
    clause
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret \"")?.strip_suffix("\";"))
        .unwrap_or_else(|| panic!("no secret in:\n{clause}"))
        .to_owned()
}

/// Runs the instadns CLI on database `db`; panics with its output if it fails.
pub fn cli(db: &str, args: &[&str]) -> String {
    let run = cli_run(db, args);
    assert!(run.code == 0, "instadns {args:?}: {}", run.stderr);
    run.stdout
}

/// Sends `query` from the client namespace every millisecond until `done` accepts a
/// response; returns the time that took, or None after `timeout`.
pub fn poll_until(
    rig: &VethRig,
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
    done: impl Fn(&[u8]) -> bool + Send,
) -> Option<Duration> {
    let query = query.to_vec();
    in_netns(&rig.client_ns, move || {
        let bind: SocketAddr =
            if server.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
        let socket = UdpSocket::bind(bind).expect("client socket");
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let started = Instant::now();
        let mut buf = vec![0u8; 65535];
        while started.elapsed() < timeout {
            socket.send_to(&query, server).expect("send");
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && done(&buf[..n])
            {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    })
}
