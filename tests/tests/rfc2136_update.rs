//! RFC 2136 dynamic updates with the real client, nsupdate -k (bind9-dnsutils), over UDP
//! and TCP: adds and deletes of records and challenge TXT values under each
//! prerequisite kind (section 2.4), each failing prerequisite's RCODE (section 3.2),
//! and the refusals: unsigned, a key outside its scope, a wrong secret, SOA and apex NS
//! changes, names the platform makes, zones that are not ours (NOTAUTH) and names
//! outside the zone (NOTZONE). After each applied update the next queries get the new
//! data, from XDP; refused ones change nothing. nsupdate verifies every signed
//! response.

use std::time::Duration;

use tests::{
    dig::Dig,
    netns::{SERVER_V4, ns_exec},
    server::{Deployment, cli, key_secret},
    wait::eventually,
};

/// What an update is expected to get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Applied,
    /// nsupdate's "update failed: RCODE".
    Fails(&'static str),
    /// nsupdate gives up on the response (a TSIG error), naming this.
    Rejected(&'static str),
}

struct Row {
    what: &'static str,
    /// The key file (None: unsigned).
    key: Option<&'static str>,
    /// Over TCP (nsupdate -v).
    tcp: bool,
    /// The lines between `server` and `send`.
    script: &'static str,
    expect: Expect,
    /// After it: (name, type, text every answer line must hold together, or "" for
    /// no answer records).
    then: &'static [(&'static str, &'static str, &'static str)],
}

fn answers(d: &Deployment, name: &str, rtype: &str) -> String {
    let at = format!("@{SERVER_V4}");
    let out = ns_exec(&d.rig.client_ns, "dig", &["+time=2", "+tries=1", "+norec", &at, name, rtype]);
    let parsed = Dig::parse(&out.stdout);
    let mut lines: Vec<String> = parsed
        .records("ANSWER")
        .into_iter()
        .map(|(owner, _, t, data)| format!("{owner} {t} {data}"))
        .collect();
    lines.sort();
    format!("{} | {}", parsed.status(), lines.join("; "))
}

