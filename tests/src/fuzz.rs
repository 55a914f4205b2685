//! The structure-aware mutator of the fuzzing campaigns (`differential_fuzz`,
//! `handler_fuzz`): seeds are valid queries of every answer kind of the fixture data,
//! mutations break them the way the internet does. Deterministic: a case number
//! replays its case.

use hickory_proto::{op::Message, rr::RecordType};
use instadns::engine::Transport;

use crate::{
    dns::{EdnsQuery, QueryBuilder},
    packet::{Frame, Ips},
    testrun::OUR_PAYLOAD,
};

/// When the fuzz corpora's signed seeds were signed: the `query` target verifies at
/// this time.
pub const FUZZ_SIGNED_AT: u64 = 1_800_000_000;

/// The key the fuzz corpora's seeds are signed with (hmac-sha256 `fuzz.`, secret
/// "fuzz"), which the `query` target verifies with, so verification reaches the MAC.
pub fn fuzz_key() -> instadns::protocol::tsig::TsigKey {
    use instadns::protocol::{name_to_wire, parse_absolute};
    instadns::protocol::tsig::TsigKey {
        name: name_to_wire(&parse_absolute("fuzz.").expect("a name")),
        algorithm: name_to_wire(&parse_absolute("hmac-sha256.").expect("a name")),
        hmac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"fuzz"),
        mac_len: 32,
    }
}

/// Cases a campaign runs: `INSTADNS_FUZZ_CASES`, else `default`; from case
/// `INSTADNS_FUZZ_FIRST` (0).
pub fn campaign(default: u64) -> std::ops::Range<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let first = var("INSTADNS_FUZZ_FIRST").unwrap_or(0);
    first..first + var("INSTADNS_FUZZ_CASES").unwrap_or(default)
}

/// A seed query, built for a case.
pub fn seed_message(seed: &Seed, id: u16) -> Vec<u8> {
    let mut query = QueryBuilder::new(seed.name, seed.qtype).id(id);
    query.edns = seed.edns.clone();
    query.bytes()
}

