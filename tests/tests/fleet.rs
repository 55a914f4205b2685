//! A fleet: 8 edge nodes, each in its own network namespace pair with its own XDP
//! program, all following one PostgreSQL. 1,000 changes of four kinds (an instance
//! moved, a cluster's address, a static record, an ACME value) are committed one after
//! another; after each, a client per node polls the changed name until that node
//! answers the new data. Every change must reach every node (none lost, each within
//! 10 s); the delay from commit to new answer is printed per node (p50, p99, max), not
//! asserted: this machine is shared (`cargo xtask bench` is where speed is judged).

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use instadns::store::{Database, DbLocation, sql::Value};
use tests::{
    dns::{QueryBuilder, answer_data},
    postgres::PgServer,
    server::{Deployment, cli, poll_until, server_v4 as server},
};

const NODES: usize = 8;
const CHANGES: usize = 1000;
/// Instances moved back and forth (each move waits for its own name).
const MOVED: i64 = 20;
const FIRST_MOVED: i64 = 700_000;
/// An instance of cluster mt3, whose address changes.
const ON_MT3: i64 = 800_000;
const RECORD: &str = "rec.example.com";
const CHALLENGED: &str = "blog.alice.example.org";

/// The data of a response's answers, as text (TXT without quotes).
fn answers(response: &[u8]) -> Vec<String> {
    answer_data(response).into_iter().map(|a| a.trim_matches('"').to_owned()).collect()
}

