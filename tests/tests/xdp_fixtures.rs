//! BPF_PROG_TEST_RUN fixtures (katran style): for each crafted packet, the XDP
//! program's action and its exact output. Hits are compared byte for byte with a
//! response built by hickory-proto, and userspace's own response must be that same
//! response; everything the fast path must not answer comes back XDP_PASS, untouched,
//! and then gets the right answer or error from userspace.

use std::time::Duration;

use dns_common::stats::Outcome;
use hickory_proto::{
    op::Message,
    rr::{RData, Record, RecordType, rdata::TXT},
};
use tests::{
    data::{BIG_TXT, LONG_NAME_LENGTHS, fixture_sql, name_127_labels, name_of_len},
    dns::{
        EdnsQuery, QueryBuilder, a, aaaa, cname, demo_soa, name, oracle_response, response_rcode, wire_name,
    },
    netns::{CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6},
    packet::{Frame, Ips, check_checksums},
    testrun::{FastPathRig, OUR_PAYLOAD, XDP_DROP, XDP_PASS, XDP_TX, pin_to_cpu},
};

use dns_common::wire::rcode::{BADVERS, FORMERR, NOTAUTH, NOTIMP, REFUSED};

fn rig() -> FastPathRig {
    FastPathRig::with_sql(4096, 256, &fixture_sql())
}

enum Expect {
    /// Answered in the kernel with exactly this frame.
    Tx(Vec<u8>),
    /// Passed up unchanged.
    Pass,
    /// Dropped (over the response rate limit).
    Drop,
}

struct Fixture {
    description: String,
    frame: Vec<u8>,
    expect: Expect,
    /// The outcome counter the run must increment (by exactly one).
    outcome: Outcome,
}

impl Fixture {
    fn pass(description: impl Into<String>, frame: Vec<u8>, outcome: Outcome) -> Self {
        Self { description: description.into(), frame, expect: Expect::Pass, outcome }
    }

    fn tx(description: impl Into<String>, frame: Vec<u8>, expected: Vec<u8>) -> Self {
        Self { description: description.into(), frame, expect: Expect::Tx(expected), outcome: Outcome::Hit }
    }
}

/// Runs every fixture, collecting every failure: the action, the output (exact for
/// hits, untouched for passes), the checksums of hits, and the outcome counted. The
/// whole table must leave the `Error` outcome where it was.
fn run_table(rig: &FastPathRig, fixtures: &[Fixture]) {
    let mut failures = Vec::new();
    let errors_before = rig.counter(Outcome::Error);
    for f in fixtures {
        let counted_before = rig.counter(f.outcome);
        let (action, out) = rig.run(&f.frame);
        let counted = rig.counter(f.outcome) - counted_before;
        if counted != 1 {
            failures.push(format!(
                "{}: outcome {} counted {counted} times, expected once",
                f.description,
                f.outcome.name()
            ));
        }
        let problem = match &f.expect {
            Expect::Tx(_) if action != XDP_TX => Some(format!("action {action}, expected XDP_TX")),
            Expect::Tx(expected) if &out != expected => {
                Some(format!("output differs\n  got      {}\n  expected {}", hex(&out), hex(expected)))
            }
            Expect::Tx(_) => check_checksums(&out).err(),
            Expect::Pass if action != XDP_PASS => Some(format!("action {action}, expected XDP_PASS")),
            Expect::Pass if out != f.frame => Some("XDP_PASS but the packet was modified".into()),
            Expect::Pass => None,
            Expect::Drop if action != XDP_DROP => Some(format!("action {action}, expected XDP_DROP")),
            Expect::Drop => None,
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", f.description));
        }
    }
    let errors = rig.counter(Outcome::Error) - errors_before;
    if errors != 0 {
        failures.push(format!("the table counted {errors} internal errors (outcome error)"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fixture for a hit: userspace answers `warm` first (installing the answer), then
/// the frame carrying `query` must be answered by XDP exactly as the oracle says.
struct Hit<'a> {
    description: &'a str,
    query: QueryBuilder,
    warm: Option<QueryBuilder>,
    answers: Vec<Record>,
    authority: Vec<Record>,
    rcode: u16,
}

impl Hit<'_> {
    fn fixture(self, rig: &FastPathRig, frame: impl Fn(Vec<u8>) -> Frame) -> Fixture {
        let q = self.query.bytes();
        let oracle = oracle_response(&q, self.answers, self.authority, self.rcode, OUR_PAYLOAD);
        let warm = self.warm.map_or_else(|| q.clone(), |w| w.bytes());
        let userspace = rig.userspace(&warm).expect("userspace answers");
        if warm == q {
            assert_eq!(
                hex(&userspace),
                hex(&oracle),
                "{}: userspace response differs from the oracle",
                self.description
            );
        }
        let query_frame = frame(q);
        Fixture::tx(self.description, query_frame.build(), query_frame.reply(oracle).build())
    }
}

fn hit<'a>(description: &'a str, query: QueryBuilder, answers: Vec<Record>) -> Hit<'a> {
    Hit { description, query, warm: None, answers, authority: vec![], rcode: 0 }
}

fn negative<'a>(description: &'a str, query: QueryBuilder, zone: &str, rcode: u16) -> Hit<'a> {
    Hit { description, query, warm: None, answers: vec![], authority: vec![demo_soa(zone)], rcode }
}

/// EDNS with one Client Subnet option of `data` (family, prefix lengths, address).
fn with_subnet(data: &[u8]) -> EdnsQuery {
    EdnsQuery { options: vec![(8, data.to_vec())], ..EdnsQuery::default() }
}

fn q(name: &str, t: RecordType) -> QueryBuilder {
    QueryBuilder::new(name, t)
}

fn service_answer() -> Vec<Record> {
    vec![
        cname("ws-123456.apps.example.com.", 300, "ws-mt1.example.com."),
        a("ws-mt1.example.com.", 300, "192.0.2.11"),
    ]
}

fn txt(owner: &str, ttl: u32, strings: &[&str]) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect())),
    )
}