#[test]
fn nsupdate_adds_and_deletes_under_every_prerequisite() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    let dir = d.dir.path().to_owned();
    let write_key = |file: &str, args: &[&str]| {
        let clause = cli(&db, &[&["key", "add"], args].concat());
        std::fs::write(dir.join(file), &clause).expect("key file");
        clause
    };
    write_key("admin.key", &["admin", "--zone", "example.org", "--allow", "update"]);
    write_key(
        "acme.key",
        &["acme", "--zone", "example.org", "--name", "_acme-challenge.*", "--allow", "update"],
    );
    let admin = write_key("other.key", &["other", "--zone", "example.org", "--allow", "update"]);
    // A key file with the right name but another secret.
    let wrong = admin.replace(&key_secret(&admin), "c2VjcmV0IHRoYXQgaXMgbm90IG91cnMgYXQgYWxsIQ==");
    std::fs::write(dir.join("wrong.key"), wrong).expect("key file");

    let run = |key: Option<&str>, tcp: bool, script: &str| -> (bool, String) {
        let file = dir.join("update.txt");
        std::fs::write(&file, format!("server {SERVER_V4}\n{script}\nsend\n")).expect("script");
        let mut args: Vec<String> = vec!["10".into(), "nsupdate".into(), "-t".into(), "3".into()];
        if tcp {
            args.push("-v".into());
        }
        if let Some(k) = key {
            args.extend(["-k".into(), dir.join(k).to_string_lossy().into_owned()]);
        }
        args.push(file.to_string_lossy().into_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ns_exec(&d.rig.client_ns, "timeout", &args);
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    // The keys reach the daemon with the next catalog load.
    eventually("the keys are known", Duration::from_secs(10), || {
        run(Some("admin.key"), false, "zone example.org\nprereq nxdomain never.example.org").0
    });

    let serial = || -> u32 {
        let soa = answers(&d, "example.org", "SOA");
        soa.split_whitespace().nth(6).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("SOA: {soa}"))
    };
    let serial_before = serial();
    let rows = [
        Row {
            what: "add under 'name not in use' (2.4.5)",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq nxdomain web.example.org\nupdate add web.example.org 300 A 192.0.2.77",
            expect: Expect::Applied,
            then: &[("web.example.org", "A", "NOERROR | web.example.org. A 192.0.2.77")],
        },
        Row {
            what: "the same again: the name is in use now, YXDOMAIN",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq nxdomain web.example.org\nupdate add web.example.org 300 A 192.0.2.99",
            expect: Expect::Fails("YXDOMAIN"),
            then: &[("web.example.org", "A", "NOERROR | web.example.org. A 192.0.2.77")],
        },
        Row {
            what: "add under 'name in use' (2.4.4), over TCP",
            key: Some("admin.key"),
            tcp: true,
            script: "zone example.org\nprereq yxdomain web.example.org\nupdate add web.example.org 300 TXT \"hello world\"",
            expect: Expect::Applied,
            then: &[("web.example.org", "TXT", "NOERROR | web.example.org. TXT \"hello world\"")],
        },
        Row {
            what: "'name in use' of a name that is not: NXDOMAIN",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq yxdomain nothing.example.org\nupdate add nothing.example.org 300 A 192.0.2.1",
            expect: Expect::Fails("NXDOMAIN"),
            then: &[("nothing.example.org", "A", "NXDOMAIN | ")],
        },
        Row {
            what: "add under 'RRset does not exist' (2.4.3)",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq nxrrset web.example.org MX\nupdate add web.example.org 300 MX 10 mail.example.org.",
            expect: Expect::Applied,
            then: &[("web.example.org", "MX", "NOERROR | web.example.org. MX 10 mail.example.org.")],
        },
        Row {
            what: "'RRset does not exist' of one that does: YXRRSET",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq nxrrset web.example.org TXT\nupdate delete web.example.org TXT",
            expect: Expect::Fails("YXRRSET"),
            then: &[("web.example.org", "TXT", "NOERROR | web.example.org. TXT \"hello world\"")],
        },
        Row {
            what: "'RRset exists' (2.4.1) of one that does not: NXRRSET",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq yxrrset web.example.org AAAA\nupdate delete web.example.org A",
            expect: Expect::Fails("NXRRSET"),
            then: &[("web.example.org", "A", "NOERROR | web.example.org. A 192.0.2.77")],
        },
        Row {
            what: "replace a record under 'RRset exists, value-dependent' (2.4.2)",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq yxrrset web.example.org A 192.0.2.77\n\
                     update delete web.example.org A 192.0.2.77\nupdate add web.example.org 300 A 192.0.2.78",
            expect: Expect::Applied,
            then: &[("web.example.org", "A", "NOERROR | web.example.org. A 192.0.2.78")],
        },
        Row {
            what: "value-dependent with the old value: NXRRSET, and nothing of the update is applied",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq yxrrset web.example.org A 192.0.2.77\n\
                     update delete web.example.org TXT\nupdate add web.example.org 300 A 192.0.2.79",
            expect: Expect::Fails("NXRRSET"),
            then: &[
                ("web.example.org", "A", "NOERROR | web.example.org. A 192.0.2.78"),
                ("web.example.org", "TXT", "NOERROR | web.example.org. TXT \"hello world\""),
            ],
        },
        Row {
            what: "'RRset exists' (value-independent), then delete the RRset (2.5.2)",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nprereq yxrrset web.example.org TXT\nupdate delete web.example.org TXT",
            expect: Expect::Applied,
            then: &[("web.example.org", "TXT", "NOERROR | ")],
        },
        Row {
            what: "a challenge TXT value with the ACME-scoped key",
            key: Some("acme.key"),
            tcp: false,
            script: "zone example.org\nupdate add _acme-challenge.blog.alice.example.org 60 TXT \"tok-123\"",
            expect: Expect::Applied,
            then: &[(
                "_acme-challenge.blog.alice.example.org",
                "TXT",
                "NOERROR | _acme-challenge.blog.alice.example.org. TXT \"tok-123\"",
            )],
        },
        Row {
            what: "the ACME-scoped key outside _acme-challenge: REFUSED",
            key: Some("acme.key"),
            tcp: false,
            script: "zone example.org\nupdate add web2.example.org 300 A 192.0.2.5",
            expect: Expect::Fails("REFUSED"),
            then: &[("web2.example.org", "A", "NXDOMAIN | ")],
        },
        Row {
            what: "unsigned: REFUSED",
            key: None,
            tcp: false,
            script: "zone example.org\nupdate delete web.example.org",
            expect: Expect::Fails("REFUSED"),
            then: &[("web.example.org", "A", "NOERROR | web.example.org. A 192.0.2.78")],
        },
        Row {
            what: "a wrong secret: NOTAUTH with BADSIG (unsigned), nsupdate rejects it",
            key: Some("wrong.key"),
            tcp: false,
            script: "zone example.org\nupdate delete web.example.org",
            expect: Expect::Rejected("NOTAUTH"),
            then: &[("web.example.org", "A", "NOERROR | web.example.org. A 192.0.2.78")],
        },
        Row {
            what: "the apex NS: REFUSED",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nupdate add example.org 300 NS ns9.example.net.",
            expect: Expect::Fails("REFUSED"),
            then: &[],
        },
        Row {
            what: "the SOA: REFUSED",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nupdate delete example.org SOA",
            expect: Expect::Fails("REFUSED"),
            then: &[],
        },
        Row {
            what: "a name a host rule makes: REFUSED (change the instance instead)",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nupdate add blog.alice.example.org 300 TXT \"shadow\"",
            expect: Expect::Fails("REFUSED"),
            then: &[("blog.alice.example.org", "TXT", "NOERROR | ")],
        },
        Row {
            what: "a zone that is not ours: NOTAUTH",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.net\nupdate add www.example.net 300 A 192.0.2.1",
            expect: Expect::Fails("NOTAUTH"),
            then: &[],
        },
        Row {
            what: "a name outside the zone: NOTZONE",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nupdate add www.example.com 300 A 192.0.2.1",
            expect: Expect::Fails("NOTZONE"),
            then: &[],
        },
        Row {
            what: "delete all RRsets at a name (2.5.3) and a challenge value (2.5.4)",
            key: Some("admin.key"),
            tcp: false,
            script: "zone example.org\nupdate delete web.example.org\n\
                     update delete _acme-challenge.blog.alice.example.org TXT \"tok-123\"",
            expect: Expect::Applied,
            then: &[
                ("web.example.org", "A", "NXDOMAIN | "),
                ("_acme-challenge.blog.alice.example.org", "TXT", "NXDOMAIN | "),
            ],
        },
    ];

    let mut failures = Vec::new();
    let mut applied = 0;
    for row in &rows {
        let (ok, text) = run(row.key, row.tcp, row.script);
        let as_expected = match row.expect {
            Expect::Applied => ok && text.trim().is_empty(),
            Expect::Fails(rcode) => !ok && text.contains(&format!("update failed: {rcode}")),
            Expect::Rejected(what) => !ok && text.contains(what),
        };
        if !as_expected {
            failures
                .push(format!("{}: expected {:?}, nsupdate said (ok: {ok}):\n{text}", row.what, row.expect));
            continue;
        }
        if row.expect == Expect::Applied {
            applied += 1;
        }
        for (name, rtype, want) in row.then {
            // Applied changes reach the answers through the change log (milliseconds).
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let mut got = answers(&d, name, rtype);
            while got != *want && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                got = answers(&d, name, rtype);
            }
            if got != *want {
                failures.push(format!("{}: {name} {rtype}: want {want:?}, got {got:?}", row.what));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n\n")
    );

    // Each applied update bumped the serial once; the refused ones did not.
    eventually("the serial follows", Duration::from_secs(5), || {
        serial() == serial_before.wrapping_add(applied)
    });

    // An updated name is answered from XDP, like any other.
    let (ok, text) =
        run(Some("admin.key"), false, "zone example.org\nupdate add fast.example.org 300 A 192.0.2.80");
    assert!(ok, "{text}");
    eventually("the new name answers", Duration::from_secs(5), || {
        answers(&d, "fast.example.org", "A") == "NOERROR | fast.example.org. A 192.0.2.80"
    });
    let hits = d.server.xdp("hit");
    for _ in 0..3 {
        assert_eq!(answers(&d, "fast.example.org", "A"), "NOERROR | fast.example.org. A 192.0.2.80");
    }
    assert!(d.server.xdp("hit") >= hits + 2, "the updated name is answered from XDP");

    let metrics = d.server.metrics();
    for (rcode, at_least) in
        [("NOERROR", applied as f64 + 1.0), ("REFUSED", 5.0), ("NXRRSET", 2.0), ("NOTZONE", 1.0)]
    {
        let value =
            metrics.get(&format!("instadns_updates_total{{rcode=\"{rcode}\"}}")).copied().unwrap_or(0.0);
        assert!(value >= at_least, "instadns_updates_total {rcode}: {value} < {at_least}");
    }
    let acme = cli(&db, &["acme", "list"]);
    assert!(!acme.contains("tok-123"), "the deleted challenge value is gone from the ACME table:\n{acme}");
}
