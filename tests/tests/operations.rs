//! Operations on the real XDP path: restarts and upgrades that lose no hit, the pinned
//! fast path outliving the daemon until `instadns detach`, metrics that count what was
//! sent (and that promtool accepts), `instadns status`, SIGHUP reloads of zones and
//! interfaces, and re-attaching when an interface's queue count changes.
//!
//! Gaps are printed, not asserted: timing assertions on a shared machine would be noise.

use std::{
    collections::HashMap,
    io::Write as _,
    net::{SocketAddr, UdpSocket},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hickory_proto::{op::Message, rr::RecordType};
use tests::{
    dns::{EdnsQuery, QueryBuilder},
    load::SteadyLoad,
    netns::{VethRig, in_netns, ns_exec, sh},
    server::{
        Deployment, METRICS_ADDR, ServerProcess, demo_db, instadns_bin, poll_until, server_v4 as server,
        test_pin_dir, udp_exchange,
    },
    wait,
};

/// The hot set of these tests: positive, negative and apex answers from the demo data.
fn hot_queries() -> Vec<Vec<u8>> {
    [
        ("ws-123456.apps.example.com", RecordType::A),
        ("ws-234567.apps.example.com", RecordType::A),
        ("blog.alice.example.org", RecordType::A),
        ("blog.alice.example.org", RecordType::AAAA),
        ("123456.example.org", RecordType::A),
        ("shop.bob.example.org", RecordType::AAAA),
        ("ws-mt1.example.com", RecordType::A),
        ("example.com", RecordType::SOA),
        ("example.org", RecordType::NS),
        ("no-such-name.example.org", RecordType::A),
    ]
    .iter()
    .map(|(name, qtype)| QueryBuilder::new(name, *qtype).bytes())
    .collect()
}

/// Sends each query until XDP answers it (the hit counter moves); returns the responses.
fn warm(server_process: &ServerProcess, rig: &VethRig, queries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    queries
        .iter()
        .map(|q| {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let hits = server_process.xdp("hit");
                let response = udp_exchange(rig, server(), q);
                if server_process.xdp("hit") == hits + 1 {
                    return response;
                }
                assert!(Instant::now() < deadline, "query {q:?} never became an XDP hit");
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .collect()
}

/// A query only a running daemon answers: EDNS version 1, which XDP passes up and
/// userspace answers with BADVERS (RFC 6891 section 6.1.3). (A Client Subnet option no
/// longer does: XDP answers those.) Each call asks a new name.
fn fresh_miss(n: u32) -> Vec<u8> {
    let version_1 = EdnsQuery { version: 1, ..EdnsQuery::default() };
    QueryBuilder::new(&format!("restart-probe-{n}.example.org"), RecordType::A).edns(version_1).bytes()
}

/// Waits (up to 10 s) until `done`; panics naming `what` otherwise.
fn eventually(what: &str, done: impl FnMut() -> bool) {
    wait::eventually(what, Duration::from_secs(10), done);
}

/// Whether `iface` in namespace `ns` has an XDP program attached.
fn has_xdp(ns: &str, iface: &str) -> bool {
    let out = ns_exec(ns, "ip", &["-d", "link", "show", "dev", iface]);
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

/// The daemon of the restart tests: their steady load is one client asking ten names as
/// fast as they are answered (thousands a second each), standing for many clients;
/// response rate limiting, on by default, would rightly limit it.
const UNLIMITED: [&str; 4] = ["--xdp-mode", "native", "--rrl-rate", "0"];

/// Restarts the daemon (SIGKILL, or SIGTERM when `graceful`) with `args` while a steady
/// load of hot queries runs; asserts no answer was lost or wrong, and returns the time from
/// the restart until a miss was answered again.
fn restart_under_load(d: &mut Deployment, args: &[String], graceful: bool) -> (Duration, u64) {
    let queries = hot_queries();
    let expected = warm(&d.server, &d.rig, &queries);
    let load = SteadyLoad::start(&d.rig.client_ns, server(), queries, expected);
    std::thread::sleep(Duration::from_millis(300));
    if graceful {
        assert!(d.server.terminate(), "SIGTERM ends the daemon cleanly");
    } else {
        d.server.kill_hard();
    }
    // With no daemon, a miss goes unanswered: the load below is the kernel's alone.
    let query = fresh_miss(0);
    let down = poll_until(&d.rig, server(), &query, Duration::from_millis(500), |_| true);
    assert_eq!(down, None, "no daemon runs: a miss cannot be answered");
    std::thread::sleep(Duration::from_millis(500));

    let restarted = Instant::now();
    let gap = std::thread::scope(|s| {
        let rig = &d.rig;
        let probe = s.spawn(move || {
            let query = fresh_miss(1);
            // Any response: only userspace answers this query (BADVERS).
            poll_until(rig, server(), &query, Duration::from_secs(30), |r| r.len() >= 12 && r[2] & 0x80 != 0)
        });
        d.server.restart(&d.rig, args);
        probe.join().expect("probe thread")
    });
    let gap = gap.expect("misses are answered again after the restart");
    std::thread::sleep(Duration::from_millis(500));
    let report = load.stop();
    assert!(report.sent > 200, "the load ran: {report:?}");
    assert!(report.lost.is_empty(), "answers lost at {:?} (restart at {:?})", report.lost, restarted);
    assert!(report.wrong.is_empty(), "wrong answers for queries {:?}", report.wrong);
    (gap, report.answered)
}

#[test]
fn sigkill_and_restart_lose_no_hit() {
    let mut d = Deployment::start(&UNLIMITED);
    let db = d.db();
    let hits_before = d.server.xdp("hit");
    let args = ServerProcess::args(&d.rig, &db, &UNLIMITED);
    let (gap, answered) = restart_under_load(&mut d, &args, false);
    eprintln!(
        "SIGKILL restart: {answered} hot answers, none lost; misses answered again {gap:?} after the restart"
    );
    let log = d.server.log_text();
    assert!(log.contains("adopted the pinned maps"), "the new daemon adopted the maps:\n{log}");
    assert!(log.contains("took over the pinned link"), "the new daemon took over the link:\n{log}");
    // Every hot answer came from XDP, across both daemons (the counters are pinned too);
    // the warm-up added one hit per query.
    let hits = d.server.xdp("hit") - hits_before;
    assert_eq!(hits, answered + hot_queries().len() as u64, "every hot answer was an XDP hit");
}

#[test]
fn upgrade_to_another_map_layout_loses_no_hit() {
    let mut d = Deployment::start(&UNLIMITED);
    let db = d.db();
    let layouts = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("layout-"))
            .collect()
    };
    let before = layouts(&d.server.pin_dir);
    assert_eq!(before.len(), 1);
    // Other map sizes are another layout: new maps, warmed from the old ones, swapped in.
    let args = ServerProcess::args(&d.rig, &db, &[&UNLIMITED[..], &["--map-entries", "300000"]].concat());
    let (gap, answered) = restart_under_load(&mut d, &args, true);
    eprintln!(
        "layout upgrade: {answered} hot answers, none lost; misses answered again {gap:?} after the restart"
    );
    let after = layouts(&d.server.pin_dir);
    assert_eq!(after.len(), 1, "the old layout was removed: {after:?}");
    assert_ne!(after, before);
    assert!(d.server.log_text().contains("warming new maps from the previous layout"));
    // The new maps hold the hot set: its next queries are XDP hits without a miss.
    let misses = d.server.xdp("miss");
    for q in hot_queries() {
        udp_exchange(&d.rig, server(), &q);
    }
    assert_eq!(d.server.xdp("miss"), misses, "the warmed maps answer the hot set");
}

/// Sums the samples of `name` whose labels contain `label`.
fn sample(metrics: &HashMap<String, f64>, name: &str, label: &str) -> u64 {
    metrics
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name) && k.contains(label))
        .map(|(_, v)| *v as u64)
        .sum()
}

