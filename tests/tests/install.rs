//! `cargo xtask install --destdir` and `uninstall`, checked file by file; the unit passes
//! `systemd-analyze verify`; and the installed binary serves from XDP with exactly the
//! capabilities the unit grants (and fails with a clear hint without CAP_BPF).

use std::{
    ffi::OsString,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use hickory_proto::rr::RecordType;
use tests::{
    dns::QueryBuilder,
    netns::{SERVER_V4, VethRig},
    server::{ServerProcess, demo_db, instadns_bin, test_pin_dir, udp_exchange},
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo xtask ARGS` (the xtask binary, built by `cargo xtask test` itself).
fn xtask(args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args)
        .output()
        .expect("cargo run xtask");
    assert!(
        out.status.success(),
        "cargo xtask {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn install(destdir: &Path, extra: &[&str]) -> String {
    let bin = instadns_bin();
    let out = xtask(
        &[&["install", "--destdir", destdir.to_str().unwrap(), "--binary", bin.to_str().unwrap()][..], extra]
            .concat(),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn uninstall(destdir: &Path, extra: &[&str]) -> String {
    let out = xtask(&[&["uninstall", "--destdir", destdir.to_str().unwrap()][..], extra].concat());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode()
        & 0o7777
}

/// Every file and directory under `root`, as target paths with their modes.
fn tree(root: &Path) -> Vec<(String, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u32)>) {
        for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
            let path = e.path();
            let target = format!("/{}", path.strip_prefix(root).unwrap().display());
            out.push((target, mode(&path)));
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key}= missing from the unit:\n{unit}"))
}

/// `systemd-analyze verify` of the unit in `destdir`, against a copy of the host's systemd
/// units (the targets it depends on); returns its complaints.
fn systemd_verify(destdir: &Path) -> String {
    let root = tempfile::tempdir().unwrap();
    let status =
        Command::new("cp").arg("-a").arg(format!("{}/.", destdir.display())).arg(root.path()).status();
    assert!(status.unwrap().success());
    std::fs::create_dir_all(root.path().join("lib/systemd")).unwrap();
    // ExecReload's kill comes from the host system, not from the install.
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    std::fs::copy("/bin/kill", root.path().join("bin/kill")).unwrap();
    let status =
        Command::new("cp").args(["-a", "/lib/systemd/system"]).arg(root.path().join("lib/systemd/")).status();
    assert!(status.unwrap().success());
    let out = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.path().display()))
        .args(["verify", "instadns.service"])
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by cargo xtask setup)");
    let complaints =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && complaints.is_empty() {
        return format!("exit status {}", out.status);
    }
    complaints
}

/// `systemd-analyze security`'s overall exposure of the unit in `destdir` (offline: no
/// running systemd needed), 0 (best) to 10.
fn systemd_exposure(destdir: &Path) -> f64 {
    let unit = destdir.join("etc/systemd/system/instadns.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by cargo xtask setup)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let line = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for instadns.service:"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"))
        .1;
    eprintln!("systemd-analyze security: {}", line.trim());
    line.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line:?}"))
}

#[test]
fn install_into_a_destdir_file_by_file_and_uninstall() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root");
    let out = install(&dest, &["--iface", "eth7"]);
    assert!(out.contains("installed /etc/instadns/instadns.toml"), "{out}");
    let expected: Vec<(String, u32)> = [
        ("/etc", 0o755),
        ("/etc/instadns", 0o755),
        ("/etc/instadns/instadns.toml", 0o644),
        ("/etc/systemd", 0o755),
        ("/etc/systemd/system", 0o755),
        ("/etc/systemd/system/instadns.service", 0o644),
        ("/etc/sysusers.d", 0o755),
        ("/etc/sysusers.d/instadns.conf", 0o644),
        ("/usr", 0o755),
        ("/usr/local", 0o755),
        ("/usr/local/bin", 0o755),
        ("/usr/local/bin/instadns", 0o755),
        ("/usr/local/share", 0o755),
        ("/usr/local/share/instadns", 0o755),
        ("/usr/local/share/instadns/instadns.toml.installed", 0o644),
        ("/usr/local/share/instadns/install-manifest", 0o644),
        ("/var", 0o755),
        ("/var/lib", 0o755),
        ("/var/lib/instadns", 0o750),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), *m))
    .collect();
    assert_eq!(tree(&dest), expected);

    // The binary is the one given, the configuration valid and naming the interface.
    assert_eq!(
        std::fs::read(dest.join("usr/local/bin/instadns")).unwrap(),
        std::fs::read(instadns_bin()).unwrap()
    );
    let config = dest.join("etc/instadns/instadns.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("[[interface]]\nname = \"eth7\""), "{text}");
    let check =
        Command::new(dest.join("usr/local/bin/instadns")).arg("check-config").arg(&config).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    // The unit.
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/instadns.service")).unwrap();
    assert_eq!(unit_value(&unit, "Type"), "notify");
    // As root before the start: the check, and the pins handed to the service user.
    let pre: Vec<&str> = unit.lines().filter_map(|l| l.strip_prefix("ExecStartPre=")).collect();
    assert_eq!(
        pre,
        [
            "+/usr/local/bin/instadns check-config /etc/instadns/instadns.toml",
            "+/usr/local/bin/instadns prepare-pins --config /etc/instadns/instadns.toml --owner instadns"
        ]
    );
    assert_eq!(unit_value(&unit, "User"), "instadns");
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/sysusers.d/instadns.conf")).unwrap(),
        "u instadns - \"instadns DNS server\" /var/lib/instadns /usr/sbin/nologin\n"
    );
    assert_eq!(
        unit_value(&unit, "ExecStart"),
        "/usr/local/bin/instadns serve --config /etc/instadns/instadns.toml"
    );
    assert_eq!(unit_value(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(unit_value(&unit, "Restart"), "on-failure");
    assert_eq!(unit_value(&unit, "LimitMEMLOCK"), "infinity");
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        assert_eq!(unit_value(&unit, key), "CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_NET_BIND_SERVICE", "{key}");
    }
    let complaints = systemd_verify(&dest);
    assert!(complaints.is_empty(), "systemd-analyze verify: {complaints}");
    let exposure = systemd_exposure(&dest);
    assert!(exposure < 3.0, "systemd-analyze security rates the unit {exposure} (the goal is below 3.0)");
    // The check is not vacuous: a broken copy is reported.
    let broken = dir.path().join("broken");
    let status = Command::new("cp").arg("-a").arg(&dest).arg(&broken).status().unwrap();
    assert!(status.success());
    let unit_path = broken.join("etc/systemd/system/instadns.service");
    std::fs::write(&unit_path, unit.replace("Type=notify", "Type=notify\nRestart=sometimes")).unwrap();
    assert!(systemd_verify(&broken).contains("restart specifier"), "a bad value is caught");

    // A second install keeps the operator's configuration.
    std::fs::write(&config, format!("{text}\n# tuned by the operator\n")).unwrap();
    let out = install(&dest, &[]);
    assert!(out.contains("kept /etc/instadns/instadns.toml"), "{out}");
    assert!(std::fs::read_to_string(&config).unwrap().contains("tuned by the operator"));
    assert_eq!(tree(&dest), expected);

    // Uninstall keeps the changed configuration and the database, and says so.
    std::fs::write(dest.join("var/lib/instadns/instadns.sqlite"), b"data").unwrap();
    let out = uninstall(&dest, &[]);
    assert!(out.contains("kept /etc/instadns/instadns.toml (changed since install"), "{out}");
    assert!(out.contains("kept /var/lib/instadns/ (it holds data"), "{out}");
    let left: Vec<String> = tree(&dest).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        left,
        [
            "/etc",
            "/etc/instadns",
            "/etc/instadns/instadns.toml",
            "/usr",
            "/usr/local",
            "/usr/local/share",
            "/usr/local/share/instadns",
            "/usr/local/share/instadns/install-manifest",
            "/var",
            "/var/lib",
            "/var/lib/instadns",
            "/var/lib/instadns/instadns.sqlite",
        ]
    );
    // --purge removes the rest.
    uninstall(&dest, &["--purge"]);
    assert_eq!(tree(&dest), Vec::<(String, u32)>::new());

    // An unchanged configuration goes with a plain uninstall.
    install(&dest, &[]);
    uninstall(&dest, &[]);
    assert_eq!(tree(&dest), Vec::<(String, u32)>::new());
}

/// The capabilities of the unit's bounding set, as setpriv names them.
fn unit_capabilities(dest: &Path) -> Vec<String> {
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/instadns.service")).unwrap();
    unit_value(&unit, "CapabilityBoundingSet")
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect()
}

/// The unprivileged user the daemon runs as here (the unit's `instadns` user need not
/// exist on a test machine: a number is enough for the kernel).
const SERVICE_UID: u32 = 64_053;

/// `binary` as the unit runs it: as [`SERVICE_UID`] with `caps` as ambient capabilities
/// and nothing else.
fn with_capabilities(binary: &Path, caps: &[String]) -> Vec<OsString> {
    let set: String = caps.iter().map(|c| format!(",+{c}")).collect();
    vec![
        "setpriv".into(),
        format!("--reuid={SERVICE_UID}").into(),
        format!("--regid={SERVICE_UID}").into(),
        "--clear-groups".into(),
        format!("--inh-caps=-all{set}").into(),
        format!("--ambient-caps=-all{set}").into(),
        format!("--bounding-set=-all{set}").into(),
        "--".into(),
        binary.into(),
    ]
}

/// Gives `path` and everything under it to [`SERVICE_UID`] (the state directory the
/// unit's StateDirectory= hands over).
fn chown_to_service_user(path: &Path) {
    let status =
        Command::new("chown").arg("-R").arg(format!("{SERVICE_UID}:{SERVICE_UID}")).arg(path).status();
    assert!(status.unwrap().success(), "chown {}", path.display());
}

#[test]
fn the_installed_binary_serves_from_xdp_with_the_units_capabilities_only() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root");
    install(&dest, &[]);
    let binary = dest.join("usr/local/bin/instadns");
    let caps = unit_capabilities(&dest);
    assert!(!caps.iter().any(|c| c == "sys_admin"));

    let rig = VethRig::new().with_client_pass_program();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let db = demo_db(&state);
    chown_to_service_user(&state);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // As the unit's ExecStartPre=+ does before every start: the pin directory handed to
    // the service user.
    let pin_dir = test_pin_dir();
    let prepare_pins = || {
        let prepared = Command::new(&binary)
            .args(["prepare-pins", "--pin-dir"])
            .arg(&pin_dir)
            .arg(format!("--owner={SERVICE_UID}"))
            .output()
            .unwrap();
        assert!(prepared.status.success(), "prepare-pins: {}", String::from_utf8_lossy(&prepared.stderr));
    };
    prepare_pins();
    let args = ServerProcess::args(&rig, &db, &["--xdp-mode", "native"]);
    let server = ServerProcess::start_wrapped(
        &rig,
        &with_capabilities(&binary, &caps),
        &args,
        &dir.path().join("instadns.log"),
        &pin_dir,
    );
    let query = QueryBuilder::new("ws-123456.apps.example.com", RecordType::A).bytes();
    let first = udp_exchange(&rig, (SERVER_V4, 53).into(), &query);
    let hits = server.xdp("hit");
    let mut second = Vec::new();
    for _ in 0..50 {
        second = udp_exchange(&rig, (SERVER_V4, 53).into(), &query);
        if server.xdp("hit") > hits {
            break;
        }
    }
    assert!(server.xdp("hit") > hits, "XDP answers with the unit's capabilities");
    assert_eq!(first[2..], second[2..]);
    drop(server);

    // Without CAP_BPF the daemon stops at once and says what to grant.
    prepare_pins();
    let without_bpf: Vec<String> = caps.iter().filter(|c| *c != "bpf").cloned().collect();
    let out = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{}", rig.server_ns))
        .args(with_capabilities(&binary, &without_bpf))
        .arg("serve")
        .args(&args)
        .arg("--pin-dir")
        .arg(&pin_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not start without CAP_BPF: {err}");
    assert!(err.contains("CAP_BPF"), "the error names the capability: {err}");
}