#[test]
fn hits_of_every_answer_kind_are_answered_in_the_kernel_byte_for_byte() {
    let rig = rig();
    let edns = EdnsQuery::default();
    let fixtures = vec![
        hit(
            "A through an in-zone CNAME, IPv4",
            q("ws-123456.apps.example.com", RecordType::A),
            service_answer(),
        )
        .fixture(&rig, Frame::v4),
        hit(
            "A through an in-zone CNAME, IPv6, EDNS",
            q("ws-123456.apps.example.com", RecordType::A).edns(edns.clone()).id(7),
            service_answer(),
        )
        .fixture(&rig, Frame::v6),
        hit(
            "CNAME, IPv4",
            q("ws-123456.apps.example.com", RecordType::CNAME),
            vec![cname("ws-123456.apps.example.com.", 300, "ws-mt1.example.com.")],
        )
        .fixture(&rig, Frame::v4),
        hit(
            "A of a host name, IPv4",
            q("blog.alice.example.org", RecordType::A),
            vec![a("blog.alice.example.org.", 60, "192.0.2.1")],
        )
        .fixture(&rig, Frame::v4),
        // RFC 7871 section 7.2.1: a name that is not directional, the option echoed with
        // SCOPE 0 (an odd-length question puts the option at either parity).
        hit(
            "A with Client Subnet 198.51.100.0/24, echoed with scope 0",
            q("blog.alice.example.org", RecordType::A).edns(with_subnet(&[0, 1, 24, 0, 198, 51, 100])),
            vec![a("blog.alice.example.org.", 60, "192.0.2.1")],
        )
        .fixture(&rig, Frame::v4),
        hit(
            "AAAA with Client Subnet 2001:db8:1200::/40 over IPv6",
            q("123456.example.org", RecordType::AAAA)
                .edns(with_subnet(&[0, 2, 40, 0, 0x20, 0x01, 0x0d, 0xb8, 0x12])),
            vec![aaaa("123456.example.org.", 60, "2001:db8::1")],
        )
        .fixture(&rig, Frame::v6),
        hit(
            "CNAME chain with Client Subnet 0.0.0.0/0 (no address bytes), DO set",
            q("ws-123456.apps.example.com", RecordType::A)
                .edns(EdnsQuery { dnssec_ok: true, ..with_subnet(&[0, 1, 0, 0]) }),
            service_answer(),
        )
        .fixture(&rig, Frame::v4),
        hit(
            "Client Subnet 192.0.0.0/3 (one address byte, bits past the prefix clear)",
            q("blog.alice.example.org", RecordType::A).edns(with_subnet(&[0, 1, 3, 0, 0xc0])),
            vec![a("blog.alice.example.org.", 60, "192.0.2.1")],
        )
        .fixture(&rig, Frame::v6),
        hit(
            "Client Subnet /128 after another option (a cookie)",
            q("123456.example.org", RecordType::AAAA).edns(EdnsQuery {
                options: vec![
                    (10, vec![1, 2, 3, 4, 5, 6, 7, 8]),
                    (8, [vec![0, 2, 128, 0], vec![0x20, 0x01, 0x0d, 0xb8], vec![0; 11], vec![1]].concat()),
                ],
                ..EdnsQuery::default()
            }),
            vec![aaaa("123456.example.org.", 60, "2001:db8::1")],
        )
        .fixture(&rig, Frame::v4),
        hit(
            "AAAA of a host name, IPv6",
            q("123456.example.org", RecordType::AAAA),
            vec![aaaa("123456.example.org.", 60, "2001:db8::1")],
        )
        .fixture(&rig, Frame::v6),
        hit(
            "TXT (ACME DNS-01 value), IPv4",
            q("_acme-challenge.blog.alice.example.org", RecordType::TXT),
            vec![txt("_acme-challenge.blog.alice.example.org.", 60, &["token-abc"])],
        )
        .fixture(&rig, Frame::v4),
        hit(
            "SOA at the apex",
            q("example.com", RecordType::SOA),
            vec![{
                let mut soa = demo_soa("example.com.");
                soa.ttl = 3600;
                soa
            }],
        )
        .fixture(&rig, Frame::v6),
        hit(
            "NS set at the apex",
            q("example.org", RecordType::NS),
            vec![
                Record::from_rdata(
                    name("example.org."),
                    3600,
                    RData::NS(hickory_proto::rr::rdata::NS(name("ns1.example.com."))),
                ),
                Record::from_rdata(
                    name("example.org."),
                    3600,
                    RData::NS(hickory_proto::rr::rdata::NS(name("ns2.example.com."))),
                ),
            ],
        )
        .fixture(&rig, Frame::v4),
        Hit {
            description: "mixed-case query hits the lower-cased entry and echoes its case",
            query: q("WS-123456.Apps.EXAMPLE.com", RecordType::A),
            warm: Some(q("ws-123456.apps.example.com", RecordType::A).id(99)),
            answers: service_answer(),
            authority: vec![],
            rcode: 0,
        }
        .fixture(&rig, Frame::v4),
        negative("NXDOMAIN with the SOA, IPv4", q("nope.example.org", RecordType::A), "example.org.", 3)
            .fixture(&rig, Frame::v4),
        negative(
            "NXDOMAIN, EDNS with DO, IPv6",
            q("nope2.example.com", RecordType::AAAA).edns(EdnsQuery { dnssec_ok: true, ..edns.clone() }),
            "example.com.",
            3,
        )
        .fixture(&rig, Frame::v6),
        negative("NODATA at an empty non-terminal", q("apps.example.com", RecordType::A), "example.com.", 0)
            .fixture(&rig, Frame::v6),
        negative(
            "NODATA for a type the name lacks (MX at a host)",
            q("blog.alice.example.org", RecordType::MX),
            "example.org.",
            0,
        )
        .fixture(&rig, Frame::v4),
        hit("802.1Q VLAN-tagged", q("ws-123456.apps.example.com", RecordType::A), service_answer()).fixture(
            &rig,
            |p| {
                let mut f = Frame::v4(p);
                f.vlans = vec![42];
                f
            },
        ),
        hit(
            "QinQ: two VLAN tags, IPv6",
            q("123456.example.org", RecordType::AAAA),
            vec![aaaa("123456.example.org.", 60, "2001:db8::1")],
        )
        .fixture(&rig, |p| {
            let mut f = Frame::v6(p);
            f.vlans = vec![100, 42];
            f
        }),
        hit(
            "Ethernet padding after the IP packet is dropped",
            q("blog.alice.example.org", RecordType::A),
            vec![a("blog.alice.example.org.", 60, "192.0.2.1")],
        )
        .fixture(&rig, |p| {
            let mut f = Frame::v4(p);
            f.trailer = vec![0; 18];
            f
        }),
    ];
    let hits_before = rig.counter(Outcome::Hit);
    run_table(&rig, &fixtures);
    assert_eq!(
        rig.counter(Outcome::Hit) - hits_before,
        fixtures.len() as u64,
        "every fixture counted as a hit"
    );
}

#[test]
fn header_bits_follow_the_rules() {
    let rig = rig();
    // RD clear, CD, AD and Z set in the query: the response copies RD (clear) and CD,
    // clears AD and Z, sets AA, leaves RA clear.
    let mut query = q("blog.alice.example.org", RecordType::A);
    query.flags = [0x00, 0x10 | 0x20 | 0x40];
    let bytes = query.bytes();
    let oracle =
        oracle_response(&bytes, vec![a("blog.alice.example.org.", 60, "192.0.2.1")], vec![], 0, OUR_PAYLOAD);
    assert_eq!(oracle[2..4], [0x84, 0x10], "oracle: QR AA, CD only");
    let userspace = rig.userspace(&bytes).unwrap();
    assert_eq!(hex(&userspace), hex(&oracle));
    let frame = Frame::v4(bytes);
    run_table(&rig, &[Fixture::tx("RD clear, CD/AD/Z set", frame.build(), frame.reply(oracle).build())]);
}

#[test]
fn edns_follows_rfc6891_and_rfc8906() {
    let rig = rig();
    let answer = || vec![a("blog.alice.example.org.", 60, "192.0.2.1")];
    let base = || q("blog.alice.example.org", RecordType::A);
    let fixtures = vec![
        hit("EDNS(0): our payload size in the response", base().edns(EdnsQuery::default()), answer())
            .fixture(&rig, Frame::v4),
        hit("DO bit copied", base().edns(EdnsQuery { dnssec_ok: true, ..Default::default() }), answer())
            .fixture(&rig, Frame::v6),
        hit(
            "unknown EDNS flag bits cleared",
            base().edns(EdnsQuery { other_flags: 0x4001, ..Default::default() }),
            answer(),
        )
        .fixture(&rig, Frame::v4),
        hit(
            "unknown EDNS option not echoed",
            base().edns(EdnsQuery { options: vec![(65001, b"xyz".to_vec())], ..Default::default() }),
            answer(),
        )
        .fixture(&rig, Frame::v4),
        hit(
            "DNS cookie and padding options ignored (not implemented), not echoed",
            base()
                .edns(EdnsQuery { options: vec![(10, vec![1; 8]), (12, vec![0; 40])], ..Default::default() }),
            answer(),
        )
        .fixture(&rig, Frame::v6),
        hit(
            "client payload below 512 treated as 512",
            base().edns(EdnsQuery { payload: 100, ..Default::default() }),
            answer(),
        )
        .fixture(&rig, Frame::v4),
    ];
    run_table(&rig, &fixtures);
}

#[test]
fn answers_over_the_clients_payload_size_go_up_for_truncation() {
    let rig = rig();
    let strings: Vec<String> = ["a", "b", "c"].iter().map(|c| c.repeat(BIG_TXT)).collect();
    let strs: Vec<&str> = strings.iter().map(String::as_str).collect();
    let big = || q("big.example.org", RecordType::TXT);
    // With a large EDNS payload the answer fits (about 630 bytes) and is served.
    let fits = hit(
        "big TXT with EDNS 4096: fits our 1232",
        big().edns(EdnsQuery { payload: 4096, ..Default::default() }),
        vec![txt("big.example.org.", 60, &strs)],
    )
    .fixture(&rig, Frame::v4);
    let too_big: Vec<(String, QueryBuilder)> = vec![
        ("big TXT without EDNS (512)".into(), big()),
        ("big TXT with EDNS 512".into(), big().edns(EdnsQuery { payload: 512, ..Default::default() })),
        (
            "big TXT with EDNS 100 (means 512)".into(),
            big().edns(EdnsQuery { payload: 100, ..Default::default() }),
        ),
    ];
    let before = rig.counter(Outcome::PassTooBig);
    let mut fixtures = vec![fits];
    for (description, query) in &too_big {
        fixtures.push(Fixture::pass(
            description.clone(),
            Frame::v4(query.bytes()).build(),
            Outcome::PassTooBig,
        ));
    }
    run_table(&rig, &fixtures);
    assert_eq!(rig.counter(Outcome::PassTooBig) - before, 3);
    // Userspace then answers with TC set, the question and (with EDNS) the OPT record.
    for (description, query) in &too_big {
        let r = Message::from_vec(&rig.userspace(&query.bytes()).unwrap()).unwrap();
        assert!(r.metadata.truncation, "{description}: TC set");
        assert!(r.answers.is_empty(), "{description}: no records");
        assert_eq!(r.edns.is_some(), query.edns.is_some(), "{description}: OPT iff the query had one");
    }
}

