//! The soak (issue 18): UDP and TCP load against a daemon on SQLite while instances
//! move between clusters, one every 10 ms. It asserts that the daemon's memory and its
//! XDP name maps stay bounded and that every answer matched the database: the cluster
//! it names was the instance's at some moment between 100 ms before the query was sent
//! and the moment the answer came. `cargo xtask soak` runs it for 10 minutes on the
//! release build and writes `benchmarks/soak.md`; `cargo xtask test` runs 20 seconds.

use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hickory_proto::{
    op::Message,
    rr::{RData, RecordType},
};
use tests::{
    dns::QueryBuilder,
    netns::in_netns,
    server::{Deployment, demo_db, poll_until, server_v4 as server},
};

/// Instances the load asks for and the writer moves (`{id}.example.org`).
const INSTANCES: u64 = 500;
const FIRST_ID: u64 = 900_000;
/// One instance moves to the other cluster this often.
const CHANGE_EVERY: Duration = Duration::from_millis(10);
/// How long after a change commits an answer may still show the old cluster.
const STALENESS: Duration = Duration::from_millis(100);
const UDP_QUERIES_PER_SECOND: u64 = 2_000;
const TCP_QUERIES_PER_SECOND: u64 = 200;
/// The demo's clusters by the addresses their host names answer.
const CLUSTERS: [(&str, u8); 4] =
    [("192.0.2.1", 1), ("2001:db8::1", 1), ("192.0.2.2", 2), ("2001:db8::2", 2)];
/// Memory the daemon may grow by after the warm-up (a leak grows without bound).
const RSS_GROWTH_BOUND: u64 = 64 << 20;

fn soak_duration() -> Duration {
    let seconds = std::env::var("INSTADNS_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    Duration::from_secs(seconds)
}

/// Which cluster each instance was in, and when: per instance, states in order.
struct History {
    started: Instant,
    /// Per instance: (the change began, it committed, cluster). The first state is the
    /// initial one (from the start).
    states: Vec<Mutex<Vec<(Instant, Instant, u8)>>>,
}

impl History {
    fn new(initial: impl Fn(u64) -> u8) -> Self {
        let started = Instant::now();
        let states = (0..INSTANCES).map(|i| Mutex::new(vec![(started, started, initial(i))])).collect();
        Self { started, states }
    }

    /// Whether `cluster` may be the answer for `instance` to a query sent at `sent` and
    /// answered at `answered`: a state with that cluster held (from the moment its
    /// change began until the next one committed, plus the staleness allowed) at some
    /// time in between.
    fn allows(&self, instance: u64, cluster: u8, sent: Instant, answered: Instant) -> bool {
        let states = self.states[instance as usize].lock().unwrap_or_else(|p| p.into_inner());
        states.iter().enumerate().any(|(k, (began, _, c))| {
            let until = states.get(k + 1).map(|(_, committed, _)| *committed + STALENESS);
            *c == cluster && *began <= answered && until.is_none_or(|u| sent <= u)
        })
    }
}

/// What one load generator saw.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    wrong: AtomicU64,
    /// Answers that were errors or held no address.
    other: AtomicU64,
    first_wrong: Mutex<Vec<String>>,
}

impl Tally {
    /// Checks an answer to a query for `instance` sent at `sent`.
    fn check(&self, history: &History, instance: u64, response: &[u8], sent: Instant) {
        let answered = Instant::now();
        self.answered.fetch_add(1, Ordering::Relaxed);
        let address = Message::from_vec(response).ok().and_then(|m| {
            m.answers.iter().find_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
        });
        let cluster =
            address.and_then(|a| CLUSTERS.iter().find(|(text, _)| text.parse() == Ok(a)).map(|c| c.1));
        let Some(cluster) = cluster else {
            self.other.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !history.allows(instance, cluster, sent, answered) {
            self.wrong.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first_wrong.lock().unwrap_or_else(|p| p.into_inner());
            if first.len() < 10 {
                let states = history.states[instance as usize].lock().unwrap_or_else(|p| p.into_inner());
                let at = |t: Instant| t.duration_since(history.started).as_millis();
                first.push(format!(
                    "instance {} answered cluster {cluster} (sent at {} ms, answered at {} ms); states: {:?}",
                    FIRST_ID + instance,
                    at(sent),
                    at(answered),
                    states.iter().rev().take(3).map(|(b, c, k)| (at(*b), at(*c), *k)).collect::<Vec<_>>()
                ));
            }
        }
    }
}

fn query_for(instance: u64, id: u16) -> Vec<u8> {
    let qtype = if instance.is_multiple_of(2) { RecordType::A } else { RecordType::AAAA };
    QueryBuilder::new(&format!("{}.example.org", FIRST_ID + instance), qtype).id(id).bytes()
}

/// A cheap deterministic stream of instance picks.
fn pick(seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) % INSTANCES
}

