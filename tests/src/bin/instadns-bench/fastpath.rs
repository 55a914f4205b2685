//! `cargo xtask bench fastpath`: the XDP program's cost per answer kind against a floor
//! program (BPF_PROG_TEST_RUN), at scale, and under real traffic.

use std::{sync::Arc, time::Instant};

use crate::util::{Sysctl, attached_prog_id, percentile, pin_to_cpu, prog_stats};
use hickory_proto::rr::{RData, Record, RecordType, rdata};
use instadns::{
    fastpath::rrl::RrlSettings,
    protocol::{CacheKey, Sections, Steered, encode},
};
use tests::{
    dns::{EdnsQuery, QueryBuilder},
    packet::Frame,
    testrun::{BENCH_FLOOR, BENCH_PASS, FastPathRig, XDP_PASS, XDP_TX},
};

/// One benchmarked case: a program, a frame and the action it must return.
struct Case {
    name: String,
    /// Index of the rig it runs on (see `fastpath`).
    rig: usize,
    program: &'static str,
    frame: Vec<u8>,
    expect: u32,
    samples: Vec<f64>,
}

/// Kernel-reported ns per run for every case, interleaved call by call (each call is
/// repeat=1: a repeated run would re-process the already rewritten frame), so drift on
/// the shared machine hits all cases alike.
fn measure(rigs: &[&FastPathRig], cases: &mut [Case], calls: usize) {
    for _ in 0..calls {
        for case in cases.iter_mut() {
            let (action, _, d) = rigs[case.rig].run_timed(case.program, &case.frame, 1);
            assert_eq!(action, case.expect, "{}: unexpected action", case.name);
            case.samples.push(d.as_nanos() as f64);
        }
    }
}

pub fn fastpath(calls: usize) {
    tests::require_root();
    pin_to_cpu(1);
    let rig = FastPathRig::with_capacity(65_536, 1024);
    // The same with response rate limiting on (the daemon's default), at a rate this
    // run never reaches: the cost of accounting every answer.
    let unreached = RrlSettings { rate: 1 << 30, ..RrlSettings::default() };
    let limited = FastPathRig::with_rate_limit(65_536, 1024, "", unreached);
    let q = |name: &str, t| QueryBuilder::new(name, t);
    let edns = EdnsQuery::default();
    type Kind = (&'static str, QueryBuilder, fn(Vec<u8>) -> Frame);
    let kinds: Vec<Kind> = vec![
        ("hit: A host name, IPv4", q("blog.alice.example.org", RecordType::A), Frame::v4),
        ("hit: AAAA host name, IPv6", q("123456.example.org", RecordType::AAAA), Frame::v6),
        ("hit: CNAME", q("ws-123456.apps.example.com", RecordType::CNAME), Frame::v4),
        ("hit: A via CNAME chain", q("ws-123456.apps.example.com", RecordType::A), Frame::v4),
        (
            "hit: A via CNAME, EDNS, IPv6",
            q("ws-123456.apps.example.com", RecordType::A).edns(edns),
            Frame::v6,
        ),
        ("hit: NXDOMAIN + SOA", q("nope.example.org", RecordType::A), Frame::v4),
        ("hit: NODATA + SOA (ENT)", q("apps.example.com", RecordType::A), Frame::v4),
    ];
    let case = |name: &str, program, frame, expect| Case {
        name: name.to_owned(),
        rig: 0,
        program,
        frame,
        expect,
        samples: Vec::new(),
    };
    let floor_frame = Frame::v4(q("blog.alice.example.org", RecordType::A).bytes()).build();
    let mut cases = vec![
        case("floor: swap MACs, XDP_TX", BENCH_FLOOR, floor_frame.clone(), XDP_TX),
        case("empty: XDP_PASS (call overhead)", BENCH_PASS, floor_frame, XDP_PASS),
    ];
    for (name, query, frame) in &kinds {
        rig.userspace(&query.bytes()).expect("userspace answers and installs");
        cases.push(case(name, "instadns", frame(query.bytes()).build(), XDP_TX));
    }
    for (name, query, frame) in &kinds[..1] {
        limited.userspace(&query.bytes()).expect("userspace answers and installs");
        let frame = frame(query.bytes()).build();
        cases.push(Case { rig: 1, ..case(&format!("{name}, RRL on"), "instadns", frame, XDP_TX) });
    }
    let miss = Frame::v4(q("ws-234567.apps.example.com", RecordType::A).bytes()).build();
    cases.push(case("miss (XDP_PASS)", "instadns", miss, XDP_PASS));
    let mut other_port = Frame::v4(vec![0; 48]);
    other_port.dport = 123;
    cases.push(case("not DNS (XDP_PASS)", "instadns", other_port.build(), XDP_PASS));

    measure(&[&rig, &limited], &mut cases, calls);
    let floor = percentile(&cases[0].samples, 0.5);
    println!(
        "# fast path: kernel-reported ns per run (BPF_PROG_TEST_RUN, repeat=1, {calls} calls per case, interleaved, pinned to CPU 1)"
    );
    println!("| packet | median ns | p90 ns | ratio to floor |");
    println!("| --- | ---: | ---: | ---: |");
    for c in &cases {
        let (m, p) = (percentile(&c.samples, 0.5), percentile(&c.samples, 0.9));
        println!("| {} | {m:.0} | {p:.0} | {:.2} |", c.name, m / floor);
    }
}

/// Resident memory of this process, from /proc/self/status.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            })
        })
        .flatten()
        .unwrap_or(0)
        * 1024
}

