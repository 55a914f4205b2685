//! Differential fuzzing of the fast path against userspace (issue 18): a structure-aware
//! mutator of valid query frames (header flags and counts, lengths, label bytes and
//! case, QTYPE and QCLASS, EDNS fields and options, VLAN tags, IPv4 options, IPv6
//! extension headers, fragments, length fields, checksums, ports, MAC addresses,
//! trailers) feeds BPF_PROG_TEST_RUN and the handler. The contract, for every case:
//! - XDP_TX: the reply is addressed back to the sender, its IP and UDP checksums verify,
//!   and its DNS message equals userspace's response to the same UDP payload from the
//!   same source (byte for byte; a round-robin set may differ in order only);
//! - anything else: XDP_PASS with the frame untouched.
//!
//! `cargo xtask test` runs [`DEFAULT_CASES`]; `INSTADNS_FUZZ_CASES=1000000` (what
//! `cargo xtask fuzz differential` sets) runs the long campaign. Failures are collected
//! and reported with the case number, which replays it (`INSTADNS_FUZZ_FIRST=N`).

use hickory_proto::op::Message;
use tests::{
    data::fixture_sql,
    dns::QueryBuilder,
    fuzz::{Rng, campaign, mutate_frame, mutate_message, report, seed_message, seeds},
    packet::Frame,
    testrun::{FastPathRig, XDP_PASS, XDP_TX},
};

const DEFAULT_CASES: u64 = 100_000;
/// Mutations applied to one seed: 1 to this many.
const MAX_MUTATIONS: u64 = 3;

#[test]
fn xdp_answers_mutated_frames_as_userspace_does_or_passes_them_untouched() {
    let cases = campaign(DEFAULT_CASES);
    let rig = FastPathRig::with_sql(16_384, 1024, &fixture_sql());
    let seeds = seeds();
    // Every seed answered once by userspace first, so its answer is in the maps.
    for seed in &seeds {
        rig.userspace(&QueryBuilder::new(seed.name, seed.qtype).bytes()).expect("userspace answers");
    }
    let started = std::time::Instant::now();
    let (mut answered, mut passed, mut failures) = (0u64, 0u64, Vec::new());
    for case in cases.clone() {
        let mut rng = Rng::for_case(case);
        let seed = &seeds[rng.below(seeds.len() as u64) as usize];
        let mut message = seed_message(seed, case as u16);
        let mut frame = if seed.v6 { Frame::v6(Vec::new()) } else { Frame::v4(Vec::new()) };
        let mut flip_after_build = false;
        for _ in 0..1 + rng.below(MAX_MUTATIONS) {
            match rng.below(10) {
                0..=5 => mutate_message(&mut rng, &mut message),
                6..=8 => mutate_frame(&mut rng, &mut frame),
                _ => flip_after_build = true,
            }
        }
        frame.payload = message.clone();
        let mut bytes = frame.build();
        if flip_after_build {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        let (action, out) = rig.run(&bytes);
        let failure = match action {
            XDP_TX => {
                answered += 1;
                judge_answer(&rig, &bytes, &out)
            }
            XDP_PASS if out == bytes => {
                passed += 1;
                None
            }
            XDP_PASS => Some("passed, but the frame was changed".to_owned()),
            other => Some(format!("action {other}")),
        };
        if let Some(why) = failure {
            failures
                .push(format!("case {case} ({} {:?}): {why}\n  frame {bytes:02x?}", seed.name, seed.qtype));
        }
    }
    let cases = cases.end - cases.start;
    assert!(answered > cases / 20, "the mutations left too few answerable frames: {answered} of {cases}");
    let what = format!("{answered} answered by XDP, {passed} passed up");
    report(cases, started.elapsed(), &what, &failures);
}

/// Checks an XDP answer against userspace's; None when it holds.
fn judge_answer(rig: &FastPathRig, bytes: &[u8], out: &[u8]) -> Option<String> {
    let (from_xdp, from_userspace) = match rig.xdp_and_userspace(bytes, out) {
        Ok(both) => both,
        Err(why) => return Some(why),
    };
    if from_xdp == from_userspace {
        return None;
    }
    // Only a round-robin set may differ, and only in its order.
    let (Ok(x), Ok(u)) = (Message::from_vec(&from_xdp), Message::from_vec(&from_userspace)) else {
        return Some(format!("differ:\n  xdp  {from_xdp:02x?}\n  user {from_userspace:02x?}"));
    };
    let sorted = |m: &Message| {
        let mut v: Vec<String> = m.answers.iter().map(|r| r.to_string()).collect();
        v.sort();
        v
    };
    let rotated_set =
        x.queries.first().is_some_and(|q| q.name().to_ascii().eq_ignore_ascii_case("www.carol.example.org."));
    if rotated_set
        && from_xdp.len() == from_userspace.len()
        && from_xdp[..12] == from_userspace[..12]
        && sorted(&x) == sorted(&u)
        && x.authorities == u.authorities
    {
        return None;
    }
    Some(format!("differ:\n  xdp  {from_xdp:02x?}\n  user {from_userspace:02x?}"))
}
