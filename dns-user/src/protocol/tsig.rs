//! TSIG (RFC 8945): the record at the end of a signed message, checking a request's MAC
//! and time, and signing responses. Sans-IO: keys come from the caller.

use ring::hmac;

use super::name::read_name;

pub const TYPE_TSIG: u16 = 250;
const CLASS_ANY: u16 = 255;
/// The time window we sign with (RFC 8945 section 10 recommends 300 s).
pub const FUDGE: u16 = 300;

/// TSIG error codes (RFC 8945 section 3).
pub mod error {
    pub const NOERROR: u16 = 0;
    pub const BADSIG: u16 = 16;
    pub const BADKEY: u16 = 17;
    pub const BADTIME: u16 = 18;
}

/// A TSIG record as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigRecord<'a> {
    /// Where the record starts in the message: what precedes it is signed.
    pub start: usize,
    /// The key's name, lower-case, uncompressed wire format.
    pub key_name: Vec<u8>,
    /// The algorithm's name, lower-case, uncompressed wire format.
    pub algorithm: Vec<u8>,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: &'a [u8],
    pub original_id: u16,
    pub error: u16,
    pub other: &'a [u8],
}

/// A key as the protocol needs it.
pub struct TsigKey {
    /// Lower-case, uncompressed wire format.
    pub name: Vec<u8>,
    pub algorithm: Vec<u8>,
    pub hmac: hmac::Key,
    /// The full MAC length.
    pub mac_len: usize,
}

/// Why a signed request is not accepted (RFC 8945 section 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigFailure {
    /// A MAC longer than the algorithm's, or truncated below what RFC 8945 section
    /// 5.2.2.1 allows: FORMERR.
    Malformed,
    /// Unknown key or algorithm: NOTAUTH, BADKEY, unsigned.
    BadKey,
    /// The MAC does not verify: NOTAUTH, BADSIG, unsigned.
    BadSig,
    /// Outside the time window: NOTAUTH, BADTIME, signed, with our time.
    BadTime,
}

impl TsigFailure {
    pub fn error_code(self) -> u16 {
        match self {
            Self::Malformed => error::NOERROR,
            Self::BadKey => error::BADKEY,
            Self::BadSig => error::BADSIG,
            Self::BadTime => error::BADTIME,
        }
    }
}

/// Parses the TSIG record whose owner starts at `start` (the rdata is
/// `msg[rdata_start..end]`). `None` if malformed.
pub fn parse_record(msg: &[u8], start: usize, rdata_start: usize, end: usize) -> Option<TsigRecord<'_>> {
    let (key_name, _) = read_name(msg, start)?;
    let (algorithm, mut pos) = read_name(msg, rdata_start)?;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let bytes = msg.get(*pos..*pos + n).filter(|_| *pos + n <= end)?;
        *pos += n;
        Some(bytes)
    };
    let u16_at = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let time = take(&mut pos, 6)?;
    let time_signed = time.iter().fold(0u64, |t, b| (t << 8) | *b as u64);
    let fudge = u16_at(take(&mut pos, 2)?);
    let mac_len = u16_at(take(&mut pos, 2)?) as usize;
    let mac = take(&mut pos, mac_len)?;
    let original_id = u16_at(take(&mut pos, 2)?);
    let error = u16_at(take(&mut pos, 2)?);
    let other_len = u16_at(take(&mut pos, 2)?) as usize;
    let other = take(&mut pos, other_len)?;
    if pos != end {
        return None;
    }
    Some(TsigRecord { start, key_name, algorithm, time_signed, fudge, mac, original_id, error, other })
}

/// Checks a signed request: the key, the MAC, then the time (RFC 8945 section 5.2).
pub fn verify(msg: &[u8], tsig: &TsigRecord<'_>, key: Option<&TsigKey>, now: u64) -> Result<(), TsigFailure> {
    verify_after(msg, tsig, key, None, now)
}

/// Checks a signed response to our request whose MAC was `request_mac` (RFC 8945
/// section 5.3: the response's MAC covers the request's first). A response signed with
/// another key, or unsigned, is the caller's to refuse.
pub fn verify_response(
    msg: &[u8],
    tsig: &TsigRecord<'_>,
    key: &TsigKey,
    request_mac: &[u8],
    now: u64,
) -> Result<(), TsigFailure> {
    if tsig.key_name != key.name {
        return Err(TsigFailure::BadKey);
    }
    verify_after(msg, tsig, Some(key), Some(request_mac), now)
}

