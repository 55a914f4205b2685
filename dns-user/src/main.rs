//! The `instadns` binary: the daemon and its command-line tools.

mod cli;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr as _,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Parser as _;
use hickory_proto::rr::RecordType;
use instadns::{
    answer,
    config::{Config, DEFAULT_CONFIG, DEFAULT_CONFIG_PATH, DEFAULT_PIN_DIR, InstanceDb, Interface},
    fastpath::{
        AnswerCache, CacheKey, DEFAULT_CACHE_ENTRIES, KernelMaps, MapUsage,
        loader::{self, XdpConfig, XdpModeArg},
        pin, pinned_keys,
    },
    invalidation::Follower,
    notify,
    resolver::{Resolver, Tag, catalog::parse_name},
    server::{
        self, Handler,
        metrics::{Attached, DaemonStatus},
        tcp::TcpLimits,
    },
    steering::{self, territory::Prefix},
    store::{
        AcmeChallenge, ByoInstances, CheckRow, Database, DbLocation,
        admin::{ClusterUpdate, NewZone},
        rfc3339, unix_now,
    },
};
use tracing_subscriber::EnvFilter;

use cli::{
    AcmeCommand, Cli, ClusterCommand, Command, DbCommand, DomainCommand, InstanceCommand, ServeArgs,
    TerritoryCommand, TtlCommand, ZoneCommand,
};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // A command's output piped into `head` ends quietly, as other Unix tools do,
        // instead of failing on a closed stdout. The daemon keeps Rust's default
        // (SIGPIPE ignored: a client closing a TCP connection is an error to handle).
        // SAFETY: setting a signal disposition before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("instadns: error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    // Blocking work still running (a database call) must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("instadns: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(&args).await,
        Command::Query { name, qtype, db } => query(&name, &qtype, &open_db(&db.url()).await?).await,
        Command::Db { command } => db_command(command).await,
        Command::Zone { db, command } => zone_command(&open_db(&db.url()).await?, command).await,
        Command::Cluster { db, command } => cluster_command(&open_db(&db.url()).await?, command).await,
        Command::Instance { db, command } => instance_command(&open_db(&db.url()).await?, command).await,
        Command::Ttl { db, command } => ttl_command(&open_db(&db.url()).await?, command).await,
        Command::Territory { db, command } => territory_command(&open_db(&db.url()).await?, command).await,
        Command::Health { metrics } => health(metrics).await,
        Command::Domain { db, command } => domain_command(&open_db(&db.url()).await?, command).await,
        Command::Acme { db, command } => acme_command(&open_db(&db.url()).await?, command).await,
        Command::CheckConfig { file } => {
            let path = file.unwrap_or_else(|| DEFAULT_CONFIG_PATH.into());
            Config::load(&path)?;
            println!("{}: OK", path.display());
            Ok(())
        }
        Command::DefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Status { pins, interval } => status(&pin_dir(&pins)?, interval).await,
        Command::Detach { pins } => {
            let dir = pin_dir(&pins)?;
            let removed = pin::detach_all(&dir)?;
            if removed.is_empty() {
                println!("nothing pinned under {}", dir.display());
            } else {
                println!("removed {} from {}: {}", removed.len(), dir.display(), removed.join(", "));
            }
            Ok(())
        }
    }
}

async fn open_db(url: &str) -> Result<Database> {
    let location = DbLocation::parse(url).context("--db")?;
    Database::open(&location).await.with_context(|| format!("opening the database {url}"))
}

