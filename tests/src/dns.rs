//! DNS query builders (raw, so malformed variants are easy) and a hickory-proto oracle
//! for the responses the server must send.

use std::str::FromStr as _;

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{DNSClass, Name, RData, Record, RecordType, rdata},
};

/// An EDNS(0) OPT record for a query.
#[derive(Clone, Debug)]
pub struct EdnsQuery {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// Flag bits other than DO (must be cleared in responses).
    pub other_flags: u16,
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Default for EdnsQuery {
    fn default() -> Self {
        Self {
            payload: dns_common::limits::DEFAULT_EDNS_PAYLOAD,
            version: 0,
            dnssec_ok: false,
            other_flags: 0,
            options: Vec::new(),
        }
    }
}

impl EdnsQuery {
    pub fn bytes(&self) -> Vec<u8> {
        let mut rdata = Vec::new();
        for (code, data) in &self.options {
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rdata.extend_from_slice(data);
        }
        let flags = if self.dnssec_ok { 0x8000 } else { 0 } | self.other_flags;
        let mut out = vec![0, 0, 41];
        out.extend_from_slice(&self.payload.to_be_bytes());
        out.extend_from_slice(&[0, self.version]);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
        out
    }
}

/// A standard query, its name written in the given letter case.
#[derive(Clone, Debug)]
pub struct QueryBuilder {
    pub id: u16,
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub flags: [u8; 2],
    pub edns: Option<EdnsQuery>,
}

impl QueryBuilder {
    pub fn new(name: &str, qtype: RecordType) -> Self {
        Self {
            id: 0x4242,
            name: name.to_owned(),
            qtype: qtype.into(),
            qclass: 1,
            flags: [0x01, 0x00],
            edns: None,
        }
    }

    pub fn edns(mut self, edns: EdnsQuery) -> Self {
        self.edns = Some(edns);
        self
    }

    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&self.id.to_be_bytes());
        m.extend_from_slice(&self.flags);
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(self.edns.is_some())]);
        m.extend_from_slice(&wire_name(&self.name));
        m.extend_from_slice(&self.qtype.to_be_bytes());
        m.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some(e) = &self.edns {
            m.extend_from_slice(&e.bytes());
        }
        m
    }
}

/// Wire form of a presentation name, letter case preserved (no escapes).
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

pub fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("test name")
}

pub fn a(owner: &str, ttl: u32, ip: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(rdata::A::from_str(ip).expect("test IPv4")))
}

pub fn aaaa(owner: &str, ttl: u32, ip: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::AAAA(rdata::AAAA::from_str(ip).expect("test IPv6")))
}

pub fn cname(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(rdata::CNAME(name(target))))
}

/// The SOA record of a demo zone, as negative answers carry it (TTL = SOA minimum).
pub fn demo_soa(apex: &str) -> Record {
    let soa =
        rdata::SOA::new(name("ns1.example.com."), name("hostmaster.example.com."), 1, 3600, 600, 604800, 60);
    Record::from_rdata(name(apex), 60, RData::SOA(soa))
}

/// The response a correct instadns sends to `query`, built by hickory-proto: AA set,
/// RD and CD copied, the question echoed exactly as received, our OPT record (payload
/// `our_payload`, DO copied, no options) when the query had EDNS.
///
/// hickory compresses names by exact bytes, so the response is emitted behind the
/// lower-cased question and the question's own bytes are then put back.
pub fn oracle_response(
    query: &[u8],
    answers: Vec<Record>,
    authority: Vec<Record>,
    rcode: u16,
    our_payload: u16,
) -> Vec<u8> {
    let q = Message::from_vec(query).expect("the oracle parses the query");
    let question = q.queries.first().expect("one question");
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.authoritative = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.checking_disabled = q.metadata.checking_disabled;
    r.metadata.response_code = ResponseCode::from_low(rcode as u8);
    let mut lower = Query::query(question.name().to_lowercase(), question.query_type());
    lower.set_query_class(DNSClass::IN);
    r.add_query(lower);
    // A bare NXDOMAIN carries its SOA uncompressed (the same bytes after every question
    // of the zone: what lets the kernel answer names that do not exist): spliced in below.
    let bare_nxdomain = rcode == 3 && answers.is_empty();
    r.answers = answers;
    if !bare_nxdomain {
        r.authorities = authority.clone();
    }
    if let Some(edns) = &q.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(our_payload);
        ours.set_version(0);
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        r.set_edns(ours);
    }
    let mut bytes = r.to_vec().expect("the oracle encodes");
    let qlen = wire_name(&question.name().to_ascii()).len() + 4;
    bytes[12..12 + qlen].copy_from_slice(&query[12..12 + qlen]);
    // A Client Subnet option is echoed with SCOPE 0 (RFC 7871 section 7.2.1) as the
    // last thing of our OPT record, which ends the response.
    if let Some(mut option) = client_subnet_option(query, 12 + qlen) {
        option[7] = 0;
        let rdlen_at = bytes.len() - 2;
        bytes[rdlen_at..].copy_from_slice(&(option.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&option);
    }
    if bare_nxdomain {
        use hickory_proto::serialize::binary::{BinEncodable as _, BinEncoder, NameEncoding};
        let mut soa = Vec::new();
        let mut enc = BinEncoder::new(&mut soa);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        for record in &authority {
            record.emit(&mut enc).expect("the oracle encodes the SOA");
        }
        let at = 12 + qlen;
        bytes.splice(at..at, soa);
        bytes[8..10].copy_from_slice(&(authority.len() as u16).to_be_bytes());
    }
    bytes
}

/// The Client Subnet option (code, length and data) of the OPT record at `opt` of a
/// query built here, if it has one.
fn client_subnet_option(query: &[u8], opt: usize) -> Option<Vec<u8>> {
    let rdlen = u16::from_be_bytes([*query.get(opt + 9)?, *query.get(opt + 10)?]) as usize;
    let options = query.get(opt + 11..opt + 11 + rdlen)?;
    let mut at = 0;
    while at + 4 <= options.len() {
        let code = u16::from_be_bytes([options[at], options[at + 1]]);
        let len = u16::from_be_bytes([options[at + 2], options[at + 3]]) as usize;
        let option = options.get(at..at + 4 + len)?;
        if code == dns_common::wire::EDNS_OPTION_ECS {
            return Some(option.to_vec());
        }
        at += 4 + len;
    }
    None
}

/// The data of a response's answers in presentation form (nothing if it does not parse).
pub fn answer_data(response: &[u8]) -> Vec<String> {
    Message::from_vec(response)
        .map(|m| m.answers.iter().map(|r| r.data.to_string()).collect())
        .unwrap_or_default()
}

pub fn record_type(t: &str) -> RecordType {
    RecordType::from_str(t).expect("record type")
}

/// The RCODE of a response, extended by its OPT record's upper bits (BADVERS is 16).
pub fn response_rcode(response: &[u8]) -> u16 {
    let high = Message::from_vec(response).ok().and_then(|m| m.edns).map_or(0, |e| e.rcode_high() as u16);
    (response[3] & 0xf) as u16 | high << 4
}