/// The TSIG record of a message, if its last additional record is one (a response's:
/// any sections before it).
pub fn find_record(msg: &[u8]) -> Option<TsigRecord<'_>> {
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    if msg.len() < 12 {
        return None;
    }
    let (qdcount, records) = (count(4), count(6) + count(8) + count(10));
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = super::record::parse_question(msg, pos).map(|(name_len, _, _)| pos + name_len + 4)?;
    }
    for index in 0..records {
        let record = super::record::parse_record(msg, pos)?;
        if index + 1 == records {
            let rdata_start = record.end - record.rdata.len();
            return (record.rtype == TYPE_TSIG)
                .then(|| parse_record(msg, pos, rdata_start, record.end))
                .flatten();
        }
        pos = record.end;
    }
    None
}

fn verify_after(
    msg: &[u8],
    tsig: &TsigRecord<'_>,
    key: Option<&TsigKey>,
    request_mac: Option<&[u8]>,
    now: u64,
) -> Result<(), TsigFailure> {
    let key = key.filter(|k| k.algorithm == tsig.algorithm).ok_or(TsigFailure::BadKey)?;
    if tsig.mac.len() > key.mac_len || tsig.mac.len() < (key.mac_len / 2).max(10) {
        return Err(TsigFailure::Malformed);
    }
    let mut ctx = hmac::Context::with_key(&key.hmac);
    if let Some(request_mac) = request_mac {
        ctx.update(&(request_mac.len() as u16).to_be_bytes());
        ctx.update(request_mac);
    }
    // The message as it was before signing: its original ID, one record fewer.
    let mut header = [0u8; 12];
    header.copy_from_slice(&msg[..12]);
    header[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
    header[10..12].copy_from_slice(&arcount.to_be_bytes());
    ctx.update(&header);
    ctx.update(&msg[12..tsig.start]);
    ctx.update(&variables(
        &tsig.key_name,
        &tsig.algorithm,
        tsig.time_signed,
        tsig.fudge,
        tsig.error,
        tsig.other,
    ));
    let expected = ctx.sign();
    if !constant_time_eq(&expected.as_ref()[..tsig.mac.len()], tsig.mac) {
        return Err(TsigFailure::BadSig);
    }
    if now.abs_diff(tsig.time_signed) > tsig.fudge as u64 {
        return Err(TsigFailure::BadTime);
    }
    Ok(())
}

/// Signs `response` (a complete message) to a request whose MAC was `request_mac`:
/// appends the TSIG record (RFC 8945 section 5.3). `other` is empty but for BADTIME,
/// where it holds our time; `time_signed` is now, or the request's for BADTIME.
/// Returns the MAC, which the next message of a multi-message response signs over.
pub fn sign(
    response: &mut Vec<u8>,
    key: &TsigKey,
    request_mac: &[u8],
    time_signed: u64,
    tsig_error: u16,
    other: &[u8],
) -> Vec<u8> {
    sign_after(response, key, Some(request_mac), time_signed, tsig_error, other)
}

/// Signs a request of ours (a NOTIFY): nothing precedes the message in the MAC.
pub fn sign_request(request: &mut Vec<u8>, key: &TsigKey, time_signed: u64) -> Vec<u8> {
    sign_after(request, key, None, time_signed, error::NOERROR, &[])
}

fn sign_after(
    message: &mut Vec<u8>,
    key: &TsigKey,
    request_mac: Option<&[u8]>,
    time_signed: u64,
    tsig_error: u16,
    other: &[u8],
) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(&key.hmac);
    if let Some(request_mac) = request_mac {
        ctx.update(&(request_mac.len() as u16).to_be_bytes());
        ctx.update(request_mac);
    }
    ctx.update(message);
    ctx.update(&variables(&key.name, &key.algorithm, time_signed, FUDGE, tsig_error, other));
    append_signature(message, key, ctx.sign().as_ref(), time_signed, tsig_error, other)
}