#[test]
fn metrics_count_the_queries_sent_and_promtool_accepts_them() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let hot = QueryBuilder::new("ws-123456.apps.example.com", RecordType::A).bytes();
    // One miss, installed, then 99 hits.
    udp_exchange(&d.rig, server(), &hot);
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.server.metrics().get("instadns_map_names").copied().unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "the answer was never installed");
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..99 {
        udp_exchange(&d.rig, server(), &hot);
    }
    // Five distinct names that do not exist (NXDOMAIN from XDP, once it trusts the
    // known names), two misses (names that exist, never asked), three TCP queries, one
    // AAAA.
    eventually("the fast path answers NXDOMAIN itself", || {
        d.server.metrics().get("instadns_negative_answers_trusted").copied() == Some(1.0)
    });
    let before = d.server.metrics();
    for n in 0..5 {
        udp_exchange(
            &d.rig,
            server(),
            &QueryBuilder::new(&format!("nope-{n}.example.org"), RecordType::A).bytes(),
        );
    }
    for name in ["shop.bob.example.org", "234567.example.org"] {
        udp_exchange(&d.rig, server(), &QueryBuilder::new(name, RecordType::A).bytes());
    }
    for _ in 0..3 {
        let out = tests::server::dig(&d.rig, &["+tcp", "@198.18.0.1", "blog.alice.example.org", "A"]);
        assert!(out.contains("192.0.2.1"), "{out}");
    }
    udp_exchange(&d.rig, server(), &QueryBuilder::new("blog.alice.example.org", RecordType::AAAA).bytes());

    let m = d.server.metrics();
    let delta = |name: &str, label: &str| sample(&m, name, label) - sample(&before, name, label);
    assert_eq!(delta("instadns_xdp_packets_total", "\"hit_nxdomain\""), 5);
    assert_eq!(delta("instadns_xdp_packets_total", "\"hit\""), 5, "the NXDOMAINs were XDP hits");
    assert_eq!(delta("instadns_xdp_packets_total", "\"miss\""), 3);
    assert_eq!(delta("instadns_queries_total", "\"udp\""), 3);
    assert_eq!(delta("instadns_queries_total", "\"tcp\""), 3);
    assert_eq!(delta("instadns_responses_total", "\"NXDOMAIN\""), 0, "no NXDOMAIN came from userspace");
    assert_eq!(delta("instadns_responses_total", "\"NOERROR\""), 6);
    assert_eq!(delta("instadns_queries_by_type_total", "\"AAAA\""), 1);
    assert!(sample(&m, "instadns_known_names", "") > 10);
    assert_eq!(sample(&m, "instadns_xdp_attached", &d.rig.server_if), 1);
    assert_eq!(sample(&m, "instadns_xdp_rx_queues", &d.rig.server_if), 1);
    assert!(sample(&m, "instadns_db_query_seconds_count", "") > 0);
    assert!(sample(&m, "instadns_map_capacity", "") > 0);
    // The per-CPU counters add up to the totals, outcome by outcome.
    for outcome in ["hit", "miss", "hit_nxdomain", "passed_not_dns"] {
        let per_cpu: f64 = m
            .iter()
            .filter(|(k, _)| {
                k.starts_with("instadns_xdp_cpu_packets_total{")
                    && k.ends_with(&format!("outcome=\"{outcome}\"}}"))
            })
            .map(|(_, v)| v)
            .sum();
        let total = m.get(&format!("instadns_xdp_packets_total{{outcome=\"{outcome}\"}}")).copied();
        assert_eq!(Some(per_cpu), total, "{outcome}: the CPUs' counts and the total");
    }
    // One series per possible CPU ("0-1" in /sys/devices/system/cpu/possible is two).
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("possible CPUs");
    let possible: usize = possible
        .trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum();
    let hit_series: Vec<f64> = m
        .iter()
        .filter(|(k, _)| k.starts_with("instadns_xdp_cpu_packets_total{") && k.ends_with("\"hit\"}"))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(hit_series.len(), possible, "a hit counter for each possible CPU");
    assert!(hit_series.iter().any(|v| *v > 0.0), "the hits were counted on some CPU");

    let body = d.server.http_get("/metrics").expect("metrics");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus, installed by cargo xtask setup)");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.server.http_get("/ready").as_deref(), Some("ready\n"));
}

