//! The health prober: each target (address, port, probe) is probed by one task at its
//! interval, however many clusters and names use it; probes of different targets start
//! spread over the interval. A target goes down after `fall` consecutive failures and
//! up again after `rise` consecutive successes; every change is reported with the
//! clusters it affects, so their answers (and map entries) are rewritten at once.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::resolution::health::{Check, HealthState, Plan, Plans, Probe, Target};

/// Probes every target of the resolver's plans, following them as the catalog
/// changes (new clusters, addresses, checks). State changes send the affected cluster
/// ids to `changed` (bounded: probing waits while the follower catches up).
pub async fn run(
    state: Arc<HealthState>,
    mut plans: watch::Receiver<Arc<Plans>>,
    changed: mpsc::Sender<Vec<i64>>,
) {
    let mut tasks: HashMap<Target, (Plan, JoinHandle<()>)> = HashMap::new();
    loop {
        let wanted = plans.borrow_and_update().clone();
        tasks.retain(|target, (plan, task)| {
            let keep = wanted.get(target) == Some(plan);
            if !keep {
                task.abort();
            }
            keep
        });
        state.follow_plans(&wanted);
        let count = wanted.len().max(1) as u32;
        for (i, (target, plan)) in wanted.iter().enumerate() {
            if tasks.contains_key(target) {
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
            tasks.insert(target.clone(), (plan.clone(), task));
        }
        if plans.changed().await.is_err() {
            // The resolver is gone: the daemon is stopping.
            for (_, (_, task)) in tasks.drain() {
                task.abort();
            }
            return;
        }
    }
}

async fn probe_loop(
    state: Arc<HealthState>,
    target: Target,
    plan: Plan,
    offset: Duration,
    changed: mpsc::Sender<Vec<i64>>,
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
            if changed.send(plan.cluster_ids.clone()).await.is_err() {
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
