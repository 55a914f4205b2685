//! `cargo xtask install` and `uninstall`: a package-like install of the `instadns` binary,
//! its configuration file, its state directory and a systemd unit, recorded in a manifest
//! so that uninstall removes exactly what install added. `--destdir` stages everything
//! under a directory instead of the host (for packaging, and for the tests).

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd_output, run};

/// Where configuration, state and the unit go: fixed paths, as distributions place them.
pub const CONFIG_DIR: &str = "/etc/instadns";
pub const CONFIG_FILE: &str = "/etc/instadns/instadns.toml";
pub const STATE_DIR: &str = "/var/lib/instadns";
pub const UNIT_FILE: &str = "/etc/systemd/system/instadns.service";
/// The service's own user, declared for systemd-sysusers.
pub const SERVICE_USER: &str = "instadns";
pub const SYSUSERS_FILE: &str = "/etc/sysusers.d/instadns.conf";

/// The capabilities the daemon needs, and why: loading programs and maps (BPF),
/// attaching XDP and creating sockets on interfaces (NET_ADMIN), the verifier's pointer
/// arithmetic on map values (PERFMON), port 53 (NET_BIND_SERVICE). Not CAP_SYS_RESOURCE:
/// the unit's LimitMEMLOCK= and LimitNOFILE= are set by systemd before the daemon starts
/// (and kernels since 5.11 charge BPF memory to the cgroup, not to RLIMIT_MEMLOCK). Not
/// CAP_SYS_ADMIN: systemd mounts /sys/fs/bpf at boot, so the daemon never has to.
pub const CAPABILITIES: &[&str] = &["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_NET_BIND_SERVICE"];

#[derive(Clone, Debug, clap::Args)]
pub struct Location {
    /// Installation prefix of the binary and shared files.
    #[arg(long, default_value = "/usr/local")]
    pub prefix: PathBuf,
    /// Stage the install under this directory instead of the host's root (nothing on
    /// the host is started, stopped or detached).
    #[arg(long)]
    pub destdir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub location: Location,
    /// Install this binary instead of building the release one.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Interface for the XDP fast path, written into a newly created configuration file.
    #[arg(long)]
    pub iface: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub location: Location,
    /// Also remove the state directory and the configuration file even if they hold data
    /// or changes (the database is lost).
    #[arg(long)]
    pub purge: bool,
}

impl Location {
    /// `path` (absolute, on the target system) under the destdir.
    fn staged(&self, path: &Path) -> PathBuf {
        match &self.destdir {
            Some(d) => d.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_owned(),
        }
    }

    fn binary(&self) -> PathBuf {
        self.prefix.join("bin/instadns")
    }

    fn share(&self) -> PathBuf {
        self.prefix.join("share/instadns")
    }

    fn manifest(&self) -> PathBuf {
        self.share().join("install-manifest")
    }

    /// The configuration as installed, kept to tell later whether the operator changed it.
    fn installed_config(&self) -> PathBuf {
        self.share().join("instadns.toml.installed")
    }

    fn live(&self) -> bool {
        self.destdir.is_none()
    }
}

/// What install put in place, one line per entry: `file PATH`, `config PATH` (created by
/// install; removed by uninstall only if unchanged) or `dir PATH` (created by install;
/// removed only when empty). Paths are those of the target system.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<(String, PathBuf)>,
}

impl Manifest {
    fn parse(text: &str) -> Result<Self> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let Some((kind, path)) = line.split_once(' ') else {
                bail!("manifest line {}: {line:?} is not `KIND PATH`", i + 1)
            };
            if !matches!(kind, "file" | "config" | "dir") || !path.starts_with('/') {
                bail!("manifest line {}: {line:?} is not `file|config|dir /PATH`", i + 1);
            }
            entries.push((kind.to_owned(), PathBuf::from(path)));
        }
        Ok(Self { entries })
    }

    fn render(&self) -> String {
        self.entries.iter().map(|(k, p)| format!("{k} {}\n", p.display())).collect()
    }

    fn add(&mut self, kind: &str, path: &Path) {
        if !self.entries.iter().any(|(_, p)| p == path) {
            self.entries.push((kind.to_owned(), path.to_owned()));
        }
    }
}