/// Runs the instadns CLI (no database) and returns (success, stdout, stderr).
fn instadns(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(instadns_bin()).args(args).output().expect("instadns");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sigterm_leaves_the_fast_path_answering_until_detach() {
    let mut d = Deployment::start(&["--xdp-mode", "native"]);
    let queries = hot_queries();
    let expected = warm(&d.server, &d.rig, &queries);
    let pin_dir = d.server.pin_dir.to_str().unwrap().to_owned();

    let (ok, status, err) = instadns(&["status", "--pin-dir", &pin_dir, "--interval", "0.2"]);
    assert!(ok, "{err}");
    assert!(status.contains(&format!("interface {}: XDP native", d.rig.server_if)), "{status}");
    // Every hot query but the name that does not exist (the zone's NXDOMAIN answers it).
    assert!(status.contains(&format!("{} names of", queries.len() - 1)), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["hit", &queries.len().to_string()])
    );

    assert!(d.server.terminate(), "SIGTERM ends the daemon cleanly");
    assert!(d.server.log_text().contains("the pinned fast path keeps answering"));
    assert!(has_xdp(&d.rig.server_ns, &d.rig.server_if));
    for (q, e) in queries.iter().zip(&expected) {
        assert_eq!(udp_exchange(&d.rig, server(), q), *e, "XDP answers without the daemon");
    }

    let (ok, out, err) = instadns(&["detach", "--pin-dir", &pin_dir]);
    assert!(ok, "{err}");
    assert!(out.contains("link-"), "{out}");
    assert!(!has_xdp(&d.rig.server_ns, &d.rig.server_if), "detach removed the program");
    assert!(!d.server.pin_dir.exists(), "detach removed the pins");
    let answer = poll_until(&d.rig, server(), &queries[0], Duration::from_millis(300), |_| true);
    assert_eq!(answer, None, "nothing answers any more");
    let (ok, out, _) = instadns(&["detach", "--pin-dir", &pin_dir]);
    assert!(ok && out.contains("nothing pinned"), "detach twice is harmless: {out}");
}

