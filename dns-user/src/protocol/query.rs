//! Parsing a query message: the header, one question, an optional EDNS(0) OPT record
//! (with the Client Subnet and COOKIE options), an optional TSIG record (last), and the RCODE RFC
//! 1035, RFC 6891, RFC 8906 and RFC 8945 call for when anything else arrives.

use dns_common::{
    cookie::{CLIENT_COOKIE_LEN, EDNS_OPTION_COOKIE, MAX_COOKIE_DATA},
    limits::DNS_HEADER_LEN,
    wire::{
        EDNS_FLAG_DO, EDNS_OPTION_ECS, FLAG1_OPCODE_MASK, FLAG1_QR, FLAG1_RD, TYPE_IXFR, TYPE_OPT, TYPE_SOA,
        rcode,
    },
};

use super::{
    name::WireName,
    record::{parse_question, parse_record, skip_name},
    tsig::{self, TYPE_TSIG, TsigRecord},
};

/// The EDNS(0) parameters of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub client_subnet: Option<ClientSubnet>,
    pub cookie: Option<CookieOption>,
}

/// A query's DNS COOKIE option (RFC 7873 section 4): the client cookie and, once the
/// client has one, the server cookie it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieOption {
    pub client: [u8; CLIENT_COOKIE_LEN],
    server: [u8; MAX_COOKIE_DATA - CLIENT_COOKIE_LEN],
    server_len: u8,
}

impl CookieOption {
    /// The server cookie sent (empty if none).
    pub fn server(&self) -> &[u8] {
        &self.server[..self.server_len as usize]
    }

    /// Parses the option's data; `None` if malformed (RFC 7873 section 5.2.2: FORMERR):
    /// a client cookie alone is 8 bytes, with a server cookie 16 to 40.
    fn parse(data: &[u8]) -> Option<Self> {
        let ok = data.len() == CLIENT_COOKIE_LEN
            || (CLIENT_COOKIE_LEN + 8..=MAX_COOKIE_DATA).contains(&data.len());
        if !ok {
            return None;
        }
        let mut client = [0u8; CLIENT_COOKIE_LEN];
        client.copy_from_slice(&data[..CLIENT_COOKIE_LEN]);
        let rest = &data[CLIENT_COOKIE_LEN..];
        let mut server = [0u8; MAX_COOKIE_DATA - CLIENT_COOKIE_LEN];
        server[..rest.len()].copy_from_slice(rest);
        Some(Self { client, server, server_len: rest.len() as u8 })
    }
}

/// An EDNS Client Subnet option of a query (RFC 7871 section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSubnet {
    /// 1 (IPv4) or 2 (IPv6).
    pub family: u16,
    pub source_len: u8,
    /// The address bytes as received (`ceil(source_len / 8)` of them).
    address: [u8; 16],
    address_len: u8,
}

impl ClientSubnet {
    /// The network's address, zero-padded.
    pub fn addr(&self) -> std::net::IpAddr {
        if self.family == 1 {
            let mut a = [0u8; 4];
            a.copy_from_slice(&self.address[..4]);
            std::net::IpAddr::from(a)
        } else {
            std::net::IpAddr::from(self.address)
        }
    }

    /// The option as a response carries it: the query's FAMILY, SOURCE PREFIX-LENGTH and
    /// ADDRESS with `scope` (RFC 7871 section 7.2.1).
    pub fn response_option(&self, scope: u8) -> Vec<u8> {
        let len = 4 + self.address_len as usize;
        let mut out = Vec::with_capacity(4 + len);
        out.extend_from_slice(&EDNS_OPTION_ECS.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.family.to_be_bytes());
        out.push(self.source_len);
        out.push(scope);
        out.extend_from_slice(&self.address[..self.address_len as usize]);
        out
    }

    /// Parses the option's data; `None` if malformed (RFC 7871 section 7.1.1 asks for
    /// FORMERR): an unknown family, a prefix longer than the family, a SCOPE other than
    /// 0, too few or too many address bytes, or address bits set past the prefix.
    fn parse(data: &[u8]) -> Option<Self> {
        let family = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
        let (source_len, scope) = (*data.get(2)?, *data.get(3)?);
        let max = match family {
            1 => 32,
            2 => 128,
            _ => return None,
        };
        let bytes = &data[4..];
        if source_len > max || scope != 0 || bytes.len() != (source_len as usize).div_ceil(8) {
            return None;
        }
        if source_len % 8 != 0 && bytes.last()? & (0xffu8 >> (source_len % 8)) != 0 {
            return None;
        }
        let mut address = [0u8; 16];
        address[..bytes.len()].copy_from_slice(bytes);
        Some(Self { family, source_len, address, address_len: bytes.len() as u8 })
    }
}

