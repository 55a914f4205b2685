//! RFC 2136 UPDATE messages: the zone section, the prerequisites (section 2.4) and the
//! updates (section 2.5) as typed values, with the FORMERR cases of sections 3.1.1,
//! 3.2 and 3.4.1 decided here. Whether the zone is ours, the key's scope and the
//! prerequisites' truth are for the caller. NOTIFY (RFC 1996) gets its answer here too.

use std::collections::BTreeMap;

use dns_common::{
    limits::DNS_HEADER_LEN,
    wire::{EDNS_FLAG_DO, FLAG1_OPCODE_MASK, FLAG1_QR, TYPE_OPT, TYPE_SOA, rcode},
};
use hickory_proto::{
    op::Message,
    rr::{Name, RData, Record, RecordType},
};

use super::{
    query::{Edns, Rejection},
    record::{parse_question, parse_record},
    tsig::{self, TYPE_TSIG, TsigRecord},
};

pub const OPCODE_NOTIFY: u8 = 4;
pub const OPCODE_UPDATE: u8 = 5;

/// The most prerequisites plus updates one message may carry: a message fits in 64 KiB
/// anyway, this bounds the work and the transaction.
pub const MAX_UPDATE_RECORDS: usize = 1_000;

/// A prerequisite (RFC 2136 section 2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prerequisite {
    /// 2.4.1: an RRset of this type exists at the name (value-independent).
    RrsetExists(Name, RecordType),
    /// 2.4.2: the RRset at the name is exactly these records (value-dependent).
    RrsetEquals(Name, RecordType, Vec<RData>),
    /// 2.4.3: no RRset of this type at the name.
    RrsetAbsent(Name, RecordType),
    /// 2.4.4: the name owns at least one record.
    NameInUse(Name),
    /// 2.4.5: the name owns no record.
    NameNotInUse(Name),
}

impl Prerequisite {
    pub fn name(&self) -> &Name {
        match self {
            Self::RrsetExists(n, _) | Self::RrsetEquals(n, _, _) | Self::RrsetAbsent(n, _) => n,
            Self::NameInUse(n) | Self::NameNotInUse(n) => n,
        }
    }

    /// The RCODE when it does not hold (RFC 2136 section 3.2).
    pub fn failure_rcode(&self) -> u16 {
        match self {
            Self::RrsetExists(..) | Self::RrsetEquals(..) => rcode::NXRRSET,
            Self::RrsetAbsent(..) => rcode::YXRRSET,
            Self::NameInUse(_) => rcode::NXDOMAIN,
            Self::NameNotInUse(_) => rcode::YXDOMAIN,
        }
    }
}

/// An update (RFC 2136 section 2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// 2.5.1: add to an RRset.
    Add(Record),
    /// 2.5.2: delete an RRset.
    DeleteRrset(Name, RecordType),
    /// 2.5.3: delete all RRsets at a name.
    DeleteName(Name),
    /// 2.5.4: delete one record.
    DeleteRecord(Name, RData),
}

impl Change {
    pub fn name(&self) -> &Name {
        match self {
            Self::Add(r) => &r.name,
            Self::DeleteRrset(n, _) | Self::DeleteName(n) | Self::DeleteRecord(n, _) => n,
        }
    }

    /// The type it touches (`None`: every type at the name).
    pub fn record_type(&self) -> Option<RecordType> {
        match self {
            Self::Add(r) => Some(r.record_type()),
            Self::DeleteRrset(_, t) => Some(*t),
            Self::DeleteName(_) => None,
            Self::DeleteRecord(_, d) => Some(d.record_type()),
        }
    }
}

/// A parsed UPDATE message. Names are lower-cased.
#[derive(Debug)]
pub struct Update<'a> {
    pub id: u16,
    pub flags: [u8; 2],
    pub zone: Name,
    pub zone_class: u16,
    /// The zone section's length: echoed in the response (RFC 2136 section 3.8).
    pub zone_section_len: usize,
    pub prerequisites: Vec<Prerequisite>,
    pub changes: Vec<Change>,
    pub edns: Option<Edns>,
    pub tsig: Option<TsigRecord<'a>>,
}

impl Update<'_> {
    /// The rejection that answers this update with `rcode`.
    pub fn reply(&self, rcode: u16) -> Rejection {
        Rejection::Error {
            id: self.id,
            flags: reply_flags(self.flags),
            rcode,
            question_len: self.zone_section_len,
            edns: self.edns,
        }
    }
}

/// Of a request's flags a response to UPDATE or NOTIFY keeps only the opcode.
fn reply_flags(flags: [u8; 2]) -> [u8; 2] {
    [flags[0] & FLAG1_OPCODE_MASK, 0]
}

