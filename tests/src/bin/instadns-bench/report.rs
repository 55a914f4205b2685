//! BENCHMARKS.md and its charts: every figure also as a ratio to the best peer measured
//! in the same run.

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::{Context as _, Result};
use dns_common::bench::SinkSlot;
use plotters::prelude::*;

use crate::{
    peers::ServerKind,
    platform::Mix,
    traffic::{DnsperfRun, GenRun},
    util::percentile,
};

/// The floor: an XDP program that bounces every query back.
pub struct Floor {
    pub answered_qps: f64,
    pub offered_qps: f64,
    /// CPU seconds per answer (server-side attribution, see cpu.rs).
    pub cpu_per_answer: f64,
    pub prog_ns: Option<f64>,
}

/// One fast-generator run's figures.
pub struct GenStat {
    pub answered_qps: f64,
    pub offered_qps: f64,
    pub cpu_per_answer: f64,
    pub steal: f64,
    pub prog_ns: Option<f64>,
    pub counts: [u64; 8],
}

/// One server on one mix.
pub struct Measurement {
    pub kind: ServerKind,
    pub mix: Mix,
    pub generator: Vec<GenStat>,
    pub dnsperf: Vec<DnsperfRun>,
    /// Set when the server stopped during the mix: why, from its log.
    pub exited: Option<String>,
}

fn median(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    if v.is_empty() { 0.0 } else { percentile(&v, 0.5) }
}

fn min_max(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    (v.clone().fold(f64::INFINITY, f64::min), v.fold(0.0, f64::max))
}

impl Measurement {
    pub fn new(kind: ServerKind, mix: Mix) -> Self {
        Self { kind, mix, generator: Vec::new(), dnsperf: Vec::new(), exited: None }
    }

    pub fn add_generator_run(&mut self, run: GenRun, cpu: f64, steal: f64, prog_ns: Option<f64>) {
        let mut counts = [0; 8];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = run.counts.get(SINK_SLOTS_ALL[i]);
        }
        self.generator.push(GenStat {
            answered_qps: run.answered_qps(),
            offered_qps: run.offered_qps(),
            cpu_per_answer: run.cpu_per_answer(cpu),
            steal,
            prog_ns,
            counts,
        });
    }

    pub fn answered_qps(&self) -> f64 {
        median(self.generator.iter().map(|g| g.answered_qps))
    }

    pub fn offered_qps(&self) -> f64 {
        median(self.generator.iter().map(|g| g.offered_qps))
    }

    pub fn cpu_per_answer(&self) -> f64 {
        median(self.generator.iter().map(|g| g.cpu_per_answer))
    }

    pub fn dnsperf_qps(&self) -> f64 {
        median(self.dnsperf.iter().map(|d| d.qps))
    }

    pub fn prog_ns(&self) -> Option<f64> {
        let v: Vec<f64> = self.generator.iter().filter_map(|g| g.prog_ns).collect();
        (!v.is_empty()).then(|| median(v.into_iter()))
    }

    pub fn summary(&self) -> String {
        format!(
            "{} / {}: {:.0} answers/s of {:.0} offered, {:.2} µs CPU per answer; dnsperf {:.0} q/s",
            self.kind.label(),
            self.mix.name(),
            self.answered_qps(),
            self.offered_qps(),
            self.cpu_per_answer() * 1e6,
            self.dnsperf_qps()
        )
    }

    /// Answers by RCODE over all runs: (NOERROR, NXDOMAIN, SERVFAIL, other).
    /// Responses over all runs: NOERROR, NXDOMAIN, SERVFAIL, other RCODEs, and TC set.
    fn rcodes(&self) -> (u64, u64, u64, u64, u64) {
        let sum = |s: SinkSlot| self.generator.iter().map(|g| g.counts[s as usize]).sum::<u64>();
        (
            sum(SinkSlot::NoError),
            sum(SinkSlot::NxDomain),
            sum(SinkSlot::ServFail),
            sum(SinkSlot::Refused) + sum(SinkSlot::OtherRcode),
            sum(SinkSlot::Truncated),
        )
    }
}

const SINK_SLOTS_ALL: [SinkSlot; 8] = [
    SinkSlot::Responses,
    SinkSlot::NoError,
    SinkSlot::NxDomain,
    SinkSlot::ServFail,
    SinkSlot::Refused,
    SinkSlot::OtherRcode,
    SinkSlot::Truncated,
    SinkSlot::Sent,
];