#[test]
fn detach_works_while_the_daemon_runs_and_detach_on_exit_cleans_up() {
    let mut d = Deployment::start(&["--xdp-mode", "native", "--detach-on-exit"]);
    warm(&d.server, &d.rig, &hot_queries());
    assert!(has_xdp(&d.rig.server_ns, &d.rig.server_if));
    assert!(d.server.terminate());
    assert!(!has_xdp(&d.rig.server_ns, &d.rig.server_if), "detach_on_exit detached");
    assert!(!d.server.pin_dir.exists(), "detach_on_exit removed the pins");

    // A running daemon's link is detached at once (BPF_LINK_DETACH), and userspace
    // answers what XDP did.
    let db = d.db();
    d.server.restart(&d.rig, &ServerProcess::args(&d.rig, &db, &["--xdp-mode", "native"]));
    let queries = hot_queries();
    let expected = warm(&d.server, &d.rig, &queries);
    let pin_dir = d.server.pin_dir.to_str().unwrap().to_owned();
    let (ok, _, err) = instadns(&["detach", "--pin-dir", &pin_dir]);
    assert!(ok, "{err}");
    assert!(!has_xdp(&d.rig.server_ns, &d.rig.server_if), "detached under a running daemon");
    let udp_before = sample(&d.server.metrics(), "instadns_queries_total", "\"udp\"");
    assert_eq!(udp_exchange(&d.rig, server(), &queries[0]), expected[0]);
    assert_eq!(sample(&d.server.metrics(), "instadns_queries_total", "\"udp\""), udp_before + 1);
}

