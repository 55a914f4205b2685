//! RFC 4592 ("The Role of Wildcards in the Domain Name System"), section 2.2.1: the
//! example zone and its queries, each asked twice (userspace, then XDP), with the
//! answers the RFC gives. The zone is imported from a zone file with `*` owners.

use tests::{
    dig::Dig,
    netns::SERVER_V4,
    server::{Deployment, cli},
};

/// The zone of RFC 4592 section 2.2.1 (the SRV data, left open there, filled in).
const ZONE: &str = r#"$ORIGIN example.
$TTL 3600
example.                 3600 IN  SOA   ns.example.com. hostmaster.example. 1 3600 600 86400 60
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host2.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
"#;

/// What a row expects.
struct Expect {
    status: &'static str,
    /// Answer records as "owner type data".
    answers: &'static [&'static str],
    /// Whether the SOA is in the authority section (negative answers).
    soa: bool,
    aa: bool,
    /// Additional records as "owner type data".
    additional: &'static [&'static str],
}

const fn ok(answers: &'static [&'static str], additional: &'static [&'static str]) -> Expect {
    Expect { status: "NOERROR", answers, soa: false, aa: true, additional }
}
const NODATA: Expect = Expect { status: "NOERROR", answers: &[], soa: true, aa: true, additional: &[] };
const NXDOMAIN: Expect = Expect { status: "NXDOMAIN", answers: &[], soa: true, aa: true, additional: &[] };

fn rows() -> Vec<(&'static str, &'static str, &'static str, Expect)> {
    vec![
        (
            "host3.example. MX: synthesized from *.example., with host1's address",
            "host3.example.",
            "MX",
            ok(&["host3.example. MX 10 host1.example."], &["host1.example. A 192.0.2.1"]),
        ),
        ("host3.example. A: the wildcard has no A: NODATA", "host3.example.", "A", NODATA),
        (
            "foo.bar.example. TXT: synthesized from *.example.",
            "foo.bar.example.",
            "TXT",
            ok(&["foo.bar.example. TXT \"this is a wildcard\""], &[]),
        ),
        ("host1.example. MX: host1 exists: NODATA", "host1.example.", "MX", NODATA),
        ("sub.*.example. MX: exists (a TXT): NODATA", "sub.*.example.", "MX", NODATA),
        (
            "_telnet._tcp.host1.example. SRV: the closest encloser _tcp.host1 has no wildcard",
            "_telnet._tcp.host1.example.",
            "SRV",
            NXDOMAIN,
        ),
        (
            "host.subdel.example. A: below the delegation: a referral, not the wildcard",
            "host.subdel.example.",
            "A",
            Expect { status: "NOERROR", answers: &[], soa: false, aa: false, additional: &[] },
        ),
        (
            "ghost.*.example. MX: the closest encloser *.example. has no wildcard",
            "ghost.*.example.",
            "MX",
            NXDOMAIN,
        ),
    ]
}

fn as_text(records: Vec<(String, u32, String, String)>) -> Vec<String> {
    records.into_iter().map(|(owner, _, rtype, data)| format!("{owner} {rtype} {data}")).collect()
}

#[test]
fn rfc4592_section_2_2_1_answered_by_userspace_then_by_xdp() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let file = d.dir.path().join("example.zone");
    std::fs::write(&file, ZONE).unwrap();
    cli(&d.db(), &["zone", "import", file.to_str().unwrap()]);
    let at = format!("@{SERVER_V4}");
    // The zone is served once the change feed has loaded it.
    tests::wait::eventually("the zone is served", std::time::Duration::from_secs(10), || {
        tests::server::dig(&d.rig, &[&at, "+norec", "SOA", "example."]).contains("status: NOERROR")
    });
    let failures = ask_twice(&d, rows());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Asks every row twice (userspace, then XDP); the problems found.
