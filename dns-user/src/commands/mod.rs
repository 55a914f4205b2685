//! The command line: one file per noun, each holding its subcommands' arguments and what
//! they do. Every command goes through the library's store and resolver (never the
//! maps); `list` and `show` print text for people or, with `--json`, one documented
//! JSON schema for scripts (README: "JSON output").
//!
//! Exit codes: 0 done, 1 operational error (not found, conflict, database down), 2
//! usage error (a bad flag or value; clap's own errors are 2 as well).

mod acme;
mod cluster;
mod config;
mod db;
mod domain;
mod fastpath;
mod fleet;
mod health;
mod instance;
mod key;
mod output;
mod query;
mod record;
mod remote;
mod rule;
mod target;
mod territory;
mod token;
mod ttl;
mod zone;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use instadns::store::{Database, DbLocation};

use crate::daemon::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_DB};
use target::TargetArg;

#[derive(Parser)]
#[command(
    name = "instadns",
    version,
    about = "Authoritative DNS for multi-tenant platforms: hot answers served by XDP, the truth in a database",
    long_about = None
)]
pub struct Cli {
    /// Log filter (error, warn, info, debug, trace, or tracing directives).
    #[arg(long, global = true, env = "INSTADNS_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve DNS: attach the XDP fast path and answer over UDP and TCP.
    Serve(Box<crate::daemon::flags::ServeArgs>),
    /// Print what the server would answer for NAME and why (zone, rule, instance, cluster).
    Query(query::QueryArgs),
    /// Database maintenance: migrations, the demo data, pruning the change log.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// Zones: apex, SOA, name servers; their rules and static records.
    Zone {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: zone::ZoneCommand,
    },
    /// Clusters: per-service CNAME targets and load-balancer addresses.
    Cluster {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Instances: which cluster runs each tenant instance.
    Instance {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: instance::InstanceCommand,
    },
    /// TTL management: lower a cluster's, an instance's or a name's TTL ahead of a change,
    /// and restore it afterwards.
    Ttl {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: ttl::TtlCommand,
    },
    /// Territories: named sets of client networks for directional answers.
    Territory {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: territory::TerritoryCommand,
    },
    /// Custom domains of instances.
    Domain {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: domain::DomainCommand,
    },
    /// ACME DNS-01 challenge answers at _acme-challenge.NAME.
    Acme {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: acme::AcmeCommand,
    },
    /// TSIG keys for signed updates, zone transfers and queries.
    Key {
        #[command(flatten)]
        target: TargetArg,
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Bearer tokens of the HTTP management API.
    Token {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// The nodes following this database: what each last reported, which stopped.
    Fleet {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: fleet::FleetCommand,
    },
    /// Health of the failover queues' addresses, as the running daemon sees it.
    Health(health::HealthArgs),
    /// Validate a configuration file; reports the first error with its line and key.
    CheckConfig(config::CheckConfigArgs),
    /// Print the documented default configuration file.
    DefaultConfig,
    /// Show the pinned fast path: attached interfaces, map capacity and fill, hit ratio and
    /// queries per second.
    Status(fastpath::StatusArgs),
    /// Detach the XDP program from every interface and remove the pinned maps.
    Detach(fastpath::PinArgs),
    /// Prepare the pin directory for a daemon that runs as USER (as root, before it
    /// starts; the unit's ExecStartPre): create it, hand it and its pins to USER, let
    /// others traverse the bpffs directories above it.
    PreparePins(fastpath::PreparePinsArgs),
}

/// The database flag every data command takes.
#[derive(Args, Clone)]
pub struct DbArg {
    /// The database: sqlite:PATH (or a plain path; a new file starts empty) or
    /// postgres://USER@HOST/DB (a socket directory as host: postgres://USER@localhost/DB?host=/run/postgresql).
    /// Default: the config file's, else sqlite:/var/lib/instadns/instadns.sqlite.
    #[arg(long, global = true, env = "INSTADNS_DB")]
    pub db: Option<DbLocation>,
}

impl DbArg {
    /// The database: the flag (or $INSTADNS_DB), else the default config file's, else the
    /// built-in default.
    pub fn location(&self) -> Result<DbLocation> {
        if let Some(db) = &self.db {
            return Ok(db.clone());
        }
        let default = std::path::Path::new(DEFAULT_CONFIG_PATH);
        if default.exists() {
            return Ok(Config::load(default)?.db);
        }
        Ok(DbLocation::parse(DEFAULT_DB)?)
    }

    /// Opens (and migrates) the database; a missing SQLite file is created empty.
    pub async fn open(&self) -> Result<Database> {
        let location = self.location()?;
        Database::open(&location).await.with_context(|| format!("opening the database {location}"))
    }
}

/// `--json` of `list` and `show`.
#[derive(Args, Clone, Copy)]
pub struct Format {
    /// Print JSON (the schema in the README's "JSON output") instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a parsed command.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => crate::daemon::serve(&args).await,
        Command::Query(args) => query::run(args).await,
        Command::Db { command } => db::run(command).await,
        Command::Zone { target, command } => zone::run(&target.open().await?, command).await,
        Command::Cluster { target, command } => cluster::run(&target.open().await?, command).await,
        Command::Instance { target, command } => instance::run(&target.open().await?, command).await,
        Command::Ttl { target, command } => ttl::run(&target.open().await?, command).await,
        Command::Territory { target, command } => territory::run(&target.open().await?, command).await,
        Command::Domain { target, command } => domain::run(&target.open().await?, command).await,
        Command::Acme { target, command } => acme::run(&target.open().await?, command).await,
        Command::Key { target, command } => key::run(&target.open().await?, command).await,
        Command::Token { db, command } => token::run(&db.open().await?, command).await,
        Command::Fleet { db, command } => fleet::run(&db.open().await?, command).await,
        Command::Health(args) => health::run(args).await,
        Command::CheckConfig(args) => config::check(args),
        Command::DefaultConfig => {
            print!("{}", crate::daemon::config::DEFAULT_CONFIG);
            Ok(())
        }
        Command::Status(args) => fastpath::status(args).await,
        Command::Detach(args) => fastpath::detach(args),
        Command::PreparePins(args) => fastpath::prepare_pins(args),
    }
}

/// The exit code for an error: 2 when the input was at fault, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    use instadns::{control::ttl::TtlError, model::Invalid, store::StoreError};
    let usage = error.chain().any(|cause| {
        cause.downcast_ref::<Invalid>().is_some()
            || cause.downcast_ref::<output::Usage>().is_some()
            || matches!(
                cause.downcast_ref::<StoreError>(),
                Some(StoreError::Invalid(_) | StoreError::BadUrl { .. })
            )
            || matches!(
                cause.downcast_ref::<TtlError>(),
                Some(TtlError::Invalid(_) | TtlError::Store(StoreError::Invalid(_)))
            )
            || cause.downcast_ref::<crate::daemon::config::ConfigError>().is_some()
            || cause.downcast_ref::<remote::ApiProblem>().is_some_and(remote::ApiProblem::is_usage)
    });
    if usage { 2 } else { 1 }
}
