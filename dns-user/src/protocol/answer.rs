//! Turns a resolver answer into the bytes that follow the question in a response.
//!
//! The sections are emitted by hickory-proto behind the *lower-cased* question. hickory
//! compresses names by exact byte comparison, so emitting against the lower-cased
//! question makes every compression pointer independent of the letter case a client
//! used: the same bytes serve every case variant of a question, which is what lets one
//! BPF map entry (keyed by the lower-cased name) answer them all.

use std::{ops::Range, sync::Arc};

use hickory_proto::{
    op::Query,
    rr::{DNSClass, Name, Record, RecordType},
    serialize::binary::{BinEncodable as _, BinEncoder, NameEncoding},
};
use thiserror::Error;

use dns_common::{limits::DNS_HEADER_LEN, wire::rcode};

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
    /// Records of `data` rotated per response (round robin), if any.
    pub rotate: Option<RotateSpan>,
    /// A stale answer, served again while the database cannot be reached (RFC 8767).
    pub stale: bool,
    /// Offsets in `data` of the optional additional records (the last ones): a
    /// response that does not fit may end at any of them.
    pub optional: Vec<u16>,
}

/// What a name answers: one answer, or variants chosen per query (by the XDP program
/// per packet, by userspace per query, the same way).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Steered {
    /// At least one. Directional: indexed by territory (0: everyone else).
    pub variants: Vec<Arc<EncodedAnswer>>,
    pub choice: VariantChoice,
}

/// How a variant of a [`Steered`] answer is chosen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VariantChoice {
    Fixed,
    /// Variant i answers draws below `bounds[i]` (see `dns_common::maps::pick_draw`).
    Weighted(Vec<u32>),
    /// By the client's territory.
    Directional,
}

impl Steered {
    pub fn fixed(answer: Arc<EncodedAnswer>) -> Self {
        Self { variants: vec![answer], choice: VariantChoice::Fixed }
    }

    /// Every variant served stale, with TTLs of at most `ttl` (RFC 8767).
    pub fn stale_copy(&self, ttl: u32) -> Self {
        let variants = self.variants.iter().map(|v| Arc::new(v.stale_copy(ttl))).collect();
        Self { variants, choice: self.choice.clone() }
    }

    /// The first variant: the answer when nothing is known about the client.
    pub fn first(&self) -> &Arc<EncodedAnswer> {
        &self.variants[0]
    }

    /// The variant for a client of `territory` and the pick counter's value `picks`.
    pub fn choose(&self, territory: u8, picks: u32) -> &Arc<EncodedAnswer> {
        let index = match &self.choice {
            VariantChoice::Fixed => 0,
            VariantChoice::Weighted(bounds) => {
                let draw = dns_common::maps::pick_draw(picks);
                bounds.iter().position(|b| draw < *b).unwrap_or(bounds.len().saturating_sub(1))
            }
            VariantChoice::Directional => territory as usize,
        };
        self.variants.get(index).unwrap_or(&self.variants[0])
    }
}

/// A run of equal-sized records in an answer's data whose order is rotated per
/// response. Equal, even sizes keep every record at the same byte parity, so the
/// rotation changes neither the length nor the checksum of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RotateSpan {
    /// Offset of the first record in `data`.
    pub offset: u16,
    pub count: u8,
    /// Bytes per record.
    pub size: u8,
}

/// Rotated runs must end within this many bytes of the data (an XDP bound).
pub const ROTATE_MAX_END: usize = dns_common::maps::ROTATE_MAX_END;

impl RotateSpan {
    /// Copies `data` with the records of the span rotated to start at record `k`.
    /// A span that does not lie within `data` (never made by the encoder) copies `data`
    /// unrotated.
    pub fn apply(&self, data: &[u8], k: usize, out: &mut Vec<u8>) {
        let (start, size, count) = (self.offset as usize, self.size as usize, self.count as usize);
        if count == 0 || start + count * size > data.len() {
            out.extend_from_slice(data);
            return;
        }
        let k = k % count;
        let split = start + k * size;
        let end = start + count * size;
        out.extend_from_slice(&data[..start]);
        out.extend_from_slice(&data[split..end]);
        out.extend_from_slice(&data[start..split]);
        out.extend_from_slice(&data[end..]);
    }
}

impl EncodedAnswer {
    /// An answer with no records, such as REFUSED or SERVFAIL.
    pub fn empty(rcode: u16, authoritative: bool) -> Self {
        Self {
            rcode,
            authoritative,
            counts: [0; 3],
            data: Vec::new(),
            rotate: None,
            stale: false,
            optional: Vec::new(),
        }
    }