/// A parsed standard query.
#[derive(Debug)]
pub struct Query<'a> {
    pub id: u16,
    pub flags: [u8; 2],
    /// QNAME, QTYPE and QCLASS exactly as received.
    pub question: &'a [u8],
    pub name: WireName,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    /// The TSIG record, if the query is signed.
    pub tsig: Option<TsigRecord<'a>>,
    /// An IXFR's serial: the SOA the client has, from the authority section (RFC 1995
    /// section 3).
    pub ixfr_serial: Option<u32>,
}

impl Query<'_> {
    pub fn opcode(&self) -> u8 {
        (self.flags[0] & FLAG1_OPCODE_MASK) >> 3
    }
}

/// Why a message is not answered normally.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not answered at all: a response, or too short to carry a header.
    Drop,
    /// Answered with an error RCODE (with the question if it parsed, and an OPT
    /// record if the query had a valid one).
    Error { id: u16, flags: [u8; 2], rcode: u16, question_len: usize, edns: Option<Edns> },
}

/// The QTYPE of a standard query with one question, from the header and the question
/// alone (nothing else is parsed): to route a message before it is parsed in full.
pub fn peek_qtype(msg: &[u8]) -> Option<u16> {
    let header = msg.get(..DNS_HEADER_LEN)?;
    let standard_query = header[2] & (FLAG1_QR | FLAG1_OPCODE_MASK) == 0;
    let one_question = u16::from_be_bytes([header[4], header[5]]) == 1;
    if !(standard_query && one_question) {
        return None;
    }
    parse_question(msg, DNS_HEADER_LEN).map(|(_, qtype, _)| qtype)
}

