//! Command-line interface definitions.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use instadns::fastpath::loader::XdpModeArg;

/// Where the database lives unless --db says otherwise.
pub const DEFAULT_DB: &str = "sqlite:/var/lib/instadns/instadns.sqlite";

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
    /// postgres://USER@HOST/DB (host may be a socket directory: postgres://u@%2Fpath/db).
    #[arg(long, global = true, env = "INSTADNS_DB", default_value = DEFAULT_DB)]
    pub db: String,
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
    /// A load-balancer address (IPv4 or IPv6); repeat.
    #[arg(long = "address")]
    pub addresses: Vec<IpAddr>,
    /// Remove an address.
    #[arg(long = "remove-address")]
    pub remove_addresses: Vec<IpAddr>,
    /// Address order of host answers: fixed, or rotate (round robin).
    #[arg(long)]
    pub order: Option<String>,
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

#[derive(Args)]
pub struct ServeArgs {
    /// Interface to attach the XDP program to; repeat for several.
    #[arg(long = "iface", value_name = "IFACE", required_unless_present = "no_xdp")]
    pub ifaces: Vec<String>,
    /// XDP attach mode: auto tries native (driver) mode and falls back to generic (SKB) mode.
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Serve from userspace only, without the XDP fast path.
    #[arg(long, conflicts_with_all = ["ifaces", "xdp_mode"])]
    pub no_xdp: bool,
    #[command(flatten)]
    pub db: DbArg,
    /// Address to listen on (UDP and TCP); repeat for several. Default: all IPv4 and IPv6 addresses.
    #[arg(long = "listen", value_name = "ADDR", default_values_t = [IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)])]
    pub listen: Vec<IpAddr>,
    /// DNS port, for the sockets and the XDP program.
    #[arg(long, default_value_t = 53)]
    pub port: u16,
    /// UDP payload size advertised in EDNS(0) responses (512 to 4096).
    #[arg(long, default_value_t = dns_common::limits::DEFAULT_EDNS_PAYLOAD, value_parser = clap::value_parser!(u16).range(512..=4096))]
    pub edns_payload: u16,
    /// Names the XDP maps hold (spread over the name-length buckets, short names first). LRU
    /// maps start evicting before they are full: leave headroom over the hot set.
    #[arg(long, default_value_t = 262_144)]
    pub map_entries: u32,
    /// Distinct answers the XDP answer array holds (names with identical answers share one).
    #[arg(long, default_value_t = 16_384)]
    pub answer_slots: u32,
    /// Serve Prometheus metrics (/metrics) and /health on this address, e.g. 127.0.0.1:9153.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Most TCP connections served at once.
    #[arg(long, default_value_t = 1024)]
    pub tcp_max_connections: usize,
    /// Seconds an idle TCP connection stays open.
    #[arg(long, default_value_t = 10)]
    pub tcp_idle_timeout: u64,
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