    /// The same answer served stale (RFC 8767 section 4): every TTL at most `ttl`.
    pub fn stale_copy(&self, ttl: u32) -> Self {
        let mut data = self.data.clone();
        let records = self.counts.iter().map(|c| *c as usize).sum();
        for at in ttl_offsets(&data, records) {
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&old.min(ttl).to_be_bytes());
        }
        Self { data, stale: true, ..self.clone() }
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
    /// Required records first (glue a referral cannot do without), then optional ones
    /// (addresses of MX, SRV and NS targets), which a response too large for the
    /// client drops without setting TC (RFC 1034 4.3.2 step 6, RFC 9471).
    pub additional: Vec<Record>,
    /// How many of `additional` are required.
    pub required_additional: usize,
}

#[derive(Debug, Error)]
pub enum EncodeError {
    #[error("encoding the answer failed: {0}")]
    Encode(String),
}

/// Encodes `sections` as they follow the question (`lower_qname`, `qtype`, class IN).
/// `rotate` names a range of answer records to rotate per response; it is honoured
/// when those records have one even size and end within [`ROTATE_MAX_END`] bytes.
pub fn encode(
    lower_qname: &Name,
    qtype: u16,
    rcode: u16,
    authoritative: bool,
    sections: &Sections,
    rotate: Option<Range<usize>>,
) -> Result<EncodedAnswer, EncodeError> {
    let err = |e: hickory_proto::ProtoError| EncodeError::Encode(e.to_string());
    let mut buf = Vec::with_capacity(512);
    let mut spans = Vec::with_capacity(sections.answers.len());
    let mut optional = Vec::new();
    let data_start;
    {
        let mut enc = BinEncoder::new(&mut buf);
        // A placeholder header: compression pointers count from the message start.
        enc.emit_vec(&[0u8; DNS_HEADER_LEN]).map_err(err)?;
        let mut query = Query::query(lower_qname.clone(), RecordType::from(qtype));
        query.set_query_class(DNSClass::IN);
        query.emit(&mut enc).map_err(err)?;
        data_start = enc.offset();
        for r in &sections.answers {
            let start = enc.offset();
            r.emit(&mut enc).map_err(err)?;
            spans.push(start - data_start..enc.offset() - data_start);
        }
        // A bare NXDOMAIN is written without compression: the same bytes then follow
        // every question in the zone, and the XDP program answers names that do not
        // exist with one slot per zone (see `dns_common::negative`).
        if is_bare_nxdomain(rcode, sections) {
            enc.set_name_encoding(NameEncoding::Uncompressed);
        }
        for r in &sections.authority {
            r.emit(&mut enc).map_err(err)?;
        }
        for (i, r) in sections.additional.iter().enumerate() {
            if i >= sections.required_additional {
                optional.push((enc.offset() - data_start) as u16);
            }
            r.emit(&mut enc).map_err(err)?;
        }
    }
    let count = |n: usize| u16::try_from(n).map_err(|_| EncodeError::Encode("too many records".into()));
    Ok(EncodedAnswer {
        rcode,
        authoritative,
        counts: [
            count(sections.answers.len())?,
            count(sections.authority.len())?,
            count(sections.additional.len())?,
        ],
        data: buf[data_start..].to_vec(),
        rotate: rotate.and_then(|range| rotate_span(&spans, range)),
        stale: false,
        optional,
    })
}

/// An NXDOMAIN with nothing but the SOA: what a name that does not exist gets.
pub fn is_bare_nxdomain(rcode: u16, sections: &Sections) -> bool {
    rcode == rcode::NXDOMAIN && sections.answers.is_empty() && sections.additional.is_empty()
}

/// Where each of the first `records` records of `data` starts and where its TYPE field
/// is (after the owner name, which may be compressed: a pointer ends a name). Stops
/// early on data that does not parse.
fn record_offsets(data: &[u8], records: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(records);
    let mut pos = 0;
    for _ in 0..records {
        let start = pos;
        loop {
            let Some(&len) = data.get(pos) else { return out };
            match len {
                0 => {
                    pos += 1;
                    break;
                }
                0xc0..=0xff => {
                    pos += 2;
                    break;
                }
                _ => pos += 1 + len as usize,
            }
        }
        // TYPE, CLASS, TTL, RDLENGTH, RDATA.
        let Some(rdlen) = data.get(pos + 8..pos + 10) else { return out };
        out.push((start, pos));
        pos += 10 + u16::from_be_bytes([rdlen[0], rdlen[1]]) as usize;
    }
    out
}

/// Whether `data` is exactly `records` resource records, names either labels ending in
/// the root or in a pointer (the shape of an encoded answer's data).
pub fn is_whole_records(data: &[u8], records: usize) -> bool {
    let offsets = record_offsets(data, records);
    offsets.len() == records
        && offsets.last().map_or(data.is_empty(), |(_, fixed)| {
            let rdlen = u16::from_be_bytes([data[fixed + 8], data[fixed + 9]]) as usize;
            fixed + 10 + rdlen == data.len()
        })
}