/// Parses a query message. Only standard queries (opcode QUERY) with one question
/// parse successfully; everything else gets the RCODE RFC 1035, RFC 6891 and RFC 8906
/// call for.
pub fn parse_query(msg: &[u8]) -> Result<Query<'_>, Rejection> {
    if msg.len() < DNS_HEADER_LEN {
        return Err(Rejection::Drop);
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = [msg[2], msg[3]];
    if flags[0] & FLAG1_QR != 0 {
        return Err(Rejection::Drop);
    }
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
    let error = |rcode, question_len, edns| Rejection::Error { id, flags, rcode, question_len, edns };

    // The question, when there is exactly one and it parses, is echoed in errors too.
    let question = if qdcount == 1 { parse_question(msg, DNS_HEADER_LEN) } else { None };
    let question_len = question.map_or(0, |(name_len, _, _)| name_len + 4);

    if (flags[0] & FLAG1_OPCODE_MASK) != 0 {
        // Of an unknown opcode's header only the opcode and RD mean anything to us: the
        // response carries those and nothing else of the query's flags (RFC 8906 8.1.4).
        let kept = [flags[0] & (FLAG1_OPCODE_MASK | FLAG1_RD), 0];
        return Err(Rejection::Error { id, flags: kept, rcode: rcode::NOTIMP, question_len, edns: None });
    }
    let Some((name_len, qtype, qclass)) = question else {
        return Err(error(rcode::FORMERR, 0, None));
    };
    // A query carries no answer or authority records; an IXFR has the client's SOA in
    // authority (RFC 1995 section 3).
    let is_ixfr = qtype == TYPE_IXFR;
    if ancount != 0 || nscount != u16::from(is_ixfr) {
        return Err(error(rcode::FORMERR, question_len, None));
    }
    let mut pos = DNS_HEADER_LEN + question_len;
    let mut ixfr_serial = None;
    if is_ixfr {
        let serial = parse_record(msg, pos)
            .filter(|r| r.rtype == TYPE_SOA)
            .and_then(|r| Some((soa_serial(msg, r.end - r.rdata.len(), r.end)?, r.end)));
        let Some((serial, end)) = serial else {
            return Err(error(rcode::FORMERR, question_len, None));
        };
        ixfr_serial = Some(serial);
        pos = end;
    }
    let mut edns = None;
    let mut signature = None;
    for index in 0..arcount {
        let Some(record) = parse_record(msg, pos) else {
            return Err(error(rcode::FORMERR, question_len, None));
        };
        if record.rtype == TYPE_TSIG {
            // The last record, class ANY, TTL 0 (RFC 8945 sections 4.2 and 5.1).
            let rdata_start = record.end - record.rdata.len();
            signature = (index + 1 == arcount && record.class == 255 && record.ttl == 0)
                .then(|| tsig::parse_record(msg, pos, rdata_start, record.end))
                .flatten();
            if signature.is_none() {
                return Err(error(rcode::FORMERR, question_len, edns));
            }
        }
        if record.rtype == TYPE_OPT {
            // One OPT, with the root owner name (RFC 6891 section 6.1.1).
            if edns.is_some() || !record.owner_is_root || !options_well_formed(record.rdata) {
                return Err(error(rcode::FORMERR, question_len, None));
            }
            let mut e = Edns {
                payload: record.class,
                version: (record.ttl >> 16) as u8,
                dnssec_ok: (record.ttl as u16) & EDNS_FLAG_DO != 0,
                client_subnet: None,
                cookie: None,
            };
            for (code, data) in options(record.rdata) {
                if code == EDNS_OPTION_COOKIE {
                    // Malformed, or two of them: FORMERR (RFC 7873 section 5.2.2).
                    match (e.cookie, CookieOption::parse(data)) {
                        (None, Some(cookie)) => e.cookie = Some(cookie),
                        _ => {
                            e.cookie = None;
                            return Err(error(rcode::FORMERR, question_len, Some(e)));
                        }
                    }
                }
                if code == EDNS_OPTION_ECS {
                    match (e.client_subnet, ClientSubnet::parse(data)) {
                        (None, Some(subnet)) => e.client_subnet = Some(subnet),
                        _ => {
                            e.client_subnet = None;
                            return Err(error(rcode::FORMERR, question_len, Some(e)));
                        }
                    }
                }
            }
            edns = Some(e);
        }
        // Other additional records (SIG(0)) are not used: ignored.
        pos = record.end;
    }
    if pos != msg.len() {
        return Err(error(rcode::FORMERR, question_len, edns));
    }
    if let Some(e) = edns
        && e.version != 0
    {
        return Err(error(rcode::BADVERS, question_len, edns));
    }
    // Records only a message carries (RFC 6891 6.1.1, RFC 8945 4.2) are never asked
    // for: FORMERR, as BIND answers them.
    if qtype == TYPE_OPT || qtype == TYPE_TSIG {
        return Err(error(rcode::FORMERR, question_len, edns));
    }
    let question = &msg[DNS_HEADER_LEN..DNS_HEADER_LEN + question_len];
    Ok(Query {
        id,
        flags,
        question,
        name: WireName::lowercase(&question[..name_len]),
        qtype,
        qclass,
        edns,
        tsig: signature,
        ixfr_serial,
    })
}

/// The serial of a SOA record's rdata at `msg[start..end]`: after the two names.
fn soa_serial(msg: &[u8], start: usize, end: usize) -> Option<u32> {
    let after_names = skip_name(msg, skip_name(msg, start)?)?;
    let serial = msg.get(after_names..after_names + 4).filter(|_| after_names + 20 == end)?;
    Some(u32::from_be_bytes([serial[0], serial[1], serial[2], serial[3]]))
}

/// A COOKIE option's data parsed, for tests elsewhere.
#[cfg(test)]
pub(crate) fn test_cookie(data: &[u8]) -> Option<CookieOption> {
    CookieOption::parse(data)
}

/// The (code, data) of well-formed EDNS options.
fn options(mut rdata: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let code = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
        let len = u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]) as usize;
        let data = rdata.get(4..4 + len)?;
        rdata = &rdata[4 + len..];
        Some((code, data))
    })
}

/// EDNS options must exactly fill the OPT RDATA (RFC 6891 section 6.1.2).
fn options_well_formed(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let Some(len) = rdata.get(2..4).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize) else {
            return false;
        };
        let Some(rest) = rdata.get(4 + len..) else {
            return false;
        };
        rdata = rest;
    }
    true
}

#[cfg(test)]
pub(crate) mod test_messages {
    use dns_common::wire::opt_record;

    pub fn query_bytes(name: &[u8], qtype: u16, flags: [u8; 2], extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, flags[0], flags[1], 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(extra);
        m
    }

    /// An OPT record carrying one option.
    pub fn opt_with(code: u16, data: &[u8]) -> Vec<u8> {
        let mut opt = opt_record(1232, 0, false).to_vec();
        opt[9..11].copy_from_slice(&((4 + data.len()) as u16).to_be_bytes());
        opt.extend_from_slice(&code.to_be_bytes());
        opt.extend_from_slice(&(data.len() as u16).to_be_bytes());
        opt.extend_from_slice(data);
        opt
    }