/// The configuration file's settings with the flags' overrides.
fn serve_config(args: &ServeArgs) -> Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => Config::load(Path::new(DEFAULT_CONFIG_PATH))?,
        None => Config::default(),
    };
    if let Some(db) = &args.db.db {
        config.db = db.clone();
    }
    if !args.ifaces.is_empty() {
        config.interfaces = args
            .ifaces
            .iter()
            .map(|name| Interface { name: name.clone(), xdp_mode: args.xdp_mode.unwrap_or(XdpModeArg::Auto) })
            .collect();
    } else if let Some(mode) = args.xdp_mode {
        config.interfaces.iter_mut().for_each(|i| i.xdp_mode = mode);
    }
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    config.port = args.port.unwrap_or(config.port);
    config.edns_payload = args.edns_payload.unwrap_or(config.edns_payload);
    config.maps.entries = args.map_entries.unwrap_or(config.maps.entries);
    config.maps.answer_slots = args.answer_slots.unwrap_or(config.maps.answer_slots);
    config.metrics = args.metrics.or(config.metrics);
    config.tcp.max_connections = args.tcp_max_connections.unwrap_or(config.tcp.max_connections);
    config.tcp.idle_timeout = args.tcp_idle_timeout.unwrap_or(config.tcp.idle_timeout);
    if let Some(dir) = &args.pin_dir {
        config.pin_dir = dir.clone();
    }
    config.detach_on_exit |= args.detach_on_exit;
    if let (Some(url), Some(sql)) = (&args.instance_db, &args.instance_sql) {
        config.instance_db = Some(InstanceDb { url: url.clone(), sql: sql.clone() });
    }
    if args.no_xdp {
        config.interfaces.clear();
    } else if config.interfaces.is_empty() {
        bail!(
            "no interface to attach XDP to: give --iface IFACE, add an [[interface]] to the configuration, or run with --no-xdp"
        );
    }
    Ok(config)
}

fn pin_dir(args: &cli::PinArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.pin_dir {
        return Ok(dir.clone());
    }
    let path = args.config.clone().unwrap_or_else(|| DEFAULT_CONFIG_PATH.into());
    if args.config.is_some() || path.exists() {
        return Ok(Config::load(&path)?.pin_dir);
    }
    Ok(DEFAULT_PIN_DIR.into())
}

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

