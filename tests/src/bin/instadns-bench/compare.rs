//! `cargo xtask bench`: instadns against Knot DNS, NSD and PowerDNS on one veth rig, the
//! same data and the same query mixes, with two load generators; writes BENCHMARKS.md
//! and its charts.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use dns_common::bench::SinkSlot;
use tests::{netns::VethRig, postgres::PgServer, server::instadns_bin};

use crate::{
    cpu::CpuSample,
    peers::{self, Data, ServerKind},
    platform::{Mix, Platform, Workload},
    report::{self, Floor, Measurement, MissPath, Report},
    traffic::{GenRun, Traffic},
    util::{Sysctl, attached_prog_id, prog_stats},
};

pub struct Options {
    pub servers: Vec<ServerKind>,
    pub instances: u32,
    pub runs: usize,
    pub seconds: u32,
    /// Where BENCHMARKS.md and the charts go.
    pub out_dir: PathBuf,
    pub command: String,
}

impl Options {
    pub fn new(quick: bool, servers: Vec<ServerKind>, out_dir: PathBuf, command: String) -> Self {
        if quick {
            Self { servers, instances: 10_000, runs: 1, seconds: 2, out_dir, command }
        } else {
            Self { servers, instances: 100_000, runs: 3, seconds: 4, out_dir, command }
        }
    }
}

/// Progress on the terminal: what runs and about how long is left.
struct Progress {
    started: Instant,
    total: f64,
    done: f64,
}

impl Progress {
    fn step(&mut self, what: &str, cost: f64) {
        let left = if self.done > 0.0 {
            let rate = self.started.elapsed().as_secs_f64() / self.done;
            format!("about {:.0} min left", ((self.total - self.done) * rate / 60.0).ceil())
        } else {
            "estimating time left".into()
        };
        eprintln!("[{:>3.0}%] {what} ({left})", self.done * 100.0 / self.total);
        self.done += cost;
    }
}

