//! The daemon (`instadns serve`): opens the database, binds the sockets, loads (or
//! adopts) the pinned fast path, attaches it, and runs the front ends, the control
//! loops and the metrics listener until SIGTERM; SIGHUP reloads.
//!
//! Part of the binary, on top of every plane of the library.

mod attach;
pub mod config;
pub mod flags;
mod metrics;
mod notify;
mod reload;
mod report;
mod status;

use std::{collections::HashSet, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, bail};
use aya::Ebpf;
use instadns::{
    control::{ChangeCursor, Follower, health},
    engine::{AnswerCache, DEFAULT_CACHE_ENTRIES, Handler, TransferPolicy},
    fastpath::{
        KernelMaps,
        cookies::ServerCookies,
        link_events::LinkEvents,
        loader::{self, XdpConfig},
        pin, pinned_keys,
        rrl::RateLimiter,
    },
    frontend::{
        self,
        tcp::{TcpFrontEnd, TcpLimits},
    },
    protocol::CacheKey,
    resolution::{Resolver, Tag},
    store::{ByoInstances, Database},
};

use config::Config;
use flags::{ServeArgs, serve_config};
use status::DaemonStatus;

/// How often the known names' lease is renewed (and a failed rebuild retried); well
/// within `engine::cache::NEGATIVE_LEASE`.
const KNOWN_TICK: Duration = Duration::from_secs(2);
/// Changes of health state queued for the follower (the prober waits when it is full).
const HEALTH_CHANGES: usize = 64;
/// How often expired answers are swept from the cache and the maps (and the cookies'
/// clock follows the wall clock).
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Imports the configured zone files.
async fn import_zone_files(db: &Database, config: &Config) -> Result<()> {
    for file in &config.zone_files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("zone_files: {}", file.display()))?;
        let (apex, n) =
            db.import_zone(&text, None).await.with_context(|| format!("zone_files: {}", file.display()))?;
        tracing::info!(zone = apex, records = n, file = %file.display(), "zone file imported");
    }
    Ok(())
}

/// Re-resolves `keys` (up to 32 at once), installing fresh answers.
async fn warm(handler: &Handler<Database>, keys: Vec<CacheKey>) {
    use futures_util::StreamExt as _;
    futures_util::stream::iter(keys)
        .for_each_concurrent(32, |key| async move { handler.refresh(&key).await })
        .await;
}

/// Opens the database; a fleet node may start before it, so an unreachable one is
/// retried, as is a SQLite file another writer holds locked (other errors are final).
async fn open_database(config: &Config) -> Result<Database> {
    let timeout = Duration::from_millis(config.database.statement_timeout_ms);
    let mut db = loop {
        let opened = match &config.db_primary {
            Some(primary) => Database::open_serving_replica(&config.db, primary, timeout).await,
            None => Database::open_serving(&config.db, timeout).await,
        };
        match opened {
            Ok(db) => break db,
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unreachable; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("opening the database {}", config.db)),
        }
    };
    if let Some(byo) = &config.instance_db {
        db = db.with_byo(ByoInstances::connect(&byo.url, &byo.sql).await.context("instance_db")?);
        tracing::info!("instances are looked up with the instance_db SQL");
    }
    Ok(db)
}

/// The loaded fast path: the program with its maps pinned by layout, adopted if an
/// earlier daemon left them.
struct FastPath {
    ebpf: Ebpf,
    /// The maps were pinned by an earlier daemon (their entries are adopted).
    adopted: bool,
    /// Layout directories of other versions, to warm from and then remove.
    old_layouts: Vec<PathBuf>,
}

/// The loaded fast path with the maps its owners write.
struct LoadedFastPath {
    fast_path: FastPath,
    kernel: KernelMaps,
    limiter: RateLimiter,
    cookies: ServerCookies,
}

