//! Response assembly. Every response is laid out as the XDP program lays it out: the
//! header, the question exactly as received (letter case included), the answer sections
//! prepared by [`super::answer`], then our OPT record if the query had one. The header
//! and OPT rules are the shared functions of `dns_common::wire`, so the kernel and
//! userspace agree.

use dns_common::{
    cookie::{COOKIE_DATA_LEN, EDNS_OPTION_COOKIE},
    limits::DNS_HEADER_LEN,
    wire::{FLAG1_TC, opt_record, response_flags},
};

use super::{
    answer::EncodedAnswer,
    query::{Query, Rejection},
};

/// What a response's OPT record carries back besides our payload size: the Client
/// Subnet option with this scope (if the query had one), then our COOKIE option.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo {
    pub subnet_scope: u8,
    /// Client cookie and server cookie (RFC 7873 section 5.2, RFC 9018).
    pub cookie: Option<[u8; COOKIE_DATA_LEN]>,
}

/// Assembles the response to `query`: header, the question as received, the answer's
/// sections and, if the query had EDNS, our OPT record.
///
/// `limit` is the largest message the transport allows (the UDP limit, or None for
/// TCP). A response that does not fit first drops optional additional records (from the
/// end, no TC); if the rest still does not fit it is sent truncated (TC set, no records
/// but OPT), so the client retries over TCP (RFC 2181 section 9, RFC 7766). `rotation`
/// picks the first record of a round-robin run.
pub fn response(
    query: &Query<'_>,
    answer: &EncodedAnswer,
    our_payload: u16,
    limit: Option<usize>,
    rotation: usize,
    echo: &Echo,
) -> Vec<u8> {
    assemble(query, answer, our_payload, limit, rotation, echo, false)
}

/// The response to `query` sent truncated whatever its size, as a rate limit's slip
/// (`dns_common::rrl`): the answer's RCODE and AA, TC set, no records but OPT, exactly
/// what the XDP program sends.
pub fn truncated_response(
    query: &Query<'_>,
    answer: &EncodedAnswer,
    our_payload: u16,
    echo: &Echo,
) -> Vec<u8> {
    assemble(query, answer, our_payload, None, 0, echo, true)
}

fn assemble(
    query: &Query<'_>,
    answer: &EncodedAnswer,
    our_payload: u16,
    limit: Option<usize>,
    rotation: usize,
    echo: &Echo,
    truncate: bool,
) -> Vec<u8> {
    let mut options = query
        .edns
        .and_then(|e| e.client_subnet)
        .map(|s| s.response_option(echo.subnet_scope))
        .unwrap_or_default();
    if let (Some(cookie), Some(_)) = (echo.cookie, query.edns) {
        push_cookie_option(&mut options, &cookie);
    }
    let options = options.as_slice();
    let opt_len = if query.edns.is_some() { 11 + options.len() } else { 0 };
    let fixed_len = DNS_HEADER_LEN + query.question.len() + opt_len;
    // How much of the data is sent, and how many optional records that leaves out.
    let (data_len, dropped) = match limit {
        _ if truncate => (0, usize::MAX),
        Some(limit) if fixed_len + answer.data.len() > limit => {
            let room = limit.saturating_sub(fixed_len);
            let kept = (0..answer.optional.len()).rev().find(|k| answer.optional[*k] as usize <= room);
            match kept {
                Some(k) => (answer.optional[k] as usize, answer.optional.len() - k),
                None => (0, usize::MAX),
            }
        }
        _ => (answer.data.len(), 0),
    };
    let truncated = dropped == usize::MAX;
    let mut out = Vec::with_capacity(fixed_len + data_len);
    let mut flags = response_flags(query.flags, answer.authoritative, (answer.rcode & 0xf) as u8);
    let counts = if truncated {
        flags[0] |= FLAG1_TC;
        [0, 0, 0]
    } else {
        let [an, ns, ar] = answer.counts;
        [an, ns, ar - dropped as u16]
    };
    push_header(&mut out, query.id, flags, 1, counts, query.edns.is_some());
    out.extend_from_slice(query.question);
    if !truncated {
        let data = &answer.data[..data_len];
        match answer.rotate {
            Some(span) => span.apply(data, rotation, &mut out),
            None => out.extend_from_slice(data),
        }
    }
    if let Some(edns) = query.edns {
        let mut opt = opt_record(our_payload, (answer.rcode >> 4) as u8, edns.dnssec_ok);
        opt[9..11].copy_from_slice(&(options.len() as u16).to_be_bytes());
        out.extend_from_slice(&opt);
        out.extend_from_slice(options);
    }
    out
}

/// The COOKIE option (RFC 7873 section 4) holding `cookie` (client and server cookie).
fn push_cookie_option(options: &mut Vec<u8>, cookie: &[u8; COOKIE_DATA_LEN]) {
    options.extend_from_slice(&EDNS_OPTION_COOKIE.to_be_bytes());
    options.extend_from_slice(&(COOKIE_DATA_LEN as u16).to_be_bytes());
    options.extend_from_slice(cookie);
}

