//! The change feed cannot lose a change: whatever happens around a node (a change
//! committed while it loads, its LISTEN connection cut, PostgreSQL restarted, the node
//! cut off for longer than the log keeps changes, a table truncated), every committed
//! change reaches its XDP answers. Each row changes the address of cluster mt1 (or an
//! ACME value) and polls a name whose answer shows it, through the real XDP path.

use std::time::Duration;

use hickory_proto::{op::Message, rr::RecordType};
use tests::{
    dns::QueryBuilder,
    postgres::PgServer,
    server::{Deployment, cli, poll_until, server_v4 as server, udp_exchange},
    wait::eventually,
};

/// An instance on cluster mt1 (demo data): its A answer is mt1's address.
const HOST: &str = "blog.alice.example.org";
const OLD: &str = "192.0.2.1";
const NEW: &str = "192.0.2.77";

/// The A records of a response.
fn addresses(response: &[u8]) -> Vec<String> {
    Message::from_vec(response)
        .map(|m| {
            m.answers
                .iter()
                .filter(|r| r.record_type() == RecordType::A)
                .map(|r| r.data.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls HOST until its answer is `address`; panics with `what` after `timeout`.
fn wait_for_address(d: &Deployment, address: &str, timeout: Duration, what: &str) -> Duration {
    let query = QueryBuilder::new(HOST, RecordType::A).bytes();
    poll_until(&d.rig, server(), &query, timeout, |r| addresses(r) == [address]).unwrap_or_else(|| {
        let last = udp_exchange(&d.rig, server(), &query);
        panic!("{what}: {HOST} answers {:?}, never {address}\n{}", addresses(&last), d.server.log_text())
    })
}

/// Answers HOST with OLD twice, the second time from XDP.
fn warm(d: &Deployment) {
    wait_for_address(d, OLD, Duration::from_secs(5), "before the change");
    let hits = d.server.xdp("hit");
    wait_for_address(d, OLD, Duration::from_secs(2), "again");
    assert_eq!(d.server.xdp("hit"), hits + 1, "the warm answer comes from XDP");
}

/// Moves cluster mt1 from OLD to NEW through the CLI.
fn change_address(db: &str) {
    cli(db, &["cluster", "set", "mt1", "--address", NEW, "--remove-address", OLD]);
}

fn start(db: &str) -> Deployment {
    Deployment::start_on(db, tempfile::tempdir().expect("temporary directory"), &["--xdp-mode", "native"])
}

fn metric(d: &Deployment, name: &str) -> f64 {
    d.server.metrics().get(name).copied().unwrap_or(0.0)
}

/// A change committed after the node read the catalog but before it finished loading
/// (here: while the known names wait for a lock on `instances`), followed by 1,500
/// others, is applied: the node reads its cursor before the data (a cursor read after
/// it, and a re-read of the last 1,000 changes, would miss it).
#[test]
fn a_change_committed_while_the_node_loads_is_applied() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let mut lock = pg.session();
    lock.send("BEGIN; LOCK TABLE instances IN ACCESS EXCLUSIVE MODE;");
    let granted = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                   WHERE c.relname = 'instances' AND l.mode = 'AccessExclusiveLock' AND l.granted";
    eventually("the test holds the lock", Duration::from_secs(10), || pg.psql(granted).trim() == "1");
    // The node is started here (a daemon dies with the thread that started it); a
    // helper commits the change once the node waits for the lock, then releases it.
    let committer = std::thread::scope(|scope| {
        let helper = scope.spawn(|| {
            let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                           AND query LIKE '%FROM instances%' AND pid <> pg_backend_pid()";
            eventually("the node loads and waits for the instances", Duration::from_secs(20), || {
                pg.psql(waiting).trim() != "0"
            });
            // Another program (it reads no instances, so the lock does not hold it up),
            // then a busy minute's worth of other changes after it.
            pg.psql(&format!("UPDATE cluster_addresses SET address = '{NEW}' WHERE address = '{OLD}'"));
            pg.psql(
                "INSERT INTO acme_challenges (name, kind, value) \
                 SELECT 'busy-' || g || '.example.org', 'txt', 'v' FROM generate_series(1, 1500) g",
            );
            lock.send("COMMIT;");
        });
        let d = start(&pg.url);
        helper.join().expect("the helper");
        d
    });
    let d = committer;
    let took = wait_for_address(&d, NEW, Duration::from_secs(5), "the change committed while loading");
    eprintln!("applied {took:?} after the first query");
}

/// The node's LISTEN connection is terminated by the server: it connects again,
/// listens, catches up, and a change committed meanwhile arrives.
#[test]
fn a_cut_listen_connection_loses_no_change() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let d = start(&pg.url);
    warm(&d);
    let cut =
        pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'");
    assert_eq!(cut.trim(), "1", "the node's LISTEN connection");
    change_address(&pg.url);
    let took = wait_for_address(&d, NEW, Duration::from_secs(10), "after the connection was cut");
    eprintln!("change after a cut LISTEN connection: answered after {took:?}");
    eventually("the node listens again", Duration::from_secs(10), || {
        pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'").trim() == "1"
    });
}

/// PostgreSQL restarts; a change committed as soon as it is back (before the node has
/// reconnected) arrives, and so does the next one.
#[test]
fn a_postgresql_restart_loses_no_change() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let d = start(&pg.url);
    warm(&d);
    pg.stop();
    pg.start_again();
    change_address(&pg.url);
    wait_for_address(&d, NEW, Duration::from_secs(15), "the change right after the restart");
    cli(&pg.url, &["cluster", "set", "mt1", "--address", OLD, "--remove-address", NEW]);
    wait_for_address(&d, OLD, Duration::from_secs(5), "the next change");
}

/// A node that misses changes because the log was pruned past its cursor (stopped
/// here with SIGSTOP while a change is made and every change pruned, as a node cut
/// off from the database for longer than `keep_changes_hours`) notices and reloads
/// everything: its answers are right afterwards.
fn a_node_cut_off_past_the_log_retention_reloads_everything(db: &str, d: &Deployment) {
    warm(d);
    let reloads = metric(d, "instadns_change_full_reloads_total");
    d.server.signal(libc::SIGSTOP);
    change_address(db);
    let pruned = cli(db, &["db", "prune", "--keep-hours", "0"]);
    assert!(pruned.starts_with("pruned "), "{pruned}");
    assert!(!pruned.starts_with("pruned 0 "), "the change is pruned: {pruned}");
    d.server.signal(libc::SIGCONT);
    let took = wait_for_address(d, NEW, Duration::from_secs(10), "after missed changes");
    eprintln!("missed change: answered after {took:?}");
    // One, also after a few catch-ups over the log that pruning left empty.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(metric(d, "instadns_change_full_reloads_total"), reloads + 1.0, "one full reload");
    // And the feed goes on from there.
    cli(db, &["cluster", "set", "mt1", "--address", OLD, "--remove-address", NEW]);
    wait_for_address(d, OLD, Duration::from_secs(5), "the next change");
}

#[test]
fn a_node_cut_off_past_the_log_retention_reloads_everything_sqlite() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    a_node_cut_off_past_the_log_retention_reloads_everything(&d.db(), &d);
}