/// Parses an UPDATE message (the caller checked the opcode).
pub fn parse_update(msg: &[u8]) -> Result<Update<'_>, Rejection> {
    let header = Header::read(msg)?;
    let formerr = |question_len| header.reject(rcode::FORMERR, question_len, None);
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    let (zocount, prcount, upcount, adcount) = (count(4), count(6), count(8), count(10));
    // Exactly one zone, of type SOA (section 3.1.1).
    let zone = if zocount == 1 { parse_question(msg, DNS_HEADER_LEN) } else { None };
    let Some((zone_name_len, ztype, zclass)) = zone else {
        return Err(formerr(0));
    };
    let zone_section_len = zone_name_len + 4;
    if ztype != TYPE_SOA || prcount + upcount > MAX_UPDATE_RECORDS {
        return Err(formerr(zone_section_len));
    }
    // Walk the records for the OPT and TSIG records and their offsets.
    let mut pos = DNS_HEADER_LEN + zone_section_len;
    let (mut edns, mut signature) = (None, None);
    let total = prcount + upcount + adcount;
    for index in 0..total {
        let Some(record) = parse_record(msg, pos) else {
            return Err(formerr(zone_section_len));
        };
        let additional = index >= prcount + upcount;
        if record.rtype == TYPE_TSIG {
            let rdata_start = record.end - record.rdata.len();
            signature = (additional && index + 1 == total && record.class == 255 && record.ttl == 0)
                .then(|| tsig::parse_record(msg, pos, rdata_start, record.end))
                .flatten();
            if signature.is_none() {
                return Err(formerr(zone_section_len));
            }
        }
        if record.rtype == TYPE_OPT {
            if !additional || edns.is_some() || !record.owner_is_root {
                return Err(formerr(zone_section_len));
            }
            edns = Some(Edns {
                payload: record.class,
                version: (record.ttl >> 16) as u8,
                dnssec_ok: (record.ttl as u16) & EDNS_FLAG_DO != 0,
                client_subnet: None,
                cookie: None,
            });
        }
        pos = record.end;
    }
    if pos != msg.len() {
        return Err(formerr(zone_section_len));
    }
    if let Some(e) = edns
        && e.version != 0
    {
        return Err(header.reject(rcode::BADVERS, zone_section_len, edns));
    }
    let parsed = Message::from_vec(msg).map_err(|_| header.reject(rcode::FORMERR, zone_section_len, edns))?;
    let formerr = || header.reject(rcode::FORMERR, zone_section_len, edns);
    let zone = parsed.queries.first().ok_or_else(formerr)?.name().to_lowercase();
    let prerequisites = prerequisites(&parsed.answers, zclass).ok_or_else(formerr)?;
    let changes = parsed.authorities.iter().map(|r| change(r, zclass)).collect::<Option<Vec<_>>>();
    Ok(Update {
        id: header.id,
        flags: header.flags,
        zone,
        zone_class: zclass,
        zone_section_len,
        prerequisites,
        changes: changes.ok_or_else(formerr)?,
        edns,
        tsig: signature,
    })
}

/// The response to a NOTIFY (RFC 1996 section 4.7): we are a primary, so a NOTIFY is
/// acknowledged (for one of our zones, given in `ours`) and otherwise ignored; NOTAUTH
/// for a zone that is not ours.
pub fn notify_reply(msg: &[u8], ours: impl FnOnce(&Name) -> bool) -> Result<Rejection, Rejection> {
    let header = Header::read(msg)?;
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let question = if count(4) == 1 { parse_question(msg, DNS_HEADER_LEN) } else { None };
    let Some((name_len, _, _)) = question else {
        return Err(header.reject(rcode::FORMERR, 0, None));
    };
    let question_len = name_len + 4;
    let zone = super::name::name_from_wire(&msg[DNS_HEADER_LEN..DNS_HEADER_LEN + name_len])
        .map_err(|_| header.reject(rcode::FORMERR, question_len, None))?
        .to_lowercase();
    let rcode = if ours(&zone) { rcode::NOERROR } else { rcode::NOTAUTH };
    Ok(header.reject(rcode, question_len, None))
}

struct Header {
    id: u16,
    flags: [u8; 2],
}

impl Header {
    /// The header of a request; responses and runts are dropped.
    fn read(msg: &[u8]) -> Result<Self, Rejection> {
        if msg.len() < DNS_HEADER_LEN || msg[2] & FLAG1_QR != 0 {
            return Err(Rejection::Drop);
        }
        Ok(Self { id: u16::from_be_bytes([msg[0], msg[1]]), flags: [msg[2], msg[3]] })
    }

    fn reject(&self, rcode: u16, question_len: usize, edns: Option<Edns>) -> Rejection {
        Rejection::Error { id: self.id, flags: reply_flags(self.flags), rcode, question_len, edns }
    }
}

