//! The contract that lets the kernel answer for us: for a corpus of queries (names of
//! every kind, many types, letter-case variants, with and without EDNS, IPv4 and IPv6,
//! positive and negative answers, wildcard synthesis, referrals, additional-section
//! data, names that do not exist), the DNS message the XDP program sends equals the one userspace sends, byte
//! for byte.
//!
//! The one difference the RFCs allow and we use: the order of the records of a
//! round-robin address set (RRsets are unordered, RFC 2181 section 5), which XDP and
//! userspace rotate with their own counters. Outside the DNS message, the XDP program
//! echoes the query's IPv4 Identification where the kernel would pick its own (RFC 6864:
//! only fragmentation gives it meaning); TTL/hop limit is 64, as the kernel's default.

use hickory_proto::{op::Message, rr::RecordType};
use instadns::fastpath::{cookies::CookieSettings, rrl::RrlSettings};
use tests::{
    data::{fixture_sql, name_of_len},
    dns::{EdnsQuery, QueryBuilder},
    netns::{CLIENT_V4, CLIENT_V6},
    packet::{Frame, check_checksums},
    testrun::{FastPathRig, XDP_PASS, XDP_TX},
};

fn case_variants(name: &str) -> Vec<String> {
    let upper = name.to_ascii_uppercase();
    let alternating: String =
        name.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect();
    vec![name.to_owned(), upper, alternating]
}

fn edns_variants() -> Vec<Option<EdnsQuery>> {
    vec![
        None,
        Some(EdnsQuery::default()),
        Some(EdnsQuery { dnssec_ok: true, payload: 4096, ..Default::default() }),
        Some(EdnsQuery {
            other_flags: 0x0100,
            options: vec![(10, vec![7; 8]), (65001, vec![])],
            ..Default::default()
        }),
        // Client Subnet (RFC 7871): echoed with SCOPE 0 from XDP for names that are
        // not directional; IPv4 /24, IPv6 /56 after a cookie, /0.
        Some(EdnsQuery { options: vec![(8, vec![0, 1, 24, 0, 198, 51, 100])], ..Default::default() }),
        Some(EdnsQuery {
            dnssec_ok: true,
            options: vec![(10, vec![9; 8]), (8, vec![0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0x12, 0x34])],
            ..Default::default()
        }),
        Some(EdnsQuery { options: vec![(8, vec![0, 1, 0, 0])], ..Default::default() }),
        // A client cookie with a server cookie not ours (RFC 7873 section 5.2.3): answered
        // with a fresh one.
        Some(EdnsQuery { options: vec![(10, vec![5; 24])], ..Default::default() }),
    ]
}

