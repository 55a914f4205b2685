//! `/metrics` in the Prometheus text format, `/health` (the process answers) and `/ready`
//! (the program is attached, the maps loaded, the zones loaded and the database
//! reachable).

use std::{
    fmt::Write as _,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf},
};

use dns_common::{cookie::CookieCheck, stats::Outcome, wire::rcode};
use instadns::{
    engine::{Handler, QTYPE_LABELS, stats::TsigOutcome},
    frontend::connections::{Admitted, ConnectionLimits, accept_each},
    model::time::rfc3339,
    resolution::health::TargetState,
    store::{Database, latency},
};

use super::status::DaemonStatus;

/// Closes a connection idle this long between requests.
const IDLE: Duration = Duration::from_secs(30);
/// A request's line and headers arrive within this, or the connection is closed.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Longest request line plus headers.
const MAX_HEAD_BYTES: u64 = 8192;
/// Connections in all, and of one client: scrapers need a few.
const CONNECTIONS: ConnectionLimits = ConnectionLimits { max_total: 64, max_per_client: 16 };
/// How long a database probe of `/ready` is reused.
const READY_PROBE_REUSE: Duration = Duration::from_secs(1);

pub async fn serve(listener: TcpListener, handler: Arc<Handler<Database>>, status: Arc<DaemonStatus>) {
    accept_each(listener, CONNECTIONS, |stream, _, place| {
        let (handler, status) = (handler.clone(), status.clone());
        async move {
            let _ = connection(stream, &handler, &status, &place).await;
        }
    })
    .await;
}

