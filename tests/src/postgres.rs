//! A real PostgreSQL server for a test: its own cluster in a temporary directory,
//! reachable only through a Unix socket there, stopped and deleted by a Drop guard.

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

/// Runs a PostgreSQL tool as the `postgres` user (the server refuses to run as root).
fn as_postgres(bin: &Path, tool: &str, args: &[&str]) {
    let out = Command::new("runuser")
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

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// postgres://... URL of the test database.
    pub url: String,
}

impl PgServer {
    pub fn start() -> Self {
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
        let server = Self { url: format!("postgres://instadns@localhost/instadns?host={sock_s}"), dir, bin };
        server.start_again();
        as_postgres(&server.bin, "createdb", &["-h", sock_s, "-U", "instadns", "instadns"]);
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) server again.
    pub fn start_again(&self) {
        let sock = self.dir.path().join("sock");
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            sock.display()
        );
        as_postgres(
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
