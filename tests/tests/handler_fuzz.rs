//! Fuzzing the query path (issue 18): mutated messages (see `tests::fuzz`) and random
//! bytes through the sans-IO handler over UDP and TCP, against the fixture catalog. For
//! every input the handler does not panic, and a response
//! - parses (hickory-proto) and is a response (QR) with the query's ID;
//! - echoes the query's question byte for byte when it has one;
//! - over UDP fits the client's limit (512 without EDNS, else its payload size capped
//!   at ours), over TCP 65,535 bytes.
//!
//! `cargo xtask test` runs [`DEFAULT_CASES`]; `cargo xtask fuzz handler` a long campaign.

use hickory_proto::op::Message;
use instadns::engine::Transport;
use tests::{
    data::fixture_sql,
    fuzz::{Rng, campaign, mutate_message, report, seed_message, seeds},
    netns::CLIENT_V4,
    testrun::{FastPathRig, OUR_PAYLOAD},
};

const DEFAULT_CASES: u64 = 50_000;

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

fn judge(query: &[u8], response: &[u8], transport: Transport) -> Option<String> {
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

#[test]
fn the_handler_answers_every_mutated_message_with_a_bounded_well_formed_response() {
    let rig = FastPathRig::with_sql(16_384, 1024, &fixture_sql());
    let seeds = seeds();
    let cases = campaign(DEFAULT_CASES);
    let started = std::time::Instant::now();
    let (mut responses, mut failures) = (0u64, Vec::new());
    for case in cases.clone() {
        let mut rng = Rng::for_case(case);
        let message = if rng.below(8) == 0 {
            // Plain garbage, of any length up to a TCP message's.
            let len = rng.pick(&[0usize, 1, 11, 12, 13, 17, 64, 512, 4096, 65535]);
            (0..len).map(|_| rng.byte()).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len() as u64) as usize];
            let mut message = seed_message(seed, case as u16);
            for _ in 0..1 + rng.below(4) {
                mutate_message(&mut rng, &mut message);
            }
            message
        };
        let transport = if rng.below(4) == 0 { Transport::Tcp } else { Transport::Udp };
        let response = rig.rt.block_on(rig.handler.handle(&message, transport, CLIENT_V4.into()));
        if let Some(response) = response {
            responses += 1;
            if let Some(why) = judge(&message, &response, transport) {
                failures.push(format!("case {case} ({transport:?}): {why}\n  query {message:02x?}"));
            }
        }
    }
    let cases = cases.end - cases.start;
    assert!(responses > cases / 4, "too few messages were answered: {responses} of {cases}");
    report(cases, started.elapsed(), &format!("{responses} answered"), &failures);
}
