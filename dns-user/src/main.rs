//! The `instadns` binary: the daemon and its command-line tools.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr as _,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use hickory_proto::rr::RecordType;
use instadns::{
    answer,
    fastpath::{
        AnswerCache, DEFAULT_CACHE_ENTRIES, KernelMaps,
        loader::{self, XdpConfig, XdpModeArg},
    },
    resolver::{Resolver, catalog::parse_name},
    server::{self, Handler, tcp::TcpLimits},
    store::{Database, DbLocation, sqlite},
};
use tracing_subscriber::EnvFilter;

/// Where the database lives unless --db says otherwise.
const DEFAULT_DB: &str = "sqlite:/var/lib/instadns/instadns.sqlite";

#[derive(Parser)]
#[command(
    name = "instadns",
    version,
    about = "Authoritative DNS for multi-tenant platforms: hot answers served by XDP, the truth in a database",
    long_about = None
)]
struct Cli {
    /// Log filter (error, warn, info, debug, trace, or tracing directives).
    #[arg(long, global = true, env = "INSTADNS_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS: attach the XDP fast path and answer over UDP and TCP.
    Serve(ServeArgs),
    /// Print what the server would answer for NAME and why (zone, rule, instance, cluster).
    Query {
        /// The query name, e.g. ws-123456.apps.example.com
        name: String,
        /// The query type (A, AAAA, CNAME, TXT, SOA, NS, ANY, ...).
        #[arg(default_value = "A")]
        qtype: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply pending schema migrations (the server also does this on start).
    Migrate {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Args)]
struct DbArg {
    /// The database: sqlite:PATH (or a plain path). A new SQLite file starts with the demo data.
    #[arg(long, env = "INSTADNS_DB", default_value = DEFAULT_DB)]
    db: String,
}

#[derive(Args)]
struct ServeArgs {
    /// Interface to attach the XDP program to; repeat for several.
    #[arg(long = "iface", value_name = "IFACE", required_unless_present = "no_xdp")]
    ifaces: Vec<String>,
    /// XDP attach mode: auto tries native (driver) mode and falls back to generic (SKB) mode.
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: XdpModeArg,
    /// Serve from userspace only, without the XDP fast path.
    #[arg(long, conflicts_with_all = ["ifaces", "xdp_mode"])]
    no_xdp: bool,
    #[command(flatten)]
    db: DbArg,
    /// Address to listen on (UDP and TCP); repeat for several. Default: all IPv4 and IPv6 addresses.
    #[arg(long = "listen", value_name = "ADDR", default_values_t = [IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)])]
    listen: Vec<IpAddr>,
    /// DNS port, for the sockets and the XDP program.
    #[arg(long, default_value_t = 53)]
    port: u16,
    /// UDP payload size advertised in EDNS(0) responses (512 to 4096).
    #[arg(long, default_value_t = dns_common::limits::DEFAULT_EDNS_PAYLOAD, value_parser = clap::value_parser!(u16).range(512..=4096))]
    edns_payload: u16,
    /// Names the XDP maps hold (spread over the name-length buckets, short names first).
    #[arg(long, default_value_t = 262_144)]
    map_entries: u32,
    /// Distinct answers the XDP answer array holds (names with identical answers share one).
    #[arg(long, default_value_t = 16_384)]
    answer_slots: u32,
    /// Serve Prometheus metrics (/metrics) and /health on this address, e.g. 127.0.0.1:9153.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Most TCP connections served at once.
    #[arg(long, default_value_t = 1024)]
    tcp_max_connections: usize,
    /// Seconds an idle TCP connection stays open.
    #[arg(long, default_value_t = 10)]
    tcp_idle_timeout: u64,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("instadns: error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("instadns: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Query { name, qtype, db } => query(&name, &qtype, &db.db).await,
        Command::Db { command: DbCommand::Migrate { db } } => migrate(&db.db),
    }
}

async fn open_db(url: &str) -> Result<Database> {
    let location = DbLocation::parse(url).context("--db")?;
    Database::open(&location).await.with_context(|| format!("opening the database {url}"))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let db = open_db(&args.db.db).await?;
    let resolver = Arc::new(Resolver::new(db).await.context("loading zones from the database")?);

    // Sockets first: once XDP is attached, what it passes up must find a listener.
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for ip in &args.listen {
        let addr = SocketAddr::new(*ip, args.port);
        udp.push(Arc::new(server::bind_udp(addr)?));
        tcp.push(server::bind_tcp(addr)?);
        tracing::info!(%addr, "listening on UDP and TCP");
    }

    let mut ebpf = None;
    let mut kernel = None;
    if !args.no_xdp {
        let config =
            XdpConfig::with_capacity(args.port, args.edns_payload, args.map_entries, args.answer_slots);
        let mut loaded = loader::load(&config)?;
        for iface in &args.ifaces {
            let mode = loader::attach(&mut loaded, iface, args.xdp_mode)?;
            tracing::info!(iface, %mode, "XDP fast path attached");
        }
        kernel = Some(KernelMaps::from_ebpf(&mut loaded, config.answer_slots)?);
        ebpf = Some(loaded);
    }
    // The userspace cache holds at least what the kernel maps can, or installs stop.
    let cache_entries = DEFAULT_CACHE_ENTRIES.max(args.map_entries as usize * 2);
    let cache = Arc::new(AnswerCache::new(cache_entries, kernel));
    let handler = Arc::new(Handler::new(resolver, cache.clone(), args.edns_payload));

    let limits = TcpLimits {
        max_connections: args.tcp_max_connections,
        idle_timeout: Duration::from_secs(args.tcp_idle_timeout),
        ..TcpLimits::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for socket in udp {
        tasks.spawn(server::udp::serve(socket, handler.clone()));
    }
    for listener in tcp {
        tasks.spawn(server::tcp::serve(listener, handler.clone(), limits));
    }
    if let Some(addr) = args.metrics {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("--metrics {addr}"))?;
        tracing::info!(%addr, "serving /metrics and /health");
        tasks.spawn(server::metrics::serve(listener, handler.clone()));
    }
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            cache.sweep();
        }
    });
    tracing::info!("instadns ready");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = tasks.join_next() => bail!("a server task ended unexpectedly"),
    }
    tracing::info!("shutting down; detaching XDP");
    drop(ebpf);
    Ok(())
}

async fn query(name: &str, qtype: &str, db: &str) -> Result<()> {
    let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
        .with_context(|| format!("unknown query type {qtype:?}"))?;
    let absolute = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
    let qname = parse_name(&absolute).map_err(anyhow::Error::msg).context("NAME")?;
    let resolver = Resolver::new(open_db(db).await?).await?;
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
        Some(ttl) => println!(";; cacheable for {ttl}s (XDP fast path)"),
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

fn migrate(db: &str) -> Result<()> {
    match DbLocation::parse(db).context("--db")? {
        DbLocation::Sqlite(path) => {
            sqlite::SqliteStore::open_blocking(path.clone())
                .with_context(|| format!("migrating {}", path.display()))?;
            println!("{}: schema up to date", path.display());
            Ok(())
        }
        DbLocation::Postgres(_) => bail!("PostgreSQL support is not built yet"),
    }
}
