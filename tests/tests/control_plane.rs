//! The control plane end to end, through the real XDP path: instances moved while a
//! client polls (the answer changes within milliseconds of the commit, and the next
//! query is served by XDP again), on SQLite and on PostgreSQL, and a database outage
//! that the hot path rides through.
//!
//! Delays are printed (commit to the first new answer seen by the client), not
//! asserted: timing assertions on a shared machine would be noise. `cargo xtask bench`
//! reports them too.

use std::time::Duration;

use hickory_proto::{op::Message, rr::RecordType};
use tests::{
    dns::QueryBuilder,
    postgres::PgServer,
    server::{Deployment, cli, poll_until, server_v4 as server},
    wait::eventually,
};

/// The CNAME target in a response, if any.
fn target(response: &[u8]) -> Option<String> {
    let m = Message::from_vec(response).ok()?;
    m.answers.first().map(|r| r.data.to_string())
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Moves instance 123456 back and forth `moves` times while polling its service name.
fn moves_while_polling(d: &Deployment, db: &str, moves: usize) -> Vec<Duration> {
    let query = QueryBuilder::new("ws-123456.apps.example.com", RecordType::A).bytes();
    // Warm: the name is in the map and answered by XDP.
    for _ in 0..2 {
        poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| target(r).is_some())
            .expect("an answer");
    }
    let mut delays = Vec::new();
    for i in 0..moves {
        let to = if i % 2 == 0 { "mt2" } else { "mt1" };
        let expected = format!("ws-{to}.example.com.");
        // The CLI exits after its transaction committed; polling starts then.
        cli(db, &["instance", "move", "123456", "--to", to]);
        let seen = poll_until(&d.rig, server(), &query, Duration::from_secs(10), |r| {
            target(r).as_deref() == Some(expected.as_str())
        })
        .unwrap_or_else(|| panic!("move {i} to {to} never showed in the answers"));
        delays.push(seen);
        // The next query is served by XDP again.
        let hits = d.server.xdp("hit");
        poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| {
            target(r).as_deref() == Some(expected.as_str())
        })
        .expect("the new answer again");
        assert_eq!(d.server.xdp("hit"), hits + 1, "move {i}: the query after the change was answered by XDP");
    }
    delays.sort();
    delays
}

fn report(store: &str, delays: &[Duration]) {
    eprintln!(
        "{store}: commit to new answer over {} moves: p50 {:?}, p99 {:?}, max {:?}",
        delays.len(),
        percentile(delays, 0.5),
        percentile(delays, 0.99),
        delays[delays.len() - 1]
    );
}

#[test]
fn moving_an_instance_changes_the_xdp_answer_at_once_sqlite() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    let delays = moves_while_polling(&d, &db, 20);
    report("SQLite", &delays);
    // The tombstone of the last move is visible to operators and as TXT.
    let show = cli(&db, &["instance", "show", "123456"]);
    assert_eq!(show.matches("moved").count(), 20, "{show}");
    let txt = QueryBuilder::new("_moved.123456.example.org", RecordType::TXT).bytes();
    poll_until(&d.rig, server(), &txt, Duration::from_secs(2), |r| {
        Message::from_vec(r)
            .is_ok_and(|m| m.answers.iter().any(|a| a.data.to_string().contains("from=mt2 to=mt1")))
    })
    .expect("the tombstone TXT names the last move");
}

#[test]
fn moving_an_instance_changes_the_xdp_answer_at_once_postgresql() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let d = Deployment::start_on(&pg.url, tempfile::tempdir().unwrap(), &["--xdp-mode", "native"]);
    let delays = moves_while_polling(&d, &pg.url, 20);
    report("PostgreSQL", &delays);
}

