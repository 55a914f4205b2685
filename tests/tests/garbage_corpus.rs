//! The garbage corpus (`tests/garbage/`, made by `tests::garbage`), replayed through both
//! paths: every frame through the XDP program (BPF_PROG_TEST_RUN) and its UDP payload
//! through the handler, each against what `expected.txt` says. XDP passes a frame up
//! untouched or answers it with exactly userspace's response, counting the outcome the
//! manifest names; userspace answers with the manifest's RCODE (a response that parses,
//! fits, and echoes the ID and question) or sends nothing. Every failure is collected.

use std::collections::BTreeSet;

use dns_common::stats::Outcome;
use instadns::{
    engine::Transport,
    fastpath::{cookies::CookieSettings, rrl::RrlSettings},
};
use tests::{
    data::fixture_sql,
    dns::{QueryBuilder, response_rcode},
    fuzz::judge_response,
    garbage::{
        Case, FRAME_EXTENSION, MANIFEST, Userspace, Xdp, cases, corpus_dir, manifest, parse_manifest_line,
    },
    packet::{source_address, udp_payload},
    testrun::{FastPathRig, XDP_PASS, XDP_TX},
};

/// The issue asks for at least this many frames.
const AT_LEAST: usize = 200;

/// The corpus as the files hold it, in manifest order.
fn committed() -> Vec<Case> {
    let dir = corpus_dir();
    let text = std::fs::read_to_string(dir.join(MANIFEST)).expect("tests/garbage/expected.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (name, xdp, userspace) =
                parse_manifest_line(line).unwrap_or_else(|e| panic!("{MANIFEST}: {e}"));
            let path = dir.join(format!("{name}.{FRAME_EXTENSION}"));
            let frame = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Case { name, frame, xdp, userspace }
        })
        .collect()
}