/// Appends the TSIG record carrying `mac` to `message`; returns the MAC.
fn append_signature(
    message: &mut Vec<u8>,
    key: &TsigKey,
    mac: &[u8],
    time_signed: u64,
    tsig_error: u16,
    other: &[u8],
) -> Vec<u8> {
    let id = u16::from_be_bytes([message[0], message[1]]);
    let record = record(&key.name, &key.algorithm, time_signed, FUDGE, mac, id, tsig_error, other);
    append(message, &record);
    mac.to_vec()
}

/// Signs a later message of a multi-message response (a zone transfer, RFC 8945
/// section 5.3.1): the MAC covers the previous message's MAC, this message and the
/// timers only. Returns this message's MAC.
pub fn sign_continuation(
    response: &mut Vec<u8>,
    key: &TsigKey,
    prior_mac: &[u8],
    time_signed: u64,
) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(&key.hmac);
    ctx.update(&(prior_mac.len() as u16).to_be_bytes());
    ctx.update(prior_mac);
    ctx.update(response);
    ctx.update(&time_bytes(time_signed));
    ctx.update(&FUDGE.to_be_bytes());
    append_signature(response, key, ctx.sign().as_ref(), time_signed, error::NOERROR, &[])
}

/// Appends an unsigned TSIG record carrying `tsig_error` for the request's key (BADKEY
/// and BADSIG responses must not be signed: RFC 8945 section 5.3.2).
pub fn append_unsigned_error(response: &mut Vec<u8>, request: &TsigRecord<'_>, tsig_error: u16) {
    let id = u16::from_be_bytes([response[0], response[1]]);
    let record = record(
        &request.key_name,
        &request.algorithm,
        request.time_signed,
        request.fudge,
        &[],
        id,
        tsig_error,
        &[],
    );
    append(response, &record);
}

/// The size of the TSIG record a response signed with `key` gets (with `other_len` bytes
/// of other data): what must be left free of the size limit.
pub fn signed_record_len(key: &TsigKey, other_len: usize) -> usize {
    key.name.len() + 10 + key.algorithm.len() + 16 + key.mac_len + other_len
}

