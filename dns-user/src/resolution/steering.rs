//! Traffic steering: which of a cluster's addresses a host answer carries.
//!
//! A cluster's addresses may carry a territory (directional answers), a failover queue
//! position (with a health check: the first queue position with a healthy address is
//! answered) and a weight (with `pick = one`: one address per answer, by weight). The
//! resolver asks [`choose`] for one [`Selection`] at a time, so every variant of an
//! answer (each territory's, each weighted pick's) is a complete resolution; the answer
//! says how it varies ([`Variation`]) and the fast path installs all variants at once.

use std::net::IpAddr;

use dns_common::maps::MAX_WEIGHTED_VARIANTS;

use super::health::{Check, HealthState};

/// One address of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterAddress {
    pub ip: IpAddr,
    pub weight: u32,
    /// Failover queue position: lower is answered first.
    pub queue: u32,
    /// Territory index (see [`super::territory::Territories`]); 0 for everyone else.
    pub territory: u8,
}

/// How a cluster answers host names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Steering {
    /// Rotate the answered addresses per response (round robin).
    pub rotate: bool,
    /// Answer one address, picked by weight, instead of all.
    pub pick_one: bool,
    /// When every queue position is down: answer the last position's addresses instead
    /// of all addresses.
    pub fallback_last: bool,
    pub check: Option<Check>,
}

/// Which variant of a steered answer to resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Selection {
    /// Userspace's own choice: territory 0, pick 0.
    #[default]
    Default,
    /// The answer for clients of this territory (index, 0 = default).
    Territory(u8),
    /// The i-th weighted pick.
    Pick(u8),
}

/// How a steered answer varies; the selections to resolve to get every variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Variation {
    /// `Selection::Pick(i)` answers with weight `weights[i]`.
    Weighted(Vec<u32>),
    /// `Selection::Territory(t)` for each listed territory; every other territory
    /// gets the default (`Selection::Territory(0)`).
    Directional(Vec<u8>),
}

/// What [`choose`] decided.
#[derive(Debug, Default)]
pub struct Choice {
    pub addresses: Vec<IpAddr>,
    pub variation: Option<Variation>,
    /// Why, for traces: fallbacks, picks.
    pub notes: Vec<String>,
}

/// The addresses of `addresses` (a cluster's, in queue then address order) that answer
/// a query for the family `wanted` accepts, for `selection`.
pub fn choose(
    addresses: &[ClusterAddress],
    steering: &Steering,
    health: &HealthState,
    wanted: impl Fn(&IpAddr) -> bool,
    selection: Selection,
) -> Choice {
    let mut choice = Choice::default();
    let family: Vec<&ClusterAddress> = addresses.iter().filter(|a| wanted(&a.ip)).collect();
    if family.is_empty() {
        return choice;
    }

    // Directional: the territory's own addresses, else everyone else's.
    let mut territories: Vec<u8> = family.iter().map(|a| a.territory).filter(|t| *t != 0).collect();
    territories.sort_unstable();
    territories.dedup();
    let wanted_territory = match selection {
        Selection::Territory(t) => t,
        _ => 0,
    };
    let mut set: Vec<&ClusterAddress> =
        family.iter().copied().filter(|a| a.territory == wanted_territory).collect();
    if set.is_empty() {
        if wanted_territory != 0 {
            choice
                .notes
                .push(format!("territory {wanted_territory} has none of these addresses: the default's"));
        }
        set = family.iter().copied().filter(|a| a.territory == 0).collect();
    }
    if !territories.is_empty() {
        choice.variation = Some(Variation::Directional(territories));
    }

    // Failover: the first queue position with a healthy address.
    let mut queues: Vec<u32> = set.iter().map(|a| a.queue).collect();
    queues.sort_unstable();
    queues.dedup();
    let up = |a: &&ClusterAddress| steering.check.as_ref().is_none_or(|c| health.is_up(c, a.ip));
    let healthy = queues.iter().find_map(|q| {
        let members: Vec<&ClusterAddress> = set.iter().copied().filter(|a| a.queue == *q && up(a)).collect();
        (!members.is_empty()).then_some((*q, members))
    });
    let set = match healthy {
        Some((q, members)) => {
            if q != queues[0] {
                choice.notes.push(format!("failover: queue position {q} answers"));
            }
            members
        }
        None if steering.fallback_last => {
            let last = queues.last().copied().unwrap_or_default();
            choice.notes.push(format!("every address is down: the last queue position ({last}) answers"));
            set.into_iter().filter(|a| a.queue == last).collect()
        }
        None => {
            choice.notes.push("every address is down: all addresses answer".to_owned());
            set
        }
    };

    // Weighted: one address per answer.
    if steering.pick_one && set.len() > 1 && choice.variation.is_none() {
        let mut candidates: Vec<&ClusterAddress> = set.iter().copied().filter(|a| a.weight > 0).collect();
        if candidates.is_empty() {
            choice.notes.push("every weight is 0: equal weights".to_owned());
            candidates = set.clone();
        }
        if candidates.len() > MAX_WEIGHTED_VARIANTS {
            choice.notes.push(format!("only the first {MAX_WEIGHTED_VARIANTS} addresses are picked"));
            candidates.truncate(MAX_WEIGHTED_VARIANTS);
        }
        let weights: Vec<u32> = candidates.iter().map(|a| a.weight.max(1)).collect();
        let pick = match selection {
            Selection::Pick(i) => (i as usize).min(candidates.len() - 1),
            _ => 0,
        };
        choice.addresses = vec![candidates[pick].ip];
        if candidates.len() > 1 {
            choice.variation = Some(Variation::Weighted(weights));
        }
        return choice;
    }
    choice.addresses = set.iter().map(|a| a.ip).collect();
    choice
}

