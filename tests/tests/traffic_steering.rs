//! Traffic steering end to end on the real XDP path: weighted picks, directional answers
//! by client territory (and by EDNS Client Subnet in userspace), and failover queues
//! driven by health checks of real TCP and HTTP backends.

use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use hickory_proto::rr::RecordType;
use tests::{
    dns::{QueryBuilder, answer_data},
    netns::{SERVER_V4, VethRig, in_netns, ns_exec, sh},
    server::{Deployment, ServerProcess, cli, demo_db},
    wait::eventually,
};

/// The first address dig sees for `name` from namespace `ns` asking `server`.
fn dig_address(ns: &str, server: &str, name: &str, qtype: &str, extra: &[&str]) -> Option<String> {
    let out = ns_exec(
        ns,
        "dig",
        &[&["+time=2", "+tries=1", &format!("@{server}"), name, qtype, "+short"], extra].concat(),
    );
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned)
}

/// Sends `count` copies of `query` one after another from the rig's client namespace;
/// returns how often each answered address came back.
fn answer_counts(rig: &VethRig, query: &[u8], count: usize) -> HashMap<String, usize> {
    let query = query.to_vec();
    in_netns(&rig.client_ns, move || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("client socket");
        socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let server = SocketAddr::new(SERVER_V4.into(), 53);
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut buf = vec![0u8; 4096];
        for _ in 0..count {
            socket.send_to(&query, server).expect("send");
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                for a in answer_data(&buf[..n]) {
                    *counts.entry(a).or_default() += 1;
                }
            }
        }
        counts
    })
}

#[test]
fn weighted_picks_match_the_weights_over_100000_queries_answered_by_xdp() {
    // 100,000 queries from one client stand for many resolvers: not rate limited.
    let d = Deployment::start(&["--xdp-mode", "native", "--rrl-rate", "0"]);
    let db = d.db();
    cli(
        &db,
        &[
            "cluster",
            "set",
            "mt2",
            "--pick",
            "one",
            "--address",
            "192.0.2.2,weight=1",
            "--address",
            "192.0.2.20,weight=3",
            "--address",
            "192.0.2.21,weight=6",
        ],
    );
    let query = QueryBuilder::new("shop.bob.example.org", RecordType::A).bytes();
    // The change reaches the answers; the first queries warm the map.
    eventually("the weighted set answers", Duration::from_secs(10), || {
        answer_counts(&d.rig, &query, 20).len() == 3
    });
    let hits_before = d.server.xdp("hit_weighted");
    const QUERIES: usize = 100_000;
    let counts = answer_counts(&d.rig, &query, QUERIES);
    let hits = d.server.xdp("hit_weighted") - hits_before;
    let total: usize = counts.values().sum();
    eprintln!("answers {counts:?}, {hits} weighted XDP hits");
    assert!(total >= QUERIES * 99 / 100, "{total} answers to {QUERIES} queries");
    assert!(hits as usize >= total * 99 / 100, "answered by XDP: {hits} of {total}");
    for (address, weight) in [("192.0.2.2", 1.0), ("192.0.2.20", 3.0), ("192.0.2.21", 6.0)] {
        let share = counts.get(address).copied().unwrap_or(0) as f64 / total as f64;
        let expected = weight / 10.0;
        assert!(
            (share - expected).abs() <= expected * 0.02,
            "{address}: share {share:.4}, weight share {expected:.4} (more than 2% apart)"
        );
    }
    // Every answer carries exactly one address.
    let one = answer_counts(&d.rig, &query, 10);
    assert_eq!(one.values().sum::<usize>(), 10, "one address per answer: {one:?}");
    // Over TCP (userspace) the picks follow the weights too: all three appear.
    let tcp: Vec<String> = (0..30)
        .filter_map(|_| {
            dig_address(&d.rig.client_ns, &SERVER_V4.to_string(), "shop.bob.example.org", "A", &["+tcp"])
        })
        .collect();
    for address in ["192.0.2.2", "192.0.2.20", "192.0.2.21"] {
        assert!(tcp.iter().any(|a| a == address), "{address} among TCP answers {tcp:?}");
    }
}

