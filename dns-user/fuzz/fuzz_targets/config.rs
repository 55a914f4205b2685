//! The configuration file parser (`instadns check-config`, the daemon at start and on
//! SIGHUP): any text is a configuration or an error naming the line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The configuration belongs to the binary (src/daemon), not to the library: compile the
// same file here.
#[path = "../../src/daemon/config.rs"]
#[allow(dead_code)]
mod config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = config::Config::parse(text, "fuzz.toml") {
        let _ = config.ttl.policy();
        let _ = config.fleet.node_name();
    }
});
