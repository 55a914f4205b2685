//! BPF_PROG_TEST_RUN fixtures: for each crafted packet, the XDP program's action and its
//! exact output. Hits are compared byte for byte with a response built by hickory-proto
//! (and userspace's own response must be that same response); everything the fast path
//! must not answer has to come back XDP_PASS, untouched.

use dns_common::stats::Outcome;
use hickory_proto::rr::{Record, RecordType};
use tests::{
    dns::{EdnsQuery, QueryBuilder, a, aaaa, cname, demo_soa, oracle_response},
    packet::{Frame, check_checksums},
    testrun::{FastPathRig, OUR_PAYLOAD, XDP_PASS, XDP_TX},
};

enum Expect {
    /// Answered in the kernel with exactly this frame.
    Tx(Vec<u8>),
    /// Passed up unchanged.
    Pass,
}

struct Fixture {
    description: String,
    frame: Vec<u8>,
    expect: Expect,
}

fn run_table(rig: &FastPathRig, fixtures: &[Fixture]) {
    let mut failures = Vec::new();
    for f in fixtures {
        let (action, out) = rig.run(&f.frame);
        let problem = match &f.expect {
            Expect::Tx(expected) if action != XDP_TX => {
                Some(format!("action {action}, expected XDP_TX"))
            }
            Expect::Tx(expected) if &out != expected => Some(format!(
                "output differs\n  got      {}\n  expected {}",
                hex(&out),
                hex(expected)
            )),
            Expect::Tx(_) => check_checksums(&out).err(),
            Expect::Pass if action != XDP_PASS => {
                Some(format!("action {action}, expected XDP_PASS"))
            }
            Expect::Pass if out != f.frame => Some("XDP_PASS but the packet was modified".into()),
            Expect::Pass => None,
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", f.description));
        }
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
        Fixture {
            description: self.description.to_owned(),
            expect: Expect::Tx(query_frame.reply(oracle).build()),
            frame: query_frame.build(),
        }
    }
}

fn hit<'a>(description: &'a str, query: QueryBuilder, answers: Vec<Record>) -> Hit<'a> {
    Hit {
        description,
        query,
        warm: None,
        answers,
        authority: vec![],
        rcode: 0,
    }
}

fn service_answer() -> Vec<Record> {
    vec![
        cname("ws-123456.apps.example.com.", 300, "ws-mt1.example.com."),
        a("ws-mt1.example.com.", 300, "192.0.2.11"),
    ]
}

#[test]
fn hits_are_answered_in_the_kernel_byte_for_byte() {
    let rig = FastPathRig::new();
    let q = |name: &str, t| QueryBuilder::new(name, t);
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
            q("ws-123456.apps.example.com", RecordType::A)
                .edns(edns.clone())
                .id(7),
            service_answer(),
        )
        .fixture(&rig, Frame::v6),
        hit(
            "CNAME, IPv4",
            q("ws-123456.apps.example.com", RecordType::CNAME),
            vec![cname(
                "ws-123456.apps.example.com.",
                300,
                "ws-mt1.example.com.",
            )],
        )
        .fixture(&rig, Frame::v4),
        hit(
            "A of a host name, IPv4",
            q("blog.alice.example.org", RecordType::A),
            vec![a("blog.alice.example.org.", 60, "192.0.2.1")],
        )
        .fixture(&rig, Frame::v4),
        hit(
            "AAAA of a host name, IPv6",
            q("123456.example.org", RecordType::AAAA),
            vec![aaaa("123456.example.org.", 60, "2001:db8::1")],
        )
        .fixture(&rig, Frame::v6),
        hit(
            "AAAA, IPv4, EDNS with DO",
            q("123456.example.org", RecordType::AAAA).edns(EdnsQuery {
                dnssec_ok: true,
                ..edns.clone()
            }),
            vec![aaaa("123456.example.org.", 60, "2001:db8::1")],
        )
        .fixture(&rig, Frame::v4),
        Hit {
            description: "mixed-case query hits the lower-cased entry and echoes its case, IPv4",
            query: q("WS-123456.Apps.EXAMPLE.com", RecordType::A),
            warm: Some(q("ws-123456.apps.example.com", RecordType::A).id(99)),
            answers: service_answer(),
            authority: vec![],
            rcode: 0,
        }
        .fixture(&rig, Frame::v4),
        Hit {
            description: "mixed-case query, IPv6",
            query: q("123456.Example.ORG", RecordType::AAAA),
            warm: None,
            answers: vec![aaaa("123456.example.org.", 60, "2001:db8::1")],
            authority: vec![],
            rcode: 0,
        }
        .fixture(&rig, Frame::v6),
        Hit {
            description: "NXDOMAIN with the SOA, IPv4",
            query: q("nope.example.org", RecordType::A),
            warm: None,
            answers: vec![],
            authority: vec![demo_soa("example.org.")],
            rcode: 3,
        }
        .fixture(&rig, Frame::v4),
        Hit {
            description: "NODATA at an empty non-terminal, IPv6",
            query: q("apps.example.com", RecordType::A),
            warm: None,
            answers: vec![],
            authority: vec![demo_soa("example.com.")],
            rcode: 0,
        }
        .fixture(&rig, Frame::v6),
        hit(
            "802.1Q VLAN-tagged A",
            q("ws-123456.apps.example.com", RecordType::A),
            service_answer(),
        )
        .fixture(&rig, |p| {
            let mut f = Frame::v4(p);
            f.vlans = vec![42];
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
fn misses_and_non_dns_packets_pass_unchanged() {
    let rig = FastPathRig::new();
    let never_asked = QueryBuilder::new("ws-234567.apps.example.com", RecordType::A).bytes();
    let mut ntp = Frame::v4(vec![0x23; 48]);
    ntp.dport = 123;
    let mut tcp = Frame::v4(never_asked.clone());
    tcp.protocol = 6;
    let mut arp = Frame::v4(vec![]).build();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let fixtures = vec![
        Fixture {
            description: "miss: a name never asked, IPv4".into(),
            frame: Frame::v4(never_asked.clone()).build(),
            expect: Expect::Pass,
        },
        Fixture {
            description: "miss: a name never asked, IPv6".into(),
            frame: Frame::v6(never_asked.clone()).build(),
            expect: Expect::Pass,
        },
        Fixture {
            description: "UDP to another port".into(),
            frame: ntp.build(),
            expect: Expect::Pass,
        },
        Fixture {
            description: "TCP".into(),
            frame: tcp.build(),
            expect: Expect::Pass,
        },
        Fixture {
            description: "ARP".into(),
            frame: arp,
            expect: Expect::Pass,
        },
    ];
    let misses = rig.counter(Outcome::Miss);
    let not_dns = rig.counter(Outcome::PassNotDns);
    run_table(&rig, &fixtures);
    assert_eq!(rig.counter(Outcome::Miss) - misses, 2);
    assert_eq!(rig.counter(Outcome::PassNotDns) - not_dns, 3);
}