/// A fleet: two nodes (each its own namespace pair and XDP program) on one PostgreSQL;
/// a change made through one reaches both.
#[test]
fn a_change_reaches_every_node_of_a_fleet() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let nodes: Vec<Deployment> = (0..2)
        .map(|_| Deployment::start_on(&pg.url, tempfile::tempdir().unwrap(), &["--xdp-mode", "native"]))
        .collect();
    let query = QueryBuilder::new("ws-234567.apps.example.com", RecordType::A).bytes();
    for d in &nodes {
        for _ in 0..2 {
            poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| {
                target(r).as_deref() == Some("ws-mt2.example.com.")
            })
            .expect("mt2 at first");
        }
    }
    cli(&pg.url, &["instance", "move", "234567", "--to", "mt1"]);
    for (i, d) in nodes.iter().enumerate() {
        let took = poll_until(&d.rig, server(), &query, Duration::from_secs(10), |r| {
            target(r).as_deref() == Some("ws-mt1.example.com.")
        })
        .unwrap_or_else(|| panic!("node {i} never saw the move"));
        eprintln!("node {i}: new answer after {took:?}");
    }
}

#[test]
fn the_hot_path_rides_through_a_database_outage() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    // An instance whose answers live 1 s: they expire during the outage.
    cli(&pg.url, &["instance", "add", "4444", "--cluster", "mt2", "--ttl", "1"]);
    let d = Deployment::start_on(&pg.url, tempfile::tempdir().unwrap(), &["--xdp-mode", "native"]);
    let hot = QueryBuilder::new("ws-123456.apps.example.com", RecordType::A).bytes();
    let short = QueryBuilder::new("4444.example.org", RecordType::A).bytes();
    let fresh = QueryBuilder::new("234567.example.org", RecordType::A).bytes();
    let rcode = |r: &[u8]| Message::from_vec(r).map(|m| m.metadata.response_code.low()).unwrap_or(255);
    for q in [&hot, &hot, &short] {
        poll_until(&d.rig, server(), q, Duration::from_secs(2), |r| rcode(r) == 0).expect("answered");
    }

    pg.stop();
    let hits = d.server.xdp("hit");
    poll_until(&d.rig, server(), &hot, Duration::from_secs(2), |r| {
        target(r).as_deref() == Some("ws-mt1.example.com.")
    })
    .expect("the hot name is still answered");
    assert_eq!(d.server.xdp("hit"), hits + 1, "by XDP");
    poll_until(&d.rig, server(), &fresh, Duration::from_secs(5), |r| rcode(r) == 2)
        .expect("a miss gets SERVFAIL");
    std::thread::sleep(Duration::from_millis(1500));
    poll_until(&d.rig, server(), &short, Duration::from_secs(2), |r| {
        rcode(r) == 0
            && Message::from_vec(r).is_ok_and(|m| m.answers.iter().any(|a| a.data.to_string() == "192.0.2.2"))
    })
    .expect("an expired answer is served stale while the database is down");
    assert!(d.server.metrics().get("instadns_stale_answers_total").copied().unwrap_or(0.0) >= 1.0);
    let ready = d.server.http_get("/ready").unwrap_or_default();
    assert!(ready.starts_with("not ready: database"), "/ready reports the outage: {ready}");
    assert_eq!(d.server.http_get("/health").as_deref(), Some("ok\n"), "the process itself is healthy");

    pg.start_again();
    cli(&pg.url, &["instance", "add", "31337", "--cluster", "mt2"]);
    let new = QueryBuilder::new("ws-31337.apps.example.com", RecordType::A).bytes();
    let took = poll_until(&d.rig, server(), &new, Duration::from_secs(15), |r| {
        target(r).as_deref() == Some("ws-mt2.example.com.")
    })
    .expect("after the database returns, new data is served again");
    eprintln!("recovered: a new instance answered {took:?} after it was added");
    poll_until(&d.rig, server(), &fresh, Duration::from_secs(5), |r| rcode(r) == 0)
        .expect("misses are answered again");
    assert_eq!(d.server.http_get("/ready").as_deref(), Some("ready\n"));
}

