//! The garbage corpus (issue 18), in the style of Knot's tests-extra dnsheader cases:
//! Ethernet frames that each break one thing (a header field, a count, a name, a
//! question, an EDNS option, TSIG, an Ethernet, IP or UDP header), written as files under
//! `tests/garbage/`, one per case and named for what it breaks, with what each path must
//! do listed in `tests/garbage/expected.txt`. The expectations are written here by hand
//! from the RFCs and the fast path's contract (answer only what userspace would answer
//! with the same bytes, pass everything else up untouched), never taken from a run.
//! The `garbage_corpus` test replays the files through BPF_PROG_TEST_RUN and the handler
//! and checks that the files are exactly what this module makes.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use dns_common::{
    frame::{ETH_HLEN, IPV4_CHECKSUM},
    stats::Outcome,
    wire::rcode::{self, BADVERS, FORMERR, NOERROR, NOTAUTH, NOTIMP, NXDOMAIN, REFUSED},
};
use hickory_proto::rr::RecordType;

use crate::{
    data::{name_127_labels, name_of_len},
    dns::{EdnsQuery, QueryBuilder, wire_name},
    packet::{Frame, Ips, internet_checksum},
};

/// Where the corpus lives.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("garbage")
}

/// The manifest's file name in [`corpus_dir`].
pub const MANIFEST: &str = "expected.txt";
/// What a case's frame file is called: its name and this extension.
pub const FRAME_EXTENSION: &str = "frame";

/// What the XDP program must do with a case's frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Xdp {
    /// XDP_PASS with the frame untouched, counted as this outcome.
    Pass(Outcome),
    /// XDP_TX, counted as this outcome, with exactly userspace's response to the frame's
    /// UDP payload, addressed back with checksums that verify.
    Answer(Outcome),
}

/// What the handler must do with a case's UDP payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Userspace {
    /// Answers with this RCODE (extended RCODEs included: BADVERS is 16).
    Rcode(u16),
    /// Sends nothing (responses, messages shorter than a header).
    Drops,
    /// The kernel's stack drops or handles the frame: its payload never reaches a DNS
    /// socket as a query of this shape, so only the fast path is checked.
    Kernel,
}

pub struct Case {
    pub name: String,
    pub frame: Vec<u8>,
    pub xdp: Xdp,
    pub userspace: Userspace,
}

const UNSUPPORTED: Xdp = Xdp::Pass(Outcome::PassUnsupported);
const NOT_DNS: Xdp = Xdp::Pass(Outcome::PassNotDns);
const NOT_FOR_US: Xdp = Xdp::Pass(Outcome::PassNotForUs);
const MISS: Xdp = Xdp::Pass(Outcome::Miss);
const HIT: Xdp = Xdp::Answer(Outcome::Hit);
const HIT_NXDOMAIN: Xdp = Xdp::Answer(Outcome::HitNxdomain);

/// The names the replay installs (asks userspace for) before the corpus runs, so that
/// their variants are hits.
pub const WARM: [(&str, RecordType); 2] =
    [("blog.alice.example.org", RecordType::A), ("blog.alice.example.org", RecordType::AAAA)];

const BASE_NAME: &str = "blog.alice.example.org";

/// The query every DNS-level case breaks one thing of.
fn base() -> Vec<u8> {
    QueryBuilder::new(BASE_NAME, RecordType::A).bytes()
}

fn with_edns(edns: EdnsQuery) -> Vec<u8> {
    QueryBuilder::new(BASE_NAME, RecordType::A).edns(edns).bytes()
}

fn with_options(options: Vec<(u16, Vec<u8>)>) -> Vec<u8> {
    with_edns(EdnsQuery { options, ..EdnsQuery::default() })
}