/// UDP at a steady rate from one socket; answers matched by ID.
fn udp_load(ns: String, history: Arc<History>, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    in_netns(&ns, || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("client socket");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let pending: Arc<Mutex<HashMap<u16, (u64, Instant)>>> = Arc::default();
        std::thread::scope(|s| {
            let receiver = socket.try_clone().expect("socket clone");
            let (pending_rx, stop_rx) = (pending.clone(), stop.clone());
            let (history, tally) = (&history, &tally);
            s.spawn(move || {
                let mut buf = [0u8; 4096];
                let mut quiet_since: Option<Instant> = None;
                loop {
                    match receiver.recv_from(&mut buf) {
                        Ok((n, _)) if n >= 12 => {
                            let id = u16::from_be_bytes([buf[0], buf[1]]);
                            let asked = pending_rx.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                            if let Some((instance, sent)) = asked {
                                tally.check(history, instance, &buf[..n], sent);
                            }
                        }
                        _ => {}
                    }
                    // After the stop, the last answers get a second to arrive.
                    if stop_rx.load(Ordering::Relaxed) {
                        let since = *quiet_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(1) {
                            break;
                        }
                    }
                }
            });
            let interval = Duration::from_secs(1) / UDP_QUERIES_PER_SECOND as u32;
            let started = Instant::now();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = started + interval * seq as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let instance = pick(seq);
                let id = seq as u16;
                pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, (instance, Instant::now()));
                if socket.send_to(&query_for(instance, id), server()).is_ok() {
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                }
                seq += 1;
            }
        });
    });
}

/// TCP at a steady rate, one query at a time on one connection (a new one if it closes).
fn tcp_load(ns: String, history: Arc<History>, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    in_netns(&ns, || {
        let interval = Duration::from_secs(1) / TCP_QUERIES_PER_SECOND as u32;
        let mut connection: Option<std::net::TcpStream> = None;
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(interval);
            let stream = match connection.as_mut() {
                Some(s) => s,
                None => match std::net::TcpStream::connect_timeout(&server(), Duration::from_secs(2)) {
                    Ok(s) => {
                        s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
                        connection.insert(s)
                    }
                    Err(_) => continue,
                },
            };
            let instance = pick(seq ^ 0x5555);
            let query = query_for(instance, seq as u16);
            seq += 1;
            let sent = Instant::now();
            let framed = [&(query.len() as u16).to_be_bytes()[..], &query].concat();
            tally.sent.fetch_add(1, Ordering::Relaxed);
            let mut length = [0u8; 2];
            let exchanged =
                stream.write_all(&framed).and_then(|_| stream.read_exact(&mut length)).and_then(|_| {
                    let mut response = vec![0u8; u16::from_be_bytes(length) as usize];
                    stream.read_exact(&mut response).map(|_| response)
                });
            match exchanged {
                Ok(response) => tally.check(&history, instance, &response, sent),
                Err(_) => connection = None,
            }
        }
    });
}

/// Moves one instance to the other cluster every CHANGE_EVERY, recording when.
fn writer(db: String, history: Arc<History>, stop: Arc<AtomicBool>, changes: Arc<AtomicU64>) {
    let conn = rusqlite::Connection::open(&db).expect("the soak's database");
    conn.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
    let started = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = started + CHANGE_EVERY * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let instance = n % INSTANCES;
        let mut states = history.states[instance as usize].lock().unwrap_or_else(|p| p.into_inner());
        let cluster = 3 - states.last().map_or(1, |s| s.2);
        let began = Instant::now();
        conn.execute(
            "UPDATE instances SET cluster_id = (SELECT id FROM clusters WHERE name = ?1) WHERE id = ?2",
            rusqlite::params![format!("mt{cluster}"), (FIRST_ID + instance) as i64],
        )
        .expect("moving an instance");
        states.push((began, Instant::now(), cluster));
        drop(states);
        changes.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}

struct Sample {
    at: Duration,
    rss: u64,
    names: f64,
}

