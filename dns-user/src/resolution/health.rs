//! Health of the failover queues' addresses, as the resolver reads it: the state of
//! every probed target, and the plans of what to probe, derived from the catalog. The
//! probing itself is a control loop (`control::health`); the resolver hands it the
//! plans through a watch channel, so neither polls the other.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use super::Catalog;

/// What a probe does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// A TCP connection is accepted.
    Tcp,
    /// `GET path` answers `expect` (Host: `host`, or the address).
    Http { path: String, host: Option<String>, expect: u16 },
}

/// A cluster's health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub probe: Probe,
    pub port: u16,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// One probed thing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub addr: SocketAddr,
    pub probe: Probe,
}

impl Target {
    pub fn of(check: &Check, ip: IpAddr) -> Self {
        Self { addr: SocketAddr::new(ip, check.port), probe: check.probe.clone() }
    }
}

/// `tcp`, or `http <path> <expect>` (with the Host header if set), as metrics label it.
impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Tcp => f.write_str("tcp"),
            Probe::Http { path, host: None, expect } => write!(f, "http {path} {expect}"),
            Probe::Http { path, host: Some(h), expect } => write!(f, "http {path} {expect} host {h}"),
        }
    }
}

/// A target's state.
#[derive(Clone, Debug)]
pub struct TargetState {
    pub up: bool,
    /// Consecutive results against the current state.
    pub streak: u32,
    /// When the state last changed (or probing started).
    pub since: SystemTime,
    /// The last probe's result, for operators.
    pub last: String,
    pub probes: u64,
    pub failures: u64,
    /// The clusters whose answers depend on it.
    pub clusters: Vec<String>,
}

/// The state of every target. Unknown targets count as up: a daemon that just started
/// keeps answering what it answered before until probes say otherwise.
#[derive(Default)]
pub struct HealthState {
    targets: RwLock<HashMap<Target, TargetState>>,
    /// State changes so far.
    pub transitions: AtomicU64,
}

impl HealthState {
    pub fn is_up(&self, check: &Check, ip: IpAddr) -> bool {
        let targets = self.targets.read().unwrap_or_else(|p| p.into_inner());
        targets.get(&Target::of(check, ip)).is_none_or(|s| s.up)
    }

    /// Sets a target's state directly (tests, and targets seen for the first time).
    pub fn set(&self, check: &Check, ip: IpAddr, up: bool) {
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        targets.insert(Target::of(check, ip), new_state(up, Vec::new()));
    }

    /// Every target and its state, ordered by target.
    pub fn snapshot(&self) -> Vec<(Target, TargetState)> {
        let targets = self.targets.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(Target, TargetState)> =
            targets.iter().map(|(t, s)| (t.clone(), s.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Records a probe result; the target's new state if it changed.
    pub fn record(&self, target: &Target, ok: bool, detail: String, rise: u32, fall: u32) -> Option<bool> {
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        let state = targets.get_mut(target)?;
        state.probes += 1;
        if !ok {
            state.failures += 1;
        }
        state.last = detail;
        if ok == state.up {
            state.streak = 0;
            return None;
        }
        state.streak += 1;
        if state.streak < if ok { rise } else { fall } {
            return None;
        }
        state.up = ok;
        state.streak = 0;
        state.since = SystemTime::now();
        self.transitions.fetch_add(1, Ordering::Relaxed);
        Some(ok)
    }
}

impl HealthState {
    /// Keeps the state of the targets `plans` still probes (forgetting the others) and
    /// records the clusters that depend on each; new targets start up.
    pub fn follow_plans(&self, plans: &Plans) {
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        targets.retain(|t, _| plans.contains_key(t));
        for (target, plan) in plans {
            let entry = targets.entry(target.clone()).or_insert_with(|| new_state(true, Vec::new()));
            entry.clusters = plan.cluster_names.clone();
        }
    }
}

fn new_state(up: bool, clusters: Vec<String>) -> TargetState {
    TargetState {
        up,
        streak: 0,
        since: SystemTime::now(),
        last: "not probed yet".to_owned(),
        probes: 0,
        failures: 0,
        clusters,
    }
}

/// How one target is probed, and whose answers depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub check: Check,
    pub cluster_ids: Vec<i64>,
    pub cluster_names: Vec<String>,
}

/// Every target the catalog's clusters need probed.
pub type Plans = HashMap<Target, Plan>;

/// The targets the catalog's clusters need, with the most demanding settings of the
/// clusters sharing each (shortest interval and timeout, smallest rise and fall).
pub fn plans(catalog: &Catalog) -> Plans {
    let mut out: HashMap<Target, Plan> = HashMap::new();
    let mut clusters: Vec<_> = catalog.clusters.values().collect();
    clusters.sort_by_key(|c| c.id);
    for cluster in clusters {
        let Some(check) = &cluster.steering.check else { continue };
        for address in &cluster.addresses {
            let target = Target::of(check, address.ip);
            let plan = out.entry(target).or_insert_with(|| Plan {
                check: check.clone(),
                cluster_ids: Vec::new(),
                cluster_names: Vec::new(),
            });
            if !plan.cluster_ids.contains(&cluster.id) {
                plan.cluster_ids.push(cluster.id);
                plan.cluster_names.push(cluster.name.clone());
            }
            let c = &mut plan.check;
            c.interval = c.interval.min(check.interval);
            c.timeout = c.timeout.min(check.timeout);
            c.rise = c.rise.min(check.rise);
            c.fall = c.fall.min(check.fall);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rise: u32, fall: u32) -> Check {
        Check {
            probe: Probe::Tcp,
            port: 80,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rise,
            fall,
        }
    }

    #[test]
    fn a_target_falls_after_fall_failures_and_rises_after_rise_successes() {
        let state = HealthState::default();
        let c = check(2, 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        state.set(&c, ip, true);
        let t = Target::of(&c, ip);
        assert_eq!(state.record(&t, false, "x".into(), 2, 3), None);
        assert_eq!(state.record(&t, true, "ok".into(), 2, 3), None, "a success resets the streak");
        assert_eq!(state.record(&t, false, "x".into(), 2, 3), None);
        assert_eq!(state.record(&t, false, "x".into(), 2, 3), None);
        assert!(state.is_up(&c, ip));
        assert_eq!(state.record(&t, false, "x".into(), 2, 3), Some(false), "third consecutive failure");
        assert!(!state.is_up(&c, ip));
        assert_eq!(state.record(&t, true, "ok".into(), 2, 3), None);
        assert_eq!(state.record(&t, true, "ok".into(), 2, 3), Some(true));
        assert!(state.is_up(&c, ip));
        assert_eq!(state.transitions.load(Ordering::Relaxed), 2);
    }
}
