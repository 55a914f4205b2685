//! The `instadns` binary: the daemon ([`daemon`]) and the command-line tools
//! ([`commands`]), on top of the library's planes.

mod commands;
mod daemon;

use std::time::Duration;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use commands::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // A command's output piped into `head` ends quietly, as other Unix tools do,
        // instead of failing on a closed stdout. The daemon keeps Rust's default
        // (SIGPIPE ignored: a client closing a TCP connection is an error to handle).
        // SAFETY: setting a signal disposition before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("instadns: error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli.command));
    // Blocking work still running (a database call) must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("instadns: error: {e:#}");
            std::process::ExitCode::from(commands::exit_code(&e))
        }
    }
}