#[test]
fn xdp_and_userspace_send_the_same_dns_message() {
    // DNS cookies on (RFC 7873, RFC 9018), as the daemon runs by default.
    let cookies = CookieSettings { enabled: true, secret: *b"differential-key", previous: None };
    let rig = FastPathRig::with_settings(16_384, 1024, &fixture_sql(), RrlSettings::off(), cookies);
    let names = [
        "ws-123456.apps.example.com".to_owned(),
        "ws-234567.apps.example.com".to_owned(),
        "blog.alice.example.org".to_owned(),
        "shop.bob.example.org".to_owned(),
        "123456.example.org".to_owned(),
        "www.carol.example.org".to_owned(),
        "_acme-challenge.blog.alice.example.org".to_owned(),
        "nope.example.org".to_owned(),
        "ws-999999.apps.example.com".to_owned(),
        "apps.example.com".to_owned(),
        "alice.example.org".to_owned(),
        "example.com".to_owned(),
        "example.org".to_owned(),
        name_of_len(127, "example.org.").trim_end_matches('.').to_owned(),
        // Synthesized from *.wild (RFC 4592), one and two labels below.
        "x.wild.example.org".to_owned(),
        "a.b.wild.example.org".to_owned(),
        // Referrals: below the cut, at it, the glue.
        "www.child.example.org".to_owned(),
        "child.example.org".to_owned(),
        "ns1.child.example.org".to_owned(),
        // MX with its target's addresses in the additional section.
        "mail-user.example.org".to_owned(),
        // Names that do not exist, answered by the kernel's zone NXDOMAIN.
        "xk3jf9qzabcdefgh.example.org".to_owned(),
        "48213977.example.org".to_owned(),
        "ghost.alice.example.org".to_owned(),
        "_acme-challenge.nothing.example.com".to_owned(),
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::TXT,
        RecordType::MX,
        RecordType::SOA,
        RecordType::NS,
        RecordType::ANY,
    ];
    let (mut compared, mut rotated, mut passed) = (0, 0, Vec::new());
    let mut id = 0u16;
    for name in &names {
        for qtype in types {
            // Userspace answers first (as when XDP passes the first query up) and installs.
            rig.userspace(&QueryBuilder::new(name, qtype).bytes()).expect("userspace answers");
            for variant in case_variants(name) {
                for edns in edns_variants() {
                    for v6 in [false, true] {
                        id = id.wrapping_add(1);
                        let mut query = QueryBuilder::new(&variant, qtype).id(id);
                        query.edns = edns.clone();
                        let bytes = query.bytes();
                        let frame =
                            if v6 { Frame::v6(bytes.clone()) } else { Frame::v4(bytes.clone()) }.build();
                        let client = if v6 { CLIENT_V6.into() } else { CLIENT_V4.into() };
                        let ask = || (rig.run(&frame), rig.userspace_from(&bytes, client).expect("answers"));
                        let ((mut action, mut out), mut from_userspace) = ask();
                        // A fresh server cookie is dated by the second: one made on each side
                        // of a second's edge differs; asked again, both fall in one second.
                        let has_cookie = edns.as_ref().is_some_and(|e| e.options.iter().any(|o| o.0 == 10));
                        if has_cookie && check_checksums(&out).is_ok_and(|x| x != from_userspace) {
                            ((action, out), from_userspace) = ask();
                        }
                        if action == XDP_PASS {
                            passed.push(format!("{variant} {qtype} edns={}", edns.is_some()));
                            continue;
                        }
                        assert_eq!(action, XDP_TX);
                        let from_xdp = check_checksums(&out).expect("valid checksums");
                        let what = format!("{variant} {qtype} edns={edns:?} v6={v6}");
                        if from_xdp == from_userspace {
                            compared += 1;
                            continue;
                        }
                        // Only a rotated address set may differ, and only in its order.
                        let (x, u) = (
                            Message::from_vec(&from_xdp).unwrap(),
                            Message::from_vec(&from_userspace).unwrap(),
                        );
                        let sorted = |m: &Message| {
                            let mut v: Vec<String> = m.answers.iter().map(|r| r.to_string()).collect();
                            v.sort();
                            v
                        };
                        assert!(
                            name.starts_with("www.carol"),
                            "{what}: XDP and userspace differ:\n  xdp  {from_xdp:02x?}\n  user {from_userspace:02x?}"
                        );
                        assert_eq!(from_xdp.len(), from_userspace.len(), "{what}");
                        assert_eq!(from_xdp[..12], from_userspace[..12], "{what}: header");
                        assert_eq!(sorted(&x), sorted(&u), "{what}: same records");
                        assert_eq!(x.authorities, u.authorities, "{what}");
                        rotated += 1;
                    }
                }
            }
        }
    }
    let total = names.len() * types.len() * 3 * edns_variants().len() * 2;
    eprintln!(
        "{compared} identical, {rotated} identical but for round-robin order, {} passed up of {total}",
        passed.len()
    );
    assert!(rotated > 0, "the corpus includes rotated answers");
    assert!(passed.is_empty(), "every query of the corpus fits and is answered by XDP: {passed:?}");
    assert_eq!(compared + rotated, total);
}