/// The systemd unit for a binary at `binary`. The daemon runs as [`SERVICE_USER`] with
/// [`CAPABILITIES`] as ambient capabilities and nothing else, in a sandbox:
/// `systemd-analyze security` rates it 1.9 ("OK"; the `install` test checks < 3.0).
/// The `+` commands before it run as root: the configuration check, and handing the
/// pin directory to the service user.
pub fn unit(binary: &Path) -> String {
    let bin = binary.display();
    format!(
        "[Unit]
Description=instadns authoritative DNS server with an XDP fast path
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStartPre=+{bin} check-config {CONFIG_FILE}
ExecStartPre=+{bin} prepare-pins --config {CONFIG_FILE} --owner {SERVICE_USER}
ExecStart={bin} serve --config {CONFIG_FILE}
ExecReload=/bin/kill -HUP $MAINPID
# SIGTERM leaves the pinned fast path answering; a restart adopts it without a gap.
KillMode=mixed
TimeoutStopSec=15s
Restart=on-failure
RestartSec=1s
User={SERVICE_USER}
Group={SERVICE_USER}
AmbientCapabilities={caps}
CapabilityBoundingSet={caps}
StateDirectory=instadns
StateDirectoryMode=0750
LimitMEMLOCK=infinity
LimitNOFILE=65536
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
# The pins (bpffs is the same everywhere: they outlive the service's mount namespace).
ReadWritePaths=/sys/fs/bpf
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateIPC=yes
PrivateMounts=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
KeyringMode=private
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RemoveIPC=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
DevicePolicy=closed
SystemCallArchitectures=native
SystemCallFilter=@system-service bpf
SystemCallErrorNumber=EPERM
# Sockets for DNS, netlink to attach XDP, a UNIX socket for sd_notify.
RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX

[Install]
WantedBy=multi-user.target
",
        caps = CAPABILITIES.join(" ")
    )
}

/// The sysusers.d declaration of the service user (a system user, home the state
/// directory, no login).
pub fn sysusers() -> String {
    format!("u {SERVICE_USER} - \"instadns DNS server\" {STATE_DIR} /usr/sbin/nologin\n")
}

/// Creates the service user on this host if it is missing: systemd-sysusers from the
/// declaration, else useradd.
fn create_service_user() -> Result<()> {
    let exists = Command::new("id").arg(SERVICE_USER).output().is_ok_and(|o| o.status.success());
    if exists {
        return Ok(());
    }
    let sysusers = Command::new("systemd-sysusers").arg(SYSUSERS_FILE).status();
    if !sysusers.is_ok_and(|s| s.success()) {
        run(Command::new("useradd").args([
            "--system",
            "--home-dir",
            STATE_DIR,
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ]))
        .context("creating the service user")?;
    }
    println!("created the system user {SERVICE_USER}");
    Ok(())
}

