//! The node's report to the fleet table (`store::nodes`), every `[fleet]
//! report_every_s`: who it is, what it answers on, how full its maps are, how much XDP
//! answers, and how far it has followed the change log.

use std::{net::IpAddr, sync::Arc, sync::atomic::Ordering, time::Duration};

use dns_common::stats::Outcome;
use instadns::{
    control::FollowerStats,
    engine::Handler,
    fastpath::iface,
    model::time::unix_now,
    store::{Database, nodes::NodeRow},
};

pub struct Reporter {
    pub db: Database,
    pub handler: Arc<Handler<Database>>,
    pub follower: Arc<FollowerStats>,
    pub name: String,
    pub every: Duration,
    pub listen: Vec<IpAddr>,
    /// Names the XDP maps hold at most (0: no XDP).
    pub map_capacity: u64,
}

impl Reporter {
    /// Reports until the process ends; a failed report is retried at the next tick.
    pub async fn run(self) {
        let started_at = unix_now();
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let report = self.report(started_at);
            if let Err(e) = self.db.report_node(&report).await {
                tracing::debug!(error = %e, "reporting this node to the fleet table failed");
            }
        }
    }

    fn report(&self, started_at: i64) -> NodeRow {
        let cache = self.handler.cache();
        let (queries, answered) = queries_and_hits(&cache.xdp_counters().unwrap_or_default());
        let addresses: Vec<String> =
            iface::served_addresses(&self.listen).iter().map(|a| a.to_string()).collect();
        NodeRow {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            addresses: addresses.join(" "),
            started_at,
            last_seen: unix_now(),
            report_every_s: self.every.as_secs() as i64,
            map_names: if self.map_capacity > 0 { cache.installed() as i64 } else { 0 },
            map_capacity: self.map_capacity as i64,
            queries: queries as i64,
            hit_permille: (self.map_capacity > 0 && queries > 0)
                .then(|| (answered.saturating_mul(1000) / queries) as i64),
            change_cursor: self.follower.cursor.load(Ordering::Relaxed),
        }
    }
}

/// The DNS queries the XDP program saw and the ones it answered, each packet once: the
/// refinements of a hit (NXDOMAIN, wildcard, steered, stale, slipped) are counted beside
/// `Hit`.
fn queries_and_hits(counters: &[(Outcome, u64)]) -> (u64, u64) {
    let queries = counters.iter().filter(|(o, _)| o.is_query() && !o.is_refinement()).map(|(_, n)| n).sum();
    let hits = counters.iter().filter(|(o, _)| *o == Outcome::Hit).map(|(_, n)| n).sum();
    (queries, hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_and_its_refinement_are_one_query() {
        let counters = [
            (Outcome::Hit, 10),
            (Outcome::HitNxdomain, 6),
            (Outcome::HitWeighted, 4),
            (Outcome::Miss, 10),
            (Outcome::PassNotDns, 99),
            (Outcome::RrlDropped, 5),
        ];
        assert_eq!(queries_and_hits(&counters), (25, 10));
    }
}