/// A platform-shaped service name of fixed width (so all share one answer slot).
fn service_name(i: usize) -> String {
    format!("ws-{i:08}.apps.example.com")
}

/// Hit cost with a few vs many names in the map: each size gets its own program and
/// maps, filled through the daemon's cache path; 1,000 distinct names are probed so the
/// hash table's cache misses count.
pub fn scale(sizes: &[usize]) {
    tests::require_root();
    pin_to_cpu(1);
    let probes = 1_000;
    println!();
    println!(
        "# fast path at scale: hit cost with few and many names (kernel ns per run, {probes} distinct names probed)"
    );
    println!(
        "| names | name map capacity | kernel bytes (name map) | bytes per name | userspace bytes per name | fill rate (names/s) | hit median ns | ratio to floor |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &n in sizes {
        // LRU hash maps evict from per-CPU free lists before they are full: headroom.
        let rig = FastPathRig::with_capacity((n + n / 4 + 4096) as u32, 1024);
        let qname = tests::dns::name(&(service_name(0) + "."));
        let target = tests::dns::name("ws-mt1.example.com.");
        let sections = Sections {
            answers: vec![
                Record::from_rdata(qname.clone(), 300, RData::CNAME(rdata::CNAME(target.clone()))),
                Record::from_rdata(target, 300, RData::A(rdata::A::new(192, 0, 2, 11))),
            ],
            ..Default::default()
        };
        let answer =
            Arc::new(Steered::fixed(Arc::new(encode(&qname, 1, 0, true, &sections, None).expect("encode"))));
        let cache = rig.handler.cache();
        let rss_before = rss_bytes();
        let started = Instant::now();
        for i in 0..n {
            let wire = tests::dns::wire_name(&service_name(i));
            cache.insert(CacheKey::new(&wire, 1), answer.clone(), 86_400, Vec::new(), cache.epoch());
        }
        let fill_rate = n as f64 / started.elapsed().as_secs_f64();
        let user_per_name = rss_bytes().saturating_sub(rss_before) as f64 / n as f64;
        let usage = cache.map_usage().expect("maps");
        let names0 = &usage[0];
        let floor_frame = Frame::v4(QueryBuilder::new(&service_name(0), RecordType::A).bytes()).build();
        let step = (n / probes).max(1);
        let frames: Vec<Vec<u8>> = (0..probes.min(n))
            .map(|p| Frame::v4(QueryBuilder::new(&service_name(p * step), RecordType::A).bytes()).build())
            .collect();
        // The floor runs right before each probe, so both see the same cache state.
        let (mut floors, mut hits) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            for frame in &frames {
                let (action, _, d) = rig.run_timed(BENCH_FLOOR, &floor_frame, 1);
                assert_eq!(action, XDP_TX);
                floors.push(d.as_nanos() as f64);
                let (action, _, d) = rig.run_timed("instadns", frame, 1);
                assert_eq!(action, XDP_TX, "every probed name is in the map");
                hits.push(d.as_nanos() as f64);
            }
        }
        let floor = percentile(&floors, 0.5);
        let median = percentile(&hits, 0.5);
        println!(
            "| {n} | {} | {} | {:.0} | {user_per_name:.0} | {fill_rate:.0} | {median:.0} | {:.2} |",
            names0.max_entries,
            names0.memory_bytes,
            names0.memory_bytes as f64 / names0.max_entries as f64,
            median / floor
        );
    }
}