/// The response to a rejected query: the error RCODE, the question if it parsed, our
/// OPT record if the query had one (with BADVERS in its extended RCODE bits), holding
/// `cookie` if given (RFC 7873 section 5.2: errors carry the server cookie too).
pub fn error_response(
    msg: &[u8],
    rejection: &Rejection,
    our_payload: u16,
    cookie: Option<&[u8; COOKIE_DATA_LEN]>,
) -> Option<Vec<u8>> {
    let Rejection::Error { id, flags, rcode, question_len, edns } = *rejection else {
        return None;
    };
    let mut out = Vec::with_capacity(DNS_HEADER_LEN + question_len + 11);
    let qdcount = u16::from(question_len > 0);
    // AA is not set on errors about the message itself.
    push_header(
        &mut out,
        id,
        response_flags(flags, false, (rcode & 0xf) as u8),
        qdcount,
        [0, 0, 0],
        edns.is_some(),
    );
    out.extend_from_slice(&msg[DNS_HEADER_LEN..DNS_HEADER_LEN + question_len]);
    if let Some(edns) = edns {
        let mut opt = opt_record(our_payload, (rcode >> 4) as u8, edns.dnssec_ok);
        let mut options = Vec::new();
        if let Some(cookie) = cookie {
            push_cookie_option(&mut options, cookie);
        }
        opt[9..11].copy_from_slice(&(options.len() as u16).to_be_bytes());
        out.extend_from_slice(&opt);
        out.extend_from_slice(&options);
    }
    Some(out)
}

fn push_header(out: &mut Vec<u8>, id: u16, flags: [u8; 2], qdcount: u16, counts: [u16; 3], opt: bool) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags);
    out.extend_from_slice(&qdcount.to_be_bytes());
    out.extend_from_slice(&counts[0].to_be_bytes());
    out.extend_from_slice(&counts[1].to_be_bytes());
    out.extend_from_slice(&(counts[2] + u16::from(opt)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use dns_common::wire::{EDNS_OPTION_ECS, FLAG1_OPCODE_MASK, opt_record, rcode};

    use super::*;
    use crate::protocol::query::{parse_query, test_messages::*};

    /// RFC 7871 section 7.1.1 and 7.2.1: a well-formed option is parsed and echoed with
    /// the scope; a malformed one is FORMERR.
    #[test]
    fn rfc7871_client_subnet_is_parsed_echoed_with_scope_and_malformed_is_formerr() {
        let name = b"\x01a\x00";
        let ecs = [0, 1, 24, 0, 198, 18, 1];
        let msg = query_bytes(name, 1, [0, 0], &opt_with(EDNS_OPTION_ECS, &ecs), 1);
        let q = parse_query(&msg).unwrap();
        let subnet = q.edns.unwrap().client_subnet.unwrap();
        assert_eq!((subnet.addr(), subnet.source_len), ("198.18.1.0".parse().unwrap(), 24));
        let answer = EncodedAnswer::empty(rcode::NOERROR, true);
        let response = response(&q, &answer, 1232, None, 0, &Echo { subnet_scope: 24, cookie: None });
        let echoed = &response[response.len() - 11..];
        assert_eq!(
            echoed,
            &[0, 8, 0, 7, 0, 1, 24, 24, 198, 18, 1],
            "FAMILY, SOURCE, ADDRESS kept; SCOPE set"
        );
        assert_eq!(&response[response.len() - 13..response.len() - 11], &[0, 11], "OPT RDLEN");
        for bad in [
            &[0, 1, 24, 0, 198, 18, 1, 5][..], // an address byte too many
            &[0, 1, 24, 0, 198, 18][..],       // one too few
            &[0, 1, 23, 0, 198, 18, 1][..],    // a bit set past the prefix
            &[0, 1, 24, 8, 198, 18, 1][..],    // SCOPE in a query
            &[0, 3, 8, 0, 1][..],              // unknown family
            &[0, 1, 33, 0, 1, 2, 3, 4, 5][..], // prefix longer than IPv4
        ] {
            let msg = query_bytes(name, 1, [0, 0], &opt_with(EDNS_OPTION_ECS, bad), 1);
            assert!(
                matches!(parse_query(&msg), Err(Rejection::Error { rcode: rcode::FORMERR, .. })),
                "{bad:?} is FORMERR"
            );
        }
    }

    #[test]
    fn parses_edns_and_rejects_bad_versions_with_badvers() {
        let opt = [0, 0, 41, 0x10, 0, 0, 1, 0x80, 0, 0, 0];
        let m = query_bytes(NAME, 1, [0, 0], &opt, 1);
        match parse_query(&m) {
            Err(Rejection::Error { rcode, edns: Some(e), .. }) => {
                assert_eq!(rcode, rcode::BADVERS);
                assert!(e.dnssec_ok);
                let r = error_response(&m, &parse_query(&m).unwrap_err(), 1232, None).unwrap();
                // RCODE low bits 0, extended RCODE 1 in the OPT TTL, version 0.
                assert_eq!(r[3] & 0xf, 0);
                assert_eq!(&r[r.len() - 11..], &opt_record(1232, 1, true));
            }
            other => panic!("expected BADVERS, got {other:?}"),
        }
    }

    #[test]
    fn unknown_opcodes_get_notimp_with_the_question() {
        let m = query_bytes(NAME, 1, [0x2 << 3, 0], &[], 0);
        let rejection = parse_query(&m).unwrap_err();
        let r = error_response(&m, &rejection, 1232, None).unwrap();
        assert_eq!(r[3] & 0xf, rcode::NOTIMP as u8);
        assert_eq!(r[2] & FLAG1_OPCODE_MASK, 0x2 << 3, "opcode echoed");
        assert_eq!(&r[12..], &m[12..]);
        // Every header flag set (AA, TC, RD; RA, Z, AD, CD): only the opcode, RD and QR,
        // no AA, and the RCODE.
        let m = query_bytes(NAME, 1, [(0x2 << 3) | 0x07, 0xf0], &[], 0);
        let r = error_response(&m, &parse_query(&m).unwrap_err(), 1232, None).unwrap();
        assert_eq!(r[2..4], [0x80 | (0x2 << 3) | 0x01, rcode::NOTIMP as u8]);
    }
}