/// A server on a database without zones says so: a warning in the log, and `/ready`
/// answers 503 naming the cause (a typo in `--db` must not look like a working node).
#[test]
fn an_empty_database_is_served_but_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let rig = VethRig::new().with_client_pass_program();
    let db = dir.path().join("empty.sqlite");
    let args = ServerProcess::args(&rig, db.to_str().unwrap(), &["--xdp-mode", "native"]);
    let server_process =
        ServerProcess::start_with(&rig, &args, &dir.path().join("instadns.log"), &test_pin_dir());
    let ready = server_process.http_get("/ready").expect("/ready answers");
    assert!(ready.contains("no zones") && ready.contains("instadns db demo"), "{ready}");
    assert!(
        server_process.log_text().contains("the database holds no zones"),
        "{}",
        server_process.log_text()
    );
}

#[test]
fn check_config_names_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("port = \"fifty-three\"\n", ":1: port:"),
        ("listen = [\"0.0.0.0\"]\n\n[maps]\nentries = 12\n", ":4: maps.entries: 12 is below 1024"),
        ("[[interface]]\nname = \"eth0\"\nxdp_mode = \"turbo\"\n", ":3: interface.xdp_mode:"),
        ("colour = \"blue\"\n", ":1: unknown field `colour`"),
        ("db = \"mysql://db/x\"\n", ":1: db:"),
        ("zone_files = [\"/nonexistent/z.zone\"]\n", ":1: zone_files: /nonexistent/z.zone does not exist"),
        ("[transfer]\nnotify_key = \"..\"\n", ":2: transfer.notify_key: a key needs a name"),
        ("[transfer]\nallow_networks = [\"198.18.0.0/33\"]\n", ":2: transfer.allow_networks:"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let (ok, _, err) = instadns(&["check-config", path.to_str().unwrap()]);
        assert!(!ok, "{text:?} must be rejected");
        assert!(err.contains(&format!("{}{expected}", path.display())), "{text:?}: {err}");
    }
    let good = dir.path().join("good.toml");
    let (ok, default, _) = instadns(&["default-config"]);
    assert!(ok);
    std::fs::write(&good, default).unwrap();
    let (ok, out, err) = instadns(&["check-config", good.to_str().unwrap()]);
    assert!(ok && out.contains("OK"), "{out}{err}");
    let (ok, _, err) = instadns(&["check-config", "/nonexistent/instadns.toml"]);
    assert!(!ok && err.contains("/nonexistent/instadns.toml: cannot read"), "{err}");
}