async fn serve(args: &ServeArgs) -> Result<()> {
    let config = serve_config(args)?;
    let location = DbLocation::parse(&config.db).context("db")?;
    // A fleet node may start before its database: keep trying (SQLite errors are final).
    let mut db = loop {
        match Database::open(&location).await {
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
    import_zone_files(&db, &config).await?;
    let resolver = Arc::new(Resolver::new(db.clone()).await.context("loading zones from the database")?);

    // Sockets first: once XDP is attached, what it passes up must find a listener.
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for ip in &config.listen {
        let addr = SocketAddr::new(*ip, config.port);
        udp.push(Arc::new(server::bind_udp(addr)?));
        tcp.push(server::bind_tcp(addr)?);
        tracing::info!(%addr, "listening on UDP and TCP");
    }

    // The fast path: maps pinned by layout, adopted if an earlier daemon left them.
    let xdp_config = XdpConfig::with_capacity(
        config.port,
        config.edns_payload,
        config.maps.entries,
        config.maps.answer_slots,
    );
    let mut ebpf = None;
    let mut kernel = None;
    let mut old_layouts = Vec::new();
    let mut adopted_layout = false;
    if !config.interfaces.is_empty() {
        pin::prepare(&config.pin_dir)?;
        let layout = pin::layout_dir_name(&xdp_config);
        let layout_dir = config.pin_dir.join(&layout);
        adopted_layout = pin::has_maps(&layout_dir);
        old_layouts = pin::other_layouts(&config.pin_dir, &layout);
        std::fs::create_dir_all(&layout_dir).with_context(|| format!("pin_dir: {}", layout_dir.display()))?;
        let mut loaded = loader::load_with_pins(&xdp_config, Some(&layout_dir))?;
        kernel = Some(KernelMaps::from_ebpf(&mut loaded, xdp_config.answer_slots)?);
        ebpf = Some(loaded);
    }
    // The userspace cache holds at least what the kernel maps can, or installs stop.
    let cache_entries = DEFAULT_CACHE_ENTRIES.max(config.maps.entries as usize * 2);
    let cache = Arc::new(AnswerCache::new(cache_entries, kernel));
    let handler = Arc::new(Handler::new(resolver, cache.clone(), config.edns_payload));
    if let Some(catalog) = handler.resolver().catalog() {
        cache.set_territories(&catalog.territories);
    }

    let adopted_keys = if adopted_layout { cache.adopt_kernel_entries() } else { Vec::new() };
    if adopted_layout {
        tracing::info!(names = adopted_keys.len(), "adopted the pinned maps of the previous daemon");
    }
    // New maps replacing another layout are filled before the swap, so hits continue.
    for dir in &old_layouts {
        let keys = pinned_keys(dir);
        tracing::info!(names = keys.len(), old = %dir.display(), "warming new maps from the previous layout");
        warm(&handler, keys).await;
    }
    let mut attached = Vec::new();
    if let Some(ebpf) = ebpf.as_mut() {
        for iface in &config.interfaces {
            attached.push(attach_iface(ebpf, &config.pin_dir, iface)?);
        }
    }
    for dir in &old_layouts {
        for m in std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok()) {
            let _ = std::fs::remove_file(m.path());
        }
        let _ = std::fs::remove_dir(dir);
    }

    let limits = TcpLimits {
        max_connections: config.tcp.max_connections,
        idle_timeout: Duration::from_secs(config.tcp.idle_timeout),
        ..TcpLimits::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for socket in udp {
        tasks.spawn(server::udp::serve(socket, handler.clone()));
    }
    for listener in tcp {
        tasks.spawn(server::tcp::serve(listener, handler.clone(), limits));
    }
    let follower = Follower::new(db.clone(), handler.clone());
    let status = Arc::new(DaemonStatus {
        attached: std::sync::Mutex::new(attached),
        xdp: !config.interfaces.is_empty(),
        db: db.clone(),
        follower: follower.stats.clone(),
    });
    if let Some(addr) = config.metrics {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics {addr}"))?;
        tracing::info!(%addr, "serving /metrics, /health and /ready");
        tasks.spawn(server::metrics::serve(listener, handler.clone(), status.clone()));
    }
    // Health checks: a state change re-resolves the answers of the clusters using it.
    let (health_tx, mut health_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<i64>>();
    let health_follower = follower.clone();
    tasks.spawn(async move {
        while let Some(mut clusters) = health_rx.recv().await {
            while let Ok(more) = health_rx.try_recv() {
                clusters.extend(more);
            }
            let tags: std::collections::HashSet<Tag> = clusters.into_iter().map(Tag::Cluster).collect();
            health_follower.invalidate(&tags).await;
        }
    });
    let health_resolver = handler.resolver().clone();
    tasks.spawn(steering::health::run(
        health_resolver.health().clone(),
        move || health_resolver.catalog(),
        health_tx,
    ));
    tasks.spawn(follower.run());
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
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            cache.sweep(stale_max);
        }
    });
    tracing::info!("instadns ready");
    notify::notify("READY=1");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut config = config;
    let mut queue_watch = tokio::time::interval(QUEUE_WATCH);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = queue_watch.tick() => {
                if let Some(ebpf) = ebpf.as_mut() {
                    follow_queue_counts(ebpf, &config.pin_dir, &config.interfaces, &status);
                }
            }
            _ = hup.recv() => {
                notify::notify("RELOADING=1");
                match reload(&mut config, args, &db, &handler, ebpf.as_mut(), &status).await {
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

/// SIGHUP: re-reads the configuration file (the flags still override it), imports its
/// zone files, reloads the zones, and attaches or detaches interfaces added to or removed
/// from it. Settings that need a restart are reported.
async fn reload(
    config: &mut Config,
    args: &ServeArgs,
    db: &Database,
    handler: &Handler<Database>,
    ebpf: Option<&mut aya::Ebpf>,
    status: &DaemonStatus,
) -> Result<()> {
    let fresh = serve_config(args)?;
    import_zone_files(db, &fresh).await?;
    handler.resolver().reload().await?;
    if let Some(catalog) = handler.resolver().catalog() {
        handler.cache().set_territories(&catalog.territories);
    }
    if let Some(ebpf) = ebpf {
        let mut attached = Vec::new();
        for iface in &fresh.interfaces {
            match config.interfaces.iter().find(|c| c.name == iface.name) {
                Some(current) if current.xdp_mode == iface.xdp_mode => {}
                _ => attached.push(attach_iface(ebpf, &config.pin_dir, iface)?),
            }
        }
        let mut list = status.attached.lock().map_err(|_| anyhow!("attachment list poisoned"))?;
        for iface in config.interfaces.iter().filter(|c| !fresh.interfaces.iter().any(|i| i.name == c.name)) {
            pin::detach_iface(&config.pin_dir, &iface.name)?;
            tracing::info!(iface = iface.name, "XDP fast path detached on reload");
            list.retain(|a| a.iface != iface.name);
        }
        for a in attached {
            list.retain(|l| l.iface != a.iface);
            list.push(a);
        }
        config.interfaces = fresh.interfaces.clone();
    }
    if fresh.listen != config.listen
        || fresh.port != config.port
        || fresh.db != config.db
        || fresh.maps != config.maps
        || fresh.pin_dir != config.pin_dir
    {
        tracing::warn!("listen, port, db, maps and pin_dir changes take effect at the next restart");
    }
    config.zone_files = fresh.zone_files;
    config.detach_on_exit = fresh.detach_on_exit;
    Ok(())
}

/// Attaches (or adopts) the fast path on `iface`, reading its receive queues first.
fn attach_iface(ebpf: &mut aya::Ebpf, pin_dir: &Path, iface: &Interface) -> Result<Attached> {
    let rx_queues = instadns::fastpath::iface::rx_queues(&iface.name).with_context(|| {
        format!("interface {}: no such interface in this network namespace (see `ip link`)", iface.name)
    })?;
    let (mode, how) = match pin::attach(ebpf, pin_dir, &iface.name, iface.xdp_mode)? {
        pin::Attachment::New(m) => (m, "attached"),
        pin::Attachment::Adopted(m) => (m, "took over the pinned link (program swapped atomically)"),
    };
    tracing::info!(iface = iface.name, %mode, rx_queues, "XDP fast path {how}");
    Ok(Attached { iface: iface.name.clone(), mode: mode.label().to_owned(), rx_queues })
}

/// How often the receive queue counts are compared with those at attach time.
const QUEUE_WATCH: Duration = Duration::from_secs(2);

/// Re-attaches interfaces whose receive queue count changed (queues added after the
/// attach would run without the program). Meanwhile userspace answers what XDP would.
fn follow_queue_counts(
    ebpf: &mut aya::Ebpf,
    pin_dir: &Path,
    interfaces: &[Interface],
    status: &DaemonStatus,
) {
    let Ok(mut list) = status.attached.lock() else { return };
    for entry in list.iter_mut() {
        let Some(now) = instadns::fastpath::iface::rx_queues(&entry.iface) else { continue };
        if now == entry.rx_queues {
            continue;
        }
        let Some(iface) = interfaces.iter().find(|i| i.name == entry.iface) else { continue };
        tracing::warn!(
            iface = entry.iface,
            before = entry.rx_queues,
            now,
            "the receive queue count changed: re-attaching so every queue runs the program"
        );
        let result = pin::detach_iface(pin_dir, &entry.iface)
            .map_err(anyhow::Error::from)
            .and_then(|_| attach_iface(ebpf, pin_dir, iface));
        match result {
            Ok(a) => *entry = a,
            Err(e) => tracing::error!(iface = entry.iface, error = format!("{e:#}"), "re-attaching failed"),
        }
    }
}

/// `instadns status`: what the pinned fast path is doing.
async fn status(pin_dir: &Path, interval: f64) -> Result<()> {
    use aya::maps::{Map, MapData, PerCpuArray};
    use dns_common::{maps::STATS_MAP_NAME, stats::Outcome};
    let links = pin::pinned_links(pin_dir);
    if links.is_empty() {
        println!("no XDP attachment pinned under {}", pin_dir.display());
    }
    for (iface, mode) in &links {
        println!("interface {iface}: XDP {mode}");
    }
    let layouts: Vec<PathBuf> = std::fs::read_dir(pin_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("layout-")))
        .collect();
    for dir in &layouts {
        let names = pinned_keys(dir).len();
        let mut capacity = 0;
        for m in pin::PINNED_MAPS.iter().take(4) {
            if let Some(u) = MapUsage::of_pin(m, &dir.join(m)) {
                capacity += u.max_entries as u64;
            }
        }
        println!(
            "maps {}: {names} names of {capacity} ({:.1}% full)",
            dir.display(),
            names as f64 * 100.0 / capacity.max(1) as f64
        );
        let stats_path = dir.join(STATS_MAP_NAME);
        let read = || -> Result<Vec<u64>> {
            let data = MapData::from_pin(&stats_path).context("opening the pinned counters")?;
            let counters = PerCpuArray::<MapData, u64>::try_from(Map::PerCpuArray(data))?;
            Ok(Outcome::ALL
                .iter()
                .map(|o| counters.get(&(*o as u32), 0).map(|v| v.iter().sum()).unwrap_or(0))
                .collect())
        };
        let before = read()?;
        tokio::time::sleep(Duration::from_secs_f64(interval)).await;
        let after = read()?;
        let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        let dns = |v: &[u64]| {
            v.iter()
                .zip(Outcome::ALL)
                .filter(|(_, o)| *o != Outcome::PassNotDns)
                .map(|(n, _)| *n)
                .sum::<u64>()
        };
        let hit = Outcome::Hit as usize;
        println!(
            "queries: {:.0}/s now, {:.1}% answered by XDP now, {:.1}% since the counters started ({} queries)",
            dns(&delta) as f64 / interval,
            delta[hit] as f64 * 100.0 / dns(&delta).max(1) as f64,
            after[hit] as f64 * 100.0 / dns(&after).max(1) as f64,
            dns(&after)
        );
        for (o, n) in Outcome::ALL.iter().zip(&after) {
            println!("  {:<20} {n}", o.name());
        }
    }
    Ok(())
}

async fn query(name: &str, qtype: &str, db: &Database) -> Result<()> {
    let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
        .with_context(|| format!("TYPE: unknown query type {qtype:?}"))?;
    let absolute = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
    let qname = parse_name(&absolute).map_err(anyhow::Error::msg).context("NAME")?;
    let resolver = Resolver::new(db.clone()).await?;
    let res = resolver.resolve(&qname, qtype).await?;
    println!(";; {qname} {qtype}: {}", server::metrics::rcode_name(res.rcode));
    for (title, records) in [
        ("ANSWER", &res.sections.answers),
        ("AUTHORITY", &res.sections.authority),
        ("ADDITIONAL", &res.sections.additional),
    ] {
        if !records.is_empty() {
            println!(";; {title}");
            for r in records {
                println!("{r}");
            }
        }
    }
    match res.cache_ttl {
        Some(ttl) => println!(";; cacheable for {ttl}s (served by XDP once asked)"),
        None => println!(";; not cacheable"),
    }
    println!(";; why:");
    for step in &res.trace {
        println!(";;   {step}");
    }
    let encoded = answer::encode(
        &qname,
        u16::from(qtype),
        res.rcode,
        res.authoritative,
        &res.sections,
        res.rotate.clone(),
    )?;
    println!(";; {} bytes after the question", encoded.data.len());
    Ok(())
}

async fn db_command(command: DbCommand) -> Result<()> {
    match command {
        DbCommand::Migrate { db } => {
            open_db(&db.url()).await?;
            println!("schema up to date");
        }
        DbCommand::Demo { db } => {
            let db = open_db(&db.url()).await?;
            db.seed_demo().await.context("loading the demo data (into an empty database)")?;
            println!("demo data loaded");
        }
    }
    Ok(())
}

async fn zone_command(db: &Database, command: ZoneCommand) -> Result<()> {
    match command {
        ZoneCommand::Add { apex, ns, mname, rname, ttl, minimum, rules } => {
            let mname = mname
                .or_else(|| ns.first().cloned())
                .context("--ns: a zone needs at least one name server")?;
            let rname = rname.unwrap_or_else(|| format!("hostmaster.{}", apex.trim_end_matches('.')));
            let rules =
                rules.iter().map(|r| cli::parse_rule(r)).collect::<Result<Vec<_>>>().context("--rule")?;
            db.add_zone(&NewZone {
                apex: apex.clone(),
                soa_mname: mname,
                soa_rname: rname,
                ns,
                soa_minimum: minimum,
                ttl,
                rules,
            })
            .await?;
            println!("zone {apex} added");
        }
        ZoneCommand::List => {
            for (z, ns, rules) in db.list_zones().await? {
                println!(
                    "{}  SOA {} {} serial {}  NS {}",
                    z.apex,
                    z.soa_mname,
                    z.soa_rname,
                    z.soa_serial,
                    ns.join(" ")
                );
                for (pattern, kind, ttl) in rules {
                    println!("    rule {pattern} -> {kind} (TTL {ttl})");
                }
            }
        }
        ZoneCommand::Import { file, origin } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("FILE {}", file.display()))?;
            let (apex, n) = db
                .import_zone(&text, origin.as_deref())
                .await
                .with_context(|| format!("FILE {}", file.display()))?;
            println!("zone {apex}: {n} records imported");
        }
        ZoneCommand::Export { zone } => print!("{}", db.export_zone(&zone).await.context("ZONE")?),
        ZoneCommand::Rule { command } => match command {
            cli::RuleCommand::Add { zone, pattern, kind, ttl } => {
                db.add_rule(&zone, &pattern, &kind, ttl).await?;
                println!("rule {pattern} -> {kind} added to {zone}");
            }
            cli::RuleCommand::Rm { zone, pattern } => {
                db.remove_rule(&zone, &pattern).await?;
                println!("rule {pattern} removed from {zone}");
            }
        },
        ZoneCommand::Record { command } => match command {
            cli::RecordCommand::Add { zone, name, rtype, data, ttl } => {
                db.add_record(&zone, &name, &rtype, ttl, &data).await?;
                println!("record added");
            }
        },
    }
    Ok(())
}