    pub const NAME: &[u8] = b"\x03WwW\x07example\x03com\x00";
}

#[cfg(test)]
mod tests {
    use super::{test_messages::*, *};

    #[test]
    fn parses_a_plain_query_and_lowercases_the_key() {
        let m = query_bytes(NAME, 1, [1, 0], &[], 0);
        let q = parse_query(&m).unwrap();
        assert_eq!(q.name.as_bytes(), b"\x03www\x07example\x03com\x00");
        assert_eq!(q.question, &m[12..]);
        assert_eq!((q.qtype, q.qclass, q.edns), (1, 1, None));
    }

    #[test]
    fn malformed_queries_get_formerr_and_responses_are_dropped() {
        let formerr =
            |m: &[u8]| matches!(parse_query(m), Err(Rejection::Error { rcode: rcode::FORMERR, .. }));
        assert!(formerr(&query_bytes(b"\xc0\x0c", 1, [0, 0], &[], 0)), "pointer in question");
        assert!(formerr(&query_bytes(b"\x03www", 1, [0, 0], &[], 0)), "unterminated name");
        assert!(formerr(&query_bytes(NAME, 1, [0, 0], &[0xff], 0)), "trailing garbage");
        let two_opts = [[0u8, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]; 2].concat();
        assert!(formerr(&query_bytes(NAME, 1, [0, 0], &two_opts, 2)), "two OPT records");
        let bad_option = [0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 9];
        assert!(formerr(&query_bytes(NAME, 1, [0, 0], &bad_option, 1)), "option overruns OPT");
        assert_eq!(parse_query(&query_bytes(NAME, 1, [0x80, 0], &[], 0)).unwrap_err(), Rejection::Drop);
        assert_eq!(parse_query(&[0; 11]).unwrap_err(), Rejection::Drop);
    }

    /// RFC 1995 section 3: an IXFR carries the client's SOA in authority, nothing else.
    #[test]
    fn rfc1995_an_ixfr_carries_the_clients_soa_and_anything_else_is_formerr() {
        let record = |rtype: u16, rdata: &[u8]| {
            let mut r = vec![0];
            r.extend_from_slice(&rtype.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(rdata);
            r
        };
        // Root MNAME and RNAME, serial 7, then refresh, retry, expire, minimum.
        let soa_rdata = [&[0u8, 0][..], &7u32.to_be_bytes(), &[0; 16]].concat();
        let ixfr = |authority: &[u8], nscount: u16| {
            let mut m = query_bytes(NAME, TYPE_IXFR, [0, 0], authority, 0);
            m[8..10].copy_from_slice(&nscount.to_be_bytes());
            m
        };
        let soa = record(TYPE_SOA, &soa_rdata);
        let good = ixfr(&soa, 1);
        assert_eq!(parse_query(&good).unwrap().ixfr_serial, Some(7));
        assert_eq!(peek_qtype(&good), Some(TYPE_IXFR));
        let formerr =
            |m: &[u8]| matches!(parse_query(m), Err(Rejection::Error { rcode: rcode::FORMERR, .. }));
        assert!(formerr(&ixfr(&[], 0)), "no SOA");
        assert!(formerr(&ixfr(&record(1, &[192, 0, 2, 1]), 1)), "an A record instead");
        assert!(formerr(&ixfr(&record(TYPE_SOA, &soa_rdata[..20]), 1)), "a short SOA");
        assert!(formerr(&ixfr(&[soa.clone(), soa.clone()].concat(), 2)), "two records");
        assert!(formerr(&ixfr(&soa[..soa.len() - 1], 1)), "truncated");
        // A plain query has no authority section.
        let mut with_authority = query_bytes(NAME, 1, [0, 0], &soa, 0);
        with_authority[8..10].copy_from_slice(&1u16.to_be_bytes());
        assert!(formerr(&with_authority), "authority in a query that is not IXFR");
        // The peek reads standard queries only.
        assert_eq!(peek_qtype(&query_bytes(NAME, TYPE_IXFR, [0x80, 0], &[], 0)), None, "a response");
        assert_eq!(peek_qtype(&query_bytes(NAME, TYPE_IXFR, [0x28, 0], &[], 0)), None, "an UPDATE");
        assert_eq!(peek_qtype(&good[..11]), None, "a runt");
    }
}
