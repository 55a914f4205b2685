//! The database budget for misses: queries whose answer may need the database (names of
//! zones whose names are not all known, such as instances looked up in the platform's
//! own database) are capped per zone per second (a token bucket), so a random-subdomain
//! flood costs the database a bounded trickle. Over the budget the answer is the stale
//! one (RFC 8767) or SERVFAIL. Refreshes after database changes are not budgeted.

use std::{collections::HashMap, sync::Mutex, time::Instant};

/// Token buckets by zone.
pub struct LookupBudget {
    /// Lookups per second per zone (0: unlimited).
    rate: f64,
    /// Lookups a quiet zone may spend at once.
    burst: f64,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Zones tracked at most; beyond, the buckets of idle zones are forgotten.
const MAX_TRACKED: usize = 65_536;

impl LookupBudget {
    /// `per_second` lookups per zone per second, bursts of as many (0: no cap).
    pub fn new(per_second: u32) -> Self {
        Self { rate: per_second as f64, burst: per_second as f64, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn unlimited() -> Self {
        Self::new(0)
    }

    /// Spends one lookup of `zone`'s budget; false if it is spent.
    pub fn take(&self, zone: i64) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&zone) {
            let burst = self.burst;
            let rate = self.rate;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(zone).or_insert(Bucket { tokens: self.burst, at: now });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_spends_its_burst_then_its_rate() {
        let budget = LookupBudget::new(10);
        let spent = (0..100).filter(|_| budget.take(1)).count();
        assert!((10..=11).contains(&spent), "{spent}");
        assert!(budget.take(2), "another zone has its own budget");
        std::thread::sleep(std::time::Duration::from_millis(250));
        let more = (0..100).filter(|_| budget.take(1)).count();
        assert!((1..=4).contains(&more), "about 2.5 refilled: {more}");
        assert!((0..1000).all(|_| LookupBudget::unlimited().take(1)));
    }
}
