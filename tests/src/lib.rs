//! The shared harness of instadns's tests: a packet builder, DNS message builders and a
//! hickory-proto oracle, a BPF_PROG_TEST_RUN rig, and network namespaces joined by veth
//! with the real server in them. Everything runs for real; tests that need root fail
//! (never skip) when they cannot.

pub mod data;
pub mod db;
pub mod dig;
pub mod dns;
pub mod fuzz;
pub mod garbage;
pub mod load;
pub mod netns;
pub mod packet;
pub mod postgres;
pub mod proxy;
pub mod server;
pub mod testrun;
pub mod tls;
pub mod unbound;
pub mod wait;

/// openapi-spec-validator (PyPI), installed by `cargo xtask setup` into its own venv
/// (xtask's `OPENAPI_VENV`).
pub const OPENAPI_VALIDATOR: &str = "/opt/instadns-tools/openapi-venv/bin/openapi-spec-validator";

/// Panics unless running as root: the privileged tests must fail, not skip.
pub fn require_root() {
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "this test attaches XDP programs and creates network namespaces: run `cargo xtask test` as root"
        );
    }
}