/// One change: what to commit, and which name then answers what.
struct Change {
    sql: String,
    params: Vec<Value>,
    move_to: Option<(i64, &'static str)>,
    qname: String,
    qtype: RecordType,
    expected: String,
}

fn change(i: usize) -> Change {
    let none = (String::new(), Vec::new());
    match i % 4 {
        0 => {
            // Instance k's moves alternate: mt2, mt1, mt2...
            let k = (i / 4) as i64 % MOVED;
            let to = if (i / 4 / MOVED as usize).is_multiple_of(2) { "mt2" } else { "mt1" };
            let id = FIRST_MOVED + k;
            Change {
                sql: none.0,
                params: none.1,
                move_to: Some((id, to)),
                qname: format!("ws-{id}.apps.example.com"),
                qtype: RecordType::CNAME,
                expected: format!("ws-{to}.example.com."),
            }
        }
        1 => {
            let address = format!("203.0.113.{}", 1 + i % 250);
            Change {
                sql: "UPDATE cluster_addresses SET address = $1 \
                      WHERE cluster_id = (SELECT id FROM clusters WHERE name = 'mt3')"
                    .into(),
                params: vec![Value::from(address.as_str())],
                move_to: None,
                qname: format!("{ON_MT3}.example.org"),
                qtype: RecordType::A,
                expected: address,
            }
        }
        2 => {
            let value = format!("v{i}");
            Change {
                sql: "UPDATE records SET rdata = $1 WHERE name = 'rec.example.com.' AND rtype = 'TXT'".into(),
                params: vec![Value::from(value.as_str())],
                move_to: None,
                qname: RECORD.into(),
                qtype: RecordType::TXT,
                expected: value,
            }
        }
        _ => {
            let value = format!("token-{i}");
            Change {
                sql: "UPDATE acme_challenges SET value = $1 WHERE kind = 'txt'".into(),
                params: vec![Value::from(value.as_str())],
                move_to: None,
                qname: format!("_acme-challenge.{CHALLENGED}"),
                qtype: RecordType::TXT,
                expected: value,
            }
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn every_change_reaches_every_node_of_a_fleet() {
    let pg = PgServer::start();
    let mut nodes = fleet(&pg, None, CHANGES);
    let url = pg.url.as_str();
    // Every node reports itself: up, its maps in use, XDP answering, caught up.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(Database::open(&DbLocation::parse(url).unwrap())).unwrap();
    let newest = rt.block_on(db.change_cursor()).unwrap();
    let status = |want: &dyn Fn(&serde_json::Value) -> bool| {
        tests::wait::eventually("the fleet table", Duration::from_secs(10), || {
            let out = cli(url, &["fleet", "status", "--json"]);
            let nodes: Vec<serde_json::Value> = serde_json::from_str(&out).expect("JSON");
            nodes.len() == NODES && nodes.iter().all(want)
        })
    };
    status(&|n| {
        n["state"] == "up"
            && n["change_cursor"] == newest
            && n["behind"] == 0
            && n["map_names"].as_i64() > Some(0)
            && n["hit_permille"].as_i64() > Some(0)
    });
    let text = cli(url, &["fleet", "status"]);
    assert!(text.lines().count() == NODES && text.contains("node-0: up"), "{text}");
    // A node that stops is shown as such, then forgotten on request.
    assert!(nodes[NODES - 1].server.terminate(), "node {} stops", NODES - 1);
    status(&|n| (n["name"] == format!("node-{}", NODES - 1)) == (n["state"] == "stopped reporting"));
    cli(url, &["fleet", "rm", &format!("node-{}", NODES - 1)]);
    let left: Vec<serde_json::Value> =
        serde_json::from_str(&cli(url, &["fleet", "status", "--json"])).unwrap();
    assert_eq!(left.len(), NODES - 1);
    nodes.pop();
}

/// The same with half the nodes reading a streaming replica (a hot standby made with
/// pg_basebackup) and writing to the primary: they follow the standby's log by polling.
#[test]
fn half_of_a_fleet_reads_a_streaming_replica() {
    let pg = PgServer::start();
    let replica = pg.start_replica();
    let nodes = fleet(&pg, Some(&replica), CHANGES / 2);
    for (i, d) in nodes.iter().enumerate() {
        let lag = d.server.metrics().get("instadns_db_replica_lag_seconds").copied();
        assert_eq!(lag.is_some(), i % 2 == 1, "node {i}: the lag gauge exactly on replica readers ({lag:?})");
    }
    // The replica readers' reports reach the primary.
    tests::wait::eventually("reports of every node", Duration::from_secs(10), || {
        let out = cli(&pg.url, &["fleet", "status", "--json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("JSON").len() == NODES
    });
}

/// Starts NODES nodes on `pg` (the odd ones reading `replica`, if given), commits
/// `changes` changes and checks each reached every node; prints the delays.
fn fleet(pg: &PgServer, replica: Option<&PgServer>, changes: usize) -> Vec<Deployment> {
    let url = pg.url.as_str();
    cli(url, &["db", "demo"]);
    cli(url, &["cluster", "add", "mt3", "--service", "ws=ws-mt3.example.com", "--address", "203.0.113.250"]);
    cli(url, &["instance", "add", &ON_MT3.to_string(), "--cluster", "mt3"]);
    for k in 0..MOVED {
        cli(url, &["instance", "add", &(FIRST_MOVED + k).to_string(), "--cluster", "mt1"]);
    }
    cli(url, &["zone", "record", "add", "example.com", RECORD, "TXT", "v-start"]);
    cli(url, &["acme", "set", CHALLENGED, "--txt", "token-start"]);
    if let Some(replica) = replica {
        // The setup has reached the standby before its readers start.
        let newest = pg.psql("SELECT max(id) FROM changes");
        tests::wait::eventually("the replica replays the setup", Duration::from_secs(20), || {
            replica.psql("SELECT max(id) FROM changes") == newest
        });
    }
    let nodes: Vec<Deployment> = (0..NODES)
        .map(|i| {
            let name = format!("node-{i}");
            let mut flags = vec!["--xdp-mode", "native", "--node-name", &name, "--node-report-every", "1"];
            match replica {
                Some(replica) if i % 2 == 1 => {
                    flags.extend(["--db-primary", url]);
                    Deployment::start_on(&replica.url, tempfile::tempdir().unwrap(), &flags)
                }
                _ => Deployment::start_on(url, tempfile::tempdir().unwrap(), &flags),
            }
        })
        .collect();

    // Every changed name in every node's maps before the changes start.
    let mut warm: Vec<(String, RecordType)> =
        (0..MOVED).map(|k| (format!("ws-{}.apps.example.com", FIRST_MOVED + k), RecordType::CNAME)).collect();
    warm.push((format!("{ON_MT3}.example.org"), RecordType::A));
    warm.push((RECORD.into(), RecordType::TXT));
    warm.push((format!("_acme-challenge.{CHALLENGED}"), RecordType::TXT));
    for d in &nodes {
        for (name, qtype) in &warm {
            let query = QueryBuilder::new(name, *qtype).bytes();
            for _ in 0..2 {
                poll_until(&d.rig, server(), &query, Duration::from_secs(5), |r| !answers(r).is_empty())
                    .unwrap_or_else(|| panic!("{name} answered"));
            }
        }
    }
    let hits_before: Vec<u64> = nodes.iter().map(|d| d.server.xdp("hit")).collect();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db: Database = rt.block_on(async {
        Database::open(&DbLocation::parse(url).unwrap()).await.expect("the fleet's database")
    });
    let mut delays: Vec<Vec<Duration>> = (0..NODES).map(|_| Vec::with_capacity(changes)).collect();
    let mut by_kind: Vec<Vec<Duration>> = vec![Vec::new(); 4];
    let started = Instant::now();
    for i in 0..changes {
        let c = change(i);
        rt.block_on(async {
            match c.move_to {
                Some((id, to)) => db.move_instance(id, to).await.map(|_| 0),
                None => db.execute(&c.sql, c.params.clone()).await,
            }
        })
        .unwrap_or_else(|e| panic!("change {i}: {e}"));
        let query = QueryBuilder::new(&c.qname, c.qtype).bytes();
        let seen: Vec<Option<Duration>> = std::thread::scope(|scope| {
            let polls: Vec<_> = nodes
                .iter()
                .map(|d| {
                    let (query, expected) = (&query, &c.expected);
                    scope.spawn(move || {
                        poll_until(&d.rig, server(), query, Duration::from_secs(10), |r| {
                            answers(r).iter().any(|a| a == expected)
                        })
                    })
                })
                .collect();
            polls.into_iter().map(|p| p.join().expect("a poller")).collect()
        });
        for (node, seen) in seen.into_iter().enumerate() {
            let took = seen.unwrap_or_else(|| {
                panic!(
                    "change {i} ({} {:?} -> {}) never reached node {node}\n{}",
                    c.qname,
                    c.qtype,
                    c.expected,
                    nodes[node].server.log_text()
                )
            });
            delays[node].push(took);
            by_kind[i % 4].push(took);
        }
    }
    let elapsed = started.elapsed();
    let mut all: Vec<Duration> = delays.iter().flatten().copied().collect();
    all.sort();
    for (node, d) in delays.iter_mut().enumerate() {
        d.sort();
        let reads = if replica.is_some() && node % 2 == 1 { "replica" } else { "primary" };
        eprintln!(
            "node {node} ({reads}): {changes} changes, commit to new answer p50 {:?}, p99 {:?}, max {:?}; XDP hits {}",
            percentile(d, 0.5),
            percentile(d, 0.99),
            d[d.len() - 1],
            nodes[node].server.xdp("hit") - hits_before[node]
        );
    }
    for (kind, d) in
        ["instance moved", "cluster address", "static record", "ACME value"].iter().zip(&mut by_kind)
    {
        d.sort();
        eprintln!(
            "{kind}: p50 {:?}, p99 {:?}, max {:?}",
            percentile(d, 0.5),
            percentile(d, 0.99),
            d[d.len() - 1]
        );
    }
    eprintln!(
        "fleet of {NODES}: {} arrivals in {elapsed:?}, p50 {:?}, p99 {:?}, max {:?}",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all[all.len() - 1]
    );
    assert_eq!(all.len(), NODES * changes, "every change reached every node");
    for (node, d) in nodes.iter().enumerate() {
        assert!(d.server.xdp("hit") > hits_before[node], "node {node}: new answers are served by XDP too");
    }

    nodes
}