/// A daemon configured by file only (no interface flags), so SIGHUP can change them.
fn config_file(d: &tempfile::TempDir, interfaces: &[&str], zone: &str) -> std::path::PathBuf {
    let mut text = format!(
        "db = \"sqlite:{db}\"\nlisten = [\"198.18.0.1\", \"198.18.1.1\"]\nmetrics = \"{METRICS_ADDR}\"\nzone_files = [\"{zone}\"]\n",
        db = d.path().join("hup.sqlite").display(),
    );
    for iface in interfaces {
        text += &format!("\n[[interface]]\nname = \"{iface}\"\nxdp_mode = \"native\"\n");
    }
    let path = d.path().join("instadns.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn zone_text(serial: u32, address: &str) -> String {
    format!(
        "$ORIGIN hup.test.\n$TTL 60\n@ IN SOA ns1.hup.test. hostmaster.hup.test. {serial} 3600 600 86400 60\n@ IN NS ns1.hup.test.\nns1 IN A 192.0.2.53\nwww IN A {address}\n"
    )
}

fn www_address(response: &[u8]) -> Option<String> {
    Message::from_vec(response).ok()?.answers.first().map(|r| r.data.to_string())
}

#[test]
fn sighup_reloads_zones_and_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = VethRig::new().with_client_pass_program();
    let second = rig.add_client();
    let (second_ns, second_if, second_server) =
        (second.ns.clone(), second.server_if.clone(), second.server_v4);
    let zone = dir.path().join("hup.test.zone");
    std::fs::write(&zone, zone_text(1, "198.51.100.1")).unwrap();
    let config = config_file(&dir, &[&rig.server_if], zone.to_str().unwrap());
    let args = vec!["--config".to_owned(), config.to_str().unwrap().to_owned()];
    let server_process =
        ServerProcess::start_with(&rig, &args, &dir.path().join("instadns.log"), &test_pin_dir());

    let www = QueryBuilder::new("www.hup.test", RecordType::A).bytes();
    let expected = warm(&server_process, &rig, std::slice::from_ref(&www));
    assert_eq!(www_address(&expected[0]).as_deref(), Some("198.51.100.1"));
    assert!(!has_xdp(&rig.server_ns, &second_if));

    // The zone file changes and the second interface joins the configuration.
    std::fs::write(&zone, zone_text(2, "198.51.100.2")).unwrap();
    config_file(&dir, &[&rig.server_if, &second_if], zone.to_str().unwrap());
    server_process.signal(libc::SIGHUP);
    poll_until(&rig, server(), &www, Duration::from_secs(10), |r| {
        www_address(r).as_deref() == Some("198.51.100.2")
    })
    .expect("the reloaded zone answers");
    // The zone's new answer comes through the change feed, which runs beside the SIGHUP
    // handler: the attachment may follow it by a moment.
    eventually("the added interface was attached", || {
        has_xdp(&rig.server_ns, &second_if)
            && sample(&server_process.metrics(), "instadns_xdp_attached", "") == 2
    });
    // The second client is answered by XDP too (its first query may be a miss).
    let second_server = SocketAddr::new(second_server.into(), 53);
    let exchange = |query: &[u8]| {
        let query = query.to_vec();
        in_netns(&second_ns, move || {
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            socket.send_to(&query, second_server).unwrap();
            let mut buf = vec![0u8; 4096];
            let (n, _) = socket.recv_from(&mut buf).expect("an answer on the second interface");
            buf.truncate(n);
            buf
        })
    };
    exchange(&www);
    let hits = server_process.xdp("hit");
    assert_eq!(www_address(&exchange(&www)).as_deref(), Some("198.51.100.2"));
    assert_eq!(server_process.xdp("hit"), hits + 1, "XDP on the second interface, sharing the maps");
    let m = server_process.metrics();
    assert_eq!(sample(&m, "instadns_xdp_attached", ""), 2);

    // Removing the first interface from the file detaches it on the next SIGHUP.
    config_file(&dir, &[&second_if], zone.to_str().unwrap());
    server_process.signal(libc::SIGHUP);
    eventually("the removed interface was detached", || !has_xdp(&rig.server_ns, &rig.server_if));
    assert_eq!(www_address(&udp_exchange(&rig, server(), &www)).as_deref(), Some("198.51.100.2"));
    assert_eq!(sample(&server_process.metrics(), "instadns_xdp_attached", ""), 1);

    // A broken file keeps the running configuration.
    std::fs::write(&config, "port = \"x\"\n").unwrap();
    server_process.signal(libc::SIGHUP);
    eventually("the bad reload was reported", || server_process.log_text().contains("reload failed"));
    assert!(server_process.log_text().contains(&format!("{}:1: port:", config.display())));
    assert_eq!(server_process.http_get("/ready").as_deref(), Some("ready\n"));
}

