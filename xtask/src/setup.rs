//! `cargo xtask setup`: installs, idempotently and only what is missing, everything the
//! build and the tests need on a Debian machine of our kind.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{cmd_output, run};

/// Debian packages and the reason each is needed.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "bpf-linker links against LLVM 22"),
    ("libpolly-22-dev", "bpf-linker links against LLVM 22"),
    ("libzstd-dev", "bpf-linker links against LLVM 22"),
    ("zlib1g-dev", "bpf-linker links against LLVM 22"),
    ("iproute2", "network namespaces and veth pairs for tests"),
    ("ethtool", "setting veth queue counts before attaching XDP"),
    ("dnsutils", "dig and nsupdate for end-to-end tests"),
    ("knot-dnsutils", "kdig for end-to-end tests"),
    ("dnsperf", "load generation for benchmarks"),
    ("bpftool", "inspecting loaded programs and maps"),
    ("postgresql", "the PostgreSQL store's tests start a real server"),
    ("unbound", "the resolver interoperability test"),
    (
        "nsd",
        "the child zone's server of the referral test, a secondary of the transfer test, a benchmark peer",
    ),
    ("faketime", "a client with a skewed clock for the TSIG BADTIME test"),
    ("prometheus", "promtool checks the /metrics text format"),
    ("systemd", "systemd-analyze verifies the installed service unit"),
    ("pebble", "the ACME server of the DNS-01 certificate test"),
    ("certbot", "an ACME client of the DNS-01 certificate test"),
    ("python3-certbot-dns-rfc2136", "certbot answers DNS-01 challenges by RFC 2136 updates"),
    ("lego", "the other ACME client of the DNS-01 certificate test"),
    ("python3-venv", "a virtual environment for the OpenAPI validator of the HTTP API test"),
    ("curl", "the HTTP client of the HTTP API test"),
    ("knot", "knotd follows our zones as a secondary in the zone transfer test (and is a benchmark peer)"),
];

/// The peers `cargo xtask bench` measures instadns against, and the chart font; only the
/// bench installs them (the test suite does not need them).
const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("pdns-server", "PowerDNS Authoritative, a benchmark peer"),
    ("pdns-backend-bind", "PowerDNS reads the generated zone file"),
    ("fonts-dejavu-core", "the font of the benchmark charts"),
];

/// Installs what the benchmarks need beyond `setup`.
pub fn setup_bench() -> Result<()> {
    let missing: Vec<&str> =
        BENCH_PACKAGES.iter().map(|(pkg, _)| *pkg).filter(|pkg| !deb_installed(pkg)).collect();
    if missing.is_empty() {
        eprintln!("setup: benchmark peers present");
        Ok(())
    } else {
        install_debs(&missing)
    }
}

/// The OpenAPI validator the HTTP API test runs on `/openapi.json` (PyPI), in its own
/// virtual environment (the test suite's `tests::OPENAPI_VALIDATOR` names the same path).
const OPENAPI_VENV: &str = "/opt/instadns-tools/openapi-venv";
const OPENAPI_VALIDATOR: &str = "openapi-spec-validator==0.7.1";

/// The bpf-linker release we build against Debian's LLVM 22.
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
/// The libFuzzer driver of `dns-user/fuzz` (`cargo xtask fuzz`, `cargo xtask test`).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

pub fn setup() -> Result<()> {
    let missing: Vec<&str> =
        APT_PACKAGES.iter().map(|(pkg, _)| *pkg).filter(|pkg| !deb_installed(pkg)).collect();
    if missing.is_empty() {
        eprintln!("setup: Debian packages present");
    } else {
        install_debs(&missing)?;
    }

    if bpf_linker_ok() {
        eprintln!("setup: bpf-linker present");
    } else {
        eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
        // bpf-linker's build script finds LLVM through llvm-config on PATH, which on
        // Debian may belong to another LLVM version: name the prefix explicitly.
        run(Command::new("cargo").env("LLVM_PREFIX", LLVM_PREFIX).args([
            "install",
            "bpf-linker",
            "--locked",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            "llvm-22",
        ]))
        .context("installing bpf-linker")?;
    }

    let installed = cmd_output(Command::new("rustup").args(["+nightly", "component", "list", "--installed"]))
        .context(
            "the nightly toolchain is needed to build the eBPF program: `rustup toolchain install nightly`",
        )?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("setup: nightly rust-src present");
    } else {
        eprintln!("setup: adding rust-src to the nightly toolchain");
        run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    }
    if cmd_output(Command::new("cargo").args(["+nightly", "fuzz", "--version"])).is_ok() {
        eprintln!("setup: cargo-fuzz present");
    } else {
        eprintln!("setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about a minute)");
        run(Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ]))
        .context("installing cargo-fuzz")?;
    }
    let validator = format!("{OPENAPI_VENV}/bin/openapi-spec-validator");
    if std::path::Path::new(&validator).exists() {
        eprintln!("setup: openapi-spec-validator present");
    } else {
        eprintln!("setup: installing {OPENAPI_VALIDATOR} into {OPENAPI_VENV}");
        // Debian's interpreter, not a user's pyenv shim: the venv must outlive shells.
        run(Command::new("/usr/bin/python3").args(["-m", "venv", OPENAPI_VENV]))
            .context("creating the openapi-spec-validator venv (Debian package python3-venv)")?;
        run(Command::new(format!("{OPENAPI_VENV}/bin/pip")).args(["install", "-q", OPENAPI_VALIDATOR]))
            .context("installing openapi-spec-validator from PyPI")?;
    }
    Ok(())
}

/// Installs Debian packages with daemons kept from starting: packages such as knot or
/// unbound must never bind port 53 on the host; tests start them in namespaces.
pub fn install_debs(packages: &[&str]) -> Result<()> {
    if !is_root() {
        bail!(
            "missing Debian packages {}; run `cargo xtask setup` as root or install them with apt-get",
            packages.join(" ")
        );
    }
    eprintln!("setup: installing Debian packages: {}", packages.join(" "));
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n").context("writing policy-rc.d")?;
        set_mode(policy, 0o755)?;
    }
    let result = (|| {
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages))
    })();
    if own_policy {
        let _ = std::fs::remove_file(policy);
    }
    result.context("apt-get install")
}

pub fn deb_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", pkg])
        .output()
        .map(|o| o.status.success() && o.stdout == b"installed")
        .unwrap_or(false)
}

fn bpf_linker_ok() -> bool {
    Command::new("bpf-linker").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

pub fn is_root() -> bool {
    cmd_output(Command::new("id").arg("-u")).map(|s| s.trim() == "0").unwrap_or(false)
}

fn set_mode(path: &std::path::Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}
