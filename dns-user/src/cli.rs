//! Command-line interface definitions.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use instadns::{fastpath::loader::XdpModeArg, steering::territory::Prefix, store::admin::AddressSpec};

pub use instadns::config::DEFAULT_DB;

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
    Serve(Box<ServeArgs>),
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
    /// Zones: apex, SOA, name servers, name rules, static records.
    Zone {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: ZoneCommand,
    },
    /// Clusters: per-service CNAME targets and load-balancer addresses.
    Cluster {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Instances: which cluster runs each tenant instance.
    Instance {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: InstanceCommand,
    },
    /// TTL management: lower a cluster's, an instance's or a name's TTL ahead of a change,
    /// and restore it afterwards.
    Ttl {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: TtlCommand,
    },
    /// Territories: named sets of client networks for directional answers.
    Territory {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: TerritoryCommand,
    },
    /// Health of the failover queues' addresses, as the running daemon sees it.
    Health {
        /// The daemon's metrics address (its `metrics` setting).
        #[arg(long, default_value = "127.0.0.1:9153")]
        metrics: SocketAddr,
    },
    /// Custom domains of instances.
    Domain {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: DomainCommand,
    },
    /// ACME DNS-01 challenge answers at _acme-challenge.NAME.
    Acme {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: AcmeCommand,
    },
    /// Validate a configuration file; reports the first error with its line and key.
    CheckConfig {
        /// The file (default: /etc/instadns/instadns.toml).
        file: Option<PathBuf>,
    },
    /// Print the documented default configuration file.
    DefaultConfig,
    /// Show the pinned fast path: attached interfaces, map capacity and fill, hit ratio and
    /// queries per second.
    Status {
        #[command(flatten)]
        pins: PinArgs,
        /// Seconds to sample the counters for queries per second.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Detach the XDP program from every interface and remove the pinned maps.
    Detach {
        #[command(flatten)]
        pins: PinArgs,
    },
}

#[derive(Args)]
pub struct PinArgs {
    /// The pin directory (default: the config file's, else /sys/fs/bpf/instadns).
    #[arg(long, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,
    /// The configuration file to take the pin directory from.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Apply pending schema migrations (the server also does this on start).
    Migrate {
        #[command(flatten)]
        db: DbArg,
    },
    /// Load the demo data (a new SQLite file gets it by itself; PostgreSQL only on request).
    Demo {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Args)]
pub struct DbArg {
    /// The database: sqlite:PATH (or a plain path; a new file starts with the demo data) or
    /// postgres://USER@HOST/DB (a socket directory as host: postgres://USER@localhost/DB?host=/run/postgresql).
    /// Default: the config file's, else sqlite:/var/lib/instadns/instadns.sqlite.
    #[arg(long, global = true, env = "INSTADNS_DB")]
    pub db: Option<String>,
}

impl DbArg {
    /// The database URL: the flag (or $INSTADNS_DB), else the default config file's, else
    /// the built-in default.
    pub fn url(&self) -> String {
        self.db.clone().unwrap_or_else(|| {
            let default = std::path::Path::new(instadns::config::DEFAULT_CONFIG_PATH);
            instadns::config::Config::load(default).map(|c| c.db).unwrap_or_else(|_| DEFAULT_DB.to_owned())
        })
    }
}

#[derive(Subcommand)]
pub enum ZoneCommand {
    /// Add a zone.
    Add {
        /// The zone apex, e.g. example.com
        apex: String,
        /// A name server of the zone (repeat for several).
        #[arg(long, required = true)]
        ns: Vec<String>,
        /// SOA MNAME (default: the first --ns).
        #[arg(long)]
        mname: Option<String>,
        /// SOA RNAME, the contact mailbox as a name (default: hostmaster.APEX).
        #[arg(long)]
        rname: Option<String>,
        /// TTL of the SOA and NS records, and default TTL of static records.
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
        /// SOA MINIMUM: the TTL of negative answers (RFC 2308).
        #[arg(long, default_value_t = 60)]
        minimum: u32,
        /// A name rule PATTERN=KIND[:TTL], e.g. '{service}-{id}.apps=service:300' or '{id}=host'
        /// (kinds: service, host, tombstone); repeat for several.
        #[arg(long = "rule")]
        rules: Vec<String>,
    },
    /// List zones with their name servers and rules.
    List,
    /// Import an RFC 1035 zone file (creates the zone or replaces its static records).
    Import {
        file: PathBuf,
        /// The origin, if the file has no $ORIGIN.
        #[arg(long)]
        origin: Option<String>,
    },
    /// Print a zone's static data as an RFC 1035 zone file.
    Export { zone: String },
    /// Name rules of a zone.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
    /// Static records of a zone.
    Record {
        #[command(subcommand)]
        command: RecordCommand,
    },
}

#[derive(Subcommand)]
pub enum RuleCommand {
    /// Add (or change) a name rule.
    Add {
        zone: String,
        /// The pattern, relative to the apex: {service}-{id}.apps, {name}.{owner}, {id}, _moved.{id}
        pattern: String,
        /// service (CNAME to the cluster's service target), host (A/AAAA of the cluster),
        /// tombstone (TXT of the last move).
        kind: String,
        #[arg(long, default_value_t = 60)]
        ttl: u32,
    },
    /// Remove a name rule.
    Rm { zone: String, pattern: String },
}

#[derive(Subcommand)]
pub enum RecordCommand {
    /// Add a static record, e.g. `zone record add example.com www.example.com A 192.0.2.7`.
    Add {
        zone: String,
        name: String,
        #[arg(value_name = "TYPE")]
        rtype: String,
        /// The record data in zone-file form.
        data: String,
        /// TTL (default: the zone's).
        #[arg(long)]
        ttl: Option<u32>,
    },
}

#[derive(Args, Clone)]
pub struct ClusterArgs {
    /// A service and its CNAME target, SERVICE=TARGET (e.g. ws=ws-mt1.example.com); repeat.
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// Remove a service.
    #[arg(long = "remove-service")]
    pub remove_services: Vec<String>,
    /// A load-balancer address, IP[,weight=N][,queue=N][,territory=NAME]; repeat. An
    /// existing address takes the new attributes. weight: share of `--pick one` answers
    /// (default 1, 0 = never); queue: failover position (default 0, lower answers first
    /// while healthy); territory: answered only to that territory's clients.
    #[arg(long = "address", value_parser = parse_address_spec)]
    pub addresses: Vec<AddressSpec>,
    /// Remove an address.
    #[arg(long = "remove-address")]
    pub remove_addresses: Vec<IpAddr>,
    /// Address order of host answers: fixed, or rotate (round robin).
    #[arg(long)]
    pub order: Option<String>,
    /// How many addresses a host answer carries: all, or one (picked by weight per query).
    #[arg(long)]
    pub pick: Option<String>,
    /// What a failover queue answers when every address is down: all, or last (the last
    /// queue position's addresses).
    #[arg(long)]
    pub fallback: Option<String>,
    /// Health-check the addresses: tcp:PORT (connect) or http:PORT/PATH (GET, expecting
    /// --check-expect). Unhealthy addresses leave the answers (see queue=).
    #[arg(long, value_name = "tcp:PORT|http:PORT/PATH")]
    pub check: Option<String>,
    /// Stop health-checking (every address counts as healthy).
    #[arg(long, conflicts_with = "check")]
    pub no_check: bool,
    /// HTTP status the check expects.
    #[arg(long, default_value_t = 200, requires = "check")]
    pub check_expect: u16,
    /// Host header of HTTP checks (default: the address).
    #[arg(long, requires = "check")]
    pub check_host: Option<String>,
    /// Milliseconds between probes of each address.
    #[arg(long, default_value_t = 5000, requires = "check")]
    pub check_interval_ms: u32,
    /// Milliseconds a probe may take.
    #[arg(long, default_value_t = 2000, requires = "check")]
    pub check_timeout_ms: u32,
    /// Consecutive successes that bring a down address back.
    #[arg(long, default_value_t = 2, requires = "check")]
    pub rise: u32,
    /// Consecutive failures that take an address down.
    #[arg(long, default_value_t = 3, requires = "check")]
    pub fall: u32,
}

fn parse_address_spec(text: &str) -> Result<AddressSpec, String> {
    text.parse()
}

/// Parses `tcp:PORT` or `http:PORT/PATH` into (kind, port, path).
pub fn parse_check(text: &str) -> Result<(String, u16, String), String> {
    let (kind, rest) =
        text.split_once(':').ok_or_else(|| format!("{text:?}: use tcp:PORT or http:PORT/PATH"))?;
    let (port, path) = match (kind, rest.find('/')) {
        ("http", Some(i)) => (&rest[..i], rest[i..].to_owned()),
        ("http", None) => (rest, "/".to_owned()),
        ("tcp", _) => (rest, "/".to_owned()),
        _ => return Err(format!("{kind:?}: use tcp or http")),
    };
    let port =
        port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("{port:?} is not a port"))?;
    Ok((kind.to_owned(), port, path))
}