fn load_fast_path(config: &Config) -> Result<LoadedFastPath> {
    let xdp_config = XdpConfig::with_capacity(
        config.port,
        config.edns_payload,
        config.maps.entries,
        config.maps.answer_slots,
    )
    .with_known_names(config.maps.known_names)
    .with_rrl_buckets(config.rrl.buckets);
    pin::prepare(&config.pin_dir)?;
    let layout = pin::layout_dir_name(&xdp_config);
    let layout_dir = config.pin_dir.join(&layout);
    let adopted = pin::has_maps(&layout_dir);
    let old_layouts = pin::other_layouts(&config.pin_dir, &layout);
    std::fs::create_dir_all(&layout_dir).with_context(|| format!("pin_dir: {}", layout_dir.display()))?;
    let mut ebpf = loader::load_with_pins(&xdp_config, Some(&layout_dir))?;
    let kernel = KernelMaps::from_ebpf(&mut ebpf, xdp_config.answer_slots)?;
    let limiter =
        RateLimiter::kernel(&mut ebpf, config.rrl.settings()).context("[rrl]: writing the rate limits")?;
    let cookies = ServerCookies::kernel(&mut ebpf, &config.cookies.settings())
        .context("[cookies]: writing the secret")?;
    Ok(LoadedFastPath { fast_path: FastPath { ebpf, adopted, old_layouts }, kernel, limiter, cookies })
}

/// Descriptors besides the TCP connections: sockets, maps, the database, /metrics.
const FILES_BESIDES_TCP: u64 = 512;

/// Raises the soft descriptor limit to the hard one when the TCP cap needs it (the
/// usual soft limit, 1024, is the default cap itself): a full table must make accept
/// fail for no one.
fn ensure_file_limit(config: &Config) {
    let needed = config.tcp.max_connections as u64 * config.listen.len() as u64 + FILES_BESIDES_TCP;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write and read the one struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= needed {
        return;
    }
    let raised = libc::rlimit { rlim_cur: limit.rlim_max.min(needed.max(limit.rlim_cur)), ..limit };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 || raised.rlim_cur < needed {
        tracing::warn!(
            soft = raised.rlim_cur,
            needed,
            "the open-file limit is below what [tcp] max_connections needs: raise LimitNOFILE or lower max_connections"
        );
    }
}

