//! Health checks of failover queues: each target (address, port, probe) is probed by
//! one task at its interval, however many clusters and names use it; probes of
//! different targets start spread over the interval. A target goes down after `fall`
//! consecutive failures and up again after `rise` consecutive successes; every change
//! is reported with the clusters it affects, so their answers (and map entries) are
//! rewritten at once.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::mpsc::UnboundedSender,
    task::JoinHandle,
};

use crate::resolver::Catalog;

/// What a probe does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// `tcp`, or `http <path> <expect>` (with the Host header if set).
    pub probe: String,
}

impl Target {
    pub fn of(check: &Check, ip: IpAddr) -> Self {
        let probe = match &check.probe {
            Probe::Tcp => "tcp".to_owned(),
            Probe::Http { path, host: None, expect } => format!("http {path} {expect}"),
            Probe::Http { path, host: Some(h), expect } => format!("http {path} {expect} host {h}"),
        };
        Self { addr: SocketAddr::new(ip, check.port), probe }
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
    fn record(&self, target: &Target, ok: bool, detail: String, rise: u32, fall: u32) -> Option<bool> {
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

/// What one target's probing task was started with.
#[derive(Clone, PartialEq, Eq)]
struct Plan {
    check: Check,
    cluster_ids: Vec<i64>,
    cluster_names: Vec<String>,
}

/// The targets the catalog's clusters need, with the most demanding settings of the
/// clusters sharing each (shortest interval and timeout, smallest rise and fall).
fn plans(catalog: &Catalog) -> HashMap<Target, Plan> {
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

/// Probes every target the catalog needs; follows catalog reloads (new clusters,
/// addresses, checks). State changes send the affected cluster ids to `changed`.
pub async fn run(
    state: Arc<HealthState>,
    catalog: impl Fn() -> Option<Arc<Catalog>> + Send + 'static,
    changed: UnboundedSender<Vec<i64>>,
) {
    let mut tasks: HashMap<Target, (Plan, JoinHandle<()>)> = HashMap::new();
    let mut seen: Option<Arc<Catalog>> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let Some(current) = catalog() else { continue };
        if seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &current)) {
            continue;
        }
        seen = Some(current.clone());
        let wanted = plans(&current);
        tasks.retain(|target, (plan, task)| {
            let keep = wanted.get(target) == Some(plan);
            if !keep {
                task.abort();
            }
            keep
        });
        {
            let mut targets = state.targets.write().unwrap_or_else(|p| p.into_inner());
            targets.retain(|t, _| wanted.contains_key(t));
            for (target, plan) in &wanted {
                let entry = targets.entry(target.clone()).or_insert_with(|| new_state(true, Vec::new()));
                entry.clusters = plan.cluster_names.clone();
            }
        }
        let count = wanted.len().max(1) as u32;
        for (i, (target, plan)) in wanted.into_iter().enumerate() {
            if tasks.contains_key(&target) {
                continue;
            }
            // Spread the first probes of the targets over the interval.
            let offset = plan.check.interval * (i as u32 % count) / count;
            let task = tokio::spawn(probe_loop(
                state.clone(),
                target.clone(),
                plan.clone(),
                offset,
                changed.clone(),
            ));
            tasks.insert(target, (plan, task));
        }
    }
}

async fn probe_loop(
    state: Arc<HealthState>,
    target: Target,
    plan: Plan,
    offset: Duration,
    changed: UnboundedSender<Vec<i64>>,
) {
    tokio::time::sleep(offset).await;
    let mut tick = tokio::time::interval(plan.check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (ok, detail) = match tokio::time::timeout(plan.check.timeout, probe(&target, &plan.check)).await {
            Ok(Ok(detail)) => (true, detail),
            Ok(Err(e)) => (false, e),
            Err(_) => (false, format!("no answer within {} ms", plan.check.timeout.as_millis())),
        };
        if let Some(up) = state.record(&target, ok, detail, plan.check.rise, plan.check.fall) {
            tracing::info!(target = %target.addr, probe = %target.probe, up, clusters = ?plan.cluster_names, "health changed");
            if changed.send(plan.cluster_ids.clone()).is_err() {
                return;
            }
        }
    }
}

/// One probe: Ok with what it saw, or Err with why it failed.
async fn probe(target: &Target, check: &Check) -> Result<String, String> {
    let mut stream = TcpStream::connect(target.addr).await.map_err(|e| format!("connect: {e}"))?;
    let Probe::Http { path, host, expect } = &check.probe else {
        return Ok("connected".to_owned());
    };
    let host = host.clone().unwrap_or_else(|| match target.addr.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    });
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: instadns-health\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    // The status line is all we need.
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let status = line
        .strip_prefix("HTTP/")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP response: {line:?}"))?;
    if status == *expect {
        Ok(format!("HTTP {status}"))
    } else {
        Err(format!("HTTP {status}, expected {expect}"))
    }
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