/// The request line and headers: the path, and whether the client wants the connection
/// closed. None when the client closed, went idle or sent a head too long or too slow.
async fn read_head(reader: &mut BufReader<OwnedReadHalf>) -> Option<(String, bool)> {
    // Idle until the first byte; from it, the whole head within the deadline and limit.
    match tokio::time::timeout(IDLE, reader.fill_buf()).await {
        Ok(Ok(buffered)) if !buffered.is_empty() => {}
        _ => return None,
    }
    let head = async {
        let mut head = reader.take(MAX_HEAD_BYTES);
        let mut request_line = String::new();
        head.read_line(&mut request_line).await.ok()?;
        let mut close = request_line.trim_end().ends_with("HTTP/1.0");
        loop {
            let mut line = String::new();
            head.read_line(&mut line).await.ok()?;
            if !line.ends_with('\n') {
                return None; // too long, or closed
            }
            if line == "\r\n" || line == "\n" {
                return request_line.ends_with('\n').then_some((request_line, close));
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("connection:") {
                close = value.trim() == "close";
            }
        }
    };
    let (request_line, close) = tokio::time::timeout(HEAD_DEADLINE, head).await.ok()??;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    Some((path, close))
}

/// HTTP/1.1 with keep-alive: requests are answered in turn until the client closes or
/// goes idle. The server closes first only when asked (`Connection: close`, HTTP/1.0),
/// so for scrapers the client's side holds TIME_WAIT and rapid scrapes from one host
/// never collide with it.
async fn connection(
    stream: TcpStream,
    handler: &Handler<Database>,
    status: &DaemonStatus,
    place: &Admitted,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    // A line is read only up to the head's limit (read_head), so the buffer stays small.
    let mut reader = BufReader::new(reader);
    loop {
        let Some((path, close)) = read_head(&mut reader).await else { return Ok(()) };
        place.progressed();
        let (code, body) = match path.as_str() {
            "/metrics" => ("200 OK", render(handler, status)),
            "/health" => ("200 OK", "ok\n".to_owned()),
            "/health/targets" => ("200 OK", health_table(handler)),
            "/ready" => match not_ready(handler, status).await {
                None => ("200 OK", "ready\n".to_owned()),
                Some(why) => ("503 Service Unavailable", format!("not ready: {why}\n")),
            },
            _ => ("404 Not Found", "not found\n".to_owned()),
        };
        let response = format!(
            "HTTP/1.1 {code}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match tokio::time::timeout(IDLE, writer.write_all(response.as_bytes())).await {
            Ok(result) => result?,
            Err(_) => return Ok(()), // the client does not read
        }
        place.progressed();
        if close {
            return Ok(());
        }
    }
}

/// Why the daemon is not ready, if it is not.
async fn not_ready(handler: &Handler<Database>, status: &DaemonStatus) -> Option<String> {
    let attached = status.attached.lock().map(|a| a.len()).unwrap_or(0);
    if status.xdp && (attached == 0 || !handler.cache().has_kernel()) {
        return Some("the XDP program is not attached".into());
    }
    match handler.resolver().catalog() {
        None => return Some("zones not loaded".into()),
        Some(c) if c.zones().next().is_none() => {
            return Some(
                "no zones (add one with `instadns zone add`, or load the demo with `instadns db demo`)"
                    .into(),
            );
        }
        Some(_) => {}
    }
    // One probe at a time, reused for a second: scrapes of /ready never pile up on the
    // database.
    let mut last = status.readiness.lock().await;
    if let Some((at, why)) = last.as_ref()
        && at.elapsed() < READY_PROBE_REUSE
    {
        return why.clone();
    }
    let why = match tokio::time::timeout(Duration::from_secs(1), status.db.query("SELECT 1", vec![])).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("database: {e}")),
        Err(_) => Some("database: no answer within 1 s".into()),
    };
    *last = Some((std::time::Instant::now(), why.clone()));
    why
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The metrics page.
pub fn render(handler: &Handler<Database>, status: &DaemonStatus) -> String {
    let mut out = String::new();
    let cache = handler.cache();
    if let Some(per_cpu) = cache.xdp_counters_per_cpu() {
        help(
            &mut out,
            "instadns_xdp_packets_total",
            "counter",
            "Packets seen by the XDP program, by outcome (summed over CPUs).",
        );
        for (outcome, counts) in &per_cpu {
            let total: u64 = counts.iter().sum();
            let _ = writeln!(out, "instadns_xdp_packets_total{{outcome=\"{}\"}} {total}", outcome.name());
        }
        // Per CPU (the receive queue's CPU): a queue doing all the work, or none, shows.
        help(
            &mut out,
            "instadns_xdp_cpu_packets_total",
            "counter",
            "Packets seen by the XDP program, by CPU and outcome.",
        );
        for (outcome, counts) in &per_cpu {
            for (cpu, count) in counts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "instadns_xdp_cpu_packets_total{{cpu=\"{cpu}\",outcome=\"{}\"}} {count}",
                    outcome.name()
                );
            }
        }
    }
    let attached = status.attached.lock().map(|a| a.clone()).unwrap_or_default();
    help(&mut out, "instadns_xdp_attached", "gauge", "XDP attachments, by interface and mode.");
    for a in &attached {
        let _ = writeln!(out, "instadns_xdp_attached{{interface=\"{}\",mode=\"{}\"}} 1", a.iface, a.mode);
    }
    help(&mut out, "instadns_xdp_rx_queues", "gauge", "Receive queues of each attached interface.");
    for a in &attached {
        let _ = writeln!(out, "instadns_xdp_rx_queues{{interface=\"{}\"}} {}", a.iface, a.rx_queues);
    }
    if let Some(usage) = cache.map_usage() {
        help(&mut out, "instadns_map_capacity", "gauge", "Entries each BPF map can hold.");
        for u in &usage {
            let _ = writeln!(out, "instadns_map_capacity{{map=\"{}\"}} {}", u.name, u.max_entries);
        }
        help(&mut out, "instadns_map_memory_bytes", "gauge", "Kernel memory of each BPF map.");
        for u in &usage {
            let _ = writeln!(out, "instadns_map_memory_bytes{{map=\"{}\"}} {}", u.name, u.memory_bytes);
        }
        help(&mut out, "instadns_map_names", "gauge", "Names installed in the XDP name maps.");
        let _ = writeln!(out, "instadns_map_names {}", cache.installed());
    }
    let s = &handler.stats;
    help(&mut out, "instadns_queries_total", "counter", "Queries answered by userspace, by transport.");
    let _ = writeln!(out, "instadns_queries_total{{transport=\"udp\"}} {}", s.udp.load(Ordering::Relaxed));
    let _ = writeln!(out, "instadns_queries_total{{transport=\"tcp\"}} {}", s.tcp.load(Ordering::Relaxed));
    help(
        &mut out,
        "instadns_queries_by_type_total",
        "counter",
        "Queries answered by userspace, by query type.",
    );
    for ((label, _), count) in QTYPE_LABELS.iter().zip(&s.by_type) {
        let _ = writeln!(
            out,
            "instadns_queries_by_type_total{{type=\"{label}\"}} {}",
            count.load(Ordering::Relaxed)
        );
    }
    help(&mut out, "instadns_responses_total", "counter", "Userspace responses by RCODE.");
    for (code, count) in s.rcodes.iter().enumerate() {
        let count = count.load(Ordering::Relaxed);
        if count > 0 {
            let _ =
                writeln!(out, "instadns_responses_total{{rcode=\"{}\"}} {count}", rcode::name(code as u16));
        }
    }
    help(
        &mut out,
        "instadns_userspace_cache_hits_total",
        "counter",
        "Userspace answers served from the answer cache.",
    );
    let _ = writeln!(out, "instadns_userspace_cache_hits_total {}", s.cache_hits.load(Ordering::Relaxed));
    help(
        &mut out,
        "instadns_stale_answers_total",
        "counter",
        "Expired answers served while the database was unreachable.",
    );
    let _ = writeln!(out, "instadns_stale_answers_total {}", s.stale.load(Ordering::Relaxed));
    help(&mut out, "instadns_tsig_requests_total", "counter", "TSIG-signed requests by outcome (RFC 8945).");
    for (outcome, count) in TsigOutcome::ALL.iter().zip(&s.tsig) {
        let _ = writeln!(
            out,
            "instadns_tsig_requests_total{{outcome=\"{}\"}} {}",
            outcome.label(),
            count.load(Ordering::Relaxed)
        );
    }
    help(&mut out, "instadns_updates_total", "counter", "RFC 2136 UPDATE messages by response RCODE.");
    for (code, count) in s.updates.iter().enumerate() {
        let count = count.load(Ordering::Relaxed);
        if count > 0 || code == 0 {
            let _ = writeln!(out, "instadns_updates_total{{rcode=\"{}\"}} {count}", rcode::name(code as u16));
        }
    }
    help(&mut out, "instadns_notifies_total", "counter", "NOTIFY messages received (acknowledged, ignored).");
    let _ = writeln!(out, "instadns_notifies_total {}", s.notifies.load(Ordering::Relaxed));
    help(&mut out, "instadns_transfers_total", "counter", "Zone transfers (AXFR, IXFR) by outcome.");
    let _ =
        writeln!(out, "instadns_transfers_total{{outcome=\"sent\"}} {}", s.transfers.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "instadns_transfers_total{{outcome=\"refused\"}} {}",
        s.transfers_refused.load(Ordering::Relaxed)
    );
    help(
        &mut out,
        "instadns_notify_sent_total",
        "counter",
        "NOTIFY messages sent to secondaries, retries included.",
    );
    let n = &status.notifies;
    let _ = writeln!(out, "instadns_notify_sent_total {}", n.sent.load(Ordering::Relaxed));
    help(&mut out, "instadns_notify_outcomes_total", "counter", "NOTIFYs to secondaries by outcome.");
    for (outcome, count) in
        [("acknowledged", &n.acknowledged), ("rejected", &n.rejected), ("abandoned", &n.abandoned)]
    {
        let _ = writeln!(
            out,
            "instadns_notify_outcomes_total{{outcome=\"{outcome}\"}} {}",
            count.load(Ordering::Relaxed)
        );
    }
    help(
        &mut out,
        "instadns_lookups_over_budget_total",
        "counter",
        "Misses over their zone's database lookup budget (answered stale or SERVFAIL).",
    );
    let _ = writeln!(out, "instadns_lookups_over_budget_total {}", s.over_budget.load(Ordering::Relaxed));
    if let Some(pg) = handler.resolver().store().postgres() {
        let breaker = pg.breaker();
        help(
            &mut out,
            "instadns_database_breaker_open",
            "gauge",
            "1 while PostgreSQL statements fail at once because the database failed to answer a moment ago.",
        );
        let _ = writeln!(out, "instadns_database_breaker_open {}", u8::from(breaker.is_open()));
        help(
            &mut out,
            "instadns_database_breaker_trips_total",
            "counter",
            "Times the database stopped answering (unreachable or silent past the statement deadline).",
        );
        let _ =
            writeln!(out, "instadns_database_breaker_trips_total {}", breaker.opened.load(Ordering::Relaxed));
        help(
            &mut out,
            "instadns_database_statements_refused_total",
            "counter",
            "Statements failed at once while the breaker was open.",
        );
        let _ = writeln!(
            out,
            "instadns_database_statements_refused_total {}",
            breaker.refused.load(Ordering::Relaxed)
        );
    }
    render_rrl(handler, &mut out);
    help(
        &mut out,
        "instadns_instance_db_lookups_total",
        "counter",
        "Instance lookups sent to the platform's database (instance_db).",
    );
    let _ = writeln!(
        out,
        "instadns_instance_db_lookups_total {}",
        instadns::store::byo::LOOKUPS.load(Ordering::Relaxed)
    );
    help(&mut out, "instadns_truncated_total", "counter", "UDP responses sent truncated (TC).");
    let _ = writeln!(out, "instadns_truncated_total {}", s.truncated.load(Ordering::Relaxed));
    help(&mut out, "instadns_tcp_connections", "gauge", "DNS TCP connections open.");
    let _ = writeln!(out, "instadns_tcp_connections {}", status.tcp.open());
    help(&mut out, "instadns_tcp_connections_total", "counter", "DNS TCP connections accepted.");
    let _ =
        writeln!(out, "instadns_tcp_connections_total {}", status.tcp.stats.admitted.load(Ordering::Relaxed));
    help(
        &mut out,
        "instadns_tcp_connections_evicted_total",
        "counter",
        "DNS TCP connections closed to make room (the stalest of a client over its cap, or of all).",
    );
    let _ = writeln!(
        out,
        "instadns_tcp_connections_evicted_total {}",
        status.tcp.stats.evicted.load(Ordering::Relaxed)
    );
    help(&mut out, "instadns_cache_entries", "gauge", "Answers in the userspace answer cache.");
    let _ = writeln!(out, "instadns_cache_entries {}", cache.len());
    let (_, negative, evicted) = cache.occupancy();
    help(
        &mut out,
        "instadns_cache_negative_entries",
        "gauge",
        "Negative answers (NXDOMAIN, NODATA) in the cache: at most a quarter of it.",
    );
    let _ = writeln!(out, "instadns_cache_negative_entries {negative}");
    help(&mut out, "instadns_cache_evictions_total", "counter", "Answers evicted (CLOCK) to make room.");
    let _ = writeln!(out, "instadns_cache_evictions_total {evicted}");
    let (known, trusted, enumerable) = {
        let resolver = handler.resolver();
        let names = resolver.known_names();
        let zones: Vec<(String, bool)> = resolver
            .catalog()
            .map(|c| c.zones().map(|z| (z.apex.to_ascii(), names.is_enumerable(z.id))).collect())
            .unwrap_or_default();
        (names.len(), names.is_ready() && cache.negatives_complete(), zones)
    };
    help(&mut out, "instadns_known_names", "gauge", "Names known to exist (NXDOMAIN for every other name).");
    let _ = writeln!(out, "instadns_known_names {known}");
    help(
        &mut out,
        "instadns_negative_answers_trusted",
        "gauge",
        "1 when the fast path answers names that do not exist itself.",
    );
    let _ = writeln!(out, "instadns_negative_answers_trusted {}", u8::from(trusted));
    help(
        &mut out,
        "instadns_zone_enumerable",
        "gauge",
        "1 when every name of the zone is known (its NXDOMAIN answers need no database).",
    );
    for (apex, enumerable) in enumerable {
        let _ = writeln!(out, "instadns_zone_enumerable{{zone=\"{apex}\"}} {}", u8::from(enumerable));
    }
    help(
        &mut out,
        "instadns_changes_applied_total",
        "counter",
        "Database changes applied from the change log.",
    );
    let _ =
        writeln!(out, "instadns_changes_applied_total {}", status.follower.changes.load(Ordering::Relaxed));
    help(
        &mut out,
        "instadns_answers_invalidated_total",
        "counter",
        "Cached answers replaced or removed after database changes.",
    );
    let _ = writeln!(
        out,
        "instadns_answers_invalidated_total {}",
        status.follower.answers.load(Ordering::Relaxed)
    );
    let feed = &status.follower;
    for (name, kind, what, value) in [
        (
            "instadns_change_cursor",
            "gauge",
            "The newest change log id this node applied.",
            feed.cursor.load(Ordering::Relaxed) as f64,
        ),
        (
            "instadns_change_holes",
            "gauge",
            "Change ids below the cursor not committed yet (waited for).",
            feed.holes.load(Ordering::Relaxed) as f64,
        ),
        (
            "instadns_change_holes_given_up_total",
            "counter",
            "Change ids no longer waited for (rolled back, or open too long).",
            feed.holes_given_up.load(Ordering::Relaxed) as f64,
        ),
        (
            "instadns_change_full_reloads_total",
            "counter",
            "Full reloads because changes were missed (log pruned past the cursor) or a table was truncated.",
            feed.full_reloads.load(Ordering::Relaxed) as f64,
        ),
    ] {
        help(&mut out, name, kind, what);
        let _ = writeln!(out, "{name} {value}");
    }
    let lag = feed.replica_lag_ms.load(Ordering::Relaxed);
    if lag >= 0 {
        help(
            &mut out,
            "instadns_db_replica_lag_seconds",
            "gauge",
            "How far the hot standby this node reads replays behind its primary.",
        );
        let _ = writeln!(out, "instadns_db_replica_lag_seconds {}", lag as f64 / 1000.0);
    }
    help(&mut out, "instadns_db_query_seconds", "histogram", "Latency of database statements.");
    let (buckets, count, sum) = latency::DB_LATENCY.snapshot();
    for (bound, c) in latency::BUCKETS.iter().zip(&buckets) {
        let _ = writeln!(out, "instadns_db_query_seconds_bucket{{le=\"{bound}\"}} {c}");
    }
    let _ = writeln!(out, "instadns_db_query_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "instadns_db_query_seconds_sum {sum}");
    let _ = writeln!(out, "instadns_db_query_seconds_count {count}");
    render_health(handler, &mut out);
    out
}