#[test]
fn a_changed_queue_count_is_followed_by_a_re_attach() {
    // Four queues on both ends, one in use at attach time. Native XDP on veth wants at
    // least as many receive queues as the peer transmits on, so the client follows.
    let rig = VethRig::with_queues(4).with_client_pass_program();
    let channels = |ns: &str, iface: &str, kind: &str, n: &str| {
        sh("ip", &["netns", "exec", ns, "ethtool", "-L", iface, kind, n]);
    };
    channels(&rig.client_ns, &rig.client_if, "tx", "1");
    channels(&rig.server_ns, &rig.server_if, "rx", "1");
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let args = ServerProcess::args(&rig, &db, &["--xdp-mode", "native"]);
    let server_process =
        ServerProcess::start_with(&rig, &args, &dir.path().join("instadns.log"), &test_pin_dir());
    assert_eq!(sample(&server_process.metrics(), "instadns_xdp_rx_queues", &rig.server_if), 1);

    channels(&rig.server_ns, &rig.server_if, "rx", "4");
    channels(&rig.client_ns, &rig.client_if, "tx", "4");
    eventually("the new queue count was seen", || {
        sample(&server_process.metrics(), "instadns_xdp_rx_queues", &rig.server_if) == 4
    });
    assert!(server_process.log_text().contains("re-attaching so every queue runs the program"));
    // Queries from many source ports spread over the client's four transmit queues and so
    // over the server's four receive queues: after the warm-up every one is an XDP hit.
    let query = QueryBuilder::new("ws-123456.apps.example.com", RecordType::A).bytes();
    warm(&server_process, &rig, std::slice::from_ref(&query));
    let misses = server_process.xdp("miss");
    let hits = server_process.xdp("hit");
    let sockets = 64;
    in_netns(&rig.client_ns, || {
        for _ in 0..sockets {
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            socket.send_to(&query, server()).unwrap();
            let mut buf = [0u8; 512];
            socket.recv_from(&mut buf).expect("an answer");
        }
    });
    assert_eq!(server_process.xdp("miss"), misses, "no query missed the program");
    assert_eq!(server_process.xdp("hit"), hits + sockets);
    let stats = ns_exec(&rig.server_ns, "ethtool", &["-S", &rig.server_if]);
    let stats = String::from_utf8_lossy(&stats.stdout);
    let busy_queues = (0..4)
        .filter(|q| {
            stats.lines().any(|l| {
                l.trim().starts_with(&format!("rx_queue_{q}_xdp_tx:"))
                    && l.split(':').nth(1).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0) > 0
            })
        })
        .count();
    eprintln!("queues that sent XDP_TX answers: {busy_queues} of 4\n{stats}");
    assert!(busy_queues > 1, "the load reached several queues");
}

/// The answer records of a response, sorted (round robin changes their order).
fn sorted_answers(response: &[u8]) -> Vec<String> {
    let message = Message::from_vec(response).expect("a DNS message");
    let mut records: Vec<String> = message.answers.iter().map(|r| r.to_string()).collect();
    records.sort();
    records.push(format!("{:?}", message.metadata.response_code));
    records
}

/// Pinned maps outlive the daemon, so a successor must not trust them: answer slots
/// damaged between two daemons (a byte of an address changed, a rotation past the
/// data) are detected on adoption, the names pointing at them discarded and resolved
/// afresh. Nothing serves the damaged bytes, nothing panics, and the fast path is
/// warmed again. (The successor used to adopt them: XDP served the damaged answers and
/// userspace could panic rotating them.)
#[test]
fn damaged_pinned_answers_are_discarded_on_adoption() {
    let mut d = Deployment::start(&["--xdp-mode", "native"]);
    let queries = hot_queries();
    let expected: Vec<Vec<String>> =
        warm(&d.server, &d.rig, &queries).iter().map(|r| sorted_answers(r)).collect();
    d.server.kill_hard();

    let layout = std::fs::read_dir(&d.server.pin_dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("layout-")))
        .expect("a pinned layout");
    let pinned =
        aya::maps::MapData::from_pin(layout.join(dns_common::maps::ANSWER_MAP_NAME)).expect("pinned answers");
    let mut answers: aya::maps::Array<_, dns_common::maps::AnswerSlot> =
        aya::maps::Array::try_from(aya::maps::Map::Array(pinned)).expect("the answer array");
    let mut damaged = 0;
    for index in 0..answers.len() {
        let Ok(mut slot) = answers.get(&index, 0) else { continue };
        if slot.len == 0 {
            continue;
        }
        if index % 2 == 0 {
            slot.data[slot.len as usize - 1] ^= 0x5a;
        } else {
            (slot.rotate_offset, slot.rotate_count, slot.rotate_size) = (900, 200, 2);
        }
        answers.set(index, slot, 0).expect("damaging a slot");
        damaged += 1;
    }
    assert!(damaged >= 5, "only {damaged} slots were in use");
    drop(answers);

    let args = ServerProcess::args(&d.rig, &d.db(), &["--xdp-mode", "native"]);
    d.server.restart(&d.rig, &args);
    for (query, expected) in queries.iter().zip(&expected) {
        let first = sorted_answers(&udp_exchange(&d.rig, server(), query));
        assert_eq!(&first, expected, "the first answer after the restart");
    }
    let again: Vec<Vec<String>> =
        warm(&d.server, &d.rig, &queries).iter().map(|r| sorted_answers(r)).collect();
    assert_eq!(again, expected, "XDP answers correctly again");
    let log = d.server.log_text();
    assert!(log.contains("discarded pinned name entries"), "the damage was reported:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!d.server.has_exited(), "the daemon runs");
}