#[test]
fn names_of_every_legal_length_hit_in_their_bucket() {
    let rig = rig();
    let mut fixtures = Vec::new();
    for len in LONG_NAME_LENGTHS {
        let owner = name_of_len(len, "example.org.");
        assert_eq!(wire_name(&owner).len(), len);
        let upper = owner.to_ascii_uppercase();
        fixtures.push(
            Hit {
                description: &format!("{len}-byte name, queried in upper case"),
                query: q(&upper, RecordType::A),
                warm: Some(q(&owner, RecordType::A)),
                answers: vec![a(&owner, 60, &format!("192.0.2.{len}"))],
                authority: vec![],
                rcode: 0,
            }
            .fixture(&rig, Frame::v6),
        );
    }
    let deep = name_127_labels();
    assert_eq!((wire_name(&deep).len(), deep.matches('.').count()), (255, 127));
    fixtures.push(
        hit("127 labels, 255 bytes", q(&deep, RecordType::A), vec![a(&deep, 60, "192.0.2.127")])
            .fixture(&rig, Frame::v4),
    );
    run_table(&rig, &fixtures);
}

#[test]
fn expired_entries_go_up_and_are_refreshed() {
    let rig = rig();
    let query = q("short.example.org", RecordType::A);
    let oracle = oracle_response(
        &query.bytes(),
        vec![a("short.example.org.", 1, "192.0.2.99")],
        vec![],
        0,
        OUR_PAYLOAD,
    );
    assert_eq!(hex(&rig.userspace(&query.bytes()).unwrap()), hex(&oracle));
    let frame = Frame::v4(query.bytes());
    run_table(&rig, &[Fixture::tx("within its 1 s TTL", frame.build(), frame.reply(oracle.clone()).build())]);
    std::thread::sleep(Duration::from_millis(1300));
    let expired_before = rig.counter(Outcome::Expired);
    run_table(&rig, &[Fixture::pass("after its TTL", frame.build(), Outcome::Expired)]);
    assert_eq!(rig.counter(Outcome::Expired) - expired_before, 1);
    // Userspace answers the query that came up and refreshes the entry.
    assert_eq!(hex(&rig.userspace(&query.bytes()).unwrap()), hex(&oracle));
    run_table(&rig, &[Fixture::tx("refreshed", frame.build(), frame.reply(oracle).build())]);
}

#[test]
fn address_sets_marked_rotate_are_answered_round_robin() {
    // The rotation counter is per CPU: every run on the same one.
    pin_to_cpu(0);
    let rig = rig();
    for (qtype, frame, prefix) in [
        (RecordType::A, Frame::v4 as fn(Vec<u8>) -> Frame, "192.0.2.10"),
        (RecordType::AAAA, Frame::v6, "2001:db8::10"),
    ] {
        let query = q("www.carol.example.org", qtype).edns(EdnsQuery::default());
        let expected: Vec<Record> = (1..=8)
            .map(|i| {
                if qtype == RecordType::A {
                    a("www.carol.example.org.", 60, &format!("{prefix}{i}"))
                } else {
                    aaaa("www.carol.example.org.", 60, &format!("{prefix}{i}"))
                }
            })
            .collect();
        let sorted = |records: &[Record]| {
            let mut v: Vec<String> = records.iter().map(|r| r.to_string()).collect();
            v.sort();
            v
        };
        let userspace = Message::from_vec(&rig.userspace(&query.bytes()).unwrap()).unwrap();
        assert_eq!(sorted(&userspace.answers), sorted(&expected), "userspace answers all 8");
        let mut firsts = Vec::new();
        for _ in 0..8 {
            let (action, out) = rig.run(&frame(query.bytes()).build());
            assert_eq!(action, XDP_TX, "{qtype}: answered by XDP");
            let payload = check_checksums(&out).expect("valid checksums after rotation");
            let r = Message::from_vec(&payload).unwrap();
            assert_eq!(sorted(&r.answers), sorted(&expected), "{qtype}: all 8 records every time");
            firsts.push(r.answers[0].to_string());
        }
        firsts.sort();
        firsts.dedup();
        assert_eq!(firsts.len(), 8, "{qtype}: 8 queries started with 8 different records");
    }
}

#[test]
fn misses_and_non_dns_packets_pass_unchanged() {
    let rig = rig();
    let never_asked = q("ws-234567.apps.example.com", RecordType::A).bytes();
    let mut ntp = Frame::v4(vec![0x23; 48]);
    ntp.dport = 123;
    let mut tcp = Frame::v4(never_asked.clone());
    tcp.protocol = 6;
    let mut arp = Frame::v4(vec![]).build();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let fixtures = vec![
        Fixture::pass(
            "miss: a name never asked, IPv4",
            Frame::v4(never_asked.clone()).build(),
            Outcome::Miss,
        ),
        Fixture::pass(
            "miss: a name never asked, IPv6",
            Frame::v6(never_asked.clone()).build(),
            Outcome::Miss,
        ),
        Fixture::pass("UDP to another port", ntp.build(), Outcome::PassNotDns),
        Fixture::pass("TCP", tcp.build(), Outcome::PassNotDns),
        Fixture::pass("ARP", arp, Outcome::PassNotDns),
    ];
    let misses = rig.counter(Outcome::Miss);
    let not_dns = rig.counter(Outcome::PassNotDns);
    run_table(&rig, &fixtures);
    assert_eq!(rig.counter(Outcome::Miss) - misses, 2);
    assert_eq!(rig.counter(Outcome::PassNotDns) - not_dns, 3);
}

/// Only our own traffic: frames to another host's MAC or address, from sources we never
/// answer (multicast, broadcast, loopback, loop-prone ports, CVE-2024-2169) or with an
/// IPv6 UDP checksum of zero pass up untouched, however answerable the query is; from
/// port 53 a query is answered.
#[test]
fn only_frames_addressed_to_us_from_sources_we_answer_are_answered() {
    let rig = rig();
    let query = base_query();
    rig.userspace(&query).expect("installed");
    let v4 = || Frame::v4(query.clone());
    let v6 = || Frame::v6(query.clone());
    let with = |mut f: Frame, change: &dyn Fn(&mut Frame)| {
        change(&mut f);
        f.build()
    };
    let not_ours = Outcome::PassNotForUs;
    let mut fixtures = vec![
        Fixture::pass("another host's MAC", with(v4(), &|f| f.dst_mac = [0x02, 0, 0, 0, 0, 0x99]), not_ours),
        Fixture::pass("broadcast MAC", with(v4(), &|f| f.dst_mac = [0xff; 6]), not_ours),
        Fixture::pass("multicast MAC", with(v6(), &|f| f.dst_mac = [0x33, 0x33, 0, 0, 0, 1]), not_ours),
        Fixture::pass(
            "another host's IPv4 address",
            with(v4(), &|f| f.ips = Ips::V4(CLIENT_V4, "198.18.0.9".parse().unwrap())),
            not_ours,
        ),
        Fixture::pass(
            "another host's IPv6 address",
            with(v6(), &|f| f.ips = Ips::V6(CLIENT_V6, "fd00:53::9".parse().unwrap())),
            not_ours,
        ),
        Fixture::pass(
            "IPv4 multicast source",
            with(v4(), &|f| f.ips = Ips::V4("224.0.0.251".parse().unwrap(), SERVER_V4)),
            not_ours,
        ),
        Fixture::pass(
            "IPv4 broadcast source",
            with(v4(), &|f| f.ips = Ips::V4("255.255.255.255".parse().unwrap(), SERVER_V4)),
            not_ours,
        ),
        Fixture::pass(
            "IPv4 loopback source",
            with(v4(), &|f| f.ips = Ips::V4("127.0.0.1".parse().unwrap(), SERVER_V4)),
            not_ours,
        ),
        Fixture::pass(
            "IPv6 multicast source",
            with(v6(), &|f| f.ips = Ips::V6("ff02::1".parse().unwrap(), SERVER_V6)),
            not_ours,
        ),
        Fixture::pass(
            "IPv6 loopback source",
            with(v6(), &|f| f.ips = Ips::V6("::1".parse().unwrap(), SERVER_V6)),
            not_ours,
        ),
        Fixture::pass(
            "IPv6 with a UDP checksum of zero",
            with(v6(), &|f| f.no_udp_checksum = true),
            not_ours,
        ),
    ];
    for port in [7u16, 13, 17, 19, 37] {
        fixtures.push(Fixture::pass(
            format!("source port {port}"),
            with(v4(), &|f| f.sport = port),
            not_ours,
        ));
    }
    let from_53 = with(v4(), &|f| f.sport = 53);
    let mut reply = v4();
    reply.sport = 53;
    let oracle = rig.userspace(&query).unwrap();
    fixtures.push(Fixture::tx("source port 53 is answered", from_53, reply.reply(oracle).build()));
    run_table(&rig, &fixtures);
}