/// The configuration file a new install starts with: `instadns default-config`, with the
/// interface filled in when one was given.
fn initial_config(binary: &Path, iface: Option<&str>) -> Result<String> {
    let mut text = cmd_output(Command::new(binary).arg("default-config"))?;
    if let Some(iface) = iface {
        text = text.replace(
            "# [[interface]]\n# name = \"eth0\"\n# xdp_mode = \"auto\"\n",
            &format!("[[interface]]\nname = \"{iface}\"\nxdp_mode = \"auto\"\n"),
        );
    }
    Ok(text)
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Creates `dir` (and missing parents), recording in the manifest the ones it created.
fn create_dir(loc: &Location, manifest: &mut Manifest, dir: &Path, mode: u32) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if loc.staged(d).exists() {
            break;
        }
        missing.push(d.to_owned());
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        let staged = loc.staged(d);
        std::fs::create_dir(&staged).with_context(|| format!("creating {}", staged.display()))?;
        manifest.add("dir", d);
    }
    if !missing.is_empty() {
        set_mode(&loc.staged(dir), mode)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a running daemon
/// keeps its binary and a reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("instadns-new");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    set_mode(&tmp, mode)?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

fn read_manifest(loc: &Location) -> Result<Manifest> {
    let path = loc.staged(&loc.manifest());
    match std::fs::read_to_string(&path) {
        Ok(text) => Manifest::parse(&text).with_context(|| path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn install(args: &InstallArgs, source: &Path) -> Result<()> {
    let loc = &args.location;
    if loc.live() && !crate::setup::is_root() {
        bail!("installing on this host needs root; use --destdir DIR to stage the install instead");
    }
    if !loc.prefix.is_absolute() {
        bail!("--prefix {}: must be an absolute path", loc.prefix.display());
    }
    let binary = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    if let Some(d) = &loc.destdir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut manifest = read_manifest(loc)?;

    create_dir(loc, &mut manifest, &loc.prefix.join("bin"), 0o755)?;
    write_atomic(&loc.staged(&loc.binary()), &binary, 0o755)?;
    manifest.add("file", &loc.binary());
    println!("installed {}", loc.binary().display());

    create_dir(loc, &mut manifest, &loc.share(), 0o755)?;
    create_dir(loc, &mut manifest, Path::new(CONFIG_DIR), 0o755)?;
    let config = loc.staged(Path::new(CONFIG_FILE));
    if config.exists() {
        println!("kept {CONFIG_FILE} (it exists; compare with {})", loc.installed_config().display());
    } else {
        let text = initial_config(source, args.iface.as_deref())?;
        write_atomic(&config, text.as_bytes(), 0o644)?;
        write_atomic(&loc.staged(&loc.installed_config()), text.as_bytes(), 0o644)?;
        manifest.add("config", Path::new(CONFIG_FILE));
        manifest.add("file", &loc.installed_config());
        println!("installed {CONFIG_FILE}");
        if args.iface.is_none() {
            println!("  edit it: add an [[interface]] for the XDP fast path before starting the service");
        }
    }

    create_dir(loc, &mut manifest, Path::new(STATE_DIR), 0o750)?;
    create_dir(loc, &mut manifest, Path::new(SYSUSERS_FILE).parent().context("sysusers path")?, 0o755)?;
    write_atomic(&loc.staged(Path::new(SYSUSERS_FILE)), sysusers().as_bytes(), 0o644)?;
    manifest.add("file", Path::new(SYSUSERS_FILE));
    if loc.live() {
        create_service_user()?;
    }
    create_dir(loc, &mut manifest, Path::new(UNIT_FILE).parent().context("unit path")?, 0o755)?;
    write_atomic(&loc.staged(Path::new(UNIT_FILE)), unit(&loc.binary()).as_bytes(), 0o644)?;
    manifest.add("file", Path::new(UNIT_FILE));
    println!("installed {UNIT_FILE}");

    write_atomic(&loc.staged(&loc.manifest()), manifest.render().as_bytes(), 0o644)?;
    manifest.add("file", &loc.manifest());
    write_atomic(&loc.staged(&loc.manifest()), manifest.render().as_bytes(), 0o644)?;

    if loc.live() && systemd_running() {
        run(Command::new("systemctl").arg("daemon-reload"))?;
        println!(
            "start it with `systemctl enable --now instadns`; after an upgrade, `systemctl restart instadns` \
             keeps the fast path answering"
        );
    }
    Ok(())
}

pub fn uninstall(args: &UninstallArgs) -> Result<()> {
    let loc = &args.location;
    if loc.live() && !crate::setup::is_root() {
        bail!("uninstalling from this host needs root");
    }
    let manifest = read_manifest(loc)?;
    if manifest.entries.is_empty() {
        bail!(
            "no install manifest at {}: nothing installed under this --prefix/--destdir",
            loc.staged(&loc.manifest()).display()
        );
    }
    if loc.live() {
        if systemd_running() {
            // Not installed or not running is fine; anything else is reported by systemctl.
            let _ = run(Command::new("systemctl").args(["disable", "--now", "instadns.service"]));
        }
        // Only the pins of our own configuration: another instance's are not ours.
        let bin = loc.binary();
        if bin.exists() && Path::new(CONFIG_FILE).exists() {
            run(Command::new(&bin).args(["detach", "--config", CONFIG_FILE]))
                .context("detaching the fast path")?;
        }
        println!(
            "kept the system user {SERVICE_USER} (files may still be its own; `userdel {SERVICE_USER}` removes it)"
        );
    }
    let installed_config = std::fs::read(loc.staged(&loc.installed_config())).ok();
    // What stays for the operator's sake: a changed configuration, the database.
    let mut kept = Manifest::default();
    for (kind, path) in manifest.entries.iter().filter(|(k, _)| k != "dir") {
        let staged = loc.staged(path);
        if kind == "config" && !args.purge {
            let current = std::fs::read(&staged).ok();
            if current.is_some() && current != installed_config {
                println!("kept {} (changed since install; --purge removes it)", path.display());
                kept.add(kind, path);
                continue;
            }
        }
        match std::fs::remove_file(&staged) {
            Ok(()) => println!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", staged.display())),
        }
    }
    // Directories deepest first, and only empty ones (the database stays unless --purge).
    let mut dirs: Vec<&PathBuf> =
        manifest.entries.iter().filter(|(k, _)| k == "dir").map(|(_, p)| p).collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        let staged = loc.staged(dir);
        if args.purge && dir == Path::new(STATE_DIR) {
            std::fs::remove_dir_all(&staged)
                .or_else(ignore_missing)
                .with_context(|| staged.display().to_string())?;
        }
        match std::fs::remove_dir(&staged) {
            Ok(()) => println!("removed {}/", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => {
                if dir == Path::new(STATE_DIR) {
                    println!("kept {}/ (it holds data; --purge removes it)", dir.display());
                }
                kept.add("dir", dir);
            }
        }
    }
    // A later `uninstall --purge` finds what was kept in a manifest of its own.
    if kept.entries.iter().any(|(k, p)| k == "config" || p == Path::new(STATE_DIR)) {
        let mut rest = Manifest::default();
        for (kind, path) in &manifest.entries {
            if kept.entries.iter().any(|(_, p)| p == path) || (kind == "dir" && loc.share().starts_with(path))
            {
                rest.add(kind, path);
            }
        }
        rest.add("file", &loc.manifest());
        let staged = loc.staged(&loc.manifest());
        std::fs::create_dir_all(staged.parent().context("manifest path")?)?;
        write_atomic(&staged, rest.render().as_bytes(), 0o644)?;
    }
    if loc.live() && systemd_running() {
        run(Command::new("systemctl").arg("daemon-reload"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_reject_garbage() {
        let mut m = Manifest::default();
        m.add("file", Path::new("/usr/local/bin/instadns"));
        m.add("config", Path::new(CONFIG_FILE));
        m.add("dir", Path::new(STATE_DIR));
        m.add("file", Path::new("/usr/local/bin/instadns"));
        assert_eq!(m.entries.len(), 3);
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert!(Manifest::parse("file relative/path\n").is_err());
        assert!(Manifest::parse("socket /x\n").is_err());
        assert!(Manifest::parse("nospace\n").is_err());
    }

    #[test]
    fn the_unit_runs_the_installed_binary_with_only_the_capabilities_it_needs() {
        let u = unit(Path::new("/opt/instadns/bin/instadns"));
        assert!(
            u.contains("ExecStart=/opt/instadns/bin/instadns serve --config /etc/instadns/instadns.toml")
        );
        // As root before the start ("+"): the check, and the pins handed to the service user.
        assert!(
            u.contains("ExecStartPre=+/opt/instadns/bin/instadns check-config /etc/instadns/instadns.toml")
        );
        assert!(u.contains(
            "ExecStartPre=+/opt/instadns/bin/instadns prepare-pins --config /etc/instadns/instadns.toml --owner instadns"
        ));
        assert!(u.contains("Type=notify"));
        assert!(u.contains("User=instadns\n"));
        let caps = "CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_NET_BIND_SERVICE";
        assert!(u.contains(&format!("AmbientCapabilities={caps}\n")));
        assert!(u.contains(&format!("CapabilityBoundingSet={caps}\n")));
        assert!(!u.contains("CAP_SYS_ADMIN") && !u.contains("CAP_SYS_RESOURCE"));
    }
}