/// xorshift64*: deterministic, so a case number replays its case.
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed` as it is (0 counts as 1).
    pub fn seeded(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn for_case(case: u64) -> Self {
        Self(case.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xd1b5_4a32_d192_ed03 | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Bytes that break names and parsers: terminators, dots, pointers, high bytes, case.
const INTERESTING_BYTES: [u8; 14] =
    [0x00, 0x01, 0x2e, 0x3f, 0x40, 0x41, 0x5a, 0x5c, 0x61, 0x7f, 0x80, 0xc0, 0xc1, 0xff];
const INTERESTING_U16: [u16; 12] = [0, 1, 2, 3, 5, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xfffe, 0xffff, 4096];

pub struct Seed {
    pub name: &'static str,
    pub qtype: RecordType,
    pub edns: Option<EdnsQuery>,
    pub v6: bool,
}

/// The seeds: names of every answer kind of [`crate::data::fixture_sql`], types, EDNS
/// or not, IPv4 and IPv6.
pub fn seeds() -> Vec<Seed> {
    let names = [
        "ws-123456.apps.example.com",
        "blog.alice.example.org",
        "shop.bob.example.org",
        "123456.example.org",
        "www.carol.example.org",
        "_acme-challenge.blog.alice.example.org",
        "x.wild.example.org",
        "www.child.example.org",
        "mail-user.example.org",
        "xk3jf9qzabcdefgh.example.org",
        "example.org",
        "example.com",
    ];
    let types =
        [RecordType::A, RecordType::AAAA, RecordType::TXT, RecordType::MX, RecordType::SOA, RecordType::NS];
    let edns = [
        None,
        Some(EdnsQuery::default()),
        Some(EdnsQuery { dnssec_ok: true, payload: 1232, ..Default::default() }),
    ];
    let mut out = Vec::new();
    for name in names {
        for qtype in types {
            for e in &edns {
                for v6 in [false, true] {
                    out.push(Seed { name, qtype, edns: e.clone(), v6 });
                }
            }
        }
    }
    out
}

/// Where the question ends in a query we built (the name, then type and class).
fn question_end(query: &[u8]) -> usize {
    let mut pos = 12;
    while pos < query.len() && query[pos] != 0 {
        pos += 1 + query[pos] as usize;
    }
    (pos + 5).min(query.len())
}

/// Mutates the DNS message in place.
pub fn mutate_message(rng: &mut Rng, q: &mut Vec<u8>) {
    if q.len() < 12 {
        q.push(rng.byte()); // a header cut short by an earlier mutation: grow it
        return;
    }
    let end = question_end(q);
    match rng.below(10) {
        0 => {
            let bit = rng.below(16);
            q[2 + (bit / 8) as usize] ^= 1 << (bit % 8);
        }
        1 => {
            let at = 4 + 2 * rng.below(4) as usize;
            let v = rng.pick(&INTERESTING_U16);
            q[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        2 => {
            let len = rng.below(q.len() as u64) as usize;
            q.truncate(len);
        }
        3 => {
            for _ in 0..1 + rng.below(16) {
                q.push(rng.byte());
            }
        }
        4 if end >= 17 => {
            let at = 12 + rng.below((end - 4 - 12) as u64) as usize;
            q[at] = if rng.below(2) == 0 { rng.pick(&INTERESTING_BYTES) } else { rng.byte() };
        }
        5 if end >= 16 => {
            let at = end - 4 + 2 * rng.below(2) as usize;
            let v = rng.pick(&[1u16, 2, 5, 6, 15, 16, 28, 41, 251, 252, 255, 3, 4, 254, 0]);
            q[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        6 => {
            // Letter case anywhere in the name: never changes the answer.
            let name_end = end.saturating_sub(4).max(12);
            for byte in &mut q[12..name_end] {
                if byte.is_ascii_alphabetic() && rng.below(2) == 0 {
                    *byte ^= 0x20;
                }
            }
        }
        7 => {
            let id = rng.next_u64() as u16;
            q[..2].copy_from_slice(&id.to_be_bytes());
        }
        8 if q.len() >= end + 11 => {
            // The OPT record, when there is one: its class (payload), TTL (extended RCODE,
            // version, flags) or RDLENGTH.
            let opt = end;
            let at = opt + rng.pick(&[3usize, 5, 6, 7, 8, 9]);
            q[at] = if rng.below(2) == 0 { rng.pick(&INTERESTING_BYTES) } else { rng.byte() };
        }
        _ => {
            // An EDNS option appended to the OPT record (fixing its RDLENGTH): client
            // subnet (valid or not), cookie, padding, unknown.
            if q.len() >= end + 11 {
                let code = rng.pick(&[8u16, 10, 12, 65001, 3, 0]);
                let len = rng.pick(&[0usize, 1, 4, 7, 8, 16, 24, 40, 41]);
                let mut data: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
                if code == 8 && len >= 4 && rng.below(2) == 0 {
                    // A well-formed ECS: family 1, source prefix 0..32, scope 0.
                    data[..4].copy_from_slice(&[0, 1, (rng.below(33)) as u8, 0]);
                    data.truncate(4 + (data[2] as usize).div_ceil(8));
                }
                let rdlen_at = end + 9;
                let rdlen = u16::from_be_bytes([q[rdlen_at], q[rdlen_at + 1]]) as usize;
                q.extend_from_slice(&code.to_be_bytes());
                q.extend_from_slice(&(data.len() as u16).to_be_bytes());
                q.extend_from_slice(&data);
                let new = (rdlen + 4 + data.len()) as u16;
                q[rdlen_at..rdlen_at + 2].copy_from_slice(&new.to_be_bytes());
            }
        }
    }
}

/// Mutates the frame around the message (checksums are computed by `build`).
pub fn mutate_frame(rng: &mut Rng, f: &mut Frame) {
    match rng.below(11) {
        0 => f.vlans = (0..1 + rng.below(2)).map(|_| rng.pick(&[1u16, 100, 4095, 0])).collect(),
        1 => {
            if matches!(f.ips, Ips::V4(..)) {
                f.ip_options = match rng.below(3) {
                    0 => vec![1, 1, 1, 0],
                    1 => vec![0x94, 4, 0, 0],
                    _ => (0..8).map(|_| rng.byte()).collect(),
                };
            } else {
                f.ipv6_next_header = Some(rng.pick(&[0u8, 43, 44, 60, 59]));
            }
        }
        2 => f.ip_frag = rng.pick(&[0u16, 0x2000, 0x0001, 0x4001, 0x8000, 0x1fff]),
        3 => f.ip_len_delta = rng.below(17) as i32 - 8,
        4 => f.udp_len_delta = rng.below(17) as i32 - 8,
        5 => f.no_udp_checksum = true,
        6 => f.trailer = (0..1 + rng.below(24)).map(|_| rng.byte()).collect(),
        7 => f.sport = rng.pick(&[0u16, 7, 19, 53, 123, 1900, 5353, 65535, 1024]),
        8 => {
            f.dst_mac = rng.pick(&[[0xff; 6], [0x01, 0, 0x5e, 0, 0, 0xfb], [0x02, 0, 0, 0, 0, 0x09]]);
        }
        9 => f.ttl = rng.pick(&[0u8, 1, 255]),
        _ => f.dport = rng.pick(&[5353u16, 54, 0]),
    }
}

/// Prints a campaign's summary (`what` says what its cases came to) and fails with the
/// first failures, if any.
pub fn report(cases: u64, elapsed: std::time::Duration, what: &str, failures: &[String]) {
    eprintln!(
        "{cases} cases in {elapsed:.1?} ({:.0}/s): {what}, {} failures",
        cases as f64 / elapsed.as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases broke the contract:\n{}",
        failures.len(),
        failures.iter().take(SHOWN_FAILURES).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// Failures [`report`] shows in full; the rest are counted.
const SHOWN_FAILURES: usize = 20;

/// The UDP size a query allows: its EDNS payload (at least 512, at most ours), else 512.
fn udp_limit(query: &[u8]) -> usize {
    match Message::from_vec(query).ok().and_then(|m| m.edns.map(|e| e.max_payload())) {
        Some(payload) => (payload as usize).clamp(512, OUR_PAYLOAD as usize),
        None => 512,
    }
}

/// The question of a message as bytes (name as sent, type, class), if it has exactly one
/// that parses as uncompressed labels.
fn question_bytes(message: &[u8]) -> Option<&[u8]> {
    if message.len() < 12 || u16::from_be_bytes([message[4], message[5]]) != 1 {
        return None;
    }
    let mut pos = 12;
    loop {
        let len = *message.get(pos)? as usize;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        pos += 1 + len;
    }
    message.get(12..pos + 5)
}

/// Why `response` breaks the query path's contract for `query` (`handler_fuzz` and the
/// `handler` libFuzzer target), or None: it fits the transport's limit, is a response
/// with the query's ID, parses, and echoes the question.
pub fn judge_response(query: &[u8], response: &[u8], transport: Transport) -> Option<String> {
    let limit = match transport {
        Transport::Udp => udp_limit(query),
        Transport::Tcp => u16::MAX as usize,
    };
    if response.len() > limit {
        return Some(format!("{} bytes over {transport:?} where {limit} are allowed", response.len()));
    }
    if response.len() < 12 || response[..2] != query[..2] || response[2] & 0x80 == 0 {
        return Some(format!("not a response to this query: {response:02x?}"));
    }
    if let Err(e) = Message::from_vec(response) {
        return Some(format!("does not parse ({e}): {response:02x?}"));
    }
    // A response with a question carries the query's, as sent (FORMERR may leave it out).
    if let (Some(asked), Some(echoed)) = (question_bytes(query), question_bytes(response))
        && asked != echoed
    {
        return Some(format!("question not echoed: asked {asked:02x?}, got {echoed:02x?}"));
    }
    None
}
