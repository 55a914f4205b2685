//! `cargo xtask bench transfer`: how long an AXFR of the bench zone takes (100,000
//! instances, 200,000 names made by rules; `--quick` 10,000), from instadns on SQLite
//! and, in the same run on the same rig, from Knot DNS and NSD serving the same data as
//! a zone file (the baselines). kdig in the client namespace transfers the zone over
//! TCP; the time is kdig's whole run, median of RUNS. Writes `benchmarks/transfer.md`.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use tests::netns::{SERVER_V4, VethRig, ns_exec};

use crate::{
    compare::sqlite_database,
    peers::{self, Data, ServerKind},
    platform::{Platform, ZONE},
};

/// Transfers per server; the median is reported.
const RUNS: usize = 5;

struct Row {
    server: ServerKind,
    median: Duration,
    fastest: Duration,
    bytes: u64,
    messages: u64,
    records: u64,
}

pub fn transfer(instances: u32, out: &Path) -> Result<()> {
    tests::require_root();
    let work = tempfile::tempdir()?;
    let platform = Platform { instances };
    let sqlite = work.path().join("instadns.sqlite");
    sqlite_database(&sqlite, &platform)?;
    let data = Data { db: sqlite.display().to_string(), zone_file: work.path().join(format!("{ZONE}.zone")) };
    std::fs::write(&data.zone_file, platform.zone_file())?;
    let rig = VethRig::new();
    let mut rows = Vec::new();
    for server in [ServerKind::Instadns, ServerKind::Knot, ServerKind::Nsd] {
        let running = peers::start(server, &rig, &work.path().join(server.key()), &data)
            .with_context(|| format!("starting {}", server.label()))?;
        let mut times = Vec::with_capacity(RUNS);
        let mut stats = (0, 0, 0);
        for _ in 0..RUNS {
            let started = Instant::now();
            let run = ns_exec(
                &rig.client_ns,
                "kdig",
                &[&format!("@{SERVER_V4}"), "+tcp", "+noall", "+stats", "+timeout=60", "AXFR", ZONE],
            );
            times.push(started.elapsed());
            let text = String::from_utf8_lossy(&run.stdout);
            stats = tests::dig::kdig_received(&text).with_context(|| {
                format!("{}: kdig AXFR: {text}{}", server.label(), String::from_utf8_lossy(&run.stderr))
            })?;
        }
        drop(running);
        times.sort();
        let (bytes, messages, records) = stats;
        rows.push(Row { server, median: times[RUNS / 2], fastest: times[0], bytes, messages, records });
    }
    // Every server sent the same zone: the rule-made names are records like the others.
    if rows.iter().any(|r| r.records != rows[0].records) {
        let counts: Vec<String> =
            rows.iter().map(|r| format!("{} {}", r.server.label(), r.records)).collect();
        bail!("the servers sent different zones: {}", counts.join(", "));
    }
    let best_peer = rows[1..].iter().map(|r| r.median).min().expect("peers");
    let mut text = format!(
        "# Zone transfer (AXFR) time\n\n\
         `cargo xtask bench transfer` (this file is written by it): kdig transfers the bench\n\
         zone `{ZONE}` ({instances} instances, {names} names: a service CNAME and a host A\n\
         each) over TCP from the client namespace of the veth rig, {RUNS} times per server;\n\
         median and fastest of kdig's whole run. instadns reads the zone from SQLite as it\n\
         sends it (names made by rules from the instances table, pages of 256 instances);\n\
         Knot DNS and NSD serve the same data from a zone file loaded into memory. The\n\
         ratio is the median against the faster peer's in the same run (above 1: slower).\n\n\
         | Server | Records | Messages | Bytes | Median s | Fastest s | vs best peer |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        names = 2 * instances
    );
    for r in &rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.2}x |\n",
            r.server.label(),
            r.records,
            r.messages,
            r.bytes,
            r.median.as_secs_f64(),
            r.fastest.as_secs_f64(),
            r.median.as_secs_f64() / best_peer.as_secs_f64()
        ));
    }
    print!("{text}");
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("transfer.md"), text)?;
    Ok(())
}