/// instadns answering every name once from a cold start.
pub struct MissPath {
    pub store: &'static str,
    pub names: usize,
    pub qps: f64,
    pub answered: u64,
    pub elapsed: Duration,
    pub db_misses: u64,
}

pub struct Report {
    pub command: String,
    pub instances: u32,
    pub runs: usize,
    pub seconds: u32,
    pub floor: Floor,
    pub measurements: Vec<Measurement>,
    pub miss: Vec<MissPath>,
    pub versions: Vec<(&'static str, String)>,
}

impl Report {
    fn get(&self, kind: ServerKind, mix: Mix) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.kind == kind && m.mix == mix)
    }

    /// The best peer on `mix` by `key` (highest, or lowest when `lowest`).
    fn best_peer(
        &self,
        mix: Mix,
        key: impl Fn(&Measurement) -> f64,
        lowest: bool,
    ) -> Option<(&Measurement, f64)> {
        self.measurements
            .iter()
            .filter(|m| m.mix == mix && m.kind.is_peer())
            .map(|m| (m, key(m)))
            .filter(|(_, v)| *v > 0.0)
            .reduce(|a, b| if (b.1 > a.1) != lowest { b } else { a })
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!(
        "{model}, {cpus} CPUs, {:.0} GiB, Linux {}, {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        command_output("uname", &["-r"]),
        std::fs::read_to_string("/etc/debian_version")
            .map(|v| format!("Debian {}", v.trim()))
            .unwrap_or_default()
    )
}

fn kqps(v: f64) -> String {
    if v >= 10_000.0 { format!("{:.0}k", v / 1000.0) } else { format!("{v:.0}") }
}

/// Seconds as microseconds; a dash for 0 (nothing measured).
fn micros(v: f64) -> String {
    if v > 0.0 { format!("{:.2}", v * 1e6) } else { "–".into() }
}

fn ratio(v: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{:.2}×", v / b),
        _ => "–".into(),
    }
}

