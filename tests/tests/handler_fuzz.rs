//! Fuzzing the query path (issue 18): mutated messages (see `tests::fuzz`) and random
//! bytes through the sans-IO handler over UDP and TCP, against the fixture catalog. For
//! every input the handler does not panic, and a response
//! - parses (hickory-proto) and is a response (QR) with the query's ID;
//! - echoes the query's question byte for byte when it has one;
//! - over UDP fits the client's limit (512 without EDNS, else its payload size capped
//!   at ours), over TCP 65,535 bytes.
//!
//! `cargo xtask test` runs [`DEFAULT_CASES`]; `cargo xtask fuzz handler` a long campaign.

use instadns::engine::Transport;
use tests::{
    data::fixture_sql,
    fuzz::{Rng, campaign, judge_response, mutate_message, report, seed_message, seeds},
    netns::CLIENT_V4,
    testrun::FastPathRig,
};

const DEFAULT_CASES: u64 = 50_000;

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
            if let Some(why) = judge_response(&message, &response, transport) {
                failures.push(format!("case {case} ({transport:?}): {why}\n  query {message:02x?}"));
            }
        }
    }
    let cases = cases.end - cases.start;
    assert!(responses > cases / 4, "too few messages were answered: {responses} of {cases}");
    report(cases, started.elapsed(), &format!("{responses} answered"), &failures);
}
