//! Waiting for something to become true, with a deadline (never a bare sleep).

use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(10);

/// Polls `done` until it returns true; panics naming `what` after `timeout`. Returns how
/// long it took.
pub fn eventually(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done() {
            return started.elapsed();
        }
        assert!(started.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(POLL);
    }
}