/// A query for `name` (wire bytes as given) of `qtype` and `qclass`.
fn question(name: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut m = vec![0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    m
}

fn base_with(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut m = base();
    f(&mut m);
    m
}

/// The base query followed by `records` in its additional section (ARCOUNT set).
fn with_additional(records: &[Vec<u8>]) -> Vec<u8> {
    base_with(|m| {
        m[11] = records.len() as u8;
        for r in records {
            m.extend_from_slice(r);
        }
    })
}

/// A TSIG record (RFC 8945 section 4.2) under `key` with `algorithm`, a MAC of
/// `mac_len` bytes, class `class`; `rdata_cut` bytes are cut off the end of its RDATA
/// (RDLENGTH says the shorter length).
fn tsig(key: &str, algorithm: &str, mac_len: usize, class: u16, rdata_cut: usize) -> Vec<u8> {
    let mut rdata = wire_name(algorithm);
    rdata.extend_from_slice(&[0, 0, 0x6b, 0x49, 0xd2, 0x00]); // 1,800,000,000
    rdata.extend_from_slice(&300u16.to_be_bytes());
    rdata.extend_from_slice(&(mac_len as u16).to_be_bytes());
    rdata.extend(std::iter::repeat_n(0xab, mac_len));
    rdata.extend_from_slice(&[0x42, 0x42, 0, 0, 0, 0]);
    rdata.truncate(rdata.len() - rdata_cut);
    let mut r = wire_name(key);
    r.extend_from_slice(&250u16.to_be_bytes());
    r.extend_from_slice(&class.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(&rdata);
    r
}

/// An EDNS Client Subnet option's data (RFC 7871 section 6).
fn ecs(family: u16, source: u8, scope: u8, address: &[u8]) -> (u16, Vec<u8>) {
    let mut d = family.to_be_bytes().to_vec();
    d.extend_from_slice(&[source, scope]);
    d.extend_from_slice(address);
    (8, d)
}

fn cookie(len: usize) -> (u16, Vec<u8>) {
    (10, (0..len as u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect())
}

/// Rewrites the IPv4 header checksum of a frame without VLAN tags after an edit.
fn fix_ipv4_checksum(frame: &mut [u8]) {
    let l3 = ETH_HLEN;
    let ihl = (frame[l3] & 0xf) as usize * 4;
    let end = (l3 + ihl.max(20)).min(frame.len());
    frame[l3 + IPV4_CHECKSUM..l3 + IPV4_CHECKSUM + 2].fill(0);
    let sum = internet_checksum(&frame[l3..end]);
    frame[l3 + IPV4_CHECKSUM..l3 + IPV4_CHECKSUM + 2].copy_from_slice(&sum.to_be_bytes());
}

#[derive(Default)]
struct Corpus(Vec<Case>);

impl Corpus {
    /// A DNS message in a well-formed IPv4 frame.
    fn dns(&mut self, name: &str, message: Vec<u8>, xdp: Xdp, userspace: Userspace) {
        self.frame(name, Frame::v4(message).build(), xdp, userspace);
    }

    fn frame(&mut self, name: &str, frame: Vec<u8>, xdp: Xdp, userspace: Userspace) {
        self.0.push(Case { name: name.to_owned(), frame, xdp, userspace });
    }

    /// The base query in a frame changed by `f` before it is built.
    fn framed(&mut self, name: &str, f: impl FnOnce(&mut Frame), xdp: Xdp, userspace: Userspace) {
        let mut frame = Frame::v4(base());
        f(&mut frame);
        self.frame(name, frame.build(), xdp, userspace);
    }

    fn framed_v6(&mut self, name: &str, f: impl FnOnce(&mut Frame), xdp: Xdp, userspace: Userspace) {
        let mut frame = Frame::v6(base());
        f(&mut frame);
        self.frame(name, frame.build(), xdp, userspace);
    }

    /// The base query's IPv4 frame with its bytes edited by `f` (the IP checksum is
    /// rewritten afterwards unless `keep_checksum`).
    fn edited(&mut self, name: &str, f: impl FnOnce(&mut Vec<u8>), keep_checksum: bool, xdp: Xdp) {
        let mut bytes = Frame::v4(base()).build();
        f(&mut bytes);
        if !keep_checksum {
            fix_ipv4_checksum(&mut bytes);
        }
        self.frame(name, bytes, xdp, Userspace::Kernel);
    }
}

/// Every case of the corpus, in file order.
pub fn cases() -> Vec<Case> {
    use Userspace::*;
    let mut c = Corpus::default();

    // Messages shorter than a question (Knot's dnsheader "packet lengths shorter than
    // DNS header"): all zero bytes, then the base query cut at every length.
    for len in 0..=16 {
        let userspace = if len < 12 { Drops } else { Rcode(FORMERR) };
        c.dns(&format!("short-{len:02}-zero-bytes"), vec![0; len], UNSUPPORTED, userspace);
    }
    let query = base();
    for len in 1..query.len() {
        let userspace = if len < 12 { Drops } else { Rcode(FORMERR) };
        c.dns(&format!("short-query-cut-at-{len:02}"), query[..len].to_vec(), UNSUPPORTED, userspace);
    }
    for len in [2, 11, 12, 16, 40] {
        // QR set: a response, never answered (RFC 1035 section 4.1.1).
        c.dns(&format!("short-{len:02}-ff-bytes"), vec![0xff; len], UNSUPPORTED, Drops);
    }

    // Opcodes (RFC 1035 4.1.1, RFC 6895 2.2): only QUERY is answered; NOTIFY for a name
    // that is not an apex is NOTAUTH (RFC 1996), an UPDATE whose zone section is not
    // an SOA question FORMERR (RFC 2136 3.1.1), the rest NOTIMP. Responses are dropped.
    for opcode in 1..16u8 {
        let userspace = match opcode {
            4 => Rcode(NOTAUTH),
            5 => Rcode(FORMERR),
            _ => Rcode(NOTIMP),
        };
        let message = base_with(|m| m[2] |= opcode << 3);
        c.dns(&format!("header-opcode-{opcode:02}"), message, UNSUPPORTED, userspace);
    }
    for opcode in 0..16u8 {
        let message = base_with(|m| m[2] |= 0x80 | opcode << 3);
        c.dns(&format!("header-response-opcode-{opcode:02}"), message, UNSUPPORTED, Drops);
    }

    // Header bits a query may carry and a server ignores (RFC 1035 4.1.1; AD and CD,
    // RFC 6840 5.7-5.9): answered as usual. TC in a query goes up.
    let flags: [(&str, u8, u8); 9] = [
        ("aa", 0x04, 0),
        ("rd-clear", 0, 0),
        ("ra", 0, 0x80),
        ("z", 0, 0x40),
        ("ad", 0, 0x20),
        ("cd", 0, 0x10),
        ("all-but-qr-opcode-tc", 0x05, 0xf0),
        ("ad-cd-rd", 0x01, 0x30),
        ("z-ad", 0x01, 0x60),
    ];
    for (what, first, second) in flags {
        let message = base_with(|m| {
            m[2] = first;
            m[3] = second;
        });
        c.dns(&format!("header-flag-{what}"), message, HIT, Rcode(NOERROR));
    }
    c.dns("header-flag-tc", base_with(|m| m[2] |= 0x02), UNSUPPORTED, Rcode(NOERROR));
    // An RCODE in a query means nothing (RFC 1035 4.1.1 sets it in responses).
    for rcode in [1u8, 3, 5, 9, 15] {
        c.dns(
            &format!("header-rcode-{rcode:02}-in-query"),
            base_with(|m| m[3] |= rcode),
            HIT,
            Rcode(NOERROR),
        );
    }
    c.dns("header-id-0000", base_with(|m| m[..2].fill(0)), HIT, Rcode(NOERROR));
    c.dns("header-id-ffff", base_with(|m| m[..2].fill(0xff)), HIT, Rcode(NOERROR));

    // Section counts that do not match a query (RFC 1035 4.1.2; a query has one
    // question and records only in the additional section).
    let counts: [(&str, usize, u16); 10] = [
        ("qdcount-0", 4, 0),
        ("qdcount-2", 4, 2),
        ("qdcount-ffff", 4, 0xffff),
        ("ancount-1", 6, 1),
        ("ancount-ffff", 6, 0xffff),
        ("nscount-1", 8, 1),
        ("nscount-ffff", 8, 0xffff),
        ("arcount-1-no-record", 10, 1),
        ("arcount-ffff", 10, 0xffff),
        ("all-counts-ffff", 4, 0xffff),
    ];
    for (what, at, value) in counts {
        let message = base_with(|m| {
            m[at..at + 2].copy_from_slice(&value.to_be_bytes());
            if what == "all-counts-ffff" {
                m[4..12].fill(0xff);
            }
        });
        c.dns(&format!("count-{what}"), message, UNSUPPORTED, Rcode(FORMERR));
    }
    c.dns(
        "count-arcount-2-one-opt",
        base_with(|m| {
            m[11] = 2;
            m.extend_from_slice(&EdnsQuery::default().bytes());
        }),
        UNSUPPORTED,
        Rcode(FORMERR),
    );

    // Names (RFC 1035 3.1, 4.1.4; RFC 6891 for label types): compression pointers in a
    // question, extended and reserved label types, labels over 63 bytes and names over
    // 255 are FORMERR.
    let broken_names: [(&str, Vec<u8>); 14] = [
        ("pointer-to-itself", vec![0xc0, 12]),
        ("pointer-to-the-header", vec![0xc0, 0]),
        ("pointer-past-the-end", vec![0xc0, 0xff]),
        ("pointer-3fff", vec![0xff, 0xff]),
        ("label-then-pointer-loop", [&[4][..], b"blog", &[0xc0, 12]].concat()),
        ("pointer-cut-in-half", vec![0xc0]),
        ("label-type-40", vec![0x41, b'x', 0]),
        ("label-type-80", vec![0x81, b'x', 0]),
        ("label-length-7f", [&[0x7f][..], &[b'a'; 127], &[0]].concat()),
        ("label-length-64", [&[64][..], &[b'a'; 64], &[0]].concat()),
        ("name-256-bytes", wire_name(&name_of_len(256, "example.org"))),
        ("name-128-labels", wire_name(&("a.".repeat(127) + "x."))),
        ("label-past-the-end", [&[20][..], b"blog"].concat()),
        ("no-root-label", [&[4][..], b"blog", &[5], b"alice"].concat()),
    ];
    for (what, name) in broken_names {
        let message = question(&name, 1, 1);
        let message =
            if what == "pointer-cut-in-half" || what == "label-past-the-end" || what == "no-root-label" {
                // No type and class after a name that runs to the end of the message.
                message[..message.len() - 4].to_vec()
            } else {
                message
            };
        c.dns(&format!("name-{what}"), message, UNSUPPORTED, Rcode(FORMERR));
    }
    // Valid names of odd shapes: answered as the names they are, letter case kept; a
    // label with a dot or a zero byte in it is one label, not two (never the answer of
    // the name it looks like).
    c.dns(
        "name-upper-case",
        QueryBuilder::new("BLOG.ALICE.EXAMPLE.ORG", RecordType::A).bytes(),
        HIT,
        Rcode(NOERROR),
    );
    c.dns(
        "name-mixed-case",
        QueryBuilder::new("bLoG.AlIcE.eXaMpLe.OrG", RecordType::A).bytes(),
        HIT,
        Rcode(NOERROR),
    );
    let odd_labels: [(&str, &[u8]); 6] = [
        ("label-with-a-dot", b"\x0ablog.alice\x07example\x03org\x00"),
        ("label-with-a-zero-byte", b"\x05blog\x00\x05alice\x07example\x03org\x00"),
        ("label-with-ff-bytes", b"\x04\xff\xff\xff\xff\x05alice\x07example\x03org\x00"),
        ("label-with-a-space", b"\x05blog \x05alice\x07example\x03org\x00"),
        ("label-with-utf8", b"\x05bl\xc3\xb6g\x05alice\x07example\x03org\x00"),
        ("label-with-a-backslash", b"\x05blog\\\x05alice\x07example\x03org\x00"),
    ];
    for (what, name) in odd_labels {
        c.dns(&format!("name-{what}"), question(name, 1, 1), HIT_NXDOMAIN, Rcode(NXDOMAIN));
    }
    // The longest names there are (255 bytes, 127 labels): the fixture data has them,
    // so the first query is a miss and the second a hit; one that does not exist is
    // denied by the kernel at once.
    for (what, name) in [("255-bytes", name_of_len(255, "example.org")), ("127-labels", name_127_labels())] {
        let query = QueryBuilder::new(&name, RecordType::A).bytes();
        c.dns(&format!("name-{what}"), query.clone(), MISS, Rcode(NOERROR));
        c.dns(&format!("name-{what}-again"), query, HIT, Rcode(NOERROR));
    }
    c.dns(
        "name-255-bytes-absent",
        QueryBuilder::new(&name_of_len(255, "nx.example.org"), RecordType::A).bytes(),
        HIT_NXDOMAIN,
        Rcode(NXDOMAIN),
    );
    c.dns(
        "name-127-labels-absent",
        QueryBuilder::new(&("b.".repeat(126) + "x."), RecordType::A).bytes(),
        HIT_NXDOMAIN,
        Rcode(NXDOMAIN),
    );
    // Names in no zone of ours are refused: we are authoritative only.
    c.dns("name-root", question(&[0], 1, 1), MISS, Rcode(REFUSED));
    c.dns("name-another-zone", QueryBuilder::new("example.net", RecordType::A).bytes(), MISS, Rcode(REFUSED));
    c.dns("name-a-zone-s-parent", QueryBuilder::new("org", RecordType::SOA).bytes(), MISS, Rcode(REFUSED));

    // Classes other than IN are refused (we serve IN only); meta and obsolete types.
    for (what, class) in
        [("0", 0u16), ("cs", 2), ("ch", 3), ("hs", 4), ("none", 254), ("any", 255), ("ffff", 0xffff)]
    {
        c.dns(
            &format!("question-class-{what}"),
            question(&wire_name(BASE_NAME), 1, class),
            UNSUPPORTED,
            Rcode(REFUSED),
        );
    }
    let question_end = 12 + wire_name(BASE_NAME).len() + 4;
    c.dns("question-cut-before-class", base()[..question_end - 2].to_vec(), UNSUPPORTED, Rcode(FORMERR));
    c.dns("question-trailing-byte", base_with(|m| m.push(0)), UNSUPPORTED, Rcode(FORMERR));
    c.dns(
        "question-trailing-100-bytes",
        base_with(|m| m.extend_from_slice(&[0x5a; 100])),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns(
        "question-two-copies",
        base_with(|m| {
            m[5] = 2;
            let q = m[12..question_end].to_vec();
            m.extend_from_slice(&q);
        }),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    // Transfers over UDP (RFC 5936 4.2 leaves AXFR over UDP undefined: we refuse it, as
    // a transfer not offered there; RFC 1995: an IXFR query carries the client's SOA),
    // types only a message carries (OPT, TSIG: RFC 6891 6.1.1, RFC 8945 4.2), TKEY key
    // agreement (RFC 2930) and the obsolete MAILA and MAILB, not offered. The fast path
    // holds no answer for any of them: a miss.
    let base_name = wire_name(BASE_NAME);
    for (what, qtype, userspace) in [
        ("axfr", 252u16, Rcode(REFUSED)),
        ("ixfr-without-soa", 251, Rcode(FORMERR)),
        ("opt", 41, Rcode(FORMERR)),
        ("tsig", 250, Rcode(FORMERR)),
        ("tkey", 249, Rcode(NOTIMP)),
        ("maila", 254, Rcode(NOTIMP)),
        ("mailb", 253, Rcode(NOTIMP)),
    ] {
        c.dns(&format!("question-type-{what}"), question(&base_name, qtype, 1), MISS, userspace);
    }
    // Types a name may have (RFC 3597 unknown types, type 0 reserved): NODATA,
    // answered by userspace first.
    for (what, qtype) in [("0", 0u16), ("65280-private", 65280), ("ffff", 0xffff), ("any", 255)] {
        c.dns(&format!("question-type-{what}"), question(&base_name, qtype, 1), MISS, Rcode(NOERROR));
    }

    // EDNS(0) (RFC 6891): versions above 0 are BADVERS; payload sizes below 512 mean
    // 512; unknown flags and options are ignored; malformed OPT records are FORMERR.
    for version in [1u8, 2, 255] {
        let edns = EdnsQuery { version, ..EdnsQuery::default() };
        c.dns(&format!("edns-version-{version:03}"), with_edns(edns), UNSUPPORTED, Rcode(BADVERS));
    }
    for payload in [0u16, 1, 511, 512, 1232, 65535] {
        let edns = EdnsQuery { payload, ..EdnsQuery::default() };
        c.dns(&format!("edns-payload-{payload:05}"), with_edns(edns), HIT, Rcode(NOERROR));
    }
    for (what, dnssec_ok, other_flags) in
        [("do", true, 0u16), ("z-flags", false, 0x7fff), ("do-and-z", true, 0x0001)]
    {
        let edns = EdnsQuery { dnssec_ok, other_flags, ..EdnsQuery::default() };
        c.dns(&format!("edns-flags-{what}"), with_edns(edns), HIT, Rcode(NOERROR));
    }
    let opt = EdnsQuery::default().bytes();
    c.dns(
        "edns-extended-rcode-in-query",
        with_additional(&[{
            let mut o = opt.clone();
            o[5] = 1;
            o
        }]),
        HIT,
        Rcode(NOERROR),
    );
    c.dns(
        "edns-opt-owner-not-root",
        with_additional(&[[&[1, b'x'][..], &opt].concat()]),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns("edns-two-opt", with_additional(&[opt.clone(), opt.clone()]), UNSUPPORTED, Rcode(FORMERR));
    c.dns(
        "edns-opt-in-answer-section",
        base_with(|m| {
            m[7] = 1;
            m.extend_from_slice(&opt);
        }),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns(
        "edns-opt-in-authority-section",
        base_with(|m| {
            m[9] = 1;
            m.extend_from_slice(&opt);
        }),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    let opt_with_rdata = |rdata: &[u8], rdlength: u16| {
        let mut o = opt[..9].to_vec();
        o.extend_from_slice(&rdlength.to_be_bytes());
        o.extend_from_slice(rdata);
        o
    };
    for (what, rdata, rdlength) in [
        ("opt-rdlength-past-the-end", vec![], 20u16),
        ("opt-rdlength-ffff", vec![0, 10, 0, 0], 0xffff),
        ("opt-rdlength-short-of-option", vec![0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8], 6),
        ("option-past-the-opt", vec![0, 10, 0, 9, 1], 5),
        ("option-header-cut", vec![0, 10, 0], 3),
        ("option-length-ffff", vec![0xff, 0xe9, 0xff, 0xff], 4),
    ] {
        c.dns(
            &format!("edns-{what}"),
            with_additional(&[opt_with_rdata(&rdata, rdlength)]),
            UNSUPPORTED,
            Rcode(FORMERR),
        );
    }
    c.dns("edns-opt-cut-in-fixed-part", with_additional(&[opt[..7].to_vec()]), UNSUPPORTED, Rcode(FORMERR));
    c.dns(
        "edns-trailing-after-opt",
        base_with(|m| {
            m[11] = 1;
            m.extend_from_slice(&opt);
            m.extend_from_slice(&[1, 2, 3]);
        }),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    // Options a server ignores (unknown codes, NSID it does not send, keepalive over
    // UDP: RFC 7828, padding: RFC 7830).
    for (what, options) in [
        ("unknown-empty", vec![(65001u16, vec![])]),
        ("unknown-with-data", vec![(65001, vec![1, 2, 3, 4, 5])]),
        ("eight-unknown", vec![(65001, vec![]); 8]),
        ("nsid", vec![(3, vec![])]),
        ("keepalive-over-udp", vec![(11, vec![])]),
        ("padding-empty", vec![(12, vec![])]),
        ("padding-64", vec![(12, vec![0; 64])]),
        ("option-code-0", vec![(0, vec![])]),
    ] {
        c.dns(&format!("edns-option-{what}"), with_options(options), HIT, Rcode(NOERROR));
    }
    c.dns("edns-option-nine-unknown", with_options(vec![(65001, vec![]); 9]), UNSUPPORTED, Rcode(NOERROR));
    // DNS Cookies (RFC 7873 5.2.2): 8 bytes of client cookie, then nothing or a server
    // cookie of 8 to 32 bytes; other lengths and two options are FORMERR. A foreign
    // server cookie gets a fresh one with the answer (5.2.3).
    for len in [0usize, 1, 7, 9, 15, 41, 64] {
        c.dns(
            &format!("edns-cookie-length-{len:02}"),
            with_options(vec![cookie(len)]),
            UNSUPPORTED,
            Rcode(FORMERR),
        );
    }
    for len in [8usize, 16, 40] {
        c.dns(&format!("edns-cookie-length-{len:02}"), with_options(vec![cookie(len)]), HIT, Rcode(NOERROR));
    }
    c.dns("edns-cookie-twice", with_options(vec![cookie(8), cookie(8)]), UNSUPPORTED, Rcode(FORMERR));
    // Client Subnet (RFC 7871 6, 7.1.1): an unknown family, a prefix longer than the
    // family's, more address bytes than the prefix needs, bits set past the prefix, a
    // scope in a query, a cut option or two options are FORMERR; a well-formed one for
    // an answer that is not directional is echoed with scope 0.
    for (what, option) in [
        ("family-0", ecs(0, 0, 0, &[])),
        ("family-3", ecs(3, 8, 0, &[10])),
        ("ipv4-prefix-33", ecs(1, 33, 0, &[198, 51, 100, 1, 0])),
        ("ipv6-prefix-129", ecs(2, 129, 0, &[0xfd; 17])),
        ("address-longer-than-prefix", ecs(1, 8, 0, &[198, 51, 100, 0])),
        ("address-shorter-than-prefix", ecs(1, 24, 0, &[198, 51])),
        ("bits-past-the-prefix", ecs(1, 20, 0, &[198, 51, 100])),
        ("scope-in-query", ecs(1, 24, 24, &[198, 51, 100])),
        ("cut-to-3-bytes", (8, vec![0, 1, 24])),
    ] {
        c.dns(&format!("edns-ecs-{what}"), with_options(vec![option]), UNSUPPORTED, Rcode(FORMERR));
    }
    c.dns(
        "edns-ecs-twice",
        with_options(vec![ecs(1, 24, 0, &[198, 51, 100]), ecs(1, 24, 0, &[198, 51, 100])]),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    for (what, option) in [
        ("ipv4-24", ecs(1, 24, 0, &[198, 51, 100])),
        ("ipv4-0", ecs(1, 0, 0, &[])),
        ("ipv6-56", ecs(2, 56, 0, &[0xfd, 0, 0x53, 0, 0, 0, 0x01])),
    ] {
        c.dns(&format!("edns-ecs-{what}"), with_options(vec![option]), HIT, Rcode(NOERROR));
    }

    // TSIG (RFC 8945 5.2): an unknown key is NOTAUTH (BADKEY); a TSIG record that is not
    // the last, not of class ANY, cut short, or doubled is FORMERR. The fast path never
    // answers a signed query.
    let valid_tsig = tsig("nobody.example.", "hmac-sha256.", 32, 255, 0);
    c.dns(
        "tsig-unknown-key",
        with_additional(std::slice::from_ref(&valid_tsig)),
        UNSUPPORTED,
        Rcode(NOTAUTH),
    );
    c.dns(
        "tsig-unknown-algorithm",
        with_additional(&[tsig("nobody.example.", "hmac-md4.", 16, 255, 0)]),
        UNSUPPORTED,
        Rcode(NOTAUTH),
    );
    c.dns(
        "tsig-before-opt",
        with_additional(&[valid_tsig.clone(), opt.clone()]),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns(
        "tsig-twice",
        with_additional(&[valid_tsig.clone(), valid_tsig.clone()]),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns(
        "tsig-class-in",
        with_additional(&[tsig("nobody.example.", "hmac-sha256.", 32, 1, 0)]),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns(
        "tsig-rdata-cut",
        with_additional(&[tsig("nobody.example.", "hmac-sha256.", 32, 255, 5)]),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns(
        "tsig-mac-length-past-rdata",
        with_additional(&[{
            let mut t = tsig("nobody.example.", "hmac-sha256.", 32, 255, 0);
            // The MAC size field (after the 16-byte owner, type, class, TTL, RDLENGTH and the
            // algorithm name and time and fudge): claims more than the RDATA holds.
            let at = wire_name("nobody.example.").len() + 10 + wire_name("hmac-sha256.").len() + 8;
            t[at..at + 2].copy_from_slice(&0x1000u16.to_be_bytes());
            t
        }]),
        UNSUPPORTED,
        Rcode(FORMERR),
    );
    c.dns(
        "additional-a-record",
        with_additional(&[[&[0][..], &[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]].concat()]),
        UNSUPPORTED,
        Rcode(NOERROR),
    );

    // Ethernet (the frame's business, not DNS's: the fast path passes it up untouched).
    // Frames shorter than the Ethernet header never reach XDP (BPF_PROG_TEST_RUN
    // refuses them too); the header alone does.
    let v4 = Frame::v4(base()).build();
    c.frame("eth-header-only", v4[..ETH_HLEN].to_vec(), NOT_DNS, Kernel);
    for (what, ethertype) in
        [("arp", 0x0806u16), ("lldp", 0x88cc), ("0000", 0), ("ffff", 0xffff), ("ipv6-holding-ipv4", 0x86dd)]
    {
        let mut f = v4.clone();
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        c.frame(
            &format!("eth-type-{what}"),
            f,
            if what == "ipv6-holding-ipv4" { UNSUPPORTED } else { NOT_DNS },
            Kernel,
        );
    }
    c.framed("eth-dest-broadcast", |f| f.dst_mac = [0xff; 6], NOT_FOR_US, Kernel);
    c.framed("eth-dest-multicast", |f| f.dst_mac = [0x01, 0x00, 0x5e, 0, 0, 0xfb], NOT_FOR_US, Kernel);
    c.framed("eth-dest-another-host", |f| f.dst_mac = [0x02, 0, 0, 0, 0, 0x99], NOT_FOR_US, Kernel);
    // A source MAC with the group bit set is not a station's (IEEE 802): an answer
    // sent back to it would go to every host of the segment.
    c.framed("eth-source-broadcast", |f| f.src_mac = [0xff; 6], NOT_FOR_US, Kernel);
    c.framed("eth-source-multicast", |f| f.src_mac = [0x01, 0x00, 0x5e, 0, 0, 0x01], NOT_FOR_US, Kernel);
    // VLAN tags (802.1Q, 802.1ad): one or two are answered on the tagged path, three go up.
    c.framed("vlan-one-tag", |f| f.vlans = vec![100], HIT, Rcode(NOERROR));
    c.framed("vlan-two-tags", |f| f.vlans = vec![100, 200], HIT, Rcode(NOERROR));
    c.framed("vlan-three-tags", |f| f.vlans = vec![1, 2, 3], UNSUPPORTED, Kernel);
    let tagged = {
        let mut f = Frame::v4(base());
        f.vlans = vec![100];
        f.build()
    };
    c.frame("vlan-cut-inside-the-tag", tagged[..16].to_vec(), NOT_DNS, Kernel);
    let mut vlan_arp = tagged.clone();
    vlan_arp[16..18].copy_from_slice(&0x0806u16.to_be_bytes());
    c.frame("vlan-carrying-arp", vlan_arp, NOT_DNS, Kernel);

    // IPv4 (RFC 791): cut, wrong version or IHL, options, fragments, lengths, a bad
    // header checksum (the kernel drops it: ip_rcv), other protocols, addresses we never
    // answer from or are not.
    for len in [15usize, 20, 33] {
        c.frame(&format!("ipv4-cut-at-{len:02}"), v4[..len].to_vec(), NOT_DNS, Kernel);
    }
    // Cut inside the UDP header or after it: the IP length claims more than the frame.
    for len in [34usize, 38, 41] {
        c.frame(&format!("ipv4-cut-in-udp-header-at-{len:02}"), v4[..len].to_vec(), UNSUPPORTED, Kernel);
    }
    c.frame("ipv4-cut-after-udp-header", v4[..42].to_vec(), UNSUPPORTED, Kernel);
    for version in [0u8, 5, 6, 15] {
        c.edited(&format!("ipv4-version-{version:02}"), |f| f[14] = version << 4 | 5, false, UNSUPPORTED);
    }
    for ihl in [0u8, 1, 4, 6, 15] {
        c.edited(&format!("ipv4-ihl-{ihl:02}"), |f| f[14] = 0x40 | ihl, false, UNSUPPORTED);
    }
    c.framed("ipv4-options-nop", |f| f.ip_options = vec![1, 1, 1, 0], UNSUPPORTED, Kernel);
    c.framed("ipv4-options-router-alert", |f| f.ip_options = vec![148, 4, 0, 0], UNSUPPORTED, Kernel);
    c.framed("ipv4-fragment-first", |f| f.ip_frag = 0x2000, UNSUPPORTED, Kernel);
    c.framed("ipv4-fragment-middle", |f| f.ip_frag = 0x2001, UNSUPPORTED, Kernel);
    c.framed("ipv4-fragment-last", |f| f.ip_frag = 0x0010, UNSUPPORTED, Kernel);
    c.framed("ipv4-fragment-offset-max", |f| f.ip_frag = 0x1fff, UNSUPPORTED, Kernel);
    c.framed("ipv4-df-clear", |f| f.ip_frag = 0, HIT, Rcode(NOERROR));
    c.framed("ipv4-ttl-1", |f| f.ttl = 1, HIT, Rcode(NOERROR));
    c.framed("ipv4-total-length-past-the-frame", |f| f.ip_len_delta = 10, UNSUPPORTED, Kernel);
    c.framed("ipv4-total-length-short-of-udp", |f| f.ip_len_delta = -5, UNSUPPORTED, Kernel);
    c.edited("ipv4-total-length-19", |f| f[16..18].copy_from_slice(&19u16.to_be_bytes()), false, UNSUPPORTED);
    c.edited("ipv4-total-length-0", |f| f[16..18].fill(0), false, UNSUPPORTED);
    c.edited("ipv4-header-checksum-wrong", |f| f[24] ^= 0x01, true, UNSUPPORTED);
    c.edited("ipv4-header-checksum-zero", |f| f[24..26].fill(0), true, UNSUPPORTED);
    for (what, protocol) in [("tcp", 6u8), ("icmp", 1), ("0", 0), ("udplite", 136), ("255", 255)] {
        c.framed(&format!("ipv4-protocol-{what}"), |f| f.protocol = protocol, NOT_DNS, Kernel);
    }
    let v4_source =
        |a: [u8; 4]| move |f: &mut Frame| f.ips = Ips::V4(Ipv4Addr::from(a), Ipv4Addr::new(198, 18, 0, 1));
    for (what, source) in [
        ("0-0-0-0", [0u8, 0, 0, 0]),
        ("loopback", [127, 0, 0, 1]),
        ("multicast", [224, 0, 0, 251]),
        ("reserved-240", [240, 0, 0, 1]),
        ("broadcast", [255, 255, 255, 255]),
        ("this-network", [0, 1, 2, 3]),
    ] {
        c.framed(&format!("ipv4-source-{what}"), v4_source(source), NOT_FOR_US, Kernel);
    }
    let v4_dest =
        |a: [u8; 4]| move |f: &mut Frame| f.ips = Ips::V4(Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::from(a));
    for (what, dest) in [
        ("another-host", [198u8, 18, 0, 99]),
        ("broadcast", [255, 255, 255, 255]),
        ("subnet-broadcast", [198, 18, 255, 255]),
        ("multicast", [224, 0, 0, 251]),
        ("loopback", [127, 0, 0, 1]),
    ] {
        c.framed(&format!("ipv4-dest-{what}"), v4_dest(dest), NOT_FOR_US, Kernel);
    }
    c.framed("ipv4-trailing-ethernet-padding", |f| f.trailer = vec![0; 18], HIT, Rcode(NOERROR));

    // UDP (RFC 768): lengths that disagree with IP, no checksum (allowed over IPv4),
    // ports we never answer or are not ours.
    for (what, delta) in
        [("past-the-ip-packet", 4i32), ("short-of-the-ip-packet", -1), ("short-of-a-header", -40)]
    {
        c.framed(&format!("udp-length-{what}"), |f| f.udp_len_delta = delta, UNSUPPORTED, Kernel);
    }
    for (what, len) in [("0", 0u16), ("7", 7), ("8", 8), ("19", 19)] {
        c.edited(
            &format!("udp-length-{what}"),
            |f| f[38..40].copy_from_slice(&len.to_be_bytes()),
            false,
            UNSUPPORTED,
        );
    }
    c.framed("udp-no-checksum-ipv4", |f| f.no_udp_checksum = true, HIT, Rcode(NOERROR));
    for (what, port) in
        [("0", 0u16), ("echo-7", 7), ("daytime-13", 13), ("qotd-17", 17), ("chargen-19", 19), ("time-37", 37)]
    {
        let xdp = if port == 0 { UNSUPPORTED } else { NOT_FOR_US };
        c.framed(&format!("udp-source-port-{what}"), |f| f.sport = port, xdp, Kernel);
    }
    c.framed("udp-source-port-53", |f| f.sport = 53, HIT, Rcode(NOERROR));
    for (what, port) in [("0", 0u16), ("5353", 5353), ("853", 853), ("ffff", 0xffff)] {
        c.framed(&format!("udp-dest-port-{what}"), |f| f.dport = port, NOT_DNS, Kernel);
    }

    // IPv6 (RFC 8200): cut, another version, lengths, extension headers (userspace's
    // business), other next headers, a zero UDP checksum (invalid over IPv6: 8.1),
    // addresses we never answer from or are not.
    let v6 = Frame::v6(base()).build();
    for len in [15usize, 30, 53] {
        c.frame(&format!("ipv6-cut-at-{len:02}"), v6[..len].to_vec(), NOT_DNS, Kernel);
    }
    for len in [55usize, 61] {
        c.frame(&format!("ipv6-cut-in-udp-header-at-{len:02}"), v6[..len].to_vec(), UNSUPPORTED, Kernel);
    }
    c.frame("ipv6-cut-after-udp-header", v6[..62].to_vec(), UNSUPPORTED, Kernel);
    for version in [4u8, 0, 15] {
        let mut f = v6.clone();
        f[14] = version << 4;
        c.frame(&format!("ipv6-version-{version:02}"), f, UNSUPPORTED, Kernel);
    }
    c.framed_v6("ipv6-payload-length-past-the-frame", |f| f.ip_len_delta = 30, UNSUPPORTED, Kernel);
    c.framed_v6("ipv6-payload-length-short-of-udp", |f| f.ip_len_delta = -3, UNSUPPORTED, Kernel);
    for (what, next) in [
        ("hop-by-hop", 0u8),
        ("routing", 43),
        ("fragment", 44),
        ("destination-options", 60),
        ("esp", 50),
        ("ah", 51),
    ] {
        c.framed_v6(
            &format!("ipv6-extension-{what}"),
            |f| f.ipv6_next_header = Some(next),
            UNSUPPORTED,
            Kernel,
        );
    }
    for (what, next) in [("tcp", 6u8), ("icmpv6", 58), ("no-next-header", 59)] {
        c.framed_v6(
            &format!("ipv6-next-header-{what}"),
            |f| f.ipv6_next_header = Some(next),
            NOT_DNS,
            Kernel,
        );
    }
    c.framed_v6("ipv6-udp-checksum-zero", |f| f.no_udp_checksum = true, NOT_FOR_US, Kernel);
    c.framed_v6("ipv6-hop-limit-0", |f| f.ttl = 0, HIT, Rcode(NOERROR));
    let server_v6: Ipv6Addr = "fd00:53::1".parse().expect("an address");
    let client_v6: Ipv6Addr = "fd00:53::2".parse().expect("an address");
    for (what, source) in [("unspecified", "::"), ("loopback", "::1"), ("multicast", "ff02::1")] {
        let source: Ipv6Addr = source.parse().expect("an address");
        c.framed_v6(
            &format!("ipv6-source-{what}"),
            |f| f.ips = Ips::V6(source, server_v6),
            NOT_FOR_US,
            Kernel,
        );
    }
    for (what, dest) in [("another-host", "fd00:53::99"), ("multicast", "ff02::1"), ("loopback", "::1")] {
        let dest: Ipv6Addr = dest.parse().expect("an address");
        c.framed_v6(&format!("ipv6-dest-{what}"), |f| f.ips = Ips::V6(client_v6, dest), NOT_FOR_US, Kernel);
    }
    c.framed_v6("ipv6-vlan-one-tag", |f| f.vlans = vec![7], HIT, Rcode(NOERROR));
    c.0
}

/// The name of an outcome's [`Xdp`] expectation in the manifest: `pass:NAME` or
/// `answer:NAME`.
pub fn xdp_text(x: Xdp) -> String {
    match x {
        Xdp::Pass(o) => format!("pass:{}", o.name()),
        Xdp::Answer(o) => format!("answer:{}", o.name()),
    }
}

pub fn userspace_text(u: Userspace) -> String {
    match u {
        Userspace::Drops => "drop".into(),
        Userspace::Kernel => "kernel".into(),
        Userspace::Rcode(r) => rcode::name(r).into(),
    }
}

/// The manifest as [`cases`] makes it: a header, then one line per case.
pub fn manifest(cases: &[Case]) -> String {
    let mut out = String::from(
        "# The garbage corpus: one frame file per case (NAME.frame, an Ethernet frame),\n\
         # what XDP must do (pass:OUTCOME untouched, or answer:OUTCOME with userspace's\n\
         # exact response) and what the handler must answer its UDP payload with (an\n\
         # RCODE, drop, or kernel: the kernel's stack never delivers it as such).\n\
         # Made by tests/src/garbage.rs; INSTADNS_WRITE_GARBAGE=1 cargo xtask test -p tests\n\
         # --test garbage_corpus rewrites the files after a change there.\n",
    );
    for c in cases {
        out.push_str(&format!("{} {} {}\n", c.name, xdp_text(c.xdp), userspace_text(c.userspace)));
    }
    out
}

/// One manifest line read back: (name, XDP, userspace).
pub fn parse_manifest_line(line: &str) -> Result<(String, Xdp, Userspace), String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [name, xdp, userspace] = fields[..] else {
        return Err(format!("not `NAME XDP USERSPACE`: {line:?}"));
    };
    let (kind, outcome) = xdp.split_once(':').ok_or_else(|| format!("{name}: XDP field {xdp:?}"))?;
    let outcome = Outcome::ALL
        .into_iter()
        .find(|o| o.name() == outcome)
        .ok_or_else(|| format!("{name}: no outcome {outcome:?}"))?;
    let xdp = match kind {
        "pass" => Xdp::Pass(outcome),
        "answer" => Xdp::Answer(outcome),
        _ => return Err(format!("{name}: XDP field {xdp:?} is neither pass: nor answer:")),
    };
    let userspace = match userspace {
        "drop" => Userspace::Drops,
        "kernel" => Userspace::Kernel,
        text => Userspace::Rcode(
            (0..=rcode::BADVERS)
                .find(|code| rcode::name(*code) == text)
                .ok_or_else(|| format!("{name}: no RCODE {text:?}"))?,
        ),
    };
    Ok((name.to_owned(), xdp, userspace))
}
