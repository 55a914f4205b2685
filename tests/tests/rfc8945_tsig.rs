//! RFC 8945 (TSIG), section 5.2: signed queries checked with the real clients, dig -y
//! and kdig -y. A known key with a good MAC gets its answer, signed (the client verifies
//! it); an unknown key NOTAUTH with BADKEY; a wrong secret NOTAUTH with BADSIG; a clock
//! an hour off (kdig under faketime) NOTAUTH with BADTIME; a key used outside its scope REFUSED.
//! Signed queries are never answered by XDP.

use tests::{
    netns::{SERVER_V4, ns_exec},
    server::{Deployment, cli, key_secret},
};

struct Row {
    what: &'static str,
    /// The client command before its arguments (faketime for a skewed clock).
    client: &'static [&'static str],
    key: String,
    name: &'static str,
    /// Every one of these is in the output.
    expect: &'static [&'static str],
    /// None of these is.
    refuse: &'static [&'static str],
}

#[test]
fn signed_queries_by_dig_and_kdig() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    let good =
        key_secret(&cli(&db, &["key", "add", "test-key", "--zone", "example.org", "--allow", "query"]));
    let other = key_secret(&cli(&db, &["key", "add", "com-key", "--zone", "example.com"]));
    let listed = cli(&db, &["key", "list"]);
    assert!(listed.contains("test-key.") && !listed.contains(&good), "list shows no secrets:\n{listed}");
    // The keys reach the daemon with the next catalog load.
    let at = format!("@{SERVER_V4}");
    let key = format!("hmac-sha256:test-key:{good}");
    tests::wait::eventually("the key is known", std::time::Duration::from_secs(10), || {
        let out = ns_exec(
            &d.rig.client_ns,
            "dig",
            &["+time=1", "+tries=1", "-y", &key, &at, "blog.alice.example.org"],
        );
        String::from_utf8_lossy(&out.stdout).contains("status: NOERROR")
    });

    let dig: &[&str] = &["dig"];
    let kdig: &[&str] = &["kdig"];
    // dig under libfaketime hangs in its timers; kdig does not.
    let skewed: &[&str] = &["faketime", "-f", "-1h", "kdig"];
    let rows = [
        Row {
            what: "dig, a good key: the answer, signed, verified by dig",
            client: dig,
            key: key.clone(),
            name: "blog.alice.example.org",
            expect: &["status: NOERROR", "192.0.2.1", "TSIG\thmac-sha256.", "NOERROR 0"],
            refuse: &["verify failure", "Couldn't verify", "expected a TSIG"],
        },
        Row {
            what: "kdig, a good key",
            client: kdig,
            key: key.clone(),
            name: "blog.alice.example.org",
            expect: &["status: NOERROR", "192.0.2.1", "TSIG PSEUDOSECTION", "NOERROR"],
            refuse: &["BADSIG", "failed", "NOTAUTH"],
        },
        Row {
            what: "dig, an unknown key: BADKEY",
            client: dig,
            key: format!("hmac-sha256:nobody:{good}"),
            name: "blog.alice.example.org",
            expect: &["status: NOTAUTH", "BADKEY"],
            refuse: &["192.0.2.1"],
        },
        Row {
            what: "kdig, an unknown key: BADKEY (kdig shows the TSIG error as the status)",
            client: kdig,
            key: format!("hmac-sha256:nobody:{good}"),
            name: "blog.alice.example.org",
            expect: &["status: BADKEY", "TSIG\thmac-sha256."],
            refuse: &["192.0.2.1"],
        },
        Row {
            what: "dig, the key's name with another algorithm: BADKEY",
            client: dig,
            key: format!("hmac-sha512:test-key:{good}"),
            name: "blog.alice.example.org",
            expect: &["status: NOTAUTH", "BADKEY"],
            refuse: &["192.0.2.1"],
        },
        Row {
            what: "dig, a wrong secret: BADSIG",
            client: dig,
            key: format!("hmac-sha256:test-key:{other}"),
            name: "blog.alice.example.org",
            expect: &["status: NOTAUTH", "BADSIG"],
            refuse: &["192.0.2.1"],
        },
        Row {
            what: "kdig, a wrong secret: BADSIG",
            client: kdig,
            key: format!("hmac-sha256:test-key:{other}"),
            name: "blog.alice.example.org",
            expect: &["status: BADSIG"],
            refuse: &["192.0.2.1"],
        },
        Row {
            what: "kdig an hour behind: BADTIME",
            client: skewed,
            key: key.clone(),
            name: "blog.alice.example.org",
            // Signed, with the request's time and ours (6 bytes of other data).
            expect: &["status: BADTIME", "BADTIME 6 "],
            refuse: &["192.0.2.1"],
        },
        Row {
            what: "dig, a key of example.org asking in example.com: REFUSED",
            client: dig,
            key: key.clone(),
            name: "ws-123456.apps.example.com",
            expect: &["status: REFUSED"],
            refuse: &["ws-mt1", "verify failure"],
        },
    ];
    let mut failures = Vec::new();
    let hits = d.server.xdp("hit");
    for row in &rows {
        // Asked twice: a repeat is no more answered by XDP than the first.
        for attempt in ["first", "repeat"] {
            // One try each: dig and kdig spell it differently.
            let once = if row.client.last() == Some(&"kdig") { "+retry=0" } else { "+tries=1" };
            let args =
                [&row.client[1..], &["+time=2", once, "+norec", "-y", &row.key, &at, row.name, "A"]].concat();
            // Bounded: a client that hangs fails its row instead of the suite.
            let out = ns_exec(&d.rig.client_ns, "timeout", &[&["10", row.client[0]][..], &args].concat());
            let text =
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let missing: Vec<_> = row.expect.iter().filter(|e| !text.contains(**e)).collect();
            let present: Vec<_> = row.refuse.iter().filter(|r| text.contains(**r)).collect();
            if !missing.is_empty() || !present.is_empty() {
                failures.push(format!(
                    "{} ({attempt}): missing {missing:?}, present {present:?}\n{text}",
                    row.what
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(d.server.xdp("hit"), hits, "signed queries are answered by userspace only");
    let metrics = d.server.metrics();
    for (outcome, at_least) in
        [("verified", 4.0), ("badkey", 6.0), ("badsig", 4.0), ("badtime", 2.0), ("out_of_scope", 2.0)]
    {
        let value = metrics[&format!("instadns_tsig_requests_total{{outcome=\"{outcome}\"}}")];
        assert!(value >= at_least, "{outcome}: {value}");
    }
}