#[test]
fn soak_under_udp_and_tcp_load_with_a_change_every_10_ms_memory_stays_bounded_and_answers_right() {
    let duration = soak_duration();
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = demo_db(dir.path());
    let initial = |i: u64| (i % 2) as u8 + 1;
    {
        let conn = rusqlite::Connection::open(&db).expect("the demo database");
        let values: Vec<String> = (0..INSTANCES)
            .map(|i| format!("({}, (SELECT id FROM clusters WHERE name = 'mt{}'))", FIRST_ID + i, initial(i)))
            .collect();
        conn.execute_batch(&format!("INSERT INTO instances (id, cluster_id) VALUES {};", values.join(",")))
            .expect("soak instances");
    }
    // Without response rate limiting: the load is one client asking thousands of
    // times a second, which RRL exists to stop.
    let d = Deployment::start_on(&db, dir, &["--xdp-mode", "native", "--rrl-rate", "0"]);
    let probe = query_for(0, 1);
    poll_until(&d.rig, server(), &probe, Duration::from_secs(10), |r| !r.is_empty())
        .unwrap_or_else(|| panic!("the daemon answers\n{}", d.server.log_text()));

    let history = Arc::new(History::new(initial));
    let stop = Arc::new(AtomicBool::new(false));
    let (udp, tcp) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let changes = Arc::new(AtomicU64::new(0));
    let threads = vec![
        {
            let (ns, h, t, s) = (d.rig.client_ns.clone(), history.clone(), udp.clone(), stop.clone());
            std::thread::spawn(move || udp_load(ns, h, t, s))
        },
        {
            let (ns, h, t, s) = (d.rig.client_ns.clone(), history.clone(), tcp.clone(), stop.clone());
            std::thread::spawn(move || tcp_load(ns, h, t, s))
        },
        {
            let (db, h, s, c) = (db.clone(), history.clone(), stop.clone(), changes.clone());
            std::thread::spawn(move || writer(db, h, s, c))
        },
    ];
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(1).min(duration.saturating_sub(started.elapsed())));
        samples.push(Sample {
            at: started.elapsed(),
            rss: d.server.rss_bytes(),
            names: d.server.sample("instadns_map_names"),
        });
    }
    // The load's duration: the threads stop now (the UDP receiver waits a second more
    // for the last answers).
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a soak thread");
    }

    // The warm-up: the first fifth of the run (the caches fill, the runtime grows its
    // pools); after it, memory may not keep growing.
    let warm = samples.iter().find(|s| s.at >= elapsed / 5).unwrap_or(&samples[0]);
    let peak = samples.iter().map(|s| s.rss).max().unwrap_or(0);
    let last = samples.last().map_or(0, |s| s.rss);
    let most_names = samples.iter().map(|s| s.names).fold(0.0, f64::max);
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let bin = tests::server::instadns_bin();
    let build = bin.parent().and_then(|p| p.file_name()).map_or("?".into(), |n| n.to_string_lossy());
    let report = format!(
        "# Soak: UDP and TCP load with an instance moved every 10 ms\n\n\
         `cargo xtask soak` (the {} build, on SQLite, native XDP on a veth rig; {} s).\n\n\
         | | UDP | TCP |\n| --- | ---: | ---: |\n\
         | queries sent | {} | {} |\n| answered | {} | {} |\n\
         | answers naming a cluster the instance was not in (within {} ms) | {} | {} |\n\
         | answers without an address | {} | {} |\n\n\
         Changes committed: {} ({:.0}/s). Daemon RSS: {:.1} MiB after the warm-up, peak {:.1} MiB, \
         at the end {:.1} MiB (bound: +{} MiB). Names in the XDP name maps: at most {} \
         ({} instances asked for).\n",
        build,
        elapsed.as_secs(),
        get(&udp.sent),
        get(&tcp.sent),
        get(&udp.answered),
        get(&tcp.answered),
        STALENESS.as_millis(),
        get(&udp.wrong),
        get(&tcp.wrong),
        get(&udp.other),
        get(&tcp.other),
        get(&changes),
        get(&changes) as f64 / elapsed.as_secs_f64(),
        warm.rss as f64 / (1 << 20) as f64,
        peak as f64 / (1 << 20) as f64,
        last as f64 / (1 << 20) as f64,
        RSS_GROWTH_BOUND >> 20,
        most_names,
        INSTANCES,
    );
    eprintln!("{report}");
    if let Ok(path) = std::env::var("INSTADNS_SOAK_REPORT") {
        std::fs::write(&path, &report).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    let wrong: Vec<String> = [&udp, &tcp]
        .iter()
        .flat_map(|t| t.first_wrong.lock().unwrap_or_else(|p| p.into_inner()).clone())
        .collect();
    assert!(wrong.is_empty(), "answers that did not match the database:\n{}", wrong.join("\n"));
    assert_eq!(get(&udp.other) + get(&tcp.other), 0, "every answer names a cluster");
    assert!(
        get(&udp.answered) * 100 >= get(&udp.sent) * 99,
        "UDP: {} of {} answered",
        get(&udp.answered),
        get(&udp.sent)
    );
    assert!(
        get(&tcp.answered) + 1 >= get(&tcp.sent),
        "TCP: {} of {} answered",
        get(&tcp.answered),
        get(&tcp.sent)
    );
    assert!(
        // At least half the intended rate (a commit waits for the disk: fsync).
        get(&changes) as f64 >= elapsed.as_secs_f64() / CHANGE_EVERY.as_secs_f64() * 0.5,
        "the writer fell behind: {} changes",
        get(&changes)
    );
    assert!(peak <= warm.rss + RSS_GROWTH_BOUND, "RSS grew from {} to {peak} bytes", warm.rss);
    // The name maps hold what was asked (two names' worth per instance at most, plus
    // the demo's), never more.
    assert!(most_names <= (2 * INSTANCES + 64) as f64, "{most_names} names in the XDP maps");
}