/// What userspace does with the DNS message of a passed-up packet.
#[derive(Debug, PartialEq)]
enum Userspace {
    /// Answers with this RCODE.
    Rcode(u16),
    /// Sends nothing (responses, runts).
    Drops,
    /// Not a DNS-level problem: the kernel stack would handle (or drop) the packet.
    Kernel,
}

struct Malformed {
    description: &'static str,
    frame: Vec<u8>,
    /// Why the fast path passes it up.
    outcome: Outcome,
    userspace: Userspace,
    /// The DNS message, for the userspace check.
    message: Vec<u8>,
}

/// A valid, installed query; each malformed case changes one thing.
fn base_query() -> Vec<u8> {
    q("blog.alice.example.org", RecordType::A).bytes()
}

/// A DNS message the fast path does not take, in a well-formed frame.
fn dns_case(description: &'static str, message: Vec<u8>, userspace: Userspace) -> Malformed {
    Malformed {
        description,
        frame: Frame::v4(message.clone()).build(),
        outcome: Outcome::PassUnsupported,
        userspace,
        message,
    }
}

fn mutated(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut m = base_query();
    f(&mut m);
    m
}

fn with_opt(opt: &[u8]) -> Vec<u8> {
    mutated(|m| {
        m[11] = 1;
        m.extend_from_slice(opt);
    })
}

/// A frame the fast path does not take (the kernel stack's business).
fn frame_case(description: &'static str, frame: Frame, outcome: Outcome) -> Malformed {
    Malformed {
        description,
        message: frame.payload.clone(),
        frame: frame.build(),
        outcome,
        userspace: Userspace::Kernel,
    }
}