/// The program under real traffic: the daemon with native XDP on the veth rig, dnsperf
/// in the client namespace sending the demo's hot names; the kernel's own accounting
/// gives the program's cost per packet.
pub fn live(seconds: u32) {
    use tests::{
        netns::SERVER_V4,
        server::{Deployment, dig},
    };
    tests::require_root();
    // One generator network asks the same names: unlimited, as the peers are.
    let d = Deployment::start(&["--xdp-mode", "native", "--rrl-rate", "0"]);
    let hot = [
        ("ws-123456.apps.example.com", "A"),
        ("ws-234567.apps.example.com", "A"),
        ("blog.alice.example.org", "A"),
        ("blog.alice.example.org", "AAAA"),
        ("123456.example.org", "A"),
        ("shop.bob.example.org", "AAAA"),
        ("nope.example.org", "A"),
        ("apps.example.com", "A"),
    ];
    let at = format!("@{SERVER_V4}");
    for (name, t) in hot {
        dig(&d.rig, &[&at, name, t]);
    }
    let queries = d.dir.path().join("queries.txt");
    std::fs::write(&queries, hot.iter().map(|(n, t)| format!("{n} {t}\n")).collect::<String>()).unwrap();
    let _stats = Sysctl::set("kernel.bpf_stats_enabled", "1");
    let id = attached_prog_id(&d.rig.server_ns, &d.rig.server_if);
    let (t0, c0) = prog_stats(id);
    let hits0 = d.server.xdp("hit");
    let out = tests::netns::ns_exec(
        &d.rig.client_ns,
        "dnsperf",
        &[
            "-s",
            &SERVER_V4.to_string(),
            "-d",
            queries.to_str().unwrap(),
            "-l",
            &seconds.to_string(),
            "-c",
            "4",
            "-q",
            "2000",
            "-S",
            "0",
        ],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let (t1, c1) = prog_stats(id);
    let hits = d.server.xdp("hit") - hits0;
    let qps = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Queries per second:"))
        .map(str::trim)
        .unwrap_or("?");
    let lost =
        report.lines().find_map(|l| l.trim().strip_prefix("Queries lost:")).map(str::trim).unwrap_or("?");
    let runs = c1 - c0;
    println!();
    println!(
        "# fast path under real traffic (veth rig, native XDP, dnsperf {seconds} s, kernel.bpf_stats_enabled=1)"
    );
    println!(
        "| program runs | of which hits | ns per run (run_time_ns / run_cnt) | dnsperf queries/s | dnsperf lost |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!("| {runs} | {hits} | {:.0} | {qps} | {lost} |", (t1 - t0) as f64 / runs.max(1) as f64);
}
