//! Under a random-subdomain flood (issue: "under attack"): dnsperf sends a stream of
//! names that do not exist, in every shape a flood uses (random 16-letter labels, digit
//! labels matching the `{id}` rule, `_acme-challenge.` names, `{name}.{owner}` shapes of
//! real owners) while a steady load asks the hot set. The flood is answered NXDOMAIN by
//! XDP, never reaching userspace or the database; the hot set keeps being answered, every
//! answer right; the cache does not grow. In a zone whose instances live in the
//! platform's own database (`--instance-sql`), the flood's misses reach that database at
//! most at the configured budget.
//!
//! Both floods come from one client network, which response rate limiting (on by
//! default) would mostly drop: these tests turn it off to measure what answers a flood;
//! `rate_limit` measures what limits one.

use std::{io::Write as _, net::SocketAddr, time::Instant};

use hickory_proto::{op::Message, rr::RecordType};
use tests::{
    dns::QueryBuilder,
    load::SteadyLoad,
    netns::{SERVER_V4, ns_exec},
    postgres::PgServer,
    server::{Deployment, udp_exchange},
};

/// Distinct names of the flood.
const FLOOD: usize = 100_000;

fn server() -> SocketAddr {
    SocketAddr::new(SERVER_V4.into(), 53)
}

/// A pseudo-random 16-letter label (a splitmix step per name: reproducible).
fn label(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    (0..16)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

/// The flood's queries in dnsperf's format: a quarter of each shape.
fn flood_file(dir: &std::path::Path, count: usize, digits_only: bool) -> std::path::PathBuf {
    let path = dir.join("flood.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..count as u64 {
        let line = match (digits_only, i % 4) {
            (true, _) | (false, 1) => format!("{}.example.org A", 50_000_000 + i),
            (false, 0) => format!("{}.example.org A", label(i)),
            (false, 2) => format!("_acme-challenge.{}.example.org TXT", label(i)),
            _ => format!("{}.{}.example.org A", label(i), if i % 8 == 3 { "alice" } else { "bob" }),
        };
        writeln!(out, "{line}").unwrap();
    }
    path
}

/// dnsperf's counts: (sent, completed, NXDOMAIN, SERVFAIL).
fn dnsperf(d: &Deployment, file: &std::path::Path) -> (u64, u64, u64, u64) {
    let out = ns_exec(
        &d.rig.client_ns,
        "dnsperf",
        &[
            "-s",
            &SERVER_V4.to_string(),
            "-d",
            file.to_str().unwrap(),
            "-n",
            "1",
            "-c",
            "4",
            "-q",
            "200",
            "-t",
            "2",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let rcode = |name: &str| -> u64 {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .find(|w| w[0].trim_end_matches(',') == name)
            .and_then(|w| w[1].trim_end_matches(',').parse().ok())
            .unwrap_or(0)
    };
    let counts =
        (number("Queries sent:"), number("Queries completed:"), rcode("NXDOMAIN"), rcode("SERVFAIL"));
    assert!(counts.0 > 0, "dnsperf ran:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    counts
}

fn hot_queries() -> Vec<Vec<u8>> {
    [
        ("ws-123456.apps.example.com", RecordType::A),
        ("blog.alice.example.org", RecordType::A),
        ("shop.bob.example.org", RecordType::AAAA),
        ("123456.example.org", RecordType::A),
        ("example.org", RecordType::SOA),
    ]
    .iter()
    .map(|(n, t)| QueryBuilder::new(n, *t).bytes())
    .collect()
}

/// Asks each query until XDP answers it; returns the answers.
fn warm(d: &Deployment, queries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    queries
        .iter()
        .map(|q| {
            tests::wait::eventually("the hot set is in the maps", std::time::Duration::from_secs(10), || {
                let hits = d.server.xdp("hit");
                udp_exchange(&d.rig, server(), q);
                d.server.xdp("hit") == hits + 1
            });
            udp_exchange(&d.rig, server(), q)
        })
        .collect()
}

#[test]
fn a_random_subdomain_flood_is_answered_by_xdp_and_never_reaches_the_database() {
    let d = Deployment::start(&["--xdp-mode", "native", "--rrl-rate", "0"]);
    tests::wait::eventually(
        "the fast path answers NXDOMAIN itself",
        std::time::Duration::from_secs(10),
        || d.server.metrics().get("instadns_negative_answers_trusted").copied() == Some(1.0),
    );
    let hot = hot_queries();
    let expected = warm(&d, &hot);
    let file = flood_file(d.dir.path(), FLOOD, false);
    let before = d.server.metrics();
    let load = SteadyLoad::start(&d.rig.client_ns, server(), hot, expected);
    let (sent, completed, nxdomain, servfail) = dnsperf(&d, &file);
    let report = load.stop();
    let after = d.server.metrics();
    let delta = |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    eprintln!(
        "flood: {sent} sent, {completed} answered, {nxdomain} NXDOMAIN; hot set: {} answered beside it",
        report.answered
    );
    assert_eq!(sent, FLOOD as u64);
    assert!(completed as f64 >= 0.99 * sent as f64, "{completed} of {sent} answered");
    assert_eq!((nxdomain, servfail), (completed, 0), "every flood name is NXDOMAIN");
    let by_xdp = delta("instadns_xdp_packets_total{outcome=\"hit_nxdomain\"}");
    assert!(by_xdp >= completed as f64, "answered by XDP: {by_xdp} of {completed}");
    assert!(delta("instadns_queries_total{transport=\"udp\"}") < 10.0, "userspace saw (almost) none of it");
    assert!(delta("instadns_db_query_seconds_count") < 10.0, "the database saw none of it");
    assert!(delta("instadns_cache_entries").abs() < 10.0, "the cache did not grow");
    assert!(report.answered > 100, "the hot load ran: {report:?}");
    assert!(report.lost.is_empty() && report.wrong.is_empty(), "hot answers lost or wrong: {report:?}");
    let hot_hits = delta("instadns_xdp_packets_total{outcome=\"hit\"}") - by_xdp;
    assert!(hot_hits >= report.answered as f64, "the hot set was answered by XDP: {hot_hits}");
}

#[test]
fn a_flood_in_a_zone_of_the_platforms_database_reaches_it_at_most_at_the_budget() {
    let platform = PgServer::start();
    platform.psql("CREATE TABLE apps (id BIGINT PRIMARY KEY, cluster TEXT NOT NULL); INSERT INTO apps VALUES (123456, 'mt1');");
    const BUDGET: u32 = 50;
    let budget = BUDGET.to_string();
    let d = Deployment::start(&[
        "--xdp-mode",
        "native",
        "--instance-db",
        &platform.url,
        "--instance-sql",
        "SELECT cluster FROM apps WHERE id = $1",
        "--lookups-per-zone",
        &budget,
        "--rrl-rate",
        "0",
    ]);
    let enumerable = d.server.metrics();
    assert_eq!(enumerable.get("instadns_zone_enumerable{zone=\"example.org.\"}"), Some(&0.0));
    let real = QueryBuilder::new("123456.example.org", RecordType::A).bytes();
    let answer = Message::from_vec(&udp_exchange(&d.rig, server(), &real)).unwrap();
    assert_eq!(answer.answers.len(), 1, "the platform's instance is answered: {answer:?}");

    let file = flood_file(d.dir.path(), 20_000, true);
    let before = d.server.metrics();
    let started = Instant::now();
    let (sent, completed, nxdomain, servfail) = dnsperf(&d, &file);
    let elapsed = started.elapsed().as_secs_f64();
    let after = d.server.metrics();
    let delta = |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    let lookups = delta("instadns_instance_db_lookups_total");
    eprintln!(
        "flood of the platform's zone: {sent} sent, {completed} answered ({nxdomain} NXDOMAIN, {servfail} SERVFAIL) in {elapsed:.2} s; {lookups} lookups"
    );
    assert!(
        completed as f64 >= 0.99 * sent as f64,
        "answered (NXDOMAIN within the budget, SERVFAIL over it)"
    );
    // The budget: a burst of BUDGET misses, then BUDGET per second (10% for clock
    // edges); each miss within it cost the platform's database two lookups (the {id}
    // rule, then the empty non-terminal check of `_moved.{id}`).
    let allowed = (BUDGET as f64 * (elapsed + 1.0)) * 1.1;
    assert!((nxdomain as f64) <= allowed, "{nxdomain} misses resolved in {elapsed:.2} s, budget {BUDGET}/s");
    assert!(lookups <= 2.0 * nxdomain as f64 + 2.0, "{lookups} lookups for {nxdomain} misses");
    assert!(lookups >= 1.0 && delta("instadns_lookups_over_budget_total") > 0.0);
    assert!(servfail > 0 && nxdomain > 0);
    // The real instance is still answered from the cache or XDP.
    let answer = Message::from_vec(&udp_exchange(&d.rig, server(), &real)).unwrap();
    assert_eq!(answer.answers.len(), 1, "{answer:?}");
}
