//! RFC 8906 section 8 ("Testing"): every row, run with dig against `instadns serve`
//! with XDP attached. Each query is sent twice, so both the userspace answer and (where
//! the fast path takes the query) the XDP answer are held to the RFC.
//!
//! Adaptations: our zones are not signed, so 8.2.7 (truncated responses) uses a TXT
//! answer over 512 bytes instead of a DNSKEY RRset; DO=1 is copied (RFC 3225) though
//! no RRSIGs exist.

use std::time::Duration;

use tests::{
    dig::Dig,
    netns::SERVER_V4,
    server::{Deployment, dig},
    wait::eventually,
};

const ZONE: &str = "example.com";

/// A check the RFC lists: what it expects, and the test of dig's output.
type Check = (&'static str, fn(&Dig) -> bool);

/// Who answers a row's repeated query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repeat {
    /// XDP (the query's XDP hit counter goes up by one).
    Xdp,
    /// Userspace: XDP passes it up with this outcome (or never sees it: TCP).
    Userspace(&'static str),
}

/// One row: the dig arguments, the checks the RFC lists and who answers the repeat.
struct Row {
    section: &'static str,
    title: &'static str,
    args: Vec<String>,
    checks: Vec<Check>,
    repeat: Repeat,
}

fn row(section: &'static str, title: &'static str, args: &str, checks: Vec<Check>) -> Row {
    Row {
        section,
        title,
        args: args.split_whitespace().map(str::to_owned).collect(),
        checks,
        repeat: Repeat::Xdp,
    }
}

impl Row {
    /// The fast path does not take this row's query: `outcome` says why.
    fn by_userspace(mut self, outcome: &'static str) -> Self {
        self.repeat = Repeat::Userspace(outcome);
        self
    }
}

fn status_noerror(d: &Dig) -> bool {
    d.status() == "NOERROR"
}
fn status_badvers(d: &Dig) -> bool {
    d.status() == "BADVERS"
}
fn soa_present(d: &Dig) -> bool {
    d.answer_has("SOA")
}
fn soa_absent(d: &Dig) -> bool {
    !d.answer_has("SOA")
}
fn aa_present(d: &Dig) -> bool {
    d.has_flag("aa")
}
fn aa_absent(d: &Dig) -> bool {
    !d.has_flag("aa")
}
fn rd_absent(d: &Dig) -> bool {
    !d.has_flag("rd")
}
fn ad_absent(d: &Dig) -> bool {
    !d.has_flag("ad")
}
fn opt_absent(d: &Dig) -> bool {
    d.edns_line().is_none()
}
fn opt_present(d: &Dig) -> bool {
    d.edns_line().is_some()
}
fn edns_version_0(d: &Dig) -> bool {
    d.edns_line().is_some_and(|l| l.contains("version: 0,"))
}
fn no_mbz(d: &Dig) -> bool {
    !d.text.contains("MBZ")
}
fn no_option_100(d: &Dig) -> bool {
    !d.text.contains("OPT=100")
}
fn empty_answer(d: &Dig) -> bool {
    d.section("ANSWER").is_empty()
}
fn do_copied(d: &Dig) -> bool {
    d.edns_line().is_some_and(|l| l.contains("flags: do"))
}
fn status_notimp(d: &Dig) -> bool {
    d.status() == "NOTIMP"
}
fn tc_present(d: &Dig) -> bool {
    d.has_flag("tc")
}
fn only_qr_and_rd(d: &Dig) -> bool {
    d.flags() == ["qr", "rd"]
}

fn rows() -> Vec<Row> {
    let z = ZONE;
    vec![
        row(
            "8.1.1",
            "Is the server configured for the zone?",
            &format!("+noedns +noad +norec soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("aa", aa_present),
                ("rd not present", rd_absent),
                ("ad not present", ad_absent),
                ("no OPT", opt_absent),
            ],
        ),
        row(
            "8.1.2",
            "Testing unknown types",
            &format!("+noedns +noad +norec type1000 {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("empty answer", empty_answer),
                ("aa", aa_present),
                ("rd not present", rd_absent),
                ("no OPT", opt_absent),
            ],
        ),
        row(
            "8.1.3.1",
            "Testing CD=1 queries",
            &format!("+noedns +noad +norec +cd soa {z}"),
            vec![("status NOERROR", status_noerror), ("SOA in the answer", soa_present), ("aa", aa_present)],
        ),
        row(
            "8.1.3.2",
            "Testing AD=1 queries",
            &format!("+noedns +norec +ad soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("aa", aa_present),
                ("ad not present", ad_absent),
            ],
        ),
        row(
            "8.1.3.3",
            "Testing reserved bit",
            &format!("+noedns +noad +norec +zflag soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("MBZ not in the response", no_mbz),
                ("aa", aa_present),
            ],
        ),
        row(
            "8.1.4",
            "Testing unknown opcodes",
            "+noedns +noad +opcode=15 +norec +header-only",
            vec![("status NOTIMP", status_notimp), ("no SOA", soa_absent), ("aa not present", aa_absent)],
        )
        .by_userspace("passed_unsupported"),
        row(
            "8.1.4",
            "Testing unknown opcodes with every header flag set",
            "+noedns +opcode=15 +rec +aaflag +tcflag +raflag +zflag +adflag +cdflag +header-only",
            vec![
                ("status NOTIMP", status_notimp),
                ("no SOA", soa_absent),
                ("of the query's flags only RD copied", only_qr_and_rd),
                ("MBZ not in the response", no_mbz),
            ],
        )
        .by_userspace("passed_unsupported"),
        row(
            "8.1.5",
            "Testing TCP",
            &format!("+noedns +noad +norec +tcp soa {z}"),
            vec![("status NOERROR", status_noerror), ("SOA in the answer", soa_present), ("aa", aa_present)],
        )
        .by_userspace("passed_not_dns"),
        row(
            "8.2.1",
            "Testing minimal EDNS",
            &format!("+nocookie +edns=0 +noad +norec soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("OPT present", opt_present),
                ("EDNS version 0", edns_version_0),
                ("aa", aa_present),
            ],
        ),
        row(
            "8.2.2",
            "Testing EDNS version negotiation",
            &format!("+nocookie +edns=1 +noednsneg +noad +norec soa {z}"),
            vec![
                ("status BADVERS", status_badvers),
                ("no SOA", soa_absent),
                ("OPT present", opt_present),
                ("EDNS version 0", edns_version_0),
                ("aa not present", aa_absent),
            ],
        )
        .by_userspace("passed_unsupported"),
        row(
            "8.2.3",
            "Testing unknown EDNS options",
            &format!("+nocookie +edns=0 +noad +norec +ednsopt=100 soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("OPT present", opt_present),
                ("OPT=100 not present", no_option_100),
                ("EDNS version 0", edns_version_0),
                ("aa", aa_present),
            ],
        ),
        row(
            "8.2.4",
            "Testing unknown EDNS flags",
            &format!("+nocookie +edns=0 +noad +norec +ednsflags=0x40 soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("OPT present", opt_present),
                ("MBZ not present", no_mbz),
                ("EDNS version 0", edns_version_0),
                ("aa", aa_present),
            ],
        ),
        row(
            "8.2.5",
            "Testing EDNS version negotiation with unknown EDNS flags",
            &format!("+nocookie +edns=1 +noednsneg +noad +norec +ednsflags=0x40 soa {z}"),
            vec![
                ("status BADVERS", status_badvers),
                ("no SOA", soa_absent),
                ("OPT present", opt_present),
                ("MBZ not present", no_mbz),
                ("EDNS version 0", edns_version_0),
                ("aa not present", aa_absent),
            ],
        )
        .by_userspace("passed_unsupported"),
        row(
            "8.2.6",
            "Testing EDNS version negotiation with unknown EDNS options",
            &format!("+nocookie +edns=1 +noednsneg +noad +norec +ednsopt=100 soa {z}"),
            vec![
                ("status BADVERS", status_badvers),
                ("no SOA", soa_absent),
                ("OPT present", opt_present),
                ("OPT=100 not present", no_option_100),
                ("EDNS version 0", edns_version_0),
                ("aa not present", aa_absent),
            ],
        )
        .by_userspace("passed_unsupported"),
        row(
            "8.2.7",
            "Testing truncated responses (a 630-byte TXT answer for a 512-byte buffer)",
            "+nocookie +edns=0 +noad +norec +dnssec +bufsize=512 +ignore txt big.example.org",
            vec![
                ("status NOERROR", status_noerror),
                ("TC set", tc_present),
                ("OPT present", opt_present),
                ("EDNS version 0", edns_version_0),
            ],
        )
        .by_userspace("passed_too_big"),
        row(
            "8.2.8",
            "Testing DNSSEC queries",
            &format!("+nocookie +edns=0 +noad +norec +dnssec soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("OPT present", opt_present),
                ("DO copied", do_copied),
                ("EDNS version 0", edns_version_0),
                ("aa", aa_present),
            ],
        ),
        row(
            "8.2.9",
            "Testing EDNS version negotiation with DNSSEC",
            &format!("+nocookie +edns=1 +noednsneg +noad +norec +dnssec soa {z}"),
            vec![
                ("status BADVERS", status_badvers),
                ("no SOA", soa_absent),
                ("OPT present", opt_present),
                ("DO copied, as in 8.2.8", do_copied),
                ("EDNS version 0", edns_version_0),
                ("aa not present", aa_absent),
            ],
        )
        .by_userspace("passed_unsupported"),
        row(
            "8.2.10",
            "Testing with multiple defined EDNS options",
            &format!("+edns=0 +noad +norec +cookie +nsid +expire +subnet=0.0.0.0/0 soa {z}"),
            vec![
                ("status NOERROR", status_noerror),
                ("SOA in the answer", soa_present),
                ("OPT present", opt_present),
                ("EDNS version 0", edns_version_0),
                ("aa", aa_present),
            ],
        ),
    ]
}

#[test]
fn rfc8906_section_8_every_row() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let strings: Vec<String> = ["a", "b", "c"].iter().map(|c| format!("\"{}\"", c.repeat(200))).collect();
    let db = d.db();
    tests::server::cli(
        &db,
        &["zone", "record", "add", "example.org", "big.example.org", "TXT", &strings.join(" ")],
    );
    let at = format!("@{SERVER_V4}");
    eventually("the big TXT record is served", Duration::from_secs(10), || {
        dig(&d.rig, &[&at, "+tcp", "+short", "txt", "big.example.org"]).contains("aaaa")
    });

    let mut failures = Vec::new();
    for r in rows() {
        for attempt in ["first (userspace)", "repeat (XDP where it applies)"] {
            let repeat = attempt.starts_with("repeat");
            let counters = |d: &Deployment| match r.repeat {
                Repeat::Xdp => (d.server.xdp("hit"), 0),
                Repeat::Userspace(outcome) => (d.server.xdp("hit"), d.server.xdp(outcome)),
            };
            let before = counters(&d);
            let mut args: Vec<&str> = vec![&at];
            args.extend(r.args.iter().map(String::as_str));
            let out = tests::netns::ns_exec(
                &d.rig.client_ns,
                "dig",
                &[&["+time=2", "+tries=1"], &args[..]].concat(),
            );
            let dig = Dig::parse(&out.stdout);
            for (what, check) in &r.checks {
                if !check(&dig) {
                    failures.push(format!(
                        "{} {} ({attempt}): expected {what}\n{}",
                        r.section, r.title, dig.text
                    ));
                }
            }
            let after = counters(&d);
            let (hits, passed) = (after.0 - before.0, after.1 - before.1);
            let answered_by = match r.repeat {
                Repeat::Xdp if repeat && hits != 1 => Some(format!("{hits} XDP hits, expected 1")),
                Repeat::Userspace(outcome) if hits != 0 || passed == 0 => {
                    Some(format!("{hits} XDP hits and {passed} {outcome}, expected none and some"))
                }
                _ => None,
            };
            if let Some(problem) = answered_by {
                failures.push(format!("{} {} ({attempt}): {problem}", r.section, r.title));
            }
        }
    }
    assert!(failures.is_empty(), "{} failed checks:\n{}", failures.len(), failures.join("\n"));
}