fn malformed_cases() -> Vec<Malformed> {
    use Userspace::*;
    let name_end = 12 + wire_name("blog.alice.example.org").len();
    let opt = |version: u8, rdata: &[u8]| {
        let mut o = vec![0, 0, 41, 4, 0xd0, 0, version, 0, 0];
        o.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        o.extend_from_slice(rdata);
        o
    };
    let option =
        |code: u16, data: &[u8]| [&code.to_be_bytes()[..], &(data.len() as u16).to_be_bytes(), data].concat();
    let question = |name: &[u8]| {
        let mut m = vec![0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m
    };
    let long_name: Vec<u8> =
        [&[63u8][..], &[b'a'; 63], &[63], &[b'b'; 63], &[63], &[b'c'; 63], &[63], &[b'd'; 63], &[0]].concat();
    assert_eq!(long_name.len(), 257);
    let mut cases = vec![
        dns_case("response (QR set)", mutated(|m| m[2] |= 0x80), Drops),
        dns_case("opcode IQUERY", mutated(|m| m[2] |= 1 << 3), Rcode(NOTIMP)),
        dns_case("opcode STATUS", mutated(|m| m[2] |= 2 << 3), Rcode(NOTIMP)),
        // RFC 1996: a NOTIFY names a zone apex; this one names a host inside example.org.
        dns_case("opcode NOTIFY", mutated(|m| m[2] |= 4 << 3), Rcode(NOTAUTH)),
        // RFC 2136 section 3.1.1: the zone section's type must be SOA (this one asks for A).
        dns_case("opcode UPDATE", mutated(|m| m[2] |= 5 << 3), Rcode(FORMERR)),
        dns_case("opcode 15", mutated(|m| m[2] |= 15 << 3), Rcode(NOTIMP)),
        dns_case("TC set in a query", mutated(|m| m[2] |= 0x02), Rcode(0)),
        dns_case("QDCOUNT 0", mutated(|m| m[5] = 0), Rcode(FORMERR)),
        dns_case("QDCOUNT 2", mutated(|m| m[5] = 2), Rcode(FORMERR)),
        dns_case("ANCOUNT 1", mutated(|m| m[7] = 1), Rcode(FORMERR)),
        dns_case("NSCOUNT 1", mutated(|m| m[9] = 1), Rcode(FORMERR)),
        dns_case(
            "ARCOUNT 2, two OPT records",
            mutated(|m| {
                m[11] = 2;
                m.extend_from_slice(&[opt(0, &[]), opt(0, &[])].concat());
            }),
            Rcode(FORMERR),
        ),
        dns_case("ARCOUNT 1 but no record", mutated(|m| m[11] = 1), Rcode(FORMERR)),
        dns_case(
            "additional record that is not OPT",
            with_opt(&[0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]),
            Rcode(0),
        ),
        dns_case(
            "OPT with a non-root owner",
            with_opt(&[&[1, b'x', 0][..], &opt(0, &[])[1..]].concat()),
            Rcode(FORMERR),
        ),
        dns_case("EDNS version 1", with_opt(&opt(1, &[])), Rcode(BADVERS)),
        dns_case("EDNS version 255", with_opt(&opt(255, &[])), Rcode(BADVERS)),
        dns_case(
            "EDNS version 1 with an unknown option",
            with_opt(&opt(1, &option(65001, b"x"))),
            Rcode(BADVERS),
        ),
        dns_case(
            "OPT RDLENGTH beyond the message",
            with_opt(&{
                let mut o = opt(0, &[]);
                o[10] = 20;
                o
            }),
            Rcode(FORMERR),
        ),
        dns_case("EDNS option overrunning the OPT", with_opt(&opt(0, &[0, 10, 0, 9, 1])), Rcode(FORMERR)),
        dns_case("EDNS option header cut short", with_opt(&opt(0, &[0, 10, 0])), Rcode(FORMERR)),
        dns_case(
            "more EDNS options than the fast path walks",
            with_opt(&opt(0, &option(65001, b"").repeat(9))),
            Rcode(0),
        ),
        dns_case("trailing garbage after the question", mutated(|m| m.push(0)), Rcode(FORMERR)),
        dns_case(
            "trailing garbage after the OPT",
            mutated(|m| {
                m[11] = 1;
                m.extend_from_slice(&opt(0, &[]));
                m.extend_from_slice(&[1, 2, 3]);
            }),
            Rcode(FORMERR),
        ),
        dns_case("class CH", mutated(|m| m[name_end + 3] = 3), Rcode(REFUSED)),
        dns_case("class NONE", mutated(|m| m[name_end + 3] = 254), Rcode(REFUSED)),
        dns_case("class ANY", mutated(|m| m[name_end + 3] = 255), Rcode(REFUSED)),
        dns_case(
            "compression pointer in the question",
            question(&[4, b'b', b'l', b'o', b'g', 0xc0, 12]),
            Rcode(FORMERR),
        ),
        dns_case("pointer as the whole question name", question(&[0xc0, 12]), Rcode(FORMERR)),
        dns_case("extended label type 0x40", question(&[0x41, b'x', 0]), Rcode(FORMERR)),
        dns_case("reserved label type 0x80", question(&[0x81, b'x', 0]), Rcode(FORMERR)),
        dns_case("label of 64 bytes", question(&[&[64u8][..], &[b'a'; 64], &[0]].concat()), Rcode(FORMERR)),
        dns_case("name of 257 bytes", question(&long_name), Rcode(FORMERR)),
        dns_case("name cut off inside a label", base_query()[..name_end - 5].to_vec(), Rcode(FORMERR)),
        dns_case("name cut off before its root label", base_query()[..name_end - 1].to_vec(), Rcode(FORMERR)),
        dns_case("QTYPE and QCLASS missing", base_query()[..name_end].to_vec(), Rcode(FORMERR)),
        dns_case("QCLASS cut short", base_query()[..name_end + 3].to_vec(), Rcode(FORMERR)),
        dns_case("header only", base_query()[..12].to_vec(), Rcode(FORMERR)),
        dns_case("shorter than a header", base_query()[..11].to_vec(), Drops),
        dns_case("empty UDP payload", Vec::new(), Drops),
        dns_case(
            "query over 2048 bytes (EDNS padding)",
            with_opt(&opt(0, &option(12, &vec![0; 2100]))),
            Rcode(0),
        ),
    ];
    let mut f = Frame::v4(base_query());
    f.udp_len_delta = 4;
    cases.push(frame_case("UDP length beyond the IP packet", f, Outcome::PassUnsupported));
    let mut f = Frame::v4(base_query());
    f.udp_len_delta = -1;
    cases.push(frame_case("UDP length short of the IP packet", f, Outcome::PassUnsupported));
    let mut f = Frame::v4(base_query());
    f.ip_len_delta = 10;
    cases.push(frame_case("IPv4 total length beyond the frame", f, Outcome::PassUnsupported));
    let mut f = Frame::v4(base_query());
    f.ip_options = vec![1, 1, 1, 0];
    cases.push(frame_case("IPv4 with options", f, Outcome::PassUnsupported));
    let mut f = Frame::v4(base_query());
    f.ip_frag = 0x2000;
    cases.push(frame_case("IPv4 first fragment (MF)", f, Outcome::PassUnsupported));
    let mut f = Frame::v4(base_query());
    f.ip_frag = 0x0010;
    cases.push(frame_case("IPv4 later fragment (offset)", f, Outcome::PassUnsupported));
    let mut f = Frame::v6(base_query());
    f.ipv6_next_header = Some(0);
    cases.push(frame_case("IPv6 hop-by-hop extension header", f, Outcome::PassUnsupported));
    let mut f = Frame::v6(base_query());
    f.ipv6_next_header = Some(44);
    cases.push(frame_case("IPv6 fragment header", f, Outcome::PassUnsupported));
    let mut f = Frame::v6(base_query());
    f.ip_len_delta = 30;
    cases.push(frame_case("IPv6 payload length beyond the frame", f, Outcome::PassUnsupported));
    let mut f = Frame::v4(base_query());
    f.dport = 5353;
    cases.push(frame_case("another destination port", f, Outcome::PassNotDns));
    let mut f = Frame::v4(base_query());
    f.sport = 0;
    cases.push(frame_case("source port 0", f, Outcome::PassUnsupported));
    let mut f = Frame::v4(base_query());
    f.vlans = vec![1, 2, 3];
    cases.push(frame_case("three VLAN tags", f, Outcome::PassUnsupported));
    let mut v6_in_v4 = Frame::v4(base_query()).build();
    v6_in_v4[14] = 0x65;
    cases.push(Malformed {
        description: "IPv4 ethertype, version 6",
        frame: v6_in_v4,
        outcome: Outcome::PassUnsupported,
        userspace: Userspace::Kernel,
        message: vec![],
    });
    let mut bare = vec![0u8; 14];
    bare[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    cases.push(Malformed {
        description: "Ethernet header only (IPv4 ethertype)",
        frame: bare,
        outcome: Outcome::PassNotDns,
        userspace: Userspace::Kernel,
        message: vec![],
    });
    let truncated_ip = Frame::v4(base_query()).build()[..30].to_vec();
    cases.push(Malformed {
        description: "frame cut inside the IPv4 header",
        frame: truncated_ip,
        outcome: Outcome::PassNotDns,
        userspace: Userspace::Kernel,
        message: vec![],
    });
    cases
}

#[test]
fn malformed_and_unsupported_packets_pass_up_untouched_and_get_the_right_error() {
    let rig = rig();
    rig.userspace(&base_query()).expect("the base query is installed");
    let (action, _) = rig.run(&Frame::v4(base_query()).build());
    assert_eq!(action, XDP_TX, "the unmodified base query is a hit");
    let cases = malformed_cases();
    assert!(cases.len() >= 40, "{} malformed fixtures", cases.len());
    let fixtures: Vec<Fixture> =
        cases.iter().map(|c| Fixture::pass(c.description, c.frame.clone(), c.outcome)).collect();
    let hits = rig.counter(Outcome::Hit);
    run_table(&rig, &fixtures);
    assert_eq!(rig.counter(Outcome::Hit), hits, "none answered in the kernel");
    let mut failures = Vec::new();
    for c in &cases {
        let got = match rig.userspace(&c.message) {
            None => Userspace::Drops,
            Some(r) => Userspace::Rcode(response_rcode(&r)),
        };
        if c.userspace != Userspace::Kernel && got != c.userspace {
            failures.push(format!("{}: userspace gave {got:?}, expected {:?}", c.description, c.userspace));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A name that does not exist, asked for the first time: the kernel answers its zone's
/// NXDOMAIN, exactly the oracle's bytes, and userspace (asked afterwards) sends the same.
fn nxdomain(description: &str, query: QueryBuilder, zone: &str, v6: bool) -> (Fixture, Vec<u8>) {
    let bytes = query.bytes();
    let oracle = oracle_response(&bytes, vec![], vec![demo_soa(zone)], 3, OUR_PAYLOAD);
    let frame = if v6 { Frame::v6(bytes.clone()) } else { Frame::v4(bytes.clone()) };
    let fixture = Fixture {
        description: description.into(),
        frame: frame.build(),
        expect: Expect::Tx(frame.reply(oracle.clone()).build()),
        outcome: Outcome::HitNxdomain,
    };
    (fixture, bytes)
}

/// Names that do not exist (the random-subdomain flood's names): the kernel answers
/// NXDOMAIN the first time, byte for byte what userspace sends, for every shape a flood
/// uses (random labels, digit labels of the `{id}` rule, `_acme-challenge.` names,
/// `{name}.{owner}` shapes, names below a leaf); names that exist or may exist, below a
/// delegation or a wildcard, or in no zone of ours go up (asked with ECS, the option is
/// echoed with scope 0); a name added a
/// moment ago is never denied, and one removed is denied again.
#[test]
fn names_that_do_not_exist_get_nxdomain_from_the_kernel_at_once() {
    let rig = rig();
    let ecs = EdnsQuery { options: vec![(8, vec![0, 1, 24, 0, 198, 51, 100])], ..EdnsQuery::default() };
    let absent = vec![
        nxdomain(
            "random 16-letter label",
            q("xk3jf9qzabcdefgh.example.org", RecordType::A),
            "example.org.",
            false,
        ),
        nxdomain(
            "digit label of the {id} rule, no such instance",
            q("48213977.example.org", RecordType::AAAA),
            "example.org.",
            true,
        ),
        nxdomain(
            "an _acme-challenge name",
            q("_acme-challenge.nothing.example.org", RecordType::TXT),
            "example.org.",
            false,
        ),
        nxdomain(
            "{name}.{owner} shape of an existing owner",
            q("ghost.alice.example.org", RecordType::A),
            "example.org.",
            false,
        ),
        nxdomain(
            "below a name without descendants (RFC 8020)",
            q("x.blog.alice.example.org", RecordType::A),
            "example.org.",
            false,
        ),
        nxdomain(
            "deep, EDNS, another zone",
            q("a.b.c.NOPE.example.com", RecordType::MX).edns(EdnsQuery::default()),
            "example.com.",
            true,
        ),
        // The zone's NXDOMAIN is not directional: the option is echoed, SCOPE 0.
        nxdomain(
            "with Client Subnet: echoed with scope 0 (RFC 7871 7.2.1)",
            q("nope3.example.org", RecordType::A).edns(ecs),
            "example.org.",
            false,
        ),
    ];
    let mut fixtures: Vec<Fixture> = Vec::new();
    let mut asked = Vec::new();
    for (f, bytes) in absent {
        fixtures.push(f);
        asked.push(bytes);
    }
    let pass =
        |d: &str, query: QueryBuilder| Fixture::pass(d, Frame::v4(query.bytes()).build(), Outcome::Miss);
    fixtures.extend([
        pass(
            "exists (an empty non-terminal): userspace answers NODATA",
            q("apps.example.com", RecordType::A),
        ),
        pass("below a delegation: a referral", q("x.child.example.org", RecordType::A)),
        pass("below a wildcard: synthesized", q("q.wild.example.org", RecordType::A)),
        pass("AXFR is refused, not NXDOMAIN", q("nope.example.org", RecordType::AXFR)),
        pass("in no zone of ours: REFUSED", q("nope.example.net", RecordType::A)),
    ]);
    run_table(&rig, &fixtures);
    // Userspace says the same, and does not ask the database for them.
    for (f, bytes) in fixtures.iter().zip(&asked) {
        let Expect::Tx(expected) = &f.expect else { continue };
        let userspace = rig.userspace(bytes).expect("userspace answers");
        let (_, dns) = expected.split_at(expected.len() - userspace.len());
        assert_eq!(hex(&userspace), hex(dns), "{}: userspace differs from the kernel", f.description);
    }

    // A name added a moment ago is answered (by userspace first), never denied; removed,
    // it is denied by the kernel again.
    let name = q("77777.example.org", RecordType::A);
    let (denied, _) = nxdomain("77777 before it exists", name.clone(), "example.org.", false);
    run_table(&rig, &[denied]);
    rig.change("INSERT INTO instances (id, name, owner, cluster_id) SELECT 77777, 'new', 'dave', id FROM clusters WHERE name = 'mt1';");
    for (d, query) in [
        ("the new instance's {id} name", name.clone()),
        ("its {name}.{owner} name", q("new.dave.example.org", RecordType::A)),
    ] {
        run_table(&rig, &[pass(d, query.clone())]);
        let answer = Message::from_vec(&rig.userspace(&query.bytes()).expect("answers")).unwrap();
        assert_eq!(answer.answers.len(), 1, "{d}: answered with the cluster's address: {answer:?}");
    }
    rig.change("DELETE FROM instances WHERE id = 77777;");
    let (denied_again, _) = nxdomain("77777 after its removal", name, "example.org.", false);
    run_table(&rig, &[denied_again]);
}

/// Wildcards in the kernel (RFC 4592): once userspace has synthesized an answer below a
/// closest encloser, every other name below it that does not exist gets that answer from
/// XDP, with the owner written as a pointer to its question, byte for byte what userspace
/// sends; other types, and names that exist below the encloser, go up.
#[test]
fn names_below_a_wildcard_are_synthesized_in_the_kernel() {
    let rig = rig();
    let first = q("x.wild.example.org", RecordType::A).bytes();
    rig.userspace(&first).expect("userspace synthesizes and installs the wildcard's answer");
    let synthesized = |d: &str, query: QueryBuilder, v6: bool| {
        let name = query.name.to_ascii_lowercase();
        let bytes = query.bytes();
        let oracle =
            oracle_response(&bytes, vec![a(&format!("{name}."), 300, "192.0.2.77")], vec![], 0, OUR_PAYLOAD);
        let frame = if v6 { Frame::v6(bytes) } else { Frame::v4(bytes) };
        Fixture {
            description: d.into(),
            frame: frame.build(),
            expect: Expect::Tx(frame.reply(oracle).build()),
            outcome: Outcome::HitWildcard,
        }
    };
    let pass =
        |d: &str, query: QueryBuilder| Fixture::pass(d, Frame::v4(query.bytes()).build(), Outcome::Miss);
    let fixtures = vec![
        synthesized("another name below the encloser", q("y.wild.example.org", RecordType::A), false),
        synthesized("a longer one, IPv6", q("another-name.wild.example.org", RecordType::A), true),
        synthesized("two labels below, mixed case", q("A.B.Wild.Example.Org", RecordType::A), false),
        synthesized("with EDNS", q("z.wild.example.org", RecordType::A).edns(EdnsQuery::default()), false),
        pass("a type not synthesized yet", q("y.wild.example.org", RecordType::TXT)),
        pass("a type the wildcard lacks (NODATA)", q("y.wild.example.org", RecordType::MX)),
    ];
    run_table(&rig, &fixtures);
    // Userspace sends the same as the kernel did.
    for (f, name) in fixtures.iter().zip(["y.wild.example.org", "another-name.wild.example.org"]) {
        let Expect::Tx(expected) = &f.expect else { continue };
        let userspace = rig.userspace(&q(name, RecordType::A).bytes()).expect("answers");
        assert_eq!(hex(&expected[expected.len() - userspace.len()..]), hex(&userspace), "{}", f.description);
    }
}

/// The kernel recycles an LRU element for another key at once, even while the program
/// reads it, so a name entry can hold another name's answer for a moment. Each entry
/// carries the check of the key it was written for: an entry whose check is another
/// key's is never answered (the program used to answer one name with another's
/// answer). Simulated by writing one name's entry under another's key.
#[test]
fn a_name_entry_written_for_another_key_is_never_answered() {
    use dns_common::maps::{NAME_MAP_NAMES, NameEntry, NameKey0};
    let rig = rig();
    let (victim, donor) = ("blog.alice.example.org", "shop.bob.example.org");
    for name in [victim, donor] {
        rig.userspace(&QueryBuilder::new(name, RecordType::A).bytes()).expect("userspace answers");
    }
    let victim_query = Frame::v4(QueryBuilder::new(victim, RecordType::A).bytes()).build();
    let (action, _) = rig.run(&victim_query);
    assert_eq!(action, XDP_TX, "the victim is answered from the kernel before the swap");

    let mut names: aya::maps::HashMap<_, NameKey0, NameEntry> =
        aya::maps::HashMap::try_from(aya::maps::Map::LruHashMap(rig.map(NAME_MAP_NAMES[0])))
            .expect("name map");
    let key = |name: &str| NameKey0::new(&wire_name(name), RecordType::A.into()).expect("bucket 0");
    let donor_entry = names.get(&key(donor), 0).expect("the donor's entry");
    names.insert(key(victim), donor_entry, 0).expect("overwriting the victim's entry");

    let misses = rig.counter(Outcome::Miss);
    let (action, out) = rig.run(&victim_query);
    assert_eq!(action, XDP_PASS, "another key's entry is not answered");
    assert_eq!(out, victim_query, "passed up untouched");
    assert_eq!(rig.counter(Outcome::Miss), misses + 1, "counted as a miss");
    let donor_query = Frame::v4(QueryBuilder::new(donor, RecordType::A).bytes()).build();
    assert_eq!(rig.run(&donor_query).0, XDP_TX, "the donor's own key still answers");
}

/// What a response over the rate limit is when slipped: the answer's header with TC set
/// and no records, the question, and the OPT record if the query had one.
fn slipped(answer: &[u8], question_len: usize, edns: bool) -> Vec<u8> {
    let mut out = answer[..12 + question_len].to_vec();
    out[2] |= 0x02;
    out[6..12].copy_from_slice(&[0, 0, 0, 0, 0, u8::from(edns)]);
    if edns {
        out.extend_from_slice(&answer[answer.len() - 11..]);
    }
    out
}

/// Sleeps until a new second of CLOCK_MONOTONIC has just begun, so a short sequence of
/// responses is accounted within one second (a bucket is credited once per second).
fn at_start_of_second() {
    let into = instadns::fastpath::monotonic_coarse_ns() % 1_000_000_000;
    std::thread::sleep(Duration::from_nanos(1_000_000_000 - into + 20_000_000));
}

/// Response rate limiting in the kernel (BIND/Knot semantics): per client /24 and /56
/// and per answer, the rate's worth of answers, then every slip-th response truncated
/// (exactly the bytes userspace slips) and the others dropped; another network or
/// another answer has its own bucket; the NXDOMAIN of absent names counts against the
/// zone, so fresh random names share one bucket; exempt networks are never limited; and
/// userspace accounts in the same buckets.
#[test]
fn responses_over_the_rate_limit_are_slipped_or_dropped_per_network_in_the_kernel() {
    use instadns::fastpath::rrl::RrlSettings;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use tests::packet::Ips;
    let settings = RrlSettings {
        rate: 3,
        slip: 2,
        window: 10,
        exempt: vec!["198.18.77.0/24".parse().unwrap()],
        buckets: 4096,
    };
    let rig = FastPathRig::with_rate_limit(4096, 256, &fixture_sql(), settings);
    let name = "ws-123456.apps.example.com";
    let plain = q(name, RecordType::A).bytes();
    let with_edns = q(name, RecordType::A).edns(EdnsQuery::default()).id(9).bytes();
    let question_len = plain.len() - 12;
    // Warmed from a network of its own, which then has a bucket of its own.
    let warmer: IpAddr = Ipv4Addr::new(198, 18, 99, 1).into();
    let answer = rig.userspace_from(&plain, warmer).expect("userspace answers");
    let answer_edns = rig.userspace_from(&with_edns, warmer).expect("userspace answers");
    assert_eq!(answer, oracle_response(&plain, service_answer(), vec![], 0, OUR_PAYLOAD));
    let server_v4 = Ipv4Addr::new(198, 18, 0, 1);
    let server_v6: Ipv6Addr = "fd00:53::1".parse().unwrap();
    let v4 = |client: [u8; 4], query: &[u8]| {
        Frame::udp(Ips::V4(Ipv4Addr::from(client), server_v4), 40000, 53, query.to_vec())
    };
    let v6 = |client: &str, query: &[u8]| {
        Frame::udp(Ips::V6(client.parse().unwrap(), server_v6), 40000, 53, query.to_vec())
    };
    let sent = |d: String, frame: Frame, response: &[u8]| Fixture {
        description: d,
        frame: frame.build(),
        expect: Expect::Tx(frame.reply(response.to_vec()).build()),
        outcome: Outcome::Hit,
    };
    let slip = |d: String, frame: Frame, response: &[u8], edns: bool| Fixture {
        description: d,
        frame: frame.build(),
        expect: Expect::Tx(frame.reply(slipped(response, question_len, edns)).build()),
        outcome: Outcome::RrlSlipped,
    };
    let drop = |d: String, frame: Frame| Fixture {
        description: d,
        frame: frame.build(),
        expect: Expect::Drop,
        outcome: Outcome::RrlDropped,
    };
    // One /24: three answers, then drop, slip, drop, slip (slip 2), from any of its hosts;
    // the EDNS query has the same question (the same bucket) and its slip keeps OPT.
    let mut fixtures = Vec::new();
    for i in 1..=3u8 {
        fixtures.push(sent(format!("198.18.5.{i}: answer {i} of 3"), v4([198, 18, 5, i], &plain), &answer));
    }
    fixtures.extend([
        drop("198.18.5.4: 1st over the rate, dropped".into(), v4([198, 18, 5, 4], &plain)),
        slip("198.18.5.200: 2nd over, slipped".into(), v4([198, 18, 5, 200], &plain), &answer, false),
        drop("198.18.5.1: 3rd over, dropped".into(), v4([198, 18, 5, 1], &plain)),
        slip(
            "198.18.5.1, EDNS: 4th over, slipped with OPT".into(),
            v4([198, 18, 5, 1], &with_edns),
            &answer_edns,
            true,
        ),
        sent("198.18.6.1: another /24 is answered".into(), v4([198, 18, 6, 1], &plain), &answer),
    ]);
    // IPv6: one /56 (fd00:53:0:0 to fd00:53:0:ff), another beside it.
    for (i, client) in ["fd00:53:0:1::1", "fd00:53:0:ff::2", "fd00:53::9"].iter().enumerate() {
        fixtures.push(sent(
            format!("{client}: answer {} of 3 of its /56", i + 1),
            v6(client, &plain),
            &answer,
        ));
    }
    fixtures.extend([
        drop("fd00:53:0:2::1: same /56, dropped".into(), v6("fd00:53:0:2::1", &plain)),
        sent("fd00:53:0:100::1: another /56 is answered".into(), v6("fd00:53:0:100::1", &plain), &answer),
    ]);
    // Exempt: never limited.
    for i in 1..=8 {
        fixtures.push(sent(format!("exempt 198.18.77.9: answer {i}"), v4([198, 18, 77, 9], &plain), &answer));
    }
    at_start_of_second();
    run_table(&rig, &fixtures);

    // Userspace accounts in the same bucket: the network the kernel limited is limited
    // there too, and slips the same bytes.
    let over: Vec<Option<Vec<u8>>> =
        (0..2).map(|_| rig.userspace_from(&plain, Ipv4Addr::new(198, 18, 5, 77).into())).collect();
    assert_eq!(over[0], None, "5th over: dropped");
    assert_eq!(
        over[1].as_deref().map(hex),
        Some(hex(&slipped(&answer, question_len, false))),
        "6th over: slipped"
    );

    // Absent names: the zone's NXDOMAIN, counted against the zone, so three fresh names
    // use up the bucket and a fourth is limited; a name of the zone that exists is not.
    let mut nx = Vec::new();
    for i in 1..=4 {
        let query = q(&format!("random{i}qz.example.org"), RecordType::A).bytes();
        let oracle = oracle_response(&query, vec![], vec![demo_soa("example.org.")], 3, OUR_PAYLOAD);
        let frame = v4([198, 18, 8, 1], &query);
        nx.push(if i <= 3 {
            Fixture {
                description: format!("fresh name {i}: NXDOMAIN"),
                frame: frame.build(),
                expect: Expect::Tx(frame.reply(oracle).build()),
                outcome: Outcome::HitNxdomain,
            }
        } else {
            drop("fresh name 4: the zone's bucket is used up, dropped".into(), frame)
        });
    }
    nx.push(sent(
        "the same network's positive answer has its own bucket".into(),
        v4([198, 18, 8, 1], &plain),
        &answer,
    ));
    at_start_of_second();
    run_table(&rig, &nx);
    // Userspace, for a fifth fresh name in that zone: the same zone bucket (over: slip).
    let fifth = q("random5qz.example.org", RecordType::A).bytes();
    let nxdomain = oracle_response(&fifth, vec![], vec![demo_soa("example.org.")], 3, OUR_PAYLOAD);
    let got = rig.userspace_from(&fifth, Ipv4Addr::new(198, 18, 8, 2).into());
    assert_eq!(got.as_deref().map(hex), Some(hex(&slipped(&nxdomain, fifth.len() - 12, false))));
}

/// RFC 9018's hash, computed independently (the `siphasher` crate, over the bytes as
/// the RFC lists them): client cookie | version 1 | reserved | timestamp | address.
fn rfc9018_hash(secret: &[u8; 16], client_cookie: &[u8], timestamp: u32, client: &[u8]) -> [u8; 8] {
    use std::hash::Hasher as _;
    let mut h = siphasher::sip::SipHasher24::new_with_key(secret);
    h.write(client_cookie);
    h.write(&[1, 0, 0, 0]);
    h.write(&timestamp.to_be_bytes());
    h.write(client);
    h.finish().to_le_bytes()
}

/// An RFC 9018 server cookie.
fn rfc9018_cookie(secret: &[u8; 16], client_cookie: &[u8], timestamp: u32, client: &[u8]) -> Vec<u8> {
    let mut c = vec![1, 0, 0, 0];
    c.extend_from_slice(&timestamp.to_be_bytes());
    c.extend_from_slice(&rfc9018_hash(secret, client_cookie, timestamp, client));
    c
}

/// The COOKIE option a response ends with: (client cookie, server cookie).
fn response_cookie(dns: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let option = &dns[dns.len() - 28..];
    assert_eq!(&option[..4], &[0, 10, 0, 24], "the response ends with a COOKIE option of 24 bytes");
    (option[4..12].to_vec(), option[12..].to_vec())
}

/// DNS Cookies in the kernel (RFC 7873, RFC 9018): a BIND-style client's first query
/// (client cookie only) gets a fresh server cookie; a valid fresh one is sent back as
/// it is; one made with the previous secret, an old one, a forged one and another
/// server's format get a fresh one, with the answer (section 5.2.3); with Client Subnet
/// both options come back; IPv6 too. Every response is exactly userspace's, and every
/// server cookie checks against an independent SipHash-2-4. Malformed cookies go up for
/// FORMERR; errors (BADVERS, FORMERR) carry the cookie; a client proven by its cookie is
/// not rate limited, for answers and errors alike.
#[test]
fn dns_cookies_are_answered_in_the_kernel_exactly_as_userspace_answers_them() {
    use instadns::fastpath::{cookies::CookieSettings, rrl::RrlSettings};
    use std::net::IpAddr;
    const SECRET: [u8; 16] = *b"instadns-cookie!";
    const PREVIOUS: [u8; 16] = *b"the-old-secret!!";
    let cookies = CookieSettings { enabled: true, secret: SECRET, previous: Some(PREVIOUS) };
    // Rate limited at 2 a second: only a proven client gets more (the fixtures' own
    // client networks are exempt, to be asked many times).
    let exempt = vec!["198.18.0.0/24".parse().unwrap(), "fd00:53::/56".parse().unwrap()];
    let rrl = RrlSettings { rate: 2, slip: 0, window: 10, exempt, ..RrlSettings::default() };
    let rig = FastPathRig::with_settings(4096, 256, &fixture_sql(), rrl, cookies);
    let name = "blog.alice.example.org";
    let answer = vec![a("blog.alice.example.org.", 60, "192.0.2.1")];
    let client_v4: IpAddr = CLIENT_V4.into();
    let client_v6: IpAddr = CLIENT_V6.into();
    let with_options = |options: Vec<(u16, Vec<u8>)>| {
        q(name, RecordType::A).edns(EdnsQuery { options, ..EdnsQuery::default() })
    };
    let cc = *b"\x24\x64\xc4\xab\xcf\x10\xc9\x57";
    let cookie = |server: &[u8]| [&cc[..], server].concat();
    // Installed by a query from a network of its own (its own rate-limit bucket).
    rig.userspace_from(&q(name, RecordType::A).bytes(), "198.18.99.1".parse().unwrap()).expect("installed");

    at_start_of_second();
    // The first query: the kernel's answer, then userspace's for the same query.
    let first = with_options(vec![(10, cc.to_vec())]).bytes();
    let (action, out) = rig.run(&Frame::v4(first.clone()).build());
    assert_eq!(action, XDP_TX, "a client cookie alone is answered by XDP");
    let userspace = rig.userspace_from(&first, client_v4).expect("answers");
    let expected = Frame::v4(first.clone()).reply(userspace.clone()).build();
    assert_eq!(hex(&out), hex(&expected), "the kernel answers exactly as userspace");
    let (echoed, server) = response_cookie(&userspace);
    assert_eq!(echoed, cc.to_vec(), "the client cookie is echoed");
    let now = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32;
    assert!(now.abs_diff(wall) <= 2, "timestamped now: {now} vs {wall}");
    assert_eq!(server, rfc9018_cookie(&SECRET, &cc, now, &CLIENT_V4.octets()), "an RFC 9018 cookie");
    let oracle = oracle_response(&first, answer.clone(), vec![], 0, OUR_PAYLOAD);
    assert_eq!(
        &userspace[..oracle.len() - 11],
        &oracle[..oracle.len() - 11],
        "the answer itself is unchanged"
    );

    // Cookies the client may send next, and what must come back (None: a fresh one).
    let v4 = CLIENT_V4.octets();
    // (what, the COOKIE option data sent, the server cookie expected back; None: fresh)
    type Case<'a> = (&'a str, Vec<u8>, Option<Vec<u8>>);
    let cases: Vec<Case> = vec![
        ("the fresh cookie it got: sent back", cookie(&server), Some(server.clone())),
        (
            "made with the previous secret: valid, replaced",
            cookie(&rfc9018_cookie(&PREVIOUS, &cc, now - 10, &v4)),
            None,
        ),
        ("2000 s old: valid, replaced", cookie(&rfc9018_cookie(&SECRET, &cc, now - 2000, &v4)), None),
        ("2 hours old: invalid, replaced", cookie(&rfc9018_cookie(&SECRET, &cc, now - 7200, &v4)), None),
        ("forged: replaced", cookie(&[&server[..15], &[server[15] ^ 1]].concat()), None),
        ("another address's: replaced", cookie(&rfc9018_cookie(&SECRET, &cc, now, &[198, 18, 0, 9])), None),
        ("another server's 8-byte cookie: replaced", cookie(&[7; 8]), None),
    ];
    at_start_of_second();
    let mut failures = Vec::new();
    for (description, data, echo) in &cases {
        let bytes = with_options(vec![(10, data.clone())]).bytes();
        let (action, out) = rig.run(&Frame::v4(bytes.clone()).build());
        let userspace = rig.userspace_from(&bytes, client_v4).expect("answers");
        let expected = Frame::v4(bytes.clone()).reply(userspace.clone()).build();
        let (_, got) = response_cookie(&userspace);
        let want = echo.clone().unwrap_or_else(|| rfc9018_cookie(&SECRET, &cc, now_of(&got), &v4));
        if action != XDP_TX || out != expected {
            failures.push(format!(
                "{description}: kernel {action} {}\n  userspace {}",
                hex(&out),
                hex(&expected)
            ));
        } else if got != want || now_of(&got).abs_diff(now) > 2 {
            failures.push(format!("{description}: server cookie {} expected {}", hex(&got), hex(&want)));
        }
    }
    // With Client Subnet: both options, ECS first; and IPv6.
    let both = with_options(vec![(8, vec![0, 1, 24, 0, 198, 51, 100]), (10, cc.to_vec())]).bytes();
    let ipv6 = with_options(vec![(10, cc.to_vec())]).bytes();
    for (description, bytes, frame, client) in [
        ("with Client Subnet", &both, Frame::v4(both.clone()), client_v4),
        ("IPv6", &ipv6, Frame::v6(ipv6.clone()), client_v6),
    ] {
        let (action, out) = rig.run(&frame.build());
        let userspace = rig.userspace_from(bytes, client).expect("answers");
        if action != XDP_TX || out != frame.reply(userspace.clone()).build() {
            failures.push(format!(
                "{description}: kernel {action} {}\n  userspace {}",
                hex(&out),
                hex(&userspace)
            ));
        }
        let address: Vec<u8> = match client {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let (_, got) = response_cookie(&userspace);
        if got != rfc9018_cookie(&SECRET, &cc, now_of(&got), &address) {
            failures.push(format!("{description}: server cookie {}", hex(&got)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Malformed: up to userspace, which answers FORMERR (RFC 7873 section 5.2.2).
    for (description, options) in [
        ("5-byte cookie", vec![(10, vec![1; 5])]),
        ("12-byte cookie", vec![(10, vec![1; 12])]),
        ("41-byte cookie", vec![(10, vec![1; 41])]),
        ("two cookies", vec![(10, cc.to_vec()), (10, cc.to_vec())]),
    ] {
        let bytes = with_options(options).bytes();
        run_table(
            &rig,
            &[Fixture::pass(description, Frame::v4(bytes.clone()).build(), Outcome::PassUnsupported)],
        );
        let response = rig.userspace_from(&bytes, client_v4).expect("an error response");
        assert_eq!(response[3] & 0xf, FORMERR as u8, "{description}: FORMERR");
    }

    // Errors after the OPT record was read carry the cookie too (RFC 7873 section 5.2):
    // BADVERS for EDNS version 1, FORMERR for a question of type OPT, each with the
    // client cookie echoed and a valid server cookie of ours. Both come from userspace.
    let badvers = q(name, RecordType::A).edns(EdnsQuery {
        version: 1,
        options: vec![(10, cc.to_vec())],
        ..Default::default()
    });
    let mut opt_question = with_options(vec![(10, cc.to_vec())]);
    opt_question.qtype = 41;
    for (description, bytes, rcode, outcome) in [
        ("BADVERS", badvers.bytes(), BADVERS, Outcome::PassUnsupported),
        // The kernel holds no answer of type OPT: a miss.
        ("FORMERR for QTYPE OPT", opt_question.bytes(), FORMERR, Outcome::Miss),
    ] {
        run_table(&rig, &[Fixture::pass(description, Frame::v4(bytes.clone()).build(), outcome)]);
        let response = rig.userspace_from(&bytes, client_v4).expect("an error response");
        assert!(Message::from_vec(&response).expect("the error parses").edns.is_some(), "{description}: OPT");
        assert_eq!(response_rcode(&response), rcode, "{description}");
        let (echoed, server) = response_cookie(&response);
        assert_eq!(echoed, cc.to_vec(), "{description}: the client cookie is echoed");
        assert_eq!(
            server,
            rfc9018_cookie(&SECRET, &cc, now_of(&server), &v4),
            "{description}: a valid server cookie of ours"
        );
    }

    // Proven by a valid cookie, a client is not rate limited; without one it is.
    at_start_of_second();
    let unproven = q(name, RecordType::A).bytes();
    let limited: IpAddr = "198.18.44.1".parse().unwrap();
    let frame = |bytes: &[u8]| {
        Frame::udp(
            tests::packet::Ips::V4("198.18.44.1".parse().unwrap(), tests::netns::SERVER_V4),
            40000,
            53,
            bytes.to_vec(),
        )
    };
    let actions: Vec<u32> = (0..4).map(|_| rig.run(&frame(&unproven).build()).0).collect();
    assert_eq!(actions, [XDP_TX, XDP_TX, XDP_DROP, XDP_DROP], "without a cookie: the rate, then dropped");
    assert_eq!(rig.userspace_from(&unproven, limited), None, "userspace limits it too");
    // A valid cookie for this client's address (the one above was for CLIENT_V4).
    let its = cookie(&rfc9018_cookie(&SECRET, &cc, now, &[198, 18, 44, 1]));
    let proven = with_options(vec![(10, its.clone())]).bytes();
    let actions: Vec<u32> = (0..10).map(|_| rig.run(&frame(&proven).build()).0).collect();
    assert!(actions.iter().all(|a| *a == XDP_TX), "with a valid cookie: always answered, {actions:?}");
    assert!(rig.userspace_from(&proven, limited).is_some(), "userspace exempts it too");
    // Errors too: a proven client's BADVERS is never limited, an unproven one's is.
    let badvers_with = |options: Vec<(u16, Vec<u8>)>| {
        q(name, RecordType::A).edns(EdnsQuery { version: 1, options, ..Default::default() }).bytes()
    };
    let proven_error = badvers_with(vec![(10, its)]);
    let answered = (0..6).filter(|_| rig.userspace_from(&proven_error, limited).is_some()).count();
    assert_eq!(answered, 6, "a proven client's errors are not rate limited");
    let unproven_error = badvers_with(vec![]);
    let answered = (0..6).filter(|_| rig.userspace_from(&unproven_error, limited).is_some()).count();
    assert!(answered < 6, "an unproven client's errors are rate limited: {answered} of 6 answered");
}

/// The timestamp of a server cookie.
fn now_of(server: &[u8]) -> u32 {
    u32::from_be_bytes([server[4], server[5], server[6], server[7]])
}