fn cluster_update(args: cli::ClusterArgs) -> Result<ClusterUpdate> {
    Ok(ClusterUpdate {
        set_services: args
            .services
            .iter()
            .map(|s| cli::parse_service(s))
            .collect::<Result<_>>()
            .context("--service")?,
        remove_services: args.remove_services,
        add_addresses: args.addresses,
        remove_addresses: args.remove_addresses,
        address_order: args.order,
        pick: args.pick,
        fallback: args.fallback,
        check: match &args.check {
            None => None,
            Some(text) => {
                let (kind, port, path) = cli::parse_check(text).map_err(|e| anyhow!("--check {e}"))?;
                Some(CheckRow {
                    cluster_id: 0,
                    kind,
                    port,
                    path,
                    host: args.check_host,
                    expect_status: args.check_expect,
                    interval_ms: args.check_interval_ms,
                    timeout_ms: args.check_timeout_ms,
                    rise: args.rise,
                    fall: args.fall,
                })
            }
        },
        remove_check: args.no_check,
    })
}

/// Networks from `--file` (one per line, '#' comments) and `--prefix`.
fn territory_prefixes(prefixes: Vec<Prefix>, file: Option<&Path>) -> Result<Vec<Prefix>> {
    let mut out = prefixes;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("--file {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            out.push(line.parse().map_err(|e| anyhow!("{}:{}: {e}", path.display(), n + 1))?);
        }
    }
    Ok(out)
}

