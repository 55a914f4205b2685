//! Delegations (RFC 1034 section 4.3.2, RFC 9471): NS records below the apex cut the
//! zone. A query at or below the cut gets a referral (AA clear, the child's NS set, the
//! glue), from userspace and then from XDP; a DS query at the cut is answered by the
//! parent side; glue that does not fit truncates. And end to end: NSD serves the child
//! zone on another address of the server host, and Unbound, asking instadns, follows
//! the referral to it.

use std::time::Duration;

use tests::{
    dig::Dig,
    netns::{Background, SERVER_V4, ns_exec},
    server::{Deployment, cli},
    unbound::{resolve, start_unbound},
    wait::eventually,
};

/// The child's name server: another address of the server's interface.
const CHILD_NS: &str = "198.18.0.53";

fn start_nsd(d: &Deployment) -> Background {
    let dir = d.dir.path().join("nsd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("child.zone"),
        "$ORIGIN child.example.org.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\n\
         ns1 IN A 198.18.0.53\nwww IN A 192.0.2.200\n",
    )
    .unwrap();
    let d_ = dir.display();
    let conf = format!(
        "server:\n  ip-address: {CHILD_NS}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d_}\"\n  \
         database: \"\"\n  zonelistfile: \"{d_}/zone.list\"\n  xfrdfile: \"{d_}/xfrd.state\"\n  xfrdir: \"{d_}\"\n  \
         pidfile: \"{d_}/nsd.pid\"\n  server-count: 1\n  verbosity: 1\n  logfile: \"{d_}/nsd.log\"\n\
         remote-control:\n  control-enable: no\nzone:\n  name: child.example.org\n  zonefile: \"child.zone\"\n"
    );
    std::fs::write(dir.join("nsd.conf"), conf).unwrap();
    let conf = dir.join("nsd.conf");
    let conf = conf.to_str().expect("UTF-8 path");
    let nsd = Background::start(&d.rig.server_ns, "nsd", &["-d", "-c", conf], &dir.join("nsd.out"));
    let at = format!("@{CHILD_NS}");
    eventually("NSD answers", Duration::from_secs(10), || {
        let out = ns_exec(
            &d.rig.client_ns,
            "dig",
            &["+time=1", "+tries=1", &at, "+norec", "SOA", "child.example.org"],
        );
        String::from_utf8_lossy(&out.stdout).contains("status: NOERROR")
    });
    nsd
}

fn ask(d: &Deployment, args: &[&str]) -> Dig {
    let at = format!("@{SERVER_V4}");
    let out = ns_exec(
        &d.rig.client_ns,
        "dig",
        &[&["+time=2", "+tries=1", "+norec", "+ignore", &at][..], args].concat(),
    );
    Dig::parse(&out.stdout)
}

fn records(d: &Dig, section: &str) -> Vec<String> {
    d.records(section).into_iter().map(|(o, _, t, data)| format!("{o} {t} {data}")).collect()
}

#[test]
fn referrals_to_a_child_zone_served_by_nsd_and_followed_by_unbound() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    ns_exec(&d.rig.server_ns, "ip", &["addr", "add", &format!("{CHILD_NS}/24"), "dev", &d.rig.server_if]);
    let db = d.db();
    cli(&db, &["zone", "record", "add", "example.org", "child.example.org", "NS", "ns1.child.example.org."]);
    cli(&db, &["zone", "record", "add", "example.org", "ns1.child.example.org", "A", CHILD_NS]);
    eventually("the delegation is served", Duration::from_secs(10), || {
        !ask(&d, &["www.child.example.org", "A"]).has_flag("aa")
    });

    // The referral, for a name below the cut and for the glue itself: from userspace,
    // then from XDP.
    for name in ["www.child.example.org", "ns1.child.example.org", "child.example.org"] {
        for attempt in ["userspace", "XDP"] {
            let hits = d.server.xdp("hit");
            let r = ask(&d, &[name, "A"]);
            assert_eq!(r.status(), "NOERROR", "{name} ({attempt}):\n{}", r.text);
            assert!(!r.has_flag("aa"), "{name} ({attempt}): AA clear in a referral:\n{}", r.text);
            assert!(records(&r, "ANSWER").is_empty(), "{name} ({attempt}):\n{}", r.text);
            assert_eq!(
                records(&r, "AUTHORITY"),
                ["child.example.org. NS ns1.child.example.org."],
                "{}",
                r.text
            );
            assert_eq!(
                records(&r, "ADDITIONAL"),
                [format!("ns1.child.example.org. A {CHILD_NS}")],
                "{}",
                r.text
            );
            if attempt == "XDP" {
                assert_eq!(d.server.xdp("hit"), hits + 1, "{name}: the referral is served by XDP");
            }
        }
    }
    // DS at the cut is the parent's: NODATA with the SOA, authoritative.
    let ds = ask(&d, &["child.example.org", "DS"]);
    assert!(ds.status() == "NOERROR" && ds.has_flag("aa"), "{}", ds.text);
    assert!(
        records(&ds, "ANSWER").is_empty() && ds.records("AUTHORITY").iter().any(|r| r.2 == "SOA"),
        "{}",
        ds.text
    );

    // Required glue that does not fit truncates (RFC 9471 section 3).
    for i in 0..30 {
        let ns = format!("ns{i}.big.example.org");
        cli(&db, &["zone", "record", "add", "example.org", "big.example.org", "NS", &format!("{ns}.")]);
        cli(&db, &["zone", "record", "add", "example.org", &ns, "AAAA", &format!("2001:db8::{i}")]);
    }
    eventually("the big delegation is served", Duration::from_secs(10), || {
        ask(&d, &["+noedns", "x.big.example.org", "A"]).has_flag("tc")
    });
    // Over UDP we send at most 1232 bytes whatever the client offers; TCP has room.
    let full = ask(&d, &["+tcp", "x.big.example.org", "A"]);
    assert!(
        !full.has_flag("tc") && full.records("ADDITIONAL").len() == 30,
        "all the glue fits a TCP response:\n{}",
        full.text
    );

    // End to end: Unbound asks instadns, gets the referral, asks NSD.
    let _nsd = start_nsd(&d);
    let _unbound = start_unbound(&d, &["example.org"]);
    let answer = resolve(&d, "www.child.example.org", "A");
    assert!(answer.contains("status: NOERROR") && answer.contains("192.0.2.200"), "{answer}");
    // NSD's address is not ours: the fast path passed its queries up untouched.
    assert!(d.server.xdp("passed_not_for_us") > 0);
}