#[test]
fn directional_answers_follow_the_client_territory_in_xdp_and_the_ecs_subnet_in_userspace() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let mut rig = VethRig::new().with_client_pass_program();
    let second = rig.add_client();
    let (second_ns, second_if) = (second.ns.clone(), second.server_if.clone());
    let (second_v4, second_v6) = (second.server_v4.to_string(), second.server_v6.to_string());
    let server = ServerProcess::start(
        &rig,
        &db,
        &dir.path().join("instadns.log"),
        &["--xdp-mode", "native", "--iface", &second_if, "--listen", &second_v4, "--listen", &second_v6],
    );
    // Territory a: the first client's network; b: the second's (both families). One
    // before them that no address uses, removed later.
    cli(&db, &["territory", "add", "early", "--prefix", "198.18.99.0/24"]);
    cli(&db, &["territory", "add", "a", "--prefix", "198.18.0.0/24"]);
    let file = dir.path().join("b.txt");
    std::fs::write(&file, "# the second client\n198.18.1.0/24\nfd00:53:0:1::/64\n").unwrap();
    cli(&db, &["territory", "add", "b", "--file", file.to_str().unwrap()]);
    cli(
        &db,
        &[
            "cluster",
            "set",
            "mt1",
            "--address",
            "192.0.2.11,territory=a",
            "--address",
            "192.0.2.12,territory=b",
            "--address",
            "2001:db8::12,territory=b",
        ],
    );
    let name = "blog.alice.example.org";
    let first = (rig.client_ns.clone(), SERVER_V4.to_string());
    let other = (second_ns.clone(), second_v4.clone());
    eventually("each territory gets its own answer", Duration::from_secs(10), || {
        dig_address(&first.0, &first.1, name, "A", &[]).as_deref() == Some("192.0.2.11")
            && dig_address(&other.0, &other.1, name, "A", &[]).as_deref() == Some("192.0.2.12")
    });
    assert_eq!(dig_address(&other.0, &second_v6, name, "AAAA", &[]).as_deref(), Some("2001:db8::12"));
    assert_eq!(
        dig_address(&first.0, &first.1, name, "AAAA", &[]).as_deref(),
        Some("2001:db8::1"),
        "territory a has no IPv6 address: the default's"
    );

    // From XDP: 50 more queries from each client are all directional hits.
    let before = server.xdp("hit_directional");
    for (ns, at, expected) in [(&first.0, &first.1, "192.0.2.11"), (&other.0, &other.1, "192.0.2.12")] {
        for _ in 0..50 {
            assert_eq!(dig_address(ns, at, name, "A", &[]).as_deref(), Some(expected));
        }
    }
    let directional = server.xdp("hit_directional") - before;
    assert!(directional >= 100, "{directional} directional XDP hits for 100 queries");

    // ECS queries go up to userspace, which answers by the subnet, with its scope.
    let ecs_before = server.xdp("passed_ecs");
    let out = ns_exec(
        &first.0,
        "dig",
        &["+time=2", "+tries=1", &format!("@{}", first.1), name, "A", "+subnet=198.18.1.0/24"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("192.0.2.12"), "the subnet's territory (b) answers:\n{text}");
    assert!(text.contains("CLIENT-SUBNET: 198.18.1.0/24/24"), "scope /24 (RFC 7871 7.2.1):\n{text}");
    let out = ns_exec(
        &first.0,
        "dig",
        &["+time=2", "+tries=1", &format!("@{}", first.1), name, "A", "+subnet=10.0.0.0/8"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.ends_with("\t192.0.2.1")), "the default answer:\n{text}");
    assert!(text.contains("CLIENT-SUBNET: 10.0.0.0/8/1"), "0/1 holds no territory prefix:\n{text}");
    let out = ns_exec(
        &first.0,
        "dig",
        &[
            "+time=2",
            "+tries=1",
            &format!("@{}", first.1),
            "123456.example.org",
            "A",
            "+subnet=198.18.1.0/24",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CLIENT-SUBNET: 198.18.1.0/24/24"), "the id name is directional too:\n{text}");
    // The two ECS queries for the name XDP holds were passed up (the third name was not
    // in the map yet: a miss).
    assert!(server.xdp("passed_ecs") >= ecs_before + 2, "ECS queries are passed up by XDP");

    // Removing the earlier territory moves no other: every answer right after it is
    // still each client's own (indices used to shift, and the tries were rewritten
    // before the answers).
    cli(&db, &["territory", "remove", "early"]);
    for _ in 0..20 {
        assert_eq!(dig_address(&first.0, &first.1, name, "A", &[]).as_deref(), Some("192.0.2.11"));
        assert_eq!(dig_address(&other.0, &other.1, name, "A", &[]).as_deref(), Some("192.0.2.12"));
    }

    // A territory change reaches XDP: the second client's network moves to territory a.
    cli(&db, &["territory", "set", "b", "--remove-prefix", "198.18.1.0/24"]);
    cli(&db, &["territory", "set", "a", "--prefix", "198.18.1.0/24"]);
    eventually("the moved network gets territory a's answer", Duration::from_secs(10), || {
        dig_address(&other.0, &other.1, name, "A", &[]).as_deref() == Some("192.0.2.11")
    });
    let listed = cli(&db, &["territory", "list"]);
    assert!(listed.contains("a  2 network(s)") && listed.contains("fd00:53:0:1::/64"), "{listed}");
    // A territory in use cannot be removed.
    let out = std::process::Command::new(tests::server::instadns_bin())
        .args(["territory", "remove", "b", "--db", &db])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("used by"));
}

/// An HTTP backend answering `GET /healthz` with 200, until dropped.
struct Backend {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    fn start(ns: &str, addr: SocketAddr, http: bool) -> Self {
        let listener = in_netns(ns, move || TcpListener::bind(addr).expect("backend listener"));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) if http => {
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                        let mut buf = [0u8; 1024];
                        let _ = stream.read(&mut buf);
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_failover_queue_follows_http_and_tcp_health_checks_of_real_backends() {
    // 200 answers in a row to one client below: not rate limited.
    let d = Deployment::start(&["--xdp-mode", "native", "--rrl-rate", "0"]);
    let db = d.db();
    let ns = d.rig.server_ns.clone();
    // Two backends on addresses of the server namespace.
    for a in ["198.18.10.1/32", "198.18.10.2/32"] {
        sh("ip", &["-n", &ns, "addr", "add", a, "dev", "lo"]);
    }
    let primary = SocketAddr::new(Ipv4Addr::new(198, 18, 10, 1).into(), 8080);
    let standby = SocketAddr::new(Ipv4Addr::new(198, 18, 10, 2).into(), 8080);
    let mut primary_backend = Some(Backend::start(&ns, primary, true));
    let _standby_backend = Backend::start(&ns, standby, true);
    const INTERVAL_MS: u64 = 200;
    const FALL: u64 = 2;
    cli(
        &db,
        &[
            "cluster",
            "set",
            "mt1",
            "--remove-address",
            "192.0.2.1",
            "--address",
            "198.18.10.1,queue=0",
            "--address",
            "198.18.10.2,queue=1",
            "--check",
            "http:8080/healthz",
            "--check-interval-ms",
            "200",
            "--check-timeout-ms",
            "100",
            "--rise",
            "2",
            "--fall",
            "2",
            "--fallback",
            "last",
        ],
    );
    let query = QueryBuilder::new("blog.alice.example.org", RecordType::A).bytes();
    let answer = |rig: &VethRig| answer_counts(rig, &query, 1).into_keys().next();
    eventually("the primary answers", Duration::from_secs(10), || {
        answer(&d.rig).as_deref() == Some("198.18.10.1")
    });
    eventually("both targets probed", Duration::from_secs(5), || {
        d.server.metrics().get("instadns_health_up{target=\"198.18.10.2:8080\",probe=\"http /healthz 200\"}")
            == Some(&1.0)
    });

    // Stop the primary: the answer moves to the standby within interval x fall plus
    // the invalidation delay.
    primary_backend.take();
    let stopped = Instant::now();
    eventually("the standby answers", Duration::from_secs(5), || {
        answer(&d.rig).as_deref() == Some("198.18.10.2")
    });
    let switch = stopped.elapsed();
    eprintln!("failover took {switch:?} (interval {INTERVAL_MS} ms x fall {FALL})");
    assert!(
        switch <= Duration::from_millis(INTERVAL_MS * (FALL + 1) + 500),
        "failover took {switch:?}, more than interval x (fall + 1) + 500 ms"
    );
    // The switched answer is served by XDP (all but the first after the change).
    let hits = d.server.xdp("hit");
    let counts = answer_counts(&d.rig, &query, 200);
    assert_eq!(counts.get("198.18.10.2"), Some(&200), "{counts:?}");
    assert!(d.server.xdp("hit") >= hits + 199, "answers after the switch come from XDP");
    let table = ns_exec(&ns, tests::server::instadns_bin().to_str().unwrap(), &["health"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let primary_line =
        table.lines().find(|l| l.starts_with("198.18.10.1:8080")).unwrap_or_default().to_owned();
    assert!(primary_line.contains(" down ") && primary_line.contains("mt1"), "instadns health:\n{table}");

    // Start it again: back after `rise` successes.
    primary_backend = Some(Backend::start(&ns, primary, true));
    let started = Instant::now();
    eventually("the primary answers again", Duration::from_secs(5), || {
        answer(&d.rig).as_deref() == Some("198.18.10.1")
    });
    assert!(started.elapsed() >= Duration::from_millis(INTERVAL_MS), "rise 2 needs two probes");

    // Everything down: the fallback (the last queue position) answers.
    primary_backend.take();
    drop(_standby_backend);
    eventually("the fallback answers", Duration::from_secs(5), || {
        d.server.metrics().get("instadns_health_up{target=\"198.18.10.2:8080\",probe=\"http /healthz 200\"}")
            == Some(&0.0)
            && answer(&d.rig).as_deref() == Some("198.18.10.2")
    });

    // A TCP check: only the standby accepts connections on port 9000.
    let _tcp_standby = Backend::start(&ns, SocketAddr::new(standby.ip(), 9000), false);
    cli(
        &db,
        &[
            "cluster",
            "set",
            "mt1",
            "--check",
            "tcp:9000",
            "--check-interval-ms",
            "200",
            "--check-timeout-ms",
            "100",
            "--fall",
            "1",
            "--rise",
            "1",
        ],
    );
    eventually("the TCP check takes the primary out", Duration::from_secs(5), || {
        d.server.metrics().get("instadns_health_up{target=\"198.18.10.1:9000\",probe=\"tcp\"}") == Some(&0.0)
            && answer(&d.rig).as_deref() == Some("198.18.10.2")
    });
    let metrics = d.server.metrics();
    assert!(
        metrics.get("instadns_health_transitions_total").is_some_and(|t| *t >= 3.0),
        "transitions counted"
    );
}
