//! Faults the platform meets (issue 18). The filesystem holding the SQLite database
//! fills up while the daemon serves: writes fail at once with an error that says what
//! to do, nothing committed is lost or corrupted, the daemon keeps answering, and once
//! space is freed writes work and reach the answers again. The link to PostgreSQL gets
//! slow, stalls or resets (a TCP proxy in the server's namespace): answers stay right,
//! lookups are bounded by their deadline without piling up, and recovery is automatic.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use hickory_proto::rr::RecordType;
use tests::{
    dns::{QueryBuilder, answer_data},
    server::{Deployment, cli, cli_run, demo_db, poll_until, server_v4 as server},
};

/// A tmpfs of `size` mounted on `dir` for the test, unmounted on drop.
struct SmallFilesystem(PathBuf);

impl SmallFilesystem {
    fn mount(dir: &Path, size: &str) -> Self {
        tests::require_root();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(status.success(), "mounting a tmpfs on {}", dir.display());
        Self(dir.to_owned())
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the filesystem has no room left.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler file");
    let block = vec![0xa5u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_full_database_filesystem_fails_writes_clearly_loses_nothing_and_recovers() {
    let state = tempfile::tempdir().expect("state directory");
    let _small = SmallFilesystem::mount(state.path(), "16m");
    let db = demo_db(state.path());
    let d = Deployment::start_on(&db, tempfile::tempdir().expect("log directory"), &[]);
    let blog = QueryBuilder::new("blog.alice.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &blog, Duration::from_secs(5), |r| !answer_data(r).is_empty())
        .expect("the demo data is answered");
    cli(&db, &["instance", "add", "700001", "--cluster", "mt2", "--name", "before", "--owner", "zed"]);

    // The filesystem fills up: a write fails with an error naming the cause and the fix.
    let filler = state.path().join("filler");
    fill(&filler);
    let failed = cli_run(
        &db,
        &["instance", "add", "700002", "--cluster", "mt2", "--name", "during", "--owner", "zed"],
    );
    assert_ne!(failed.code, 0, "a write to a full filesystem must fail: {}", failed.stdout);
    assert!(
        failed.stderr.contains("full") && failed.stderr.contains("free space"),
        "the error says the disk is full and what to do: {}",
        failed.stderr
    );
    assert!(!failed.stderr.contains("panicked"), "{}", failed.stderr);

    // The daemon keeps answering, from the data it had and from the database.
    let before = QueryBuilder::new("before.zed.example.org", RecordType::A).bytes();
    for query in [&blog, &before] {
        poll_until(&d.rig, server(), query, Duration::from_secs(5), |r| !answer_data(r).is_empty())
            .unwrap_or_else(|| panic!("not answered while the disk is full\n{}", d.server.log_text()));
    }
    // Its own periodic writes (the fleet report, every 5 s) fail without stopping it.
    std::thread::sleep(Duration::from_secs(6));
    poll_until(&d.rig, server(), &blog, Duration::from_secs(5), |r| !answer_data(r).is_empty())
        .unwrap_or_else(|| panic!("the daemon stopped answering on a full disk\n{}", d.server.log_text()));

    // Space again: writes work and reach the answers; nothing was lost or damaged.
    std::fs::remove_file(&filler).expect("freeing space");
    cli(&db, &["instance", "add", "700003", "--cluster", "mt2", "--name", "after", "--owner", "zed"]);
    let after = QueryBuilder::new("after.zed.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &after, Duration::from_secs(5), |r| !answer_data(r).is_empty())
        .unwrap_or_else(|| {
            panic!("a write after the disk was freed is not answered\n{}", d.server.log_text())
        });
    let list = cli(&db, &["instance", "list"]);
    for (id, present) in [("700001", true), ("700002", false), ("700003", true)] {
        assert_eq!(list.contains(id), present, "instance {id} in:\n{list}");
    }
    let integrity: String = rusqlite::Connection::open(&db)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
}

/// Queries a burst sends before it reads answers.
const SEND_CHUNK: usize = 20;

/// What a burst of queries got: per query, its RCODE and how long the answer took, or
/// None if none came within the wait.
fn burst(rig: &tests::netns::VethRig, queries: &[Vec<u8>], wait: Duration) -> Vec<Option<(u8, Duration)>> {
    let queries: Vec<Vec<u8>> =
        queries.iter().enumerate().map(|(i, q)| [&(i as u16).to_be_bytes()[..], &q[2..]].concat()).collect();
    tests::netns::in_netns(&rig.client_ns, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("client socket");
        let mut got = vec![None; queries.len()];
        let mut sent_at = vec![std::time::Instant::now(); queries.len()];
        let mut buf = [0u8; 4096];
        let mut receive = |got: &mut Vec<Option<(u8, Duration)>>, sent_at: &[std::time::Instant]| {
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && n >= 12
            {
                let id = u16::from_be_bytes([buf[0], buf[1]]) as usize;
                if let Some(slot) = got.get_mut(id) {
                    *slot = Some((buf[3] & 0xf, sent_at[id].elapsed()));
                }
            }
        };
        // Paced (a chunk every few milliseconds, reading answers in between), so that
        // socket buffers, not the server, are never what loses a query.
        socket.set_read_timeout(Some(Duration::from_millis(2))).expect("timeout");
        for (i, q) in queries.iter().enumerate() {
            sent_at[i] = std::time::Instant::now();
            socket.send_to(q, server()).expect("send");
            if i % SEND_CHUNK == SEND_CHUNK - 1 {
                for _ in 0..SEND_CHUNK {
                    receive(&mut got, &sent_at);
                }
            }
        }
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let started = std::time::Instant::now();
        while started.elapsed() < wait && got.iter().any(Option::is_none) {
            receive(&mut got, &sent_at);
        }
        got
    })
}

/// Names whose answers need the database (instances of the demo data, asked for the
/// first time), each asked `copies` times.
fn database_bound(copies: usize, types: &[RecordType]) -> Vec<Vec<u8>> {
    let names = [
        "123456.example.org",
        "ws-123456.apps.example.com",
        "shop.bob.example.org",
        "blog.alice.example.org",
    ];
    let mut out = Vec::new();
    for _ in 0..copies {
        for name in names {
            for t in types {
                out.push(QueryBuilder::new(name, *t).bytes());
            }
        }
    }
    out
}

/// PostgreSQL behind a faulty link (a TCP proxy in the server's namespace): with 200 ms
/// added to every message, answers and changes still arrive; while the link stalls
/// (a partition: nothing goes through), hot answers keep coming from XDP and every
/// lookup that needs the database is answered (SERVFAIL) within its deadline instead
/// of waiting on the dead link, however many ask; when every connection is reset, the
/// daemon reconnects on its own. After each fault a change reaches the answers.
#[test]
fn postgresql_behind_a_slow_stalled_or_resetting_link_answers_stay_bounded_and_recover() {
    use tests::{
        postgres::PgServer,
        proxy::{Fault, FaultProxy},
        server::ServerProcess,
    };
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let rig = tests::netns::VethRig::new().with_client_pass_program();
    let proxy = FaultProxy::start(&rig.server_ns, pg.unix_socket());
    let url = format!("postgres://instadns@{}/instadns", proxy.addr);
    let dir = tempfile::tempdir().expect("log directory");
    // The default statement timeout: 2 s. Without response rate limiting: the bursts
    // below are one client asking hundreds of times a second, which RRL would thin.
    let process = ServerProcess::start(
        &rig,
        &url,
        &dir.path().join("instadns.log"),
        &["--xdp-mode", "native", "--rrl-rate", "0"],
    );
    let d = Deployment { server: process, rig, dir };
    let blog = QueryBuilder::new("blog.alice.example.org", RecordType::A).bytes();
    let answers = |query: &[u8], what: &str, within: Duration| {
        poll_until(&d.rig, server(), query, within, |r| !answer_data(r).is_empty())
            .unwrap_or_else(|| panic!("{what}: not answered within {within:?}\n{}", d.server.log_text()))
    };
    let move_to = |address: &str, from: &str| {
        cli(&pg.url, &["cluster", "set", "mt1", "--address", address, "--remove-address", from]);
    };
    let shows = |address: &str, what: &str, within: Duration| {
        let address = address.to_owned();
        poll_until(&d.rig, server(), &blog, within, move |r| answer_data(r).contains(&address))
            .unwrap_or_else(|| panic!("{what}: the change never arrived\n{}", d.server.log_text()))
    };
    answers(&blog, "before any fault", Duration::from_secs(10));

    // Latency: 200 ms on every chunk each way.
    proxy.set(Fault::Latency(Duration::from_millis(200)));
    answers(
        &QueryBuilder::new("shop.bob.example.org", RecordType::A).bytes(),
        "over a slow link",
        Duration::from_secs(10),
    );
    move_to("192.0.2.71", "192.0.2.1");
    let took = shows("192.0.2.71", "over a slow link", Duration::from_secs(15));
    eprintln!("slow link: a change arrived after {took:?}");

    // A stall: the hot answer keeps coming from XDP. The first lookup that needs the
    // database waits out the deadline (statement timeout 2 s plus 1 s) and gets
    // SERVFAIL; then the daemon stays away from the database but for one probe a
    // second, so a burst of 400 lookups of 16 keys is answered at once: none waits on
    // the dead link, however many ask.
    proxy.set(Fault::Stall);
    let hits = d.server.xdp("hit");
    answers(&blog, "while the link stalls", Duration::from_secs(1));
    assert!(d.server.xdp("hit") > hits, "the hot answer comes from XDP while the database is unreachable");
    let first = burst(&d.rig, &database_bound(1, &[RecordType::SOA]), Duration::from_secs(8));
    eprintln!("stalled link: the first lookups got {first:?}");
    assert!(
        first.iter().all(|g| matches!(g, Some((2, t)) if *t < Duration::from_millis(4500))),
        "the first lookups get SERVFAIL within the deadline: {first:?}\n{}",
        d.server.log_text()
    );
    let misses = database_bound(25, &[RecordType::AAAA, RecordType::TXT, RecordType::MX, RecordType::CAA]);
    let got = burst(&d.rig, &misses, Duration::from_secs(10));
    let unanswered = got.iter().filter(|g| g.is_none()).count();
    let servfail = got.iter().flatten().filter(|(rcode, _)| *rcode == 2).count();
    let slowest = got.iter().flatten().map(|(_, t)| *t).max().unwrap_or_default();
    eprintln!(
        "stalled link: {} of {} answered ({servfail} SERVFAIL), slowest {slowest:?}",
        got.len() - unanswered,
        got.len()
    );
    let unanswered_keys: std::collections::BTreeSet<String> = got
        .iter()
        .zip(&misses)
        .filter(|(g, _)| g.is_none())
        .map(|(_, q)| format!("{:?}", hickory_proto::op::Message::from_vec(q).map(|m| m.queries)))
        .collect();
    assert_eq!(
        unanswered,
        0,
        "every lookup is answered while the link stalls: {unanswered_keys:?}\n{}",
        d.server.log_text()
    );
    assert_eq!(servfail, got.len(), "the lookups needed the database: SERVFAIL while it is unreachable");
    assert!(slowest < Duration::from_secs(2), "the slowest answer took {slowest:?}: lookups piled up");
    let refused = d.server.sample("instadns_database_statements_refused_total");
    assert!(refused > 0.0, "statements were kept away from the stalled database");
    assert_eq!(d.server.sample("instadns_database_breaker_open"), 1.0);
    proxy.set(Fault::None);
    move_to("192.0.2.72", "192.0.2.71");
    let took = shows("192.0.2.72", "after the stall", Duration::from_secs(20));
    eprintln!("after the stall: a change arrived after {took:?}");

    // Resets: every connection dropped with RST, new ones too, for 2 s.
    let accepted = proxy.accepted();
    proxy.set(Fault::Reset);
    std::thread::sleep(Duration::from_secs(2));
    answers(&blog, "while connections are reset", Duration::from_secs(1));
    proxy.set(Fault::None);
    move_to("192.0.2.1", "192.0.2.72");
    let took = shows("192.0.2.1", "after the resets", Duration::from_secs(20));
    eprintln!("after the resets: a change arrived after {took:?}");
    assert!(proxy.accepted() > accepted, "the daemon reconnected through the proxy");
    let got = burst(&d.rig, &database_bound(1, &[RecordType::A]), Duration::from_secs(5));
    assert!(got.iter().all(|g| matches!(g, Some((0, _)))), "lookups work again after the resets: {got:?}");
    assert_eq!(d.server.sample("instadns_database_breaker_open"), 0.0, "the breaker closed again");
}

/// Another writer holds the SQLite database locked for 8 s (a long transaction of some
/// other tool): the daemon keeps answering, from XDP and from the database (WAL readers
/// are not blocked); a CLI write that cannot get the lock within the 5 s busy timeout
/// fails saying so and what to do, with nothing committed; one that starts later waits
/// for the lock instead of failing, commits, and reaches the answers.
#[test]
fn a_sqlite_database_held_locked_by_another_writer_delays_writes_without_losing_them_or_answers() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    let blog = QueryBuilder::new("blog.alice.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &blog, Duration::from_secs(5), |r| !answer_data(r).is_empty())
        .expect("the demo data is answered");
    const HELD: Duration = Duration::from_secs(8);
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = {
        let db = db.clone();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).expect("another writer");
            conn.execute_batch("BEGIN EXCLUSIVE; UPDATE zones SET soa_refresh = soa_refresh;")
                .expect("the lock");
            locked_tx.send(std::time::Instant::now()).expect("locked");
            std::thread::sleep(HELD);
            conn.execute_batch("COMMIT").expect("releasing the lock");
        })
    };
    let locked_at = locked_rx.recv().expect("the lock is held");

    // Answers go on: from XDP, and a name never asked before from the database.
    poll_until(&d.rig, server(), &blog, Duration::from_secs(1), |r| !answer_data(r).is_empty())
        .unwrap_or_else(|| panic!("not answered while the database is locked\n{}", d.server.log_text()));
    let shop = QueryBuilder::new("shop.bob.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &shop, Duration::from_secs(2), |r| answer_data(r) == ["192.0.2.2"])
        .unwrap_or_else(|| panic!("a lookup while the database is locked\n{}", d.server.log_text()));

    // A write that cannot get the lock in time fails clearly, committing nothing.
    let failed =
        cli_run(&db, &["instance", "add", "700011", "--cluster", "mt2", "--name", "early", "--owner", "zed"]);
    assert_ne!(failed.code, 0, "a write past the busy timeout fails: {}", failed.stdout);
    assert!(
        failed.stderr.contains("locked by another writer") && failed.stderr.contains("retry"),
        "the error says what happened and what to do: {}",
        failed.stderr
    );
    assert!(!failed.stderr.contains("panicked"), "{}", failed.stderr);
    // One that starts less than the busy timeout before the lock goes waits for it.
    let wait = (locked_at + HELD).saturating_duration_since(std::time::Instant::now());
    std::thread::sleep(wait.saturating_sub(Duration::from_secs(3)));
    let waited =
        cli_run(&db, &["instance", "add", "700012", "--cluster", "mt2", "--name", "late", "--owner", "zed"]);
    assert_eq!(waited.code, 0, "a write within the busy timeout waits and commits: {}", waited.stderr);
    holder.join().expect("the other writer");
    let late = QueryBuilder::new("late.zed.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &late, Duration::from_secs(5), |r| answer_data(r) == ["192.0.2.2"])
        .unwrap_or_else(|| panic!("the waited write is not answered\n{}", d.server.log_text()));
    let list = cli(&db, &["instance", "list"]);
    assert!(!list.contains("700011") && list.contains("700012"), "{list}");
}
