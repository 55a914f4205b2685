//! Zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995) and NOTIFY (RFC 1996), with the
//! real secondaries operators run: knotd and NSD in the client namespace follow
//! example.org and example.com from instadns, signed with a TSIG key, and serve what
//! instadns answers; a new instance reaches both within seconds because our NOTIFY
//! (their refresh timers are an hour) makes them ask. kdig checks who may transfer:
//! the key's scope, the allowed networks, a wrong secret, a name that is not a zone,
//! IXFR of a current and of an old serial, and every message's TSIG of a transfer
//! that takes many messages.

use std::{path::Path, time::Duration};

use tests::{
    netns::{Background, CLIENT_V4, SERVER_V4, SERVER_V6, ns_exec},
    server::{Deployment, cli, demo_db, key_secret},
    wait::eventually,
};

/// Instances added to the demo data, so that the example.org transfer needs many
/// messages.
const EXTRA_INSTANCES: u32 = 1000;
/// Where the secondaries listen, in the client namespace.
const KNOT_PORT: u16 = 53;
const NSD_PORT: u16 = 5300;

/// kdig's output of one exchange from the client namespace.
fn kdig(d: &Deployment, args: &[&str]) -> String {
    let mut all = vec!["5", "kdig", "+time=3", "+retry=0"];
    all.extend_from_slice(args);
    let out = ns_exec(&d.rig.client_ns, "timeout", &all);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The records of a transfer, one line each (owner TTL class type data, spaces
/// normalised), without TSIG records, sorted and unique (the SOA comes twice).
fn records(output: &str) -> Vec<String> {
    let mut lines: Vec<String> = output
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| l.split(' ').nth(3) != Some("TSIG"))
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// kdig's ";; Received N B (M messages, K records)": (messages, records).
fn received(output: &str) -> Option<(u64, u64)> {
    tests::dig::kdig_received(output).map(|(_, messages, records)| (messages, records))
}

fn serial(d: &Deployment, at: &str, port: u16, zone: &str) -> Option<u32> {
    let out = kdig(d, &[at, "-p", &port.to_string(), "+short", "SOA", zone]);
    out.split_whitespace().nth(2)?.parse().ok()
}

fn start_knot(d: &Deployment, dir: &Path, secret: &str) -> Background {
    let dir = dir.join("knot");
    std::fs::create_dir_all(&dir).unwrap();
    let d_ = dir.display();
    let conf = format!(
        "server:\n  rundir: \"{d_}\"\n  listen: {CLIENT_V4}@{KNOT_PORT}\n\
         log:\n  - target: stderr\n    any: info\n\
         database:\n  storage: \"{d_}\"\n\
         key:\n  - id: xfr.\n    algorithm: hmac-sha256\n    secret: {secret}\n\
         remote:\n  - id: primary\n    address: {SERVER_V4}@53\n    key: xfr.\n\
         acl:\n  - id: notify_from_primary\n    address: {SERVER_V4}\n    key: xfr.\n    action: notify\n\
         \x20 - id: local_transfer\n    address: {CLIENT_V4}\n    action: transfer\n\
         template:\n  - id: default\n    storage: \"{d_}\"\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n\
         zone:\n  - domain: example.org\n    master: primary\n    acl: [notify_from_primary, local_transfer]\n\
         \x20 - domain: example.com\n    master: primary\n    acl: [notify_from_primary, local_transfer]\n"
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    let conf = dir.join("knot.conf");
    Background::start(&d.rig.client_ns, "knotd", &["-c", conf.to_str().unwrap()], &dir.join("knot.log"))
}

fn start_nsd(d: &Deployment, dir: &Path, secret: &str) -> Background {
    let dir = dir.join("nsd");
    std::fs::create_dir_all(&dir).unwrap();
    let d_ = dir.display();
    let zone = |name: &str| {
        format!(
            "zone:\n  name: {name}\n  zonefile: \"{name}.zone\"\n  request-xfr: {SERVER_V4} xfr.\n  \
             allow-notify: {SERVER_V4} xfr.\n  provide-xfr: {CLIENT_V4} NOKEY\n"
        )
    };
    let conf = format!(
        "server:\n  ip-address: {CLIENT_V4}@{NSD_PORT}\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d_}\"\n  \
         database: \"\"\n  zonelistfile: \"{d_}/zone.list\"\n  xfrdfile: \"{d_}/xfrd.state\"\n  xfrdir: \"{d_}\"\n  \
         pidfile: \"{d_}/nsd.pid\"\n  server-count: 1\n  verbosity: 2\n\
         remote-control:\n  control-enable: no\n\
         key:\n  name: xfr.\n  algorithm: hmac-sha256\n  secret: \"{secret}\"\n{}{}",
        zone("example.org"),
        zone("example.com"),
    );
    std::fs::write(dir.join("nsd.conf"), conf).unwrap();
    let conf = dir.join("nsd.conf");
    Background::start(&d.rig.client_ns, "nsd", &["-d", "-c", conf.to_str().unwrap()], &dir.join("nsd.log"))
}

#[test]
fn knot_and_nsd_follow_our_zones_by_signed_transfers_and_notify() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = demo_db(dir.path());
    rusqlite::Connection::open(&db)
        .and_then(|c| {
            c.execute_batch(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {EXTRA_INSTANCES}) \
                 INSERT INTO instances (id, name, owner, cluster_id) \
                 SELECT 700000 + i, 'app' || i, 'tenant' || (i % 40), (SELECT id FROM clusters WHERE name = 'mt1') FROM n;"
            ))
        })
        .expect("extra instances");
    // A custom domain and challenge answers of both kinds: a transfer carries them too.
    cli(&db, &["domain", "add", "shop.example.org", "--instance", "123456"]);
    cli(&db, &["acme", "set", "blog.alice.example.org", "--txt", "xfr-token"]);
    cli(&db, &["acme", "set", "cafe.example.org", "--cname", "cafe.validation.example.com"]);
    let transfer_key = cli(
        &db,
        &["key", "add", "xfr", "--zone", "example.org", "--zone", "example.com", "--allow", "transfer"],
    );
    let secret = key_secret(&transfer_key);
    let update_key = cli(&db, &["key", "add", "updater", "--zone", "example.org", "--allow", "update"]);
    let update_secret = key_secret(&update_key);
    let knot_notify = format!("{CLIENT_V4}:{KNOT_PORT}");
    let nsd_notify = format!("{CLIENT_V4}:{NSD_PORT}");
    let allowed = format!("{CLIENT_V4}/32");
    let d = Deployment::start_on(
        &db,
        dir,
        &[
            "--xdp-mode",
            "native",
            "--transfer-allow",
            &allowed,
            "--notify",
            &knot_notify,
            "--notify",
            &nsd_notify,
            "--notify-key",
            "xfr",
        ],
    );
    let at = format!("@{SERVER_V4}");
    let signed = format!("hmac-sha256:xfr:{secret}");

    // Signed AXFR: many messages, each one's TSIG checked by kdig.
    let axfr = kdig(&d, &[&at, "-y", &signed, "AXFR", "example.org"]);
    let (messages, count) = received(&axfr).unwrap_or_else(|| panic!("AXFR failed:\n{axfr}"));
    assert!(!axfr.contains(";; ERROR") && !axfr.contains(";; WARNING"), "AXFR:\n{axfr}");
    assert!(messages >= 5, "a transfer of {count} records in {messages} messages");
    let ours = records(&axfr);
    // Each extra instance: A and AAAA at its id and at NAME.OWNER.
    assert!(
        ours.iter().filter(|l| l.starts_with("7")).count() >= 2 * EXTRA_INSTANCES as usize,
        "instance names in the transfer: {ours:?}"
    );
    for line in [
        "example.org. 3600 IN NS ns1.example.com.",
        "123456.example.org. 60 IN A 192.0.2.1",
        "blog.alice.example.org. 60 IN AAAA 2001:db8::1",
        "app7.tenant7.example.org. 60 IN A 192.0.2.1",
    ] {
        assert!(ours.iter().any(|l| l == line), "{line} missing from the AXFR");
    }
    for (owner, holds) in [
        ("shop.example.org. ", "IN A 192.0.2.1"),
        ("shop.example.org. ", "IN AAAA 2001:db8::1"),
        ("_acme-challenge.blog.alice.example.org. ", "IN TXT \"xfr-token\""),
        ("_acme-challenge.cafe.example.org. ", "IN CNAME cafe.validation.example.com."),
    ] {
        assert!(
            ours.iter().any(|l| l.starts_with(owner) && l.ends_with(holds)),
            "{owner}... {holds} missing from the AXFR: {:?}",
            ours.iter().filter(|l| l.starts_with(owner.trim())).collect::<Vec<_>>()
        );
    }
    let com = records(&kdig(&d, &[&at, "-y", &signed, "AXFR", "example.com"]));
    assert!(
        com.iter().any(|l| l == "ws-123456.apps.example.com. 300 IN CNAME ws-mt1.example.com."),
        "{com:?}"
    );

    // Who may transfer, and IXFR.
    let soa_serial = serial(&d, &at, 53, "example.org").expect("our serial");
    let old_ixfr = format!("IXFR={}", soa_serial.wrapping_sub(1));
    let current_ixfr = format!("IXFR={soa_serial}");
    let wrong = "hmac-sha256:xfr:c2VjcmV0IHRoYXQgaXMgbm90IG91cnMgYXQgYWxsIQ==".to_owned();
    let updater = format!("hmac-sha256:updater:{update_secret}");
    let at6 = format!("@{SERVER_V6}");
    let ixfr_old = kdig(&d, &[&at, "-y", &signed, &old_ixfr, "example.org"]);
    assert_eq!(records(&ixfr_old), ours, "IXFR of an old serial: the whole zone, AXFR style");
    let ixfr_current = kdig(&d, &[&at, "-y", &signed, &current_ixfr, "example.org"]);
    let current = records(&ixfr_current);
    assert!(
        current.len() == 1 && current[0].contains(" SOA "),
        "IXFR of the current serial:\n{ixfr_current}"
    );
    // Over UDP an IXFR gets the SOA alone, up to date or not (RFC 1995 section 2).
    let udp_ixfr = kdig(&d, &[&at, "+notcp", "-y", &signed, &old_ixfr, "example.org"]);
    let udp = records(&udp_ixfr);
    assert!(
        udp.len() == 1 && udp[0].contains(" SOA ") && udp_ixfr.contains("(UDP)"),
        "IXFR over UDP:\n{udp_ixfr}"
    );
    let unsigned_allowed = kdig(&d, &[&at, "AXFR", "example.com"]);
    assert_eq!(records(&unsigned_allowed), com, "unsigned from an allowed network");
    let refusals = [
        ("unsigned from a network not allowed (IPv6)", vec![at6.as_str(), "AXFR", "example.org"], "REFUSED"),
        (
            "IXFR over UDP from a network not allowed",
            vec![at6.as_str(), "+notcp", &old_ixfr, "example.org"],
            "REFUSED",
        ),
        ("a key without the transfer operation", vec![&at, "-y", &updater, "AXFR", "example.org"], "REFUSED"),
        // kdig names the TSIG error of the NOTAUTH answer (RFC 8945 5.2.2).
        ("a wrong secret", vec![&at, "-y", &wrong, "AXFR", "example.org"], "BADSIG"),
        (
            "a name that is not a zone apex",
            vec![&at, "-y", &signed, "AXFR", "blog.alice.example.org"],
            "NOTAUTH",
        ),
        ("a zone that is not ours", vec![&at, "-y", &signed, "AXFR", "example.net"], "NOTAUTH"),
    ];
    let mut failures = Vec::new();
    for (what, args, rcode) in &refusals {
        let out = kdig(&d, args);
        if !out.contains(rcode) || received(&out).is_some_and(|(_, n)| n > 1) {
            failures.push(format!("{what}: expected {rcode}, got\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // The secondaries bootstrap, then serve what we serve.
    let knot = start_knot(&d, d.dir.path(), &secret);
    let nsd = start_nsd(&d, d.dir.path(), &secret);
    let client = CLIENT_V4.to_string();
    let at_client = format!("@{client}");
    for (name, port, log) in [("knotd", KNOT_PORT, &knot), ("nsd", NSD_PORT, &nsd)] {
        eventually(&format!("{name} has example.org"), Duration::from_secs(30), || {
            serial(&d, &at_client, port, "example.org") == Some(soa_serial)
                && serial(&d, &at_client, port, "example.com").is_some()
        });
        let theirs = records(&kdig(&d, &[&at_client, "-p", &port.to_string(), "AXFR", "example.org"]));
        assert_eq!(theirs, ours, "{name}'s copy of example.org (log:\n{})", log.log_text());
    }

    // A change: the serial moves, NOTIFY makes both ask at once.
    cli(
        d.db().as_str(),
        &["instance", "add", "799999", "--cluster", "mt2", "--name", "fresh", "--owner", "zed"],
    );
    for (name, port) in [("knotd", KNOT_PORT), ("nsd", NSD_PORT)] {
        let took = eventually(&format!("{name} serves the new instance"), Duration::from_secs(20), || {
            kdig(&d, &[&at_client, "-p", &port.to_string(), "+short", "A", "fresh.zed.example.org"])
                .contains("192.0.2.2")
        });
        eprintln!("{name} served the new instance {took:?} after the change");
        assert!(serial(&d, &at_client, port, "example.org").is_some_and(|s| s != soa_serial));
    }
    let acknowledged = d.server.sample("instadns_notify_outcomes_total{outcome=\"acknowledged\"}");
    assert!(acknowledged >= 2.0, "NOTIFYs acknowledged: {acknowledged}");
    let sent = d.server.sample("instadns_transfers_total{outcome=\"sent\"}");
    assert!(sent >= 8.0, "transfers sent: {sent}");
    assert!(d.server.sample("instadns_transfers_total{outcome=\"refused\"}") >= 4.0);
}