pub fn write(report: &Report, out_dir: &Path) -> Result<()> {
    let charts = out_dir.join("benchmarks");
    std::fs::create_dir_all(&charts)?;
    let mut md = String::new();
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let dnsperf_version = command_output("dnsperf", &["-h"]);
    let _ = dnsperf_version;
    let _ = writeln!(md, "# instadns benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `{}` on {date}; rerun it to refresh this file and the charts. Every ratio compares \
         figures measured in the same run: the machine is shared and noisy, absolute numbers drift.\n",
        report.command
    );
    let _ = writeln!(md, "- Machine: {}", machine());
    let versions: Vec<String> = report.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let mut seen = Vec::new();
    let versions: Vec<&String> = versions
        .iter()
        .filter(|v| {
            let new = !seen.contains(v);
            seen.push(*v);
            new
        })
        .collect();
    let _ = writeln!(md, "- Servers: {}", versions.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
    let _ = writeln!(
        md,
        "- Data: one zone, {} instances on 8 clusters: service names `ws-ID.apps.bench.test` (CNAME to the \
         cluster's service domain, answered with its A record) and host names `ID.bench.test` (A); {} names. \
         instadns holds them as instances and name rules in SQLite; the peers load the same names from a zone file.",
        report.instances,
        report.instances * 2
    );
    let _ = writeln!(
        md,
        "- Rig: two network namespaces joined by a veth pair. Clients run on CPU 0, servers are pinned to CPU 1 \
         (`taskset`); XDP and the kernel's receive path run in softirq on the CPU that sent the frame (CPU 0 for \
         queries), whatever the server's pinning.\n- Runs: {} of {} s per generator, server and mix (after a \
         warm-up of the same length); min / median / max shown.",
        report.runs, report.seconds
    );
    let _ = writeln!(md, "\n## Query mixes\n");
    for mix in Mix::ALL {
        let _ = writeln!(md, "- `{}`: {}", mix.name(), mix.describe());
    }
    let _ = writeln!(
        md,
        "\nEvery query is `A` with EDNS(0) (1232-byte payload), over IPv4 UDP.\n\n## Load generators\n\n\
         - **Fast generator**: an XDP program run with BPF_PROG_TEST_RUN in live-frames mode on the client's \
         veth, one CPU, rewriting each frame into a query from the mix's template table (random source port and \
         ID) and transmitting it. An XDP program on the same veth counts the answers by RCODE and drops them. It \
         offers far more than the servers answer: \"offered\" is what it sent, \"answered\" what came back.\n\
         - **dnsperf** (the operators' tool), 8 clients, up to 1000 outstanding queries, on the same CPU.\n\n\
         Server CPU per answer = (user + system time of the server's processes + softirq time of all CPUs) / \
         answers, from /proc (tick-sampled at 250 Hz). Softirq holds the kernel's receive path and XDP programs, \
         where a veth runs them; it also holds the client side's receive of the answers and their counting, the \
         same per answer for every server: the floor below shows that constant.\n"
    );
    let f = &report.floor;
    let _ = writeln!(
        md,
        "**Floor** (an XDP program on the server's veth that turns every query into a minimal answer, itself with \
         QR set, and sends it back: the cheapest answer there is): {} answers/s of \
         {} offered, {} µs CPU per answer{}.\n",
        kqps(f.answered_qps),
        kqps(f.offered_qps),
        micros(f.cpu_per_answer),
        f.prog_ns.map(|n| format!(", {n:.0} ns per program run")).unwrap_or_default()
    );

    let _ = writeln!(md, "## Fast generator: answers per second and server CPU per answer\n");
    for mix in Mix::ALL {
        let best_qps = report.best_peer(mix, Measurement::answered_qps, false).map(|(_, v)| v);
        let best_cpu = report.best_peer(mix, Measurement::cpu_per_answer, true).map(|(_, v)| v);
        let _ = writeln!(md, "### `{}`\n", mix.name());
        let _ = writeln!(
            md,
            "| Server | answered/s (min / median / max) | × best peer | offered/s | µs CPU per answer | × best peer | NOERROR / NXDOMAIN / SERVFAIL / other | of them TC |"
        );
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for kind in ServerKind::ALL {
            let Some(m) = report.get(kind, mix) else { continue };
            let (lo, hi) = min_max(m.generator.iter().map(|g| g.answered_qps));
            let (ok, nx, sf, other, tc) = m.rcodes();
            let _ = writeln!(
                md,
                "| {} | {} / {} / {} | {} | {} | {} | {} | {ok} / {nx} / {sf} / {other} | {tc} |",
                kind.label(),
                kqps(lo),
                kqps(m.answered_qps()),
                kqps(hi),
                ratio(m.answered_qps(), best_qps),
                kqps(m.offered_qps()),
                micros(m.cpu_per_answer()),
                if m.cpu_per_answer() > 0.0 { ratio(m.cpu_per_answer(), best_cpu) } else { "–".into() },
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## dnsperf: queries per second and latency\n");
    for mix in Mix::ALL {
        let best = report.best_peer(mix, Measurement::dnsperf_qps, false).map(|(_, v)| v);
        let _ = writeln!(md, "### `{}`\n", mix.name());
        let _ = writeln!(md, "| Server | q/s (min / median / max) | × best peer | average latency | lost |");
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
        for kind in ServerKind::ALL {
            let Some(m) = report.get(kind, mix) else { continue };
            let (lo, hi) = min_max(m.dnsperf.iter().map(|d| d.qps));
            let latency = median(m.dnsperf.iter().map(|d| d.latency_avg.as_secs_f64()));
            let lost: u64 = m.dnsperf.iter().map(|d| d.lost).sum();
            let sent: u64 = m.dnsperf.iter().map(|d| d.sent).sum();
            let _ = writeln!(
                md,
                "| {} | {} / {} / {} | {} | {:.0} µs | {lost} of {sent} |",
                kind.label(),
                kqps(lo),
                kqps(m.dnsperf_qps()),
                kqps(hi),
                ratio(m.dnsperf_qps(), best),
                latency * 1e6,
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## instadns's fast path\n");
    let _ = writeln!(
        md,
        "| Mix | XDP program ns per packet (run_time_ns / run_cnt) | answered/s with XDP | userspace only | gain |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
    for mix in Mix::ALL {
        let (Some(x), Some(u)) =
            (report.get(ServerKind::Instadns, mix), report.get(ServerKind::InstadnsUserspace, mix))
        else {
            continue;
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            mix.name(),
            x.prog_ns().map(|n| format!("{n:.0}")).unwrap_or_else(|| "–".into()),
            kqps(x.answered_qps()),
            kqps(u.answered_qps()),
            ratio(x.answered_qps(), Some(u.answered_qps())),
        );
    }
    let _ = writeln!(md, "\n### The miss path: every name once, from a cold start\n");
    let _ = writeln!(md, "| Database | names | dnsperf q/s | NOERROR answers | XDP misses | time |");
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: |");
    for m in &report.miss {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.1} s |",
            m.store,
            m.names,
            kqps(m.qps),
            m.answered,
            m.db_misses,
            m.elapsed.as_secs_f64()
        );
    }

    let _ = writeln!(md, "\n## Goals\n");
    for mix in Mix::ALL {
        let Some(x) = report.get(ServerKind::Instadns, mix) else { continue };
        let best_qps = report.best_peer(mix, Measurement::answered_qps, false);
        let best_cpu = report.best_peer(mix, Measurement::cpu_per_answer, true);
        if let (Some((bq, q)), Some((bc, c))) = (best_qps, best_cpu) {
            let qr = x.answered_qps() / q;
            let cr = x.cpu_per_answer() / c;
            let _ = writeln!(
                md,
                "- `{}`: fast path answers {qr:.2}× the best peer ({}) at the same offered load (goal ≥ 3×: {}); \
                 CPU per answer {cr:.2}× the best peer's ({}) (goal ≤ 0.33×: {}).",
                mix.name(),
                bq.kind.label(),
                if qr >= 3.0 { "met" } else { "not met" },
                bc.kind.label(),
                if cr <= 1.0 / 3.0 { "met" } else { "not met" },
            );
        }
    }
    for mix in Mix::ALL {
        if let (Some(u), Some(n)) =
            (report.get(ServerKind::InstadnsUserspace, mix), report.get(ServerKind::Nsd, mix))
        {
            let r = u.dnsperf_qps() / n.dnsperf_qps().max(1.0);
            let g = u.answered_qps() / n.answered_qps().max(1.0);
            let _ = writeln!(
                md,
                "- `{}`: userspace only vs NSD: {r:.2}× with dnsperf, {g:.2}× with the fast generator (goal ≥ 0.8×: {}).",
                mix.name(),
                if r >= 0.8 && g >= 0.8 { "met" } else { "not met" }
            );
        }
    }
    let exits: Vec<&Measurement> = report.measurements.iter().filter(|m| m.exited.is_some()).collect();
    if !exits.is_empty() {
        let _ = writeln!(md, "\n## Servers that stopped\n");
        for m in exits {
            let _ = writeln!(
                md,
                "- {} exited during `{}` (it was started again for the next mix); its log's last line: `{}`",
                m.kind.label(),
                m.mix.name(),
                m.exited.as_deref().unwrap_or_default(),
            );
        }
    }
    let _ = writeln!(md, "\n## Where the limit is\n");
    for mix in Mix::ALL {
        let Some(x) = report.get(ServerKind::Instadns, mix) else { continue };
        let share = x.answered_qps() / x.offered_qps().max(1.0);
        let program = x.generator.iter().filter_map(|g| g.prog_ns).map(|n| format!("{n:.0}")).next();
        let verdict = if share >= 0.98 {
            format!(
                "The generator is the limit, not the server: it offered {}/s here against {}/s to the floor, because \
                 on a veth the server's XDP program runs in the sender's softirq, on the generator's own CPU \
                 (generating, answering in XDP and receiving the answers share CPU 0). The program itself took {} ns \
                 per packet against the floor's {} ns.",
                kqps(x.offered_qps()),
                kqps(f.offered_qps),
                program.as_deref().unwrap_or("?"),
                f.prog_ns.map(|n| format!("{n:.0}")).as_deref().unwrap_or("?"),
            )
        } else {
            "The server is the limit: the queries the XDP map cannot answer go to userspace, which answers fewer \
             than were offered."
                .to_owned()
        };
        let _ = writeln!(
            md,
            "- `{}`: instadns answered {:.0}% of what the generator offered. {verdict}",
            mix.name(),
            share * 100.0,
        );
    }
    let saturated: Vec<String> = report
        .measurements
        .iter()
        .filter(|m| m.kind.is_peer() && m.answered_qps() < 0.98 * m.offered_qps())
        .map(|m| format!("{} / `{}`", m.kind.label(), m.mix.name()))
        .collect();
    let peers = report.measurements.iter().filter(|m| m.kind.is_peer()).count();
    let _ = writeln!(
        md,
        "- Peers that answered less than offered (each server, on its one CPU, is its own limit there): {} of {peers} \
         measurements ({}). \"At the same offered load\" means each server under the generator's full rate; the \
         ratios compare answers per second at that load.",
        saturated.len(),
        if saturated.len() == peers { "all".to_owned() } else { saturated.join(", ") },
    );
    let steal: f64 = report.measurements.iter().flat_map(|m| m.generator.iter().map(|g| g.steal)).sum();
    let _ = writeln!(md, "\nCPU time stolen by the hypervisor during the measured runs: {steal:.1} s.\n");
    let _ = writeln!(
        md,
        "## Charts\n\n![Answers per second](benchmarks/throughput.png)\n\n![CPU per answer](benchmarks/cpu.png)\n"
    );
    md.push_str(OTHER_BENCHMARKS);

    std::fs::write(out_dir.join("BENCHMARKS.md"), md).context("writing BENCHMARKS.md")?;
    charts_png(report, &charts)?;
    Ok(())
}

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const COLORS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

fn charts_png(report: &Report, dir: &Path) -> Result<()> {
    let font = std::fs::read(FONT).with_context(|| format!("{FONT} (Debian package fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    let series = |key: fn(&Measurement) -> f64| -> Vec<(&'static str, Vec<f64>)> {
        ServerKind::ALL
            .iter()
            .map(|k| {
                (k.label(), Mix::ALL.iter().map(|m| report.get(*k, *m).map(key).unwrap_or(0.0)).collect())
            })
            .collect()
    };
    grouped_bars(
        &dir.join("throughput.png"),
        "Answers per second, fast generator (median)",
        "thousand answers/s",
        &series(|m| m.answered_qps() / 1000.0),
        false,
    )?;
    grouped_bars(
        &dir.join("cpu.png"),
        "Server CPU per answer (median, log scale)",
        "µs per answer",
        &series(|m| m.cpu_per_answer() * 1e6),
        true,
    )
}

/// Grouped bars, one group per mix. With `log`, values are drawn on a log10 axis
/// (transformed here so one linear chart type serves both cases).
fn grouped_bars(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[(&str, Vec<f64>)],
    log: bool,
) -> Result<()> {
    let plot = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    let root = BitMapBackend::new(path, (1100, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot(&e))?;
    let groups = Mix::ALL.len();
    let scale = |v: f64| if log { v.log10() } else { v };
    let positive = || series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| *v > 0.0);
    let max = scale(positive().fold(1e-3, f64::max));
    let min = scale(positive().fold(f64::MAX, f64::min).min(1e9));
    let (y_low, y_high) = if log { (min.floor() - 0.3, max.ceil() + 0.1) } else { (0.0, max * 1.15) };
    let width = 0.8 / series.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..groups as f64, y_low..y_high)
        .map_err(|e| plot(&e))?;
    let x_label = |x: &f64| {
        let g = x.floor() as usize;
        if (x - g as f64 - 0.5).abs() < 1e-6 && g < groups {
            Mix::ALL[g].name().to_owned()
        } else {
            String::new()
        }
    };
    let y_label_fmt = |y: &f64| if log { format!("{}", 10f64.powf(*y)) } else { format!("{y}") };
    chart
        .configure_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label_fmt)
        .y_desc(y_label)
        .disable_x_mesh()
        .draw()
        .map_err(|e| plot(&e))?;
    for (i, (label, values)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(values.iter().enumerate().filter(|(_, v)| **v > 0.0).map(|(g, v)| {
                let x0 = g as f64 + 0.1 + i as f64 * width;
                Rectangle::new([(x0, y_low), (x0 + width * 0.9, scale(*v))], color.filled())
            }))
            .map_err(|e| plot(&e))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| plot(&e))?;
    root.present().map_err(|e| plot(&e))?;
    Ok(())
}

/// The suites that write their own files, linked from BENCHMARKS.md.
const OTHER_BENCHMARKS: &str = "## Other suites\n\n\
- Management writes per second through the HTTP API and RFC 2136 against the store's own rate, SQLite and PostgreSQL: [benchmarks/management.md](benchmarks/management.md) (`cargo xtask bench management`).\n\
- Zone transfer (AXFR) time of this zone from instadns against Knot DNS and NSD: [benchmarks/transfer.md](benchmarks/transfer.md) (`cargo xtask bench transfer`).\n\
- The XDP program's cost per answer kind against a floor program, at scale and under live traffic: `cargo xtask bench fastpath` (printed).\n";