#[derive(Subcommand)]
pub enum TerritoryCommand {
    /// Add a territory: client networks that get their own directional answers.
    Add {
        name: String,
        /// A client network in CIDR notation (IPv4 or IPv6); repeat.
        #[arg(long = "prefix")]
        prefixes: Vec<Prefix>,
        /// A file of networks, one per line ('#' starts a comment).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Change a territory's networks.
    Set {
        name: String,
        #[arg(long = "prefix")]
        prefixes: Vec<Prefix>,
        #[arg(long = "remove-prefix")]
        remove_prefixes: Vec<Prefix>,
        /// Replace every network with those of this file (and --prefix).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Remove a territory (no cluster address may use it).
    Remove { name: String },
    /// List territories and their networks.
    List,
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Add a cluster.
    Add {
        name: String,
        #[command(flatten)]
        args: ClusterArgs,
    },
    /// Change a cluster's services, addresses or address order.
    Set {
        name: String,
        #[command(flatten)]
        args: ClusterArgs,
    },
    /// List clusters.
    List,
}

#[derive(Subcommand)]
pub enum InstanceCommand {
    /// Add an instance.
    Add {
        /// The platform's instance id.
        id: i64,
        #[arg(long)]
        cluster: String,
        /// Instance name, for {name}.{owner} host names (with --owner).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        /// TTL of the instance's answers (default: the rule's).
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Move an instance to another cluster; records a tombstone and changes the answers at once.
    Move {
        id: i64,
        #[arg(long)]
        to: String,
        /// First lower the TTL to --ttl and wait out the old one, so resolvers switch within
        /// --ttl seconds of the move; restore the TTL afterwards. Prints each step.
        #[arg(long)]
        prepare: bool,
        /// The TTL during a prepared move.
        #[arg(long, default_value_t = 30, requires = "prepare")]
        ttl: u32,
        /// Print the steps of a prepared move without changing anything.
        #[arg(long, requires = "prepare")]
        dry_run: bool,
    },
    /// Remove an instance.
    Rm { id: i64 },
    /// Show an instance, its custom domains and its moves.
    Show { id: i64 },
    /// List instances.
    List {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum TtlCommand {
    /// Set the TTL of the answers of a cluster's instances, one instance, or one name
    /// (its static records, or else the instance it names).
    Apply {
        #[command(flatten)]
        target: TtlTarget,
        /// The TTL in seconds.
        #[arg(long, required_unless_present = "clear", conflicts_with = "clear")]
        ttl: Option<u32>,
        /// Back to the name rules' default TTL (instances only).
        #[arg(long)]
        clear: bool,
        /// Print what would change without changing it.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct TtlTarget {
    /// Every instance on this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long)]
    pub instance: Option<i64>,
    /// A name: its static records, or the instance it belongs to.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Attach a custom domain to an instance.
    Add {
        hostname: String,
        #[arg(long)]
        instance: i64,
    },
    /// Detach a custom domain.
    Rm { hostname: String },
}

#[derive(Subcommand)]
pub enum AcmeCommand {
    /// Answer a DNS-01 challenge for NAME: a TXT value, or a CNAME into a validation zone.
    Set {
        /// The name being validated (answers go to _acme-challenge.NAME).
        name: String,
        /// The key authorization digest to answer as TXT.
        #[arg(long)]
        txt: Option<String>,
        /// Delegate validation: CNAME to this name.
        #[arg(long)]
        cname: Option<String>,
        #[arg(long, default_value_t = 60)]
        ttl: u32,
        /// Stop answering the TXT value after this many seconds.
        #[arg(long)]
        expires: Option<u32>,
    },
    /// Remove challenge answers of NAME (all, or one --txt value).
    Clear {
        name: String,
        #[arg(long)]
        txt: Option<String>,
    },
}

/// Flags of `serve`: each overrides the configuration file's value.
#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (default: /etc/instadns/instadns.toml if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Interface to attach the XDP program to; repeat for several (replaces the config's).
    #[arg(long = "iface", value_name = "IFACE")]
    pub ifaces: Vec<String>,
    /// XDP attach mode of the --iface interfaces: auto tries native (driver) mode and falls
    /// back to generic (SKB) mode.
    #[arg(long, value_enum)]
    pub xdp_mode: Option<XdpModeArg>,
    /// Serve from userspace only, without the XDP fast path.
    #[arg(long, conflicts_with_all = ["ifaces", "xdp_mode"])]
    pub no_xdp: bool,
    #[command(flatten)]
    pub db: DbArg,
    /// Address to listen on (UDP and TCP); repeat for several. Default: all IPv4 and IPv6 addresses.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<IpAddr>,
    /// DNS port, for the sockets and the XDP program [default: 53].
    #[arg(long)]
    pub port: Option<u16>,
    /// UDP payload size advertised in EDNS(0) responses, 512 to 4096 [default: 1232].
    #[arg(long, value_parser = clap::value_parser!(u16).range(512..=4096))]
    pub edns_payload: Option<u16>,
    /// Names the XDP maps hold (spread over the name-length buckets, short names first). LRU
    /// maps start evicting before they are full: leave headroom over the hot set [default: 262144].
    #[arg(long)]
    pub map_entries: Option<u32>,
    /// Distinct answers the XDP answer array holds; names with identical answers share one
    /// [default: 16384].
    #[arg(long)]
    pub answer_slots: Option<u32>,
    /// Serve Prometheus /metrics, /health and /ready on this address, e.g. 127.0.0.1:9153.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Most TCP connections served at once [default: 1024].
    #[arg(long)]
    pub tcp_max_connections: Option<usize>,
    /// Seconds an idle TCP connection stays open [default: 10].
    #[arg(long)]
    pub tcp_idle_timeout: Option<u64>,
    /// Where to pin the maps and links on bpffs, so restarts keep the fast path answering
    /// [default: /sys/fs/bpf/instadns].
    #[arg(long, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,
    /// Detach the XDP program and remove the pins when stopping.
    #[arg(long)]
    pub detach_on_exit: bool,
    /// Look instances up in the platform's own PostgreSQL instead of our instances table
    /// (with --instance-sql).
    #[arg(long, value_name = "URL", requires = "instance_sql")]
    pub instance_db: Option<String>,
    /// The SQL mapping an instance id ($1) to a cluster name (first column) and optionally a
    /// TTL (second column), e.g. 'SELECT cluster FROM apps WHERE id = $1'.
    #[arg(long, value_name = "SQL", requires = "instance_db")]
    pub instance_sql: Option<String>,
}

/// `PATTERN=KIND[:TTL]`.
pub fn parse_rule(text: &str) -> Result<(String, String, u32)> {
    let (pattern, rest) =
        text.rsplit_once('=').with_context(|| format!("{text:?}: expected PATTERN=KIND[:TTL]"))?;
    let (kind, ttl) = match rest.split_once(':') {
        Some((k, t)) => (k, t.parse().with_context(|| format!("{text:?}: TTL {t:?} is not a number"))?),
        None => (rest, if rest == "service" { 300 } else { 60 }),
    };
    if pattern.is_empty() || kind.is_empty() {
        bail!("{text:?}: expected PATTERN=KIND[:TTL]");
    }
    Ok((pattern.to_owned(), kind.to_owned(), ttl))
}

/// `SERVICE=TARGET`.
pub fn parse_service(text: &str) -> Result<(String, String)> {
    let (service, target) =
        text.split_once('=').with_context(|| format!("{text:?}: expected SERVICE=TARGET"))?;
    if service.is_empty() || target.is_empty() {
        bail!("{text:?}: expected SERVICE=TARGET");
    }
    Ok((service.to_owned(), target.to_owned()))
}