fn ask_twice(d: &Deployment, rows: Vec<(&str, &str, &str, Expect)>) -> Vec<String> {
    let at = format!("@{SERVER_V4}");
    let mut failures = Vec::new();
    for (what, name, qtype, expect) in rows {
        for attempt in ["userspace", "repeat (XDP)"] {
            let hits = d.server.xdp("hit");
            let out = tests::netns::ns_exec(
                &d.rig.client_ns,
                "dig",
                &["+time=2", "+tries=1", "+norec", &at, name, qtype],
            );
            let dig = Dig::parse(&out.stdout);
            let mut problems = Vec::new();
            if dig.status() != expect.status {
                problems.push(format!("status {}", dig.status()));
            }
            if as_text(dig.records("ANSWER")) != expect.answers {
                problems.push(format!("answers {:?}", as_text(dig.records("ANSWER"))));
            }
            if dig.records("AUTHORITY").iter().any(|r| r.2 == "SOA") != expect.soa {
                problems.push(format!("authority {:?}", dig.records("AUTHORITY")));
            }
            if dig.has_flag("aa") != expect.aa {
                problems.push(format!("flags {:?}", dig.flags()));
            }
            if !expect.aa
                && as_text(dig.records("AUTHORITY"))
                    != ["subdel.example. NS ns.example.com.", "subdel.example. NS ns.example.net."]
            {
                problems.push(format!("referral authority {:?}", dig.records("AUTHORITY")));
            }
            if as_text(dig.records("ADDITIONAL")) != expect.additional {
                problems.push(format!("additional {:?}", as_text(dig.records("ADDITIONAL"))));
            }
            if attempt.starts_with("repeat") && d.server.xdp("hit") != hits + 1 {
                problems.push("the repeat was not answered by XDP".into());
            }
            if !problems.is_empty() {
                failures.push(format!("{what} ({attempt}): {}\n{}", problems.join("; "), dig.text));
            }
        }
    }
    failures
}

/// Wildcard rules: `*.{id}` answers every name below an instance's name as a `*.{id}`
/// record set would, with the same closest-encloser semantics.
#[test]
fn wildcard_rules_answer_below_instance_names() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    cli(&db, &["zone", "rule", "add", "example.org", "*.{id}", "host"]);
    cli(&db, &["zone", "record", "add", "example.org", "static.123456.example.org", "TXT", "here"]);
    let at = format!("@{SERVER_V4}");
    tests::wait::eventually("the rule is served", std::time::Duration::from_secs(10), || {
        tests::server::dig(&d.rig, &[&at, "+norec", "A", "www.123456.example.org"]).contains("192.0.2.1")
    });
    let rows = vec![
        (
            "www.123456.example.org. A: from the rule at *.123456",
            "www.123456.example.org.",
            "A",
            ok(&["www.123456.example.org. A 192.0.2.1"], &[]),
        ),
        (
            "a.b.123456.example.org. AAAA: two labels below, same source",
            "a.b.123456.example.org.",
            "AAAA",
            ok(&["a.b.123456.example.org. AAAA 2001:db8::1"], &[]),
        ),
        (
            "123456.example.org. A: the {id} rule still answers the instance's own name",
            "123456.example.org.",
            "A",
            ok(&["123456.example.org. A 192.0.2.1"], &[]),
        ),
        (
            "www.123456.example.org. TXT: host rules answer addresses only",
            "www.123456.example.org.",
            "TXT",
            NODATA,
        ),
        ("www.999.example.org. A: no instance 999", "www.999.example.org.", "A", NXDOMAIN),
        (
            "static.123456.example.org. A: an existing name blocks the wildcard",
            "static.123456.example.org.",
            "A",
            NODATA,
        ),
        (
            "x.static.123456.example.org. A: the closest encloser static.123456 has no wildcard",
            "x.static.123456.example.org.",
            "A",
            NXDOMAIN,
        ),
    ];
    let failures = ask_twice(&d, rows);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    // Another name below the same instance, never asked: the kernel answers it from the
    // wildcard answer userspace installed.
    let before = d.server.xdp("hit_wildcard");
    let out = tests::server::dig(&d.rig, &[&at, "+norec", "A", "never-asked.123456.example.org"]);
    let answers = as_text(Dig::parse(out.as_bytes()).records("ANSWER"));
    assert_eq!(answers, ["never-asked.123456.example.org. A 192.0.2.1"], "{out}");
    assert_eq!(d.server.xdp("hit_wildcard"), before + 1, "answered by XDP:\n{out}");
}
