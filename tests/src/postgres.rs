//! A real PostgreSQL server for a test: its own cluster in a temporary directory,
//! reachable only through a Unix socket there, stopped and deleted by a Drop guard.

use crate::tls::Authority;
use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

/// The newest PostgreSQL server binaries installed.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (cargo xtask setup installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server version under /usr/lib/postgresql")
}

/// Runs a PostgreSQL tool as the `postgres` user (the server refuses to run as root),
/// in network namespace `netns` if given.
fn as_postgres_in(netns: Option<&str>, bin: &Path, tool: &str, args: &[&str]) {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/var/run/netns/{ns}")).arg("runuser");
            c
        }
        None => Command::new("runuser"),
    };
    let out = command
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) {
    as_postgres_in(None, bin, tool, args)
}

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// postgres://... URL of the test database (its Unix socket).
    pub url: String,
    /// Where the server also listens on TCP 127.0.0.1:5432 with TLS (see `start_tls`).
    netns: Option<String>,
}

/// TCP port of a server started with [`PgServer::start_tls`].
pub const TLS_PORT: u16 = 5432;

impl PgServer {
    pub fn start() -> Self {
        Self::start_in(None)
    }

    /// A server that also listens on TCP 127.0.0.1:5432 inside network namespace
    /// `netns`, with TLS: its certificate (for IP 127.0.0.1 only) is signed by the CA in
    /// [`PgServer::ca_cert`]; TCP clients must use TLS (pg_hba: hostnossl rejected).
    pub fn start_tls(netns: &str) -> Self {
        Self::start_in(Some(netns))
    }

    fn start_in(netns: Option<&str>) -> Self {
        crate::require_root();
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("instadns-pg").tempdir().expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (data, sock) = (dir.path().join("data"), dir.path().join("sock"));
        std::fs::create_dir(&sock).unwrap();
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(&sock, Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data_s = data.to_str().unwrap();
        let sock_s = sock.to_str().unwrap();
        as_postgres(
            &bin,
            "initdb",
            &["-D", data_s, "-U", "instadns", "-A", "trust", "--no-sync", "-E", "UTF8", "--no-instructions"],
        );
        let server = Self {
            url: format!("postgres://instadns@localhost/instadns?host={sock_s}"),
            dir,
            bin,
            netns: netns.map(str::to_owned),
        };
        if netns.is_some() {
            server.make_certificates();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
            )
            .unwrap();
        }
        server.start_again();
        as_postgres(&server.bin, "createdb", &["-h", sock_s, "-U", "instadns", "instadns"]);
        server
    }

    /// The server's Unix socket (what a [`crate::proxy::FaultProxy`] forwards to).
    pub fn unix_socket(&self) -> PathBuf {
        self.dir.path().join("sock/.s.PGSQL.5432")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A streaming replica of this server (a hot standby made with pg_basebackup -R),
    /// on its own socket directory; stopped and deleted with it.
    pub fn start_replica(&self) -> PgServer {
        let dir =
            tempfile::Builder::new().prefix("instadns-pg-replica").tempdir().expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).unwrap();
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(&sock, Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let primary_sock = self.dir.path().join("sock");
        // Commits are not flushed at once here (synchronous_commit=off, for speed): WAL
        // reaches a standby when the WAL writer flushes it, every 200 ms by default.
        self.psql("ALTER SYSTEM SET wal_writer_delay = '5ms'");
        self.psql("SELECT pg_reload_conf()");
        as_postgres(
            &self.bin,
            "pg_basebackup",
            &[
                "-h",
                primary_sock.to_str().unwrap(),
                "-U",
                "instadns",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "--checkpoint=fast",
            ],
        );
        let replica = PgServer {
            url: format!("postgres://instadns@localhost/instadns?host={}", sock.display()),
            dir,
            bin: self.bin.clone(),
            netns: None,
        };
        replica.start_again();
        replica
    }

    /// The CA certificate (PEM) that signed a TLS server's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// Another CA's certificate, which signed nothing the server holds.
    pub fn other_ca_cert(&self) -> PathBuf {
        self.dir.path().join("tls/other-ca.pem")
    }

    /// A TCP URL of a TLS server (see [`PgServer::start_tls`]) to `host`, with `params`.
    pub fn tcp_url(&self, host: &str, params: &str) -> String {
        format!("postgres://instadns@{host}:{TLS_PORT}/instadns?{params}")
    }

    fn make_certificates(&self) {
        let tls = self.dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        let ca = Authority::new(&tls, "ca");
        Authority::new(&tls, "other-ca");
        ca.issue_server("server", "127.0.0.1");
        let (uid, gid) = postgres_ids();
        for file in ["server.key", "server.pem"] {
            std::os::unix::fs::chown(tls.join(file), Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(tls.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Starts the (stopped) server again.
    pub fn start_again(&self) {
        let sock = self.dir.path().join("sock");
        let log = self.dir.path().join("server.log");
        let mut options =
            format!("-k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off", sock.display());
        match self.netns {
            Some(_) => {
                let tls = self.dir.path().join("tls");
                options += &format!(
                    " -c listen_addresses=127.0.0.1 -c port={TLS_PORT} -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    tls.join("server.pem").display(),
                    tls.join("server.key").display()
                );
            }
            None => options += " -c listen_addresses=''",
        }
        as_postgres_in(
            self.netns.as_deref(),
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        as_postgres(&self.bin, "pg_ctl", &["-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"]);
    }

    /// Runs SQL through psql.
    pub fn psql(&self, sql: &str) -> String {
        self.run_psql(&["-Atc", sql])
    }

    /// Runs a file of SQL through psql (for scripts too long for a command line).
    pub fn psql_file(&self, path: &std::path::Path) -> String {
        self.run_psql(&["-Aqf", path.to_str().expect("UTF-8 path")])
    }

    /// Runs SQL through psql, whatever its outcome: its output, or its error.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = self.psql_command().args(["-Atc", sql]).output().expect("psql");
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// A psql session kept open: statements sent one by one on one connection (a
    /// transaction holding a lock while the test does other things).
    pub fn session(&self) -> PsqlSession {
        let child = self
            .psql_command()
            .arg("-Aq")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql");
        PsqlSession { child }
    }

    fn psql_command(&self) -> Command {
        let sock = self.dir.path().join("sock");
        let mut command = Command::new(self.bin.join("psql"));
        command.args([
            "-h",
            sock.to_str().unwrap(),
            "-U",
            "instadns",
            "-d",
            "instadns",
            "-v",
            "ON_ERROR_STOP=1",
        ]);
        command
    }

    fn run_psql(&self, args: &[&str]) -> String {
        let out = self.psql_command().args(args).output().expect("psql");
        assert!(out.status.success(), "psql {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub struct PsqlSession {
    child: std::process::Child,
}

impl PsqlSession {
    /// Sends `sql` (ending with a semicolon) to the session.
    pub fn send(&mut self, sql: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("psql's stdin");
        writeln!(stdin, "{sql}").and_then(|()| stdin.flush()).expect("writing to psql");
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        // End of input: psql ends the session (an open transaction rolls back).
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data().to_str().unwrap_or_default(), "-m", "immediate", "stop"])
            .output();
    }
}

fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line =
        passwd.lines().find(|l| l.starts_with("postgres:")).expect("the postgres user (package postgresql)");
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}