/// About 20 bytes each: they fit 512 bytes, their AAAA records (32 bytes each) do not.
const MANY_MX: usize = 15;

/// Additional section processing (RFC 1034 section 4.3.2 step 6, RFC 2782): the
/// addresses of in-zone MX, SRV and NS targets; left out, without TC, when the response
/// would not fit.
#[test]
fn mx_srv_and_ns_answers_carry_their_targets_addresses() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    let add = |args: &[&str]| cli(&db, &[&["zone", "record", "add", "example.org"][..], args].concat());
    add(&["mail.example.org", "A", "192.0.2.25"]);
    add(&["mail.example.org", "AAAA", "2001:db8::25"]);
    add(&["example.org", "MX", "10 mail.example.org."]);
    add(&["_sip._udp.example.org", "SRV", "0 5 5060 mail.example.org."]);
    add(&["out.example.org", "MX", "10 mail.example.net."]);
    for i in 0..MANY_MX {
        add(&["many.example.org", "MX", &format!("{i} mx{i}.example.org.")]);
        add(&[&format!("mx{i}.example.org"), "AAAA", &format!("2001:db8::{i}")]);
    }
    eventually("the records are served", Duration::from_secs(10), || {
        !ask(&d, &["example.org", "MX"]).records("ADDITIONAL").is_empty()
    });
    let both = ["mail.example.org. A 192.0.2.25", "mail.example.org. AAAA 2001:db8::25"];
    for attempt in ["userspace", "XDP"] {
        let hits = d.server.xdp("hit");
        let mx = ask(&d, &["example.org", "MX"]);
        assert_eq!(records(&mx, "ADDITIONAL"), both, "MX ({attempt}):\n{}", mx.text);
        let srv = ask(&d, &["_sip._udp.example.org", "SRV"]);
        assert_eq!(records(&srv, "ADDITIONAL"), both, "SRV ({attempt}):\n{}", srv.text);
        if attempt == "XDP" {
            assert_eq!(d.server.xdp("hit"), hits + 2, "served by XDP");
        }
    }
    let ns = ask(&d, &["example.com", "NS"]);
    assert_eq!(
        records(&ns, "ADDITIONAL"),
        ["ns1.example.com. A 192.0.2.53", "ns2.example.com. A 192.0.2.54"],
        "NS targets in the zone:\n{}",
        ns.text
    );
    let out = ask(&d, &["out.example.org", "MX"]);
    assert!(out.records("ADDITIONAL").is_empty(), "a target outside our zones gets none:\n{}", out.text);
    // The MX records fit 512 bytes without their addresses: those are left out, no TC.
    let many = ask(&d, &["+noedns", "many.example.org", "MX"]);
    assert!(!many.has_flag("tc"), "{}", many.text);
    assert_eq!(many.records("ANSWER").len(), MANY_MX, "{}", many.text);
    assert!(many.records("ADDITIONAL").len() < MANY_MX, "some addresses left out:\n{}", many.text);
    let all = ask(&d, &["+bufsize=4096", "many.example.org", "MX"]);
    assert_eq!(all.records("ADDITIONAL").len(), MANY_MX, "{}", all.text);
}