/// Types an update may not add (section 3.4.1.3): the meta types.
fn is_meta(t: RecordType) -> bool {
    matches!(t, RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT | RecordType::TSIG)
        || matches!(u16::from(t), 128..=255)
}

/// The prerequisite section (RFC 2136 section 3.2): value-dependent records of one
/// name and type are one prerequisite.
fn prerequisites(records: &[Record], zclass: u16) -> Option<Vec<Prerequisite>> {
    let mut out = Vec::new();
    let mut equals: BTreeMap<(Name, u16), Vec<RData>> = BTreeMap::new();
    for r in records {
        if r.ttl != 0 {
            return None;
        }
        let name = r.name.to_lowercase();
        let t = r.record_type();
        let empty = matches!(r.data, RData::Update0(_));
        match u16::from(r.dns_class) {
            255 if empty => out.push(if t == RecordType::ANY {
                Prerequisite::NameInUse(name)
            } else {
                Prerequisite::RrsetExists(name, t)
            }),
            254 if empty => out.push(if t == RecordType::ANY {
                Prerequisite::NameNotInUse(name)
            } else {
                Prerequisite::RrsetAbsent(name, t)
            }),
            c if c == zclass && !empty && !is_meta(t) => {
                equals.entry((name, u16::from(t))).or_default().push(r.data.clone());
            }
            _ => return None,
        }
    }
    out.extend(
        equals
            .into_iter()
            .map(|((name, t), data)| Prerequisite::RrsetEquals(name, RecordType::from(t), data)),
    );
    Some(out)
}