async fn territory_command(db: &Database, command: TerritoryCommand) -> Result<()> {
    match command {
        TerritoryCommand::Add { name, prefixes, file } => {
            let prefixes = territory_prefixes(prefixes, file.as_deref())?;
            db.set_territory(&name, true, false, &prefixes, &[]).await?;
            println!("territory {name} added with {} network(s)", prefixes.len());
        }
        TerritoryCommand::Set { name, prefixes, remove_prefixes, file } => {
            let replace = file.is_some();
            let prefixes = territory_prefixes(prefixes, file.as_deref())?;
            db.set_territory(&name, false, replace, &prefixes, &remove_prefixes).await?;
            println!("territory {name} updated");
        }
        TerritoryCommand::Remove { name } => {
            db.remove_territory(&name).await?;
            println!("territory {name} removed");
        }
        TerritoryCommand::List => {
            for (name, prefixes) in db.list_territories().await? {
                println!("{name}  {} network(s)", prefixes.len());
                for p in prefixes {
                    println!("    {p}");
                }
            }
        }
    }
    Ok(())
}

/// `instadns health`: the daemon's view of its health-checked addresses.
async fn health(metrics: SocketAddr) -> Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(metrics)
        .await
        .with_context(|| format!("connecting to the daemon's metrics address {metrics} (is `instadns serve` running with metrics = \"{metrics}\"?)"))?;
    stream.write_all(b"GET /health/targets HTTP/1.0\r\n\r\n").await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    print!("{body}");
    Ok(())
}