/// Health-check gauges and counters, one series per probed target.
/// The rate limit's settings and what it did, on each path; userspace's DNS cookies.
fn render_rrl(handler: &Handler<Database>, out: &mut String) {
    help(
        out,
        "instadns_cookies_total",
        "counter",
        "Queries with a DNS cookie answered by userspace, by their server cookie (fresh: sent back; valid: replaced; invalid: none, old, foreign or forged).",
    );
    for check in CookieCheck::ALL {
        let count = handler.stats.cookies[check as usize].load(Ordering::Relaxed);
        let _ = writeln!(out, "instadns_cookies_total{{check=\"{}\"}} {count}", check.name());
    }
    let limiter = handler.rate_limiter();
    help(out, "instadns_rrl_rate", "gauge", "Responses per second per client network and answer (0: off).");
    let _ = writeln!(out, "instadns_rrl_rate {}", limiter.settings().rate);
    help(
        out,
        "instadns_rrl_responses_total",
        "counter",
        "Responses over the rate limit, by path and outcome (slipped: sent truncated; dropped).",
    );
    let xdp = handler.cache().xdp_counters().unwrap_or_default();
    let xdp_count = |o: Outcome| xdp.iter().find(|(x, _)| *x == o).map_or(0, |(_, n)| *n);
    for (path, outcome, count) in [
        ("userspace", "slipped", limiter.stats.slipped.load(Ordering::Relaxed)),
        ("userspace", "dropped", limiter.stats.dropped.load(Ordering::Relaxed)),
        ("xdp", "slipped", xdp_count(Outcome::RrlSlipped)),
        ("xdp", "dropped", xdp_count(Outcome::RrlDropped)),
    ] {
        let _ =
            writeln!(out, "instadns_rrl_responses_total{{path=\"{path}\",outcome=\"{outcome}\"}} {count}");
    }
}