/// A 48-bit TSIG time.
pub fn time_bytes(time: u64) -> [u8; 6] {
    let b = time.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn append(response: &mut Vec<u8>, record: &[u8]) {
    let arcount = u16::from_be_bytes([response[10], response[11]]).saturating_add(1);
    response[10..12].copy_from_slice(&arcount.to_be_bytes());
    response.extend_from_slice(record);
}

/// The TSIG variables that are signed (RFC 8945 section 4.3.3).
fn variables(key_name: &[u8], algorithm: &[u8], time: u64, fudge: u16, error: u16, other: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(key_name.len() + algorithm.len() + 18 + other.len());
    v.extend_from_slice(key_name);
    v.extend_from_slice(&CLASS_ANY.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(algorithm);
    v.extend_from_slice(&time_bytes(time));
    v.extend_from_slice(&fudge.to_be_bytes());
    v.extend_from_slice(&error.to_be_bytes());
    v.extend_from_slice(&(other.len() as u16).to_be_bytes());
    v.extend_from_slice(other);
    v
}

#[allow(clippy::too_many_arguments)]
fn record(
    key_name: &[u8],
    algorithm: &[u8],
    time: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(algorithm.len() + 16 + mac.len() + other.len());
    rdata.extend_from_slice(algorithm);
    rdata.extend_from_slice(&time_bytes(time));
    rdata.extend_from_slice(&fudge.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac);
    rdata.extend_from_slice(&original_id.to_be_bytes());
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&(other.len() as u16).to_be_bytes());
    rdata.extend_from_slice(other);
    let mut rr = Vec::with_capacity(key_name.len() + 10 + rdata.len());
    rr.extend_from_slice(key_name);
    rr.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    rr.extend_from_slice(&CLASS_ANY.to_be_bytes());
    rr.extend_from_slice(&0u32.to_be_bytes());
    rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    rr.extend_from_slice(&rdata);
    rr
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> TsigKey {
        TsigKey {
            name: b"\x04test\x00".to_vec(),
            algorithm: b"\x0bhmac-sha256\x00".to_vec(),
            hmac: hmac::Key::new(hmac::HMAC_SHA256, secret),
            mac_len: 32,
        }
    }

    /// A query for example.org A, signed with `key` at `time` the way a client does.
    fn signed_query(key: &TsigKey, time: u64) -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
        sign_request(&mut q, key, time);
        q
    }

    fn parse(msg: &[u8]) -> TsigRecord<'_> {
        let start = 12 + 17;
        let name_len = 6;
        let rdlen = u16::from_be_bytes([msg[start + name_len + 8], msg[start + name_len + 9]]) as usize;
        let rdata_start = start + name_len + 10;
        parse_record(msg, start, rdata_start, rdata_start + rdlen).unwrap()
    }

    #[test]
    fn verifies_good_requests_and_names_each_failure() {
        let k = key(b"secret");
        let q = signed_query(&k, 1_000_000);
        let tsig = parse(&q);
        assert_eq!((tsig.time_signed, tsig.fudge, tsig.mac.len()), (1_000_000, FUDGE, 32));
        assert_eq!(verify(&q, &tsig, Some(&k), 1_000_100), Ok(()));
        assert_eq!(verify(&q, &tsig, None, 1_000_100), Err(TsigFailure::BadKey));
        assert_eq!(verify(&q, &tsig, Some(&key(b"other")), 1_000_100), Err(TsigFailure::BadSig));
        assert_eq!(verify(&q, &tsig, Some(&k), 1_000_301), Err(TsigFailure::BadTime));
        let mut sha1 = key(b"secret");
        sha1.algorithm = b"\x09hmac-sha1\x00".to_vec();
        assert_eq!(verify(&q, &tsig, Some(&sha1), 1_000_000), Err(TsigFailure::BadKey), "algorithm mismatch");
        // A truncated MAC of 16 bytes (half of 32) is accepted, of 8 is malformed.
        let mut truncated = tsig.clone();
        truncated.mac = &tsig.mac[..16];
        assert_eq!(verify(&q, &truncated, Some(&k), 1_000_000), Ok(()));
        truncated.mac = &tsig.mac[..8];
        assert_eq!(verify(&q, &truncated, Some(&k), 1_000_000), Err(TsigFailure::Malformed));
    }

    #[test]
    fn responses_to_our_requests_are_verified_over_the_request_mac() {
        let k = key(b"secret");
        let request = signed_query(&k, 1_000_000);
        let request_mac = find_record(&request).expect("the request's TSIG").mac.to_vec();
        let mut response = request[..12 + 17].to_vec();
        response[2] |= 0x80;
        response[10..12].copy_from_slice(&[0, 0]);
        let mut signed = response.clone();
        sign(&mut signed, &k, &request_mac, 1_000_010, error::NOERROR, &[]);
        let tsig = find_record(&signed).expect("the response's TSIG");
        assert_eq!(verify_response(&signed, &tsig, &k, &request_mac, 1_000_020), Ok(()));
        assert_eq!(
            verify_response(&signed, &tsig, &k, &[0; 32], 1_000_020),
            Err(TsigFailure::BadSig),
            "another request"
        );
        assert_eq!(
            verify_response(&signed, &tsig, &key(b"other"), &request_mac, 1_000_020),
            Err(TsigFailure::BadSig)
        );
        let mut renamed = key(b"secret");
        renamed.name = b"\x05other\x00".to_vec();
        assert_eq!(
            verify_response(&signed, &tsig, &renamed, &request_mac, 1_000_020),
            Err(TsigFailure::BadKey)
        );
        assert!(find_record(&response).is_none(), "an unsigned response has none");
    }

    #[test]
    fn signed_responses_carry_a_verifiable_record() {
        let k = key(b"secret");
        let mut response = vec![0xab, 0xcd, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        sign(&mut response, &k, &[1, 2, 3], 42, error::BADTIME, &time_bytes(99));
        assert_eq!(u16::from_be_bytes([response[10], response[11]]), 1);
        assert_eq!(response.len(), 12 + signed_record_len(&k, 6));
        let rdata_start = 12 + k.name.len() + 10;
        let tsig = parse_record(&response, 12, rdata_start, response.len()).unwrap();
        assert_eq!((tsig.time_signed, tsig.error, tsig.other), (42, error::BADTIME, &time_bytes(99)[..]));
        assert_eq!(tsig.original_id, 0xabcd);
    }
}