/// One record of the update section (RFC 2136 section 3.4.1.3).
fn change(r: &Record, zclass: u16) -> Option<Change> {
    let name = r.name.to_lowercase();
    let t = r.record_type();
    let empty = matches!(r.data, RData::Update0(_));
    match u16::from(r.dns_class) {
        c if c == zclass && !empty && !is_meta(t) => {
            let mut record = r.clone();
            record.name = name;
            Some(Change::Add(record))
        }
        255 if empty && r.ttl == 0 && t == RecordType::ANY => Some(Change::DeleteName(name)),
        255 if empty && r.ttl == 0 && !is_meta(t) => Some(Change::DeleteRrset(name, t)),
        254 if !empty && r.ttl == 0 && !is_meta(t) => Some(Change::DeleteRecord(name, r.data.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::{
        op::{Message, OpCode, Query},
        rr::{
            DNSClass,
            rdata::{A, TXT},
        },
    };

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn record(owner: &str, class: DNSClass, ttl: u32, data: RData) -> Record {
        let mut r = Record::from_rdata(name(owner), ttl, data);
        r.dns_class = class;
        r
    }

    fn update(prereqs: Vec<Record>, updates: Vec<Record>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x4242;
        m.metadata.op_code = OpCode::Update;
        let mut zone = Query::query(name("Example.ORG."), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        m.queries.push(zone);
        m.answers = prereqs;
        m.authorities = updates;
        m.to_vec().unwrap()
    }

    fn rcode_of(result: Result<Update<'_>, Rejection>) -> u16 {
        match result {
            Err(Rejection::Error { rcode, .. }) => rcode,
            Err(Rejection::Drop) => u16::MAX,
            Ok(_) => rcode::NOERROR,
        }
    }

    /// Each prerequisite kind of RFC 2136 section 2.4 and each update kind of 2.5.
    #[test]
    fn rfc2136_sections_2_4_and_2_5_every_kind_parses() {
        let a = RData::A(A::from_str("192.0.2.7").unwrap());
        let txt = RData::TXT(TXT::new(vec!["v".into()]));
        let msg = update(
            vec![
                record("www.example.org.", DNSClass::ANY, 0, RData::Update0(RecordType::A)),
                record("a.example.org.", DNSClass::IN, 0, a.clone()),
                record("a.example.org.", DNSClass::IN, 0, RData::A(A::from_str("192.0.2.8").unwrap())),
                record("new.example.org.", DNSClass::NONE, 0, RData::Update0(RecordType::TXT)),
                record("www.example.org.", DNSClass::ANY, 0, RData::Update0(RecordType::ANY)),
                record("gone.example.org.", DNSClass::NONE, 0, RData::Update0(RecordType::ANY)),
            ],
            vec![
                record("New.example.org.", DNSClass::IN, 300, txt.clone()),
                record("old.example.org.", DNSClass::ANY, 0, RData::Update0(RecordType::MX)),
                record("old.example.org.", DNSClass::ANY, 0, RData::Update0(RecordType::ANY)),
                record("a.example.org.", DNSClass::NONE, 0, a.clone()),
            ],
        );
        let u = parse_update(&msg).unwrap();
        assert_eq!((u.id, u.zone.clone(), u.zone_class), (0x4242, name("example.org."), 1));
        assert_eq!(
            u.prerequisites,
            vec![
                Prerequisite::RrsetExists(name("www.example.org."), RecordType::A),
                Prerequisite::RrsetAbsent(name("new.example.org."), RecordType::TXT),
                Prerequisite::NameInUse(name("www.example.org.")),
                Prerequisite::NameNotInUse(name("gone.example.org.")),
                Prerequisite::RrsetEquals(
                    name("a.example.org."),
                    RecordType::A,
                    vec![a.clone(), RData::A(A::from_str("192.0.2.8").unwrap())]
                ),
            ]
        );
        let added = match &u.changes[0] {
            Change::Add(r) => r,
            other => panic!("not an add: {other:?}"),
        };
        assert_eq!((&added.name, added.ttl, &added.data), (&name("new.example.org."), 300, &txt));
        assert_eq!(u.changes[1], Change::DeleteRrset(name("old.example.org."), RecordType::MX));
        assert_eq!(u.changes[2], Change::DeleteName(name("old.example.org.")));
        assert_eq!(u.changes[3], Change::DeleteRecord(name("a.example.org."), a));
        assert_eq!(u.zone_section_len, 13 + 4);
    }

    /// The FORMERR cases of RFC 2136 sections 3.1.1, 3.2 and 3.4.1.3.
    #[test]
    fn rfc2136_section_3_malformed_updates_are_formerr() {
        let a = RData::A(A::from_str("192.0.2.7").unwrap());
        let rows: Vec<(&str, Vec<Record>, Vec<Record>)> = vec![
            (
                "prerequisite with a TTL",
                vec![record("a.example.org.", DNSClass::ANY, 5, RData::Update0(RecordType::A))],
                vec![],
            ),
            (
                "class ANY prerequisite with data",
                vec![record("a.example.org.", DNSClass::ANY, 0, a.clone())],
                vec![],
            ),
            (
                "class NONE prerequisite with data",
                vec![record("a.example.org.", DNSClass::NONE, 0, a.clone())],
                vec![],
            ),
            ("class CH prerequisite", vec![record("a.example.org.", DNSClass::CH, 0, a.clone())], vec![]),
            (
                "add of type ANY",
                vec![],
                vec![record("a.example.org.", DNSClass::IN, 0, RData::Update0(RecordType::ANY))],
            ),
            (
                "delete RRset with a TTL",
                vec![],
                vec![record("a.example.org.", DNSClass::ANY, 9, RData::Update0(RecordType::A))],
            ),
            ("delete RRset with data", vec![], vec![record("a.example.org.", DNSClass::ANY, 0, a.clone())]),
            (
                "delete record with a TTL",
                vec![],
                vec![record("a.example.org.", DNSClass::NONE, 9, a.clone())],
            ),
            (
                "delete record of type AXFR",
                vec![],
                vec![record("a.example.org.", DNSClass::ANY, 0, RData::Update0(RecordType::AXFR))],
            ),
        ];
        for (what, prereqs, updates) in rows {
            assert_eq!(rcode_of(parse_update(&update(prereqs, updates))), rcode::FORMERR, "{what}");
        }
        let mut two_zones = update(vec![], vec![]);
        two_zones[5] = 2;
        assert_eq!(rcode_of(parse_update(&two_zones)), rcode::FORMERR, "ZOCOUNT 2");
        let mut not_soa = update(vec![], vec![]);
        let ztype_at = 12 + 13;
        not_soa[ztype_at + 1] = 1;
        assert_eq!(rcode_of(parse_update(&not_soa)), rcode::FORMERR, "ZTYPE A");
        let mut response = update(vec![], vec![]);
        response[2] |= FLAG1_QR;
        assert_eq!(rcode_of(parse_update(&response)), u16::MAX, "responses are dropped");
        let mut trailing = update(vec![], vec![]);
        trailing.push(0);
        assert_eq!(rcode_of(parse_update(&trailing)), rcode::FORMERR, "trailing byte");
    }

    #[test]
    fn rfc1996_notify_is_acknowledged_for_our_zones_only() {
        let mut m = Message::query();
        m.metadata.op_code = OpCode::Notify;
        m.queries.push(Query::query(name("example.org."), RecordType::SOA));
        let msg = m.to_vec().unwrap();
        let rcode_of = |r: Result<Rejection, Rejection>| match r {
            Ok(Rejection::Error { rcode, flags, .. }) => (rcode, flags[0] & FLAG1_OPCODE_MASK),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            rcode_of(notify_reply(&msg, |z| *z == name("example.org."))),
            (rcode::NOERROR, OPCODE_NOTIFY << 3)
        );
        assert_eq!(rcode_of(notify_reply(&msg, |_| false)), (rcode::NOTAUTH, OPCODE_NOTIFY << 3));
    }
}