fn render_health(handler: &Handler<Database>, out: &mut String) {
    let health = handler.resolver().health();
    let targets = health.snapshot();
    let per_target =
        |out: &mut String, name: &str, kind: &str, text: &str, value: &dyn Fn(&TargetState) -> String| {
            help(out, name, kind, text);
            for (t, s) in &targets {
                let _ = writeln!(out, "{name}{{target=\"{}\",probe=\"{}\"}} {}", t.addr, t.probe, value(s));
            }
        };
    per_target(
        out,
        "instadns_health_up",
        "gauge",
        "Whether a health-checked address is up (1) or down (0).",
        &|s| u8::from(s.up).to_string(),
    );
    per_target(out, "instadns_health_probes_total", "counter", "Health probes sent, by target.", &|s| {
        s.probes.to_string()
    });
    per_target(
        out,
        "instadns_health_probe_failures_total",
        "counter",
        "Health probes that failed, by target.",
        &|s| s.failures.to_string(),
    );
    per_target(
        out,
        "instadns_health_last_change_seconds",
        "gauge",
        "Unix time of a target's last state change.",
        &|s| format!("{:.3}", s.since.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())),
    );
    help(out, "instadns_health_transitions_total", "counter", "Health state changes of all targets.");
    let _ = writeln!(out, "instadns_health_transitions_total {}", health.transitions.load(Ordering::Relaxed));
}

/// The `instadns health` table: every probed target, its state and why.
fn health_table(handler: &Handler<Database>) -> String {
    let targets = handler.resolver().health().snapshot();
    if targets.is_empty() {
        return "no health-checked addresses (see `instadns cluster set NAME --check ...`)\n".to_owned();
    }
    let mut out = String::from(
        "TARGET                                         PROBE                 STATE  SINCE                 PROBES  FAILED  LAST RESULT  CLUSTERS\n",
    );
    for (t, s) in targets {
        let since = s.since.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let _ = writeln!(
            out,
            "{:<46} {:<21} {:<6} {:<21} {:>6}  {:>6}  {}  {}",
            t.addr.to_string(),
            t.probe,
            if s.up { "up" } else { "down" },
            rfc3339(since),
            s.probes,
            s.failures,
            s.last,
            s.clusters.join(","),
        );
    }
    out
}
