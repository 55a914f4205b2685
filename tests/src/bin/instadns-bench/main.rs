//! `cargo xtask bench [SUITE] [--quick]`: benchmarks that report ratios against baselines
//! measured in the same run (the machine is shared and noisy; absolute numbers drift).
//!
//! - `compare` (the default): instadns against Knot DNS, NSD and PowerDNS; writes
//!   BENCHMARKS.md and its charts.
//! - `fastpath`: the XDP program's cost per answer kind against a floor program, at scale
//!   and under real traffic (`testrun`, `scale` and `live` run one part each).
//! - `management`: writes per second through the HTTP API and RFC 2136 against the
//!   store's own rate; writes `benchmarks/management.md`.
//! - `transfer`: AXFR time of the bench zone from instadns against Knot DNS and NSD;
//!   writes `benchmarks/transfer.md`.

mod compare;
mod cpu;
mod fastpath;
mod management;
mod peers;
mod platform;
mod report;
mod traffic;
mod transfer;
mod util;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let servers = servers_arg(&args);
    let suite = args
        .iter()
        .enumerate()
        .find(|(i, a)| !(a.starts_with("--") || *i > 0 && args[i - 1] == "--servers"))
        .map(|(_, a)| a.as_str())
        .unwrap_or("compare");
    match suite {
        "compare" => {
            let out_dir = std::env::var_os("INSTADNS_BENCH_OUT").map(Into::into).unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace")
            });
            let servers = match servers.map(|list| peers::ServerKind::parse_list(list)) {
                None => peers::ServerKind::ALL.to_vec(),
                Some(Ok(list)) => list,
                Some(Err(e)) => {
                    eprintln!("bench: --servers: {e:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            let mut command = String::from("cargo xtask bench");
            if quick {
                command.push_str(" --quick");
            }
            if let Some(list) = servers_arg(&args) {
                command.push_str(&format!(" --servers {list}"));
            }
            let options = compare::Options::new(quick, servers, out_dir, command);
            if let Err(e) = compare::compare(&options) {
                eprintln!("bench: error: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        }
        "fastpath" => {
            fastpath::fastpath(if quick { 2_000 } else { 20_000 });
            fastpath::scale(if quick { &[1_000, 100_000] } else { &[1_000, 10_000_000] });
            fastpath::live(if quick { 3 } else { 10 });
        }
        "management" => {
            let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benchmarks");
            management::management(if quick { 100 } else { 1_000 }, &out);
        }
        "transfer" => {
            let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benchmarks");
            if let Err(e) = transfer::transfer(if quick { 10_000 } else { 100_000 }, &out) {
                eprintln!("bench: error: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        }
        "testrun" => fastpath::fastpath(if quick { 2_000 } else { 20_000 }),
        "scale" => fastpath::scale(if quick { &[1_000, 100_000] } else { &[1_000, 10_000_000] }),
        "live" => fastpath::live(if quick { 3 } else { 10 }),
        _ => {
            eprintln!(
                "usage: instadns-bench [compare|fastpath|management|transfer|testrun|scale|live] [--quick] [--servers LIST]"
            );
            return std::process::ExitCode::from(2);
        }
    }
    std::process::ExitCode::SUCCESS
}

fn servers_arg(args: &[String]) -> Option<&String> {
    args.iter().position(|a| a == "--servers").and_then(|i| args.get(i + 1))
}
