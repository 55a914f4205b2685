//! End to end: `instadns serve` attached in native XDP mode to a veth in a server
//! namespace, real clients in a client namespace. The first query for a name is
//! answered by userspace, the next by the XDP program (the counters prove which), and
//! both answers are the same but for the ID.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use hickory_proto::rr::RecordType;
use tests::{
    dns::QueryBuilder,
    netns::{SERVER_V4, SERVER_V6},
    server::{Deployment, dig, kdig, udp_exchange},
};

fn start() -> Deployment {
    Deployment::start(&["--xdp-mode", "native"])
}

/// The part of dig's output that must not change between answers: everything but the
/// header's ID, the timing lines and the cookie's bytes (each dig run sends its own
/// client cookie, so the server cookie differs too: its length and dig's verdict stay).
fn dig_answer(output: &str) -> String {
    output
        .lines()
        .filter(|l| {
            !l.starts_with(";; Query time") && !l.starts_with(";; WHEN") && !l.starts_with(";; SERVER")
        })
        .map(|l| match l.strip_prefix("; COOKIE: ") {
            Some(cookie) => {
                let (hex, verdict) = cookie.split_once(' ').unwrap_or((cookie, ""));
                format!("; COOKIE: {} hex digits {verdict}", hex.len())
            }
            None if l.contains("->>HEADER<<-") => l.split(", id:").next().unwrap_or(l).to_owned(),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn first_by_userspace_then_by_xdp(server_ip: IpAddr) {
    let Deployment { server, rig, .. } = &start();
    let at = format!("@{server_ip}");
    for (name, qtype, expect) in [
        ("ws-123456.apps.example.com", "A", "ws-mt1.example.com."),
        ("blog.alice.example.org", "A", "192.0.2.1"),
        ("123456.example.org", "AAAA", "2001:db8::1"),
    ] {
        let (hits, misses) = (server.xdp("hit"), server.xdp("miss"));
        let first = dig(rig, &[&at, name, qtype, "+norec"]);
        assert!(
            first.contains("status: NOERROR") && first.contains(expect),
            "first answer for {name}:\n{first}"
        );
        assert_eq!(
            (server.xdp("hit"), server.xdp("miss")),
            (hits, misses + 1),
            "the first query went to userspace"
        );

        let second = dig(rig, &[&at, name, qtype, "+norec"]);
        assert_eq!(server.xdp("hit"), hits + 1, "the second query for {name} was answered by XDP");
        assert_eq!(dig_answer(&first), dig_answer(&second), "XDP's answer equals userspace's");
    }
    assert!(server.metrics()["instadns_queries_total{transport=\"udp\"}"] >= 3.0);
}

#[test]
fn first_query_by_userspace_then_xdp_over_ipv4() {
    first_by_userspace_then_by_xdp(SERVER_V4.into());
}

#[test]
fn first_query_by_userspace_then_xdp_over_ipv6() {
    first_by_userspace_then_by_xdp(SERVER_V6.into());
}

/// Byte-level: the same query twice (different IDs, mixed case the second time) gets
/// identical responses apart from the ID, the first from userspace, the second from XDP.
#[test]
fn xdp_and_userspace_responses_are_identical_but_for_the_id() {
    let Deployment { server, rig, .. } = &start();
    let cases = [
        (
            SocketAddr::new(SERVER_V4.into(), 53),
            "ws-123456.apps.example.com",
            "WS-123456.apps.Example.COM",
            RecordType::A,
        ),
        (SocketAddr::new(SERVER_V6.into(), 53), "123456.example.org", "123456.EXAMPLE.org", RecordType::AAAA),
    ];
    for (server_addr, lower_name, upper_name, qtype) in cases {
        let lower = QueryBuilder::new(lower_name, qtype).id(1);
        let upper = QueryBuilder::new(upper_name, qtype).id(2);
        let hits = server.xdp("hit");
        let from_userspace = udp_exchange(rig, server_addr, &lower.bytes());
        assert_eq!(server.xdp("hit"), hits, "first exchange answered by userspace");
        let from_xdp = udp_exchange(rig, server_addr, &upper.bytes());
        assert_eq!(server.xdp("hit"), hits + 1, "second exchange answered by XDP");
        assert_eq!(&from_xdp[..2], &[0, 2], "ID echoed");
        // Same bytes except the ID and the question's letter case (echoed as sent).
        let qlen = tests::dns::wire_name(lower_name).len();
        assert_eq!(&from_xdp[12..12 + qlen], &upper.bytes()[12..12 + qlen]);
        assert_eq!(&from_userspace[2..12], &from_xdp[2..12]);
        assert_eq!(&from_userspace[12 + qlen..], &from_xdp[12 + qlen..]);
    }
}

#[test]
fn tcp_and_kdig_get_the_same_answers() {
    let Deployment { rig, .. } = &start();
    let at = format!("@{SERVER_V4}");
    let udp = dig(rig, &[&at, "ws-123456.apps.example.com", "+short"]);
    let tcp = dig(rig, &[&at, "ws-123456.apps.example.com", "+short", "+tcp"]);
    assert_eq!(udp, tcp);
    assert_eq!(udp.lines().collect::<Vec<_>>(), ["ws-mt1.example.com.", "192.0.2.11"]);
    let k = kdig(rig, &[&at, "nope.example.org", "A"]);
    assert!(k.contains("status: NXDOMAIN"), "{k}");
    let refused = dig(rig, &[&at, "example.net", "A"]);
    assert!(refused.contains("status: REFUSED"), "{refused}");
}

/// RFC 7766: pipelined queries on one connection are all answered (in any order, each
/// with its ID), an idle connection is closed, and connections beyond the limit are
/// refused.
#[test]
fn tcp_follows_rfc7766() {
    use std::{
        io::{Read as _, Write as _},
        net::TcpStream,
        time::{Duration, Instant},
    };
    let Deployment { rig, .. } = &Deployment::start(&[
        "--xdp-mode",
        "native",
        "--tcp-idle-timeout",
        "1",
        "--tcp-max-connections",
        "3",
    ]);
    let server: SocketAddr = SocketAddr::new(SERVER_V4.into(), 53);
    tests::netns::in_netns(&rig.client_ns, move || {
        let connect = || {
            let s = TcpStream::connect_timeout(&server, Duration::from_secs(2)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s
        };
        let read_message = |s: &mut TcpStream| -> Option<Vec<u8>> {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).ok()?;
            let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut m).ok()?;
            Some(m)
        };
        // Pipelining: five queries written at once, five answers back.
        let mut s = connect();
        let names = [
            "ws-123456.apps.example.com",
            "blog.alice.example.org",
            "nope.example.org",
            "example.com",
            "234567.example.org",
        ];
        let mut batch = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let q = QueryBuilder::new(name, RecordType::A).id(100 + i as u16).bytes();
            batch.extend_from_slice(&(q.len() as u16).to_be_bytes());
            batch.extend_from_slice(&q);
        }
        s.write_all(&batch).unwrap();
        let mut ids: Vec<u16> = (0..names.len())
            .map(|_| read_message(&mut s).expect("an answer"))
            .map(|m| u16::from_be_bytes([m[0], m[1]]))
            .collect();
        ids.sort();
        assert_eq!(ids, [100, 101, 102, 103, 104]);

        // Idle timeout: the server closes a silent connection after about 1 s.
        let started = Instant::now();
        let mut buf = [0u8; 1];
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "closed, not data");
        assert!(started.elapsed() < Duration::from_secs(3), "closed by the idle timeout");

        // Connection limit: with 3 open and silent, a 4th is served, and the one silent
        // longest is closed to make room (RFC 7766 section 6.2.2; refusing the newcomer
        // would let silent clients lock everyone out).
        let held: Vec<TcpStream> = (0..3).map(|_| connect()).collect();
        std::thread::sleep(Duration::from_millis(100));
        let mut extra = connect();
        let q = QueryBuilder::new("example.com", RecordType::SOA).bytes();
        let _ = extra.write_all(&[&(q.len() as u16).to_be_bytes()[..], &q].concat());
        assert!(read_message(&mut extra).is_some(), "the connection over the limit is served");
        let mut oldest = &held[0];
        oldest.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let closed = match oldest.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(closed, "the stalest connection was closed");
        for newer in &held[1..] {
            newer.set_nonblocking(true).unwrap();
            let mut newer = newer;
            assert!(
                matches!(newer.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
                "only the stalest connection was closed"
            );
        }
        drop(held);
    });
}

/// Queries from source ports that could start a loop with another server (echo,
/// daytime, quote, chargen, time: CVE-2024-2169) are answered by neither path, however
/// answerable; from port 53 they are (by XDP once the answer is installed).
#[test]
fn loop_prone_source_ports_are_never_answered() {
    let d = start();
    let query = QueryBuilder::new("blog.alice.example.org", RecordType::A).bytes();
    let server = SocketAddr::new(SERVER_V4.into(), 53);
    udp_exchange(&d.rig, server, &query);
    let from = |port: u16| {
        let query = query.clone();
        tests::netns::in_netns(&d.rig.client_ns, move || {
            let socket = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("bind the source port");
            socket.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
            socket.send_to(&query, server).unwrap();
            let mut buf = [0u8; 1500];
            socket.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
        })
    };
    for port in [7u16, 13, 17, 19, 37] {
        let passed = d.server.xdp("passed_not_for_us");
        assert_eq!(from(port), None, "source port {port}: no answer");
        assert_eq!(d.server.xdp("passed_not_for_us"), passed + 1, "source port {port}: passed up by XDP");
    }
    let hits = d.server.xdp("hit");
    assert!(from(53).is_some(), "source port 53 is answered");
    assert_eq!(d.server.xdp("hit"), hits + 1, "by XDP");
}

/// A server listening on the wildcard addresses of a host with two addresses per family
/// (a VIP beside the primary) answers each from the address asked: dig accepts only
/// replies from the server it asked. Userspace only, so every answer is a socket's.
#[test]
fn replies_leave_from_the_address_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = tests::server::demo_db(dir.path());
    let rig = tests::netns::VethRig::new();
    let (vip_v4, vip_v6) = ("198.18.0.3", "fd00:53::3");
    let ns = &rig.server_ns;
    tests::netns::ns_exec(ns, "ip", &["addr", "add", &format!("{vip_v4}/24"), "dev", &rig.server_if]);
    tests::netns::ns_exec(
        ns,
        "ip",
        &["addr", "add", &format!("{vip_v6}/64"), "dev", &rig.server_if, "nodad"],
    );
    let args: Vec<String> = [
        "--no-xdp",
        "--db",
        &db,
        "--listen",
        "0.0.0.0",
        "--listen",
        "::",
        "--metrics",
        tests::server::METRICS_ADDR,
    ]
    .map(String::from)
    .to_vec();
    let _server = tests::server::ServerProcess::start_with(
        &rig,
        &args,
        &dir.path().join("instadns.log"),
        &tests::server::test_pin_dir(),
    );
    let mut failures = Vec::new();
    for server in [SERVER_V4.to_string(), vip_v4.into(), SERVER_V6.to_string(), vip_v6.into()] {
        for name in ["blog.alice.example.org", "ws-123456.apps.example.com"] {
            let out = tests::netns::ns_exec(
                &rig.client_ns,
                "dig",
                &["+time=2", "+tries=1", "+norec", &format!("@{server}"), name, "A"],
            );
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains("status: NOERROR") || !text.contains(&format!("SERVER: {server}#53")) {
                failures.push(format!("{name} at {server}:\n{text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Listening on the wildcard addresses, XDP answers for every address of the host, and
/// follows them: an address added while the daemon runs is answered (the first query
/// by userspace, the next by XDP), and once removed it is no longer answered by XDP
/// (the kernel drops what reaches no socket's address).
#[test]
fn an_address_added_while_running_is_answered_by_xdp_and_a_removed_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = tests::server::demo_db(dir.path());
    let rig = tests::netns::VethRig::new().with_client_pass_program();
    let args: Vec<String> = [
        "--iface",
        &rig.server_if,
        "--xdp-mode",
        "native",
        "--db",
        &db,
        "--listen",
        "0.0.0.0",
        "--metrics",
        tests::server::METRICS_ADDR,
    ]
    .map(String::from)
    .to_vec();
    let server = tests::server::ServerProcess::start_with(
        &rig,
        &args,
        &dir.path().join("instadns.log"),
        &tests::server::test_pin_dir(),
    );
    let added = "198.18.0.7";
    tests::netns::ns_exec(
        &rig.server_ns,
        "ip",
        &["addr", "add", &format!("{added}/24"), "dev", &rig.server_if],
    );
    let ask = || {
        let out = tests::netns::ns_exec(
            &rig.client_ns,
            "dig",
            &["+time=1", "+tries=1", "+norec", &format!("@{added}"), "blog.alice.example.org", "A"],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // XDP answers for the new address once it knows it: until then userspace does.
    tests::wait::eventually("XDP answers for the added address", Duration::from_secs(10), || {
        let hits = server.xdp("hit");
        ask().contains("192.0.2.1") && server.xdp("hit") == hits + 1
    });
    tests::netns::ns_exec(
        &rig.server_ns,
        "ip",
        &["addr", "del", &format!("{added}/24"), "dev", &rig.server_if],
    );
    tests::wait::eventually("XDP no longer answers for the removed address", Duration::from_secs(10), || {
        let (hits, not_ours) = (server.xdp("hit"), server.xdp("passed_not_for_us"));
        let answer = ask();
        !answer.contains("192.0.2.1")
            && server.xdp("hit") == hits
            && server.xdp("passed_not_for_us") > not_ours
    });
}