#[test]
fn a_node_cut_off_past_the_log_retention_reloads_everything_postgresql() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let d = start(&pg.url);
    a_node_cut_off_past_the_log_retention_reloads_everything(&pg.url, &d);
}

/// TRUNCATE bypasses row triggers: it is logged as one change that makes every node
/// reload; a TRUNCATE of the change log itself is refused.
#[test]
fn a_truncated_table_reaches_the_answers_and_the_log_cannot_be_truncated() {
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    cli(&pg.url, &["acme", "set", HOST, "--txt", "token-1"]);
    let d = start(&pg.url);
    let query = QueryBuilder::new(&format!("_acme-challenge.{HOST}"), RecordType::TXT).bytes();
    let txt = |r: &[u8]| Message::from_vec(r).map(|m| m.answers.len()).unwrap_or(0);
    for _ in 0..2 {
        poll_until(&d.rig, server(), &query, Duration::from_secs(5), |r| txt(r) == 1).expect("the challenge");
    }
    let serials = || pg.psql("SELECT string_agg(apex || '=' || soa_serial, ' ' ORDER BY apex) FROM zones");
    let before = serials();
    pg.psql("TRUNCATE acme_challenges");
    let took = poll_until(&d.rig, server(), &query, Duration::from_secs(5), |r| txt(r) == 0)
        .unwrap_or_else(|| panic!("the truncated challenge is still answered\n{}", d.server.log_text()));
    eprintln!("TRUNCATE: answer gone after {took:?}");
    assert_eq!(metric(&d, "instadns_change_full_reloads_total"), 1.0);
    // Every zone's serial moved (secondaries must see the change), and the answers say so.
    let after = serials();
    let bumped = |text: &str| -> Vec<(String, u64)> {
        text.split_whitespace()
            .filter_map(|pair| pair.split_once('=').map(|(z, s)| (z.to_owned(), s.parse().unwrap_or(0))))
            .collect()
    };
    let (before, after) = (bumped(&before), bumped(&after));
    assert!(!before.is_empty() && before.len() == after.len(), "{before:?} {after:?}");
    for ((zone, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(*new, old + 1, "{zone}: serial {old} before the TRUNCATE, {new} after");
    }
    let soa = QueryBuilder::new("example.org", RecordType::SOA).bytes();
    let serial_of = |r: &[u8]| {
        Message::from_vec(r).ok().and_then(|m| match m.answers.first().map(|a| &a.data) {
            Some(hickory_proto::rr::RData::SOA(soa)) => Some(u64::from(soa.serial)),
            _ => None,
        })
    };
    let expected = after.iter().find(|(z, _)| z == "example.org.").map(|(_, s)| *s);
    poll_until(&d.rig, server(), &soa, Duration::from_secs(5), |r| serial_of(r) == expected)
        .unwrap_or_else(|| panic!("the SOA does not show serial {expected:?}\n{}", d.server.log_text()));

    let refused = pg.try_psql("TRUNCATE changes").expect_err("TRUNCATE of the change log is refused");
    assert!(refused.contains("instadns db prune"), "the error names the way out: {refused}");
    assert_ne!(pg.psql("SELECT count(*) FROM changes").trim(), "0");
}