async fn cluster_command(db: &Database, command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Add { name, args } => {
            let order = args.order.clone().unwrap_or_else(|| "fixed".into());
            db.add_cluster(&name, &order, &cluster_update(args)?).await?;
            println!("cluster {name} added");
        }
        ClusterCommand::Set { name, args } => {
            db.set_cluster(&name, &cluster_update(args)?).await.context("NAME")?;
            println!("cluster {name} updated");
        }
        ClusterCommand::List => {
            for c in db.list_clusters().await? {
                println!(
                    "{}  order {}  pick {}  fallback {}  instances {}",
                    c.cluster.name, c.cluster.address_order, c.cluster.pick, c.cluster.fallback, c.instances
                );
                if let Some(k) = &c.check {
                    let what = if k.kind == "http" {
                        format!("http:{}{} expect {}", k.port, k.path, k.expect_status)
                    } else {
                        format!("tcp:{}", k.port)
                    };
                    println!(
                        "    check {what} every {} ms, timeout {} ms, rise {} fall {}",
                        k.interval_ms, k.timeout_ms, k.rise, k.fall
                    );
                }
                for (service, target) in &c.services {
                    println!("    service {service} -> {target}");
                }
                for a in &c.addresses {
                    println!("    address {a}");
                }
            }
        }
    }
    Ok(())
}