/// The pinned links of `pin_dir` as `instadns status` prints them.
fn status_lines(pin_dir: &std::path::Path) -> Vec<String> {
    let (ok, out, err) = instadns(&["status", "--pin-dir", pin_dir.to_str().unwrap(), "--interval", "0.01"]);
    assert!(ok, "status: {err}");
    out.lines().filter(|l| l.starts_with("interface ")).map(str::to_owned).collect()
}

fn link_pin_of(pin_dir: &std::path::Path, iface: &str) -> bool {
    std::fs::read_dir(pin_dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with(&format!("link-{iface}-")))
}

/// A link pinned for an interface that is gone is stale: `status` says so, a starting
/// daemon removes it (and never adopts it), a running daemon removes it when the
/// interface goes and attaches again when it is back. The pin directory holds only links
/// that answer. (Stale links used to stay forever and be listed as attached.)
#[test]
fn links_of_interfaces_that_are_gone_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let rig = VethRig::new().with_client_pass_program();
    // A second veth pair inside the server namespace stands in for a VLAN that comes and
    // goes (deleting one end deletes both).
    let vlan = format!("{}e", rig.server_if);
    let peer = format!("{}f", rig.server_if);
    let add_vlan =
        || sh("ip", &["-n", &rig.server_ns, "link", "add", &vlan, "type", "veth", "peer", "name", &peer]);
    let up_vlan = || {
        sh("ip", &["-n", &rig.server_ns, "link", "set", &vlan, "up"]);
        sh("ip", &["-n", &rig.server_ns, "link", "set", &peer, "up"]);
    };
    add_vlan();
    up_vlan();
    let pin_dir = test_pin_dir();
    let args = ServerProcess::args(&rig, &db, &["--iface", &vlan]);
    let mut server = ServerProcess::start_with(&rig, &args, &dir.path().join("instadns.log"), &pin_dir);
    assert!(link_pin_of(&pin_dir, &vlan), "the VLAN's link is pinned");

    // Killed, and the VLAN removed meanwhile: the pin stays, and status marks it stale.
    server.kill_hard();
    sh("ip", &["-n", &rig.server_ns, "link", "del", &vlan]);
    let lines = status_lines(&pin_dir);
    let vlan_line = lines.iter().find(|l| l.contains(&vlan)).expect("the VLAN's pin is listed");
    assert!(vlan_line.contains("stale"), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(&rig.server_if) && !l.contains("stale")), "{lines:?}");

    // A daemon configured without the VLAN starts and removes the dead pin.
    let args_without = ServerProcess::args(&rig, &db, &[]);
    server.restart(&rig, &args_without);
    assert!(!link_pin_of(&pin_dir, &vlan), "the stale pin was removed at start");
    drop(server);

    // A running daemon removes the pin of an interface that goes, and attaches again
    // when it is back.
    add_vlan();
    up_vlan();
    let mut server = ServerProcess::start_with(&rig, &args, &dir.path().join("instadns2.log"), &pin_dir);
    assert!(link_pin_of(&pin_dir, &vlan));
    sh("ip", &["-n", &rig.server_ns, "link", "del", &vlan]);
    wait::eventually("the running daemon removed the dead pin", Duration::from_secs(10), || {
        !link_pin_of(&pin_dir, &vlan)
    });
    add_vlan();
    up_vlan();
    wait::eventually("attached again", Duration::from_secs(10), || link_pin_of(&pin_dir, &vlan));
    assert!(has_xdp(&rig.server_ns, &vlan), "the program runs on the new VLAN");
    assert!(status_lines(&pin_dir).iter().all(|l| !l.contains("stale")));
    assert!(!server.has_exited());
}
