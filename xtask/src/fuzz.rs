//! `cargo xtask fuzz`: the mutation campaigns of the test suite (`differential_fuzz`,
//! `handler_fuzz`, run long) and the coverage-guided libFuzzer targets of
//! `dns-user/fuzz` (cargo-fuzz, nightly, AddressSanitizer). `cargo xtask test` replays
//! every libFuzzer corpus and runs a bounded number of new inputs per target.

use std::{path::Path, process::Command};

use anyhow::Result;

use crate::run;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FuzzTarget {
    All,
    /// Campaign: mutated query frames through the XDP program and the handler, which
    /// must agree.
    Differential,
    /// Campaign: mutated messages through the query path.
    HandlerMutations,
    /// libFuzzer: bytes through the sans-IO handler against the fixture catalog.
    Handler,
    /// libFuzzer: the query parser, error responses, TSIG verification.
    Query,
    /// libFuzzer: RFC 2136 UPDATE and NOTIFY parsing and their replies.
    Update,
    /// libFuzzer: the wire name decoder and the name parsers.
    Name,
    /// libFuzzer: the slot codec on slots as pinned maps may hold them.
    Slot,
    /// libFuzzer: zone file import into SQLite.
    ZoneFile,
    /// libFuzzer: the configuration file parser.
    Config,
}

/// The libFuzzer targets (`dns-user/fuzz/fuzz_targets`) and the executions
/// `cargo xtask test` gives each (its corpus first: a few seconds each here).
const LIBFUZZER_TARGETS: [(FuzzTarget, &str, u64); 7] = [
    (FuzzTarget::Handler, "handler", 10_000),
    (FuzzTarget::Query, "query", 50_000),
    (FuzzTarget::Update, "update", 50_000),
    (FuzzTarget::Name, "name", 50_000),
    (FuzzTarget::Slot, "slot", 50_000),
    (FuzzTarget::ZoneFile, "zone_file", 5_000),
    (FuzzTarget::Config, "config", 10_000),
];

/// How long a libFuzzer target runs.
#[derive(Clone, Copy)]
pub enum Budget {
    Seconds(u64),
    Runs(u64),
}

/// The long campaigns: `cases` per campaign target from case `first`, and `seconds` per
/// libFuzzer target.
pub fn fuzz(root: &Path, target: FuzzTarget, cases: u64, first: u64, seconds: u64) -> Result<()> {
    for (which, test) in
        [(FuzzTarget::Differential, "differential_fuzz"), (FuzzTarget::HandlerMutations, "handler_fuzz")]
    {
        if target == FuzzTarget::All || target == which {
            run(Command::new("cargo")
                .env("INSTADNS_FUZZ_CASES", cases.to_string())
                .env("INSTADNS_FUZZ_FIRST", first.to_string())
                .args(["test", "--release", "--package", "tests", "--test", test, "--", "--nocapture"]))?;
        }
    }
    for (which, name, _) in LIBFUZZER_TARGETS {
        if target == FuzzTarget::All || target == which {
            libfuzzer(root, name, Budget::Seconds(seconds))?;
        }
    }
    Ok(())
}

/// What `cargo xtask test` runs: every libFuzzer target over its corpus, then a bounded
/// number of new inputs.
pub fn replay_corpora(root: &Path) -> Result<()> {
    for (_, name, runs) in LIBFUZZER_TARGETS {
        libfuzzer(root, name, Budget::Runs(runs))?;
    }
    Ok(())
}

/// Runs one libFuzzer target from its committed corpus. New inputs go to
/// `target/fuzz-corpus/TARGET` (the committed seeds stay what `fuzz_corpus` checks);
/// a crash fails the run and leaves its input in `dns-user/fuzz/artifacts/TARGET`.
fn libfuzzer(root: &Path, name: &str, budget: Budget) -> Result<()> {
    let found = root.join("target/fuzz-corpus").join(name);
    std::fs::create_dir_all(&found)?;
    let seeds = root.join("dns-user/fuzz/corpus").join(name);
    let limit = match budget {
        Budget::Seconds(s) => format!("-max_total_time={s}"),
        Budget::Runs(n) => format!("-runs={n}"),
    };
    eprintln!("fuzz: {name} ({limit})");
    run(Command::new("cargo")
        .current_dir(root.join("dns-user"))
        .args(["+nightly", "fuzz", "run", "--release", name])
        .arg(&found)
        .arg(&seeds)
        .args(["--", &limit, "-print_final_stats=1"]))
}
