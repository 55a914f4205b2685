//! Turns a resolver answer into the bytes that follow the question in a response.
//!
//! The sections are emitted by hickory-proto behind the *lower-cased* question. hickory
//! compresses names by exact byte comparison, so emitting against the lower-cased
//! question makes every compression pointer independent of the letter case a client
//! used: the same bytes serve every case variant of a question, which is what lets one
//! BPF map entry (keyed by the lower-cased name) answer them all.

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{DNSClass, Name, Record, RecordType},
};
use thiserror::Error;

use crate::wire::rcode;
use dns_common::limits::DNS_HEADER_LEN;

/// The answer part of a response, ready to follow any case variant of its question.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncodedAnswer {
    /// Full RCODE (values above 15 need EDNS and are never cached).
    pub rcode: u16,
    pub authoritative: bool,
    /// ANCOUNT, NSCOUNT, ARCOUNT of `data` (an OPT record is added separately).
    pub counts: [u16; 3],
    /// Answer, authority and additional sections.
    pub data: Vec<u8>,
}

impl EncodedAnswer {
    /// An answer with no records, such as REFUSED or SERVFAIL.
    pub fn empty(rcode: u16, authoritative: bool) -> Self {
        Self {
            rcode,
            authoritative,
            counts: [0; 3],
            data: Vec::new(),
        }
    }

    pub fn refused() -> Self {
        Self::empty(rcode::REFUSED, false)
    }

    pub fn servfail() -> Self {
        Self::empty(rcode::SERVFAIL, false)
    }
}

/// The sections of an answer, before encoding.
#[derive(Clone, Debug, Default)]
pub struct Sections {
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

#[derive(Debug, Error)]
pub enum EncodeError {
    #[error("the question name is not a valid name: {0}")]
    BadName(String),
    #[error("encoding the answer failed: {0}")]
    Encode(String),
}

/// Encodes `sections` as they follow the question (`lower_qname`, `qtype`, class IN).
pub fn encode(
    lower_qname: &Name,
    qtype: u16,
    rcode: u16,
    authoritative: bool,
    sections: &Sections,
) -> Result<EncodedAnswer, EncodeError> {
    let mut msg = Message::new(0, MessageType::Response, OpCode::Query);
    let mut query = Query::query(lower_qname.clone(), RecordType::from(qtype));
    query.set_query_class(DNSClass::IN);
    msg.add_query(query);
    msg.answers = sections.answers.clone();
    msg.authorities = sections.authority.clone();
    msg.additionals = sections.additional.clone();
    let bytes = msg
        .to_vec()
        .map_err(|e| EncodeError::Encode(e.to_string()))?;
    let question_len = wire_len(lower_qname) + 4;
    let data = bytes
        .get(DNS_HEADER_LEN + question_len..)
        .ok_or_else(|| EncodeError::Encode("message shorter than its question".into()))?
        .to_vec();
    let count =
        |n: usize| u16::try_from(n).map_err(|_| EncodeError::Encode("too many records".into()));
    Ok(EncodedAnswer {
        rcode,
        authoritative,
        counts: [
            count(sections.answers.len())?,
            count(sections.authority.len())?,
            count(sections.additional.len())?,
        ],
        data,
    })
}

/// Length of a name in uncompressed wire format.
pub fn wire_len(name: &Name) -> usize {
    // One length byte per label plus the label bytes plus the root label.
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// Decodes an uncompressed wire-format name.
pub fn name_from_wire(wire: &[u8]) -> Result<Name, EncodeError> {
    use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder};
    Name::read(&mut BinDecoder::new(wire)).map_err(|e| EncodeError::BadName(e.to_string()))
}

/// The wire form of a name (uncompressed).
pub fn name_to_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire_len(name));
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use hickory_proto::rr::{RData, rdata::CNAME};

    use super::*;

    #[test]
    fn compression_points_into_the_question_independently_of_case() {
        let qname = Name::from_str("ws-1.apps.example.com.").unwrap();
        let target = Name::from_str("ws-mt1.example.com.").unwrap();
        let cname = Record::from_rdata(qname.clone(), 300, RData::CNAME(CNAME(target)));
        let sections = Sections {
            answers: vec![cname],
            ..Default::default()
        };
        let a = encode(&qname, 1, 0, true, &sections).unwrap();
        // Owner: pointer to the question name at offset 12.
        assert_eq!(&a.data[..2], &[0xc0, 0x0c]);
        // Target: "ws-mt1" then a pointer to "example.com" inside the question.
        let rdata = &a.data[12..];
        assert_eq!(&rdata[..7], b"\x06ws-mt1");
        let suffix_offset = 12 + b"\x04ws-1\x04apps".len();
        assert_eq!(&rdata[7..9], &[0xc0, suffix_offset as u8]);
        assert_eq!(a.counts, [1, 0, 0]);
    }

    #[test]
    fn wire_round_trip() {
        let n = Name::from_ascii("a.B.c.").unwrap();
        assert_eq!(name_to_wire(&n), b"\x01a\x01B\x01c\x00");
        assert_eq!(name_from_wire(b"\x01a\x01B\x01c\x00").unwrap(), n);
        assert_eq!(wire_len(&Name::root()), 1);
    }
}