/// Cumulative pick bounds for weights, scaled to `0..PICK_SCALE`: pick i answers draws
/// below `bounds[i]` (the last bound is the scale).
pub fn pick_bounds(weights: &[u32]) -> Vec<u32> {
    let scale = dns_common::maps::PICK_SCALE as u64;
    let total: u64 = weights.iter().map(|w| *w as u64).sum::<u64>().max(1);
    let mut sum = 0u64;
    weights
        .iter()
        .map(|w| {
            sum += *w as u64;
            (sum * scale / total) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::resolution::health::Probe;

    fn addr(ip: &str, weight: u32, queue: u32, territory: u8) -> ClusterAddress {
        ClusterAddress { ip: ip.parse().unwrap(), weight, queue, territory }
    }

    fn ips(c: &Choice) -> Vec<String> {
        c.addresses.iter().map(|a| a.to_string()).collect()
    }

    fn v4(ip: &IpAddr) -> bool {
        ip.is_ipv4()
    }

    fn check() -> Check {
        Check {
            probe: Probe::Tcp,
            port: 80,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rise: 1,
            fall: 1,
        }
    }

    #[test]
    fn failover_answers_the_first_healthy_queue_position_then_the_fallback() {
        let set = [addr("192.0.2.1", 1, 0, 0), addr("192.0.2.2", 1, 1, 0), addr("192.0.2.3", 1, 2, 0)];
        let mut steering = Steering { check: Some(check()), ..Default::default() };
        let health = HealthState::default();
        assert_eq!(ips(&choose(&set, &steering, &health, v4, Selection::Default)), ["192.0.2.1"]);
        health.set(&check(), "192.0.2.1".parse().unwrap(), false);
        assert_eq!(ips(&choose(&set, &steering, &health, v4, Selection::Default)), ["192.0.2.2"]);
        health.set(&check(), "192.0.2.2".parse().unwrap(), false);
        health.set(&check(), "192.0.2.3".parse().unwrap(), false);
        assert_eq!(
            choose(&set, &steering, &health, v4, Selection::Default).addresses.len(),
            3,
            "fallback all"
        );
        steering.fallback_last = true;
        assert_eq!(ips(&choose(&set, &steering, &health, v4, Selection::Default)), ["192.0.2.3"]);
    }

    #[test]
    fn weighted_picks_vary_by_selection_and_skip_zero_weights() {
        let set = [addr("192.0.2.1", 1, 0, 0), addr("192.0.2.2", 0, 0, 0), addr("192.0.2.3", 3, 0, 0)];
        let steering = Steering { pick_one: true, ..Default::default() };
        let health = HealthState::default();
        let first = choose(&set, &steering, &health, v4, Selection::Default);
        assert_eq!(ips(&first), ["192.0.2.1"]);
        assert_eq!(first.variation, Some(Variation::Weighted(vec![1, 3])));
        assert_eq!(ips(&choose(&set, &steering, &health, v4, Selection::Pick(1))), ["192.0.2.3"]);
        assert_eq!(pick_bounds(&[1, 3]), vec![16384, 65536]);
    }

    #[test]
    fn directional_answers_fall_back_to_the_default_per_family() {
        let set = [addr("192.0.2.1", 1, 0, 0), addr("192.0.2.9", 1, 0, 2), addr("2001:db8::1", 1, 0, 0)];
        let health = HealthState::default();
        let s = Steering::default();
        let eu = choose(&set, &s, &health, v4, Selection::Territory(2));
        assert_eq!(
            (ips(&eu), eu.variation),
            (vec!["192.0.2.9".to_owned()], Some(Variation::Directional(vec![2])))
        );
        assert_eq!(ips(&choose(&set, &s, &health, v4, Selection::Territory(1))), ["192.0.2.1"]);
        let v6 = choose(&set, &s, &health, |ip: &IpAddr| ip.is_ipv6(), Selection::Territory(2));
        assert_eq!((ips(&v6), v6.variation), (vec!["2001:db8::1".to_owned()], None));
    }
}