pub async fn serve(args: &ServeArgs) -> Result<()> {
    let config = serve_config(args)?;
    ensure_file_limit(&config);
    let db = open_database(&config).await?;
    import_zone_files(&db, &config).await?;
    // Where the change log stands, before the data it describes is read: a change
    // committed while the catalog and the known names load is applied after.
    let cursor = ChangeCursor::start(&db).await.context("reading the change log")?;
    let resolver = Arc::new(Resolver::new(db.clone()).await.context("loading zones from the database")?);
    if resolver.catalog().is_some_and(|c| c.zones().next().is_none()) {
        tracing::warn!(
            db = %config.db,
            "the database holds no zones: every query is REFUSED (add zones with `instadns zone add`, or load the demo with `instadns db demo`)"
        );
    }

    // Sockets first: once XDP is attached, what it passes up must find a listener.
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for ip in &config.listen {
        let addr = SocketAddr::new(*ip, config.port);
        udp.push(Arc::new(frontend::bind_udp(addr)?));
        tcp.push(frontend::bind_tcp(addr)?);
        tracing::info!(%addr, "listening on UDP and TCP");
    }

    let (mut fast_path, kernel, limiter, cookies) = match config.interfaces.is_empty() {
        true => (
            None,
            None,
            RateLimiter::in_memory(config.rrl.settings()),
            ServerCookies::in_memory(&config.cookies.settings()),
        ),
        false => {
            let loaded = load_fast_path(&config)?;
            (Some(loaded.fast_path), Some(loaded.kernel), loaded.limiter, loaded.cookies)
        }
    };
    if config.cookies.enabled && config.cookies.secret.is_none() {
        tracing::info!(
            "DNS cookies use a random secret of this start: set [cookies] secret to share one across nodes"
        );
    }
    if config.rrl.responses_per_second == 0 {
        tracing::info!("response rate limiting is off ([rrl] responses_per_second = 0)");
    }
    // The userspace cache holds at least what the kernel maps can, or installs stop.
    let cache_entries = DEFAULT_CACHE_ENTRIES.max(config.maps.entries as usize * 2);
    let old_layouts = fast_path.as_ref().map(|f| f.old_layouts.clone()).unwrap_or_default();
    let adopted = fast_path.as_ref().is_some_and(|f| f.adopted);
    let cache = Arc::new(AnswerCache::new(cache_entries, kernel));
    let handler = Arc::new(
        Handler::new(resolver, cache.clone(), config.edns_payload)
            .with_policy(config.ttl.policy())
            .with_lookup_budget(config.database.lookups_per_zone)
            .with_rate_limiter(Arc::new(limiter))
            .with_cookies(Arc::new(cookies))
            .with_transfer_policy(TransferPolicy { allow_networks: config.transfer.allow_networks.clone() }),
    );
    if let Some(catalog) = handler.resolver().catalog() {
        cache.set_territories(catalog.territories.prefixes());
    }

    let adopted_keys = if adopted { cache.adopt_kernel_entries() } else { Vec::new() };
    if adopted {
        tracing::info!(names = adopted_keys.len(), "adopted the pinned maps of the previous daemon");
    }
    // New maps replacing another layout are filled before the swap, so hits continue.
    for dir in &old_layouts {
        let keys = pinned_keys(dir);
        tracing::info!(names = keys.len(), old = %dir.display(), "warming new maps from the previous layout");
        warm(&handler, keys).await;
    }
    attach::mark_ours(&cache, &config.interfaces, &config.listen);
    // The known names before the program is swapped in, so its NXDOMAIN answers go on.
    let follower = Follower::new(db.clone(), handler.clone())
        .with_keep_changes(Duration::from_secs(config.database.keep_changes_hours * 3600));
    if adopted {
        handler.adopt_published_names();
    }
    follower.build_known().await;
    if adopted {
        handler.prune_adopted_names();
    }
    let mut attached = Vec::new();
    if let Some(fast_path) = fast_path.as_mut() {
        // Links left for interfaces that are gone are dead: never adopt one.
        for iface in pin::remove_stale_links(&config.pin_dir) {
            tracing::warn!(iface, "removed the pinned link of an interface that is gone");
        }
        for iface in &config.interfaces {
            attached.push(attach::attach_iface(&mut fast_path.ebpf, &config.pin_dir, iface)?);
        }
    }
    for dir in &old_layouts {
        pin::remove_layout(dir);
    }

    let tcp_front = TcpFrontEnd::new(TcpLimits {
        max_connections: config.tcp.max_connections,
        max_per_client: config.tcp.max_per_client,
        idle_timeout: Duration::from_secs(config.tcp.idle_timeout),
        buffer_bytes: config.tcp.buffer_bytes,
        ..TcpLimits::default()
    });
    let mut tasks = tokio::task::JoinSet::new();
    for socket in udp {
        tasks.spawn(frontend::udp::serve(socket, handler.clone()));
    }
    for listener in tcp {
        tasks.spawn(frontend::tcp::serve(listener, handler.clone(), tcp_front.clone()));
    }
    let status = Arc::new(DaemonStatus {
        attached: std::sync::Mutex::new(attached),
        xdp: !config.interfaces.is_empty(),
        db: db.clone(),
        follower: follower.stats.clone(),
        tcp: tcp_front.connections.clone(),
        notifies: Default::default(),
        readiness: Default::default(),
    });
    if let Some(addr) = config.metrics {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics {addr}"))?;
        tracing::info!(%addr, "serving /metrics, /health and /ready");
        tasks.spawn(metrics::serve(listener, handler.clone(), status.clone()));
    }
    if let Some(addr) = config.api.listen {
        let tls = match (&config.api.tls_certificate, &config.api.tls_key) {
            (Some(certificate), Some(key)) => Some(instadns::api::listener::tls_acceptor(certificate, key)?),
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("api {addr}"))?;
        tracing::info!(%addr, https = tls.is_some(), "serving the HTTP management API");
        let state =
            instadns::api::ApiState { db: db.clone(), health: Some(handler.resolver().health().clone()) };
        tasks.spawn(instadns::api::listener::serve(listener, instadns::api::router(state), tls));
    }
    // Health checks: a state change re-resolves the answers of the clusters using it.
    let (health_tx, mut health_rx) = tokio::sync::mpsc::channel::<Vec<i64>>(HEALTH_CHANGES);
    let health_follower = follower.clone();
    tasks.spawn(async move {
        while let Some(mut clusters) = health_rx.recv().await {
            while let Ok(more) = health_rx.try_recv() {
                clusters.extend(more);
            }
            let tags: HashSet<Tag> = clusters.into_iter().map(Tag::Cluster).collect();
            health_follower.invalidate(&tags).await;
        }
    });
    let resolver = handler.resolver();
    tasks.spawn(health::run(resolver.health().clone(), resolver.probe_plans(), health_tx));
    tasks.spawn(follower.clone().run(cursor));
    tasks.spawn(instadns::control::notify::announce(
        resolver.clone(),
        instadns::control::notify::NotifyTargets {
            secondaries: config.transfer.notify.clone(),
            key: config.transfer.notify_key.clone(),
        },
        status.notifies.clone(),
    ));
    // A fleet shares a PostgreSQL; a SQLite database is one node's (and a report every
    // few seconds would make the daemon a writer contending with the CLI).
    if db.is_postgres() {
        tasks.spawn(
            report::Reporter {
                db: db.clone(),
                handler: handler.clone(),
                follower: follower.stats.clone(),
                name: config.fleet.node_name(),
                every: Duration::from_secs(config.fleet.report_every_s),
                listen: config.listen.clone(),
                map_capacity: if config.interfaces.is_empty() { 0 } else { u64::from(config.maps.entries) },
            }
            .run(),
        );
    }
    // The fast path trusts the known names for a lease: renewed while we follow.
    let known_follower = follower.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(KNOWN_TICK);
        loop {
            tick.tick().await;
            known_follower.ensure_known().await;
        }
    });
    if !adopted_keys.is_empty() {
        // Re-resolve what the kernel held (it keeps answering meanwhile).
        let handler = handler.clone();
        tasks.spawn(async move {
            let n = adopted_keys.len();
            let started = std::time::Instant::now();
            warm(&handler, adopted_keys).await;
            tracing::info!(names = n, took = ?started.elapsed(), "re-resolved the adopted names");
            std::future::pending::<()>().await;
        });
    }
    let stale_max = Duration::from_secs(config.ttl.stale_max);
    let cookies = handler.cookies().clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            cache.sweep(stale_max);
            cookies.follow_clock();
        }
    });
    tracing::info!("instadns ready");
    notify::notify("READY=1");

    let mut ebpf = fast_path.map(|f| f.ebpf);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut config = config;
    let mut queue_watch = tokio::time::interval(attach::QUEUE_WATCH);
    // Address and link changes as the kernel announces them; the poll above stays as
    // the fallback (and follows receive queue counts, which are not announced).
    let link_events = match (&ebpf, LinkEvents::open()) {
        (None, _) => None,
        (Some(_), Ok(events)) => Some(events),
        (Some(_), Err(e)) => {
            tracing::warn!(error = %e, "cannot subscribe to address changes; following them every 2 s");
            None
        }
    };
    let link_changed = || async {
        match &link_events {
            Some(events) => events.changed().await,
            None => std::future::pending().await,
        }
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = queue_watch.tick() => {
                if let Some(ebpf) = ebpf.as_mut() {
                    attach::follow_links(ebpf, &config.pin_dir, &config.interfaces, &status);
                    attach::follow_queue_counts(ebpf, &config.pin_dir, &config.interfaces, &status);
                    attach::mark_ours(handler.cache(), &config.interfaces, &config.listen);
                }
            }
            changed = link_changed() => {
                if let Err(e) = changed {
                    tracing::debug!(error = %e, "reading address changes failed");
                }
                if let Some(ebpf) = ebpf.as_mut() {
                    attach::mark_ours(handler.cache(), &config.interfaces, &config.listen);
                    attach::follow_links(ebpf, &config.pin_dir, &config.interfaces, &status);
                }
            }
            _ = hup.recv() => {
                notify::notify("RELOADING=1");
                match reload::reload(&mut config, args, &db, &handler, ebpf.as_mut(), &status).await {
                    Ok(()) => tracing::info!("configuration and zones reloaded"),
                    Err(e) => tracing::error!(error = format!("{e:#}"), "reload failed; keeping the running configuration"),
                }
                notify::notify("READY=1");
            }
            _ = tasks.join_next() => bail!("a server task ended unexpectedly"),
        }
    }
    notify::notify("STOPPING=1");
    if config.detach_on_exit {
        drop(ebpf);
        let removed = pin::detach_all(&config.pin_dir)?;
        tracing::info!(pins = removed.len(), "detached the fast path and removed its pins");
    } else if ebpf.is_some() {
        tracing::info!("stopping; the pinned fast path keeps answering what its maps hold");
    }
    Ok(())
}
