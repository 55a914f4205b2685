//! SOA serials follow the data (RFC 1982 arithmetic, a counter): each kind of change
//! bumps the serial of exactly the zones whose answers it changes, once per change, on
//! SQLite and PostgreSQL; a zone file keeps its serial when it is newer; and a running
//! server answers the new serial (from XDP again after the change).

use std::time::Duration;

use tests::{
    db::TestDb,
    netns::SERVER_V4,
    server::{Deployment, cli, dig},
    wait::eventually,
};

const ZONES: [&str; 3] = ["example.com", "example.org", "static.test"];

fn serial(db: &str, zone: &str) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(&cli(db, &["zone", "show", zone, "--json"])).expect("JSON");
    json["soa_serial"].as_u64().expect("soa_serial")
}

fn serials(db: &str) -> [u64; 3] {
    ZONES.map(|z| serial(db, z))
}

/// One change and the zones (indices into ZONES) whose serial it must bump.
struct Row {
    what: &'static str,
    args: &'static [&'static str],
    bumps: &'static [usize],
}

const COM: usize = 0;
const ORG: usize = 1;
const STATIC: usize = 2;

fn rows() -> Vec<Row> {
    vec![
        Row {
            what: "a static record",
            args: &["zone", "record", "add", "static.test", "www.static.test", "A", "192.0.2.80"],
            bumps: &[STATIC],
        },
        Row {
            what: "a name rule",
            args: &["zone", "rule", "add", "example.org", "{id}.hosts", "host"],
            bumps: &[ORG],
        },
        Row {
            what: "the SOA fields",
            args: &["zone", "set", "static.test", "--minimum", "20"],
            bumps: &[STATIC],
        },
        Row {
            what: "name servers",
            args: &["zone", "set", "example.com", "--add-ns", "ns3.example.com"],
            bumps: &[COM],
        },
        Row {
            what: "a new instance",
            args: &["instance", "add", "999", "--cluster", "mt1"],
            bumps: &[COM, ORG],
        },
        Row {
            what: "a custom domain",
            args: &["domain", "add", "app.static.test", "--instance", "999"],
            bumps: &[STATIC],
        },
        Row {
            what: "a move (with a tombstone)",
            args: &["instance", "move", "999", "--to", "mt2"],
            bumps: &[COM, ORG, STATIC],
        },
        Row {
            what: "an instance's TTL",
            args: &["instance", "set", "999", "--ttl", "15"],
            bumps: &[COM, ORG, STATIC],
        },
        Row {
            what: "a cluster's addresses",
            args: &["cluster", "set", "mt2", "--address", "192.0.2.22"],
            bumps: &[COM, ORG, STATIC],
        },
        Row {
            what: "a cluster's services",
            args: &["cluster", "set", "mt1", "--service", "api=api-mt1.example.com"],
            bumps: &[COM, ORG],
        },
        Row {
            what: "an ACME challenge",
            args: &["acme", "set", "app.static.test", "--txt", "token"],
            bumps: &[STATIC],
        },
        Row {
            what: "a territory",
            args: &["territory", "add", "eu", "--prefix", "198.18.0.0/16"],
            bumps: &[COM, ORG],
        },
        Row {
            what: "a removed record",
            args: &["zone", "record", "rm", "static.test", "www.static.test", "A"],
            bumps: &[STATIC],
        },
    ]
}

fn run_rows(db: &TestDb) {
    let url = db.url();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(db.open_demo());
    assert_eq!(serial(&url, "example.com"), 1, "the demo's serials are as written");
    cli(&url, &["zone", "add", "static.test", "--ns", "ns1.static.test"]);
    let mut failures = Vec::new();
    for row in rows() {
        let before = serials(&url);
        cli(&url, row.args);
        let after = serials(&url);
        for (i, zone) in ZONES.iter().enumerate() {
            let expected = before[i] + u64::from(row.bumps.contains(&i));
            if after[i] != expected {
                failures.push(format!(
                    "{} ({}): {zone} went from {} to {}, expected {expected}",
                    row.what,
                    row.args.join(" "),
                    before[i],
                    after[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}:\n{}", db.name(), failures.join("\n"));

    // The answer shows the serial.
    let soa = cli(&url, &["query", "static.test", "SOA"]);
    assert!(soa.contains(&format!(" {} ", serial(&url, "static.test"))), "{soa}");

    // A zone file keeps its serial when it is newer, else ours is bumped; an unchanged
    // file writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("imported.test.zone");
    let zone = |serial: u32, address: &str| {
        format!(
            "$ORIGIN imported.test.\n$TTL 60\n@ IN SOA ns1 hostmaster {serial} 3600 600 86400 30\n@ IN NS ns1\nns1 IN A {address}\n"
        )
    };
    let import = |text: String| {
        std::fs::write(&file, text).unwrap();
        cli(&url, &["zone", "import", file.to_str().unwrap()]);
        serial(&url, "imported.test")
    };
    assert_eq!(import(zone(2026120301, "192.0.2.1")), 2026120301, "a new zone takes the file's serial");
    assert_eq!(import(zone(2026120301, "192.0.2.1")), 2026120301, "the same file: nothing changes");
    assert_eq!(import(zone(2026120305, "192.0.2.2")), 2026120305, "a newer serial is taken");
    assert_eq!(import(zone(2026120301, "192.0.2.3")), 2026120306, "an older one is not: ours goes on");
    // RFC 1982: 5 is newer than 4294967290 (the serial wrapped).
    assert_eq!(import(zone(4294967290, "192.0.2.4")), 2026120307, "4294967290 is older than 2026120306");
}

#[test]
fn each_kind_of_change_bumps_the_serials_of_the_zones_it_changes_once_sqlite() {
    run_rows(&TestDb::sqlite());
}

#[test]
fn each_kind_of_change_bumps_the_serials_of_the_zones_it_changes_once_postgresql() {
    run_rows(&TestDb::postgres());
}

/// A running server answers the new serial soon after a change: the cached SOA answer
/// (in the userspace cache and the XDP maps) is replaced.
#[test]
fn a_running_server_answers_the_new_serial() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    let at = format!("@{SERVER_V4}");
    let served = || -> Option<u64> {
        dig(&d.rig, &[&at, "+short", "SOA", "example.org"]).split_whitespace().nth(2)?.parse().ok()
    };
    // Asked twice: the second answer comes from XDP.
    assert_eq!(served(), Some(1));
    let hits = d.server.xdp("hit");
    assert_eq!(served(), Some(1));
    assert_eq!(d.server.xdp("hit"), hits + 1, "the SOA answer is served by XDP");
    cli(&db, &["instance", "move", "123456", "--to", "mt2"]);
    let now = serial(&db, "example.org");
    assert_eq!(now, 2);
    eventually("the new serial is answered", Duration::from_secs(10), || served() == Some(now));
    let hits = d.server.xdp("hit");
    assert_eq!(served(), Some(now));
    assert_eq!(d.server.xdp("hit"), hits + 1, "the new SOA answer is served by XDP again");
}
