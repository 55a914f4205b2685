//! Developer and operator chores for instadns: `cargo xtask <command>`.

mod fuzz;
mod install;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "instadns developer and operator tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build and tests need (Debian packages, bpf-linker, nightly rust-src).
    /// Idempotent: only what is missing is installed.
    Setup,
    /// Set up, then build the release `instadns` binary (eBPF program embedded).
    Build,
    /// Set up, build, and serve the demo SQLite database.
    ///
    /// Defaults to the loopback interface with XDP in generic (SKB) mode, so that
    /// `dig @127.0.0.1 ws-123456.apps.example.com` works on this host. Arguments after
    /// `--` are passed to `instadns serve` and replace the defaults they name
    /// (for example `cargo xtask run -- --iface eth0 --xdp-mode native`).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then run the whole test suite: unit tests, BPF_PROG_TEST_RUN fixtures and
    /// end-to-end tests in network namespaces (needs root).
    Test {
        /// Extra arguments for `cargo test` (a test name filter, `--nocapture`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then run a benchmark (as root). Numbers are reported as ratios against
    /// baselines measured in the same run.
    Bench {
        /// compare (default): instadns against Knot DNS, NSD and PowerDNS, written to
        /// BENCHMARKS.md and benchmarks/*.png. fastpath: kernel ns per packet for each
        /// answer kind vs a floor program, at scale and under live traffic. management:
        /// writes per second through the HTTP API and RFC 2136 against the store's own.
        /// transfer: AXFR time of the bench zone against Knot DNS and NSD.
        #[arg(value_enum, default_value = "compare")]
        suite: BenchSuite,
        /// Fewer samples: a quick look, not a measurement.
        #[arg(long)]
        quick: bool,
        /// compare: only these servers, comma-separated (instadns, instadns-userspace,
        /// knot, knot-xdp, nsd, pdns); BENCHMARKS.md then shows only them.
        #[arg(long)]
        servers: Option<String>,
    },
    /// Set up, then fuzz (as root): the campaigns differential (mutated query frames
    /// through the XDP program and the handler, which must agree) and handler-mutations
    /// (mutated messages through the query path), and the coverage-guided libFuzzer
    /// targets of dns-user/fuzz (handler, query, update, name, slot, zone-file, config).
    /// `cargo xtask test` runs a short round of each.
    Fuzz {
        #[arg(value_enum, default_value = "all")]
        target: fuzz::FuzzTarget,
        /// Cases per campaign target.
        #[arg(long, default_value_t = 1_000_000)]
        cases: u64,
        /// The first case number of a campaign (a failure's number replays it with
        /// --cases 1).
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Seconds per libFuzzer target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Set up, then soak (as root): the release build under UDP and TCP load while an
    /// instance moves every 10 ms, checking memory, map fill and every answer against
    /// the database; writes benchmarks/soak.md. `cargo xtask test` runs 20 s of it.
    Soak {
        /// How long the load runs.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
    },
    /// Build the release binary and install it with a configuration file (kept if it
    /// exists), a state directory and a systemd unit; a manifest records what was added.
    Install(install::InstallArgs),
    /// Remove what install added: stops and disables the service and detaches the fast
    /// path of its configuration's pin directory (nothing else); a changed configuration
    /// file and a non-empty state directory stay unless --purge.
    Uninstall(install::UninstallArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchSuite {
    Compare,
    Fastpath,
    Management,
    Transfer,
}

fn main() -> std::process::ExitCode {
    match run_task(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_task(cli: Cli) -> Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root).context("entering the workspace root")?;
    match cli.command {
        Task::Setup => setup::setup(),
        Task::Build => {
            setup::setup()?;
            build_release()
        }
        Task::Run { args } => {
            setup::setup()?;
            build_release()?;
            serve_demo(&root, &args)
        }
        Task::Test { args } => {
            setup::setup()?;
            test(&args)
        }
        Task::Install(args) => {
            let binary = match &args.binary {
                Some(b) => b.clone(),
                None => {
                    setup::setup()?;
                    build_release()?;
                    root.join("target/release/instadns")
                }
            };
            install::install(&args, &binary)
        }
        Task::Uninstall(args) => install::uninstall(&args),
        Task::Fuzz { target, cases, first, seconds } => {
            setup::setup()?;
            fuzz::fuzz(&root, target, cases, first, seconds)
        }
        Task::Soak { seconds } => {
            setup::setup()?;
            build_release()?;
            run(Command::new("cargo")
                .env("INSTADNS_BIN", root.join("target/release/instadns"))
                .env("INSTADNS_SOAK_SECONDS", seconds.to_string())
                .env("INSTADNS_SOAK_REPORT", root.join("benchmarks/soak.md"))
                .args(["test", "--release", "--package", "tests", "--test", "soak", "--", "--nocapture"]))
        }
        Task::Bench { suite, quick, servers } => {
            setup::setup()?;
            let suite = match suite {
                BenchSuite::Compare => {
                    setup::setup_bench()?;
                    "compare"
                }
                BenchSuite::Fastpath => "fastpath",
                BenchSuite::Management => "management",
                BenchSuite::Transfer => {
                    setup::setup_bench()?;
                    "transfer"
                }
            };
            // The daemon measured is the release build, whatever the tests last built.
            build_release()?;
            let mut cmd = Command::new("cargo");
            cmd.env("INSTADNS_BIN", root.join("target/release/instadns"));
            cmd.args([
                "run",
                "--quiet",
                "--release",
                "--package",
                "tests",
                "--bin",
                "instadns-bench",
                "--",
                suite,
            ]);
            if quick {
                cmd.arg("--quick");
            }
            if let Some(list) = servers {
                cmd.args(["--servers", &list]);
            }
            run(&mut cmd)
        }
    }
}

fn build_release() -> Result<()> {
    run(Command::new("cargo").args(["build", "--release", "--package", "dns-user", "--bin", "instadns"]))
}

fn serve_demo(root: &Path, args: &[String]) -> Result<()> {
    let has = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let mut cmd = Command::new(root.join("target/release/instadns"));
    cmd.arg("serve");
    if !has("--iface") {
        cmd.args(["--iface", "lo"]);
        if !has("--xdp-mode") {
            cmd.args(["--xdp-mode", "skb"]);
        }
        // On loopback only loopback addresses make sense (and a host's own stub
        // resolver may hold port 53 elsewhere).
        if !has("--listen") {
            cmd.args(["--listen", "127.0.0.1", "--listen", "::1"]);
        }
    }
    if !has("--db") {
        // The demo's own database, with the demo data loaded when it is first made.
        let db = root.join("target/instadns-demo.sqlite");
        let db = db.to_str().context("non-UTF-8 path")?;
        if !Path::new(db).exists() {
            run(Command::new(root.join("target/release/instadns")).args(["db", "demo", "--db", db]))?;
        }
        cmd.args(["--db", db]);
    }
    // A demo leaves nothing behind, and never touches an installed service's pins.
    if !has("--pin-dir") {
        cmd.args(["--pin-dir", "/sys/fs/bpf/instadns-demo"]);
    }
    if !has("--detach-on-exit") {
        cmd.arg("--detach-on-exit");
    }
    cmd.args(args);
    if !setup::is_root() {
        bail!("serving with XDP needs root (CAP_BPF, CAP_NET_ADMIN): run `sudo cargo xtask run`");
    }
    eprintln!("xtask: {cmd:?}");
    run(&mut cmd)
}

fn test(args: &[String]) -> Result<()> {
    if !setup::is_root() && std::env::var_os("INSTADNS_TEST_UNPRIVILEGED").is_none() {
        bail!(
            "the test suite attaches XDP programs and creates network namespaces: run it as root \
             (set INSTADNS_TEST_UNPRIVILEGED=1 to run it anyway; the privileged tests will fail)"
        );
    }
    // The end-to-end tests run the real binary; build it first so they test this tree.
    run(Command::new("cargo").args(["build", "--package", "dns-user", "--bin", "instadns"]))?;
    run(Command::new("cargo").arg("test").args(args))?;
    // The whole suite also replays the libFuzzer corpora (a chosen subset does not).
    if args.is_empty() {
        fuzz::replay_corpora(&workspace_root())?;
    }
    Ok(())
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

pub fn cmd_output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