/// RFC 8767 section 4: answers served stale while the database is down carry the stale
/// TTL (30 s here, `[ttl] stale_answer_ttl`), not their own, from userspace and from
/// XDP alike, and are counted.
#[test]
fn stale_answers_carry_the_stale_ttl_in_xdp_too() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    cli(&pg.url, &["instance", "add", "5555", "--cluster", "mt2", "--ttl", "120"]);
    let dir = tempfile::tempdir().unwrap();
    // Answers leave the cache after a second, whatever their TTL: they expire during
    // the outage.
    let config = dir.path().join("instadns.toml");
    std::fs::write(&config, "[ttl]\nmax_cache = 1\nstale_answer_ttl = 30\n").unwrap();
    let d =
        Deployment::start_on(&pg.url, dir, &["--xdp-mode", "native", "--config", config.to_str().unwrap()]);
    let query = QueryBuilder::new("5555.example.org", RecordType::A).bytes();
    let ttl = |r: &[u8]| Message::from_vec(r).ok().and_then(|m| m.answers.first().map(|a| a.ttl));
    // Asked until the answer is cached (an XDP hit proves it: the daemon's start-up
    // catch-up may invalidate the very first answer before it is stored).
    let hits = d.server.xdp("hit");
    eventually("the answer is cached", Duration::from_secs(5), || {
        poll_until(&d.rig, server(), &query, Duration::from_secs(1), |r| ttl(r) == Some(120)).is_some()
            && d.server.xdp("hit") > hits
    });

    pg.stop();
    std::thread::sleep(Duration::from_millis(1500));
    poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| ttl(r) == Some(30))
        .expect("served stale with the stale TTL");
    let (hits, stale) = (d.server.xdp("hit"), d.server.xdp("hit_stale"));
    poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| ttl(r) == Some(30))
        .expect("the stale answer again");
    assert_eq!(
        (d.server.xdp("hit"), d.server.xdp("hit_stale")),
        (hits + 1, stale + 1),
        "from XDP, counted stale"
    );
    assert!(d.server.metrics().get("instadns_stale_answers_total").copied().unwrap_or(0.0) >= 1.0);
    pg.start_again();
}

/// The daemon keeps the custom domains inside its zones in memory, so a name that is
/// none costs no database lookup (a random-subdomain flood never reaches the database).
/// A domain added or removed while it serves must still change the answer at once, even
/// over a negative answer already in the XDP map.
#[test]
fn a_custom_domain_added_while_serving_is_answered_at_once() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    let query = QueryBuilder::new("www.Customer.example.org", RecordType::A).bytes();
    let rcode_and_answers = |r: &[u8]| {
        Message::from_vec(r)
            .map(|m| {
                (
                    m.metadata.response_code.low(),
                    m.answers.iter().map(|a| a.data.to_string()).collect::<Vec<_>>(),
                )
            })
            .ok()
    };
    // NXDOMAIN first, twice: the second from the XDP map.
    for _ in 0..2 {
        poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| {
            rcode_and_answers(r) == Some((3, vec![]))
        })
        .expect("NXDOMAIN before the domain exists");
    }
    cli(&db, &["domain", "add", "www.customer.example.org", "--instance", "123456"]);
    poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| {
        rcode_and_answers(r) == Some((0, vec!["192.0.2.1".to_owned()]))
    })
    .expect("the new custom domain answers the instance's cluster address");
    cli(&db, &["instance", "move", "123456", "--to", "mt2"]);
    poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| {
        rcode_and_answers(r) == Some((0, vec!["192.0.2.2".to_owned()]))
    })
    .expect("the custom domain follows its instance");
    // A cluster change reloads the zones' catalog but keeps the set of custom domains.
    cli(&db, &["cluster", "set", "mt2", "--address", "192.0.2.22"]);
    poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| {
        rcode_and_answers(r).is_some_and(|(rcode, mut answers)| {
            answers.sort();
            rcode == 0 && answers == ["192.0.2.2", "192.0.2.22"]
        })
    })
    .expect("the custom domain still answers after its cluster changed");
    cli(&db, &["domain", "rm", "www.customer.example.org"]);
    poll_until(&d.rig, server(), &query, Duration::from_secs(2), |r| {
        rcode_and_answers(r) == Some((3, vec![]))
    })
    .expect("NXDOMAIN once the domain is removed");
}