async fn ttl_command(db: &Database, command: TtlCommand) -> Result<()> {
    match command {
        TtlCommand::Apply { target, ttl, clear: _, dry_run } => {
            let target = match (target.cluster, target.instance, target.name) {
                (Some(c), _, _) => instadns::ttl::Target::Cluster(c),
                (_, Some(id), _) => instadns::ttl::Target::Instance(id),
                (_, _, Some(name)) => instadns::ttl::Target::Name(name),
                (None, None, None) => bail!("give --cluster, --instance or --name"),
            };
            // clap makes --ttl and --clear exclusive and one of them required.
            let applied = instadns::ttl::apply(db, &target, ttl, dry_run).await?;
            for line in applied.lines {
                println!("{line}");
            }
        }
    }
    Ok(())
}

async fn instance_command(db: &Database, command: InstanceCommand) -> Result<()> {
    match command {
        InstanceCommand::Add { id, cluster, name, owner, ttl } => {
            db.add_instance(id, &cluster, name.as_deref(), owner.as_deref(), ttl).await?;
            println!("instance {id} added on cluster {cluster}");
        }
        InstanceCommand::Move { id, to, prepare: true, ttl, dry_run } => {
            let plan = instadns::ttl::plan_move(db, id, &to, ttl).await?;
            let started = std::time::Instant::now();
            let mut print = |line: &str| println!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
            instadns::ttl::prepared_move(db, &plan, dry_run, &mut print).await?;
        }
        InstanceCommand::Move { id, to, .. } => {
            let t = db.move_instance(id, &to).await?;
            println!(
                "instance {id} moved from {} to {} at {} (tombstone recorded)",
                t.from_cluster,
                t.to_cluster,
                rfc3339(t.moved_at)
            );
        }
        InstanceCommand::Rm { id } => {
            db.remove_instance(id).await?;
            println!("instance {id} removed");
        }
        InstanceCommand::Show { id } => {
            let info = db.show_instance(id).await?;
            let i = &info.instance;
            println!("instance {}", i.id);
            println!("  cluster  {}", info.cluster);
            if let (Some(n), Some(o)) = (&i.name, &i.owner) {
                println!("  name     {n}.{o}");
            }
            println!("  ttl      {}", i.ttl.map_or("rule default".into(), |t| format!("{t}s")));
            for d in &info.domains {
                println!("  domain   {d}");
            }
            for t in &info.tombstones {
                println!("  moved    {} -> {} at {}", t.from_cluster, t.to_cluster, rfc3339(t.moved_at));
            }
        }
        InstanceCommand::List { cluster, limit } => {
            for (i, cluster) in db.list_instances(cluster.as_deref(), limit).await? {
                let name = match (&i.name, &i.owner) {
                    (Some(n), Some(o)) => format!("{n}.{o}"),
                    _ => "-".into(),
                };
                println!("{}  {cluster}  {name}  {}", i.id, i.ttl.map_or("-".into(), |t| t.to_string()));
            }
        }
    }
    Ok(())
}

async fn domain_command(db: &Database, command: DomainCommand) -> Result<()> {
    match command {
        DomainCommand::Add { hostname, instance } => {
            db.add_domain(&hostname, instance).await?;
            println!("{hostname} -> instance {instance}");
        }
        DomainCommand::Rm { hostname } => {
            db.remove_domain(&hostname).await?;
            println!("{hostname} removed");
        }
    }
    Ok(())
}

async fn acme_command(db: &Database, command: AcmeCommand) -> Result<()> {
    match command {
        AcmeCommand::Set { name, txt, cname, ttl, expires } => {
            let (kind, value) = match (txt, cname) {
                (Some(t), None) => ("txt", t),
                (None, Some(c)) => ("cname", c),
                _ => bail!("give exactly one of --txt VALUE or --cname TARGET"),
            };
            let expires_at = expires.map(|s| unix_now() + i64::from(s));
            db.set_acme(&AcmeChallenge { name: name.clone(), kind: kind.into(), value, ttl, expires_at })
                .await?;
            println!("_acme-challenge.{} set", name.trim_end_matches('.'));
        }
        AcmeCommand::Clear { name, txt } => {
            let n = db.clear_acme(&name, txt.as_deref()).await?;
            println!("{n} challenge answer(s) removed");
        }
    }
    Ok(())
}
