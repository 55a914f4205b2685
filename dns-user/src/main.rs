//! The `instadns` binary: the daemon and its command-line tools.

mod cli;

use std::{net::SocketAddr, str::FromStr as _, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, bail};
use clap::Parser as _;
use hickory_proto::rr::RecordType;
use instadns::{
    answer,
    fastpath::{
        AnswerCache, DEFAULT_CACHE_ENTRIES, KernelMaps, STALE_MAX,
        loader::{self, XdpConfig},
    },
    invalidation::Follower,
    resolver::{Resolver, catalog::parse_name},
    server::{self, Handler, tcp::TcpLimits},
    store::{
        AcmeChallenge, ByoInstances, Database, DbLocation,
        admin::{ClusterUpdate, NewZone},
        rfc3339, unix_now,
    },
};
use tracing_subscriber::EnvFilter;

use cli::{
    AcmeCommand, Cli, ClusterCommand, Command, DbCommand, DomainCommand, InstanceCommand, ServeArgs,
    ZoneCommand,
};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
        Command::Serve(args) => serve(*args).await,
        Command::Query { name, qtype, db } => query(&name, &qtype, &open_db(&db.db).await?).await,
        Command::Db { command } => db_command(command).await,
        Command::Zone { db, command } => zone_command(&open_db(&db.db).await?, command).await,
        Command::Cluster { db, command } => cluster_command(&open_db(&db.db).await?, command).await,
        Command::Instance { db, command } => instance_command(&open_db(&db.db).await?, command).await,
        Command::Domain { db, command } => domain_command(&open_db(&db.db).await?, command).await,
        Command::Acme { db, command } => acme_command(&open_db(&db.db).await?, command).await,
    }
}

async fn open_db(url: &str) -> Result<Database> {
    let location = DbLocation::parse(url).context("--db")?;
    Database::open(&location).await.with_context(|| format!("opening the database {url}"))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let location = DbLocation::parse(&args.db.db).context("--db")?;
    // A fleet node may start before its database: keep trying (SQLite errors are final).
    let mut db = loop {
        match Database::open(&location).await {
            Ok(db) => break db,
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unreachable; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("opening the database {}", args.db.db)),
        }
    };
    match (&args.instance_db, &args.instance_sql) {
        (Some(url), Some(sql)) => {
            let byo = ByoInstances::connect(url, sql).await.context("--instance-db / --instance-sql")?;
            db = db.with_byo(byo);
            tracing::info!("instances are looked up with --instance-sql");
        }
        (None, None) => {}
        _ => bail!("--instance-db and --instance-sql go together"),
    }
    let resolver = Arc::new(Resolver::new(db.clone()).await.context("loading zones from the database")?);

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
    tasks.spawn(Follower::new(db, handler.clone()).run());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            cache.sweep(STALE_MAX);
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
            open_db(&db.db).await?;
            println!("schema up to date");
        }
        DbCommand::Demo { db } => {
            let db = open_db(&db.db).await?;
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
    })
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
                println!("{}  order {}  instances {}", c.cluster.name, c.cluster.address_order, c.instances);
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

async fn instance_command(db: &Database, command: InstanceCommand) -> Result<()> {
    match command {
        InstanceCommand::Add { id, cluster, name, owner, ttl } => {
            db.add_instance(id, &cluster, name.as_deref(), owner.as_deref(), ttl).await?;
            println!("instance {id} added on cluster {cluster}");
        }
        InstanceCommand::Move { id, to } => {
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
