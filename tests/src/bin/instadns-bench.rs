//! `cargo xtask bench ...`: benchmarks that report ratios against baselines measured in
//! the same run (the machine is shared and noisy; absolute numbers drift).

use std::time::Duration;

use hickory_proto::rr::RecordType;
use tests::{
    dns::{EdnsQuery, QueryBuilder},
    packet::Frame,
    testrun::{FastPathRig, XDP_PASS, XDP_TX},
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    match args.first().map(String::as_str) {
        Some("fastpath") => fastpath(if quick { 2_000 } else { 20_000 }),
        _ => {
            eprintln!("usage: instadns-bench fastpath [--quick]");
            std::process::exit(2);
        }
    }
}

/// Kernel-reported time per run of one program on one frame: the median and 90th
/// percentile of `calls` single BPF_PROG_TEST_RUN calls (repeat=1: a repeated run
/// would re-process the already rewritten frame).
fn time_runs(
    rig: &FastPathRig,
    program: &str,
    frame: &[u8],
    expect: u32,
    calls: usize,
) -> (f64, f64) {
    let mut samples: Vec<Duration> = (0..calls)
        .map(|_| {
            let (action, _, d) = rig.run_timed(program, frame, 1);
            assert_eq!(action, expect, "{program}: unexpected action");
            d
        })
        .collect();
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_nanos() as f64;
    (pick(0.5), pick(0.9))
}

fn fastpath(calls: usize) {
    tests::require_root();
    let rig = FastPathRig::with_capacity(65_536, 1024);
    let q = |name: &str, t| QueryBuilder::new(name, t);
    let edns = EdnsQuery::default();
    let kinds: Vec<(&str, QueryBuilder, fn(Vec<u8>) -> Frame)> = vec![
        (
            "hit: A host name, IPv4",
            q("blog.alice.example.org", RecordType::A),
            Frame::v4,
        ),
        (
            "hit: AAAA host name, IPv6",
            q("123456.example.org", RecordType::AAAA),
            Frame::v6,
        ),
        (
            "hit: CNAME",
            q("ws-123456.apps.example.com", RecordType::CNAME),
            Frame::v4,
        ),
        (
            "hit: A via CNAME chain",
            q("ws-123456.apps.example.com", RecordType::A),
            Frame::v4,
        ),
        (
            "hit: A via CNAME, EDNS, IPv6",
            q("ws-123456.apps.example.com", RecordType::A).edns(edns),
            Frame::v6,
        ),
        (
            "hit: NXDOMAIN + SOA",
            q("nope.example.org", RecordType::A),
            Frame::v4,
        ),
        (
            "hit: NODATA + SOA (ENT)",
            q("apps.example.com", RecordType::A),
            Frame::v4,
        ),
    ];
    for (_, query, _) in &kinds {
        rig.userspace(&query.bytes())
            .expect("userspace answers and installs");
    }
    let floor_frame = Frame::v4(q("blog.alice.example.org", RecordType::A).bytes()).build();
    // Interleave the measurements in rounds so drift on the shared machine hits all alike.
    let rounds = 5;
    let per_round = calls / rounds;
    let mut rows: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut record = |name: &str, r: (f64, f64)| match rows.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => v.push(r),
        None => rows.push((name.to_owned(), vec![r])),
    };
    for _ in 0..rounds {
        record(
            "floor: swap MACs, XDP_TX",
            time_runs(&rig, "instadns_floor", &floor_frame, XDP_TX, per_round),
        );
        record(
            "empty: XDP_PASS (call overhead)",
            time_runs(&rig, "instadns_pass", &floor_frame, XDP_PASS, per_round),
        );
        for (name, query, frame) in &kinds {
            let f = frame(query.bytes()).build();
            record(name, time_runs(&rig, "instadns", &f, XDP_TX, per_round));
        }
        let miss = Frame::v4(q("ws-234567.apps.example.com", RecordType::A).bytes()).build();
        record(
            "miss (XDP_PASS)",
            time_runs(&rig, "instadns", &miss, XDP_PASS, per_round),
        );
        let mut other_port = Frame::v4(vec![0; 48]);
        other_port.dport = 123;
        record(
            "not DNS (XDP_PASS)",
            time_runs(&rig, "instadns", &other_port.build(), XDP_PASS, per_round),
        );
    }
    let median_of = |v: &[(f64, f64)], i: usize| {
        let mut x: Vec<f64> = v.iter().map(|r| if i == 0 { r.0 } else { r.1 }).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let floor = median_of(&rows[0].1, 0);
    println!(
        "# fast path: kernel-reported ns per run (BPF_PROG_TEST_RUN, repeat=1, {calls} calls each, {rounds} interleaved rounds)"
    );
    println!("| packet | median ns | p90 ns | ratio to floor |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, v) in &rows {
        let (m, p) = (median_of(v, 0), median_of(v, 1));
        println!("| {name} | {m:.0} | {p:.0} | {:.2} |", m / floor);
    }
}