/// The files are what the generator makes (so neither drifts from the other), every
/// frame file is in the manifest, names are unique and there are at least 200.
/// `INSTADNS_WRITE_GARBAGE=1` writes them instead.
#[test]
fn the_committed_corpus_is_what_the_generator_makes() {
    let made = cases();
    let dir = corpus_dir();
    let names: BTreeSet<&str> = made.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), made.len(), "case names are unique");
    assert!(made.len() >= AT_LEAST, "{} cases, at least {AT_LEAST} wanted", made.len());
    if std::env::var_os("INSTADNS_WRITE_GARBAGE").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tests/garbage");
        for c in &made {
            std::fs::write(dir.join(format!("{}.{FRAME_EXTENSION}", c.name)), &c.frame)
                .expect("a frame file");
        }
        std::fs::write(dir.join(MANIFEST), manifest(&made)).expect("the manifest");
    }
    let on_disk = std::fs::read_to_string(dir.join(MANIFEST)).expect("tests/garbage/expected.txt");
    assert!(
        on_disk == manifest(&made),
        "tests/garbage/expected.txt differs from what tests/src/garbage.rs makes: \
         rewrite it with INSTADNS_WRITE_GARBAGE=1 and review the diff"
    );
    let mut failures = Vec::new();
    for (file, made) in committed().iter().zip(&made) {
        if file.frame != made.frame {
            failures.push(format!("{}.{FRAME_EXTENSION} differs from what the generator makes", made.name));
        }
    }
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("tests/garbage")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f != MANIFEST)
        .collect();
    let listed: BTreeSet<String> = names.iter().map(|n| format!("{n}.{FRAME_EXTENSION}")).collect();
    for stray in files.difference(&listed) {
        failures.push(format!("{stray} is not in the manifest"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Why the XDP program's handling of `case` breaks the manifest, or None.
fn judge_xdp(rig: &FastPathRig, case: &Case) -> Option<String> {
    let outcome = match case.xdp {
        Xdp::Pass(o) | Xdp::Answer(o) => o,
    };
    let counted_before = rig.counter(outcome);
    let (action, out) = rig.run(&case.frame);
    let counted = rig.counter(outcome) - counted_before;
    let problem = match case.xdp {
        Xdp::Pass(_) if action != XDP_PASS => Some(format!("XDP action {action}, expected XDP_PASS")),
        Xdp::Pass(_) if out != case.frame => Some("XDP_PASS, but the frame was changed".into()),
        Xdp::Pass(_) => None,
        Xdp::Answer(_) if action != XDP_TX => Some(format!("XDP action {action}, expected XDP_TX")),
        Xdp::Answer(_) => judge_answer(rig, case, &out),
    };
    if problem.is_some() {
        return problem;
    }
    (counted != 1).then(|| format!("outcome {} counted {counted} times, expected once", outcome.name()))
}

/// Checks an XDP answer: addressed back, checksums verify, the message is userspace's.
fn judge_answer(rig: &FastPathRig, case: &Case, out: &[u8]) -> Option<String> {
    match rig.xdp_and_userspace(&case.frame, out) {
        Ok((from_xdp, from_userspace)) if from_xdp == from_userspace => None,
        Ok((from_xdp, from_userspace)) => {
            Some(format!("XDP and userspace differ:\n  xdp  {from_xdp:02x?}\n  user {from_userspace:02x?}"))
        }
        Err(why) => Some(why),
    }
}

/// Why the handler's handling of `case` breaks the manifest, or None.
fn judge_userspace(rig: &FastPathRig, case: &Case) -> Option<String> {
    if case.userspace == Userspace::Kernel {
        return None;
    }
    let (Some(payload), Some(client)) = (udp_payload(&case.frame), source_address(&case.frame)) else {
        return Some("the manifest expects a DNS answer, but the frame holds no UDP datagram".into());
    };
    let response = rig.userspace_from(payload, client);
    match (case.userspace, response) {
        (Userspace::Drops, None) => None,
        (Userspace::Drops, Some(r)) => {
            Some(format!("userspace answered (RCODE {}), expected silence", response_rcode(&r)))
        }
        (Userspace::Rcode(_), None) => Some("userspace sent nothing, expected an answer".into()),
        (Userspace::Rcode(expected), Some(r)) => judge_response(payload, &r, Transport::Udp).or_else(|| {
            let got = response_rcode(&r);
            (got != expected).then(|| format!("userspace answered RCODE {got}, expected {expected}"))
        }),
        (Userspace::Kernel, _) => None,
    }
}

#[test]
fn every_garbage_frame_is_passed_up_untouched_or_answered_as_userspace_does_and_gets_the_right_error() {
    let corpus = committed();
    assert!(corpus.len() >= AT_LEAST, "{} frames, at least {AT_LEAST} wanted", corpus.len());
    // Cookies on (their options are checked on both paths), RRL off: the corpus comes
    // from one client, as many errors in a row as there are cases.
    let cookies = CookieSettings { enabled: true, secret: *b"garbage-corpus!!", previous: None };
    let rig = FastPathRig::with_settings(4096, 256, &fixture_sql(), RrlSettings::off(), cookies);
    for (name, qtype) in tests::garbage::WARM {
        rig.userspace(&QueryBuilder::new(name, qtype).bytes()).expect("userspace answers a warm-up query");
    }
    let errors_before = rig.counter(Outcome::Error);
    let mut failures = Vec::new();
    let (mut answered, mut checked_in_userspace) = (0, 0);
    for case in &corpus {
        // XDP first: the maps as they are; then userspace, which may install an answer.
        if let Some(why) = judge_xdp(&rig, case) {
            failures.push(format!("{}: {why}", case.name));
        }
        if let Some(why) = judge_userspace(&rig, case) {
            failures.push(format!("{}: {why}", case.name));
        }
        answered += usize::from(matches!(case.xdp, Xdp::Answer(_)));
        checked_in_userspace += usize::from(case.userspace != Userspace::Kernel);
    }
    let errors = rig.counter(Outcome::Error) - errors_before;
    if errors != 0 {
        failures.push(format!("the corpus counted {errors} internal errors (outcome error)"));
    }
    eprintln!(
        "{} garbage frames: {answered} to be answered by XDP, the rest passed up; {checked_in_userspace} \
         replayed through the handler; {} failures",
        corpus.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}
