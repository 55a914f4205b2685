//! The serving daemon's circuit breaker in front of PostgreSQL: once the database failed
//! to answer (unreachable, or silent past the statement deadline), statements fail at
//! once as unavailable for a moment (a miss then gets its stale answer, RFC 8767, or
//! SERVFAIL); then one statement at a time probes it, and the first answered closes the
//! breaker. Without it, every miss of a stalled database holds a UDP worker for the
//! whole deadline and the queue behind it grows: the pile-up deadlines are there to
//! prevent.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// How long statements stay away from a database that failed to answer, between probes.
pub const BACKOFF: Duration = Duration::from_secs(1);

pub struct Breaker {
    /// Milliseconds since `epoch` until which statements stay away; 0: closed.
    open_until_ms: AtomicU64,
    /// A probe is under way.
    probing: AtomicBool,
    epoch: Instant,
    /// Statements failed at once because the breaker was open.
    pub refused: AtomicU64,
    /// Times it opened (the database stopped answering).
    pub opened: AtomicU64,
}

/// Whether a statement may go to the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Yes: the database answered last time.
    Ask,
    /// Yes, as the one probe of an open breaker.
    Probe,
    /// No: it fails as unavailable now.
    StayAway,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            epoch: Instant::now(),
            refused: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }
}

impl Breaker {
    fn now_ms(&self) -> u64 {
        // At least 1, so that 0 keeps meaning "closed".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    pub fn verdict(&self) -> Verdict {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Verdict::Ask;
        }
        if self.now_ms() >= until
            && self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            return Verdict::Probe;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Verdict::StayAway
    }

    /// What asking the database (as `verdict` allowed) came to: `answered` unless it was
    /// unreachable or silent.
    pub fn record(&self, verdict: Verdict, answered: bool) {
        if answered {
            self.open_until_ms.store(0, Ordering::Release);
        } else {
            let until = self.now_ms() + BACKOFF.as_millis() as u64;
            if self.open_until_ms.swap(until, Ordering::AcqRel) == 0 {
                self.opened.fetch_add(1, Ordering::Relaxed);
            }
        }
        if verdict == Verdict::Probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod breaker_tests {
    use super::*;

    #[test]
    fn a_failure_keeps_statements_away_then_one_probe_at_a_time_closes_it() {
        let b = Breaker::default();
        assert_eq!(b.verdict(), Verdict::Ask);
        b.record(Verdict::Ask, false);
        assert!(b.is_open());
        assert_eq!(b.verdict(), Verdict::StayAway, "within the backoff");
        std::thread::sleep(BACKOFF + Duration::from_millis(20));
        assert_eq!(b.verdict(), Verdict::Probe);
        assert_eq!(b.verdict(), Verdict::StayAway, "one probe at a time");
        b.record(Verdict::Probe, false);
        assert_eq!(b.verdict(), Verdict::StayAway, "a failed probe opens it again");
        std::thread::sleep(BACKOFF + Duration::from_millis(20));
        assert_eq!(b.verdict(), Verdict::Probe);
        b.record(Verdict::Probe, true);
        assert_eq!(b.verdict(), Verdict::Ask, "an answered probe closes it");
        assert_eq!(b.opened.load(Ordering::Relaxed), 1);
        assert_eq!(b.refused.load(Ordering::Relaxed), 3);
    }
}