/// Creates the SQLite database with the platform's data.
pub fn sqlite_database(path: &Path, platform: &Platform) -> Result<()> {
    let url = format!("sqlite:{}", path.display());
    let out = std::process::Command::new(instadns_bin()).args(["db", "migrate", "--db", &url]).output()?;
    if !out.status.success() {
        bail!("instadns db migrate: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let tx = conn.transaction()?;
    tx.execute_batch(&platform.sql()).context("loading the platform into SQLite")?;
    tx.commit()?;
    Ok(())
}

/// The XDP program id on the server veth, if any.
fn server_prog(rig: &VethRig) -> Option<u64> {
    let out = tests::netns::ns_exec(&rig.server_ns, "ip", &["-d", "link", "show", "dev", &rig.server_if]);
    String::from_utf8_lossy(&out.stdout)
        .contains("prog/xdp")
        .then(|| attached_prog_id(&rig.server_ns, &rig.server_if))
}

/// One fast-generator run with CPU accounting and, for XDP servers, the program's own
/// cost per packet.
fn measured_run(
    traffic: &mut Traffic,
    pids: &[u32],
    prog: Option<u64>,
    seconds: u32,
) -> Result<(GenRun, f64, f64, Option<f64>)> {
    let stats0 = prog.map(prog_stats);
    let cpu0 = CpuSample::take(pids);
    let run = traffic.generate(Duration::from_secs(seconds.into()))?;
    let cpu1 = CpuSample::take(pids);
    let stats1 = prog.map(prog_stats);
    let (cpu, steal) = cpu0.seconds_until(&cpu1);
    let prog_ns = match (stats0, stats1) {
        (Some((t0, c0)), Some((t1, c1))) if c1 > c0 => Some((t1 - t0) as f64 / (c1 - c0) as f64),
        _ => None,
    };
    Ok((run, cpu, steal, prog_ns))
}

pub fn compare(opts: &Options) -> Result<()> {
    tests::require_root();
    let _bpf_stats = Sysctl::set("kernel.bpf_stats_enabled", "1");
    // INSTADNS_BENCH_KEEP keeps the configurations and server logs for a look afterwards.
    let keep = std::env::var_os("INSTADNS_BENCH_KEEP").is_some();
    let work = tempfile::Builder::new().prefix("instadns-bench").disable_cleanup(keep).tempdir()?;
    if keep {
        eprintln!("bench: keeping {}", work.path().display());
    }
    let platform = Platform { instances: opts.instances };
    eprintln!("bench: generating {} instances ({} names)", opts.instances, opts.instances * 2);
    let sqlite = work.path().join("instadns.sqlite");
    sqlite_database(&sqlite, &platform)?;
    let data = Data { db: sqlite.display().to_string(), zone_file: work.path().join("bench.test.zone") };
    std::fs::write(&data.zone_file, platform.zone_file())?;
    let workloads: Vec<(Mix, Workload, PathBuf)> = Mix::ALL
        .iter()
        .map(|mix| {
            let w = Workload::new(&platform, *mix);
            let file = work.path().join(format!("{}.queries", mix.name()));
            let lines = if *mix == Mix::Uniform { w.names.len() } else { 1_000_000 };
            std::fs::write(&file, w.dnsperf_file(lines)).map(|()| (*mix, w, file))
        })
        .collect::<Result<_, _>>()?;

    let rig = VethRig::new();
    let mut traffic = Traffic::new(&rig)?;
    let per_mix = (1 + 2 * opts.runs as u32) * opts.seconds;
    let mut progress = Progress {
        started: Instant::now(),
        total: (opts.servers.len() * Mix::ALL.len()) as f64 * per_mix as f64 + 60.0,
        done: 0.0,
    };

    // The floor: an XDP program that turns every query straight into a minimal answer.
    progress.step("floor: an XDP program reflecting every query as an answer", 10.0);
    let floor = {
        traffic.attach_server_reflector(&rig)?;
        traffic.load(&workloads[0].1)?;
        let (run, cpu, _, prog_ns) = measured_run(&mut traffic, &[], server_prog(&rig), opts.seconds)?;
        traffic.detach_server_reflector()?;
        Floor {
            answered_qps: run.answered_qps(),
            offered_qps: run.offered_qps(),
            cpu_per_answer: run.cpu_per_answer(cpu),
            prog_ns,
        }
    };

    let mut measurements = Vec::new();
    for &kind in &opts.servers {
        progress.step(&format!("{}: starting", kind.label()), 0.0);
        if kind.has_own_xdp() {
            traffic.detach_server_sink()?;
        } else {
            traffic.attach_server_sink(&rig)?;
        }
        let dir = work.path().join(kind.program()).join(format!("{kind:?}"));
        let mut running = peers::start(kind, &rig, &dir, &data).with_context(|| kind.label().to_owned())?;
        let prog = if kind == ServerKind::Instadns { server_prog(&rig) } else { None };
        for (mix, workload, queries) in &workloads {
            let mut m = Measurement::new(kind, *mix);
            traffic.load(workload)?;
            progress.step(&format!("{} / {}: warm-up", kind.label(), mix.name()), opts.seconds as f64);
            traffic.generate(Duration::from_secs(opts.seconds.into()))?;
            for run in 1..=opts.runs {
                progress.step(
                    &format!("{} / {}: fast generator, run {run} of {}", kind.label(), mix.name(), opts.runs),
                    opts.seconds as f64,
                );
                let (gen_run, cpu, steal, prog_ns) =
                    measured_run(&mut traffic, &running.pids(), prog, opts.seconds)?;
                m.add_generator_run(gen_run, cpu, steal, prog_ns);
            }
            for run in 1..=opts.runs {
                progress.step(
                    &format!("{} / {}: dnsperf, run {run} of {}", kind.label(), mix.name(), opts.runs),
                    opts.seconds as f64,
                );
                m.dnsperf.push(traffic.dnsperf(queries, opts.seconds)?);
            }
            eprintln!("        {}", m.summary());
            if let Some(why) = running.exited(&dir) {
                eprintln!("        {} exited: {why}; starting it again", kind.label());
                m.exited = Some(why);
                drop(running);
                running = peers::start(kind, &rig, &dir, &data).with_context(|| kind.label().to_owned())?;
            }
            measurements.push(m);
        }
        drop(running);
        if kind == ServerKind::KnotXdp {
            // Knot attaches through netlink and may leave its program on the veth when it
            // exits; the next server needs the interface free.
            let _ = tests::netns::ns_exec(
                &rig.server_ns,
                "ip",
                &["link", "set", "dev", &rig.server_if, "xdp", "off"],
            );
        }
    }
    traffic.detach_server_sink()?;

    progress.step("instadns miss path: every name once from a cold start, SQLite and PostgreSQL", 30.0);
    let miss = miss_path(&rig, &mut traffic, &platform, &data, work.path())?;

    let report = Report {
        command: opts.command.clone(),
        instances: opts.instances,
        runs: opts.runs,
        seconds: opts.seconds,
        floor,
        measurements,
        miss,
        versions: opts.servers.iter().map(|k| (k.label(), k.version())).collect(),
    };
    report::write(&report, &opts.out_dir)?;
    eprintln!("bench: wrote {}", opts.out_dir.join("BENCHMARKS.md").display());
    Ok(())
}

/// instadns answering every name once from a cold start (each a miss that reads the
/// database), on SQLite and on PostgreSQL, driven by dnsperf through the file once.
fn miss_path(
    rig: &VethRig,
    traffic: &mut Traffic,
    platform: &Platform,
    data: &Data,
    work: &Path,
) -> Result<Vec<MissPath>> {
    let names = work.join("cold.queries");
    let uniform = Workload::new(platform, Mix::Uniform);
    std::fs::write(&names, uniform.each_name_once_file())?;
    let mut out = Vec::new();

    let pg = PgServer::start();
    let migrate =
        std::process::Command::new(instadns_bin()).args(["db", "migrate", "--db", &pg.url]).output()?;
    if !migrate.status.success() {
        bail!("instadns db migrate (PostgreSQL): {}", String::from_utf8_lossy(&migrate.stderr));
    }
    let sql = work.join("platform.sql");
    std::fs::write(&sql, format!("BEGIN;\n{}\nCOMMIT;\n", platform.sql()))?;
    pg.psql_file(&sql);

    for (store, db) in [("SQLite", data.db.clone()), ("PostgreSQL", pg.url.clone())] {
        let cold = Data { db, zone_file: data.zone_file.clone() };
        let dir = work.join(format!("miss-{store}"));
        let running = peers::start(ServerKind::Instadns, rig, &dir, &cold)?;
        let before = traffic.counts()?;
        let started = Instant::now();
        let run = traffic.dnsperf_once(&names)?;
        let elapsed = started.elapsed();
        let after = traffic.counts()?;
        let answered = after.get(SinkSlot::NoError) - before.get(SinkSlot::NoError);
        let server = running.instadns().context("instadns")?;
        out.push(MissPath {
            store,
            names: uniform.names.len(),
            qps: run.qps,
            answered,
            elapsed,
            db_misses: server.xdp("miss"),
        });
        drop(running);
    }
    Ok(out)
}