/// The offsets of the TTL fields of the first `records` records of `data`.
fn ttl_offsets(data: &[u8], records: usize) -> Vec<usize> {
    record_offsets(data, records).into_iter().map(|(_, fixed)| fixed + 4).collect()
}

/// The offsets of the last `optional` records of `data` (of `records` in all).
pub fn last_record_offsets(data: &[u8], records: usize, optional: usize) -> Vec<u16> {
    let all = record_offsets(data, records);
    all[all.len().saturating_sub(optional)..].iter().map(|(start, _)| *start as u16).collect()
}

fn rotate_span(spans: &[Range<usize>], range: Range<usize>) -> Option<RotateSpan> {
    let records = spans.get(range)?;
    let first = records.first()?;
    let size = first.len();
    let uniform = records.iter().all(|r| r.len() == size);
    let end = first.start + records.len() * size;
    (records.len() >= 2
        && uniform
        && size % 2 == 0
        && size <= 255
        && records.len() <= 255
        && end <= ROTATE_MAX_END)
        .then_some(RotateSpan { offset: first.start as u16, count: records.len() as u8, size: size as u8 })
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
        let sections = Sections { answers: vec![cname], ..Default::default() };
        let a = encode(&qname, 1, 0, true, &sections, None).unwrap();
        // Owner: pointer to the question name at offset 12.
        assert_eq!(&a.data[..2], &[0xc0, 0x0c]);
        // Target: "ws-mt1" then a pointer to "example.com" inside the question.
        let rdata = &a.data[12..];
        assert_eq!(&rdata[..7], b"\x06ws-mt1");
        let suffix_offset = 12 + b"\x04ws-1\x04apps".len();
        assert_eq!(&rdata[7..9], &[0xc0, suffix_offset as u8]);
        assert_eq!(a.counts, [1, 0, 0]);
    }

    /// RFC 8767 section 4: a stale answer carries TTLs of at most the stale TTL, its
    /// data otherwise unchanged.
    #[test]
    fn rfc8767_stale_copies_cap_every_ttl() {
        use hickory_proto::rr::rdata::{A, SOA};
        let qname = Name::from_str("ws-1.apps.example.com.").unwrap();
        let target = Name::from_str("ws-mt1.example.com.").unwrap();
        let sections = Sections {
            answers: vec![
                Record::from_rdata(qname.clone(), 300, RData::CNAME(CNAME(target.clone()))),
                Record::from_rdata(target.clone(), 20, RData::A(A::new(192, 0, 2, 1))),
            ],
            authority: vec![Record::from_rdata(
                Name::from_str("example.com.").unwrap(),
                3600,
                RData::SOA(SOA::new(target.clone(), target, 1, 2, 3, 4, 5)),
            )],
            additional: vec![],
            required_additional: 0,
        };
        let fresh = encode(&qname, 1, 0, true, &sections, None).unwrap();
        let stale = fresh.stale_copy(30);
        assert!(stale.stale && !fresh.stale);
        assert_eq!(stale.data.len(), fresh.data.len());
        let offsets = ttl_offsets(&fresh.data, 3);
        let ttl = |a: &EncodedAnswer, at: usize| u32::from_be_bytes(a.data[at..at + 4].try_into().unwrap());
        assert_eq!(offsets.iter().map(|at| ttl(&fresh, *at)).collect::<Vec<_>>(), [300, 20, 3600]);
        assert_eq!(offsets.iter().map(|at| ttl(&stale, *at)).collect::<Vec<_>>(), [30, 20, 30]);
    }

    #[test]
    fn rotation_spans_equal_records_and_rotates_them() {
        use hickory_proto::rr::rdata::A;
        let qname = Name::from_str("h.example.org.").unwrap();
        let addrs: Vec<Record> =
            (1..=4).map(|i| Record::from_rdata(qname.clone(), 60, RData::A(A::new(192, 0, 2, i)))).collect();
        let sections = Sections { answers: addrs, ..Default::default() };
        let a = encode(&qname, 1, 0, true, &sections, Some(0..4)).unwrap();
        let span = a.rotate.unwrap();
        assert_eq!((span.offset, span.count, span.size), (0, 4, 16));
        let mut out = Vec::new();
        span.apply(&a.data, 1, &mut out);
        assert_eq!(&out[..16], &a.data[16..32], "starts at the second record");
        assert_eq!(&out[48..], &a.data[..16], "the first record moved last");
        // One record, or the range out of bounds: no rotation.
        assert!(encode(&qname, 1, 0, true, &sections, Some(0..1)).unwrap().rotate.is_none());
        assert!(encode(&qname, 1, 0, true, &sections, Some(2..9)).unwrap().rotate.is_none());
    }
}
