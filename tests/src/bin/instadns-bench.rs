//! `cargo xtask bench ...`: benchmarks that report ratios against baselines measured in
//! the same run (the machine is shared and noisy; absolute numbers drift).

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

/// Pins the calling thread to one CPU: BPF_PROG_TEST_RUN runs on the caller's CPU, and
/// migrations between runs add noise.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// One benchmarked case: a program, a frame and the action it must return.
struct Case {
    name: String,
    program: &'static str,
    frame: Vec<u8>,
    expect: u32,
    samples: Vec<f64>,
}

fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q) as usize]
}

/// Kernel-reported ns per run for every case, interleaved call by call (each call is
/// repeat=1: a repeated run would re-process the already rewritten frame), so drift on
/// the shared machine hits all cases alike.
fn measure(rig: &FastPathRig, cases: &mut [Case], calls: usize) {
    for _ in 0..calls {
        for case in cases.iter_mut() {
            let (action, _, d) = rig.run_timed(case.program, &case.frame, 1);
            assert_eq!(action, case.expect, "{}: unexpected action", case.name);
            case.samples.push(d.as_nanos() as f64);
        }
    }
}

fn fastpath(calls: usize) {
    tests::require_root();
    pin_to_cpu(1);
    let rig = FastPathRig::with_capacity(65_536, 1024);
    let q = |name: &str, t| QueryBuilder::new(name, t);
    let edns = EdnsQuery::default();
    let kinds: Vec<(&str, QueryBuilder, fn(Vec<u8>) -> Frame)> = vec![
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
        program,
        frame,
        expect,
        samples: Vec::new(),
    };
    let floor_frame = Frame::v4(q("blog.alice.example.org", RecordType::A).bytes()).build();
    let mut cases = vec![
        case("floor: swap MACs, XDP_TX", "instadns_floor", floor_frame.clone(), XDP_TX),
        case("empty: XDP_PASS (call overhead)", "instadns_pass", floor_frame, XDP_PASS),
    ];
    for (name, query, frame) in &kinds {
        rig.userspace(&query.bytes()).expect("userspace answers and installs");
        cases.push(case(name, "instadns", frame(query.bytes()).build(), XDP_TX));
    }
    let miss = Frame::v4(q("ws-234567.apps.example.com", RecordType::A).bytes()).build();
    cases.push(case("miss (XDP_PASS)", "instadns", miss, XDP_PASS));
    let mut other_port = Frame::v4(vec![0; 48]);
    other_port.dport = 123;
    cases.push(case("not DNS (XDP_PASS)", "instadns", other_port.build(), XDP_PASS));

    measure(&rig, &mut cases, calls);
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
